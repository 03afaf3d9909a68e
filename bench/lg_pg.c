/*
 * The plain-PostgreSQL baseline of the load generator: what a user would write instead of
 * conclave. Every client is a thread with its own libpq connection; a CAS write is one
 * statement, so one transaction and one round trip: an UPDATE of the config row guarded by
 * `version = $expected` and, only when it matched, the INSERT of the revision row.
 *
 * The tables live in their own schema (o->pg_schema), made by scripts/bench as copies of
 * conclave's configs and config_revisions (LIKE ... INCLUDING ALL: the same columns, checks
 * and indexes, without the foreign keys and the append-only trigger), and dropped after.
 * There is no hash chain: prev_hash is a constant and hash the SHA-256 of the content, which
 * is what a user of plain PostgreSQL would skip or compute the same way.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

#include "lg_run.h"

#define PG_PROJECT "bench"

struct pg_shared {
    const struct lg_opts *o;
    atomic_int learned;    /* clients that finished learning */
    atomic_int failed;     /* a client met a fatal error */
    atomic_ullong ops;     /* for the progress line */
    atomic_ullong errors;  /* for the progress line */
    atomic_ullong t_start; /* valid once go is 1 */
    atomic_int go;
    pthread_mutex_t lock;
    char err[256];
};

struct pg_client {
    struct pg_shared *sh;
    int id;
    pthread_t thread;
    uint64_t ops, conflicts, errors;
    struct lg_hist lat;
};

static void pg_fail(struct pg_shared *sh, const char *what, PGconn *conn)
{
    pthread_mutex_lock(&sh->lock);
    if (!sh->err[0]) {
        snprintf(sh->err, sizeof sh->err, "%s: %s", what,
                 conn ? PQerrorMessage(conn) : "no connection");
        size_t n = strlen(sh->err);
        if (n > 0 && sh->err[n - 1] == '\n') {
            sh->err[n - 1] = '\0';
        }
    }
    pthread_mutex_unlock(&sh->lock);
    atomic_store(&sh->failed, 1);
}

/* The revision row both writes insert, from the row their CTE (named after FROM) returned; the
 * schema name is the one %s. */
#define REVISION_INSERT                                                                            \
    "INSERT INTO %s.config_revisions (revision, project_id, key, version, op, content, actor, "    \
    "created_at, raft_index, raft_term, prev_hash, hash) SELECT last_revision, $1, key, "          \
    "version, 'put', $3::json, 'bench', now(), last_revision, 1, sha256(''::bytea), "              \
    "sha256(convert_to($3, 'UTF8')) FROM "

/* Prepares the three statements of a client. Returns 0 or -1 (reported). */
static int prepare(struct pg_shared *sh, PGconn *conn)
{
    const char *s = sh->o->pg_schema;
    static const Oid types[4] = {25, 25, 25, 20}; /* text, text, text, int8 */
    char sql[2048];
    snprintf(sql, sizeof sql, "SELECT version FROM %s.configs WHERE project_id = $1 AND key = $2",
             s);
    PGresult *r = PQprepare(conn, "learn", sql, 2, types);
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    PQclear(r);
    if (!ok) {
        pg_fail(sh, "preparing the version query failed", conn);
        return -1;
    }
    /* The revision row repeats what conclave stores: content as json, its SHA-256. */
    snprintf(sql, sizeof sql,
             "WITH u AS (UPDATE %s.configs SET version = version + 1, content = $3::jsonb, "
             "last_revision = nextval('%s.revision_seq'), updated_by = 'bench', "
             "updated_at = now() WHERE project_id = $1 AND key = $2 AND version = $4 "
             "AND NOT deleted RETURNING key, version, last_revision) " REVISION_INSERT
             "u RETURNING version",
             s, s, s);
    r = PQprepare(conn, "cas", sql, 4, types);
    ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    PQclear(r);
    if (!ok) {
        pg_fail(sh, "preparing the CAS statement failed", conn);
        return -1;
    }
    snprintf(sql, sizeof sql,
             "WITH i AS (INSERT INTO %s.configs (project_id, key, version, content, "
             "last_revision, updated_by, updated_at) VALUES ($1, $2, 1, $3::jsonb, "
             "nextval('%s.revision_seq'), 'bench', now()) ON CONFLICT DO NOTHING "
             "RETURNING key, version, last_revision) " REVISION_INSERT "i RETURNING version",
             s, s, s);
    r = PQprepare(conn, "create", sql, 3, types);
    ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    PQclear(r);
    if (!ok) {
        pg_fail(sh, "preparing the create statement failed", conn);
        return -1;
    }
    return 0;
}

/* The key's version now (0 when absent), or -1 (reported). */
static int learn(struct pg_shared *sh, PGconn *conn, const char *key, uint64_t *version)
{
    const char *params[2] = {PG_PROJECT, key};
    PGresult *r = PQexecPrepared(conn, "learn", 2, params, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        pg_fail(sh, "reading a version failed", conn);
        PQclear(r);
        return -1;
    }
    *version = PQntuples(r) ? strtoull(PQgetvalue(r, 0, 0), NULL, 10) : 0;
    PQclear(r);
    return 0;
}

/* One CAS write (or the creation when EXPECTED is 0). Returns LG_OK with *VERSION the new
 * version, LG_CONFLICT with *VERSION the current one, or LG_ERROR. */
static enum lg_outcome write_once(struct pg_shared *sh, PGconn *conn, const char *key,
                                  const char *value, uint64_t expected, uint64_t *version)
{
    char exp[32];
    snprintf(exp, sizeof exp, "%" PRIu64, expected);
    const char *params[4] = {PG_PROJECT, key, value, exp};
    PGresult *r =
        PQexecPrepared(conn, expected ? "cas" : "create", expected ? 4 : 3, params, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        if (getenv("LG_DEBUG")) {
            fprintf(stderr, "\npg write failed: %s", PQerrorMessage(conn));
        }
        PQclear(r);
        return LG_ERROR;
    }
    if (PQntuples(r) == 1) {
        *version = strtoull(PQgetvalue(r, 0, 0), NULL, 10);
        PQclear(r);
        return LG_OK;
    }
    PQclear(r);
    return learn(sh, conn, key, version) == 0 ? LG_CONFLICT : LG_ERROR;
}

static void *client_main(void *arg)
{
    struct pg_client *c = arg;
    struct pg_shared *sh = c->sh;
    const struct lg_opts *o = sh->o;
    int nown = 0;
    for (int k = c->id; k < o->keys; k += o->clients) {
        nown++;
    }
    uint64_t *version = calloc((size_t)nown + 1, sizeof *version);
    PGconn *conn = PQconnectdb(o->pg_url);
    char key[32];
    char value[4096];
    uint64_t seq = 0;
    int counted = 0;
    if (!version) {
        pg_fail(sh, "out of memory for versions", NULL);
        goto out;
    }
    if (PQstatus(conn) != CONNECTION_OK) {
        pg_fail(sh, "connecting to PostgreSQL failed", conn);
        goto out;
    }
    if (prepare(sh, conn) != 0) {
        goto out;
    }
    for (int j = 0; j < nown; j++) {
        lg_key(key, sizeof key, c->id + j * o->clients);
        if (learn(sh, conn, key, &version[j]) != 0) {
            goto out;
        }
    }
    atomic_fetch_add(&sh->learned, 1);
    counted = 1;
    while (!atomic_load(&sh->go) && !atomic_load(&sh->failed)) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    uint64_t deadline = atomic_load(&sh->t_start) + (uint64_t)(o->duration_s * 1e9);
    int j = 0;
    while (!atomic_load(&sh->failed) && nown > 0) {
        if (o->workload == LG_W_SETUP) {
            if (j >= nown) {
                break;
            }
        } else if (lg_now_ns() >= deadline) {
            break;
        }
        int k = c->id + j * o->clients;
        lg_key(key, sizeof key, k);
        lg_value(value, sizeof value, (size_t)o->value_size, k, ++seq);
        uint64_t t0 = lg_now_ns();
        enum lg_outcome out = write_once(sh, conn, key, value, version[j], &version[j]);
        uint64_t t1 = lg_now_ns();
        if (out == LG_ERROR) {
            c->errors++;
            atomic_fetch_add(&sh->errors, 1);
            if (PQstatus(conn) != CONNECTION_OK) {
                pg_fail(sh, "the PostgreSQL connection broke", conn);
                break;
            }
            /* Setup must finish: a write that keeps failing is a broken table, not load. */
            if (o->workload == LG_W_SETUP && c->errors > 100) {
                pg_fail(sh, "creating the keys failed", conn);
                break;
            }
            continue;
        }
        if (out == LG_CONFLICT) {
            c->conflicts++;
            continue;
        }
        if (o->workload != LG_W_SETUP && t1 <= deadline) {
            c->ops++;
            atomic_fetch_add(&sh->ops, 1);
            if (lg_hist_add(&c->lat, t1 - t0) != 0) {
                pg_fail(sh, "out of memory recording a latency", NULL);
                break;
            }
        }
        j = o->workload == LG_W_SETUP ? j + 1 : (j + 1) % nown;
    }
out:
    if (!counted) {
        atomic_fetch_add(&sh->learned, 1); /* never leave the others waiting */
    }
    PQfinish(conn);
    free(version);
    return NULL;
}

int lg_pg_run(const struct lg_opts *o, struct lg_result *r, char *err, size_t cap)
{
    if (o->workload != LG_W_CAS && o->workload != LG_W_SETUP) {
        snprintf(err, cap, "the PostgreSQL baseline runs only the setup and cas workloads");
        return -1;
    }
    struct pg_shared sh;
    memset(&sh, 0, sizeof sh);
    sh.o = o;
    pthread_mutex_init(&sh.lock, NULL);
    struct pg_client *cs = calloc((size_t)o->clients, sizeof *cs);
    int started = 0;
    int rc = -1;
    if (!cs) {
        snprintf(err, cap, "out of memory for %d clients", o->clients);
        goto out;
    }
    for (; started < o->clients; started++) {
        cs[started].sh = &sh;
        cs[started].id = started;
        lg_hist_init(&cs[started].lat);
        if (pthread_create(&cs[started].thread, NULL, client_main, &cs[started]) != 0) {
            pg_fail(&sh, "starting a client thread failed", NULL);
            break;
        }
    }
    /* The timed phase starts once every client learned its versions. */
    while (atomic_load(&sh.learned) < started && !atomic_load(&sh.failed)) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    uint64_t t_start = lg_now_ns();
    atomic_store(&sh.t_start, t_start);
    atomic_store(&sh.go, 1);
    while (o->workload != LG_W_SETUP && !atomic_load(&sh.failed)) {
        double el = (double)(lg_now_ns() - t_start) / 1e9;
        lg_progress(o, el, atomic_load(&sh.ops), atomic_load(&sh.errors));
        if (el >= o->duration_s) {
            break;
        }
        struct timespec ts = {0, 200000000};
        nanosleep(&ts, NULL);
    }
    if (!o->quiet && o->workload != LG_W_SETUP) {
        fprintf(stderr, "\n");
    }
    for (int i = 0; i < started; i++) {
        pthread_join(cs[i].thread, NULL);
    }
    if (sh.err[0]) {
        snprintf(err, cap, "%s", sh.err);
        goto out;
    }
    r->seconds = o->duration_s;
    for (int i = 0; i < started; i++) {
        r->ops += cs[i].ops;
        r->conflicts += cs[i].conflicts;
        r->errors += cs[i].errors;
        if (lg_hist_merge(&r->lat, &cs[i].lat) != 0) {
            snprintf(err, cap, "out of memory merging latencies");
            goto out;
        }
    }
    rc = 0;
out:
    for (int i = 0; cs && i < o->clients; i++) {
        lg_hist_free(&cs[i].lat);
    }
    free(cs);
    pthread_mutex_destroy(&sh.lock);
    return rc;
}
