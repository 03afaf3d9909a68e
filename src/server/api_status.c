/*
 * The status endpoints: /health (who leads, how far this node applied), /ready (PostgreSQL is
 * reachable) and /metrics (the node's counters and gauges, rendered by server/metrics.c). They
 * live here, not beside the histogram code, so that the metrics module includes nothing of the
 * API or the node: it only counts and renders.
 */
#include <stdlib.h>
#include <string.h>

#include "server/api_internal.h"
#include "server/metrics.h"
#include "server/node.h"

void api_status_health(struct api_call *call)
{
    /* No secret here: enough for an operator's script to see who leads and how far each
     * node has applied (scripts/cluster status). */
    struct node *node = call->node;
    json_t *raft = json_null();
    if (node->raft != NULL) {
        struct rnode_info info;
        rnode_info(node->raft, &info);
        raft = json_pack("{s:s,s:b,s:I,s:I,s:I,s:I}", "state", info.state, "ready", info.ready,
                         "term", (json_int_t)info.term, "leader_id", (json_int_t)info.leader_id,
                         "commit_index", (json_int_t)info.commit_index, "applied_index",
                         (json_int_t)info.applied_index);
    }
    api_reply(call, 200,
              json_pack("{s:s,s:I,s:o}", "status", "ok", "node_id", (json_int_t)node->conf->node_id,
                        "raft", raft));
}

void api_status_ready(struct api_call *call)
{
    if (!pgpool_healthy(call->node->pool)) {
        api_error(call, 503, "unavailable", "postgresql is not reachable yet");
        return;
    }
    if (call->node->matd != NULL) {
        /* A leader whose materializer keeps failing acknowledges no write: not ready, and
         * the answer says which revision and PostgreSQL's words, so an operator can act. */
        struct materializer_stats ms;
        materializer_stats(call->node->matd, &ms);
        if (ms.postgresql_ahead) {
            api_error(call, 503, "postgresql_ahead",
                      "postgresql is ahead of the cluster: it holds revisions up to %llu (raft "
                      "index %llu) and the cluster's state machine only %llu: the nodes' raft "
                      "data is older than the database (emptied, or restored from an older "
                      "copy) or the database is another cluster's; writes are refused until the "
                      "nodes' raft data matches the database (docs/backup.md)",
                      (unsigned long long)ms.ahead_pg_revision,
                      (unsigned long long)ms.ahead_pg_index,
                      (unsigned long long)ms.ahead_fsm_revision);
            return;
        }
        if (ms.postgresql_behind) {
            /* The leader only (followers do not read the cursor; they answer ready and
             * forward writes, which the leader refuses). */
            api_error(call, 503, "postgresql_behind",
                      "postgresql is behind the cluster: it lacks revisions %llu..%llu (raft "
                      "indexes %llu..%llu) that every node already trimmed; writes are refused "
                      "until a newer backup is restored or the loss is accepted with: conclave "
                      "admin accept-postgresql-loss --revisions %llu..%llu --raft-indexes "
                      "%llu..%llu (docs/operations.md)%s%s",
                      (unsigned long long)ms.missing_from, (unsigned long long)ms.missing_to,
                      (unsigned long long)ms.missing_from_index,
                      (unsigned long long)ms.missing_to_index, (unsigned long long)ms.missing_from,
                      (unsigned long long)ms.missing_to, (unsigned long long)ms.missing_from_index,
                      (unsigned long long)ms.missing_to_index, ms.behind_note[0] ? "; " : "",
                      ms.behind_note);
            return;
        }
        if (ms.stalled && ms.failed_revision != 0) {
            api_error(call, 503, "materializer_stalled",
                      "the materializer cannot write revision %llu (raft index %llu) to "
                      "postgresql (%llu attempts in a row): %s",
                      (unsigned long long)ms.failed_revision,
                      (unsigned long long)ms.failed_raft_index,
                      (unsigned long long)ms.failures_in_row, ms.last_error);
            return;
        }
        if (ms.stalled) {
            api_error(call, 503, "materializer_stalled",
                      "the materializer cannot read its cursor from postgresql (%llu attempts in "
                      "a row): %s",
                      (unsigned long long)ms.failures_in_row, ms.last_error);
            return;
        }
    }
    api_reply(call, 200, json_pack("{s:s}", "status", "ready"));
}

static void gather(struct node *node, struct metrics_gauges *g)
{
    memset(g, 0, sizeof(*g));
    if (node->raft != NULL) {
        struct rnode_info info;
        rnode_info(node->raft, &info);
        /* The scrape is an observation too: it catches a change the sampler has not seen. */
        metrics_observe_leader(node->metrics, info.leader_id);
        g->has_raft = true;
        g->raft_term = info.term;
        g->raft_commit_index = info.commit_index;
        g->raft_applied_index = info.applied_index;
        g->raft_is_leader = strcmp(info.state, "leader") == 0;
        g->raft_read_index_rounds = info.read_rounds;
        g->raft_read_index_reads = info.read_index_reads;
        g->fsm_revision = fsm_revision(node->fsm);
        g->fsm_pending_revisions = fsm_pending_count(node->fsm);
        g->fsm_configs = fsm_config_count(node->fsm);
        g->fsm_live_bytes = fsm_live_bytes(node->fsm);
        g->materializer_lag_revisions = g->fsm_pending_revisions;
        metrics_histogram_init(&g->materializer_batch_size, NULL, 0);
        metrics_histogram_init(&g->materializer_batch_seconds, NULL, 0);
        metrics_histogram_init(&g->materializer_transaction_seconds, NULL, 0);
        if (node->matd != NULL) {
            struct materializer_stats ms;
            materializer_stats(node->matd, &ms);
            g->materializer_lag_revisions = ms.lag_revisions;
            g->materializer_batches = ms.batches;
            g->materializer_failures = ms.failures;
            g->request_id_filter_new = ms.filter_new;
            g->request_id_filter_lookup = ms.filter_lookup;
            g->request_id_filter_revision = ms.filter_revision;
            g->materializer_batch_size = ms.batch_size;
            g->materializer_batch_seconds = ms.batch_seconds;
            g->materializer_transaction_seconds = ms.transaction_seconds;
            g->materializer_stalled = ms.stalled;
            g->materializer_failures_in_row = ms.failures_in_row;
            g->materializer_stalled_raft_index = ms.stalled ? ms.failed_raft_index : 0;
            g->materializer_postgresql_behind = ms.postgresql_behind;
            g->materializer_postgresql_ahead = ms.postgresql_ahead;
            g->materializer_missing_from_revision = ms.missing_from;
            g->materializer_missing_to_revision = ms.missing_to;
            g->materializer_missing_from_raft_index = ms.missing_from_index;
            g->materializer_missing_to_raft_index = ms.missing_to_index;
        }
    }
    if (node->pool != NULL) {
        struct pgpool_stats ps;
        pgpool_stats(node->pool, &ps);
        g->has_pool = true;
        g->pool_connections_open = ps.connections_open > 0 ? (uint64_t)ps.connections_open : 0;
        g->pool_busy = ps.busy > 0 ? (uint64_t)ps.busy : 0;
        g->pool_queued = ps.queued > 0 ? (uint64_t)ps.queued : 0;
        g->pool_jobs = ps.jobs_total;
        g->pool_jobs_failed = ps.jobs_failed;
        g->pool_connect_failures = ps.connect_failures;
    }
    g->auth_cache_entries = authcache_size(node->cache);
    g->has_process = procstat_read(&g->process) == 0;
    if (node->watch != NULL) {
        struct watch_hub_stats ws;
        watch_hub_stats(node->watch, &ws);
        g->has_watch = true;
        g->watch_waiting = ws.waiting;
        g->watch_queries = ws.queries;
        g->watch_answered = ws.answered;
    }
}

void api_status_metrics(struct api_call *call)
{
    struct metrics_gauges g;
    char *text = NULL;
    size_t len = 0;
    gather(call->node, &g);
    if (metrics_render(call->node->metrics, &g, &text, &len) != 0) {
        api_error(call, 500, "internal", "out of memory rendering the metrics");
        return;
    }
    static const struct http_header type[] = {{"Content-Type", METRICS_CONTENT_TYPE}, {NULL, NULL}};
    http_respond(call->req, 200, type, text, len);
    free(text);
    api_reply_done(call);
}
