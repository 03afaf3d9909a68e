#include "storage/migrate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Copies a libpq error message without its trailing newline. */
static void pg_reason(const PGresult *res, const PGconn *conn, char *buf, size_t len)
{
    const char *msg = res != NULL ? PQresultErrorMessage(res) : NULL;
    if (msg == NULL || msg[0] == '\0') {
        msg = PQerrorMessage(conn);
    }
    size_t n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == ' ')) {
        n--;
    }
    /* libpq prefixes "ERROR:  "; our messages carry their own context. */
    if (n >= 8 && strncmp(msg, "ERROR:  ", 8) == 0) {
        msg += 8;
        n -= 8;
    }
    snprintf(buf, len, "%.*s", (int)n, msg);
}

/* Runs SQL (no parameters) expecting no error. WHAT names the step in the error message. */
static int exec_ok(PGconn *conn, const char *sql, const char *what, char *errmsg, size_t errlen)
{
    PGresult *res = PQexec(conn, sql);
    ExecStatusType st = PQresultStatus(res);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        /* PostgreSQL's reason goes straight after "WHAT: " in ERRMSG, cut at its end. */
        int n = snprintf(errmsg, errlen, "%s: ", what);
        if (n >= 0 && (size_t)n < errlen) {
            pg_reason(res, conn, errmsg + n, errlen - (size_t)n);
        }
        PQclear(res);
        return -1;
    }
    PQclear(res);
    return 0;
}

static void rollback_quietly(PGconn *conn)
{
    PQclear(PQexec(conn, "ROLLBACK"));
}

/* Replaces the one row of schema_migrations inside the caller's transaction. VERSION 0 with
 * DIRTY false means "nothing applied": the table is left empty, as golang-migrate does. */
static int write_version(PGconn *conn, long long version, bool dirty, char *errmsg, size_t errlen)
{
    if (exec_ok(conn, "DELETE FROM schema_migrations", "clearing schema_migrations", errmsg,
                errlen) != 0) {
        return -1;
    }
    if (version == 0 && !dirty) {
        return 0;
    }
    char v[32];
    snprintf(v, sizeof(v), "%lld", version);
    const char *params[] = {v, dirty ? "t" : "f"};
    PGresult *res = PQexecParams(conn,
                                 "INSERT INTO schema_migrations (version, dirty) VALUES "
                                 "($1::bigint, $2::boolean)",
                                 2, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        char why[1024];
        pg_reason(res, conn, why, sizeof(why));
        snprintf(errmsg, errlen, "recording version %lld in schema_migrations: %s", version, why);
        PQclear(res);
        return -1;
    }
    PQclear(res);
    return 0;
}

/* Takes the advisory lock, waiting at most MIGRATE_LOCK_TIMEOUT_MS, and makes sure the
 * version table exists. Creating the table under the lock avoids the race in which two
 * processes both try CREATE TABLE IF NOT EXISTS and one fails on the catalog's unique index. */
static int lock_and_prepare(PGconn *conn, char *errmsg, size_t errlen)
{
    char sql[160];
    /* NOTICEs ("relation already exists, skipping") are noise to an operator; warnings and
     * errors still come through. */
    if (exec_ok(conn, "SET client_min_messages = warning", "setting client_min_messages", errmsg,
                errlen) != 0) {
        return -1;
    }
    snprintf(sql, sizeof(sql), "SET lock_timeout = %d", MIGRATE_LOCK_TIMEOUT_MS);
    if (exec_ok(conn, sql, "setting lock_timeout", errmsg, errlen) != 0) {
        return -1;
    }
    snprintf(sql, sizeof(sql), "SELECT pg_advisory_lock(%lld)", MIGRATE_LOCK_KEY);
    if (exec_ok(conn, sql, "waiting for the migration lock (another migration running?)", errmsg,
                errlen) != 0) {
        return -1;
    }
    if (exec_ok(conn, "SET lock_timeout = 0", "resetting lock_timeout", errmsg, errlen) != 0 ||
        exec_ok(conn,
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                "version bigint NOT NULL PRIMARY KEY, dirty boolean NOT NULL)",
                "creating schema_migrations", errmsg, errlen) != 0) {
        return -1;
    }
    return 0;
}

static void unlock(PGconn *conn)
{
    char sql[96];
    snprintf(sql, sizeof(sql), "SELECT pg_advisory_unlock(%lld)", MIGRATE_LOCK_KEY);
    PQclear(PQexec(conn, sql));
}

/* Reads the version row; the lock must be held. */
static int read_state(PGconn *conn, struct migrate_state *out, char *errmsg, size_t errlen)
{
    PGresult *res = PQexec(conn, "SELECT version, dirty FROM schema_migrations");
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        char why[1024];
        pg_reason(res, conn, why, sizeof(why));
        snprintf(errmsg, errlen, "reading schema_migrations: %s", why);
        PQclear(res);
        return -1;
    }
    int rows = PQntuples(res);
    if (rows > 1) {
        snprintf(errmsg, errlen,
                 "schema_migrations holds %d rows, expected at most one; repair it with "
                 "`conclave migrate force VERSION`",
                 rows);
        PQclear(res);
        return -1;
    }
    out->version = rows ? strtoll(PQgetvalue(res, 0, 0), NULL, 10) : 0;
    out->dirty = rows ? PQgetvalue(res, 0, 1)[0] == 't' : false;
    PQclear(res);
    return 0;
}

/* Maps PostgreSQL's 1-based character position in SQL to a line number. */
static int line_of(const char *sql, const char *position)
{
    if (position == NULL) {
        return 0;
    }
    long pos = strtol(position, NULL, 10);
    int line = 1;
    long chars = 0;
    for (const unsigned char *p = (const unsigned char *)sql; *p && chars < pos - 1; p++) {
        if ((*p & 0xC0) != 0x80) {
            chars++; /* count code points, as PostgreSQL does */
        }
        if (*p == '\n') {
            line++;
        }
    }
    return line;
}

static double ms_since(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) * 1e3 + (double)(t1.tv_nsec - t0->tv_nsec) / 1e6;
}

/* Runs one migration file and moves the version to NEW_VERSION, in one transaction. On
 * failure the transaction is rolled back and NEW_VERSION is recorded as dirty, which is what
 * golang-migrate records: "the migration towards this version failed". Because of the
 * rollback the schema itself is still at the version before. */
static int run_one(struct migrate_ctx *ctx, const char *path, long long new_version,
                   const char *verb, char *errmsg, size_t errlen)
{
    PGconn *conn = ctx->conn;
    const char *fname = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    char *sql = NULL;
    char why[1024];
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);

    if (migration_set_read_file(path, &sql, errmsg, errlen) != 0) {
        return -1;
    }
    if (exec_ok(conn, "BEGIN", "starting a transaction", errmsg, errlen) != 0) {
        goto err_free;
    }
    PGresult *res = PQexec(conn, sql);
    ExecStatusType st = PQresultStatus(res);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK && st != PGRES_EMPTY_QUERY) {
        pg_reason(res, conn, why, sizeof(why));
        int line = line_of(sql, PQresultErrorField(res, PG_DIAG_STATEMENT_POSITION));
        if (line > 0) {
            snprintf(errmsg, errlen, "migration %s failed at line %d: %s", fname, line, why);
        } else {
            snprintf(errmsg, errlen, "migration %s failed: %s", fname, why);
        }
        PQclear(res);
        goto err_dirty;
    }
    PQclear(res);
    /* A file with its own COMMIT would have ended our transaction, and what followed it ran
     * outside any transaction: refuse it rather than pretend it was atomic. */
    if (PQtransactionStatus(conn) != PQTRANS_INTRANS) {
        snprintf(errmsg, errlen,
                 "migration %s ended the transaction itself; remove BEGIN/COMMIT from the "
                 "file (conclave runs each migration in its own transaction)",
                 fname);
        goto err_dirty;
    }
    if (write_version(conn, new_version, false, errmsg, errlen) != 0) {
        goto err_rollback;
    }
    if (exec_ok(conn, "COMMIT", "committing the migration", errmsg, errlen) != 0) {
        goto err_dirty;
    }
    free(sql);
    if (ctx->log != NULL) {
        char line[512];
        snprintf(line, sizeof(line), "%s %s (%.0f ms)", verb, fname, ms_since(&t0));
        ctx->log(ctx->log_data, line);
    }
    return 0;

err_dirty:
    rollback_quietly(conn);
    {
        /* Record the failure in its own transaction; keep the migration's error as the
         * message, adding this one only if it fails too. */
        char derr[512];
        if (exec_ok(conn, "BEGIN", "starting a transaction", derr, sizeof(derr)) != 0 ||
            write_version(conn, new_version, true, derr, sizeof(derr)) != 0 ||
            exec_ok(conn, "COMMIT", "committing the dirty flag", derr, sizeof(derr)) != 0) {
            rollback_quietly(conn);
            size_t used = strlen(errmsg);
            snprintf(errmsg + used, errlen - used, " (and marking it dirty failed: %s)", derr);
        }
    }
    free(sql);
    return -1;
err_rollback:
    rollback_quietly(conn);
err_free:
    free(sql);
    return -1;
}

/* Takes the lock, reads the state and checks it can be moved from. */
static int begin_op(struct migrate_ctx *ctx, struct migrate_state *st, long *pos, char *errmsg,
                    size_t errlen)
{
    if (lock_and_prepare(ctx->conn, errmsg, errlen) != 0) {
        return -1;
    }
    if (read_state(ctx->conn, st, errmsg, errlen) != 0) {
        goto err_unlock;
    }
    if (st->dirty) {
        snprintf(errmsg, errlen,
                 "database is dirty at version %lld: the migration towards it failed and was "
                 "rolled back; fix the migration, run `conclave migrate force V` with the "
                 "version the schema is really at (the one before), then retry",
                 st->version);
        goto err_unlock;
    }
    *pos = -1;
    if (st->version != 0) {
        *pos = migration_set_index_of(ctx->set, st->version);
        if (*pos < 0) {
            snprintf(errmsg, errlen,
                     "database is at version %lld but %s has no migration with that version",
                     st->version, ctx->set->dir);
            goto err_unlock;
        }
    }
    return 0;

err_unlock:
    unlock(ctx->conn);
    return -1;
}

int migrate_version(struct migrate_ctx *ctx, struct migrate_state *out, char *errmsg, size_t errlen)
{
    if (lock_and_prepare(ctx->conn, errmsg, errlen) != 0) {
        return -1;
    }
    int rc = read_state(ctx->conn, out, errmsg, errlen);
    unlock(ctx->conn);
    return rc;
}

int migrate_up(struct migrate_ctx *ctx, long long steps, long long *applied, char *errmsg,
               size_t errlen)
{
    struct migrate_state st;
    long pos;
    long long done = 0;
    int rc = -1;
    if (applied != NULL) {
        *applied = 0;
    }
    if (begin_op(ctx, &st, &pos, errmsg, errlen) != 0) {
        return -1;
    }
    for (size_t i = (size_t)(pos + 1); i < ctx->set->count && (steps == 0 || done < steps); i++) {
        const struct migration_set_migration *m = &ctx->set->items[i];
        if (run_one(ctx, m->up_path, m->version, "applied", errmsg, errlen) != 0) {
            goto out;
        }
        done++;
    }
    rc = 0;
out:
    unlock(ctx->conn);
    if (applied != NULL) {
        *applied = done;
    }
    return rc;
}

int migrate_down(struct migrate_ctx *ctx, long long steps, long long *reverted, char *errmsg,
                 size_t errlen)
{
    struct migrate_state st;
    long pos;
    long long done = 0;
    int rc = -1;
    if (reverted != NULL) {
        *reverted = 0;
    }
    if (begin_op(ctx, &st, &pos, errmsg, errlen) != 0) {
        return -1;
    }
    for (long i = pos; i >= 0 && (steps == 0 || done < steps); i--) {
        const struct migration_set_migration *m = &ctx->set->items[i];
        long long prev = i > 0 ? ctx->set->items[i - 1].version : 0;
        if (run_one(ctx, m->down_path, prev, "reverted", errmsg, errlen) != 0) {
            goto out;
        }
        done++;
    }
    rc = 0;
out:
    unlock(ctx->conn);
    if (reverted != NULL) {
        *reverted = done;
    }
    return rc;
}

int migrate_force(struct migrate_ctx *ctx, long long version, char *errmsg, size_t errlen)
{
    if (version != 0 && migration_set_index_of(ctx->set, version) < 0) {
        snprintf(errmsg, errlen,
                 "version %lld is not a migration in %s; force takes 0 (none applied) or the "
                 "version of an existing migration",
                 version, ctx->set->dir);
        return -1;
    }
    if (lock_and_prepare(ctx->conn, errmsg, errlen) != 0) {
        return -1;
    }
    int rc = -1;
    if (exec_ok(ctx->conn, "BEGIN", "starting a transaction", errmsg, errlen) != 0) {
        goto out;
    }
    if (write_version(ctx->conn, version, false, errmsg, errlen) != 0 ||
        exec_ok(ctx->conn, "COMMIT", "committing the forced version", errmsg, errlen) != 0) {
        rollback_quietly(ctx->conn);
        goto out;
    }
    rc = 0;
out:
    unlock(ctx->conn);
    return rc;
}
