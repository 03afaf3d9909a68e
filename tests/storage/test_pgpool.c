/*
 * The PostgreSQL worker pool against a real server: results, threads, sizing, timeouts,
 * broken connections and closing. Waits are bounded: the loop runs until a condition holds or
 * a deadline of several seconds passes, and the test fails at the deadline.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cmocka.h>
#include <uv.h>

#include "storage/pgconf.h"
#include "storage/pgpool.h"
#include "pgtest.h"

static char conninfo[512];
static uv_thread_t loop_thread;

/* ---- loop helpers ---- */

struct fixture {
    uv_loop_t loop;
    uv_timer_t tick; /* wakes the loop so that conditions on other threads are seen */
    struct pgpool *pool;
    bool closed;
    char app[64];
    PGconn *admin; /* the test's own connection, for pg_stat_activity */
};

static void on_tick(uv_timer_t *t)
{
    (void)t;
}

typedef bool (*cond_fn)(void *ctx);

/* Runs F's loop until COND(CTX) holds or TIMEOUT_MS passed; returns whether it held. */
static bool run_until(struct fixture *f, cond_fn cond, void *ctx, uint64_t timeout_ms)
{
    uint64_t deadline = uv_hrtime() + timeout_ms * 1000000u;
    while (!cond(ctx)) {
        if (uv_hrtime() >= deadline) {
            return false;
        }
        /* The loop's clock is stale after blocking work on this thread; without the update
         * the tick would already be due, fire first, and uv_run() would then sleep until the
         * next timer of the pool. */
        uv_update_time(&f->loop);
        uv_timer_start(&f->tick, on_tick, 10, 0);
        uv_run(&f->loop, UV_RUN_ONCE);
    }
    return true;
}

static bool never(void *ctx)
{
    (void)ctx;
    return false;
}

/* Runs the loop for MS milliseconds. */
static void run_for(struct fixture *f, uint64_t ms)
{
    (void)run_until(f, never, NULL, ms);
}

static void set_conf(struct pgconf *conf, const char *url, int max, int min, int acquire, int idle,
                     int lifetime)
{
    char err[256];
    assert_int_equal(pgconf_init(conf), 0);
    assert_int_equal(pgconf_set_url(conf, url, err, sizeof(err)), 0);
    conf->max_connections = max;
    conf->min_connections = min;
    conf->acquire_timeout_s = acquire;
    conf->idle_timeout_s = idle;
    conf->max_lifetime_s = lifetime;
}

/* Makes F's loop; F's pool comes from open_pool(). */
static void open_loop(struct fixture *f)
{
    static int counter;
    memset(f, 0, sizeof(*f));
    assert_int_equal(uv_loop_init(&f->loop), 0);
    assert_int_equal(uv_timer_init(&f->loop, &f->tick), 0);
    snprintf(f->app, sizeof(f->app), "pgpool-test-%ld-%d", (long)getpid(), ++counter);
    f->admin = pgtest_connect(conninfo);
}

static void open_pool(struct fixture *f, const char *url, int max, int min, int acquire, int idle,
                      int lifetime)
{
    struct pgconf conf;
    set_conf(&conf, url, max, min, acquire, idle, lifetime);
    char err[256];
    int rc = pgpool_init(&f->pool, &f->loop, &conf, f->app, err, sizeof(err));
    pgconf_free(&conf);
    if (rc != 0) {
        fail_msg("pgpool_init: %s", err);
    }
}

static void start(struct fixture *f, const char *url, int max, int min, int acquire, int idle,
                  int lifetime)
{
    open_loop(f);
    open_pool(f, url, max, min, acquire, idle, lifetime);
}

static void on_pool_closed(void *data)
{
    *(bool *)data = true;
}

static bool is_true(void *ctx)
{
    return *(bool *)ctx;
}

/* Closes the pool and the loop; the loop must then hold nothing. */
static void finish(struct fixture *f)
{
    pgpool_close(f->pool, on_pool_closed, &f->closed);
    assert_true(run_until(f, is_true, &f->closed, 20000));
    uv_close((uv_handle_t *)&f->tick, NULL);
    assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    PQfinish(f->admin);
}

/* How many sessions of F's pool the server has. */
static long server_sessions(struct fixture *f)
{
    char sql[256];
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM pg_stat_activity WHERE application_name = '%s'", f->app);
    return pgtest_long(f->admin, sql);
}

/* ---- jobs ---- */

struct job {
    struct fixture *f;
    int n;           /* input */
    const char *sql; /* for work_sql */
    int ret;         /* what work_code returns */
    double sleep_s;  /* for work_sleep */
    /* Written on the worker thread, read after the done callback (the pool's mutex orders
     * them). */
    atomic_bool ran;
    bool ran_off_loop;
    long result;
    long pid;
    long pid_after;
    long sessions;
    /* Written by the done callback. */
    int done_calls;
    int status;
    bool done_on_loop;
    uint64_t done_ns;
    char errmsg[PGPOOL_ERRMSG_SIZE];
};

static atomic_int in_flight;
static atomic_int max_in_flight;
static atomic_int arrived; /* for work_barrier */
static int done_count;

static void reset_counters(void)
{
    atomic_store(&in_flight, 0);
    atomic_store(&max_in_flight, 0);
    atomic_store(&arrived, 0);
    done_count = 0;
}

static void on_done(int status, const char *errmsg, void *arg)
{
    struct job *job = arg;
    uv_thread_t self = uv_thread_self();
    job->done_calls++;
    job->status = status;
    job->done_on_loop = uv_thread_equal(&self, &loop_thread) != 0;
    job->done_ns = uv_hrtime();
    snprintf(job->errmsg, sizeof(job->errmsg), "%s", errmsg);
    done_count++;
}

static void mark_ran(struct job *job)
{
    uv_thread_t self = uv_thread_self();
    atomic_store(&job->ran, true);
    job->ran_off_loop = uv_thread_equal(&self, &loop_thread) == 0;
}

/* Fills ERRMSG from RES and clears it; returns -1. */
static int fail_res(PGresult *res, char *errmsg, size_t errlen)
{
    snprintf(errmsg, errlen, "%s", PQresultErrorMessage(res));
    PQclear(res);
    return -1;
}

/* N * 2, with the number of the pool's sessions the server sees meanwhile. */
static int work_double(PGconn *conn, void *arg, char *errmsg, size_t errlen)
{
    struct job *job = arg;
    mark_ran(job);
    int now = atomic_fetch_add(&in_flight, 1) + 1;
    int seen = atomic_load(&max_in_flight);
    while (now > seen && !atomic_compare_exchange_weak(&max_in_flight, &seen, now)) {
    }
    char n[16];
    snprintf(n, sizeof(n), "%d", job->n);
    const char *params[] = {n, job->f->app};
    PGresult *res = PQexecParams(conn,
                                 "SELECT $1::int * 2, (SELECT count(*) FROM pg_stat_activity "
                                 "WHERE application_name = $2) FROM pg_sleep(0.005)",
                                 2, NULL, params, NULL, NULL, 0);
    atomic_fetch_sub(&in_flight, 1);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        return fail_res(res, errmsg, errlen);
    }
    job->result = strtol(PQgetvalue(res, 0, 0), NULL, 10);
    job->sessions = strtol(PQgetvalue(res, 0, 1), NULL, 10);
    PQclear(res);
    return 0;
}

/* Runs JOB->sql; returns its first value in RESULT, or -1 with the server's message. */
static int work_sql(PGconn *conn, void *arg, char *errmsg, size_t errlen)
{
    struct job *job = arg;
    mark_ran(job);
    PGresult *res = PQexec(conn, job->sql);
    ExecStatusType st = PQresultStatus(res);
    if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
        return fail_res(res, errmsg, errlen);
    }
    if (st == PGRES_TUPLES_OK && PQntuples(res) > 0) {
        job->result = strtol(PQgetvalue(res, 0, 0), NULL, 10);
    }
    PQclear(res);
    return 0;
}

/* Returns JOB->ret with a message, without failing anything on the server. */
static int work_code(PGconn *conn, void *arg, char *errmsg, size_t errlen)
{
    (void)conn;
    struct job *job = arg;
    mark_ran(job);
    snprintf(errmsg, errlen, "job-specific outcome %d", job->ret);
    return job->ret;
}

static long backend_pid(PGconn *conn)
{
    PGresult *res = PQexec(conn, "SELECT pg_backend_pid()");
    long pid =
        PQresultStatus(res) == PGRES_TUPLES_OK ? strtol(PQgetvalue(res, 0, 0), NULL, 10) : -1;
    PQclear(res);
    return pid;
}

/* Sleeps JOB->sleep_s on the server, noting the backend before and after. */
static int work_sleep(PGconn *conn, void *arg, char *errmsg, size_t errlen)
{
    struct job *job = arg;
    mark_ran(job);
    job->pid = backend_pid(conn);
    char sql[64];
    snprintf(sql, sizeof(sql), "SELECT pg_sleep(%.3f)", job->sleep_s);
    PGresult *res = PQexec(conn, sql);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        return fail_res(res, errmsg, errlen);
    }
    PQclear(res);
    job->pid_after = backend_pid(conn);
    return 0;
}

static int work_pid(PGconn *conn, void *arg, char *errmsg, size_t errlen)
{
    struct job *job = arg;
    mark_ran(job);
    job->pid = backend_pid(conn);
    if (job->pid < 0) {
        snprintf(errmsg, errlen, "%s", PQerrorMessage(conn));
        return -1;
    }
    return 0;
}

/* Waits (up to 10 s) until JOB->n jobs are inside this function at once, then counts the
 * pool's sessions: proves that JOB->n connections are open together. */
static int work_barrier(PGconn *conn, void *arg, char *errmsg, size_t errlen)
{
    struct job *job = arg;
    mark_ran(job);
    atomic_fetch_add(&arrived, 1);
    uint64_t deadline = uv_hrtime() + 10000000000u;
    while (atomic_load(&arrived) < job->n && uv_hrtime() < deadline) {
        usleep(1000);
    }
    char sql[256];
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM pg_stat_activity WHERE application_name = '%s'", job->f->app);
    PGresult *res = PQexec(conn, sql);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        return fail_res(res, errmsg, errlen);
    }
    job->sessions = strtol(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    return 0;
}

static void submit(struct fixture *f, pgpool_work_fn work, struct job *job)
{
    job->f = f;
    assert_int_equal(pgpool_submit(f->pool, work, on_done, job), 0);
}

struct count_wait {
    int *count;
    int want;
};

static bool count_reached(void *ctx)
{
    struct count_wait *w = ctx;
    return *w->count >= w->want;
}

static void wait_done(struct fixture *f, int want, uint64_t timeout_ms)
{
    struct count_wait w = {&done_count, want};
    if (!run_until(f, count_reached, &w, timeout_ms)) {
        fail_msg("only %d of %d jobs finished within %llu ms", done_count, want,
                 (unsigned long long)timeout_ms);
    }
}

static struct pgpool_stats stats_of(struct fixture *f)
{
    struct pgpool_stats st;
    pgpool_stats(f->pool, &st);
    return st;
}

/* ---- tests ---- */

static int setup(void **state)
{
    (void)state;
    loop_thread = uv_thread_self();
    pgtest_create_db("pgpool", conninfo, sizeof(conninfo));
    return 0;
}

static void test_many_jobs_exactly_once(void **state)
{
    (void)state;
    enum { N = 200, MAX = 4 };
    struct fixture f;
    start(&f, conninfo, MAX, 0, 30, 60, 600);
    reset_counters();
    static struct job jobs[N];
    memset(jobs, 0, sizeof(jobs));
    for (int i = 0; i < N; i++) {
        jobs[i].n = i;
        submit(&f, work_double, &jobs[i]);
    }
    /* Done callbacks never run from inside pgpool_submit(). */
    assert_int_equal(done_count, 0);
    wait_done(&f, N, 60000);

    long most_sessions = 0;
    for (int i = 0; i < N; i++) {
        if (jobs[i].done_calls != 1 || jobs[i].status != 0) {
            fail_msg("job %d: %d done calls, status %d (%s)", i, jobs[i].done_calls, jobs[i].status,
                     jobs[i].errmsg);
        }
        assert_int_equal(jobs[i].result, 2 * i);
        assert_true(jobs[i].ran_off_loop);
        assert_true(jobs[i].done_on_loop);
        most_sessions = jobs[i].sessions > most_sessions ? jobs[i].sessions : most_sessions;
    }
    /* Four workers ran jobs side by side, and never more. */
    assert_int_equal(atomic_load(&max_in_flight), MAX);
    assert_in_range(most_sessions, 1, MAX);

    struct pgpool_stats st = stats_of(&f);
    assert_int_equal(st.jobs_total, N);
    assert_int_equal(st.jobs_failed, 0);
    assert_int_equal(st.busy, 0);
    assert_int_equal(st.queued, 0);
    assert_in_range(st.connections_open, 1, MAX);
    assert_true(st.healthy);
    assert_true(pgpool_healthy(f.pool));
    assert_in_range(server_sessions(&f), 1, MAX);
    finish(&f);
    /* Closing closed every connection; the server notices within moments. */
    PGconn *c = pgtest_connect(conninfo);
    char sql[256];
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM pg_stat_activity WHERE application_name = '%s'", f.app);
    long left = -1;
    for (int i = 0; i < 500 && left != 0; i++) {
        left = pgtest_long(c, sql);
        if (left != 0) {
            usleep(10000);
        }
    }
    PQfinish(c);
    assert_int_equal(left, 0);
}

static void test_job_errors_and_codes(void **state)
{
    (void)state;
    struct fixture f;
    start(&f, conninfo, 2, 0, 30, 60, 600);
    reset_counters();
    struct job div = {.sql = "SELECT 1/0"};
    struct job code = {.ret = 7};
    struct job neg = {.ret = -5};
    submit(&f, work_sql, &div);
    submit(&f, work_code, &code);
    submit(&f, work_code, &neg);
    wait_done(&f, 3, 20000);

    assert_int_equal(div.status, -1);
    pgtest_assert_contains(div.errmsg, "division by zero");
    assert_int_equal(code.status, 7);
    assert_string_equal(code.errmsg, "job-specific outcome 7");
    assert_int_equal(neg.status, -5);
    assert_string_equal(neg.errmsg, "job-specific outcome -5");

    struct pgpool_stats st = stats_of(&f);
    assert_int_equal(st.jobs_total, 3);
    assert_int_equal(st.jobs_failed, 2);
    /* A failed query is the job's failure, not PostgreSQL's: the pool stays healthy. */
    assert_true(pgpool_healthy(f.pool));
    finish(&f);
}

static void test_transaction_left_open_is_rolled_back(void **state)
{
    (void)state;
    struct fixture f;
    /* One connection, so every job below gets the same one. */
    start(&f, conninfo, 1, 0, 30, 60, 600);
    reset_counters();
    struct job pid1 = {0};
    struct job open_tx = {.sql = "BEGIN; CREATE TABLE leftover (x int)"};
    struct job failed_tx = {.sql = "BEGIN; SELECT 1/0"};
    struct job check = {.sql = "SELECT (to_regclass('leftover') IS NULL)::int"};
    struct job pid2 = {0};
    submit(&f, work_pid, &pid1);
    submit(&f, work_sql, &open_tx);
    submit(&f, work_sql, &failed_tx);
    submit(&f, work_sql, &check);
    submit(&f, work_pid, &pid2);
    wait_done(&f, 5, 20000);

    assert_int_equal(pid1.status, 0);
    assert_int_equal(open_tx.status, 0);
    assert_int_equal(failed_tx.status, -1);
    pgtest_assert_contains(failed_tx.errmsg, "division by zero");
    assert_int_equal(check.status, 0);
    /* The table of the abandoned transaction is gone. */
    assert_int_equal(check.result, 1);
    /* Rolled back, not discarded: still the same session. */
    assert_int_equal(pid2.status, 0);
    assert_int_equal(pid1.pid, pid2.pid);
    finish(&f);
}

/* A port on 127.0.0.1 where nothing listens: the socket is bound but never listens, so the
 * port stays ours and connections to it are refused. */
static int dead_port(int *fd_out)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    socklen_t len = sizeof(a);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    *fd_out = fd;
    return ntohs(a.sin_port);
}

static void test_unreachable_fails_within_acquire_timeout(void **state)
{
    (void)state;
    int fd;
    int port = dead_port(&fd);
    char url[256];
    snprintf(url, sizeof(url), "host=127.0.0.1 port=%d user=nobody dbname=nothing", port);
    struct fixture f;
    start(&f, url, 2, 0, 1, 60, 600);
    reset_counters();
    enum { N = 5 };
    struct job jobs[N];
    memset(jobs, 0, sizeof(jobs));
    uint64_t t0 = uv_hrtime();
    for (int i = 0; i < N; i++) {
        submit(&f, work_pid, &jobs[i]);
    }
    wait_done(&f, N, 10000);
    for (int i = 0; i < N; i++) {
        assert_int_equal(jobs[i].done_calls, 1);
        assert_int_equal(jobs[i].status, PGPOOL_EUNAVAILABLE);
        assert_false(jobs[i].ran);
        assert_true(jobs[i].done_on_loop);
        pgtest_assert_contains(jobs[i].errmsg, "cannot connect");
        /* About the acquire timeout of 1 s: not much sooner, not much later. */
        double waited = (double)(jobs[i].done_ns - t0) / 1e9;
        if (waited < 0.9 || waited > 4.0) {
            fail_msg("job %d failed after %.2f s", i, waited);
        }
    }
    assert_false(pgpool_healthy(f.pool));
    struct pgpool_stats st = stats_of(&f);
    assert_true(st.connect_failures >= 1);
    assert_int_equal(st.connections_open, 0);
    assert_int_equal(st.jobs_failed, N);
    finish(&f);
    close(fd);
}

static void test_busy_pool_times_out_queued_job(void **state)
{
    (void)state;
    struct fixture f;
    start(&f, conninfo, 1, 0, 1, 60, 600);
    reset_counters();
    struct job slow = {.sleep_s = 2.5};
    struct job queued = {0};
    uint64_t t0 = uv_hrtime();
    submit(&f, work_sleep, &slow);
    submit(&f, work_pid, &queued);
    wait_done(&f, 1, 10000);
    assert_int_equal(queued.status, PGPOOL_EUNAVAILABLE);
    assert_false(queued.ran);
    pgtest_assert_contains(queued.errmsg, "became free");
    double waited = (double)(queued.done_ns - t0) / 1e9;
    assert_true(waited >= 0.9 && waited < 2.4);
    /* The pool is busy, not broken. */
    assert_true(pgpool_healthy(f.pool));
    wait_done(&f, 2, 10000);
    assert_int_equal(slow.status, 0);
    finish(&f);
}

struct pool_count {
    struct fixture *f;
    int want;
};

static bool open_is(void *ctx)
{
    struct pool_count *c = ctx;
    return stats_of(c->f).connections_open == c->want;
}

static bool sessions_are(void *ctx)
{
    struct pool_count *c = ctx;
    return server_sessions(c->f) == c->want;
}

static void test_killed_idle_connections_are_replaced(void **state)
{
    (void)state;
    struct fixture f;
    start(&f, conninfo, 2, 2, 5, 60, 600);
    reset_counters();
    /* min_connections = 2: both open without any job. */
    struct pool_count two = {&f, 2};
    assert_true(run_until(&f, open_is, &two, 10000));
    assert_true(run_until(&f, sessions_are, &two, 10000));

    char sql[512];
    snprintf(sql, sizeof(sql),
             "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
             "WHERE application_name = '%s'",
             f.app);
    assert_int_equal(pgtest_long(f.admin, sql), 2);
    struct pool_count none = {&f, 0};
    assert_true(run_until(&f, sessions_are, &none, 10000));

    /* The dead connections are noticed before a job runs on them and replaced. */
    enum { N = 20 };
    struct job jobs[N];
    memset(jobs, 0, sizeof(jobs));
    for (int i = 0; i < N; i++) {
        submit(&f, work_pid, &jobs[i]);
    }
    wait_done(&f, N, 20000);
    for (int i = 0; i < N; i++) {
        if (jobs[i].status != 0) {
            fail_msg("job %d after the kill: status %d (%s)", i, jobs[i].status, jobs[i].errmsg);
        }
    }
    assert_true(pgpool_healthy(f.pool));
    assert_true(run_until(&f, sessions_are, &two, 10000));
    finish(&f);
}

struct active_wait {
    struct fixture *f;
    long pid;
};

static bool sleep_is_running(void *ctx)
{
    struct active_wait *w = ctx;
    char sql[512];
    snprintf(sql, sizeof(sql),
             "SELECT coalesce(max(pid), 0) FROM pg_stat_activity WHERE application_name = '%s' "
             "AND state = 'active' AND query LIKE 'SELECT pg_sleep%%'",
             w->f->app);
    w->pid = pgtest_long(w->f->admin, sql);
    return w->pid != 0;
}

static void test_connection_killed_during_job(void **state)
{
    (void)state;
    struct fixture f;
    start(&f, conninfo, 1, 0, 5, 60, 600);
    reset_counters();
    struct job slow = {.sleep_s = 30};
    submit(&f, work_sleep, &slow);
    struct active_wait w = {&f, 0};
    assert_true(run_until(&f, sleep_is_running, &w, 10000));
    char sql[128];
    snprintf(sql, sizeof(sql), "SELECT pg_terminate_backend(%ld)::int", w.pid);
    assert_int_equal(pgtest_long(f.admin, sql), 1);

    wait_done(&f, 1, 10000);
    assert_int_equal(slow.status, PGPOOL_EUNAVAILABLE);
    /* The job's own message is kept: the server's "terminating connection ..." or libpq's
     * "server closed the connection unexpectedly", depending on which arrives first. */
    pgtest_assert_contains(slow.errmsg, "connection");
    assert_false(pgpool_healthy(f.pool));

    /* The next job gets a new connection. */
    struct job after = {0};
    submit(&f, work_pid, &after);
    wait_done(&f, 2, 10000);
    assert_int_equal(after.status, 0);
    assert_true(after.pid != w.pid);
    assert_true(pgpool_healthy(f.pool));
    finish(&f);
}

static void test_idle_connections_above_min_close(void **state)
{
    (void)state;
    enum { MAX = 4 };
    struct fixture f;
    start(&f, conninfo, MAX, 1, 10, 1, 600);
    reset_counters();
    struct job jobs[MAX];
    memset(jobs, 0, sizeof(jobs));
    for (int i = 0; i < MAX; i++) {
        jobs[i].n = MAX;
        submit(&f, work_barrier, &jobs[i]);
    }
    wait_done(&f, MAX, 20000);
    uint64_t t0 = uv_hrtime();
    for (int i = 0; i < MAX; i++) {
        assert_int_equal(jobs[i].status, 0);
        /* All four were open together. */
        assert_int_equal(jobs[i].sessions, MAX);
    }

    struct pool_count one = {&f, 1};
    assert_true(run_until(&f, open_is, &one, 8000));
    double waited = (double)(uv_hrtime() - t0) / 1e9;
    /* Idle timeout 1 s: the extra connections lasted about that long. */
    if (waited < 0.5) {
        fail_msg("idle connections closed after %.2f s", waited);
    }
    assert_true(run_until(&f, sessions_are, &one, 8000));
    /* min_connections = 1 stays open however long the pool idles. */
    run_for(&f, 1500);
    assert_int_equal(stats_of(&f).connections_open, 1);
    assert_int_equal(server_sessions(&f), 1);
    finish(&f);
}

static void test_max_lifetime_recycles_between_jobs(void **state)
{
    (void)state;
    struct fixture f;
    start(&f, conninfo, 1, 1, 10, 60, 1);
    reset_counters();
    /* A job longer than the lifetime keeps its connection to the end. */
    struct job slow = {.sleep_s = 1.5};
    submit(&f, work_sleep, &slow);
    wait_done(&f, 1, 10000);
    assert_int_equal(slow.status, 0);
    assert_true(slow.pid > 0);
    assert_int_equal(slow.pid, slow.pid_after);
    /* Between jobs it is replaced. */
    struct job next = {0};
    submit(&f, work_pid, &next);
    wait_done(&f, 2, 10000);
    assert_int_equal(next.status, 0);
    assert_true(next.pid != slow.pid);
    finish(&f);
}

static bool job_ran(void *ctx)
{
    return atomic_load(&((struct job *)ctx)->ran);
}

static void test_close_with_jobs_queued(void **state)
{
    (void)state;
    enum { N = 10 };
    struct fixture f;
    start(&f, conninfo, 1, 0, 30, 60, 600);
    reset_counters();
    struct job running = {.sleep_s = 1.5};
    struct job queued[N];
    memset(queued, 0, sizeof(queued));
    submit(&f, work_sleep, &running);
    for (int i = 0; i < N; i++) {
        submit(&f, work_pid, &queued[i]);
    }
    assert_true(run_until(&f, job_ran, &running, 10000));

    /* Normally 0, unless this thread was held up longer than the running job. */
    int before = done_count;
    pgpool_close(f.pool, on_pool_closed, &f.closed);
    /* No callback from inside pgpool_close(), and no new job accepted. */
    assert_int_equal(done_count, before);
    struct job late = {0};
    assert_int_equal(pgpool_submit(f.pool, work_pid, on_done, &late), PGPOOL_ECLOSED);
    assert_true(run_until(&f, is_true, &f.closed, 20000));

    assert_int_equal(done_count, N + 1);
    assert_int_equal(running.done_calls, 1);
    assert_int_equal(running.status, 0);
    for (int i = 0; i < N; i++) {
        assert_int_equal(queued[i].done_calls, 1);
        assert_int_equal(queued[i].status, PGPOOL_ECLOSED);
        assert_false(queued[i].ran);
        assert_true(queued[i].done_on_loop);
    }
    assert_int_equal(late.done_calls, 0);
    uv_close((uv_handle_t *)&f.tick, NULL);
    assert_int_equal(uv_run(&f.loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&f.loop), 0);
    PQfinish(f.admin);
}

static void test_rejects_bad_settings(void **state)
{
    (void)state;
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    struct pgconf conf;
    set_conf(&conf, conninfo, 2, 3, 1, 1, 1);
    struct pgpool *pool = (struct pgpool *)(uintptr_t)1; /* must be reset to NULL */
    char err[256] = "";
    assert_int_equal(pgpool_init(&pool, &loop, &conf, "x", err, sizeof(err)), PGPOOL_EINVAL);
    assert_null(pool);
    pgtest_assert_contains(err, "min connections");
    conf.min_connections = 0;
    conf.max_connections = 0;
    pool = (struct pgpool *)(uintptr_t)1;
    err[0] = '\0';
    assert_int_equal(pgpool_init(&pool, &loop, &conf, "x", err, sizeof(err)), PGPOOL_EINVAL);
    assert_null(pool);
    pgtest_assert_contains(err, "max connections 0");
    pgconf_free(&conf);
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* ---- PostgreSQL going away and coming back, through a TCP proxy on the loop ---- */

struct proxy {
    uv_loop_t *loop;
    uv_tcp_t *listener; /* NULL while "down" */
    int port;
    struct sockaddr_in upstream;
    struct pair *pairs;
};

struct pair {
    struct proxy *proxy;
    struct pair *next;
    uv_tcp_t client;
    uv_tcp_t server;
    uv_connect_t connect;
    bool closing;
    int open_handles;
};

static void pair_handle_closed(uv_handle_t *h)
{
    struct pair *p = h->data;
    if (--p->open_handles == 0) {
        free(p);
    }
}

static void pair_close(struct pair *p)
{
    if (p->closing) {
        return;
    }
    p->closing = true;
    for (struct pair **it = &p->proxy->pairs; *it != NULL; it = &(*it)->next) {
        if (*it == p) {
            *it = p->next;
            break;
        }
    }
    uv_close((uv_handle_t *)&p->client, pair_handle_closed);
    uv_close((uv_handle_t *)&p->server, pair_handle_closed);
}

static void proxy_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h;
    buf->base = malloc(suggested);
    buf->len = buf->base != NULL ? suggested : 0;
}

static void proxy_written(uv_write_t *req, int status)
{
    (void)status;
    free(req->data);
    free(req);
}

static void proxy_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct pair *p = s->data;
    if (nread > 0 && !p->closing) {
        uv_stream_t *to =
            s == (uv_stream_t *)&p->client ? (uv_stream_t *)&p->server : (uv_stream_t *)&p->client;
        uv_write_t *req = malloc(sizeof(*req));
        uv_buf_t out = uv_buf_init(buf->base, (unsigned)nread);
        req->data = buf->base;
        if (uv_write(req, to, &out, 1, proxy_written) != 0) {
            free(req);
            free(buf->base);
            pair_close(p);
        }
        return;
    }
    free(buf->base);
    if (nread < 0) {
        pair_close(p);
    }
}

static void proxy_connected(uv_connect_t *req, int status)
{
    struct pair *p = req->data;
    if (p->closing) {
        return;
    }
    if (status != 0) {
        pair_close(p);
        return;
    }
    uv_read_start((uv_stream_t *)&p->client, proxy_alloc, proxy_read);
    uv_read_start((uv_stream_t *)&p->server, proxy_alloc, proxy_read);
}

static void proxy_accept(uv_stream_t *listener, int status)
{
    struct proxy *px = listener->data;
    if (status != 0) {
        return;
    }
    struct pair *p = calloc(1, sizeof(*p));
    p->proxy = px;
    p->open_handles = 2;
    uv_tcp_init(px->loop, &p->client);
    uv_tcp_init(px->loop, &p->server);
    p->client.data = p->server.data = p->connect.data = p;
    p->next = px->pairs;
    px->pairs = p;
    if (uv_accept(listener, (uv_stream_t *)&p->client) != 0 ||
        uv_tcp_connect(&p->connect, &p->server, (struct sockaddr *)&px->upstream,
                       proxy_connected) != 0) {
        pair_close(p);
    }
}

/* Listens on PX->port (a fresh port the first time). */
static void proxy_up(struct proxy *px)
{
    px->listener = malloc(sizeof(*px->listener));
    assert_int_equal(uv_tcp_init(px->loop, px->listener), 0);
    px->listener->data = px;
    struct sockaddr_in a;
    uv_ip4_addr("127.0.0.1", px->port, &a);
    assert_int_equal(uv_tcp_bind(px->listener, (struct sockaddr *)&a, 0), 0);
    assert_int_equal(uv_listen((uv_stream_t *)px->listener, 16, proxy_accept), 0);
    int len = sizeof(a);
    assert_int_equal(uv_tcp_getsockname(px->listener, (struct sockaddr *)&a, &len), 0);
    px->port = ntohs(a.sin_port);
}

static void free_handle(uv_handle_t *h)
{
    free(h);
}

/* Stops listening and cuts every proxied connection: PostgreSQL is "down". */
static void proxy_down(struct proxy *px)
{
    uv_close((uv_handle_t *)px->listener, free_handle);
    px->listener = NULL;
    while (px->pairs != NULL) {
        pair_close(px->pairs);
    }
}

static bool healthy_is(void *ctx)
{
    struct fixture *f = ctx;
    return pgpool_healthy(f->pool);
}

static void test_reconnects_when_postgres_returns(void **state)
{
    (void)state;
    const char *base = getenv("CONCLAVE_TEST_PG");
    const char *port_kw = base != NULL ? strstr(base, "port=") : NULL;
    assert_non_null(port_kw);

    /* The proxy runs on the pool's loop; the pool connects through it. */
    struct fixture f;
    open_loop(&f);
    struct proxy px = {.loop = &f.loop};
    uv_ip4_addr("127.0.0.1", atoi(port_kw + 5), &px.upstream);
    proxy_up(&px);
    char url[1024];
    snprintf(url, sizeof(url), "%s host=127.0.0.1 port=%d", conninfo, px.port);
    open_pool(&f, url, 2, 1, 1, 60, 600);
    reset_counters();

    assert_true(run_until(&f, healthy_is, &f, 10000));
    struct job first = {0};
    submit(&f, work_pid, &first);
    wait_done(&f, 1, 10000);
    assert_int_equal(first.status, 0);

    /* Down: the open connection breaks, new ones are refused. */
    proxy_down(&px);
    struct job during = {0};
    submit(&f, work_pid, &during);
    wait_done(&f, 2, 10000);
    assert_int_equal(during.status, PGPOOL_EUNAVAILABLE);
    assert_false(pgpool_healthy(f.pool));

    /* Back: the pool reconnects by itself, without a job asking. */
    proxy_up(&px);
    assert_true(run_until(&f, healthy_is, &f, 10000));
    struct pool_count one = {&f, 1};
    assert_true(run_until(&f, open_is, &one, 10000));
    struct job after = {0};
    submit(&f, work_pid, &after);
    wait_done(&f, 3, 10000);
    assert_int_equal(after.status, 0);

    proxy_down(&px);
    finish(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_many_jobs_exactly_once),
        cmocka_unit_test(test_job_errors_and_codes),
        cmocka_unit_test(test_transaction_left_open_is_rolled_back),
        cmocka_unit_test(test_unreachable_fails_within_acquire_timeout),
        cmocka_unit_test(test_busy_pool_times_out_queued_job),
        cmocka_unit_test(test_killed_idle_connections_are_replaced),
        cmocka_unit_test(test_connection_killed_during_job),
        cmocka_unit_test(test_idle_connections_above_min_close),
        cmocka_unit_test(test_max_lifetime_recycles_between_jobs),
        cmocka_unit_test(test_close_with_jobs_queued),
        cmocka_unit_test(test_rejects_bad_settings),
        cmocka_unit_test(test_reconnects_when_postgres_returns),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
