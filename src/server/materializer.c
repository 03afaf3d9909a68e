#include "server/materializer.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "raft/codec.h"
#include "storage/db.h"
#include "storage/db_revisions.h"
#include "raft/revision.h"
#include "server/reqbloom.h"

#define TICK_MS        20
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 2000
/* While PostgreSQL is behind, its cursor (and postgresql_losses) is read again this often:
 * a newer backup restored clears the detection, and an accepted loss is applied, within about
 * a second. */
#define BEHIND_RECHECK_MS 1000
/* An idle leader reads the cursor this often, so a restore with no write in flight is
 * noticed (and /ready, /metrics show it) within that time. */
#define IDLE_RECHECK_MS 2000
/* How long a batch's PostgreSQL flush may be deferred (see "Deferred flushes" in
 * materializer.h): the usual batch commits without waiting for its WAL to reach the disk, and
 * at least this often a synchronous commit (a batch, or a flush job when idle) makes everything
 * before it durable; only then does the trim entry drop those revisions from the queues. */
#define FLUSH_MS     20
#define FLUSH_MS_MAX 600000
/* Rows of config_revisions one page of the request-id filter's load reads. */
#define BLOOM_PAGE 100000
/* Raft indexes of retried writes checked in config_revisions by one cursor read. */
#define VERIFY_MAX 64

/* Bucket bounds of the batch size histogram, up to MATD_BATCH. */
static const double batch_bounds[] = {1, 2, 4, 8, 16, 32, 64, 128, 256};

struct waiter {
    struct waiter *next;
    uint64_t index;
    uint64_t deadline;
    materializer_wait_cb cb;
    void *data;
    /* An index PostgreSQL was believed to hold when the wait began (a retry): answered only
     * from a cursor read that looked its row up in config_revisions (in_job: sent with the
     * read in flight). */
    bool verify;
    bool in_job;
};

enum job {
    JOB_READ,  /* read the cursor (and the rows of verify waiters, and an accepted loss) */
    JOB_WRITE, /* write a batch; on failure read the cursor, to tell a gap from a stall */
    JOB_SKIP,  /* move the cursor past an accepted loss */
    JOB_FLUSH, /* a synchronous commit: every batch committed before it becomes durable */
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
    uint64_t cursor_revision; /* out, JOB_READ only */
    enum job kind;
    bool defer;            /* JOB_WRITE: the commit may skip waiting for its flush (in) */
    bool flushed;          /* JOB_WRITE: the commit waited for its flush (out) */
    uint64_t submitted_ns; /* uv_hrtime() on the loop just before the job was handed over */
    uint64_t txn_ns;       /* out, JOB_WRITE: time in db_revisions_write_batch() on the worker */
    /* PostgreSQL's cursor as read by the job (JOB_READ; JOB_WRITE after a failure). */
    bool pg_read;
    uint64_t pg_index, pg_revision;
    /* JOB_READ: the raft indexes of verify waiters to look up (in), which have a row (out). */
    size_t n_verify;
    uint64_t verify[VERIFY_MAX];
    bool present[VERIFY_MAX];
    /* JOB_READ while behind: the accepted loss starting right after the cursor, if any.
     * JOB_SKIP: the loss to skip (in). */
    bool want_loss;
    int loss_found;
    struct db_revisions_loss loss;
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
    /* The highest raft index PostgreSQL holds durably, as a synchronous commit of this term
     * proved (0: none yet). Only up to it may the queues be trimmed: above it, PostgreSQL may
     * still lose a deferred commit in a crash, and the queue is then what writes it again. */
    uint64_t durable;
    uint64_t flush_due; /* loop ms by which the next commit must be synchronous */
    uint64_t flush_ms;  /* FLUSH_MS, or the test failpoint's value */
    uint64_t batches;   /* for materializer_stats() */
    uint64_t failures;
    /* The stall report (materializer_stats): failed attempts in a row since the last success
     * or leadership change, and what the last one was about. Reset on success, so "stalled"
     * always describes the present, not history (failures counts history). */
    uint64_t failures_in_row;
    uint64_t failed_revision;   /* first revision of the failed batch; 0: the cursor read */
    uint64_t failed_raft_index; /* its raft index */
    char last_error[512];
    /* PostgreSQL behind the cluster: set from every cursor read (and the read after every
     * failed batch) by check_gap(); cleared when a read finds no gap or an accepted loss was
     * skipped. Only meaningful while cursor_term != 0 (this node leads and read the cursor). */
    bool behind;
    struct db_revisions_loss gap; /* what PostgreSQL lacks */
    /* PostgreSQL ahead of the cluster: its cursor holds revisions past every one this state
     * machine has (the nodes' raft data is older than the database: emptied, or restored
     * from an older copy, or the database is another cluster's). Then raft indexes say nothing
     * about what PostgreSQL holds, so nothing counts as written and nothing is written; writes
     * are refused until an operator restores raft data that matches (docs/backup.md). Set and
     * cleared by check_gap() like behind. */
    bool ahead;
    uint64_t ahead_pg_revision, ahead_pg_index, ahead_fsm_revision;
    bool skip_ready; /* an accepted loss equal to gap: JOB_SKIP next */
    char behind_note[256];
    bool cursor_read_pending; /* the job at a worker is this term's first cursor read */
    bool recheck;             /* a verify waiter wants a cursor read */
    uint64_t next_recheck;    /* loop ms of the next idle (or behind) cursor read */
    struct metrics_histogram batch_size;
    struct metrics_histogram batch_seconds;       /* per written batch: submitted -> done */
    struct metrics_histogram transaction_seconds; /* per written batch: the worker's share */
    /* The request-id filter (reqbloom.h): holds every request id of config_revisions up to
     * revision bloom_upto. It advances by pages read from PostgreSQL (bloom_loading: one at a
     * worker) and by this leader's own batches when they continue it without a gap. */
    struct reqbloom *bloom;
    uint64_t bloom_upto;
    bool bloom_loading;
    bool bloom_more;                    /* the last page was full: read the next */
    uint64_t filter_new, filter_lookup; /* for materializer_stats() */
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
    /* This leader wrote it, or read a cursor past it (m->cursor is only ever set from
     * PostgreSQL in this term). Not "a materialized(N) entry covers it": that says PostgreSQL
     * held it once, and a restore of an older backup can have taken it away since (issue 14).
     * A verify waiter is answered by the read that looked its row up, never here. */
    return !w->verify && m->cursor_term != 0 && !m->behind && !m->ahead && w->index <= m->cursor;
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

/* Looks up which of B's verify indexes have a row in config_revisions. */
static int read_verify(PGconn *conn, struct batch *b, char *errmsg, size_t errlen)
{
    char list[VERIFY_MAX * 21 + 3];
    size_t len = 0;
    list[len++] = '{';
    for (size_t i = 0; i < b->n_verify; i++) {
        len += (size_t)snprintf(list + len, sizeof(list) - len, "%s%llu", i ? "," : "",
                                (unsigned long long)b->verify[i]);
    }
    snprintf(list + len, sizeof(list) - len, "}");
    const char *p[] = {list};
    PGresult *res;
    int rc =
        db_query(conn, "looking up retried revisions",
                 "SELECT raft_index FROM config_revisions WHERE raft_index = ANY($1::bigint[])", 1,
                 p, &res, errmsg, errlen);
    if (rc != DB_OK) {
        return rc == DB_UNAVAILABLE ? rc : DB_ERROR;
    }
    for (int r = 0; r < PQntuples(res); r++) {
        unsigned long long idx = strtoull(PQgetvalue(res, r, 0), NULL, 10);
        for (size_t i = 0; i < b->n_verify; i++) {
            if (b->verify[i] == idx) {
                b->present[i] = true;
            }
        }
    }
    PQclear(res);
    return DB_OK;
}

static int write_work(PGconn *conn, void *arg, char *errmsg, size_t errlen)
{
    struct batch *b = arg;
    if (b->kind == JOB_SKIP) {
        return db_revisions_skip_loss(conn, &b->loss, errmsg, errlen);
    }
    if (b->kind == JOB_FLUSH) {
        int rc = db_revisions_flush(conn, &b->pg_index, &b->pg_revision, errmsg, errlen);
        b->pg_read = rc == DB_OK;
        return rc;
    }
    if (b->kind == JOB_READ) {
        int rc = db_revisions_read_cursor(conn, &b->cursor, &b->cursor_revision, errmsg, errlen);
        if (rc != DB_OK) {
            return rc;
        }
        b->pg_read = true;
        b->pg_index = b->cursor;
        b->pg_revision = b->cursor_revision;
        /* The rows are looked up after the cursor was read: a row found is in PostgreSQL
         * whatever the cursor says; one not found is judged against this cursor. */
        if (b->n_verify > 0 && (rc = read_verify(conn, b, errmsg, errlen)) != DB_OK) {
            return rc;
        }
        if (b->want_loss) {
            rc = db_revisions_find_loss(conn, b->cursor_revision + 1, &b->loss, &b->loss_found,
                                        errmsg, errlen);
        }
        return rc;
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
    /* Timed on the worker: the transaction alone, so that a batch's time on the loop's clock
     * (batch_seconds) splits into PostgreSQL and the hand-offs around it. */
    uint64_t t0 = uv_hrtime();
    int rc =
        db_revisions_write_batch_ex(conn, b->rows, b->n, b->defer ? DB_REVISIONS_DEFER_FLUSH : 0,
                                    &b->cursor, &b->flushed, errmsg, errlen);
    b->txn_ns = uv_hrtime() - t0;
    if (rc == DB_ERROR) {
        /* Every failed batch reads the cursor again, so that write_done() can tell PostgreSQL
         * behind the cluster (a revision gap) from a batch it refuses. The batch's error
         * stays the job's error. */
        char ignored[256];
        b->pg_read = db_revisions_read_cursor(conn, &b->pg_index, &b->pg_revision, ignored,
                                              sizeof(ignored)) == DB_OK;
    }
    return rc;
}

/* Compares PostgreSQL's cursor (PG_INDEX, PG_REVISION) with what the cluster trimmed, and
 * sets or clears m->behind. The state machines dropped every revision up to
 * fsm_materialized_index() from their queues, because PostgreSQL had committed them; the
 * last of those is the revision before the first one still queued (or the last revision
 * of all when nothing is queued). If PostgreSQL's cursor is below it, PostgreSQL lost
 * committed revisions that exist nowhere else now: revision pg+1 up to that one. */
/* The last revision every queue dropped: the one before the first still queued, or the last of
 * all when nothing is queued. */
static uint64_t trimmed_revision(const struct matd *m)
{
    const struct revision *first[1];
    return fsm_pending_from(m->fsm, 0, first, 1) == 1 ? first[0]->revision - 1
                                                      : fsm_revision(m->fsm);
}

static void check_gap(struct matd *m, uint64_t pg_index, uint64_t pg_revision)
{
    /* This node leads and applied everything committed before its term (rnode_ready), and
     * PostgreSQL only ever holds committed revisions: in one cluster its cursor can never be
     * past this state machine's last revision. */
    uint64_t have = fsm_revision(m->fsm);
    if (pg_revision > have) {
        if (!m->ahead || m->ahead_pg_revision != pg_revision || m->ahead_fsm_revision != have) {
            fprintf(stderr,
                    "materializer: postgresql is ahead of the cluster: it holds revisions up to "
                    "%llu (raft index %llu), and this cluster's state machine has only %llu: "
                    "the nodes' raft data is older than the database (emptied, or restored "
                    "from an older copy) or the database is another cluster's; writes are "
                    "refused until the nodes' raft data matches the database "
                    "(docs/backup.md)\n",
                    (unsigned long long)pg_revision, (unsigned long long)pg_index,
                    (unsigned long long)have);
        }
        m->ahead = true;
        m->ahead_pg_revision = pg_revision;
        m->ahead_pg_index = pg_index;
        m->ahead_fsm_revision = have;
        m->behind = false;
        m->skip_ready = false;
        return;
    }
    if (m->ahead) {
        fprintf(stderr,
                "materializer: postgresql is no longer ahead of the cluster (cursor at revision "
                "%llu, state machine at %llu)\n",
                (unsigned long long)pg_revision, (unsigned long long)have);
        m->ahead = false;
    }
    uint64_t trimmed_rev = trimmed_revision(m);
    uint64_t trimmed_index = fsm_materialized_index(m->fsm);
    if (pg_revision >= trimmed_rev) {
        if (m->behind) {
            fprintf(stderr,
                    "materializer: postgresql is no longer behind the cluster (cursor at "
                    "revision %llu, raft index %llu): writes resume\n",
                    (unsigned long long)pg_revision, (unsigned long long)pg_index);
        }
        m->behind = false;
        m->skip_ready = false;
        m->behind_note[0] = '\0';
        return;
    }
    struct db_revisions_loss gap = {
        .revision_from = pg_revision + 1,
        .revision_to = trimmed_rev,
        .raft_index_from = pg_index + 1,
        /* Never an empty range, even for a PostgreSQL holding another cluster's history. */
        .raft_index_to = trimmed_index > pg_index ? trimmed_index : pg_index + 1,
    };
    if (!m->behind || memcmp(&gap, &m->gap, sizeof(gap)) != 0) {
        fprintf(stderr,
                "materializer: postgresql is behind the cluster: it lacks revisions %llu..%llu "
                "(raft indexes %llu..%llu), which every node already trimmed from its queue (an "
                "older backup restored, or a failover to an asynchronous replica?); writes are "
                "refused until a newer backup is restored or the loss is accepted "
                "(docs/operations.md)\n",
                (unsigned long long)gap.revision_from, (unsigned long long)gap.revision_to,
                (unsigned long long)gap.raft_index_from, (unsigned long long)gap.raft_index_to);
        m->skip_ready = false;
        m->behind_note[0] = '\0';
    }
    m->behind = true;
    m->gap = gap;
}

/* Judges an accepted loss read with the cursor while behind: it applies only when it names
 * exactly the gap this leader sees (a mistyped range changes nothing). */
static void consider_loss(struct matd *m, const struct db_revisions_loss *l)
{
    if (memcmp(l, &m->gap, sizeof(*l)) == 0) {
        m->skip_ready = true;
        return;
    }
    char note[sizeof(m->behind_note)];
    snprintf(note, sizeof(note),
             "postgresql_losses accepts revisions %llu..%llu (raft indexes %llu..%llu), not the "
             "missing %llu..%llu (raft indexes %llu..%llu): run accept-postgresql-loss again "
             "with the missing range",
             (unsigned long long)l->revision_from, (unsigned long long)l->revision_to,
             (unsigned long long)l->raft_index_from, (unsigned long long)l->raft_index_to,
             (unsigned long long)m->gap.revision_from, (unsigned long long)m->gap.revision_to,
             (unsigned long long)m->gap.raft_index_from, (unsigned long long)m->gap.raft_index_to);
    if (strcmp(note, m->behind_note) != 0) {
        fprintf(stderr, "materializer: %s\n", note);
        snprintf(m->behind_note, sizeof(m->behind_note), "%s", note);
    }
}

/* Answers the verify waiters B looked up: a row found is in PostgreSQL (0); a row missing is
 * lost, MATD_EBEHIND while the gap is open and MATD_ELOST once the cursor is past it (an
 * accepted loss). A missing row above the cursor and outside the gap is still to be written
 * (it cannot be, as an index below the trimmed one, but then it simply waits). */
static void answer_verified(struct matd *m, const struct batch *b)
{
    struct waiter **pp = &m->waiters;
    while (*pp != NULL) {
        struct waiter *w = *pp;
        int status = 1; /* 1: keep waiting */
        if (w->verify && w->in_job) {
            w->in_job = false;
            bool present = false;
            for (size_t i = 0; i < b->n_verify; i++) {
                present = present || (b->verify[i] == w->index && b->present[i]);
            }
            if (present) {
                status = 0;
            } else if (m->behind && w->index >= m->gap.raft_index_from &&
                       w->index <= m->gap.raft_index_to) {
                status = MATD_EBEHIND;
            } else if (w->index <= b->pg_index) {
                status = MATD_ELOST;
            } else {
                w->verify = false;
            }
        }
        if (status != 1) {
            *pp = w->next;
            w->cb(w->data, status);
            free(w);
        } else {
            pp = &w->next;
        }
    }
}

/* Proposes materialized(durable) so every node drops what PostgreSQL now holds durably. Never
 * the cursor itself: a deferred commit above m->durable is visible in PostgreSQL but may still
 * be lost in a crash of PostgreSQL, and then only the queues hold it. Best effort: a lost
 * proposal is proposed again after the next durable commit. */
static void propose_trim(struct matd *m)
{
    uint64_t upto = m->durable < m->cursor ? m->durable : m->cursor;
    if (upto <= m->proposed || upto <= fsm_materialized_index(m->fsm) || !rnode_ready(m->rn)) {
        return;
    }
    struct codec_entry e = {.op = CODEC_OP_MATERIALIZED, .materialized_index = upto};
    uint8_t *buf = NULL;
    size_t len = 0;
    char err[256];
    if (codec_encode(&e, &buf, &len, err, sizeof(err)) != 0) {
        fprintf(stderr, "materializer: cannot encode materialized(%llu): %s\n",
                (unsigned long long)upto, err);
        return;
    }
    if (rnode_apply(m->rn, buf, len, NULL, NULL) == 0) {
        m->proposed = upto;
    }
    free(buf);
}

static void schedule(struct matd *m, uint64_t delay);

/* Takes in what a job read of PostgreSQL's cursor: it is the truth for this term (it may be
 * below what this node believed, after a restore), so m->cursor follows it down as well as
 * up; then the gap check. */
static void took_cursor(struct matd *m, const struct batch *b)
{
    m->cursor = b->pg_index;
    check_gap(m, b->pg_index, b->pg_revision);
    if (m->behind && b->kind == JOB_READ && b->want_loss && b->loss_found) {
        consider_loss(m, &b->loss);
    }
}

/* This batch's request ids into the filter; it covers more only when the batch continues it
 * (the batch's first revision at most one past bloom_upto), else a page load fills the gap. */
static void bloom_take_batch(struct matd *m, const struct batch *b)
{
    if (m->bloom == NULL || b->n == 0) {
        return;
    }
    for (size_t i = 0; i < b->n; i++) {
        const struct revision *r = &b->revs[i];
        if (r->request_id != NULL && r->request_id[0] != '\0') {
            struct reqbloom_hash h;
            reqbloom_hash(m->bloom, r->project, strlen(r->project), r->request_id,
                          strlen(r->request_id), &h);
            reqbloom_add(m->bloom, &h);
        }
    }
    if (b->revs[0].revision <= m->bloom_upto + 1 && b->revs[b->n - 1].revision > m->bloom_upto) {
        m->bloom_upto = b->revs[b->n - 1].revision;
    }
}

static void bloom_step(struct matd *m);

/* One page of the filter's load, read and hashed on a worker. */
struct bloom_page {
    struct matd *m;
    const struct reqbloom *bloom; /* only its key is read on the worker */
    uint64_t after;
    struct reqbloom_hash *hashes;
    size_t n, cap;
    bool oom;
    size_t rows;
    uint64_t last;
};

static void bloom_visit(void *arg, const char *project, const char *request_id)
{
    struct bloom_page *p = arg;
    if (p->oom) {
        return;
    }
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 1024;
        struct reqbloom_hash *h = realloc(p->hashes, cap * sizeof(*h));
        if (h == NULL) {
            p->oom = true;
            return;
        }
        p->hashes = h;
        p->cap = cap;
    }
    reqbloom_hash(p->bloom, project, strlen(project), request_id, strlen(request_id),
                  &p->hashes[p->n++]);
}

static int bloom_work(PGconn *conn, void *arg, char *errmsg, size_t errlen)
{
    struct bloom_page *p = arg;
    int rc = db_revisions_request_ids(conn, p->after, BLOOM_PAGE, bloom_visit, p, &p->rows,
                                      &p->last, errmsg, errlen);
    if (rc == DB_OK && p->oom) {
        snprintf(errmsg, errlen, "loading request ids: out of memory");
        return DB_ERROR;
    }
    return rc;
}

static void bloom_done(int status, const char *errmsg, void *arg)
{
    struct bloom_page *p = arg;
    struct matd *m = p->m;
    m->bloom_loading = false;
    if (status == DB_OK) {
        for (size_t i = 0; i < p->n; i++) {
            reqbloom_add(m->bloom, &p->hashes[i]);
        }
        /* Every row up to p->last was read; PostgreSQL commits revisions in order, so none at
         * or below it can appear later but the same rows written again. Meanwhile a batch may
         * have moved bloom_upto further. */
        if (p->last > m->bloom_upto) {
            m->bloom_upto = p->last;
        }
        m->bloom_more = p->rows == BLOOM_PAGE;
    } else if (!m->closing) {
        fprintf(stderr,
                "materializer: loading the request-id filter failed (every write of a "
                "busy project looks its request id up meanwhile): %s\n",
                errmsg);
    }
    free(p->hashes);
    free(p);
    if (m->closing) {
        schedule(m, 0);
    } else if (m->bloom_more && rnode_ready(m->rn)) {
        bloom_step(m);
    }
}

/* Starts the next page of the filter's load when the filter lags what the queues trimmed. */
static void bloom_step(struct matd *m)
{
    if (m->bloom == NULL || m->bloom_loading || m->closing ||
        (!m->bloom_more && m->bloom_upto >= trimmed_revision(m))) {
        return;
    }
    struct bloom_page *p = calloc(1, sizeof(*p));
    if (p == NULL) {
        return;
    }
    p->m = m;
    p->bloom = m->bloom;
    p->after = m->bloom_upto;
    if (pgpool_submit(m->pool, bloom_work, bloom_done, p) != 0) {
        free(p);
        return;
    }
    m->bloom_loading = true;
}

bool materializer_request_is_new(struct matd *m, const char *project, const char *request_id)
{
    /* An id the state machine forgot belongs to a revision it trimmed, at or below
     * trimmed_revision(); the filter holds every id up to bloom_upto. */
    if (m == NULL) {
        return false;
    }
    bool is_new = false;
    if (m->bloom != NULL && m->bloom_upto >= trimmed_revision(m)) {
        struct reqbloom_hash h;
        reqbloom_hash(m->bloom, project, strlen(project), request_id, strlen(request_id), &h);
        is_new = !reqbloom_may_contain(m->bloom, &h);
    }
    if (is_new) {
        m->filter_new++;
    } else {
        m->filter_lookup++;
    }
    return is_new;
}

static void write_done(int status, const char *errmsg, void *arg)
{
    struct batch *b = arg;
    struct matd *m = b->m;
    m->busy = false;
    bool this_term = b->term == m->cursor_term;
    /* A cursor read below what this leader wrote: PostgreSQL lost commits (it crashed before
     * flushing deferred ones, or an older backup was restored). When the queues still hold
     * everything it lacks (check_gap() below finds no gap), the next batch simply writes those
     * revisions again: a batch that failed on the old cursor is not a failure of its own. */
    bool rewound = this_term && b->pg_read && b->pg_index < m->cursor;
    uint64_t believed = m->cursor;
    if (status == DB_OK && b->kind == JOB_WRITE) {
        /* Written even when the term has moved on since: PostgreSQL holds the rows. */
        m->batches++;
        bloom_take_batch(m, b);
        metrics_histogram_observe(&m->batch_size, (double)b->n);
        metrics_histogram_observe(&m->batch_seconds, (double)(uv_hrtime() - b->submitted_ns) / 1e9);
        metrics_histogram_observe(&m->transaction_seconds, (double)b->txn_ns / 1e9);
    } else if (status != DB_OK && !rewound) {
        m->failures++;
    }
    if (status == DB_OK) {
        m->failures_in_row = 0;
    }
    if (this_term && b->pg_read) {
        took_cursor(m, b);
    }
    if (rewound && !m->behind) {
        fprintf(stderr,
                "materializer: postgresql's cursor is at raft index %llu, below the %llu this "
                "leader wrote: it lost commits (a crash before it flushed deferred commits, or "
                "a restored backup); the queues still hold those revisions: writing them "
                "again\n",
                (unsigned long long)m->cursor, (unsigned long long)believed);
        if (m->durable > m->cursor) {
            m->durable = m->cursor; /* cannot happen unless PostgreSQL lost a flushed commit */
        }
    }
    if (status == DB_OK && this_term &&
        ((b->kind == JOB_WRITE && b->flushed) || b->kind == JOB_FLUSH)) {
        uint64_t upto = b->kind == JOB_FLUSH ? b->pg_index : b->cursor;
        if (upto > m->durable) {
            m->durable = upto;
        }
        m->flush_due = uv_now(m->loop) + m->flush_ms;
    }
    if (this_term && b->kind == JOB_READ && status == DB_OK) {
        answer_verified(m, b);
    }
    for (struct waiter *w = m->waiters; w != NULL; w = w->next) {
        w->in_job = false; /* a failed read: look them up again */
    }
    if (b->kind != JOB_WRITE) {
        m->next_recheck =
            uv_now(m->loop) + (m->behind || m->ahead ? BEHIND_RECHECK_MS : IDLE_RECHECK_MS);
    }
    if (status == DB_OK && this_term && b->kind == JOB_SKIP) {
        fprintf(stderr,
                "materializer: the loss of revisions %llu..%llu (raft indexes %llu..%llu) was "
                "accepted in postgresql_losses; the cursor moved past it and writes resume "
                "(audit verify reports those revisions as missing)\n",
                (unsigned long long)b->loss.revision_from, (unsigned long long)b->loss.revision_to,
                (unsigned long long)b->loss.raft_index_from,
                (unsigned long long)b->loss.raft_index_to);
        m->cursor = b->loss.raft_index_to;
        m->behind = false;
        m->skip_ready = false;
        m->behind_note[0] = '\0';
    }
    if (status == DB_OK && this_term) {
        if (b->kind == JOB_WRITE && b->cursor > m->cursor) {
            m->cursor = b->cursor;
        }
        m->backoff = 0;
        m->retry_at = 0;
        answer(m, is_written, 0);
        propose_trim(m);
    } else if (status != DB_OK && b->kind == JOB_SKIP) {
        /* The cursor or the accepted row changed under us: read both again. */
        m->skip_ready = false;
        fprintf(stderr, "materializer: not skipping the accepted loss: %s\n", errmsg);
    } else if (status != DB_OK && rewound && !m->behind) {
        /* Not a failure of the batch: it was written against a cursor PostgreSQL no longer
         * has. The next batch starts from the cursor just read, at once. */
        m->failures_in_row = 0;
    } else if (status != DB_OK && this_term && m->behind) {
        /* The batch failed because PostgreSQL is behind: that is reported as such (/ready,
         * /metrics, one log line when found), not as a stall; the cursor is read again every
         * BEHIND_RECHECK_MS. */
        m->failures_in_row = 0;
        m->next_recheck = uv_now(m->loop) + BEHIND_RECHECK_MS;
    } else if (status != DB_OK) {
        /* Never silent: every failed attempt is logged with the revisions and PostgreSQL's
         * words, counted, and kept for /ready and /metrics; retries back off (100 ms doubling
         * to 2 s), so a batch PostgreSQL refuses costs at most one attempt per 2 s. */
        bool read_only = b->kind == JOB_READ;
        m->backoff = m->backoff ? m->backoff * 2 : BACKOFF_MIN_MS;
        if (m->backoff > BACKOFF_MAX_MS) {
            m->backoff = BACKOFF_MAX_MS;
        }
        m->retry_at = uv_now(m->loop) + m->backoff;
        m->failures_in_row++;
        m->failed_revision = read_only || b->n == 0 ? 0 : b->revs[0].revision;
        m->failed_raft_index = read_only || b->n == 0 ? 0 : b->revs[0].raft_index;
        snprintf(m->last_error, sizeof(m->last_error), "%s", errmsg);
        if (read_only) {
            fprintf(stderr,
                    "materializer: reading the cursor failed (attempt %llu, retry in %llu ms): "
                    "%s\n",
                    (unsigned long long)m->failures_in_row, (unsigned long long)m->backoff, errmsg);
            if (this_term && m->cursor_read_pending) {
                m->cursor_term = 0; /* the term's first read failed: the cursor is unknown */
            }
        } else if (b->n == 0) {
            /* A flush job (JOB_FLUSH) carries no revisions: there is no range to name. */
            fprintf(stderr,
                    "materializer: making the deferred commits durable failed (attempt %llu, "
                    "retry in %llu ms): %s\n",
                    (unsigned long long)m->failures_in_row, (unsigned long long)m->backoff, errmsg);
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
    m->cursor_read_pending = false;
    batch_free(b);
    if (m->closing) {
        schedule(m, 0);
        return;
    }
    schedule(m, status == DB_OK ? 0 : m->backoff);
}

/* Fills B's verify list from the waiters that need their row looked up. */
static void take_verify(struct matd *m, struct batch *b)
{
    for (struct waiter *w = m->waiters; w != NULL && b->n_verify < VERIFY_MAX; w = w->next) {
        if (w->verify && !w->in_job) {
            w->in_job = true;
            b->verify[b->n_verify++] = w->index;
        }
    }
    m->recheck = false;
    for (struct waiter *w = m->waiters; w != NULL; w = w->next) {
        m->recheck = m->recheck || (w->verify && !w->in_job);
    }
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
            m->durable = 0;
            m->flush_due = 0;
        }
        m->failures_in_row = 0; /* a follower writes nothing, so it cannot be stalled */
        m->behind = false;      /* nor judge PostgreSQL: the next leader reads the cursor */
        m->ahead = false;
        m->skip_ready = false;
        answer(m, any, MATD_ELEADERSHIP);
        return;
    }
    rnode_info(m->rn, &info);
    if (m->cursor_term != info.term) {
        /* New term: PostgreSQL's cursor is the truth, whatever this node thought before. */
        m->cursor_term = 0;
        m->proposed = 0;
        m->durable = 0;
        m->flush_due = 0;
        m->behind = false;
        m->ahead = false;
        m->skip_ready = false;
    }
    uint64_t now = uv_now(m->loop);
    if (now < m->retry_at) {
        return;
    }
    struct batch *b = calloc(1, sizeof(*b));
    if (b == NULL) {
        return;
    }
    b->m = m;
    b->term = info.term;
    if (m->cursor_term == 0) {
        b->kind = JOB_READ;
    } else if (m->behind && m->skip_ready) {
        b->kind = JOB_SKIP;
        b->loss = m->gap;
    } else if (m->behind || m->ahead || m->recheck) {
        /* Behind or ahead: nothing can be written; read the cursor again now and then (a
         * newer backup restored, an accepted loss, raft data put back). A verify waiter: read
         * now. */
        if (!m->recheck && now < m->next_recheck) {
            free(b);
            return;
        }
        b->kind = JOB_READ;
    } else {
        const struct revision *pending[MATD_BATCH];
        uint64_t from = m->cursor + 1;
        size_t n = fsm_pending_from(m->fsm, from, pending, MATD_BATCH);
        if (n == 0 && m->durable < m->cursor && now >= m->flush_due) {
            b->kind = JOB_FLUSH; /* idle: make the deferred commits durable, then trim */
        } else if (n == 0) {
            propose_trim(m);
            if (now < m->next_recheck) {
                free(b);
                return;
            }
            b->kind = JOB_READ; /* idle: is PostgreSQL still where we left it? */
        } else {
            b->kind = JOB_WRITE;
            b->defer = now < m->flush_due;
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
    }
    if (b->kind == JOB_READ) {
        take_verify(m, b);
        b->want_loss = m->behind;
    }
    b->submitted_ns = uv_hrtime();
    if (pgpool_submit(m->pool, write_work, write_done, b) != 0) {
        for (struct waiter *w = m->waiters; w != NULL; w = w->next) {
            w->in_job = false;
        }
        batch_free(b);
        return;
    }
    m->busy = true;
    if (m->cursor_term == 0) {
        /* Remember the term now; write_done() drops it again if this first read fails. */
        m->cursor_term = info.term;
        m->cursor_read_pending = true;
    }
}

static void timer_closed(uv_handle_t *h)
{
    struct matd *m = h->data;
    void (*cb)(void *) = m->closed_cb;
    void *data = m->closed_data;
    reqbloom_free(m->bloom);
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
    if (rnode_ready(m->rn)) {
        bloom_step(m);
    }
    /* Closed only once no job of ours is at a worker: their callbacks use M. */
    if (m->closing && !m->busy && !m->bloom_loading) {
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

/* Reads the failpoint NAME (docs/hacking.md): a whole number of milliseconds from 0 to MAX into
 * *MS, left alone when NAME is unset. Returns -1 with ERRMSG when it is malformed. */
static int failpoint_ms(const char *name, unsigned long max, unsigned long *ms, char *errmsg,
                        size_t errlen)
{
    const char *fp = getenv(name);
    if (fp == NULL) {
        return 0;
    }
    char *end = NULL;
    errno = 0;
    unsigned long v = strtoul(fp, &end, 10);
    if (errno != 0 || end == fp || *end != '\0' || fp[0] == '-' || v > max) {
        snprintf(errmsg, errlen, "%s=\"%s\" is not a whole number of milliseconds from 0 to %lu",
                 name, fp, max);
        return -1;
    }
    *ms = v;
    return 0;
}

int materializer_init(struct matd **out, uv_loop_t *loop, struct pgpool *pool, struct rnode *rn,
                      struct fsm *fsm, char *errmsg, size_t errlen)
{
    /* The test failpoint (docs/hacking.md), read once here. */
    unsigned long ms = 0, flush_ms = FLUSH_MS;
    if (failpoint_ms("CONCLAVE_FAILPOINT_MATERIALIZER_PAUSE_MS", 600000, &ms, errmsg, errlen) !=
            0 ||
        failpoint_ms("CONCLAVE_FAILPOINT_MATERIALIZER_FLUSH_MS", FLUSH_MS_MAX, &flush_ms, errmsg,
                     errlen) != 0) {
        return -1;
    }
    if (flush_ms != FLUSH_MS) {
        fprintf(stderr,
                "materializer: failpoint: batch commits are flushed every %lu ms instead of "
                "every %d ms\n",
                flush_ms, FLUSH_MS);
    }
    if (ms > 0) {
        fprintf(stderr,
                "materializer: failpoint: every batch pauses %lu ms holding the cursor lock\n", ms);
    }
    db_revisions_failpoint_pause((unsigned)ms);
    struct matd *m = calloc(1, sizeof(*m));
    if (m == NULL) {
        snprintf(errmsg, errlen, "out of memory creating the materializer");
        return -1;
    }
    m->loop = loop;
    m->pool = pool;
    m->rn = rn;
    m->fsm = fsm;
    m->flush_ms = flush_ms;
    /* Without the filter every write of a busy project looks its request id up, as before. */
    m->bloom = reqbloom_new();
    if (m->bloom == NULL) {
        fprintf(stderr, "materializer: out of memory for the request-id filter (4 MiB): every "
                        "write of a busy project looks its request id up in postgresql\n");
    }
    metrics_histogram_init(&m->batch_size, batch_bounds,
                           sizeof(batch_bounds) / sizeof(batch_bounds[0]));
    metrics_histogram_init(&m->batch_seconds, metrics_phase_bounds, metrics_phase_nbounds);
    metrics_histogram_init(&m->transaction_seconds, metrics_phase_bounds, metrics_phase_nbounds);
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
    /* At or below what PostgreSQL is believed to hold: a retry of an old write. Look its row
     * up rather than trust the cursor or a materialized(N) entry (see materializer.h). */
    w->verify = raft_index <= fsm_materialized_index(m->fsm) ||
                (m->cursor_term != 0 && raft_index <= m->cursor);
    m->recheck = m->recheck || w->verify;
    w->next = m->waiters;
    m->waiters = w;
    materializer_kick(m);
    return 0;
}

bool materializer_refusal(const struct matd *m, int wait_status, uint64_t raft_index,
                          struct materializer_refusal *out)
{
    if (m == NULL) {
        return false;
    }
    if (wait_status == MATD_ELOST) {
        out->http_status = 410;
        out->code = "write_lost";
        snprintf(out->message, sizeof(out->message),
                 "this write was committed (raft index %llu) but postgresql lost it, and an "
                 "operator accepted the loss (docs/operations.md): it is stored nowhere now; "
                 "send it again with a new request_id if it is still wanted",
                 (unsigned long long)raft_index);
        return true;
    }
    if (wait_status != 0 && wait_status != MATD_EBEHIND) {
        return false;
    }
    if (wait_status == 0 && m->ahead && m->cursor_term != 0) {
        out->http_status = 503;
        out->code = "postgresql_ahead";
        snprintf(out->message, sizeof(out->message),
                 "postgresql is ahead of the cluster: it holds revisions up to %llu (raft index "
                 "%llu) and the cluster's state machine only %llu: the nodes' raft data is older "
                 "than the database (emptied, or restored from an older copy); this request "
                 "wrote nothing; writes are refused until an operator restores the nodes' raft "
                 "data to match the database (docs/backup.md)",
                 (unsigned long long)m->ahead_pg_revision, (unsigned long long)m->ahead_pg_index,
                 (unsigned long long)m->ahead_fsm_revision);
        return true;
    }
    if (wait_status == 0 && (!m->behind || m->cursor_term == 0)) {
        return false;
    }
    char what[160];
    if (wait_status == 0) {
        snprintf(what, sizeof(what), "this request wrote nothing");
    } else {
        snprintf(what, sizeof(what),
                 "this write was committed (raft index %llu) and is among the lost ones",
                 (unsigned long long)raft_index);
    }
    out->http_status = 503;
    out->code = "postgresql_behind";
    snprintf(out->message, sizeof(out->message),
             "postgresql is behind the cluster: it lacks revisions %llu..%llu (raft indexes "
             "%llu..%llu), committed and already trimmed from every node (restored from an "
             "older backup?); %s; writes are refused until an operator restores a newer "
             "backup or accepts the loss (docs/operations.md)",
             (unsigned long long)m->gap.revision_from, (unsigned long long)m->gap.revision_to,
             (unsigned long long)m->gap.raft_index_from, (unsigned long long)m->gap.raft_index_to,
             what);
    return true;
}

uint64_t materializer_cursor_index(const struct matd *m)
{
    return m->cursor_term != 0 ? m->cursor : 0;
}

void materializer_stats(const struct matd *m, struct materializer_stats *out)
{
    memset(out, 0, sizeof(*out));
    out->batches = m->batches;
    out->filter_new = m->filter_new;
    out->filter_lookup = m->filter_lookup;
    out->filter_revision = m->bloom_upto;
    out->failures = m->failures;
    out->stalled = m->failures_in_row > 0;
    out->failures_in_row = m->failures_in_row;
    out->failed_revision = m->failed_revision;
    out->failed_raft_index = m->failed_raft_index;
    if (out->stalled) {
        snprintf(out->last_error, sizeof(out->last_error), "%s", m->last_error);
    }
    out->batch_size = m->batch_size;
    out->batch_seconds = m->batch_seconds;
    out->transaction_seconds = m->transaction_seconds;
    if (m->ahead && m->cursor_term != 0) {
        out->postgresql_ahead = true;
        out->ahead_pg_revision = m->ahead_pg_revision;
        out->ahead_pg_index = m->ahead_pg_index;
        out->ahead_fsm_revision = m->ahead_fsm_revision;
    }
    if (m->behind && m->cursor_term != 0) {
        out->postgresql_behind = true;
        out->missing_from = m->gap.revision_from;
        out->missing_to = m->gap.revision_to;
        out->missing_from_index = m->gap.raft_index_from;
        out->missing_to_index = m->gap.raft_index_to;
        snprintf(out->behind_note, sizeof(out->behind_note), "%s", m->behind_note);
    }
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
