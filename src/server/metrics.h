/*
 * metrics: the numbers GET /metrics exposes, in the Prometheus text exposition format 0.0.4.
 *
 * The module keeps what the node has to count itself (requests by route pattern, method and
 * status; request durations; leader changes) in plain structs, and renders those together
 * with a snapshot of gauges that the node reads from its components at scrape time (struct
 * metrics_gauges). docs/operations.md lists every metric and what to alert on.
 *
 * Cardinality stays bounded because the route label is a route pattern of the API's table
 * ("/v1/projects/{project}/configs/{ckey}") or "other", never a raw path, and the method is
 * one of http-parser's fixed names.
 *
 * Loop thread only; no locks.
 */
#ifndef CONCLAVE_METRICS_H
#define CONCLAVE_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "server/procstat.h"

/* The most finite bucket bounds a histogram may have (the +Inf bucket is implicit). */
#define METRICS_MAX_BOUNDS 24

/* The most (route, method, status) series kept; observations of further series are dropped.
 * The API's routes, the parser's methods and the statuses the code sends stay far below. */
#define METRICS_MAX_SERIES 4096

/* A histogram with fixed buckets. Plain data: copying the struct copies a snapshot. */
struct metrics_histogram {
    const double *bounds;                 /* ascending finite upper bounds; borrowed (static) */
    size_t nbounds;                       /* at most METRICS_MAX_BOUNDS */
    uint64_t buckets[METRICS_MAX_BOUNDS]; /* observations in (bounds[i-1], bounds[i]] */
    uint64_t count;                       /* every observation: the +Inf bucket */
    double sum;
};

/* Empties H and sets its bounds (NBOUNDS ascending values, kept by pointer; NBOUNDS beyond
 * METRICS_MAX_BOUNDS is cut to it). */
void metrics_histogram_init(struct metrics_histogram *h, const double *bounds, size_t nbounds);

/* Counts V in the first bucket whose bound is >= V (in none but +Inf when V exceeds all). */
void metrics_histogram_observe(struct metrics_histogram *h, double v);

/* The bucket bounds of conclave_http_request_duration_seconds, in seconds. */
extern const double metrics_duration_bounds[];
extern const size_t metrics_duration_nbounds;

/* The bucket bounds of the write phase histograms and the materializer's timings, in seconds:
 * 10 us to 10 s, finer where a single write's phases fall (100 us to 3 ms). */
extern const double metrics_phase_bounds[];
extern const size_t metrics_phase_nbounds;

/*
 * The phases of a config write (create, put, delete, rollback), each a histogram of its own,
 * conclave_write_<name>_seconds; docs/operations.md ("Where a write's time goes") says what
 * each measures between which two points. A forwarded write is observed on both nodes, each
 * for the phases it sees.
 */
enum metrics_phase {
    METRICS_PHASE_HTTP_IN,        /* first byte of the request -> the write handler is called */
    METRICS_PHASE_FORWARD,        /* follower: request sent to the leader -> its answer is in */
    METRICS_PHASE_PREPARE,        /* leader: write handler called -> entry proposed to raft */
    METRICS_PHASE_PROPOSE_COMMIT, /* raft_apply -> raft finds the entry committed */
    METRICS_PHASE_COMMIT_APPLY,   /* committed -> applied to the state machine */
    METRICS_PHASE_APPLY_PG,       /* applied -> the loop learns PostgreSQL committed it */
    METRICS_PHASE_ANSWER_OUT,     /* outcome known -> the answer is written to the socket */
    METRICS_NPHASES
};

/* What the node reads from its components when it is scraped. */
struct metrics_gauges {
    /* false without a raft section (or once raft is shut down): every conclave_raft_*,
     * conclave_fsm_* and conclave_materializer_* family is left out of the output. */
    bool has_raft;
    uint64_t raft_term;
    uint64_t raft_commit_index;
    uint64_t raft_applied_index;
    bool raft_is_leader;
    uint64_t raft_read_index_rounds, raft_read_index_reads; /* rnode_info's, ever */
    uint64_t fsm_revision;
    uint64_t fsm_pending_revisions;
    uint64_t fsm_configs;    /* configs held, tombstones included */
    uint64_t fsm_live_bytes; /* sum of their key and live content lengths */
    uint64_t materializer_lag_revisions;
    uint64_t materializer_batches;
    uint64_t materializer_failures;
    /* The leader's request-id filter (materializer_request_is_new()). */
    uint64_t request_id_filter_new, request_id_filter_lookup, request_id_filter_revision;
    struct metrics_histogram materializer_batch_size;
    /* Per written batch: handed to a pool worker -> its outcome back on the loop, and the
     * part of that spent in the PostgreSQL transaction on the worker. */
    struct metrics_histogram materializer_batch_seconds;
    struct metrics_histogram materializer_transaction_seconds;
    bool materializer_stalled;                /* the leader's last attempt failed */
    uint64_t materializer_failures_in_row;    /* failed attempts since the last success */
    uint64_t materializer_stalled_raft_index; /* first raft index of the failing batch, or 0 */
    /* PostgreSQL behind the cluster (the leader only): it lacks committed revisions that
     * every node already trimmed. The range is 0..0 when it is not behind. */
    bool materializer_postgresql_behind;
    bool materializer_postgresql_ahead; /* PostgreSQL holds revisions this cluster lacks */
    uint64_t materializer_missing_from_revision, materializer_missing_to_revision;
    uint64_t materializer_missing_from_raft_index, materializer_missing_to_raft_index;

    /* false once the pool is closed: the conclave_pg_pool_* families are left out. */
    bool has_pool;
    uint64_t pool_connections_open;
    uint64_t pool_busy;
    uint64_t pool_queued;
    uint64_t pool_jobs;
    uint64_t pool_jobs_failed;
    uint64_t pool_connect_failures;

    uint64_t auth_cache_entries;

    /* The watch hub (server/watch_hub.h); false once it is closed: its families are left out. */
    bool has_watch;
    uint64_t watch_waiting;  /* long-poll watchers waiting on this node */
    uint64_t watch_queries;  /* PostgreSQL queries the hub ran for them */
    uint64_t watch_answered; /* watchers answered */

    /* The process_* families of every Prometheus client (procstat.h); false: left out. */
    bool has_process;
    struct procstat process;
};

struct metrics;

/* A new, empty set of counters, or NULL when out of memory. Free with metrics_free(). */
struct metrics *metrics_new(void);
void metrics_free(struct metrics *m);

/*
 * Counts one answered request: conclave_http_requests_total{route,method,status} and
 * conclave_http_request_duration_seconds{route,method}. ROUTE is the route pattern the request
 * matched, or NULL for "other"; METHOD NULL or "" counts as "-". Both strings are copied the
 * first time a series is seen. Out of memory, or past METRICS_MAX_SERIES, the observation is
 * dropped (it cannot fail from the caller's point of view).
 */
void metrics_observe_request(struct metrics *m, const char *route, const char *method, int status,
                             double seconds);

/*
 * Counts one write's PHASE: from FROM_NS to TO_NS, uv_hrtime() values of the loop thread.
 * A phase whose start was never stamped (FROM_NS 0) or that would be negative is not counted,
 * so a caller can pass its timestamps without checking which phases the write went through.
 */
void metrics_observe_phase(struct metrics *m, enum metrics_phase phase, uint64_t from_ns,
                           uint64_t to_ns);

/* Reports the leader id raft currently knows (0: none). Every change to a non-zero id other than
 * the last one seen counts in conclave_raft_leader_changes_total, the first leader included. */
void metrics_observe_leader(struct metrics *m, uint64_t leader_id);

/*
 * Renders M and G (G may be NULL: only M's families) as exposition text: a HELP and a TYPE
 * line for every family, series sorted by their labels, one trailing newline. On success
 * returns 0, *OUT is the text (NUL-terminated, free() it) and *LEN its length without the NUL;
 * returns -1 when out of memory (*OUT NULL).
 */
int metrics_render(const struct metrics *m, const struct metrics_gauges *g, char **out,
                   size_t *len);

/* The content type of the output. */
#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

#endif /* CONCLAVE_METRICS_H */
