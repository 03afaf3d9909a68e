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

void api_cluster_cluster_get(struct api_call *call)
{
    if (!have_raft(call)) {
        return;
    }
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
    api_reply(call, 200,
              json_pack("{s:I,s:s,s:b,s:o,s:I,s:I,s:I,s:I,s:s,s:o}", "node_id",
                        (json_int_t)call->node->conf->node_id, "state", info.state, "ready",
                        info.ready, "leader", leader, "term", (json_int_t)info.term, "commit_index",
                        (json_int_t)info.commit_index, "applied_index",
                        (json_int_t)info.applied_index, "last_index", (json_int_t)info.last_index,
                        "state_hash", hash, "members", members));
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
