#include "storage/db_auth.h"

#include <stdio.h>

#include "storage/db.h"

int db_auth_user_for_login(PGconn *conn, const char *email, json_t **out, char *errmsg,
                           size_t errlen)
{
    const char *p[] = {email};
    return db_query_json_row(conn, "looking up user",
                             "SELECT json_build_object('id', id, 'password_hash', password_hash, "
                             "'is_admin', is_admin) FROM users "
                             "WHERE lower(email) = lower($1) AND deleted_at IS NULL",
                             1, p, out, errmsg, errlen);
}

int db_auth_session_create(PGconn *conn, const unsigned char hash[32], const char *user_id,
                           unsigned ttl_s, json_t **out, char *errmsg, size_t errlen)
{
    char hex[2 * 32 + 3], ttl[16];
    db_bytea_hex(hash, 32, hex);
    snprintf(ttl, sizeof(ttl), "%u", ttl_s);
    const char *p[] = {hex, user_id, ttl};
    return db_query_json_row(conn, "creating session",
                             "INSERT INTO sessions (token_hash, user_id, expires_at) "
                             "VALUES ($1::bytea, $2::uuid, now() + make_interval(secs => $3)) "
                             "RETURNING json_build_object('expires_at', " DB_TS("expires_at") ")",
                             3, p, out, errmsg, errlen);
}

int db_auth_session_lookup(PGconn *conn, const unsigned char hash[32], json_t **out, char *errmsg,
                           size_t errlen)
{
    char hex[2 * 32 + 3];
    db_bytea_hex(hash, 32, hex);
    const char *p[] = {hex};
    return db_query_json_row(
        conn, "looking up session",
        "SELECT json_build_object('user_id', u.id, 'email', u.email, 'is_admin', u.is_admin, "
        "'expires_in_s', extract(epoch FROM s.expires_at - now())::bigint) "
        "FROM sessions s JOIN users u ON u.id = s.user_id "
        "WHERE s.token_hash = $1::bytea AND s.revoked_at IS NULL AND s.expires_at > now() "
        "AND u.deleted_at IS NULL",
        1, p, out, errmsg, errlen);
}

int db_auth_session_revoke(PGconn *conn, const unsigned char hash[32], char *errmsg, size_t errlen)
{
    char hex[2 * 32 + 3];
    db_bytea_hex(hash, 32, hex);
    const char *p[] = {hex};
    PGresult *res;
    int rc = db_query(conn, "revoking session",
                      "UPDATE sessions SET revoked_at = now() "
                      "WHERE token_hash = $1::bytea AND revoked_at IS NULL",
                      1, p, &res, errmsg, errlen);
    PQclear(res);
    return rc;
}

int db_auth_apikey_lookup(PGconn *conn, const char *prefix, json_t **out, char *errmsg,
                          size_t errlen)
{
    const char *p[] = {prefix};
    return db_query_json_row(
        conn, "looking up api key",
        "SELECT json_build_object('id', k.id, 'project_id', k.project_id, "
        "'key_hash', encode(k.key_hash, 'hex'), 'scope', k.scope, "
        "'config_prefix', k.config_prefix) "
        "FROM api_keys k JOIN projects p ON p.id = k.project_id "
        "WHERE k.prefix = $1 AND k.revoked_at IS NULL AND p.deleted_at IS NULL",
        1, p, out, errmsg, errlen);
}

int db_auth_role_lookup(PGconn *conn, const char *user_id, const char *project_id, json_t **out,
                        char *errmsg, size_t errlen)
{
    const char *p[] = {user_id, project_id};
    return db_query_json_row(conn, "looking up role",
                             "SELECT json_build_object('role', r.role_level) FROM projects p "
                             "LEFT JOIN roles r ON r.project_id = p.id AND r.user_id = $1::uuid "
                             "WHERE p.id = $2 AND p.deleted_at IS NULL",
                             2, p, out, errmsg, errlen);
}
