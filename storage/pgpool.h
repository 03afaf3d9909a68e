/*
 * pgpool: PostgreSQL work off the libuv loop thread.
 *
 * The pool starts conf->max_connections worker threads up front. Each worker owns at most one
 * PGconn, opened lazily when a job needs it, so there are never more connections than
 * max_connections. Workers 0 .. min_connections-1 keep their connection open (and reopen it
 * with backoff while PostgreSQL is down); the others close theirs after idle_timeout_s
 * without a job. A connection older than max_lifetime_s is replaced between jobs.
 *
 * The loop thread submits jobs; a worker runs the job's work function with its connection,
 * and the job's done callback then runs on the loop thread. Every accepted job gets exactly
 * one done callback, whatever happens: the work's own status, PGPOOL_EUNAVAILABLE when no
 * connection could be had within acquire_timeout_s or the connection broke during the job, or
 * PGPOOL_ECLOSED when the pool closed before the job ran.
 *
 * Threading: every function here is called on the loop thread only. Work functions run on
 * worker threads and must not touch the loop; done callbacks run on the loop thread and may
 * submit new jobs and may call pgpool_close().
 */
#ifndef CONCLAVE_PGPOOL_H
#define CONCLAVE_PGPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>
#include <uv.h>

#include "storage/pgconf.h"

/* Status codes of the pool itself. Work functions return 0, a positive job-specific code or
 * -1 (or another negative code above -100); values from -199 to -100 are reserved for these.
 *
 * PGPOOL_EUNAVAILABLE: no connection within the acquire timeout, PostgreSQL down, or the
 * connection was lost during the job (answer 503 with Retry-After). A job that had started may
 * or may not have taken effect. PGPOOL_ECLOSED: the pool is closing; the job never ran. */
#define PGPOOL_EUNAVAILABLE (-100)
#define PGPOOL_ECLOSED      (-101)
#define PGPOOL_ENOMEM       (-102) /* out of memory */
#define PGPOOL_EINVAL       (-103) /* invalid settings or arguments */
#define PGPOOL_ESYS         (-104) /* a thread or libuv handle could not be created */

/* The size of the message buffer a work function receives. */
#define PGPOOL_ERRMSG_SIZE 1024

struct pgpool;

/* Runs on a worker thread with CONN live, in blocking mode, with no transaction open and no
 * result pending. CONN stays owned by the pool: the work function must not close it or keep it
 * after returning. It returns 0, a job-specific positive code, or a negative code (not in the
 * reserved range above), and fills ERRMSG (PGPOOL_ERRMSG_SIZE bytes) on failure. It must not
 * LISTEN: the pool treats anything the server sends on an idle connection as its farewell. If it
 * leaves a transaction open the pool rolls it back; if it leaves the connection broken or busy the
 * pool discards it. */
typedef int (*pgpool_work_fn)(PGconn *conn, void *arg, char *errmsg, size_t errlen);

/* Runs on the loop thread exactly once per accepted job. STATUS is the work function's return,
 * or PGPOOL_EUNAVAILABLE or PGPOOL_ECLOSED. ERRMSG is never NULL ("" when there is nothing to
 * say) and is valid only during the call. ARG is the pointer given to pgpool_submit(); the
 * pool never dereferences it, so the callback may free it. */
typedef void (*pgpool_done_fn)(int status, const char *errmsg, void *arg);

/* What /metrics reports. A snapshot; the numbers move while it is read. */
struct pgpool_stats {
    int connections_open;      /* live connections held by workers */
    int busy;                  /* jobs running right now */
    int queued;                /* jobs waiting for a worker */
    uint64_t jobs_total;       /* jobs finished (done callback delivered or about to be) */
    uint64_t jobs_failed;      /* of those, the ones with a negative status */
    uint64_t connect_failures; /* connection attempts that failed */
    bool healthy;              /* as pgpool_healthy() */
};

/* Starts a pool on LOOP with CONF's sizing. CONF and APPLICATION_NAME (NULL means
 * "conclave") are copied; the caller keeps ownership of both. LOOP is borrowed and must outlive
 * the pool. Connections are opened in the background, so PostgreSQL need not be up yet. On
 * success returns 0 and stores the pool in *OUT; release it with pgpool_close(). On failure
 * returns PGPOOL_EINVAL, PGPOOL_ENOMEM or PGPOOL_ESYS, *OUT is NULL and ERRMSG says why; the
 * loop may then need one more uv_run() before uv_loop_close() succeeds. */
int pgpool_init(struct pgpool **out, uv_loop_t *loop, const struct pgconf *conf,
                const char *application_name, char *errmsg, size_t errlen);

/* Queues a job. WORK and DONE must not be NULL; ARG is passed to both and stays owned by the
 * caller (typically DONE frees it). Returns 0 when the job was accepted (DONE will run exactly
 * once, never from within this call), or PGPOOL_ECLOSED / PGPOOL_ENOMEM / PGPOOL_EINVAL when it
 * was not (DONE will never run for it). */
int pgpool_submit(struct pgpool *pool, pgpool_work_fn work, pgpool_done_fn done, void *arg);

/* True when the last connection attempt or job reached PostgreSQL; false before the first
 * connection and while PostgreSQL is unreachable. For /ready. */
bool pgpool_healthy(const struct pgpool *pool);

/* Fills *OUT with the current numbers. */
void pgpool_stats(struct pgpool *pool, struct pgpool_stats *out);

/* Closes the pool: queued jobs get PGPOOL_ECLOSED, running jobs finish and report their own
 * status, workers close their connections and are joined, the pool's libuv handles are closed,
 * and then CLOSED_CB(DATA) runs on the loop thread (CLOSED_CB may be NULL). The loop thread
 * never blocks on a worker; the closing takes as long as the longest running job or
 * connection attempt. After CLOSED_CB the pool is freed and the loop holds nothing of it, so
 * uv_loop_close() can succeed. Between this call and CLOSED_CB, pgpool_submit() returns
 * PGPOOL_ECLOSED and the other functions may still be called. Call it once. */
void pgpool_close(struct pgpool *pool, void (*closed_cb)(void *data), void *data);

#endif /* CONCLAVE_PGPOOL_H */
