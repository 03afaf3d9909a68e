#include "raft/rnode.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <raft.h>
#include <raft/uv.h>

#include "raft/peer_tls.h"
#include "raft/readindex.h"
#include "raft/rfsm.h"
#include "raft/rio_guard.h"

/* How often the glue looks at raft's state: leadership changes (raft 0.15 has no callback
 * for them), the post-election barrier, I/O failure, and shutdown progress. */
#define POLL_MS 10
/* The snapshot threshold grows with the state: at least raft.snapshot_threshold entries, and at
 * least one entry per SNAPSHOT_BYTES_PER_ENTRY bytes of live config data (so about 131,000
 * entries at 1,000,000 configs of 270 bytes), at most SNAPSHOT_THRESHOLD_MAX. A snapshot
 * serialises and hashes the whole state (on a worker, but with CPU and disk time proportional
 * to its size), so a fixed 1,024 entries made every node snapshot about once a second at 1,000
 * writes per second, and with 100,000 keys that alone took most of two cores. The log kept in
 * memory until the next snapshot stays below about a quarter of the state's size. */
#define SNAPSHOT_BYTES_PER_ENTRY 2048u
#define SNAPSHOT_THRESHOLD_MAX   1000000u
/* Shutdown waits at most this long for entries to be stored and for a transfer. */
#define SHUTDOWN_STORE_MS    3000
#define SHUTDOWN_TRANSFER_MS 3000

/* ReadIndex hands its statuses to rnode's callers unchanged. */
_Static_assert(READINDEX_ENOTLEADER == RNODE_ENOTLEADER, "readindex and rnode codes differ");
_Static_assert(READINDEX_ESHUTDOWN == RNODE_ESHUTDOWN, "readindex and rnode codes differ");
_Static_assert(READINDEX_ENOMEM == RNODE_ENOMEM, "readindex and rnode codes differ");
_Static_assert(READINDEX_ETIMEDOUT == RNODE_ETIMEDOUT, "readindex and rnode codes differ");

/* A proposal in flight. */
struct apply_req {
    struct raft_apply req;
    struct rnode *rn;
    rnode_apply_cb cb;
    void *data;
};

/* A read waiting for a barrier. */
struct waiter {
    struct waiter *next;
    rnode_done_cb cb;
    void *data;
};

struct barrier_req {
    struct raft_barrier req;
    struct rnode *rn;
    struct waiter *waiters; /* the reads this barrier serves; NULL for the election barrier */
    uint64_t term;
    bool election;
};

enum stop_phase { RUNNING, WAIT_STORED, WAIT_TRANSFER, CLOSING };

struct rnode {
    uv_loop_t *loop;
    struct rnode_config conf;
    struct fsm *fsm;
    struct raft raft;
    struct raft_io io;      /* raft_uv */
    struct rio_guard guard; /* what raft talks to; forwards to io (raft/rio_guard.h) */
    struct readindex ri;    /* linearizable reads; its probes go to io, answers come via guard */
    struct raft_uv_transport transport;
    struct rfsm adapter;
    uv_timer_t poll;

    uint64_t ready_term;       /* term whose election barrier completed; 0 = none */
    bool election_barrier;     /* an election barrier is in flight */
    struct waiter *waiting;    /* reads for the next barrier, newest first */
    bool read_barrier;         /* a read barrier is in flight */
    unsigned inflight_applies; /* proposals whose callback has not run */

    struct raft_change change; /* the one membership change at a time */
    bool changing;
    uint64_t change_id;
    rnode_change_cb change_cb;
    void *change_data;
    struct raft_transfer transfer;
    bool transferring;
    rnode_change_cb transfer_cb;
    void *transfer_data;

    rnode_fatal_cb fatal;
    void *fatal_data;
    uint64_t snapshot_threshold; /* what raft was last told (adapt_snapshot_threshold()) */
    bool fatal_reported;

    enum stop_phase phase;
    uint64_t phase_started;
    void (*stopped_cb)(void *data);
    void *stopped_data;
};

/* ---- requests ----------------------------------------------------------------------- */

static int map_status(int status)
{
    switch (status) {
    case 0:
        return 0;
    case RAFT_NOTLEADER:
        return RNODE_ENOTLEADER;
    case RAFT_SHUTDOWN:
        return RNODE_ESHUTDOWN;
    case RAFT_CANTCHANGE:
        /* raft_add/assign/remove refuse while a configuration change is uncommitted or a
         * promotion runs: nothing was appended, and it clears by itself. */
        return RNODE_EBUSY;
    case RAFT_BADID:
        return RNODE_EINVAL; /* refused before anything was appended */
    default:
        /* RAFT_LEADERSHIPLOST and anything unexpected after appending: the entry may still
         * commit, so the outcome is unknown, never "failed". */
        return RNODE_EUNKNOWN;
    }
}

static void apply_done(struct raft_apply *req, int status, void *result)
{
    struct apply_req *a = req->data;
    a->rn->inflight_applies--;
    int st = map_status(status);
    if (a->cb != NULL) {
        a->cb(a->data, st, st == 0 ? (const struct fsm_result *)result : NULL, req->index);
    }
    free(a);
}

bool rnode_ready(const struct rnode *rn)
{
    return rn->phase == RUNNING && rn->raft.state == RAFT_LEADER &&
           rn->ready_term == rn->raft.current_term;
}

const struct fsm *rnode_fsm(const struct rnode *rn)
{
    return rn->fsm;
}

uint64_t rnode_commit_ns(const struct rnode *rn)
{
    return rn->adapter.commit_ns;
}

int rnode_apply(struct rnode *rn, const void *entry, size_t len, rnode_apply_cb cb, void *data)
{
    if (len == 0 || len % 8 != 0) {
        return RNODE_EINVAL;
    }
    if (!rnode_ready(rn)) {
        return rn->phase == RUNNING ? RNODE_ENOTLEADER : RNODE_ESHUTDOWN;
    }
    struct apply_req *a = calloc(1, sizeof(*a));
    struct raft_buffer buf = {.base = raft_malloc(len), .len = len};
    if (a == NULL || buf.base == NULL) {
        free(a);
        raft_free(buf.base);
        return RNODE_ENOMEM;
    }
    memcpy(buf.base, entry, len);
    a->rn = rn;
    a->cb = cb;
    a->data = data;
    a->req.data = a;
    int rv = raft_apply(&rn->raft, &a->req, &buf, 1, apply_done);
    if (rv != 0) {
        raft_free(buf.base);
        free(a);
        return map_status(rv) == 0 ? RNODE_EUNKNOWN : map_status(rv);
    }
    rn->inflight_applies++;
    return 0;
}

static void notify_waiters(struct waiter *w, int status)
{
    /* Waiters were pushed newest first; answer oldest first. */
    struct waiter *rev = NULL;
    while (w != NULL) {
        struct waiter *next = w->next;
        w->next = rev;
        rev = w;
        w = next;
    }
    while (rev != NULL) {
        struct waiter *next = rev->next;
        rev->cb(rev->data, status);
        free(rev);
        rev = next;
    }
}

static void start_read_barrier(struct rnode *rn);

static void barrier_done(struct raft_barrier *req, int status)
{
    struct barrier_req *b = req->data;
    struct rnode *rn = b->rn;
    if (b->election) {
        rn->election_barrier = false;
        if (status == 0 && rn->raft.state == RAFT_LEADER && rn->raft.current_term == b->term) {
            rn->ready_term = b->term;
            readindex_ready(&rn->ri, b->term);
            fprintf(stderr, "raft: node %llu leads term %llu and is ready\n",
                    (unsigned long long)rn->conf.id, (unsigned long long)b->term);
        }
    } else {
        int st = map_status(status);
        /* A barrier that completed in another term proves nothing about this leader. */
        if (st == 0 && (rn->raft.state != RAFT_LEADER || rn->raft.current_term != b->term)) {
            st = RNODE_ENOTLEADER;
        }
        /* read_barrier stays set while the waiters run, so that a read they submit is queued
         * for the next barrier instead of starting one from inside this callback. */
        notify_waiters(b->waiters, st);
        rn->read_barrier = false;
        if (rn->waiting != NULL && status != 0) {
            /* raft fails its pending requests while it tears down the leader state, with
             * raft.state still RAFT_LEADER: rnode_ready() is true, but a raft_barrier() now
             * re-enters that teardown and crashes (found by the chaos partition fault). The
             * reads that queued meanwhile cannot be served by this leader either. */
            struct waiter *w = rn->waiting;
            rn->waiting = NULL;
            notify_waiters(w, st == 0 ? RNODE_ENOTLEADER : st);
        } else if (rn->waiting != NULL) {
            start_read_barrier(rn);
        }
    }
    free(b);
}

static void start_read_barrier(struct rnode *rn)
{
    struct waiter *w = rn->waiting;
    if (!rnode_ready(rn)) {
        rn->waiting = NULL;
        notify_waiters(w, rn->phase == RUNNING ? RNODE_ENOTLEADER : RNODE_ESHUTDOWN);
        return;
    }
    struct barrier_req *b = calloc(1, sizeof(*b));
    if (b == NULL) {
        rn->waiting = NULL;
        notify_waiters(w, RNODE_ENOMEM);
        return;
    }
    b->rn = rn;
    b->req.data = b;
    b->term = rn->raft.current_term;
    b->waiters = w;
    rn->waiting = NULL;
    int rv = raft_barrier(&rn->raft, &b->req, barrier_done);
    if (rv != 0) {
        free(b);
        notify_waiters(w, map_status(rv) == 0 ? RNODE_ENOTLEADER : map_status(rv));
        return;
    }
    rn->read_barrier = true;
}

int rnode_barrier(struct rnode *rn, rnode_done_cb cb, void *data)
{
    if (!rnode_ready(rn)) {
        return rn->phase == RUNNING ? RNODE_ENOTLEADER : RNODE_ESHUTDOWN;
    }
    struct waiter *w = calloc(1, sizeof(*w));
    if (w == NULL) {
        return RNODE_ENOMEM;
    }
    w->cb = cb;
    w->data = data;
    w->next = rn->waiting;
    rn->waiting = w;
    /* A barrier already in flight was issued before this read arrived, so it cannot serve
     * it; the next one, started when it completes, will. */
    if (!rn->read_barrier) {
        start_read_barrier(rn);
    }
    return 0;
}

int rnode_read_index(struct rnode *rn, rnode_done_cb cb, void *data)
{
    if (!rnode_ready(rn)) {
        return rn->phase == RUNNING ? RNODE_ENOTLEADER : RNODE_ESHUTDOWN;
    }
    return readindex_read(&rn->ri, cb, data);
}

static bool read_index_result(void *data, const struct raft_message *m)
{
    struct rnode *rn = data;
    return readindex_recv(&rn->ri, m);
}

/* ---- state ------------------------------------------------------------------------- */

static const char *state_name(int state)
{
    switch (state) {
    case RAFT_LEADER:
        return "leader";
    case RAFT_FOLLOWER:
        return "follower";
    case RAFT_CANDIDATE:
        return "candidate";
    default:
        return "unavailable";
    }
}

void rnode_info(struct rnode *rn, struct rnode_info *info)
{
    memset(info, 0, sizeof(*info));
    info->state = state_name(rn->raft.state);
    info->ready = rnode_ready(rn);
    info->term = rn->raft.current_term;
    raft_id lid = 0;
    const char *laddr = NULL;
    raft_leader(&rn->raft, &lid, &laddr);
    info->leader_id = lid;
    snprintf(info->leader_address, sizeof(info->leader_address), "%s", laddr ? laddr : "");
    info->commit_index = rn->raft.commit_index;
    info->applied_index = raft_last_applied(&rn->raft);
    info->last_index = raft_last_index(&rn->raft);
    info->read_rounds = rn->ri.rounds;
    info->read_index_reads = rn->ri.reads_served;
    for (unsigned i = 0; i < rn->raft.configuration.n && i < RNODE_MAX_MEMBERS; i++) {
        struct raft_server *s = &rn->raft.configuration.servers[i];
        info->members[i].id = s->id;
        snprintf(info->members[i].address, sizeof(info->members[i].address), "%s", s->address);
        info->members[i].role = s->role;
        info->nmembers++;
    }
}

/* ---- membership --------------------------------------------------------------------- */

static void change_finish(struct rnode *rn, int status, const char *err)
{
    rn->changing = false;
    rnode_change_cb cb = rn->change_cb;
    rn->change_cb = NULL;
    if (cb != NULL) {
        cb(rn->change_data, status, err);
    }
}

static void promote_done(struct raft_change *req, int status)
{
    struct rnode *rn = req->data;
    change_finish(rn, map_status(status), status ? raft_strerror(status) : "");
}

static void add_done(struct raft_change *req, int status)
{
    struct rnode *rn = req->data;
    if (status != 0) {
        change_finish(rn, map_status(status), raft_strerror(status));
        return;
    }
    /* Added as a spare; raft_assign runs catch-up rounds before making it a voter. */
    int rv = raft_assign(&rn->raft, &rn->change, rn->change_id, RAFT_VOTER, promote_done);
    if (rv != 0) {
        change_finish(rn, map_status(rv), raft_errmsg(&rn->raft));
    }
}

int rnode_add_member(struct rnode *rn, uint64_t id, const char *address, rnode_change_cb cb,
                     void *data)
{
    if (rn->changing || rn->transferring) {
        return RNODE_EBUSY;
    }
    if (!rnode_ready(rn)) {
        return RNODE_ENOTLEADER;
    }
    rn->change.data = rn;
    rn->change_id = id;
    rn->change_cb = cb;
    rn->change_data = data;
    int rv = raft_add(&rn->raft, &rn->change, id, address, add_done);
    if (rv != 0) {
        return rv == RAFT_DUPLICATEID || rv == RAFT_DUPLICATEADDRESS ? RNODE_EINVAL
                                                                     : map_status(rv);
    }
    rn->changing = true;
    return 0;
}

static void remove_done(struct raft_change *req, int status)
{
    struct rnode *rn = req->data;
    change_finish(rn, map_status(status), status ? raft_strerror(status) : "");
}

int rnode_remove_member(struct rnode *rn, uint64_t id, rnode_change_cb cb, void *data)
{
    if (rn->changing || rn->transferring) {
        return RNODE_EBUSY;
    }
    if (!rnode_ready(rn)) {
        return RNODE_ENOTLEADER;
    }
    rn->change.data = rn;
    rn->change_cb = cb;
    rn->change_data = data;
    int rv = raft_remove(&rn->raft, &rn->change, id, remove_done);
    if (rv != 0) {
        return rv == RAFT_BADID ? RNODE_EINVAL : map_status(rv);
    }
    rn->changing = true;
    return 0;
}

static void transfer_done(struct raft_transfer *req)
{
    struct rnode *rn = req->data;
    rn->transferring = false;
    /* raft 0.15 reports no status: success is this node no longer leading. */
    int status = rn->raft.state == RAFT_LEADER ? RNODE_EUNKNOWN : 0;
    rnode_change_cb cb = rn->transfer_cb;
    rn->transfer_cb = NULL;
    if (cb != NULL) {
        cb(rn->transfer_data, status, status ? "leadership did not move" : "");
    }
}

int rnode_transfer(struct rnode *rn, uint64_t id, rnode_change_cb cb, void *data)
{
    if (rn->changing || rn->transferring) {
        return RNODE_EBUSY;
    }
    if (rn->raft.state != RAFT_LEADER) {
        return RNODE_ENOTLEADER;
    }
    rn->transfer.data = rn;
    rn->transfer_cb = cb;
    rn->transfer_data = data;
    int rv = raft_transfer(&rn->raft, &rn->transfer, id, transfer_done);
    if (rv != 0) {
        return rv == RAFT_BADID ? RNODE_EINVAL : map_status(rv);
    }
    rn->transferring = true;
    return 0;
}

/* ---- polling, shutdown -------------------------------------------------------------- */

static void raft_closed(struct raft *r);

static void begin_close(struct rnode *rn)
{
    rn->phase = CLOSING;
    readindex_stop(&rn->ri, RNODE_ESHUTDOWN);
    notify_waiters(rn->waiting, RNODE_ESHUTDOWN);
    rn->waiting = NULL;
    uv_timer_stop(&rn->poll);
    raft_close(&rn->raft, raft_closed);
}

static void start_election_barrier(struct rnode *rn)
{
    struct barrier_req *b = calloc(1, sizeof(*b));
    if (b == NULL) {
        return; /* retried at the next poll */
    }
    b->rn = rn;
    b->req.data = b;
    b->term = rn->raft.current_term;
    b->election = true;
    if (raft_barrier(&rn->raft, &b->req, barrier_done) != 0) {
        free(b);
        return;
    }
    rn->election_barrier = true;
}

/* Applies the state-size rule above to raft's snapshot threshold when it changed. */
static void adapt_snapshot_threshold(struct rnode *rn)
{
    uint64_t want = fsm_live_bytes(rn->fsm) / SNAPSHOT_BYTES_PER_ENTRY;
    if (want < rn->conf.snapshot_threshold) {
        want = rn->conf.snapshot_threshold;
    }
    if (want > SNAPSHOT_THRESHOLD_MAX) {
        want = SNAPSHOT_THRESHOLD_MAX;
    }
    if (want != rn->snapshot_threshold) {
        raft_set_snapshot_threshold(&rn->raft, (unsigned)want);
        rn->snapshot_threshold = want;
    }
}

static void on_poll(uv_timer_t *t)
{
    struct rnode *rn = t->data;
    uint64_t now = uv_now(rn->loop);
    adapt_snapshot_threshold(rn);
    if ((rn->raft.state == RAFT_UNAVAILABLE || rn->adapter.fatal) && rn->phase == RUNNING) {
        /* raft converts to unavailable when its I/O fails: running on would serve stale
         * state, so stop the process. */
        if (!rn->fatal_reported && rn->fatal != NULL) {
            char msg[512];
            if (rn->adapter.fatal) {
                /* The state machine's index shows that nothing after the missed entry was
                 * applied, whatever raft went on to hand over (tests/raft/fsm_oom.sh). */
                snprintf(msg, sizeof(msg),
                         "raft stopped working: out of memory applying an entry (state machine "
                         "applied index %llu, raft applied index %llu)",
                         (unsigned long long)fsm_last_applied(rn->fsm),
                         (unsigned long long)rn->raft.last_applied);
            } else {
                snprintf(msg, sizeof(msg), "raft stopped working: %s", raft_errmsg(&rn->raft));
            }
            rn->fatal_reported = true;
            rn->fatal(rn->fatal_data, msg);
        }
        return;
    }
    switch (rn->phase) {
    case RUNNING:
        if (rn->raft.state == RAFT_LEADER && rn->ready_term != rn->raft.current_term &&
            !rn->election_barrier) {
            start_election_barrier(rn);
        }
        readindex_tick(&rn->ri);
        return;
    case WAIT_STORED:
        if ((rn->inflight_applies == 0 && rn->raft.last_stored >= raft_last_index(&rn->raft)) ||
            now - rn->phase_started > SHUTDOWN_STORE_MS) {
            rn->transfer.data = rn;
            rn->transfer_cb = NULL;
            if (rn->raft.state == RAFT_LEADER && rn->raft.configuration.n > 1 &&
                !rn->transferring &&
                raft_transfer(&rn->raft, &rn->transfer, 0, transfer_done) == 0) {
                rn->transferring = true;
                rn->phase = WAIT_TRANSFER;
                rn->phase_started = now;
                fprintf(stderr, "raft: node %llu hands leadership over before stopping\n",
                        (unsigned long long)rn->conf.id);
                return;
            }
            begin_close(rn);
        }
        return;
    case WAIT_TRANSFER:
        if (rn->raft.state != RAFT_LEADER || now - rn->phase_started > SHUTDOWN_TRANSFER_MS) {
            begin_close(rn);
        }
        return;
    case CLOSING:
        return;
    }
}

static void poll_closed(uv_handle_t *h)
{
    struct rnode *rn = h->data;
    void (*cb)(void *) = rn->stopped_cb;
    void *data = rn->stopped_data;
    free(rn);
    if (cb != NULL) {
        cb(data);
    }
}

/* Releases the transport of either kind once raft no longer uses it. */
static void transport_free(struct rnode *rn)
{
    if (rn->conf.insecure_plaintext) {
        raft_uv_tcp_close(&rn->transport);
    } else {
        peer_tls_free(&rn->transport);
    }
}

/* Peers must complete mutual TLS and prove their raft id (peer_tls.h) unless the operator
 * asked for raft's plain TCP, which cmd_serve logs as a warning. */
static int transport_init(struct rnode *rn, char *errmsg, size_t errlen)
{
    if (rn->conf.insecure_plaintext) {
        int rv = raft_uv_tcp_init(&rn->transport, rn->loop);
        if (rv != 0) {
            snprintf(errmsg, errlen, "raft tcp transport: %s", raft_strerror(rv));
            return -1;
        }
        return 0;
    }
    struct peer_tls_config tc = {
        .id = rn->conf.id,
        .ca_file = rn->conf.tls_ca_file,
        .cert_file = rn->conf.tls_cert_file,
        .key_file = rn->conf.tls_key_file,
    };
    return peer_tls_init(&rn->transport, rn->loop, &tc, errmsg, errlen);
}

static void raft_closed(struct raft *r)
{
    struct rnode *rn = r->data;
    raft_uv_close(&rn->io);
    transport_free(rn);
    uv_close((uv_handle_t *)&rn->poll, poll_closed);
}

void rnode_shutdown(struct rnode *rn, void (*cb)(void *data), void *data)
{
    rn->stopped_cb = cb;
    rn->stopped_data = data;
    if (rn->phase != RUNNING) {
        return;
    }
    rn->phase = WAIT_STORED;
    rn->phase_started = uv_now(rn->loop);
    readindex_stop(&rn->ri, RNODE_ESHUTDOWN);
    notify_waiters(rn->waiting, RNODE_ESHUTDOWN);
    rn->waiting = NULL;
    if (!uv_is_active((uv_handle_t *)&rn->poll)) {
        begin_close(rn);
    }
}

/* ---- start -------------------------------------------------------------------------- */

static int make_dir(const char *path, char *errmsg, size_t errlen)
{
    char p[4096];
    snprintf(p, sizeof(p), "%s", path);
    for (char *c = p + 1; *c; c++) {
        if (*c == '/') {
            *c = '\0';
            if (mkdir(p, 0700) != 0 && errno != EEXIST) {
                snprintf(errmsg, errlen, "cannot create %s: %s", p, strerror(errno));
                return -1;
            }
            *c = '/';
        }
    }
    if (mkdir(p, 0700) != 0 && errno != EEXIST) {
        snprintf(errmsg, errlen, "cannot create raft directory %s: %s", p, strerror(errno));
        return -1;
    }
    return 0;
}

static int bootstrap(struct rnode *rn, char *errmsg, size_t errlen)
{
    bool member = false;
    for (unsigned i = 0; i < rn->conf.nbootstrap; i++) {
        member = member || rn->conf.bootstrap[i].id == rn->conf.id;
    }
    if (!member) {
        return 0; /* a node that joins later waits to be added */
    }
    struct raft_configuration c;
    raft_configuration_init(&c);
    int rv = 0;
    for (unsigned i = 0; i < rn->conf.nbootstrap && rv == 0; i++) {
        rv = raft_configuration_add(&c, rn->conf.bootstrap[i].id, rn->conf.bootstrap[i].address,
                                    RAFT_VOTER);
    }
    if (rv == 0) {
        rv = raft_bootstrap(&rn->raft, &c);
        if (rv == RAFT_CANTBOOTSTRAP) {
            rv = 0; /* not a new node: its state is on disk */
        }
    }
    raft_configuration_close(&c);
    if (rv != 0) {
        snprintf(errmsg, errlen, "raft bootstrap: %s", raft_strerror(rv));
        return -1;
    }
    return 0;
}

int rnode_start(struct rnode **out, uv_loop_t *loop, const struct rnode_config *conf,
                struct fsm *fsm, rnode_fatal_cb fatal, void *fatal_data, char *errmsg,
                size_t errlen)
{
    *out = NULL;
    if (make_dir(conf->dir, errmsg, errlen) != 0) {
        return -1;
    }
    struct rnode *rn = calloc(1, sizeof(*rn));
    if (rn == NULL) {
        snprintf(errmsg, errlen, "out of memory starting raft");
        return -1;
    }
    rn->loop = loop;
    rn->conf = *conf;
    rn->fsm = fsm;
    rn->fatal = fatal;
    rn->fatal_data = fatal_data;
    rfsm_init(&rn->adapter, fsm, &rn->raft);
    rfsm_async_snapshots(&rn->adapter); /* raft_uv's io has async_work */
    rn->raft.data = rn;
    rn->poll.data = rn;
    uv_timer_init(loop, &rn->poll);

    if (transport_init(rn, errmsg, errlen) != 0) {
        goto err_timer;
    }
    int rv = raft_uv_init(&rn->io, loop, rn->conf.dir, &rn->transport);
    if (rv != 0) {
        snprintf(errmsg, errlen, "raft storage in %s: %s", rn->conf.dir, rn->io.errmsg);
        goto err_transport;
    }
    raft_uv_set_connect_retry_delay(&rn->io, conf->connect_retry_delay_ms);
    /* raft 0.15's followers claim entries they may not hold; the guard caps the claim. */
    if (rio_guard_init(&rn->guard, &rn->io, errmsg, errlen) != 0) {
        goto err_io;
    }
    /* Probes go straight to raft_uv; their answers come back through the guard's hook. A
     * round lasts at most an election timeout (a leader cut off from the majority steps down
     * by then) and re-sends unanswered probes every heartbeat. */
    if (readindex_init(&rn->ri, &rn->raft, &rn->io, conf->election_timeout_ms,
                       conf->heartbeat_timeout_ms, errmsg, errlen) != 0) {
        goto err_io;
    }
    rn->guard.result_hook = read_index_result;
    rn->guard.result_hook_data = rn;
    rv = raft_init(&rn->raft, &rn->guard.io, &rn->adapter.raft_fsm, conf->id, conf->address);
    if (rv != 0) {
        snprintf(errmsg, errlen, "raft init: %s", raft_errmsg(&rn->raft));
        goto err_io;
    }
    raft_set_election_timeout(&rn->raft, conf->election_timeout_ms);
    raft_set_heartbeat_timeout(&rn->raft, conf->heartbeat_timeout_ms);
    raft_set_install_snapshot_timeout(&rn->raft, conf->install_snapshot_timeout_ms);
    raft_set_snapshot_threshold(&rn->raft, conf->snapshot_threshold);
    rn->snapshot_threshold = conf->snapshot_threshold;
    raft_set_snapshot_trailing(&rn->raft, conf->snapshot_trailing);
    raft_set_pre_vote(&rn->raft, true);
    if (bootstrap(rn, errmsg, errlen) != 0) {
        goto err_raft;
    }
    rv = raft_start(&rn->raft);
    if (rv != 0) {
        /* raft_uv 0.15 does not pass on why its transport failed to listen (a port in use):
         * the transport's own message keeps the cause. */
        const char *why = raft_errmsg(&rn->raft);
        if (why == NULL || why[0] == '\0') {
            why = rn->transport.errmsg[0] != '\0' ? rn->transport.errmsg : raft_strerror(rv);
        }
        snprintf(errmsg, errlen, "raft start on %s: %s", conf->address, why);
        goto err_raft;
    }
    uv_timer_start(&rn->poll, on_poll, POLL_MS, POLL_MS);
    *out = rn;
    return 0;

err_raft:
    /* raft_close also closes the io and transport through raft_closed(). */
    rn->phase = CLOSING;
    raft_close(&rn->raft, raft_closed);
    return -1;
err_io:
    raft_uv_close(&rn->io);
err_transport:
    transport_free(rn);
err_timer:
    uv_close((uv_handle_t *)&rn->poll, poll_closed);
    return -1;
}
