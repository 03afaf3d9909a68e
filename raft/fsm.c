#include "fsm.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#define SNAP_MAGIC       "CNCLSNAP"
#define SNAP_VERSION     1
#define SNAP_HEADER_SIZE 64

/* Open-addressing slots of the request-id table: a power of two at least twice the
 * capacity, so the load factor stays at or below 1/2 and every probe sequence meets an
 * empty slot. */
#define REQ_SLOTS (2u * FSM_REQUEST_CAPACITY)

/*
 * Data structures. Everything that is hashed or serialised is kept in a canonical order by
 * construction, so the state hash can never depend on insertion history:
 * - projects: an array sorted by id (bytewise), each with its configs in an array sorted by
 *   key (bytewise). Lookups are binary searches; an insert shifts pointers. Configs are never
 *   removed (tombstones stay), so there is no delete path to get wrong.
 * - pending: a ring of revisions in raft order (which is also raft_index order).
 * - requests: a ring in insertion (FIFO) order, the order that decides evictions and the
 *   order in which it is serialised, plus a linear-probing index over it keyed by SipHash of
 *   (project, request id). The index's layout depends on the hash key and is never
 *   serialised; only lookups use it.
 */
struct project {
    char *id; /* NUL-terminated */
    size_t id_len;
    uint8_t head[REVISION_HASH_SIZE]; /* hash of the latest revision; zeros = genesis */
    struct fsm_config **configs;      /* ascending by key; each owned */
    size_t count;
    size_t cap;
    /* Scratch for fsm_restore()'s cross-checks; meaningless otherwise. */
    uint64_t max_revision;
    int seen_pending;
    uint64_t last_pending_revision;
    uint8_t last_pending_hash[REVISION_HASH_SIZE];
};

struct request {
    uint64_t hash; /* SipHash of the key, kept to rehome entries on deletion */
    uint8_t project_len;
    uint8_t request_id_len;
    char project[CODEC_MAX_PROJECT + 1];
    char request_id[CODEC_MAX_REQUEST_ID + 1];
    struct fsm_request outcome;
};

struct fsm {
    /* Replicated state. */
    uint64_t last_applied;
    uint64_t revision;
    uint64_t materialized;
    struct project **projects; /* ascending by id; each owned */
    size_t nprojects;
    size_t projects_cap;
    size_t nconfigs;
    uint64_t content_bytes;   /* sum of live content lengths */
    struct revision *pending; /* ring; entries own their strings */
    size_t pending_head;
    size_t pending_count;
    size_t pending_cap;
    uint64_t pending_bytes;   /* sum of queued content lengths */
    struct request *requests; /* ring; head stays 0 until the table is full */
    size_t req_head;
    size_t req_count;
    size_t req_cap;
    /* Local only: the lookup index over requests and its key. */
    uint32_t *req_slots; /* REQ_SLOTS entries: ring position + 1, or 0 when empty */
    uint8_t hash_key[crypto_shorthash_KEYBYTES];
};

static void fail(char *errmsg, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void fail(char *errmsg, size_t errlen, const char *fmt, ...)
{
    if (errmsg == NULL || errlen == 0) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(errmsg, errlen, fmt, ap);
    va_end(ap);
}

static int cmp_bytes(const char *a, size_t alen, const char *b, size_t blen)
{
    size_t n = alen < blen ? alen : blen;
    int c = n > 0 ? memcmp(a, b, n) : 0;
    if (c != 0) {
        return c;
    }
    return (alen > blen) - (alen < blen);
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

/* ---- projects and configs ---- */

/* The position of the first project whose id is >= ID. */
static size_t project_lower(const struct fsm *f, const char *id, size_t len)
{
    size_t lo = 0;
    size_t hi = f->nprojects;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const struct project *p = f->projects[mid];
        if (cmp_bytes(p->id, p->id_len, id, len) < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo;
}

static struct project *project_find(const struct fsm *f, const char *id, size_t len)
{
    size_t i = project_lower(f, id, len);
    if (i < f->nprojects && cmp_bytes(f->projects[i]->id, f->projects[i]->id_len, id, len) == 0) {
        return f->projects[i];
    }
    return NULL;
}

/* The position of the first config of P whose key is >= KEY. */
static size_t config_lower(const struct project *p, const char *key, size_t len)
{
    size_t lo = 0;
    size_t hi = p->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const struct fsm_config *c = p->configs[mid];
        if (cmp_bytes(c->key, c->key_len, key, len) < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo;
}

static struct fsm_config *config_find(const struct project *p, const char *key, size_t len)
{
    size_t i = config_lower(p, key, len);
    if (i < p->count && cmp_bytes(p->configs[i]->key, p->configs[i]->key_len, key, len) == 0) {
        return p->configs[i];
    }
    return NULL;
}

static void config_free(struct fsm_config *c)
{
    if (c != NULL) {
        free(c->key);
        free(c->content);
        free(c->updated_by);
        free(c);
    }
}

static struct project *project_alloc(const char *id, size_t len)
{
    struct project *p = calloc(1, sizeof(*p));
    if (p == NULL) {
        return NULL;
    }
    p->id = dup_bytes(id, len);
    if (p->id == NULL) {
        free(p);
        return NULL;
    }
    p->id_len = len;
    return p;
}

static void project_free(struct project *p)
{
    if (p != NULL) {
        for (size_t i = 0; i < p->count; i++) {
            config_free(p->configs[i]);
        }
        free(p->configs);
        free(p->id);
        free(p);
    }
}

/* Makes room for one more pointer in *ARR (COUNT used of *CAP). Growing changes nothing
 * observable, so it may happen before the change that needs it is known to succeed. */
static int reserve_ptrs(void ***arr, size_t count, size_t *cap)
{
    if (count < *cap) {
        return 0;
    }
    size_t ncap = *cap > 0 ? *cap * 2 : 8;
    void **n = realloc(*arr, ncap * sizeof(*n));
    if (n == NULL) {
        return FSM_ENOMEM;
    }
    *arr = n;
    *cap = ncap;
    return 0;
}

static int projects_reserve(struct fsm *f)
{
    void **arr = (void **)f->projects;
    int rc = reserve_ptrs(&arr, f->nprojects, &f->projects_cap);
    f->projects = (struct project **)arr;
    return rc;
}

static int configs_reserve(struct project *p)
{
    void **arr = (void **)p->configs;
    int rc = reserve_ptrs(&arr, p->count, &p->cap);
    p->configs = (struct fsm_config **)arr;
    return rc;
}

/* Inserts P at its sorted position; room must have been reserved. */
static void projects_insert(struct fsm *f, struct project *p)
{
    size_t i = project_lower(f, p->id, p->id_len);
    memmove(&f->projects[i + 1], &f->projects[i], (f->nprojects - i) * sizeof(f->projects[0]));
    f->projects[i] = p;
    f->nprojects++;
}

static void configs_insert(struct project *p, struct fsm_config *c)
{
    size_t i = config_lower(p, c->key, c->key_len);
    memmove(&p->configs[i + 1], &p->configs[i], (p->count - i) * sizeof(p->configs[0]));
    p->configs[i] = c;
    p->count++;
}

/* ---- the pending queue ---- */

static struct revision *pending_at(const struct fsm *f, size_t i)
{
    return &f->pending[(f->pending_head + i) % f->pending_cap];
}

static int pending_reserve(struct fsm *f)
{
    if (f->pending_count < f->pending_cap) {
        return 0;
    }
    size_t ncap = f->pending_cap > 0 ? f->pending_cap * 2 : 64;
    struct revision *n = malloc(ncap * sizeof(*n));
    if (n == NULL) {
        return FSM_ENOMEM;
    }
    for (size_t i = 0; i < f->pending_count; i++) {
        n[i] = *pending_at(f, i);
    }
    free(f->pending);
    f->pending = n;
    f->pending_head = 0;
    f->pending_cap = ncap;
    return 0;
}

/* Moves R (its owned strings included) to the end of the queue; room must be reserved. */
static void pending_push(struct fsm *f, const struct revision *r)
{
    f->pending[(f->pending_head + f->pending_count) % f->pending_cap] = *r;
    f->pending_count++;
    f->pending_bytes += r->content_len;
}

static void pending_pop(struct fsm *f)
{
    struct revision *r = pending_at(f, 0);
    f->pending_bytes -= r->content_len;
    revision_clear(r);
    f->pending_head = (f->pending_head + 1) % f->pending_cap;
    f->pending_count--;
}

/* ---- the request-id table ---- */

static uint64_t request_hash(const struct fsm *f, const char *project, size_t project_len,
                             const char *request_id, size_t request_id_len)
{
    /* Project ids cannot contain NUL, so the separator makes the key unambiguous. */
    uint8_t key[CODEC_MAX_PROJECT + 1 + CODEC_MAX_REQUEST_ID];
    memcpy(key, project, project_len);
    key[project_len] = 0;
    memcpy(key + project_len + 1, request_id, request_id_len);
    uint8_t h[crypto_shorthash_BYTES];
    crypto_shorthash(h, key, project_len + 1 + request_id_len, f->hash_key);
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) {
        v = (v << 8) | h[i];
    }
    return v;
}

/* Returns the slot holding (PROJECT, REQUEST_ID), or -1. Lengths must be within the codec's
 * maximums. */
static long request_slot(const struct fsm *f, uint64_t h, const char *project, size_t project_len,
                         const char *request_id, size_t request_id_len)
{
    const size_t mask = REQ_SLOTS - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        uint32_t v = f->req_slots[i];
        if (v == 0) {
            return -1;
        }
        const struct request *r = &f->requests[v - 1];
        if (r->hash == h && r->project_len == project_len && r->request_id_len == request_id_len &&
            memcmp(r->project, project, project_len) == 0 &&
            memcmp(r->request_id, request_id, request_id_len) == 0) {
            return (long)i;
        }
    }
}

/* Empties slot I by backward shifting: each following entry of the cluster moves back into
 * the hole unless its home slot lies cyclically in (hole, its slot], where it must stay to
 * remain reachable. This keeps lookups correct without tombstone slots. */
static void request_slot_remove(struct fsm *f, size_t i)
{
    const size_t mask = REQ_SLOTS - 1;
    size_t j = i;
    for (;;) {
        j = (j + 1) & mask;
        uint32_t v = f->req_slots[j];
        if (v == 0) {
            break;
        }
        size_t home = f->requests[v - 1].hash & mask;
        int stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (!stays) {
            f->req_slots[i] = v;
            i = j;
        }
    }
    f->req_slots[i] = 0;
}

/* Makes room for one more request (the ring grows until it reaches the capacity, after which
 * inserts evict instead). */
static int request_reserve(struct fsm *f)
{
    if (f->req_count < f->req_cap || f->req_cap == FSM_REQUEST_CAPACITY) {
        return 0;
    }
    size_t ncap = f->req_cap > 0 ? f->req_cap * 2 : 64;
    if (ncap > FSM_REQUEST_CAPACITY) {
        ncap = FSM_REQUEST_CAPACITY;
    }
    struct request *n = realloc(f->requests, ncap * sizeof(*n));
    if (n == NULL) {
        return FSM_ENOMEM;
    }
    f->requests = n;
    f->req_cap = ncap;
    return 0;
}

/* Records a new key (not present; room reserved), evicting the oldest when full. */
static void request_insert(struct fsm *f, uint64_t h, const char *project, size_t project_len,
                           const char *request_id, size_t request_id_len,
                           const struct fsm_request *outcome)
{
    const size_t mask = REQ_SLOTS - 1;
    if (f->req_count == FSM_REQUEST_CAPACITY) {
        const struct request *old = &f->requests[f->req_head];
        long s = request_slot(f, old->hash, old->project, old->project_len, old->request_id,
                              old->request_id_len);
        request_slot_remove(f, (size_t)s);
        f->req_head = (f->req_head + 1) % FSM_REQUEST_CAPACITY;
        f->req_count--;
    }
    size_t pos = (f->req_head + f->req_count) % FSM_REQUEST_CAPACITY;
    struct request *r = &f->requests[pos];
    memset(r, 0, sizeof(*r));
    r->hash = h;
    r->project_len = (uint8_t)project_len;
    r->request_id_len = (uint8_t)request_id_len;
    memcpy(r->project, project, project_len);
    memcpy(r->request_id, request_id, request_id_len);
    r->outcome = *outcome;
    size_t i = h & mask;
    while (f->req_slots[i] != 0) {
        i = (i + 1) & mask;
    }
    f->req_slots[i] = (uint32_t)pos + 1;
    f->req_count++;
}

static const struct request *request_at(const struct fsm *f, size_t i)
{
    return &f->requests[(f->req_head + i) % FSM_REQUEST_CAPACITY];
}

/* ---- lifecycle ---- */

/* Frees everything F owns but the struct itself. */
static void state_release(struct fsm *f)
{
    for (size_t i = 0; i < f->nprojects; i++) {
        project_free(f->projects[i]);
    }
    free(f->projects);
    while (f->pending_count > 0) {
        pending_pop(f);
    }
    free(f->pending);
    free(f->requests);
    free(f->req_slots);
}

int fsm_new(struct fsm **out, const uint8_t *hash_key, char *errmsg, size_t errlen)
{
    *out = NULL;
    if (sodium_init() < 0) {
        fail(errmsg, errlen, "state machine: libsodium failed to initialise");
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
    *out = f;
    return 0;

err_after_alloc:
    free(f);
err:
    fail(errmsg, errlen, "state machine: out of memory");
    return FSM_ENOMEM;
}

void fsm_free(struct fsm *f)
{
    if (f != NULL) {
        state_release(f);
        free(f);
    }
}

/* ---- apply ---- */

void fsm_request_fingerprint(const struct codec_entry *e, uint8_t out[32])
{
    /* Every variable-length part is preceded by its length, so different requests cannot
     * feed the same bytes. */
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, 32);
    uint8_t fixed[1 + 8 + 8 + 1 + 16 + 32 + 4 + 4 + 4];
    memset(fixed, 0, sizeof(fixed));
    size_t o = 0;
    fixed[o++] = (uint8_t)e->op;
    for (int i = 0; i < 8; i++) {
        fixed[o++] = (uint8_t)(e->expected_version >> (8 * i));
    }
    for (int i = 0; i < 8; i++) {
        fixed[o++] = (uint8_t)(e->source_version >> (8 * i));
    }
    fixed[o++] = (uint8_t)(e->has_schema != 0);
    if (e->has_schema) {
        memcpy(fixed + o, e->schema_id, 16);
        memcpy(fixed + o + 16, e->schema_hash, 32);
    }
    o += 48;
    size_t lens[3] = {e->key_len, e->actor_len, e->content_len};
    for (int k = 0; k < 3; k++) {
        for (int i = 0; i < 4; i++) {
            fixed[o++] = (uint8_t)(lens[k] >> (8 * i));
        }
    }
    crypto_generichash_update(&st, fixed, o);
    crypto_generichash_update(&st, (const uint8_t *)e->key, e->key_len);
    crypto_generichash_update(&st, (const uint8_t *)e->actor, e->actor_len);
    if (e->content_len > 0) {
        crypto_generichash_update(&st, e->content, e->content_len);
    }
    crypto_generichash_final(&st, out, 32);
}

static int full(struct fsm_result *out, const char *what, unsigned long long limit)
{
    out->status = FSM_FULL;
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
    if (c == NULL && f->nconfigs >= FSM_MAX_CONFIGS) {
        return full(out, "configs", FSM_MAX_CONFIGS);
    }
    if (f->content_bytes - old_len + new_len > FSM_MAX_CONTENT_BYTES) {
        return full(out, "content bytes", (unsigned long long)FSM_MAX_CONTENT_BYTES);
    }
    if (f->pending_count >= FSM_MAX_PENDING) {
        return full(out, "revisions waiting for PostgreSQL", FSM_MAX_PENDING);
    }
    if (f->pending_bytes + new_len > FSM_MAX_PENDING_BYTES) {
        return full(out, "content bytes waiting for PostgreSQL",
                    (unsigned long long)FSM_MAX_PENDING_BYTES);
    }
    if (f->revision >= CODEC_MAX_INT64) {
        return full(out, "revision numbers", (unsigned long long)CODEC_MAX_INT64);
    }

    /* Stage 1: allocate. Nothing observable changes here. */
    struct project *np = NULL;
    struct fsm_config *nc = NULL;
    uint8_t *content = NULL;
    char *updated_by = NULL;
    struct revision rev;
    memset(&rev, 0, sizeof(rev));
    if (p == NULL) {
        if ((np = project_alloc(e->project, e->project_len)) == NULL || projects_reserve(f) != 0) {
            goto err;
        }
    }
    if (c == NULL) {
        if ((nc = calloc(1, sizeof(*nc))) == NULL ||
            (nc->key = dup_bytes(e->key, e->key_len)) == NULL ||
            configs_reserve(p != NULL ? p : np) != 0) {
            goto err;
        }
    }
    if (new_len > 0 && (content = (uint8_t *)dup_bytes(e->content, new_len)) == NULL) {
        goto err;
    }
    if ((updated_by = dup_bytes(e->actor, e->actor_len)) == NULL ||
        (rev.project = dup_bytes(e->project, e->project_len)) == NULL ||
        (rev.key = dup_bytes(e->key, e->key_len)) == NULL ||
        (rev.actor = dup_bytes(e->actor, e->actor_len)) == NULL) {
        goto err;
    }
    if (e->request_id_len > 0 &&
        (rev.request_id = dup_bytes(e->request_id, e->request_id_len)) == NULL) {
        goto err;
    }
    if (new_len > 0 && (rev.content = (uint8_t *)dup_bytes(e->content, new_len)) == NULL) {
        goto err;
    }
    if (pending_reserve(f) != 0) {
        goto err;
    }

    /* Stage 2: commit. Nothing below can fail. */
    if (np != NULL) {
        projects_insert(f, np);
        p = np;
    }
    if (nc != NULL) {
        nc->project = p->id;
        nc->key_len = e->key_len;
        configs_insert(p, nc);
        f->nconfigs++;
        c = nc;
    }
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
    free(c->content);
    c->content = content;
    c->content_len = new_len;
    c->deleted = e->op == CODEC_OP_DELETE;
    c->version = version;
    c->has_schema = rev.has_schema;
    memcpy(c->schema_id, rev.schema_id, sizeof(c->schema_id));
    memcpy(c->schema_hash, rev.schema_hash, sizeof(c->schema_hash));
    c->last_revision = rev.revision;
    c->raft_index = index;
    free(c->updated_by);
    c->updated_by = updated_by;
    c->updated_at = e->timestamp_us;
    pending_push(f, &rev);

    out->status = FSM_OK;
    out->version = version;
    out->revision = rev.revision;
    return 0;

err:
    revision_clear(&rev);
    free(updated_by);
    free(content);
    config_free(nc);
    project_free(np);
    return FSM_ENOMEM;
}

static int apply_config(struct fsm *f, uint64_t index, const struct codec_entry *e,
                        struct fsm_result *out)
{
    int has_rid = e->request_id_len > 0;
    uint8_t fp[32];
    uint64_t rhash = 0;
    if (has_rid) {
        fsm_request_fingerprint(e, fp);
        rhash = request_hash(f, e->project, e->project_len, e->request_id, e->request_id_len);
        long s =
            request_slot(f, rhash, e->project, e->project_len, e->request_id, e->request_id_len);
        if (s >= 0) {
            const struct fsm_request *first = &f->requests[f->req_slots[s] - 1].outcome;
            out->status = FSM_DUPLICATE;
            out->first_status = first->status;
            out->version = first->version;
            out->revision = first->revision;
            out->first_index = first->raft_index;
            out->mismatch = memcmp(fp, first->fingerprint, sizeof(fp)) != 0;
            return 0;
        }
        if (request_reserve(f) != 0) {
            return FSM_ENOMEM;
        }
    }
    struct project *p = project_find(f, e->project, e->project_len);
    struct fsm_config *c = p != NULL ? config_find(p, e->key, e->key_len) : NULL;
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
        memcpy(rec.fingerprint, fp, sizeof(fp));
        request_insert(f, rhash, e->project, e->project_len, e->request_id, e->request_id_len,
                       &rec);
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
    while (f->pending_count > 0 && pending_at(f, 0)->raft_index <= n) {
        pending_pop(f);
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
    const struct project *p = project_find(f, project, project_len);
    return p != NULL ? config_find(p, key, key_len) : NULL;
}

size_t fsm_list(const struct fsm *f, const char *project, size_t project_len, const char *prefix,
                size_t prefix_len, const char *after, size_t after_len,
                int (*visit)(const struct fsm_config *config, void *arg), void *arg)
{
    const struct project *p = project_find(f, project, project_len);
    if (p == NULL) {
        return 0;
    }
    size_t i = config_lower(p, prefix, prefix_len);
    if (after_len > 0) {
        size_t j = config_lower(p, after, after_len);
        if (j < p->count &&
            cmp_bytes(p->configs[j]->key, p->configs[j]->key_len, after, after_len) == 0) {
            j++;
        }
        if (j > i) {
            i = j;
        }
    }
    size_t seen = 0;
    for (; i < p->count; i++) {
        const struct fsm_config *c = p->configs[i];
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

const struct fsm_request *fsm_request_find(const struct fsm *f, const char *project,
                                           size_t project_len, const char *request_id,
                                           size_t request_id_len)
{
    if (project_len > CODEC_MAX_PROJECT || request_id_len > CODEC_MAX_REQUEST_ID ||
        request_id_len == 0 || f->req_count == 0) {
        return NULL;
    }
    uint64_t h = request_hash(f, project, project_len, request_id, request_id_len);
    long s = request_slot(f, h, project, project_len, request_id, request_id_len);
    return s >= 0 ? &f->requests[f->req_slots[s] - 1].outcome : NULL;
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

void fsm_chain_head(const struct fsm *f, const char *project, size_t project_len,
                    uint8_t out[REVISION_HASH_SIZE])
{
    const struct project *p = project_find(f, project, project_len);
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
        if (pending_at(f, mid)->raft_index < from_index) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    size_t n = 0;
    for (size_t i = lo; i < f->pending_count && n < max; i++) {
        out[n++] = pending_at(f, i);
    }
    return n;
}

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
        const struct revision *r = pending_at(f, i);
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
        const struct request *q = request_at(f, i);
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

static uint64_t le_load(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--) {
        v = (v << 8) | p[i];
    }
    return v;
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
        fail(errmsg, errlen, "snapshot: out of memory for %zu bytes", total);
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

/* ---- restore ---- */

/* A bounds-checked cursor over the snapshot body with a sticky error: after the first
 * failure every read returns zeros and the first message is kept. Invariant: off <= len. */
struct reader {
    const uint8_t *p;
    size_t len;
    size_t off;
    int failed;
    char *errmsg;
    size_t errlen;
};

static void rd_error(struct reader *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void rd_error(struct reader *r, const char *fmt, ...)
{
    if (r->failed) {
        return;
    }
    r->failed = 1;
    if (r->errmsg != NULL && r->errlen > 0) {
        int n = snprintf(r->errmsg, r->errlen, "snapshot: ");
        if (n > 0 && (size_t)n < r->errlen) {
            va_list ap;
            va_start(ap, fmt);
            vsnprintf(r->errmsg + n, r->errlen - (size_t)n, fmt, ap);
            va_end(ap);
        }
    }
}

static const uint8_t *rd_take(struct reader *r, size_t n, const char *what)
{
    if (r->failed) {
        return NULL;
    }
    if (r->len - r->off < n) {
        rd_error(r, "body ends inside %s at offset %zu", what, r->off);
        return NULL;
    }
    const uint8_t *p = r->p + r->off;
    r->off += n;
    return p;
}

static uint64_t rd_u64(struct reader *r, const char *what)
{
    const uint8_t *p = rd_take(r, 8, what);
    return p != NULL ? le_load(p, 8) : 0;
}

static unsigned rd_u8(struct reader *r, const char *what)
{
    const uint8_t *p = rd_take(r, 1, what);
    return p != NULL ? p[0] : 0;
}

static void rd_fixed(struct reader *r, uint8_t *out, size_t n, const char *what)
{
    const uint8_t *p = rd_take(r, n, what);
    if (p != NULL) {
        memcpy(out, p, n);
    } else {
        memset(out, 0, n);
    }
}

/* A u32 length (at most MAX) and the bytes. Returns NULL after a failure. */
static const char *rd_str(struct reader *r, size_t *len, size_t max, const char *what)
{
    *len = 0;
    const uint8_t *p = rd_take(r, 4, what);
    if (p == NULL) {
        return NULL;
    }
    size_t n = (size_t)le_load(p, 4);
    if (n > max) {
        rd_error(r, "%s length %zu is above the maximum %zu", what, n, max);
        return NULL;
    }
    const uint8_t *s = rd_take(r, n, what);
    if (s != NULL) {
        *len = n;
    }
    return (const char *)s;
}

/* A 0/1 flag byte. */
static int rd_bool(struct reader *r, const char *what)
{
    unsigned v = rd_u8(r, what);
    if (v > 1) {
        rd_error(r, "%s is %u, not 0 or 1", what, v);
    }
    return (int)v;
}

/* A count of records that each take at least MIN_SIZE bytes, so that a corrupt count can
 * neither exceed LIMIT nor make the reader allocate more than the input could describe. */
static size_t rd_count(struct reader *r, uint64_t limit, size_t min_size, const char *what)
{
    uint64_t n = rd_u64(r, what);
    if (r->failed) {
        return 0;
    }
    if (n > limit || n > (r->len - r->off) / min_size) {
        rd_error(r, "%s %llu is above the limit or the remaining bytes", what,
                 (unsigned long long)n);
        return 0;
    }
    return (size_t)n;
}

static void rd_schema(struct reader *r, int *has_schema, uint8_t id[16], uint8_t hash[32])
{
    *has_schema = rd_bool(r, "schema flag");
    memset(id, 0, 16);
    memset(hash, 0, 32);
    if (*has_schema) {
        rd_fixed(r, id, 16, "schema id");
        rd_fixed(r, hash, 32, "schema hash");
    }
}

static int rd_timestamp(struct reader *r, int64_t *out, const char *what)
{
    uint64_t v = rd_u64(r, what);
    if (!r->failed && v > (uint64_t)CODEC_MAX_TIMESTAMP_US) {
        rd_error(r, "%s %llu is out of range", what, (unsigned long long)v);
    }
    *out = r->failed ? 0 : (int64_t)v;
    return r->failed ? FSM_EINVAL : 0;
}

static int parse_config(struct fsm *t, struct project *p, struct reader *r)
{
    size_t key_len;
    const char *key = rd_str(r, &key_len, CODEC_MAX_KEY, "config key");
    if (key == NULL) {
        return FSM_EINVAL;
    }
    if (!codec_key_ok(key, key_len)) {
        rd_error(r, "project %s: invalid config key", p->id);
        return FSM_EINVAL;
    }
    if (p->count > 0) {
        const struct fsm_config *prev = p->configs[p->count - 1];
        if (cmp_bytes(prev->key, prev->key_len, key, key_len) >= 0) {
            rd_error(r, "project %s: config keys out of order at %.*s", p->id, (int)key_len, key);
            return FSM_EINVAL;
        }
    }
    struct fsm_config c;
    memset(&c, 0, sizeof(c));
    c.version = rd_u64(r, "config version");
    c.deleted = rd_bool(r, "deleted flag");
    rd_schema(r, &c.has_schema, c.schema_id, c.schema_hash);
    const char *content = NULL;
    if (!c.deleted) {
        content = rd_str(r, &c.content_len, CODEC_MAX_CONTENT, "config content");
    }
    c.last_revision = rd_u64(r, "config last revision");
    c.raft_index = rd_u64(r, "config raft index");
    size_t by_len;
    const char *by = rd_str(r, &by_len, CODEC_MAX_ACTOR, "config updated_by");
    if (rd_timestamp(r, &c.updated_at, "config updated_at") != 0) {
        return FSM_EINVAL;
    }
    const char *bad = NULL;
    if (c.version < 1 || c.version > CODEC_MAX_INT64) {
        bad = "version out of range";
    } else if (c.deleted && c.has_schema) {
        bad = "a tombstone with a schema";
    } else if (!c.deleted && c.content_len < 1) {
        bad = "a live config without content";
    } else if (c.last_revision < 1 || c.last_revision > t->revision) {
        bad = "last revision out of range";
    } else if (c.raft_index < 1 || c.raft_index > t->last_applied) {
        bad = "raft index out of range";
    } else if (!codec_actor_ok(by, by_len)) {
        bad = "invalid updated_by";
    }
    if (bad != NULL) {
        rd_error(r, "project %s: config %.*s: %s", p->id, (int)key_len, key, bad);
        return FSM_EINVAL;
    }
    t->content_bytes += c.content_len;
    if (t->content_bytes > FSM_MAX_CONTENT_BYTES) {
        rd_error(r, "content bytes above the limit %llu",
                 (unsigned long long)FSM_MAX_CONTENT_BYTES);
        return FSM_EINVAL;
    }
    struct fsm_config *n = calloc(1, sizeof(*n));
    if (n == NULL) {
        return FSM_ENOMEM;
    }
    *n = c;
    n->project = p->id;
    n->key_len = key_len;
    n->key = dup_bytes(key, key_len);
    n->updated_by = dup_bytes(by, by_len);
    n->content = content != NULL ? (uint8_t *)dup_bytes(content, c.content_len) : NULL;
    if (n->key == NULL || n->updated_by == NULL || (content != NULL && n->content == NULL)) {
        config_free(n);
        return FSM_ENOMEM;
    }
    /* The array was sized to the count up front, and keys arrive in order. */
    p->configs[p->count++] = n;
    t->nconfigs++;
    if (c.last_revision > p->max_revision) {
        p->max_revision = c.last_revision;
    }
    return 0;
}

static int parse_projects(struct fsm *t, struct reader *r)
{
    size_t n = rd_count(r, FSM_MAX_CONFIGS, 4 + 1 + REVISION_HASH_SIZE + 8, "project count");
    if (r->failed) {
        return FSM_EINVAL;
    }
    if (n > 0 && (t->projects = calloc(n, sizeof(t->projects[0]))) == NULL) {
        return FSM_ENOMEM;
    }
    t->projects_cap = n;
    for (size_t i = 0; i < n; i++) {
        size_t id_len;
        const char *id = rd_str(r, &id_len, CODEC_MAX_PROJECT, "project id");
        if (id == NULL) {
            return FSM_EINVAL;
        }
        if (!codec_project_ok(id, id_len)) {
            rd_error(r, "invalid project id at offset %zu", r->off - id_len);
            return FSM_EINVAL;
        }
        if (i > 0) {
            const struct project *prev = t->projects[i - 1];
            if (cmp_bytes(prev->id, prev->id_len, id, id_len) >= 0) {
                rd_error(r, "projects out of order at %.*s", (int)id_len, id);
                return FSM_EINVAL;
            }
        }
        struct project *p = project_alloc(id, id_len);
        if (p == NULL) {
            return FSM_ENOMEM;
        }
        t->projects[t->nprojects++] = p;
        rd_fixed(r, p->head, sizeof(p->head), "chain head");
        /* A project exists only once it has a revision, which always leaves a config. */
        size_t count = rd_count(r, FSM_MAX_CONFIGS - t->nconfigs, 44, "config count");
        if (r->failed) {
            return FSM_EINVAL;
        }
        if (count == 0) {
            rd_error(r, "project %s has no configs", p->id);
            return FSM_EINVAL;
        }
        if ((p->configs = calloc(count, sizeof(p->configs[0]))) == NULL) {
            return FSM_ENOMEM;
        }
        p->cap = count;
        for (size_t k = 0; k < count; k++) {
            int rc = parse_config(t, p, r);
            if (rc != 0) {
                return rc;
            }
        }
    }
    return 0;
}

/* Reads one queued revision into *REV (owning its strings even on failure; the caller clears
 * it) and checks it against everything already restored. PREV is the previous queued
 * revision or NULL. */
static int parse_revision(struct fsm *t, struct reader *r, const struct revision *prev,
                          struct revision *rev)
{
    memset(rev, 0, sizeof(*rev));
    size_t project_len, key_len, actor_len, rid_len, content_len = 0;
    rev->revision = rd_u64(r, "revision number");
    const char *project = rd_str(r, &project_len, CODEC_MAX_PROJECT, "revision project");
    const char *key = rd_str(r, &key_len, CODEC_MAX_KEY, "revision key");
    rev->version = rd_u64(r, "revision version");
    unsigned op = rd_u8(r, "revision op");
    rev->op = (enum revision_op)op;
    rev->source_version = rd_u64(r, "revision source version");
    rd_schema(r, &rev->has_schema, rev->schema_id, rev->schema_hash);
    const char *content = NULL;
    if (op != REVISION_DELETE) {
        content = rd_str(r, &content_len, CODEC_MAX_CONTENT, "revision content");
    }
    const char *actor = rd_str(r, &actor_len, CODEC_MAX_ACTOR, "revision actor");
    const char *rid = rd_str(r, &rid_len, CODEC_MAX_REQUEST_ID, "revision request id");
    rd_timestamp(r, &rev->created_at, "revision created_at");
    rev->raft_index = rd_u64(r, "revision raft index");
    rev->raft_term = rd_u64(r, "revision raft term");
    rd_fixed(r, rev->prev_hash, sizeof(rev->prev_hash), "revision prev_hash");
    rd_fixed(r, rev->hash, sizeof(rev->hash), "revision hash");
    if (r->failed) {
        return FSM_EINVAL;
    }

    const char *bad = NULL;
    const struct project *p = NULL;
    const struct fsm_config *c = NULL;
    if (!codec_project_ok(project, project_len) || !codec_key_ok(key, key_len) ||
        !codec_actor_ok(actor, actor_len) || !codec_request_id_ok(rid, rid_len)) {
        bad = "invalid project, key, actor or request id";
    } else if (op < REVISION_PUT || op > REVISION_ROLLBACK) {
        bad = "unknown op";
    } else if (rev->revision < 1 || rev->revision > t->revision ||
               (prev != NULL && rev->revision != prev->revision + 1)) {
        /* The queue is every revision after the materialized index, so its numbers are
         * consecutive. */
        bad = "revision number out of order or range";
    } else if (rev->raft_index <= t->materialized || rev->raft_index > t->last_applied ||
               (prev != NULL && rev->raft_index <= prev->raft_index)) {
        bad = "raft index out of order or range";
    } else if (rev->raft_term < 1 || rev->raft_term > CODEC_MAX_INT64) {
        bad = "raft term out of range";
    } else if (rev->version < 1 || rev->version > CODEC_MAX_INT64) {
        bad = "version out of range";
    } else if (op != REVISION_DELETE && content_len < 1) {
        bad = "no content";
    } else if (op == REVISION_DELETE && rev->has_schema) {
        bad = "a delete with a schema";
    } else if (op == REVISION_ROLLBACK
                   ? (rev->source_version < 1 || rev->source_version >= rev->version)
                   : rev->source_version != 0) {
        bad = "source version out of range";
    } else if ((p = project_find(t, project, project_len)) == NULL ||
               (c = config_find(p, key, key_len)) == NULL) {
        bad = "no config for it";
    } else if (rev->revision > c->last_revision ||
               (rev->revision == c->last_revision
                    ? (rev->version != c->version || rev->raft_index != c->raft_index ||
                       (op == REVISION_DELETE) != (c->deleted != 0))
                    : rev->version >= c->version)) {
        bad = "disagrees with its config";
    } else if (p->seen_pending &&
               memcmp(rev->prev_hash, p->last_pending_hash, REVISION_HASH_SIZE) != 0) {
        bad = "prev_hash does not continue the project's chain";
    }
    if (bad != NULL) {
        rd_error(r, "queued revision %llu: %s", (unsigned long long)rev->revision, bad);
        return FSM_EINVAL;
    }

    if ((rev->project = dup_bytes(project, project_len)) == NULL ||
        (rev->key = dup_bytes(key, key_len)) == NULL ||
        (rev->actor = dup_bytes(actor, actor_len)) == NULL ||
        (rid_len > 0 && (rev->request_id = dup_bytes(rid, rid_len)) == NULL) ||
        (content != NULL && (rev->content = (uint8_t *)dup_bytes(content, content_len)) == NULL)) {
        return FSM_ENOMEM;
    }
    rev->content_len = content_len;
    uint8_t h[REVISION_HASH_SIZE];
    revision_compute_hash(rev, h);
    if (memcmp(h, rev->hash, sizeof(h)) != 0) {
        rd_error(r, "queued revision %llu: hash does not match its contents",
                 (unsigned long long)rev->revision);
        return FSM_EINVAL;
    }
    struct project *mp = (struct project *)p;
    mp->seen_pending = 1;
    mp->last_pending_revision = rev->revision;
    memcpy(mp->last_pending_hash, rev->hash, REVISION_HASH_SIZE);
    return 0;
}

static int parse_pending(struct fsm *t, struct reader *r)
{
    size_t n = rd_count(r, FSM_MAX_PENDING, 8, "queued revision count");
    if (r->failed) {
        return FSM_EINVAL;
    }
    if (n > 0 && (t->pending = calloc(n, sizeof(t->pending[0]))) == NULL) {
        return FSM_ENOMEM;
    }
    t->pending_cap = n;
    for (size_t i = 0; i < n; i++) {
        struct revision rev;
        int rc = parse_revision(t, r, i > 0 ? pending_at(t, i - 1) : NULL, &rev);
        if (rc != 0) {
            revision_clear(&rev);
            return rc;
        }
        if (t->pending_bytes + rev.content_len > FSM_MAX_PENDING_BYTES) {
            revision_clear(&rev);
            rd_error(r, "queued content bytes above the limit %llu",
                     (unsigned long long)FSM_MAX_PENDING_BYTES);
            return FSM_EINVAL;
        }
        pending_push(t, &rev);
    }
    if (n > 0 && pending_at(t, n - 1)->revision != t->revision) {
        rd_error(r, "the last queued revision is not the revision counter %llu",
                 (unsigned long long)t->revision);
        return FSM_EINVAL;
    }
    /* The queue holds every revision after the materialized index, so a project's last
     * queued revision is its latest one and its hash is the chain head. */
    for (size_t i = 0; i < t->nprojects; i++) {
        const struct project *p = t->projects[i];
        if (p->seen_pending && (p->last_pending_revision != p->max_revision ||
                                memcmp(p->last_pending_hash, p->head, REVISION_HASH_SIZE) != 0)) {
            rd_error(r, "project %s: chain head is not its latest queued revision", p->id);
            return FSM_EINVAL;
        }
    }
    return 0;
}

static int parse_requests(struct fsm *t, struct reader *r)
{
    size_t n = rd_count(r, FSM_REQUEST_CAPACITY, 8, "request count");
    if (r->failed) {
        return FSM_EINVAL;
    }
    if (n > 0 && (t->requests = calloc(n, sizeof(t->requests[0]))) == NULL) {
        return FSM_ENOMEM;
    }
    t->req_cap = n;
    uint64_t prev_index = 0;
    for (size_t i = 0; i < n; i++) {
        size_t project_len, rid_len;
        const char *project = rd_str(r, &project_len, CODEC_MAX_PROJECT, "request project");
        const char *rid = rd_str(r, &rid_len, CODEC_MAX_REQUEST_ID, "request id");
        struct fsm_request q;
        memset(&q, 0, sizeof(q));
        unsigned status = rd_u8(r, "request status");
        q.status = (enum fsm_status)status;
        q.version = rd_u64(r, "request version");
        q.revision = rd_u64(r, "request revision");
        q.raft_index = rd_u64(r, "request raft index");
        rd_fixed(r, q.fingerprint, sizeof(q.fingerprint), "request fingerprint");
        if (r->failed) {
            return FSM_EINVAL;
        }
        const char *bad = NULL;
        if (!codec_project_ok(project, project_len) || rid_len == 0 ||
            !codec_request_id_ok(rid, rid_len)) {
            bad = "invalid project or request id";
        } else if (status != FSM_OK && status != FSM_CONFLICT && status != FSM_NOT_FOUND) {
            bad = "unknown status";
        } else if (q.version > CODEC_MAX_INT64 || q.revision > t->revision ||
                   (status == FSM_OK ? (q.version < 1 || q.revision < 1) : q.revision != 0)) {
            bad = "version or revision out of range";
        } else if (q.raft_index <= prev_index || q.raft_index > t->last_applied) {
            bad = "raft index out of order or range";
        }
        uint64_t h = bad == NULL ? request_hash(t, project, project_len, rid, rid_len) : 0;
        if (bad == NULL && request_slot(t, h, project, project_len, rid, rid_len) >= 0) {
            bad = "recorded twice";
        }
        if (bad != NULL) {
            rd_error(r, "request entry %zu: %s", i, bad);
            return FSM_EINVAL;
        }
        request_insert(t, h, project, project_len, rid, rid_len, &q);
        prev_index = q.raft_index;
    }
    return 0;
}

static int parse_body(struct fsm *t, struct reader *r)
{
    t->last_applied = rd_u64(r, "last applied index");
    t->revision = rd_u64(r, "revision counter");
    t->materialized = rd_u64(r, "materialized index");
    if (r->failed) {
        return FSM_EINVAL;
    }
    if (t->last_applied > CODEC_MAX_INT64 || t->revision > CODEC_MAX_INT64 ||
        t->materialized > t->last_applied) {
        rd_error(r, "counters out of range");
        return FSM_EINVAL;
    }
    int rc;
    if ((rc = parse_projects(t, r)) != 0 || (rc = parse_pending(t, r)) != 0 ||
        (rc = parse_requests(t, r)) != 0) {
        return rc;
    }
    if (r->off != r->len) {
        rd_error(r, "%zu unread bytes at the end of the body", r->len - r->off);
        return FSM_EINVAL;
    }
    return 0;
}

int fsm_restore(struct fsm *f, const uint8_t *buf, size_t len, char *errmsg, size_t errlen)
{
    if (buf == NULL || len < SNAP_HEADER_SIZE) {
        fail(errmsg, errlen, "snapshot: truncated: %zu bytes, the header alone needs %d", len,
             SNAP_HEADER_SIZE);
        return FSM_EINVAL;
    }
    if (memcmp(buf, SNAP_MAGIC, 8) != 0) {
        fail(errmsg, errlen, "snapshot: bad magic (not a conclave snapshot)");
        return FSM_EINVAL;
    }
    uint64_t version = le_load(buf + 8, 4);
    if (version != SNAP_VERSION) {
        fail(errmsg, errlen, "snapshot: unsupported format version %llu (this build reads %d)",
             (unsigned long long)version, SNAP_VERSION);
        return FSM_EINVAL;
    }
    for (size_t i = 56; i < SNAP_HEADER_SIZE; i++) {
        if (buf[i] != 0) {
            fail(errmsg, errlen, "snapshot: reserved header bytes are not zero");
            return FSM_EINVAL;
        }
    }
    if (len % 8 != 0) {
        fail(errmsg, errlen, "snapshot: length %zu is not a multiple of 8", len);
        return FSM_EINVAL;
    }
    uint64_t body = le_load(buf + 16, 8);
    if (body > len - SNAP_HEADER_SIZE) {
        fail(errmsg, errlen,
             "snapshot: truncated: body length %llu, have %zu bytes after the "
             "header",
             (unsigned long long)body, len - SNAP_HEADER_SIZE);
        return FSM_EINVAL;
    }
    size_t real = SNAP_HEADER_SIZE + (size_t)body;
    size_t total = (real + 7) & ~(size_t)7;
    /* body <= len - 64 and len is a multiple of 8, so total <= len. */
    if (len != total) {
        fail(errmsg, errlen, "snapshot: %zu trailing bytes after the padded body", len - total);
        return FSM_EINVAL;
    }
    for (size_t i = real; i < total; i++) {
        if (buf[i] != 0) {
            fail(errmsg, errlen, "snapshot: padding byte %zu is not zero", i - real);
            return FSM_EINVAL;
        }
    }
    uint8_t header[SNAP_HEADER_SIZE];
    memcpy(header, buf, sizeof(header));
    memset(header + 12, 0, 4);
    uint32_t crc = codec_crc32c(0, header, sizeof(header));
    crc = codec_crc32c(crc, buf + SNAP_HEADER_SIZE, (size_t)body);
    uint32_t stored = (uint32_t)le_load(buf + 12, 4);
    if (crc != stored) {
        fail(errmsg, errlen, "snapshot: checksum mismatch (stored 0x%08x, computed 0x%08x)", stored,
             crc);
        return FSM_EINVAL;
    }

    /* Build the new state aside; F is only touched once everything has been checked. */
    struct fsm *t;
    int rc = fsm_new(&t, f->hash_key, errmsg, errlen);
    if (rc != 0) {
        return rc;
    }
    struct reader r = {.p = buf + SNAP_HEADER_SIZE,
                       .len = (size_t)body,
                       .off = 0,
                       .failed = 0,
                       .errmsg = errmsg,
                       .errlen = errlen};
    rc = parse_body(t, &r);
    if (rc == FSM_ENOMEM) {
        fail(errmsg, errlen, "snapshot: out of memory restoring %llu bytes",
             (unsigned long long)body);
        goto err_after_new;
    }
    if (rc != 0) {
        goto err_after_new;
    }
    /* The body is canonical: the restored state must serialise back to exactly the same
     * bytes, which the stored state hash (SHA-256 of the body) confirms. */
    uint8_t h[32];
    fsm_state_hash(t, h);
    if (memcmp(h, buf + 24, sizeof(h)) != 0) {
        fail(errmsg, errlen,
             "snapshot: state hash mismatch (the body is not canonical or the "
             "header's hash is wrong)");
        rc = FSM_EINVAL;
        goto err_after_new;
    }

    state_release(f);
    *f = *t;
    free(t);
    return 0;

err_after_new:
    fsm_free(t);
    return rc;
}
