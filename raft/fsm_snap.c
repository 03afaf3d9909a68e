/*
 * The snapshot and the state hash: one serialisation of the whole state, written to a buffer,
 * fed to SHA-256, or only measured.
 */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "raft/bytes.h"
#include "raft/fsm_internal.h"

/* ---- serialisation (snapshot body and state hash) ---- */

/* The snapshot, its size and the state hash all come from the one function write_body(),
 * run into a copying, a counting or a hashing sink. */

/* Every string is bounded by CODEC_MAX_CONTENT, far below 4 GiB. */
static void put_str(struct bytes_sink *s, const void *data, size_t len)
{
    bytes_sink_le32(s, (uint32_t)len);
    bytes_sink_put(s, data, len);
}

static void put_schema(struct bytes_sink *s, int has_schema, const uint8_t id[16],
                       const uint8_t hash[32])
{
    bytes_sink_u8(s, (uint8_t)(has_schema != 0));
    if (has_schema) {
        bytes_sink_put(s, id, 16);
        bytes_sink_put(s, hash, 32);
    }
}

static void put_config(struct bytes_sink *s, const struct fsm_config *c)
{
    put_str(s, c->key, c->key_len);
    bytes_sink_le64(s, c->version);
    bytes_sink_u8(s, (uint8_t)(c->deleted != 0));
    put_schema(s, c->has_schema, c->schema_id, c->schema_hash);
    if (!c->deleted) {
        put_str(s, c->content, c->content_len);
    }
    bytes_sink_le64(s, c->last_revision);
    bytes_sink_le64(s, c->raft_index);
    put_str(s, c->updated_by, strlen(c->updated_by));
    bytes_sink_le64(s, (uint64_t)c->updated_at);
}

static void write_body(struct bytes_sink *s, const struct fsm *f, unsigned version)
{
    bytes_sink_le64(s, f->last_applied);
    bytes_sink_le64(s, f->revision);
    bytes_sink_le64(s, f->materialized);
    bytes_sink_le64(s, f->nprojects);
    for (size_t i = 0; i < f->nprojects; i++) {
        const struct project *p = f->projects[i];
        put_str(s, p->id, p->id_len);
        bytes_sink_put(s, p->head, sizeof(p->head));
        bytes_sink_le64(s, p->count);
        for (size_t k = 0; k < p->nchunks; k++) {
            const struct chunk *ch = p->chunks[k];
            for (uint32_t j = 0; j < ch->n; j++) {
                put_config(s, ch->items[j]);
            }
        }
    }
    bytes_sink_le64(s, f->pending_count);
    for (size_t i = 0; i < f->pending_count; i++) {
        const struct revision *r = fsm_store_pending_at(f, i);
        bytes_sink_le64(s, r->revision);
        put_str(s, r->project, strlen(r->project));
        put_str(s, r->key, strlen(r->key));
        bytes_sink_le64(s, r->version);
        bytes_sink_u8(s, (uint8_t)r->op);
        bytes_sink_le64(s, r->source_version);
        put_schema(s, r->has_schema, r->schema_id, r->schema_hash);
        if (r->op != REVISION_DELETE) {
            put_str(s, r->content, r->content_len);
        }
        put_str(s, r->actor, strlen(r->actor));
        /* A request id is never empty, so length 0 means none. */
        put_str(s, r->request_id, r->request_id != NULL ? strlen(r->request_id) : 0);
        bytes_sink_le64(s, (uint64_t)r->created_at);
        bytes_sink_le64(s, r->raft_index);
        bytes_sink_le64(s, r->raft_term);
        bytes_sink_put(s, r->prev_hash, sizeof(r->prev_hash));
        bytes_sink_put(s, r->hash, sizeof(r->hash));
    }
    bytes_sink_le64(s, f->req_count);
    for (const struct request *q = fsm_store_request_first(f); q != NULL;
         q = fsm_store_request_next(f, q)) {
        put_str(s, q->project, q->project_len);
        put_str(s, q->request_id, q->request_id_len);
        bytes_sink_u8(s, (uint8_t)q->outcome.status);
        bytes_sink_le64(s, q->outcome.version);
        bytes_sink_le64(s, q->outcome.revision);
        bytes_sink_le64(s, q->outcome.raft_index);
        if (version >= 2) {
            bytes_sink_u8(s, q->outcome.rule);
        }
        bytes_sink_put(s, q->outcome.fingerprint, sizeof(q->outcome.fingerprint));
    }
}

void fsm_snap_state_hash_as(const struct fsm *f, unsigned version, uint8_t out[32])
{
    crypto_hash_sha256_state sha;
    crypto_hash_sha256_init(&sha);
    struct bytes_sink s = {.buf = NULL, .off = 0, .sha = &sha};
    write_body(&s, f, version);
    crypto_hash_sha256_final(&sha, out);
}

void fsm_state_hash(const struct fsm *f, uint8_t out[32])
{
    fsm_snap_state_hash_as(f, SNAP_VERSION, out);
}

int fsm_snapshot_write(const struct fsm *f, uint8_t **buf, size_t *len, char *errmsg, size_t errlen)
{
    *buf = NULL;
    *len = 0;
    struct bytes_sink count = {.buf = NULL, .off = 0, .sha = NULL};
    write_body(&count, f, SNAP_VERSION);
    size_t body = count.off;
    size_t total = (SNAP_HEADER_SIZE + body + 7) & ~(size_t)7;
    uint8_t *b = calloc(1, total); /* zeroed: padding, reserved and checksum fields */
    if (b == NULL) {
        bytes_errmsg(errmsg, errlen, "snapshot: out of memory for %zu bytes", total);
        return FSM_ENOMEM;
    }
    struct bytes_sink w = {.buf = b + SNAP_HEADER_SIZE, .off = 0, .sha = NULL};
    write_body(&w, f, SNAP_VERSION);
    memcpy(b, SNAP_MAGIC, 8);
    bytes_put_le32(b + 8, SNAP_VERSION);
    bytes_put_le64(b + 16, body);
    *buf = b;
    *len = total;
    return 0;
}

void fsm_snapshot_seal(uint8_t *buf, size_t len)
{
    (void)len;
    size_t body = (size_t)bytes_get_le64(buf + 16);
    crypto_hash_sha256(buf + 24, buf + SNAP_HEADER_SIZE, body);
    bytes_put_le32(buf + 12, codec_crc32c(0, buf, SNAP_HEADER_SIZE + body));
}

int fsm_snapshot(const struct fsm *f, uint8_t **buf, size_t *len, char *errmsg, size_t errlen)
{
    int rc = fsm_snapshot_write(f, buf, len, errmsg, errlen);
    if (rc == 0) {
        fsm_snapshot_seal(*buf, *len);
    }
    return rc;
}
