/* The "format" assertions of the JSON Schema validator (jsonschema.c), applied only when the
 * schema was compiled with format assertion on.
 *
 * Each check is a pure function of its bytes: no locale, no global state, so the checks may
 * run on any thread; only "regex" allocates (it compiles the pattern). The internationalized
 * formats (idn-hostname, idn-email, iri, iri-reference) live in jsonschema_format_idn.c. */
#ifndef CONCLAVE_JSONSCHEMA_FORMAT_H
#define CONCLAVE_JSONSCHEMA_FORMAT_H

#include <stdbool.h>
#include <stddef.h>

enum jsformat {
    JSFORMAT_NONE = 0,
    JSFORMAT_DATE_TIME,     /* RFC 3339 date-time, e.g. 2024-02-29T12:00:00Z */
    JSFORMAT_DATE,          /* RFC 3339 full-date, e.g. 2024-02-29 */
    JSFORMAT_TIME,          /* RFC 3339 full-time, e.g. 12:00:00+01:00 */
    JSFORMAT_EMAIL,         /* RFC 5321 mailbox: dot-atom or quoted local part, host or [ip] */
    JSFORMAT_HOSTNAME,      /* RFC 1123 host name */
    JSFORMAT_IPV4,          /* dotted quad without leading zeros */
    JSFORMAT_IPV6,          /* RFC 4291 text form, without a zone index */
    JSFORMAT_URI,           /* RFC 3986 absolute URI (with a scheme) */
    JSFORMAT_UUID,          /* RFC 4122 8-4-4-4-12 hexadecimal form, any version */
    JSFORMAT_DURATION,      /* RFC 3339 appendix A duration, e.g. P1DT12H */
    JSFORMAT_IDN_EMAIL,     /* RFC 6531 mailbox: email with UTF-8 and an idn-hostname */
    JSFORMAT_IDN_HOSTNAME,  /* RFC 5890 internationalized host name (IDNA 2008, in part) */
    JSFORMAT_URI_REFERENCE, /* RFC 3986 URI or relative reference */
    JSFORMAT_IRI,           /* RFC 3987 absolute IRI */
    JSFORMAT_IRI_REFERENCE, /* RFC 3987 IRI or relative reference */
    JSFORMAT_URI_TEMPLATE,  /* RFC 6570 URI template (level 4 syntax) */
    JSFORMAT_JSON_POINTER,  /* RFC 6901 JSON Pointer */
    JSFORMAT_RELATIVE_JSON_POINTER, /* draft-handrews-relative-json-pointer */
    JSFORMAT_REGEX,                 /* an ECMA-262 regular expression that compiles */
    JSFORMAT_LAST = JSFORMAT_REGEX,
};

/* Returns the format called NAME (a NUL-terminated string, borrowed), or JSFORMAT_NONE when
 * the name is not one of the supported formats. */
enum jsformat jsonschema_format_lookup(const char *name);

/* Returns the keyword spelling of F (a static string), or "" for JSFORMAT_NONE. */
const char *jsonschema_format_name(enum jsformat f);

/* The supported format names, comma-separated, for messages (a static string). */
const char *jsonschema_format_list(void);

/* Returns true when the LEN bytes at S (borrowed, need not be NUL-terminated) are a valid F.
 * JSFORMAT_NONE accepts everything. */
bool jsonschema_format_check(enum jsformat f, const char *s, size_t len);

/* Shared with jsonschema_format_idn.c. */
bool jsonschema_format_hostname(const char *s, size_t len);
bool jsonschema_format_idn_hostname(const char *s, size_t len);
/* RFC 3986 URI (ABSOLUTE) or URI-reference; with IRI also RFC 3987 IRIs, whose components
 * may hold any non-ASCII UTF-8 character. */
bool jsonschema_format_uri(const char *s, size_t len, bool absolute, bool iri);

#endif
