/*
 * materializer: the leader's writer of committed revisions into PostgreSQL.
 *
 * The state machine queues every committed revision until a materialized(N) entry says
 * PostgreSQL has it. On the ready leader this module reads PostgreSQL's cursor once per term,
 * then repeatedly takes the queued revisions after the cursor (in raft order, up to
 * MATD_BATCH per transaction), writes them with db_revisions_write_batch() on a pool worker,
 * answers the clients waiting for those raft indexes, and proposes materialized(N) up to the last
 * durable commit so that every node trims its queue. Followers do nothing. A write is acknowledged
 * only once its revision is in PostgreSQL (invariant 1 of the design).
 *
 * PostgreSQL behind the cluster (docs/operations.md): every cursor read (the term's first, one
 * every 2 s while idle, one after every failed batch, one per second while behind) compares
 * PostgreSQL's cursor with the last revision the state machines trimmed. Below it, PostgreSQL
 * lost committed revisions that exist nowhere else: the materializer writes nothing, the API
 * refuses writes (materializer_refusal()), and it waits for either a newer PostgreSQL (the gap
 * closes by itself) or an operator's accepted loss in postgresql_losses that names exactly the
 * gap, which it skips by moving the cursor (db_revisions_skip_loss()).
 *
 * Deferred flushes (docs/write-path.md). A batch written in one statement commits without
 * waiting for its WAL flush, and its writers are answered at once: the rows are committed and
 * visible. At least every 20 ms a commit waits for its flush (the next batch, or a flush job
 * when idle), which makes every commit before it durable, and materialized(N) is proposed only
 * up to such a durable commit. So a crash of PostgreSQL can take back only revisions every
 * queue still holds; the cursor then reads lower, and the next batch writes them again.
 *
 * Loop thread only.
 */
#ifndef CONCLAVE_MATERIALIZER_H
#define CONCLAVE_MATERIALIZER_H

#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

#include "raft/fsm.h"
#include "server/metrics.h"
#include "storage/pgpool.h"
#include "raft/rnode.h"

#define MATD_BATCH 256

#define MATD_ETIMEDOUT   (-1) /* not in PostgreSQL by the deadline (PostgreSQL down or slow) */
#define MATD_ELEADERSHIP (-2) /* this node stopped leading: a new leader will write it */
#define MATD_ECLOSED     (-3)
#define MATD_EBEHIND                                                                               \
    (-4) /* PostgreSQL lost this committed revision (restored older); not                          \
            accepted as lost yet: writes are refused meanwhile */
#define MATD_ELOST                                                                                 \
    (-5) /* PostgreSQL lost this committed revision and an operator accepted                       \
            the loss (conclave admin accept-postgresql-loss) */

struct matd;

/* STATUS 0: the raft index waited for is in PostgreSQL. */
typedef void (*materializer_wait_cb)(void *data, int status);

/* Creates the materializer. All arguments are borrowed and must outlive it. */
int materializer_init(struct matd **out, uv_loop_t *loop, struct pgpool *pool, struct rnode *rn,
                      struct fsm *fsm, char *errmsg, size_t errlen);

/* Says that new revisions may be queued: write them soon. M may be NULL (the node is
 * stopping); materializer_wait() then returns MATD_ECLOSED. */
void materializer_kick(struct matd *m);

/* Calls CB once RAFT_INDEX is in PostgreSQL, or with an error at TIMEOUT_MS at the latest.
 * CB never runs from within this call. Returns 0, or MATD_ECLOSED.
 *
 * An index at or below what PostgreSQL is believed to hold (a retried request id whose
 * first outcome is old) is answered 0 only after a fresh read finds its row in
 * config_revisions: PostgreSQL may have been restored to an older state since it was written.
 * Without the row the status is MATD_EBEHIND while the gap is open, MATD_ELOST once the loss
 * was accepted. */
int materializer_wait(struct matd *m, uint64_t raft_index, uint64_t timeout_ms,
                      materializer_wait_cb cb, void *data);

/* The raft index PostgreSQL is known to hold everything up to (0 before the first read). */
uint64_t materializer_cursor_index(const struct matd *m);

/*
 * True when REQUEST_ID of PROJECT is surely in no revision the state machine may have
 * forgotten: the leader's request-id filter (reqbloom.h) covers every revision the queues
 * trimmed and does not contain the pair. False means "look it up in PostgreSQL" (the filter is
 * still loading, lags, or may contain it). M may be NULL.
 */
bool materializer_request_is_new(struct matd *m, const char *project, const char *request_id);

/* An answer to refuse a write with, from materializer_refusal(). */
struct materializer_refusal {
    int http_status;  /* 503 (behind, ahead) or 410 (lost) */
    const char *code; /* "postgresql_behind", "postgresql_ahead" or "write_lost" (docs/api.md) */
    char message[512];
};

/* Says whether a write must be refused because PostgreSQL is behind the cluster, and how.
 * Before proposing pass WAIT_STATUS 0: true while the gap is open (nothing may be proposed:
 * its answer could never be 200 until an operator acts). After materializer_wait() pass its
 * status and the index waited for: true for MATD_EBEHIND and MATD_ELOST. M may be NULL
 * (false). */
bool materializer_refusal(const struct matd *m, int wait_status, uint64_t raft_index,
                          struct materializer_refusal *out);

/* What /metrics reports about the materializer. */
struct materializer_stats {
    uint64_t lag_revisions; /* queued revisions after the cursor (every queued one while the
                               cursor is unknown, as on a follower) */
    uint64_t batches;       /* batches written to PostgreSQL */
    uint64_t failures;      /* cursor reads and batch writes that failed (each is retried) */
    /* materializer_request_is_new(): answered new by the filter, answered "look it up"; and
     * the revision up to which the filter is complete. */
    uint64_t filter_new, filter_lookup, filter_revision;
    struct metrics_histogram batch_size; /* revisions per written batch */
    /* Per written batch, in seconds: from handing it to a pool worker to its outcome on the
     * loop, and the part of that inside the PostgreSQL transaction (timed on the worker). */
    struct metrics_histogram batch_seconds;
    struct metrics_histogram transaction_seconds;
    /* True while the last attempt on this leader failed (a cursor read or a batch): writes
     * are not being acknowledged. /ready answers 503 with the details below. */
    bool stalled;
    uint64_t failures_in_row;   /* failed attempts since the last success */
    uint64_t failed_revision;   /* first revision of the failed batch; 0 for a cursor read */
    uint64_t failed_raft_index; /* its raft index */
    char last_error[512];       /* PostgreSQL's error of the last attempt ("" when not stalled) */
    /* PostgreSQL behind the cluster (this node leads and read the cursor): it lacks revisions
     * missing_from..missing_to (raft indexes missing_from_index..missing_to_index) that every
     * state machine already trimmed. All 0 when not behind. */
    /* PostgreSQL ahead of the cluster (this node leads and read the cursor): it holds
     * revisions up to ahead_pg_revision (raft index ahead_pg_index), past this state machine's
     * last, ahead_fsm_revision. Writes are refused (postgresql_ahead). */
    bool postgresql_ahead;
    uint64_t ahead_pg_revision, ahead_pg_index, ahead_fsm_revision;
    bool postgresql_behind;
    uint64_t missing_from, missing_to;
    uint64_t missing_from_index, missing_to_index;
    char behind_note[256]; /* e.g. why an accepted loss does not apply ("" when none) */
};

/* Fills *OUT with the current numbers (a copy). */
void materializer_stats(const struct matd *m, struct materializer_stats *out);

/* Fails every waiter with MATD_ECLOSED, lets a running batch finish, closes the timer, then
 * calls CB(DATA). The rnode and pool must still be open until then. */
void materializer_close(struct matd *m, void (*cb)(void *data), void *data);

#endif /* CONCLAVE_MATERIALIZER_H */
