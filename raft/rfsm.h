/*
 * rfsm: the state machine of fsm.c seen through canonical raft's struct raft_fsm.
 *
 * Shared by the node (rnode.c) and the deterministic simulation tests, which drive the same
 * adapter under raft's fixture. raft 0.15 ignores apply's return value and stalls the request
 * when it is non-zero, so apply always returns 0 and the outcome travels in the result slot.
 */
#ifndef CONCLAVE_RFSM_H
#define CONCLAVE_RFSM_H

#include <raft.h>

#include "raft/fsm.h"

struct rfsm {
    struct raft_fsm raft_fsm; /* what raft_init() takes */
    struct fsm *fsm;          /* borrowed */
    struct raft *raft;        /* borrowed: tells the index of the entry being applied */
    struct fsm_result result; /* the last apply's outcome; raft hands a pointer to it to the
                                 request's callback right after apply, and to nobody on
                                 followers, so nothing is allocated per entry */
    /* Set when apply ran out of memory: the node must stop. From then on apply refuses every
     * entry (FSM_STOPPED) and snapshot fails, so the state machine never holds an entry
     * after the one it missed, and no snapshot records raft's index past it. */
    int fatal;
    /* Failpoint: the CONCLAVE_FAILPOINT_FSM_OOM-th apply (1-based, counting every entry
     * raft hands to apply) fails as if out of memory; 0 = off. Read once by rfsm_init(). */
    uint64_t oom_at;
    uint64_t applies;
    /* When raft found the entries being applied committed, for the write phase metrics:
     * raft 0.15 advances its commit index and applies every newly committed entry in one call
     * (replicationQuorum, then replicationApply), so the first apply past commit_last marks
     * the commit of a new run of entries. commit_ns is uv_hrtime() then; commit_last the
     * commit index it covers. Metrics only: the state machine never sees them. */
    uint64_t commit_ns;
    uint64_t commit_last;
    /* The snapshot view between snapshot and snapshot_finalize (fsm version 3), or NULL. */
    struct fsm_view *view;
};

/* Prepares A to apply to FSM for RAFT. Pass &A->raft_fsm to raft_init(). Snapshots are
 * synchronous (fsm version 1) until rfsm_async_snapshots(). */
void rfsm_init(struct rfsm *a, struct fsm *fsm, struct raft *raft);

/* Makes A's snapshots asynchronous (raft_fsm version 3): snapshot only freezes a
 * copy-on-write view of the state on the loop thread (fsm_view_take(): cost proportional to
 * the config chunks, not the keys or bytes), snapshot_async serialises the view and computes
 * the state hash and checksum on a worker thread (raft's io->async_work), snapshot_finalize
 * frees the buffer and releases the view on the loop. Why: serialising and hashing a large
 * state held the loop for seconds at 1M keys (docs/architecture.md).
 * Requires an io of version 2 or later with async_work (raft_uv's; the simulation's disk);
 * call it after rfsm_init() and before raft takes a snapshot. */
void rfsm_async_snapshots(struct rfsm *a);

#endif /* CONCLAVE_RFSM_H */
