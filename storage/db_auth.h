/*
 * dbauth: the queries behind authentication and authorisation: users' password hashes,
 * sessions, API keys and roles. Blocking; pool worker threads only.
 *
 * Secrets never reach this module in clear: callers pass the HMAC-SHA256 of a token or key.
 */
#ifndef CONCLAVE_DB_AUTH_H
#define CONCLAVE_DB_AUTH_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>
#include <libpq-fe.h>

/* Formats a timestamptz column as RFC 3339 UTC with microseconds, e.g. in a SELECT list. */
#define DB_TS(col) "to_char((" col ") AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"

/* The live user with EMAIL (case-insensitive): *OUT = {"id", "password_hash", "is_admin"}.
 * DB_NOT_FOUND when there is none. */
int db_auth_user_for_login(PGconn *conn, const char *email, json_t **out, char *errmsg,
                           size_t errlen);

/* Stores a session for USER_ID whose token hashes to HASH, valid TTL_S seconds. *OUT =
 * {"expires_at"}. */
int db_auth_session_create(PGconn *conn, const unsigned char hash[32], const char *user_id,
                           unsigned ttl_s, json_t **out, char *errmsg, size_t errlen);

/* The live, unexpired, unrevoked session with HASH: *OUT = {"user_id", "email", "is_admin",
 * "expires_in_s"}. DB_NOT_FOUND otherwise. */
int db_auth_session_lookup(PGconn *conn, const unsigned char hash[32], json_t **out, char *errmsg,
                           size_t errlen);

/* Revokes the session with HASH. */
int db_auth_session_revoke(PGconn *conn, const unsigned char hash[32], char *errmsg, size_t errlen);

/* The unrevoked key with PREFIX of a live project: *OUT = {"id", "project_id", "key_hash"
 * (hex)}. The caller compares the hash in constant time. DB_NOT_FOUND otherwise. */
int db_auth_apikey_lookup(PGconn *conn, const char *prefix, json_t **out, char *errmsg,
                          size_t errlen);

/* USER_ID's role in the live project PROJECT_ID: *OUT = {"role": "admin"|"editor"|"viewer"|
 * null}. DB_NOT_FOUND when the project does not exist or is deleted. */
int db_auth_role_lookup(PGconn *conn, const char *user_id, const char *project_id, json_t **out,
                        char *errmsg, size_t errlen);

#endif /* CONCLAVE_DB_AUTH_H */
