/*
 * History: a key's revisions, a project's revisions, the audit verification and watch. All of
 * them read PostgreSQL's audit log (config_revisions), never the state machine, so they show
 * only what is materialized: a write is in this history once it has been acknowledged.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/api_internal.h"
#include "audit/audit.h"
#include "raft/fsm.h"
#include "raft/revision.h"
#include "storage/db.h"
#include "storage/db_configs.h"
#include "raft/codec.h"
#include "server/node.h"
#include "server/watch_hub.h"

/* ---- paging, shared by both revision lists ----------------------------------------------- */

/* A page request: rows after a cursor, at most LIMIT of them. */
struct hist {
    uint64_t after;
    int limit;
};

/* Reads ?CURSOR_PARAM= and ?limit= into a new struct hist owned by the call, then runs WORK.
 * A bad parameter is answered 400 naming it. */
static void hist_start(struct api_call *call, const char *cursor_param, api_work_fn work)
{
    struct hist *h = calloc(1, sizeof(*h));
    uint64_t limit = 100;
    if (h == NULL) {
        api_error(call, 500, "internal", "out of memory");
        return;
    }
    call->data = h;
    if (api_input_query_u64(call, cursor_param, 0, INT64_MAX, &h->after) != 0 ||
        api_input_query_u64(call, "limit", 100, 1000, &limit) != 0) {
        return;
    }
    if (limit == 0) {
        api_field_error(call, "limit", "query parameter limit must be from 1 to 1000");
        return;
    }
    h->limit = (int)limit;
    api_run(call, work, 200);
}

/* The work read LIMIT + 1 ROWS to learn whether another page follows: drops the extra row and
 * returns the cursor of the next page (member CURSOR of the last row kept), or JSON null. */
static json_t *hist_trim(json_t *rows, int limit, const char *cursor)
{
    if (json_array_size(rows) <= (size_t)limit) {
        return json_null();
    }
    json_array_remove(rows, (size_t)limit);
    return json_incref(json_object_get(json_array_get(rows, (size_t)limit - 1), cursor));
}

/* ---- one key's revisions ---------------------------------------------------------------- */

static int revisions_work(PGconn *conn, struct api_call *call, char *errmsg, size_t errlen)
{
    struct hist *h = call->data;
    json_t *rows = NULL;
    int rc = db_configs_revisions(conn, call->params[0], call->params[1], h->after, h->limit + 1,
                                  &rows, errmsg, errlen);
    if (rc != DB_OK) {
        return rc;
    }
    json_t *next = hist_trim(rows, h->limit, "version");
    call->result = json_pack("{s:o,s:o}", "items", rows, "next_after_version", next);
    return DB_OK;
}

void api_history_config_revisions(struct api_call *call)
{
    hist_start(call, "after_version", revisions_work);
}

/* ---- a project's revisions --------------------------------------------------------------- */

/*
 * GET /v1/projects/{id}/revisions?after_revision=R&limit=N: every revision of the project in
 * revision order, for auditors that recompute the hash chain themselves (`conclave audit`).
 * "head_revision" and "revisions" describe the whole history at the time of the page, so a
 * client can size a progress bar; they are read in the same transaction as the page.
 */
static int project_revisions_work(PGconn *conn, struct api_call *call, char *errmsg, size_t errlen)
{
    struct hist *h = call->data;
    json_t *rows = NULL, *head = NULL;
    PGresult *res = NULL;
    int rc =
        db_query(conn, "opening a snapshot of the revisions",
                 "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY", 0, NULL, &res, errmsg, errlen);
    PQclear(res);
    if (rc != DB_OK) {
        return rc;
    }
    rc = db_configs_changes(conn, call->params[0], h->after, h->limit + 1, &rows, errmsg, errlen);
    if (rc == DB_OK) {
        rc = db_configs_head(conn, call->params[0], &head, errmsg, errlen);
    }
    if (rc != DB_OK) {
        db_rollback(conn);
        json_decref(rows);
        return rc;
    }
    db_rollback(conn); /* read only: nothing to commit */
    json_t *next = hist_trim(rows, h->limit, "revision");
    call->result = json_pack("{s:o,s:o,s:O,s:O}", "items", rows, "next_after_revision", next,
                             "head_revision", json_object_get(head, "head_revision"), "revisions",
                             json_object_get(head, "revisions"));
    json_decref(head);
    return DB_OK;
}

void api_history_project_revisions(struct api_call *call)
{
    hist_start(call, "after_revision", project_revisions_work);
}

/* ---- the committed head ------------------------------------------------------------------- */

/*
 * What this node's state machine says about a project's chain, copied on the loop thread (the
 * state machine is not thread-safe and its pointers die at the next apply) for a pool job:
 *
 *   - the head: the project's last revision (the highest last_revision of its configs,
 *     tombstones included: every revision sets one) and its hash (fsm_chain_head);
 *   - the materialized point: the revision PostgreSQL must hold by now. Revisions leave the
 *     state machine's queue only once a materialized(N) entry says PostgreSQL committed them,
 *     so it is the prev_hash of the project's first queued revision when one is queued (its
 *     revision number is not known here: 0), else the head itself.
 *
 * Which node answers: any. A follower's state machine may lag the leader's by a few entries,
 * but every revision that left its queue was committed to PostgreSQL before the leader proposed
 * materialized(N), so the point it names is one PostgreSQL must hold: comparing against it
 * never reports a false finding, it only checks a point at most that lag older. The answer
 * names the raft index it was read at ("applied_index").
 */
struct committed {
    uint64_t applied_index;
    uint64_t head_revision; /* 0: the project has no revision */
    uint8_t head[REVISION_HASH_SIZE];
    uint64_t queued;                /* the project's revisions not yet known to be in PostgreSQL */
    uint64_t materialized_revision; /* 0 when unknown (a revision is queued) or none */
    uint8_t materialized[REVISION_HASH_SIZE];
};

static int committed_max_revision(const struct fsm_config *c, void *arg)
{
    uint64_t *max = arg;
    if (c->last_revision > *max) {
        *max = c->last_revision;
    }
    return 0;
}

/* Fills *C for PROJECT from the node's state machine. Loop thread only. Returns 0, -1 when
 * the node runs without raft (ERRMSG says so) or memory ran out. */
static int committed_read(struct node *node, const char *project, struct committed *c, char *errmsg,
                          size_t errlen)
{
    const struct revision **queue = NULL;
    size_t plen = strlen(project);
    memset(c, 0, sizeof(*c));
    if (node->fsm == NULL) {
        snprintf(errmsg, errlen, "this node runs without raft, so it knows no committed head");
        return -1;
    }
    c->applied_index = fsm_last_applied(node->fsm);
    fsm_chain_head(node->fsm, project, plen, c->head);
    fsm_list(node->fsm, project, plen, NULL, 0, NULL, 0, committed_max_revision, &c->head_revision);
    c->materialized_revision = c->head_revision;
    memcpy(c->materialized, c->head, REVISION_HASH_SIZE);
    size_t n = fsm_pending_count(node->fsm);
    if (n == 0) {
        return 0;
    }
    queue = calloc(n, sizeof(*queue));
    if (queue == NULL) {
        snprintf(errmsg, errlen, "out of memory reading the queue of %zu revisions", n);
        return -1;
    }
    n = fsm_pending_from(node->fsm, 0, queue, n);
    for (size_t i = 0; i < n; i++) {
        if (strcmp(queue[i]->project, project) != 0) {
            continue;
        }
        if (c->queued == 0) {
            c->materialized_revision = 0;
            memcpy(c->materialized, queue[i]->prev_hash, REVISION_HASH_SIZE);
        }
        c->queued++;
    }
    free(queue);
    return 0;
}

static json_t *hash_json(const uint8_t h[REVISION_HASH_SIZE], bool present)
{
    char hex[2 * REVISION_HASH_SIZE + 1];
    if (!present) {
        return json_null();
    }
    for (size_t i = 0; i < REVISION_HASH_SIZE; i++) {
        snprintf(hex + 2 * i, 3, "%02x", h[i]);
    }
    return json_string(hex);
}

/* {"applied_index", "revision", "hash", "queued", "materialized": {"revision", "hash"}}. */
static json_t *committed_json(const struct committed *c)
{
    static const uint8_t zero[REVISION_HASH_SIZE];
    bool any = c->head_revision != 0;
    bool mat = memcmp(c->materialized, zero, REVISION_HASH_SIZE) != 0;
    return json_pack(
        "{s:I,s:o,s:o,s:I,s:{s:o,s:o}}", "applied_index", (json_int_t)c->applied_index, "revision",
        any ? json_integer((json_int_t)c->head_revision) : json_null(), "hash",
        hash_json(c->head, any), "queued", (json_int_t)c->queued, "materialized", "revision",
        c->materialized_revision ? json_integer((json_int_t)c->materialized_revision) : json_null(),
        "hash", hash_json(c->materialized, mat));
}

/*
 * GET /v1/projects/{id}/head: the committed head of the project's chain as this node's state
 * machine holds it, and the point PostgreSQL must hold (docs/api.md). Answered on the loop
 * thread from memory; `conclave audit verify` through the API compares it with the chain it
 * read.
 */
void api_history_project_head(struct api_call *call)
{
    struct committed c;
    char err[256];
    if (committed_read(call->node, call->params[0], &c, err, sizeof(err)) != 0) {
        api_error(call, 503, "unavailable", "%s", err);
        return;
    }
    json_t *body = committed_json(&c);
    if (body != NULL && json_object_set_new(body, "project", json_string(call->params[0])) != 0) {
        json_decref(body);
        body = NULL;
    }
    if (body == NULL) {
        api_error(call, 500, "internal", "out of memory");
        return;
    }
    api_reply(call, 200, body);
}

/* ---- audit ------------------------------------------------------------------------------ */

/*
 * The verification compares PostgreSQL's chain with the committed head read on the loop thread
 * before the job starts: PostgreSQL must hold the materialized point (struct committed). It may
 * hold more (revisions materialized since the read), never less: a missing tail (the newest
 * revisions deleted) or an older backup restored is a finding that names both sides.
 */
static int verify_work(PGconn *conn, struct api_call *call, char *errmsg, size_t errlen)
{
    const struct committed *c = call->data;
    struct audit_expect e = {.revision = c->materialized_revision, .what = "the cluster committed"};
    memcpy(e.hash, c->materialized, REVISION_HASH_SIZE);
    int rc = audit_verify_project_expect(conn, call->params[0], &e, &call->result, errmsg, errlen);
    if (rc == DB_OK) {
        json_t *cj = committed_json(c);
        if (cj == NULL || json_object_set_new(call->result, "committed", cj) != 0) {
            json_decref(call->result);
            call->result = NULL;
            snprintf(errmsg, errlen, "out of memory building the report");
            return DB_ERROR;
        }
    }
    return rc;
}

void api_history_audit_verify(struct api_call *call)
{
    struct committed *c = calloc(1, sizeof(*c));
    char err[256];
    if (c == NULL) {
        api_error(call, 500, "internal", "out of memory");
        return;
    }
    call->data = c; /* freed with the call */
    if (committed_read(call->node, call->params[0], c, err, sizeof(err)) != 0) {
        api_error(call, 503, "unavailable", "%s", err);
        return;
    }
    api_run(call, verify_work, 200);
}

/* ---- watch -------------------------------------------------------------------------- */

/* A long poll, served by the node's watch hub (server/watch_hub.h): answers as soon as
 * PostgreSQL holds a revision after AFTER that passes the filter, or at the timeout with none.
 * The hub queries PostgreSQL once per project when this node learns of a change (a follower as
 * soon as it applies it: see wants_query() in watch_hub.c), whatever the number of watchers. */

static void watch_answered(void *data, int status, const char *errmsg, const char *body, size_t len)
{
    static const struct http_header json_type[] = {{"Content-Type", "application/json"},
                                                   {NULL, NULL}};
    struct api_call *call = data;
    if (status != DB_OK) {
        api_finish(call, status, errmsg);
        return;
    }
    /* BODY is the hub's answer, serialised once for every watcher that gets the same changes;
     * the HTTP server copies it. */
    http_respond(call->req, 200, json_type, body, len);
    api_reply_done(call);
}

static bool watch_gone(void *data)
{
    struct api_call *call = data;
    return http_request_cancelled(call->req);
}

/* Reads ?key= and ?prefix= into *FILTER and PATTERN (PATLEN bytes). Returns 0, or -1 after
 * answering 400 naming the parameter. */
static int watch_filter(struct api_call *call, enum watch_hub_filter *filter, char *pattern,
                        size_t patlen)
{
    char key[WATCH_HUB_PATTERN_MAX + 2], prefix[WATCH_HUB_PATTERN_MAX + 2];
    int k = api_input_query(call, "key", key, sizeof(key));
    int p = api_input_query(call, "prefix", prefix, sizeof(prefix));
    if (k < 0 || (k > 0 && !codec_key_ok(key, strlen(key)))) {
        api_field_error(call, "key",
                        "query parameter key must be a config key: 1 to %d characters of "
                        "[A-Za-z0-9._:-], starting with a letter, a digit or _",
                        CODEC_MAX_KEY);
        return -1;
    }
    if (p < 0 || (p > 0 && !codec_key_ok(prefix, strlen(prefix)))) {
        api_field_error(call, "prefix",
                        "query parameter prefix must be the start of a config key: 1 to %d "
                        "characters of [A-Za-z0-9._:-], starting with a letter, a digit or _",
                        CODEC_MAX_KEY);
        return -1;
    }
    if (k > 0 && p > 0) {
        api_field_error(call, "prefix",
                        "query parameters key and prefix cannot be combined: give one of them");
        return -1;
    }
    *filter = k > 0 ? WATCH_HUB_KEY : p > 0 ? WATCH_HUB_PREFIX : WATCH_HUB_ALL;
    snprintf(pattern, patlen, "%s", k > 0 ? key : p > 0 ? prefix : "");
    return 0;
}

void api_history_watch(struct api_call *call)
{
    uint64_t after = 0, timeout = 30;
    enum watch_hub_filter filter = WATCH_HUB_ALL;
    char pattern[WATCH_HUB_PATTERN_MAX + 1];
    char err[256];
    if (api_input_query_u64(call, "after_revision", 0, INT64_MAX, &after) != 0 ||
        api_input_query_u64(call, "timeout", 30, 300, &timeout) != 0 ||
        watch_filter(call, &filter, pattern, sizeof(pattern)) != 0) {
        return;
    }
    if (call->node->watch == NULL) {
        api_error(call, 503, "unavailable", "node is stopping");
        return;
    }
    int rc = watch_hub_add(call->node->watch, call->params[0], after, filter, pattern,
                           timeout * 1000, watch_answered, watch_gone, call, err, sizeof(err));
    if (rc == WATCH_HUB_ECLOSED) {
        api_error(call, 503, "unavailable", "node is stopping");
    } else if (rc != 0) {
        api_error(call, 500, "internal", "%s", err);
    }
}
