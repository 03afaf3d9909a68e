#include "pgtest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "migrate.h"
#include "migration_set.h"

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
    if (mset_load(dir, &set, err, sizeof(err)) != 0) {
        die("loading migrations", err);
    }
    PGconn *conn = pgtest_connect(conninfo);
    struct migrate_ctx ctx = {.conn = conn, .set = &set};
    if (migrate_up(&ctx, 0, NULL, err, sizeof(err)) != 0) {
        die("migrate up", err);
    }
    PQfinish(conn);
    mset_free(&set);
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
