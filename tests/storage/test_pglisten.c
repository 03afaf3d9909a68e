/*
 * LISTEN/NOTIFY delivery against a real server: notifications reach the loop thread with
 * their channel and payload, a reset event follows every (re)connection, and the listener
 * stops promptly. Waits are bounded by deadlines of several seconds.
 */
#include <setjmp.h>
#include <stdarg.h>
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
#include "storage/pglisten.h"
#include "pgtest.h"

#define CH_PLAIN "cfg_changes"
#define CH_ODD   "Mixed Case \"q\""

static char conninfo[512];
static uv_thread_t loop_thread;

enum { MAX_EVENTS = 1024 };

struct event {
    bool reset;
    char channel[80];
    char payload[64];
};

struct fixture {
    uv_loop_t loop;
    uv_timer_t tick;
    struct pglisten *listener;
    bool closed;
    PGconn *admin;
    struct event events[MAX_EVENTS];
    int nevents;
    int resets;
    int notifies;
    bool off_loop;         /* a callback ran on another thread */
    bool close_on_reset;   /* the callback closes the listener at the first reset */
    int after_close_calls; /* callbacks after pglisten_close() */
    bool close_called;
};

static void on_tick(uv_timer_t *t)
{
    (void)t;
}

typedef bool (*cond_fn)(struct fixture *f);

static bool run_until(struct fixture *f, cond_fn cond, uint64_t timeout_ms)
{
    uint64_t deadline = uv_hrtime() + timeout_ms * 1000000u;
    while (!cond(f)) {
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

static bool never(struct fixture *f)
{
    (void)f;
    return false;
}

static void on_closed(void *data)
{
    struct fixture *f = data;
    f->closed = true;
}

static void on_event(const char *channel, const char *payload, void *data)
{
    struct fixture *f = data;
    uv_thread_t self = uv_thread_self();
    if (!uv_thread_equal(&self, &loop_thread)) {
        f->off_loop = true;
    }
    if (f->close_called) {
        f->after_close_calls++;
    }
    if (f->nevents < MAX_EVENTS) {
        struct event *e = &f->events[f->nevents++];
        e->reset = channel == NULL;
        if (channel != NULL) {
            snprintf(e->channel, sizeof(e->channel), "%s", channel);
            snprintf(e->payload, sizeof(e->payload), "%s", payload);
        } else if (payload != NULL) {
            fail_msg("a reset event must have no payload");
        }
    }
    if (channel == NULL) {
        f->resets++;
        if (f->close_on_reset && !f->close_called) {
            f->close_called = true;
            pglisten_close(f->listener, on_closed, f);
        }
    } else {
        f->notifies++;
    }
}

static void open_fixture(struct fixture *f)
{
    memset(f, 0, sizeof(*f));
    assert_int_equal(uv_loop_init(&f->loop), 0);
    assert_int_equal(uv_timer_init(&f->loop, &f->tick), 0);
    f->admin = pgtest_connect(conninfo);
}

static void start_listener(struct fixture *f, const char *url, const char *const *channels)
{
    struct pgconf conf;
    char err[256];
    assert_int_equal(pgconf_init(&conf), 0);
    assert_int_equal(pgconf_set_url(&conf, url, err, sizeof(err)), 0);
    conf.acquire_timeout_s = 2;
    int rc = pglisten_start(&f->listener, &f->loop, &conf, channels, on_event, f, err, sizeof(err));
    pgconf_free(&conf);
    if (rc != 0) {
        fail_msg("pglisten_start: %s", err);
    }
}

static bool is_closed(struct fixture *f)
{
    return f->closed;
}

/* Closes the listener (unless the test already did) and the loop. */
static void finish(struct fixture *f)
{
    if (!f->close_called) {
        f->close_called = true;
        pglisten_close(f->listener, on_closed, f);
    }
    assert_true(run_until(f, is_closed, 10000));
    assert_int_equal(f->after_close_calls, 0);
    assert_false(f->off_loop);
    uv_close((uv_handle_t *)&f->tick, NULL);
    assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    PQfinish(f->admin);
}

static long listener_pid(struct fixture *f)
{
    return pgtest_long(f->admin, "SELECT coalesce(max(pid), 0) FROM pg_stat_activity "
                                 "WHERE application_name = '" PGLISTEN_APPLICATION_NAME "' "
                                 "AND datname = current_database()");
}

static int want_resets;
static int want_notifies;

static bool resets_reached(struct fixture *f)
{
    return f->resets >= want_resets;
}

static bool notifies_reached(struct fixture *f)
{
    return f->notifies >= want_notifies;
}

static void wait_resets(struct fixture *f, int n)
{
    want_resets = n;
    if (!run_until(f, resets_reached, 10000)) {
        fail_msg("%d of %d reset events within 10 s", f->resets, n);
    }
}

static void wait_notifies(struct fixture *f, int n)
{
    want_notifies = n;
    if (!run_until(f, notifies_reached, 10000)) {
        fail_msg("%d of %d notifications within 10 s", f->notifies, n);
    }
}

/* The I-th event that is not a reset. */
static const struct event *nth_notify(struct fixture *f, int i)
{
    int left = i;
    for (int k = 0; k < f->nevents; k++) {
        if (!f->events[k].reset && left-- == 0) {
            return &f->events[k];
        }
    }
    fail_msg("no notification %d among %d events", i, f->nevents);
    return NULL;
}

static void assert_notify(struct fixture *f, int i, const char *channel, const char *payload)
{
    const struct event *e = nth_notify(f, i);
    assert_string_equal(e->channel, channel);
    assert_string_equal(e->payload, payload);
}

static int setup(void **state)
{
    (void)state;
    loop_thread = uv_thread_self();
    pgtest_create_db("pglisten", conninfo, sizeof(conninfo));
    return 0;
}

static void test_notifications_and_resets(void **state)
{
    (void)state;
    struct fixture *f = calloc(1, sizeof(*f));
    open_fixture(f);
    const char *const channels[] = {CH_PLAIN, CH_ODD, NULL};
    start_listener(f, conninfo, channels);

    /* The first event says the listener is connected and listening. */
    wait_resets(f, 1);
    assert_true(f->events[0].reset);
    assert_int_equal(f->notifies, 0);
    long pid1 = listener_pid(f);
    assert_true(pid1 != 0);

    /* A channel nobody listens to first: had it arrived, it would come before the others. */
    pgtest_exec(f->admin, "NOTIFY not_listened, 'x'");
    pgtest_exec(f->admin, "SELECT pg_notify('" CH_PLAIN "', 'hello')");
    pgtest_exec(f->admin, "SELECT pg_notify('Mixed Case \"q\"', 'odd ''name''')");
    pgtest_exec(f->admin, "NOTIFY " CH_PLAIN);
    wait_notifies(f, 3);
    assert_notify(f, 0, CH_PLAIN, "hello");
    assert_notify(f, 1, CH_ODD, "odd 'name'");
    assert_notify(f, 2, CH_PLAIN, "");
    /* Nothing more: in particular not the unlistened channel. */
    run_until(f, never, 200);
    assert_int_equal(f->notifies, 3);
    assert_int_equal(f->resets, 1);

    /* The listener's session is killed: it reconnects and says caches must go. */
    char sql[128];
    snprintf(sql, sizeof(sql), "SELECT pg_terminate_backend(%ld)::int", pid1);
    assert_int_equal(pgtest_long(f->admin, sql), 1);
    wait_resets(f, 2);
    long pid2 = listener_pid(f);
    assert_true(pid2 != 0 && pid2 != pid1);

    /* And later notifications still arrive, in order, all of them. */
    pgtest_exec(f->admin, "SELECT pg_notify('" CH_PLAIN "', 'after')");
    pgtest_exec(f->admin,
                "SELECT pg_notify('" CH_PLAIN "', g::text) FROM generate_series(1, 500) g");
    wait_notifies(f, 3 + 1 + 500);
    assert_notify(f, 3, CH_PLAIN, "after");
    for (int i = 1; i <= 500; i++) {
        char payload[16];
        snprintf(payload, sizeof(payload), "%d", i);
        assert_notify(f, 3 + i, CH_PLAIN, payload);
    }
    /* All of them exactly once: nothing further arrives. */
    run_until(f, never, 200);
    assert_int_equal(f->notifies, 3 + 1 + 500);
    assert_int_equal(f->resets, 2);
    finish(f);
    free(f);
}

static void test_close_from_callback(void **state)
{
    (void)state;
    struct fixture *f = calloc(1, sizeof(*f));
    open_fixture(f);
    f->close_on_reset = true;
    const char *const channels[] = {CH_PLAIN, NULL};
    start_listener(f, conninfo, channels);
    assert_true(run_until(f, is_closed, 10000));
    assert_int_equal(f->resets, 1);
    pgtest_exec(f->admin, "NOTIFY " CH_PLAIN ", 'too late'");
    run_until(f, never, 200);
    assert_int_equal(f->nevents, 1);
    finish(f);
    free(f);
}

static void test_unreachable_then_prompt_close(void **state)
{
    (void)state;
    /* Bound but never listening: connections are refused. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    socklen_t len = sizeof(a);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    char url[256];
    snprintf(url, sizeof(url), "host=127.0.0.1 port=%d user=nobody dbname=nothing",
             ntohs(a.sin_port));

    struct fixture *f = calloc(1, sizeof(*f));
    open_fixture(f);
    const char *const channels[] = {CH_PLAIN, NULL};
    start_listener(f, url, channels);
    /* The backoff doubles from 0.1 s to at most 2 s, so its sleeps end about 0.1, 0.3, 0.7,
     * 1.5, 3.1 and 5.1 s after the start. At 3.6 s the thread is about 1.5 s from its next
     * attempt: a close that did not wake it would take that long. (At 3.0 s it would be only
     * 0.1 s away, and a sleeping thread could not be told from a woken one.) */
    run_until(f, never, 3600);
    assert_int_equal(f->nevents, 0);

    /* The thread sleeps in its backoff; closing wakes it at once. */
    uint64_t t0 = uv_hrtime();
    f->close_called = true;
    pglisten_close(f->listener, on_closed, f);
    assert_true(run_until(f, is_closed, 10000));
    double took = (double)(uv_hrtime() - t0) / 1e9;
    if (took > 1.0) {
        fail_msg("closing took %.2f s", took);
    }
    finish(f);
    free(f);
    close(fd);
}

static void test_rejects_bad_channels(void **state)
{
    (void)state;
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    struct pgconf conf;
    assert_int_equal(pgconf_init(&conf), 0);
    char err[256];
    struct pglisten *l = NULL;
    const char *const none[] = {NULL};
    assert_int_equal(pglisten_start(&l, &loop, &conf, none, on_event, NULL, err, sizeof(err)),
                     PGLISTEN_EINVAL);
    assert_null(l);
    pgtest_assert_contains(err, "at least one channel");
    char long_name[PGLISTEN_CHANNEL_MAX + 2];
    memset(long_name, 'c', sizeof(long_name) - 1);
    long_name[sizeof(long_name) - 1] = '\0';
    const char *const too_long[] = {CH_PLAIN, long_name, NULL};
    assert_int_equal(pglisten_start(&l, &loop, &conf, too_long, on_event, NULL, err, sizeof(err)),
                     PGLISTEN_EINVAL);
    pgtest_assert_contains(err, "1 to 63 bytes");
    assert_null(l);
    const char *const empty[] = {"", NULL};
    err[0] = '\0';
    assert_int_equal(pglisten_start(&l, &loop, &conf, empty, on_event, NULL, err, sizeof(err)),
                     PGLISTEN_EINVAL);
    pgtest_assert_contains(err, "1 to 63 bytes");
    assert_null(l);
    pgconf_free(&conf);
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_notifications_and_resets),
        cmocka_unit_test(test_close_from_callback),
        cmocka_unit_test(test_unreachable_then_prompt_close),
        cmocka_unit_test(test_rejects_bad_channels),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
