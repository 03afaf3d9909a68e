/*
 * config: the node's configuration file.
 *
 * The file is one JSON object (docs/configuration.md lists every field with its default).
 * Loading is strict: an unknown field, a value of the wrong type or out of range refuses the
 * whole file with a message naming the field, because a typo in a config store's own config
 * must not silently fall back to a default. After the file, the environment overrides the
 * database settings (DATABASE_URL, DB_*) and the secret (CONCLAVE_SECRET_FILE).
 */
#ifndef CONCLAVE_CONFIG_H
#define CONCLAVE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "storage/pgconf.h"
#include "raft/rnode.h"

struct config {
    unsigned node_id;                 /* 1..65535; default 1 */
    char *data_dir;                   /* absolute; owned; default "<config dir>/data" */
    char *http_host;                  /* IPv4 or IPv6 literal; owned; default 127.0.0.1 */
    int http_port;                    /* default 8080 */
    size_t http_max_body_bytes;       /* default 1 MiB */
    size_t http_max_header_bytes;     /* default 8 KiB */
    uint64_t http_request_timeout_ms; /* default 10000 */
    uint64_t http_idle_timeout_ms;    /* default 60000 */
    unsigned http_max_connections;    /* default 512 */
    char *http_cert_file;             /* absolute; owned; NULL: none (serve then needs the next) */
    char *http_key_file;              /* absolute; owned; set exactly when http_cert_file is */
    bool http_insecure_plaintext;     /* http.insecure_plaintext: plain http, chosen explicitly;
                                       * never together with http_cert_file */
    struct pgconf db;                 /* database.*; owned */
    char *secret_file;                /* absolute; owned; NULL when unset (serve refuses) */
    unsigned session_ttl_s;           /* default 86400 */
    unsigned long long password_ops;  /* argon2id opslimit; default libsodium INTERACTIVE */
    size_t password_mem_kib;          /* argon2id memlimit in KiB; default libsodium INTERACTIVE */
    bool access_log;                  /* default true */
    bool log_json;                    /* log.format "json": JSON lines (logfmt.h); default text */
    int log_level;                    /* log.level: enum logfmt_level; default info (0) */
    bool has_raft;                    /* a "raft" section was given */
    struct rnode_config raft;         /* raft.*; dir is <data_dir>/raft, id is node_id */
    char *source;                     /* the path the config was loaded from; owned */
};

/* Loads PATH into CONF (which the caller provides uninitialised). Relative paths in the file
 * are resolved against the file's directory. On success the caller owns CONF and releases it
 * with config_free(). On failure nothing is left allocated and ERRMSG names the file, the
 * field (as a dotted path, "http.listen") and what is wrong. */
int config_load(const char *path, struct config *conf, char *errmsg, size_t errlen);

/* Fills CONF with the defaults and the environment, for tools run without a config file. */
int config_init_defaults(struct config *conf, char *errmsg, size_t errlen);

/* Releases what CONF owns. */
void config_free(struct config *conf);

/* Reads the node secret from CONF->secret_file: at least 32 bytes of hex (64+ characters),
 * surrounding whitespace ignored. Stores the decoded bytes in OUT (OUTLEN bytes available),
 * their count in *LEN. The file must not be readable by group or others. */
int config_read_secret(const struct config *conf, unsigned char *out, size_t outlen, size_t *len,
                       char *errmsg, size_t errlen);

#endif /* CONCLAVE_CONFIG_H */
