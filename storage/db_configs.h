/*
 * dbconfigs: reading configs and their history from PostgreSQL: a key's revisions, one past
 * version, a project's changes for watch, and the live configs of a project. Blocking; pool
 * worker threads only. Nothing here writes: `configs` and `config_revisions` are written only
 * by the materializer (storage/db_revisions.h).
 *
 * Every function returns an enum db_status; on DB_OK *OUT is a new JSON value the caller owns
 * and releases with json_decref(); on any other status *OUT is NULL and ERRMSG says what
 * failed. Rows are built by PostgreSQL (json_build_object), so a revision's content, stored as
 * json, reaches the caller as the parsed value of its exact stored text.
 *
 * A revision object has the members:
 *
 *   "revision", "version"            numbers
 *   "op"                             "put", "delete" or "rollback"
 *   "content"                        the JSON value; null for a delete
 *   "source_version"                 number for a rollback, otherwise null
 *   "schema_id"                      uuid string or null
 *   "schema_hash"                    64 lowercase hex digits or null
 *   "actor"                          string
 *   "request_id"                     string or null
 *   "created_at"                     RFC 3339 UTC with microseconds (the leader's timestamp)
 *   "raft_index", "raft_term"        numbers
 *   "prev_hash", "hash"              64 lowercase hex digits each
 *
 * These functions do not check that the project exists or is live: the caller has resolved
 * the project and the caller's role before (db_auth_role_lookup()).
 */
#ifndef CONCLAVE_DB_CONFIGS_H
#define CONCLAVE_DB_CONFIGS_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <libpq-fe.h>

/* The revisions of PROJECT/KEY with version > AFTER_VERSION, by version ascending, at most
 * LIMIT (>= 0; a negative LIMIT is DB_INVALID): *OUT is an array of revision objects, empty
 * when the key has no such revision (the caller decides whether that is a 404). */
int db_configs_revisions(PGconn *conn, const char *project, const char *key, uint64_t after_version,
                         int limit, json_t **out, char *errmsg, size_t errlen);

/* The revision of PROJECT/KEY with VERSION: *OUT is one revision object. DB_NOT_FOUND when
 * there is none (the key never reached that version). A deleted version is found: it is the
 * delete revision, with content null. */
int db_configs_at_version(PGconn *conn, const char *project, const char *key, uint64_t version,
                          json_t **out, char *errmsg, size_t errlen);

/* The first revision of PROJECT written for REQUEST_ID: *OUT is one revision object with one
 * more member, "key". DB_NOT_FOUND when no revision carries that request id (the write with it
 * never committed a revision: it never ran, or its outcome was a conflict or not found). The
 * leader asks this when the state machine no longer remembers the id, so that a late retry
 * gets its first outcome instead of running again. Served by config_revisions_project_request_idx
 * (migration 011). */
int db_configs_request(PGconn *conn, const char *project, const char *request_id, json_t **out,
                       char *errmsg, size_t errlen);

/* PROJECT's revisions with revision > AFTER_REVISION, in revision order, at most LIMIT
 * (>= 0): *OUT is an array of revision objects with one more member, "key". Revision numbers
 * are cluster-wide, so consecutive entries of one project may skip numbers. For watch: the
 * caller passes the last revision it returned as the next AFTER_REVISION. */
int db_configs_changes(PGconn *conn, const char *project, uint64_t after_revision, int limit,
                       json_t **out, char *errmsg, size_t errlen);

/* PROJECT's revision count and last revision: *OUT is {"revisions": N, "head_revision": R or
 * null when the project has none}; DB_NOT_FOUND when no project (live or soft-deleted) has that
 * id. Audit tools use it to size a progress bar. */
int db_configs_head(PGconn *conn, const char *project, json_t **out, char *errmsg, size_t errlen);

/* The id of every project, live or soft-deleted (their histories stay), in byte order: *OUT is
 * an array of strings. For auditors reading PostgreSQL directly. */
int db_configs_audit_projects(PGconn *conn, json_t **out, char *errmsg, size_t errlen);

/* PROJECT's live (not deleted) configs whose key starts with PREFIX (NULL or "" for all;
 * matched literally, so "%" and "_" are ordinary characters) and sorts after AFTER (NULL or ""
 * for the first page), in bytewise key order (COLLATE "C"), at most LIMIT (>= 0). *OUT is an
 * array of {"key", "version", "content", "schema_id" (or null), "last_revision",
 * "updated_by", "updated_at"}. The next page starts after the last key returned. */
int db_configs_list(PGconn *conn, const char *project, const char *prefix, const char *after,
                    int limit, json_t **out, char *errmsg, size_t errlen);

#endif /* CONCLAVE_DB_CONFIGS_H */
