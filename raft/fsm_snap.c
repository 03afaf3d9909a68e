/*
 * The snapshot and the state hash: one serialisation of the whole state, written to a buffer,
 * fed to SHA-256, or only measured.
 */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "raft/fsm_internal.h"

/* ---- serialisation (snapshot body and state hash) ---- */

/* Writes to a buffer, feeds SHA-256, or (neither) only counts, so that the snapshot, its
 * size and the state hash all come from the one function write_body(). */
struct sink {
    uint8_t *buf;
    size_t off;
    crypto_hash_sha256_state *sha;
};

static void put(struct sink *s, const void *data, size_t len)
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

static void put_u8(struct sink *s, unsigned v)
{
    uint8_t b = (uint8_t)v;
    put(s, &b, 1);
}

static void put_u32(struct sink *s, uint32_t v)
{
    uint8_t b[4];
    for (int i = 0; i < 4; i++) {
        b[i] = (uint8_t)(v >> (8 * i));
    }
    put(s, b, 4);
}

static void put_u64(struct sink *s, uint64_t v)
{
    uint8_t b[8];
    for (int i = 0; i < 8; i++) {
        b[i] = (uint8_t)(v >> (8 * i));
    }
    put(s, b, 8);
}

/* Every string is bounded by CODEC_MAX_CONTENT, far below 4 GiB. */
static void put_str(struct sink *s, const void *data, size_t len)
{
    put_u32(s, (uint32_t)len);
    put(s, data, len);
}

static void put_schema(struct sink *s, int has_schema, const uint8_t id[16], const uint8_t hash[32])
{
    put_u8(s, has_schema != 0);
    if (has_schema) {
        put(s, id, 16);
        put(s, hash, 32);
    }
}

static void write_body(struct sink *s, const struct fsm *f)
{
    put_u64(s, f->last_applied);
    put_u64(s, f->revision);
    put_u64(s, f->materialized);
    put_u64(s, f->nprojects);
    for (size_t i = 0; i < f->nprojects; i++) {
        const struct project *p = f->projects[i];
        put_str(s, p->id, p->id_len);
        put(s, p->head, sizeof(p->head));
        put_u64(s, p->count);
        for (size_t k = 0; k < p->count; k++) {
            const struct fsm_config *c = p->configs[k];
            put_str(s, c->key, c->key_len);
            put_u64(s, c->version);
            put_u8(s, c->deleted != 0);
            put_schema(s, c->has_schema, c->schema_id, c->schema_hash);
            if (!c->deleted) {
                put_str(s, c->content, c->content_len);
            }
            put_u64(s, c->last_revision);
            put_u64(s, c->raft_index);
            put_str(s, c->updated_by, strlen(c->updated_by));
            put_u64(s, (uint64_t)c->updated_at);
        }
    }
    put_u64(s, f->pending_count);
    for (size_t i = 0; i < f->pending_count; i++) {
        const struct revision *r = fsm_store_pending_at(f, i);
        put_u64(s, r->revision);
        put_str(s, r->project, strlen(r->project));
        put_str(s, r->key, strlen(r->key));
        put_u64(s, r->version);
        put_u8(s, (unsigned)r->op);
        put_u64(s, r->source_version);
        put_schema(s, r->has_schema, r->schema_id, r->schema_hash);
        if (r->op != REVISION_DELETE) {
            put_str(s, r->content, r->content_len);
        }
        put_str(s, r->actor, strlen(r->actor));
        /* A request id is never empty, so length 0 means none. */
        put_str(s, r->request_id, r->request_id != NULL ? strlen(r->request_id) : 0);
        put_u64(s, (uint64_t)r->created_at);
        put_u64(s, r->raft_index);
        put_u64(s, r->raft_term);
        put(s, r->prev_hash, sizeof(r->prev_hash));
        put(s, r->hash, sizeof(r->hash));
    }
    put_u64(s, f->req_count);
    for (size_t i = 0; i < f->req_count; i++) {
        const struct request *q = fsm_store_request_at(f, i);
        put_str(s, q->project, q->project_len);
        put_str(s, q->request_id, q->request_id_len);
        put_u8(s, (unsigned)q->outcome.status);
        put_u64(s, q->outcome.version);
        put_u64(s, q->outcome.revision);
        put_u64(s, q->outcome.raft_index);
        put(s, q->outcome.fingerprint, sizeof(q->outcome.fingerprint));
    }
}

void fsm_state_hash(const struct fsm *f, uint8_t out[32])
{
    crypto_hash_sha256_state sha;
    crypto_hash_sha256_init(&sha);
    struct sink s = {.buf = NULL, .off = 0, .sha = &sha};
    write_body(&s, f);
    crypto_hash_sha256_final(&sha, out);
}

static void le32_store(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

static void le64_store(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

int fsm_snapshot(const struct fsm *f, uint8_t **buf, size_t *len, char *errmsg, size_t errlen)
{
    *buf = NULL;
    *len = 0;
    struct sink count = {.buf = NULL, .off = 0, .sha = NULL};
    write_body(&count, f);
    size_t body = count.off;
    size_t total = (SNAP_HEADER_SIZE + body + 7) & ~(size_t)7;
    uint8_t *b = calloc(1, total); /* zeroed: padding, reserved and checksum fields */
    if (b == NULL) {
        fsm_store_fail(errmsg, errlen, "snapshot: out of memory for %zu bytes", total);
        return FSM_ENOMEM;
    }
    struct sink w = {.buf = b + SNAP_HEADER_SIZE, .off = 0, .sha = NULL};
    write_body(&w, f);
    memcpy(b, SNAP_MAGIC, 8);
    le32_store(b + 8, SNAP_VERSION);
    le64_store(b + 16, body);
    crypto_hash_sha256(b + 24, b + SNAP_HEADER_SIZE, body);
    le32_store(b + 12, codec_crc32c(0, b, SNAP_HEADER_SIZE + body));
    *buf = b;
    *len = total;
    return 0;
}
