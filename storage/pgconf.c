#include "storage/pgconf.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The environment variables that configure the pool, with their accepted ranges. The table
 * drives both parsing and the error messages, so a new setting is added in one place. */
struct env_setting {
    const char *name;
    size_t offset;
    int min;
    int max;
};

static const struct env_setting env_settings[] = {
    {"DB_MAX_CONNECTIONS", offsetof(struct pgconf, max_connections), 1, 1000},
    {"DB_MIN_CONNECTIONS", offsetof(struct pgconf, min_connections), 0, 1000},
    {"DB_ACQUIRE_TIMEOUT_SECONDS", offsetof(struct pgconf, acquire_timeout_s), 1, 3600},
    {"DB_IDLE_TIMEOUT_SECONDS", offsetof(struct pgconf, idle_timeout_s), 1, 86400},
    {"DB_MAX_LIFETIME_SECONDS", offsetof(struct pgconf, max_lifetime_s), 1, 604800},
    {"DB_LOCK_TIMEOUT_MS", offsetof(struct pgconf, lock_timeout_ms), 0, 3600000},
    {"DB_STATEMENT_TIMEOUT_MS", offsetof(struct pgconf, statement_timeout_ms), 0, 3600000},
    {"DB_IDLE_IN_TRANSACTION_TIMEOUT_MS", offsetof(struct pgconf, idle_in_tx_timeout_ms), 0,
     3600000},
    {"DB_KEEPALIVES_IDLE_S", offsetof(struct pgconf, keepalives_idle_s), 1, 3600},
    {"DB_KEEPALIVES_INTERVAL_S", offsetof(struct pgconf, keepalives_interval_s), 1, 3600},
    {"DB_KEEPALIVES_COUNT", offsetof(struct pgconf, keepalives_count), 1, 100},
    {"DB_TCP_USER_TIMEOUT_MS", offsetof(struct pgconf, tcp_user_timeout_ms), 0, 3600000},
};

int pgconf_init(struct pgconf *conf)
{
    memset(conf, 0, sizeof(*conf));
    conf->url = strdup(PGCONF_DEFAULT_URL);
    if (conf->url == NULL) {
        return -1;
    }
    conf->max_connections = 20;
    conf->min_connections = 1;
    conf->acquire_timeout_s = 30;
    conf->idle_timeout_s = 600;
    conf->max_lifetime_s = 1800;
    /* A few seconds each: longer than any healthy batch or lock wait on the measured machines
     * (a 256-revision batch commits in tens of milliseconds), short enough that a deposed,
     * frozen leader releases the cursor lock quickly (docs/operations.md). The statement
     * timeout is larger because a read such as a project's audit may scan its whole history. */
    conf->lock_timeout_ms = 5000;
    conf->statement_timeout_ms = 15000;
    conf->idle_in_tx_timeout_ms = 5000;
    conf->keepalives_idle_s = 5;
    conf->keepalives_interval_s = 2;
    conf->keepalives_count = 3;
    conf->tcp_user_timeout_ms = 10000;
    return 0;
}

void pgconf_free(struct pgconf *conf)
{
    free(conf->url);
    conf->url = NULL;
}

int pgconf_set_url(struct pgconf *conf, const char *url, char *errmsg, size_t errlen)
{
    if (url[0] == '\0') {
        snprintf(errmsg, errlen, "database url is empty");
        return -1;
    }
    char *copy = strdup(url);
    if (copy == NULL) {
        snprintf(errmsg, errlen, "out of memory copying the database url");
        return -1;
    }
    free(conf->url);
    conf->url = copy;
    return 0;
}

/* Parses TEXT as a whole decimal integer within [MIN, MAX]. */
static int parse_int(const char *text, int min, int max, int *out)
{
    char *end = NULL;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || v < min || v > max) {
        return -1;
    }
    *out = (int)v;
    return 0;
}

int pgconf_apply_env(struct pgconf *conf, char *errmsg, size_t errlen)
{
    /* Parse everything into a copy first so that a bad value changes nothing. */
    struct pgconf next = *conf;
    for (size_t i = 0; i < sizeof(env_settings) / sizeof(env_settings[0]); i++) {
        const struct env_setting *s = &env_settings[i];
        const char *value = getenv(s->name);
        if (value == NULL) {
            continue;
        }
        int *field = (int *)((char *)&next + s->offset);
        if (parse_int(value, s->min, s->max, field) != 0) {
            snprintf(errmsg, errlen, "%s=\"%s\" is not a whole number from %d to %d", s->name,
                     value, s->min, s->max);
            return -1;
        }
    }
    if (pgconf_validate(&next, errmsg, errlen) != 0) {
        return -1;
    }
    const char *url = getenv("DATABASE_URL");
    if (url != NULL && pgconf_set_url(&next, url, errmsg, errlen) != 0) {
        snprintf(errmsg, errlen, "DATABASE_URL is set but empty");
        return -1;
    }
    *conf = next;
    return 0;
}

int pgconf_validate(const struct pgconf *conf, char *errmsg, size_t errlen)
{
    if (conf->min_connections > conf->max_connections) {
        snprintf(errmsg, errlen,
                 "min connections (%d) is larger than max connections (%d); "
                 "lower DB_MIN_CONNECTIONS or raise DB_MAX_CONNECTIONS",
                 conf->min_connections, conf->max_connections);
        return -1;
    }
    return 0;
}

int pgconf_connect(const struct pgconf *conf, const char *application_name, PGconn **out,
                   char *errmsg, size_t errlen)
{
    char timeout[16], ka_idle[16], ka_interval[16], ka_count[16], user_timeout[16];
    snprintf(timeout, sizeof(timeout), "%d", conf->acquire_timeout_s);
    snprintf(ka_idle, sizeof(ka_idle), "%d", conf->keepalives_idle_s);
    snprintf(ka_interval, sizeof(ka_interval), "%d", conf->keepalives_interval_s);
    snprintf(ka_count, sizeof(ka_count), "%d", conf->keepalives_count);
    snprintf(user_timeout, sizeof(user_timeout), "%d", conf->tcp_user_timeout_ms);

    /* expand_dbname lets URL be a URI or a keyword string. libpq keeps the last value of a
     * repeated keyword, so the URL comes last: what it says itself wins over our defaults. */
    const char *keys[] = {"application_name",
                          "connect_timeout",
                          "keepalives",
                          "keepalives_idle",
                          "keepalives_interval",
                          "keepalives_count",
                          "tcp_user_timeout",
                          "dbname",
                          NULL};
    const char *values[] = {application_name, timeout,      "1",       ka_idle, ka_interval,
                            ka_count,         user_timeout, conf->url, NULL};
    PGconn *conn = PQconnectdbParams(keys, values, 1);
    *out = NULL;
    if (conn == NULL) {
        snprintf(errmsg, errlen, "out of memory connecting to postgresql");
        return -1;
    }
    if (PQstatus(conn) != CONNECTION_OK) {
        /* libpq's message names the host and port and ends with a newline. */
        const char *why = PQerrorMessage(conn);
        size_t n = strlen(why);
        while (n > 0 && (why[n - 1] == '\n' || why[n - 1] == ' ')) {
            n--;
        }
        snprintf(errmsg, errlen, "cannot connect to postgresql: %.*s", (int)n, why);
        PQfinish(conn);
        return -1;
    }
    *out = conn;
    return 0;
}

int pgconf_apply_session_limits(const struct pgconf *conf, PGconn *conn, char *errmsg,
                                size_t errlen)
{
    /* set_config() with parameters rather than SET: no value is pasted into SQL text. The
     * values are milliseconds (PostgreSQL reads a bare number of these settings as ms). */
    char lock[16], stmt[16], idle[16];
    snprintf(lock, sizeof(lock), "%d", conf->lock_timeout_ms);
    snprintf(stmt, sizeof(stmt), "%d", conf->statement_timeout_ms);
    snprintf(idle, sizeof(idle), "%d", conf->idle_in_tx_timeout_ms);
    const char *values[] = {lock, stmt, idle};
    PGresult *res = PQexecParams(conn,
                                 "SELECT set_config('lock_timeout', $1, false),"
                                 " set_config('statement_timeout', $2, false),"
                                 " set_config('idle_in_transaction_session_timeout', $3, false)",
                                 3, NULL, values, NULL, NULL, 0);
    int rc = 0;
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        const char *why = PQerrorMessage(conn);
        size_t n = strlen(why);
        while (n > 0 && (why[n - 1] == '\n' || why[n - 1] == ' ')) {
            n--;
        }
        snprintf(errmsg, errlen, "setting the session timeouts: %.*s", (int)n, why);
        rc = -1;
    }
    PQclear(res);
    return rc;
}
