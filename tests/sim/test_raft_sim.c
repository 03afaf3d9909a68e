/*
 * Deterministic simulation of conclave's real state machine (fsm.c behind the rfsm.c adapter
 * the node uses) under canonical raft 0.15's own in-memory cluster fixture.
 *
 * Each run builds a 3- or 5-server raft_fixture; every server has its own struct fsm and
 * struct rfsm bound to its struct raft, with a small random snapshot threshold and trailing
 * count so that snapshots are taken and installed (InstallSnapshot) all the time. A seeded
 * xorshift PRNG then drives several thousand fixture steps. Before each step it may inject
 * faults: kill and revive servers (any number, a majority included; the fixture's kill
 * freezes a server with its memory, it is not a crash with restart from disk), cut links one
 * way or both ways and heal them, drop the messages of one directed link for a while (the
 * 0.15 fixture has no per-message drop, so loss is a short saturation), change a server's
 * network latency (which reorders messages), disk latency and election timeout, and transfer
 * leadership. Like rnode.c, a new leader first commits a raft_barrier and only then takes
 * writes: put, delete and rollback on 2 projects x 5 keys with expected versions that
 * usually match the leader's state and sometimes not, request ids from a small pool (repeats,
 * some with other content) or unique, materialized(N) for an N at or below the leader's
 * applied index, and retries with the same request id of writes whose callback said
 * RAFT_LEADERSHIPLOST (outcome unknown).
 *
 * Checked while running: every apply is recorded per raft index in a ledger (entry bytes,
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
 * Known raft 0.15 defects are worked around or tolerated, and counted in the summary:
 * - the fixture's in-memory truncate miscounts after a snapshot install and when raft drops
 *   entries whose append is still pending (sim_truncate rebases and clamps it);
 * - a leader may claim that a follower's log matches its own when it does not
 *   (check_match_claims): the follower then never catches up under that leader, and the
 *   leader counts it towards a majority. With conclave's post-election barrier only that
 *   barrier can be committed that way; when it is later lost (a leader without it is
 *   elected) the run goes on, and when raft then shuts a server down the run ends early.
 *   Losing anything else fails;
 * - a follower that compacted its log further than the leader knows stays in snapshot state
 *   for good (snapshot_stalls).
 * A healed cluster stalled by either of the last two gets a leadership transfer, the way an
 * operator would unstick it. CONCLAVE_SIM_STRICT=1 fails on all of them instead (the
 * fixture's truncate aside).
 *
 * Replay: a failure names the cluster size and seed; CONCLAVE_SIM_SEED=S runs only seed S
 * (in both cluster sizes), CONCLAVE_SIM_VERBOSE=1 traces faults, leaders, proposals and
 * snapshots, and CONCLAVE_SIM_RAFT_TRACE=1 adds raft's own trace. CONCLAVE_SIM_SEEDS=N sets
 * the number of seeds (default 100, split between 3 and 5 servers), CONCLAVE_SIM_STEPS the
 * steps per seed, and CONCLAVE_SIM_RAW=1 drops the post-election barrier to exercise raft
 * 0.15 without conclave's guard.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <raft.h>
#include <raft/fixture.h>

#include "raft/codec.h"
#include "raft/fsm.h"
#include "raft/rfsm.h"

#define MAX_NODES      5
#define N_PROJECTS     2
#define N_KEYS         5
#define N_POOL_RIDS    12
#define DEFAULT_SEEDS  100
#define DEFAULT_STEPS  6000
#define HEAL_MAX_MSECS 300000u
/* A healed cluster that has not converged after this long is stalled (more than raft's
 * default 30 s install_snapshot_timeout, after which a lost InstallSnapshot is resent). */
#define HEAL_STALL_MSECS 45000u

static const char *const projects[N_PROJECTS] = {"alpha", "beta-2"};
static const char *const keys[N_KEYS] = {"k0", "db.url", "feature:x", "_k3", "k-4"};

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n, size);
    if (p == NULL) {
        fprintf(stderr, "test_raft_sim: out of memory\n");
        abort();
    }
    return p;
}

/* ---- PRNG: xorshift64*, seeded through splitmix64 ------------------------------------ */

struct rng {
    uint64_t s;
};

static void rng_seed(struct rng *r, uint64_t seed)
{
    uint64_t z = seed + 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    r->s = z != 0 ? z : 1;
}

static uint64_t rng_next(struct rng *r)
{
    r->s ^= r->s >> 12;
    r->s ^= r->s << 25;
    r->s ^= r->s >> 27;
    return r->s * 0x2545f4914f6cdd1dull;
}

/* A value in [0, n); n > 0. */
static uint64_t rng_below(struct rng *r, uint64_t n)
{
    return rng_next(r) % n;
}

static unsigned rng_index(struct rng *r, unsigned n)
{
    return (unsigned)rng_below(r, n);
}

/* True with probability per_mille / 1000. */
static bool rng_chance(struct rng *r, unsigned per_mille)
{
    return rng_below(r, 1000) < per_mille;
}

/* ---- the ledger: what was applied at each raft index --------------------------------- */

struct ledger_entry {
    bool present;
    unsigned first_server; /* who applied it first */
    uint8_t *bytes;
    size_t len;
    struct fsm_result result;
    uint8_t hash[32]; /* fsm_state_hash() right after applying it */
};

struct ledger {
    struct ledger_entry *e; /* indexed by raft index */
    size_t cap;
};

static void ledger_free(struct ledger *l)
{
    for (size_t i = 0; i < l->cap; i++) {
        free(l->e[i].bytes);
    }
    free(l->e);
    l->e = NULL;
    l->cap = 0;
}

static const struct ledger_entry *ledger_get(const struct ledger *l, uint64_t index)
{
    if (index >= l->cap || !l->e[index].present) {
        return NULL;
    }
    return &l->e[index];
}

static bool result_equal(const struct fsm_result *a, const struct fsm_result *b)
{
    return a->status == b->status && a->op == b->op && a->version == b->version &&
           a->revision == b->revision && a->first_status == b->first_status &&
           a->first_index == b->first_index && a->mismatch == b->mismatch &&
           a->trimmed == b->trimmed && strcmp(a->message, b->message) == 0;
}

static void describe_result(const struct fsm_result *r, char *out, size_t len)
{
    snprintf(out, len, "status %d op %d version %llu revision %llu first %d@%llu%s trimmed %llu",
             (int)r->status, (int)r->op, (unsigned long long)r->version,
             (unsigned long long)r->revision, (int)r->first_status,
             (unsigned long long)r->first_index, r->mismatch ? " mismatch" : "",
             (unsigned long long)r->trimmed);
}

static void hex8(const uint8_t *h, char out[17])
{
    for (int i = 0; i < 8; i++) {
        snprintf(out + 2 * i, 3, "%02x", h[i]);
    }
}

/* Records that SERVER applied the LEN bytes at BUF as raft index INDEX, got RES and reached
 * state HASH. Returns 0 when this agrees with every earlier record of INDEX, -1 with MSG
 * saying what differs otherwise. */
static int ledger_note(struct ledger *l, unsigned server, uint64_t index, const uint8_t *buf,
                       size_t len, const uint8_t hash[32], const struct fsm_result *res, char *msg,
                       size_t msglen)
{
    if (index >= l->cap) {
        size_t cap = l->cap == 0 ? 256 : l->cap;
        while (cap <= index) {
            cap *= 2;
        }
        struct ledger_entry *e = realloc(l->e, cap * sizeof(*e));
        if (e == NULL) {
            abort();
        }
        memset(e + l->cap, 0, (cap - l->cap) * sizeof(*e));
        l->e = e;
        l->cap = cap;
    }
    struct ledger_entry *e = &l->e[index];
    if (!e->present) {
        e->present = true;
        e->first_server = server;
        e->bytes = xcalloc(1, len == 0 ? 1 : len);
        memcpy(e->bytes, buf, len);
        e->len = len;
        e->result = *res;
        memcpy(e->hash, hash, 32);
        return 0;
    }
    if (e->len != len || memcmp(e->bytes, buf, len) != 0) {
        snprintf(msg, msglen,
                 "index %llu: server %u applied other entry bytes (%zu bytes) than server %u "
                 "(%zu bytes)",
                 (unsigned long long)index, server, len, e->first_server, e->len);
        return -1;
    }
    if (!result_equal(&e->result, res)) {
        char a[200], b[200];
        describe_result(res, a, sizeof(a));
        describe_result(&e->result, b, sizeof(b));
        snprintf(msg, msglen, "index %llu: server %u got result (%s), server %u got (%s)",
                 (unsigned long long)index, server, a, e->first_server, b);
        return -1;
    }
    if (memcmp(e->hash, hash, 32) != 0) {
        char a[17], b[17];
        hex8(hash, a);
        hex8(e->hash, b);
        snprintf(msg, msglen,
                 "index %llu: server %u state hash %s... differs from server %u's %s...",
                 (unsigned long long)index, server, a, e->first_server, b);
        return -1;
    }
    return 0;
}

/* The end-of-run check: the N state machines hold the same state, and that state is what a
 * fresh fsm reaches by applying the ledger's entries in index order, with the same result
 * and state hash at every index. Returns 0, or -1 with MSG saying what differs. */
static int check_agreement(struct fsm *const *fsms, unsigned n, const struct ledger *l, char *msg,
                           size_t msglen)
{
    uint8_t h0[32], h[32];
    fsm_state_hash(fsms[0], h0);
    for (unsigned i = 1; i < n; i++) {
        fsm_state_hash(fsms[i], h);
        if (memcmp(h, h0, 32) != 0) {
            char a[17], b[17];
            hex8(h, a);
            hex8(h0, b);
            snprintf(msg, msglen,
                     "final state of server %u (applied %llu, hash %s...) differs from server 0 "
                     "(applied %llu, hash %s...)",
                     i, (unsigned long long)fsm_last_applied(fsms[i]), a,
                     (unsigned long long)fsm_last_applied(fsms[0]), b);
            return -1;
        }
    }
    struct fsm *fold = NULL;
    char err[256];
    if (fsm_new(&fold, NULL, err, sizeof(err)) != 0) {
        snprintf(msg, msglen, "fsm_new: %s", err);
        return -1;
    }
    int rv = 0;
    for (size_t i = 1; i < l->cap && rv == 0; i++) {
        const struct ledger_entry *e = &l->e[i];
        if (!e->present) {
            continue;
        }
        struct fsm_result res;
        if (fsm_apply(fold, i, e->bytes, e->len, &res) != 0) {
            snprintf(msg, msglen, "fold: out of memory at index %zu", i);
            rv = -1;
            break;
        }
        fsm_state_hash(fold, h);
        if (!result_equal(&res, &e->result) || memcmp(h, e->hash, 32) != 0) {
            snprintf(msg, msglen,
                     "fold of the ledger diverges at index %zu from what server %u applied", i,
                     e->first_server);
            rv = -1;
        }
    }
    if (rv == 0) {
        fsm_state_hash(fold, h);
        if (memcmp(h, h0, 32) != 0) {
            snprintf(msg, msglen,
                     "the servers' final state (applied %llu) is not the fold of the ledger "
                     "(applied %llu)",
                     (unsigned long long)fsm_last_applied(fsms[0]),
                     (unsigned long long)fsm_last_applied(fold));
            rv = -1;
        }
    }
    fsm_free(fold);
    return rv;
}

/* ---- proposals ----------------------------------------------------------------------- */

/* What a client asked for; encoded anew (with the current leader's term and clock) on every
 * attempt, as the node does for a retry. */
struct spec {
    enum codec_op op;
    unsigned project, key;
    uint64_t expected, source;
    char content[48];
    char rid[32]; /* empty: none */
    unsigned schema;
    uint64_t materialized;
};

enum prop_kind { PROP_APPLY, PROP_BARRIER, PROP_TRANSFER };

struct sim;

/* One raft_apply or raft_barrier request. Requests live until the fixture is closed, since
 * raft may call back until then. */
struct prop {
    struct prop *next;
    enum prop_kind kind;
    struct raft_apply apply;
    struct raft_barrier barrier;
    struct raft_transfer transfer;
    struct sim *sim;
    unsigned server;
    uint64_t term;
    struct spec spec;
    bool unique_rid;
    uint8_t *bytes; /* what was proposed */
    size_t len;
    raft_index index; /* where raft put it */
    bool done;
    int status;
    struct fsm_result result;
    struct prop *retry_of; /* the unknown-outcome proposal this one retries */
    bool retried;
};

/* ---- the simulated cluster ----------------------------------------------------------- */

struct node {
    struct rfsm ad; /* first: ad.raft_fsm.data points at ad, hence at the node */
    struct sim *sim;
    unsigned idx;
    struct fsm *fsm;
    int (*orig_apply)(struct raft_fsm *f, const struct raft_buffer *buf, void **result);
    int (*orig_snapshot)(struct raft_fsm *f, struct raft_buffer *bufs[], unsigned *n_bufs);
    int (*orig_restore)(struct raft_fsm *f, struct raft_buffer *buf);
    uint64_t last_noted;  /* highest index this server applied (or restored up to) */
    uint64_t ready_term;  /* term whose election barrier completed here */
    bool barrier_pending; /* an election barrier is in flight */
    struct raft_tracer tracer;
    /* The fixture's in-memory raft_io, wrapped (see sim_truncate). */
    int (*orig_truncate)(struct raft_io *io, raft_index index);
    int (*orig_snapshot_put)(struct raft_io *io, unsigned trailing,
                             struct raft_io_snapshot_put *req, const struct raft_snapshot *snapshot,
                             raft_io_snapshot_put_cb cb);
    int (*orig_append)(struct raft_io *io, struct raft_io_append *req,
                       const struct raft_entry entries[], unsigned n, raft_io_append_cb cb);
    raft_index install_pending; /* index of a snapshot being installed */
    raft_index io_base;         /* raft index of the io's first stored entry, minus one */
    size_t io_stored;           /* entries in the fixture's store */
    struct pending_append {
        struct raft_io_append *req;
        raft_io_append_cb cb;
        unsigned n;
    } * appends; /* submitted to the fixture, not completed */
    size_t n_appends, appends_cap;
};

struct stats {
    unsigned long runs, steps, proposals, acked, unknown, unknown_committed, rejected;
    unsigned long retries, retry_dups, snapshots, restores, kills, cuts, losses, elections;
    unsigned long applies, transfers, false_matches, false_match_runs, snapshot_stall_runs;
    unsigned long stall_transfers, lost_barriers, shutdown_runs;
};

struct sim_opts {
    unsigned n;
    uint64_t seed;
    unsigned steps;
    bool raw; /* no post-election barrier before writes */
    bool verbose;
    bool raft_trace;     /* raft's own trace messages too */
    bool strict;         /* a false match claim (raft 0.15 defect, see check_match_claims) fails */
    int sabotage_server; /* -1: none; else that server applies one extra entry */
    uint64_t sabotage_index;
};

/* A raft-level commit, whatever the entry type. */
struct commit_rec {
    raft_term entry_term;  /* 0: nothing known committed at this index */
    raft_term commit_term; /* the term in which it was first seen committed */
    unsigned server;       /* who was first seen to commit it */
    unsigned short type;   /* RAFT_COMMAND, RAFT_BARRIER...; 0 when seen in a snapshot */
};

struct sim {
    struct raft_fixture f;
    struct sim_opts o;
    struct rng rng;
    struct node nodes[MAX_NODES];
    struct ledger ledger;
    struct prop *props;
    bool alive[MAX_NODES];
    bool cut[MAX_NODES][MAX_NODES];
    unsigned long loss_until[MAX_NODES][MAX_NODES];
    unsigned long step;
    unsigned chaos; /* fault rate multiplier of this seed, 1..4 */
    bool sabotaged;
    unsigned long unique_rid;
    unsigned last_leader;
    raft_time last_shuffle;
    raft_term false_match_seen[MAX_NODES][MAX_NODES]; /* leader, follower: term reported */
    struct commit_rec *commits;                       /* indexed by raft index */
    size_t commits_cap;
    raft_index max_committed;
    raft_index commit_seen[MAX_NODES];   /* per server: commits recorded up to here */
    raft_term leader_checked[MAX_NODES]; /* per server: term whose log was checked */
    raft_index leader_checked_upto[MAX_NODES];
    bool lost_barrier; /* a known-defect loss of a committed barrier happened in this run */
    bool shutdown;     /* ... and then raft shut a server down: the run ends there */
    unsigned inflight[MAX_NODES]; /* unanswered proposals per server */
    struct stats st;
    bool failed;
    char why[768];
    bool setup_failed;
};

static void trace(struct sim *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void trace(struct sim *s, const char *fmt, ...)
{
    if (!s->o.verbose) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "[seed %llu t=%llu step %lu] ", (unsigned long long)s->o.seed,
            (unsigned long long)s->f.time, s->step);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static void sim_fail(struct sim *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void sim_fail(struct sim *s, const char *fmt, ...)
{
    if (s->failed) {
        return; /* keep the first violation */
    }
    s->failed = true;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->why, sizeof(s->why), fmt, ap);
    va_end(ap);
    trace(s, "VIOLATION: %s", s->why);
}

static struct raft *sim_raft(struct sim *s, unsigned i)
{
    return raft_fixture_get(&s->f, i);
}

/* -- the raft_fsm wrappers: the real adapter, plus recording ---------------------------- */

/* Applies one extra put at INDEX behind raft's back, so that the server diverges (only for
 * the test that proves a sabotaged run fails). */
static void sabotage(struct node *nd, uint64_t index)
{
    struct codec_entry e;
    memset(&e, 0, sizeof(e));
    e.op = CODEC_OP_PUT;
    e.project = "alpha";
    e.project_len = 5;
    e.key = "k0";
    e.key_len = 2;
    const struct fsm_config *c = fsm_get(nd->fsm, "alpha", 5, "k0", 2);
    e.expected_version = c != NULL ? c->version : 0;
    e.term = 1;
    e.actor = "saboteur";
    e.actor_len = 8;
    e.content = (const uint8_t *)"{\"evil\":true}";
    e.content_len = 13;
    uint8_t *buf = NULL;
    size_t len = 0;
    char err[256];
    struct fsm_result res;
    if (codec_encode(&e, &buf, &len, err, sizeof(err)) == 0) {
        (void)fsm_apply(nd->fsm, index, buf, len, &res);
    }
    free(buf);
}

static int sim_apply(struct raft_fsm *rf, const struct raft_buffer *buf, void **result)
{
    struct node *nd = rf->data;
    struct sim *s = nd->sim;
    /* The same rule as rfsm.c: raft 0.15 applies the entry after last_applied. */
    uint64_t index = nd->ad.raft->last_applied + 1;
    if (s->o.sabotage_server == (int)nd->idx && !s->sabotaged && index >= s->o.sabotage_index) {
        s->sabotaged = true;
        sabotage(nd, index);
    }
    int rv = nd->orig_apply(rf, buf, result);
    s->st.applies++;
    if (rv != 0) {
        sim_fail(s, "server %u: apply of index %llu returned %d (raft would ignore it)", nd->idx,
                 (unsigned long long)index, rv);
        return rv;
    }
    if (nd->ad.fatal) {
        sim_fail(s, "server %u: apply of index %llu ran out of memory", nd->idx,
                 (unsigned long long)index);
    }
    if (index <= nd->last_noted) {
        sim_fail(s, "server %u applied index %llu after having applied up to %llu", nd->idx,
                 (unsigned long long)index, (unsigned long long)nd->last_noted);
    }
    nd->last_noted = index;
    if (fsm_last_applied(nd->fsm) != index) {
        sim_fail(s, "server %u: fsm applied index %llu but raft applied %llu", nd->idx,
                 (unsigned long long)fsm_last_applied(nd->fsm), (unsigned long long)index);
    }
    uint8_t hash[32];
    fsm_state_hash(nd->fsm, hash);
    char msg[600];
    if (ledger_note(&s->ledger, nd->idx, index, buf->base, buf->len, hash, &nd->ad.result, msg,
                    sizeof(msg)) != 0) {
        sim_fail(s, "%s", msg);
    }
    return 0;
}

static int sim_snapshot(struct raft_fsm *rf, struct raft_buffer *bufs[], unsigned *n_bufs)
{
    struct node *nd = rf->data;
    int rv = nd->orig_snapshot(rf, bufs, n_bufs);
    if (rv == 0) {
        nd->sim->st.snapshots++;
        trace(nd->sim, "server %u takes a snapshot at raft index %llu", nd->idx,
              (unsigned long long)nd->ad.raft->last_applied);
    }
    return rv;
}

static int sim_restore(struct raft_fsm *rf, struct raft_buffer *buf)
{
    struct node *nd = rf->data;
    struct sim *s = nd->sim;
    int rv = nd->orig_restore(rf, buf);
    if (rv != 0) {
        sim_fail(s, "server %u: restoring a snapshot failed (%d)", nd->idx, rv);
        return rv;
    }
    s->st.restores++;
    uint64_t k = fsm_last_applied(nd->fsm);
    trace(s, "server %u restores a snapshot (last command index %llu)", nd->idx,
          (unsigned long long)k);
    if (k < nd->last_noted) {
        sim_fail(s, "server %u restored a snapshot ending at command %llu after applying %llu",
                 nd->idx, (unsigned long long)k, (unsigned long long)nd->last_noted);
    }
    if (k > 0) {
        const struct ledger_entry *e = ledger_get(&s->ledger, k);
        uint8_t hash[32];
        fsm_state_hash(nd->fsm, hash);
        if (e == NULL) {
            sim_fail(s, "server %u restored a state at index %llu that no server applied", nd->idx,
                     (unsigned long long)k);
        } else if (memcmp(hash, e->hash, 32) != 0) {
            sim_fail(s, "server %u restored a snapshot whose state differs from index %llu",
                     nd->idx, (unsigned long long)k);
        }
    }
    if (k > nd->last_noted) {
        nd->last_noted = k;
    }
    return 0;
}

static void raft_trace_emit(struct raft_tracer *t, const char *file, int line, const char *message)
{
    struct node *nd = t->impl;
    fprintf(stderr, "[seed %llu t=%llu step %lu] raft %u: %s:%d %s\n",
            (unsigned long long)nd->sim->o.seed, (unsigned long long)nd->sim->f.time, nd->sim->step,
            nd->idx, file, line, message);
}

static int transfer(struct sim *s, unsigned l, unsigned to);

/* -- the fixture's raft_io, wrapped ---------------------------------------------------- */

static struct node *node_of_io(struct raft_io *io)
{
    struct raft *r = io->data;
    struct node *nd = r->fsm->data; /* the rfsm, first member of the node */
    return nd;
}

static int sim_snapshot_put(struct raft_io *io, unsigned trailing, struct raft_io_snapshot_put *req,
                            const struct raft_snapshot *snapshot, raft_io_snapshot_put_cb cb)
{
    struct node *nd = node_of_io(io);
    if (trailing == 0) {
        trace(nd->sim, "io %u: installing snapshot %llu", nd->idx,
              (unsigned long long)snapshot->index);
        nd->install_pending = snapshot->index;
    }
    return nd->orig_snapshot_put(io, trailing, req, snapshot, cb);
}

/* The simulation being run: an append's callback gets only the request, which raft owns,
 * so the wrapper finds its server through this (the tests run one simulation at a time). */
static struct sim *running;

static void sim_append_done(struct raft_io_append *req, int status)
{
    for (unsigned j = 0; j < running->o.n; j++) {
        struct node *nd = &running->nodes[j];
        for (size_t i = 0; i < nd->n_appends; i++) {
            if (nd->appends[i].req == req) {
                struct pending_append a = nd->appends[i];
                nd->appends[i] = nd->appends[--nd->n_appends];
                if (status == 0) {
                    nd->io_stored += a.n; /* the fixture stored them before calling back */
                }
                a.cb(req, status);
                return;
            }
        }
    }
    fprintf(stderr, "test_raft_sim: an append completed that was never submitted\n");
    abort();
}

static int sim_append(struct raft_io *io, struct raft_io_append *req,
                      const struct raft_entry entries[], unsigned n, raft_io_append_cb cb)
{
    struct node *nd = node_of_io(io);
    if (nd->n_appends == nd->appends_cap) {
        size_t cap = nd->appends_cap == 0 ? 16 : 2 * nd->appends_cap;
        struct pending_append *a = realloc(nd->appends, cap * sizeof(*a));
        if (a == NULL) {
            abort();
        }
        nd->appends = a;
        nd->appends_cap = cap;
    }
    int rv = nd->orig_append(io, req, entries, n, sim_append_done);
    if (rv == 0) {
        nd->appends[nd->n_appends++] = (struct pending_append){.req = req, .cb = cb, .n = n};
    }
    return rv;
}

/* raft 0.15's fixture keeps a server's stored entries in an array that starts at index 1,
 * or right after the last installed snapshot (installing one truncates the array to index 1
 * through this same method), and its truncate always keeps INDEX - 1 entries, as if the
 * array started at 1 and held every entry raft asks to drop. Neither holds: after an
 * install, and when raft drops entries whose append has not completed (raft_uv orders the
 * two, the fixture does not), the fixture copies past the end of its array (heap overflow,
 * then a double free). The wrapper rebases the index and never asks for more than is stored.
 * The store may then hold stale entries, which is harmless: nothing reloads it. */
static int sim_truncate(struct raft_io *io, raft_index index)
{
    struct node *nd = node_of_io(io);
    trace(nd->sim, "io %u: truncate at %llu (stored entries start after %llu, install %llu)",
          nd->idx, (unsigned long long)index, (unsigned long long)nd->io_base,
          (unsigned long long)nd->install_pending);
    if (index == 1 && nd->install_pending != 0) {
        nd->io_base = nd->install_pending;
        nd->install_pending = 0;
        nd->io_stored = 0;
        return nd->orig_truncate(io, 1);
    }
    if (index <= nd->io_base) {
        sim_fail(nd->sim, "server %u: raft truncates at %llu, inside its installed snapshot (%llu)",
                 nd->idx, (unsigned long long)index, (unsigned long long)nd->io_base);
        return RAFT_IOERR;
    }
    raft_index keep = index - nd->io_base - 1;
    if (keep > nd->io_stored) {
        keep = nd->io_stored;
    }
    nd->io_stored = (size_t)keep;
    return nd->orig_truncate(io, keep + 1);
}

/* The fixture's "random" election timeout is a constant per server, so servers with equal
 * ones would split the vote forever; real raft draws a new one each time. Every second of
 * simulated time each server gets a new one. */
static void shuffle_election_timeouts(struct sim *s)
{
    if (s->f.time - s->last_shuffle < 1000) {
        return;
    }
    s->last_shuffle = s->f.time;
    for (unsigned i = 0; i < s->o.n; i++) {
        raft_fixture_set_randomized_election_timeout(&s->f, i, 1000 + rng_index(&s->rng, 1000));
    }
}

/* -- faults ----------------------------------------------------------------------------- */

static unsigned alive_count(const struct sim *s)
{
    unsigned c = 0;
    for (unsigned i = 0; i < s->o.n; i++) {
        c += s->alive[i] ? 1u : 0u;
    }
    return c;
}

/* Makes the fixture's saturation of every directed link match what the simulation wants:
 * kill and revive change links too, so this runs after every change. */
static void sync_links(struct sim *s)
{
    for (unsigned i = 0; i < s->o.n; i++) {
        for (unsigned j = 0; j < s->o.n; j++) {
            if (i == j) {
                continue;
            }
            bool want =
                !s->alive[i] || !s->alive[j] || s->cut[i][j] || s->loss_until[i][j] > s->step;
            if (raft_fixture_saturated(&s->f, i, j) != want) {
                if (want) {
                    raft_fixture_saturate(&s->f, i, j);
                } else {
                    raft_fixture_desaturate(&s->f, i, j);
                }
            }
        }
    }
}

static void other_pair(struct sim *s, unsigned *i, unsigned *j)
{
    *i = rng_index(&s->rng, s->o.n);
    *j = (*i + 1 + rng_index(&s->rng, s->o.n - 1)) % s->o.n;
}

static void inject_faults(struct sim *s)
{
    struct rng *r = &s->rng;
    unsigned c = s->chaos;
    unsigned i, j;
    if (rng_chance(r, c)) {
        i = rng_index(r, s->o.n);
        if (s->alive[i] && alive_count(s) > 1) {
            raft_fixture_kill(&s->f, i);
            s->alive[i] = false;
            s->st.kills++;
            trace(s, "kill server %u (%s)", i,
                  raft_state(sim_raft(s, i)) == RAFT_LEADER ? "leader" : "not leader");
        }
    }
    if (rng_chance(r, 8)) {
        i = rng_index(r, s->o.n);
        if (!s->alive[i]) {
            raft_fixture_revive(&s->f, i);
            s->alive[i] = true;
            trace(s, "revive server %u", i);
        }
    }
    if (rng_chance(r, 2 * c)) {
        other_pair(s, &i, &j);
        s->cut[i][j] = true;
        if (rng_chance(r, 600)) {
            s->cut[j][i] = true;
        }
        s->st.cuts++;
        trace(s, "cut link %u->%u%s", i, j, s->cut[j][i] ? " and back" : "");
    }
    if (rng_chance(r, 6)) {
        other_pair(s, &i, &j);
        if (s->cut[i][j] || s->cut[j][i]) {
            s->cut[i][j] = s->cut[j][i] = false;
            trace(s, "heal link %u<->%u", i, j);
        }
    }
    if (rng_chance(r, 8 * c)) {
        other_pair(s, &i, &j);
        s->loss_until[i][j] = s->step + 1 + rng_below(r, 40);
        s->st.losses++;
    }
    if (rng_chance(r, 5 * c)) {
        i = rng_index(r, s->o.n);
        raft_fixture_set_network_latency(&s->f, i, 2 + rng_index(r, 60));
    }
    if (rng_chance(r, 3 * c)) {
        i = rng_index(r, s->o.n);
        raft_fixture_set_disk_latency(&s->f, i, 1 + rng_index(r, 30));
    }
    if (rng_chance(r, c)) {
        other_pair(s, &i, &j);
        struct raft *l = sim_raft(s, i);
        if (s->alive[i] && l->state == RAFT_LEADER && l->transfer == NULL) {
            (void)transfer(s, i, j);
        }
    }
    shuffle_election_timeouts(s);
    sync_links(s);
}

/* -- proposals -------------------------------------------------------------------------- */

static void apply_done(struct raft_apply *req, int status, void *result)
{
    struct prop *p = req->data;
    struct sim *s = p->sim;
    p->done = true;
    p->status = status;
    s->inflight[p->server]--;
    if (status != 0) {
        trace(s, "proposal at index %llu on server %u: status %d (%s)",
              (unsigned long long)p->index, p->server, status, raft_strerror(status));
        return;
    }
    p->result = *(const struct fsm_result *)result;
    s->st.acked++;
    if (req->index != p->index) {
        sim_fail(s, "apply callback reports index %llu for a proposal appended at %llu",
                 (unsigned long long)req->index, (unsigned long long)p->index);
    }
    const struct ledger_entry *e = ledger_get(&s->ledger, p->index);
    if (e == NULL || e->len != p->len || memcmp(e->bytes, p->bytes, p->len) != 0) {
        sim_fail(s, "server %u acknowledged index %llu but another entry was applied there",
                 p->server, (unsigned long long)p->index);
    } else if (!result_equal(&e->result, &p->result)) {
        sim_fail(s, "server %u acknowledged index %llu with a result other than the ledger's",
                 p->server, (unsigned long long)p->index);
    }
}

static void barrier_done(struct raft_barrier *req, int status)
{
    struct prop *p = req->data;
    struct sim *s = p->sim;
    struct node *nd = &s->nodes[p->server];
    struct raft *r = sim_raft(s, p->server);
    p->done = true;
    p->status = status;
    nd->barrier_pending = false;
    if (status == 0 && r->state == RAFT_LEADER && r->current_term == p->term) {
        nd->ready_term = p->term;
        trace(s, "server %u leads term %llu and is ready", p->server, (unsigned long long)p->term);
    }
}

static void transfer_done(struct raft_transfer *req)
{
    struct prop *p = req->data;
    p->done = true;
}

static struct prop *new_prop(struct sim *s, enum prop_kind kind, unsigned server);

/* Asks leader L to hand leadership to server TO. Returns 0 when raft accepted. */
static int transfer(struct sim *s, unsigned l, unsigned to)
{
    struct prop *p = new_prop(s, PROP_TRANSFER, l);
    int rv = raft_transfer(sim_raft(s, l), &p->transfer, sim_raft(s, to)->id, transfer_done);
    if (rv != 0) {
        p->done = true;
        return rv;
    }
    s->st.transfers++;
    trace(s, "server %u transfers leadership to server %u", l, to);
    return 0;
}

static struct prop *new_prop(struct sim *s, enum prop_kind kind, unsigned server)
{
    struct prop *p = xcalloc(1, sizeof(*p));
    p->kind = kind;
    p->sim = s;
    p->server = server;
    p->term = sim_raft(s, server)->current_term;
    p->apply.data = p;
    p->barrier.data = p;
    p->transfer.data = p;
    p->next = s->props;
    s->props = p;
    return p;
}

/* Like rnode.c's poll: a leader that has not committed a barrier in its term gets one. */
static void election_barriers(struct sim *s)
{
    for (unsigned i = 0; i < s->o.n; i++) {
        struct raft *r = sim_raft(s, i);
        struct node *nd = &s->nodes[i];
        if (!s->alive[i] || r->state != RAFT_LEADER || nd->ready_term == r->current_term ||
            nd->barrier_pending) {
            continue;
        }
        struct prop *p = new_prop(s, PROP_BARRIER, i);
        if (raft_barrier(r, &p->barrier, barrier_done) == 0) {
            nd->barrier_pending = true;
            p->index = p->barrier.index;
        } else {
            p->done = true;
        }
    }
}

static int encode_spec(const struct spec *sp, uint64_t term, int64_t timestamp_us, uint8_t **buf,
                       size_t *len, char *err, size_t errlen)
{
    struct codec_entry e;
    memset(&e, 0, sizeof(e));
    e.op = sp->op;
    if (sp->op == CODEC_OP_MATERIALIZED) {
        e.materialized_index = sp->materialized;
    } else {
        e.project = projects[sp->project];
        e.project_len = strlen(e.project);
        e.key = keys[sp->key];
        e.key_len = strlen(e.key);
        e.expected_version = sp->expected;
        e.source_version = sp->source;
        e.term = term;
        e.timestamp_us = timestamp_us;
        e.actor = "sim";
        e.actor_len = 3;
        e.request_id = sp->rid;
        e.request_id_len = strlen(sp->rid);
        if (sp->schema != 0) {
            e.has_schema = 1;
            memset(e.schema_id, (int)sp->schema, sizeof(e.schema_id));
            memset(e.schema_hash, (int)sp->schema + 7, sizeof(e.schema_hash));
        }
        if (sp->op != CODEC_OP_DELETE) {
            e.content = (const uint8_t *)sp->content;
            e.content_len = strlen(sp->content);
        }
    }
    return codec_encode(&e, buf, len, err, errlen);
}

/* A new request as a client and the leader's early checks would shape it: the expected
 * version usually comes from the leader's own state, sometimes it is stale or wrong. */
static void random_spec(struct sim *s, unsigned leader, struct spec *sp, bool *unique)
{
    struct rng *r = &s->rng;
    struct fsm *f = s->nodes[leader].fsm;
    struct raft *raft = sim_raft(s, leader);
    memset(sp, 0, sizeof(*sp));
    *unique = false;
    uint64_t roll = rng_below(r, 100);
    if (roll < 12 && raft->last_applied > 0) {
        sp->op = CODEC_OP_MATERIALIZED;
        uint64_t hi = raft->last_applied;
        uint64_t lo = fsm_materialized_index(f);
        if (lo == 0 || lo > hi || rng_chance(r, 150)) {
            lo = 1; /* sometimes a late, lower N, as from an old leader */
        }
        sp->materialized = lo + rng_below(r, hi - lo + 1);
        return;
    }
    sp->project = rng_index(r, N_PROJECTS);
    sp->key = rng_index(r, N_KEYS);
    const char *p = projects[sp->project];
    const char *k = keys[sp->key];
    const struct fsm_config *c = fsm_get(f, p, strlen(p), k, strlen(k));
    uint64_t cur = c != NULL ? c->version : 0;
    sp->expected = rng_chance(r, 750) ? cur : rng_below(r, cur + 3);
    if (roll < 24) {
        sp->op = CODEC_OP_DELETE;
    } else if (roll < 34 && sp->expected >= 1) {
        sp->op = CODEC_OP_ROLLBACK;
        sp->source = 1 + rng_below(r, sp->expected);
    } else {
        sp->op = CODEC_OP_PUT;
    }
    if (sp->op != CODEC_OP_DELETE) {
        snprintf(sp->content, sizeof(sp->content), "{\"n\":%llu}",
                 (unsigned long long)(rng_next(r) >> 20));
        if (rng_chance(r, 200)) {
            sp->schema = 1 + rng_index(r, 3);
        }
    }
    uint64_t rid = rng_below(r, 100);
    if (rid < 30) {
        snprintf(sp->rid, sizeof(sp->rid), "pool-%u", rng_index(r, N_POOL_RIDS));
    } else if (rid < 70) {
        snprintf(sp->rid, sizeof(sp->rid), "u-%lu", ++s->unique_rid);
        *unique = true;
    }
}

/* Proposes SP on LEADER. Returns the proposal, or NULL when raft refused it. */
static struct prop *propose(struct sim *s, unsigned leader, const struct spec *sp, bool unique)
{
    struct raft *r = sim_raft(s, leader);
    char err[256];
    uint8_t *bytes = NULL;
    size_t len = 0;
    int64_t ts = 1700000000000000 + (int64_t)s->f.time * 1000;
    if (encode_spec(sp, r->current_term, ts, &bytes, &len, err, sizeof(err)) != 0) {
        sim_fail(s, "codec_encode refused a generated entry: %s", err);
        return NULL;
    }
    struct raft_buffer buf = {.base = raft_malloc(len), .len = len};
    if (buf.base == NULL) {
        abort();
    }
    memcpy(buf.base, bytes, len);
    struct prop *p = new_prop(s, PROP_APPLY, leader);
    p->spec = *sp;
    p->unique_rid = unique;
    p->bytes = bytes;
    p->len = len;
    s->st.proposals++;
    int rv = raft_apply(r, &p->apply, &buf, 1, apply_done);
    if (rv != 0) {
        raft_free(buf.base);
        p->done = true;
        p->status = rv;
        s->st.rejected++;
        return NULL;
    }
    p->index = p->apply.index;
    s->inflight[leader]++;
    trace(s, "server %u proposes %s %s/%s expected %llu rid '%s' at index %llu", leader,
          codec_op_name(sp->op), sp->op == CODEC_OP_MATERIALIZED ? "-" : projects[sp->project],
          sp->op == CODEC_OP_MATERIALIZED ? "-" : keys[sp->key],
          (unsigned long long)(sp->op == CODEC_OP_MATERIALIZED ? sp->materialized : sp->expected),
          sp->rid, (unsigned long long)p->index);
    return p;
}

/* An earlier proposal whose outcome is unknown and that has not been retried, or NULL. */
static struct prop *retry_candidate(struct sim *s)
{
    for (struct prop *p = s->props; p != NULL; p = p->next) {
        if (p->kind == PROP_APPLY && p->done && p->status != 0 && p->index != 0 &&
            p->retry_of == NULL && !p->retried && p->unique_rid) {
            return p;
        }
    }
    return NULL;
}

static void client_load(struct sim *s)
{
    struct rng *r = &s->rng;
    if (!rng_chance(r, 250)) {
        return;
    }
    unsigned cand[MAX_NODES], nc = 0;
    for (unsigned i = 0; i < s->o.n; i++) {
        struct raft *raft = sim_raft(s, i);
        if (s->alive[i] && raft->state == RAFT_LEADER && s->inflight[i] < 8 &&
            (s->o.raw || s->nodes[i].ready_term == raft->current_term)) {
            cand[nc++] = i;
        }
    }
    if (nc == 0) {
        return;
    }
    unsigned leader = cand[rng_index(r, nc)];
    unsigned count = 1 + rng_index(r, 3);
    for (unsigned k = 0; k < count && !s->failed; k++) {
        struct prop *old = rng_chance(r, 300) ? retry_candidate(s) : NULL;
        if (old != NULL) {
            old->retried = true;
            struct prop *p = propose(s, leader, &old->spec, true);
            if (p != NULL) {
                p->retry_of = old;
                s->st.retries++;
            }
            continue;
        }
        struct spec sp;
        bool unique;
        random_spec(s, leader, &sp, &unique);
        (void)propose(s, leader, &sp, unique);
    }
}

/* -- raft's own bookkeeping ------------------------------------------------------------ */

/* The term of the entry at INDEX in R's in-memory log, or 0 when R holds no such entry (the
 * last entry of its snapshot counts). The same lookup as raft 0.15's logTermOf() over the
 * public struct raft_log. */
static const struct raft_entry *log_entry(const struct raft *r, raft_index index)
{
    const struct raft_log *l = &r->log;
    size_t n = l->back >= l->front ? l->back - l->front : l->size - l->front + l->back;
    if (index > l->offset && index <= l->offset + n) {
        return &l->entries[(l->front + (size_t)(index - l->offset - 1)) % l->size];
    }
    return NULL;
}

static raft_term log_term(const struct raft *r, raft_index index)
{
    const struct raft_entry *e = log_entry(r, index);
    if (e != NULL) {
        return e->term;
    }
    if (index != 0 && index == r->log.snapshot.last_index) {
        return r->log.snapshot.last_term;
    }
    return 0;
}

/* Checks every leader's claim that a follower's log matches its own up to match_index. A
 * follower that follows the leader in the leader's term never drops entries the leader sent
 * it, so a claim that the follower's log contradicts is false.
 *
 * raft 0.15 makes such claims: a follower that accepts an AppendEntries without entries
 * answers with its last stored index, including a stale uncommitted tail from an older term
 * beyond prev_log_index, and the leader takes min(that, its own last index) as the match.
 * The leader then counts the follower for entries it does not have (a safety hazard for the
 * entries appended between the heartbeat and the answer) and ignores its rejections as
 * stale, so the follower never catches up while that leader lasts. Returns how many false
 * claims exist now; each new one is counted, and fails the run in strict mode. */
static unsigned check_match_claims(struct sim *s)
{
    unsigned found = 0;
    for (unsigned li = 0; li < s->o.n; li++) {
        struct raft *l = sim_raft(s, li);
        if (l->state != RAFT_LEADER) {
            continue;
        }
        for (unsigned j = 0; j < l->configuration.n; j++) {
            unsigned fi = (unsigned)(l->configuration.servers[j].id - 1);
            raft_index m = l->leader_state.progress[j].match_index;
            if (fi == li || fi >= s->o.n || m == 0) {
                continue;
            }
            struct raft *f = sim_raft(s, fi);
            if (f->state != RAFT_FOLLOWER || f->current_term != l->current_term ||
                f->follower_state.current_leader.id != l->id) {
                continue;
            }
            raft_term lt = log_term(l, m), ft = log_term(f, m);
            bool missing = m > raft_last_index(f);
            if (!missing && (lt == 0 || ft == 0 || lt == ft)) {
                continue; /* compacted on one side, or a true claim */
            }
            found++;
            if (s->false_match_seen[li][fi] == l->current_term) {
                continue;
            }
            s->false_match_seen[li][fi] = l->current_term;
            s->st.false_matches++;
            trace(s,
                  "raft 0.15 defect: leader %u (term %llu) claims server %u matches up to %llu "
                  "(leader term there %llu, follower %s %llu, follower last index %llu)",
                  li, (unsigned long long)l->current_term, fi, (unsigned long long)m,
                  (unsigned long long)lt, missing ? "has no entry, last" : "term",
                  missing ? (unsigned long long)raft_last_index(f) : (unsigned long long)ft,
                  (unsigned long long)raft_last_index(f));
            if (s->o.strict) {
                sim_fail(s,
                         "leader %u (term %llu) counts server %u as holding index %llu, which "
                         "it does not hold (raft 0.15 AppendEntries result defect)",
                         li, (unsigned long long)l->current_term, fi, (unsigned long long)m);
            }
        }
    }
    return found;
}

/* -- the run ---------------------------------------------------------------------------- */

static void watch_leader(struct sim *s)
{
    unsigned l = raft_fixture_leader_index(&s->f);
    if (l != s->last_leader) {
        if (l < s->o.n) {
            s->st.elections++;
            trace(s, "stable leader: server %u, term %llu", l,
                  (unsigned long long)sim_raft(s, l)->current_term);
        }
        s->last_leader = l;
    }
}

static int sim_init(struct sim *s, const struct sim_opts *o)
{
    memset(s, 0, sizeof(*s));
    s->o = *o;
    rng_seed(&s->rng, o->seed * 2 + o->n);
    s->chaos = 1 + rng_index(&s->rng, 4);
    s->last_leader = o->n;
    char err[256];
    if (raft_fixture_initialize(&s->f) != 0) {
        return -1;
    }
    unsigned threshold = 4 + rng_index(&s->rng, 40);
    unsigned trailing = 1 + rng_index(&s->rng, 12);
    for (unsigned i = 0; i < o->n; i++) {
        struct node *nd = &s->nodes[i];
        if (fsm_new(&nd->fsm, NULL, err, sizeof(err)) != 0) {
            fprintf(stderr, "fsm_new: %s\n", err);
            return -1;
        }
        rfsm_init(&nd->ad, nd->fsm, NULL);
        nd->sim = s;
        nd->idx = i;
        nd->orig_apply = nd->ad.raft_fsm.apply;
        nd->orig_snapshot = nd->ad.raft_fsm.snapshot;
        nd->orig_restore = nd->ad.raft_fsm.restore;
        nd->ad.raft_fsm.apply = sim_apply;
        nd->ad.raft_fsm.snapshot = sim_snapshot;
        nd->ad.raft_fsm.restore = sim_restore;
        if (raft_fixture_grow(&s->f, &nd->ad.raft_fsm) != 0) {
            return -1;
        }
        struct raft *r = raft_fixture_get(&s->f, i);
        nd->ad.raft = r;
        nd->orig_truncate = r->io->truncate;
        nd->orig_append = r->io->append;
        r->io->append = sim_append;
        nd->orig_snapshot_put = r->io->snapshot_put;
        r->io->truncate = sim_truncate;
        r->io->snapshot_put = sim_snapshot_put;
        if (o->raft_trace) {
            nd->tracer.impl = nd;
            nd->tracer.enabled = true;
            nd->tracer.emit = raft_trace_emit;
            r->tracer = &nd->tracer;
        }
        raft_set_snapshot_threshold(r, threshold);
        raft_set_snapshot_trailing(r, trailing);
        raft_fixture_set_randomized_election_timeout(&s->f, i, 1000 + rng_index(&s->rng, 1000));
        raft_fixture_set_network_latency(&s->f, i, 5 + rng_index(&s->rng, 30));
        raft_fixture_set_disk_latency(&s->f, i, 2 + rng_index(&s->rng, 20));
        s->alive[i] = true;
    }
    struct raft_configuration conf;
    if (raft_fixture_configuration(&s->f, o->n, &conf) != 0) {
        return -1;
    }
    int rv = raft_fixture_bootstrap(&s->f, &conf);
    raft_configuration_close(&conf);
    if (rv != 0 || raft_fixture_start(&s->f) != 0) {
        return -1;
    }
    trace(s, "%u servers, snapshot threshold %u trailing %u, chaos %u", o->n, threshold, trailing,
          s->chaos);
    return 0;
}

static void sim_close(struct sim *s)
{
    raft_fixture_close(&s->f);
    while (s->props != NULL) {
        struct prop *p = s->props;
        s->props = p->next;
        free(p->bytes);
        free(p);
    }
    for (unsigned i = 0; i < s->o.n; i++) {
        fsm_free(s->nodes[i].fsm);
        s->nodes[i].fsm = NULL;
        free(s->nodes[i].appends);
        s->nodes[i].appends = NULL;
    }
    ledger_free(&s->ledger);
    free(s->commits);
    s->commits = NULL;
}

/* True when one leader is ready in its term, has committed its whole log, and every server
 * follows it and has applied everything. */
static bool converged(struct sim *s)
{
    unsigned l = s->o.n;
    for (unsigned i = 0; i < s->o.n; i++) {
        if (sim_raft(s, i)->state == RAFT_LEADER) {
            if (l != s->o.n) {
                return false;
            }
            l = i;
        }
    }
    if (l == s->o.n) {
        return false;
    }
    struct raft *lr = sim_raft(s, l);
    if (s->nodes[l].ready_term != lr->current_term || raft_last_index(lr) != lr->commit_index) {
        return false;
    }
    for (unsigned i = 0; i < s->o.n; i++) {
        struct raft *r = sim_raft(s, i);
        if (r->current_term != lr->current_term || r->last_applied != lr->commit_index ||
            (i != l && r->state != RAFT_FOLLOWER)) {
            return false;
        }
    }
    return true;
}

/* Prints each server's raft state and, for a leader, its view of every follower (verbose
 * runs and convergence failures). */
static void dump_cluster(struct sim *s)
{
    for (unsigned i = 0; i < s->o.n; i++) {
        struct raft *r = sim_raft(s, i);
        fprintf(stderr,
                "  server %u: state %d term %llu voted %llu last_index %llu stored %llu commit "
                "%llu applied %llu snapshot %llu/%llu log offset %llu fsm applied %llu\n",
                i, r->state, (unsigned long long)r->current_term, (unsigned long long)r->voted_for,
                (unsigned long long)raft_last_index(r), (unsigned long long)r->last_stored,
                (unsigned long long)r->commit_index, (unsigned long long)r->last_applied,
                (unsigned long long)r->log.snapshot.last_index,
                (unsigned long long)r->log.snapshot.last_term, (unsigned long long)r->log.offset,
                (unsigned long long)fsm_last_applied(s->nodes[i].fsm));
        fprintf(stderr, "    alive %d, links out:", s->alive[i]);
        for (unsigned j = 0; j < s->o.n; j++) {
            if (j != i) {
                fprintf(stderr, " ->%u %s", j,
                        raft_fixture_saturated(&s->f, i, j) ? "saturated" : "ok");
            }
        }
        fprintf(stderr, "; sent ae %u aer %u is %u; received ae %u aer %u is %u\n",
                raft_fixture_n_send(&s->f, i, RAFT_IO_APPEND_ENTRIES),
                raft_fixture_n_send(&s->f, i, RAFT_IO_APPEND_ENTRIES_RESULT),
                raft_fixture_n_send(&s->f, i, RAFT_IO_INSTALL_SNAPSHOT),
                raft_fixture_n_recv(&s->f, i, RAFT_IO_APPEND_ENTRIES),
                raft_fixture_n_recv(&s->f, i, RAFT_IO_APPEND_ENTRIES_RESULT),
                raft_fixture_n_recv(&s->f, i, RAFT_IO_INSTALL_SNAPSHOT));
        if (r->state == RAFT_LEADER) {
            for (unsigned j = 0; j < r->configuration.n; j++) {
                struct raft_progress *pr = &r->leader_state.progress[j];
                fprintf(stderr,
                        "    progress of %llu: state %u next %llu match %llu snapshot %llu "
                        "last_send %llu snapshot_last_send %llu recent %d\n",
                        (unsigned long long)r->configuration.servers[j].id, pr->state,
                        (unsigned long long)pr->next_index, (unsigned long long)pr->match_index,
                        (unsigned long long)pr->snapshot_index, (unsigned long long)pr->last_send,
                        (unsigned long long)pr->snapshot_last_send, pr->recent_recv);
            }
        }
    }
}

/* The leader, when exactly one server leads, or the number of servers. */
static unsigned sole_leader(struct sim *s)
{
    unsigned l = s->o.n;
    for (unsigned i = 0; i < s->o.n; i++) {
        if (sim_raft(s, i)->state == RAFT_LEADER) {
            if (l != s->o.n) {
                return s->o.n;
            }
            l = i;
        }
    }
    return l;
}

/* Whether the committed entry C, now contradicted, is an election barrier that its leader
 * committed counting a follower it falsely claimed to match (check_match_claims): the one
 * way raft 0.15 was seen to lose a committed entry while conclave's leader waits for its
 * barrier. Such a loss is counted, and fails the run only in strict mode. */
static bool known_barrier_loss(struct sim *s, const struct commit_rec *c)
{
    bool claimed = false;
    for (unsigned f = 0; f < s->o.n; f++) {
        claimed = claimed || s->false_match_seen[c->server][f] == c->commit_term;
    }
    if (c->type != RAFT_BARRIER || !claimed || s->o.strict) {
        return false;
    }
    if (!s->lost_barrier) {
        s->lost_barrier = true;
        s->st.lost_barriers++;
        trace(s,
              "raft 0.15 defect: the barrier of term %llu that server %u committed on a false "
              "match claim is lost",
              (unsigned long long)c->commit_term, c->server);
    }
    return true;
}

/* Raft's own safety, on every entry type (barriers included, which the ledger never sees):
 * an index is only ever committed with one entry term (State Machine Safety), and a leader
 * holds every entry committed in an earlier term (Leader Completeness). A commit is recorded
 * when a server's commit index first covers it, with that server's current term: the leader
 * that commits an entry advances before any follower hears of it. */
static void check_commits(struct sim *s)
{
    for (unsigned i = 0; i < s->o.n && !s->failed; i++) {
        struct raft *r = sim_raft(s, i);
        for (raft_index x = s->commit_seen[i] + 1; x <= r->commit_index && !s->failed; x++) {
            raft_term t = log_term(r, x);
            if (t == 0) {
                continue; /* compacted into a snapshot */
            }
            if (x >= s->commits_cap) {
                size_t cap = s->commits_cap == 0 ? 256 : s->commits_cap;
                while (cap <= x) {
                    cap *= 2;
                }
                struct commit_rec *c = realloc(s->commits, cap * sizeof(*c));
                if (c == NULL) {
                    abort();
                }
                memset(c + s->commits_cap, 0, (cap - s->commits_cap) * sizeof(*c));
                s->commits = c;
                s->commits_cap = cap;
            }
            struct commit_rec *c = &s->commits[x];
            if (c->entry_term == 0) {
                const struct raft_entry *e = log_entry(r, x);
                c->entry_term = t;
                c->commit_term = r->current_term;
                c->server = i;
                c->type = e != NULL ? e->type : 0;
                if (x > s->max_committed) {
                    s->max_committed = x;
                }
            } else if (c->entry_term != t && !known_barrier_loss(s, c)) {
                sim_fail(s,
                         "index %llu is committed on server %u with an entry of term %llu and on "
                         "server %u with one of term %llu",
                         (unsigned long long)x, c->server, (unsigned long long)c->entry_term, i,
                         (unsigned long long)t);
            }
        }
        if (r->commit_index > s->commit_seen[i]) {
            s->commit_seen[i] = r->commit_index;
        }
        if (r->state != RAFT_LEADER) {
            continue;
        }
        if (s->leader_checked[i] != r->current_term) {
            s->leader_checked[i] = r->current_term;
            s->leader_checked_upto[i] = 0;
        }
        for (raft_index x = s->leader_checked_upto[i] + 1; x <= s->max_committed && !s->failed;
             x++) {
            struct commit_rec *c = &s->commits[x];
            if (c->entry_term == 0 || c->commit_term >= r->current_term) {
                continue; /* unknown, or committed in this leader's term or later */
            }
            raft_term t = log_term(r, x);
            bool compacted = x <= r->log.offset && x != r->log.snapshot.last_index;
            if (!compacted && t != c->entry_term && !known_barrier_loss(s, c)) {
                sim_fail(s,
                         "server %u leads term %llu without the entry of term %llu committed at "
                         "index %llu in term %llu (first seen on server %u); its log has %s %llu",
                         i, (unsigned long long)r->current_term, (unsigned long long)c->entry_term,
                         (unsigned long long)x, (unsigned long long)c->commit_term, c->server,
                         t == 0 ? "no entry there, last index" : "term",
                         t == 0 ? (unsigned long long)raft_last_index(r) : (unsigned long long)t);
            }
        }
        if (s->max_committed > s->leader_checked_upto[i]) {
            s->leader_checked_upto[i] = s->max_committed;
        }
    }
}

/* raft gives up on a server (RAFT_UNAVAILABLE) after an I/O error, or when the leader sends
 * it an AppendEntries whose previous entry contradicts an entry the server has committed
 * ("conflicting terms ... -> shutdown"), that is when raft itself caught a committed entry
 * being lost. rnode stops the process then. Either is a failure here. */
static void check_unavailable(struct sim *s)
{
    for (unsigned i = 0; i < s->o.n && !s->failed; i++) {
        struct raft *r = sim_raft(s, i);
        if (r->state == RAFT_UNAVAILABLE && s->lost_barrier) {
            /* The known consequence: a server that committed the lost barrier sees a leader
             * contradict it and shuts down for good, so the run cannot converge. */
            trace(s, "server %u shut down after the loss of a committed barrier", i);
            s->shutdown = true;
            return;
        }
        if (r->state == RAFT_UNAVAILABLE) {
            sim_fail(s,
                     "server %u shut down (raft state unavailable, term %llu, commit index %llu, "
                     "last index %llu): raft found an entry it had committed contradicted by "
                     "the leader's log, or an I/O error",
                     i, (unsigned long long)r->current_term, (unsigned long long)r->commit_index,
                     (unsigned long long)raft_last_index(r));
        }
    }
}

/* Counts the followers that the leader keeps in snapshot state for a snapshot no newer than
 * the one they hold; called only once a healed cluster has stalled, when nothing is in
 * flight any more.
 *
 * raft 0.15 gets there when a follower compacted its log beyond what the leader knows it
 * has (the acknowledgements of the last entries were lost, and the follower took a snapshot
 * and kept fewer trailing entries than it was behind in the leader's view): the follower
 * rejects every AppendEntries whose prev_log_index lies inside its own snapshot ("no entry
 * at index"), although those entries are committed and match; the leader walks next_index
 * down to its own snapshot and sends it; the follower answers "have more recent snapshot";
 * and the leader keeps it in snapshot state, resending every install_snapshot_timeout, so
 * the follower never gets another entry while that leader lasts. */
static unsigned snapshot_stalls(struct sim *s)
{
    unsigned found = 0;
    unsigned l = sole_leader(s);
    if (l == s->o.n) {
        return 0;
    }
    struct raft *lr = sim_raft(s, l);
    for (unsigned j = 0; j < lr->configuration.n; j++) {
        unsigned fi = (unsigned)(lr->configuration.servers[j].id - 1);
        const struct raft_progress *pr = &lr->leader_state.progress[j];
        if (fi == l || fi >= s->o.n) {
            continue;
        }
        struct raft *f = sim_raft(s, fi);
        if (pr->state == 2 /* raft 0.15's PROGRESS__SNAPSHOT */ &&
            pr->snapshot_index <= f->log.snapshot.last_index) {
            trace(s,
                  "raft 0.15 defect: leader %u keeps server %u in snapshot state for snapshot "
                  "%llu, but the server holds snapshot %llu and entries up to %llu",
                  l, fi, (unsigned long long)pr->snapshot_index,
                  (unsigned long long)f->log.snapshot.last_index,
                  (unsigned long long)raft_last_index(f));
            found++;
        }
    }
    return found;
}

/* Works around the stalls of check_match_claims() and snapshot_stalls() the way an operator
 * would: the leader hands over to a server that holds its whole log (a new leader probes
 * every follower afresh and repairs the stuck one). Returns 0 when a transfer started. */
static int break_stall(struct sim *s)
{
    unsigned l = sole_leader(s);
    if (l == s->o.n || sim_raft(s, l)->transfer != NULL) {
        return -1;
    }
    struct raft *lr = sim_raft(s, l);
    for (unsigned j = 0; j < lr->configuration.n; j++) {
        unsigned fi = (unsigned)(lr->configuration.servers[j].id - 1);
        if (fi == l || fi >= s->o.n) {
            continue;
        }
        struct raft *f = sim_raft(s, fi);
        raft_index m = lr->leader_state.progress[j].match_index;
        if (m == raft_last_index(lr) && raft_last_index(f) == m &&
            log_term(f, m) == log_term(lr, m)) {
            return transfer(s, l, fi);
        }
    }
    return -1;
}

static void heal_and_converge(struct sim *s)
{
    for (unsigned i = 0; i < s->o.n; i++) {
        if (!s->alive[i]) {
            raft_fixture_revive(&s->f, i);
            s->alive[i] = true;
        }
        for (unsigned j = 0; j < s->o.n; j++) {
            s->cut[i][j] = false;
            s->loss_until[i][j] = 0;
        }
    }
    sync_links(s);
    trace(s, "healed: all servers alive, all links up");
    raft_time start = s->f.time;
    raft_time last_try = s->f.time;
    unsigned tries = 0;
    while (!s->failed && !s->shutdown && !converged(s)) {
        shuffle_election_timeouts(s);
        if (s->f.time - last_try > HEAL_STALL_MSECS) {
            /* Not converged for long. The stalls known to be raft's are broken by a
             * leadership transfer (or fail the run in strict mode); anything else fails. */
            last_try = s->f.time;
            unsigned claims = check_match_claims(s);
            unsigned snaps = snapshot_stalls(s);
            if (snaps > 0 && s->o.strict) {
                sim_fail(s, "a follower stalled on a stale snapshot (raft 0.15 defect)");
                return;
            }
            if (tries < 5 && claims + snaps > 0 && s->f.time - start <= HEAL_MAX_MSECS &&
                break_stall(s) == 0) {
                if (tries++ == 0) {
                    s->st.false_match_runs += claims > 0 ? 1u : 0u;
                    s->st.snapshot_stall_runs += snaps > 0 ? 1u : 0u;
                }
                s->st.stall_transfers++;
                continue;
            }
            if (s->o.verbose) {
                dump_cluster(s);
            }
            char states[160] = "";
            size_t off = 0;
            for (unsigned i = 0; i < s->o.n && off < sizeof(states); i++) {
                struct raft *r = sim_raft(s, i);
                off += (size_t)snprintf(states + off, sizeof(states) - off, " %u:%d/t%llu/a%llu", i,
                                        r->state, (unsigned long long)r->current_term,
                                        (unsigned long long)r->last_applied);
            }
            sim_fail(s, "the healed cluster did not converge in %llu ms (state/term/applied:%s)",
                     (unsigned long long)(s->f.time - start), states);
            return;
        }
        election_barriers(s);
        raft_fixture_step(&s->f);
        s->step++;
        watch_leader(s);
        (void)check_match_claims(s);
        check_commits(s);
        check_unavailable(s);
    }
}

static void final_checks(struct sim *s)
{
    struct fsm *fsms[MAX_NODES];
    for (unsigned i = 0; i < s->o.n; i++) {
        fsms[i] = s->nodes[i].fsm;
    }
    char msg[600];
    if (check_agreement(fsms, s->o.n, &s->ledger, msg, sizeof(msg)) != 0) {
        sim_fail(s, "%s", msg);
        return;
    }
    for (struct prop *p = s->props; p != NULL && !s->failed; p = p->next) {
        if (p->kind != PROP_APPLY || p->index == 0) {
            continue;
        }
        const struct ledger_entry *e = ledger_get(&s->ledger, p->index);
        bool committed = e != NULL && e->len == p->len && memcmp(e->bytes, p->bytes, p->len) == 0;
        if (p->done && p->status == 0) {
            if (!committed) {
                sim_fail(s, "acknowledged write at index %llu (server %u, term %llu) was lost",
                         (unsigned long long)p->index, p->server, (unsigned long long)p->term);
                return;
            }
            if (p->result.status == FSM_OK && fsm_revision(fsms[0]) < p->result.revision) {
                sim_fail(s, "acknowledged revision %llu is above the final revision %llu",
                         (unsigned long long)p->result.revision,
                         (unsigned long long)fsm_revision(fsms[0]));
                return;
            }
            if (p->retry_of == NULL && p->unique_rid && p->result.status == FSM_DUPLICATE) {
                sim_fail(s, "first use of request id '%s' (index %llu) answered DUPLICATE",
                         p->spec.rid, (unsigned long long)p->index);
                return;
            }
        } else {
            s->st.unknown++;
            if (committed) {
                s->st.unknown_committed++;
            }
        }
        /* A retry with the same request id gets the first outcome if the first attempt
         * committed, and is itself the first outcome otherwise. */
        if (p->retry_of != NULL && p->done && p->status == 0) {
            const struct prop *o = p->retry_of;
            const struct ledger_entry *oe = ledger_get(&s->ledger, o->index);
            bool first_committed =
                oe != NULL && oe->len == o->len && memcmp(oe->bytes, o->bytes, o->len) == 0;
            if (first_committed) {
                s->st.retry_dups++;
                if (p->result.status != FSM_DUPLICATE || p->result.first_index != o->index ||
                    p->result.mismatch || p->result.first_status != oe->result.status ||
                    p->result.version != oe->result.version ||
                    p->result.revision != oe->result.revision) {
                    char a[200];
                    describe_result(&p->result, a, sizeof(a));
                    sim_fail(s,
                             "retry of request id '%s' (first committed at index %llu) got (%s) "
                             "instead of that first outcome",
                             p->spec.rid, (unsigned long long)o->index, a);
                    return;
                }
            } else if (p->result.status == FSM_DUPLICATE) {
                sim_fail(s,
                         "retry of request id '%s' got DUPLICATE although its first attempt "
                         "(index %llu) never committed",
                         p->spec.rid, (unsigned long long)o->index);
                return;
            }
        }
    }
}

/* Runs one seed. Returns 0, or -1 with S->why describing the first violation. */
static int sim_run(struct sim *s, const struct sim_opts *o)
{
    running = s;
    if (sim_init(s, o) != 0) {
        snprintf(s->why, sizeof(s->why), "setting up the fixture failed");
        s->setup_failed = true;
        sim_close(s);
        return -1;
    }
    for (s->step = 0; s->step < o->steps && !s->failed && !s->shutdown; s->step++) {
        inject_faults(s);
        if (!s->o.raw) {
            election_barriers(s);
        }
        client_load(s);
        raft_fixture_step(&s->f);
        watch_leader(s);
        (void)check_match_claims(s);
        check_commits(s);
        check_unavailable(s);
    }
    if (!s->failed && !s->shutdown) {
        heal_and_converge(s);
    }
    if (s->shutdown) {
        /* The acknowledged writes and the ledger were checked as they happened; the final
         * checks need a cluster that can converge, which this one cannot. */
        s->st.shutdown_runs++;
    } else if (!s->failed) {
        final_checks(s);
    }
    s->st.runs = 1;
    s->st.steps = s->step;
    sim_close(s);
    return s->failed ? -1 : 0;
}

static void stats_add(struct stats *a, const struct stats *b)
{
    a->runs += b->runs;
    a->steps += b->steps;
    a->proposals += b->proposals;
    a->acked += b->acked;
    a->unknown += b->unknown;
    a->unknown_committed += b->unknown_committed;
    a->rejected += b->rejected;
    a->retries += b->retries;
    a->retry_dups += b->retry_dups;
    a->snapshots += b->snapshots;
    a->restores += b->restores;
    a->kills += b->kills;
    a->cuts += b->cuts;
    a->losses += b->losses;
    a->elections += b->elections;
    a->applies += b->applies;
    a->transfers += b->transfers;
    a->false_matches += b->false_matches;
    a->false_match_runs += b->false_match_runs;
    a->snapshot_stall_runs += b->snapshot_stall_runs;
    a->lost_barriers += b->lost_barriers;
    a->shutdown_runs += b->shutdown_runs;
    a->stall_transfers += b->stall_transfers;
}

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
    unsigned long first = 1;
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
        .strict = env_ulong("CONCLAVE_SIM_STRICT", 0) != 0,
        .sabotage_server = -1,
    };
    struct stats total_st;
    memset(&total_st, 0, sizeof(total_st));
    struct sim *s = xcalloc(1, sizeof(*s));
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
                     o.raw ? " CONCLAVE_SIM_RAW=1" : "", o.strict ? " CONCLAVE_SIM_STRICT=1" : "");
        }
        stats_add(&total_st, &s->st);
    }
    free(s);
    double secs = (double)(clock() - t0) / CLOCKS_PER_SEC;
    print_message("%u servers: %lu seeds, %lu steps, %.1f s cpu; %lu proposals (%lu refused), "
                  "%lu acknowledged, %lu outcome unknown (%lu of them committed), %lu retries "
                  "(%lu answered with the first outcome), %lu applies, %lu snapshots taken, "
                  "%lu installed, %lu kills, %lu cuts, %lu loss bursts, %lu transfers, %lu stable "
                  "leaders; raft 0.15 defects: %lu false match claims, %lu runs lost a committed "
                  "barrier (%lu of them ended by raft shutting a server down), healed runs "
                  "stalled by false claims %lu and by stale snapshots %lu, broken by %lu "
                  "transfers\n",
                  n, total_st.runs, total_st.steps, secs, total_st.proposals, total_st.rejected,
                  total_st.acked, total_st.unknown, total_st.unknown_committed, total_st.retries,
                  total_st.retry_dups, total_st.applies, total_st.snapshots, total_st.restores,
                  total_st.kills, total_st.cuts, total_st.losses, total_st.transfers,
                  total_st.elections, total_st.false_matches, total_st.lost_barriers,
                  total_st.shutdown_runs, total_st.false_match_runs, total_st.snapshot_stall_runs,
                  total_st.stall_transfers);
    if (count > 1) {
        /* Over many seeds the run must have exercised what it claims to. */
        assert_true(total_st.acked > 0);
        assert_true(total_st.snapshots > 0);
        assert_true(total_st.restores > 0);
        assert_true(total_st.kills > 0);
        assert_true(total_st.unknown > 0);
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
    if (encode_spec(&sp, 1, 1700000000000000, &buf, len, err, sizeof(err)) != 0) {
        fail_msg("encode: %s", err);
    }
    return buf;
}

/* Applies BUF at INDEX to F and records it in L as SERVER; returns ledger_note's answer. */
static int apply_note(struct ledger *l, struct fsm *f, unsigned server, uint64_t index,
                      const uint8_t *buf, size_t len, char *msg, size_t msglen)
{
    struct fsm_result res;
    uint8_t hash[32];
    assert_int_equal(fsm_apply(f, index, buf, len, &res), 0);
    fsm_state_hash(f, hash);
    return ledger_note(l, server, index, buf, len, hash, &res, msg, msglen);
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
    assert_int_equal(check_agreement(f, 2, &l, msg, sizeof(msg)), 0);

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
    assert_int_equal(check_agreement(f, 2, &l, msg, sizeof(msg)), -1);
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
    assert_int_equal(check_agreement(g, 2, &l2, msg, sizeof(msg)), 0);
    uint8_t *e = encode_put(1, 0, "{\"z\":2}", &len);
    struct fsm_result res;
    for (unsigned srv = 0; srv < 2; srv++) {
        assert_int_equal(fsm_apply(g[srv], 5, e, len, &res), 0);
    }
    assert_int_equal(check_agreement(g, 2, &l2, msg, sizeof(msg)), -1);
    assert_non_null(strstr(msg, "fold"));
    print_message("caught: %s\n", msg);
    free(d);
    free(e);

    ledger_free(&l);
    ledger_free(&l2);
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
            struct sim *s = xcalloc(1, sizeof(*s));
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_checker_catches_divergence),
        cmocka_unit_test(test_sim_catches_sabotage),
        cmocka_unit_test(test_sim_3_servers),
        cmocka_unit_test(test_sim_5_servers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
