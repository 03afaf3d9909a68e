/*
 * One benchmark run: what to do (options) and what happened (result), shared by the HTTP
 * engine (lg_net.c: conclave and etcd over libuv) and the PostgreSQL engine (lg_pg.c: libpq,
 * one thread per client).
 *
 * Every client runs a closed loop (the next operation starts when the previous one answered).
 * Client C owns the keys K < write_keys with K % clients == C and is the only one writing them,
 * so a CAS write conflicts only when the version it learned is stale; reads pick any key. The
 * setup workload creates each key from setup_from on with expected version 0 and takes a
 * conflict as "the key exists already", so it needs no learning reads.
 */
#ifndef LG_RUN_H
#define LG_RUN_H

#include <stdint.h>

#include "lg_hist.h"
#include "lg_proto.h"

enum lg_workload {
    LG_W_SETUP,    /* create every key once (untimed) */
    LG_W_CAS,      /* CAS writes on the client's own keys */
    LG_W_READ,     /* linearizable reads of any key */
    LG_W_STALE,    /* stale (conclave) or serializable (etcd) reads of any key */
    LG_W_MIXED,    /* write_pct % CAS writes, the rest linearizable reads */
    LG_W_FAILOVER, /* CAS writes to the surviving nodes while the leader is killed */
};

#define LG_MAX_TARGETS 16

struct lg_opts {
    enum lg_system system;
    enum lg_workload workload;
    int clients;
    double duration_s;                   /* length of the timed phase */
    double timeout_s;                    /* one request's limit before the connection is dropped */
    int keys;                            /* key indexes 0 .. keys-1 */
    int write_keys;                      /* writes go to indexes 0 .. write_keys-1 (0: keys) */
    int setup_from;                      /* LG_W_SETUP: create indexes setup_from .. keys-1 */
    int value_size;                      /* bytes of each JSON value */
    int write_pct;                       /* LG_W_MIXED: percentage of writes */
    const char *targets[LG_MAX_TARGETS]; /* "ip:port" of the nodes; client C uses C % n */
    int ntargets;
    const char *token;     /* conclave: bearer token */
    const char *project;   /* conclave: project id */
    const char *pg_url;    /* PostgreSQL baseline: libpq connection string */
    const char *pg_schema; /* PostgreSQL baseline: schema holding the baseline tables */
    int kill_pid;          /* LG_W_FAILOVER: the leader's pid, killed with SIGKILL */
    double kill_after_s;   /* LG_W_FAILOVER: steady writes before the kill */
    const char *label;     /* the progress line's name of the run */
    int quiet;             /* no progress line */
};

struct lg_result {
    uint64_t ops;       /* operations that succeeded inside the timed phase */
    uint64_t conflicts; /* CAS writes that met another version (not timed) */
    uint64_t errors;    /* failed operations: error answers, timeouts, dropped connections */
    double seconds;     /* length of the timed phase */
    struct lg_hist lat; /* latency of every successful operation */
    double failover_ms; /* LG_W_FAILOVER: kill to the acknowledgement of the first write sent
                         * after it; < 0 if none */
};

/* Runs O against conclave or etcd and fills R (R->lat initialised by the caller). Returns 0,
 * or -1 with ERR (CAP bytes) saying what failed so that the run means nothing. */
int lg_net_run(const struct lg_opts *o, struct lg_result *r, char *err, size_t cap);

/* Runs O against the PostgreSQL baseline and fills R. Returns 0 or -1 with ERR. */
int lg_pg_run(const struct lg_opts *o, struct lg_result *r, char *err, size_t cap);

/* Monotonic time in nanoseconds. */
uint64_t lg_now_ns(void);

/* Redraws the progress line on stderr (unless O->quiet). */
void lg_progress(const struct lg_opts *o, double elapsed_s, uint64_t ops, uint64_t errors);

/* A xorshift64* step: the next pseudo-random number of *STATE (never 0). */
uint64_t lg_rand(uint64_t *state);

#endif
