/*
 * canonjson: the one canonical text of a JSON value.
 *
 * Config content is canonicalised by the leader before it enters the Raft log, and the hash
 * chain covers those exact bytes; PostgreSQL keeps them verbatim (config_revisions.content is
 * json). The rules, which an auditor can re-implement: object members sorted by the bytes of
 * their UTF-8 keys; no insignificant whitespace; strings as UTF-8 with only `"`, `\` and the
 * control characters U+0000..U+001F escaped (\b \f \n \r \t, else \u00XX lowercase hex);
 * integers in decimal; reals in the shortest `%.Ng` (N = 1..17) that reads back to the same
 * double, with ".0" appended when that text would otherwise read as an integer.
 */
#ifndef CONCLAVE_CANONJSON_H
#define CONCLAVE_CANONJSON_H

#include <stddef.h>

#include <jansson.h>

/* Deepest nesting of arrays and objects accepted, the outermost counting as 1. */
#define CANONJSON_MAX_DEPTH 128

/* Parses exactly one JSON value from TEXT (LEN bytes): valid UTF-8, no duplicate object keys,
 * no U+0000 in strings, integers within 64 bits, nesting at most CANONJSON_MAX_DEPTH. On
 * success *OUT is a new reference the caller owns. On failure *OUT is NULL and ERRMSG says
 * where ("line 3, column 7: ...") and what is wrong. */
int canonjson_parse(const char *text, size_t len, json_t **out, char *errmsg, size_t errlen);

/* Writes the canonical text of VALUE (borrowed) into a new NUL-terminated buffer *OUT of *LEN
 * bytes (the terminator not counted), which the caller frees with free(). Fails only when out
 * of memory or VALUE nests deeper than CANONJSON_MAX_DEPTH. */
int canonjson_dump(const json_t *value, char **out, size_t *len, char *errmsg, size_t errlen);

#endif /* CONCLAVE_CANONJSON_H */
