#include "server/node.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <sodium.h>

#include "server/auth.h"
#include "server/sdnotify.h"

static const char *const auth_channels[] = {"conclave_auth", NULL};

/* How often the leader id is sampled for conclave_raft_leader_changes_total. rnode_info() hashes
 * the whole state, so this is not the 10 ms of rnode's own poll; a failover takes about a second
 * (docs/architecture.md), so a change is still seen unless the new leader is gone within one. */
#define LEADER_SAMPLE_MS 1000

uint64_t node_raft_applied(struct node *node)
{
    if (node->raft == NULL) {
        return 0;
    }
    struct rnode_info info;
    rnode_info(node->raft, &info);
    return info.applied_index;
}

uint64_t node_now_ms(struct node *node)
{
    return uv_now(&node->loop);
}

static void log_access(const char *line, void *data)
{
    const struct node *node = data;
    if (node->conf->access_log) {
        fprintf(stderr, "%s\n", line);
    }
}

static void observe_request(const struct http_request *req, int status, double seconds, void *data)
{
    struct node *node = data;
    metrics_observe_request(node->metrics, http_request_tag(req), http_request_method(req), status,
                            seconds);
}

/* How often the service timer looks at the node (sdnotify.h). A watchdog period shorter than
 * two ticks is pinged every tick. */
#define SERVICE_TICK_MS 200

/* Whether the node can do its work, and if not, what it waits for (into WHY). Ready means:
 * PostgreSQL answers, and with raft, this node is a member of the configuration it knows (it
 * joined) and knows a leader of the current term, so writes sent to it are coordinated. */
static bool service_check(struct node *node, char *why, size_t n)
{
    if (!pgpool_healthy(node->pool)) {
        snprintf(why, n, "waiting for postgresql");
        return false;
    }
    if (node->raft == NULL) {
        snprintf(why, n, "ready (no raft)");
        return true;
    }
    struct rnode_info info;
    rnode_info(node->raft, &info);
    bool member = false;
    for (unsigned i = 0; i < info.nmembers; i++) {
        member = member || info.members[i].id == node->conf->node_id;
    }
    if (!member) {
        snprintf(why, n, "waiting to join the cluster (this node is not in its configuration yet)");
        return false;
    }
    if (info.leader_id == 0) {
        snprintf(why, n, "waiting for a raft leader (term %llu)", (unsigned long long)info.term);
        return false;
    }
    if (info.leader_id == node->conf->node_id) {
        snprintf(why, n, "ready: leader, term %llu", (unsigned long long)info.term);
    } else {
        snprintf(why, n, "ready: follower of node %llu, term %llu",
                 (unsigned long long)info.leader_id, (unsigned long long)info.term);
    }
    return true;
}

static void service_tick(uv_timer_t *t)
{
    struct node *node = t->data;
    char status[sizeof(node->service_status)];
    bool ready = service_check(node, status, sizeof(status));
    if (ready && !node->service_ready) {
        node->service_ready = true;
        sdnotify_ready(status);
        fprintf(stderr, "node %u: %s\n", node->conf->node_id, status);
    } else if (strcmp(status, node->service_status) != 0) {
        sdnotify_status(status);
    }
    snprintf(node->service_status, sizeof(node->service_status), "%s", status);
    uint64_t now = node_now_ms(node);
    if (node->watchdog_ms > 0 && now - node->watchdog_last >= node->watchdog_ms / 2) {
        sdnotify_watchdog();
        node->watchdog_last = now;
    }
}

static void sample_leader(uv_timer_t *t)
{
    struct node *node = t->data;
    if (node->raft != NULL) {
        struct rnode_info info;
        rnode_info(node->raft, &info);
        metrics_observe_leader(node->metrics, info.leader_id);
    }
}

/* The auth cache is only as good as its invalidation: drop everything on any announcement,
 * and on the reset event that follows every (re)connection of the LISTEN session. */
static void on_notify(const char *channel, const char *payload, void *data)
{
    struct node *node = data;
    (void)payload;
    if (channel == NULL) {
        fprintf(stderr, "node: listening for auth changes (cache cleared)\n");
    }
    authcache_flush(node->cache);
}

/* The watch hub's view of this node (server/watch_hub.h): the raft index PostgreSQL is known to
 * hold everything up to (the leader's materializer cursor, or the last materialized(N) entry
 * applied here), the last revision applied here, and whether this node writes PostgreSQL. */
static void watch_view(void *data, struct watch_hub_view *out)
{
    struct node *node = data;
    uint64_t a = node->fsm != NULL ? fsm_materialized_index(node->fsm) : 0;
    uint64_t b = node->matd != NULL ? materializer_cursor_index(node->matd) : 0;
    out->materialized = a > b ? a : b;
    out->revision = node->fsm != NULL && node->raft != NULL ? fsm_revision(node->fsm) : 0;
    out->writer = node->raft != NULL && rnode_ready(node->raft);
}

/* The watch hub's pending callback: PROJECT's revisions after AFTER still in the state
 * machine's queue (not yet known to be in PostgreSQL), ascending (the queue is in raft order,
 * and revision numbers grow with it). */
static size_t watch_pending(void *data, const char *project, uint64_t after, uint64_t *out,
                            size_t max)
{
    struct node *node = data;
    size_t n = node->fsm != NULL ? fsm_pending_count(node->fsm) : 0, count = 0;
    if (n == 0) {
        return 0;
    }
    const struct revision **queue = calloc(n, sizeof(*queue));
    if (queue == NULL) {
        return WATCH_HUB_PENDING_UNKNOWN; /* the hub keeps nothing of that query */
    }
    n = fsm_pending_from(node->fsm, 0, queue, n);
    for (size_t i = 0; i < n; i++) {
        if (queue[i]->revision > after && strcmp(queue[i]->project, project) == 0) {
            if (count < max) {
                out[count] = queue[i]->revision;
            }
            count++;
        }
    }
    free(queue);
    return count;
}

static void component_closed(struct node *node)
{
    node->pending_closes--;
}

static void pool_closed(void *data)
{
    component_closed(data);
}

static void listen_closed(void *data)
{
    component_closed(data);
}

static void watch_closed(void *data)
{
    component_closed(data);
}

static void close_pool(struct node *node)
{
    /* Running PostgreSQL jobs may still answer cancelled requests; the pool finishes them
     * before its close callback, so close it only once no new request can arrive. */
    if (node->pool != NULL) {
        node->pending_closes++;
        pgpool_close(node->pool, pool_closed, node);
        node->pool = NULL;
    }
}

static void raft_stopped(void *data)
{
    struct node *node = data;
    /* Until now requests finishing during the shutdown could still read the rnode (it
     * refuses new work once shutting down); it is freed now. */
    node->raft = NULL;
    component_closed(node);
    close_pool(node);
}

static void stop_raft(struct node *node);

static void materializer_closed(void *data)
{
    struct node *node = data;
    component_closed(node);
    node->matd = NULL;
    stop_raft(node);
}

static void forward_closed(void *data)
{
    component_closed(data);
}

/* Once no request can arrive: close the forwarder; let the materializer finish its batch;
 * then raft stores what it appended, hands leadership over and closes; then the pool. */
static void after_http(struct node *node)
{
    if (node->fwd != NULL) {
        node->pending_closes++;
        forward_close(node->fwd, forward_closed, node);
        node->fwd = NULL;
    }
    if (node->matd != NULL) {
        node->pending_closes++;
        materializer_close(node->matd, materializer_closed, node);
        return;
    }
    stop_raft(node);
}

static void http_closed(struct http_server *server)
{
    struct node *node = server->data;
    component_closed(node);
    after_http(node);
}

static void stop_raft(struct node *node)
{
    if (node->raft != NULL) {
        node->pending_closes++;
        rnode_shutdown(node->raft, raft_stopped, node);
    } else {
        close_pool(node);
    }
}

static void close_signal_cb(uv_handle_t *h)
{
    (void)h;
}

/* Starts closing everything that was started; the loop then runs until it is all closed. */
static void begin_stop(struct node *node, bool http_started)
{
    if (node->stopping) {
        return;
    }
    node->stopping = true;
    /* Under systemd the stop is then shown as such, not as a hang; the hand-over of the
     * leadership (SIGTERM) follows. The watchdog is not pinged any more: stopping is bounded
     * by the unit's TimeoutStopSec instead. */
    sdnotify_stopping("stopping");
    if (node->watch != NULL) {
        /* Every waiting watcher is answered now (no changes); a query in flight finishes on
         * the pool, which closes last. */
        node->pending_closes++;
        watch_hub_close(node->watch, watch_closed, node);
        node->watch = NULL;
    }
    if (node->listen != NULL) {
        node->pending_closes++;
        pglisten_close(node->listen, listen_closed, node);
        node->listen = NULL;
    }
    if (http_started) {
        node->pending_closes++;
        http_server_close(&node->http, http_closed);
    } else {
        after_http(node);
    }
    if (!uv_is_closing((uv_handle_t *)&node->sigterm)) {
        uv_close((uv_handle_t *)&node->sigterm, close_signal_cb);
        uv_close((uv_handle_t *)&node->sigint, close_signal_cb);
        uv_close((uv_handle_t *)&node->sighup, close_signal_cb);
        uv_close((uv_handle_t *)&node->leader_sampler, close_signal_cb);
        uv_close((uv_handle_t *)&node->service_timer, close_signal_cb);
    }
}

static void on_raft_fatal(void *data, const char *message)
{
    struct node *node = data;
    fprintf(stderr, "node %u: fatal: %s; stopping with exit status 1\n", node->conf->node_id,
            message);
    node->exit_code = 1;
    begin_stop(node, true);
}

static void on_signal(uv_signal_t *h, int signum)
{
    struct node *node = h->data;
    fprintf(stderr, "node %u: %s received, stopping\n", node->conf->node_id,
            signum == SIGTERM ? "SIGTERM" : "SIGINT");
    begin_stop(node, true);
}

/* On a worker thread: reads the https files into a new context (file reads must not block
 * the loop). Touches only the job's own fields and the file names of node->tls. */
static void tls_reload_work(uv_work_t *w)
{
    struct node *node = w->data;
    node->tls_reload_err[0] = '\0';
    if (http_tls_load(node->tls, &node->tls_loaded, node->tls_reload_err,
                      sizeof(node->tls_reload_err)) != 0) {
        node->tls_loaded = NULL;
    }
}

/* Back on the loop: the new context serves the connections accepted from now on; open
 * connections keep their session. A failed load keeps the old certificate. */
static void tls_reload_done(uv_work_t *w, int status)
{
    struct node *node = w->data;
    node->tls_reloading = false;
    if (status != 0 || node->tls_loaded == NULL) {
        fprintf(stderr,
                "node %u: SIGHUP: the https certificate was not reloaded, the old one "
                "stays in use: %s\n",
                node->conf->node_id, status != 0 ? uv_strerror(status) : node->tls_reload_err);
        return;
    }
    http_tls_install(node->tls, node->tls_loaded);
    node->tls_loaded = NULL;
    fprintf(stderr, "node %u: SIGHUP: reloaded the https certificate %s and key %s\n",
            node->conf->node_id, node->conf->http_cert_file, node->conf->http_key_file);
}

/* SIGHUP with https: re-read the certificate and key (see tls_reload_work). Without https
 * there is nothing to reload, but the handler is installed all the same: SIGHUP's default
 * action would end the node, and systemd (ExecReload) counts that exit as clean, so
 * Restart=on-failure would leave the node down. */
static void on_sighup(uv_signal_t *h, int signum)
{
    struct node *node = h->data;
    (void)signum;
    if (node->tls == NULL) {
        fprintf(stderr,
                "node %u: SIGHUP: nothing to reload: this node serves plain http (SIGHUP "
                "reloads the https certificate and key)\n",
                node->conf->node_id);
        return;
    }
    if (node->tls_reloading) {
        fprintf(stderr,
                "node %u: SIGHUP: a reload of the https certificate is already running; "
                "this one is ignored\n",
                node->conf->node_id);
        return;
    }
    node->tls_reload.data = node;
    int rc = uv_queue_work(&node->loop, &node->tls_reload, tls_reload_work, tls_reload_done);
    if (rc != 0) {
        fprintf(stderr, "node %u: SIGHUP: cannot start reloading the https certificate: %s\n",
                node->conf->node_id, uv_strerror(rc));
        return;
    }
    node->tls_reloading = true;
}

/* Creates DIR and its parents (mode 0700 for the last). */
static int make_dirs(const char *dir, char *errmsg, size_t errlen)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s", dir);
    for (char *p = path + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            if (mkdir(path, 0755) != 0 && errno != EEXIST) {
                snprintf(errmsg, errlen, "cannot create %s: %s", path, strerror(errno));
                return -1;
            }
            *p = '/';
        }
    }
    if (mkdir(path, 0700) != 0 && errno != EEXIST) {
        snprintf(errmsg, errlen, "cannot create data directory %s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

int node_run(const struct config *conf, http_handler_fn handler, char *errmsg, size_t errlen)
{
    struct node *node = calloc(1, sizeof(*node));
    bool http_started = false;
    int rc = -1;
    if (node == NULL) {
        snprintf(errmsg, errlen, "out of memory starting the node");
        return -1;
    }
    node->conf = conf;
    /* A peer or client that goes away mid-write must cost a write error (EPIPE), not the
     * process: the default action of SIGPIPE is to terminate silently. */
    signal(SIGPIPE, SIG_IGN);
    if (uv_loop_init(&node->loop) != 0) {
        snprintf(errmsg, errlen, "cannot create the event loop");
        free(node);
        return -1;
    }
    uv_signal_init(&node->loop, &node->sigterm);
    uv_signal_init(&node->loop, &node->sigint);
    uv_signal_init(&node->loop, &node->sighup);
    node->sigterm.data = node;
    node->sigint.data = node;
    node->sighup.data = node;
    uv_timer_init(&node->loop, &node->leader_sampler);
    uv_timer_init(&node->loop, &node->service_timer);
    node->service_timer.data = node;
    node->leader_sampler.data = node;

    if (auth_init() != 0) {
        snprintf(errmsg, errlen, "libsodium cannot be initialised (no entropy source?)");
        goto fail;
    }
    if (config_read_secret(conf, node->secret, sizeof(node->secret), &node->secret_len, errmsg,
                           errlen) != 0 ||
        make_dirs(conf->data_dir, errmsg, errlen) != 0) {
        goto fail;
    }
    node->cache = authcache_new();
    node->throttle = throttle_new();
    if (node->cache == NULL || node->throttle == NULL) {
        snprintf(errmsg, errlen, "out of memory creating the auth cache and login throttle");
        goto fail;
    }
    node->metrics = metrics_new();
    if (node->metrics == NULL) {
        snprintf(errmsg, errlen, "out of memory creating the metrics");
        goto fail;
    }
    char why[1024];
    if (pgpool_init(&node->pool, &node->loop, &conf->db, "conclave-node", why, sizeof(why)) != 0) {
        snprintf(errmsg, errlen, "postgresql pool: %s", why);
        goto fail;
    }
    if (watch_hub_new(&node->watch, &node->loop, node->pool, watch_view, watch_pending, node, why,
                      sizeof(why)) != 0) {
        snprintf(errmsg, errlen, "%s", why);
        goto fail;
    }
    if (pglisten_start(&node->listen, &node->loop, &conf->db, auth_channels, on_notify, node, why,
                       sizeof(why)) != 0) {
        snprintf(errmsg, errlen, "postgresql listener: %s", why);
        goto fail;
    }
    if (conf->has_raft) {
        unsigned char key[16];
        randombytes_buf(key, sizeof(key));
        if (fsm_new(&node->fsm, key, why, sizeof(why)) != 0) {
            snprintf(errmsg, errlen, "state machine: %s", why);
            goto fail;
        }
        if (rnode_start(&node->raft, &node->loop, &conf->raft, node->fsm, on_raft_fatal, node, why,
                        sizeof(why)) != 0) {
            snprintf(errmsg, errlen, "raft on %s: %s", conf->raft.address, why);
            goto fail;
        }
        if (materializer_init(&node->matd, &node->loop, node->pool, node->raft, node->fsm, why,
                              sizeof(why)) != 0 ||
            forward_init(&node->fwd, &node->loop, conf->node_id, why, sizeof(why)) != 0) {
            snprintf(errmsg, errlen, "%s", why);
            goto fail;
        }
        /* With https, forwards go to the leader's https address and trust the cluster's CA. */
        if (conf->http_cert_file != NULL &&
            forward_set_tls(node->fwd, conf->raft.tls_ca_file, why, sizeof(why)) != 0) {
            snprintf(errmsg, errlen, "forwarding over https: %s", why);
            goto fail;
        }
        uv_timer_start(&node->leader_sampler, sample_leader, 0, LEADER_SAMPLE_MS);
    }
    struct http_config hc;
    http_config_init(&hc);
    hc.max_body_bytes = conf->http_max_body_bytes;
    hc.max_header_bytes = conf->http_max_header_bytes;
    if (hc.max_url_bytes > hc.max_header_bytes) {
        hc.max_url_bytes = hc.max_header_bytes;
    }
    hc.request_timeout_ms = conf->http_request_timeout_ms;
    hc.idle_timeout_ms = conf->http_idle_timeout_ms;
    hc.max_connections = conf->http_max_connections;
    hc.log = log_access;
    hc.log_data = node;
    hc.observe = observe_request;
    hc.observe_data = node;
    /* The TLS handshake counts against the same budget as a request's head. */
    hc.tls_handshake_timeout_ms = conf->http_request_timeout_ms;
    if (conf->http_cert_file != NULL) {
        if (http_tls_new(&node->tls, conf->http_cert_file, conf->http_key_file, why, sizeof(why)) !=
            0) {
            snprintf(errmsg, errlen, "%s", why);
            goto fail;
        }
        hc.tls = node->tls;
    }
    if (http_server_init(&node->http, &node->loop, &hc, handler, node, why, sizeof(why)) != 0) {
        snprintf(errmsg, errlen, "http server: %s", why);
        goto fail;
    }
    http_started = true;
    if (http_server_listen(&node->http, conf->http_host, conf->http_port, why, sizeof(why)) != 0) {
        snprintf(errmsg, errlen, "http server on %s:%d: %s", conf->http_host, conf->http_port, why);
        goto fail;
    }
    uv_signal_start(&node->sigterm, on_signal, SIGTERM);
    uv_signal_start(&node->sigint, on_signal, SIGINT);
    uv_signal_start(&node->sighup, on_sighup, SIGHUP);
    node->watchdog_ms = sdnotify_watchdog_ms();
    node->watchdog_last = node_now_ms(node);
    uv_timer_start(&node->service_timer, service_tick, 0, SERVICE_TICK_MS);
    fprintf(stderr, "node %u: serving %s on %s:%d, raft on %s, data in %s\n", conf->node_id,
            node->tls != NULL ? "https" : "http", conf->http_host, http_server_port(&node->http),
            conf->has_raft ? conf->raft.address : "(none)", conf->data_dir);
    uv_run(&node->loop, UV_RUN_DEFAULT);
    rc = node->exit_code == 0 ? 0 : -1;
    if (rc != 0) {
        snprintf(errmsg, errlen, "stopped after a fatal raft error (see above)");
    }
    goto out;

fail:
    begin_stop(node, http_started);
    uv_run(&node->loop, UV_RUN_DEFAULT);
out:
    if (uv_loop_close(&node->loop) != 0) {
        fprintf(stderr, "node: event loop still had open handles at exit\n");
        rc = rc == 0 ? -1 : rc;
        if (rc == -1 && errmsg[0] == '\0') {
            snprintf(errmsg, errlen, "event loop still had open handles at exit");
        }
    }
    /* Every connection, and so every TLS session, is gone with the loop. */
    http_tls_free(node->tls);
    authcache_free(node->cache);
    throttle_free(node->throttle);
    metrics_free(node->metrics);
    fsm_free(node->fsm);
    sodium_memzero(node->secret, sizeof(node->secret));
    free(node);
    return rc;
}
