/*
 * node: one conclave process serving the API (`conclave serve`).
 *
 * The node owns the libuv loop and everything on it: the HTTP server, the PostgreSQL pool,
 * the LISTEN thread that invalidates the auth cache, and the signal handlers. It runs until
 * SIGTERM or SIGINT, then stops accepting, lets running PostgreSQL jobs finish, closes every
 * handle and returns, so that uv_loop_close() succeeds.
 */
#ifndef CONCLAVE_NODE_H
#define CONCLAVE_NODE_H

#include <stdbool.h>
#include <stddef.h>

#include <uv.h>

#include "server/authcache.h"
#include "server/throttle.h"
#include "server/config.h"
#include "http/http_server.h"
#include "http/http_tls.h"
#include "storage/pglisten.h"
#include "storage/pgpool.h"
#include "http/forward.h"
#include "server/materializer.h"
#include "server/metrics.h"
#include "server/watch_hub.h"
#include "raft/rnode.h"

struct node {
    uv_loop_t loop;
    const struct config *conf; /* borrowed from the caller of node_run() */
    unsigned char secret[128]; /* the node secret: the HMAC key of tokens and API keys */
    size_t secret_len;
    struct http_server http;
    struct pgpool *pool;
    struct pglisten *listen;
    struct authcache *cache;
    struct throttle *throttle; /* failed logins (throttle.h) */
    struct fsm *fsm;           /* the replicated state; NULL without a raft section */
    struct rnode *raft;        /* NULL without a raft section, and once shut down */
    struct matd *matd;         /* the materializer; with raft only */
    struct fwd *fwd;           /* forwards leader-only requests; with raft only */
    struct watch_hub *watch;   /* the long-poll watchers' fan-out; NULL once closed */
    int exit_code;             /* 0, or 1 after a fatal raft error */
    uv_signal_t sigterm;
    uv_signal_t sigint;
    uv_signal_t sighup;   /* reloads the https certificate; started with https only */
    struct http_tls *tls; /* https on the API port (http.cert_file); NULL: plain http */
    /* A SIGHUP reload of the https files: read on a worker thread (tls_reload), installed on
     * the loop. While tls_reloading the job owns tls_loaded and tls_reload_err. */
    uv_work_t tls_reload;
    bool tls_reloading;
    struct http_tls_loaded *tls_loaded;
    char tls_reload_err[1024];
    bool stopping;
    int pending_closes; /* components whose close callback has not run yet */
    /* What GET /metrics counts; freed after the loop. */
    struct metrics *metrics;
    /* Feeds raft's leader id to the metrics every LEADER_SAMPLE_MS; started with raft only. */
    uv_timer_t leader_sampler;
    /* The service manager's view (sdnotify.h): every SERVICE_TICK_MS until the node is ready,
     * which it then announces once, and on as the watchdog's heartbeat while one is asked
     * for. service_status is the last STATUS sent, so that only changes are sent. */
    uv_timer_t service_timer;
    bool service_ready;
    uint64_t watchdog_ms;   /* WatchdogSec in ms; 0: none */
    uint64_t watchdog_last; /* node_now_ms() of the last WATCHDOG=1 */
    char service_status[160];
};

/* Runs a node with CONF until a stop signal, answering every HTTP request with HANDLER, which
 * gets the node as its data (the API's api_handle: the caller wires the two together, so the
 * node includes nothing of the API that includes it). Returns 0 after a clean stop, or -1 with
 * ERRMSG when it could not start (bad secret, port in use, ...). */
int node_run(const struct config *conf, http_handler_fn handler, char *errmsg, size_t errlen);

struct api_call;

/* Forwards CALL to the leader (one hop), or answers 503 when that is not possible. */
void api_forward_to_leader(struct node *node, struct api_call *call);

/* The raft index this node has applied (0 without raft). */
uint64_t node_raft_applied(struct node *node);

/* Milliseconds on the loop's clock (uv_now), for cache expiry. */
uint64_t node_now_ms(struct node *node);

#endif /* CONCLAVE_NODE_H */
