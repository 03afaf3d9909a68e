/* Regular expressions of "pattern" and "patternProperties": ECMA-262 syntax and semantics
 * (what JSON Schema names) on top of PCRE2. Private to the jsonschema*.c files. */
#ifndef CONCLAVE_JSONSCHEMA_REGEX_H
#define CONCLAVE_JSONSCHEMA_REGEX_H

#ifndef PCRE2_CODE_UNIT_WIDTH
#define PCRE2_CODE_UNIT_WIDTH 8
#endif

#include <stddef.h>

#include <pcre2.h>

/* jsonschema_regex_compile(): the pattern does not compile / an allocation failed. */
#define JSONSCHEMA_REGEX_EBAD   (-1)
#define JSONSCHEMA_REGEX_ENOMEM (-2)

/* Compiles the LEN bytes at SRC (an ECMA-262 pattern) into *OUT. Returns 0; or
 * JSONSCHEMA_REGEX_EBAD with PCRE2's reason in WHY and the offset into SRC in *OFFSET; or
 * JSONSCHEMA_REGEX_ENOMEM. Where ECMA-262 and PCRE2 differ, the ECMA meaning wins: "$" matches only
 * at the very end, "\uXXXX" is a code point, "\d" and "\w" are ASCII, "\s" includes the
 * Unicode spaces, and "\p{Letter}" style long property names are understood. */
int jsonschema_regex_compile(const char *src, size_t len, pcre2_code **out, char *why,
                             size_t whylen, size_t *offset);

#endif
