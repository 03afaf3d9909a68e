/* URI references for "$id" and "$ref" (RFC 3986): resolving a reference against a base and
 * splitting off the fragment. Pure string functions; private to the jsonschema*.c files. */
#ifndef CONCLAVE_JSONSCHEMA_URI_H
#define CONCLAVE_JSONSCHEMA_URI_H

#include <stdbool.h>
#include <stddef.h>

/* Resolves REF against BASE (both borrowed; BASE may be "" or relative itself, when the
 * schema has no absolute base) by RFC 3986 section 5.2, removing dot segments. Returns a new
 * string the caller frees, or NULL when out of memory. */
char *jsonschema_uri_resolve(const char *base, const char *ref);

/* The length of the part of URI before its "#", i.e. the URI without fragment. */
size_t jsonschema_uri_base_len(const char *uri);

/* True when URI starts with a scheme ("http:", "urn:"), i.e. is absolute. */
bool jsonschema_uri_has_scheme(const char *uri);

/* Percent-decodes the NUL-terminated S into a new string the caller frees. Returns NULL when
 * out of memory or when S holds a malformed escape or an encoded NUL (*BAD is then set). */
char *jsonschema_uri_decode(const char *s, bool *bad);

#endif
