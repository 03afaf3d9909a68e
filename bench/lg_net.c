/*
 * The HTTP engine of the load generator: every client is one keep-alive TCP connection on a
 * single libuv loop, running a closed loop of requests against conclave or etcd (lg_run.h).
 *
 * A client goes through three phases: it learns the current version of each key it owns (one
 * read per key, untimed), waits until every client has learned, then runs the timed phase
 * until the deadline. The setup workload writes each owned key once instead of timing.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "lg_run.h"

enum phase { PH_LEARN, PH_WAIT, PH_SETUP, PH_TIMED, PH_DONE };

struct net;

struct client {
    struct net *net;
    int id;
    uv_tcp_t tcp;
    uv_connect_t creq;
    uv_write_t wreq;
    uv_timer_t timer; /* the request timeout, or the delay before reconnecting */
    struct sockaddr_in addr;
    const char *host;
    int open;      /* tcp is initialised (and must be closed) */
    int connected; /* a connection is established */
    int busy;      /* a request is in flight */
    enum phase phase;
    struct lg_buf req;
    struct lg_resp resp;
    int is_write;      /* the operation in flight is a write */
    int key;           /* its key index */
    int slot;          /* its slot in own[] for a write or learning read */
    uint64_t expected; /* a write's expected version */
    uint64_t t0;       /* when the request was sent */
    int *own;          /* keys this client owns; owned */
    uint64_t *version; /* their last known versions; owned */
    int nown;
    int next; /* the next slot to learn, set up or write */
    uint64_t rng;
    uint64_t seq;
    uint64_t ops, conflicts, errors;
    struct lg_hist lat;
    char rbuf[65536];
};

struct net {
    const struct lg_opts *o;
    uv_loop_t loop;
    uv_timer_t tick; /* progress line, deadline and failover kill */
    struct client *c;
    int learned;       /* clients that finished learning */
    uint64_t t_start;  /* start of the timed phase, 0 before */
    uint64_t deadline; /* end of the timed phase */
    uint64_t t_kill;   /* when the leader was killed, 0 before */
    uint64_t t_first;  /* first write acknowledged after the kill, 0 before */
    int stopping;
    unsigned ticks;
    char err[512]; /* a fatal error: the run means nothing */
};

uint64_t lg_now_ns(void)
{
    return uv_hrtime();
}

uint64_t lg_rand(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 0x2545F4914F6CDD1DULL;
}

void lg_progress(const struct lg_opts *o, double elapsed_s, uint64_t ops, uint64_t errors)
{
    if (o->quiet) {
        return;
    }
    double rate = elapsed_s > 0 ? (double)ops / elapsed_s : 0;
    fprintf(stderr, "\r  %-40s %5.1f/%.0f s  %9.0f ops/s  %" PRIu64 " errors   ",
            o->label ? o->label : "", elapsed_s, o->duration_s, rate, errors);
    fflush(stderr);
}

static void issue(struct client *c);
static void reconnect_later(struct client *c, uint64_t delay_ms);

static void fatal(struct net *n, const char *what)
{
    if (!n->err[0]) {
        snprintf(n->err, sizeof n->err, "%s", what);
    }
    n->stopping = 1;
}

/* Builds the request for C's next operation, or returns 1 when C has nothing more to do. */
static int build_next(struct client *c)
{
    const struct lg_opts *o = c->net->o;
    char key[32];
    char value[4096];
    int stale = 0;
    c->is_write = 0;
    switch (c->phase) {
    case PH_LEARN:
        if (c->next >= c->nown) {
            return 1;
        }
        c->slot = c->next;
        c->key = c->own[c->slot];
        break;
    case PH_SETUP:
        if (c->next >= c->nown) {
            return 1;
        }
        c->slot = c->next;
        c->key = c->own[c->slot];
        c->is_write = 1;
        break;
    case PH_TIMED:
        if (o->workload == LG_W_CAS || o->workload == LG_W_FAILOVER ||
            (o->workload == LG_W_MIXED && (int)(lg_rand(&c->rng) % 100) < o->write_pct)) {
            if (c->nown == 0) {
                return 1;
            }
            c->slot = c->next;
            c->next = (c->next + 1) % c->nown;
            c->key = c->own[c->slot];
            c->is_write = 1;
        } else {
            c->key = (int)(lg_rand(&c->rng) % (uint64_t)o->keys);
            stale = o->workload == LG_W_STALE;
        }
        break;
    default:
        return 1;
    }
    lg_key(key, sizeof key, c->key);
    int rc;
    if (c->is_write) {
        c->expected = c->version[c->slot];
        c->seq++;
        if (lg_value(value, sizeof value, (size_t)o->value_size, c->key, c->seq) == 0) {
            fatal(c->net, "cannot build a value of the requested size");
            return 1;
        }
        rc = o->system == LG_ETCD ? lg_etcd_write(&c->req, c->host, key, value, c->expected)
                                  : lg_conclave_write(&c->req, c->host, o->token, o->project, key,
                                                      value, c->expected);
    } else {
        rc = o->system == LG_ETCD
                 ? lg_etcd_read(&c->req, c->host, key, stale)
                 : lg_conclave_read(&c->req, c->host, o->token, o->project, key, stale);
    }
    if (rc != 0) {
        fatal(c->net, "out of memory building a request");
        return 1;
    }
    return 0;
}

static void on_close(uv_handle_t *h)
{
    struct client *c = h->data;
    c->open = 0;
    c->connected = 0;
    if (!c->net->stopping && c->phase != PH_DONE) {
        reconnect_later(c, 0);
    }
}

/* Drops C's connection; on_close reconnects unless the run is over. */
static void drop(struct client *c)
{
    uv_timer_stop(&c->timer);
    c->busy = 0;
    if (c->open && !uv_is_closing((uv_handle_t *)&c->tcp)) {
        uv_close((uv_handle_t *)&c->tcp, on_close);
    }
}

/* Counts a failed operation and starts over on a new connection. */
static void op_failed(struct client *c)
{
    c->errors++;
    uv_timer_stop(&c->timer);
    c->busy = 0;
    if (c->open && !uv_is_closing((uv_handle_t *)&c->tcp)) {
        /* The close callback reconnects after a pause, so that a dead node is not hammered. */
        c->connected = 0;
        uv_close((uv_handle_t *)&c->tcp, on_close);
    }
}

static void maybe_finish(struct net *n)
{
    if (n->stopping) {
        return;
    }
    for (int i = 0; i < n->o->clients; i++) {
        if (n->c[i].phase != PH_DONE && n->c[i].phase != PH_WAIT) {
            return;
        }
    }
    if (n->o->workload == LG_W_SETUP || n->t_start) {
        n->stopping = 1;
    }
}

/* Every client learned its versions: the timed phase starts for all at once. */
static void start_timed(struct net *n)
{
    n->t_start = lg_now_ns();
    n->deadline = n->t_start + (uint64_t)(n->o->duration_s * 1e9);
    for (int i = 0; i < n->o->clients; i++) {
        struct client *c = &n->c[i];
        c->phase = n->o->workload == LG_W_SETUP ? PH_SETUP : PH_TIMED;
        c->next = 0;
        if (c->connected && !c->busy) {
            issue(c);
        }
    }
}

/* Moves C on once its current phase has nothing left. */
static void phase_done(struct client *c)
{
    struct net *n = c->net;
    if (c->phase == PH_LEARN) {
        c->phase = PH_WAIT;
        if (++n->learned == n->o->clients) {
            start_timed(n);
        }
        return;
    }
    c->phase = PH_DONE;
    maybe_finish(n);
}

static void on_timeout(uv_timer_t *t)
{
    struct client *c = t->data;
    if (c->busy) {
        op_failed(c);
    }
}

static void on_write(uv_write_t *w, int status)
{
    struct client *c = w->data;
    if (status < 0 && c->busy) {
        op_failed(c);
    }
}

static void issue(struct client *c)
{
    struct net *n = c->net;
    if (n->stopping || c->busy || !c->connected) {
        return;
    }
    if (c->phase == PH_TIMED && lg_now_ns() >= n->deadline) {
        phase_done(c);
        return;
    }
    if (c->phase == PH_WAIT || c->phase == PH_DONE) {
        return;
    }
    if (build_next(c) != 0) {
        phase_done(c);
        return;
    }
    lg_resp_start(&c->resp);
    c->busy = 1;
    c->t0 = lg_now_ns();
    uv_buf_t b = uv_buf_init(c->req.p, (unsigned int)c->req.len);
    c->wreq.data = c;
    int rc = uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, on_write);
    if (rc != 0) {
        op_failed(c);
        return;
    }
    uv_timer_start(&c->timer, on_timeout, (uint64_t)(n->o->timeout_s * 1000), 0);
}

/* Takes the answer in C->resp for the operation in flight. */
static void handle_answer(struct client *c)
{
    struct net *n = c->net;
    const struct lg_opts *o = n->o;
    uint64_t t1 = lg_now_ns();
    uint64_t version = 0;
    char why[256] = "";
    enum lg_outcome out;
    const char *body = c->resp.body.p ? c->resp.body.p : "";
    size_t len = c->resp.body.len;
    if (c->is_write) {
        out = o->system == LG_ETCD
                  ? lg_etcd_write_result(c->resp.status, body, len, c->expected, &version, why,
                                         sizeof why)
                  : lg_conclave_write_result(c->resp.status, body, len, &version, why, sizeof why);
    } else if (c->phase == PH_LEARN && o->system != LG_ETCD && c->resp.status == 404) {
        out = LG_OK; /* a key that does not exist yet has version 0 */
    } else {
        out = o->system == LG_ETCD
                  ? lg_etcd_read_result(c->resp.status, body, len, &version, why, sizeof why)
                  : lg_conclave_read_result(c->resp.status, body, len, &version, why, sizeof why);
    }
    if (out == LG_ERROR) {
        c->errors++;
        if (getenv("LG_DEBUG")) {
            fprintf(stderr, "\nclient %d: %s\n", c->id, why);
        }
        if ((c->phase == PH_LEARN || c->phase == PH_SETUP) && c->errors > 100) {
            /* Setup and learning must finish; a steady error is a broken target, not load. */
            char msg[400];
            snprintf(msg, sizeof msg, "%s the keys failed: %.300s",
                     c->phase == PH_LEARN ? "learning the versions of" : "creating", why);
            fatal(n, msg);
        }
        return;
    }
    if (c->phase == PH_LEARN) {
        c->version[c->slot] = version;
        c->next++;
        return;
    }
    if (c->is_write) {
        c->version[c->slot] = version;
        if (out == LG_CONFLICT && c->phase == PH_SETUP) {
            c->next++; /* created before (or by a first attempt whose answer was lost) */
            return;
        }
        if (out == LG_CONFLICT) {
            c->conflicts++;
            return; /* the next write of this key uses the version just learned */
        }
        if (c->phase == PH_SETUP) {
            c->next++;
            return;
        }
        /* Only a write sent after the kill counts: an answer already on its way when the
         * leader died (committed before the kill) would otherwise end the failover at once. */
        if (n->t_kill && !n->t_first && c->t0 > n->t_kill) {
            n->t_first = t1;
            /* A little more steady state after the first acknowledged write, then stop. */
            uint64_t end = t1 + 500000000ULL;
            if (end < n->deadline) {
                n->deadline = end;
            }
        }
    }
    if (c->phase == PH_TIMED && t1 <= n->deadline) {
        c->ops++;
        if (lg_hist_add(&c->lat, t1 - c->t0) != 0) {
            fatal(n, "out of memory recording a latency");
        }
    }
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    (void)suggested;
    struct client *c = h->data;
    *b = uv_buf_init(c->rbuf, sizeof c->rbuf);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
    struct client *c = s->data;
    if (nread == 0) {
        return;
    }
    if (!c->busy) {
        /* Bytes or a close while idle: the server dropped a keep-alive connection. */
        drop(c);
        return;
    }
    if (nread < 0) {
        if (nread == UV_EOF && lg_resp_eof(&c->resp) == 0) {
            goto complete;
        }
        op_failed(c);
        return;
    }
    if (lg_resp_feed(&c->resp, b->base, (size_t)nread) != 0) {
        if (getenv("LG_DEBUG")) {
            fprintf(stderr, "\nclient %d: %s\n", c->id, c->resp.error);
        }
        op_failed(c);
        return;
    }
    if (!c->resp.complete) {
        return;
    }
complete:
    uv_timer_stop(&c->timer);
    c->busy = 0;
    handle_answer(c);
    if (c->net->stopping) {
        return;
    }
    if (!c->resp.keep_alive) {
        drop(c);
        return;
    }
    issue(c);
}

static void on_connect(uv_connect_t *r, int status)
{
    struct client *c = r->data;
    if (status < 0) {
        if (status != UV_ECANCELED) {
            op_failed(c);
        }
        return;
    }
    c->connected = 1;
    uv_tcp_nodelay(&c->tcp, 1);
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0) {
        op_failed(c);
        return;
    }
    issue(c);
}

static void on_reconnect_timer(uv_timer_t *t)
{
    struct client *c = t->data;
    struct net *n = c->net;
    if (n->stopping || c->open) {
        return;
    }
    if (uv_tcp_init(&n->loop, &c->tcp) != 0) {
        fatal(n, "cannot create a TCP handle");
        return;
    }
    c->tcp.data = c;
    c->open = 1;
    c->creq.data = c;
    if (uv_tcp_connect(&c->creq, &c->tcp, (const struct sockaddr *)&c->addr, on_connect) != 0) {
        op_failed(c);
    }
}

static void reconnect_later(struct client *c, uint64_t delay_ms)
{
    /* After a failure, wait a little so that a refused connection does not spin. */
    if (delay_ms == 0 && c->errors > 0) {
        delay_ms = 20;
    }
    uv_timer_start(&c->timer, on_reconnect_timer, delay_ms, 0);
}

static void close_all(struct net *n)
{
    uv_timer_stop(&n->tick);
    for (int i = 0; i < n->o->clients; i++) {
        struct client *c = &n->c[i];
        uv_timer_stop(&c->timer);
        if (c->open && !uv_is_closing((uv_handle_t *)&c->tcp)) {
            uv_close((uv_handle_t *)&c->tcp, NULL);
        }
        if (!uv_is_closing((uv_handle_t *)&c->timer)) {
            uv_close((uv_handle_t *)&c->timer, NULL);
        }
    }
    if (!uv_is_closing((uv_handle_t *)&n->tick)) {
        uv_close((uv_handle_t *)&n->tick, NULL);
    }
}

static void on_tick(uv_timer_t *t)
{
    struct net *n = t->data;
    const struct lg_opts *o = n->o;
    uint64_t now = lg_now_ns();
    if (n->t_start && o->workload != LG_W_SETUP) {
        uint64_t ops = 0, errors = 0;
        for (int i = 0; i < o->clients; i++) {
            ops += n->c[i].ops;
            errors += n->c[i].errors;
        }
        if (++n->ticks % 5 == 0) {
            lg_progress(o, (double)(now - n->t_start) / 1e9, ops, errors);
        }
        if (o->workload == LG_W_FAILOVER && !n->t_kill &&
            now >= n->t_start + (uint64_t)(o->kill_after_s * 1e9)) {
            if (kill(o->kill_pid, SIGKILL) != 0) {
                char msg[160];
                snprintf(msg, sizeof msg, "kill -9 of pid %d failed: %s", o->kill_pid,
                         strerror(errno));
                fatal(n, msg);
            }
            n->t_kill = lg_now_ns();
        }
        /* Requests still in flight past the deadline plus their timeout are abandoned. */
        if (now > n->deadline + (uint64_t)(o->timeout_s * 1e9)) {
            n->stopping = 1;
        }
        for (int i = 0; i < o->clients && now >= n->deadline; i++) {
            struct client *c = &n->c[i];
            if (!c->busy && c->phase == PH_TIMED) {
                phase_done(c);
            }
        }
    }
    if (n->stopping) {
        close_all(n);
    }
}

static int setup_clients(struct net *n, char *err, size_t cap)
{
    const struct lg_opts *o = n->o;
    for (int i = 0; i < o->clients; i++) {
        struct client *c = &n->c[i];
        c->net = n;
        c->id = i;
        c->host = o->targets[i % o->ntargets];
        c->rng = (0x9E3779B97F4A7C15ULL * ((uint64_t)i + 1)) ^ (uint64_t)lg_now_ns();
        if (c->rng == 0) {
            c->rng = 1;
        }
        char host[64];
        const char *colon = strrchr(c->host, ':');
        if (!colon || (size_t)(colon - c->host) >= sizeof host) {
            snprintf(err, cap, "target %s is not ip:port", c->host);
            return -1;
        }
        memcpy(host, c->host, (size_t)(colon - c->host));
        host[colon - c->host] = '\0';
        if (uv_ip4_addr(host, atoi(colon + 1), &c->addr) != 0) {
            snprintf(err, cap, "target %s is not an IPv4 address and port", c->host);
            return -1;
        }
        /* The client's keys are those of [lo, hi) congruent to its id modulo the clients. */
        int lo = o->workload == LG_W_SETUP ? o->setup_from : 0;
        int hi = o->workload != LG_W_SETUP && o->write_keys > 0 && o->write_keys < o->keys
                     ? o->write_keys
                     : o->keys;
        int first = lo + ((i - lo % o->clients) % o->clients + o->clients) % o->clients;
        for (int k = first; k < hi; k += o->clients) {
            c->nown++;
        }
        c->own = calloc((size_t)c->nown + 1, sizeof *c->own);
        c->version = calloc((size_t)c->nown + 1, sizeof *c->version);
        if (!c->own || !c->version) {
            snprintf(err, cap, "out of memory for the keys of client %d", i);
            return -1;
        }
        int j = 0;
        for (int k = first; k < hi; k += o->clients) {
            c->own[j++] = k;
        }
        /* Reads need no versions, nor does the setup (it creates with version 0); the other
         * writing workloads learn them. */
        c->phase =
            (o->workload == LG_W_READ || o->workload == LG_W_STALE || o->workload == LG_W_SETUP)
                ? PH_WAIT
                : PH_LEARN;
    }
    return 0;
}

int lg_net_run(const struct lg_opts *o, struct lg_result *r, char *err, size_t cap)
{
    struct net n;
    memset(&n, 0, sizeof n);
    n.o = o;
    int rc = -1;
    if (uv_loop_init(&n.loop) != 0) {
        snprintf(err, cap, "cannot create an event loop");
        return -1;
    }
    n.c = calloc((size_t)o->clients, sizeof *n.c);
    if (!n.c) {
        snprintf(err, cap, "out of memory for %d clients", o->clients);
        uv_loop_close(&n.loop);
        return -1;
    }
    /* Every handle exists before anything can fail, so that the cleanup closes them all. */
    uv_timer_init(&n.loop, &n.tick);
    n.tick.data = &n;
    for (int i = 0; i < o->clients; i++) {
        uv_timer_init(&n.loop, &n.c[i].timer);
        n.c[i].timer.data = &n.c[i];
        lg_buf_init(&n.c[i].req);
        lg_buf_init(&n.c[i].resp.body);
        lg_hist_init(&n.c[i].lat);
    }
    if (setup_clients(&n, err, cap) != 0) {
        goto out;
    }
    uv_timer_start(&n.tick, on_tick, 100, 100);
    for (int i = 0; i < o->clients; i++) {
        if (n.c[i].phase == PH_WAIT) {
            n.learned++;
        }
        reconnect_later(&n.c[i], 0);
    }
    if (n.learned == o->clients) {
        start_timed(&n);
    }
    uv_run(&n.loop, UV_RUN_DEFAULT);
    if (!o->quiet && o->workload != LG_W_SETUP) {
        fprintf(stderr, "\n");
    }
    if (n.err[0]) {
        snprintf(err, cap, "%s", n.err);
        goto out;
    }
    r->seconds = n.t_start && o->workload != LG_W_SETUP ? (double)o->duration_s : 0;
    if (o->workload == LG_W_FAILOVER) {
        r->failover_ms = n.t_first ? (double)(n.t_first - n.t_kill) / 1e6 : -1;
        r->seconds = n.t_start ? (double)(n.deadline - n.t_start) / 1e9 : 0;
    }
    for (int i = 0; i < o->clients; i++) {
        r->ops += n.c[i].ops;
        r->conflicts += n.c[i].conflicts;
        r->errors += n.c[i].errors;
        if (lg_hist_merge(&r->lat, &n.c[i].lat) != 0) {
            snprintf(err, cap, "out of memory merging latencies");
            goto out;
        }
    }
    rc = 0;
out:
    /* Close callbacks still refer to the clients: run them before freeing. */
    n.stopping = 1;
    close_all(&n);
    uv_run(&n.loop, UV_RUN_DEFAULT);
    for (int i = 0; i < o->clients; i++) {
        lg_buf_free(&n.c[i].req);
        lg_resp_free(&n.c[i].resp);
        lg_hist_free(&n.c[i].lat);
        free(n.c[i].own);
        free(n.c[i].version);
    }
    free(n.c);
    uv_loop_close(&n.loop);
    return rc;
}
