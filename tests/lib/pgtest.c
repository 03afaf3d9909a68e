#include "pgtest.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "storage/db.h"
#include "storage/migrate.h"
#include "storage/migration_set.h"

static char last_message[1024];

static void die(const char *what, const char *detail)
{
    fprintf(stderr, "pgtest: %s: %s\n", what, detail);
    exit(1);
}

PGconn *pgtest_connect(const char *conninfo)
{
    PGconn *conn = PQconnectdb(conninfo);
    if (PQstatus(conn) != CONNECTION_OK) {
        die("cannot connect", PQerrorMessage(conn));
    }
    PQclear(PQexec(conn, "SET client_min_messages = warning"));
    return conn;
}

void pgtest_create_db(const char *prefix, char *out, size_t outlen)
{
    const char *base = getenv("CONCLAVE_TEST_PG");
    if (base == NULL || base[0] == '\0') {
        die("CONCLAVE_TEST_PG is not set",
            "database tests need the throwaway server of tests/pg-harness; run scripts/test");
    }
    char name[64], sql[128];
    snprintf(name, sizeof(name), "t_%s_%ld", prefix, (long)getpid());
    PGconn *conn = pgtest_connect(base);
    snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s", name);
    PQclear(PQexec(conn, sql));
    snprintf(sql, sizeof(sql), "CREATE DATABASE %s", name);
    PGresult *res = PQexec(conn, sql);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        die("create database", PQresultErrorMessage(res));
    }
    PQclear(res);
    PQfinish(conn);
    /* libpq keeps the last value of a repeated keyword, so this dbname wins. */
    snprintf(out, outlen, "%s dbname=%s", base, name);
}

void pgtest_migrate_up(const char *conninfo)
{
    const char *src = getenv("CONCLAVE_SOURCE_DIR");
    if (src == NULL) {
        die("CONCLAVE_SOURCE_DIR is not set", "run the test through ctest");
    }
    char dir[4096], err[2048];
    snprintf(dir, sizeof(dir), "%s/migrations", src);
    struct mset set;
    if (migration_set_load(dir, &set, err, sizeof(err)) != 0) {
        die("loading migrations", err);
    }
    PGconn *conn = pgtest_connect(conninfo);
    struct migrate_ctx ctx = {.conn = conn, .set = &set};
    if (migrate_up(&ctx, 0, NULL, err, sizeof(err)) != 0) {
        die("migrate up", err);
    }
    PQfinish(conn);
    migration_set_free(&set);
}

const char *pgtest_sqlstate(PGconn *conn, const char *sql)
{
    static char state[6];
    PGresult *res = PQexec(conn, sql);
    ExecStatusType st = PQresultStatus(res);
    last_message[0] = '\0';
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
        snprintf(state, sizeof(state), "00000");
    } else {
        const char *code = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
        snprintf(state, sizeof(state), "%s", code ? code : "?????");
        snprintf(last_message, sizeof(last_message), "%s", msg ? msg : "");
    }
    PQclear(res);
    return state;
}

const char *pgtest_last_message(void)
{
    return last_message;
}

/* Prints why and fails the running cmocka test at FILE:LINE, the caller's check. cmocka's
 * _fail() leaves the test by longjmp, so nothing after it runs. */
static void fail_at(const char *file, int line, const char *format, ...)
    __attribute__((format(printf, 3, 4)));

static void fail_at(const char *file, int line, const char *format, ...)
{
    char why[8192];
    va_list ap;
    va_start(ap, format);
    vsnprintf(why, sizeof(why), format, ap);
    va_end(ap);
    print_error("ERROR: %s\n", why);
    _fail(file, line);
}

/* Runs SQL and returns its result, which the caller clears. Fails the test with the SQLSTATE
 * and the server's message unless the statement succeeded; the result is cleared first, so a
 * failing check leaks nothing. */
static PGresult *run_ok(PGconn *conn, const char *sql, const char *file, int line)
{
    PGresult *res = PQexec(conn, sql);
    ExecStatusType st = PQresultStatus(res);
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
        return res;
    }
    char why[1024];
    const char *code = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
    /* Without a server message (a lost connection, say), libpq's own says what happened. */
    snprintf(why, sizeof(why), "SQLSTATE %s (%s)", code ? code : "?????",
             msg ? msg : PQerrorMessage(conn));
    PQclear(res);
    fail_at(file, line, "%s for: %s", why, sql);
    return NULL;
}

void pgtest_exec_at(PGconn *conn, const char *sql, const char *file, int line)
{
    PQclear(run_ok(conn, sql, file, line));
}

void pgtest_assert_sqlstate_at(PGconn *conn, const char *state, const char *sql, const char *file,
                               int line)
{
    const char *got = pgtest_sqlstate(conn, sql);
    if (strcmp(got, state) != 0) {
        fail_at(file, line, "expected SQLSTATE %s, got %s (%s) for: %s", state, got, last_message,
                sql);
    }
}

void pgtest_assert_rows_at(PGconn *conn, const char *sql, long n, const char *file, int line)
{
    PGresult *res = run_ok(conn, sql, file, line);
    long got = -1;
    if (PQresultStatus(res) == PGRES_TUPLES_OK) {
        got = PQntuples(res);
    } else if (PQcmdTuples(res)[0] != '\0') {
        got = strtol(PQcmdTuples(res), NULL, 10);
    }
    PQclear(res);
    if (got < 0) {
        fail_at(file, line, "the statement reports no row count: %s", sql);
    }
    if (got != n) {
        fail_at(file, line, "expected %ld rows, got %ld for: %s", n, got, sql);
    }
}

/* The last value pgtest_value_at() returned; replaced (and freed) by the next call. */
static char *value_text;

const char *pgtest_value_at(PGconn *conn, const char *sql, const char *file, int line)
{
    PGresult *res = run_ok(conn, sql, file, line);
    int rows = PQntuples(res), cols = PQnfields(res);
    bool returns_rows = PQresultStatus(res) == PGRES_TUPLES_OK;
    if (!returns_rows || rows != 1 || cols != 1) {
        PQclear(res);
        if (!returns_rows) {
            fail_at(file, line, "expected one value, but the statement returns no rows: %s", sql);
        }
        fail_at(file, line, "expected one row of one column, got %d rows of %d columns for: %s",
                rows, cols, sql);
        return NULL;
    }
    free(value_text);
    value_text = NULL;
    if (!PQgetisnull(res, 0, 0)) {
        value_text = strdup(PQgetvalue(res, 0, 0));
        if (value_text == NULL) {
            PQclear(res);
            fail_at(file, line, "out of memory copying the value of: %s", sql);
        }
    }
    PQclear(res);
    return value_text;
}

void pgtest_assert_value_at(PGconn *conn, const char *sql, const char *expected, const char *file,
                            int line)
{
    const char *got = pgtest_value_at(conn, sql, file, line);
    if (got == NULL && expected == NULL) {
        return;
    }
    if (got == NULL || expected == NULL || strcmp(got, expected) != 0) {
        fail_at(file, line, "expected %s%s%s, got %s%s%s for: %s", expected ? "'" : "",
                expected ? expected : "NULL", expected ? "'" : "", got ? "'" : "",
                got ? got : "NULL", got ? "'" : "", sql);
    }
}

long pgtest_long_at(PGconn *conn, const char *sql, const char *file, int line)
{
    const char *text = pgtest_value_at(conn, sql, file, line);
    if (text == NULL) {
        fail_at(file, line, "expected an integer, got NULL for: %s", sql);
        return 0;
    }
    char *end;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0') {
        fail_at(file, line, "expected an integer, got '%s' for: %s", text, sql);
    }
    return v;
}

void pgtest_assert_db_ok_at(int rc, const char *errmsg, const char *file, int line)
{
    if (rc != DB_OK) {
        fail_at(file, line, "expected DB_OK, got %d: %s", rc, errmsg);
    }
}

void pgtest_assert_contains_at(const char *haystack, const char *needle, const char *file, int line)
{
    if (haystack == NULL || strstr(haystack, needle) == NULL) {
        fail_at(file, line, "\"%s\" does not contain \"%s\"", haystack ? haystack : "(null)",
                needle);
    }
}
