/*
 * readindex: linearizable reads without a log append (Raft thesis §6.4, "ReadIndex"), in our
 * layer, since raft 0.15 has no API for it.
 *
 * A leader that has committed an entry of its current term (rnode's election barrier; the
 * owner says so with readindex_ready()) serves a batch of reads this way:
 * 1. read_index := raft's commit index, recorded when the round starts;
 * 2. every other voter of the configuration gets a probe of its own: an AppendEntries in the
 *    leader's term with no entries, leader_commit 0, and prev_log_index = READINDEX_PROBE_BIT |
 *    round number, an index no log holds. A raft 0.15 follower rejects an AppendEntries whose
 *    previous entry it lacks before touching its log or commit index, and its rejection echoes
 *    prev_log_index in `rejected` with its current term; so every answer names exactly one
 *    round. Probes to voters that have not answered are re-sent every resend_ms with the same
 *    round number (every copy is sent after the round started);
 * 3. the answers never reach raft (rio_guard's recv hook hands them here and drops them). A
 *    voter confirms when its answer carries the round's term; an answer with a higher term
 *    fails the round. The leader counts itself when it is a voter. A majority of the voters
 *    confirms the round, provided raft still leads in that term;
 * 4. the reads of a confirmed round are answered once raft's applied index reaches read_index.
 *
 * Why that is linearizable without any clock (no lease): a write acknowledged before a read
 * arrived was committed by a leader of term T' at an index I'. If T' <= T (the round's term),
 * I' <= read_index: the leader of T holds every entry committed before its term, its own-term
 * entry is committed above them, and within T only this leader commits. If T' > T, a majority
 * had current_term >= T' before the read arrived; the confirming majority answered with term
 * T after the read arrived (the probe was sent after it), and terms never go back, so the two
 * majorities cannot intersect: impossible.
 *
 * Batching: a read joins the queue; a round takes every read queued when it starts and starts
 * when none is in flight. A read that arrives while a round is in flight waits for the next
 * one, since the probes already sent predate it.
 *
 * Failure, always bounded: the round fails its reads with READINDEX_ENOTLEADER when raft no
 * longer leads in the round's term or an answer has a higher term, READINDEX_ETIMEDOUT when no
 * majority answered within timeout_ms (or a confirmed round is not applied within it), and
 * with the status given to readindex_stop() at shutdown.
 *
 * Everything runs on the thread that runs raft (the loop thread in the node). The time is the
 * inner io's (raft_uv's loop time, the fixture's simulated time).
 */
#ifndef CONCLAVE_READINDEX_H
#define CONCLAVE_READINDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <raft.h>

/* Marks a probe's prev_log_index (and so the rejection answering it); no raft log reaches it. */
#define READINDEX_PROBE_BIT  ((raft_index)1 << 62)
#define READINDEX_MAX_VOTERS 16

/* Outcomes of a read, beyond 0 (confirmed and applied). The values are rnode's (rnode.c checks
 * it), so that rnode hands them on unchanged. */
#define READINDEX_ENOTLEADER (-1) /* not the ready leader, or leadership moved during the round */
#define READINDEX_ESHUTDOWN  (-3) /* readindex_stop() */
#define READINDEX_ENOMEM     (-5)
#define READINDEX_ETIMEDOUT  (-7) /* no majority, or no apply, within timeout_ms */

typedef void (*readindex_cb)(void *data, int status);

struct readindex_waiter;
struct readindex_batch;

struct readindex_round {
    bool active;
    raft_index nonce; /* READINDEX_PROBE_BIT | number */
    raft_term term;
    raft_index read_index;
    raft_time started, last_send;
    raft_id voters[READINDEX_MAX_VOTERS]; /* the other voters, when the round started */
    bool confirmed[READINDEX_MAX_VOTERS];
    unsigned n_voters;
    unsigned acks;                    /* confirmations so far, the leader's own included */
    unsigned needed;                  /* a majority of all voters */
    struct readindex_waiter *waiters; /* the reads this round serves, oldest first */
};

struct readindex {
    struct raft *raft;     /* borrowed: public fields only (state, term, commit, configuration) */
    struct raft_io *inner; /* borrowed: probes go here, past rio_guard */
    unsigned timeout_ms;
    unsigned resend_ms;
    raft_term ready_term; /* the term whose own entry raft committed (readindex_ready) */
    uint64_t next_number;
    struct readindex_round round;
    struct readindex_waiter *queued, *queued_tail; /* arrived, for the next round */
    struct readindex_batch *applying;              /* confirmed, waiting for the apply */
    unsigned notifying; /* >0 while callbacks run: new reads queue, no round starts */
    bool stopped;
    /* Counters (never reset): rounds started, probes sent, rounds confirmed, reads answered
     * with 0, reads failed. */
    uint64_t rounds, probes, confirmed_rounds, reads_served, reads_failed;
};

/* Sets RI up for RAFT (borrowed; only its public fields are read) whose real io is INNER
 * (borrowed; probes are sent through it). TIMEOUT_MS > 0 bounds a round and an apply wait,
 * RESEND_MS > 0 paces re-sent probes. Returns 0, or -1 with ERRMSG filled. Allocates nothing. */
int readindex_init(struct readindex *ri, struct raft *raft, struct raft_io *inner,
                   unsigned timeout_ms, unsigned resend_ms, char *errmsg, size_t errlen);

/* TERM is a term in which raft, leading, committed an entry of its own: rounds may start in
 * it (rnode calls this when its election barrier completes). */
void readindex_ready(struct readindex *ri, raft_term term);

/* Queues a read: CB(DATA, status) runs exactly once, never from within this call, unless this
 * call returns non-zero (READINDEX_ENOTLEADER when raft does not lead in a ready term,
 * READINDEX_ESHUTDOWN after readindex_stop, READINDEX_ENOMEM). */
int readindex_read(struct readindex *ri, readindex_cb cb, void *data);

/* Every message raft's io received, before raft sees it. Returns true for a probe's answer
 * (which owns no memory; raft must not see it), false for anything else. */
bool readindex_recv(struct readindex *ri, const struct raft_message *m);

/* Time passes: checks leadership, the round's deadline, re-sends probes, answers confirmed
 * reads that are applied and starts a round for queued reads. Call it often (rnode: every
 * 10 ms; the simulation: every step). */
void readindex_tick(struct readindex *ri);

/* Fails every queued and in-flight read with STATUS and refuses new ones. Probes already sent
 * free themselves when the io answers them. */
void readindex_stop(struct readindex *ri, int status);

#endif
