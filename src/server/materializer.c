#include "server/materializer.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "raft/codec.h"
#include "storage/db.h"
#include "storage/db_revisions.h"
#include "raft/revision.h"

#define TICK_MS        20
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 2000

/* Bucket bounds of the batch size histogram, up to MATD_BATCH. */
static const double batch_bounds[] = {1, 2, 4, 8, 16, 32, 64, 128, 256};

struct waiter {
    struct waiter *next;
    uint64_t index;
    uint64_t deadline;
    materializer_wait_cb cb;
    void *data;
};

/* A batch handed to a pool worker: deep copies, because the state machine may change (and
 * free its queued revisions) while the worker runs. */
struct batch {
    struct matd *m;
    uint64_t term;
    size_t n;
    struct revision *revs;    /* owned copies */
    struct db_revision *rows; /* point into revs */
    uint64_t cursor;          /* out */
    uint64_t cursor_revision; /* out, read_cursor only */
    bool read_only;           /* a cursor read, no rows */
};

struct matd {
    uv_loop_t *loop;
    struct pgpool *pool;
    struct rnode *rn;
    struct fsm *fsm;
    uv_timer_t timer;
    struct waiter *waiters;
    uint64_t cursor;      /* valid when cursor_term == the current term */
    uint64_t cursor_term; /* term in which cursor was read; 0 = unknown */
    bool busy;            /* a job is at a worker */
    uint64_t retry_at;    /* after a failure, no new job before this (loop ms) */
    uint64_t backoff;
    uint64_t proposed; /* highest materialized(N) proposed in this term */
    uint64_t batches;  /* for materializer_stats() */
    uint64_t failures;
    /* The stall report (materializer_stats): failed attempts in a row since the last success
     * or leadership change, and what the last one was about. Reset on success, so "stalled"
     * always describes the present, not history (failures counts history). */
    uint64_t failures_in_row;
    uint64_t failed_revision;   /* first revision of the failed batch; 0: the cursor read */
    uint64_t failed_raft_index; /* its raft index */
    char last_error[512];
    struct metrics_histogram batch_size;
    bool closing;
    void (*closed_cb)(void *);
    void *closed_data;
};

static void answer(struct matd *m, bool (*pick)(struct waiter *, struct matd *), int status)
{
    struct waiter **pp = &m->waiters;
    while (*pp != NULL) {
        struct waiter *w = *pp;
        if (pick(w, m)) {
            *pp = w->next;
            w->cb(w->data, status);
            free(w);
        } else {
            pp = &w->next;
        }
    }
}

static bool is_written(struct waiter *w, struct matd *m)
{
    /* Either this leader wrote it, or a materialized(N) entry (proposed only after a commit
     * in PostgreSQL) covers it: a retried request id whose write is long in PostgreSQL. */
    return (m->cursor_term != 0 && w->index <= m->cursor) ||
           w->index <= fsm_materialized_index(m->fsm);
}

static bool is_late(struct waiter *w, struct matd *m)
{
    return uv_now(m->loop) >= w->deadline;
}

static bool any(struct waiter *w, struct matd *m)
{
    (void)w;
    (void)m;
    return true;
}

static void batch_free(struct batch *b)
{
    for (size_t i = 0; i < b->n; i++) {
        revision_clear(&b->revs[i]);
    }
    free(b->revs);
    free(b->rows);
    free(b);
}

static int write_work(PGconn *conn, void *arg, char *errmsg, size_t errlen)
{
    struct batch *b = arg;
    if (b->read_only) {
        return db_revisions_read_cursor(conn, &b->cursor, &b->cursor_revision, errmsg, errlen);
    }
#ifdef CONCLAVE_PLANT_SKIP_BATCH
    /* PLANTED BUG for the chaos tests (docs/reliability.md): every 25th batch is reported
     * written, and its writes acknowledged, although nothing reached PostgreSQL. */
    static _Atomic unsigned planted_batches;
    if (++planted_batches % 25 == 0) {
        b->cursor = b->rows[b->n - 1].raft_index;
        return DB_OK;
    }
#endif
    return db_revisions_write_batch(conn, b->rows, b->n, &b->cursor, errmsg, errlen);
}

/* Proposes materialized(cursor) so every node drops what PostgreSQL now holds. Best effort:
 * a lost proposal is proposed again after the next batch. */
static void propose_trim(struct matd *m)
{
    if (m->cursor <= m->proposed || m->cursor <= fsm_materialized_index(m->fsm) ||
        !rnode_ready(m->rn)) {
        return;
    }
    struct codec_entry e = {.op = CODEC_OP_MATERIALIZED, .materialized_index = m->cursor};
    uint8_t *buf = NULL;
    size_t len = 0;
    char err[256];
    if (codec_encode(&e, &buf, &len, err, sizeof(err)) != 0) {
        fprintf(stderr, "materializer: cannot encode materialized(%llu): %s\n",
                (unsigned long long)m->cursor, err);
        return;
    }
    if (rnode_apply(m->rn, buf, len, NULL, NULL) == 0) {
        m->proposed = m->cursor;
    }
    free(buf);
}

static void schedule(struct matd *m, uint64_t delay);

static void write_done(int status, const char *errmsg, void *arg)
{
    struct batch *b = arg;
    struct matd *m = b->m;
    m->busy = false;
    if (status == DB_OK && !b->read_only) {
        /* Written even when the term has moved on since: PostgreSQL holds the rows. */
        m->batches++;
        metrics_histogram_observe(&m->batch_size, (double)b->n);
    } else if (status != DB_OK) {
        m->failures++;
    }
    if (status == DB_OK) {
        m->failures_in_row = 0;
    }
    if (status == DB_OK && b->term == m->cursor_term) {
        if (b->cursor > m->cursor) {
            m->cursor = b->cursor;
        }
        m->backoff = 0;
        m->retry_at = 0;
        answer(m, is_written, 0);
        propose_trim(m);
    } else if (status != DB_OK) {
        /* Never silent: every failed attempt is logged with the revisions and PostgreSQL's
         * words, counted, and kept for /ready and /metrics; retries back off (100 ms doubling
         * to 2 s), so a batch PostgreSQL refuses costs at most one attempt per 2 s. */
        m->backoff = m->backoff ? m->backoff * 2 : BACKOFF_MIN_MS;
        if (m->backoff > BACKOFF_MAX_MS) {
            m->backoff = BACKOFF_MAX_MS;
        }
        m->retry_at = uv_now(m->loop) + m->backoff;
        m->failures_in_row++;
        m->failed_revision = b->read_only || b->n == 0 ? 0 : b->revs[0].revision;
        m->failed_raft_index = b->read_only || b->n == 0 ? 0 : b->revs[0].raft_index;
        snprintf(m->last_error, sizeof(m->last_error), "%s", errmsg);
        if (b->read_only) {
            fprintf(stderr,
                    "materializer: reading the cursor failed (attempt %llu, retry in %llu ms): "
                    "%s\n",
                    (unsigned long long)m->failures_in_row, (unsigned long long)m->backoff, errmsg);
            m->cursor_term = 0;
        } else {
            fprintf(stderr,
                    "materializer: writing revisions %llu..%llu (raft indexes %llu..%llu) "
                    "failed (attempt %llu, retry in %llu ms): %s\n",
                    (unsigned long long)b->revs[0].revision,
                    (unsigned long long)b->revs[b->n - 1].revision,
                    (unsigned long long)b->revs[0].raft_index,
                    (unsigned long long)b->revs[b->n - 1].raft_index,
                    (unsigned long long)m->failures_in_row, (unsigned long long)m->backoff, errmsg);
        }
    }
    batch_free(b);
    if (m->closing) {
        schedule(m, 0);
        return;
    }
    schedule(m, status == DB_OK ? 0 : m->backoff);
}

/* Takes the next step if there is one. */
static void step(struct matd *m)
{
    if (m->busy || m->closing) {
        return;
    }
    struct rnode_info info;
    if (!rnode_ready(m->rn)) {
        if (m->cursor_term != 0) {
            m->cursor_term = 0;
            m->proposed = 0;
        }
        m->failures_in_row = 0; /* a follower writes nothing, so it cannot be stalled */
        answer(m, any, MATD_ELEADERSHIP);
        return;
    }
    rnode_info(m->rn, &info);
    if (m->cursor_term != info.term) {
        /* New term: PostgreSQL's cursor is the truth, whatever this node thought before. */
        m->cursor_term = 0;
        m->proposed = 0;
    }
    if (uv_now(m->loop) < m->retry_at) {
        return;
    }
    struct batch *b = calloc(1, sizeof(*b));
    if (b == NULL) {
        return;
    }
    b->m = m;
    b->term = info.term;
    if (m->cursor_term == 0) {
        b->read_only = true;
    } else {
        const struct revision *pending[MATD_BATCH];
        uint64_t from = m->cursor + 1;
        size_t n = fsm_pending_from(m->fsm, from, pending, MATD_BATCH);
        if (n == 0) {
            free(b);
            propose_trim(m);
            return;
        }
        b->revs = calloc(n, sizeof(*b->revs));
        b->rows = calloc(n, sizeof(*b->rows));
        if (b->revs == NULL || b->rows == NULL) {
            batch_free(b);
            return;
        }
        char err[256];
        for (size_t i = 0; i < n; i++) {
            if (revision_copy(&b->revs[i], pending[i], err, sizeof(err)) != 0) {
                batch_free(b);
                return;
            }
            b->n++;
            const struct revision *r = &b->revs[i];
            struct db_revision *row = &b->rows[i];
            row->revision = r->revision;
            row->project = r->project;
            row->key = r->key;
            row->version = r->version;
            row->op = revision_op_name(r->op);
            row->content = (const char *)r->content;
            row->content_len = r->content_len;
            row->source_version = r->source_version;
            row->has_schema = r->has_schema;
            memcpy(row->schema_id, r->schema_id, sizeof(row->schema_id));
            memcpy(row->schema_hash, r->schema_hash, sizeof(row->schema_hash));
            row->actor = r->actor;
            row->request_id = r->request_id;
            row->created_at_us = r->created_at;
            row->raft_index = r->raft_index;
            row->raft_term = r->raft_term;
            memcpy(row->prev_hash, r->prev_hash, 32);
            memcpy(row->hash, r->hash, 32);
        }
    }
    if (pgpool_submit(m->pool, write_work, write_done, b) != 0) {
        batch_free(b);
        return;
    }
    m->busy = true;
    if (b->read_only) {
        /* Remember the term now; write_done() drops it again if the read fails. */
        m->cursor_term = info.term;
    }
}

static void timer_closed(uv_handle_t *h)
{
    struct matd *m = h->data;
    void (*cb)(void *) = m->closed_cb;
    void *data = m->closed_data;
    free(m);
    if (cb != NULL) {
        cb(data);
    }
}

static void on_timer(uv_timer_t *t)
{
    struct matd *m = t->data;
    answer(m, is_written, 0);
    answer(m, is_late, MATD_ETIMEDOUT);
    step(m);
    if (m->closing && !m->busy) {
        uv_timer_stop(&m->timer);
        if (!uv_is_closing((uv_handle_t *)&m->timer)) {
            uv_close((uv_handle_t *)&m->timer, timer_closed);
        }
        return;
    }
    schedule(m, TICK_MS);
}

static void schedule(struct matd *m, uint64_t delay)
{
    uv_timer_start(&m->timer, on_timer, delay, 0);
}

int materializer_init(struct matd **out, uv_loop_t *loop, struct pgpool *pool, struct rnode *rn,
                      struct fsm *fsm, char *errmsg, size_t errlen)
{
    /* The test failpoint (docs/hacking.md), read once here. */
    const char *fp = getenv("CONCLAVE_FAILPOINT_MATERIALIZER_PAUSE_MS");
    if (fp != NULL) {
        char *end = NULL;
        errno = 0;
        unsigned long ms = strtoul(fp, &end, 10);
        if (errno != 0 || end == fp || *end != '\0' || fp[0] == '-' || ms > 600000) {
            snprintf(errmsg, errlen,
                     "CONCLAVE_FAILPOINT_MATERIALIZER_PAUSE_MS=\"%s\" is not a whole number of "
                     "milliseconds from 0 to 600000",
                     fp);
            return -1;
        }
        if (ms > 0) {
            fprintf(stderr,
                    "materializer: failpoint: every batch pauses %lu ms holding the "
                    "cursor lock\n",
                    ms);
        }
        db_revisions_failpoint_pause((unsigned)ms);
    }
    struct matd *m = calloc(1, sizeof(*m));
    if (m == NULL) {
        snprintf(errmsg, errlen, "out of memory creating the materializer");
        return -1;
    }
    m->loop = loop;
    m->pool = pool;
    m->rn = rn;
    m->fsm = fsm;
    metrics_histogram_init(&m->batch_size, batch_bounds,
                           sizeof(batch_bounds) / sizeof(batch_bounds[0]));
    uv_timer_init(loop, &m->timer);
    m->timer.data = m;
    schedule(m, TICK_MS);
    *out = m;
    return 0;
}

void materializer_kick(struct matd *m)
{
    if (m != NULL && !m->closing && !m->busy) {
        schedule(m, 0);
    }
}

int materializer_wait(struct matd *m, uint64_t raft_index, uint64_t timeout_ms,
                      materializer_wait_cb cb, void *data)
{
    if (m == NULL || m->closing) {
        return MATD_ECLOSED;
    }
    struct waiter *w = calloc(1, sizeof(*w));
    if (w == NULL) {
        return MATD_ECLOSED;
    }
    w->index = raft_index;
    w->deadline = uv_now(m->loop) + timeout_ms;
    w->cb = cb;
    w->data = data;
    w->next = m->waiters;
    m->waiters = w;
    materializer_kick(m);
    return 0;
}

uint64_t materializer_cursor_index(const struct matd *m)
{
    return m->cursor_term != 0 ? m->cursor : 0;
}

void materializer_stats(const struct matd *m, struct materializer_stats *out)
{
    memset(out, 0, sizeof(*out));
    out->batches = m->batches;
    out->failures = m->failures;
    out->stalled = m->failures_in_row > 0;
    out->failures_in_row = m->failures_in_row;
    out->failed_revision = m->failed_revision;
    out->failed_raft_index = m->failed_raft_index;
    if (out->stalled) {
        snprintf(out->last_error, sizeof(out->last_error), "%s", m->last_error);
    }
    out->batch_size = m->batch_size;
    /* The queue is in raft order; count what lies after the cursor in MATD_BATCH steps. */
    const struct revision *chunk[MATD_BATCH];
    uint64_t from = materializer_cursor_index(m) + 1;
    for (;;) {
        size_t n = fsm_pending_from(m->fsm, from, chunk, MATD_BATCH);
        out->lag_revisions += n;
        if (n < MATD_BATCH) {
            break;
        }
        from = chunk[n - 1]->raft_index + 1;
    }
}

void materializer_close(struct matd *m, void (*cb)(void *data), void *data)
{
    m->closing = true;
    m->closed_cb = cb;
    m->closed_data = data;
    answer(m, any, MATD_ECLOSED);
    schedule(m, 0);
}
