/*
 * The watch fan-out benchmark engine (lg_watch.h). Every watcher is one keep-alive connection:
 * for conclave a loop of long polls on GET /v1/projects/P/watch, for etcd one POST /v3/watch
 * whose chunked answer never ends and carries one JSON object per message (the first says the
 * watch was created, then one per batch of events); a writer connection changes one key every
 * interval. All on one libuv loop; the few blocking HTTP calls (learning the project's
 * head and the key's version, scraping /metrics) run before and after the timed phase, and
 * while waiting for the watchers to register (nothing is timed then).
 */
#include "lg_watch.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <jansson.h>
#include <uv.h>

struct wrun;

struct watcher {
    struct wrun *run;
    int target;
    uv_tcp_t tcp;
    uv_connect_t creq;
    uv_write_t wreq;
    int open, connected, busy, retry;
    int writing; /* wreq is in libuv's hands until w_written */
    uint64_t after;
    uint64_t last_rev; /* the highest revision delivered, for duplicates */
    size_t scan;       /* etcd: bytes of resp.body already taken as whole messages */
    int created;       /* etcd: this connection's watch stream was confirmed */
    struct lg_buf req;
    struct lg_resp resp;
};

struct delivery {
    uint64_t rev;
    uint64_t t;
    int target;
};

struct write_rec {
    uint64_t rev;
    uint64_t t_ack;
};

struct wrun {
    const struct lg_watch_opts *o;
    struct lg_watch_result *r;
    uv_loop_t loop;
    uv_timer_t tick;
    struct watcher *w;
    struct sockaddr_in addr[LG_MAX_TARGETS];
    /* the writer */
    uv_tcp_t wtcp;
    uv_connect_t wcreq;
    uv_write_t wwreq;
    int wopen, wconnected, wbusy, wwriting;
    struct lg_buf wreq;
    struct lg_resp wresp;
    uint64_t version;
    uint64_t next_write_at;
    uint64_t t_sent;
    struct write_rec *writes;
    int nwrites;
    /* what the watchers got */
    struct delivery *d;
    size_t nd, capd;
    uint64_t created; /* etcd: watchers whose stream is confirmed and still open */
    int phase;        /* 0 registering, 1 writing, 2 grace, 3 done */
    uint64_t t_start, grace_until, next_scrape;
    char err[512];
};

static char rbuf[65536];

static void fatal(struct wrun *run, const char *msg)
{
    if (!run->err[0]) {
        snprintf(run->err, sizeof run->err, "%s", msg);
    }
    run->phase = 3;
}

/* ---- blocking HTTP, outside the timed phase ----------------------------------------------- */

/* GET or PUT PATH on ADDR; fills *STATUS and BODY. Returns 0 or -1. */
static int blocking_call(const struct sockaddr_in *addr, const char *method, const char *path,
                         const char *token, const char *body, int *status, struct lg_buf *out)
{
    struct lg_buf req;
    struct lg_resp resp;
    int rc = -1;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) {
        return -1;
    }
    lg_buf_init(&req);
    memset(&resp, 0, sizeof resp);
    lg_buf_init(&resp.body);
    lg_resp_start(&resp);
    char host[64];
    snprintf(host, sizeof host, "%s:%d", inet_ntoa(addr->sin_addr), ntohs(addr->sin_port));
    if (connect(fd, (const struct sockaddr *)addr, sizeof *addr) != 0 ||
        lg_buf_printf(&req, "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n", method, path,
                      host) != 0 ||
        (token && lg_buf_printf(&req, "Authorization: Bearer %s\r\n", token) != 0) ||
        lg_buf_printf(&req, "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
                      body ? strlen(body) : 0, body ? body : "") != 0) {
        goto out;
    }
    for (size_t off = 0; off < req.len;) {
        ssize_t n = write(fd, req.p + off, req.len - off);
        if (n <= 0) {
            goto out;
        }
        off += (size_t)n;
    }
    char buf[16384];
    while (!resp.complete) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n < 0 || (n == 0 && lg_resp_eof(&resp) != 0)) {
            goto out;
        }
        if (n == 0) {
            break;
        }
        if (lg_resp_feed(&resp, buf, (size_t)n) != 0) {
            goto out;
        }
    }
    *status = resp.status;
    lg_buf_reset(out);
    if (lg_buf_add(out, resp.body.p ? resp.body.p : "", resp.body.len) != 0) {
        goto out;
    }
    rc = 0;
out:
    close(fd);
    lg_buf_free(&req);
    lg_resp_free(&resp);
    return rc;
}

/* The value of the unlabelled sample NAME of target I's /metrics, or -1. */
static double scrape(struct wrun *run, int i, const char *name)
{
    struct lg_buf b;
    int status = 0;
    double v = -1;
    lg_buf_init(&b);
    if (blocking_call(&run->addr[i], "GET", "/metrics", NULL, NULL, &status, &b) == 0 &&
        status == 200) {
        size_t nl = strlen(name);
        for (const char *p = b.p; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
            if (strncmp(p, name, nl) == 0 && p[nl] == ' ') {
                v = strtod(p + nl + 1, NULL);
                break;
            }
        }
    }
    lg_buf_free(&b);
    return v;
}

/* ---- watchers ----------------------------------------------------------------------------- */

static void w_issue(struct watcher *w);

static void w_closed(uv_handle_t *h)
{
    struct watcher *w = h->data;
    w->open = 0;
    w->connected = 0;
    w->busy = 0;
    w->writing = 0;
    if (w->created) {
        w->created = 0;
        w->run->created--;
    }
    w->retry = 1; /* the tick reconnects */
}

static void w_fail(struct watcher *w)
{
    w->run->r->errors++;
    w->busy = 0;
    if (w->open && !uv_is_closing((uv_handle_t *)&w->tcp)) {
        uv_close((uv_handle_t *)&w->tcp, w_closed);
    }
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    (void)h;
    (void)suggested;
    *b = uv_buf_init(rbuf, sizeof rbuf);
}

static int record(struct wrun *run, uint64_t rev, uint64_t t, int target)
{
    if (run->nd == run->capd) {
        size_t cap = run->capd ? run->capd * 2 : 65536;
        struct delivery *d = realloc(run->d, cap * sizeof *d);
        if (!d) {
            return -1;
        }
        run->d = d;
        run->capd = cap;
    }
    run->d[run->nd].rev = rev;
    run->d[run->nd].t = t;
    run->d[run->nd].target = target;
    run->nd++;
    return 0;
}

static void w_answer(struct watcher *w)
{
    struct wrun *run = w->run;
    uint64_t now = lg_now_ns();
    if (w->resp.status != 200) {
        run->r->errors++;
        if (getenv("LG_DEBUG")) {
            fprintf(stderr, "watch answer %d: %.200s\n", w->resp.status,
                    w->resp.body.p ? w->resp.body.p : "");
        }
        w->retry = 1;
        return;
    }
    json_t *doc = json_loadb(w->resp.body.p, w->resp.body.len, 0, NULL);
    json_t *changes = json_object_get(doc, "changes");
    json_t *next = json_object_get(doc, "next_after_revision");
    if (!json_is_array(changes) || !json_is_integer(next)) {
        json_decref(doc);
        run->r->errors++;
        w->retry = 1;
        return;
    }
    size_t i;
    json_t *ch;
    json_array_foreach(changes, i, ch)
    {
        uint64_t rev = (uint64_t)json_integer_value(json_object_get(ch, "revision"));
        if (rev <= w->last_rev) {
            run->r->duplicates++;
            continue;
        }
        w->last_rev = rev;
        if (record(run, rev, now, w->target) != 0) {
            fatal(run, "out of memory recording a delivery");
        }
    }
    w->after = (uint64_t)json_integer_value(next);
    json_decref(doc);
    w_issue(w);
}

/* Takes every whole message of W's etcd stream that arrived since the last call. Returns 0,
 * or -1 when the stream is unusable (the caller drops the connection, the tick reopens it from
 * the revision after the last one delivered). */
static int w_etcd_messages(struct watcher *w)
{
    struct wrun *run = w->run;
    uint64_t now = lg_now_ns();
    for (;;) {
        size_t start = 0, end = 0;
        const char *p = w->resp.body.p ? w->resp.body.p + w->scan : "";
        int found = lg_json_next_object(p, w->resp.body.len - w->scan, &start, &end);
        if (found == 0) {
            return 0;
        }
        if (found < 0) {
            if (getenv("LG_DEBUG")) {
                fprintf(stderr, "etcd watch stream: not a JSON object: %.80s\n", p);
            }
            return -1;
        }
        uint64_t revs[64];
        size_t nrevs = 0;
        int created = 0;
        char why[256];
        if (lg_etcd_watch_message(p + start, end - start, &created, revs, 64, &nrevs, why,
                                  sizeof why) != LG_OK) {
            if (getenv("LG_DEBUG")) {
                fprintf(stderr, "etcd watch stream: %s\n", why);
            }
            return -1;
        }
        w->scan += end;
        if (created && !w->created) {
            w->created = 1;
            run->created++;
        }
        for (size_t i = 0; i < nrevs; i++) {
            if (revs[i] <= w->last_rev) {
                run->r->duplicates++;
                continue;
            }
            w->last_rev = revs[i];
            if (record(run, revs[i], now, w->target) != 0) {
                fatal(run, "out of memory recording a delivery");
                return -1;
            }
        }
    }
}

static void w_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
    struct watcher *w = s->data;
    if (nread == 0) {
        return;
    }
    if (w->run->o->system == LG_ETCD) {
        /* A watch stream has no end: its close, a malformed message or a complete answer (an
         * error status) are all failures, after the messages that did arrive are counted. */
        if (nread < 0 || !w->busy || lg_resp_feed(&w->resp, b->base, (size_t)nread) != 0 ||
            w_etcd_messages(w) != 0 || w->resp.complete ||
            (w->resp.status && w->resp.status != 200)) {
            if (getenv("LG_DEBUG") && w->resp.complete) {
                fprintf(stderr, "etcd watch answer %d: %.200s\n", w->resp.status,
                        w->resp.body.p ? w->resp.body.p : "");
            }
            w_fail(w);
        }
        return;
    }
    if (nread < 0) {
        if (w->busy && nread == UV_EOF && lg_resp_eof(&w->resp) == 0) {
            w->busy = 0;
            w_answer(w);
        }
        w_fail(w);
        return;
    }
    if (!w->busy || lg_resp_feed(&w->resp, b->base, (size_t)nread) != 0) {
        w_fail(w);
        return;
    }
    if (w->resp.complete) {
        w->busy = 0;
        int keep = w->resp.keep_alive;
        w_answer(w);
        if (!keep) {
            w_fail(w);
        }
    }
}

static void w_written(uv_write_t *req, int status)
{
    struct watcher *w = req->data;
    w->writing = 0;
    if (status < 0) {
        w_fail(w);
    } else if (w->run->o->system == LG_CONCLAVE && w->retry && !w->busy) {
        w_issue(w); /* an answer came before this callback: the next poll waited for it */
    }
}

static void w_issue(struct watcher *w)
{
    const struct lg_watch_opts *o = w->run->o;
    if (w->run->phase == 3 || !w->connected || w->busy || !w->open ||
        uv_is_closing((uv_handle_t *)&w->tcp)) {
        return;
    }
    if (w->writing) {
        w->retry = 1; /* the write callback (or the tick) issues it */
        return;
    }
    lg_buf_reset(&w->req);
    /* An etcd stream reopened after a failure starts right after the last revision delivered,
     * so that nothing written meanwhile is skipped; a first one starts now. */
    int rc = o->system == LG_ETCD
                 ? lg_etcd_watch(&w->req, o->targets[w->target], o->key,
                                 w->last_rev ? w->last_rev + 1 : 0)
                 : lg_buf_printf(&w->req,
                                 "GET /v1/projects/%s/watch?after_revision=%" PRIu64
                                 "&timeout=%d HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer "
                                 "%s\r\n\r\n",
                                 o->project, w->after, o->poll_timeout_s, o->targets[w->target],
                                 o->token);
    if (rc != 0) {
        fatal(w->run, "out of memory building a watch request");
        return;
    }
    lg_resp_start(&w->resp);
    w->scan = 0;
    w->busy = 1;
    w->retry = 0;
    w->wreq.data = w;
    uv_buf_t b = uv_buf_init(w->req.p, (unsigned int)w->req.len);
    if (uv_write(&w->wreq, (uv_stream_t *)&w->tcp, &b, 1, w_written) != 0) {
        w_fail(w);
        return;
    }
    w->writing = 1;
}

static void w_connected(uv_connect_t *c, int status)
{
    struct watcher *w = c->data;
    if (status < 0) {
        if (status != UV_ECANCELED) {
            w_fail(w);
        }
        return;
    }
    w->connected = 1;
    if (uv_read_start((uv_stream_t *)&w->tcp, on_alloc, w_read) != 0) {
        w_fail(w);
        return;
    }
    w_issue(w);
}

static void w_connect(struct watcher *w)
{
    struct wrun *run = w->run;
    w->retry = 0;
    if (w->open) {
        if (w->connected && !w->busy) {
            w_issue(w);
        }
        return;
    }
    if (uv_tcp_init(&run->loop, &w->tcp) != 0) {
        fatal(run, "cannot create a TCP handle");
        return;
    }
    w->tcp.data = w;
    w->open = 1;
    w->creq.data = w;
    if (uv_tcp_connect(&w->creq, &w->tcp, (const struct sockaddr *)&run->addr[w->target],
                       w_connected) != 0) {
        w_fail(w);
    }
}

/* ---- the writer --------------------------------------------------------------------------- */

static void wr_closed(uv_handle_t *h)
{
    struct wrun *run = h->data;
    run->wopen = 0;
    run->wconnected = 0;
    run->wbusy = 0;
}

static void wr_fail(struct wrun *run, const char *why)
{
    if (getenv("LG_DEBUG")) {
        fprintf(stderr, "writer: %s\n", why);
    }
    run->wbusy = 0;
    if (run->wopen && !uv_is_closing((uv_handle_t *)&run->wtcp)) {
        uv_close((uv_handle_t *)&run->wtcp, wr_closed);
    }
}

static void wr_send(struct wrun *run);

static void wr_answer(struct wrun *run)
{
    uint64_t now = lg_now_ns();
    char why[256];
    uint64_t version = 0;
    const char *body = run->wresp.body.p ? run->wresp.body.p : "";
    if (run->o->system == LG_ETCD) {
        /* A plain put: its header revision is the mod_revision every watcher must see. */
        uint64_t rev = 0;
        if (lg_etcd_put_result(run->wresp.status, body, run->wresp.body.len, &rev, why,
                               sizeof why) != LG_OK) {
            wr_fail(run, why);
            return;
        }
        run->writes[run->nwrites].rev = rev;
        run->writes[run->nwrites].t_ack = now;
        run->nwrites++;
        if (!run->o->quiet) {
            fprintf(stderr, "\r  write %d/%d acknowledged (revision %" PRIu64 ", %.1f ms)   ",
                    run->nwrites, run->o->writes, rev, (double)(now - run->t_sent) / 1e6);
        }
        return;
    }
    enum lg_outcome out = lg_conclave_write_result(run->wresp.status, body, run->wresp.body.len,
                                                   &version, why, sizeof why);
    if (out == LG_ERROR) {
        wr_fail(run, why);
        return;
    }
    run->version = version;
    if (out == LG_CONFLICT) {
        run->next_write_at = 0; /* the tick sends the write again with the version learned */
        return;
    }
    json_t *doc = json_loadb(run->wresp.body.p, run->wresp.body.len, 0, NULL);
    uint64_t rev = (uint64_t)json_integer_value(json_object_get(doc, "revision"));
    json_decref(doc);
    run->writes[run->nwrites].rev = rev;
    run->writes[run->nwrites].t_ack = now;
    run->nwrites++;
    if (!run->o->quiet) {
        fprintf(stderr, "\r  write %d/%d acknowledged (revision %" PRIu64 ", %.1f ms)   ",
                run->nwrites, run->o->writes, rev, (double)(now - run->t_sent) / 1e6);
    }
}

static void wr_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
    struct wrun *run = s->data;
    if (nread == 0) {
        return;
    }
    if (nread < 0 || !run->wbusy || lg_resp_feed(&run->wresp, b->base, (size_t)nread) != 0) {
        wr_fail(run, "connection dropped or malformed answer");
        return;
    }
    if (run->wresp.complete) {
        run->wbusy = 0;
        wr_answer(run);
    }
}

static void wr_written(uv_write_t *req, int status)
{
    struct wrun *run = req->data;
    run->wwriting = 0;
    if (status < 0) {
        wr_fail(req->data, "write failed");
    }
}

static void wr_send(struct wrun *run)
{
    const struct lg_watch_opts *o = run->o;
    char value[64];
    snprintf(value, sizeof value, "{\"seq\":%d}", run->nwrites + 1);
    int rc = o->system == LG_ETCD ? lg_etcd_put(&run->wreq, o->targets[0], o->key, value)
                                  : lg_conclave_write(&run->wreq, o->targets[0], o->token,
                                                      o->project, o->key, value, run->version);
    if (rc != 0) {
        fatal(run, "out of memory building a write");
        return;
    }
    lg_resp_start(&run->wresp);
    run->wbusy = 1;
    run->t_sent = lg_now_ns();
    run->wwreq.data = run;
    uv_buf_t b = uv_buf_init(run->wreq.p, (unsigned int)run->wreq.len);
    if (uv_write(&run->wwreq, (uv_stream_t *)&run->wtcp, &b, 1, wr_written) != 0) {
        wr_fail(run, "write failed");
        return;
    }
    run->wwriting = 1;
}

static void wr_connected(uv_connect_t *c, int status)
{
    struct wrun *run = c->data;
    if (status < 0) {
        wr_fail(run, "connect failed");
        return;
    }
    run->wconnected = 1;
    if (uv_read_start((uv_stream_t *)&run->wtcp, on_alloc, wr_read) != 0) {
        wr_fail(run, "read failed");
    }
}

static void wr_connect(struct wrun *run)
{
    if (run->wopen) {
        return;
    }
    uv_tcp_init(&run->loop, &run->wtcp);
    run->wtcp.data = run;
    run->wopen = 1;
    run->wcreq.data = run;
    if (uv_tcp_connect(&run->wcreq, &run->wtcp, (const struct sockaddr *)&run->addr[0],
                       wr_connected) != 0) {
        wr_fail(run, "connect failed");
    }
}

/* ---- the run ------------------------------------------------------------------------------ */

static void close_all(struct wrun *run)
{
    uv_timer_stop(&run->tick);
    if (!uv_is_closing((uv_handle_t *)&run->tick)) {
        uv_close((uv_handle_t *)&run->tick, NULL);
    }
    for (int i = 0; i < run->o->watchers; i++) {
        struct watcher *w = &run->w[i];
        if (w->open && !uv_is_closing((uv_handle_t *)&w->tcp)) {
            uv_close((uv_handle_t *)&w->tcp, NULL);
        }
    }
    if (run->wopen && !uv_is_closing((uv_handle_t *)&run->wtcp)) {
        uv_close((uv_handle_t *)&run->wtcp, NULL);
    }
}

static void on_tick(uv_timer_t *t)
{
    struct wrun *run = t->data;
    const struct lg_watch_opts *o = run->o;
    uint64_t now = lg_now_ns();
    for (int i = 0; i < o->watchers && run->phase < 3; i++) {
        if (run->w[i].retry && !run->w[i].busy) {
            w_connect(&run->w[i]);
        }
    }
    if (run->phase == 0 && now >= run->next_scrape) {
        /* Writing starts once the servers count every watcher (and, for etcd, the client saw
         * every stream confirmed), so that no write can land before a watcher is in place. */
        const char *gauge =
            o->system == LG_ETCD ? "etcd_debugging_mvcc_watcher_total" : "conclave_watch_waiting";
        double waiting = 0;
        for (int i = 0; i < o->ntargets; i++) {
            double v = scrape(run, i, gauge);
            waiting += v > 0 ? v : 0;
        }
        if (!o->quiet) {
            fprintf(stderr, "\r  %.0f of %d watchers registered on the servers", waiting,
                    o->watchers);
            if (o->system == LG_ETCD) {
                fprintf(stderr, ", %" PRIu64 " streams confirmed", run->created);
            }
            fprintf(stderr, "   ");
        }
        if (waiting >= o->watchers &&
            (o->system != LG_ETCD || run->created >= (uint64_t)o->watchers)) {
            run->r->setup_s = (double)(now - run->t_start) / 1e9;
            run->r->registered = (uint64_t)waiting;
            run->r->created = run->created;
            for (int i = 0; i < o->ntargets && o->system == LG_CONCLAVE; i++) {
                run->r->queries[i] = (uint64_t)scrape(run, i, "conclave_watch_queries_total");
            }
            run->phase = 1;
            run->next_write_at = now;
            if (!o->quiet) {
                fprintf(stderr, "\n");
            }
        } else if (now - run->t_start > 300ULL * 1000000000ULL) {
            fatal(run, "the watchers did not all register within 300 s");
        }
        run->next_scrape = now + 500000000ULL;
    }
    if (run->phase == 1) {
        if (!run->wopen) {
            wr_connect(run);
        } else if (run->wconnected && !run->wbusy && !run->wwriting &&
                   !uv_is_closing((uv_handle_t *)&run->wtcp) && now >= run->next_write_at) {
            if (run->nwrites >= o->writes) {
                run->phase = 2;
                run->grace_until = now + 5000000000ULL;
            } else {
                run->next_write_at += (uint64_t)(o->interval_s * 1e9);
                if (run->next_write_at < now) {
                    run->next_write_at = now;
                }
                wr_send(run);
            }
        }
    }
    if (run->phase == 2 && now >= run->grace_until) {
        run->phase = 3;
    }
    if (run->phase == 3) {
        close_all(run);
    }
}

static int cmp_rev(const void *a, const void *b)
{
    const struct write_rec *x = a, *y = b;
    return x->rev < y->rev ? -1 : x->rev > y->rev;
}

/* Matches deliveries to writes: latency, delivered and missed counts. */
static int tally(struct wrun *run)
{
    struct lg_watch_result *r = run->r;
    r->writes = run->nwrites;
    r->expected = (uint64_t)run->nwrites * (uint64_t)run->o->watchers;
    qsort(run->writes, (size_t)run->nwrites, sizeof *run->writes, cmp_rev);
    for (size_t i = 0; i < run->nd; i++) {
        struct write_rec key = {.rev = run->d[i].rev};
        struct write_rec *wr =
            bsearch(&key, run->writes, (size_t)run->nwrites, sizeof *run->writes, cmp_rev);
        if (!wr) {
            continue; /* a revision written by someone else, or before the run */
        }
        r->delivered++;
        uint64_t lat = 0;
        if (run->d[i].t < wr->t_ack) {
            r->before_ack++;
        } else {
            lat = run->d[i].t - wr->t_ack;
        }
        if (lg_hist_add(&r->lat, lat) != 0 ||
            lg_hist_add(&r->lat_target[run->d[i].target], lat) != 0) {
            return -1;
        }
    }
    r->missed = r->expected > r->delivered ? r->expected - r->delivered : 0;
    return 0;
}

/* Learns the project's head revision (where the watchers start) and the key's version. */
static int learn(struct wrun *run, uint64_t *head, char *err, size_t cap)
{
    const struct lg_watch_opts *o = run->o;
    struct lg_buf b;
    char path[512];
    int status = 0;
    lg_buf_init(&b);
    snprintf(path, sizeof path, "/v1/projects/%s/revisions?after_revision=0&limit=1", o->project);
    if (blocking_call(&run->addr[0], "GET", path, o->token, NULL, &status, &b) != 0 ||
        status != 200) {
        snprintf(err, cap, "GET %s: status %d: %.200s", path, status, b.p ? b.p : "");
        lg_buf_free(&b);
        return -1;
    }
    json_t *doc = json_loadb(b.p, b.len, 0, NULL);
    *head = (uint64_t)json_integer_value(json_object_get(doc, "head_revision"));
    json_decref(doc);
    snprintf(path, sizeof path, "/v1/projects/%s/configs/%s", o->project, o->key);
    if (blocking_call(&run->addr[0], "GET", path, o->token, NULL, &status, &b) != 0 ||
        (status != 200 && status != 404)) {
        snprintf(err, cap, "GET %s: status %d", path, status);
        lg_buf_free(&b);
        return -1;
    }
    doc = status == 200 ? json_loadb(b.p, b.len, 0, NULL) : NULL;
    run->version = (uint64_t)json_integer_value(json_object_get(doc, "version"));
    json_decref(doc);
    lg_buf_free(&b);
    return 0;
}

int lg_watch_run(const struct lg_watch_opts *o, struct lg_watch_result *r, char *err, size_t cap)
{
    struct wrun *run = calloc(1, sizeof *run);
    int rc = -1;
    uint64_t head = 0;
    if (!run) {
        snprintf(err, cap, "out of memory");
        return -1;
    }
    run->o = o;
    run->r = r;
    for (int i = 0; i < o->ntargets; i++) {
        char host[64];
        const char *colon = strrchr(o->targets[i], ':');
        if (!colon || (size_t)(colon - o->targets[i]) >= sizeof host) {
            snprintf(err, cap, "target %s is not ip:port", o->targets[i]);
            free(run);
            return -1;
        }
        memcpy(host, o->targets[i], (size_t)(colon - o->targets[i]));
        host[colon - o->targets[i]] = '\0';
        if (uv_ip4_addr(host, atoi(colon + 1), &run->addr[i]) != 0) {
            snprintf(err, cap, "target %s is not an IPv4 address and port", o->targets[i]);
            free(run);
            return -1;
        }
    }
    run->w = calloc((size_t)o->watchers, sizeof *run->w);
    run->writes = calloc((size_t)o->writes + 1, sizeof *run->writes);
    if (!run->w || !run->writes || uv_loop_init(&run->loop) != 0) {
        snprintf(err, cap, "out of memory for %d watchers", o->watchers);
        free(run->w);
        free(run->writes);
        free(run);
        return -1;
    }
    lg_buf_init(&run->wreq);
    lg_buf_init(&run->wresp.body);
    uv_timer_init(&run->loop, &run->tick);
    run->tick.data = run;
    if (o->system == LG_CONCLAVE && learn(run, &head, err, cap) != 0) {
        goto out;
    }
    for (int i = 0; i < o->ntargets && o->system == LG_CONCLAVE; i++) {
        if (scrape(run, i, "conclave_watch_queries_total") < 0) {
            snprintf(err, cap, "target %s has no conclave_watch_queries_total in /metrics",
                     o->targets[i]);
            goto out;
        }
    }
    run->t_start = lg_now_ns();
    for (int i = 0; i < o->watchers; i++) {
        struct watcher *w = &run->w[i];
        w->run = run;
        w->target = i % o->ntargets;
        w->after = head;
        w->last_rev = head;
        w->retry = 1;
        lg_buf_init(&w->req);
        lg_buf_init(&w->resp.body);
    }
    uv_timer_start(&run->tick, on_tick, 0, 5);
    uv_run(&run->loop, UV_RUN_DEFAULT);
    if (!o->quiet) {
        fprintf(stderr, "\n");
    }
    if (run->err[0]) {
        snprintf(err, cap, "%s", run->err);
        goto out;
    }
    for (int i = 0; i < o->ntargets && o->system == LG_CONCLAVE; i++) {
        double v = scrape(run, i, "conclave_watch_queries_total");
        r->queries[i] = v >= (double)r->queries[i] ? (uint64_t)v - r->queries[i] : 0;
        r->queries_total += r->queries[i];
    }
    if (tally(run) != 0) {
        snprintf(err, cap, "out of memory tallying");
        goto out;
    }
    rc = 0;
out:
    close_all(run);
    uv_run(&run->loop, UV_RUN_DEFAULT);
    for (int i = 0; i < o->watchers; i++) {
        lg_buf_free(&run->w[i].req);
        lg_resp_free(&run->w[i].resp);
    }
    lg_buf_free(&run->wreq);
    lg_resp_free(&run->wresp);
    uv_loop_close(&run->loop);
    free(run->d);
    free(run->w);
    free(run->writes);
    free(run);
    return rc;
}
