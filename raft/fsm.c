#include "raft/fsm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "raft/bytes.h"
#include "raft/fsm_internal.h"

int fsm_new(struct fsm **out, const uint8_t *hash_key, char *errmsg, size_t errlen)
{
    *out = NULL;
    if (sodium_init() < 0) {
        bytes_errmsg(errmsg, errlen, "state machine: libsodium failed to initialise");
        return FSM_EINVAL;
    }
    struct fsm *f = calloc(1, sizeof(*f));
    if (f == NULL) {
        goto err;
    }
    f->req_slots = calloc(REQ_SLOTS, sizeof(f->req_slots[0]));
    if (f->req_slots == NULL) {
        goto err_after_alloc;
    }
    if (hash_key != NULL) {
        memcpy(f->hash_key, hash_key, sizeof(f->hash_key));
    }
    f->gen = 1;
    f->max_configs = FSM_MAX_CONFIGS;
    *out = f;
    return 0;

err_after_alloc:
    free(f);
err:
    bytes_errmsg(errmsg, errlen, "state machine: out of memory");
    return FSM_ENOMEM;
}

void fsm_free(struct fsm *f)
{
    if (f != NULL) {
        /* Configs a live view may read go to the view (fsm_store_config_drop()), which
         * outlives F and no longer points back to it. */
        fsm_store_state_release(f);
        if (f->view != NULL) {
            f->view->owner = NULL;
        }
        free(f);
    }
}

/* ---- apply ---- */

void fsm_request_fingerprint(const struct fsm_ask *a, uint8_t out[32])
{
    /* Every variable-length part is preceded by its length and the schema by its kind, so
     * different requests cannot feed the same bytes; the tag keeps these fingerprints apart
     * from the legacy rule's. */
    static const char tag[] = "conclave request v2";
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, 32);
    uint8_t fixed[sizeof(tag) + 1 + 8 + 8 + 1 + 16 + 4 + 4 + 4];
    memset(fixed, 0, sizeof(fixed));
    uint8_t *p = bytes_put(fixed, tag, sizeof(tag));
    *p++ = (uint8_t)a->op;
    p = bytes_put_le64(p, a->expected_version);
    p = bytes_put_le64(p, a->source_version);
    *p++ = (uint8_t)a->schema;
    if (a->schema == FSM_SCHEMA_ID) {
        memcpy(p, a->schema_id, 16);
    }
    p += 16;
    p = bytes_put_le32(p, (uint32_t)a->key_len);
    p = bytes_put_le32(p, (uint32_t)a->actor_len);
    p = bytes_put_le32(p, (uint32_t)a->content_len);
    crypto_generichash_update(&st, fixed, (size_t)(p - fixed));
    crypto_generichash_update(&st, (const uint8_t *)a->key, a->key_len);
    crypto_generichash_update(&st, (const uint8_t *)a->actor, a->actor_len);
    if (a->content_len > 0) {
        crypto_generichash_update(&st, a->content, a->content_len);
    }
    crypto_generichash_final(&st, out, 32);
}

void fsm_request_fingerprint_legacy(const struct codec_entry *e, uint8_t out[32])
{
    /* Every variable-length part is preceded by its length, so different requests cannot
     * feed the same bytes. */
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, 32);
    uint8_t fixed[1 + 8 + 8 + 1 + 16 + 32 + 4 + 4 + 4];
    memset(fixed, 0, sizeof(fixed));
    uint8_t *p = fixed;
    *p++ = (uint8_t)e->op;
    p = bytes_put_le64(p, e->expected_version);
    p = bytes_put_le64(p, e->source_version);
    *p++ = (uint8_t)(e->has_schema != 0);
    if (e->has_schema) {
        memcpy(p, e->schema_id, 16);
        memcpy(p + 16, e->schema_hash, 32);
    }
    p += 48;
    size_t lens[3] = {e->key_len, e->actor_len, e->content_len};
    for (int k = 0; k < 3; k++) {
        p = bytes_put_le32(p, (uint32_t)lens[k]);
    }
    crypto_generichash_update(&st, fixed, (size_t)(p - fixed));
    crypto_generichash_update(&st, (const uint8_t *)e->key, e->key_len);
    crypto_generichash_update(&st, (const uint8_t *)e->actor, e->actor_len);
    if (e->content_len > 0) {
        crypto_generichash_update(&st, e->content, e->content_len);
    }
    crypto_generichash_final(&st, out, 32);
}

void fsm_set_max_configs(struct fsm *f, size_t max)
{
    f->max_configs = max < 1 ? 1 : max > FSM_MAX_CONFIGS ? FSM_MAX_CONFIGS : max;
}

static int full(struct fsm_result *out, enum fsm_limit kind, const char *what,
                unsigned long long limit)
{
    out->status = FSM_FULL;
    out->limit = kind;
    snprintf(out->message, sizeof(out->message), "state machine full: %s (limit %llu)", what,
             limit);
    return 0;
}

/* Applies a change whose CAS check passed: checks the limits, then allocates everything it
 * needs, and only then changes the state, so that running out of memory changes nothing. */
static int commit_change(struct fsm *f, uint64_t index, const struct codec_entry *e,
                         struct project *p, struct fsm_config *c, struct fsm_result *out)
{
    size_t new_len = e->op == CODEC_OP_DELETE ? 0 : e->content_len;
    size_t old_len = c != NULL && !c->deleted ? c->content_len : 0;
    if (c == NULL && f->nconfigs >= f->max_configs) {
        return full(out, FSM_LIMIT_CONFIGS, "configs", f->max_configs);
    }
    if (f->content_bytes - old_len + new_len > FSM_MAX_CONTENT_BYTES) {
        return full(out, FSM_LIMIT_CONTENT_BYTES, "content bytes",
                    (unsigned long long)FSM_MAX_CONTENT_BYTES);
    }
    if (f->pending_count >= FSM_MAX_PENDING) {
        return full(out, FSM_LIMIT_PENDING, "revisions waiting for PostgreSQL", FSM_MAX_PENDING);
    }
    if (f->pending_bytes + new_len > FSM_MAX_PENDING_BYTES) {
        return full(out, FSM_LIMIT_PENDING, "content bytes waiting for PostgreSQL",
                    (unsigned long long)FSM_MAX_PENDING_BYTES);
    }
    if (f->revision >= CODEC_MAX_INT64) {
        return full(out, FSM_LIMIT_REVISIONS, "revision numbers",
                    (unsigned long long)CODEC_MAX_INT64);
    }

    /* Stage 1: allocate. Nothing observable changes here. A change never edits a config
     * object: it builds the new one (key, content and actor in the same allocation) and puts
     * it in the old one's place, so a snapshot view that may read the old one keeps it
     * intact (fsm.h, "Copy-on-write snapshot views"). */
    struct project *np = NULL;
    struct fsm_config *nc = NULL;
    struct revision rev;
    memset(&rev, 0, sizeof(rev));
    if (p == NULL) {
        if ((np = fsm_store_project_alloc(e->project, e->project_len)) == NULL ||
            fsm_store_projects_reserve(f) != 0) {
            goto err;
        }
    }
    if ((nc = fsm_store_config_new(e->key, e->key_len, new_len > 0 ? e->content : NULL, new_len,
                                   e->actor, e->actor_len)) == NULL ||
        fsm_store_configs_prepare(p != NULL ? p : np, e->key, e->key_len) != 0) {
        goto err;
    }
    if ((rev.project = bytes_dup(e->project, e->project_len)) == NULL ||
        (rev.key = bytes_dup(e->key, e->key_len)) == NULL ||
        (rev.actor = bytes_dup(e->actor, e->actor_len)) == NULL) {
        goto err;
    }
    if (e->request_id_len > 0 &&
        (rev.request_id = bytes_dup(e->request_id, e->request_id_len)) == NULL) {
        goto err;
    }
    if (new_len > 0 && (rev.content = (uint8_t *)bytes_dup(e->content, new_len)) == NULL) {
        goto err;
    }
    if (fsm_store_pending_reserve(f) != 0) {
        goto err;
    }

    /* Stage 2: commit. Nothing below can fail. */
    if (np != NULL) {
        fsm_store_projects_insert(f, np);
        p = np;
    }
    nc->project = p->id;
    nc->gen = f->gen;
    if (c == NULL) {
        fsm_store_configs_insert(p, nc);
        f->nconfigs++;
        f->key_bytes += e->key_len;
    } else {
        fsm_store_configs_replace(p, c, nc);
        fsm_store_config_drop(f, c);
    }
    c = nc;
    uint64_t version = e->expected_version + 1;
    f->revision++;
    rev.revision = f->revision;
    rev.version = version;
    rev.op = e->op == CODEC_OP_PUT      ? REVISION_PUT
             : e->op == CODEC_OP_DELETE ? REVISION_DELETE
                                        : REVISION_ROLLBACK;
    rev.content_len = new_len;
    rev.source_version = e->source_version;
    rev.has_schema = e->has_schema;
    memcpy(rev.schema_id, e->schema_id, sizeof(rev.schema_id));
    memcpy(rev.schema_hash, e->schema_hash, sizeof(rev.schema_hash));
    if (!rev.has_schema) {
        memset(rev.schema_id, 0, sizeof(rev.schema_id));
        memset(rev.schema_hash, 0, sizeof(rev.schema_hash));
    }
    rev.created_at = e->timestamp_us;
    rev.raft_index = index;
    rev.raft_term = e->term;
    memcpy(rev.prev_hash, p->head, sizeof(rev.prev_hash));
    revision_compute_hash(&rev, rev.hash);
    memcpy(p->head, rev.hash, sizeof(p->head));

    f->content_bytes = f->content_bytes - old_len + new_len;
    c->deleted = e->op == CODEC_OP_DELETE;
    c->version = version;
    c->has_schema = rev.has_schema;
    memcpy(c->schema_id, rev.schema_id, sizeof(c->schema_id));
    memcpy(c->schema_hash, rev.schema_hash, sizeof(c->schema_hash));
    c->last_revision = rev.revision;
    c->raft_index = index;
    c->updated_at = e->timestamp_us;
    fsm_store_pending_push(f, &rev);

    out->status = FSM_OK;
    out->version = version;
    out->revision = rev.revision;
    return 0;

err:
    revision_clear(&rev);
    fsm_store_config_free(nc);
    fsm_store_project_free(f, np);
    return FSM_ENOMEM;
}

static int apply_config(struct fsm *f, uint64_t index, const struct codec_entry *e,
                        struct fsm_result *out)
{
    int has_rid = e->request_id_len > 0;
    /* A version-2 entry carries what the client asked; a version-1 entry is fingerprinted
     * by the legacy rule, as the build that wrote it did. */
    uint8_t rule = e->format >= 2 ? FSM_FP_CLIENT : FSM_FP_LEGACY;
    uint8_t fp[32];
    uint64_t rhash = 0;
    if (has_rid) {
        if (rule == FSM_FP_CLIENT) {
            memcpy(fp, e->fingerprint, sizeof(fp));
        } else {
            fsm_request_fingerprint_legacy(e, fp);
        }
        rhash =
            fsm_store_request_hash(f, e->project, e->project_len, e->request_id, e->request_id_len);
        long s = fsm_store_request_slot(f, rhash, e->project, e->project_len, e->request_id,
                                        e->request_id_len);
        if (s >= 0) {
            const struct fsm_request *first = &f->requests[f->req_slots[s] - 1].outcome;
            out->status = FSM_DUPLICATE;
            out->first_status = first->status;
            out->version = first->version;
            out->revision = first->revision;
            out->first_index = first->raft_index;
            if (first->rule == rule) {
                out->mismatch = memcmp(fp, first->fingerprint, sizeof(fp)) != 0;
            } else {
                /* An id recorded from a version-1 entry (before an upgrade) is compared by
                 * the rule it was recorded with. */
                uint8_t legacy[32];
                fsm_request_fingerprint_legacy(e, legacy);
                out->mismatch = first->rule != FSM_FP_LEGACY ||
                                memcmp(legacy, first->fingerprint, sizeof(legacy)) != 0;
            }
            return 0;
        }
        if (fsm_store_request_reserve(f) != 0) {
            return FSM_ENOMEM;
        }
    }
    struct project *p = fsm_store_project_find(f, e->project, e->project_len);
    struct fsm_config *c = p != NULL ? fsm_store_config_find(p, e->key, e->key_len) : NULL;
    uint64_t current = c != NULL ? c->version : 0;
    if (e->op != CODEC_OP_PUT && (c == NULL || c->deleted)) {
        /* Checked before the version: deleting or rolling back nothing is "not found"
         * whatever version the client expected. */
        out->status = FSM_NOT_FOUND;
        out->version = current;
    } else if (current != e->expected_version) {
        out->status = FSM_CONFLICT;
        out->version = current;
    } else {
        int rc = commit_change(f, index, e, p, c, out);
        if (rc != 0) {
            return rc;
        }
        if (out->status == FSM_FULL) {
            return 0;
        }
    }
    if (has_rid) {
        struct fsm_request rec;
        memset(&rec, 0, sizeof(rec));
        rec.status = out->status;
        rec.version = out->version;
        rec.revision = out->revision;
        rec.raft_index = index;
        rec.rule = rule;
        memcpy(rec.fingerprint, fp, sizeof(fp));
        fsm_store_request_insert(f, rhash, e->project, e->project_len, e->request_id,
                                 e->request_id_len, &rec);
    }
    return 0;
}

static int apply_materialized(struct fsm *f, uint64_t index, const struct codec_entry *e,
                              struct fsm_result *out)
{
    uint64_t n = e->materialized_index;
    /* The leader materializes revisions it has applied and only then proposes this entry,
     * so N is always below the entry's own index. */
    if (n >= index) {
        out->status = FSM_INVALID;
        snprintf(out->message, sizeof(out->message),
                 "entry: materialized index %llu is not below the entry's own index %llu",
                 (unsigned long long)n, (unsigned long long)index);
        return 0;
    }
    while (f->pending_count > 0 && fsm_store_pending_at(f, 0)->raft_index <= n) {
        fsm_store_pending_pop(f);
        out->trimmed++;
    }
    /* A late entry from an old leader may name a lower N; it trims nothing. */
    if (n > f->materialized) {
        f->materialized = n;
    }
    out->status = FSM_OK;
    return 0;
}

int fsm_apply(struct fsm *f, uint64_t index, const uint8_t *buf, size_t len, struct fsm_result *out)
{
    memset(out, 0, sizeof(*out));
    /* Raft hands entries over in strictly increasing index order; anything else is a bug in
     * the glue, and the state cannot move its last applied index backwards. */
    if (index <= f->last_applied || index > CODEC_MAX_INT64) {
        out->status = FSM_INVALID;
        snprintf(out->message, sizeof(out->message),
                 "raft index %llu is not above the last applied index %llu or out of range",
                 (unsigned long long)index, (unsigned long long)f->last_applied);
        return 0;
    }
    struct codec_entry e;
    if (codec_decode(buf, len, &e, out->message, sizeof(out->message)) != 0) {
        out->status = FSM_INVALID;
        f->last_applied = index;
        return 0;
    }
    out->op = e.op;
    int rc = e.op == CODEC_OP_MATERIALIZED ? apply_materialized(f, index, &e, out)
                                           : apply_config(f, index, &e, out);
    if (rc == 0) {
        f->last_applied = index;
    }
    return rc;
}

/* ---- accessors ---- */

const struct fsm_config *fsm_get(const struct fsm *f, const char *project, size_t project_len,
                                 const char *key, size_t key_len)
{
    const struct project *p = fsm_store_project_find(f, project, project_len);
    return p != NULL ? fsm_store_config_find(p, key, key_len) : NULL;
}

size_t fsm_list(const struct fsm *f, const char *project, size_t project_len, const char *prefix,
                size_t prefix_len, const char *after, size_t after_len,
                int (*visit)(const struct fsm_config *config, void *arg), void *arg)
{
    const struct project *p = fsm_store_project_find(f, project, project_len);
    if (p == NULL) {
        return 0;
    }
    struct cfg_pos i = fsm_store_config_lower(p, prefix, prefix_len);
    if (after_len > 0) {
        struct cfg_pos j = fsm_store_config_lower(p, after, after_len);
        const struct fsm_config *at = fsm_store_config_at(p, j);
        if (at != NULL && fsm_store_cmp_bytes(at->key, at->key_len, after, after_len) == 0) {
            j = fsm_store_config_next(p, j);
        }
        if (j.chunk > i.chunk || (j.chunk == i.chunk && j.idx > i.idx)) {
            i = j;
        }
    }
    size_t seen = 0;
    for (const struct fsm_config *c; (c = fsm_store_config_at(p, i)) != NULL;
         i = fsm_store_config_next(p, i)) {
        if (prefix_len > 0 && (c->key_len < prefix_len || memcmp(c->key, prefix, prefix_len))) {
            break;
        }
        seen++;
        if (visit(c, arg) != 0) {
            break;
        }
    }
    return seen;
}

int fsm_request_may_have_forgotten(const struct fsm *f, const char *project, size_t project_len)
{
    /* Ids leave the table only to make room for an insert, so its total never falls: below
     * the capacity, no insert ever forgot another project's id. A project forgets its own only
     * at its bound and is back at the bound after the insert that forgot, so below it the
     * project never forgot one (unless the table was full, the case above). */
    return f->req_legacy > 0 || f->req_count >= FSM_REQUEST_CAPACITY ||
           fsm_store_request_project_count(f, project, project_len) >= FSM_PROJECT_REQUESTS;
}

const struct fsm_request *fsm_request_find(const struct fsm *f, const char *project,
                                           size_t project_len, const char *request_id,
                                           size_t request_id_len)
{
    if (project_len > CODEC_MAX_PROJECT || request_id_len > CODEC_MAX_REQUEST_ID ||
        request_id_len == 0 || f->req_count == 0) {
        return NULL;
    }
    uint64_t h = fsm_store_request_hash(f, project, project_len, request_id, request_id_len);
    long s = fsm_store_request_slot(f, h, project, project_len, request_id, request_id_len);
    return s >= 0 ? &f->requests[f->req_slots[s] - 1].outcome : NULL;
}

size_t fsm_request_count(const struct fsm *f, const char *project, size_t project_len)
{
    return fsm_store_request_project_count(f, project, project_len);
}

uint64_t fsm_last_applied(const struct fsm *f)
{
    return f->last_applied;
}

uint64_t fsm_revision(const struct fsm *f)
{
    return f->revision;
}

uint64_t fsm_materialized_index(const struct fsm *f)
{
    return f->materialized;
}

size_t fsm_config_count(const struct fsm *f)
{
    return f->nconfigs;
}

uint64_t fsm_live_bytes(const struct fsm *f)
{
    return f->key_bytes + f->content_bytes;
}

uint64_t fsm_config_moves(const struct fsm *f, const char *project, size_t project_len)
{
    const struct project *p = fsm_store_project_find(f, project, project_len);
    return p != NULL ? p->moves : 0;
}

void fsm_chain_head(const struct fsm *f, const char *project, size_t project_len,
                    uint8_t out[REVISION_HASH_SIZE])
{
    const struct project *p = fsm_store_project_find(f, project, project_len);
    if (p != NULL) {
        memcpy(out, p->head, REVISION_HASH_SIZE);
    } else {
        memset(out, 0, REVISION_HASH_SIZE);
    }
}

size_t fsm_pending_count(const struct fsm *f)
{
    return f->pending_count;
}

size_t fsm_pending_from(const struct fsm *f, uint64_t from_index, const struct revision **out,
                        size_t max)
{
    /* The queue is in raft order, so raft_index is strictly increasing along it. */
    size_t lo = 0;
    size_t hi = f->pending_count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (fsm_store_pending_at(f, mid)->raft_index < from_index) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    size_t n = 0;
    for (size_t i = lo; i < f->pending_count && n < max; i++) {
        out[n++] = fsm_store_pending_at(f, i);
    }
    return n;
}
