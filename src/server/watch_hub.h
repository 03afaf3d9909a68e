/*
 * watch_hub: one node's shared fan-out of project changes to its long-poll watchers
 * (GET /v1/projects/{id}/watch, docs/api.md).
 *
 * Watchers register (project, after_revision, an optional exact key or key prefix, a timeout)
 * and wait in memory. One timer for the whole hub (WATCH_HUB_TICK_MS) reads the node's view
 * (struct watch_hub_view) and runs at most one PostgreSQL query per project with waiting
 * watchers, on the pool: the project's revisions after the smallest after_revision among them,
 * one page of at most WATCH_HUB_PAGE rows. When: on the leader, once its materializer committed
 * a change (the materialized index moved); on a follower, as soon as it applied a change,
 * without waiting for the leader's materialized(N) entry (a few early tries, then the moved
 * index, as before); never while the cache already holds every revision up to the last one the
 * node applied. Every watcher is then answered from that page, filtered here: a watcher with a
 * matching revision gets every matching revision of the page after its after_revision; one
 * without keeps waiting with its after_revision moved up to the last revision the page covered.
 * So the PostgreSQL queries per change depend on the number of projects being watched, not on
 * the number of watchers; and an answer is serialised once for every watcher that gets the
 * same changes (same first row and filter), not once per watcher.
 *
 * The page of the last query stays as the project's cache: revisions (cache_after, head] of
 * the project, complete. A page is kept only as far as the node can prove it complete
 * (guard_page() in watch_hub.c: up to the last revision the node applied, and short of any
 * revision its state machine's queue holds that PostgreSQL did not return), so it never relies
 * on PostgreSQL making revisions visible in revision order. A watcher that registers with
 * after_revision at or past cache_after is answered or advanced from it without a query; only
 * one further behind, or a new change, costs a query. That is what keeps a reconnecting crowd
 * of watchers (every one answered by the same change comes back at once) from costing a query
 * each.
 *
 * next_after_revision of an answer is the last revision the hub examined for that watcher: the
 * page's last revision when it matched something (for a watcher without a filter that is the
 * last change it gets, as before the hub), or the watcher's advanced after_revision at the
 * timeout. Every revision up to it was examined and the matching ones sent, so a client that
 * resumes from it misses nothing and gets nothing twice.
 *
 * Loop thread only. The hub never blocks the loop: its query runs on a pgpool worker.
 */
#ifndef CONCLAVE_WATCH_HUB_H
#define CONCLAVE_WATCH_HUB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "storage/pgpool.h"

/* The timer's period: how long a moved index may go unnoticed (besides the query itself). */
#define WATCH_HUB_TICK_MS 10
/* How often timeouts and gone clients are looked for. */
#define WATCH_HUB_SWEEP_MS 100
/* The most revisions one query reads, and so one answer carries. */
#define WATCH_HUB_PAGE 1000
/* The longest key or prefix a filter holds (config keys are at most 256 bytes). */
#define WATCH_HUB_PATTERN_MAX 256

#define WATCH_HUB_ECLOSED (-1) /* the hub is closing: the node is stopping */
#define WATCH_HUB_ENOMEM  (-2)
#define WATCH_HUB_EINVAL  (-3)

enum watch_hub_filter {
    WATCH_HUB_ALL,    /* every revision of the project */
    WATCH_HUB_KEY,    /* revisions of one key */
    WATCH_HUB_PREFIX, /* revisions of keys that start with the pattern */
};

/* What the node tells the hub at every tick (loop thread; cheap, never blocking). */
struct watch_hub_view {
    /* The raft index PostgreSQL is known to hold everything up to (the leader's materializer
     * cursor, or the last materialized(N) entry applied here). */
    uint64_t materialized;
    /* The last revision number (cluster-wide) this node's state machine applied; 0 when the
     * node runs without raft, which turns off the early query and the completeness guard
     * below (the hub then queries only when MATERIALIZED moves). */
    uint64_t revision;
    /* This node's materializer writes PostgreSQL (the ready leader): MATERIALIZED moves as
     * soon as PostgreSQL commits, so an early query could only come too soon. */
    bool writer;
};

/* Fills *OUT. */
typedef void (*watch_hub_view_fn)(void *data, struct watch_hub_view *out);

/*
 * Stores in OUT[0..MAX), ascending, the revision numbers after AFTER of PROJECT's revisions
 * this node applied that PostgreSQL is not yet known to hold (the state machine's queue, which
 * materialized(N) entries trim), and returns how many there are (possibly more than MAX: then
 * only the first MAX were stored). Returns 0 when the node runs without raft, and
 * WATCH_HUB_PENDING_UNKNOWN when it cannot tell (out of memory): the hub then keeps no row of
 * that query (it never delivers on a guess).
 */
#define WATCH_HUB_PENDING_UNKNOWN SIZE_MAX
typedef size_t (*watch_hub_pending_fn)(void *data, const char *project, uint64_t after,
                                       uint64_t *out, size_t max);

/*
 * The one answer of a watcher, on the loop thread, never from within watch_hub_add(). STATUS 0
 * (DB_OK): BODY (LEN bytes, NUL-terminated) is the whole JSON answer, {"changes": [revision
 * objects as db_configs_changes() returns them], "next_after_revision": N}; "changes" may be
 * empty (the timeout, the client gone, or the hub closing). BODY is the hub's and valid only
 * during the call: the hub serialises an answer once and hands the same bytes to every watcher
 * that gets the same changes. Otherwise STATUS is the failed query's enum db_status or pgpool
 * status, ERRMSG says why (valid during the call) and BODY is NULL. The hub forgets the watcher
 * before the call.
 */
typedef void (*watch_hub_answer_fn)(void *data, int status, const char *errmsg, const char *body,
                                    size_t len);

/* Whether the watcher's client is gone (answered at the next sweep with no changes). */
typedef bool (*watch_hub_gone_fn)(void *data);

struct watch_hub;

/* What /metrics reports. */
struct watch_hub_stats {
    uint64_t waiting;  /* watchers registered and not yet answered */
    uint64_t queries;  /* PostgreSQL queries the hub submitted since the node started */
    uint64_t answered; /* watchers answered, with changes or not */
};

/* Creates a hub on LOOP; VIEW and PENDING are called with NODE_DATA. LOOP, POOL and NODE_DATA
 * are borrowed and must outlive the hub (the pool until watch_hub_close()'s callback). Returns
 * 0, or WATCH_HUB_ENOMEM with ERRMSG. */
int watch_hub_new(struct watch_hub **out, uv_loop_t *loop, struct pgpool *pool,
                  watch_hub_view_fn view, watch_hub_pending_fn pending, void *node_data,
                  char *errmsg, size_t errlen);

/*
 * Registers a watcher of PROJECT (copied) for revisions after AFTER that pass FILTER with
 * PATTERN (copied; ignored for WATCH_HUB_ALL), answered with no changes after TIMEOUT_MS of
 * waiting. ANSWER(DATA, ...) runs exactly once, later; GONE(DATA) may run at every sweep until
 * then (GONE may be NULL). DATA stays the caller's. Returns 0, or WATCH_HUB_ECLOSED (closing),
 * WATCH_HUB_ENOMEM or WATCH_HUB_EINVAL (a pattern too long or empty, a project id too long)
 * with ERRMSG; ANSWER never runs then.
 */
int watch_hub_add(struct watch_hub *h, const char *project, uint64_t after,
                  enum watch_hub_filter filter, const char *pattern, uint64_t timeout_ms,
                  watch_hub_answer_fn answer, watch_hub_gone_fn gone, void *data, char *errmsg,
                  size_t errlen);

/* Fills *OUT. H may be NULL (all zero). */
void watch_hub_stats(const struct watch_hub *h, struct watch_hub_stats *out);

/* Answers every waiting watcher with no changes (status 0, its next_after_revision), refuses
 * new ones, closes the timer, waits for a query in flight, frees the hub and then calls
 * CB(DATA) on the loop. The pool must stay open until then. Call it once. */
void watch_hub_close(struct watch_hub *h, void (*cb)(void *data), void *data);

#endif /* CONCLAVE_WATCH_HUB_H */
