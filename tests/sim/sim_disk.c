/* Each simulated server's disk: the raft_io storage methods (load, bootstrap, term and vote,
 * append, truncate, snapshots) replace the fixture's, so that a crash can drop exactly what
 * was not yet persisted and a restart loads exactly what was (sim.h).
 *
 * Invariants: the persisted state changes only when an operation completes, and operations
 * complete in submission order (one disk, like raft_uv's writer), each no earlier than its
 * submission time plus the server's disk latency. set_term and set_vote are synchronous in
 * raft 0.15 (raft_uv writes its metadata before returning), so they persist at once.
 * Truncations are queued behind the appends submitted before them, as raft_uv orders them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"

static struct node *node_of(struct raft_io *io)
{
    struct raft *r = io->data;
    return r->fsm->data; /* the rfsm, first member of the node */
}

static void buf_copy(struct raft_buffer *dst, const struct raft_buffer *src)
{
    dst->len = src->len;
    dst->base = raft_malloc(src->len == 0 ? 1 : src->len);
    if (dst->base == NULL) {
        abort();
    }
    memcpy(dst->base, src->base, src->len);
}

/* A deep copy of SRC into one raft_malloc'd buffer, as raft expects from load and
 * snapshot_get (it takes ownership of the result and of its parts). */
static struct raft_snapshot *snapshot_copy(const struct raft_snapshot *src)
{
    struct raft_snapshot *d = raft_calloc(1, sizeof(*d));
    if (d == NULL) {
        abort();
    }
    d->index = src->index;
    d->term = src->term;
    d->configuration_index = src->configuration_index;
    raft_configuration_init(&d->configuration);
    for (unsigned i = 0; i < src->configuration.n; i++) {
        const struct raft_server *sv = &src->configuration.servers[i];
        if (raft_configuration_add(&d->configuration, sv->id, sv->address, sv->role) != 0) {
            abort();
        }
    }
    size_t size = 0;
    for (unsigned i = 0; i < src->n_bufs; i++) {
        size += src->bufs[i].len;
    }
    d->bufs = raft_malloc(sizeof(*d->bufs));
    if (d->bufs == NULL) {
        abort();
    }
    d->n_bufs = 1;
    d->bufs[0].len = size;
    d->bufs[0].base = raft_malloc(size == 0 ? 1 : size);
    if (d->bufs[0].base == NULL) {
        abort();
    }
    size_t off = 0;
    for (unsigned i = 0; i < src->n_bufs; i++) {
        memcpy((char *)d->bufs[0].base + off, src->bufs[i].base, src->bufs[i].len);
        off += src->bufs[i].len;
    }
    return d;
}

static void snapshot_free(struct raft_snapshot *s)
{
    if (s == NULL) {
        return;
    }
    raft_configuration_close(&s->configuration);
    for (unsigned i = 0; i < s->n_bufs; i++) {
        raft_free(s->bufs[i].base);
    }
    raft_free(s->bufs);
    raft_free(s);
}

/* Drops the persisted entries from index FROM on. */
static void drop_from(struct sim_disk *d, raft_index from)
{
    while (d->n > 0 && d->first + d->n - 1 >= from) {
        raft_free(d->e[d->n - 1].buf.base);
        d->n--;
    }
    if (d->n == 0) {
        d->first = from;
    }
}

/* Drops the persisted entries up to index UPTO. */
static void drop_upto(struct sim_disk *d, raft_index upto)
{
    size_t k = 0;
    while (k < d->n && d->first + k <= upto) {
        raft_free(d->e[k].buf.base);
        k++;
    }
    memmove(d->e, d->e + k, (d->n - k) * sizeof(*d->e));
    d->n -= k;
    d->first += k;
}

/* Appends OP to the queue Q of *N entries (capacity *CAP), growing it. */
static void push_to(struct sim_disk_op **q, size_t *n, size_t *cap, const struct sim_disk_op *op)
{
    if (*n == *cap) {
        size_t c = *cap == 0 ? 16 : 2 * *cap;
        struct sim_disk_op *o = realloc(*q, c * sizeof(*o));
        if (o == NULL) {
            abort();
        }
        *q = o;
        *cap = c;
    }
    (*q)[(*n)++] = *op;
}

static void push_op(struct sim_disk *d, const struct sim_disk_op *op)
{
    push_to(&d->ops, &d->n_ops, &d->cap_ops, op);
}

static void complete(struct node *nd, const struct sim_disk_op *op)
{
    struct sim_disk *d = &nd->disk;
    switch (op->kind) {
    case SIM_DISK_APPEND: {
        if (d->n > 0 && op->index > d->first + d->n) {
            sim_fail(nd->sim, "server %u: append at %llu leaves a gap after persisted %llu",
                     nd->idx, (unsigned long long)op->index,
                     (unsigned long long)(d->first + d->n - 1));
        }
        drop_from(d, op->index);
        if (d->n + op->n > d->cap) {
            size_t cap = d->cap == 0 ? 64 : d->cap;
            while (cap < d->n + op->n) {
                cap *= 2;
            }
            struct raft_entry *e = realloc(d->e, cap * sizeof(*e));
            if (e == NULL) {
                abort();
            }
            d->e = e;
            d->cap = cap;
        }
        for (unsigned i = 0; i < op->n; i++) {
            struct raft_entry *e = &d->e[d->n++];
            e->term = op->entries[i].term;
            e->type = op->entries[i].type;
            e->batch = NULL;
            buf_copy(&e->buf, &op->entries[i].buf);
        }
        op->append->cb(op->append, 0);
        break;
    }
    case SIM_DISK_TRUNCATE:
        /* raft 0.15 installs a snapshot with snapshot_put(trailing 0) and then truncate(1):
         * the log is then the snapshot alone. */
        drop_from(d, op->index);
        if (d->snap != NULL && op->index <= d->snap->index) {
            d->first = d->snap->index + 1;
        }
        break;
    case SIM_DISK_SNAPSHOT_PUT: {
        snapshot_free(d->snap);
        d->snap = snapshot_copy(op->snap);
        if (op->trailing == 0) {
            drop_from(d, 0);
            d->first = d->snap->index + 1;
        } else if (d->snap->index > op->trailing) {
            drop_upto(d, d->snap->index - op->trailing);
        }
        op->put->cb(op->put, 0);
        break;
    }
    case SIM_DISK_SNAPSHOT_GET:
        op->get->cb(op->get, snapshot_copy(d->snap), 0);
        break;
    case SIM_DISK_WORK:
        op->work->cb(op->work, op->work->work(op->work));
        break;
    }
}

void sim_disk_pump(struct sim *s)
{
    for (unsigned i = 0; i < s->o.n; i++) {
        struct node *nd = &s->nodes[i];
        struct sim_disk *d = &nd->disk;
        /* Bounded: each pass completes one queued operation, and callbacks may queue new ones
         * due no earlier than now + latency (latency >= 1). */
        while (d->n_ops > 0 && d->ops[0].due <= s->f.time && s->alive[i]) {
            struct sim_disk_op op = d->ops[0];
            memmove(d->ops, d->ops + 1, (d->n_ops - 1) * sizeof(*d->ops));
            d->n_ops--;
            complete(nd, &op);
        }
        while (d->n_works > 0 && d->works[0].due <= s->f.time && s->alive[i]) {
            struct sim_disk_op op = d->works[0];
            memmove(d->works, d->works + 1, (d->n_works - 1) * sizeof(*d->works));
            d->n_works--;
            complete(nd, &op);
        }
    }
}

/* raft's io->async_work: the work (a snapshot's second half, rfsm.c) runs when it is due,
 * eight disk latencies after it was submitted, on its own queue (raft_uv runs it on a worker
 * thread, not behind the disk's writes), so that the server applies entries, sends, and takes
 * part in elections between the two halves of a snapshot. */
static int disk_async_work(struct raft_io *io, struct raft_io_async_work *req,
                           raft_io_async_work_cb cb)
{
    struct node *nd = node_of(io);
    struct sim_disk *d = &nd->disk;
    req->cb = cb;
    /* Due times non-decreasing: the same delay for every work of a server. */
    struct sim_disk_op op = {
        .kind = SIM_DISK_WORK, .due = nd->sim->f.time + 8 * (raft_time)d->latency, .work = req};
    push_to(&d->works, &d->n_works, &d->cap_works, &op);
    return 0;
}

static raft_time due(struct node *nd)
{
    struct sim *s = nd->sim;
    raft_time t = s->f.time + nd->disk.latency;
    /* One disk: an operation never completes before one submitted earlier. */
    if (nd->disk.n_ops > 0 && nd->disk.ops[nd->disk.n_ops - 1].due > t) {
        t = nd->disk.ops[nd->disk.n_ops - 1].due;
    }
    return t;
}

static int disk_load(struct raft_io *io, raft_term *term, raft_id *voted_for,
                     struct raft_snapshot **snapshot, raft_index *start_index,
                     struct raft_entry *entries[], size_t *n_entries)
{
    struct sim_disk *d = &node_of(io)->disk;
    *term = d->term;
    *voted_for = d->vote;
    *snapshot = d->snap != NULL ? snapshot_copy(d->snap) : NULL;
    *start_index = d->n > 0 ? d->first : (d->snap != NULL ? d->snap->index + 1 : 1);
    *entries = NULL;
    *n_entries = d->n;
    if (d->n > 0) {
        size_t size = 0;
        for (size_t i = 0; i < d->n; i++) {
            size += d->e[i].buf.len;
        }
        struct raft_entry *es = raft_calloc(d->n, sizeof(*es));
        char *batch = raft_malloc(size == 0 ? 1 : size);
        if (es == NULL || batch == NULL) {
            abort();
        }
        size_t off = 0;
        for (size_t i = 0; i < d->n; i++) {
            es[i].term = d->e[i].term;
            es[i].type = d->e[i].type;
            es[i].buf.base = batch + off;
            es[i].buf.len = d->e[i].buf.len;
            es[i].batch = batch;
            memcpy(batch + off, d->e[i].buf.base, d->e[i].buf.len);
            off += d->e[i].buf.len;
        }
        *entries = es;
    }
    d->proj_last = d->n > 0 ? d->first + d->n - 1 : (d->snap != NULL ? d->snap->index : 0);
    d->proj_snap = d->snap != NULL ? d->snap->index : 0;
    return 0;
}

static int disk_bootstrap(struct raft_io *io, const struct raft_configuration *conf)
{
    struct sim_disk *d = &node_of(io)->disk;
    if (d->term != 0 || d->n != 0 || d->snap != NULL) {
        return RAFT_CANTBOOTSTRAP;
    }
    struct raft_buffer buf;
    int rv = raft_configuration_encode(conf, &buf);
    if (rv != 0) {
        return rv;
    }
    d->e = calloc(64, sizeof(*d->e));
    if (d->e == NULL) {
        abort();
    }
    d->cap = 64;
    d->e[0] = (struct raft_entry){.term = 1, .type = RAFT_CHANGE, .buf = buf};
    d->n = 1;
    d->first = 1;
    d->term = 1;
    d->vote = 0;
    return 0;
}

static int disk_set_term(struct raft_io *io, raft_term term)
{
    struct sim_disk *d = &node_of(io)->disk;
    d->term = term;
    d->vote = 0;
    return 0;
}

static int disk_set_vote(struct raft_io *io, raft_id id)
{
    node_of(io)->disk.vote = id;
    return 0;
}

static int disk_append(struct raft_io *io, struct raft_io_append *req,
                       const struct raft_entry entries[], unsigned n, raft_io_append_cb cb)
{
    struct node *nd = node_of(io);
    struct raft *r = io->data;
    req->cb = cb;
    /* raft 0.15 appends to its in-memory log first, so these are its last N entries. */
    raft_index index = raft_last_index(r) - n + 1;
    if (index != nd->disk.proj_last + 1) {
        sim_fail(nd->sim, "server %u appends at %llu, but its disk would end at %llu", nd->idx,
                 (unsigned long long)index, (unsigned long long)nd->disk.proj_last);
    }
    nd->disk.proj_last = index + n - 1;
    struct sim_disk_op op = {.kind = SIM_DISK_APPEND,
                             .due = due(nd),
                             .index = index,
                             .append = req,
                             .entries = entries,
                             .n = n};
    push_op(&nd->disk, &op);
    return 0;
}

static int disk_truncate(struct raft_io *io, raft_index index)
{
    struct node *nd = node_of(io);
    nd->disk.proj_last = index - 1;
    if (index <= nd->disk.proj_snap) {
        nd->disk.proj_last = nd->disk.proj_snap; /* the truncate(1) of an install */
    }
    struct sim_disk_op op = {.kind = SIM_DISK_TRUNCATE, .due = due(nd), .index = index};
    push_op(&nd->disk, &op);
    return 0;
}

static int disk_snapshot_put(struct raft_io *io, unsigned trailing,
                             struct raft_io_snapshot_put *req, const struct raft_snapshot *snapshot,
                             raft_io_snapshot_put_cb cb)
{
    struct node *nd = node_of(io);
    req->cb = cb;
    if (snapshot->index > nd->disk.proj_snap) {
        nd->disk.proj_snap = snapshot->index;
    }
    if (trailing == 0) {
        nd->disk.proj_last = snapshot->index;
        sim_trace(nd->sim, "disk %u: installing snapshot %llu", nd->idx,
                  (unsigned long long)snapshot->index);
    }
    struct sim_disk_op op = {.kind = SIM_DISK_SNAPSHOT_PUT,
                             .due = due(nd),
                             .put = req,
                             .snap = snapshot,
                             .trailing = trailing};
    push_op(&nd->disk, &op);
    return 0;
}

static int disk_snapshot_get(struct raft_io *io, struct raft_io_snapshot_get *req,
                             raft_io_snapshot_get_cb cb)
{
    struct node *nd = node_of(io);
    req->cb = cb;
    struct sim_disk_op op = {.kind = SIM_DISK_SNAPSHOT_GET, .due = due(nd), .get = req};
    push_op(&nd->disk, &op);
    return 0;
}

/* A message handed to the fixture's network, which keeps only a shallow copy until the next
 * step: the wrapper owns a deep copy, so that a crash (raft_close frees raft's log) cannot
 * leave the fixture reading freed entries. RAFT's request is answered when the fixture
 * answers ours, or at the crash. */
struct sim_send {
    struct raft_io_send ours;
    struct raft_io_send *theirs; /* NULL once answered at a crash */
    raft_io_send_cb cb;
    struct raft_message msg;
    struct node *nd;
};

static void send_release(struct sim_send *w)
{
    if (w->msg.type == RAFT_IO_APPEND_ENTRIES && w->msg.append_entries.n_entries > 0) {
        for (unsigned i = 0; i < w->msg.append_entries.n_entries; i++) {
            raft_free(w->msg.append_entries.entries[i].buf.base);
        }
        raft_free(w->msg.append_entries.entries);
    } else if (w->msg.type == RAFT_IO_INSTALL_SNAPSHOT) {
        raft_configuration_close(&w->msg.install_snapshot.conf);
        raft_free(w->msg.install_snapshot.data.base);
    }
    free(w);
}

static void send_forget(struct sim_disk *d, struct sim_send *w)
{
    for (size_t i = 0; i < d->n_sends; i++) {
        if (d->sends[i] == w) {
            d->sends[i] = d->sends[--d->n_sends];
            return;
        }
    }
}

static void send_done(struct raft_io_send *req, int status)
{
    struct sim_send *w = req->data;
    if (w->theirs != NULL) {
        send_forget(&w->nd->disk, w);
        if (w->cb != NULL) { /* raft sends TimeoutNow without a callback */
            w->cb(w->theirs, status);
        }
    }
    send_release(w);
}

static int disk_send(struct raft_io *io, struct raft_io_send *req, const struct raft_message *m,
                     raft_io_send_cb cb)
{
    struct node *nd = node_of(io);
    struct sim_disk *d = &nd->disk;
    struct sim_send *w = sim_xcalloc(1, sizeof(*w));
    w->ours.data = w;
    w->theirs = req;
    w->cb = cb;
    w->nd = nd;
    w->msg = *m;
    if (m->type == RAFT_IO_APPEND_ENTRIES && m->append_entries.n_entries > 0) {
        unsigned n = m->append_entries.n_entries;
        struct raft_entry *es = raft_calloc(n, sizeof(*es));
        if (es == NULL) {
            abort();
        }
        for (unsigned i = 0; i < n; i++) {
            es[i] = m->append_entries.entries[i];
            es[i].batch = NULL;
            buf_copy(&es[i].buf, &m->append_entries.entries[i].buf);
        }
        w->msg.append_entries.entries = es;
    } else if (m->type == RAFT_IO_INSTALL_SNAPSHOT) {
        const struct raft_configuration *c = &m->install_snapshot.conf;
        raft_configuration_init(&w->msg.install_snapshot.conf);
        for (unsigned i = 0; i < c->n; i++) {
            if (raft_configuration_add(&w->msg.install_snapshot.conf, c->servers[i].id,
                                       c->servers[i].address, c->servers[i].role) != 0) {
                abort();
            }
        }
        buf_copy(&w->msg.install_snapshot.data, &m->install_snapshot.data);
    }
    int rv = d->orig_send(io, &w->ours, &w->msg, send_done);
    if (rv != 0) {
        send_release(w);
        return rv;
    }
    if (d->n_sends == d->cap_sends) {
        size_t cap = d->cap_sends == 0 ? 16 : 2 * d->cap_sends;
        struct sim_send **a = realloc(d->sends, cap * sizeof(*a));
        if (a == NULL) {
            abort();
        }
        d->sends = a;
        d->cap_sends = cap;
    }
    d->sends[d->n_sends++] = w;
    return 0;
}

/* raft_close (a crash, or the end of the run): what has not completed never reaches the disk.
 * Every request is still answered, so that raft releases what it allocated for it; with
 * success, because raft 0.15's append callbacks crash on an error once raft is closing (it
 * is unavailable by then, so it acts on none of these answers). */
static void disk_close(struct raft_io *io, raft_io_close_cb cb)
{
    struct node *nd = node_of(io);
    struct sim_disk *d = &nd->disk;
    size_t n = d->n_ops;
    struct sim_disk_op *ops = d->ops;
    d->ops = NULL;
    d->n_ops = d->cap_ops = 0;
    for (size_t i = 0; i < n; i++) {
        switch (ops[i].kind) {
        case SIM_DISK_APPEND:
            ops[i].append->cb(ops[i].append, 0);
            break;
        case SIM_DISK_SNAPSHOT_PUT:
            ops[i].put->cb(ops[i].put, 0);
            break;
        case SIM_DISK_SNAPSHOT_GET:
            if (d->snap != NULL) {
                ops[i].get->cb(ops[i].get, snapshot_copy(d->snap), 0);
            } else {
                ops[i].get->cb(ops[i].get, NULL, RAFT_CANCELED);
            }
            break;
        case SIM_DISK_TRUNCATE:
            break;
        case SIM_DISK_WORK: /* queued on works, never on ops */
            break;
        }
    }
    free(ops);
    n = d->n_works;
    ops = d->works;
    d->works = NULL;
    d->n_works = d->cap_works = 0;
    for (size_t i = 0; i < n; i++) {
        /* Not run: raft gets it back failed, as from an io that closed first. */
        ops[i].work->cb(ops[i].work, RAFT_CANCELED);
    }
    free(ops);
    /* Bounded: each answer removes one pending send, and raft sends nothing while closing. */
    while (d->n_sends > 0) {
        struct sim_send *w = d->sends[--d->n_sends];
        struct raft_io_send *theirs = w->theirs;
        w->theirs = NULL; /* the fixture still holds ours, and frees it at the next step */
        if (w->cb != NULL) {
            w->cb(theirs, 0);
        }
    }
    if (d->crashing) {
        /* The fixture's own close releases its store and drops its queue for good, which
         * only its final close may do; the messages already sent stay on the wire. */
        d->crashing = false;
        cb(io);
        return;
    }
    d->orig_close(io, cb);
}

void sim_disk_install(struct node *nd, struct raft_io *io, unsigned latency)
{
    nd->disk.latency = latency;
    nd->disk.orig_close = io->close;
    nd->disk.orig_send = io->send;
    io->send = disk_send;
    io->load = disk_load;
    io->bootstrap = disk_bootstrap;
    io->set_term = disk_set_term;
    io->set_vote = disk_set_vote;
    io->append = disk_append;
    io->truncate = disk_truncate;
    io->snapshot_put = disk_snapshot_put;
    io->snapshot_get = disk_snapshot_get;
    io->close = disk_close;
    io->async_work = disk_async_work;
    io->version = 2; /* async_work, for rfsm's asynchronous snapshots */
}

raft_index sim_disk_last(const struct node *nd)
{
    const struct sim_disk *d = &nd->disk;
    return d->n > 0 ? d->first + d->n - 1 : (d->snap != NULL ? d->snap->index : 0);
}

void sim_disk_free(struct node *nd)
{
    struct sim_disk *d = &nd->disk;
    drop_from(d, 0);
    free(d->e);
    free(d->ops);
    free(d->works);
    free(d->sends);
    snapshot_free(d->snap);
    memset(d, 0, sizeof(*d));
}
