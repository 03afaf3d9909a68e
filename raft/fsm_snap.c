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

static void put_project(struct bytes_sink *s, const char *id, size_t id_len,
                        const uint8_t head[REVISION_HASH_SIZE], size_t count,
                        struct chunk *const *chunks, size_t nchunks)
{
    put_str(s, id, id_len);
    bytes_sink_put(s, head, REVISION_HASH_SIZE);
    bytes_sink_le64(s, count);
    for (size_t k = 0; k < nchunks; k++) {
        const struct chunk *ch = chunks[k];
        for (uint32_t j = 0; j < ch->n; j++) {
            put_config(s, ch->items[j]);
        }
    }
}

void fsm_snap_write_tail(struct bytes_sink *s, const struct fsm *f, unsigned version)
{
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

static void write_body(struct bytes_sink *s, const struct fsm *f, unsigned version)
{
    bytes_sink_le64(s, f->last_applied);
    bytes_sink_le64(s, f->revision);
    bytes_sink_le64(s, f->materialized);
    bytes_sink_le64(s, f->nprojects);
    for (size_t i = 0; i < f->nprojects; i++) {
        const struct project *p = f->projects[i];
        put_project(s, p->id, p->id_len, p->head, p->count, p->chunks, p->nchunks);
    }
    fsm_snap_write_tail(s, f, version);
}

/* The same bytes as write_body() of the state V froze, in format SNAP_VERSION. */
static void write_view_body(struct bytes_sink *s, const struct fsm_view *v)
{
    bytes_sink_le64(s, v->last_applied);
    bytes_sink_le64(s, v->revision);
    bytes_sink_le64(s, v->materialized);
    bytes_sink_le64(s, v->nprojects);
    for (size_t i = 0; i < v->nprojects; i++) {
        const struct view_project *p = &v->projects[i];
        put_project(s, p->id, p->id_len, p->head, p->count, p->chunks, p->nchunks);
    }
    bytes_sink_put(s, v->tail, v->tail_len);
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

/* Writes a snapshot (unsealed) whose body WRITE produces from ARG into a new buffer. */
static int snapshot_write(void (*write)(struct bytes_sink *s, const void *arg), const void *arg,
                          uint8_t **buf, size_t *len, char *errmsg, size_t errlen)
{
    *buf = NULL;
    *len = 0;
    struct bytes_sink count = {.buf = NULL, .off = 0, .sha = NULL};
    write(&count, arg);
    size_t body = count.off;
    size_t total = (SNAP_HEADER_SIZE + body + 7) & ~(size_t)7;
    uint8_t *b = calloc(1, total); /* zeroed: padding, reserved and checksum fields */
    if (b == NULL) {
        bytes_errmsg(errmsg, errlen, "snapshot: out of memory for %zu bytes", total);
        return FSM_ENOMEM;
    }
    struct bytes_sink w = {.buf = b + SNAP_HEADER_SIZE, .off = 0, .sha = NULL};
    write(&w, arg);
    memcpy(b, SNAP_MAGIC, 8);
    bytes_put_le32(b + 8, SNAP_VERSION);
    bytes_put_le64(b + 16, body);
    *buf = b;
    *len = total;
    return 0;
}

static void write_live(struct bytes_sink *s, const void *arg)
{
    write_body(s, arg, SNAP_VERSION);
}

static void write_view(struct bytes_sink *s, const void *arg)
{
    write_view_body(s, arg);
}

int fsm_snapshot_write(const struct fsm *f, uint8_t **buf, size_t *len, char *errmsg, size_t errlen)
{
    return snapshot_write(write_live, f, buf, len, errmsg, errlen);
}

int fsm_view_write(const struct fsm_view *v, uint8_t **buf, size_t *len, char *errmsg,
                   size_t errlen)
{
    return snapshot_write(write_view, v, buf, len, errmsg, errlen);
}

/* ---- views ---- */

static void view_free(struct fsm_view *v)
{
    for (size_t i = 0; i < v->nchunks; i++) {
        fsm_store_chunk_unref(v->chunks[i]);
    }
    while (v->retired != NULL) {
        struct fsm_config *c = v->retired;
        v->retired = c->retired_next;
        fsm_store_config_free(c);
    }
    free(v->chunks);
    free(v->projects);
    free(v->ids);
    free(v->tail);
    free(v);
}

int fsm_view_take(struct fsm *f, struct fsm_view **out, char *errmsg, size_t errlen)
{
    *out = NULL;
    if (f->view != NULL) {
        bytes_errmsg(errmsg, errlen, "snapshot view: one is already alive");
        return FSM_EBUSY;
    }
    size_t nchunks = 0;
    size_t ids_len = 0;
    for (size_t i = 0; i < f->nprojects; i++) {
        nchunks += f->projects[i]->nchunks;
        ids_len += f->projects[i]->id_len + 1;
    }
    struct bytes_sink count = {.buf = NULL, .off = 0, .sha = NULL};
    fsm_snap_write_tail(&count, f, SNAP_VERSION);
    struct fsm_view *v = calloc(1, sizeof(*v));
    if (v == NULL ||
        (nchunks > 0 && (v->chunks = malloc(nchunks * sizeof(v->chunks[0]))) == NULL) ||
        (f->nprojects > 0 &&
         (v->projects = calloc(f->nprojects, sizeof(v->projects[0]))) == NULL) ||
        (ids_len > 0 && (v->ids = malloc(ids_len)) == NULL) ||
        (v->tail = malloc(count.off)) == NULL) {
        goto err;
    }
    /* Nothing below can fail: the references taken are the view's once it is returned. */
    struct bytes_sink w = {.buf = v->tail, .off = 0, .sha = NULL};
    fsm_snap_write_tail(&w, f, SNAP_VERSION);
    v->tail_len = w.off;
    v->last_applied = f->last_applied;
    v->revision = f->revision;
    v->materialized = f->materialized;
    v->nprojects = f->nprojects;
    char *id = v->ids;
    for (size_t i = 0; i < f->nprojects; i++) {
        const struct project *p = f->projects[i];
        struct view_project *vp = &v->projects[i];
        memcpy(id, p->id, p->id_len + 1);
        vp->id = id;
        vp->id_len = p->id_len;
        id += p->id_len + 1;
        memcpy(vp->head, p->head, sizeof(vp->head));
        vp->count = p->count;
        vp->chunks = v->chunks + v->nchunks;
        vp->nchunks = p->nchunks;
        for (size_t k = 0; k < p->nchunks; k++) {
            p->chunks[k]->refs++;
            v->chunks[v->nchunks++] = p->chunks[k];
        }
    }
    /* Configs created from now on carry a later generation: the view never reads them. */
    v->gen = f->gen++;
    v->owner = f;
    f->view = v;
    *out = v;
    return 0;

err:
    if (v != NULL) {
        view_free(v);
    }
    bytes_errmsg(errmsg, errlen, "snapshot view: out of memory for %zu chunks", nchunks);
    return FSM_ENOMEM;
}

void fsm_view_release(struct fsm_view *v)
{
    if (v != NULL) {
        if (v->owner != NULL) {
            v->owner->view = NULL;
        }
        view_free(v);
    }
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
