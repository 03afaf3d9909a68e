#include "storage/db_users.h"

#include <stdio.h>

#include "storage/db.h"
#include "storage/db_auth.h"

#define USER_JSON                                                                                  \
    "json_build_object('id', id, 'email', email, 'is_admin', is_admin, 'created_at', " DB_TS(      \
        "created_at") ")"

int db_users_create(PGconn *conn, const char *email, const char *password_hash, bool is_admin,
                    json_t **out, char *errmsg, size_t errlen)
{
    const char *p[] = {email, password_hash, is_admin ? "t" : "f"};
    return db_query_json_row(conn, "creating user",
                             "INSERT INTO users (email, password_hash, is_admin) "
                             "VALUES ($1, $2, $3::boolean) RETURNING " USER_JSON,
                             3, p, out, errmsg, errlen);
}

int db_users_list(PGconn *conn, const char *after, int limit, json_t **out, char *errmsg,
                  size_t errlen)
{
    char lim[16];
    snprintf(lim, sizeof(lim), "%d", limit);
    const char *p[] = {after, lim};
    return db_query_json_rows(conn, "listing users",
                              "SELECT " USER_JSON " FROM users WHERE deleted_at IS NULL "
                              "AND ($1::uuid IS NULL OR id > $1::uuid) ORDER BY id LIMIT $2",
                              2, p, out, errmsg, errlen);
}

int db_users_get(PGconn *conn, const char *id, json_t **out, char *errmsg, size_t errlen)
{
    const char *p[] = {id};
    return db_query_json_row(conn, "reading user",
                             "SELECT " USER_JSON
                             " FROM users WHERE id = $1::uuid AND deleted_at IS NULL",
                             1, p, out, errmsg, errlen);
}

int db_users_delete(PGconn *conn, const char *id, char *errmsg, size_t errlen)
{
    const char *p[] = {id};
    PGresult *res = NULL;
    int rc = db_begin(conn, errmsg, errlen);
    if (rc != DB_OK) {
        return rc;
    }
    rc = db_query(conn, "deleting user",
                  "UPDATE users SET deleted_at = now(), updated_at = now() "
                  "WHERE id = $1::uuid AND deleted_at IS NULL",
                  1, p, &res, errmsg, errlen);
    if (rc != DB_OK) {
        goto err;
    }
    if (PQcmdTuples(res)[0] == '0') {
        PQclear(res);
        snprintf(errmsg, errlen, "user %s not found", id);
        rc = DB_NOT_FOUND;
        goto err;
    }
    PQclear(res);
    rc = db_query(conn, "revoking the user's sessions",
                  "UPDATE sessions SET revoked_at = now() "
                  "WHERE user_id = $1::uuid AND revoked_at IS NULL",
                  1, p, &res, errmsg, errlen);
    PQclear(res);
    if (rc != DB_OK) {
        goto err;
    }
    return db_commit(conn, errmsg, errlen);

err:
    db_rollback(conn);
    return rc;
}
