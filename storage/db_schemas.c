#include "storage/db_schemas.h"

#include <stdio.h>
#include <string.h>

#include "storage/db.h"
#include "storage/db_auth.h"

#define SCHEMA_COLS                                                                                \
    "'id', id, 'name', name, 'schema_hash', encode(schema_hash, 'hex'), "                          \
    "'format_assertion', format_assertion, "                                                       \
    "'created_by_user_id', created_by_user_id, 'created_at', " DB_TS(                              \
        "created_at") ", 'updated_at', " DB_TS("updated_at")

int db_schemas_create(PGconn *conn, const char *name, const char *content,
                      const unsigned char hash[32], bool format_assertion, const char *created_by,
                      json_t **out, char *errmsg, size_t errlen)
{
    char hex[2 * 32 + 3];
    db_bytea_hex(hash, 32, hex);
    const char *p[] = {name, content, hex, created_by, format_assertion ? "true" : "false"};
    return db_query_json_row(conn, "creating schema",
                             "INSERT INTO config_schemas (name, schema_content, schema_hash, "
                             "created_by_user_id, format_assertion) VALUES ($1, $2::jsonb, "
                             "$3::bytea, $4::uuid, $5::boolean) "
                             "RETURNING json_build_object(" SCHEMA_COLS
                             ", 'schema_content', schema_content)",
                             5, p, out, errmsg, errlen);
}

int db_schemas_by_id_uri(PGconn *conn, const char *uri, json_t **out, char *errmsg, size_t errlen)
{
    const char *p[] = {uri};
    json_t *rows = NULL;
    int rc = db_query_json_rows(conn, "resolving a schema by its $id",
                                "SELECT schema_content FROM config_schemas "
                                "WHERE deleted_at IS NULL AND schema_content->>'$id' = $1 "
                                "ORDER BY id LIMIT 2",
                                1, p, &rows, errmsg, errlen);
    if (rc != DB_OK) {
        return rc;
    }
    size_t n = json_array_size(rows);
    if (n != 1) {
        json_decref(rows);
        snprintf(errmsg, errlen,
                 n == 0 ? "no schema of the catalog has the $id %s"
                        : "several schemas of the catalog have the $id %s",
                 uri);
        return n == 0 ? DB_NOT_FOUND : DB_CONFLICT;
    }
    *out = json_incref(json_array_get(rows, 0));
    json_decref(rows);
    return DB_OK;
}

int db_schemas_list(PGconn *conn, const char *after, int limit, json_t **out, char *errmsg,
                    size_t errlen)
{
    char lim[16];
    snprintf(lim, sizeof(lim), "%d", limit);
    const char *p[] = {after, lim};
    return db_query_json_rows(conn, "listing schemas",
                              "SELECT json_build_object(" SCHEMA_COLS ") FROM config_schemas "
                              "WHERE deleted_at IS NULL AND ($1::uuid IS NULL OR id > $1::uuid) "
                              "ORDER BY id LIMIT $2",
                              2, p, out, errmsg, errlen);
}

int db_schemas_get(PGconn *conn, const char *id, json_t **out, char *errmsg, size_t errlen)
{
    const char *p[] = {id};
    return db_query_json_row(conn, "reading schema",
                             "SELECT json_build_object(" SCHEMA_COLS
                             ", 'schema_content', schema_content) FROM config_schemas "
                             "WHERE id = $1::uuid AND deleted_at IS NULL",
                             1, p, out, errmsg, errlen);
}

int db_schemas_update(PGconn *conn, const char *id, const char *name, const char *content,
                      const unsigned char *hash, int format_assertion, json_t **out, char *errmsg,
                      size_t errlen)
{
    char hex[2 * 32 + 3];
    if (hash != NULL) {
        db_bytea_hex(hash, 32, hex);
    }
    const char *fa = format_assertion < 0 ? NULL : format_assertion ? "true" : "false";
    const char *p[] = {id, name, content, hash != NULL ? hex : NULL, fa};
    return db_query_json_row(conn, "updating schema",
                             "UPDATE config_schemas SET name = coalesce($2, name), "
                             "schema_content = coalesce($3::jsonb, schema_content), "
                             "schema_hash = coalesce($4::bytea, schema_hash), "
                             "format_assertion = coalesce($5::boolean, format_assertion), "
                             "updated_at = now() "
                             "WHERE id = $1::uuid AND deleted_at IS NULL "
                             "RETURNING json_build_object(" SCHEMA_COLS
                             ", 'schema_content', schema_content)",
                             5, p, out, errmsg, errlen);
}

/*
 * A soft delete (migration 013): the row stays, so a revision still queued in raft that was
 * validated against the schema can be materialized with its foreign key intact. The "in use"
 * check reads configs in the same statement; a bound revision materialized just after it
 * binds the config to the deleted schema, which is harmless: the config keeps the exact schema
 * hash it was validated against, and its next write must name a live schema or null.
 */
int db_schemas_delete(PGconn *conn, const char *id, char *errmsg, size_t errlen)
{
    const char *p[] = {id};
    PGresult *res;
    int rc = db_query(conn, "deleting schema",
                      "WITH s AS (SELECT id FROM config_schemas WHERE id = $1::uuid "
                      "AND deleted_at IS NULL FOR UPDATE), "
                      "bound AS (SELECT EXISTS (SELECT 1 FROM configs c JOIN s "
                      "ON c.schema_id = s.id) AS yes), "
                      "d AS (UPDATE config_schemas SET deleted_at = now(), updated_at = now() "
                      "WHERE id IN (SELECT id FROM s) AND NOT (SELECT yes FROM bound) "
                      "RETURNING 1) "
                      "SELECT (SELECT count(*) FROM s), (SELECT yes FROM bound), "
                      "(SELECT count(*) FROM d)",
                      1, p, &res, errmsg, errlen);
    if (rc != DB_OK) {
        return rc;
    }
    bool found = strcmp(PQgetvalue(res, 0, 0), "0") != 0;
    bool bound = strcmp(PQgetvalue(res, 0, 1), "t") == 0;
    PQclear(res);
    if (!found) {
        snprintf(errmsg, errlen, "schema %s not found", id);
        return DB_NOT_FOUND;
    }
    if (bound) {
        snprintf(errmsg, errlen, "schema %s is still bound to configs; rebind or delete them first",
                 id);
        return DB_IN_USE;
    }
    return DB_OK;
}
