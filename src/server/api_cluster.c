/*
 * Cluster operations, for instance admins: the raft view, membership and leadership.
 * Membership changes and transfers run on the leader; a follower answers 503 not_leader
 * naming the leader, so a client (or the CLI) retries there.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <raft.h>
#include <sodium.h>

#include "server/api_internal.h"
#include "http/forward.h"
#include "server/node.h"

static const char *role_name(int role)
{
    switch (role) {
    case RAFT_VOTER:
        return "voter";
    case RAFT_STANDBY:
        return "standby";
    default:
        return "spare";
    }
}

/* 503 when this node runs without raft; returns false then. */
static bool have_raft(struct api_call *call)
{
    if (call->node->raft == NULL) {
        api_error(call, 503, "unavailable",
                  "this node runs without raft (no \"raft\" section "
                  "in its configuration)");
        return false;
    }
    return true;
}

/* ---- ?health=true: every member's own /health, asked now ----------------------------- */

/* Each member's /health gets this long; a member that does not answer in time is shown as
 * unreachable with the reason, and the answer is never later than that. */
#define HEALTH_TIMEOUT_MS 2000

/* One GET /v1/cluster?health=true in flight: the view to answer, and how many members'
 * /health are still awaited. Freed with the last answer. */
struct health_probe {
    struct api_call *call;
    json_t *view; /* owned; its members each get "health" */
    unsigned pending;
};

struct health_slot {
    struct health_probe *probe;
    json_t *member; /* borrowed from probe->view */
};

static void probe_settle(struct health_probe *p)
{
    if (--p->pending > 0) {
        return;
    }
    api_reply(p->call, 200, p->view);
    free(p);
}

static void health_done(void *data, int rc, const struct forward_response *resp, const char *errmsg)
{
    struct health_slot *slot = data;
    json_t *health = NULL;
    if (rc == 0 && resp->status == 200) {
        json_t *body = json_loadb(resp->body, resp->len, 0, NULL);
        json_t *raft = json_object_get(body, "raft");
        if (json_is_object(raft)) {
            health = json_deep_copy(raft);
            json_object_set_new(health, "reachable", json_true());
        }
        json_decref(body);
    }
    if (health == NULL) {
        char why[300];
        if (rc != 0) {
            snprintf(why, sizeof(why), "%s", errmsg ? errmsg : "no answer");
        } else {
            snprintf(why, sizeof(why), "/health answered %d", resp->status);
        }
        health = json_pack("{s:b,s:s}", "reachable", false, "error", why);
    }
    json_object_set_new(slot->member, "health", health);
    struct health_probe *p = slot->probe;
    free(slot);
    probe_settle(p);
}

/* The HTTP address of member ID, from the bootstrap peers of the configuration, or NULL. */
static const char *member_http(const struct node *node, uint64_t id)
{
    for (unsigned i = 0; i < node->conf->raft.nbootstrap; i++) {
        if (node->conf->raft.bootstrap[i].id == id && node->conf->raft.bootstrap[i].http[0]) {
            return node->conf->raft.bootstrap[i].http;
        }
    }
    return NULL;
}

/* Asks every member but this node for its /health (this node's comes from its own state) and
 * answers VIEW (stolen) with a "health" in each member once all have answered or timed out. */
static void probe_members(struct api_call *call, json_t *view, const struct rnode_info *info)
{
    struct node *node = call->node;
    struct health_probe *p = calloc(1, sizeof(*p));
    if (p == NULL) {
        json_decref(view);
        api_error(call, 500, "internal", "out of memory");
        return;
    }
    p->call = call;
    p->view = view;
    p->pending = 1; /* held until every request is started */
    bool https = node->conf->http_cert_file != NULL;
    json_t *members = json_object_get(view, "members");
    size_t i;
    json_t *m;
    json_array_foreach(members, i, m)
    {
        uint64_t id = (uint64_t)json_integer_value(json_object_get(m, "id"));
        if (id == node->conf->node_id) {
            json_object_set_new(m, "health",
                                json_pack("{s:b,s:s,s:b,s:I,s:I,s:I,s:I}", "reachable", true,
                                          "state", info->state, "ready", info->ready, "term",
                                          (json_int_t)info->term, "leader_id",
                                          (json_int_t)info->leader_id, "commit_index",
                                          (json_int_t)info->commit_index, "applied_index",
                                          (json_int_t)info->applied_index));
            continue;
        }
        const char *http = member_http(node, id);
        char err[256] = "";
        struct health_slot *slot = NULL;
        if (http == NULL || node->fwd == NULL) {
            snprintf(err, sizeof(err),
                     "this node does not know member %llu's http address (raft.peers[].http)",
                     (unsigned long long)id);
        } else if ((slot = malloc(sizeof(*slot))) == NULL) {
            snprintf(err, sizeof(err), "out of memory");
        } else {
            char base[96], name[64];
            snprintf(base, sizeof(base), "%s://%s", https ? "https" : "http", http);
            snprintf(name, sizeof(name), "conclave-node-%llu", (unsigned long long)id);
            *slot = (struct health_slot){p, m};
            p->pending++;
            if (forward_send(node->fwd, base, https ? name : NULL, "GET", "/health", NULL,
                             http_request_id(call->req), NULL, 0, HEALTH_TIMEOUT_MS, health_done,
                             slot, err, sizeof(err)) == 0) {
                continue;
            }
            p->pending--;
            free(slot);
        }
        json_object_set_new(m, "health", json_pack("{s:b,s:s}", "reachable", false, "error", err));
    }
    probe_settle(p);
}

void api_cluster_cluster_get(struct api_call *call)
{
    if (!have_raft(call)) {
        return;
    }
    char hq[8];
    int q = api_input_query(call, "health", hq, sizeof(hq));
    if (q < 0 || (q > 0 && strcmp(hq, "true") != 0 && strcmp(hq, "false") != 0)) {
        api_field_error(call, "health", "health must be true or false");
        return;
    }
    bool with_health = q > 0 && strcmp(hq, "true") == 0;
    struct rnode_info info;
    rnode_info(call->node->raft, &info);
    uint8_t state_hash[32];
    fsm_state_hash(rnode_fsm(call->node->raft), state_hash);
    char hash[65];
    sodium_bin2hex(hash, sizeof(hash), state_hash, sizeof(state_hash));
    json_t *members = json_array();
    for (unsigned i = 0; i < info.nmembers; i++) {
        json_array_append_new(
            members, json_pack("{s:I,s:s,s:s,s:b}", "id", (json_int_t)info.members[i].id, "address",
                               info.members[i].address, "role", role_name(info.members[i].role),
                               "leader", info.members[i].id == info.leader_id));
    }
    json_t *leader = info.leader_id ? json_pack("{s:I,s:s}", "id", (json_int_t)info.leader_id,
                                                "address", info.leader_address)
                                    : json_null();
    json_t *view = json_pack("{s:I,s:s,s:b,s:o,s:I,s:I,s:I,s:I,s:s,s:o}", "node_id",
                             (json_int_t)call->node->conf->node_id, "state", info.state, "ready",
                             info.ready, "leader", leader, "term", (json_int_t)info.term,
                             "commit_index", (json_int_t)info.commit_index, "applied_index",
                             (json_int_t)info.applied_index, "last_index",
                             (json_int_t)info.last_index, "state_hash", hash, "members", members);
    if (with_health && view != NULL) {
        probe_members(call, view, &info);
        return;
    }
    api_reply(call, 200, view);
}

/* Answers a refusal of the rnode functions. */
static void refused(struct api_call *call, int rc)
{
    static const struct http_header retry[] = {{"Retry-After", "1"}, {NULL, NULL}};
    struct rnode_info info;
    switch (rc) {
    case RNODE_ENOTLEADER:
        rnode_info(call->node->raft, &info);
        http_respond_error_ex(
            call->req, 503, retry, json_pack("{s:I}", "leader_id", (json_int_t)info.leader_id),
            "not_leader", "this node is not the ready leader; send it to node %llu",
            (unsigned long long)info.leader_id);
        api_reply_done(call);
        return;
    case RNODE_EBUSY:
        api_error(call, 409, "conflict",
                  "another membership change or transfer is running; "
                  "retry when it is done");
        return;
    case RNODE_EINVAL:
        api_error(call, 400, "bad_request",
                  "raft refused the change: unknown or duplicate "
                  "member id or address");
        return;
    case RNODE_ESHUTDOWN:
        api_error(call, 503, "unavailable", "this node is stopping");
        return;
    default:
        api_error(call, 500, "internal", "raft refused the change (%d)", rc);
    }
}

static void change_done(void *data, int status, const char *err)
{
    struct api_call *call = data;
    if (status == 0) {
        api_cluster_cluster_get(call);
        return;
    }
    if (status == RNODE_EUNKNOWN) {
        api_error(call, 504, "outcome_unknown",
                  "leadership changed during the operation; look at GET /v1/cluster (%s)", err);
        return;
    }
    refused(call, status);
}

void api_cluster_cluster_add(struct api_call *call)
{
    static const char *const known[] = {"id", "address", NULL};
    const char *address;
    if (!have_raft(call) || api_input_body_object(call) != 0 ||
        api_input_fields_known(call, known) != 0 ||
        api_input_field_string(call, "address", true, 3, RNODE_ADDRESS_MAX - 1, &address) != 0) {
        return;
    }
    json_t *id = json_object_get(call->body, "id");
    if (!json_is_integer(id) || json_integer_value(id) < 1 || json_integer_value(id) > 65535) {
        api_field_error(call, "id", "field \"id\" must be a whole number from 1 to 65535");
        return;
    }
    const char *colon = strrchr(address, ':');
    if (colon == NULL || colon == address || atoi(colon + 1) < 1 || atoi(colon + 1) > 65535) {
        api_field_error(call, "address",
                        "field \"address\" must be IP:PORT of the new node's "
                        "raft");
        return;
    }
    int rc = rnode_add_member(call->node->raft, (uint64_t)json_integer_value(id), address,
                              change_done, call);
    if (rc != 0) {
        refused(call, rc);
    }
}

void api_cluster_cluster_remove(struct api_call *call)
{
    if (!have_raft(call)) {
        return;
    }
    uint64_t id = strtoull(call->params[0], NULL, 10);
    int rc = rnode_remove_member(call->node->raft, id, change_done, call);
    if (rc != 0) {
        refused(call, rc);
    }
}

void api_cluster_cluster_transfer(struct api_call *call)
{
    static const char *const known[] = {"id", NULL};
    if (!have_raft(call)) {
        return;
    }
    uint64_t target = 0;
    size_t len = 0;
    http_request_body(call->req, &len);
    if (len > 0) {
        if (api_input_body_object(call) != 0 || api_input_fields_known(call, known) != 0) {
            return;
        }
        json_t *id = json_object_get(call->body, "id");
        if (id != NULL && (!json_is_integer(id) || json_integer_value(id) < 1 ||
                           json_integer_value(id) > 65535)) {
            api_field_error(call, "id", "field \"id\" must be a whole number from 1 to 65535");
            return;
        }
        target = id ? (uint64_t)json_integer_value(id) : 0;
    }
    int rc = rnode_transfer(call->node->raft, target, change_done, call);
    if (rc != 0) {
        refused(call, rc);
    }
}
