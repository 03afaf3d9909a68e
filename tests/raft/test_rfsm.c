/*
 * The raft adapter's out-of-memory rule (issue 14 item 5): when apply cannot allocate, the
 * node must not apply any later entry (raft 0.15 goes on applying the committed entries after
 * it) and must not take a snapshot that would claim raft's index past the missed entry.
 * Driven through the CONCLAVE_FAILPOINT_FSM_OOM failpoint, read once by rfsm_init().
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <raft.h>

#include "raft/codec.h"
#include "raft/fsm.h"
#include "raft/rfsm.h"

static char err[256];

static struct raft_buffer put_entry(const char *key, uint64_t expected, const char *rid)
{
    struct codec_entry e;
    memset(&e, 0, sizeof(e));
    e.op = CODEC_OP_PUT;
    e.expected_version = expected;
    e.term = 1;
    e.timestamp_us = 1700000000000000;
    e.project = "acme";
    e.project_len = 4;
    e.key = key;
    e.key_len = strlen(key);
    e.actor = "alice";
    e.actor_len = 5;
    e.request_id = rid;
    e.request_id_len = strlen(rid);
    e.content = (const uint8_t *)"{}";
    e.content_len = 2;
    uint8_t *buf = NULL;
    size_t len = 0;
    if (codec_encode(&e, &buf, &len, err, sizeof(err)) != 0) {
        fail_msg("encode: %s", err);
    }
    struct raft_buffer b = {.base = buf, .len = len};
    return b;
}

/* Applies BUF as raft would: at raft's last applied + 1, which raft then advances whatever
 * apply reported. */
static const struct fsm_result *apply(struct rfsm *a, struct raft *r, struct raft_buffer buf)
{
    void *result = NULL;
    assert_int_equal(a->raft_fsm.apply(&a->raft_fsm, &buf, &result), 0);
    r->last_applied++;
    free(buf.base);
    return result;
}

static void test_oom_stops_before_later_entries(void **state)
{
    (void)state;
    /* The second apply fails to allocate. */
    assert_int_equal(setenv("CONCLAVE_FAILPOINT_FSM_OOM", "2", 1), 0);
    struct fsm *f = NULL;
    assert_int_equal(fsm_new(&f, NULL, err, sizeof(err)), 0);
    struct raft r;
    memset(&r, 0, sizeof(r));
    struct rfsm a;
    rfsm_init(&a, f, &r);
    assert_int_equal(unsetenv("CONCLAVE_FAILPOINT_FSM_OOM"), 0);
    assert_int_equal(a.oom_at, 2);

    const struct fsm_result *res = apply(&a, &r, put_entry("k1", 0, "r1"));
    assert_int_equal(res->status, FSM_OK);
    assert_false(a.fatal);
    res = apply(&a, &r, put_entry("k2", 0, "r2"));
    assert_int_equal(res->status, FSM_STOPPED);
    assert_true(a.fatal);
    /* Raft goes on with the next committed entries: none of them is applied. */
    res = apply(&a, &r, put_entry("k3", 0, "r3"));
    assert_int_equal(res->status, FSM_STOPPED);
    res = apply(&a, &r, put_entry("k1", 1, "r4"));
    assert_int_equal(res->status, FSM_STOPPED);
    assert_int_equal(fsm_last_applied(f), 1);
    assert_null(fsm_get(f, "acme", 4, "k2", 2));
    assert_null(fsm_get(f, "acme", 4, "k3", 2));
    assert_int_equal(fsm_get(f, "acme", 4, "k1", 2)->version, 1);
    assert_null(fsm_request_find(f, "acme", 4, "r3", 2));
    /* No snapshot: raft's index (4) is past what this state machine holds (1). */
    struct raft_buffer *bufs = NULL;
    unsigned n = 0;
    assert_int_not_equal(a.raft_fsm.snapshot(&a.raft_fsm, &bufs, &n), 0);
    assert_null(bufs);
    fsm_free(f);
}

static void test_no_failpoint(void **state)
{
    (void)state;
    assert_int_equal(setenv("CONCLAVE_FAILPOINT_FSM_OOM", "x", 1), 0);
    struct fsm *f = NULL;
    assert_int_equal(fsm_new(&f, NULL, err, sizeof(err)), 0);
    struct raft r;
    memset(&r, 0, sizeof(r));
    struct rfsm a;
    rfsm_init(&a, f, &r);
    assert_int_equal(unsetenv("CONCLAVE_FAILPOINT_FSM_OOM"), 0);
    assert_int_equal(a.oom_at, 0); /* not a number: off */
    for (int i = 0; i < 5; i++) {
        char rid[8];
        snprintf(rid, sizeof(rid), "r%d", i);
        assert_int_equal(apply(&a, &r, put_entry("k", (uint64_t)i, rid))->status, FSM_OK);
    }
    assert_false(a.fatal);
    struct raft_buffer *bufs = NULL;
    unsigned n = 0;
    assert_int_equal(a.raft_fsm.snapshot(&a.raft_fsm, &bufs, &n), 0);
    assert_int_equal(n, 1);
    raft_free(bufs[0].base);
    raft_free(bufs);
    fsm_free(f);
}

/* rfsm_async_snapshots(): snapshot only freezes a view (no bytes yet), snapshot_async
 * serialises and seals it after the loop applied a later entry (byte for byte fsm_snapshot()'s
 * at the moment of snapshot), snapshot_finalize releases it (ASan: nothing leaks). */
static void test_async_snapshot(void **state)
{
    (void)state;
    struct fsm *f = NULL;
    assert_int_equal(fsm_new(&f, NULL, err, sizeof(err)), 0);
    struct raft r;
    memset(&r, 0, sizeof(r));
    struct rfsm a;
    rfsm_init(&a, f, &r);
    rfsm_async_snapshots(&a);
    assert_int_equal(a.raft_fsm.version, 3);
    for (int i = 0; i < 3; i++) {
        char rid[8];
        snprintf(rid, sizeof(rid), "r%d", i);
        assert_int_equal(apply(&a, &r, put_entry("k", (uint64_t)i, rid))->status, FSM_OK);
    }
    uint8_t *ref = NULL;
    size_t len = 0;
    assert_int_equal(fsm_snapshot(f, &ref, &len, err, sizeof(err)), 0);
    struct raft_buffer *bufs = NULL;
    unsigned n = 0;
    assert_int_equal(a.raft_fsm.snapshot(&a.raft_fsm, &bufs, &n), 0);
    assert_int_equal(n, 1);
    assert_null(bufs[0].base); /* nothing serialised on the loop */
    assert_int_equal(apply(&a, &r, put_entry("k", 3, "r3"))->status, FSM_OK);
    assert_int_equal(a.raft_fsm.snapshot_async(&a.raft_fsm, &bufs, &n), 0);
    assert_int_equal(bufs[0].len, len);
    assert_memory_equal(bufs[0].base, ref, len);
    assert_int_equal(a.raft_fsm.snapshot_finalize(&a.raft_fsm, &bufs, &n), 0);
    assert_null(bufs);
    assert_int_equal(n, 0);
    free(ref);
    fsm_free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_oom_stops_before_later_entries),
        cmocka_unit_test(test_no_failpoint),
        cmocka_unit_test(test_async_snapshot),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
