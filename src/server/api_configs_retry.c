/*
 * Recognising a retry of a configs write. Every write carries a request id (the client's, or
 * the HTTP request id), so that a client told "outcome unknown" can retry and learn the first
 * outcome instead of writing twice. The entry also carries the fingerprint of what the client
 * asked (fsm_request_fingerprint(): op, key, versions, content as sent, schema as given,
 * actor), computed here before the leader resolves a schema or loads a rollback's content, so
 * a retry fingerprints identically. A retry is recognised by the state machine's table of
 * recent ids and, once that may have forgotten the id, by the revision the first attempt wrote
 * in PostgreSQL (db_configs_request()). docs/write-path.md, "Retries".
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sodium.h>

#include "jsonschema/canonjson.h"
#include "server/api_configs_internal.h"
#include "server/node.h"
#include "storage/db.h"
#include "storage/db_configs.h"

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
    if (a.schema == FSM_SCHEMA_ID && !api_configs_parse_uuid(w->asked_schema, a.schema_id)) {
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
void api_configs_answer_recorded(struct api_call *call, struct write *w,
                                 const struct fsm_request *seen)
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
    api_configs_answer_first(call, w, mismatch, seen->status, seen->version, seen->revision,
                             seen->raft_index);
}

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
        http_respond_error_ex(call->req, 503, api_configs_retry_after, NULL, "unavailable",
                              "cannot check request_id %s in postgresql (%s); nothing was "
                              "written; retry",
                              w->request_id, errmsg);
        api_reply_done(call);
        return;
    }
    if (!rnode_ready(call->node->raft)) {
        http_respond_error_ex(call->req, 503, api_configs_retry_after, NULL, "unavailable",
                              "leadership changed; retry");
        api_reply_done(call);
        return;
    }
    if (w->first == NULL) {
        /* No revision: the first attempt (if any) wrote nothing, or has not been applied
         * yet; api_configs_check_state() consults the state machine again, and a copy still in
         * flight is caught by the state machine as a duplicate when it applies. */
        api_configs_check_state(call);
        return;
    }
    if (!first_matches(w, w->first)) {
        api_configs_answer_first(call, w, true, FSM_OK, 0, 0, 0);
        return;
    }
    /* Already in PostgreSQL: the first outcome, answered as the first 200/201 was. */
    json_t *v = json_object_get(w->first, "version");
    json_t *r = json_object_get(w->first, "revision");
    json_t *i = json_object_get(w->first, "raft_index");
    api_reply(call, w->ok_status,
              api_configs_write_body(w, (uint64_t)json_integer_value(v),
                                     (uint64_t)json_integer_value(r),
                                     (uint64_t)json_integer_value(i)));
}

/* Entry of every write once its input is read: fingerprint what was asked, then look the
 * request id up, in the state machine (the recent ids) and else in PostgreSQL (ids the state
 * machine forgot), before the version checks. */
void api_configs_check_and_go(struct api_call *call)
{
    struct write *w = call->data;
    snprintf(w->asked_schema, sizeof(w->asked_schema), "%s", w->schema_text);
    write_fingerprint(w);
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
    if (!fsm_request_may_have_forgotten(fsm, w->project, strlen(w->project))) {
        /* The state machine still holds every id of this project it ever applied, so an id
         * it does not know is new: no revision can carry it, and no PostgreSQL round trip is
         * needed. */
        api_configs_check_state(call);
        return;
    }
    if (materializer_request_is_new(call->node->matd, w->project, w->request_id)) {
        /* The leader's filter of every request id in config_revisions up to the last trimmed
         * revision does not hold it: no revision the state machine forgot carries it. */
        api_configs_check_state(call);
        return;
    }
    api_submit(call, request_work, request_done);
}
