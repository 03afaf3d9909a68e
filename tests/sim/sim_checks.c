/* The checks: the ledger of what each server applied at each raft index, the agreement of
 * the final states, raft's own safety (commits, leaders, match claims, shutdowns), the known
 * raft 0.15 stalls, and the end-of-run checks of acknowledged writes and retries (sim.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"

/* ---- the ledger: what was applied at each raft index ------------------------ */

void sim_checks_ledger_free(struct ledger *l)
{
    for (size_t i = 0; i < l->cap; i++) {
        free(l->e[i].bytes);
    }
    free(l->e);
    l->e = NULL;
    l->cap = 0;
}

const struct ledger_entry *sim_checks_ledger_get(const struct ledger *l, uint64_t index)
{
    if (index >= l->cap || !l->e[index].present) {
        return NULL;
    }
    return &l->e[index];
}

bool sim_checks_result_equal(const struct fsm_result *a, const struct fsm_result *b)
{
    return a->status == b->status && a->op == b->op && a->version == b->version &&
           a->revision == b->revision && a->first_status == b->first_status &&
           a->first_index == b->first_index && a->mismatch == b->mismatch &&
           a->trimmed == b->trimmed && a->limit == b->limit && strcmp(a->message, b->message) == 0;
}

void sim_checks_describe_result(const struct fsm_result *r, char *out, size_t len)
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
int sim_checks_ledger_note(struct ledger *l, unsigned server, uint64_t index, const uint8_t *buf,
                           size_t len, const uint8_t hash[32], const struct fsm_result *res,
                           char *msg, size_t msglen)
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
        e->bytes = sim_xcalloc(1, len == 0 ? 1 : len);
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
    if (!sim_checks_result_equal(&e->result, res)) {
        char a[200], b[200];
        sim_checks_describe_result(res, a, sizeof(a));
        sim_checks_describe_result(&e->result, b, sizeof(b));
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
int sim_checks_agreement(struct fsm *const *fsms, unsigned n, const struct ledger *l, char *msg,
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
        if (!sim_checks_result_equal(&res, &e->result) || memcmp(h, e->hash, 32) != 0) {
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

/* ---- raft's own bookkeeping ------------------------------------------------- */

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

raft_term sim_checks_log_term(const struct raft *r, raft_index index)
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
 * stale, so the follower never catches up while that leader lasts. raft/rio_guard.c caps the
 * follower's claim; any false claim left fails the run. Returns how many exist now. */
unsigned sim_checks_match_claims(struct sim *s)
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
            raft_term lt = sim_checks_log_term(l, m), ft = sim_checks_log_term(f, m);
            bool missing = m > raft_last_index(f);
            if (!missing && (lt == 0 || ft == 0 || lt == ft)) {
                continue; /* compacted on one side, or a true claim */
            }
            found++;
            sim_trace(s,
                      "raft 0.15 defect: leader %u (term %llu) claims server %u matches up to %llu "
                      "(leader term there %llu, follower %s %llu, follower last index %llu)",
                      li, (unsigned long long)l->current_term, fi, (unsigned long long)m,
                      (unsigned long long)lt, missing ? "has no entry, last" : "term",
                      missing ? (unsigned long long)raft_last_index(f) : (unsigned long long)ft,
                      (unsigned long long)raft_last_index(f));
            sim_fail(s,
                     "leader %u (term %llu) counts server %u as holding index %llu, which "
                     "it does not hold (raft 0.15 AppendEntries result defect)",
                     li, (unsigned long long)l->current_term, fi, (unsigned long long)m);
        }
    }
    return found;
}

/* Raft's own safety, on every entry type (barriers included, which the ledger never sees):
 * an index is only ever committed with one entry term (State Machine Safety), and a leader
 * holds every entry committed in an earlier term (Leader Completeness). A commit is recorded
 * when a server's commit index first covers it, with that server's current term: the leader
 * that commits an entry advances before any follower hears of it. */
void sim_checks_commits(struct sim *s)
{
    for (unsigned i = 0; i < s->o.n && !s->failed; i++) {
        struct raft *r = sim_raft(s, i);
        for (raft_index x = s->commit_seen[i] + 1; x <= r->commit_index && !s->failed; x++) {
            raft_term t = sim_checks_log_term(r, x);
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
            } else if (c->entry_term != t) {
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
            raft_term t = sim_checks_log_term(r, x);
            bool compacted = x <= r->log.offset && x != r->log.snapshot.last_index;
            if (!compacted && t != c->entry_term) {
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
void sim_checks_unavailable(struct sim *s)
{
    for (unsigned i = 0; i < s->o.n && !s->failed; i++) {
        struct raft *r = sim_raft(s, i);
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
unsigned sim_checks_snapshot_stalls(struct sim *s)
{
    unsigned found = 0;
    unsigned l = sim_sole_leader(s);
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
            sim_trace(s,
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

/* ---- the end of a run ------------------------------------------------------- */

void sim_checks_final(struct sim *s)
{
    struct fsm *fsms[MAX_NODES];
    for (unsigned i = 0; i < s->o.n; i++) {
        fsms[i] = s->nodes[i].fsm;
    }
    /* Every entry seen committed is in every log at its index, with its term, once the
     * healed cluster converged (crashed servers included: they restarted from their disk). */
    for (raft_index x = 1; x <= s->max_committed && x < s->commits_cap; x++) {
        const struct commit_rec *c = &s->commits[x];
        for (unsigned i = 0; i < s->o.n && c->entry_term != 0; i++) {
            struct raft *r = sim_raft(s, i);
            raft_term t = sim_checks_log_term(r, x);
            bool compacted = x <= r->log.offset && x != r->log.snapshot.last_index;
            if (!compacted && t != c->entry_term) {
                sim_fail(s,
                         "index %llu, committed with an entry of term %llu (first seen on server "
                         "%u), holds term %llu on server %u after the cluster settled",
                         (unsigned long long)x, (unsigned long long)c->entry_term, c->server,
                         (unsigned long long)t, i);
                return;
            }
        }
    }
    char msg[600];
    if (sim_checks_agreement(fsms, s->o.n, &s->ledger, msg, sizeof(msg)) != 0) {
        sim_fail(s, "%s", msg);
        return;
    }
    for (struct prop *p = s->props; p != NULL && !s->failed; p = p->next) {
        if (p->kind != PROP_APPLY || p->index == 0) {
            continue;
        }
        const struct ledger_entry *e = sim_checks_ledger_get(&s->ledger, p->index);
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
            const struct ledger_entry *oe = sim_checks_ledger_get(&s->ledger, o->index);
            bool first_committed =
                oe != NULL && oe->len == o->len && memcmp(oe->bytes, o->bytes, o->len) == 0;
            if (first_committed) {
                s->st.retry_dups++;
                if (p->result.status != FSM_DUPLICATE || p->result.first_index != o->index ||
                    p->result.mismatch || p->result.first_status != oe->result.status ||
                    p->result.version != oe->result.version ||
                    p->result.revision != oe->result.revision) {
                    char a[200];
                    sim_checks_describe_result(&p->result, a, sizeof(a));
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
