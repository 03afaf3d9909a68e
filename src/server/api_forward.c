/*
 * Forwarding a request that needs the leader (a config write, a linearizable read) from a
 * follower to the leader, over the forwarder's kept-alive connections: one hop only. A
 * request that already carries the forwarded-by header is never forwarded again, so two nodes
 * with different ideas of the leader cannot bounce a request between them.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "server/api.h"
#include "server/api_internal.h"
#include "http/forward.h"
#include "server/node.h"

/* Longer than a write's own wait for PostgreSQL, so the leader answers first. */
#define FORWARD_TIMEOUT_MS 15000

static const struct http_header retry1[] = {{"Retry-After", "1"}, {NULL, NULL}};

static void not_leader(struct api_call *call, uint64_t leader, const char *why)
{
    http_respond_error_ex(call->req, 503, retry1,
                          json_pack("{s:I}", "leader_id", (json_int_t)leader), "unavailable",
                          "%s; retry in a moment", why);
    api_reply_done(call);
}

static void forwarded(void *data, int rc, const struct forward_response *resp, const char *errmsg)
{
    struct api_call *call = data;
    if (rc == 0) {
        api_phases_forwarded(call);
    }
    if (rc != 0) {
        fprintf(stderr, "forward: rid=%s %s\n", http_request_id(call->req), errmsg);
        if (rc == FWD_ETLS) {
            /* Nothing was sent, and waiting does not fix a certificate: no Retry-After. */
            http_respond_error(call->req, 502, "leader_untrusted",
                               "the leader's https certificate was refused, nothing was sent to "
                               "it (%s); check that every node's http certificate is signed by "
                               "the cluster's ca (raft.ca_file) and names conclave-node-<id>",
                               errmsg);
            api_reply_done(call);
            return;
        }
        /* Only a request that was certainly never sent failed for sure; for a write, any
         * other failure (timeout, reset after sending, a broken answer) leaves the outcome
         * unknown, and calling it a failure would be a lie a linearizability check catches. */
        if (rc != FWD_EUNREACHABLE && strcmp(http_request_method(call->req), "GET") != 0) {
            http_respond_error_ex(call->req, 504, NULL, NULL, "outcome_unknown",
                                  "the leader's answer was lost (%s); retry with the same "
                                  "request_id to learn the outcome",
                                  errmsg);
            api_reply_done(call);
            return;
        }
        char why[600];
        snprintf(why, sizeof(why), "the leader could not be reached (%s)", errmsg);
        not_leader(call, 0, why);
        return;
    }
    struct http_header h[7];
    int n = 0;
    if (resp->content_type != NULL) {
        h[n++] = (struct http_header){"Content-Type", resp->content_type};
    }
    if (resp->retry_after != NULL) {
        h[n++] = (struct http_header){"Retry-After", resp->retry_after};
    }
    if (resp->etag != NULL) {
        h[n++] = (struct http_header){"ETag", resp->etag};
    }
    if (resp->conclave_index != NULL) {
        h[n++] = (struct http_header){"X-Conclave-Index", resp->conclave_index};
    }
    if (resp->www_authenticate != NULL) {
        h[n++] = (struct http_header){"WWW-Authenticate", resp->www_authenticate};
    }
    h[n] = (struct http_header){NULL, NULL};
    http_respond(call->req, resp->status, h, resp->body, resp->len);
    api_phases_answered(call);
    api_reply_done(call);
}

void api_forward_to_leader(struct node *node, struct api_call *call)
{
    struct rnode_info info;
    rnode_info(node->raft, &info);
    if (http_request_header(call->req, FWD_HEADER_FORWARDED_BY) != NULL) {
        not_leader(call, info.leader_id,
                   "this node is not the leader either (the request was already forwarded "
                   "once)");
        return;
    }
    if (info.leader_id == 0 || info.leader_id == node->conf->node_id) {
        not_leader(call, info.leader_id,
                   info.leader_id == 0 ? "no leader is elected right now"
                                       : "this node leads but is not ready yet");
        return;
    }
    const char *http = NULL;
    for (unsigned i = 0; i < node->conf->raft.nbootstrap; i++) {
        if (node->conf->raft.bootstrap[i].id == info.leader_id &&
            node->conf->raft.bootstrap[i].http[0] != '\0') {
            http = node->conf->raft.bootstrap[i].http;
        }
    }
    if (http == NULL || node->fwd == NULL) {
        not_leader(call, info.leader_id,
                   "this node is not the leader and does not know the leader's http address "
                   "(raft.peers[].http); send the request to the leader");
        return;
    }
    /* A node whose own API speaks https forwards over https: the leader must prove, with a
     * certificate of the cluster's CA, that it is the node raft elected (docs/security.md). */
    bool https = node->conf->http_cert_file != NULL;
    char base[96], name[64], target[8192], err[256];
    snprintf(base, sizeof(base), "%s://%s", https ? "https" : "http", http);
    snprintf(name, sizeof(name), "conclave-node-%" PRIu64, info.leader_id);
    const char *query = http_request_query(call->req);
    snprintf(target, sizeof(target), "%s%s%s", http_request_path(call->req), query[0] ? "?" : "",
             query);
    size_t len = 0;
    const char *body = http_request_body(call->req, &len);
    const char *method = http_request_method(call->req);
    bool with_body = strcmp(method, "GET") != 0 && strcmp(method, "DELETE") != 0;
    api_phases_forwarding(call);
    /* The conditional headers of a write travel with it: the leader evaluates them. */
    struct http_header cond[3] = {{NULL, NULL}, {NULL, NULL}, {NULL, NULL}};
    size_t nc = 0;
    static const char *const conditional[] = {"If-Match", "If-None-Match"};
    for (size_t i = 0; i < 2; i++) {
        const char *v = http_request_header(call->req, conditional[i]);
        if (v != NULL) {
            cond[nc++] = (struct http_header){conditional[i], v};
        }
    }
    /* A console request authenticated (and CSRF-checked) here by its cookie reaches the
     * leader as what it is, the session's bearer token: cookies are not forwarded. */
    char bearer[sizeof(call->cookie_token) + 8];
    const char *authorization = http_request_header(call->req, "Authorization");
    if (authorization == NULL && call->via_cookie) {
        snprintf(bearer, sizeof(bearer), "Bearer %s", call->cookie_token);
        authorization = bearer;
    }
    if (forward_send_ex(node->fwd, base, https ? name : NULL, method, target, authorization,
                        http_request_id(call->req), cond, with_body ? body : NULL,
                        with_body ? len : 0, FORWARD_TIMEOUT_MS, forwarded, call, err,
                        sizeof(err)) != 0) {
        fprintf(stderr, "forward: rid=%s %s\n", http_request_id(call->req), err);
        not_leader(call, info.leader_id, "forwarding to the leader failed");
    }
    sodium_memzero(bearer, sizeof(bearer));
}

bool api_lead_or_forward(struct api_call *call)
{
    struct node *node = call->node;
    if (node->raft == NULL) {
        api_error(call, 503, "unavailable",
                  "this node runs without raft (no \"raft\" section in its configuration)");
        return false;
    }
    if (rnode_ready(node->raft)) {
        return true;
    }
    api_forward_to_leader(node, call);
    return false;
}
