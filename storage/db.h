/*
 * db: running one query and classifying its outcome.
 *
 * Every query module of storage/ goes through db_query() so that PostgreSQL's errors map to
 * the same few outcomes everywhere: a unique violation is a conflict, a foreign-key violation
 * a reference still in use, a lost connection "unavailable". Queries return their rows as
 * JSON built by PostgreSQL itself (to_jsonb / json_build_object), so column types and
 * timestamps are formatted in one place: the SQL.
 *
 * All functions here block: call them only on a pool worker thread.
 */
#ifndef CONCLAVE_DB_H
#define CONCLAVE_DB_H

#include <stddef.h>

#include <jansson.h>
#include <libpq-fe.h>

enum db_status {
    DB_OK = 0,
    DB_NOT_FOUND = 1,    /* no row where one was required */
    DB_CONFLICT = 2,     /* unique violation (23505) */
    DB_IN_USE = 3,       /* foreign-key violation (23503): still referenced */
    DB_INVALID = 4,      /* check or enum violation (23514, 22P02): a value the schema refuses */
    DB_REFUSED = 5,      /* a rule of the caller's own (e.g. last admin); message says which */
    DB_UNAVAILABLE = -1, /* connection lost or server shutting down */
    DB_ERROR = -2,       /* anything else: a bug or an unexpected server state */
};

/* Runs SQL with NPARAMS text parameters (NULL entries are SQL NULL). On DB_OK *RES holds the
 * result (the caller PQclear()s it); otherwise *RES is NULL and ERRMSG holds PostgreSQL's
 * message prefixed with WHAT (a short name of the query, e.g. "creating user"). */
int db_query(PGconn *conn, const char *what, const char *sql, int nparams,
             const char *const *params, PGresult **res, char *errmsg, size_t errlen);

/* As db_query(), through the prepared statement NAME of this connection, prepared from SQL on
 * first use (and again on a new connection): PostgreSQL then plans a statement once per
 * connection (or a few times, until it settles on a generic plan) instead of at every call.
 * Only outside a transaction: a missing prepared statement is an error, which would abort an
 * open transaction. NAME must be unique per SQL text across storage/. */
int db_query_prepared(PGconn *conn, const char *name, const char *what, const char *sql,
                      int nparams, const char *const *params, PGresult **res, char *errmsg,
                      size_t errlen);

/* As db_query(), for a query whose every row is one json column: *OUT receives a new JSON
 * array of the parsed rows (caller json_decref()s it). */
int db_query_json_rows(PGconn *conn, const char *what, const char *sql, int nparams,
                       const char *const *params, json_t **out, char *errmsg, size_t errlen);

/* As db_query_json_rows(), for a query that must return exactly one row: *OUT is that
 * object; zero rows give DB_NOT_FOUND with "WHAT: not found". */
int db_query_json_row(PGconn *conn, const char *what, const char *sql, int nparams,
                      const char *const *params, json_t **out, char *errmsg, size_t errlen);

/* Runs BEGIN, COMMIT or ROLLBACK. ROLLBACK never fails from the caller's point of view. */
int db_begin(PGconn *conn, char *errmsg, size_t errlen);
int db_commit(PGconn *conn, char *errmsg, size_t errlen);
void db_rollback(PGconn *conn);

/* Writes LEN bytes as a bytea hex literal ("\\x00ff...") into OUT (2 * LEN + 3 bytes). */
void db_bytea_hex(const unsigned char *bytes, size_t len, char *out);

#endif /* CONCLAVE_DB_H */
