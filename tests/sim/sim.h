/*
 * The private header of the raft simulation test (tests/sim/; what it does and how to
 * replay a failure is described at the top of test_raft_sim.c). Files:
 * - sim.c: the simulated cluster (set-up, run loop, healing, convergence);
 * - sim_io.c: the hooks around the real raft_fsm adapter and the fixture's raft_io;
 * - sim_faults.c: the faults injected before each step, and the planted divergence;
 * - sim_load.c: the client load (proposals, retries) and the post-election barriers;
 * - sim_reads.c: linearizable reads through ReadIndex (raft/readindex.c) and their check;
 * - sim_checks.c: the ledger and every safety check;
 * - test_raft_sim.c: the scenarios (cmocka tests).
 * Nothing outside tests/sim/ includes it.
 */
#ifndef CONCLAVE_TESTS_SIM_H
#define CONCLAVE_TESTS_SIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <raft.h>
#include <raft/fixture.h>

#include "raft/codec.h"
#include "raft/fsm.h"
#include "raft/readindex.h"
#include "raft/rfsm.h"
#include "raft/rio_guard.h"

#define MAX_NODES     5
#define N_PROJECTS    2
#define N_KEYS        5
#define N_POOL_RIDS   12
#define DEFAULT_SEEDS 100
#define DEFAULT_STEPS 6000
/* A healed cluster that has not converged after this long is stalled (more than raft's
 * default 30 s install_snapshot_timeout, after which a lost InstallSnapshot is resent). */
#define HEAL_STALL_MSECS 45000u

/* ---- PRNG: xorshift64*, seeded through splitmix64 ------------------------------------ */

struct rng {
    uint64_t s;
};

static inline void rng_seed(struct rng *r, uint64_t seed)
{
    uint64_t z = seed + 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    r->s = z != 0 ? z : 1;
}

static inline uint64_t rng_next(struct rng *r)
{
    r->s ^= r->s >> 12;
    r->s ^= r->s << 25;
    r->s ^= r->s >> 27;
    return r->s * 0x2545f4914f6cdd1dull;
}

/* A value in [0, n); n > 0. */
static inline uint64_t rng_below(struct rng *r, uint64_t n)
{
    return rng_next(r) % n;
}

static inline unsigned rng_index(struct rng *r, unsigned n)
{
    return (unsigned)rng_below(r, n);
}

/* True with probability per_mille / 1000. */
static inline bool rng_chance(struct rng *r, unsigned per_mille)
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

/* ---- each server's disk (sim_disk.c) ----------------------------------------------- */

enum sim_disk_kind {
    SIM_DISK_APPEND,
    SIM_DISK_TRUNCATE,
    SIM_DISK_SNAPSHOT_PUT,
    SIM_DISK_SNAPSHOT_GET,
    SIM_DISK_WORK
};

/* One queued disk operation; the requests and what they point to belong to raft and stay
 * valid until their callback. */
struct sim_disk_op {
    enum sim_disk_kind kind;
    raft_time due;
    raft_index index; /* APPEND: index of the first entry; TRUNCATE: first index dropped */
    struct raft_io_append *append;
    const struct raft_entry *entries;
    unsigned n;
    struct raft_io_snapshot_put *put;
    const struct raft_snapshot *snap;
    unsigned trailing;
    struct raft_io_snapshot_get *get;
    struct raft_io_async_work *work;
};

struct sim_send;

/* What one server persisted, and what it has queued. Entries and the snapshot are owned
 * here (raft_malloc'd); nothing else points into them. */
struct sim_disk {
    raft_term term;
    raft_id vote;
    struct raft_snapshot *snap; /* NULL: none */
    raft_index first;           /* index of e[0] */
    struct raft_entry *e;
    size_t n, cap;
    raft_index proj_last;    /* raft's last index once every queued operation completes */
    raft_index proj_snap;    /* index of the newest snapshot, queued ones included */
    struct sim_disk_op *ops; /* FIFO, completion times non-decreasing */
    size_t n_ops, cap_ops;
    struct sim_disk_op *works; /* async_work requests, FIFO, due times non-decreasing */
    size_t n_works, cap_works;
    unsigned latency;
    bool crashing; /* the next close is a crash, not the end of the run */
    void (*orig_close)(struct raft_io *io, raft_io_close_cb cb);
    int (*orig_send)(struct raft_io *io, struct raft_io_send *req, const struct raft_message *m,
                     raft_io_send_cb cb);
    struct sim_send **sends; /* handed to the fixture, not yet answered to raft */
    size_t n_sends, cap_sends;
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
    int (*orig_snapshot_async)(struct raft_fsm *f, struct raft_buffer *bufs[], unsigned *n_bufs);
    uint64_t snap_applied; /* raft's last applied index when the pending snapshot was taken */
    uint64_t last_noted;   /* highest index this server applied (or restored up to) */
    uint64_t ready_term;   /* term whose election barrier completed here */
    bool barrier_pending;  /* an election barrier is in flight */
    struct raft_tracer tracer;
    struct sim_disk disk;   /* what this server persisted (sim_disk.c) */
    struct rio_guard guard; /* between raft and the simulated io, unless o.unguarded */
    struct readindex ri;    /* linearizable reads (sim_reads.c), unless o.unguarded */
    unsigned crashes;       /* times this server crashed and restarted */
};

struct stats {
    unsigned long runs, steps, proposals, acked, unknown, unknown_committed, rejected;
    unsigned long retries, retry_dups, snapshots, restores, kills, cuts, losses, elections;
    unsigned long applies, transfers, crashes, partitions;
    /* Asynchronous snapshots sealed, and how many of them while the server had applied more
     * entries since their first half (the state moved on under the copy being sealed). */
    unsigned long sealed, sealed_after_applies;
    /* rio_guard's counters, summed */
    unsigned long guard_capped, guard_unvouched, guard_rebased, guard_commit_bounded;
    unsigned long reads_served, reads_failed, read_rounds; /* ReadIndex (sim_reads.c) */
    unsigned long reads_failed_by[3]; /* not leader, timed out, stopped (crash or end) */
};

struct sim_opts {
    unsigned n;
    uint64_t seed;
    unsigned steps;
    bool raw; /* no post-election barrier before writes */
    bool verbose;
    bool raft_trace;     /* raft's own trace messages too */
    bool unguarded;      /* raft talks to the simulated io directly, without raft/rio_guard.c, to
                            show what the guard closes (CONCLAVE_SIM_UNGUARDED=1) */
    int sabotage_server; /* -1: none; else that server applies one extra entry */
    uint64_t sabotage_index;
    bool scripted; /* a scripted scenario: server 0 alone has a short election timeout at start,
                      so that it is the first leader */
};

/* A linearizable read (sim_reads.c); lives until the run ends. */
struct sim_read {
    struct sim_read *next;
    struct sim *sim;
    unsigned long id;
    unsigned server;
    raft_term term;       /* the server's term when the read arrived */
    raft_index committed; /* the highest index known committed when it arrived */
    bool done, refused;
    int status;
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
    struct sim_read *reads;
    bool closing; /* sim_close runs */
    unsigned long read_ids;
    bool alive[MAX_NODES];
    bool cut[MAX_NODES][MAX_NODES];
    unsigned long loss_until[MAX_NODES][MAX_NODES];
    unsigned long step;
    unsigned chaos;               /* fault rate multiplier of this seed, 1..4 */
    unsigned threshold, trailing; /* snapshot settings of this seed, for restarts */
    bool sabotaged;
    unsigned long unique_rid;
    unsigned last_leader;
    raft_time last_shuffle;
    struct commit_rec *commits; /* indexed by raft index */
    size_t commits_cap;
    raft_index max_committed;
    raft_index commit_seen[MAX_NODES];   /* per server: commits recorded up to here */
    raft_term leader_checked[MAX_NODES]; /* per server: term whose log was checked */
    raft_index leader_checked_upto[MAX_NODES];
    unsigned inflight[MAX_NODES]; /* unanswered proposals per server */
    struct stats st;
    bool failed;
    char why[768];
    bool setup_failed;
};

/* ---- sim.c ---------------------------------------------------------------------- */

/* calloc that aborts when out of memory. */
void *sim_xcalloc(size_t n, size_t size);
/* A line on stderr about the run, in verbose runs only. */
void sim_trace(struct sim *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Records a violation; the first one is kept in S->why and fails the run. */
void sim_fail(struct sim *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
struct raft *sim_raft(struct sim *s, unsigned i);
/* Crashes server I (it loses what it had not persisted) and restarts it from its disk; it
 * stays down (killed in the fixture) until revived. */
void sim_crash(struct sim *s, unsigned i);
/* The leader, when exactly one server leads, or the number of servers. */
unsigned sim_sole_leader(struct sim *s);
/* For scripted scenarios: sim_setup builds and starts the cluster (0, or -1 with S->why);
 * sim_tick runs one fixture step with the disk, the election barriers (unless o.raw) and every
 * per-step check, without random faults or client load; sim_finish heals, waits for
 * convergence, runs the final checks and closes (0, or -1 with S->why). */
int sim_setup(struct sim *s, const struct sim_opts *o);
void sim_tick(struct sim *s);
int sim_finish(struct sim *s);
/* Runs one seed. Returns 0, or -1 with S->why describing the first violation. */
int sim_run(struct sim *s, const struct sim_opts *o);
void sim_stats_add(struct stats *a, const struct stats *b);

/* ---- sim_io.c ------------------------------------------------------------------- */

/* Wraps ND's raft_fsm (its rfsm adapter) with the recording hooks, before the server grows. */
void sim_io_wrap_fsm(struct node *nd);
/* Wraps the second half of rfsm's asynchronous snapshots (after rfsm_async_snapshots()). */
void sim_io_wrap_async(struct node *nd);
/* Installs raft's tracer on ND's server R. */
void sim_io_trace(struct node *nd, struct raft *r);

/* ---- sim_disk.c ----------------------------------------------------------------- */

/* Replaces the storage methods of IO (the fixture's raft_io of ND's server) with ND's disk,
 * whose operations take LATENCY ms. Before raft_bootstrap. */
void sim_disk_install(struct node *nd, struct raft_io *io, unsigned latency);
/* Completes every queued disk operation that is due, on the servers that are up. */
void sim_disk_pump(struct sim *s);
/* The last index ND persisted. */
raft_index sim_disk_last(const struct node *nd);
/* Frees what ND persisted, once raft is closed. */
void sim_disk_free(struct node *nd);

/* ---- sim_faults.c --------------------------------------------------------------- */

void sim_faults_sabotage(struct node *nd, uint64_t index);
void sim_faults_shuffle_timeouts(struct sim *s);
void sim_faults_sync_links(struct sim *s);
void sim_faults_inject(struct sim *s);

/* ---- sim_load.c ----------------------------------------------------------------- */

int sim_load_transfer(struct sim *s, unsigned l, unsigned to);
/* Has leader L append one entry of its term (a raft barrier, outside the election barrier
 * bookkeeping). Returns raft_barrier's status. */
int sim_load_entry(struct sim *s, unsigned l);
void sim_load_barriers(struct sim *s);
int sim_load_encode_spec(const struct spec *sp, uint64_t term, int64_t timestamp_us, uint8_t **buf,
                         size_t *len, char *err, size_t errlen);
void sim_load_client(struct sim *s);

/* ---- sim_reads.c ---------------------------------------------------------------- */

/* Gives ND a readindex over raft R whose probes go to its guard's inner io, and hooks its
 * answers into the guard. After rio_guard_init, and again after each restart. */
void sim_reads_init(struct node *nd, struct raft *r);
/* Server I starts a linearizable read now; the record says how it ended (done, status;
 * refused when readindex_read refused it at once). Owned by S, freed by sim_reads_free. */
struct sim_read *sim_reads_issue(struct sim *s, unsigned i);
/* Time for every server's readindex (deadlines, re-sent probes, applied waits). */
void sim_reads_tick(struct sim *s);
/* Sometimes, reads on a server that believes it is the ready leader. */
void sim_reads_client(struct sim *s);
/* Fails server I's pending reads (before a crash closes its raft). */
void sim_reads_stop(struct sim *s, unsigned i);
void sim_reads_free(struct sim *s);

/* ---- sim_checks.c --------------------------------------------------------------- */

void sim_checks_ledger_free(struct ledger *l);
const struct ledger_entry *sim_checks_ledger_get(const struct ledger *l, uint64_t index);
bool sim_checks_result_equal(const struct fsm_result *a, const struct fsm_result *b);
void sim_checks_describe_result(const struct fsm_result *r, char *out, size_t len);
int sim_checks_ledger_note(struct ledger *l, unsigned server, uint64_t index, const uint8_t *buf,
                           size_t len, const uint8_t hash[32], const struct fsm_result *res,
                           char *msg, size_t msglen);
int sim_checks_agreement(struct fsm *const *fsms, unsigned n, const struct ledger *l, char *msg,
                         size_t msglen);
raft_term sim_checks_log_term(const struct raft *r, raft_index index);
unsigned sim_checks_match_claims(struct sim *s);
void sim_checks_commits(struct sim *s);
void sim_checks_unavailable(struct sim *s);
unsigned sim_checks_snapshot_stalls(struct sim *s);
void sim_checks_final(struct sim *s);

#endif
