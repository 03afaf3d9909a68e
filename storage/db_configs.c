#include "storage/db_configs.h"

#include <inttypes.h>
#include <stdio.h>

#include "storage/db.h"
#include "storage/db_auth.h"

#define TS_CREATED DB_TS("created_at")
#define TS_UPDATED DB_TS("updated_at")

/* The members of a revision object (see db_configs.h), from a config_revisions row. content is
 * json, so json_build_object embeds its stored text as it is. */
#define REVISION_COLS                                                                              \
    "'revision', revision, 'version', version, 'op', op, 'content', content, "                     \
    "'source_version', source_version, 'schema_id', schema_id, "                                   \
    "'schema_hash', encode(schema_hash, 'hex'), 'actor', actor, 'request_id', request_id, "        \
    "'created_at', " TS_CREATED ", 'raft_index', raft_index, 'raft_term', raft_term, "             \
    "'prev_hash', encode(prev_hash, 'hex'), 'hash', encode(hash, 'hex')"

/* Versions and revisions are bigints: anything above INT64_MAX is "after every row", and
 * clamping keeps the parameter a valid bigint instead of an out-of-range error. */
static void bigint_param(uint64_t v, char out[24])
{
    snprintf(out, 24, "%" PRIu64, v > INT64_MAX ? (uint64_t)INT64_MAX : v);
}

static int limit_param(int limit, char out[16], const char *what, char *errmsg, size_t errlen)
{
    if (limit < 0) {
        snprintf(errmsg, errlen, "%s: limit %d is negative", what, limit);
        return DB_INVALID;
    }
    snprintf(out, 16, "%d", limit);
    return DB_OK;
}

int db_configs_revisions(PGconn *conn, const char *project, const char *key, uint64_t after_version,
                         int limit, json_t **out, char *errmsg, size_t errlen)
{
    static const char what[] = "listing config revisions";
    char after[24], lim[16];
    *out = NULL;
    int rc = limit_param(limit, lim, what, errmsg, errlen);
    if (rc != DB_OK) {
        return rc;
    }
    bigint_param(after_version, after);
    const char *p[] = {project, key, after, lim};
    return db_query_json_rows(conn, what,
                              "SELECT json_build_object(" REVISION_COLS ") FROM config_revisions"
                              " WHERE project_id = $1 AND key = $2 AND version > $3::bigint"
                              " ORDER BY version LIMIT $4::int",
                              4, p, out, errmsg, errlen);
}

int db_configs_at_version(PGconn *conn, const char *project, const char *key, uint64_t version,
                          json_t **out, char *errmsg, size_t errlen)
{
    char ver[24];
    *out = NULL;
    if (version == 0 || version > INT64_MAX) {
        snprintf(errmsg, errlen, "config %s/%s has no version %" PRIu64, project, key, version);
        return DB_NOT_FOUND;
    }
    bigint_param(version, ver);
    const char *p[] = {project, key, ver};
    int rc = db_query_json_row(conn, "reading config version",
                               "SELECT json_build_object(" REVISION_COLS ") FROM config_revisions"
                               " WHERE project_id = $1 AND key = $2 AND version = $3::bigint",
                               3, p, out, errmsg, errlen);
    if (rc == DB_NOT_FOUND) {
        snprintf(errmsg, errlen, "config %s/%s has no version %" PRIu64, project, key, version);
    }
    return rc;
}

int db_configs_request(PGconn *conn, const char *project, const char *request_id, json_t **out,
                       char *errmsg, size_t errlen)
{
    const char *p[] = {project, request_id};
    /* ORDER BY revision: a request id written twice before migration 011's lookup existed
     * answers with its first outcome. */
    return db_query_json_row(conn, "looking up a request id",
                             "SELECT json_build_object('key', key, " REVISION_COLS ")"
                             " FROM config_revisions WHERE project_id = $1 AND request_id = $2"
                             " ORDER BY revision LIMIT 1",
                             2, p, out, errmsg, errlen);
}

int db_configs_changes(PGconn *conn, const char *project, uint64_t after_revision, int limit,
                       json_t **out, char *errmsg, size_t errlen)
{
    static const char what[] = "listing project changes";
    char after[24], lim[16];
    *out = NULL;
    int rc = limit_param(limit, lim, what, errmsg, errlen);
    if (rc != DB_OK) {
        return rc;
    }
    bigint_param(after_revision, after);
    const char *p[] = {project, after, lim};
    /* config_revisions_project_revision_idx serves this range scan. */
    return db_query_json_rows(conn, what,
                              "SELECT json_build_object('key', key, " REVISION_COLS ")"
                              " FROM config_revisions WHERE project_id = $1 AND revision > "
                              "$2::bigint ORDER BY revision LIMIT $3::int",
                              3, p, out, errmsg, errlen);
}

int db_configs_head(PGconn *conn, const char *project, json_t **out, char *errmsg, size_t errlen)
{
    const char *p[] = {project};
    return db_query_json_row(conn, "reading the project's revision head",
                             "SELECT json_build_object('revisions', (SELECT count(*) FROM"
                             " config_revisions WHERE project_id = $1), 'head_revision', (SELECT"
                             " max(revision) FROM config_revisions WHERE project_id = $1))"
                             " FROM projects WHERE id = $1",
                             1, p, out, errmsg, errlen);
}

int db_configs_audit_projects(PGconn *conn, json_t **out, char *errmsg, size_t errlen)
{
    return db_query_json_rows(conn, "listing projects to audit",
                              "SELECT to_json(id) FROM projects ORDER BY id COLLATE \"C\"", 0, NULL,
                              out, errmsg, errlen);
}

int db_configs_list(PGconn *conn, const char *project, const char *prefix, const char *after,
                    int limit, json_t **out, char *errmsg, size_t errlen)
{
    static const char what[] = "listing configs";
    char lim[16];
    *out = NULL;
    int rc = limit_param(limit, lim, what, errmsg, errlen);
    if (rc != DB_OK) {
        return rc;
    }
    const char *p[] = {project, prefix, after, lim};
    /* The prefix is matched with LIKE after escaping LIKE's own metacharacters (the escape
     * character first), so a prefix holding "%" or "_" matches only itself. Key order and
     * the "after" cursor both use COLLATE "C" so pages follow bytewise order whatever the
     * database's collation, and the cursor never skips or repeats a key. */
    return db_query_json_rows(
        conn, what,
        "SELECT json_build_object('key', key, 'version', version, 'content', content,"
        " 'schema_id', schema_id, 'last_revision', last_revision, 'updated_by', updated_by,"
        " 'updated_at', " TS_UPDATED ") FROM configs"
        " WHERE project_id = $1 AND NOT deleted"
        " AND (coalesce($2, '') = '' OR key LIKE"
        " replace(replace(replace($2, '\\', '\\\\'), '%', '\\%'), '_', '\\_') || '%' ESCAPE '\\')"
        " AND (coalesce($3, '') = '' OR key COLLATE \"C\" > $3 COLLATE \"C\")"
        " ORDER BY key COLLATE \"C\" LIMIT $4::int",
        4, p, out, errmsg, errlen);
}
