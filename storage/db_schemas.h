/*
 * dbschemas: the config_schemas catalog. Blocking; pool worker threads only. Every function
 * returns an enum db_status and, on DB_OK with an OUT parameter, a new JSON value the caller
 * owns. Schema content travels as canonical JSON text and is stored as jsonb.
 */
#ifndef CONCLAVE_DB_SCHEMAS_H
#define CONCLAVE_DB_SCHEMAS_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>
#include <libpq-fe.h>

/* Inserts a schema. HASH is the SHA-256 of CONTENT (canonical JSON text); FORMAT_ASSERTION
 * makes its "format" keywords assert (migration 017). */
int db_schemas_create(PGconn *conn, const char *name, const char *content,
                      const unsigned char hash[32], bool format_assertion, const char *created_by,
                      json_t **out, char *errmsg, size_t errlen);

/* The content of the one live schema whose root "$id" is URI, for a "$ref" between schemas of
 * the catalog. DB_NOT_FOUND when there is none, DB_CONFLICT when several have it; ERRMSG says
 * which. */
int db_schemas_by_id_uri(PGconn *conn, const char *uri, json_t **out, char *errmsg, size_t errlen);

/* Schemas with id > AFTER, by id, at most LIMIT, without their content. */
int db_schemas_list(PGconn *conn, const char *after, int limit, json_t **out, char *errmsg,
                    size_t errlen);

/* Schema ID with its content. */
int db_schemas_get(PGconn *conn, const char *id, json_t **out, char *errmsg, size_t errlen);

/* Changes NAME and/or CONTENT (NULL keeps the old one; HASH goes with CONTENT) and
 * FORMAT_ASSERTION (0 or 1; -1 keeps it). */
int db_schemas_update(PGconn *conn, const char *id, const char *name, const char *content,
                      const unsigned char *hash, int format_assertion, json_t **out, char *errmsg,
                      size_t errlen);

/* Deletes schema ID. DB_IN_USE when a config is still bound to it. */
int db_schemas_delete(PGconn *conn, const char *id, char *errmsg, size_t errlen);

#endif /* CONCLAVE_DB_SCHEMAS_H */
