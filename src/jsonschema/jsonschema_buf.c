/* Text building for the JSON Schema validator. */
#include "jsonschema/jsonschema_buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void jsonschema_buf_putn(struct jsbuf *b, const char *s, size_t n)
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

void jsonschema_buf_puts(struct jsbuf *b, const char *s)
{
    jsonschema_buf_putn(b, s, strlen(s));
}

void jsonschema_buf_vprintf(struct jsbuf *b, const char *fmt, va_list ap)
{
    char small[256];
    va_list copy;
    va_copy(copy, ap);
    int n = vsnprintf(small, sizeof small, fmt, copy);
    va_end(copy);
    if (n < 0) {
        b->oom = true;
    } else if ((size_t)n < sizeof small) {
        jsonschema_buf_putn(b, small, (size_t)n);
    } else {
        char *big = malloc((size_t)n + 1);
        if (!big) {
            b->oom = true;
            return;
        }
        vsnprintf(big, (size_t)n + 1, fmt, ap);
        jsonschema_buf_putn(b, big, (size_t)n);
        free(big);
    }
}

void jsonschema_buf_printf(struct jsbuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    jsonschema_buf_vprintf(b, fmt, ap);
    va_end(ap);
}

void jsonschema_buf_put_token(struct jsbuf *b, const char *s, size_t n)
{
    jsonschema_buf_putn(b, "/", 1);
    size_t start = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '~' || s[i] == '/') {
            jsonschema_buf_putn(b, s + start, i - start);
            jsonschema_buf_putn(b, s[i] == '~' ? "~0" : "~1", 2);
            start = i + 1;
        }
    }
    jsonschema_buf_putn(b, s + start, n - start);
}

void jsonschema_buf_put_json(struct jsbuf *b, const json_t *v)
{
    char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(15));
    if (!text) {
        b->oom = true;
        return;
    }
    size_t len = strlen(text);
    if (len <= 200) {
        jsonschema_buf_putn(b, text, len);
    } else {
        /* Back up over continuation bytes (10xxxxxx) so the cut keeps the text UTF-8. */
        len = 200;
        while (len > 0 && ((unsigned char)text[len] & 0xC0) == 0x80)
            len--;
        jsonschema_buf_putn(b, text, len);
        jsonschema_buf_puts(b, "...");
    }
    free(text);
}

void jsonschema_buf_truncate(struct jsbuf *b, size_t len)
{
    if (b->p && len <= b->len) {
        b->len = len;
        b->p[len] = '\0';
    }
}

const char *jsonschema_buf_str(const struct jsbuf *b)
{
    return b->p ? b->p : "";
}

void jsonschema_buf_put_path(struct jsbuf *b, const struct jspath *at)
{
    if (!at)
        return;
    jsonschema_buf_put_path(b, at->up);
    if (at->key)
        jsonschema_buf_put_token(b, at->key, at->keylen);
    else
        jsonschema_buf_printf(b, "/%zu", at->index);
}

int jsonschema_hex_digit(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}
