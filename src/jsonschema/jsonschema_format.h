/* The "format" assertions of the JSON Schema validator (jsonschema.c).
 *
 * Each check is a pure function of its bytes: no allocation, no locale, no global state, so
 * the checks may run on any thread. Only ASCII forms are accepted; the internationalized
 * variants (idn-email, idn-hostname, iri) are not supported. */
#ifndef CONCLAVE_JSONSCHEMA_FORMAT_H
#define CONCLAVE_JSONSCHEMA_FORMAT_H

#include <stdbool.h>
#include <stddef.h>

enum jsformat {
    JSFORMAT_NONE = 0,
    JSFORMAT_DATE_TIME, /* RFC 3339 date-time, e.g. 2024-02-29T12:00:00Z */
    JSFORMAT_DATE,      /* RFC 3339 full-date, e.g. 2024-02-29 */
    JSFORMAT_TIME,      /* RFC 3339 full-time, e.g. 12:00:00+01:00 */
    JSFORMAT_EMAIL,     /* RFC 5321 mailbox: dot-atom or quoted local part, host or [ip] */
    JSFORMAT_HOSTNAME,  /* RFC 1123 host name */
    JSFORMAT_IPV4,      /* dotted quad without leading zeros */
    JSFORMAT_IPV6,      /* RFC 4291 text form, without a zone index */
    JSFORMAT_URI,       /* RFC 3986 absolute URI (with a scheme) */
    JSFORMAT_UUID,      /* RFC 4122 8-4-4-4-12 hexadecimal form, any version */
};

/* Returns the format called NAME (a NUL-terminated string, borrowed), or JSFORMAT_NONE when
 * the name is not one of the supported formats. */
enum jsformat jsonschema_format_lookup(const char *name);

/* Returns the keyword spelling of F (a static string), or "" for JSFORMAT_NONE. */
const char *jsonschema_format_name(enum jsformat f);

/* Returns true when the LEN bytes at S (borrowed, need not be NUL-terminated) are a valid F.
 * JSFORMAT_NONE accepts everything. */
bool jsonschema_format_check(enum jsformat f, const char *s, size_t len);

#endif
