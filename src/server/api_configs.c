/*
 * Configs: compare-and-swap writes through Raft (create, put, delete, rollback): the endpoints
 * and their input. The reads are in api_reads.c; the rest of a write's path is in
 * api_configs_write.c and api_configs_retry.c (the map is in api_configs_internal.h).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonschema/canonjson.h"
#include "server/api_configs_internal.h"
#include "server/node.h"
#include "storage/db.h"
#include "storage/db_configs.h"

/* Releases what W owns; the call frees W itself when it ends (api_call.data_free), whatever
 * path answered it, so no handler frees it by hand. */
static void write_free(void *data)
{
    struct write *w = data;
    free(w->content);
    w->content = NULL;
    json_decref(w->doc);
    w->doc = NULL;
    json_decref(w->first);
    w->first = NULL;
}

/* ---- writes ------------------------------------------------------------------------- */

/* Fills the common part of a write from the call and body. On failure answers and returns
 * NULL. CONTENT_REQUIRED: put and create. */
static struct write *write_new(struct api_call *call, enum codec_op op, const char *key)
{
    struct write *w = calloc(1, sizeof(*w));
    if (w == NULL) {
        api_error(call, 500, "internal", "out of memory");
        return NULL;
    }
    call->data = w;
    call->data_free = write_free;
    snprintf(w->project, sizeof(w->project), "%s", call->params[0]);
    snprintf(w->key, sizeof(w->key), "%s", key);
    if (call->who.kind == PRINCIPAL_APIKEY) {
        snprintf(w->actor, sizeof(w->actor), "apikey:%s", call->who.key_id);
    } else {
        snprintf(w->actor, sizeof(w->actor), "user:%s", call->who.user_id);
    }
    w->e.op = op;
    w->e.project = w->project;
    w->e.project_len = strlen(w->project);
    w->e.key = w->key;
    w->e.key_len = strlen(w->key);
    w->e.actor = w->actor;
    w->e.actor_len = strlen(w->actor);
    w->ok_status = 200;
    return w;
}

/* Reads content (any JSON value), canonicalised. */
static int read_content(struct api_call *call, struct write *w)
{
    json_t *content = json_object_get(call->body, "content");
    if (content == NULL) {
        api_field_error(call, "content", "field \"content\" is required");
        return -1;
    }
    char err[256];
    if (canonjson_dump(content, &w->content, &w->content_len, err, sizeof(err)) != 0) {
        api_field_error(call, "content", "field \"content\": %s", err);
        return -1;
    }
    if (w->content_len > CODEC_MAX_CONTENT) {
        /* The body fit http.max_body_bytes, but not a raft entry: 413, like a body over the
         * cap, since only a smaller content can succeed. */
        http_respond_error_ex(call->req, 413, NULL, json_pack("{s:s}", "field", "content"),
                              "payload_too_large",
                              "field \"content\" is %zu bytes as canonical JSON, above the limit "
                              "of %zu bytes a config may hold",
                              w->content_len, (size_t)CODEC_MAX_CONTENT);
        api_reply_done(call);
        return -1;
    }
    w->doc = json_incref(content);
    w->e.content = (const uint8_t *)w->content;
    w->e.content_len = w->content_len;
    return 0;
}

/* Reads request_id (optional; defaults to the HTTP request id) and schema_id. */
static int read_common(struct api_call *call, struct write *w)
{
    json_t *rid = json_object_get(call->body, "request_id");
    const char *id = http_request_id(call->req);
    if (rid != NULL) {
        if (!json_is_string(rid) || json_string_length(rid) < 1 ||
            json_string_length(rid) > CODEC_MAX_REQUEST_ID ||
            !codec_request_id_ok(json_string_value(rid), json_string_length(rid))) {
            api_field_error(call, "request_id",
                            "field \"request_id\" must be a string of 1 to %d characters",
                            CODEC_MAX_REQUEST_ID);
            return -1;
        }
        id = json_string_value(rid);
    }
    snprintf(w->request_id, sizeof(w->request_id), "%s", id);
    w->e.request_id = w->request_id;
    w->e.request_id_len = strlen(w->request_id);
    json_t *schema = json_object_get(call->body, "schema_id");
    if (schema != NULL) {
        w->schema_given = true;
        if (!json_is_null(schema) &&
            (!json_is_string(schema) || !api_input_is_uuid(json_string_value(schema)))) {
            api_field_error(call, "schema_id",
                            "field \"schema_id\" must be a schema's UUID, or null to unbind");
            return -1;
        }
        if (json_is_string(schema)) {
            snprintf(w->schema_text, sizeof(w->schema_text), "%s", json_string_value(schema));
        }
    }
    return 0;
}

static int read_version(struct api_call *call, const char *name, json_t *v, uint64_t min,
                        uint64_t *out)
{
    if (!json_is_integer(v) || json_integer_value(v) < (json_int_t)min) {
        api_field_error(call, name, "field \"%s\" must be a whole number >= %" PRIu64, name, min);
        return -1;
    }
    *out = (uint64_t)json_integer_value(v);
    return 0;
}

/*
 * The conditional request headers of a write (RFC 9110 13.1), as a compare-and-swap:
 * `If-Match: "N"` (the ETag a read answered) expects version N, and `If-None-Match: *`
 * (CREATE_ONLY allowed: PUT) expects no current version (0). Sets *GIVEN and *EXPECTED; with
 * neither header *GIVEN is false. Answers 400 and returns -1 for anything else: both headers,
 * a list, a weak tag, `If-Match: *` (it cannot name a version to compare with), or an
 * If-None-Match other than `*`.
 */
static int read_precondition(struct api_call *call, bool create_only, bool *given,
                             uint64_t *expected)
{
    const char *im = http_request_header(call->req, "If-Match");
    const char *inm = http_request_header(call->req, "If-None-Match");
    *given = false;
    if (im != NULL && inm != NULL) {
        api_field_error(call, "If-Match", "send If-Match or If-None-Match, not both");
        return -1;
    }
    if (inm != NULL) {
        if (!create_only || strcmp(inm, "*") != 0) {
            api_field_error(call, "If-None-Match",
                            create_only ? "If-None-Match supports only * (create the key only if "
                                          "it has no current version)"
                                        : "If-None-Match is not supported here; use If-Match "
                                          "with the config's ETag");
            return -1;
        }
        *given = true;
        *expected = 0;
        return 0;
    }
    if (im == NULL) {
        return 0;
    }
    size_t n = strlen(im);
    char *end = NULL;
    unsigned long long v = 0;
    if (n >= 3 && im[0] == '"' && im[n - 1] == '"' && im[1] >= '0' && im[1] <= '9') {
        v = strtoull(im + 1, &end, 10);
    }
    if (end != im + n - 1 || v < 1 || v > INT64_MAX) {
        api_field_error(call, "If-Match",
                        "If-Match must be one ETag of this config, \"N\" with N >= 1 (the ETag "
                        "a read answered), not %.64s",
                        im);
        return -1;
    }
    *given = true;
    *expected = v;
    return 0;
}

/* Settles W's expected version from the precondition (GIVEN, EXPECTED) and the request's own
 * field (HAVE_FIELD, FIELD_VALUE, named NAME): either alone, or both equal. */
static int settle_expected(struct api_call *call, struct write *w, bool given, uint64_t expected,
                           bool have_field, uint64_t field_value, const char *name)
{
    if (given && have_field && field_value != expected) {
        api_field_error(call, name,
                        "%s %" PRIu64 " differs from the version the precondition header names "
                        "(%" PRIu64 "); send one of them",
                        name, field_value, expected);
        return -1;
    }
    w->precondition = given;
    w->e.expected_version = given ? expected : field_value;
    return 0;
}

void api_configs_config_create(struct api_call *call)
{
    api_phases_handler(call);
    static const char *const known[] = {"key", "content", "schema_id", "request_id", NULL};
    const char *key;
    if (!api_lead_or_forward(call) || api_input_body_object(call) != 0 ||
        api_input_fields_known(call, known) != 0 ||
        api_input_field_string(call, "key", true, 1, CODEC_MAX_KEY, &key) != 0) {
        return;
    }
    if (!codec_key_ok(key, strlen(key))) {
        api_field_error(call, "key",
                        "field \"key\" must be 1 to 256 of A-Z, a-z, 0-9, . _ : - and not start "
                        "with . : -");
        return;
    }
    if (!api_key_reaches(call, key)) {
        api_key_beyond_reach(call, key);
        return;
    }
    struct write *w = write_new(call, CODEC_OP_PUT, key);
    if (w == NULL || read_content(call, w) != 0 || read_common(call, w) != 0) {
        return;
    }
    w->e.expected_version = 0;
    w->ok_status = 201;
    api_configs_check_and_go(call);
}

void api_configs_config_put(struct api_call *call)
{
    api_phases_handler(call);
    static const char *const known[] = {"content", "expected_version", "schema_id", "request_id",
                                        NULL};
    if (!api_lead_or_forward(call) || api_input_body_object(call) != 0 ||
        api_input_fields_known(call, known) != 0) {
        return;
    }
    struct write *w = write_new(call, CODEC_OP_PUT, call->params[1]);
    json_t *ev = json_object_get(call->body, "expected_version");
    bool given = false;
    uint64_t pre = 0, field = 0;
    if (w == NULL || read_precondition(call, true, &given, &pre) != 0) {
        return;
    }
    if (ev == NULL && !given) {
        api_field_error(call, "expected_version",
                        "field \"expected_version\" is required (0 creates the key), or the "
                        "header If-Match: \"N\" (If-None-Match: * creates)");
        return;
    }
    if ((ev != NULL && read_version(call, "expected_version", ev, 0, &field) != 0) ||
        settle_expected(call, w, given, pre, ev != NULL, field, "expected_version") != 0 ||
        read_content(call, w) != 0 || read_common(call, w) != 0) {
        return;
    }
    if (w->e.expected_version == 0) {
        w->ok_status = 201;
    }
    api_configs_check_and_go(call);
}

void api_configs_config_delete(struct api_call *call)
{
    api_phases_handler(call);
    char buf[32];
    uint64_t expected = 0;
    if (!api_lead_or_forward(call)) {
        return;
    }
    bool given = false;
    uint64_t pre = 0;
    if (read_precondition(call, false, &given, &pre) != 0) {
        return;
    }
    int q = api_input_query(call, "expected_version", buf, sizeof(buf));
    char *end = NULL;
    if ((q <= 0 && !given) ||
        (q > 0 && ((expected = strtoull(buf, &end, 10)) < 1 || *end != '\0' || buf[0] == '-'))) {
        api_field_error(call, "expected_version",
                        "query parameter expected_version (>= 1) is required: "
                        "DELETE ...?expected_version=N, or the header If-Match: \"N\"");
        return;
    }
    struct write *w = write_new(call, CODEC_OP_DELETE, call->params[1]);
    if (w == NULL ||
        settle_expected(call, w, given, pre, q > 0, expected, "expected_version") != 0) {
        return;
    }
    char rid[CODEC_MAX_REQUEST_ID + 1];
    int r = api_input_query(call, "request_id", rid, sizeof(rid));
    snprintf(w->request_id, sizeof(w->request_id), "%s",
             r > 0 && rid[0] != '\0' ? rid : http_request_id(call->req));
    w->e.request_id = w->request_id;
    w->e.request_id_len = strlen(w->request_id);
    api_configs_check_and_go(call);
}

/* ---- rollback ------------------------------------------------------------------------ */

/* Rollback: load the target version's content from PostgreSQL, then continue as a write. */
static int rollback_load(PGconn *conn, struct api_call *call, char *errmsg, size_t errlen)
{
    struct write *w = call->data;
    json_t *row = NULL;
    int rc =
        db_configs_at_version(conn, w->project, w->key, w->e.source_version, &row, errmsg, errlen);
    if (rc == DB_NOT_FOUND) {
        snprintf(errmsg, errlen, "config %s has no version %" PRIu64 " to roll back to", w->key,
                 w->e.source_version);
        return rc;
    }
    if (rc != DB_OK) {
        return rc;
    }
    json_t *content = json_object_get(row, "content");
    if (content == NULL || json_is_null(content) ||
        (json_string_value(json_object_get(row, "op")) != NULL &&
         strcmp(json_string_value(json_object_get(row, "op")), "delete") == 0)) {
        json_decref(row);
        call->err_field = "target_version";
        snprintf(errmsg, errlen,
                 "field \"target_version\": version %" PRIu64
                 " of %s is a delete; pick a version with "
                 "content",
                 w->e.source_version, w->key);
        return DB_INVALID;
    }
    char err[256];
    if (canonjson_dump(content, &w->content, &w->content_len, err, sizeof(err)) != 0) {
        json_decref(row);
        snprintf(errmsg, errlen, "version %" PRIu64 ": %s", w->e.source_version, err);
        return DB_ERROR;
    }
    w->doc = json_incref(content);
    w->e.content = (const uint8_t *)w->content;
    w->e.content_len = w->content_len;
    json_decref(row);
    return DB_OK;
}

/* The target version may be committed but still queued for PostgreSQL: a client that read
 * version N+1 may roll back to N before the materializer wrote N (the chaos checker saw such
 * a rollback answered 404). A queued revision leaves the queue only once PostgreSQL holds it
 * durably, so this leader finds the target either here or in PostgreSQL. Runs on the loop
 * thread. Returns 1 when the content was taken from the queue, 0 when it is not queued (load
 * it from PostgreSQL), -1 after answering (a delete, or out of memory). */
static int rollback_from_queue(struct api_call *call, struct write *w)
{
    struct fsm *fsm = call->node->fsm;
    size_t n = fsm_pending_count(fsm);
    if (n == 0) {
        return 0;
    }
    const struct revision **queue = calloc(n, sizeof(*queue));
    if (queue == NULL) {
        api_error(call, 500, "internal", "out of memory reading the queue of %zu revisions", n);
        return -1;
    }
    n = fsm_pending_from(fsm, 0, queue, n);
    const struct revision *r = NULL;
    for (size_t i = 0; i < n && r == NULL; i++) {
        if (queue[i]->version == w->e.source_version && strcmp(queue[i]->key, w->key) == 0 &&
            strcmp(queue[i]->project, w->project) == 0) {
            r = queue[i];
        }
    }
    free(queue);
    if (r == NULL) {
        return 0;
    }
    if (r->op == REVISION_DELETE || r->content == NULL) {
        api_field_error(call, "target_version",
                        "field \"target_version\": version %" PRIu64
                        " of %s is a delete; pick a version with content",
                        w->e.source_version, w->key);
        return -1;
    }
    json_error_t jerr;
    w->content = malloc(r->content_len + 1);
    w->doc = w->content != NULL
                 ? json_loadb((const char *)r->content, r->content_len, JSON_DECODE_ANY, &jerr)
                 : NULL;
    if (w->doc == NULL) {
        api_error(call, 500, "internal", "cannot read the queued version %" PRIu64 " of %s",
                  w->e.source_version, w->key);
        return -1;
    }
    memcpy(w->content, r->content, r->content_len);
    w->content[r->content_len] = '\0';
    w->content_len = r->content_len;
    w->e.content = (const uint8_t *)w->content;
    w->e.content_len = w->content_len;
    return 1;
}

static void rollback_loaded(int status, const char *errmsg, void *arg)
{
    struct api_call *call = arg;
    if (status != DB_OK) {
        api_finish(call, status, errmsg);
        return;
    }
    if (!rnode_ready(call->node->raft)) {
        http_respond_error_ex(call->req, 503, api_configs_retry_after, NULL, "unavailable",
                              "leadership changed; retry");
        api_reply_done(call);
        return;
    }
    api_configs_check_and_go(call);
}

void api_configs_config_rollback(struct api_call *call)
{
    api_phases_handler(call);
    static const char *const known[] = {"target_version", "expected_version", "request_id", NULL};
    if (!api_lead_or_forward(call) || api_input_body_object(call) != 0 ||
        api_input_fields_known(call, known) != 0) {
        return;
    }
    struct write *w = write_new(call, CODEC_OP_ROLLBACK, call->params[1]);
    if (w == NULL) {
        return;
    }
    json_t *tv = json_object_get(call->body, "target_version");
    json_t *ev = json_object_get(call->body, "expected_version");
    bool given = false;
    uint64_t pre = 0, field = 0;
    if (read_precondition(call, false, &given, &pre) != 0) {
        return;
    }
    if (tv == NULL || (ev == NULL && !given)) {
        api_field_error(call, tv == NULL ? "target_version" : "expected_version",
                        "fields \"target_version\" and \"expected_version\" are required (or "
                        "If-Match: \"N\" instead of expected_version)");
        return;
    }
    if (read_version(call, "target_version", tv, 1, &w->e.source_version) != 0 ||
        (ev != NULL && read_version(call, "expected_version", ev, 1, &field) != 0) ||
        settle_expected(call, w, given, pre, ev != NULL, field, "expected_version") != 0 ||
        read_common(call, w) != 0) {
        return;
    }
    if (w->e.source_version >= w->e.expected_version) {
        api_field_error(call, "target_version",
                        "field \"target_version\" must be below the current version");
        return;
    }
    int queued = rollback_from_queue(call, w);
    if (queued < 0) {
        return;
    }
    if (queued > 0) {
        rollback_loaded(DB_OK, NULL, call);
        return;
    }
    api_submit(call, rollback_load, rollback_loaded);
}
