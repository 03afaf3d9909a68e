/*
 * A config write's phases, timed on the loop thread with uv_hrtime() and counted in the node's
 * metrics (docs/operations.md, "Where a write's time goes"). The timestamps travel on the write's
 * own api_call, so every write is measured on its own, whatever else the node does meanwhile;
 * the raft commit point comes from rnode_commit_ns().
 *
 *   first byte ─ HTTP in ─► handler ─ prepare ─► proposed ─ propose to commit ─► committed
 *   ─ commit to apply ─► applied ─ apply to PostgreSQL commit ─► outcome ─ answer out ─► written
 *
 * A follower that forwards the write times "HTTP in", then "forward" (handed to the forwarding
 * client to the leader's answer back), then "answer out"; the leader times the forwarded
 * request as a write of its own.
 */
#include <uv.h>

#include "server/api_internal.h"
#include "server/metrics.h"
#include "server/node.h"

void api_phases_handler(struct api_call *call)
{
    uint64_t now = uv_hrtime();
    call->phases.handler_ns = now;
    metrics_observe_phase(call->node->metrics, METRICS_PHASE_HTTP_IN,
                          http_request_start_ns(call->req), now);
}

void api_phases_forwarding(struct api_call *call)
{
    if (call->phases.handler_ns != 0) {
        call->phases.forward_ns = uv_hrtime();
    }
}

void api_phases_forwarded(struct api_call *call)
{
    if (call->phases.forward_ns == 0) {
        return;
    }
    uint64_t now = uv_hrtime();
    metrics_observe_phase(call->node->metrics, METRICS_PHASE_FORWARD, call->phases.forward_ns, now);
    call->phases.outcome_ns = now;
}

void api_phases_proposed(struct api_call *call, uint64_t at_ns)
{
    call->phases.proposed_ns = at_ns;
    metrics_observe_phase(call->node->metrics, METRICS_PHASE_PREPARE, call->phases.handler_ns,
                          at_ns);
}

void api_phases_applied(struct api_call *call)
{
    struct node *node = call->node;
    if (call->phases.proposed_ns == 0 || node->raft == NULL) {
        return;
    }
    uint64_t now = uv_hrtime();
    uint64_t committed = rnode_commit_ns(node->raft);
    metrics_observe_phase(node->metrics, METRICS_PHASE_PROPOSE_COMMIT, call->phases.proposed_ns,
                          committed);
    metrics_observe_phase(node->metrics, METRICS_PHASE_COMMIT_APPLY, committed, now);
    call->phases.applied_ns = now;
}

void api_phases_materialized(struct api_call *call)
{
    if (call->phases.handler_ns == 0) {
        return;
    }
    uint64_t now = uv_hrtime();
    metrics_observe_phase(call->node->metrics, METRICS_PHASE_APPLY_PG, call->phases.applied_ns,
                          now);
    call->phases.outcome_ns = now;
}

void api_phases_answered(struct api_call *call)
{
    metrics_observe_phase(call->node->metrics, METRICS_PHASE_ANSWER_OUT, call->phases.outcome_ns,
                          uv_hrtime());
    /* Counted once, even if a caller reached this twice. */
    call->phases.outcome_ns = 0;
}
