/* The hooks: the real raft_fsm adapter (rfsm.c) with recording around it, and the raft 0.15
 * fixture's in-memory raft_io, wrapped (sim.h). */
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
        sim_trace(nd->sim, "server %u takes a snapshot at raft index %llu", nd->idx,
                  (unsigned long long)nd->ad.raft->last_applied);
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

/* ---- the fixture's raft_io, wrapped ----------------------------------------- */

static struct node *node_of_io(struct raft_io *io)
{
    struct raft *r = io->data;
    struct node *nd = r->fsm->data; /* the rfsm, first member of the node */
    return nd;
}

static int sim_snapshot_put(struct raft_io *io, unsigned trailing, struct raft_io_snapshot_put *req,
                            const struct raft_snapshot *snapshot, raft_io_snapshot_put_cb cb)
{
    struct node *nd = node_of_io(io);
    if (trailing == 0) {
        sim_trace(nd->sim, "io %u: installing snapshot %llu", nd->idx,
                  (unsigned long long)snapshot->index);
        nd->install_pending = snapshot->index;
    }
    return nd->orig_snapshot_put(io, trailing, req, snapshot, cb);
}

/* The simulation being run: an append's callback gets only the request, which raft owns,
 * so the wrapper finds its server through this (the tests run one simulation at a time). */
struct sim *sim_io_running;

static void sim_append_done(struct raft_io_append *req, int status)
{
    for (unsigned j = 0; j < sim_io_running->o.n; j++) {
        struct node *nd = &sim_io_running->nodes[j];
        for (size_t i = 0; i < nd->n_appends; i++) {
            if (nd->appends[i].req == req) {
                struct pending_append a = nd->appends[i];
                nd->appends[i] = nd->appends[--nd->n_appends];
                if (status == 0) {
                    nd->io_stored += a.n; /* the fixture stored them before calling back */
                }
                a.cb(req, status);
                return;
            }
        }
    }
    fprintf(stderr, "test_raft_sim: an append completed that was never submitted\n");
    abort();
}

static int sim_append(struct raft_io *io, struct raft_io_append *req,
                      const struct raft_entry entries[], unsigned n, raft_io_append_cb cb)
{
    struct node *nd = node_of_io(io);
    if (nd->n_appends == nd->appends_cap) {
        size_t cap = nd->appends_cap == 0 ? 16 : 2 * nd->appends_cap;
        struct pending_append *a = realloc(nd->appends, cap * sizeof(*a));
        if (a == NULL) {
            abort();
        }
        nd->appends = a;
        nd->appends_cap = cap;
    }
    int rv = nd->orig_append(io, req, entries, n, sim_append_done);
    if (rv == 0) {
        nd->appends[nd->n_appends++] = (struct pending_append){.req = req, .cb = cb, .n = n};
    }
    return rv;
}

/* raft 0.15's fixture keeps a server's stored entries in an array that starts at index 1,
 * or right after the last installed snapshot (installing one truncates the array to index 1
 * through this same method), and its truncate always keeps INDEX - 1 entries, as if the
 * array started at 1 and held every entry raft asks to drop. Neither holds: after an
 * install, and when raft drops entries whose append has not completed (raft_uv orders the
 * two, the fixture does not), the fixture copies past the end of its array (heap overflow,
 * then a double free). The wrapper rebases the index and never asks for more than is stored.
 * The store may then hold stale entries, which is harmless: nothing reloads it. */
static int sim_truncate(struct raft_io *io, raft_index index)
{
    struct node *nd = node_of_io(io);
    sim_trace(nd->sim, "io %u: truncate at %llu (stored entries start after %llu, install %llu)",
              nd->idx, (unsigned long long)index, (unsigned long long)nd->io_base,
              (unsigned long long)nd->install_pending);
    if (index == 1 && nd->install_pending != 0) {
        nd->io_base = nd->install_pending;
        nd->install_pending = 0;
        nd->io_stored = 0;
        return nd->orig_truncate(io, 1);
    }
    if (index <= nd->io_base) {
        sim_fail(nd->sim, "server %u: raft truncates at %llu, inside its installed snapshot (%llu)",
                 nd->idx, (unsigned long long)index, (unsigned long long)nd->io_base);
        return RAFT_IOERR;
    }
    raft_index keep = index - nd->io_base - 1;
    if (keep > nd->io_stored) {
        keep = nd->io_stored;
    }
    nd->io_stored = (size_t)keep;
    return nd->orig_truncate(io, keep + 1);
}

void sim_io_wrap_fsm(struct node *nd)
{
    nd->orig_apply = nd->ad.raft_fsm.apply;
    nd->orig_snapshot = nd->ad.raft_fsm.snapshot;
    nd->orig_restore = nd->ad.raft_fsm.restore;
    nd->ad.raft_fsm.apply = sim_apply;
    nd->ad.raft_fsm.snapshot = sim_snapshot;
    nd->ad.raft_fsm.restore = sim_restore;
}

void sim_io_wrap_io(struct node *nd, struct raft *r, bool raft_trace)
{
    nd->orig_truncate = r->io->truncate;
    nd->orig_append = r->io->append;
    r->io->append = sim_append;
    nd->orig_snapshot_put = r->io->snapshot_put;
    r->io->truncate = sim_truncate;
    r->io->snapshot_put = sim_snapshot_put;
    if (raft_trace) {
        nd->tracer.impl = nd;
        nd->tracer.enabled = true;
        nd->tracer.emit = raft_trace_emit;
        r->tracer = &nd->tracer;
    }
}
