#include "server/config.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>

#include "server/config_env.h"
#include "server/logfmt.h"

/* Parsing context: where we are, for messages. */
struct ctx {
    const char *file;
    const char *dir; /* the file's directory, for relative paths */
    char *errmsg;
    size_t errlen;
    uint32_t from_env; /* config_env_apply(): the variables that set fields */
};

static int bad(struct ctx *c, const char *field, const char *what)
{
    const char *var = config_env_source(c->from_env, field);
    if (var != NULL) {
        snprintf(c->errmsg, c->errlen, "environment variable %s: %s %s", var, field, what);
    } else {
        snprintf(c->errmsg, c->errlen, "%s: %s %s", c->file, field, what);
    }
    return -1;
}

/* Refuses every key of OBJ that is not in ALLOWED (NULL-terminated). PREFIX names OBJ. */
static int only_known(struct ctx *c, json_t *obj, const char *prefix, const char *const *allowed)
{
    const char *key;
    json_t *value;
    json_object_foreach(obj, key, value)
    {
        bool ok = false;
        for (const char *const *a = allowed; *a != NULL; a++) {
            if (strcmp(*a, key) == 0) {
                ok = true;
                break;
            }
        }
        if (!ok) {
            char field[256];
            snprintf(field, sizeof(field), "%s%s", prefix, key);
            char what[512];
            size_t n = (size_t)snprintf(what, sizeof(what), "is not a known field; known:");
            for (const char *const *a = allowed; *a != NULL && n < sizeof(what); a++) {
                n += (size_t)snprintf(what + n, sizeof(what) - n, " %s%s", prefix, *a);
            }
            return bad(c, field, what);
        }
    }
    return 0;
}

/* Reads an optional integer field into *OUT within [MIN, MAX]. */
static int get_int(struct ctx *c, json_t *obj, const char *prefix, const char *key, long long min,
                   long long max, long long *out)
{
    json_t *v = json_object_get(obj, key);
    if (v == NULL) {
        return 0;
    }
    char field[128], what[160];
    snprintf(field, sizeof(field), "%s%s", prefix, key);
    if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max) {
        snprintf(what, sizeof(what), "must be a whole number from %lld to %lld", min, max);
        return bad(c, field, what);
    }
    *out = json_integer_value(v);
    return 0;
}

/* Reads an optional string field; *OUT is replaced by a copy. */
static int get_str(struct ctx *c, json_t *obj, const char *prefix, const char *key, char **out)
{
    json_t *v = json_object_get(obj, key);
    if (v == NULL) {
        return 0;
    }
    char field[128];
    snprintf(field, sizeof(field), "%s%s", prefix, key);
    if (!json_is_string(v) || json_string_length(v) == 0) {
        return bad(c, field, "must be a non-empty string");
    }
    char *copy = strdup(json_string_value(v));
    if (copy == NULL) {
        return bad(c, field, "could not be copied: out of memory");
    }
    free(*out);
    *out = copy;
    return 0;
}

/* Makes PATH absolute against the config file's directory. Takes ownership of *PATH. */
static int absolutize(struct ctx *c, char **path)
{
    if (*path == NULL || (*path)[0] == '/') {
        return 0;
    }
    size_t n = strlen(c->dir) + 1 + strlen(*path) + 1;
    char *abs = malloc(n);
    if (abs == NULL) {
        return bad(c, "path", "could not be resolved: out of memory");
    }
    snprintf(abs, n, "%s/%s", c->dir, *path);
    free(*path);
    *path = abs;
    return 0;
}

/* Splits "host:port" or "[v6]:port". */
static int parse_listen(struct ctx *c, const char *field, const char *text, char **host, int *port)
{
    const char *colon = strrchr(text, ':');
    if (colon == NULL || colon == text || colon[1] == '\0') {
        return bad(c, field, "must be HOST:PORT, e.g. \"127.0.0.1:8081\"");
    }
    const char *h = text;
    size_t hlen = (size_t)(colon - text);
    if (h[0] == '[' && hlen >= 2 && h[hlen - 1] == ']') {
        h++;
        hlen -= 2;
    }
    char *end = NULL;
    errno = 0;
    long p = strtol(colon + 1, &end, 10);
    if (errno != 0 || *end != '\0' || p < 1 || p > 65535) {
        return bad(c, field, "has a port that is not a number from 1 to 65535");
    }
    char *copy = strndup(h, hlen);
    if (copy == NULL) {
        return bad(c, field, "could not be copied: out of memory");
    }
    free(*host);
    *host = copy;
    *port = (int)p;
    return 0;
}

static int set_defaults(struct config *conf, const char *dir)
{
    memset(conf, 0, sizeof(*conf));
    if (pgconf_init(&conf->db) != 0) {
        return -1;
    }
    conf->node_id = 1;
    size_t n = strlen(dir) + sizeof("/data");
    conf->data_dir = malloc(n);
    conf->http_host = strdup("127.0.0.1");
    if (conf->data_dir == NULL || conf->http_host == NULL) {
        return -1;
    }
    snprintf(conf->data_dir, n, "%s/data", dir);
    conf->http_port = 8080;
    conf->http_max_body_bytes = 1024 * 1024;
    conf->http_max_header_bytes = 8 * 1024;
    conf->http_request_timeout_ms = 10000;
    conf->http_idle_timeout_ms = 60000;
    conf->http_max_connections = 512;
    conf->session_ttl_s = 86400;
    conf->password_ops = crypto_pwhash_OPSLIMIT_INTERACTIVE;
    conf->password_mem_kib = crypto_pwhash_MEMLIMIT_INTERACTIVE / 1024;
    conf->access_log = true;
    /* Raft defaults, measured on loopback on a 2-core machine (docs/architecture.md). */
    conf->raft.election_timeout_ms = 500;
    conf->raft.heartbeat_timeout_ms = 50;
    conf->raft.install_snapshot_timeout_ms = 5000;
    conf->raft.connect_retry_delay_ms = 200;
    conf->raft.snapshot_threshold = 1024;
    conf->raft.snapshot_trailing = 2048;
    return 0;
}

/* http.cert_file and http.key_file: both (https only) or neither; http.insecure_plaintext
 * only without them. Whether a node may serve with neither is serve's decision
 * (config_require_https), so that partial files still load for the commands that read them. */
static int parse_http_tls(struct ctx *c, json_t *http, struct config *conf)
{
    json_t *plain = json_object_get(http, "insecure_plaintext");
    if (plain != NULL && !json_is_boolean(plain)) {
        return bad(c, "http.insecure_plaintext", "must be true or false");
    }
    conf->http_insecure_plaintext = plain != NULL && json_is_true(plain);
    if (get_str(c, http, "http.", "cert_file", &conf->http_cert_file) != 0 ||
        absolutize(c, &conf->http_cert_file) != 0 ||
        get_str(c, http, "http.", "key_file", &conf->http_key_file) != 0 ||
        absolutize(c, &conf->http_key_file) != 0) {
        return -1;
    }
    if (conf->http_cert_file != NULL && conf->http_key_file == NULL) {
        return bad(c, "http.key_file",
                   "is required when http.cert_file is set: https needs this node's private key");
    }
    if (conf->http_key_file != NULL && conf->http_cert_file == NULL) {
        return bad(c, "http.cert_file",
                   "is required when http.key_file is set: https needs this node's certificate");
    }
    if (conf->http_cert_file != NULL && conf->http_insecure_plaintext) {
        return bad(c, "http.insecure_plaintext",
                   "is true, but http.cert_file and http.key_file turn https on: choose one");
    }
    return 0;
}

static int parse_http(struct ctx *c, json_t *http, struct config *conf)
{
    static const char *const known[] = {"listen",
                                        "max_body_bytes",
                                        "max_header_bytes",
                                        "request_timeout_ms",
                                        "idle_timeout_ms",
                                        "max_connections",
                                        "cert_file",
                                        "key_file",
                                        "insecure_plaintext",
                                        NULL};
    if (!json_is_object(http)) {
        return bad(c, "http", "must be an object");
    }
    if (only_known(c, http, "http.", known) != 0) {
        return -1;
    }
    json_t *listen = json_object_get(http, "listen");
    if (listen != NULL) {
        if (!json_is_string(listen)) {
            return bad(c, "http.listen", "must be a string HOST:PORT");
        }
        if (parse_listen(c, "http.listen", json_string_value(listen), &conf->http_host,
                         &conf->http_port) != 0) {
            return -1;
        }
    }
    long long v;
    v = (long long)conf->http_max_body_bytes;
    if (get_int(c, http, "http.", "max_body_bytes", 1024, 64LL << 20, &v) != 0) {
        return -1;
    }
    conf->http_max_body_bytes = (size_t)v;
    v = (long long)conf->http_max_header_bytes;
    if (get_int(c, http, "http.", "max_header_bytes", 1024, 1 << 20, &v) != 0) {
        return -1;
    }
    conf->http_max_header_bytes = (size_t)v;
    v = (long long)conf->http_request_timeout_ms;
    if (get_int(c, http, "http.", "request_timeout_ms", 10, 3600000, &v) != 0) {
        return -1;
    }
    conf->http_request_timeout_ms = (uint64_t)v;
    v = (long long)conf->http_idle_timeout_ms;
    if (get_int(c, http, "http.", "idle_timeout_ms", 10, 86400000, &v) != 0) {
        return -1;
    }
    conf->http_idle_timeout_ms = (uint64_t)v;
    v = conf->http_max_connections;
    if (get_int(c, http, "http.", "max_connections", 1, 100000, &v) != 0) {
        return -1;
    }
    conf->http_max_connections = (unsigned)v;
    return parse_http_tls(c, http, conf);
}

static int parse_database(struct ctx *c, json_t *db, struct config *conf)
{
    static const char *const known[] = {"url",
                                        "max_connections",
                                        "min_connections",
                                        "acquire_timeout_s",
                                        "idle_timeout_s",
                                        "max_lifetime_s",
                                        "lock_timeout_ms",
                                        "statement_timeout_ms",
                                        "idle_in_transaction_timeout_ms",
                                        "keepalives_idle_s",
                                        "keepalives_interval_s",
                                        "keepalives_count",
                                        "tcp_user_timeout_ms",
                                        NULL};
    if (!json_is_object(db)) {
        return bad(c, "database", "must be an object");
    }
    if (only_known(c, db, "database.", known) != 0 ||
        get_str(c, db, "database.", "url", &conf->db.url) != 0) {
        return -1;
    }
    struct {
        const char *key;
        int *field;
        int min, max;
    } ints[] = {
        {"max_connections", &conf->db.max_connections, 1, 1000},
        {"min_connections", &conf->db.min_connections, 0, 1000},
        {"acquire_timeout_s", &conf->db.acquire_timeout_s, 1, 3600},
        {"idle_timeout_s", &conf->db.idle_timeout_s, 1, 86400},
        {"max_lifetime_s", &conf->db.max_lifetime_s, 1, 604800},
        {"lock_timeout_ms", &conf->db.lock_timeout_ms, 0, 3600000},
        {"statement_timeout_ms", &conf->db.statement_timeout_ms, 0, 3600000},
        {"idle_in_transaction_timeout_ms", &conf->db.idle_in_tx_timeout_ms, 0, 3600000},
        {"keepalives_idle_s", &conf->db.keepalives_idle_s, 1, 3600},
        {"keepalives_interval_s", &conf->db.keepalives_interval_s, 1, 3600},
        {"keepalives_count", &conf->db.keepalives_count, 1, 100},
        {"tcp_user_timeout_ms", &conf->db.tcp_user_timeout_ms, 0, 3600000},
    };
    for (size_t i = 0; i < sizeof(ints) / sizeof(ints[0]); i++) {
        long long v = *ints[i].field;
        if (get_int(c, db, "database.", ints[i].key, ints[i].min, ints[i].max, &v) != 0) {
            return -1;
        }
        *ints[i].field = (int)v;
    }
    return 0;
}

static int parse_auth(struct ctx *c, json_t *auth, struct config *conf)
{
    static const char *const known[] = {"secret_file", "session_ttl_s", "password_ops",
                                        "password_mem_kib", NULL};
    if (!json_is_object(auth)) {
        return bad(c, "auth", "must be an object");
    }
    if (only_known(c, auth, "auth.", known) != 0 ||
        get_str(c, auth, "auth.", "secret_file", &conf->secret_file) != 0) {
        return -1;
    }
    long long v = conf->session_ttl_s;
    if (get_int(c, auth, "auth.", "session_ttl_s", 60, 31 * 86400, &v) != 0) {
        return -1;
    }
    conf->session_ttl_s = (unsigned)v;
    v = (long long)conf->password_ops;
    if (get_int(c, auth, "auth.", "password_ops", crypto_pwhash_OPSLIMIT_MIN, 32, &v) != 0) {
        return -1;
    }
    conf->password_ops = (unsigned long long)v;
    v = (long long)conf->password_mem_kib;
    if (get_int(c, auth, "auth.", "password_mem_kib", 64, 4 * 1024 * 1024, &v) != 0) {
        return -1;
    }
    conf->password_mem_kib = (size_t)v;
    return 0;
}

/* Checks an "IP:PORT" raft address and copies it into OUT. */
static int raft_address(struct ctx *c, const char *field, json_t *v, char *out, size_t outlen)
{
    char *host = NULL;
    int port = 0;
    if (!json_is_string(v)) {
        return bad(c, field, "must be a string IP:PORT");
    }
    if (parse_listen(c, field, json_string_value(v), &host, &port) != 0) {
        return -1;
    }
    free(host);
    if (json_string_length(v) >= outlen) {
        return bad(c, field, "is too long");
    }
    snprintf(out, outlen, "%s", json_string_value(v));
    return 0;
}

/* raft.ca_file, cert_file, key_file (resolved against the config's directory) and
 * raft.insecure_plaintext. The three files are required unless plaintext is asked for
 * explicitly: peers are authenticated by default (docs/security.md). */
static int parse_raft_tls(struct ctx *c, json_t *raft, struct rnode_config *r)
{
    json_t *plain = json_object_get(raft, "insecure_plaintext");
    if (plain != NULL && !json_is_boolean(plain)) {
        return bad(c, "raft.insecure_plaintext", "must be true or false");
    }
    r->insecure_plaintext = plain != NULL && json_is_true(plain);
    struct {
        const char *key;
        char *out;
        size_t outlen;
    } files[] = {
        {"ca_file", r->tls_ca_file, sizeof(r->tls_ca_file)},
        {"cert_file", r->tls_cert_file, sizeof(r->tls_cert_file)},
        {"key_file", r->tls_key_file, sizeof(r->tls_key_file)},
    };
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        char field[64];
        snprintf(field, sizeof(field), "raft.%s", files[i].key);
        char *path = NULL;
        if (get_str(c, raft, "raft.", files[i].key, &path) != 0 || absolutize(c, &path) != 0) {
            free(path);
            return -1;
        }
        if (path == NULL) {
            files[i].out[0] = '\0';
            if (!r->insecure_plaintext) {
                return bad(c, field,
                           "is required: raft peers authenticate with mutual tls (the cluster's "
                           "ca_file, this node's cert_file and key_file); plain tcp needs "
                           "\"insecure_plaintext\": true");
            }
            continue;
        }
        if (r->insecure_plaintext) {
            free(path);
            return bad(c, field, "is set, but raft.insecure_plaintext turns tls off: choose one");
        }
        if ((size_t)snprintf(files[i].out, files[i].outlen, "%s", path) >= files[i].outlen) {
            free(path);
            return bad(c, field, "is too long");
        }
        free(path);
    }
    return 0;
}

static int parse_raft(struct ctx *c, json_t *raft, struct config *conf)
{
    static const char *const known[] = {"address",
                                        "peers",
                                        "election_timeout_ms",
                                        "heartbeat_timeout_ms",
                                        "install_snapshot_timeout_ms",
                                        "connect_retry_delay_ms",
                                        "snapshot_threshold",
                                        "snapshot_trailing",
                                        "ca_file",
                                        "cert_file",
                                        "key_file",
                                        "insecure_plaintext",
                                        NULL};
    struct rnode_config *r = &conf->raft;
    if (!json_is_object(raft)) {
        return bad(c, "raft", "must be an object");
    }
    if (only_known(c, raft, "raft.", known) != 0) {
        return -1;
    }
    json_t *addr = json_object_get(raft, "address");
    if (addr == NULL) {
        return bad(c, "raft.address", "is required: the IP:PORT this node's raft binds");
    }
    if (raft_address(c, "raft.address", addr, r->address, sizeof(r->address)) != 0) {
        return -1;
    }
    json_t *peers = json_object_get(raft, "peers");
    if (peers != NULL) {
        if (!json_is_array(peers) || json_array_size(peers) > RNODE_MAX_MEMBERS) {
            return bad(c, "raft.peers", "must be an array of at most 16 {\"id\", \"address\"}");
        }
        size_t i;
        json_t *p;
        json_array_foreach(peers, i, p)
        {
            char field[64];
            snprintf(field, sizeof(field), "raft.peers[%zu]", i);
            json_t *id = json_object_get(p, "id");
            json_t *http = json_object_get(p, "http");
            if (!json_is_object(p) || json_object_size(p) != (http ? 3u : 2u) ||
                !json_is_integer(id) || json_integer_value(id) < 1 ||
                json_integer_value(id) > 65535) {
                return bad(c, field,
                           "must be {\"id\": 1..65535, \"address\": \"IP:PORT\", \"http\": "
                           "\"IP:PORT\" (optional)}");
            }
            if (http != NULL) {
                snprintf(field, sizeof(field), "raft.peers[%zu].http", i);
                if (raft_address(c, field, http, r->bootstrap[i].http,
                                 sizeof(r->bootstrap[i].http)) != 0) {
                    return -1;
                }
            }
            r->bootstrap[i].id = (uint64_t)json_integer_value(id);
            snprintf(field, sizeof(field), "raft.peers[%zu].address", i);
            if (raft_address(c, field, json_object_get(p, "address"), r->bootstrap[i].address,
                             sizeof(r->bootstrap[i].address)) != 0) {
                return -1;
            }
            for (size_t j = 0; j < i; j++) {
                if (r->bootstrap[j].id == r->bootstrap[i].id) {
                    snprintf(field, sizeof(field), "raft.peers[%zu].id", i);
                    return bad(c, field, "repeats an earlier peer's id");
                }
            }
            r->nbootstrap++;
        }
    }
    struct {
        const char *key;
        unsigned *field;
        long long min, max;
    } ints[] = {
        {"election_timeout_ms", &r->election_timeout_ms, 50, 60000},
        {"heartbeat_timeout_ms", &r->heartbeat_timeout_ms, 10, 10000},
        {"install_snapshot_timeout_ms", &r->install_snapshot_timeout_ms, 100, 600000},
        {"connect_retry_delay_ms", &r->connect_retry_delay_ms, 10, 60000},
        {"snapshot_threshold", &r->snapshot_threshold, 16, 10000000},
        {"snapshot_trailing", &r->snapshot_trailing, 0, 10000000},
    };
    for (size_t i = 0; i < sizeof(ints) / sizeof(ints[0]); i++) {
        long long v = *ints[i].field;
        if (get_int(c, raft, "raft.", ints[i].key, ints[i].min, ints[i].max, &v) != 0) {
            return -1;
        }
        *ints[i].field = (unsigned)v;
    }
    if (r->heartbeat_timeout_ms * 2 > r->election_timeout_ms) {
        return bad(c, "raft.heartbeat_timeout_ms",
                   "must be at most half of raft.election_timeout_ms, or followers start "
                   "elections between heartbeats");
    }
    if (parse_raft_tls(c, raft, r) != 0) {
        return -1;
    }
    conf->has_raft = true;
    return 0;
}

static int parse_root(struct ctx *c, json_t *root, struct config *conf)
{
    static const char *const known[] = {"node_id", "data_dir", "http", "database",
                                        "auth",    "raft",     "log",  NULL};
    if (!json_is_object(root)) {
        return bad(c, "the top level", "must be a JSON object");
    }
    if (only_known(c, root, "", known) != 0) {
        return -1;
    }
    long long v = conf->node_id;
    if (get_int(c, root, "", "node_id", 1, 65535, &v) != 0) {
        return -1;
    }
    conf->node_id = (unsigned)v;
    if (get_str(c, root, "", "data_dir", &conf->data_dir) != 0) {
        return -1;
    }
    json_t *sec;
    if ((sec = json_object_get(root, "http")) != NULL && parse_http(c, sec, conf) != 0) {
        return -1;
    }
    if ((sec = json_object_get(root, "database")) != NULL && parse_database(c, sec, conf) != 0) {
        return -1;
    }
    if ((sec = json_object_get(root, "auth")) != NULL && parse_auth(c, sec, conf) != 0) {
        return -1;
    }
    if ((sec = json_object_get(root, "raft")) != NULL && parse_raft(c, sec, conf) != 0) {
        return -1;
    }
    /* A follower forwards to the leader over https and checks the leader's certificate against
     * the cluster's CA, raft.ca_file (docs/security.md, "Forwarding"). */
    if (conf->http_cert_file != NULL && conf->has_raft && conf->raft.insecure_plaintext) {
        return bad(c, "http.cert_file",
                   "is set, but raft.insecure_plaintext leaves raft.ca_file unset, and "
                   "forwarding to the leader over https checks its certificate against it: "
                   "give raft its tls files");
    }
    if ((sec = json_object_get(root, "log")) != NULL) {
        static const char *const lknown[] = {"access", "format", "level", NULL};
        if (!json_is_object(sec)) {
            return bad(c, "log", "must be an object");
        }
        if (only_known(c, sec, "log.", lknown) != 0) {
            return -1;
        }
        json_t *a = json_object_get(sec, "access");
        if (a != NULL && !json_is_boolean(a)) {
            return bad(c, "log.access", "must be true or false");
        }
        if (a != NULL) {
            conf->access_log = json_is_true(a);
        }
        json_t *f = json_object_get(sec, "format");
        if (f != NULL) {
            const char *fs = json_string_value(f);
            if (fs == NULL || (strcmp(fs, "text") != 0 && strcmp(fs, "json") != 0)) {
                return bad(c, "log.format", "must be \"text\" or \"json\"");
            }
            conf->log_json = strcmp(fs, "json") == 0;
        }
        json_t *l = json_object_get(sec, "level");
        if (l != NULL) {
            enum logfmt_level lv;
            if (!json_is_string(l) || logfmt_parse_level(json_string_value(l), &lv) != 0) {
                return bad(c, "log.level", "must be \"info\", \"warn\" or \"error\"");
            }
            conf->log_level = (int)lv;
        }
    }
    return 0;
}

int config_load(const char *path, struct config *conf, char *errmsg, size_t errlen)
{
    char dirbuf[PATH_MAX];
    char *real = realpath(path, NULL);
    if (real == NULL) {
        snprintf(errmsg, errlen, "cannot open config file %s: %s", path, strerror(errno));
        memset(conf, 0, sizeof(*conf));
        return -1;
    }
    snprintf(dirbuf, sizeof(dirbuf), "%s", real);
    char *slash = strrchr(dirbuf, '/');
    if (slash != NULL && slash != dirbuf) {
        *slash = '\0';
    } else {
        snprintf(dirbuf, sizeof(dirbuf), "/");
    }
    struct ctx c = {.file = path, .dir = dirbuf, .errmsg = errmsg, .errlen = errlen};
    json_t *root = NULL;

    if (set_defaults(conf, dirbuf) != 0) {
        snprintf(errmsg, errlen, "out of memory loading %s", path);
        goto err;
    }
    conf->source = real;
    real = NULL;
    json_error_t jerr;
    root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        snprintf(errmsg, errlen, "%s: line %d, column %d: %s", path, jerr.line, jerr.column,
                 jerr.text);
        goto err;
    }
    /* The environment wins over the file (config_env.h): applied to the parsed file, so that
     * its values pass the same checks. */
    if (!json_is_object(root)) {
        bad(&c, "the top level", "must be a JSON object");
        goto err;
    }
    if (config_env_apply(root, &c.from_env, errmsg, errlen) != 0) {
        goto err;
    }
    if (parse_root(&c, root, conf) != 0) {
        goto err;
    }
    /* The environment wins over the file, as the operator expects from DATABASE_URL. */
    char envmsg[512];
    if (pgconf_apply_env(&conf->db, envmsg, sizeof(envmsg)) != 0) {
        snprintf(errmsg, errlen, "environment: %s", envmsg);
        goto err;
    }
    if (pgconf_validate(&conf->db, envmsg, sizeof(envmsg)) != 0) {
        snprintf(errmsg, errlen, "%s: database: %s", path, envmsg);
        goto err;
    }
    const char *env_secret = getenv("CONCLAVE_SECRET_FILE");
    if (env_secret != NULL && env_secret[0] != '\0') {
        free(conf->secret_file);
        conf->secret_file = strdup(env_secret);
    }
    if (absolutize(&c, &conf->data_dir) != 0 || absolutize(&c, &conf->secret_file) != 0) {
        goto err;
    }
    conf->raft.id = conf->node_id;
    if ((size_t)snprintf(conf->raft.dir, sizeof(conf->raft.dir), "%s/raft", conf->data_dir) >=
        sizeof(conf->raft.dir)) {
        bad(&c, "data_dir", "is too long");
        goto err;
    }
    json_decref(root);
    return 0;

err:
    json_decref(root);
    free(real);
    config_free(conf);
    return -1;
}

int config_init_defaults(struct config *conf, char *errmsg, size_t errlen)
{
    char cwd[PATH_MAX];
    if (getcwd(cwd, sizeof(cwd)) == NULL || set_defaults(conf, cwd) != 0) {
        config_free(conf);
        snprintf(errmsg, errlen, "cannot set up the default configuration");
        return -1;
    }
    char envmsg[512];
    if (pgconf_apply_env(&conf->db, envmsg, sizeof(envmsg)) != 0) {
        snprintf(errmsg, errlen, "environment: %s", envmsg);
        config_free(conf);
        return -1;
    }
    return 0;
}

void config_free(struct config *conf)
{
    free(conf->data_dir);
    free(conf->http_host);
    free(conf->http_cert_file);
    free(conf->http_key_file);
    free(conf->secret_file);
    free(conf->source);
    pgconf_free(&conf->db);
    memset(conf, 0, sizeof(*conf));
}

int config_read_secret(const struct config *conf, unsigned char *out, size_t outlen, size_t *len,
                       char *errmsg, size_t errlen)
{
    struct stat st;
    if (conf->secret_file == NULL) {
        snprintf(errmsg, errlen,
                 "%s: auth.secret_file is not set (nor CONCLAVE_SECRET_FILE); every node of a "
                 "cluster needs the same secret file: 64 hex characters, e.g. from "
                 "`openssl rand -hex 32`, mode 0600",
                 conf->source ? conf->source : "config");
        return -1;
    }
    if (stat(conf->secret_file, &st) != 0) {
        snprintf(errmsg, errlen, "cannot read secret file %s: %s", conf->secret_file,
                 strerror(errno));
        return -1;
    }
    if ((st.st_mode & 077) != 0) {
        snprintf(errmsg, errlen,
                 "secret file %s is readable by group or others (mode %03o); chmod 600 it",
                 conf->secret_file, (unsigned)(st.st_mode & 0777));
        return -1;
    }
    FILE *f = fopen(conf->secret_file, "r");
    if (f == NULL) {
        snprintf(errmsg, errlen, "cannot read secret file %s: %s", conf->secret_file,
                 strerror(errno));
        return -1;
    }
    char hex[1024];
    size_t n = fread(hex, 1, sizeof(hex) - 1, f);
    fclose(f);
    hex[n] = '\0';
    while (n > 0 && isspace((unsigned char)hex[n - 1])) {
        hex[--n] = '\0';
    }
    const char *start = hex;
    while (isspace((unsigned char)*start)) {
        start++;
    }
    size_t bin_len = 0;
    if (sodium_hex2bin(out, outlen, start, strlen(start), NULL, &bin_len, NULL) != 0 ||
        bin_len < 32) {
        sodium_memzero(hex, sizeof(hex));
        snprintf(errmsg, errlen,
                 "secret file %s must hold at least 64 hex characters (32 bytes), e.g. from "
                 "`openssl rand -hex 32`",
                 conf->secret_file);
        return -1;
    }
    sodium_memzero(hex, sizeof(hex));
    *len = bin_len;
    return 0;
}
