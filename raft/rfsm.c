#include "raft/rfsm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int apply_cb(struct raft_fsm *f, const struct raft_buffer *buf, void **result)
{
    struct rfsm *a = f->data;
    /* raft 0.15 tells apply neither the index nor the term; the entry being applied is the
     * one after the last applied (barriers and configuration entries advance last_applied
     * without reaching the state machine). */
    uint64_t index = a->raft->last_applied + 1;
    if (fsm_apply(a->fsm, index, buf->base, buf->len, &a->result) != 0) {
        /* Out of memory, state unchanged. Skipping the entry would make this node diverge,
         * so the owner stops it; the waiting client learns nothing was decided. */
        memset(&a->result, 0, sizeof(a->result));
        a->result.status = FSM_FULL;
        snprintf(a->result.message, sizeof(a->result.message), "out of memory applying");
        a->fatal = 1;
    }
    *result = &a->result;
    return 0;
}

static int snapshot_cb(struct raft_fsm *f, struct raft_buffer *bufs[], unsigned *n_bufs)
{
    struct rfsm *a = f->data;
    uint8_t *snap = NULL;
    size_t len = 0;
    char err[256];
    if (fsm_snapshot(a->fsm, &snap, &len, err, sizeof(err)) != 0) {
        fprintf(stderr, "raft: taking a snapshot failed: %s\n", err);
        return RAFT_NOMEM;
    }
    /* With fsm version 1, raft releases what it is given with raft_free. */
    *bufs = raft_malloc(sizeof(**bufs));
    void *base = raft_malloc(len);
    if (*bufs == NULL || base == NULL) {
        raft_free(*bufs);
        raft_free(base);
        free(snap);
        return RAFT_NOMEM;
    }
    memcpy(base, snap, len);
    free(snap);
    (*bufs)[0].base = base;
    (*bufs)[0].len = len;
    *n_bufs = 1;
    return 0;
}

static int restore_cb(struct raft_fsm *f, struct raft_buffer *buf)
{
    struct rfsm *a = f->data;
    char err[256];
    if (fsm_restore(a->fsm, buf->base, buf->len, err, sizeof(err)) != 0) {
        fprintf(stderr, "raft: restoring a snapshot failed: %s\n", err);
        return RAFT_CORRUPT;
    }
    /* On success the buffer belongs to the state machine (raft's snapshotRestore). */
    fprintf(stderr, "raft: restored a snapshot of %zu bytes (applied index %llu)\n", buf->len,
            (unsigned long long)fsm_last_applied(a->fsm));
    raft_free(buf->base);
    return 0;
}

void rfsm_init(struct rfsm *a, struct fsm *fsm, struct raft *raft)
{
    memset(a, 0, sizeof(*a));
    a->fsm = fsm;
    a->raft = raft;
    a->raft_fsm.version = 1;
    a->raft_fsm.data = a;
    a->raft_fsm.apply = apply_cb;
    a->raft_fsm.snapshot = snapshot_cb;
    a->raft_fsm.restore = restore_cb;
}
