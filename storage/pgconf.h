/*
 * pgconf: how conclave reaches PostgreSQL.
 *
 * The settings come from defaults, then (in later layers) the node's config file, then the
 * environment: DATABASE_URL and the pool settings DB_MAX_CONNECTIONS, DB_MIN_CONNECTIONS,
 * DB_ACQUIRE_TIMEOUT_SECONDS, DB_IDLE_TIMEOUT_SECONDS and DB_MAX_LIFETIME_SECONDS, and the
 * session limits DB_LOCK_TIMEOUT_MS, DB_STATEMENT_TIMEOUT_MS, DB_IDLE_IN_TRANSACTION_TIMEOUT_MS,
 * DB_KEEPALIVES_IDLE_S, DB_KEEPALIVES_INTERVAL_S, DB_KEEPALIVES_COUNT and DB_TCP_USER_TIMEOUT_MS.
 * The server and every command-line tool read them through this module so they always agree.
 *
 * Why the session limits exist (issue 14): a node frozen (SIGSTOP, a VM pause) or cut off from
 * PostgreSQL while its transaction holds the materializer's cursor row lock must not block the
 * next leader until PostgreSQL notices by itself (hours with the kernel's TCP defaults). The
 * idle-in-transaction timeout makes PostgreSQL end such a session after a few seconds, which
 * releases the lock; the keepalives and tcp_user_timeout let both sides notice a dead peer on a
 * connection that still has work in flight; the lock and statement timeouts bound how long a
 * pooled job can wait or run, so a worker thread is never lost to one of them.
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
    /* Session limits of pooled connections (pgconf_apply_session_limits); 0 disables one. */
    int lock_timeout_ms;       /* wait for a row or table lock at most this long; 5000 */
    int statement_timeout_ms;  /* one statement runs at most this long; 15000 */
    int idle_in_tx_timeout_ms; /* a transaction idle this long is ended by the server; 5000 */
    /* TCP settings of every connection (pgconf_connect); libpq ignores them on Unix sockets. */
    int keepalives_idle_s;     /* first keepalive probe after this much silence; 5 */
    int keepalives_interval_s; /* then a probe every this many seconds; 2 */
    int keepalives_count;      /* the connection is dead after this many lost probes; 3 */
    int tcp_user_timeout_ms;   /* sent data unacknowledged this long kills the connection;
                                  10000 (0 = the kernel's default) */
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

/* Sets CONF's lock, statement and idle-in-transaction timeouts on CONN for the rest of the
 * session (the pool calls it on every connection it opens; the one-off connections of
 * `migrate` and `audit` keep the server's defaults, because a migration or a full audit may
 * legitimately run longer). Blocking. Returns 0, or -1 with ERRMSG filled. */
int pgconf_apply_session_limits(const struct pgconf *conf, PGconn *conn, char *errmsg,
                                size_t errlen);

/* Opens one blocking connection with CONF's URL, connect_timeout and TCP keepalive settings. Never
 * call it on the loop thread. On success returns 0 and stores the connection in *OUT (the caller
 * owns it and closes it with PQfinish). On failure returns -1, *OUT is NULL and ERRMSG holds
 * libpq's reason together with the host and port it tried. */
int pgconf_connect(const struct pgconf *conf, const char *application_name, PGconn **out,
                   char *errmsg, size_t errlen);

#endif /* CONCLAVE_PGCONF_H */
