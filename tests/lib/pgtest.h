/*
 * pgtest: per-test databases on the throwaway server of tests/pg-harness, and the assertions
 * every database test shares.
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

/* Runs SQL and returns its SQLSTATE ("00000" on success) in a static buffer. A success says
 * nothing about rows: a SELECT that finds none and an UPDATE that matches none succeed too,
 * so checks of data use pgtest_assert_rows() or pgtest_assert_value() instead. */
const char *pgtest_sqlstate(PGconn *conn, const char *sql);

/* The primary message of the last failed pgtest_sqlstate(), or "". */
const char *pgtest_last_message(void);

/*
 * Assertions for cmocka tests. Each one fails the running test with the SQL and the server's
 * message, reported at the caller's file and line (the macros pass them on), so a failure
 * points at the check rather than at this file.
 */

/* Runs SQL, which must succeed. Only for statements whose effect a later check proves (BEGIN,
 * ALTER TABLE, a setting); INSERT, UPDATE and DELETE go through pgtest_assert_rows(), whose
 * row count is their effect. */
#define pgtest_exec(conn, sql) pgtest_exec_at((conn), (sql), __FILE__, __LINE__)

/* Runs SQL and requires SQLSTATE STATE, the code of the constraint that must refuse it. */
#define pgtest_assert_sqlstate(conn, state, sql)                                                   \
    pgtest_assert_sqlstate_at((conn), (state), (sql), __FILE__, __LINE__)

/* Runs SQL, which must succeed with exactly N rows: the rows returned by a SELECT (or
 * RETURNING), the rows an INSERT, UPDATE or DELETE changed. A statement without a row count
 * (CREATE, BEGIN) fails the test. */
#define pgtest_assert_rows(conn, sql, n)                                                           \
    pgtest_assert_rows_at((conn), (sql), (long)(n), __FILE__, __LINE__)

/* Runs SQL, which must succeed with exactly one row of one column, and returns that value as
 * text, or NULL for SQL NULL. The text stays valid until the next pgtest_value() or
 * pgtest_assert_value(); pgtest owns it. */
#define pgtest_value(conn, sql) pgtest_value_at((conn), (sql), __FILE__, __LINE__)

/* pgtest_value() of SQL must be the text EXPECTED; a NULL EXPECTED requires SQL NULL. */
#define pgtest_assert_value(conn, sql, expected)                                                   \
    pgtest_assert_value_at((conn), (sql), (expected), __FILE__, __LINE__)

/* pgtest_value() of SQL as a number: the value must be a decimal integer. */
#define pgtest_long(conn, sql) pgtest_long_at((conn), (sql), __FILE__, __LINE__)

/* RC, a storage/db.h result, must be DB_OK; ERRMSG is what the failed call wrote. */
#define pgtest_assert_db_ok(rc, errmsg) pgtest_assert_db_ok_at((rc), (errmsg), __FILE__, __LINE__)

/* HAYSTACK must contain NEEDLE. */
#define pgtest_assert_contains(haystack, needle)                                                   \
    pgtest_assert_contains_at((haystack), (needle), __FILE__, __LINE__)

/* The functions behind the macros above; call the macros. */
void pgtest_exec_at(PGconn *conn, const char *sql, const char *file, int line);
void pgtest_assert_sqlstate_at(PGconn *conn, const char *state, const char *sql, const char *file,
                               int line);
void pgtest_assert_rows_at(PGconn *conn, const char *sql, long n, const char *file, int line);
const char *pgtest_value_at(PGconn *conn, const char *sql, const char *file, int line);
void pgtest_assert_value_at(PGconn *conn, const char *sql, const char *expected, const char *file,
                            int line);
long pgtest_long_at(PGconn *conn, const char *sql, const char *file, int line);
void pgtest_assert_db_ok_at(int rc, const char *errmsg, const char *file, int line);
void pgtest_assert_contains_at(const char *haystack, const char *needle, const char *file,
                               int line);

#endif /* CONCLAVE_PGTEST_H */
