/*
 * dbusers: the users table. Blocking; pool worker threads only. Every function returns an
 * enum db_status and, on DB_OK, a new JSON value in *OUT that the caller owns.
 */
#ifndef CONCLAVE_DB_USERS_H
#define CONCLAVE_DB_USERS_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>
#include <libpq-fe.h>

/* Inserts a user with an argon2id PASSWORD_HASH. DB_CONFLICT when a live user has EMAIL. */
int db_users_create(PGconn *conn, const char *email, const char *password_hash, bool is_admin,
                    json_t **out, char *errmsg, size_t errlen);

/* Up to LIMIT live users with id > AFTER (NULL: from the start), by id: a JSON array. */
int db_users_list(PGconn *conn, const char *after, int limit, json_t **out, char *errmsg,
                  size_t errlen);

/* The live user ID. DB_NOT_FOUND when missing or deleted. */
int db_users_get(PGconn *conn, const char *id, json_t **out, char *errmsg, size_t errlen);

/* Soft-deletes the live user ID and revokes their sessions, in one transaction. */
int db_users_delete(PGconn *conn, const char *id, char *errmsg, size_t errlen);

#endif /* CONCLAVE_DB_USERS_H */
