/*
 * The watch fan-out benchmark (conclave-lg-watch, docs/performance.md "Watch fan-out"): W
 * watchers spread over the nodes (conclave: long polls of one project; etcd: watch streams of
 * one key on the JSON gateway), one write per second through the first target, and for every
 * write: how long after its acknowledgement each watcher had it, and whether any watcher
 * missed it. For conclave the nodes' conclave_watch_queries_total before and after gives the
 * PostgreSQL queries per change.
 */
#ifndef LG_WATCH_H
#define LG_WATCH_H

#include <stdint.h>

#include "lg_hist.h"
#include "lg_run.h"

struct lg_watch_opts {
    enum lg_system system;               /* LG_CONCLAVE (long polls) or LG_ETCD (watch streams) */
    const char *targets[LG_MAX_TARGETS]; /* "ip:port"; watcher I uses I % ntargets */
    int ntargets;
    int watchers;
    int writes;          /* one per second after every watcher waits */
    double interval_s;   /* between writes */
    int poll_timeout_s;  /* ?timeout= of each long poll */
    const char *token;   /* conclave: bearer token */
    const char *project; /* conclave: a project only this run writes */
    const char *key;     /* the config key written (etcd: "bench/KEY") */
    int quiet;
};

struct lg_watch_result {
    int writes;          /* writes acknowledged and counted */
    uint64_t expected;   /* writes x watchers */
    uint64_t delivered;  /* (watcher, write) pairs delivered */
    uint64_t missed;     /* expected - delivered, counted per write */
    uint64_t duplicates; /* a revision a watcher got twice */
    uint64_t before_ack; /* deliveries seen before the writer had the acknowledgement */
    uint64_t errors;     /* failed polls (error answers, dropped connections) */
    struct lg_hist lat;  /* acknowledgement -> delivery, per (watcher, write) */
    struct lg_hist lat_target[LG_MAX_TARGETS]; /* the same, by the target of the watcher */
    uint64_t queries[LG_MAX_TARGETS];          /* conclave_watch_queries_total moved, per target */
    uint64_t queries_total;
    double setup_s; /* connecting and registering every watcher */
    /* Watchers the servers counted when writing began: the sum of conclave_watch_waiting
     * (conclave) or of etcd_debugging_mvcc_watcher_total (etcd) over the targets. */
    uint64_t registered;
    uint64_t created; /* etcd: watch streams the client saw confirmed ("created") then */
};

/* Runs O and fills R (R->lat and R->lat_target[] initialised by the caller). Returns 0, or -1 with
 * ERR (CAP bytes) saying why the run means nothing. */
int lg_watch_run(const struct lg_watch_opts *o, struct lg_watch_result *r, char *err, size_t cap);

#endif
