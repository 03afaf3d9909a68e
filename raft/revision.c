#include "raft/revision.h"

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "raft/bytes.h"

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
 * Integers are big-endian (revision.h says why).
 */
static void emit_str(struct bytes_sink *s, const void *data, size_t len)
{
    /* Every field is far below 4 GiB (the codec bounds content to about 1 MiB). */
    bytes_sink_be32(s, (uint32_t)len);
    bytes_sink_put(s, data, len);
}

static void emit_cstr(struct bytes_sink *s, const char *str)
{
    emit_str(s, str, str != NULL ? strlen(str) : 0);
}

static void write_canonical(struct bytes_sink *s, const struct revision *r)
{
    bytes_sink_put(s, canonical_magic, sizeof(canonical_magic));
    bytes_sink_be64(s, r->revision);
    emit_cstr(s, r->project);
    emit_cstr(s, r->key);
    bytes_sink_be64(s, r->version);
    emit_cstr(s, revision_op_name(r->op));
    bytes_sink_u8(s, (uint8_t)(r->content != NULL));
    if (r->content != NULL) {
        emit_str(s, r->content, r->content_len);
    }
    bytes_sink_u8(s, (uint8_t)(r->source_version != 0));
    if (r->source_version != 0) {
        bytes_sink_be64(s, r->source_version);
    }
    /* schema_id and schema_hash are separate nullable columns; each gets its own presence
     * byte so the layout follows the row even though the state machine sets both or none. */
    bytes_sink_u8(s, (uint8_t)(r->has_schema != 0));
    if (r->has_schema) {
        bytes_sink_put(s, r->schema_id, sizeof(r->schema_id));
    }
    bytes_sink_u8(s, (uint8_t)(r->has_schema != 0));
    if (r->has_schema) {
        bytes_sink_put(s, r->schema_hash, sizeof(r->schema_hash));
    }
    emit_cstr(s, r->actor);
    bytes_sink_u8(s, (uint8_t)(r->request_id != NULL));
    if (r->request_id != NULL) {
        emit_cstr(s, r->request_id);
    }
    bytes_sink_be64(s, (uint64_t)r->created_at);
    bytes_sink_be64(s, r->raft_index);
    bytes_sink_be64(s, r->raft_term);
    bytes_sink_put(s, r->prev_hash, sizeof(r->prev_hash));
}

size_t revision_canonical_size(const struct revision *r)
{
    struct bytes_sink s = {.buf = NULL, .off = 0, .sha = NULL};
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
        bytes_errmsg(errmsg, errlen, "revision %llu: out of memory for %zu canonical bytes",
                     (unsigned long long)r->revision, n);
        return -1;
    }
    struct bytes_sink s = {.buf = *buf, .off = 0, .sha = NULL};
    write_canonical(&s, r);
    *len = n;
    return 0;
}

void revision_compute_hash(const struct revision *r, uint8_t out[REVISION_HASH_SIZE])
{
    crypto_hash_sha256_state sha;
    crypto_hash_sha256_init(&sha);
    crypto_hash_sha256_update(&sha, r->prev_hash, sizeof(r->prev_hash));
    struct bytes_sink s = {.buf = NULL, .off = 0, .sha = &sha};
    write_canonical(&s, r);
    crypto_hash_sha256_final(&sha, out);
}

int revision_copy(struct revision *dst, const struct revision *src, char *errmsg, size_t errlen)
{
    *dst = *src;
    dst->project = dst->key = dst->actor = dst->request_id = NULL;
    dst->content = NULL;
    if ((dst->project = bytes_dup(src->project, strlen(src->project))) == NULL ||
        (dst->key = bytes_dup(src->key, strlen(src->key))) == NULL ||
        (dst->actor = bytes_dup(src->actor, strlen(src->actor))) == NULL) {
        goto err;
    }
    if (src->request_id != NULL &&
        (dst->request_id = bytes_dup(src->request_id, strlen(src->request_id))) == NULL) {
        goto err;
    }
    if (src->content != NULL &&
        (dst->content = (uint8_t *)bytes_dup(src->content, src->content_len)) == NULL) {
        goto err;
    }
    return 0;

err:
    revision_clear(dst);
    bytes_errmsg(errmsg, errlen, "revision %llu: out of memory copying it",
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
