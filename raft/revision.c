#include "raft/revision.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

static const uint8_t canonical_magic[4] = {'C', 'R', 'V', '1'};

const char *revision_op_name(enum revision_op op)
{
    switch (op) {
    case REVISION_PUT:
        return "put";
    case REVISION_DELETE:
        return "delete";
    case REVISION_ROLLBACK:
        return "rollback";
    }
    return "unknown";
}

/*
 * The canonical bytes are produced field by field into a sink that either appends to a
 * buffer or feeds SHA-256, so that the bytes that are hashed and the bytes that
 * revision_canonical_bytes() returns come from one piece of code and cannot drift apart.
 */
struct sink {
    uint8_t *buf; /* NULL: hashing */
    size_t off;
    crypto_hash_sha256_state *sha;
};

static void emit(struct sink *s, const void *data, size_t len)
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

static void emit_u8(struct sink *s, uint8_t v)
{
    emit(s, &v, 1);
}

static void emit_be64(struct sink *s, uint64_t v)
{
    uint8_t b[8];
    for (int i = 0; i < 8; i++) {
        b[i] = (uint8_t)(v >> (56 - 8 * i));
    }
    emit(s, b, 8);
}

static void emit_str(struct sink *s, const void *data, size_t len)
{
    /* Every field is far below 4 GiB (the codec bounds content to about 1 MiB). */
    uint32_t n = (uint32_t)len;
    uint8_t b[4] = {(uint8_t)(n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8), (uint8_t)n};
    emit(s, b, 4);
    emit(s, data, len);
}

static void emit_cstr(struct sink *s, const char *str)
{
    emit_str(s, str, str != NULL ? strlen(str) : 0);
}

static void write_canonical(struct sink *s, const struct revision *r)
{
    emit(s, canonical_magic, sizeof(canonical_magic));
    emit_be64(s, r->revision);
    emit_cstr(s, r->project);
    emit_cstr(s, r->key);
    emit_be64(s, r->version);
    emit_cstr(s, revision_op_name(r->op));
    emit_u8(s, r->content != NULL);
    if (r->content != NULL) {
        emit_str(s, r->content, r->content_len);
    }
    emit_u8(s, r->source_version != 0);
    if (r->source_version != 0) {
        emit_be64(s, r->source_version);
    }
    /* schema_id and schema_hash are separate nullable columns; each gets its own presence
     * byte so the layout follows the row even though the state machine sets both or none. */
    emit_u8(s, r->has_schema != 0);
    if (r->has_schema) {
        emit(s, r->schema_id, sizeof(r->schema_id));
    }
    emit_u8(s, r->has_schema != 0);
    if (r->has_schema) {
        emit(s, r->schema_hash, sizeof(r->schema_hash));
    }
    emit_cstr(s, r->actor);
    emit_u8(s, r->request_id != NULL);
    if (r->request_id != NULL) {
        emit_cstr(s, r->request_id);
    }
    emit_be64(s, (uint64_t)r->created_at);
    emit_be64(s, r->raft_index);
    emit_be64(s, r->raft_term);
    emit(s, r->prev_hash, sizeof(r->prev_hash));
}

size_t revision_canonical_size(const struct revision *r)
{
    struct sink s = {.buf = NULL, .off = 0, .sha = NULL};
    write_canonical(&s, r);
    return s.off;
}

int revision_canonical_bytes(const struct revision *r, uint8_t **buf, size_t *len, char *errmsg,
                             size_t errlen)
{
    size_t n = revision_canonical_size(r);
    *buf = malloc(n);
    *len = 0;
    if (*buf == NULL) {
        snprintf(errmsg, errlen, "revision %llu: out of memory for %zu canonical bytes",
                 (unsigned long long)r->revision, n);
        return -1;
    }
    struct sink s = {.buf = *buf, .off = 0, .sha = NULL};
    write_canonical(&s, r);
    *len = n;
    return 0;
}

void revision_compute_hash(const struct revision *r, uint8_t out[REVISION_HASH_SIZE])
{
    crypto_hash_sha256_state sha;
    crypto_hash_sha256_init(&sha);
    crypto_hash_sha256_update(&sha, r->prev_hash, sizeof(r->prev_hash));
    struct sink s = {.buf = NULL, .off = 0, .sha = &sha};
    write_canonical(&s, r);
    crypto_hash_sha256_final(&sha, out);
}

static char *dup_bytes(const void *src, size_t len)
{
    char *p = malloc(len + 1);
    if (p != NULL) {
        if (len > 0) {
            memcpy(p, src, len);
        }
        p[len] = '\0';
    }
    return p;
}

int revision_copy(struct revision *dst, const struct revision *src, char *errmsg, size_t errlen)
{
    *dst = *src;
    dst->project = dst->key = dst->actor = dst->request_id = NULL;
    dst->content = NULL;
    if ((dst->project = dup_bytes(src->project, strlen(src->project))) == NULL ||
        (dst->key = dup_bytes(src->key, strlen(src->key))) == NULL ||
        (dst->actor = dup_bytes(src->actor, strlen(src->actor))) == NULL) {
        goto err;
    }
    if (src->request_id != NULL &&
        (dst->request_id = dup_bytes(src->request_id, strlen(src->request_id))) == NULL) {
        goto err;
    }
    if (src->content != NULL &&
        (dst->content = (uint8_t *)dup_bytes(src->content, src->content_len)) == NULL) {
        goto err;
    }
    return 0;

err:
    revision_clear(dst);
    snprintf(errmsg, errlen, "revision %llu: out of memory copying it",
             (unsigned long long)src->revision);
    return -1;
}

void revision_clear(struct revision *r)
{
    free(r->project);
    free(r->key);
    free(r->actor);
    free(r->request_id);
    free(r->content);
    memset(r, 0, sizeof(*r));
}
