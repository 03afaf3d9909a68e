/* The client load: proposals as a client and the leader's early checks shape them, retries
 * of writes whose outcome is unknown, leadership transfers, and the barrier a new leader
 * commits before it takes writes (sim.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"

static const char *const projects[N_PROJECTS] = {"alpha", "beta-2"};
static const char *const keys[N_KEYS] = {"k0", "db.url", "feature:x", "_k3", "k-4"};

static void apply_done(struct raft_apply *req, int status, void *result)
{
    struct prop *p = req->data;
    struct sim *s = p->sim;
    p->done = true;
    p->status = status;
    s->inflight[p->server]--;
    if (status != 0) {
        sim_trace(s, "proposal at index %llu on server %u: status %d (%s)",
                  (unsigned long long)p->index, p->server, status, raft_strerror(status));
        return;
    }
    p->result = *(const struct fsm_result *)result;
    s->st.acked++;
    if (req->index != p->index) {
        sim_fail(s, "apply callback reports index %llu for a proposal appended at %llu",
                 (unsigned long long)req->index, (unsigned long long)p->index);
    }
    const struct ledger_entry *e = sim_checks_ledger_get(&s->ledger, p->index);
    if (e == NULL || e->len != p->len || memcmp(e->bytes, p->bytes, p->len) != 0) {
        sim_fail(s, "server %u acknowledged index %llu but another entry was applied there",
                 p->server, (unsigned long long)p->index);
    } else if (!sim_checks_result_equal(&e->result, &p->result)) {
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
        readindex_ready(&nd->ri, p->term);
        sim_trace(s, "server %u leads term %llu and is ready", p->server,
                  (unsigned long long)p->term);
    }
}

static void transfer_done(struct raft_transfer *req)
{
    struct prop *p = req->data;
    p->done = true;
}

static struct prop *new_prop(struct sim *s, enum prop_kind kind, unsigned server);

static void entry_done(struct raft_barrier *req, int status)
{
    struct prop *p = req->data;
    p->done = true;
    p->status = status;
}

int sim_load_entry(struct sim *s, unsigned l)
{
    struct prop *p = new_prop(s, PROP_BARRIER, l);
    int rv = raft_barrier(sim_raft(s, l), &p->barrier, entry_done);
    if (rv != 0) {
        p->done = true;
        return rv;
    }
    p->index = p->barrier.index;
    sim_trace(s, "server %u appends an entry at index %llu in term %llu", l,
              (unsigned long long)p->index, (unsigned long long)p->term);
    return 0;
}

/* Asks leader L to hand leadership to server TO. Returns 0 when raft accepted. */
int sim_load_transfer(struct sim *s, unsigned l, unsigned to)
{
    struct prop *p = new_prop(s, PROP_TRANSFER, l);
    int rv = raft_transfer(sim_raft(s, l), &p->transfer, sim_raft(s, to)->id, transfer_done);
    if (rv != 0) {
        p->done = true;
        return rv;
    }
    s->st.transfers++;
    sim_trace(s, "server %u transfers leadership to server %u", l, to);
    return 0;
}

static struct prop *new_prop(struct sim *s, enum prop_kind kind, unsigned server)
{
    struct prop *p = sim_xcalloc(1, sizeof(*p));
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
void sim_load_barriers(struct sim *s)
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

int sim_load_encode_spec(const struct spec *sp, uint64_t term, int64_t timestamp_us, uint8_t **buf,
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
    if (sim_load_encode_spec(sp, r->current_term, ts, &bytes, &len, err, sizeof(err)) != 0) {
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
    sim_trace(
        s, "server %u proposes %s %s/%s expected %llu rid '%s' at index %llu", leader,
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

void sim_load_client(struct sim *s)
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
