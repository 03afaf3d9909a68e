#include "storage/db_projects.h"

#include <stdio.h>
#include <string.h>

#include "storage/db.h"
#include "storage/db_auth.h"

#define PROJECT_COLS                                                                               \
    "'id', p.id, 'name', p.name, 'owner_user_id', p.owner_user_id, 'created_at', " DB_TS(          \
        "p.created_at")

#define KEY_JSON                                                                                   \
    "json_build_object('id', id, 'prefix', prefix, 'name', name, 'scope', scope, "                 \
    "'config_prefix', config_prefix, "                                                             \
    "'created_at', " DB_TS("created_at") ", 'revoked_at', CASE WHEN revoked_at IS NULL THEN NULL " \
                                         "ELSE " DB_TS("revok"                                     \
                                                       "ed_"                                       \
                                                       "at") " END)"

static int insert_key(PGconn *conn, const char *project, const struct db_projects_key *key,
                      const char *created_by, json_t **out, char *errmsg, size_t errlen)
{
    char hex[2 * 32 + 3];
    db_bytea_hex(key->hash, 32, hex);
    const char *p[] = {project,           key->prefix, hex,
                       key->name,         created_by,  key->scope ? key->scope : "read-write",
                       key->config_prefix};
    return db_query_json_row(conn, "creating api key",
                             "INSERT INTO api_keys (project_id, prefix, key_hash, name, "
                             "created_by, scope, config_prefix) VALUES ($1, $2, $3::bytea, $4, "
                             "$5::uuid, $6, $7) RETURNING " KEY_JSON,
                             7, p, out, errmsg, errlen);
}

int db_projects_create(PGconn *conn, const char *id, const char *name, const char *owner,
                       const struct db_projects_key *key, json_t **out, char *errmsg, size_t errlen)
{
    json_t *project = NULL, *api_key = NULL;
    PGresult *res = NULL;
    *out = NULL;
    int rc = db_begin(conn, errmsg, errlen);
    if (rc != DB_OK) {
        return rc;
    }
    const char *p[] = {id, name, owner};
    rc =
        db_query_json_row(conn, "creating project",
                          "INSERT INTO projects AS p (id, name, owner_user_id) "
                          "VALUES ($1, $2, $3::uuid) RETURNING json_build_object(" PROJECT_COLS ")",
                          3, p, &project, errmsg, errlen);
    if (rc != DB_OK) {
        goto err;
    }
    const char *rp[] = {owner, id};
    rc = db_query(conn, "making the creator admin",
                  "INSERT INTO roles (user_id, project_id, role_level, granted_by) "
                  "VALUES ($1::uuid, $2, 'admin', $1::uuid)",
                  2, rp, &res, errmsg, errlen);
    PQclear(res);
    if (rc != DB_OK) {
        goto err;
    }
    rc = insert_key(conn, id, key, owner, &api_key, errmsg, errlen);
    if (rc != DB_OK) {
        goto err;
    }
    rc = db_commit(conn, errmsg, errlen);
    if (rc != DB_OK) {
        goto err;
    }
    json_object_set_new(project, "role", json_string("admin"));
    json_object_set_new(project, "api_key", api_key);
    *out = project;
    return DB_OK;

err:
    db_rollback(conn);
    json_decref(project);
    json_decref(api_key);
    return rc;
}

int db_projects_list(PGconn *conn, const char *user, bool all, const char *after, int limit,
                     json_t **out, char *errmsg, size_t errlen)
{
    char lim[16];
    snprintf(lim, sizeof(lim), "%d", limit);
    const char *p[] = {user, all ? "t" : "f", after, lim};
    return db_query_json_rows(
        conn, "listing projects",
        "SELECT json_build_object(" PROJECT_COLS ", 'role', coalesce(r.role_level::text, "
        "'admin')) FROM projects p LEFT JOIN roles r ON r.project_id = p.id AND r.user_id = "
        "$1::uuid WHERE p.deleted_at IS NULL AND (r.user_id IS NOT NULL OR $2::boolean) "
        "AND ($3::text IS NULL OR p.id > $3) ORDER BY p.id LIMIT $4",
        4, p, out, errmsg, errlen);
}

int db_projects_get(PGconn *conn, const char *id, json_t **out, char *errmsg, size_t errlen)
{
    const char *p[] = {id};
    return db_query_json_row(conn, "reading project",
                             "SELECT json_build_object(" PROJECT_COLS
                             ") FROM projects p WHERE p.id = $1 AND p.deleted_at IS NULL",
                             1, p, out, errmsg, errlen);
}

/* Runs an UPDATE/DELETE that must touch one row; zero rows is DB_NOT_FOUND. */
static int exec_one(PGconn *conn, const char *what, const char *sql, int n, const char *const *p,
                    char *errmsg, size_t errlen)
{
    PGresult *res;
    int rc = db_query(conn, what, sql, n, p, &res, errmsg, errlen);
    if (rc != DB_OK) {
        return rc;
    }
    bool none = strcmp(PQcmdTuples(res), "0") == 0;
    PQclear(res);
    if (none) {
        snprintf(errmsg, errlen, "%s: not found", what);
        return DB_NOT_FOUND;
    }
    return DB_OK;
}

int db_projects_delete(PGconn *conn, const char *id, char *errmsg, size_t errlen)
{
    const char *p[] = {id};
    return exec_one(conn, "deleting project",
                    "UPDATE projects SET deleted_at = now(), updated_at = now() "
                    "WHERE id = $1 AND deleted_at IS NULL",
                    1, p, errmsg, errlen);
}

int db_projects_key_create(PGconn *conn, const char *project, const struct db_projects_key *key,
                           const char *created_by, json_t **out, char *errmsg, size_t errlen)
{
    return insert_key(conn, project, key, created_by, out, errmsg, errlen);
}

int db_projects_key_list(PGconn *conn, const char *project, const char *after, int limit,
                         json_t **out, char *errmsg, size_t errlen)
{
    char lim[16];
    snprintf(lim, sizeof(lim), "%d", limit);
    const char *p[] = {project, after, lim};
    return db_query_json_rows(conn, "listing api keys",
                              "SELECT " KEY_JSON " FROM api_keys WHERE project_id = $1 "
                              "AND ($2::uuid IS NULL OR id > $2::uuid) ORDER BY id LIMIT $3",
                              3, p, out, errmsg, errlen);
}

int db_projects_key_revoke(PGconn *conn, const char *project, const char *key_id, char *errmsg,
                           size_t errlen)
{
    const char *p[] = {project, key_id};
    return exec_one(conn, "revoking api key",
                    "UPDATE api_keys SET revoked_at = now() WHERE project_id = $1 "
                    "AND id = $2::uuid AND revoked_at IS NULL",
                    2, p, errmsg, errlen);
}

int db_projects_role_list(PGconn *conn, const char *project, const char *after, int limit,
                          json_t **out, char *errmsg, size_t errlen)
{
    char lim[16];
    snprintf(lim, sizeof(lim), "%d", limit);
    const char *p[] = {project, after, lim};
    return db_query_json_rows(
        conn, "listing roles",
        "SELECT json_build_object('user_id', r.user_id, 'email', u.email, 'role_level', "
        "r.role_level, 'created_at', " DB_TS(
            "r.created_at") ") FROM roles r JOIN users u ON "
                            "u.id = r.user_id WHERE r.project_id = $1 AND u.deleted_at IS NULL "
                            "AND ($2::uuid IS NULL OR r.user_id > $2::uuid) ORDER BY r.user_id "
                            "LIMIT $3",
        3, p, out, errmsg, errlen);
}

/* Locks PROJECT's row for the rest of the transaction. */
static int lock_project(PGconn *conn, const char *project, char *errmsg, size_t errlen)
{
    const char *p[] = {project};
    PGresult *res;
    int rc = db_query(conn, "locking project",
                      "SELECT 1 FROM projects WHERE id = $1 AND deleted_at IS NULL FOR UPDATE", 1,
                      p, &res, errmsg, errlen);
    if (rc == DB_OK && PQntuples(res) == 0) {
        snprintf(errmsg, errlen, "project %s not found", project);
        rc = DB_NOT_FOUND;
    }
    PQclear(res);
    return rc;
}

/* DB_REFUSED when PROJECT has no live admin left (inside the caller's transaction). */
static int check_admin_left(PGconn *conn, const char *project, char *errmsg, size_t errlen)
{
    const char *p[] = {project};
    PGresult *res;
    int rc = db_query(conn, "counting admins",
                      "SELECT count(*) FROM roles r JOIN users u ON u.id = r.user_id "
                      "WHERE r.project_id = $1 AND r.role_level = 'admin' "
                      "AND u.deleted_at IS NULL",
                      1, p, &res, errmsg, errlen);
    if (rc != DB_OK) {
        return rc;
    }
    bool none = strcmp(PQgetvalue(res, 0, 0), "0") == 0;
    PQclear(res);
    if (none) {
        snprintf(errmsg, errlen,
                 "project %s would have no admin left; grant admin to someone else first", project);
        return DB_REFUSED;
    }
    return DB_OK;
}

int db_projects_role_set(PGconn *conn, const char *project, const char *user, const char *email,
                         const char *role, const char *granted_by, json_t **out, char *errmsg,
                         size_t errlen)
{
    json_t *row = NULL;
    *out = NULL;
    int rc = db_begin(conn, errmsg, errlen);
    if (rc != DB_OK) {
        return rc;
    }
    if ((rc = lock_project(conn, project, errmsg, errlen)) != DB_OK) {
        goto err;
    }
    /* The email index is on lower(email) among live users, so at most one row matches. */
    const char *up[] = {user, email};
    json_t *found = NULL;
    rc = db_query_json_row(conn, "user",
                           "SELECT json_build_object('id', id) FROM users "
                           "WHERE ($1::uuid IS NOT NULL AND id = $1::uuid OR "
                           "$1::uuid IS NULL AND lower(email) = lower($2)) AND deleted_at IS NULL",
                           2, up, &found, errmsg, errlen);
    if (rc == DB_NOT_FOUND) {
        snprintf(errmsg, errlen, "user %s not found", user ? user : email);
    }
    if (rc != DB_OK) {
        goto err;
    }
    const char *p[] = {json_string_value(json_object_get(found, "id")), project, role, granted_by};
    rc = db_query_json_row(
        conn, "setting role",
        "INSERT INTO roles (user_id, project_id, role_level, granted_by) "
        "VALUES ($1::uuid, $2, $3::role_level, $4::uuid) ON CONFLICT (user_id, project_id) "
        "DO UPDATE SET role_level = EXCLUDED.role_level, granted_by = EXCLUDED.granted_by, "
        "updated_at = now() RETURNING json_build_object('user_id', user_id, 'project_id', "
        "project_id, 'role_level', role_level)",
        4, p, &row, errmsg, errlen);
    if (rc != DB_OK) {
        goto err;
    }
    if ((rc = check_admin_left(conn, project, errmsg, errlen)) != DB_OK ||
        (rc = db_commit(conn, errmsg, errlen)) != DB_OK) {
        goto err;
    }
    json_decref(found);
    *out = row;
    return DB_OK;

err:
    db_rollback(conn);
    json_decref(found);
    json_decref(row);
    return rc;
}

int db_projects_role_delete(PGconn *conn, const char *project, const char *user, char *errmsg,
                            size_t errlen)
{
    int rc = db_begin(conn, errmsg, errlen);
    if (rc != DB_OK) {
        return rc;
    }
    const char *p[] = {user, project};
    if ((rc = lock_project(conn, project, errmsg, errlen)) != DB_OK ||
        (rc = exec_one(conn, "removing role",
                       "DELETE FROM roles WHERE user_id = $1::uuid AND project_id = $2", 2, p,
                       errmsg, errlen)) != DB_OK ||
        (rc = check_admin_left(conn, project, errmsg, errlen)) != DB_OK ||
        (rc = db_commit(conn, errmsg, errlen)) != DB_OK) {
        db_rollback(conn);
        return rc;
    }
    return DB_OK;
}
