#include "server/watch_hub.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "storage/db.h"
#include "storage/db_configs.h"

/* The longest project id kept (ids are slugs of at most 63 characters). */
#define PROJECT_MAX 63
/* How long a project without watchers keeps its cache, so that a crowd reconnecting after an
 * answer finds it. */
#define KEEP_IDLE_MS 2000
/* Early queries per new revision on a node that does not write PostgreSQL itself, one per tick
 * at most, before waiting for the materialized index as before (see wants_query()). */
#define EARLY_TRIES 3
/* Shared answers kept per page (see struct memo). */
#define MEMO_SLOTS 4

struct waiter {
    struct waiter *prev, *next;
    struct project *p;
    uint64_t after; /* every revision up to it was examined (or is the client's own cursor) */
    uint64_t deadline;
    enum watch_hub_filter filter;
    bool fresh; /* on the project's fresh list, not yet compared with a page */
    size_t plen;
    watch_hub_answer_fn answer;
    watch_hub_gone_fn gone;
    void *data;
    char pattern[WATCH_HUB_PATTERN_MAX + 1];
};

/* A doubly linked list of waiters with a sentinel. */
struct wlist {
    struct waiter head;
};

/* One row of a project's cache: the revision object and what filtering reads of it. */
struct crow {
    uint64_t rev;
    const char *key; /* points into obj */
    size_t keylen;
    json_t *obj; /* borrowed from the cache array */
};

/* One serialised answer of the current page: the watchers whose first row after their cursor
 * is LO and whose filter is FILTER/PATTERN all get the same changes and the same
 * next_after_revision (the page's head), so they get the same bytes. */
struct memo {
    bool used;
    size_t lo;
    enum watch_hub_filter filter;
    size_t plen;
    char *body; /* owned; NUL-terminated */
    size_t len;
    char pattern[WATCH_HUB_PATTERN_MAX + 1];
};

struct project {
    struct project *next;
    struct watch_hub *hub;
    /* Fresh watchers were not yet compared with any page; waiting ones were, and wait for a
     * revision after their (advanced) after_revision. */
    struct wlist fresh, waiting;
    size_t nwaiters;
    bool querying;
    /* The last page: revisions (cache_after, cache_head] of the project, in order, complete.
     * MORE: the page was full, so revisions after cache_head may already be in PostgreSQL. */
    bool cache_valid;
    bool more;
    json_t *cache;
    struct crow *rows;
    size_t nrows;
    uint64_t cache_after, cache_head;
    uint64_t qindex;     /* the materialized index read when the last query was submitted */
    uint64_t idle_since; /* when the last watcher left (0 while any waits) */
    /* COVERED: every revision of the project numbered up to it is at or below cache_after or
     * in the cache (so a query can bring nothing new until the node applies a later revision).
     * 0 until a complete page (struct watch_hub_view.revision known) was accepted. */
    uint64_t covered;
    /* The early queries for the revision EARLY_REV (the node's last applied one): how many were
     * submitted, bounded by EARLY_TRIES. */
    uint64_t early_rev;
    unsigned early_tries;
    struct memo memo[MEMO_SLOTS];
    size_t memo_next; /* the slot the next new answer takes */
    char id[PROJECT_MAX + 1];
};

struct query_job {
    struct project *p;
    uint64_t after;
    uint64_t index;
    uint64_t revision; /* the node's last applied revision at submission (0: unknown) */
    /* The project's revisions after AFTER not known to be in PostgreSQL at submission,
     * ascending: NPENDING of them, the first min(NPENDING, WATCH_HUB_PAGE + 1) stored. */
    uint64_t *pending;
    size_t npending;
    json_t *rows;
    char id[PROJECT_MAX + 1]; /* a copy: the worker reads nothing the loop may change */
};

struct watch_hub {
    uv_loop_t *loop;
    struct pgpool *pool;
    watch_hub_view_fn view;
    watch_hub_pending_fn pending;
    void *node_data;
    uv_timer_t timer;
    struct project *projects;
    uint64_t next_sweep;
    uint64_t waiting, queries, answered;
    int inflight; /* queries submitted whose done callback has not run */
    bool closing;
    bool timer_closed;
    void (*close_cb)(void *data);
    void *close_data;
};

/* ---- lists ----------------------------------------------------------------------------- */

static void wlist_init(struct wlist *l)
{
    l->head.next = l->head.prev = &l->head;
}

static bool wlist_empty(const struct wlist *l)
{
    return l->head.next == &l->head;
}

static void wlist_push(struct wlist *l, struct waiter *w)
{
    w->prev = l->head.prev;
    w->next = &l->head;
    l->head.prev->next = w;
    l->head.prev = w;
}

static void wlist_remove(struct waiter *w)
{
    w->prev->next = w->next;
    w->next->prev = w->prev;
    w->next = w->prev = w;
}

/* ---- answering ----------------------------------------------------------------------- */

/* Forgets W and gives it its answer: BODY (LEN bytes) is borrowed for the call. */
static void answer(struct waiter *w, int status, const char *errmsg, const char *body, size_t len)
{
    struct project *p = w->p;
    struct watch_hub *h = p->hub;
    wlist_remove(w);
    p->nwaiters--;
    h->waiting--;
    h->answered++;
    if (p->nwaiters == 0) {
        p->idle_since = uv_now(h->loop);
    }
    watch_hub_answer_fn cb = w->answer;
    void *data = w->data;
    free(w);
    cb(data, status, errmsg, body, len);
}

static void answer_empty(struct waiter *w)
{
    char body[64];
    int n = snprintf(body, sizeof(body), "{\"changes\":[],\"next_after_revision\":%llu}",
                     (unsigned long long)w->after);
    answer(w, DB_OK, "", body, (size_t)n);
}

/* Answers every watcher of P, fresh or waiting, with STATUS and ERRMSG (an error), or with no
 * changes when STATUS is DB_OK. */
static void answer_all(struct project *p, int status, const char *errmsg)
{
    struct wlist *lists[] = {&p->fresh, &p->waiting};
    for (size_t i = 0; i < 2; i++) {
        while (!wlist_empty(lists[i])) {
            struct waiter *w = lists[i]->head.next;
            if (status == DB_OK) {
                answer_empty(w);
            } else {
                answer(w, status, errmsg, NULL, 0);
            }
        }
    }
}

static bool matches(const struct waiter *w, const struct crow *r)
{
    switch (w->filter) {
    case WATCH_HUB_KEY:
        return r->keylen == w->plen && memcmp(r->key, w->pattern, w->plen) == 0;
    case WATCH_HUB_PREFIX:
        return r->keylen >= w->plen && memcmp(r->key, w->pattern, w->plen) == 0;
    default:
        return true;
    }
}

static void memo_clear(struct project *p)
{
    for (size_t i = 0; i < MEMO_SLOTS; i++) {
        free(p->memo[i].body);
        p->memo[i].body = NULL;
        p->memo[i].used = false;
    }
    p->memo_next = 0;
}

/* The serialised answer for W, whose first row after its cursor is row LO, of P's page:
 * found among the answers already made for this page, or made now and kept. Returns NULL when
 * out of memory. */
static const struct memo *memo_get(struct project *p, const struct waiter *w, size_t lo)
{
    for (size_t i = 0; i < MEMO_SLOTS; i++) {
        const struct memo *m = &p->memo[i];
        if (m->used && m->lo == lo && m->filter == w->filter && m->plen == w->plen &&
            memcmp(m->pattern, w->pattern, w->plen) == 0) {
            return m;
        }
    }
    json_t *changes = json_array();
    json_t *doc = NULL;
    char *text = NULL;
    if (changes == NULL) {
        goto fail;
    }
    for (size_t i = lo; i < p->nrows; i++) {
        if (matches(w, &p->rows[i]) && json_array_append(changes, p->rows[i].obj) != 0) {
            goto fail;
        }
    }
    doc = json_pack("{s:O,s:I}", "changes", changes, "next_after_revision",
                    (json_int_t)p->cache_head);
    if (doc == NULL || (text = json_dumps(doc, JSON_COMPACT)) == NULL) {
        goto fail;
    }
    json_decref(doc);
    json_decref(changes);
    struct memo *m = &p->memo[p->memo_next];
    p->memo_next = (p->memo_next + 1) % MEMO_SLOTS;
    free(m->body);
    m->used = true;
    m->lo = lo;
    m->filter = w->filter;
    m->plen = w->plen;
    memcpy(m->pattern, w->pattern, w->plen);
    m->body = text;
    m->len = strlen(text);
    return m;
fail:
    json_decref(doc);
    json_decref(changes);
    return NULL;
}

/* Compares W (its after_revision at or past cache_after) with P's cached page: answers it
 * with its matching revisions, or moves it to the waiting list with after_revision advanced
 * past what the page covered. */
static void serve(struct project *p, struct waiter *w)
{
    /* The first row after W's cursor: rows are in revision order. */
    size_t lo = 0, hi = p->nrows;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (p->rows[mid].rev <= w->after) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    bool any = false;
    for (size_t i = lo; i < p->nrows && !any; i++) {
        any = matches(w, &p->rows[i]);
    }
    if (any) {
        /* Every watcher with the same first row and filter gets the same changes and the same
         * next_after_revision (the page's head): one serialisation for all of them. */
        const struct memo *m = memo_get(p, w, lo);
        if (m == NULL) {
            answer(w, DB_ERROR, "out of memory answering a watch", NULL, 0);
        } else {
            answer(w, DB_OK, "", m->body, m->len);
        }
        return;
    }
    if (p->cache_head > w->after) {
        w->after = p->cache_head;
    }
    if (w->fresh) {
        /* Only a fresh watcher moves: one already waiting keeps its place, so that a walk of
         * the waiting list meets every watcher once. */
        w->fresh = false;
        wlist_remove(w);
        wlist_push(&p->waiting, w);
    }
}

/* Serves every fresh watcher of P that the cache covers. */
static void serve_fresh(struct project *p)
{
    struct waiter *w = p->fresh.head.next;
    while (w != &p->fresh.head) {
        struct waiter *next = w->next;
        if (w->after >= p->cache_after) {
            serve(p, w);
        }
        w = next;
    }
}

/* ---- the query ----------------------------------------------------------------------- */

static int query_work(PGconn *conn, void *arg, char *errmsg, size_t errlen)
{
    struct query_job *job = arg;
    return db_configs_changes(conn, job->id, job->after, WATCH_HUB_PAGE, &job->rows, errmsg,
                              errlen);
}

static void finish_close(struct watch_hub *h);

/* Takes ROWS (stolen) as P's cache. Returns 0, or -1 when out of memory (the cache is gone). */
static int set_cache(struct project *p, json_t *rows, uint64_t after, bool more)
{
    memo_clear(p);
    json_decref(p->cache);
    free(p->rows);
    p->cache = rows;
    p->rows = NULL;
    p->nrows = 0;
    p->cache_valid = false;
    size_t n = json_array_size(rows);
    if (n > 0 && (p->rows = calloc(n, sizeof(*p->rows))) == NULL) {
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *o = json_array_get(rows, i);
        struct crow *r = &p->rows[i];
        r->obj = o;
        r->rev = (uint64_t)json_integer_value(json_object_get(o, "revision"));
        r->key = json_string_value(json_object_get(o, "key"));
        r->keylen = r->key != NULL ? json_string_length(json_object_get(o, "key")) : 0;
        if (r->key == NULL) {
            r->key = "";
        }
    }
    p->nrows = n;
    p->cache_after = after;
    p->cache_head = n > 0 ? p->rows[n - 1].rev : after;
    p->more = more;
    p->cache_valid = true;
    return 0;
}

static void job_free(struct query_job *job)
{
    json_decref(job->rows);
    free(job->pending);
    free(job);
}

static uint64_t row_rev(json_t *rows, size_t i)
{
    return (uint64_t)json_integer_value(json_object_get(json_array_get(rows, i), "revision"));
}

/*
 * The completeness guard: drops from JOB's page every row that this node cannot prove comes
 * with all the project's earlier revisions, and returns whether it dropped any.
 *
 * Why a page could have a hole: a query may run before this node knows PostgreSQL holds the
 * revisions (the early query of a follower), and nothing here relies on PostgreSQL making
 * revisions visible in revision order (the materializer commits its batches in raft order, one
 * transaction after the other, so today it does; a pipelined materializer might not). What the
 * node knows at submission: a revision numbered up to JOB->revision that is not in its queue
 * was trimmed by a materialized(N) entry applied here, which the leader proposed only after
 * PostgreSQL committed it, so the query (started later) sees it; one in the queue (JOB->pending)
 * may or may not be visible; one numbered after JOB->revision is unknown here. So the page is
 * complete up to just before the first queued revision it lacks, and at most up to
 * JOB->revision: the rows after that point are dropped, and are read again by a later query.
 * Sets *LIMIT to that point (JOB->revision when no queued revision is missing).
 */
static bool guard_page(struct query_job *job, uint64_t *limit_out)
{
    *limit_out = job->revision;
    if (job->revision == 0) {
        return false; /* no state machine: trust PostgreSQL's order, as before */
    }
    uint64_t limit = job->npending == WATCH_HUB_PENDING_UNKNOWN ? job->after : job->revision;
    size_t n = json_array_size(job->rows), i = 0;
    size_t stored = job->npending < WATCH_HUB_PAGE + 1 ? job->npending : WATCH_HUB_PAGE + 1;
    size_t j = 0;
    if (job->npending == WATCH_HUB_PENDING_UNKNOWN) {
        stored = 0;
    }
    for (; j < stored && job->pending[j] <= limit; j++) {
        while (i < n && row_rev(job->rows, i) < job->pending[j]) {
            i++;
        }
        if (i == n || row_rev(job->rows, i) != job->pending[j]) {
            limit = job->pending[j] - 1;
            break;
        }
    }
    if (j == stored && stored > 0 && stored < job->npending && job->pending[stored - 1] < limit) {
        limit = job->pending[stored - 1]; /* the queue after the stored part is not known */
    }
    bool dropped = false;
    while (n > 0 && row_rev(job->rows, n - 1) > limit) {
        json_array_remove(job->rows, --n);
        dropped = true;
    }
    *limit_out = limit;
    return dropped;
}

static void query_done(int status, const char *errmsg, void *arg)
{
    struct query_job *job = arg;
    struct project *p = job->p;
    struct watch_hub *h = p->hub;
    p->querying = false;
    h->inflight--;
    if (h->closing) {
        job_free(job);
        finish_close(h);
        return;
    }
    if (status != DB_OK) {
        job_free(job);
        /* The watchers of this project waited for what the query was to find: each gets the
         * failure, as when every watcher ran its own query. */
        answer_all(p, status, errmsg);
        return;
    }
    bool full = json_array_size(job->rows) >= WATCH_HUB_PAGE;
    uint64_t limit;
    bool dropped = guard_page(job, &limit);
    /* A page cut by the guard is not "more": its dropped rows wait for the node to learn
     * more (a new revision applied or a moved materialized index), not for the next tick. */
    json_t *rows = job->rows;
    job->rows = NULL;
    if (set_cache(p, rows, job->after, full && !dropped) != 0) {
        job_free(job);
        answer_all(p, DB_ERROR, "out of memory keeping the watch page");
        return;
    }
    p->qindex = job->index;
    /* The page holds every revision of the project numbered up to the node's revision at
     * submission when no queued revision was missing and it was not cut by its size (not full,
     * or full but reaching past that revision); else only up to its last row. */
    if (job->revision != 0) {
        p->covered = limit == job->revision && (dropped || !full) ? job->revision : p->cache_head;
    }
    job_free(job);
    struct wlist *lists[] = {&p->waiting, &p->fresh};
    for (size_t i = 0; i < 2; i++) {
        struct waiter *w = lists[i]->head.next;
        while (w != &lists[i]->head) {
            struct waiter *next = w->next;
            /* Watchers that came during the query with an older cursor wait for the next. */
            if (w->after >= p->cache_after) {
                serve(p, w);
            }
            w = next;
        }
    }
}

/* Queries P's revisions after the smallest cursor among its watchers, with the node's view V
 * at submission. */
static void submit(struct watch_hub *h, struct project *p, const struct watch_hub_view *v)
{
    uint64_t min = UINT64_MAX;
    struct wlist *lists[] = {&p->fresh, &p->waiting};
    for (size_t i = 0; i < 2; i++) {
        for (struct waiter *w = lists[i]->head.next; w != &lists[i]->head; w = w->next) {
            if (w->after < min) {
                min = w->after;
            }
        }
    }
    struct query_job *job = calloc(1, sizeof(*job));
    if (job == NULL) {
        answer_all(p, DB_ERROR, "out of memory starting the watch query");
        return;
    }
    job->p = p;
    job->after = min;
    job->index = v->materialized;
    job->revision = v->revision;
    memcpy(job->id, p->id, sizeof(job->id));
    if (v->revision != 0) {
        /* Read now, on the loop thread: what the node knew when the query started is what the
         * guard may rely on (guard_page()). */
        job->pending = calloc(WATCH_HUB_PAGE + 1, sizeof(*job->pending));
        if (job->pending == NULL) {
            free(job);
            answer_all(p, DB_ERROR, "out of memory starting the watch query");
            return;
        }
        job->npending = h->pending(h->node_data, p->id, min, job->pending, WATCH_HUB_PAGE + 1);
    }
    int rc = pgpool_submit(h->pool, query_work, query_done, job);
    if (rc != 0) {
        free(job->pending);
        free(job);
        answer_all(p, rc == PGPOOL_ECLOSED ? PGPOOL_ECLOSED : PGPOOL_EUNAVAILABLE,
                   rc == PGPOOL_ECLOSED ? "node is stopping" : "pool refused the job");
        return;
    }
    p->querying = true;
    h->inflight++;
    h->queries++;
}

/* ---- the timer ----------------------------------------------------------------------- */

/* Answers, with no changes, the watchers of P past their deadline (only those already compared
 * with a page: a fresh one is answered by its first query) and those whose client is gone. */
static void sweep(struct project *p, uint64_t now)
{
    struct wlist *lists[] = {&p->fresh, &p->waiting};
    for (size_t i = 0; i < 2; i++) {
        struct waiter *w = lists[i]->head.next;
        while (w != &lists[i]->head) {
            struct waiter *next = w->next;
            if ((i == 1 && now >= w->deadline) || (w->gone != NULL && w->gone(w->data))) {
                answer_empty(w);
            }
            w = next;
        }
    }
}

static void project_free(struct project *p)
{
    memo_clear(p);
    json_decref(p->cache);
    free(p->rows);
    free(p);
}

/*
 * Whether P, with watchers waiting and no query in flight, needs a query now, given the node's
 * view V. Without a state machine (V->revision 0): when the materialized index moved, as
 * before. With one: only when the node applied a revision the cache may lack (V->revision past
 * P->covered), and then
 *   - when the materialized index moved since the last query (PostgreSQL holds more), or
 *   - early, on a node that does not write PostgreSQL: a follower learns that PostgreSQL holds
 *     a revision only from the leader's materialized(N) entry, known committed here with the
 *     leader's next message, tens of milliseconds after PostgreSQL had it. It usually has it
 *     already when the follower applies the write (the leader tells a follower that the write
 *     committed with the append of that very entry), so the hub asks at once and at the next
 *     ticks, EARLY_TRIES times per new revision at most, then waits for the index as before.
 *     A row PostgreSQL returns is committed by definition; guard_page() keeps only the rows
 *     that come with every earlier revision.
 * So the queries per change are one per project when PostgreSQL has the change by the first
 * query, at most EARLY_TRIES + 1 otherwise: bounded and independent of the watcher count.
 */
static bool wants_query(struct project *p, const struct watch_hub_view *v)
{
    if (!p->cache_valid || p->more || !wlist_empty(&p->fresh)) {
        return true;
    }
    if (v->revision == 0) {
        return v->materialized != p->qindex;
    }
    if (v->revision <= p->covered) {
        return false;
    }
    if (v->materialized != p->qindex) {
        return true;
    }
    if (v->writer) {
        return false;
    }
    if (p->early_rev != v->revision) {
        p->early_rev = v->revision;
        p->early_tries = 0;
    }
    if (p->early_tries >= EARLY_TRIES) {
        return false;
    }
    p->early_tries++;
    return true;
}

static void tick(uv_timer_t *t)
{
    struct watch_hub *h = t->data;
    uint64_t now = uv_now(h->loop);
    struct watch_hub_view v;
    h->view(h->node_data, &v);
    bool do_sweep = now >= h->next_sweep;
    if (do_sweep) {
        h->next_sweep = now + WATCH_HUB_SWEEP_MS;
    }
    struct project **pp = &h->projects;
    while (*pp != NULL) {
        struct project *p = *pp;
        if (p->cache_valid) {
            serve_fresh(p);
        }
        if (do_sweep) {
            sweep(p, now);
        }
        if (!p->querying && p->nwaiters > 0 && wants_query(p, &v)) {
            submit(h, p, &v);
        }
        if (p->nwaiters == 0 && !p->querying && now - p->idle_since >= KEEP_IDLE_MS) {
            *pp = p->next;
            project_free(p);
            continue;
        }
        pp = &p->next;
    }
    if (h->projects == NULL) {
        uv_timer_stop(&h->timer);
    }
}

/* ---- the public functions ------------------------------------------------------------ */

int watch_hub_new(struct watch_hub **out, uv_loop_t *loop, struct pgpool *pool,
                  watch_hub_view_fn view, watch_hub_pending_fn pending, void *node_data,
                  char *errmsg, size_t errlen)
{
    struct watch_hub *h = calloc(1, sizeof(*h));
    *out = NULL;
    if (h == NULL) {
        snprintf(errmsg, errlen, "out of memory creating the watch hub");
        return WATCH_HUB_ENOMEM;
    }
    h->loop = loop;
    h->pool = pool;
    h->view = view;
    h->pending = pending;
    h->node_data = node_data;
    uv_timer_init(loop, &h->timer);
    h->timer.data = h;
    *out = h;
    return 0;
}

int watch_hub_add(struct watch_hub *h, const char *project, uint64_t after,
                  enum watch_hub_filter filter, const char *pattern, uint64_t timeout_ms,
                  watch_hub_answer_fn answer_cb, watch_hub_gone_fn gone, void *data, char *errmsg,
                  size_t errlen)
{
    if (h->closing) {
        snprintf(errmsg, errlen, "node is stopping");
        return WATCH_HUB_ECLOSED;
    }
    size_t idlen = strlen(project);
    size_t plen = filter == WATCH_HUB_ALL ? 0 : strlen(pattern);
    if (idlen == 0 || idlen > PROJECT_MAX) {
        snprintf(errmsg, errlen, "watch: project id of %zu characters is not 1 to %d", idlen,
                 PROJECT_MAX);
        return WATCH_HUB_EINVAL;
    }
    if (filter != WATCH_HUB_ALL && (plen == 0 || plen > WATCH_HUB_PATTERN_MAX)) {
        snprintf(errmsg, errlen, "watch: filter of %zu characters is not 1 to %d", plen,
                 WATCH_HUB_PATTERN_MAX);
        return WATCH_HUB_EINVAL;
    }
    struct project *p = h->projects;
    while (p != NULL && strcmp(p->id, project) != 0) {
        p = p->next;
    }
    if (p == NULL) {
        p = calloc(1, sizeof(*p));
        if (p == NULL) {
            snprintf(errmsg, errlen, "out of memory watching project %s", project);
            return WATCH_HUB_ENOMEM;
        }
        p->hub = h;
        wlist_init(&p->fresh);
        wlist_init(&p->waiting);
        memcpy(p->id, project, idlen + 1);
        p->next = h->projects;
        h->projects = p;
    }
    struct waiter *w = calloc(1, sizeof(*w));
    if (w == NULL) {
        snprintf(errmsg, errlen, "out of memory watching project %s", project);
        return WATCH_HUB_ENOMEM; /* an empty project is freed by the timer */
    }
    w->p = p;
    w->after = after;
    w->deadline = uv_now(h->loop) + timeout_ms;
    w->filter = filter;
    w->plen = plen;
    if (plen > 0) {
        memcpy(w->pattern, pattern, plen + 1);
    }
    w->answer = answer_cb;
    w->gone = gone;
    w->data = data;
    w->fresh = true;
    wlist_push(&p->fresh, w);
    p->nwaiters++;
    p->idle_since = 0;
    h->waiting++;
    if (!uv_is_active((uv_handle_t *)&h->timer)) {
        h->next_sweep = uv_now(h->loop) + WATCH_HUB_SWEEP_MS;
        uv_timer_start(&h->timer, tick, WATCH_HUB_TICK_MS, WATCH_HUB_TICK_MS);
    }
    return 0;
}

void watch_hub_stats(const struct watch_hub *h, struct watch_hub_stats *out)
{
    memset(out, 0, sizeof(*out));
    if (h != NULL) {
        out->waiting = h->waiting;
        out->queries = h->queries;
        out->answered = h->answered;
    }
}

/* Frees the hub once its timer is closed and no query is in flight, then calls back. */
static void finish_close(struct watch_hub *h)
{
    if (!h->closing || !h->timer_closed || h->inflight > 0) {
        return;
    }
    while (h->projects != NULL) {
        struct project *p = h->projects;
        h->projects = p->next;
        project_free(p);
    }
    void (*cb)(void *) = h->close_cb;
    void *data = h->close_data;
    free(h);
    if (cb != NULL) {
        cb(data);
    }
}

static void timer_closed(uv_handle_t *handle)
{
    struct watch_hub *h = handle->data;
    h->timer_closed = true;
    finish_close(h);
}

void watch_hub_close(struct watch_hub *h, void (*cb)(void *data), void *data)
{
    h->closing = true;
    h->close_cb = cb;
    h->close_data = data;
    for (struct project *p = h->projects; p != NULL; p = p->next) {
        answer_all(p, DB_OK, "");
    }
    uv_timer_stop(&h->timer);
    uv_close((uv_handle_t *)&h->timer, timer_closed);
}
