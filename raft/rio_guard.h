/*
 * rio_guard: a struct raft_io of ours between raft 0.15 and its real io (raft_uv in the node,
 * the simulated io in tests/sim), closing raft 0.15's false match claim.
 *
 * The defect: a follower that accepts an AppendEntries answers with its last *stored* index
 * (raft 0.15 recv_append_entries.c, replication.c), which may include an old uncommitted tail
 * beyond what that AppendEntries checked; the leader then counts the follower as holding
 * entries it does not hold. Later canonical/raft answers min(prev_log_index + n_entries,
 * last_stored). The guard enforces the same bound from outside raft: every accepted
 * AppendEntries result raft sends (rejected == 0) has its last_log_index capped at
 * - the highest index the AppendEntries (or InstallSnapshot) it answers vouched for, that is
 *   prev_log_index + n_entries (last_index for a snapshot), provided the result goes to the
 *   sender of that message and carries its term; and
 * - the highest index up to which the guard saw the log persisted (appends completed,
 *   truncations and snapshot installs accounted for as they are submitted).
 * A result the guard cannot tie to such a message claims nothing (last_log_index 0, which a
 * raft 0.15 leader ignores on success) and is counted as unvouched.
 *
 * How a result is tied to the message it answers: raft 0.15 answers an AppendEntries either
 * synchronously, inside the recv callback, or from the callback of the append it submitted
 * while handling it; an InstallSnapshot from the callback of its snapshot_put (trailing 0).
 * The guard wraps recv, append and snapshot_put, and keeps "the message being answered" as a
 * context while each of them runs.
 *
 * Third defect, commits nobody vouched for: raft 0.15 lets a follower commit up to its own last
 * index, past what the AppendEntries proved; the guard lowers each AppendEntries' leader_commit
 * to prev_log_index + n_entries (rio_guard_bound_commit in rio_guard.c).
 *
 * Second defect, a stall: raft 0.15 rejects an AppendEntries whose previous entry it compacted
 * into its snapshot, so a leader whose view of a follower is older than the follower's
 * snapshot cannot bring it back until the leader snapshots past it. The guard answers such a
 * message as a match at the snapshot's last index (rio_guard_rebase in rio_guard.c says why
 * that is sound).
 *
 * Requires: raft 0.15 appends to its in-memory log before calling append, so the entries of
 * an append are raft's last N (raft_last_index() - N + 1 is the first one's index).
 */
#ifndef CONCLAVE_RIO_GUARD_H
#define CONCLAVE_RIO_GUARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <raft.h>

/* The message whose answer raft may be sending right now. */
struct rio_guard_ctx {
    bool active;
    raft_id from;     /* its sender */
    raft_term term;   /* its term */
    raft_index vouch; /* the index up to which accepting it proves the log matches */
};

struct rio_guard_req; /* a wrapped append or snapshot_put (rio_guard.c) */

struct rio_guard {
    struct raft_io io;     /* what raft_init() takes; io.impl points here */
    struct raft_io *inner; /* borrowed: the real io, started and closed through the guard */
    raft_io_recv_cb recv;  /* raft's */
    raft_io_close_cb close_cb;
    struct rio_guard_ctx ctx;
    raft_index persisted;          /* the log is durable up to here (entries or snapshot) */
    raft_index snap;               /* index of the newest persisted snapshot, 0: none */
    struct rio_guard_req *pending; /* submitted to the inner io, not yet answered */
    uint64_t capped;               /* results whose last_log_index was lowered */
    uint64_t unvouched;            /* accepted results tied to no message: claimed nothing */
    /* AppendEntries whose previous entry was compacted, answered at the snapshot */
    uint64_t rebased;
    /* AppendEntries whose leader_commit was lowered to the last index they prove */
    uint64_t commit_bounded;
    /* Tests only (tests/sim): true skips that lowering, to show raft 0.15's defect. */
    bool keep_leader_commit;
    /* Optional (NULL: none), set after rio_guard_init: sees every AppendEntries result before
     * raft does; one it returns true for is dropped (such a result owns no memory). The
     * leader's ReadIndex takes the answers to its probes here (raft/readindex.h). */
    bool (*result_hook)(void *data, const struct raft_message *m);
    void *result_hook_data;
};

/* Makes G's io forward to INNER (initialized, not yet given to raft_init). Returns 0, or -1
 * with ERRMSG filled. */
int rio_guard_init(struct rio_guard *g, struct raft_io *inner, char *errmsg, size_t errlen);

#endif
