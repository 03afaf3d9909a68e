/* The hooks: the real raft_fsm adapter (rfsm.c) with recording around it, and the raft 0.15
 * fixture's raft tracer (sim.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"

/* ---- the raft_fsm wrappers: the real adapter, plus recording ---------------- */

static int sim_apply(struct raft_fsm *rf, const struct raft_buffer *buf, void **result)
{
    struct node *nd = rf->data;
    struct sim *s = nd->sim;
    /* The same rule as rfsm.c: raft 0.15 applies the entry after last_applied. */
    uint64_t index = nd->ad.raft->last_applied + 1;
    if (s->o.sabotage_server == (int)nd->idx && !s->sabotaged && index >= s->o.sabotage_index) {
        s->sabotaged = true;
        sim_faults_sabotage(nd, index);
    }
    int rv = nd->orig_apply(rf, buf, result);
    s->st.applies++;
    if (rv != 0) {
        sim_fail(s, "server %u: apply of index %llu returned %d (raft would ignore it)", nd->idx,
                 (unsigned long long)index, rv);
        return rv;
    }
    if (nd->ad.fatal) {
        sim_fail(s, "server %u: apply of index %llu ran out of memory", nd->idx,
                 (unsigned long long)index);
    }
    if (index <= nd->last_noted) {
        sim_fail(s, "server %u applied index %llu after having applied up to %llu", nd->idx,
                 (unsigned long long)index, (unsigned long long)nd->last_noted);
    }
    nd->last_noted = index;
    if (fsm_last_applied(nd->fsm) != index) {
        sim_fail(s, "server %u: fsm applied index %llu but raft applied %llu", nd->idx,
                 (unsigned long long)fsm_last_applied(nd->fsm), (unsigned long long)index);
    }
    uint8_t hash[32];
    fsm_state_hash(nd->fsm, hash);
    char msg[600];
    if (sim_checks_ledger_note(&s->ledger, nd->idx, index, buf->base, buf->len, hash,
                               &nd->ad.result, msg, sizeof(msg)) != 0) {
        sim_fail(s, "%s", msg);
    }
    return 0;
}

static int sim_snapshot(struct raft_fsm *rf, struct raft_buffer *bufs[], unsigned *n_bufs)
{
    struct node *nd = rf->data;
    int rv = nd->orig_snapshot(rf, bufs, n_bufs);
    if (rv == 0) {
        nd->sim->st.snapshots++;
        nd->snap_applied = nd->ad.raft->last_applied;
        sim_trace(nd->sim, "server %u takes a snapshot at raft index %llu", nd->idx,
                  (unsigned long long)nd->ad.raft->last_applied);
    }
    return rv;
}

/* The second half of an asynchronous snapshot (rfsm.c), run by the simulated disk's
 * async_work. The state machine usually applied more entries since the first half; the
 * snapshot must still be the state at the index raft took it at, which raft checks when a
 * server restores it (sim_restore compares the restored state with the ledger). */
static int sim_snapshot_async(struct raft_fsm *rf, struct raft_buffer *bufs[], unsigned *n_bufs)
{
    struct node *nd = rf->data;
    int rv = nd->orig_snapshot_async(rf, bufs, n_bufs);
    if (rv == 0) {
        nd->sim->st.sealed++;
        if (nd->ad.raft->last_applied > nd->snap_applied) {
            nd->sim->st.sealed_after_applies++;
        }
    }
    return rv;
}

static int sim_restore(struct raft_fsm *rf, struct raft_buffer *buf)
{
    struct node *nd = rf->data;
    struct sim *s = nd->sim;
    int rv = nd->orig_restore(rf, buf);
    if (rv != 0) {
        sim_fail(s, "server %u: restoring a snapshot failed (%d)", nd->idx, rv);
        return rv;
    }
    s->st.restores++;
    uint64_t k = fsm_last_applied(nd->fsm);
    sim_trace(s, "server %u restores a snapshot (last command index %llu)", nd->idx,
              (unsigned long long)k);
    if (k < nd->last_noted) {
        sim_fail(s, "server %u restored a snapshot ending at command %llu after applying %llu",
                 nd->idx, (unsigned long long)k, (unsigned long long)nd->last_noted);
    }
    if (k > 0) {
        const struct ledger_entry *e = sim_checks_ledger_get(&s->ledger, k);
        uint8_t hash[32];
        fsm_state_hash(nd->fsm, hash);
        if (e == NULL) {
            sim_fail(s, "server %u restored a state at index %llu that no server applied", nd->idx,
                     (unsigned long long)k);
        } else if (memcmp(hash, e->hash, 32) != 0) {
            sim_fail(s, "server %u restored a snapshot whose state differs from index %llu",
                     nd->idx, (unsigned long long)k);
        }
    }
    if (k > nd->last_noted) {
        nd->last_noted = k;
    }
    return 0;
}

static void raft_trace_emit(struct raft_tracer *t, const char *file, int line, const char *message)
{
    struct node *nd = t->impl;
    fprintf(stderr, "[seed %llu t=%llu step %lu] raft %u: %s:%d %s\n",
            (unsigned long long)nd->sim->o.seed, (unsigned long long)nd->sim->f.time, nd->sim->step,
            nd->idx, file, line, message);
}

void sim_io_wrap_fsm(struct node *nd)
{
    nd->orig_apply = nd->ad.raft_fsm.apply;
    nd->orig_snapshot = nd->ad.raft_fsm.snapshot;
    nd->orig_restore = nd->ad.raft_fsm.restore;
    nd->ad.raft_fsm.apply = sim_apply;
    nd->ad.raft_fsm.snapshot = sim_snapshot;
    nd->ad.raft_fsm.restore = sim_restore;
    /* rfsm_async_snapshots() may run after this: it sets the version and its own functions,
     * and sim_io_wrap_async() wraps the second half then. */
}

void sim_io_wrap_async(struct node *nd)
{
    nd->orig_snapshot_async = nd->ad.raft_fsm.snapshot_async;
    nd->ad.raft_fsm.snapshot_async = sim_snapshot_async;
}

void sim_io_trace(struct node *nd, struct raft *r)
{
    nd->tracer.impl = nd;
    nd->tracer.enabled = true;
    nd->tracer.emit = raft_trace_emit;
    r->tracer = &nd->tracer;
}
