/*
 * Configs writes, from the checks against the leader's state to the answer: the early version
 * check, schema validation (a pool job), proposing through raft, waiting for PostgreSQL, and
 * every answer of a write. The module's map is in api_configs_internal.h.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <sodium.h>
#include <uv.h>

#include "jsonschema/jsonschema.h"
#include "server/api_configs_internal.h"
#include "server/materializer.h"
#include "server/node.h"
#include "storage/db.h"
#include "storage/db_schemas.h"

/* How long a write waits for PostgreSQL after Raft committed it, before answering 504. */
#define WRITE_MATERIALIZE_TIMEOUT_MS 10000

const struct http_header api_configs_retry_after[] = {{"Retry-After", "1"}, {NULL, NULL}};

static int64_t wall_us(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000000 + tv.tv_usec;
}

bool api_configs_parse_uuid(const char *text, uint8_t out[16])
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

json_t *api_configs_write_body(const struct write *w, uint64_t version, uint64_t revision,
                               uint64_t index)
{
    return json_pack("{s:s,s:s,s:I,s:I,s:I,s:s}", "project", w->project, "key", w->key, "version",
                     (json_int_t)version, "revision", (json_int_t)revision, "raft_index",
                     (json_int_t)index, "request_id", w->request_id);
}

static void answer_conflict(struct api_call *call, struct write *w, uint64_t current)
{
    json_t *extra =
        json_pack("{s:I,s:s}", "current_version", (json_int_t)current, "request_id", w->request_id);
    if (w->precondition) {
        char etag[32];
        snprintf(etag, sizeof(etag), "\"%" PRIu64 "\"", current);
        const struct http_header h[] = {{"ETag", etag}, {NULL, NULL}};
        if (current == 0) {
            http_respond_error_ex(call->req, 412, NULL, extra, "precondition_failed",
                                  "config %s does not exist, so If-Match \"%" PRIu64
                                  "\" cannot match",
                                  w->key, w->e.expected_version);
        } else {
            http_respond_error_ex(call->req, 412, h, extra, "precondition_failed",
                                  "config %s is at version %" PRIu64 " (ETag \"%" PRIu64
                                  "\"), not the version the precondition names; read it again "
                                  "and retry with its ETag",
                                  w->key, current, current);
        }
    } else {
        http_respond_error_ex(call->req, 409, NULL, extra, "conflict",
                              "config %s is at version %" PRIu64 ", not %" PRIu64
                              "; read it again and retry with expected_version %" PRIu64,
                              w->key, current, w->e.expected_version, current);
    }
    api_reply_done(call);
}

static void answer_not_found(struct api_call *call, struct write *w)
{
    if (w->precondition) {
        /* If-Match on a key with no current version: the precondition is false. */
        answer_conflict(call, w, 0);
        return;
    }
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
    struct materializer_refusal ref;
    if (status == 0) {
        api_phases_materialized(call);
    }
    if (materializer_refusal(call->node->matd, status, w->index, &ref)) {
        /* PostgreSQL lost this revision: never 200, never "unknown" (docs/write-path.md). */
        http_respond_error_ex(call->req, ref.http_status, NULL, NULL, ref.code, "%s", ref.message);
        api_reply_done(call);
        return;
    }
    if (status != 0) {
        answer_unknown(call, w,
                       status == MATD_ETIMEDOUT
                           ? "the change is committed in raft but not yet in postgresql"
                           : "leadership changed before the change reached postgresql");
        return;
    }
    json_t *body = api_configs_write_body(w, w->res.version, w->res.revision, w->index);
    http_respond_json(call->req, w->ok_status, body);
    api_phases_answered(call);
    api_reply_done(call);
}

/* Answers from an outcome recorded for the request id (a retry). MISMATCH: the id was
 * recorded for a different write, which is the client's mistake, not a retry. */
void api_configs_answer_first(struct api_call *call, struct write *w, bool mismatch,
                              enum fsm_status first, uint64_t version, uint64_t revision,
                              uint64_t index)
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
    if (status == 0) {
        api_phases_applied(call);
    }
    if (status == RNODE_ENOTLEADER || status == RNODE_ESHUTDOWN) {
        http_respond_error_ex(call->req, 503, api_configs_retry_after, NULL, "unavailable",
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
        api_configs_answer_first(call, w, res->mismatch, res->first_status, res->version,
                                 res->revision, res->first_index);
        return;
    case FSM_STOPPED:
        /* Committed, but this leader could not apply it and is stopping: the other nodes
         * apply it, so only a retry with the request id can tell the outcome. */
        answer_unknown(call, w, "the leader could not apply the committed write and is stopping");
        return;
    case FSM_FULL:
        /* Only the queue for PostgreSQL drains by itself (once PostgreSQL is back). The
         * other limits need a change by someone, so no Retry-After (docs/api.md, errors). */
        switch (res->limit) {
        case FSM_LIMIT_PENDING:
            http_respond_error_ex(call->req, 503, api_configs_retry_after, NULL, "unavailable",
                                  "%s; retry once postgresql catches up", res->message);
            break;
        case FSM_LIMIT_CONFIGS:
            /* Deleting does not make room: a deleted key keeps its tombstone (and history). */
            http_respond_error_ex(call->req, 507, NULL, NULL, "capacity_exceeded",
                                  "%s; no new key fits, deleted keys included (they keep their "
                                  "history): write to an existing key",
                                  res->message);
            break;
        default:
            http_respond_error_ex(call->req, 507, NULL, NULL, "capacity_exceeded",
                                  "%s; delete configs or shrink contents to make room",
                                  res->message);
            break;
        }
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
        http_respond_error_ex(call->req, 503, api_configs_retry_after, NULL, "unavailable",
                              "the node is stopping");
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
    uint64_t proposing = uv_hrtime();
    int rc = rnode_apply(node->raft, buf, len, applied, call);
    free(buf);
    if (rc == 0) {
        api_phases_proposed(call, proposing);
    }
    if (rc != 0) {
        http_respond_error_ex(call->req, 503, api_configs_retry_after, NULL, "unavailable",
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
    /* Compiled as stored: with its own format choice, and its "$ref"s to other schemas of
     * the catalog resolved now, so a write is judged by the catalog as it is (docs/
     * jsonschema.md, "References between schemas"). */
    struct jsonschema *compiled = NULL;
    char why[512];
    struct api_schema_resolver res = {.conn = conn};
    struct jsonschema_options opts = {.format_assertion =
                                          json_is_true(json_object_get(row, "format_assertion")),
                                      .resolver = api_schemas_resolve,
                                      .resolver_data = &res};
    if (jsonschema_compile_ex(json_object_get(row, "schema_content"), &opts, &compiled, why,
                              sizeof(why)) != 0) {
        json_decref(row);
        call->err_field = "schema_id";
        snprintf(errmsg, errlen,
                 "the schema of schema_id %s cannot be used now: %s%s%s; fix the schemas of "
                 "the catalog it refers to, or bind the config to another schema",
                 w->schema_text, why, res.err[0] ? "; " : "", res.err);
        return APIH_UNPROCESSABLE;
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
    if (!api_configs_parse_uuid(w->schema_text, w->e.schema_id)) {
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
    if (status == APIH_UNPROCESSABLE && call->result == NULL) {
        /* The bound schema itself cannot be compiled now (a schema it refers to is gone):
         * api_finish() answers 422 invalid_schema naming schema_id. */
        api_finish(call, status, errmsg);
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

/* Answers 503 postgresql_behind and returns true while PostgreSQL lacks revisions the
 * cluster already trimmed: nothing is proposed then, retries included (docs/write-path.md). */
bool api_configs_refused_behind(struct api_call *call)
{
    struct materializer_refusal ref;
    if (!materializer_refusal(call->node->matd, 0, 0, &ref)) {
        return false;
    }
    http_respond_error_ex(call->req, ref.http_status, NULL, NULL, ref.code, "%s", ref.message);
    api_reply_done(call);
    return true;
}

/* The checks against this leader's state machine before anything is proposed: a retried
 * request id gets its first outcome, a stale expected_version fails early. */
void api_configs_check_state(struct api_call *call)
{
    struct write *w = call->data;
    if (api_configs_refused_behind(call)) {
        return;
    }
    const struct fsm *fsm = rnode_fsm(call->node->raft);
    const struct fsm_request *seen =
        fsm_request_find(fsm, w->project, strlen(w->project), w->request_id, strlen(w->request_id));
    if (seen != NULL) {
        api_configs_answer_recorded(call, w, seen);
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
