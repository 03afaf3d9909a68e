/* Text building for the JSON Schema validator: a growable string, JSON Pointer tokens, and
 * document positions kept as stack frames until a message needs them. Private to the
 * jsonschema*.c files. */
#ifndef CONCLAVE_JSONSCHEMA_BUF_H
#define CONCLAVE_JSONSCHEMA_BUF_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

/* A growable NUL-terminated string; zero-initialize it, release P with free(). After an
 * allocation failure it stops growing and sets OOM, so a caller checks once at the end
 * instead of after every append. */
struct jsbuf {
    char *p; /* NULL until the first append */
    size_t len, cap;
    bool oom;
};

/* Appends the N bytes at S (borrowed; may hold NUL bytes). */
void jsonschema_buf_putn(struct jsbuf *b, const char *s, size_t n);
/* Appends the NUL-terminated S (borrowed). */
void jsonschema_buf_puts(struct jsbuf *b, const char *s);
/* Appends printf-style text of any length. */
void jsonschema_buf_vprintf(struct jsbuf *b, const char *fmt, va_list ap);
__attribute__((format(printf, 2, 3))) void jsonschema_buf_printf(struct jsbuf *b, const char *fmt,
                                                                 ...);
/* Appends "/" and the N bytes at S as one RFC 6901 reference token: "~" becomes "~0" and "/"
 * becomes "~1". Compiled schema paths and decoded $ref fragments are both in this escaped
 * form, so they compare as plain strings. */
void jsonschema_buf_put_token(struct jsbuf *b, const char *s, size_t n);
/* Appends V (borrowed) as compact JSON, cut to about 200 bytes on a UTF-8 boundary. */
void jsonschema_buf_put_json(struct jsbuf *b, const json_t *v);
/* Shortens B to LEN bytes, LEN being at most its length. */
void jsonschema_buf_truncate(struct jsbuf *b, size_t len);
/* The value of the hex digit C (either case), or -1 when C is not one. */
int jsonschema_hex_digit(char c);
/* B's text: a borrowed pointer into B, "" before the first append. */
const char *jsonschema_buf_str(const struct jsbuf *b);

/* A position inside a document as a chain of stack frames, innermost first; NULL is the
 * whole document. KEY (borrowed from the document, KEYLEN bytes) names an object member;
 * when KEY is NULL, INDEX is an array index. */
struct jspath {
    const struct jspath *up;
    const char *key;
    size_t keylen;
    size_t index;
};

/* Appends AT as a JSON Pointer (nothing for the whole document). The recursion is as deep as
 * the chain, which the callers bound by JSONSCHEMA_MAX_DEPTH. */
void jsonschema_buf_put_path(struct jsbuf *b, const struct jspath *at);

#endif
