/*
 * rnode: this node's Raft participant, canonical raft 0.15 over raft_uv, its peers reached
 * through the mutual-TLS transport of peer_tls.c (or, only when the configuration says
 * raft.insecure_plaintext, raft's own plain TCP transport), driving the state machine of
 * fsm.c.
 *
 * The module guards against the known defects of raft 0.15.0 (docs/architecture.md):
 * - a new leader appends no no-op entry and could commit earlier-term entries by counting
 *   replicas (Raft paper, Figure 8; fixed upstream in canonical/raft#336): after winning an
 *   election the leader completes a raft_barrier before rnode_ready() turns true, and the API
 *   serves no write or linearizable read until it does;
 * - fsm->apply's return value is ignored and a failing apply stalls the request: the state
 *   machine never fails, its outcome travels in struct fsm_result;
 * - entries whose length is not a multiple of 8 cannot be reloaded (canonical/raft#189, #304):
 *   the codec pads every entry, and rnode_apply() refuses any other length;
 * - closing with writes in flight frees memory twice: rnode_shutdown() waits until every
 *   appended entry is stored before raft_close().
 *
 * Linearizable reads append nothing to the log: rnode_read_index() confirms leadership with a
 * majority's answers to probes sent after the read arrived (ReadIndex, raft/readindex.h; the
 * probes go to raft_uv, the answers come back through rio_guard's result hook).
 *
 * Everything here runs on the loop thread.
 */
#ifndef CONCLAVE_RNODE_H
#define CONCLAVE_RNODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "raft/fsm.h"

#define RNODE_MAX_MEMBERS 16
#define RNODE_ADDRESS_MAX 64

/* Outcomes of requests, beyond 0 (done). */
#define RNODE_ENOTLEADER (-1) /* not the leader, or not ready yet: nothing was appended */
#define RNODE_EUNKNOWN   (-2) /* appended, but leadership was lost: it may still commit */
#define RNODE_ESHUTDOWN  (-3) /* the node is stopping */
#define RNODE_EINVAL     (-4) /* bad arguments */
#define RNODE_ENOMEM     (-5)
#define RNODE_EBUSY      (-6) /* a membership change or transfer is already running */
#define RNODE_ETIMEDOUT  (-7) /* a linearizable read found no majority (or no apply) in time */

struct rnode_member {
    uint64_t id;
    char address[RNODE_ADDRESS_MAX];
    char http[RNODE_ADDRESS_MAX]; /* the member's HTTP API "IP:PORT", "" when unknown (config
                                     only: raft does not carry it) */
    int role;                     /* RAFT_VOTER, RAFT_STANDBY or RAFT_SPARE */
};

struct rnode_config {
    uint64_t id;
    char address[RNODE_ADDRESS_MAX]; /* "IP:PORT" this node binds and advertises */
    char dir[4096];                  /* raft log and snapshots; created if missing */
    /* The voters a brand-new cluster starts with. A node bootstraps only when its directory
     * is empty and its own id is among them; a node added later starts with none. */
    struct rnode_member bootstrap[RNODE_MAX_MEMBERS];
    unsigned nbootstrap;
    unsigned election_timeout_ms;
    unsigned heartbeat_timeout_ms;
    unsigned install_snapshot_timeout_ms;
    unsigned connect_retry_delay_ms;
    /* Peer authentication (docs/security.md): the cluster's CA and this node's certificate
     * and key, PEM files whose paths are absolute. Required unless insecure_plaintext. */
    char tls_ca_file[1024];
    char tls_cert_file[1024];
    char tls_key_file[1024];
    bool insecure_plaintext; /* raft's plain TCP: anyone reaching the port is a peer */
    unsigned snapshot_threshold;
    unsigned snapshot_trailing;
};

/* What GET /v1/cluster shows. */
struct rnode_info {
    const char *state; /* "leader", "follower", "candidate", "unavailable" */
    bool ready;        /* leader whose post-election barrier completed */
    uint64_t term;
    uint64_t leader_id; /* 0 when unknown */
    char leader_address[RNODE_ADDRESS_MAX];
    uint64_t commit_index;
    uint64_t applied_index;
    uint64_t last_index;
    uint64_t read_rounds;      /* ReadIndex rounds started here (raft/readindex.h), ever */
    uint64_t read_index_reads; /* reads those rounds confirmed and answered, ever */
    struct rnode_member members[RNODE_MAX_MEMBERS];
    unsigned nmembers;
};

struct rnode;

/* STATUS is 0 with RES describing the outcome of the entry at raft index INDEX, or a negative
 * RNODE_E* code (RES NULL, INDEX the index it was appended at or 0). RES is valid only during
 * the call. */
typedef void (*rnode_apply_cb)(void *data, int status, const struct fsm_result *res,
                               uint64_t index);
typedef void (*rnode_done_cb)(void *data, int status);
/* A fatal raft I/O error: the node must stop and exit non-zero. */
typedef void (*rnode_fatal_cb)(void *data, const char *message);

/* Starts raft on LOOP with CONF (copied), applying to FSM (borrowed; must outlive the
 * rnode). FATAL (may be NULL) is called once if raft stops working. On success *OUT is the
 * rnode, released by rnode_shutdown(); on failure *OUT is NULL, ERRMSG says why, and the
 * loop may need one more uv_run() before uv_loop_close(). */
int rnode_start(struct rnode **out, uv_loop_t *loop, const struct rnode_config *conf,
                struct fsm *fsm, rnode_fatal_cb fatal, void *fatal_data, char *errmsg,
                size_t errlen);

/* True when this node leads and its post-election barrier has completed in this term. */
bool rnode_ready(const struct rnode *rn);

/* The state machine (for stale reads on any node). */
const struct fsm *rnode_fsm(const struct rnode *rn);

/* Proposes the encoded entry ENTRY (LEN bytes, a multiple of 8; copied). CB (may be NULL)
 * runs exactly once, never from within this call, unless this call returns non-zero. */
int rnode_apply(struct rnode *rn, const void *entry, size_t len, rnode_apply_cb cb, void *data);

/* The uv_hrtime() at which raft found the entry now being applied committed. Meant for an
 * rnode_apply callback with status 0, which raft 0.15 runs right after applying that entry, in
 * the same call that advanced the commit index: the time is that call's start of applying. */
uint64_t rnode_commit_ns(const struct rnode *rn);

/* Calls CB once every entry committed before this call is applied here, as the leader. One
 * raft barrier serves every request that arrived before it was issued. */
int rnode_barrier(struct rnode *rn, rnode_done_cb cb, void *data);

/* A linearizable read without a log append (ReadIndex, raft/readindex.h): CB(DATA, 0) runs
 * once a majority of the voters confirmed this node's leadership with answers to probes sent
 * after this call, and this node applied everything committed when they were sent; the state
 * machine may then be read. Otherwise CB gets RNODE_ENOTLEADER (leadership moved),
 * RNODE_ETIMEDOUT (no majority within the election timeout), RNODE_ESHUTDOWN or
 * RNODE_ENOMEM. CB runs exactly once, never from within this call, unless this call returns
 * non-zero (RNODE_ENOTLEADER when not the ready leader, RNODE_ESHUTDOWN, RNODE_ENOMEM). One
 * round of probes serves every read queued before it was sent. */
int rnode_read_index(struct rnode *rn, rnode_done_cb cb, void *data);

/* Fills INFO with the current view. Cheap: it does not hash the state (fsm_state_hash() on
 * rnode_fsm() does, in time proportional to the state). */
void rnode_info(struct rnode *rn, struct rnode_info *info);

/* Membership, on the leader only. add: as a spare, then promoted to voter once caught up.
 * CB gets 0 or a RNODE_E* code; ERR (may be "") says more. */
typedef void (*rnode_change_cb)(void *data, int status, const char *err);
int rnode_add_member(struct rnode *rn, uint64_t id, const char *address, rnode_change_cb cb,
                     void *data);
int rnode_remove_member(struct rnode *rn, uint64_t id, rnode_change_cb cb, void *data);
/* Hands leadership to ID (0: the most up-to-date voter). */
int rnode_transfer(struct rnode *rn, uint64_t id, rnode_change_cb cb, void *data);

/* Stops gracefully: refuses new requests, waits (at most a few seconds) until every appended
 * entry is stored, hands leadership over if it leads, closes raft and its I/O, then calls
 * CB(DATA) on the loop. Frees the rnode. */
void rnode_shutdown(struct rnode *rn, void (*cb)(void *data), void *data);

#endif /* CONCLAVE_RNODE_H */
