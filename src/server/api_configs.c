/*
 * Configs: compare-and-swap writes through Raft (create, put, delete, rollback). The reads are
 * in api_reads.c.
 *
 * A write request is a small state machine (struct write):
 *
 *   validate ──► request id seen? ──► early version check ──► schema (PostgreSQL job) ──►
 *   propose (raft) ──► applied: outcome ──► materializer: in PostgreSQL ──► 200
 *
 * Every write carries a request id (the client's, or the HTTP request id), so that a client
 * told "outcome unknown" can retry and learn the first outcome instead of writing twice. The
 * entry also carries the fingerprint of what the client asked (fsm_request_fingerprint():
 * op, key, versions, content as sent, schema as given, actor), computed before the leader
 * resolves a schema or loads a rollback's content, so a retry fingerprints identically. A
 * retry is recognised by the state machine's table of recent ids and, once that forgot the
 * id, by the revision the first attempt wrote in PostgreSQL (db_configs_request()).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>

#include <sodium.h>

#include "server/api_internal.h"
#include "jsonschema/canonjson.h"
#include "raft/codec.h"
#include "storage/db.h"
#include "storage/db_configs.h"
#include "storage/db_schemas.h"
#include "jsonschema/jsonschema.h"
#include "server/materializer.h"
#include "server/node.h"

/* How long a write waits for PostgreSQL after Raft committed it, before answering 504. */
#define WRITE_MATERIALIZE_TIMEOUT_MS 10000

static const struct http_header retry1[] = {{"Retry-After", "1"}, {NULL, NULL}};

struct write {
    struct codec_entry e;
    char project[260];
    char key[260];
    char actor[128];
    char request_id[CODEC_MAX_REQUEST_ID + 1];
    char *content; /* canonical JSON, owned */
    size_t content_len;
    json_t *doc;           /* the parsed content, for schema validation; owned */
    bool schema_given;     /* the body named a schema_id (or null to unbind) */
    char schema_text[40];  /* the schema's UUID text, "" for none */
    char asked_schema[40]; /* the schema_id the body gave ("" when absent or null) */
    uint8_t fp[32];        /* fingerprint of what the client asked; also in e.fingerprint */
    json_t *first;         /* the revision PostgreSQL holds for the request id, or NULL */
    uint64_t index;        /* raft index of the applied entry */
    int ok_status;         /* 201 for create, 200 otherwise */
    struct fsm_result res; /* outcome, for the answer after materialization */
};

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

static int64_t wall_us(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000000 + tv.tv_usec;
}

static bool parse_uuid(const char *text, uint8_t out[16])
{
    char hex[33];
    size_t n = 0;
    for (const char *c = text; *c && n < 32; c++) {
        if (*c != '-') {
            hex[n++] = *c;
        }
    }
    hex[n] = '\0';
    size_t len = 0;
    return api_input_is_uuid(text) && sodium_hex2bin(out, 16, hex, n, NULL, &len, NULL) == 0 &&
           len == 16;
}

/* ---- answers ------------------------------------------------------------------------ */

static json_t *write_body(struct api_call *call, struct write *w, uint64_t version,
                          uint64_t revision, uint64_t index)
{
    (void)call;
    return json_pack("{s:s,s:s,s:I,s:I,s:I,s:s}", "project", w->project, "key", w->key, "version",
                     (json_int_t)version, "revision", (json_int_t)revision, "raft_index",
                     (json_int_t)index, "request_id", w->request_id);
}

static void answer_conflict(struct api_call *call, struct write *w, uint64_t current)
{
    http_respond_error_ex(
        call->req, 409, NULL,
        json_pack("{s:I,s:s}", "current_version", (json_int_t)current, "request_id", w->request_id),
        "conflict",
        "config %s is at version %" PRIu64 ", not %" PRIu64
        "; read it again and retry with expected_version %" PRIu64,
        w->key, current, w->e.expected_version, current);
    api_reply_done(call);
}

static void answer_not_found(struct api_call *call, struct write *w)
{
    api_error(call, 404, "not_found", "config %s does not exist in project %s", w->key, w->project);
}

static void answer_unknown(struct api_call *call, struct write *w, const char *why)
{
    http_respond_error_ex(
        call->req, 504, NULL, json_pack("{s:s}", "request_id", w->request_id), "outcome_unknown",
        "%s; retry with the same request_id (%s) to learn the outcome", why, w->request_id);
    api_reply_done(call);
}

static void materialized(void *data, int status)
{
    struct api_call *call = data;
    struct write *w = call->data;
    if (status != 0) {
        answer_unknown(call, w,
                       status == MATD_ETIMEDOUT
                           ? "the change is committed in raft but not yet in postgresql"
                           : "leadership changed before the change reached postgresql");
        return;
    }
    json_t *body = write_body(call, w, w->res.version, w->res.revision, w->index);
    int status_code = w->ok_status;
    api_reply(call, status_code, body);
}

/* Answers from an outcome recorded for the request id (a retry). MISMATCH: the id was
 * recorded for a different write, which is the client's mistake, not a retry. */
static void answer_first(struct api_call *call, struct write *w, bool mismatch,
                         enum fsm_status first, uint64_t version, uint64_t revision, uint64_t index)
{
    if (mismatch) {
        api_field_error(call, "request_id",
                        "request_id %s was already used for a different write; use a new "
                        "request_id for a new write",
                        w->request_id);
    } else if (first == FSM_CONFLICT) {
        answer_conflict(call, w, version);
    } else if (first == FSM_NOT_FOUND) {
        answer_not_found(call, w);
    } else {
        w->res.version = version;
        w->res.revision = revision;
        w->index = index;
        if (materializer_wait(call->node->matd, index, WRITE_MATERIALIZE_TIMEOUT_MS, materialized,
                              call) != 0) {
            answer_unknown(call, w, "the node is stopping");
        }
    }
}

/* ---- proposing ---------------------------------------------------------------------- */

static void applied(void *data, int status, const struct fsm_result *res, uint64_t index)
{
    struct api_call *call = data;
    struct write *w = call->data;
    if (status == RNODE_ENOTLEADER || status == RNODE_ESHUTDOWN) {
        http_respond_error_ex(call->req, 503, retry1, NULL, "unavailable",
                              "this node lost leadership before the write was appended; retry");
        api_reply_done(call);
        return;
    }
    if (status != 0) {
        answer_unknown(call, w, "leadership was lost after the write was appended");
        return;
    }
    w->res = *res;
    w->index = index;
    switch (res->status) {
    case FSM_OK:
        materializer_kick(call->node->matd);
        if (materializer_wait(call->node->matd, index, WRITE_MATERIALIZE_TIMEOUT_MS, materialized,
                              call) != 0) {
            answer_unknown(call, w, "the node is stopping");
        }
        return;
    case FSM_CONFLICT:
        answer_conflict(call, w, res->version);
        return;
    case FSM_NOT_FOUND:
        answer_not_found(call, w);
        return;
    case FSM_DUPLICATE:
        answer_first(call, w, res->mismatch, res->first_status, res->version, res->revision,
                     res->first_index);
        return;
    case FSM_STOPPED:
        /* Committed, but this leader could not apply it and is stopping: the other nodes
         * apply it, so only a retry with the request id can tell the outcome. */
        answer_unknown(call, w, "the leader could not apply the committed write and is stopping");
        return;
    case FSM_FULL:
        http_respond_error_ex(call->req, 503, retry1, NULL, "unavailable",
                              "the state machine is full: %s", res->message);
        api_reply_done(call);
        return;
    default:
        fprintf(stderr, "configs: rid=%s the state machine refused an entry: %s\n",
                http_request_id(call->req), res->message);
        api_error(call, 500, "internal", "the state machine refused the entry (%s)", res->message);
    }
}

static void propose(struct api_call *call)
{
    struct write *w = call->data;
    struct node *node = call->node;
    if (node->raft == NULL || node->stopping) {
        http_respond_error_ex(call->req, 503, retry1, NULL, "unavailable", "the node is stopping");
        api_reply_done(call);
        return;
    }
    struct rnode_info info;
    rnode_info(node->raft, &info);
    w->e.term = info.term;
    w->e.timestamp_us = wall_us();
    uint8_t *buf = NULL;
    size_t len = 0;
    char err[512];
    if (codec_encode(&w->e, &buf, &len, err, sizeof(err)) != 0) {
        api_error(call, 400, "bad_request", "%s", err);
        return;
    }
    int rc = rnode_apply(node->raft, buf, len, applied, call);
    free(buf);
    if (rc != 0) {
        http_respond_error_ex(call->req, 503, retry1, NULL, "unavailable",
                              "this node cannot propose now (not the ready leader); retry");
        api_reply_done(call);
    }
}

/* The schema job: loads the schema, validates the content, fills the entry's schema. */
static int schema_work(PGconn *conn, struct api_call *call, char *errmsg, size_t errlen)
{
    struct write *w = call->data;
    json_t *row = NULL;
    int rc = db_schemas_get(conn, w->schema_text, &row, errmsg, errlen);
    if (rc == DB_NOT_FOUND) {
        call->err_field = "schema_id";
        snprintf(errmsg, errlen,
                 "schema_id %s names no schema (it does not exist or was deleted); send "
                 "another schema_id, or null to unbind the config",
                 w->schema_text);
        return DB_INVALID;
    }
    if (rc != DB_OK) {
        return rc;
    }
    const char *hash = json_string_value(json_object_get(row, "schema_hash"));
    size_t len = 0;
    if (hash == NULL ||
        sodium_hex2bin(w->e.schema_hash, 32, hash, strlen(hash), NULL, &len, NULL) != 0 ||
        len != 32) {
        json_decref(row);
        snprintf(errmsg, errlen, "schema %s has a malformed hash", w->schema_text);
        return DB_ERROR;
    }
    struct jsonschema *compiled = NULL;
    char why[512];
    if (jsonschema_compile(json_object_get(row, "schema_content"), &compiled, why, sizeof(why)) !=
        0) {
        json_decref(row);
        snprintf(errmsg, errlen, "schema %s no longer compiles: %s", w->schema_text, why);
        return DB_ERROR;
    }
    json_decref(row);
    json_t *errors = NULL;
    int v = jsonschema_validate(compiled, w->doc, &errors);
    jsonschema_free(compiled);
    if (v != 0) {
        call->result = errors ? errors : json_array();
        snprintf(errmsg, errlen, "content does not match schema %s", w->schema_text);
        return APIH_UNPROCESSABLE;
    }
    return DB_OK;
}

static void schema_done(int status, const char *errmsg, void *arg);

/* Validation done on the loop; decides whether a schema job is needed. */
static void after_checks(struct api_call *call)
{
    struct write *w = call->data;
    if (w->e.op == CODEC_OP_DELETE || w->schema_text[0] == '\0') {
        propose(call);
        return;
    }
    w->e.has_schema = 1;
    if (!parse_uuid(w->schema_text, w->e.schema_id)) {
        api_field_error(call, "schema_id", "field \"schema_id\" must be a schema's UUID");
        return;
    }
    api_submit(call, schema_work, schema_done);
}

static void schema_done(int status, const char *errmsg, void *arg)
{
    struct api_call *call = arg;
    if (status == DB_OK) {
        propose(call);
        return;
    }
    if (status == APIH_UNPROCESSABLE) {
        json_t *errors = call->result;
        call->result = NULL;
        http_respond_error_ex(call->req, 422, NULL, json_pack("{s:o}", "errors", errors),
                              "schema_violation", "%s", errmsg);
        api_reply_done(call);
        return;
    }
    api_finish(call, status, errmsg);
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

/* Fills W's fingerprint from what the client asked; called before anything is resolved. */
static void write_fingerprint(struct write *w)
{
    struct fsm_ask a;
    memset(&a, 0, sizeof(a));
    a.op = w->e.op;
    a.key = w->e.key;
    a.key_len = w->e.key_len;
    a.expected_version = w->e.expected_version;
    a.source_version = w->e.source_version;
    if (w->e.op == CODEC_OP_PUT) {
        a.content = w->e.content;
        a.content_len = w->e.content_len;
    }
    a.schema = !w->schema_given             ? FSM_SCHEMA_ABSENT
               : w->asked_schema[0] == '\0' ? FSM_SCHEMA_NULL
                                            : FSM_SCHEMA_ID;
    if (a.schema == FSM_SCHEMA_ID && !parse_uuid(w->asked_schema, a.schema_id)) {
        /* read_common() accepted it as a UUID, so this cannot happen; an all-zero id still
         * fingerprints deterministically. */
        memset(a.schema_id, 0, sizeof(a.schema_id));
    }
    a.actor = w->e.actor;
    a.actor_len = w->e.actor_len;
    fsm_request_fingerprint(&a, w->fp);
    memcpy(w->e.fingerprint, w->fp, sizeof(w->fp));
}

/* Answers a retry from the state machine's record SEEN of its request id. */
static void answer_recorded(struct api_call *call, struct write *w, const struct fsm_request *seen)
{
    bool mismatch;
    if (seen->rule == FSM_FP_CLIENT) {
        mismatch = sodium_memcmp(w->fp, seen->fingerprint, 32) != 0;
    } else {
        /* Recorded from a version-1 entry before an upgrade: the legacy rule over the entry
         * as it stands (unresolved), as builds before codec version 2 compared. */
        uint8_t fp[32];
        fsm_request_fingerprint_legacy(&w->e, fp);
        mismatch = sodium_memcmp(fp, seen->fingerprint, 32) != 0;
    }
    answer_first(call, w, mismatch, seen->status, seen->version, seen->revision, seen->raft_index);
}

static void check_state(struct api_call *call);

/* Does the revision ROW (from db_configs_request()) record what W asks? The same comparison
 * as the fingerprint's, field by field: op, key, versions, content (put), schema as given,
 * actor. */
static bool first_matches(const struct write *w, json_t *row)
{
    const char *op = json_string_value(json_object_get(row, "op"));
    const char *key = json_string_value(json_object_get(row, "key"));
    const char *actor = json_string_value(json_object_get(row, "actor"));
    json_t *version = json_object_get(row, "version");
    json_t *source = json_object_get(row, "source_version");
    json_t *schema = json_object_get(row, "schema_id");
    if (op == NULL || key == NULL || actor == NULL || !json_is_integer(version) ||
        strcmp(op, codec_op_name(w->e.op)) != 0 || strcmp(key, w->key) != 0 ||
        strcmp(actor, w->actor) != 0 ||
        (uint64_t)json_integer_value(version) != w->e.expected_version + 1) {
        return false;
    }
    if (w->e.op == CODEC_OP_ROLLBACK &&
        (!json_is_integer(source) || (uint64_t)json_integer_value(source) != w->e.source_version)) {
        return false;
    }
    if (w->schema_given) {
        const char *id = json_string_value(schema);
        if (w->asked_schema[0] == '\0' ? !json_is_null(schema)
                                       : id == NULL || strcasecmp(id, w->asked_schema) != 0) {
            return false;
        }
    }
    if (w->e.op == CODEC_OP_PUT) {
        /* The stored json text is the canonical text the entry carried; canonicalise the
         * parsed value again rather than trust the text's layout. */
        char *text = NULL;
        size_t len = 0;
        char err[64];
        json_t *content = json_object_get(row, "content");
        if (content == NULL || canonjson_dump(content, &text, &len, err, sizeof(err)) != 0) {
            return false;
        }
        bool same = len == w->content_len && memcmp(text, w->content, len) == 0;
        free(text);
        return same;
    }
    return true;
}

/* Pool job: the revision PostgreSQL holds for the request id, if any. */
static int request_work(PGconn *conn, struct api_call *call, char *errmsg, size_t errlen)
{
    struct write *w = call->data;
    int rc = db_configs_request(conn, w->project, w->request_id, &w->first, errmsg, errlen);
    return rc == DB_NOT_FOUND ? DB_OK : rc;
}

static void request_done(int status, const char *errmsg, void *arg)
{
    struct api_call *call = arg;
    struct write *w = call->data;
    if (status != DB_OK) {
        /* Without the lookup a late retry could run twice: refuse, nothing was proposed. */
        http_respond_error_ex(call->req, 503, retry1, NULL, "unavailable",
                              "cannot check request_id %s in postgresql (%s); nothing was "
                              "written; retry",
                              w->request_id, errmsg);
        api_reply_done(call);
        return;
    }
    if (!rnode_ready(call->node->raft)) {
        http_respond_error_ex(call->req, 503, retry1, NULL, "unavailable",
                              "leadership changed; retry");
        api_reply_done(call);
        return;
    }
    if (w->first == NULL) {
        /* No revision: the first attempt (if any) wrote nothing, or has not been applied
         * yet; check_state() consults the state machine again, and a copy still in flight
         * is caught by the state machine as a duplicate when it applies. */
        check_state(call);
        return;
    }
    if (!first_matches(w, w->first)) {
        answer_first(call, w, true, FSM_OK, 0, 0, 0);
        return;
    }
    /* Already in PostgreSQL: the first outcome, answered as the first 200/201 was. */
    json_t *v = json_object_get(w->first, "version");
    json_t *r = json_object_get(w->first, "revision");
    json_t *i = json_object_get(w->first, "raft_index");
    api_reply(call, w->ok_status,
              write_body(call, w, (uint64_t)json_integer_value(v), (uint64_t)json_integer_value(r),
                         (uint64_t)json_integer_value(i)));
}

/* The checks against this leader's state machine before anything is proposed: a retried
 * request id gets its first outcome, a stale expected_version fails early. */
static void check_state(struct api_call *call)
{
    struct write *w = call->data;
    const struct fsm *fsm = rnode_fsm(call->node->raft);
    const struct fsm_request *seen =
        fsm_request_find(fsm, w->project, strlen(w->project), w->request_id, strlen(w->request_id));
    if (seen != NULL) {
        answer_recorded(call, w, seen);
        return;
    }
    const struct fsm_config *cur =
        fsm_get(fsm, w->project, strlen(w->project), w->key, strlen(w->key));
    uint64_t current = cur ? cur->version : 0;
    if ((w->e.op == CODEC_OP_DELETE || w->e.op == CODEC_OP_ROLLBACK) &&
        (cur == NULL || cur->deleted)) {
        answer_not_found(call, w);
        return;
    }
    if (current != w->e.expected_version) {
        answer_conflict(call, w, current);
        return;
    }
    /* Without a schema_id in the body a write keeps the key's current binding. */
    if (!w->schema_given && cur != NULL && cur->has_schema) {
        api_input_uuid_text(cur->schema_id, w->schema_text);
    }
    after_checks(call);
}

/* Entry of every write once its input is read: fingerprint what was asked, then look the
 * request id up, in the state machine (the recent ids) and else in PostgreSQL (ids the state
 * machine forgot), before the version checks. */
static void check_and_go(struct api_call *call)
{
    struct write *w = call->data;
    snprintf(w->asked_schema, sizeof(w->asked_schema), "%s", w->schema_text);
    write_fingerprint(w);
    const struct fsm *fsm = rnode_fsm(call->node->raft);
    const struct fsm_request *seen =
        fsm_request_find(fsm, w->project, strlen(w->project), w->request_id, strlen(w->request_id));
    if (seen != NULL) {
        answer_recorded(call, w, seen);
        return;
    }
    if (!fsm_request_may_have_forgotten(fsm, w->project, strlen(w->project))) {
        /* The state machine still holds every id of this project it ever applied, so an id
         * it does not know is new: no revision can carry it, and no PostgreSQL round trip is
         * needed. */
        check_state(call);
        return;
    }
    api_submit(call, request_work, request_done);
}

void api_configs_config_create(struct api_call *call)
{
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
    struct write *w = write_new(call, CODEC_OP_PUT, key);
    if (w == NULL || read_content(call, w) != 0 || read_common(call, w) != 0) {
        return;
    }
    w->e.expected_version = 0;
    w->ok_status = 201;
    check_and_go(call);
}

void api_configs_config_put(struct api_call *call)
{
    static const char *const known[] = {"content", "expected_version", "schema_id", "request_id",
                                        NULL};
    if (!api_lead_or_forward(call) || api_input_body_object(call) != 0 ||
        api_input_fields_known(call, known) != 0) {
        return;
    }
    struct write *w = write_new(call, CODEC_OP_PUT, call->params[1]);
    json_t *ev = json_object_get(call->body, "expected_version");
    if (w == NULL) {
        return;
    }
    if (ev == NULL) {
        api_field_error(call, "expected_version",
                        "field \"expected_version\" is required (0 creates the key)");
        return;
    }
    if (read_version(call, "expected_version", ev, 0, &w->e.expected_version) != 0 ||
        read_content(call, w) != 0 || read_common(call, w) != 0) {
        return;
    }
    if (w->e.expected_version == 0) {
        w->ok_status = 201;
    }
    check_and_go(call);
}

void api_configs_config_delete(struct api_call *call)
{
    char buf[32];
    uint64_t expected = 0;
    if (!api_lead_or_forward(call)) {
        return;
    }
    int q = api_input_query(call, "expected_version", buf, sizeof(buf));
    char *end = NULL;
    if (q <= 0 || (expected = strtoull(buf, &end, 10)) < 1 || *end != '\0' || buf[0] == '-') {
        api_field_error(call, "expected_version",
                        "query parameter expected_version (>= 1) is required: "
                        "DELETE ...?expected_version=N");
        return;
    }
    struct write *w = write_new(call, CODEC_OP_DELETE, call->params[1]);
    if (w == NULL) {
        return;
    }
    w->e.expected_version = expected;
    char rid[CODEC_MAX_REQUEST_ID + 1];
    int r = api_input_query(call, "request_id", rid, sizeof(rid));
    snprintf(w->request_id, sizeof(w->request_id), "%s",
             r > 0 && rid[0] != '\0' ? rid : http_request_id(call->req));
    w->e.request_id = w->request_id;
    w->e.request_id_len = strlen(w->request_id);
    check_and_go(call);
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

static void rollback_loaded(int status, const char *errmsg, void *arg)
{
    struct api_call *call = arg;
    if (status != DB_OK) {
        api_finish(call, status, errmsg);
        return;
    }
    if (!rnode_ready(call->node->raft)) {
        http_respond_error_ex(call->req, 503, retry1, NULL, "unavailable",
                              "leadership changed; retry");
        api_reply_done(call);
        return;
    }
    check_and_go(call);
}

void api_configs_config_rollback(struct api_call *call)
{
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
    if (tv == NULL || ev == NULL) {
        api_field_error(call, tv == NULL ? "target_version" : "expected_version",
                        "fields \"target_version\" and \"expected_version\" are required");
        return;
    }
    if (read_version(call, "target_version", tv, 1, &w->e.source_version) != 0 ||
        read_version(call, "expected_version", ev, 1, &w->e.expected_version) != 0 ||
        read_common(call, w) != 0) {
        return;
    }
    if (w->e.source_version >= w->e.expected_version) {
        api_field_error(call, "target_version",
                        "field \"target_version\" must be below the current version");
        return;
    }
    api_submit(call, rollback_load, rollback_loaded);
}
