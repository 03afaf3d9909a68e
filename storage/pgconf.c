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
    char timeout[16];
    snprintf(timeout, sizeof(timeout), "%d", conf->acquire_timeout_s);

    /* expand_dbname lets URL be a URI or a keyword string. libpq keeps the last value of a
     * repeated keyword, so the URL comes last: what it says itself wins over our defaults. */
    const char *keys[] = {"application_name", "connect_timeout", "dbname", NULL};
    const char *values[] = {application_name, timeout, conf->url, NULL};
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
