/* The faults injected before each step, and the divergence planted behind raft's back
 * (sim.h). */
#include <stdlib.h>
#include <string.h>

#include "sim.h"

/* Applies one extra put at INDEX behind raft's back, so that the server diverges (only for
 * the test that proves a sabotaged run fails). */
void sim_faults_sabotage(struct node *nd, uint64_t index)
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

/* The fixture's "random" election timeout is a constant per server, so servers with equal
 * ones would split the vote forever; real raft draws a new one each time. Every second of
 * simulated time each server gets a new one. */
void sim_faults_shuffle_timeouts(struct sim *s)
{
    if (s->f.time - s->last_shuffle < 1000) {
        return;
    }
    s->last_shuffle = s->f.time;
    for (unsigned i = 0; i < s->o.n; i++) {
        raft_fixture_set_randomized_election_timeout(&s->f, i, 1000 + rng_index(&s->rng, 1000));
    }
}

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
void sim_faults_sync_links(struct sim *s)
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

void sim_faults_inject(struct sim *s)
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
            sim_trace(s, "kill server %u (%s)", i,
                      raft_state(sim_raft(s, i)) == RAFT_LEADER ? "leader" : "not leader");
        }
    }
    if (rng_chance(r, c)) {
        i = rng_index(r, s->o.n);
        sim_crash(s, i);
    }
    if (rng_chance(r, c)) {
        /* An asymmetric partition: nobody hears server i, or server i hears nobody. */
        i = rng_index(r, s->o.n);
        bool deaf = rng_chance(r, 500);
        for (j = 0; j < s->o.n; j++) {
            if (j != i) {
                s->cut[deaf ? j : i][deaf ? i : j] = true;
            }
        }
        s->st.partitions++;
        sim_trace(s, "partition: server %u %s", i, deaf ? "hears nobody" : "is heard by nobody");
    }
    if (rng_chance(r, 8)) {
        i = rng_index(r, s->o.n);
        if (!s->alive[i]) {
            raft_fixture_revive(&s->f, i);
            s->alive[i] = true;
            sim_trace(s, "revive server %u", i);
        }
    }
    if (rng_chance(r, 2 * c)) {
        other_pair(s, &i, &j);
        s->cut[i][j] = true;
        if (rng_chance(r, 600)) {
            s->cut[j][i] = true;
        }
        s->st.cuts++;
        sim_trace(s, "cut link %u->%u%s", i, j, s->cut[j][i] ? " and back" : "");
    }
    if (rng_chance(r, 6)) {
        other_pair(s, &i, &j);
        if (s->cut[i][j] || s->cut[j][i]) {
            s->cut[i][j] = s->cut[j][i] = false;
            sim_trace(s, "heal link %u<->%u", i, j);
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
        s->nodes[i].disk.latency = 1 + rng_index(r, 30);
    }
    if (rng_chance(r, c)) {
        other_pair(s, &i, &j);
        struct raft *l = sim_raft(s, i);
        if (s->alive[i] && l->state == RAFT_LEADER && l->transfer == NULL) {
            (void)sim_load_transfer(s, i, j);
        }
    }
    sim_faults_shuffle_timeouts(s);
    sim_faults_sync_links(s);
}
