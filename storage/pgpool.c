#include "storage/pgpool.h"

#include <errno.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Backoff between connection attempts while PostgreSQL is unreachable. The backoff is shared
 * by all workers, so an outage costs one attempt per period, not one per worker. */
#define BACKOFF_MIN_MS 100u
#define BACKOFF_MAX_MS 2000u

#define NS_PER_MS ((uint64_t)1000000)
#define NS_PER_S  ((uint64_t)1000000000)

struct job {
    struct job *next;
    pgpool_work_fn work;
    pgpool_done_fn done;
    void *arg;
    uint64_t enqueued_ns; /* uv_hrtime() at submission; the acquire timeout counts from it */
    int status;
    char errmsg[PGPOOL_ERRMSG_SIZE];
};

/* A FIFO of jobs. */
struct job_list {
    struct job *head;
    struct job *tail;
};

struct worker {
    struct pgpool *pool;
    int index; /* workers below conf.min_connections keep their connection */
    uv_thread_t thread;
    uv_cond_t wake; /* waited on with pool->mu held */
    /* Guarded by pool->mu. WAITING is set by the worker before it waits and cleared by whoever
     * signals it, so that two submissions never pick the same sleeping worker. HAS_CONN mirrors
     * CONN != NULL for the other threads. */
    bool waiting;
    bool has_conn;
    /* Touched only by the worker's own thread. */
    PGconn *conn;
    uint64_t conn_opened_ns;
    uint64_t idle_since_ns;
};

struct pgpool {
    uv_loop_t *loop;
    uv_async_t async;  /* workers -> loop: jobs finished, a worker exited */
    uv_timer_t reaper; /* fails queued jobs past the acquire timeout */
    struct pgconf conf;
    char *application_name;
    uint64_t acquire_ns;
    uint64_t idle_ns;
    uint64_t lifetime_ns;
    struct worker *workers;
    int nworkers; /* threads started */

    /* The mutex is never held across a libpq call or a user callback. */
    uv_mutex_t mu;
    struct job_list queue;    /* submitted, not yet taken by a worker */
    struct job_list finished; /* done callbacks to run on the loop */
    int queued;
    int busy;
    int open;
    int exited;           /* workers that have left their loop */
    bool closing;         /* written on the loop thread under mu; workers exit when they see it */
    uint64_t retry_at_ns; /* no connection attempt before this */
    unsigned backoff_ms;  /* 0 while the last attempt succeeded */
    bool probing;         /* a worker is trying to reach PostgreSQL after a failure */
    char last_error[512]; /* why the last connection attempt failed */
    uint64_t jobs_total;
    uint64_t jobs_failed;
    uint64_t connect_failures;

    atomic_bool healthy;

    /* Loop thread only. The async handle is referenced while OUTSTANDING > 0 or the pool is
     * closing, so an idle pool does not keep uv_run() from returning. */
    uint64_t outstanding; /* accepted jobs whose done callback has not run yet */
    bool close_requested;
    bool async_closing;
    int handles_open;
    void (*closed_cb)(void *data);
    void *closed_data;
};

static void list_push(struct job_list *list, struct job *job)
{
    job->next = NULL;
    if (list->tail != NULL) {
        list->tail->next = job;
    } else {
        list->head = job;
    }
    list->tail = job;
}

static struct job *list_pop(struct job_list *list)
{
    struct job *job = list->head;
    if (job != NULL) {
        list->head = job->next;
        if (list->head == NULL) {
            list->tail = NULL;
        }
        job->next = NULL;
    }
    return job;
}

/* Hands JOB to the loop thread with STATUS. Called with mu held. */
static void finish_locked(struct pgpool *pool, struct job *job, int status)
{
    job->status = status;
    pool->jobs_total++;
    if (status < 0) {
        pool->jobs_failed++;
    }
    list_push(&pool->finished, job);
    uv_async_send(&pool->async);
}

/* Fails JOB, which waited longer than the acquire timeout. Called with mu held. */
static void expire_locked(struct pgpool *pool, struct job *job)
{
    if (atomic_load(&pool->healthy)) {
        snprintf(job->errmsg, sizeof(job->errmsg),
                 "no postgresql connection became free within %d s (all %d in use)",
                 pool->conf.acquire_timeout_s, pool->conf.max_connections);
    } else {
        snprintf(job->errmsg, sizeof(job->errmsg), "no postgresql connection within %d s: %s",
                 pool->conf.acquire_timeout_s,
                 pool->last_error[0] != '\0' ? pool->last_error : "still connecting");
    }
    finish_locked(pool, job, PGPOOL_EUNAVAILABLE);
}

/* Waits on W's condition until signalled or TIMEOUT_NS passed (UINT64_MAX: no timeout).
 * Called with mu held; spurious wake-ups are fine because every caller re-examines the
 * state. */
static void wait_locked(struct worker *w, uint64_t timeout_ns)
{
    w->waiting = true;
    if (timeout_ns == UINT64_MAX) {
        uv_cond_wait(&w->wake, &w->pool->mu);
    } else {
        (void)uv_cond_timedwait(&w->wake, &w->pool->mu, timeout_ns > 0 ? timeout_ns : 1);
    }
    w->waiting = false;
}

/* Wakes one sleeping worker for a new job, preferring one that already has a connection.
 * Called with mu held. When none sleeps, the next worker to finish its job finds the queue. */
static void wake_one_locked(struct pgpool *pool)
{
    struct worker *pick = NULL;
    for (int i = 0; i < pool->conf.max_connections; i++) {
        struct worker *w = &pool->workers[i];
        if (w->waiting && (pick == NULL || (w->has_conn && !pick->has_conn))) {
            pick = w;
            if (w->has_conn) {
                break;
            }
        }
    }
    if (pick != NULL) {
        pick->waiting = false;
        uv_cond_signal(&pick->wake);
    }
}

/* Wakes every sleeping worker. Called with mu held. */
static void wake_all_locked(struct pgpool *pool)
{
    for (int i = 0; i < pool->conf.max_connections; i++) {
        struct worker *w = &pool->workers[i];
        if (w->waiting) {
            w->waiting = false;
            uv_cond_signal(&w->wake);
        }
    }
}

/* libpq prints notices to stderr by default. A terminated backend's farewell arrives as one,
 * and the storage layer has no log of its own, so they are dropped. */
static void quiet_notice(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

/* Opens W's connection. Called with mu held; releases it while connecting. After a failure
 * only one worker at a time probes, so an outage costs one attempt per backoff period. */
static void connect_locked(struct worker *w)
{
    struct pgpool *pool = w->pool;
    char err[sizeof(pool->last_error)];
    PGconn *conn = NULL;
    bool probe = pool->backoff_ms > 0;
    if (probe) {
        pool->probing = true;
    }

    uv_mutex_unlock(&pool->mu);
    int rc = pgconf_connect(&pool->conf, pool->application_name, &conn, err, sizeof(err));
    if (rc == 0) {
        PQsetNoticeProcessor(conn, quiet_notice, NULL);
        /* Every pooled session carries the timeouts, so no job (above all the materializer's
         * batch, which holds the cursor row lock) can hold a lock or a worker for long. */
        if (pgconf_apply_session_limits(&pool->conf, conn, err, sizeof(err)) != 0) {
            PQfinish(conn);
            conn = NULL;
            rc = -1;
        }
    }
    uint64_t now = uv_hrtime();
    uv_mutex_lock(&pool->mu);

    if (probe) {
        /* Workers waiting for this probe's outcome look again. */
        pool->probing = false;
        wake_all_locked(pool);
    }
    if (rc == 0) {
        w->conn = conn;
        w->has_conn = true;
        w->conn_opened_ns = now;
        w->idle_since_ns = now;
        pool->open++;
        pool->backoff_ms = 0;
        pool->retry_at_ns = 0;
        atomic_store(&pool->healthy, true);
        return;
    }
    pool->connect_failures++;
    snprintf(pool->last_error, sizeof(pool->last_error), "%s", err);
    atomic_store(&pool->healthy, false);
    /* Workers failing in the same round extend the backoff once, not once each. */
    if (now >= pool->retry_at_ns) {
        pool->backoff_ms = pool->backoff_ms == 0 ? BACKOFF_MIN_MS : pool->backoff_ms * 2;
        if (pool->backoff_ms > BACKOFF_MAX_MS) {
            pool->backoff_ms = BACKOFF_MAX_MS;
        }
        pool->retry_at_ns = now + pool->backoff_ms * NS_PER_MS;
    }
}

/* Connects W if the backoff allows it now and returns 0, or returns how long to wait before
 * asking again (UINT64_MAX: until signalled). Called with mu held. */
static uint64_t try_connect_locked(struct worker *w, uint64_t now)
{
    struct pgpool *pool = w->pool;
    if (now < pool->retry_at_ns) {
        return pool->retry_at_ns - now;
    }
    if (pool->backoff_ms > 0 && pool->probing) {
        return UINT64_MAX;
    }
    connect_locked(w);
    return 0;
}

/* Closes W's connection. Called with mu held; releases it while closing. */
static void disconnect_locked(struct worker *w)
{
    PGconn *conn = w->conn;
    w->conn = NULL;
    w->has_conn = false;
    w->pool->open--;
    uv_mutex_unlock(&w->pool->mu);
    PQfinish(conn);
    uv_mutex_lock(&w->pool->mu);
}

/* Whether an idle connection is still usable, without a round trip. PostgreSQL sends nothing
 * on an idle connection except its farewell (an administrator's pg_terminate_backend, a
 * shutdown) followed by the end of the stream, so anything readable means it is gone. */
static bool idle_connection_usable(PGconn *conn)
{
    if (PQstatus(conn) != CONNECTION_OK) {
        return false;
    }
    struct pollfd p = {.fd = PQsocket(conn), .events = POLLIN};
    int rc;
    do {
        rc = poll(&p, 1, 0);
    } while (rc < 0 && errno == EINTR);
    return rc == 0;
}

/* Brings W's connection back to the state a work function expects: connected, blocking, no
 * transaction, no pending result. Returns false when it cannot and the connection must go.
 * Called without mu. */
static bool restore_connection(PGconn *conn)
{
    if (PQstatus(conn) != CONNECTION_OK || PQpipelineStatus(conn) != PQ_PIPELINE_OFF) {
        return false;
    }
    if (PQisnonblocking(conn) && PQsetnonblocking(conn, 0) != 0) {
        return false;
    }
    switch (PQtransactionStatus(conn)) {
    case PQTRANS_IDLE:
        return true;
    case PQTRANS_INTRANS:
    case PQTRANS_INERROR: {
        PGresult *res = PQexec(conn, "ROLLBACK");
        bool ok =
            PQresultStatus(res) == PGRES_COMMAND_OK && PQtransactionStatus(conn) == PQTRANS_IDLE;
        PQclear(res);
        return ok;
    }
    default:
        /* A command still running (PQTRANS_ACTIVE) or an unknown state: no cheap way back. */
        return false;
    }
}

/* Runs JOB on W's connection and hands it to the loop. Called with mu held; releases it
 * while the job runs. */
static void run_locked(struct worker *w, struct job *job)
{
    struct pgpool *pool = w->pool;
    pool->busy++;
    uv_mutex_unlock(&pool->mu);

    int status = job->work(w->conn, job->arg, job->errmsg, sizeof(job->errmsg));
    bool lost = PQstatus(w->conn) != CONNECTION_OK;
    if (lost && status != 0) {
        /* The failure is the connection's, not the job's: the caller should retry later. */
        status = PGPOOL_EUNAVAILABLE;
        if (job->errmsg[0] == '\0') {
            snprintf(job->errmsg, sizeof(job->errmsg),
                     "connection to postgresql lost during the job");
        }
    } else if (status < 0 && job->errmsg[0] == '\0') {
        snprintf(job->errmsg, sizeof(job->errmsg), "postgresql job failed with status %d", status);
    }
    bool keep = !lost && restore_connection(w->conn);
    PGconn *discard = NULL;
    if (!keep) {
        discard = w->conn;
        w->conn = NULL;
    }
    PQfinish(discard);
    uint64_t now = uv_hrtime();

    uv_mutex_lock(&pool->mu);
    pool->busy--;
    if (!keep) {
        w->has_conn = false;
        pool->open--;
    }
    atomic_store(&pool->healthy, !lost);
    w->idle_since_ns = now;
    finish_locked(pool, job, status);
}

static uint64_t min_u64(uint64_t a, uint64_t b)
{
    return a < b ? a : b;
}

static void worker_main(void *arg)
{
    struct worker *w = arg;
    struct pgpool *pool = w->pool;
    bool core = w->index < pool->conf.min_connections;

    uv_mutex_lock(&pool->mu);
    while (!pool->closing) {
        uint64_t now = uv_hrtime();
        if (w->has_conn && now - w->conn_opened_ns >= pool->lifetime_ns) {
            /* Recycled between jobs, never during one. */
            disconnect_locked(w);
            continue;
        }
        if (pool->queue.head != NULL) {
            if (!w->has_conn) {
                uint64_t wait = try_connect_locked(w, now);
                if (wait > 0) {
                    wait_locked(w, wait);
                }
                continue;
            }
            uv_mutex_unlock(&pool->mu);
            bool usable = idle_connection_usable(w->conn);
            uv_mutex_lock(&pool->mu);
            if (!usable) {
                disconnect_locked(w);
                continue;
            }
            /* The queue may have emptied, or the pool started closing, while mu was free. */
            if (pool->closing || pool->queue.head == NULL) {
                continue;
            }
            struct job *job = list_pop(&pool->queue);
            pool->queued--;
            if (uv_hrtime() - job->enqueued_ns >= pool->acquire_ns) {
                expire_locked(pool, job);
            } else {
                run_locked(w, job);
            }
            continue;
        }

        /* Idle: sleep until a job, the next deadline of this connection, or the next
         * connection attempt of a core worker. */
        uint64_t timeout = UINT64_MAX;
        if (w->has_conn) {
            timeout = w->conn_opened_ns + pool->lifetime_ns - now;
            if (!core) {
                uint64_t idle_deadline = w->idle_since_ns + pool->idle_ns;
                if (now >= idle_deadline) {
                    disconnect_locked(w);
                    continue;
                }
                timeout = min_u64(timeout, idle_deadline - now);
            }
        } else if (core) {
            timeout = try_connect_locked(w, now);
            if (timeout == 0) {
                continue;
            }
        }
        wait_locked(w, timeout);
    }
    if (w->has_conn) {
        disconnect_locked(w);
    }
    /* The async send happens under mu: once the loop sees every worker exited, no worker
     * touches the async handle again, so it may be closed. */
    pool->exited++;
    uv_async_send(&pool->async);
    uv_mutex_unlock(&pool->mu);
}

static void free_pool(struct pgpool *pool)
{
    for (int i = 0; i < pool->conf.max_connections; i++) {
        uv_cond_destroy(&pool->workers[i].wake);
    }
    uv_mutex_destroy(&pool->mu);
    free(pool->workers);
    free(pool->application_name);
    pgconf_free(&pool->conf);
    free(pool);
}

static void on_handle_closed(uv_handle_t *handle)
{
    struct pgpool *pool = handle->data;
    if (--pool->handles_open > 0) {
        return;
    }
    void (*cb)(void *) = pool->closed_cb;
    void *data = pool->closed_data;
    free_pool(pool);
    if (cb != NULL) {
        cb(data);
    }
}

/* Runs the done callbacks of finished jobs, in the order the jobs finished. */
static void deliver_finished(struct pgpool *pool)
{
    uv_mutex_lock(&pool->mu);
    struct job *job = pool->finished.head;
    pool->finished.head = NULL;
    pool->finished.tail = NULL;
    uv_mutex_unlock(&pool->mu);

    while (job != NULL) {
        struct job *next = job->next;
        job->done(job->status, job->errmsg, job->arg);
        free(job);
        pool->outstanding--;
        job = next;
    }
    if (pool->outstanding == 0 && !pool->close_requested) {
        uv_unref((uv_handle_t *)&pool->async);
    }
}

/* Completes pgpool_close() once every worker has exited and every callback has run. */
static void finish_close(struct pgpool *pool)
{
    if (!pool->close_requested || pool->async_closing) {
        return;
    }
    uv_mutex_lock(&pool->mu);
    bool done = pool->exited == pool->nworkers && pool->finished.head == NULL;
    uv_mutex_unlock(&pool->mu);
    if (!done) {
        return;
    }
    /* Every worker has left its loop, so these joins wait for a thread's last instructions
     * only, never for PostgreSQL. */
    for (int i = 0; i < pool->nworkers; i++) {
        uv_thread_join(&pool->workers[i].thread);
    }
    pool->async_closing = true;
    uv_close((uv_handle_t *)&pool->async, on_handle_closed);
}

static void on_async(uv_async_t *async)
{
    struct pgpool *pool = async->data;
    deliver_finished(pool);
    finish_close(pool);
}

static void on_reaper(uv_timer_t *timer)
{
    struct pgpool *pool = timer->data;
    uint64_t now = uv_hrtime();
    uint64_t next_ns = 0;

    uv_mutex_lock(&pool->mu);
    while (pool->queue.head != NULL && now - pool->queue.head->enqueued_ns >= pool->acquire_ns) {
        struct job *job = list_pop(&pool->queue);
        pool->queued--;
        expire_locked(pool, job);
    }
    if (pool->queue.head != NULL) {
        next_ns = pool->queue.head->enqueued_ns + pool->acquire_ns - now;
    }
    uv_mutex_unlock(&pool->mu);

    if (next_ns > 0) {
        uv_timer_start(timer, on_reaper, (next_ns + NS_PER_MS - 1) / NS_PER_MS, 0);
    }
}

int pgpool_init(struct pgpool **out, uv_loop_t *loop, const struct pgconf *conf,
                const char *application_name, char *errmsg, size_t errlen)
{
    *out = NULL;
    if (conf->max_connections < 1 || conf->acquire_timeout_s < 1 || conf->idle_timeout_s < 1 ||
        conf->max_lifetime_s < 1 || conf->min_connections < 0) {
        snprintf(errmsg, errlen,
                 "postgresql pool settings out of range: max connections %d, min %d, acquire "
                 "timeout %d s, idle timeout %d s, max lifetime %d s",
                 conf->max_connections, conf->min_connections, conf->acquire_timeout_s,
                 conf->idle_timeout_s, conf->max_lifetime_s);
        return PGPOOL_EINVAL;
    }
    if (pgconf_validate(conf, errmsg, errlen) != 0) {
        return PGPOOL_EINVAL;
    }

    int rc = 0;
    int conds = 0;
    struct pgpool *pool = calloc(1, sizeof(*pool));
    if (pool == NULL) {
        goto err_nomem;
    }
    pool->loop = loop;
    pool->conf = *conf;
    pool->conf.url = strdup(conf->url);
    pool->application_name = strdup(application_name != NULL ? application_name : "conclave");
    pool->workers = calloc((size_t)conf->max_connections, sizeof(*pool->workers));
    if (pool->conf.url == NULL || pool->application_name == NULL || pool->workers == NULL) {
        goto err_free;
    }
    pool->acquire_ns = (uint64_t)conf->acquire_timeout_s * NS_PER_S;
    pool->idle_ns = (uint64_t)conf->idle_timeout_s * NS_PER_S;
    pool->lifetime_ns = (uint64_t)conf->max_lifetime_s * NS_PER_S;
    atomic_init(&pool->healthy, false);

    rc = uv_mutex_init(&pool->mu);
    if (rc != 0) {
        goto err_free_uv;
    }
    for (; conds < conf->max_connections; conds++) {
        struct worker *w = &pool->workers[conds];
        w->pool = pool;
        w->index = conds;
        rc = uv_cond_init(&w->wake);
        if (rc != 0) {
            goto err_after_conds;
        }
    }
    rc = uv_async_init(loop, &pool->async, on_async);
    if (rc != 0) {
        goto err_after_conds;
    }
    pool->async.data = pool;
    uv_unref((uv_handle_t *)&pool->async);
    uv_timer_init(loop, &pool->reaper);
    pool->reaper.data = pool;
    uv_unref((uv_handle_t *)&pool->reaper);
    pool->handles_open = 2;

    for (; pool->nworkers < conf->max_connections; pool->nworkers++) {
        struct worker *w = &pool->workers[pool->nworkers];
        rc = uv_thread_create(&w->thread, worker_main, w);
        if (rc != 0) {
            goto err_after_handles;
        }
    }
    *out = pool;
    return 0;

err_after_handles:
    snprintf(errmsg, errlen, "starting postgresql pool worker %d of %d: %s", pool->nworkers + 1,
             conf->max_connections, uv_strerror(rc));
    /* The workers started so far may be connecting; joining them here waits at most one
     * connect timeout, on a path that only a system out of threads takes. */
    uv_mutex_lock(&pool->mu);
    pool->closing = true;
    for (int i = 0; i < pool->nworkers; i++) {
        uv_cond_signal(&pool->workers[i].wake);
    }
    uv_mutex_unlock(&pool->mu);
    for (int i = 0; i < pool->nworkers; i++) {
        uv_thread_join(&pool->workers[i].thread);
    }
    /* The handles belong to the loop now; the pool is freed when both are closed. */
    uv_close((uv_handle_t *)&pool->async, on_handle_closed);
    uv_close((uv_handle_t *)&pool->reaper, on_handle_closed);
    return PGPOOL_ESYS;

err_after_conds:
    for (int i = 0; i < conds; i++) {
        uv_cond_destroy(&pool->workers[i].wake);
    }
    uv_mutex_destroy(&pool->mu);
err_free_uv:
    snprintf(errmsg, errlen, "initialising the postgresql pool: %s", uv_strerror(rc));
    free(pool->workers);
    free(pool->application_name);
    pgconf_free(&pool->conf);
    free(pool);
    return PGPOOL_ESYS;

err_free:
    free(pool->workers);
    free(pool->application_name);
    pgconf_free(&pool->conf);
    free(pool);
err_nomem:
    snprintf(errmsg, errlen, "out of memory starting the postgresql pool");
    return PGPOOL_ENOMEM;
}

int pgpool_submit(struct pgpool *pool, pgpool_work_fn work, pgpool_done_fn done, void *arg)
{
    if (work == NULL || done == NULL) {
        return PGPOOL_EINVAL;
    }
    if (pool->close_requested) {
        return PGPOOL_ECLOSED;
    }
    struct job *job = calloc(1, sizeof(*job));
    if (job == NULL) {
        return PGPOOL_ENOMEM;
    }
    job->work = work;
    job->done = done;
    job->arg = arg;
    job->enqueued_ns = uv_hrtime();

    uv_mutex_lock(&pool->mu);
    list_push(&pool->queue, job);
    pool->queued++;
    wake_one_locked(pool);
    uv_mutex_unlock(&pool->mu);

    pool->outstanding++;
    uv_ref((uv_handle_t *)&pool->async);
    if (!uv_is_active((uv_handle_t *)&pool->reaper)) {
        uv_timer_start(&pool->reaper, on_reaper, pool->acquire_ns / NS_PER_MS, 0);
    }
    return 0;
}

bool pgpool_healthy(const struct pgpool *pool)
{
    return atomic_load(&pool->healthy);
}

void pgpool_stats(struct pgpool *pool, struct pgpool_stats *out)
{
    uv_mutex_lock(&pool->mu);
    out->connections_open = pool->open;
    out->busy = pool->busy;
    out->queued = pool->queued;
    out->jobs_total = pool->jobs_total;
    out->jobs_failed = pool->jobs_failed;
    out->connect_failures = pool->connect_failures;
    uv_mutex_unlock(&pool->mu);
    out->healthy = atomic_load(&pool->healthy);
}

void pgpool_close(struct pgpool *pool, void (*closed_cb)(void *data), void *data)
{
    pool->close_requested = true;
    pool->closed_cb = closed_cb;
    pool->closed_data = data;

    uv_mutex_lock(&pool->mu);
    pool->closing = true;
    struct job *job;
    while ((job = list_pop(&pool->queue)) != NULL) {
        snprintf(job->errmsg, sizeof(job->errmsg), "postgresql pool is closing");
        finish_locked(pool, job, PGPOOL_ECLOSED);
    }
    pool->queued = 0;
    for (int i = 0; i < pool->nworkers; i++) {
        pool->workers[i].waiting = false;
        uv_cond_signal(&pool->workers[i].wake);
    }
    uv_mutex_unlock(&pool->mu);

    /* The callbacks and the rest of the closing run from the async handle, never from inside
     * this call; the handle stays referenced so the loop keeps running until then. */
    uv_ref((uv_handle_t *)&pool->async);
    uv_async_send(&pool->async);
    uv_timer_stop(&pool->reaper);
    uv_close((uv_handle_t *)&pool->reaper, on_handle_closed);
}
