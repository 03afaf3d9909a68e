#include "raft/fsm_internal.h"

#include <stdlib.h>
#include <string.h>

#include "raft/bytes.h"

int fsm_store_cmp_bytes(const char *a, size_t alen, const char *b, size_t blen)
{
    size_t n = alen < blen ? alen : blen;
    int c = n > 0 ? memcmp(a, b, n) : 0;
    if (c != 0) {
        return c;
    }
    return (alen > blen) - (alen < blen);
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
        if (fsm_store_cmp_bytes(p->id, p->id_len, id, len) < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo;
}

struct project *fsm_store_project_find(const struct fsm *f, const char *id, size_t len)
{
    size_t i = project_lower(f, id, len);
    if (i < f->nprojects &&
        fsm_store_cmp_bytes(f->projects[i]->id, f->projects[i]->id_len, id, len) == 0) {
        return f->projects[i];
    }
    return NULL;
}

/* The chunk KEY belongs in: the last chunk whose first key is <= KEY, or the first chunk
 * when KEY is below every key. P has at least one chunk. */
static size_t chunk_for(const struct project *p, const char *key, size_t len)
{
    size_t lo = 1;
    size_t hi = p->nchunks;
    /* Find the first chunk (from 1) whose first key is > KEY; the one before is KEY's. */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const struct fsm_config *c = p->chunks[mid]->items[0];
        if (fsm_store_cmp_bytes(c->key, c->key_len, key, len) <= 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo - 1;
}

/* The first index in CH whose key is >= KEY (CH->n when none). */
static size_t chunk_lower(const struct chunk *ch, const char *key, size_t len)
{
    size_t lo = 0;
    size_t hi = ch->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const struct fsm_config *c = ch->items[mid];
        if (fsm_store_cmp_bytes(c->key, c->key_len, key, len) < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo;
}

struct cfg_pos fsm_store_config_lower(const struct project *p, const char *key, size_t len)
{
    struct cfg_pos pos = {.chunk = p->nchunks, .idx = 0};
    if (p->nchunks == 0) {
        return pos;
    }
    pos.chunk = chunk_for(p, key, len);
    pos.idx = chunk_lower(p->chunks[pos.chunk], key, len);
    if (pos.idx == p->chunks[pos.chunk]->n) {
        /* Above every key of this chunk: the next chunk's first key is above KEY. */
        pos.chunk++;
        pos.idx = 0;
    }
    return pos;
}

struct fsm_config *fsm_store_config_at(const struct project *p, struct cfg_pos pos)
{
    return pos.chunk < p->nchunks ? p->chunks[pos.chunk]->items[pos.idx] : NULL;
}

struct cfg_pos fsm_store_config_next(const struct project *p, struct cfg_pos pos)
{
    if (++pos.idx == p->chunks[pos.chunk]->n) {
        pos.chunk++;
        pos.idx = 0;
    }
    return pos;
}

struct fsm_config *fsm_store_config_find(const struct project *p, const char *key, size_t len)
{
    struct fsm_config *c = fsm_store_config_at(p, fsm_store_config_lower(p, key, len));
    if (c != NULL && fsm_store_cmp_bytes(c->key, c->key_len, key, len) == 0) {
        return c;
    }
    return NULL;
}

struct fsm_config *fsm_store_config_new(const char *key, size_t key_len, const uint8_t *content,
                                        size_t content_len, const char *by, size_t by_len)
{
    /* One allocation: the struct, then key, content (when any) and actor, each followed by
     * a NUL. About 80 bytes less per config than four allocations. */
    size_t extra = key_len + 1 + (content != NULL ? content_len + 1 : 0) + by_len + 1;
    struct fsm_config *c = calloc(1, sizeof(*c) + extra);
    if (c == NULL) {
        return NULL;
    }
    char *at = (char *)(c + 1);
    c->key = at;
    memcpy(at, key, key_len);
    c->key_len = key_len;
    at += key_len + 1;
    if (content != NULL) {
        c->content = (uint8_t *)at;
        memcpy(at, content, content_len);
        c->content_len = content_len;
        at += content_len + 1;
    }
    c->updated_by = at;
    memcpy(at, by, by_len);
    return c;
}

void fsm_store_config_free(struct fsm_config *c)
{
    free(c);
}

struct project *fsm_store_project_alloc(const char *id, size_t len)
{
    struct project *p = calloc(1, sizeof(*p));
    if (p == NULL) {
        return NULL;
    }
    p->id = bytes_dup(id, len);
    if (p->id == NULL) {
        free(p);
        return NULL;
    }
    p->id_len = len;
    return p;
}

void fsm_store_chunk_unref(struct chunk *ch)
{
    if (ch != NULL && --ch->refs == 0) {
        free(ch);
    }
}

int fsm_store_config_frozen(const struct fsm *f, const struct fsm_config *c)
{
    return f->view != NULL && c->gen <= f->view->gen;
}

void fsm_store_config_drop(struct fsm *f, struct fsm_config *c)
{
    if (f != NULL && fsm_store_config_frozen(f, c)) {
        c->retired_next = f->view->retired;
        f->view->retired = c;
    } else {
        fsm_store_config_free(c);
    }
}

void fsm_store_project_free(struct fsm *f, struct project *p)
{
    if (p != NULL) {
        for (size_t i = 0; i < p->nchunks; i++) {
            struct chunk *ch = p->chunks[i];
            for (uint32_t k = 0; k < ch->n; k++) {
                fsm_store_config_drop(f, ch->items[k]);
            }
            fsm_store_chunk_unref(ch);
        }
        free(p->chunks);
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

int fsm_store_projects_reserve(struct fsm *f)
{
    void **arr = (void **)f->projects;
    int rc = reserve_ptrs(&arr, f->nprojects, &f->projects_cap);
    f->projects = (struct project **)arr;
    return rc;
}

static struct chunk *chunk_new(void)
{
    struct chunk *ch = malloc(sizeof(*ch));
    if (ch != NULL) {
        ch->refs = 1;
        ch->n = 0;
    }
    return ch;
}

/* Makes P's chunk I private to the live state: a chunk a view shares is copied (the copy
 * takes the live state's reference, the view keeps the original). */
static int chunk_unshare(struct project *p, size_t i)
{
    struct chunk *ch = p->chunks[i];
    if (ch->refs == 1) {
        return 0;
    }
    struct chunk *nc = chunk_new();
    if (nc == NULL) {
        return FSM_ENOMEM;
    }
    nc->n = ch->n;
    memcpy(nc->items, ch->items, ch->n * sizeof(ch->items[0]));
    p->chunks[i] = nc;
    ch->refs--; /* still > 0: the view's */
    return 0;
}

int fsm_store_configs_prepare(struct project *p, const char *key, size_t len)
{
    void **arr = (void **)p->chunks;
    int rc = reserve_ptrs(&arr, p->nchunks, &p->chunks_cap);
    p->chunks = (struct chunk **)arr;
    if (rc != 0) {
        return rc;
    }
    if (p->nchunks == 0) {
        struct chunk *ch = chunk_new();
        if (ch == NULL) {
            return FSM_ENOMEM;
        }
        p->chunks[p->nchunks++] = ch;
        return 0;
    }
    size_t i = chunk_for(p, key, len);
    if ((rc = chunk_unshare(p, i)) != 0) {
        return rc;
    }
    struct chunk *ch = p->chunks[i];
    if (ch->n < CHUNK_MAX) {
        return 0;
    }
    size_t at = chunk_lower(ch, key, len);
    if (at < ch->n &&
        fsm_store_cmp_bytes(ch->items[at]->key, ch->items[at]->key_len, key, len) == 0) {
        return 0; /* present: a replacement needs no room */
    }
    /* Full: split. Keys arriving in ascending order (an append past the last chunk) leave
     * the old chunk full and start a new one with its last config, so such loads fill their
     * chunks; otherwise split in halves. Either way KEY's chunk then has room. */
    struct chunk *right = chunk_new();
    if (right == NULL) {
        return FSM_ENOMEM;
    }
    size_t keep = (at == ch->n && i + 1 == p->nchunks) ? ch->n - 1 : ch->n / 2;
    right->n = (uint32_t)(ch->n - keep);
    memcpy(right->items, &ch->items[keep], right->n * sizeof(ch->items[0]));
    ch->n = (uint32_t)keep;
    memmove(&p->chunks[i + 2], &p->chunks[i + 1], (p->nchunks - i - 1) * sizeof(p->chunks[0]));
    p->chunks[i + 1] = right;
    p->nchunks++;
    p->moves += right->n + (p->nchunks - i - 2);
    return 0;
}

void fsm_store_projects_insert(struct fsm *f, struct project *p)
{
    size_t i = project_lower(f, p->id, p->id_len);
    memmove(&f->projects[i + 1], &f->projects[i], (f->nprojects - i) * sizeof(f->projects[0]));
    f->projects[i] = p;
    f->nprojects++;
}

void fsm_store_configs_insert(struct project *p, struct fsm_config *c)
{
    struct chunk *ch = p->chunks[chunk_for(p, c->key, c->key_len)];
    size_t i = chunk_lower(ch, c->key, c->key_len);
    memmove(&ch->items[i + 1], &ch->items[i], (ch->n - i) * sizeof(ch->items[0]));
    ch->items[i] = c;
    ch->n++;
    p->count++;
    p->moves += ch->n - 1 - i;
}

void fsm_store_configs_replace(struct project *p, const struct fsm_config *old,
                               struct fsm_config *nc)
{
    struct chunk *ch = p->chunks[chunk_for(p, old->key, old->key_len)];
    ch->items[chunk_lower(ch, old->key, old->key_len)] = nc;
}

int fsm_store_configs_append(struct project *p, struct fsm_config *c)
{
    if (p->nchunks == 0 || p->chunks[p->nchunks - 1]->n == CHUNK_MAX) {
        void **arr = (void **)p->chunks;
        int rc = reserve_ptrs(&arr, p->nchunks, &p->chunks_cap);
        p->chunks = (struct chunk **)arr;
        struct chunk *ch = rc == 0 ? chunk_new() : NULL;
        if (ch == NULL) {
            return FSM_ENOMEM;
        }
        p->chunks[p->nchunks++] = ch;
    }
    struct chunk *ch = p->chunks[p->nchunks - 1];
    ch->items[ch->n++] = c;
    p->count++;
    return 0;
}

/* ---- the pending queue ---- */

struct revision *fsm_store_pending_at(const struct fsm *f, size_t i)
{
    return &f->pending[(f->pending_head + i) % f->pending_cap];
}

int fsm_store_pending_reserve(struct fsm *f)
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
        n[i] = *fsm_store_pending_at(f, i);
    }
    free(f->pending);
    f->pending = n;
    f->pending_head = 0;
    f->pending_cap = ncap;
    return 0;
}

void fsm_store_pending_push(struct fsm *f, const struct revision *r)
{
    f->pending[(f->pending_head + f->pending_count) % f->pending_cap] = *r;
    f->pending_count++;
    f->pending_bytes += r->content_len;
}

void fsm_store_pending_pop(struct fsm *f)
{
    struct revision *r = fsm_store_pending_at(f, 0);
    f->pending_bytes -= r->content_len;
    revision_clear(r);
    f->pending_head = (f->pending_head + 1) % f->pending_cap;
    f->pending_count--;
}

/* ---- the request-id table ---- */

uint64_t fsm_store_request_hash(const struct fsm *f, const char *project, size_t project_len,
                                const char *request_id, size_t request_id_len)
{
    /* Project ids cannot contain NUL, so the separator makes the key unambiguous. */
    uint8_t key[CODEC_MAX_PROJECT + 1 + CODEC_MAX_REQUEST_ID];
    memcpy(key, project, project_len);
    key[project_len] = 0;
    memcpy(key + project_len + 1, request_id, request_id_len);
    uint8_t h[crypto_shorthash_BYTES];
    crypto_shorthash(h, key, project_len + 1 + request_id_len, f->hash_key);
    return bytes_get_le64(h);
}

long fsm_store_request_slot(const struct fsm *f, uint64_t h, const char *project,
                            size_t project_len, const char *request_id, size_t request_id_len)
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

static struct request *req_at(const struct fsm *f, uint32_t pos1)
{
    return pos1 != 0 ? &f->requests[pos1 - 1] : NULL;
}

/* The position of the first project entry whose id is >= ID. */
static size_t req_project_lower(const struct fsm *f, const char *id, size_t len)
{
    size_t lo = 0;
    size_t hi = f->nreq_projects;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const struct req_project *p = &f->req_projects[mid];
        if (fsm_store_cmp_bytes(p->id, p->id_len, id, len) < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo;
}

static struct req_project *req_project_find(const struct fsm *f, const char *id, size_t len)
{
    size_t i = req_project_lower(f, id, len);
    if (i < f->nreq_projects &&
        fsm_store_cmp_bytes(f->req_projects[i].id, f->req_projects[i].id_len, id, len) == 0) {
        return &f->req_projects[i];
    }
    return NULL;
}

size_t fsm_store_request_project_count(const struct fsm *f, const char *project, size_t project_len)
{
    const struct req_project *p = req_project_find(f, project, project_len);
    return p != NULL ? p->count : 0;
}

/* An id may be forgotten unless its write is OK and not yet in PostgreSQL: until then the
 * state machine is the only place a retry can learn the first outcome from. */
static int req_forgettable(const struct fsm *f, const struct request *r)
{
    return r->outcome.status != FSM_OK || r->outcome.raft_index <= f->materialized;
}

/* Unlinks the record at POS1 from both lists and the index and frees it; drops its
 * project's entry when that was the project's last record. */
static void req_remove(struct fsm *f, uint32_t pos1)
{
    struct request *r = req_at(f, pos1);
    long s = fsm_store_request_slot(f, r->hash, r->project, r->project_len, r->request_id,
                                    r->request_id_len);
    request_slot_remove(f, (size_t)s);
    f->req_legacy -= r->outcome.rule == FSM_FP_LEGACY;
    if (r->prev != 0) {
        req_at(f, r->prev)->next = r->next;
    } else {
        f->req_first = r->next;
    }
    if (r->next != 0) {
        req_at(f, r->next)->prev = r->prev;
    } else {
        f->req_last = r->prev;
    }
    size_t pi = req_project_lower(f, r->project, r->project_len);
    struct req_project *p = &f->req_projects[pi];
    if (r->pprev != 0) {
        req_at(f, r->pprev)->pnext = r->pnext;
    } else {
        p->first = r->pnext;
    }
    if (r->pnext != 0) {
        req_at(f, r->pnext)->pprev = r->pprev;
    } else {
        p->last = r->pprev;
    }
    if (--p->count == 0) {
        memmove(&f->req_projects[pi], &f->req_projects[pi + 1],
                (f->nreq_projects - pi - 1) * sizeof(f->req_projects[0]));
        f->nreq_projects--;
    }
    f->req_count--;
    memset(r, 0, sizeof(*r));
    r->next = f->req_free;
    f->req_free = pos1;
}

int fsm_store_request_reserve(struct fsm *f)
{
    if (f->nreq_projects == f->req_projects_cap) {
        size_t ncap = f->req_projects_cap > 0 ? f->req_projects_cap * 2 : 16;
        struct req_project *n = realloc(f->req_projects, ncap * sizeof(*n));
        if (n == NULL) {
            return FSM_ENOMEM;
        }
        f->req_projects = n;
        f->req_projects_cap = ncap;
    }
    if (f->req_free != 0 || f->req_used < f->req_cap || f->req_cap == FSM_REQUEST_CAPACITY) {
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

void fsm_store_request_append(struct fsm *f, uint64_t h, const char *project, size_t project_len,
                              const char *request_id, size_t request_id_len,
                              const struct fsm_request *outcome)
{
    uint32_t pos1;
    if (f->req_free != 0) {
        pos1 = f->req_free;
        f->req_free = req_at(f, pos1)->next;
    } else {
        pos1 = (uint32_t)++f->req_used;
    }
    size_t pi = req_project_lower(f, project, project_len);
    if (pi == f->nreq_projects ||
        fsm_store_cmp_bytes(f->req_projects[pi].id, f->req_projects[pi].id_len, project,
                            project_len) != 0) {
        memmove(&f->req_projects[pi + 1], &f->req_projects[pi],
                (f->nreq_projects - pi) * sizeof(f->req_projects[0]));
        struct req_project *np = &f->req_projects[pi];
        memset(np, 0, sizeof(*np));
        memcpy(np->id, project, project_len);
        np->id_len = (uint8_t)project_len;
        f->nreq_projects++;
    }
    struct req_project *p = &f->req_projects[pi];
    struct request *r = req_at(f, pos1);
    memset(r, 0, sizeof(*r));
    r->hash = h;
    r->project_len = (uint8_t)project_len;
    r->request_id_len = (uint8_t)request_id_len;
    memcpy(r->project, project, project_len);
    memcpy(r->request_id, request_id, request_id_len);
    r->outcome = *outcome;
    r->prev = f->req_last;
    if (f->req_last != 0) {
        req_at(f, f->req_last)->next = pos1;
    } else {
        f->req_first = pos1;
    }
    f->req_last = pos1;
    r->pprev = p->last;
    if (p->last != 0) {
        req_at(f, p->last)->pnext = pos1;
    } else {
        p->first = pos1;
    }
    p->last = pos1;
    p->count++;
    const size_t mask = REQ_SLOTS - 1;
    size_t i = h & mask;
    while (f->req_slots[i] != 0) {
        i = (i + 1) & mask;
    }
    f->req_slots[i] = pos1;
    f->req_count++;
    f->req_legacy += outcome->rule == FSM_FP_LEGACY;
}

void fsm_store_request_insert(struct fsm *f, uint64_t h, const char *project, size_t project_len,
                              const char *request_id, size_t request_id_len,
                              const struct fsm_request *outcome)
{
    /* The project's own bound first: a busy project forgets its own old ids. */
    const struct req_project *p = req_project_find(f, project, project_len);
    while (p != NULL && p->count >= FSM_PROJECT_REQUESTS &&
           req_forgettable(f, req_at(f, p->first))) {
        uint32_t victim = p->first;
        int last = p->count == 1;
        req_remove(f, victim);
        if (last) {
            p = NULL; /* its entry is gone */
        }
    }
    /* The total bound: only when every project together fills the table does one project's
     * insert forget another's id, the oldest that may be forgotten. One exists: the ids that
     * may not be forgotten number at most FSM_MAX_PENDING, below the capacity. The walk passes
     * at most that many. */
    if (f->req_count >= FSM_REQUEST_CAPACITY) {
        uint32_t pos1 = f->req_first;
        while (pos1 != 0 && !req_forgettable(f, req_at(f, pos1))) {
            pos1 = req_at(f, pos1)->next;
        }
        if (pos1 != 0) {
            req_remove(f, pos1);
        }
    }
    fsm_store_request_append(f, h, project, project_len, request_id, request_id_len, outcome);
}

const struct request *fsm_store_request_first(const struct fsm *f)
{
    return req_at(f, f->req_first);
}

const struct request *fsm_store_request_next(const struct fsm *f, const struct request *r)
{
    return req_at(f, r->next);
}

/* ---- lifecycle ---- */

void fsm_store_state_release(struct fsm *f)
{
    for (size_t i = 0; i < f->nprojects; i++) {
        fsm_store_project_free(f, f->projects[i]);
    }
    free(f->projects);
    while (f->pending_count > 0) {
        fsm_store_pending_pop(f);
    }
    free(f->pending);
    free(f->requests);
    free(f->req_projects);
    free(f->req_slots);
}
