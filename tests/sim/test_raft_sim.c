/*
 * Deterministic simulation of conclave's real state machine (fsm.c behind the rfsm.c adapter
 * the node uses) under canonical raft 0.15's own in-memory cluster fixture.
 *
 * Each run builds a 3- or 5-server raft_fixture; every server has its own struct fsm and
 * struct rfsm bound to its struct raft, with a small random snapshot threshold and trailing
 * count so that snapshots are taken and installed (InstallSnapshot) all the time. A seeded
 * xorshift PRNG then drives several thousand fixture steps. Before each step it may inject
 * faults: kill and revive servers (any number, a majority included; the fixture's kill
 * freezes a server with its memory), crash servers (sim_crash: the server loses every disk
 * operation that had not completed and restarts from exactly what it had persisted, with a
 * new state machine; sim_disk.c is each server's disk), cut links one way or both ways and
 * heal them, partition a server one way (nobody hears it, or it hears nobody), drop the messages of
 * one directed link for a while (the 0.15 fixture has no per-message drop, so loss is a short
 * saturation), change a server's network latency (which reorders messages), disk latency and
 * election timeout, and transfer leadership. Like rnode.c, a new leader first commits a
 * raft_barrier and only then takes writes: put, delete and rollback on 2 projects x 5 keys with
 * expected versions that usually match the leader's state and sometimes not, request ids from a
 * small pool (repeats, some with other content) or unique, materialized(N) for an N at or below the
 * leader's applied index, and retries with the same request id of writes whose callback said
 * RAFT_LEADERSHIPLOST (outcome unknown).
 *
 * Checked as the run goes: every apply is recorded per raft index in a ledger (entry bytes,
 * fsm_result, fsm_state_hash after it), and every server that applies index i must have
 * applied the same bytes, got the same result and reached the same state hash as the first
 * server that applied i; no server applies an index twice or goes backwards; a restored
 * snapshot must hash like the ledger at its last command; an acknowledged write (callback
 * status 0) must be exactly the entry applied at its index, with the result the callback
 * got. At raft's level, for every entry type (barriers included): an index is committed with
 * one entry term only, every leader holds each entry committed in an earlier term, and no
 * server gives up (RAFT_UNAVAILABLE, which is what raft does when a leader contradicts an
 * entry it committed). At the end all servers are revived and all links healed, and the
 * cluster must converge (one ready leader, everything committed and applied everywhere);
 * then all state hashes must be equal and equal to a fresh fsm folding the ledger in index
 * order (result and hash compared at every index), every acknowledged write must still be in
 * the ledger, and the retry of a write that did commit must have been answered DUPLICATE
 * with the first outcome (and one that did not commit must not). A negative test shows the
 * checker catches a divergent server, and a sabotaged server makes a whole simulation fail.
 *
 * raft 0.15 defects, none tolerated (docs/architecture.md):
 * - a follower's accepted AppendEntries result may claim entries it does not hold, and the
 *   leader counts it (sim_checks_match_claims fails the run on any such claim). Closed by
 *   raft/rio_guard.c, which sits between raft and the simulated io as it does in the node;
 *   CONCLAVE_SIM_UNGUARDED=1 leaves it out, and test_sim_unguarded_fails shows that seeds
 *   then fail;
 * - raft 0.15's logRelease may free a batch of loaded entries twice (rio_guard gives each
 *   loaded entry its own batch);
 * - a follower that compacted its log further than the leader knows stays in snapshot state
 *   for good (sim_checks_snapshot_stalls): a named failure, not closed (docs/reliability.md
 *   records the runs).
 *
 * Replay: a failure names the cluster size and seed; CONCLAVE_SIM_SEED=S runs only seed S
 * (in both cluster sizes), CONCLAVE_SIM_VERBOSE=1 traces faults, leaders, proposals and
 * snapshots, and CONCLAVE_SIM_RAFT_TRACE=1 adds raft's own trace. CONCLAVE_SIM_SEEDS=N sets
 * the number of seeds (default 100, split between 3 and 5 servers), CONCLAVE_SIM_FROM the first
 * seed (default 1; scripts/sim --seeds N --from S runs long batches), CONCLAVE_SIM_STEPS the
 * steps per seed, and CONCLAVE_SIM_RAW=1 drops the post-election barrier to exercise raft
 * 0.15 without conclave's guard.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "sim.h"

/* ---- configuration from the environment --------------------------------------------- */

static unsigned long env_ulong(const char *name, unsigned long def)
{
    const char *v = getenv(name);
    if (v == NULL || *v == '\0') {
        return def;
    }
    char *end = NULL;
    unsigned long x = strtoul(v, &end, 0);
    if (end == v || *end != '\0') {
        fprintf(stderr, "test_raft_sim: ignoring %s=%s (not a number)\n", name, v);
        return def;
    }
    return x;
}

static void run_seeds(unsigned n)
{
    unsigned long total = env_ulong("CONCLAVE_SIM_SEEDS", DEFAULT_SEEDS);
    if (total < 2) {
        total = 2;
    }
    /* Half the seeds each; the 3-server clusters take the odd one. */
    unsigned long count = n == 3 ? (total + 1) / 2 : total / 2;
    unsigned long first = env_ulong("CONCLAVE_SIM_FROM", 1);
    const char *only = getenv("CONCLAVE_SIM_SEED");
    if (only != NULL && *only != '\0') {
        first = env_ulong("CONCLAVE_SIM_SEED", 1);
        count = 1;
    }
    struct sim_opts o = {
        .n = n,
        .steps = (unsigned)env_ulong("CONCLAVE_SIM_STEPS", DEFAULT_STEPS),
        .raw = env_ulong("CONCLAVE_SIM_RAW", 0) != 0,
        .verbose = env_ulong("CONCLAVE_SIM_VERBOSE", 0) != 0,
        .raft_trace = env_ulong("CONCLAVE_SIM_RAFT_TRACE", 0) != 0,
        .unguarded = env_ulong("CONCLAVE_SIM_UNGUARDED", 0) != 0,
        .sabotage_server = -1,
    };
    struct stats total_st;
    memset(&total_st, 0, sizeof(total_st));
    struct sim *s = sim_xcalloc(1, sizeof(*s));
    clock_t t0 = clock();
    for (unsigned long k = 0; k < count; k++) {
        o.seed = first + k;
        if (sim_run(s, &o) != 0) {
            char why[sizeof(s->why)];
            memcpy(why, s->why, sizeof(why));
            free(s);
            fail_msg("%u servers, seed %llu: %s (replay: CONCLAVE_SIM_SEED=%llu "
                     "CONCLAVE_SIM_STEPS=%u CONCLAVE_SIM_VERBOSE=1%s%s)",
                     n, (unsigned long long)o.seed, why, (unsigned long long)o.seed, o.steps,
                     o.raw ? " CONCLAVE_SIM_RAW=1" : "",
                     o.unguarded ? " CONCLAVE_SIM_UNGUARDED=1" : "");
        }
        sim_stats_add(&total_st, &s->st);
    }
    free(s);
    double secs = (double)(clock() - t0) / CLOCKS_PER_SEC;
    print_message("%u servers: %lu seeds, %lu steps, %.1f s cpu; %lu proposals (%lu refused), "
                  "%lu acknowledged, %lu outcome unknown (%lu of them committed), %lu retries "
                  "(%lu answered with the first outcome), %lu applies, %lu snapshots taken, "
                  "%lu installed, %lu kills, %lu crash-restarts, %lu one-way partitions, %lu cuts, "
                  "%lu loss bursts, %lu transfers, %lu stable "
                  "leaders; rio_guard: %lu results capped, %lu claimed nothing (unvouched)\n",
                  n, total_st.runs, total_st.steps, secs, total_st.proposals, total_st.rejected,
                  total_st.acked, total_st.unknown, total_st.unknown_committed, total_st.retries,
                  total_st.retry_dups, total_st.applies, total_st.snapshots, total_st.restores,
                  total_st.kills, total_st.crashes, total_st.partitions, total_st.cuts,
                  total_st.losses, total_st.transfers, total_st.elections, total_st.guard_capped,
                  total_st.guard_unvouched);
    if (count > 1) {
        /* Over many seeds the run must have exercised what it claims to. */
        assert_true(total_st.acked > 0);
        assert_true(total_st.snapshots > 0);
        assert_true(total_st.restores > 0);
        assert_true(total_st.kills > 0);
        assert_true(total_st.crashes > 0);
        assert_true(total_st.partitions > 0);
        assert_true(total_st.unknown > 0);
        /* ... and the guard had false claims to cap (raft 0.15 still makes them). */
        assert_true(o.unguarded || total_st.guard_capped > 0);
    }
}

static void test_sim_3_servers(void **state)
{
    (void)state;
    run_seeds(3);
}

static void test_sim_5_servers(void **state)
{
    (void)state;
    run_seeds(5);
}

/* ---- the checker must be able to fail ------------------------------------------------ */

static uint8_t *encode_put(unsigned key, uint64_t expected, const char *content, size_t *len)
{
    struct spec sp;
    memset(&sp, 0, sizeof(sp));
    sp.op = CODEC_OP_PUT;
    sp.key = key;
    sp.expected = expected;
    snprintf(sp.content, sizeof(sp.content), "%s", content);
    uint8_t *buf = NULL;
    char err[256];
    if (sim_load_encode_spec(&sp, 1, 1700000000000000, &buf, len, err, sizeof(err)) != 0) {
        fail_msg("encode: %s", err);
    }
    return buf;
}

/* Applies BUF at INDEX to F and records it in L as SERVER; returns sim_checks_ledger_note's answer.
 */
static int apply_note(struct ledger *l, struct fsm *f, unsigned server, uint64_t index,
                      const uint8_t *buf, size_t len, char *msg, size_t msglen)
{
    struct fsm_result res;
    uint8_t hash[32];
    assert_int_equal(fsm_apply(f, index, buf, len, &res), 0);
    fsm_state_hash(f, hash);
    return sim_checks_ledger_note(l, server, index, buf, len, hash, &res, msg, msglen);
}

static void test_checker_catches_divergence(void **state)
{
    (void)state;
    struct fsm *f[2] = {NULL, NULL};
    char err[256], msg[600];
    assert_int_equal(fsm_new(&f[0], NULL, err, sizeof(err)), 0);
    assert_int_equal(fsm_new(&f[1], NULL, err, sizeof(err)), 0);
    struct ledger l;
    memset(&l, 0, sizeof(l));

    /* Two servers applying the same entries agree, index by index and at the end. */
    for (uint64_t i = 1; i <= 6; i++) {
        size_t len;
        uint8_t *buf = encode_put((unsigned)(i % 2), i / 2, "{\"a\":1}", &len);
        for (unsigned srv = 0; srv < 2; srv++) {
            assert_int_equal(apply_note(&l, f[srv], srv, i * 2, buf, len, msg, sizeof(msg)), 0);
        }
        free(buf);
    }
    assert_int_equal(sim_checks_agreement(f, 2, &l, msg, sizeof(msg)), 0);

    /* Other bytes at the same index are reported. */
    size_t len;
    uint8_t *a = encode_put(2, 0, "{\"x\":1}", &len);
    uint8_t *b = encode_put(2, 0, "{\"x\":2}", &len);
    assert_int_equal(apply_note(&l, f[0], 0, 20, a, len, msg, sizeof(msg)), 0);
    assert_int_equal(apply_note(&l, f[1], 1, 20, b, len, msg, sizeof(msg)), -1);
    assert_non_null(strstr(msg, "other entry bytes"));
    print_message("caught: %s\n", msg);
    /* And so is the same entry reaching another state (server 1 diverged above). */
    uint8_t *c = encode_put(3, 0, "{\"y\":1}", &len);
    assert_int_equal(apply_note(&l, f[0], 0, 22, c, len, msg, sizeof(msg)), 0);
    assert_int_equal(apply_note(&l, f[1], 1, 22, c, len, msg, sizeof(msg)), -1);
    assert_non_null(strstr(msg, "state hash"));
    print_message("caught: %s\n", msg);
    assert_int_equal(sim_checks_agreement(f, 2, &l, msg, sizeof(msg)), -1);
    print_message("caught: %s\n", msg);
    free(a);
    free(b);
    free(c);

    /* Two servers that agree with each other but applied an entry behind the ledger's back
     * are not the fold of the ledger. */
    struct fsm *g[2] = {NULL, NULL};
    struct ledger l2;
    memset(&l2, 0, sizeof(l2));
    assert_int_equal(fsm_new(&g[0], NULL, err, sizeof(err)), 0);
    assert_int_equal(fsm_new(&g[1], NULL, err, sizeof(err)), 0);
    uint8_t *d = encode_put(0, 0, "{\"z\":1}", &len);
    for (unsigned srv = 0; srv < 2; srv++) {
        assert_int_equal(apply_note(&l2, g[srv], srv, 3, d, len, msg, sizeof(msg)), 0);
    }
    assert_int_equal(sim_checks_agreement(g, 2, &l2, msg, sizeof(msg)), 0);
    uint8_t *e = encode_put(1, 0, "{\"z\":2}", &len);
    struct fsm_result res;
    for (unsigned srv = 0; srv < 2; srv++) {
        assert_int_equal(fsm_apply(g[srv], 5, e, len, &res), 0);
    }
    assert_int_equal(sim_checks_agreement(g, 2, &l2, msg, sizeof(msg)), -1);
    assert_non_null(strstr(msg, "fold"));
    print_message("caught: %s\n", msg);
    free(d);
    free(e);

    sim_checks_ledger_free(&l);
    sim_checks_ledger_free(&l2);
    for (int i = 0; i < 2; i++) {
        fsm_free(f[i]);
        fsm_free(g[i]);
    }
}

/* A whole simulation in which one server applies an extra entry must fail: for each cluster
 * size, the first seed whose sabotaged server reaches the sabotage index. */
static void test_sim_catches_sabotage(void **state)
{
    (void)state;
    for (unsigned n = 3; n <= 5; n += 2) {
        bool seen = false;
        for (uint64_t seed = 1; seed <= 20 && !seen; seed++) {
            struct sim *s = sim_xcalloc(1, sizeof(*s));
            struct sim_opts o = {
                .n = n,
                .seed = seed,
                .steps = 1500,
                .verbose = env_ulong("CONCLAVE_SIM_VERBOSE", 0) != 0,
                .sabotage_server = 1,
                .sabotage_index = 8,
            };
            int rv = sim_run(s, &o);
            assert_false(s->setup_failed);
            if (s->sabotaged) {
                seen = true;
                assert_int_equal(rv, -1);
                print_message("%u servers, seed %llu, sabotaged server 1: %s\n", n,
                              (unsigned long long)seed, s->why);
            }
            free(s);
        }
        assert_true(seen);
    }
}

/* Without raft/rio_guard.c, raft 0.15's false match claim fails these seeds (found by
 * the strict mode of scripts/sim before the guard existed); with it they pass in
 * test_sim_*_servers. */
static void test_sim_unguarded_fails(void **state)
{
    (void)state;
    const struct {
        unsigned n;
        uint64_t seed;
    } cases[] = {{5, 5}, {3, 7}};
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        struct sim *s = sim_xcalloc(1, sizeof(*s));
        struct sim_opts o = {
            .n = cases[k].n,
            .seed = cases[k].seed,
            .steps = DEFAULT_STEPS,
            .verbose = env_ulong("CONCLAVE_SIM_VERBOSE", 0) != 0,
            .unguarded = true,
            .sabotage_server = -1,
        };
        int rv = sim_run(s, &o);
        assert_false(s->setup_failed);
        print_message("unguarded, %u servers, seed %llu: %s\n", o.n, (unsigned long long)o.seed,
                      rv == 0 ? "passed" : s->why);
        assert_int_equal(rv, -1);
        assert_non_null(strstr(s->why, "which it does not hold"));
        free(s);
    }
}

/* 5 servers, seed 2404: raft 0.15 freed a batch of loaded entries twice here until rio_guard
 * gave each loaded entry its own batch (docs/architecture.md). Outside the 100 seeds of every
 * run, so it is run by name; a double free aborts the test (and ASan names it). */
static void test_sim_seed_2404(void **state)
{
    (void)state;
    struct sim *s = sim_xcalloc(1, sizeof(*s));
    struct sim_opts o = {
        .n = 5,
        .seed = 2404,
        .steps = DEFAULT_STEPS,
        .verbose = env_ulong("CONCLAVE_SIM_VERBOSE", 0) != 0,
        .sabotage_server = -1,
    };
    int rv = sim_run(s, &o);
    if (rv != 0) {
        char why[sizeof(s->why)];
        memcpy(why, s->why, sizeof(why));
        free(s);
        fail_msg("5 servers, seed 2404: %s", why);
    }
    free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_checker_catches_divergence),
        cmocka_unit_test(test_sim_catches_sabotage),
        cmocka_unit_test(test_sim_3_servers),
        cmocka_unit_test(test_sim_5_servers),
        cmocka_unit_test(test_sim_unguarded_fails),
        cmocka_unit_test(test_sim_seed_2404),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
