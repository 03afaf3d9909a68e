/* readindex: linearizable reads confirmed by a quorum of probe answers (readindex.h).
 *
 * Invariants:
 * - ri->round.active only while its probes may still confirm it: raft led in round.term when
 *   it started and each later check; it is cleared before any of its callbacks run;
 * - a read is in exactly one place until its callback runs: ri->queued, round.waiters, or a
 *   batch of ri->applying; every one of those is answered exactly once (served, failed or
 *   stopped);
 * - round.acks counts distinct voters of round.voters whose answer carried round.nonce and
 *   round.term, plus the leader itself when it is a voter; no answer of another round is
 *   counted, since round numbers never repeat. */
#include "raft/readindex.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct readindex_waiter {
    struct readindex_waiter *next;
    readindex_cb cb;
    void *data;
};

/* A confirmed round's reads, waiting for raft to apply up to read_index. */
struct readindex_batch {
    struct readindex_batch *next;
    raft_index read_index;
    raft_time confirmed_at;
    struct readindex_waiter *waiters;
};

/* A probe handed to the inner io; it frees itself when the io answers it, whatever became of
 * the readindex meanwhile. */
struct readindex_probe {
    struct raft_io_send req;
};

static raft_time now_of(const struct readindex *ri)
{
    return ri->inner->time(ri->inner);
}

static bool leads_in(const struct readindex *ri, raft_term term)
{
    return ri->raft->state == RAFT_LEADER && ri->raft->current_term == term;
}

/* Answers every read of the list W (oldest first) with STATUS and frees it. */
static void notify(struct readindex *ri, struct readindex_waiter *w, int status)
{
    ri->notifying++;
    while (w != NULL) { /* bounded: each pass frees one */
        struct readindex_waiter *next = w->next;
        if (status == 0) {
            ri->reads_served++;
        } else {
            ri->reads_failed++;
        }
        w->cb(w->data, status);
        free(w);
        w = next;
    }
    ri->notifying--;
}

static void fail_round(struct readindex *ri, int status)
{
    struct readindex_waiter *w = ri->round.waiters;
    memset(&ri->round, 0, sizeof(ri->round));
    notify(ri, w, status);
}

static void probe_sent(struct raft_io_send *req, int status)
{
    (void)status; /* a lost probe is re-sent by the next tick, or the round times out */
    free(req->data);
}

static void send_probe(struct readindex *ri, raft_id id)
{
    const struct raft_configuration *c = &ri->raft->configuration;
    const char *address = NULL;
    for (unsigned i = 0; i < c->n; i++) {
        if (c->servers[i].id == id) {
            address = c->servers[i].address;
        }
    }
    if (address == NULL) {
        return; /* removed meanwhile: it cannot answer, the others may still suffice */
    }
    struct readindex_probe *p = calloc(1, sizeof(*p));
    if (p == NULL) {
        return; /* re-sent at the next tick, or the round times out */
    }
    struct raft_message m;
    memset(&m, 0, sizeof(m));
    m.type = RAFT_IO_APPEND_ENTRIES;
    m.server_id = id;
    m.server_address = address;
    m.append_entries.term = ri->round.term;
    m.append_entries.prev_log_index = ri->round.nonce;
    m.append_entries.prev_log_term = ri->round.term;
    m.append_entries.leader_commit = 0; /* raises nothing, even if it were looked at */
    m.append_entries.entries = NULL;
    m.append_entries.n_entries = 0;
    p->req.data = p;
    /* raft_uv encodes the message before returning and the fixture copies it, so the message
     * on the stack is enough; the request lives until probe_sent. */
    if (ri->inner->send(ri->inner, &p->req, &m, probe_sent) != 0) {
        free(p);
        return;
    }
    ri->probes++;
}

static void send_unconfirmed(struct readindex *ri)
{
    ri->round.last_send = now_of(ri);
    for (unsigned i = 0; i < ri->round.n_voters; i++) {
        if (!ri->round.confirmed[i]) {
            send_probe(ri, ri->round.voters[i]);
        }
    }
}

/* Answers the confirmed batches raft has applied far enough, and fails those that waited too
 * long. Batches are confirmed in order with non-decreasing read indexes. */
static void serve_applied(struct readindex *ri)
{
    raft_time now = now_of(ri);
    while (ri->applying != NULL) { /* bounded: each pass removes one batch */
        struct readindex_batch *b = ri->applying;
        int status;
        if (raft_last_applied(ri->raft) >= b->read_index) {
            status = 0;
        } else if (now - b->confirmed_at >= ri->timeout_ms) {
            status = READINDEX_ETIMEDOUT;
        } else {
            return;
        }
        ri->applying = b->next;
        struct readindex_waiter *w = b->waiters;
        free(b);
        notify(ri, w, status);
    }
}

static void confirm_round(struct readindex *ri)
{
    struct readindex_batch *b = calloc(1, sizeof(*b));
    if (b == NULL) {
        fail_round(ri, READINDEX_ENOMEM);
        return;
    }
    b->read_index = ri->round.read_index;
    b->confirmed_at = now_of(ri);
    b->waiters = ri->round.waiters;
    memset(&ri->round, 0, sizeof(ri->round));
    ri->confirmed_rounds++;
    struct readindex_batch **tail = &ri->applying;
    while (*tail != NULL) { /* bounded: at most one batch per round still waiting */
        tail = &(*tail)->next;
    }
    *tail = b;
    serve_applied(ri);
}

static void start_round(struct readindex *ri)
{
    struct readindex_waiter *w = ri->queued;
    ri->queued = ri->queued_tail = NULL;
    struct raft *r = ri->raft;
    if (ri->ready_term == 0 || !leads_in(ri, ri->ready_term)) {
        notify(ri, w, READINDEX_ENOTLEADER);
        return;
    }
    struct readindex_round *rd = &ri->round;
    memset(rd, 0, sizeof(*rd));
    unsigned total = 0;
    bool self_voter = false;
    for (unsigned i = 0; i < r->configuration.n; i++) {
        const struct raft_server *s = &r->configuration.servers[i];
        if (s->role != RAFT_VOTER) {
            continue;
        }
        total++;
        if (s->id == r->id) {
            self_voter = true;
        } else if (rd->n_voters < READINDEX_MAX_VOTERS) {
            rd->voters[rd->n_voters++] = s->id;
        }
    }
    if (total > READINDEX_MAX_VOTERS + 1) {
        /* More voters than a round tracks (rnode allows 16 members): refuse rather than count
         * a majority of a subset. */
        notify(ri, w, READINDEX_ENOTLEADER);
        return;
    }
    rd->active = true;
    rd->nonce = READINDEX_PROBE_BIT | (++ri->next_number & (READINDEX_PROBE_BIT - 1));
    rd->term = r->current_term;
    rd->read_index = r->commit_index;
    rd->started = now_of(ri);
    rd->needed = total / 2 + 1;
    rd->acks = self_voter ? 1 : 0;
    rd->waiters = w;
    ri->rounds++;
    if (rd->acks >= rd->needed) {
        confirm_round(ri); /* a one-voter cluster: the leader alone is the majority */
        return;
    }
    send_unconfirmed(ri);
}

/* Starts the next round when reads are queued and none is in flight, unless callbacks are
 * running (the outermost call finishes the job). */
static void kick(struct readindex *ri)
{
    while (ri->notifying == 0 && !ri->round.active && ri->queued != NULL && !ri->stopped) {
        start_round(ri); /* bounded: each pass empties the queue; callbacks may refill it */
    }
}

int readindex_init(struct readindex *ri, struct raft *raft, struct raft_io *inner,
                   unsigned timeout_ms, unsigned resend_ms, char *errmsg, size_t errlen)
{
    if (raft == NULL || inner == NULL || inner->send == NULL || inner->time == NULL) {
        snprintf(errmsg, errlen, "readindex: raft and an initialized inner raft_io are required");
        return -1;
    }
    if (timeout_ms == 0 || resend_ms == 0) {
        snprintf(errmsg, errlen,
                 "readindex: timeout (%u ms) and resend interval (%u ms) must be "
                 "positive",
                 timeout_ms, resend_ms);
        return -1;
    }
    memset(ri, 0, sizeof(*ri));
    ri->raft = raft;
    ri->inner = inner;
    ri->timeout_ms = timeout_ms;
    ri->resend_ms = resend_ms;
    return 0;
}

void readindex_ready(struct readindex *ri, raft_term term)
{
    ri->ready_term = term;
}

int readindex_read(struct readindex *ri, readindex_cb cb, void *data)
{
    if (ri->stopped) {
        return READINDEX_ESHUTDOWN;
    }
    if (ri->ready_term == 0 || !leads_in(ri, ri->ready_term)) {
        return READINDEX_ENOTLEADER;
    }
    struct readindex_waiter *w = calloc(1, sizeof(*w));
    if (w == NULL) {
        return READINDEX_ENOMEM;
    }
    w->cb = cb;
    w->data = data;
    if (ri->queued_tail != NULL) {
        ri->queued_tail->next = w;
    } else {
        ri->queued = w;
    }
    ri->queued_tail = w;
    /* A round in flight sent its probes before this read arrived: it waits for the next. A
     * round that could end at once (a single voter, or more voters than a round tracks) is
     * left to the next tick, so that the callback never runs from within this call. */
    if (!ri->round.active && ri->notifying == 0) {
        unsigned total = 0;
        const struct raft_configuration *c = &ri->raft->configuration;
        for (unsigned i = 0; i < c->n; i++) {
            total += c->servers[i].role == RAFT_VOTER ? 1u : 0u;
        }
        if (total >= 2 && total <= READINDEX_MAX_VOTERS + 1) {
            kick(ri); /* needs at least two confirmations, and the leader gives one at most */
        }
    }
    return 0;
}

bool readindex_recv(struct readindex *ri, const struct raft_message *m)
{
    if (m->type != RAFT_IO_APPEND_ENTRIES_RESULT ||
        (m->append_entries_result.rejected & READINDEX_PROBE_BIT) == 0) {
        return false;
    }
    struct readindex_round *rd = &ri->round;
    if (!rd->active || m->append_entries_result.rejected != rd->nonce) {
        return true; /* an earlier round's answer, or one after it ended: proves nothing now */
    }
    if (m->append_entries_result.term > rd->term) {
        fail_round(ri, READINDEX_ENOTLEADER); /* a voter is past this term: a newer leader may
                                                 exist */
        kick(ri);
        return true;
    }
    if (m->append_entries_result.term != rd->term) {
        return true; /* raft 0.15 answers in at least the probe's term; ignore anything else */
    }
    for (unsigned i = 0; i < rd->n_voters; i++) {
        if (rd->voters[i] == m->server_id && !rd->confirmed[i]) {
            rd->confirmed[i] = true;
            rd->acks++;
        }
    }
    if (rd->acks >= rd->needed) {
        if (leads_in(ri, rd->term)) {
            confirm_round(ri);
        } else {
            fail_round(ri, READINDEX_ENOTLEADER);
        }
    }
    kick(ri);
    return true;
}

void readindex_tick(struct readindex *ri)
{
    if (ri->stopped) {
        return;
    }
    struct readindex_round *rd = &ri->round;
    raft_time now = now_of(ri);
    if (rd->active) {
        if (!leads_in(ri, rd->term)) {
            fail_round(ri, READINDEX_ENOTLEADER);
        } else if (now - rd->started >= ri->timeout_ms) {
            fail_round(ri, READINDEX_ETIMEDOUT);
        } else if (now - rd->last_send >= ri->resend_ms) {
            send_unconfirmed(ri);
        }
    }
    serve_applied(ri);
    kick(ri);
}

void readindex_stop(struct readindex *ri, int status)
{
    ri->stopped = true;
    if (ri->round.active) {
        fail_round(ri, status);
    }
    while (ri->applying != NULL) { /* bounded: each pass removes one batch */
        struct readindex_batch *b = ri->applying;
        ri->applying = b->next;
        struct readindex_waiter *w = b->waiters;
        free(b);
        notify(ri, w, status);
    }
    struct readindex_waiter *w = ri->queued;
    ri->queued = ri->queued_tail = NULL;
    notify(ri, w, status);
}
