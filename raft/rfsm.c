#include "raft/rfsm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

static int apply_cb(struct raft_fsm *f, const struct raft_buffer *buf, void **result)
{
    struct rfsm *a = f->data;
    /* raft 0.15 tells apply neither the index nor the term; the entry being applied is the
     * one after the last applied (barriers and configuration entries advance last_applied
     * without reaching the state machine). */
    uint64_t index = a->raft->last_applied + 1;
    if (index > a->commit_last) {
        a->commit_ns = uv_hrtime();
        a->commit_last = a->raft->commit_index;
    }
    if (a->fatal) {
        /* raft 0.15 applies every committed entry in one go and goes on after an entry this
         * node missed; applying a later one would leave this state machine without an entry
         * its peers hold, so every later entry is refused until the node has stopped. */
        memset(&a->result, 0, sizeof(a->result));
        a->result.status = FSM_STOPPED;
        snprintf(a->result.message, sizeof(a->result.message),
                 "this node is stopping: it could not apply an earlier entry");
        *result = &a->result;
        return 0;
    }
    a->applies++;
    int rc;
    if (a->oom_at != 0 && a->applies == a->oom_at) {
        memset(&a->result, 0, sizeof(a->result));
        rc = FSM_ENOMEM;
    } else {
        rc = fsm_apply(a->fsm, index, buf->base, buf->len, &a->result);
    }
    if (rc != 0) {
        /* Out of memory, state unchanged. Skipping the entry would make this node diverge,
         * so it refuses everything after it and the owner stops the node (rnode polls
         * FATAL); after a restart it applies the entry again from its log. The waiting
         * client learns the outcome is unknown: the entry is committed. */
        fprintf(stderr,
                "raft: out of memory applying the entry at index %llu%s; this node applies no "
                "later entry and stops (restart it to apply the entry from its log)\n",
                (unsigned long long)index,
                a->oom_at != 0 ? " (failpoint CONCLAVE_FAILPOINT_FSM_OOM)" : "");
        memset(&a->result, 0, sizeof(a->result));
        a->result.status = FSM_STOPPED;
        snprintf(a->result.message, sizeof(a->result.message), "out of memory applying");
        a->fatal = 1;
    }
    *result = &a->result;
    return 0;
}

static int snapshot_cb(struct raft_fsm *f, struct raft_buffer *bufs[], unsigned *n_bufs)
{
    struct rfsm *a = f->data;
    if (a->fatal) {
        /* raft's last applied index is past the entry this state machine missed: a snapshot
         * now would claim state it does not hold. */
        fprintf(stderr, "raft: no snapshot: this node missed an entry and is stopping\n");
        return RAFT_NOMEM;
    }
    char err[256];
    if (a->raft_fsm.version >= 3) {
        /* Only freeze a view here (cost: the number of config chunks and projects, plus the
         * bounded queues); snapshot_async serialises it on a worker thread. The one buffer
         * descriptor is ours until snapshot_finalize; its base is filled by snapshot_async. */
        struct fsm_view *v = NULL;
        int vrc = fsm_view_take(a->fsm, &v, err, sizeof(err));
        if (vrc != 0) {
            fprintf(stderr, "raft: taking a snapshot failed: %s\n", err);
            return vrc == FSM_EBUSY ? RAFT_BUSY : RAFT_NOMEM;
        }
        *bufs = malloc(sizeof(**bufs));
        if (*bufs == NULL) {
            fsm_view_release(v);
            return RAFT_NOMEM;
        }
        (*bufs)[0].base = NULL;
        (*bufs)[0].len = 0;
        *n_bufs = 1;
        a->view = v;
        return 0;
    }
    uint8_t *snap = NULL;
    size_t len = 0;
    int rc = fsm_snapshot(a->fsm, &snap, &len, err, sizeof(err));
    if (rc != 0) {
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

/* On a worker thread (raft's io->async_work), between snapshot_cb and snapshot_finalize:
 * serialises the view snapshot_cb froze and seals it. It reads only that view (A->view, set
 * on the loop before raft queued this work) and what the view holds, never the live state
 * machine, which the loop thread keeps applying to meanwhile (fsm.h states the rules). */
static int snapshot_async_cb(struct raft_fsm *f, struct raft_buffer *bufs[], unsigned *n_bufs)
{
    struct rfsm *a = f->data;
    if (*n_bufs != 1 || a->view == NULL) {
        return RAFT_INVALID;
    }
    uint8_t *snap = NULL;
    size_t len = 0;
    char err[256];
    if (fsm_view_write(a->view, &snap, &len, err, sizeof(err)) != 0) {
        fprintf(stderr, "raft: writing a snapshot failed: %s\n", err);
        return RAFT_NOMEM;
    }
    fsm_snapshot_seal(snap, len);
    (*bufs)[0].base = snap;
    (*bufs)[0].len = len;
    return 0;
}

/* On the loop thread, once raft stored the snapshot (or gave up on it, also after a failed
 * snapshot_async): the buffers are ours to release (raft 0.15 frees nothing of a version-3
 * snapshot itself), and so is the view, which may free configs and chunks only it held. */
static int snapshot_finalize_cb(struct raft_fsm *f, struct raft_buffer *bufs[], unsigned *n_bufs)
{
    struct rfsm *a = f->data;
    if (*bufs != NULL) {
        for (unsigned i = 0; i < *n_bufs; i++) {
            free((*bufs)[i].base);
        }
        free(*bufs);
    }
    *bufs = NULL;
    *n_bufs = 0;
    fsm_view_release(a->view);
    a->view = NULL;
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

void rfsm_async_snapshots(struct rfsm *a)
{
    a->raft_fsm.version = 3;
    a->raft_fsm.snapshot_finalize = snapshot_finalize_cb;
    a->raft_fsm.snapshot_async = snapshot_async_cb;
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
    /* Read once, here, so a test sets it in the environment of the node it starts. A value
     * that is not a positive whole number leaves the failpoint off. */
    const char *fp = getenv("CONCLAVE_FAILPOINT_FSM_OOM");
    if (fp != NULL && *fp != '\0') {
        char *end = NULL;
        unsigned long long n = strtoull(fp, &end, 10);
        if (*end == '\0' && fp[0] != '-') {
            a->oom_at = n;
        }
    }
    /* A test that must reach the config limit lowers it on every node alike (fsm.h). */
    fp = getenv("CONCLAVE_FAILPOINT_FSM_MAX_CONFIGS");
    if (fp != NULL && *fp != '\0') {
        char *end = NULL;
        unsigned long long n = strtoull(fp, &end, 10);
        if (*end == '\0' && fp[0] != '-' && n > 0) {
            fsm_set_max_configs(fsm, (size_t)n);
        }
    }
}
