#include "storage/db.h"

#include <stdio.h>
#include <string.h>

/* Classifies a failed result by SQLSTATE and connection state. */
static int classify(PGconn *conn, const PGresult *res)
{
    if (PQstatus(conn) == CONNECTION_BAD) {
        return DB_UNAVAILABLE;
    }
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    if (state == NULL) {
        return DB_UNAVAILABLE; /* no result at all: the connection failed mid-query */
    }
    if (strcmp(state, "23505") == 0) {
        return DB_CONFLICT;
    }
    if (strcmp(state, "23503") == 0) {
        return DB_IN_USE;
    }
    if (strcmp(state, "23514") == 0 || strcmp(state, "22P02") == 0 || strcmp(state, "23502") == 0) {
        return DB_INVALID;
    }
    /* Class 08 (connection exception) and 57P (operator intervention: shutdown, terminated). */
    if (strncmp(state, "08", 2) == 0 || strncmp(state, "57P", 3) == 0) {
        return DB_UNAVAILABLE;
    }
    return DB_ERROR;
}

/* Takes R (a result or NULL) as the outcome of a query: DB_OK with *RES, or the classified
 * error with ERRMSG. */
static int settle_result(PGconn *conn, PGresult *r, const char *what, PGresult **res, char *errmsg,
                         size_t errlen);

int db_query_prepared(PGconn *conn, const char *name, const char *what, const char *sql,
                      int nparams, const char *const *params, PGresult **res, char *errmsg,
                      size_t errlen)
{
    *res = NULL;
    PGresult *r = PQexecPrepared(conn, name, nparams, params, NULL, NULL, 0);
    const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    if (PQresultStatus(r) == PGRES_FATAL_ERROR && state != NULL && strcmp(state, "26000") == 0 &&
        PQtransactionStatus(conn) == PQTRANS_IDLE) {
        /* Not prepared on this connection yet (or it is a new connection). */
        PQclear(r);
        PGresult *p = PQprepare(conn, name, sql, nparams, NULL);
        if (PQresultStatus(p) != PGRES_COMMAND_OK) {
            return settle_result(conn, p, what, res, errmsg, errlen);
        }
        PQclear(p);
        r = PQexecPrepared(conn, name, nparams, params, NULL, NULL, 0);
    }
    return settle_result(conn, r, what, res, errmsg, errlen);
}

int db_query(PGconn *conn, const char *what, const char *sql, int nparams,
             const char *const *params, PGresult **res, char *errmsg, size_t errlen)
{
    *res = NULL;
    PGresult *r = PQexecParams(conn, sql, nparams, NULL, params, NULL, NULL, 0);
    return settle_result(conn, r, what, res, errmsg, errlen);
}

static int settle_result(PGconn *conn, PGresult *r, const char *what, PGresult **res, char *errmsg,
                         size_t errlen)
{
    ExecStatusType st = PQresultStatus(r);
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
        *res = r;
        return DB_OK;
    }
    int code = classify(conn, r);
    const char *msg = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    if (msg == NULL) {
        msg = PQerrorMessage(conn);
    }
    size_t n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == ' ')) {
        n--;
    }
    snprintf(errmsg, errlen, "%s: %.*s", what, (int)n, msg);
    PQclear(r);
    return code;
}

int db_query_json_rows(PGconn *conn, const char *what, const char *sql, int nparams,
                       const char *const *params, json_t **out, char *errmsg, size_t errlen)
{
    PGresult *res;
    *out = NULL;
    int rc = db_query(conn, what, sql, nparams, params, &res, errmsg, errlen);
    if (rc != DB_OK) {
        return rc;
    }
    json_t *rows = json_array();
    if (rows == NULL) {
        PQclear(res);
        snprintf(errmsg, errlen, "%s: out of memory", what);
        return DB_ERROR;
    }
    for (int i = 0; i < PQntuples(res); i++) {
        json_error_t jerr;
        json_t *row = json_loads(PQgetvalue(res, i, 0), JSON_DECODE_ANY, &jerr);
        if (row == NULL) {
            snprintf(errmsg, errlen, "%s: row %d is not json: %s", what, i, jerr.text);
            json_decref(rows);
            PQclear(res);
            return DB_ERROR;
        }
        json_array_append_new(rows, row);
    }
    PQclear(res);
    *out = rows;
    return DB_OK;
}

int db_query_json_row(PGconn *conn, const char *what, const char *sql, int nparams,
                      const char *const *params, json_t **out, char *errmsg, size_t errlen)
{
    json_t *rows;
    *out = NULL;
    int rc = db_query_json_rows(conn, what, sql, nparams, params, &rows, errmsg, errlen);
    if (rc != DB_OK) {
        return rc;
    }
    if (json_array_size(rows) == 0) {
        json_decref(rows);
        snprintf(errmsg, errlen, "%s: not found", what);
        return DB_NOT_FOUND;
    }
    *out = json_incref(json_array_get(rows, 0));
    json_decref(rows);
    return DB_OK;
}

static int simple(PGconn *conn, const char *sql, char *errmsg, size_t errlen)
{
    PGresult *res;
    int rc = db_query(conn, sql, sql, 0, NULL, &res, errmsg, errlen);
    PQclear(res);
    return rc;
}

int db_begin(PGconn *conn, char *errmsg, size_t errlen)
{
    return simple(conn, "BEGIN", errmsg, errlen);
}

int db_commit(PGconn *conn, char *errmsg, size_t errlen)
{
    return simple(conn, "COMMIT", errmsg, errlen);
}

void db_rollback(PGconn *conn)
{
    PQclear(PQexec(conn, "ROLLBACK"));
}

void db_bytea_hex(const unsigned char *bytes, size_t len, char *out)
{
    static const char digits[] = "0123456789abcdef";
    out[0] = '\\';
    out[1] = 'x';
    for (size_t i = 0; i < len; i++) {
        out[2 + 2 * i] = digits[bytes[i] >> 4];
        out[3 + 2 * i] = digits[bytes[i] & 15];
    }
    out[2 + 2 * len] = '\0';
}
