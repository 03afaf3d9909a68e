/* Text building for the JSON Schema validator. */
#include "jsonschema/jsonschema_buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void jsbuf_putn(struct jsbuf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void jsbuf_puts(struct jsbuf *b, const char *s)
{
    jsbuf_putn(b, s, strlen(s));
}

void jsbuf_vprintf(struct jsbuf *b, const char *fmt, va_list ap)
{
    char small[256];
    va_list copy;
    va_copy(copy, ap);
    int n = vsnprintf(small, sizeof small, fmt, copy);
    va_end(copy);
    if (n < 0) {
        b->oom = true;
    } else if ((size_t)n < sizeof small) {
        jsbuf_putn(b, small, (size_t)n);
    } else {
        char *big = malloc((size_t)n + 1);
        if (!big) {
            b->oom = true;
            return;
        }
        vsnprintf(big, (size_t)n + 1, fmt, ap);
        jsbuf_putn(b, big, (size_t)n);
        free(big);
    }
}

void jsbuf_printf(struct jsbuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    jsbuf_vprintf(b, fmt, ap);
    va_end(ap);
}

void jsbuf_put_token(struct jsbuf *b, const char *s, size_t n)
{
    jsbuf_putn(b, "/", 1);
    size_t start = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '~' || s[i] == '/') {
            jsbuf_putn(b, s + start, i - start);
            jsbuf_putn(b, s[i] == '~' ? "~0" : "~1", 2);
            start = i + 1;
        }
    }
    jsbuf_putn(b, s + start, n - start);
}

void jsbuf_put_json(struct jsbuf *b, const json_t *v)
{
    char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(15));
    if (!text) {
        b->oom = true;
        return;
    }
    size_t len = strlen(text);
    if (len <= 200) {
        jsbuf_putn(b, text, len);
    } else {
        /* Back up over continuation bytes (10xxxxxx) so the cut keeps the text UTF-8. */
        len = 200;
        while (len > 0 && ((unsigned char)text[len] & 0xC0) == 0x80)
            len--;
        jsbuf_putn(b, text, len);
        jsbuf_puts(b, "...");
    }
    free(text);
}

void jsbuf_truncate(struct jsbuf *b, size_t len)
{
    if (b->p && len <= b->len) {
        b->len = len;
        b->p[len] = '\0';
    }
}

const char *jsbuf_str(const struct jsbuf *b)
{
    return b->p ? b->p : "";
}

void jsbuf_put_path(struct jsbuf *b, const struct jspath *at)
{
    if (!at)
        return;
    jsbuf_put_path(b, at->up);
    if (at->key)
        jsbuf_put_token(b, at->key, at->keylen);
    else
        jsbuf_printf(b, "/%zu", at->index);
}
