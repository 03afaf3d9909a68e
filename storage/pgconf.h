/*
 * pgconf: how conclave reaches PostgreSQL.
 *
 * The settings come from defaults, then (in later layers) the node's config file, then the
 * environment: DATABASE_URL and the pool settings DB_MAX_CONNECTIONS, DB_MIN_CONNECTIONS,
 * DB_ACQUIRE_TIMEOUT_SECONDS, DB_IDLE_TIMEOUT_SECONDS and DB_MAX_LIFETIME_SECONDS. The server
 * and every command-line tool read them through this module so they always agree.
 */
#ifndef CONCLAVE_PGCONF_H
#define CONCLAVE_PGCONF_H

#include <stddef.h>

#include <libpq-fe.h>

/* The connection string used when DATABASE_URL is not set: the private server that
 * `scripts/cluster up` starts. */
#define PGCONF_DEFAULT_URL "postgresql://conclave@127.0.0.1:55432/conclave"

struct pgconf {
    char *url;             /* libpq connection string or URI; owned */
    int max_connections;   /* pool size; default 20 */
    int min_connections;   /* connections kept open when idle; default 1 */
    int acquire_timeout_s; /* wait for a pooled connection, also connect_timeout; 30 */
    int idle_timeout_s;    /* close a pooled connection idle this long; 600 */
    int max_lifetime_s;    /* recycle a pooled connection after this long; 1800 */
};

/* Fills CONF with the defaults. CONF->url is allocated; release it with pgconf_free(). Returns
 * 0, or -1 when out of memory. */
int pgconf_init(struct pgconf *conf);

/* Releases what CONF owns. CONF may then be initialised again. */
void pgconf_free(struct pgconf *conf);

/* Replaces CONF's URL with a copy of URL. Returns 0, or -1 with ERRMSG filled. */
int pgconf_set_url(struct pgconf *conf, const char *url, char *errmsg, size_t errlen);

/* Overrides CONF with the environment variables named above. Every value is checked: on a bad
 * one, nothing of CONF is changed, -1 is returned and ERRMSG names the variable, its value and
 * the accepted range. */
int pgconf_apply_env(struct pgconf *conf, char *errmsg, size_t errlen);

/* Checks the settings together (for instance min <= max). Returns 0, or -1 with ERRMSG. */
int pgconf_validate(const struct pgconf *conf, char *errmsg, size_t errlen);

/* Opens one blocking connection with CONF's URL and connect_timeout. Never call it on the
 * loop thread. On success returns 0 and stores the connection in *OUT (the caller owns it and
 * closes it with PQfinish). On failure returns -1, *OUT is NULL and ERRMSG holds libpq's
 * reason together with the host and port it tried. */
int pgconf_connect(const struct pgconf *conf, const char *application_name, PGconn **out,
                   char *errmsg, size_t errlen);

#endif /* CONCLAVE_PGCONF_H */
