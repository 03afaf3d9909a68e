/* Linearizable reads through ReadIndex (raft/readindex.c), as rnode runs them: each server has
 * a readindex whose probes go to the simulated io and whose answers come back through its
 * rio_guard's result hook; the client reads from any server that believes it is the ready
 * leader, a stale one cut off from the majority included (sim.h).
 *
 * The check: a read answered with success must see every entry that any server knew to be
 * committed when the read arrived; that is, the serving server has applied at least that far
 * when it answers (what it applied is checked against the ledger elsewhere). A leader that
 * served without a quorum's confirmation would fail it as soon as a newer leader committed
 * past it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"

#define READ_TIMEOUT_MS 1000 /* the fixture's election timeout, as rnode uses its own */
#define READ_RESEND_MS  100  /* the fixture's heartbeat */

static bool result_hook(void *data, const struct raft_message *m)
{
    struct node *nd = data;
    return readindex_recv(&nd->ri, m);
}

void sim_reads_init(struct node *nd, struct raft *r)
{
    char err[256];
    nd->sim->st.read_rounds += nd->ri.rounds; /* a restart starts counting anew */
    if (readindex_init(&nd->ri, r, nd->guard.inner, READ_TIMEOUT_MS, READ_RESEND_MS, err,
                       sizeof(err)) != 0) {
        fprintf(stderr, "test_raft_sim: %s\n", err);
        abort();
    }
    nd->guard.result_hook = result_hook;
    nd->guard.result_hook_data = nd;
}

/* The highest index any server knows to be committed now, or ever knew (a crash forgets). */
static raft_index known_committed(struct sim *s)
{
    raft_index k = s->max_committed;
    for (unsigned i = 0; i < s->o.n; i++) {
        raft_index c = sim_raft(s, i)->commit_index;
        k = c > k ? c : k;
    }
    return k;
}

static void read_done(void *data, int status)
{
    struct sim_read *rd = data;
    struct sim *s = rd->sim;
    rd->done = true;
    rd->status = status;
    if (status != 0) {
        s->st.reads_failed++;
        s->st.reads_failed_by[status == READINDEX_ENOTLEADER  ? 0
                              : status == READINDEX_ETIMEDOUT ? 1
                                                              : 2]++;
        sim_trace(s, "read %lu on server %u (term %llu) failed: %d", rd->id, rd->server,
                  (unsigned long long)rd->term, status);
        return;
    }
    s->st.reads_served++;
    struct raft *r = sim_raft(s, rd->server);
    raft_index applied = raft_last_applied(r);
    sim_trace(s,
              "read %lu on server %u (term %llu) served at applied index %llu (committed "
              "when it arrived: %llu)",
              rd->id, rd->server, (unsigned long long)rd->term, (unsigned long long)applied,
              (unsigned long long)rd->committed);
    if (applied < rd->committed) {
        sim_fail(s,
                 "server %u (term %llu) served linearizable read %lu at applied index %llu, but "
                 "index %llu was committed before the read arrived (a stale read)",
                 rd->server, (unsigned long long)rd->term, rd->id, (unsigned long long)applied,
                 (unsigned long long)rd->committed);
    }
}

struct sim_read *sim_reads_issue(struct sim *s, unsigned i)
{
    struct sim_read *rd = sim_xcalloc(1, sizeof(*rd));
    rd->sim = s;
    rd->server = i;
    rd->id = ++s->read_ids;
    rd->term = sim_raft(s, i)->current_term;
    rd->committed = known_committed(s);
    rd->next = s->reads;
    s->reads = rd;
    int rv = readindex_read(&s->nodes[i].ri, read_done, rd);
    if (rv != 0) {
        rd->done = true;
        rd->status = rv;
        rd->refused = true;
        return rd;
    }
    sim_trace(s, "read %lu arrives at server %u (term %llu), index %llu committed", rd->id, i,
              (unsigned long long)rd->term, (unsigned long long)rd->committed);
    return rd;
}

void sim_reads_tick(struct sim *s)
{
    if (s->o.unguarded) {
        return;
    }
    for (unsigned i = 0; i < s->o.n; i++) {
        readindex_tick(&s->nodes[i].ri);
    }
}

void sim_reads_client(struct sim *s)
{
    if (s->o.unguarded || s->o.raw || !rng_chance(&s->rng, 200)) {
        return;
    }
    /* Any server that believes it is the ready leader: clients do not know better. */
    unsigned cand[MAX_NODES], nc = 0;
    for (unsigned i = 0; i < s->o.n; i++) {
        struct raft *r = sim_raft(s, i);
        if (s->alive[i] && r->state == RAFT_LEADER && s->nodes[i].ready_term == r->current_term) {
            cand[nc++] = i;
        }
    }
    if (nc == 0) {
        return;
    }
    unsigned i = cand[rng_index(&s->rng, nc)];
    unsigned count = 1 + rng_index(&s->rng, 3);
    for (unsigned k = 0; k < count; k++) {
        (void)sim_reads_issue(s, i);
    }
}

void sim_reads_stop(struct sim *s, unsigned i)
{
    if (!s->o.unguarded) {
        readindex_stop(&s->nodes[i].ri, READINDEX_ESHUTDOWN);
    }
    if (s->closing) {
        s->st.read_rounds += s->nodes[i].ri.rounds;
    }
}

void sim_reads_free(struct sim *s)
{
    while (s->reads != NULL) {
        struct sim_read *rd = s->reads;
        s->reads = rd->next;
        free(rd);
    }
}
