/*
 * raft/readindex.c against a fake raft (its public fields, set by hand) and a fake inner io
 * that records the probes: every answer is tied to one round by its nonce, a majority of the
 * voters (the leader included) confirms, duplicates and non-voters do not count, a higher
 * term, a step-down, a term change, a timeout and a stop fail the reads, a confirmed read
 * waits for the apply, and a read that arrives while a round is in flight is not served by
 * it. The last test puts the module behind raft/rio_guard.c's result hook, as rnode does.
 * The whole-system proof (real raft 0.15 followers answering the probes, partitions, crashes)
 * is tests/sim (test_sim_reads_stale_leader and the seeds).
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

#include "raft/readindex.h"
#include "raft/rio_guard.h"

/* ---- the fake inner io: records what is sent, answers every send at once -------------- */

#define MAX_SENT 64
static struct raft_message sent[MAX_SENT];
static unsigned n_sent;
static raft_time now;

static int fake_send(struct raft_io *io, struct raft_io_send *req, const struct raft_message *m,
                     raft_io_send_cb cb)
{
    (void)io;
    assert_true(n_sent < MAX_SENT);
    sent[n_sent++] = *m;
    cb(req, 0); /* the probe frees itself here */
    return 0;
}

static raft_time fake_time(struct raft_io *io)
{
    (void)io;
    return now;
}

static struct raft_io inner;
static struct raft r;
static struct readindex ri;

/* ---- the reads' callbacks ---------------------------------------------------------------- */

#define NO_ANSWER 999
struct read {
    int status; /* NO_ANSWER until the callback runs */
    unsigned calls;
};

static void read_done(void *data, int status)
{
    struct read *rd = data;
    rd->status = status;
    rd->calls++;
}

static void read_start(struct read *rd)
{
    rd->status = NO_ANSWER;
    rd->calls = 0;
    assert_int_equal(readindex_read(&ri, read_done, rd), 0);
    assert_int_equal(rd->calls, 0); /* never from within the call */
}

/* ---- helpers ---------------------------------------------------------------------------- */

/* A leader (id 1) of term 7 with VOTERS voters (ids 1..VOTERS) and one spare (id 9), commit
 * and applied index 20, ready in its term. */
static void leader(unsigned voters)
{
    char err[128];
    memset(&inner, 0, sizeof(inner));
    inner.send = fake_send;
    inner.time = fake_time;
    memset(&r, 0, sizeof(r));
    r.id = 1;
    r.state = RAFT_LEADER;
    r.current_term = 7;
    r.commit_index = 20;
    r.last_applied = 20;
    raft_configuration_init(&r.configuration);
    char addr[16];
    for (unsigned i = 1; i <= voters; i++) {
        snprintf(addr, sizeof(addr), "10.0.0.%u", i);
        assert_int_equal(raft_configuration_add(&r.configuration, i, addr, RAFT_VOTER), 0);
    }
    assert_int_equal(raft_configuration_add(&r.configuration, 9, "10.0.0.9", RAFT_SPARE), 0);
    n_sent = 0;
    now = 1000;
    assert_int_equal(readindex_init(&ri, &r, &inner, 500, 50, err, sizeof(err)), 0);
    readindex_ready(&ri, 7);
}

static int teardown(void **state)
{
    (void)state;
    readindex_stop(&ri, READINDEX_ESHUTDOWN);
    raft_configuration_close(&r.configuration);
    return 0;
}

/* The answer of server FROM to a probe carrying NONCE, in TERM. Returns readindex_recv's. */
static bool answer(raft_id from, raft_index nonce, raft_term term)
{
    struct raft_message m;
    memset(&m, 0, sizeof(m));
    m.type = RAFT_IO_APPEND_ENTRIES_RESULT;
    m.server_id = from;
    m.server_address = "x";
    m.append_entries_result.term = term;
    m.append_entries_result.rejected = nonce; /* raft 0.15 echoes prev_log_index */
    m.append_entries_result.last_log_index = 20;
    return readindex_recv(&ri, &m);
}

/* The nonce of the I-th message sent, checking that it is a probe to a voter. */
static raft_index probe_nonce(unsigned i)
{
    assert_true(i < n_sent);
    const struct raft_message *m = &sent[i];
    assert_int_equal(m->type, RAFT_IO_APPEND_ENTRIES);
    assert_int_equal(m->append_entries.term, r.current_term);
    assert_int_equal(m->append_entries.prev_log_term, r.current_term);
    assert_int_equal(m->append_entries.n_entries, 0);
    assert_int_equal(m->append_entries.leader_commit, 0);
    assert_true((m->append_entries.prev_log_index & READINDEX_PROBE_BIT) != 0);
    return m->append_entries.prev_log_index;
}

/* ---- tests ------------------------------------------------------------------------------ */

static void test_majority_of_three_confirms(void **state)
{
    (void)state;
    leader(3);
    struct read a;
    read_start(&a);
    /* One probe to each other voter, none to the spare, one nonce for the round. */
    assert_int_equal(n_sent, 2);
    raft_index nonce = probe_nonce(0);
    assert_int_equal(probe_nonce(1), nonce);
    assert_int_equal(sent[0].server_id + sent[1].server_id, 2 + 3);
    assert_string_equal(sent[0].server_address, sent[0].server_id == 2 ? "10.0.0.2" : "10.0.0.3");
    /* An ordinary AppendEntries result is raft's. */
    assert_false(answer(2, 19, 7));
    assert_int_equal(a.calls, 0);
    /* The leader and server 2 are two of three. */
    assert_true(answer(2, nonce, 7));
    assert_int_equal(a.calls, 1);
    assert_int_equal(a.status, 0);
    /* A late answer is still swallowed, and answers nothing twice. */
    assert_true(answer(3, nonce, 7));
    assert_int_equal(a.calls, 1);
    assert_int_equal(ri.rounds, 1);
    assert_int_equal(ri.reads_served, 1);
}

static void test_majority_of_five_counts_distinct_voters(void **state)
{
    (void)state;
    leader(5);
    struct read a;
    read_start(&a);
    assert_int_equal(n_sent, 4);
    raft_index nonce = probe_nonce(0);
    assert_true(answer(2, nonce, 7));
    assert_true(answer(2, nonce, 7));  /* a duplicate (a re-sent probe answered twice) */
    assert_true(answer(9, nonce, 7));  /* the spare is no voter */
    assert_true(answer(42, nonce, 7)); /* nor is a stranger */
    assert_int_equal(a.calls, 0);      /* the leader and server 2: two of five */
    assert_true(answer(4, nonce, 7));
    assert_int_equal(a.calls, 1);
    assert_int_equal(a.status, 0);
}

static void test_answers_are_tied_to_their_round(void **state)
{
    (void)state;
    leader(3);
    struct read a, b;
    read_start(&a);
    raft_index n1 = probe_nonce(0);
    /* B arrives while round 1 is in flight: round 1's probes predate it. */
    read_start(&b);
    assert_int_equal(n_sent, 2);       /* no probe for B yet */
    assert_true(answer(3, n1 + 1, 7)); /* a nonce no round of this leader sent yet */
    assert_int_equal(a.calls, 0);
    assert_true(answer(3, n1, 7));
    assert_int_equal(a.calls, 1);
    assert_int_equal(a.status, 0);
    assert_int_equal(b.calls, 0); /* not served by the round that predates it */
    /* Round 2 started for B at once, with a nonce of its own. */
    assert_int_equal(n_sent, 4);
    raft_index n2 = probe_nonce(2);
    assert_true(n2 != n1);
    assert_true(answer(2, n1, 7)); /* round 1's answer, late: proves nothing about B */
    assert_int_equal(b.calls, 0);
    assert_true(answer(2, n2, 6)); /* a lower term than the probe's: not a confirmation */
    assert_int_equal(b.calls, 0);
    assert_true(answer(2, n2, 7));
    assert_int_equal(b.calls, 1);
    assert_int_equal(b.status, 0);
    assert_int_equal(ri.rounds, 2);
}

static void test_higher_term_fails_the_round(void **state)
{
    (void)state;
    leader(3);
    struct read a;
    read_start(&a);
    raft_index nonce = probe_nonce(0);
    assert_true(answer(2, nonce, 8));
    assert_int_equal(a.calls, 1);
    assert_int_equal(a.status, READINDEX_ENOTLEADER);
    assert_true(answer(3, nonce, 7)); /* too late: the round is over */
    assert_int_equal(a.calls, 1);
    assert_int_equal(ri.reads_failed, 1);
}

static void test_step_down_and_term_change_fail(void **state)
{
    (void)state;
    leader(3);
    struct read a, b;
    read_start(&a);
    r.state = RAFT_FOLLOWER;
    readindex_tick(&ri);
    assert_int_equal(a.calls, 1);
    assert_int_equal(a.status, READINDEX_ENOTLEADER);
    /* Not leading: refused at once. */
    assert_int_equal(readindex_read(&ri, read_done, &b), READINDEX_ENOTLEADER);
    /* Leading again in a later term, not yet ready in it: refused too. */
    r.state = RAFT_LEADER;
    r.current_term = 8;
    assert_int_equal(readindex_read(&ri, read_done, &b), READINDEX_ENOTLEADER);
    readindex_ready(&ri, 8);
    read_start(&b);
    raft_index nonce = probe_nonce(n_sent - 1);
    /* The term moves on during the round: even a majority in the old term proves nothing. */
    r.current_term = 9;
    assert_true(answer(2, nonce, 8));
    assert_int_equal(b.calls, 1);
    assert_int_equal(b.status, READINDEX_ENOTLEADER);
}

static void test_timeout_and_resend(void **state)
{
    (void)state;
    leader(5);
    struct read a;
    read_start(&a);
    raft_index nonce = probe_nonce(0);
    assert_true(answer(3, nonce, 7));
    now += 49;
    readindex_tick(&ri);
    assert_int_equal(n_sent, 4); /* not yet time to re-send */
    now += 1;
    readindex_tick(&ri);
    /* Re-sent with the same nonce to the three that did not answer. */
    assert_int_equal(n_sent, 7);
    for (unsigned i = 4; i < 7; i++) {
        assert_int_equal(probe_nonce(i), nonce);
        assert_true(sent[i].server_id != 3);
    }
    now = 1000 + 499;
    readindex_tick(&ri);
    assert_int_equal(a.calls, 0);
    now = 1000 + 500;
    readindex_tick(&ri);
    assert_int_equal(a.calls, 1);
    assert_int_equal(a.status, READINDEX_ETIMEDOUT);
}

static void test_confirmed_read_waits_for_apply(void **state)
{
    (void)state;
    leader(3);
    r.commit_index = 25; /* committed, not yet applied: 21..25 */
    struct read a;
    read_start(&a);
    r.commit_index = 30; /* moves on after the round started: not needed */
    assert_true(answer(2, probe_nonce(0), 7));
    assert_int_equal(a.calls, 0);
    r.last_applied = 24;
    readindex_tick(&ri);
    assert_int_equal(a.calls, 0);
    r.last_applied = 25;
    readindex_tick(&ri);
    assert_int_equal(a.calls, 1);
    assert_int_equal(a.status, 0);
}

static void test_single_voter_and_stop(void **state)
{
    (void)state;
    leader(1);
    struct read a, b;
    read_start(&a);
    assert_int_equal(n_sent, 0); /* nobody to ask */
    readindex_tick(&ri);
    assert_int_equal(a.calls, 1);
    assert_int_equal(a.status, 0);
    /* Stop answers what is pending and refuses the rest. */
    teardown(NULL);
    leader(3);
    read_start(&a);
    read_start(&b); /* queued behind a's round */
    readindex_stop(&ri, READINDEX_ESHUTDOWN);
    assert_int_equal(a.status, READINDEX_ESHUTDOWN);
    assert_int_equal(b.status, READINDEX_ESHUTDOWN);
    assert_int_equal(a.calls + b.calls, 2);
    assert_int_equal(readindex_read(&ri, read_done, &a), READINDEX_ESHUTDOWN);
}

static void test_bad_arguments(void **state)
{
    (void)state;
    char err[128];
    struct raft_io none;
    memset(&none, 0, sizeof(none));
    leader(3);
    assert_int_equal(readindex_init(&ri, &r, &none, 500, 50, err, sizeof(err)), -1);
    assert_string_equal(err, "readindex: raft and an initialized inner raft_io are required");
    assert_int_equal(readindex_init(&ri, &r, &inner, 0, 50, err, sizeof(err)), -1);
    assert_string_equal(err,
                        "readindex: timeout (0 ms) and resend interval (50 ms) must be positive");
    assert_int_equal(readindex_init(&ri, &r, &inner, 500, 50, err, sizeof(err)), 0);
}

/* ---- behind rio_guard, as in rnode ------------------------------------------------------- */

static raft_io_recv_cb guard_recv;
static unsigned raft_saw;

static int fake_start(struct raft_io *io, unsigned msecs, raft_io_tick_cb tick,
                      raft_io_recv_cb recv)
{
    (void)io, (void)msecs, (void)tick;
    guard_recv = recv;
    return 0;
}

static int fake_init(struct raft_io *io, raft_id id, const char *address)
{
    (void)io, (void)id, (void)address;
    return 0;
}

static int fake_append(struct raft_io *io, struct raft_io_append *req,
                       const struct raft_entry entries[], unsigned n, raft_io_append_cb cb)
{
    (void)io, (void)req, (void)entries, (void)n, (void)cb;
    fail_msg("append is not exercised here");
    return RAFT_IOERR;
}

static int fake_truncate(struct raft_io *io, raft_index index)
{
    (void)io, (void)index;
    fail_msg("truncate is not exercised here");
    return RAFT_IOERR;
}

static int fake_snapshot_put(struct raft_io *io, unsigned trailing,
                             struct raft_io_snapshot_put *req, const struct raft_snapshot *snap,
                             raft_io_snapshot_put_cb cb)
{
    (void)io, (void)trailing, (void)req, (void)snap, (void)cb;
    fail_msg("snapshot_put is not exercised here");
    return RAFT_IOERR;
}

static void raft_recv(struct raft_io *io, struct raft_message *m)
{
    (void)io, (void)m;
    raft_saw++;
}

static bool hook(void *data, const struct raft_message *m)
{
    return readindex_recv(data, m);
}

static void test_guard_hook_keeps_answers_from_raft(void **state)
{
    (void)state;
    char err[128];
    leader(3);
    inner.init = fake_init;
    inner.start = fake_start;
    inner.append = fake_append;
    inner.truncate = fake_truncate;
    inner.snapshot_put = fake_snapshot_put;
    static struct rio_guard g;
    assert_int_equal(rio_guard_init(&g, &inner, err, sizeof(err)), 0);
    g.io.data = &r;
    r.io = &g.io;
    g.result_hook = hook;
    g.result_hook_data = &ri;
    assert_int_equal(g.io.init(&g.io, 1, "10.0.0.1"), 0);
    assert_int_equal(g.io.start(&g.io, 100, NULL, raft_recv), 0);
    struct read a;
    read_start(&a);
    raft_index nonce = probe_nonce(0);
    raft_saw = 0;
    struct raft_message m;
    memset(&m, 0, sizeof(m));
    m.type = RAFT_IO_APPEND_ENTRIES_RESULT;
    m.server_id = 2;
    m.append_entries_result.term = 7;
    m.append_entries_result.rejected = nonce;
    guard_recv(&inner, &m); /* the probe's answer: readindex's, raft never sees it */
    assert_int_equal(raft_saw, 0);
    assert_int_equal(a.status, 0);
    m.append_entries_result.rejected = 0; /* raft's own */
    guard_recv(&inner, &m);
    assert_int_equal(raft_saw, 1);
    m.type = RAFT_IO_APPEND_ENTRIES; /* a probe arriving at a follower: raft's */
    m.append_entries.term = 7;
    m.append_entries.prev_log_index = nonce;
    guard_recv(&inner, &m);
    assert_int_equal(raft_saw, 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_majority_of_three_confirms, teardown),
        cmocka_unit_test_teardown(test_majority_of_five_counts_distinct_voters, teardown),
        cmocka_unit_test_teardown(test_answers_are_tied_to_their_round, teardown),
        cmocka_unit_test_teardown(test_higher_term_fails_the_round, teardown),
        cmocka_unit_test_teardown(test_step_down_and_term_change_fail, teardown),
        cmocka_unit_test_teardown(test_timeout_and_resend, teardown),
        cmocka_unit_test_teardown(test_confirmed_read_waits_for_apply, teardown),
        cmocka_unit_test_teardown(test_single_voter_and_stop, teardown),
        cmocka_unit_test_teardown(test_bad_arguments, teardown),
        cmocka_unit_test_teardown(test_guard_hook_keeps_answers_from_raft, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
