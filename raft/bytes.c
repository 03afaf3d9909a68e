#include "raft/bytes.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

uint8_t *bytes_put_le32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
    return p + 4;
}

uint8_t *bytes_put_le64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
    return p + 8;
}

uint8_t *bytes_put(uint8_t *p, const void *data, size_t len)
{
    if (len > 0) {
        memcpy(p, data, len);
    }
    return p + len;
}

uint32_t bytes_get_le32(const uint8_t *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--) {
        v = (v << 8) | p[i];
    }
    return v;
}

uint64_t bytes_get_le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) {
        v = (v << 8) | p[i];
    }
    return v;
}

char *bytes_dup(const void *src, size_t len)
{
    char *p = malloc(len + 1);
    if (p != NULL) {
        bytes_put((uint8_t *)p, src, len);
        p[len] = '\0';
    }
    return p;
}

void bytes_errmsg(char *errmsg, size_t errlen, const char *fmt, ...)
{
    if (errmsg == NULL || errlen == 0) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(errmsg, errlen, fmt, ap);
    va_end(ap);
}

void bytes_sink_put(struct bytes_sink *s, const void *data, size_t len)
{
    if (len == 0) {
        return;
    }
    if (s->buf != NULL) {
        memcpy(s->buf + s->off, data, len);
    } else if (s->sha != NULL) {
        crypto_hash_sha256_update(s->sha, data, len);
    }
    s->off += len;
}

void bytes_sink_u8(struct bytes_sink *s, uint8_t v)
{
    bytes_sink_put(s, &v, 1);
}

void bytes_sink_le32(struct bytes_sink *s, uint32_t v)
{
    uint8_t b[4];
    bytes_put_le32(b, v);
    bytes_sink_put(s, b, sizeof(b));
}

void bytes_sink_le64(struct bytes_sink *s, uint64_t v)
{
    uint8_t b[8];
    bytes_put_le64(b, v);
    bytes_sink_put(s, b, sizeof(b));
}

void bytes_sink_be32(struct bytes_sink *s, uint32_t v)
{
    uint8_t b[4];
    for (int i = 0; i < 4; i++) {
        b[i] = (uint8_t)(v >> (24 - 8 * i));
    }
    bytes_sink_put(s, b, sizeof(b));
}

void bytes_sink_be64(struct bytes_sink *s, uint64_t v)
{
    uint8_t b[8];
    for (int i = 0; i < 8; i++) {
        b[i] = (uint8_t)(v >> (56 - 8 * i));
    }
    bytes_sink_put(s, b, sizeof(b));
}
