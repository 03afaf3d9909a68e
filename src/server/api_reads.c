/*
 * Config reads from the state machine: get and list, linearizable (through the leader, once a
 * majority confirmed its leadership after the read arrived and it applied what was committed
 * then: ReadIndex, raft/readindex.h, no log append), stale (this node's state, optionally once it
 * applied ?min_index), and a past version from PostgreSQL's audit log (?version=N).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/api_internal.h"
#include "storage/db.h"
#include "storage/db_configs.h"
#include "server/node.h"

/* How long a stale read waits for ?min_index. */
#define MIN_INDEX_TIMEOUT_MS 5000

static const struct http_header retry1[] = {{"Retry-After", "1"}, {NULL, NULL}};

/* ---- reads -------------------------------------------------------------------------- */

static json_t *config_json(const struct fsm_config *c, const char *project)
{
    json_error_t jerr;
    json_t *content = json_loadb((const char *)c->content, c->content_len, JSON_DECODE_ANY, &jerr);
    char schema[37] = "";
    if (c->has_schema) {
        api_input_uuid_text(c->schema_id, schema);
    }
    time_t secs = (time_t)(c->updated_at / 1000000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    char when[80];
    snprintf(when, sizeof(when), "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
             (int)(c->updated_at % 1000000));
    return json_pack("{s:s,s:s,s:I,s:o,s:o,s:I,s:s,s:s}", "project", project, "key", c->key,
                     "version", (json_int_t)c->version, "content", content ? content : json_null(),
                     "schema_id", c->has_schema ? json_string(schema) : json_null(), "revision",
                     (json_int_t)c->last_revision, "updated_by", c->updated_by, "updated_at", when);
}

/* A read in progress: the consistency it asked for, and for min_index the timer. */
struct read {
    uv_timer_t timer;
    struct api_call *call;
    uint64_t min_index;
    uint64_t deadline;
    bool list;
};

static json_t *list_items(struct api_call *call, const struct fsm *fsm);
static void apih_config_get_version(struct api_call *call);

static void read_answer(struct api_call *call)
{
    struct node *node = call->node;
    struct read *r = call->data;
    if (node->raft == NULL) {
        http_respond_error_ex(call->req, 503, retry1, NULL, "unavailable", "the node is stopping");
        api_reply_done(call);
        return;
    }
    const struct fsm *fsm = rnode_fsm(node->raft);
    struct rnode_info info;
    rnode_info(node->raft, &info);
    char index[32];
    snprintf(index, sizeof(index), "%" PRIu64, info.applied_index);
    if (r->list) {
        json_t *page = list_items(call, fsm);
        if (page == NULL) {
            return; /* answered */
        }
        struct http_header h[] = {{"X-Conclave-Index", index}, {NULL, NULL}};
        http_respond_json_ex(call->req, 200, h, page);
        api_reply_done(call);
        return;
    }
    const struct fsm_config *c = fsm_get(fsm, call->params[0], strlen(call->params[0]),
                                         call->params[1], strlen(call->params[1]));
    if (c == NULL || c->deleted) {
        struct http_header h[] = {{"X-Conclave-Index", index}, {NULL, NULL}};
        http_respond_error_ex(call->req, 404, h, NULL, "not_found",
                              c ? "config %s was deleted (at version %" PRIu64 ")"
                                : "config %s does not exist",
                              call->params[1], c ? c->version : 0);
        api_reply_done(call);
        return;
    }
    char etag[40];
    snprintf(etag, sizeof(etag), "\"%" PRIu64 "\"", c->version);
    struct http_header h[] = {{"X-Conclave-Index", index}, {"ETag", etag}, {NULL, NULL}};
    http_respond_json_ex(call->req, 200, h, config_json(c, call->params[0]));
    api_reply_done(call);
}

static void read_index_done(void *data, int status)
{
    struct api_call *call = data;
    if (status != 0) {
        http_respond_error_ex(call->req, 503, retry1, NULL, "unavailable",
                              "leadership changed during a linearizable read; retry");
        api_reply_done(call);
        return;
    }
    read_answer(call);
}

static void timer_closed(uv_handle_t *handle)
{
    struct read *r = handle->data;
    struct api_call *call = r->call;
    uint64_t applied = node_raft_applied(call->node);
    if (applied >= r->min_index) {
        read_answer(call);
        return;
    }
    char index[32];
    snprintf(index, sizeof(index), "%" PRIu64, applied);
    struct http_header h[] = {{"X-Conclave-Index", index}, {"Retry-After", "1"}, {NULL, NULL}};
    http_respond_error_ex(call->req, 504, h, NULL, "timeout",
                          "this node has applied up to index %" PRIu64 ", not yet %" PRIu64
                          "; retry or read from another node",
                          applied, r->min_index);
    api_reply_done(call);
}

static void min_index_tick(uv_timer_t *t)
{
    struct read *r = t->data;
    struct api_call *call = r->call;
    if (node_raft_applied(call->node) >= r->min_index || uv_now(t->loop) >= r->deadline ||
        call->node->stopping) {
        uv_close((uv_handle_t *)t, timer_closed);
    }
}

static void read_start(struct api_call *call, bool list)
{
    struct node *node = call->node;
    char buf[32];
    if (node->raft == NULL) {
        api_error(call, 503, "unavailable",
                  "this node runs without raft (no \"raft\" section in its configuration)");
        return;
    }
    struct read *r = calloc(1, sizeof(*r));
    if (r == NULL) {
        api_error(call, 500, "internal", "out of memory");
        return;
    }
    call->data = r;
    r->call = call;
    r->list = list;
    bool stale = false;
    int q = api_input_query(call, "consistency", buf, sizeof(buf));
    if (q < 0 || (q > 0 && strcmp(buf, "stale") != 0 && strcmp(buf, "linearizable") != 0)) {
        api_field_error(call, "consistency",
                        "query parameter consistency must be linearizable or stale");
        return;
    }
    stale = q > 0 && strcmp(buf, "stale") == 0;
#ifdef CONCLAVE_PLANT_STALE_READ
    /* PLANTED BUG for the chaos tests (docs/reliability.md): a linearizable read is answered
     * from this node's own state, without the leader's ReadIndex round. */
    stale = true;
#endif
    q = api_input_query(call, "min_index", buf, sizeof(buf));
    if (q != 0) {
        char *end = NULL;
        r->min_index = q > 0 ? strtoull(buf, &end, 10) : 0;
        if (q < 0 || end == buf || *end != '\0' || buf[0] == '-') {
            api_field_error(call, "min_index",
                            "query parameter min_index must be a raft index (a whole number)");
            return;
        }
    }
    if (!stale) {
        if (!api_lead_or_forward(call)) {
            return;
        }
        int rc = rnode_read_index(node->raft, read_index_done, call);
        if (rc != 0) {
            http_respond_error_ex(call->req, 503, retry1, NULL, "unavailable",
                                  "cannot start a linearizable read here; retry");
            api_reply_done(call);
        }
        return;
    }
    if (node_raft_applied(node) >= r->min_index) {
        read_answer(call);
        return;
    }
    r->deadline = uv_now(&node->loop) + MIN_INDEX_TIMEOUT_MS;
    uv_timer_init(&node->loop, &r->timer);
    r->timer.data = r;
    uv_timer_start(&r->timer, min_index_tick, 5, 5);
}

void api_reads_config_get(struct api_call *call)
{
    char buf[32];
    if (api_input_query(call, "version", buf, sizeof(buf)) != 0) {
        apih_config_get_version(call);
        return;
    }
    read_start(call, false);
}

void api_reads_config_list(struct api_call *call)
{
    read_start(call, true);
}

/* ---- listing ------------------------------------------------------------------------ */

struct list_acc {
    json_t *items;
    const char *project;
    int limit;
    int count;
};

static int list_visit(const struct fsm_config *c, void *arg)
{
    struct list_acc *a = arg;
    if (c->deleted) {
        return 0;
    }
    if (a->count == a->limit) {
        return 1; /* one more than a page exists */
    }
    json_array_append_new(a->items, config_json(c, a->project));
    a->count++;
    return 0;
}

static json_t *list_items(struct api_call *call, const struct fsm *fsm)
{
    char prefix[260] = "", after[260] = "", lim[16];
    int limit = 100;
    if (api_input_query(call, "prefix", prefix, sizeof(prefix)) < 0 ||
        api_input_query(call, "after", after, sizeof(after)) < 0) {
        api_field_error(call, "prefix", "query parameters prefix and after must be config keys");
        return NULL;
    }
    int q = api_input_query(call, "limit", lim, sizeof(lim));
    if (q != 0) {
        char *end = NULL;
        long v = q > 0 ? strtol(lim, &end, 10) : 0;
        if (q < 0 || end == lim || *end != '\0' || v < 1 || v > 1000) {
            api_field_error(call, "limit",
                            "query parameter limit must be a whole number from 1 to 1000");
            return NULL;
        }
        limit = (int)v;
    }
    struct list_acc a = {.items = json_array(), .project = call->params[0], .limit = limit};
    size_t seen = fsm_list(fsm, call->params[0], strlen(call->params[0]), prefix, strlen(prefix),
                           after, strlen(after), list_visit, &a);
    (void)seen;
    json_t *next = json_null();
    size_t n = json_array_size(a.items);
    /* list_visit stopped early only when it met a live key past the page. */
    if (a.count == limit && n > 0) {
        const char *last =
            json_string_value(json_object_get(json_array_get(a.items, n - 1), "key"));
        struct list_acc probe = {.items = json_array(), .project = call->params[0], .limit = 1};
        fsm_list(fsm, call->params[0], strlen(call->params[0]), prefix, strlen(prefix), last,
                 strlen(last), list_visit, &probe);
        if (json_array_size(probe.items) > 0) {
            next = json_string(last);
        }
        json_decref(probe.items);
    }
    return json_pack("{s:o,s:o}", "items", a.items, "next_after", next);
}

/* ---- history ------------------------------------------------------------------------ */

static int version_work(PGconn *conn, struct api_call *call, char *errmsg, size_t errlen)
{
    uint64_t *version = call->data;
    int rc = db_configs_at_version(conn, call->params[0], call->params[1], *version, &call->result,
                                   errmsg, errlen);
    if (rc == DB_NOT_FOUND) {
        snprintf(errmsg, errlen,
                 "config %s has no version %" PRIu64 " in postgresql (it may "
                 "not exist, or not be materialized yet)",
                 call->params[1], *version);
    }
    return rc;
}

/* GET ...?version=N: a past version, from PostgreSQL's audit log. */
static void apih_config_get_version(struct api_call *call)
{
    char buf[32];
    char *end = NULL;
    uint64_t *version = calloc(1, sizeof(*version));
    if (version == NULL) {
        api_error(call, 500, "internal", "out of memory");
        return;
    }
    call->data = version;
    if (api_input_query(call, "version", buf, sizeof(buf)) <= 0 ||
        (*version = strtoull(buf, &end, 10)) < 1 || *end != '\0' || buf[0] == '-') {
        api_field_error(call, "version", "query parameter version must be a whole number >= 1");
        return;
    }
    api_run(call, version_work, 200);
}
