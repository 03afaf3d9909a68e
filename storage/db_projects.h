/*
 * dbprojects: projects, their API keys and their roles. Blocking; pool worker threads only.
 * Every function returns an enum db_status and, on DB_OK with an OUT parameter, a new JSON
 * value the caller owns.
 *
 * Role changes lock the project row first (SELECT ... FOR UPDATE), so two concurrent
 * demotions cannot both pass the "one admin remains" check.
 */
#ifndef CONCLAVE_DB_PROJECTS_H
#define CONCLAVE_DB_PROJECTS_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>
#include <libpq-fe.h>

/* A new API key as stored: the caller made the key and its HMAC; neither is kept here. */
struct db_projects_key {
    const char *prefix;
    const unsigned char *hash; /* 32 bytes */
    const char *name;
    const char *scope; /* "read" or "read-write" (NULL: "read-write") */
    /* NULL: the whole project; else only the configs whose keys start with it */
    const char *config_prefix;
};

/* Creates project ID with NAME owned by OWNER, makes OWNER its admin and stores KEY, in one
 * transaction. *OUT = the project with "role" and "api_key" ({"id","prefix","name",
 * "created_at"}; the caller adds the key text). DB_CONFLICT when the id was ever used. */
int db_projects_create(PGconn *conn, const char *id, const char *name, const char *owner,
                       const struct db_projects_key *key, json_t **out, char *errmsg,
                       size_t errlen);

/* Live projects USER has a role in (every live project when ALL), id > AFTER, by id, at most
 * LIMIT, each with the user's "role" ("admin" for ALL without a role). */
int db_projects_list(PGconn *conn, const char *user, bool all, const char *after, int limit,
                     json_t **out, char *errmsg, size_t errlen);

/* The live project ID. */
int db_projects_get(PGconn *conn, const char *id, json_t **out, char *errmsg, size_t errlen);

/* Soft-deletes the live project ID. */
int db_projects_delete(PGconn *conn, const char *id, char *errmsg, size_t errlen);

/* Stores KEY for project ID, created by CREATED_BY (may be NULL). *OUT = {"id", "prefix",
 * "name", "created_at"}. */
int db_projects_key_create(PGconn *conn, const char *project, const struct db_projects_key *key,
                           const char *created_by, json_t **out, char *errmsg, size_t errlen);

/* The project's keys (revoked ones too), id > AFTER, by id, at most LIMIT. */
int db_projects_key_list(PGconn *conn, const char *project, const char *after, int limit,
                         json_t **out, char *errmsg, size_t errlen);

/* Revokes key KEY_ID of PROJECT. DB_NOT_FOUND when it is not an unrevoked key of PROJECT. */
int db_projects_key_revoke(PGconn *conn, const char *project, const char *key_id, char *errmsg,
                           size_t errlen);

/* The project's roles with the users' emails, user id > AFTER, by user id, at most LIMIT. */
int db_projects_role_list(PGconn *conn, const char *project, const char *after, int limit,
                          json_t **out, char *errmsg, size_t errlen);

/* Grants or changes ROLE in PROJECT of the live user whose id is USER, or, when USER is NULL,
 * whose email is EMAIL (case-insensitive). DB_NOT_FOUND for an unknown or deleted user;
 * DB_REFUSED when it would leave the project without an admin. */
int db_projects_role_set(PGconn *conn, const char *project, const char *user, const char *email,
                         const char *role, const char *granted_by, json_t **out, char *errmsg,
                         size_t errlen);

/* Removes USER's role in PROJECT. DB_NOT_FOUND when there is none; DB_REFUSED when it is the
 * last admin. */
int db_projects_role_delete(PGconn *conn, const char *project, const char *user, char *errmsg,
                            size_t errlen);

#endif /* CONCLAVE_DB_PROJECTS_H */
