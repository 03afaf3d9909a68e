/*
 * chaos_client: the load of a chaos run (tests/chaos, scripts/chaos).
 *
 *   chaos_client --nodes URL[,URL...] --token TOKEN --project P --history FILE
 *                [--clients N] [--keys K] [--duration S] [--seed X] [--timeout-ms MS]
 *                [--stop-file F] [--schema-id UUID] [--retries N]
 *
 * N client threads, each with its own libcurl handle, run until the duration ends or the stop
 * file appears. Each operation goes to a node drawn at random (a follower forwards to the
 * leader) on a key drawn from k0..k(K-1):
 *
 *   - a compare-and-swap write: PUT .../configs/KEY with a unique JSON string value
 *     "cC-N", expected_version the last version this client saw for KEY (0 creates the key)
 *     and request_id equal to the value;
 *   - a linearizable read: GET .../configs/KEY (the default consistency);
 *   - with --schema-id (a schema every string satisfies), a write carries "schema_id": UUID
 *     (binds the key) a quarter of the time, "schema_id": null (unbinds it) another quarter,
 *     and no schema_id (the key keeps its binding) otherwise;
 *   - a rollback, a fifth of the "writes" when the client knows the value of a version below
 *     the one it last saw: POST .../configs/KEY/rollback {target_version, expected_version,
 *     request_id}; its value in the history is the content of target_version (checked
 *     against PostgreSQL's row by the checker).
 *
 * A write or rollback answered 504 outcome_unknown, or not answered at all, is sent again with
 * the same request id (and body) to a random node, at most --retries times (default 3) after
 * 250, 500, 1000 ms ...: docs/write-path.md promises the first outcome. The retry's answer is
 * the operation's outcome (one history line: invoke of the first attempt, complete of the
 * last, "retries" the number of retries); a retry answered 503 or refused is not definitive
 * (the first attempt may have happened), so it stays unknown. A retry answered 400 is what a
 * correct server never says to an identical request: the checker reports it.
 *
 * Every operation is one line of the JSON Lines history, written when it completes:
 *
 *   {"client", "op": "write"|"rollback"|"read", "key", "value", "expected_version",
 *    "target_version" (rollbacks), "version", "revision", "request_id", "schema" (writes:
 *    "bind", "unbind" or "inherit"), "retries", "invoke", "complete",
 *    "outcome": "ok"|"fail"|"unknown", "status"}
 *
 * invoke and complete are CLOCK_REALTIME microseconds taken just before the request is sent
 * and just after its answer (or its failure) arrived. "version" is what the server answered:
 * the new version of an acknowledged write, the version a read saw (0 for a 404), or the
 * current_version of a 409 conflict; -1 when there is none. Outcomes follow docs/api.md: a
 * 2xx is ok; 409 and other 4xx, 503 (not done) and a refused connection are fail; a timeout,
 * 504 or any other answer is unknown (the write may or may not have happened; the checker
 * resolves it from PostgreSQL by request id). Reads that are not ok have no effect.
 *
 * Exit status: 0 when the run completed (whatever the outcomes), 2 on bad arguments or when
 * the history cannot be written.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#define MAX_NODES 9
#define MAX_KEYS  1000

struct opts {
    char *nodes[MAX_NODES];
    size_t n_nodes;
    const char *token;
    const char *project;
    const char *history;
    const char *stop_file;
    int clients;
    int keys;
    int duration_s;
    unsigned long seed;
    long timeout_ms;
    const char *schema_id; /* NULL: writes never name a schema */
    int retries;
};

struct shared {
    const struct opts *o;
    FILE *out;
    pthread_mutex_t out_lock;
    int64_t end_us;
    bool write_failed;
};

struct client {
    struct shared *s;
    int id;
    uint64_t rng;
    CURL *curl;
    int64_t versions[MAX_KEYS]; /* the last version this client saw per key */
    /* The two highest versions of each key whose value this client learned (its own
     * acknowledged writes, its reads): a rollback's target and the value it brings back.
     * Versions are immutable, so what was learned stays true. */
    struct known {
        int64_t version; /* 0: none */
        char value[64];
    } known[MAX_KEYS][2];
    char *body;
    size_t body_len;
    size_t body_cap;
};

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* xorshift64*: deterministic per client from the seed, so a run's choices can be replayed
 * (the timing of the answers cannot). */
static uint64_t next_rand(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 2685821657736338717ULL;
}

static size_t collect(char *ptr, size_t size, size_t nmemb, void *data)
{
    struct client *c = data;
    size_t n = size * nmemb;
    if (c->body_len + n + 1 > c->body_cap) {
        size_t cap = (c->body_len + n + 1) * 2;
        char *nb = realloc(c->body, cap);
        if (nb == NULL) {
            return 0;
        }
        c->body = nb;
        c->body_cap = cap;
    }
    memcpy(c->body + c->body_len, ptr, n);
    c->body_len += n;
    c->body[c->body_len] = '\0';
    return n;
}

/* Sends one request. Returns the HTTP status, 0 when the request surely never reached a
 * server (connection refused), or -1 when the outcome is unknown (timeout, reset). */
static long send_request(struct client *c, const char *method, const char *url, const char *json)
{
    struct curl_slist *h = NULL;
    char auth[512];
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", c->s->o->token);
    h = curl_slist_append(h, auth);
    if (json != NULL) {
        h = curl_slist_append(h, "Content-Type: application/json");
    }
    c->body_len = 0;
    if (c->body != NULL) {
        c->body[0] = '\0';
    }
    curl_easy_reset(c->curl);
    curl_easy_setopt(c->curl, CURLOPT_URL, url);
    curl_easy_setopt(c->curl, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c->curl, CURLOPT_TIMEOUT_MS, c->s->o->timeout_ms);
    curl_easy_setopt(c->curl, CURLOPT_CONNECTTIMEOUT_MS, c->s->o->timeout_ms);
    curl_easy_setopt(c->curl, CURLOPT_NOSIGNAL, 1L);
    /* A new connection per request: on a reused connection that died, libcurl would send the
     * request again on a fresh one, and a refused connection would no longer prove that the
     * server never saw the request. */
    curl_easy_setopt(c->curl, CURLOPT_FRESH_CONNECT, 1L);
    curl_easy_setopt(c->curl, CURLOPT_FORBID_REUSE, 1L);
    curl_easy_setopt(c->curl, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, c);
    if (json != NULL) {
        curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, json);
    }
    CURLcode rc = curl_easy_perform(c->curl);
    long status = -1;
    if (rc == CURLE_OK) {
        curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &status);
    } else if (rc == CURLE_COULDNT_CONNECT) {
        status = 0;
    }
    curl_slist_free_all(h);
    return status;
}

static const char *outcome_of(long status)
{
    if (status >= 200 && status < 300) {
        return "ok";
    }
    if (status == 0 || status == 503 || (status >= 400 && status < 500)) {
        return "fail";
    }
    return "unknown";
}

static void record(struct client *c, json_t *line)
{
    struct shared *s = c->s;
    pthread_mutex_lock(&s->out_lock);
    if (json_dumpf(line, s->out, JSON_COMPACT) != 0 || fputc('\n', s->out) == EOF ||
        fflush(s->out) != 0) {
        s->write_failed = true;
    }
    pthread_mutex_unlock(&s->out_lock);
    json_decref(line);
}

/* The integer member NAME of the answer, or -1. */
static int64_t answer_int(json_t *ans, const char *name)
{
    json_t *v = json_object_get(ans, name);
    return json_is_integer(v) ? (int64_t)json_integer_value(v) : -1;
}

/* Records that version VERSION of KEY holds VALUE. */
static void learn(struct client *c, int key, int64_t version, const char *value)
{
    struct known *k = c->known[key];
    if (version <= k[0].version || value == NULL || strlen(value) >= sizeof(k[0].value)) {
        return;
    }
    k[1] = k[0];
    k[0].version = version;
    snprintf(k[0].value, sizeof(k[0].value), "%s", value);
}

static bool definitive(long status)
{
    return status > 0 && status != 503 && status != 504;
}

/* Sends the write JSON to PATH (on random nodes), again with the same body while the answer
 * is 504 or missing, at most o->retries times with a doubling backoff. Returns the last
 * status; *RETRIES the number of retries. */
static long send_write(struct client *c, const char *method, const char *path, const char *json,
                       int *retries)
{
    const struct opts *o = c->s->o;
    char url[1024];
    long status = -1;
    useconds_t backoff = 250000;
    *retries = 0;
    for (int attempt = 0;; attempt++) {
        const char *node = o->nodes[next_rand(&c->rng) % o->n_nodes];
        snprintf(url, sizeof(url), "%s%s", node, path);
        long st = send_request(c, method, url, json);
        /* A retry answered 503 or refused says nothing of the first attempt: keep the
         * strongest "maybe" (504 or no answer) unless the answer is definitive. */
        if (attempt == 0 || definitive(st) || st == 504 || st == -1) {
            status = st;
        }
        if (definitive(st) || (attempt == 0 && (st == 503 || st == 0)) || attempt >= o->retries ||
            now_us() >= c->s->end_us) {
            break;
        }
        if (o->stop_file != NULL && access(o->stop_file, F_OK) == 0) {
            break;
        }
        usleep(backoff);
        backoff = backoff < 2000000 ? backoff * 2 : backoff;
        (*retries)++;
    }
    return status;
}

/* Returns whether the write was answered 2xx or 409. */
static bool do_write(struct client *c, int key, uint64_t seq)
{
    const struct opts *o = c->s->o;
    char keyname[32], rid[64], value[64], path[1024];
    snprintf(keyname, sizeof(keyname), "k%d", key);
    snprintf(rid, sizeof(rid), "c%d-%" PRIu64, c->id, seq);
    snprintf(value, sizeof(value), "%s", rid);
    int64_t expected = c->versions[key];
    /* A rollback to the newest version below EXPECTED whose value this client knows. */
    const struct known *target = NULL;
    for (int i = 0; i < 2; i++) {
        const struct known *k = &c->known[key][i];
        if (target == NULL && k->version >= 1 && k->version < expected) {
            target = k;
        }
    }
    bool rollback = target != NULL && next_rand(&c->rng) % 5 == 0;
    /* Copied: learn() below shifts c->known, where TARGET points. */
    int64_t target_version = target != NULL ? target->version : 0;
    const char *schema = "inherit";
    json_t *req = NULL;
    if (rollback) {
        snprintf(value, sizeof(value), "%s", target->value);
        snprintf(path, sizeof(path), "/v1/projects/%s/configs/%s/rollback", o->project, keyname);
        req = json_pack("{s:I, s:I, s:s}", "target_version", (json_int_t)target_version,
                        "expected_version", (json_int_t)expected, "request_id", rid);
    } else {
        snprintf(path, sizeof(path), "/v1/projects/%s/configs/%s", o->project, keyname);
        req = json_pack("{s:s, s:I, s:s}", "content", value, "expected_version",
                        (json_int_t)expected, "request_id", rid);
        uint64_t r = next_rand(&c->rng) % 4;
        if (o->schema_id != NULL && req != NULL && r < 2) {
            schema = r == 0 ? "bind" : "unbind";
            json_object_set_new(req, "schema_id", r == 0 ? json_string(o->schema_id) : json_null());
        }
    }
    char *json = req != NULL ? json_dumps(req, JSON_COMPACT) : NULL;
    json_decref(req);
    if (json == NULL) {
        c->s->write_failed = true;
        return false;
    }
    int retries = 0;
    int64_t invoke = now_us();
    long status = send_write(c, rollback ? "POST" : "PUT", path, json, &retries);
    int64_t complete = now_us();
    free(json);
    json_t *ans = c->body_len > 0 ? json_loads(c->body, 0, NULL) : NULL;
    int64_t version = -1, revision = -1;
    if (status >= 200 && status < 300) {
        version = answer_int(ans, "version");
        revision = answer_int(ans, "revision");
        if (version > 0) {
            c->versions[key] = version;
            learn(c, key, version, value);
        }
    } else if (status == 409) {
        version = answer_int(ans, "current_version");
        if (version >= 0) {
            c->versions[key] = version;
        }
    }
    json_decref(ans);
    /* After a retry, a 503 or a refused connection is no answer about the first attempt. */
    const char *outcome = outcome_of(status);
    if (retries > 0 && !definitive(status)) {
        outcome = "unknown";
    }
    json_t *line =
        json_pack("{s:i, s:s, s:s, s:s, s:I, s:I, s:I, s:s, s:s, s:i, s:I, s:I, s:s, s:i}",
                  "client", c->id, "op", rollback ? "rollback" : "write", "key", keyname, "value",
                  value, "expected_version", (json_int_t)expected, "version", (json_int_t)version,
                  "revision", (json_int_t)revision, "request_id", rid, "schema",
                  rollback ? "keep" : schema, "retries", retries, "invoke", (json_int_t)invoke,
                  "complete", (json_int_t)complete, "outcome", outcome, "status", (int)status);
    if (line != NULL && rollback) {
        json_object_set_new(line, "target_version", json_integer((json_int_t)target_version));
    }
    record(c, line);
    return (status >= 200 && status < 300) || status == 409;
}

/* Returns whether the read was answered 200 or 404. */
static bool do_read(struct client *c, int key)
{
    const struct opts *o = c->s->o;
    char keyname[32], url[1024];
    snprintf(keyname, sizeof(keyname), "k%d", key);
    const char *node = o->nodes[next_rand(&c->rng) % o->n_nodes];
    snprintf(url, sizeof(url), "%s/v1/projects/%s/configs/%s", node, o->project, keyname);
    int64_t invoke = now_us();
    long status = send_request(c, "GET", url, NULL);
    int64_t complete = now_us();
    json_t *ans = c->body_len > 0 ? json_loads(c->body, 0, NULL) : NULL;
    int64_t version = -1;
    json_t *value = json_null();
    const char *outcome = status == 200 || status == 404 ? "ok" : "fail";
    if (status == 200) {
        version = answer_int(ans, "version");
        json_t *content = json_object_get(ans, "content");
        if (version < 1 || !json_is_string(content)) {
            /* An answer this client cannot have caused: keep it, the checker rejects it. */
            outcome = "ok";
        } else {
            json_decref(value);
            value = json_string(json_string_value(content));
        }
        if (version > 0) {
            c->versions[key] = version;
            learn(c, key, version, json_string_value(value));
        }
    } else if (status == 404) {
        version = 0;
    }
    json_decref(ans);
    record(c, json_pack("{s:i, s:s, s:s, s:o, s:I, s:I, s:I, s:s, s:i}", "client", c->id, "op",
                        "read", "key", keyname, "value", value, "version", (json_int_t)version,
                        "invoke", (json_int_t)invoke, "complete", (json_int_t)complete, "outcome",
                        outcome, "status", (int)status));
    return status == 200 || status == 404;
}

static void *client_main(void *arg)
{
    struct client *c = arg;
    const struct opts *o = c->s->o;
    uint64_t seq = 0;
    while (now_us() < c->s->end_us && !c->s->write_failed) {
        if (o->stop_file != NULL && access(o->stop_file, F_OK) == 0) {
            break;
        }
        int key = (int)(next_rand(&c->rng) % (uint64_t)o->keys);
        bool ok = next_rand(&c->rng) % 2 == 0 ? do_write(c, key, seq++) : do_read(c, key);
        if (!ok) {
            /* Not hammering a node that is down or a cluster without a leader. */
            usleep(50000);
        }
    }
    return NULL;
}

static int usage(const char *msg)
{
    fprintf(stderr,
            "chaos_client: %s\nusage: chaos_client --nodes URL[,URL...] --token T --project P "
            "--history FILE [--clients N] [--keys K] [--duration S] [--seed X] "
            "[--timeout-ms MS] [--stop-file F] [--schema-id UUID] [--retries N]\n",
            msg);
    return 2;
}

/* A whole number in [lo, hi] from TEXT, or -1. */
static long parse_num(const char *text, long lo, long hi)
{
    char *end = NULL;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || v < lo || v > hi) {
        return -1;
    }
    return v;
}

static int parse_args(int argc, char **argv, struct opts *o, char **nodes_copy)
{
    *o = (struct opts){
        .clients = 4, .keys = 5, .duration_s = 60, .seed = 1, .timeout_ms = 2000, .retries = 3};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (i + 1 >= argc) {
            fprintf(stderr, "chaos_client: %s needs a value\n", a);
            return -1;
        }
        const char *v = argv[++i];
        long n = 0;
        if (strcmp(a, "--nodes") == 0) {
            *nodes_copy = strdup(v);
            char *save = NULL;
            for (char *t = strtok_r(*nodes_copy, ",", &save); t != NULL;
                 t = strtok_r(NULL, ",", &save)) {
                if (o->n_nodes == MAX_NODES) {
                    fprintf(stderr, "chaos_client: --nodes: at most %d nodes\n", MAX_NODES);
                    return -1;
                }
                o->nodes[o->n_nodes++] = t;
            }
        } else if (strcmp(a, "--token") == 0) {
            o->token = v;
        } else if (strcmp(a, "--project") == 0) {
            o->project = v;
        } else if (strcmp(a, "--history") == 0) {
            o->history = v;
        } else if (strcmp(a, "--stop-file") == 0) {
            o->stop_file = v;
        } else if (strcmp(a, "--schema-id") == 0) {
            o->schema_id = v;
        } else if (strcmp(a, "--retries") == 0 && (n = parse_num(v, 0, 20)) >= 0) {
            o->retries = (int)n;
        } else if (strcmp(a, "--clients") == 0 && (n = parse_num(v, 1, 64)) > 0) {
            o->clients = (int)n;
        } else if (strcmp(a, "--keys") == 0 && (n = parse_num(v, 1, MAX_KEYS)) > 0) {
            o->keys = (int)n;
        } else if (strcmp(a, "--duration") == 0 && (n = parse_num(v, 1, 86400)) > 0) {
            o->duration_s = (int)n;
        } else if (strcmp(a, "--seed") == 0 && (n = parse_num(v, 0, 2147483647)) >= 0) {
            o->seed = (unsigned long)n;
        } else if (strcmp(a, "--timeout-ms") == 0 && (n = parse_num(v, 50, 600000)) > 0) {
            o->timeout_ms = n;
        } else {
            fprintf(stderr, "chaos_client: bad option or value: %s %s\n", a, v);
            return -1;
        }
    }
    if (o->n_nodes == 0 || o->token == NULL || o->project == NULL || o->history == NULL) {
        fprintf(stderr, "chaos_client: --nodes, --token, --project and --history are required\n");
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct opts o;
    char *nodes_copy = NULL;
    int rc = 2;
    struct client *cl = NULL;
    pthread_t *th = NULL;
    struct shared s = {.o = &o};
    if (parse_args(argc, argv, &o, &nodes_copy) != 0) {
        free(nodes_copy);
        return usage("bad arguments");
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "chaos_client: curl_global_init failed\n");
        goto out_args;
    }
    s.out = fopen(o.history, "a");
    if (s.out == NULL) {
        fprintf(stderr, "chaos_client: cannot open history %s: %s\n", o.history, strerror(errno));
        goto out_curl;
    }
    pthread_mutex_init(&s.out_lock, NULL);
    s.end_us = now_us() + (int64_t)o.duration_s * 1000000;
    cl = calloc((size_t)o.clients, sizeof(*cl));
    th = calloc((size_t)o.clients, sizeof(*th));
    if (cl == NULL || th == NULL) {
        fprintf(stderr, "chaos_client: out of memory\n");
        goto out_file;
    }
    int started = 0;
    for (int i = 0; i < o.clients; i++) {
        cl[i].s = &s;
        cl[i].id = i + 1;
        cl[i].rng = (uint64_t)o.seed * 1000003U + (uint64_t)(unsigned)i * 7919U + 1U;
        cl[i].curl = curl_easy_init();
        if (cl[i].curl == NULL || pthread_create(&th[i], NULL, client_main, &cl[i]) != 0) {
            fprintf(stderr, "chaos_client: cannot start client %d\n", i + 1);
            s.end_us = 0;
            break;
        }
        started++;
    }
    for (int i = 0; i < started; i++) {
        pthread_join(th[i], NULL);
    }
    rc = started == o.clients && !s.write_failed ? 0 : 2;
    if (s.write_failed) {
        fprintf(stderr, "chaos_client: writing the history %s failed\n", o.history);
    }
out_file:
    for (int i = 0; cl != NULL && i < o.clients; i++) {
        if (cl[i].curl != NULL) {
            curl_easy_cleanup(cl[i].curl);
        }
        free(cl[i].body);
    }
    free(cl);
    free(th);
    if (fclose(s.out) != 0) {
        fprintf(stderr, "chaos_client: closing the history %s failed\n", o.history);
        rc = 2;
    }
    pthread_mutex_destroy(&s.out_lock);
out_curl:
    curl_global_cleanup();
out_args:
    free(nodes_copy);
    return rc;
}
