/* Requests to conclave and etcd, and reading their answers (see lg_proto.h). */
#include "lg_proto.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

size_t lg_value(char *out, size_t cap, size_t size, int key, uint64_t seq)
{
    if (size < 160 || cap < size + 1) {
        return 0;
    }
    /* A plausible service config; "pad" fills it to SIZE bytes so every system stores the
     * same number of bytes. */
    int n = snprintf(out, cap,
                     "{\"service\":\"svc-%04d\",\"owner\":\"team-platform\",\"replicas\":%d,"
                     "\"timeout_ms\":2500,\"endpoints\":[\"10.0.0.1:8080\",\"10.0.0.2:8080\"],"
                     "\"flags\":{\"canary\":%s,\"tracing\":true},\"seq\":%" PRIu64 ",\"pad\":\"",
                     key, 1 + (int)(seq % 7), seq % 2 ? "true" : "false", seq);
    if (n < 0 || (size_t)n + 2 > size) {
        return 0;
    }
    size_t len = (size_t)n;
    while (len < size - 2) {
        out[len++] = 'x';
    }
    out[len++] = '"';
    out[len++] = '}';
    out[len] = '\0';
    return len;
}

void lg_key(char *out, size_t cap, int key)
{
    snprintf(out, cap, "k%04d", key);
}

int lg_base64(struct lg_buf *b, const unsigned char *data, size_t len)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)data[i] << 16;
        size_t left = len - i;
        if (left > 1) {
            v |= (uint32_t)data[i + 1] << 8;
        }
        if (left > 2) {
            v |= data[i + 2];
        }
        char q[4] = {tab[(v >> 18) & 63], tab[(v >> 12) & 63], left > 1 ? tab[(v >> 6) & 63] : '=',
                     left > 2 ? tab[v & 63] : '='};
        if (lg_buf_add(b, q, 4) != 0) {
            return -1;
        }
    }
    return 0;
}

/* Appends a request with a JSON body to B (reset first). */
static int request(struct lg_buf *b, const char *method, const char *host, const char *path,
                   const char *token, const char *body, size_t body_len)
{
    lg_buf_reset(b);
    if (lg_buf_printf(b, "%s %s HTTP/1.1\r\nHost: %s\r\n", method, path, host) != 0) {
        return -1;
    }
    if (token && lg_buf_printf(b, "Authorization: Bearer %s\r\n", token) != 0) {
        return -1;
    }
    if (body) {
        if (lg_buf_printf(b, "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
                          body_len) != 0 ||
            lg_buf_add(b, body, body_len) != 0) {
            return -1;
        }
        return 0;
    }
    return lg_buf_add(b, "\r\n", 2);
}

int lg_conclave_write(struct lg_buf *b, const char *host, const char *token, const char *project,
                      const char *key, const char *value, uint64_t expected_version)
{
    char path[512];
    char body[4096];
    snprintf(path, sizeof path, "/v1/projects/%s/configs/%s", project, key);
    /* VALUE is JSON already, so it is embedded as the content object. */
    int n = snprintf(body, sizeof body, "{\"content\":%s,\"expected_version\":%" PRIu64 "}", value,
                     expected_version);
    if (n < 0 || (size_t)n >= sizeof body) {
        return -1;
    }
    return request(b, "PUT", host, path, token, body, (size_t)n);
}

int lg_conclave_read(struct lg_buf *b, const char *host, const char *token, const char *project,
                     const char *key, int stale)
{
    char path[512];
    snprintf(path, sizeof path, "/v1/projects/%s/configs/%s%s", project, key,
             stale ? "?consistency=stale" : "");
    return request(b, "GET", host, path, token, NULL, 0);
}

/* Appends the base64 of etcd key "bench/KEY" to B. */
static int etcd_key(struct lg_buf *b, const char *key)
{
    char full[300];
    int n = snprintf(full, sizeof full, "bench/%s", key);
    if (n < 0 || (size_t)n >= sizeof full) {
        return -1;
    }
    return lg_base64(b, (const unsigned char *)full, (size_t)n);
}

int lg_etcd_write(struct lg_buf *b, const char *host, const char *key, const char *value,
                  uint64_t expected_version)
{
    /* A transaction comparing the key's version (the number of puts since its creation; 0
     * when absent): put on a match, else read the key to learn its version. */
    struct lg_buf body, k;
    lg_buf_init(&body);
    lg_buf_init(&k);
    int rc = -1;
    if (etcd_key(&k, key) != 0 ||
        lg_buf_printf(&body,
                      "{\"compare\":[{\"key\":\"%s\",\"target\":\"VERSION\",\"result\":\"EQUAL\","
                      "\"version\":\"%" PRIu64 "\"}],\"success\":[{\"request_put\":{\"key\":\"%s\","
                      "\"value\":\"",
                      k.p, expected_version, k.p) != 0 ||
        lg_base64(&body, (const unsigned char *)value, strlen(value)) != 0 ||
        lg_buf_printf(&body, "\"}}],\"failure\":[{\"request_range\":{\"key\":\"%s\"}}]}", k.p) !=
            0) {
        goto out;
    }
    rc = request(b, "POST", host, "/v3/kv/txn", NULL, body.p, body.len);
out:
    lg_buf_free(&body);
    lg_buf_free(&k);
    return rc;
}

int lg_etcd_read(struct lg_buf *b, const char *host, const char *key, int stale)
{
    struct lg_buf body, k;
    lg_buf_init(&body);
    lg_buf_init(&k);
    int rc = -1;
    if (etcd_key(&k, key) != 0 || lg_buf_printf(&body, "{\"key\":\"%s\"%s}", k.p,
                                                stale ? ",\"serializable\":true" : "") != 0) {
        goto out;
    }
    rc = request(b, "POST", host, "/v3/kv/range", NULL, body.p, body.len);
out:
    lg_buf_free(&body);
    lg_buf_free(&k);
    return rc;
}

int lg_etcd_put(struct lg_buf *b, const char *host, const char *key, const char *value)
{
    struct lg_buf body, k;
    lg_buf_init(&body);
    lg_buf_init(&k);
    int rc = -1;
    if (etcd_key(&k, key) != 0 || lg_buf_printf(&body, "{\"key\":\"%s\",\"value\":\"", k.p) != 0 ||
        lg_base64(&body, (const unsigned char *)value, strlen(value)) != 0 ||
        lg_buf_add(&body, "\"}", 2) != 0) {
        goto out;
    }
    rc = request(b, "POST", host, "/v3/kv/put", NULL, body.p, body.len);
out:
    lg_buf_free(&body);
    lg_buf_free(&k);
    return rc;
}

/* Parses BODY as a JSON object, or says why not in WHY. */
static json_t *parse_object(const char *body, size_t len, char *why, size_t cap)
{
    json_error_t err;
    json_t *doc = json_loadb(body, len, 0, &err);
    if (!doc || !json_is_object(doc)) {
        snprintf(why, cap, "answer is not a JSON object: %s", doc ? "other JSON" : err.text);
        json_decref(doc);
        return NULL;
    }
    return doc;
}

/* A positive JSON integer, or an etcd int64 string; -1 when absent or malformed. */
static int get_u64(json_t *obj, const char *name, uint64_t *out)
{
    json_t *v = json_object_get(obj, name);
    if (json_is_integer(v) && json_integer_value(v) >= 0) {
        *out = (uint64_t)json_integer_value(v);
        return 0;
    }
    if (json_is_string(v)) {
        char *end;
        const char *s = json_string_value(v);
        unsigned long long n = strtoull(s, &end, 10);
        if (end != s && *end == '\0') {
            *out = n;
            return 0;
        }
    }
    return -1;
}

/* The start of BODY as a reason, for errors the answer explains itself. */
static void why_status(char *why, size_t cap, int status, const char *body, size_t len)
{
    snprintf(why, cap, "HTTP %d: %.*s", status, (int)(len > 100 ? 100 : len), body ? body : "");
}

enum lg_outcome lg_conclave_write_result(int status, const char *body, size_t len,
                                         uint64_t *version, char *why, size_t cap)
{
    if (status != 200 && status != 201 && status != 409) {
        why_status(why, cap, status, body, len);
        return LG_ERROR;
    }
    json_t *doc = parse_object(body, len, why, cap);
    if (!doc) {
        return LG_ERROR;
    }
    const char *field = status == 409 ? "current_version" : "version";
    enum lg_outcome out = status == 409 ? LG_CONFLICT : LG_OK;
    if (get_u64(doc, field, version) != 0) {
        snprintf(why, cap, "HTTP %d answer without %s", status, field);
        out = LG_ERROR;
    }
    json_decref(doc);
    return out;
}

/* The version of the first key in an etcd range response object (0 when there is none). */
static int etcd_range_version(json_t *range, uint64_t *version)
{
    json_t *kvs = json_object_get(range, "kvs");
    if (!kvs || json_array_size(kvs) == 0) {
        *version = 0;
        return 0;
    }
    return get_u64(json_array_get(kvs, 0), "version", version);
}

enum lg_outcome lg_etcd_write_result(int status, const char *body, size_t len,
                                     uint64_t expected_version, uint64_t *version, char *why,
                                     size_t cap)
{
    if (status != 200) {
        why_status(why, cap, status, body, len);
        return LG_ERROR;
    }
    json_t *doc = parse_object(body, len, why, cap);
    if (!doc) {
        return LG_ERROR;
    }
    enum lg_outcome out = LG_ERROR;
    /* The gateway leaves false booleans out. */
    if (json_is_true(json_object_get(doc, "succeeded"))) {
        *version = expected_version + 1;
        out = LG_OK;
        goto done;
    }
    json_t *first = json_array_get(json_object_get(doc, "responses"), 0);
    json_t *range = json_object_get(first, "response_range");
    if (!range) {
        snprintf(why, cap, "failed txn answer without response_range");
        goto done;
    }
    if (etcd_range_version(range, version) != 0) {
        snprintf(why, cap, "failed txn answer with a malformed version");
        goto done;
    }
    out = LG_CONFLICT;
done:
    json_decref(doc);
    return out;
}

enum lg_outcome lg_conclave_read_result(int status, const char *body, size_t len, uint64_t *version,
                                        char *why, size_t cap)
{
    if (status != 200) {
        why_status(why, cap, status, body, len);
        return LG_ERROR;
    }
    json_t *doc = parse_object(body, len, why, cap);
    if (!doc) {
        return LG_ERROR;
    }
    enum lg_outcome out = LG_OK;
    if (get_u64(doc, "version", version) != 0 || !json_is_object(json_object_get(doc, "content"))) {
        snprintf(why, cap, "read answer without version or content");
        out = LG_ERROR;
    }
    json_decref(doc);
    return out;
}

enum lg_outcome lg_etcd_read_result(int status, const char *body, size_t len, uint64_t *version,
                                    char *why, size_t cap)
{
    if (status != 200) {
        why_status(why, cap, status, body, len);
        return LG_ERROR;
    }
    json_t *doc = parse_object(body, len, why, cap);
    if (!doc) {
        return LG_ERROR;
    }
    enum lg_outcome out = LG_OK;
    if (etcd_range_version(doc, version) != 0) {
        snprintf(why, cap, "range answer with a malformed version");
        out = LG_ERROR;
    }
    json_decref(doc);
    return out;
}

int lg_etcd_watch(struct lg_buf *b, const char *host, const char *key, uint64_t start_rev)
{
    struct lg_buf body, k;
    lg_buf_init(&body);
    lg_buf_init(&k);
    int rc = -1;
    if (etcd_key(&k, key) != 0 ||
        lg_buf_printf(&body, "{\"create_request\":{\"key\":\"%s\"", k.p) != 0 ||
        (start_rev > 0 &&
         lg_buf_printf(&body, ",\"start_revision\":\"%" PRIu64 "\"", start_rev) != 0) ||
        lg_buf_add(&body, "}}", 2) != 0) {
        goto out;
    }
    rc = request(b, "POST", host, "/v3/watch", NULL, body.p, body.len);
out:
    lg_buf_free(&body);
    lg_buf_free(&k);
    return rc;
}

enum lg_outcome lg_etcd_put_result(int status, const char *body, size_t len, uint64_t *revision,
                                   char *why, size_t cap)
{
    if (status != 200) {
        why_status(why, cap, status, body, len);
        return LG_ERROR;
    }
    json_t *doc = parse_object(body, len, why, cap);
    if (!doc) {
        return LG_ERROR;
    }
    enum lg_outcome out = LG_OK;
    if (get_u64(json_object_get(doc, "header"), "revision", revision) != 0 || *revision == 0) {
        snprintf(why, cap, "put answer without header.revision");
        out = LG_ERROR;
    }
    json_decref(doc);
    return out;
}

int lg_json_next_object(const char *p, size_t len, size_t *start, size_t *end)
{
    size_t i = 0;
    while (i < len && (p[i] == ' ' || p[i] == '\n' || p[i] == '\r' || p[i] == '\t')) {
        i++;
    }
    if (i == len) {
        return 0;
    }
    if (p[i] != '{') {
        return -1;
    }
    *start = i;
    /* OPEN holds the closer each open object or array expects (deeper nesting than an etcd
     * message has is refused); inside a string only '"' and '\' matter. */
    char open[64];
    int depth = 0;
    int in_string = 0;
    for (; i < len; i++) {
        char c = p[i];
        if (in_string) {
            if (c == '\\') {
                i++; /* the escaped byte, whatever it is, cannot end the string */
            } else if (c == '"') {
                in_string = 0;
            }
            continue;
        }
        if (c == '"') {
            in_string = 1;
        } else if (c == '{' || c == '[') {
            if (depth == (int)sizeof open) {
                return -1;
            }
            open[depth++] = c == '{' ? '}' : ']';
        } else if (c == '}' || c == ']') {
            if (depth == 0 || open[--depth] != c) {
                return -1;
            }
            if (depth == 0) {
                *end = i + 1;
                return 1;
            }
        }
    }
    return 0;
}

enum lg_outcome lg_etcd_watch_message(const char *msg, size_t len, int *created, uint64_t *revs,
                                      size_t nrevs_cap, size_t *nrevs, char *why, size_t cap)
{
    *created = 0;
    *nrevs = 0;
    json_t *doc = parse_object(msg, len, why, cap);
    if (!doc) {
        return LG_ERROR;
    }
    enum lg_outcome out = LG_ERROR;
    json_t *result = json_object_get(doc, "result");
    if (!json_is_object(result)) {
        json_t *e = json_object_get(doc, "error");
        const char *m = json_string_value(json_object_get(e, "message"));
        snprintf(why, cap, "watch message without result: %.200s",
                 m ? m : (e ? "error without message" : "neither result nor error"));
        goto done;
    }
    /* The gateway leaves false booleans and empty arrays out. */
    if (json_is_true(json_object_get(result, "canceled"))) {
        const char *r = json_string_value(json_object_get(result, "cancel_reason"));
        snprintf(why, cap, "watch canceled: %.200s", r ? r : "no reason given");
        goto done;
    }
    *created = json_is_true(json_object_get(result, "created"));
    json_t *events = json_object_get(result, "events");
    if (events && !json_is_array(events)) {
        snprintf(why, cap, "watch message whose events are not an array");
        goto done;
    }
    size_t i;
    json_t *ev;
    json_array_foreach(events, i, ev)
    {
        if (*nrevs == nrevs_cap) {
            snprintf(why, cap, "watch message with more than %zu events", nrevs_cap);
            goto done;
        }
        uint64_t rev = 0;
        if (get_u64(json_object_get(ev, "kv"), "mod_revision", &rev) != 0 || rev == 0) {
            snprintf(why, cap, "watch event without kv.mod_revision");
            goto done;
        }
        revs[(*nrevs)++] = rev;
    }
    out = LG_OK;
done:
    if (out != LG_OK) {
        *nrevs = 0;
        *created = 0;
    }
    json_decref(doc);
    return out;
}
