/*
 * config_env: the node's configuration from the environment (docs/configuration.md,
 * "Environment").
 *
 * One rule of precedence for every setting: an environment variable beats the configuration
 * file, which beats the default. Each CONCLAVE_* variable below names one field of the file;
 * config_env_apply() writes the variables that are set (and not empty) into the parsed file
 * before it is checked, so a value from the environment passes exactly the checks a value in
 * the file does, and a message about it names the variable. Relative paths from the
 * environment are resolved against the working directory (those in the file, against the
 * file's directory). DATABASE_URL, DB_* and CONCLAVE_SECRET_FILE keep their own handling
 * (storage/pgconf.h, config.c), with the same precedence.
 */
#ifndef CONCLAVE_CONFIG_ENV_H
#define CONCLAVE_CONFIG_ENV_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

/* How a variable's text becomes the field's JSON value. */
enum config_env_type {
    CONFIG_ENV_INT,    /* a whole number */
    CONFIG_ENV_STRING, /* the text as is */
    CONFIG_ENV_PATH,   /* a file or directory; made absolute against the working directory */
    CONFIG_ENV_BOOL,   /* true or false (also 1 or 0) */
    CONFIG_ENV_JSON,   /* JSON text, e.g. raft.peers' array */
};

struct config_env_var {
    const char *name;  /* e.g. "CONCLAVE_HTTP_LISTEN" */
    const char *field; /* the file's dotted field, e.g. "http.listen" */
    enum config_env_type type;
};

/* Every variable, then one whose name is NULL. */
extern const struct config_env_var config_env_vars[];

/*
 * Writes every set variable into ROOT (the parsed file, a JSON object; modified), creating
 * its section when the file has none. Bit I of *APPLIED is set when config_env_vars[I] was
 * applied. Returns 0, or -1 with ERRMSG naming the variable when its text is not of its type.
 */
int config_env_apply(json_t *root, uint32_t *applied, char *errmsg, size_t errlen);

/* The variable among APPLIED that set the dotted FIELD (or a field under it, such as
 * "raft.peers[1].address" for raft.peers), or NULL. */
const char *config_env_source(uint32_t applied, const char *field);

#endif /* CONCLAVE_CONFIG_ENV_H */
