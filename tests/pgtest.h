/*
 * pgtest: per-test databases on the throwaway server of tests/pg-harness.
 */
#ifndef CONCLAVE_PGTEST_H
#define CONCLAVE_PGTEST_H

#include <stddef.h>

#include <libpq-fe.h>

/* Creates a fresh, empty database named after PREFIX and the process id on the server named
 * by CONCLAVE_TEST_PG and writes its connection string to OUT. Aborts the test program with a
 * clear message when CONCLAVE_TEST_PG is missing (run through scripts/test) or the server
 * refuses. */
void pgtest_create_db(const char *prefix, char *out, size_t outlen);

/* Applies every migration of the source tree's migrations/ to the database at CONNINFO.
 * Aborts on failure. */
void pgtest_migrate_up(const char *conninfo);

/* Connects to CONNINFO or aborts. The caller closes the connection with PQfinish. */
PGconn *pgtest_connect(const char *conninfo);

/* Runs SQL and returns its SQLSTATE ("00000" on success) in a static buffer, so a test can
 * assert exactly which constraint refused a statement. */
const char *pgtest_sqlstate(PGconn *conn, const char *sql);

/* The primary message of the last failed pgtest_sqlstate(), or "". */
const char *pgtest_last_message(void);

#endif /* CONCLAVE_PGTEST_H */
