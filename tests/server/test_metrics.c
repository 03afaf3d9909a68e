/*
 * metrics: the exposition text for a few observations, byte for byte; label escaping;
 * cumulative histogram buckets with +Inf, _sum and _count; leader change counting.
 */
#include <setjmp.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "server/metrics.h"

#define REQS_HEAD                                                                                  \
    "# HELP conclave_http_requests_total HTTP requests answered, by route pattern (\"other\": "    \
    "no route matched), method and status code.\n"                                                 \
    "# TYPE conclave_http_requests_total counter\n"
#define DURS_HEAD                                                                                  \
    "# HELP conclave_http_request_duration_seconds Time from the first byte of a request to its "  \
    "answer being queued, by route pattern and method.\n"                                          \
    "# TYPE conclave_http_request_duration_seconds histogram\n"

/* Removes every line of the write phase families (conclave_write_*) and of conclave_build_info
 * from TEXT, in place. They are always rendered; test_write_phases and
 * test_build_info_and_process check them, the other tests the rest byte for byte. */
static void strip_phases(char *text)
{
    char *out = text;
    for (char *line = text; *line != '\0';) {
        char *end = strchr(line, '\n');
        size_t n = end != NULL ? (size_t)(end - line) + 1 : strlen(line);
        bool phase = strncmp(line, "conclave_write_", 15) == 0 ||
                     strncmp(line, "# HELP conclave_write_", 22) == 0 ||
                     strncmp(line, "# TYPE conclave_write_", 22) == 0 ||
                     strncmp(line, "conclave_build_info", 19) == 0 ||
                     strncmp(line, "# HELP conclave_build_info", 26) == 0 ||
                     strncmp(line, "# TYPE conclave_build_info", 26) == 0;
        if (!phase) {
            memmove(out, line, n);
            out += n;
        }
        line += n;
    }
    *out = '\0';
}

static char *render_all(const struct metrics *m, const struct metrics_gauges *g)
{
    char *text = NULL;
    size_t len = 0;
    assert_int_equal(metrics_render(m, g, &text, &len), 0);
    assert_non_null(text);
    assert_int_equal(len, strlen(text));
    return text;
}

static char *render(const struct metrics *m, const struct metrics_gauges *g)
{
    char *text = render_all(m, g);
    strip_phases(text);
    return text;
}

static void test_empty(void **state)
{
    (void)state;
    struct metrics *m = metrics_new();
    assert_non_null(m);
    char *text = render(m, NULL);
    assert_string_equal(text, REQS_HEAD DURS_HEAD);
    free(text);
    metrics_free(m);
}

static void test_requests_exact(void **state)
{
    (void)state;
    struct metrics *m = metrics_new();
    const char *put = "/v1/projects/{project}/configs/{ckey}";
    /* Out of order on purpose: the output is sorted by route, method, status. Durations are
     * powers of two so that the sums are exact; 0.5 sits on a bound (le is inclusive). */
    metrics_observe_request(m, NULL, "GET", 404, 20);
    metrics_observe_request(m, put, "PUT", 409, 0.5);
    metrics_observe_request(m, put, "PUT", 200, 0.0009765625);
    metrics_observe_request(m, put, "PUT", 200, 0.0078125);
    metrics_observe_request(m, "/health", "GET", 200, 0);
    char *text = render(m, NULL);
    const char *want = REQS_HEAD
        "conclave_http_requests_total{route=\"/health\",method=\"GET\",code=\"200\"} 1\n"
        "conclave_http_requests_total{route=\"/v1/projects/{project}/configs/{ckey}\","
        "method=\"PUT\",code=\"200\"} 2\n"
        "conclave_http_requests_total{route=\"/v1/projects/{project}/configs/{ckey}\","
        "method=\"PUT\",code=\"409\"} 1\n"
        "conclave_http_requests_total{route=\"other\",method=\"GET\",code=\"404\"} 1\n" DURS_HEAD
        "conclave_http_request_duration_seconds_bucket{route=\"/health\",method=\"GET\","
        "le=\"0.0005\"} 1\n"
        "conclave_http_request_duration_seconds_bucket{route=\"/health\",method=\"GET\","
        "le=\"0.001\"} 1\n"
        "conclave_http_request_duration_seconds_bucket{route=\"/health\",method=\"GET\","
        "le=\"0.0025\"} 1\n"
        "conclave_http_request_duration_seconds_bucket{route=\"/health\",method=\"GET\","
        "le=\"0.005\"} 1\n"
        "conclave_http_request_duration_seconds_bucket{route=\"/health\",method=\"GET\","
        "le=\"0.01\"} 1\n"
        "conclave_http_request_duration_seconds_bucket{route=\"/health\",method=\"GET\","
        "le=\"0.025\"} 1\n"
        "conclave_http_request_duration_seconds_bucket{route=\"/health\",method=\"GET\","
        "le=\"0.05\"} 1\n"
        "conclave_http_request_duration_seconds_bucket{route=\"/health\",method=\"GET\","
        "le=\"0.1\"} 1\n"
        "conclave_http_request_duration_seconds_bucket{route=\"/health\",method=\"GET\","
        "le=\"0.25\"} 1\n"
        "conclave_http_request_duration_seconds_bucket{route=\"/health\",method=\"GET\","
        "le=\"0.5\"} 1\n"
        "conclave_http_request_duration_seconds_bucket{route=\"/health\",method=\"GET\","
        "le=\"1\"} 1\n"
        "conclave_http_request_duration_seconds_bucket{route=\"/health\",method=\"GET\","
        "le=\"2.5\"} 1\n"
        "conclave_http_request_duration_seconds_bucket{route=\"/health\",method=\"GET\","
        "le=\"5\"} 1\n"
        "conclave_http_request_duration_seconds_bucket{route=\"/health\",method=\"GET\","
        "le=\"10\"} 1\n"
        "conclave_http_request_duration_seconds_bucket{route=\"/health\",method=\"GET\","
        "le=\"+Inf\"} 1\n"
        "conclave_http_request_duration_seconds_sum{route=\"/health\",method=\"GET\"} 0\n"
        "conclave_http_request_duration_seconds_count{route=\"/health\",method=\"GET\"} 1\n"
#define P                                                                                          \
    "conclave_http_request_duration_seconds_bucket{route=\"/v1/projects/{project}/configs/"        \
    "{ckey}\",method=\"PUT\","
        P "le=\"0.0005\"} 0\n" P "le=\"0.001\"} 1\n" P "le=\"0.0025\"} 1\n" P "le=\"0.005\"} 1\n" P
        "le=\"0.01\"} 2\n" P "le=\"0.025\"} 2\n" P "le=\"0.05\"} 2\n" P "le=\"0.1\"} 2\n" P
        "le=\"0.25\"} 2\n" P "le=\"0.5\"} 3\n" P "le=\"1\"} 3\n" P "le=\"2.5\"} 3\n" P
        "le=\"5\"} 3\n" P "le=\"10\"} 3\n" P "le=\"+Inf\"} 3\n"
#undef P
        "conclave_http_request_duration_seconds_sum{route=\"/v1/projects/{project}/configs/"
        "{ckey}\",method=\"PUT\"} 0.5087890625\n"
        "conclave_http_request_duration_seconds_count{route=\"/v1/projects/{project}/configs/"
        "{ckey}\",method=\"PUT\"} 3\n"
#define P "conclave_http_request_duration_seconds_bucket{route=\"other\",method=\"GET\","
        P "le=\"0.0005\"} 0\n" P "le=\"0.001\"} 0\n" P "le=\"0.0025\"} 0\n" P "le=\"0.005\"} 0\n" P
        "le=\"0.01\"} 0\n" P "le=\"0.025\"} 0\n" P "le=\"0.05\"} 0\n" P "le=\"0.1\"} 0\n" P
        "le=\"0.25\"} 0\n" P "le=\"0.5\"} 0\n" P "le=\"1\"} 0\n" P "le=\"2.5\"} 0\n" P
        "le=\"5\"} 0\n" P "le=\"10\"} 0\n" P "le=\"+Inf\"} 1\n"
#undef P
        "conclave_http_request_duration_seconds_sum{route=\"other\",method=\"GET\"} 20\n"
        "conclave_http_request_duration_seconds_count{route=\"other\",method=\"GET\"} 1\n";
    assert_string_equal(text, want);
    free(text);
    metrics_free(m);
}

static void test_label_escaping(void **state)
{
    (void)state;
    struct metrics *m = metrics_new();
    metrics_observe_request(m, "/a\"b\\c\nd", "", 200, 1);
    char *text = render(m, NULL);
    assert_non_null(strstr(text, "conclave_http_requests_total{route=\"/a\\\"b\\\\c\\nd\","
                                 "method=\"-\",code=\"200\"} 1\n"));
    assert_non_null(strstr(text, "conclave_http_request_duration_seconds_count{route="
                                 "\"/a\\\"b\\\\c\\nd\",method=\"-\"} 1\n"));
    /* The raw line feed never reaches the output: every line is a comment or a sample. */
    for (const char *line = text; *line != '\0'; line = strchr(line, '\n') + 1) {
        assert_true(line[0] == '#' || strncmp(line, "conclave_", 9) == 0);
    }
    free(text);
    metrics_free(m);
}

/* The PostgreSQL-behind gauges of test_histogram_cumulative (docs/operations.md). */
#define BEHIND_GAUGES                                                                              \
    "# HELP conclave_materializer_postgresql_behind 1 while this leader finds PostgreSQL behind "  \
    "the cluster: it lacks revisions every node already trimmed (an older backup restored?); "     \
    "writes are refused with 503 postgresql_behind.\n"                                             \
    "# TYPE conclave_materializer_postgresql_behind gauge\n"                                       \
    "conclave_materializer_postgresql_behind 1\n"                                                  \
    "# HELP conclave_materializer_postgresql_ahead 1 while PostgreSQL holds revisions past this "  \
    "cluster's state machine (the nodes' raft data is older than the database): writes are "       \
    "refused with 503 postgresql_ahead.\n"                                                         \
    "# TYPE conclave_materializer_postgresql_ahead gauge\n"                                        \
    "conclave_materializer_postgresql_ahead 0\n"                                                   \
    "# HELP conclave_materializer_postgresql_missing_revisions How many revisions PostgreSQL "     \
    "lacks while it is behind, else 0.\n"                                                          \
    "# TYPE conclave_materializer_postgresql_missing_revisions gauge\n"                            \
    "conclave_materializer_postgresql_missing_revisions 4\n"                                       \
    "# HELP conclave_materializer_postgresql_missing_from_revision The first revision "            \
    "PostgreSQL lacks (0 when it is not behind).\n"                                                \
    "# TYPE conclave_materializer_postgresql_missing_from_revision gauge\n"                        \
    "conclave_materializer_postgresql_missing_from_revision 30\n"                                  \
    "# HELP conclave_materializer_postgresql_missing_to_revision The last revision PostgreSQL "    \
    "lacks (0 when it is not behind).\n"                                                           \
    "# TYPE conclave_materializer_postgresql_missing_to_revision gauge\n"                          \
    "conclave_materializer_postgresql_missing_to_revision 33\n"                                    \
    "# HELP conclave_materializer_postgresql_missing_from_raft_index The first raft index of the " \
    "lost range, just after PostgreSQL's cursor (0 when it is not behind).\n"                      \
    "# TYPE conclave_materializer_postgresql_missing_from_raft_index gauge\n"                      \
    "conclave_materializer_postgresql_missing_from_raft_index 50\n"                                \
    "# HELP conclave_materializer_postgresql_missing_to_raft_index The raft index of the last "    \
    "revision PostgreSQL lacks (0 when it is not behind).\n"                                       \
    "# TYPE conclave_materializer_postgresql_missing_to_raft_index gauge\n"                        \
    "conclave_materializer_postgresql_missing_to_raft_index 61\n"

static void test_histogram_cumulative(void **state)
{
    (void)state;
    static const double bounds[] = {0.5, 1, 2.5};
    struct metrics_histogram h;
    metrics_histogram_init(&h, bounds, 3);
    metrics_histogram_observe(&h, 0.25);
    metrics_histogram_observe(&h, 0.5);
    metrics_histogram_observe(&h, 2);
    metrics_histogram_observe(&h, 7);
    assert_int_equal(h.buckets[0], 2);
    assert_int_equal(h.buckets[1], 0);
    assert_int_equal(h.buckets[2], 1);
    assert_int_equal(h.count, 4);

    /* Rendered as the materializer's batch size, with the rest of the gauges. */
    struct metrics *m = metrics_new();
    metrics_observe_leader(m, 0);
    metrics_observe_leader(m, 1);
    metrics_observe_leader(m, 1);
    metrics_observe_leader(m, 0); /* an election: no leader known for a moment */
    metrics_observe_leader(m, 1); /* the same leader again is no change */
    metrics_observe_leader(m, 3);
    struct metrics_gauges g = {
        .has_raft = true,
        .raft_term = 7,
        .raft_commit_index = 120,
        .raft_applied_index = 119,
        .raft_is_leader = true,
        .raft_read_index_rounds = 17,
        .raft_read_index_reads = 230,
        .fsm_revision = 42,
        .fsm_pending_revisions = 5,
        .fsm_configs = 1000000,
        .fsm_live_bytes = 262000000,
        .materializer_lag_revisions = 2,
        .materializer_batches = 4,
        .request_id_filter_new = 9,
        .request_id_filter_lookup = 3,
        .request_id_filter_revision = 40,
        .materializer_failures = 1,
        .materializer_stalled = true,
        .materializer_failures_in_row = 3,
        .materializer_stalled_raft_index = 41,
        .materializer_postgresql_behind = true,
        .materializer_missing_from_revision = 30,
        .materializer_missing_to_revision = 33,
        .materializer_missing_from_raft_index = 50,
        .materializer_missing_to_raft_index = 61,
        .materializer_batch_size = h,
        .has_pool = true,
        .pool_connections_open = 3,
        .pool_busy = 1,
        .pool_queued = 0,
        .pool_jobs = 1000,
        .pool_jobs_failed = 2,
        .pool_connect_failures = 6,
        .auth_cache_entries = 9,
    };
    metrics_histogram_init(&g.materializer_batch_seconds, bounds, 3);
    metrics_histogram_observe(&g.materializer_batch_seconds, 0.25);
    metrics_histogram_observe(&g.materializer_batch_seconds, 2);
    char *text = render(m, &g);
    const char *want =
        REQS_HEAD DURS_HEAD "# HELP conclave_raft_term The current raft term.\n"
                            "# TYPE conclave_raft_term gauge\n"
                            "conclave_raft_term 7\n"
                            "# HELP conclave_raft_commit_index The highest raft index known to be "
                            "committed.\n"
                            "# TYPE conclave_raft_commit_index gauge\n"
                            "conclave_raft_commit_index 120\n"
                            "# HELP conclave_raft_applied_index The highest raft index applied to "
                            "the state machine.\n"
                            "# TYPE conclave_raft_applied_index gauge\n"
                            "conclave_raft_applied_index 119\n"
                            "# HELP conclave_raft_is_leader 1 when this node is the raft leader, "
                            "else 0.\n"
                            "# TYPE conclave_raft_is_leader gauge\n"
                            "conclave_raft_is_leader 1\n"
                            "# HELP conclave_raft_leader_changes_total Changes of the leader this "
                            "node observed (sampled every second), the first leader included.\n"
                            "# TYPE conclave_raft_leader_changes_total counter\n"
                            "conclave_raft_leader_changes_total 2\n"
                            "# HELP conclave_raft_read_index_rounds_total ReadIndex rounds "
                            "(probes to the voters) this node started for linearizable "
                            "reads.\n"
                            "# TYPE conclave_raft_read_index_rounds_total counter\n"
                            "conclave_raft_read_index_rounds_total 17\n"
                            "# HELP conclave_raft_read_index_reads_total Linearizable reads "
                            "this node answered after a ReadIndex round, without a log "
                            "append.\n"
                            "# TYPE conclave_raft_read_index_reads_total counter\n"
                            "conclave_raft_read_index_reads_total 230\n"
                            "# HELP conclave_fsm_revision The last revision number of the state "
                            "machine.\n"
                            "# TYPE conclave_fsm_revision gauge\n"
                            "conclave_fsm_revision 42\n"
                            "# HELP conclave_fsm_pending_revisions Revisions in this node's state "
                            "machine queue that no materialized(N) entry covers yet.\n"
                            "# TYPE conclave_fsm_pending_revisions gauge\n"
                            "conclave_fsm_pending_revisions 5\n"
                            "# HELP conclave_fsm_configs Configs in this node's state machine, "
                            "tombstones included.\n"
                            "# TYPE conclave_fsm_configs gauge\n"
                            "conclave_fsm_configs 1000000\n"
                            "# HELP conclave_fsm_live_bytes Live data in this node's state "
                            "machine: the sum of the config key and live content lengths "
                            "(compare with the node process's resident memory).\n"
                            "# TYPE conclave_fsm_live_bytes gauge\n"
                            "conclave_fsm_live_bytes 262000000\n"
                            "# HELP conclave_materializer_lag_revisions Queued revisions beyond "
                            "the materializer's PostgreSQL cursor (on a follower: every queued "
                            "revision).\n"
                            "# TYPE conclave_materializer_lag_revisions gauge\n"
                            "conclave_materializer_lag_revisions 2\n"
                            "# HELP conclave_request_id_filter_new_total Writes of a project "
                            "whose old request ids the state machine may have forgotten, "
                            "proposed without a PostgreSQL lookup because the leader's "
                            "request-id filter proved the id new.\n"
                            "# TYPE conclave_request_id_filter_new_total counter\n"
                            "conclave_request_id_filter_new_total 9\n"
                            "# HELP conclave_request_id_filter_lookups_total Such writes whose "
                            "request id was looked up in PostgreSQL (the filter may contain it, "
                            "is loading, or lags the trimmed revisions).\n"
                            "# TYPE conclave_request_id_filter_lookups_total counter\n"
                            "conclave_request_id_filter_lookups_total 3\n"
                            "# HELP conclave_request_id_filter_revision The revision up to which "
                            "the leader's request-id filter holds every request id of "
                            "config_revisions.\n"
                            "# TYPE conclave_request_id_filter_revision gauge\n"
                            "conclave_request_id_filter_revision 40\n"
                            "# HELP conclave_materializer_batches_total Batches of revisions this "
                            "node wrote to PostgreSQL as leader.\n"
                            "# TYPE conclave_materializer_batches_total counter\n"
                            "conclave_materializer_batches_total 4\n"
                            "# HELP conclave_materializer_batch_size Revisions per batch written "
                            "to PostgreSQL.\n"
                            "# TYPE conclave_materializer_batch_size histogram\n"
                            "conclave_materializer_batch_size_bucket{le=\"0.5\"} 2\n"
                            "conclave_materializer_batch_size_bucket{le=\"1\"} 2\n"
                            "conclave_materializer_batch_size_bucket{le=\"2.5\"} 3\n"
                            "conclave_materializer_batch_size_bucket{le=\"+Inf\"} 4\n"
                            "conclave_materializer_batch_size_sum 9.75\n"
                            "conclave_materializer_batch_size_count 4\n"
                            "# HELP conclave_materializer_batch_seconds Batches this node wrote "
                            "to PostgreSQL as leader: from handing the batch to a pool worker to "
                            "its outcome being back on the loop.\n"
                            "# TYPE conclave_materializer_batch_seconds histogram\n"
                            "conclave_materializer_batch_seconds_bucket{le=\"0.5\"} 1\n"
                            "conclave_materializer_batch_seconds_bucket{le=\"1\"} 1\n"
                            "conclave_materializer_batch_seconds_bucket{le=\"2.5\"} 2\n"
                            "conclave_materializer_batch_seconds_bucket{le=\"+Inf\"} 2\n"
                            "conclave_materializer_batch_seconds_sum 2.25\n"
                            "conclave_materializer_batch_seconds_count 2\n"
                            "# HELP conclave_materializer_transaction_seconds The same batches: "
                            "time on the pool worker in the PostgreSQL transaction (its "
                            "statements and the commit), the rest of a batch's time being "
                            "hand-offs.\n"
                            "# TYPE conclave_materializer_transaction_seconds histogram\n"
                            "conclave_materializer_transaction_seconds_bucket{le=\"+Inf\"} 0\n"
                            "conclave_materializer_transaction_seconds_sum 0\n"
                            "conclave_materializer_transaction_seconds_count 0\n"
                            "# HELP conclave_materializer_failures_total Materializer jobs (cursor "
                            "reads and batch writes) that failed and were retried.\n"
                            "# TYPE conclave_materializer_failures_total counter\n"
                            "conclave_materializer_failures_total 1\n"
                            "# HELP conclave_materializer_stalled 1 while the leader's last "
                            "materializer attempt failed (writes are not acknowledged; /ready "
                            "says why), else 0.\n"
                            "# TYPE conclave_materializer_stalled gauge\n"
                            "conclave_materializer_stalled 1\n"
                            "# HELP conclave_materializer_consecutive_failures Materializer "
                            "attempts that failed in a row since the last success.\n"
                            "# TYPE conclave_materializer_consecutive_failures gauge\n"
                            "conclave_materializer_consecutive_failures 3\n"
                            "# HELP conclave_materializer_stalled_raft_index The first raft index "
                            "of the batch that keeps failing (0 when not stalled or when the "
                            "cursor read fails).\n"
                            "# TYPE conclave_materializer_stalled_raft_index gauge\n"
                            "conclave_materializer_stalled_raft_index 41\n" BEHIND_GAUGES
                            "# HELP conclave_pg_pool_connections_open PostgreSQL connections open "
                            "in the pool.\n"
                            "# TYPE conclave_pg_pool_connections_open gauge\n"
                            "conclave_pg_pool_connections_open 3\n"
                            "# HELP conclave_pg_pool_busy PostgreSQL jobs running on pool "
                            "workers.\n"
                            "# TYPE conclave_pg_pool_busy gauge\n"
                            "conclave_pg_pool_busy 1\n"
                            "# HELP conclave_pg_pool_queued PostgreSQL jobs waiting for a pool "
                            "worker.\n"
                            "# TYPE conclave_pg_pool_queued gauge\n"
                            "conclave_pg_pool_queued 0\n"
                            "# HELP conclave_pg_pool_jobs_total PostgreSQL jobs finished.\n"
                            "# TYPE conclave_pg_pool_jobs_total counter\n"
                            "conclave_pg_pool_jobs_total 1000\n"
                            "# HELP conclave_pg_pool_jobs_failed_total PostgreSQL jobs finished "
                            "with a failure status (including no connection).\n"
                            "# TYPE conclave_pg_pool_jobs_failed_total counter\n"
                            "conclave_pg_pool_jobs_failed_total 2\n"
                            "# HELP conclave_pg_pool_connect_failures_total Failed attempts to "
                            "open a PostgreSQL connection.\n"
                            "# TYPE conclave_pg_pool_connect_failures_total counter\n"
                            "conclave_pg_pool_connect_failures_total 6\n"
                            "# HELP conclave_auth_cache_entries Entries in this node's "
                            "authentication cache.\n"
                            "# TYPE conclave_auth_cache_entries gauge\n"
                            "conclave_auth_cache_entries 9\n";
    assert_string_equal(text, want);
    free(text);
    metrics_free(m);
}

/* The write phases: one histogram family per phase, in the order of a write, always rendered,
 * with the phase bounds (10 us to 10 s); an observation is the time between its two
 * timestamps, and one without a start (0), a negative one or an unknown phase is dropped. */
static void test_write_phases(void **state)
{
    (void)state;
    static const char *const names[] = {
        "conclave_write_http_in_seconds",
        "conclave_write_forward_seconds",
        "conclave_write_prepare_seconds",
        "conclave_write_propose_to_commit_seconds",
        "conclave_write_commit_to_apply_seconds",
        "conclave_write_apply_to_postgresql_commit_seconds",
        "conclave_write_answer_out_seconds",
    };
    assert_int_equal(sizeof(names) / sizeof(names[0]), METRICS_NPHASES);
    struct metrics *m = metrics_new();
    /* 500 us: on the 0.0005 bound (le is inclusive); 3 ms; 20 s: only in +Inf. */
    metrics_observe_phase(m, METRICS_PHASE_HTTP_IN, 1000000, 1500000);
    metrics_observe_phase(m, METRICS_PHASE_HTTP_IN, 7000000000, 7003000000);
    metrics_observe_phase(m, METRICS_PHASE_HTTP_IN, 1, 20000000001);
    metrics_observe_phase(m, METRICS_PHASE_ANSWER_OUT, 10, 20);
    metrics_observe_phase(m, METRICS_PHASE_FORWARD, 0, 5000);       /* no start: dropped */
    metrics_observe_phase(m, METRICS_PHASE_PREPARE, 5000, 4000);    /* negative: dropped */
    metrics_observe_phase(m, METRICS_NPHASES, 1000, 2000);          /* unknown: dropped */
    metrics_observe_phase(NULL, METRICS_PHASE_HTTP_IN, 1000, 2000); /* no metrics: nothing */
    char *text = render_all(m, NULL);
    const char *want_http_in =
        "# HELP conclave_write_http_in_seconds Config writes received by this node: from the "
        "first byte of the request to the write handler being called (request read, routed, "
        "caller authenticated and authorised, from the cache or PostgreSQL).\n"
        "# TYPE conclave_write_http_in_seconds histogram\n"
        "conclave_write_http_in_seconds_bucket{le=\"1e-05\"} 0\n"
        "conclave_write_http_in_seconds_bucket{le=\"2.5e-05\"} 0\n"
        "conclave_write_http_in_seconds_bucket{le=\"5e-05\"} 0\n"
        "conclave_write_http_in_seconds_bucket{le=\"0.0001\"} 0\n"
        "conclave_write_http_in_seconds_bucket{le=\"0.00015\"} 0\n"
        "conclave_write_http_in_seconds_bucket{le=\"0.0002\"} 0\n"
        "conclave_write_http_in_seconds_bucket{le=\"0.0003\"} 0\n"
        "conclave_write_http_in_seconds_bucket{le=\"0.0004\"} 0\n"
        "conclave_write_http_in_seconds_bucket{le=\"0.0005\"} 1\n"
        "conclave_write_http_in_seconds_bucket{le=\"0.00075\"} 1\n"
        "conclave_write_http_in_seconds_bucket{le=\"0.001\"} 1\n"
        "conclave_write_http_in_seconds_bucket{le=\"0.0015\"} 1\n"
        "conclave_write_http_in_seconds_bucket{le=\"0.002\"} 1\n"
        "conclave_write_http_in_seconds_bucket{le=\"0.003\"} 2\n"
        "conclave_write_http_in_seconds_bucket{le=\"0.005\"} 2\n"
        "conclave_write_http_in_seconds_bucket{le=\"0.01\"} 2\n"
        "conclave_write_http_in_seconds_bucket{le=\"0.025\"} 2\n"
        "conclave_write_http_in_seconds_bucket{le=\"0.05\"} 2\n"
        "conclave_write_http_in_seconds_bucket{le=\"0.1\"} 2\n"
        "conclave_write_http_in_seconds_bucket{le=\"0.25\"} 2\n"
        "conclave_write_http_in_seconds_bucket{le=\"0.5\"} 2\n"
        "conclave_write_http_in_seconds_bucket{le=\"1\"} 2\n"
        "conclave_write_http_in_seconds_bucket{le=\"2.5\"} 2\n"
        "conclave_write_http_in_seconds_bucket{le=\"10\"} 2\n"
        "conclave_write_http_in_seconds_bucket{le=\"+Inf\"} 3\n"
        "conclave_write_http_in_seconds_sum 20.0035\n"
        "conclave_write_http_in_seconds_count 3\n"
        "# HELP conclave_write_forward_seconds ";
    const char *at = strstr(text, "# HELP conclave_write_http_in_seconds ");
    assert_non_null(at);
    assert_memory_equal(at, want_http_in, strlen(want_http_in));
    /* Every family once, in the order of a write, right after the request durations. */
    const char *prev = strstr(text, "# TYPE conclave_http_request_duration_seconds histogram\n");
    assert_non_null(prev);
    for (size_t i = 0; i < METRICS_NPHASES; i++) {
        char line[160];
        snprintf(line, sizeof(line), "# TYPE %s histogram\n", names[i]);
        const char *p = strstr(text, line);
        assert_non_null(p);
        assert_true(p > prev);
        assert_null(strstr(p + 1, line));
        prev = p;
    }
    assert_non_null(strstr(text, "\nconclave_write_answer_out_seconds_bucket{le=\"1e-05\"} 1\n"));
    assert_non_null(strstr(text, "\nconclave_write_answer_out_seconds_sum 1e-08\n"));
    assert_non_null(strstr(text, "\nconclave_write_answer_out_seconds_count 1\n"));
    assert_non_null(strstr(text, "\nconclave_write_forward_seconds_count 0\n"));
    assert_non_null(strstr(text, "\nconclave_write_prepare_seconds_count 0\n"));
    assert_non_null(strstr(text, "\nconclave_write_propose_to_commit_seconds_count 0\n"));
    free(text);
    metrics_free(m);
}

/* conclave_build_info always; the process_* families with the gauges' figures, under the
 * names every Prometheus client library uses; and procstat's figures for this very process. */
static void test_build_info_and_process(void **state)
{
    (void)state;
    struct metrics *m = metrics_new();
    struct metrics_gauges g = {.has_process = true,
                               .process = {.cpu_seconds = 1.25,
                                           .resident_bytes = 4096,
                                           .virtual_bytes = 8192,
                                           .open_fds = 7,
                                           .max_fds = 1024,
                                           .start_time_seconds = 1765000000.5}};
    char *text = render_all(m, &g);
    assert_true(strncmp(text, "# HELP conclave_build_info ", 27) == 0);
    assert_non_null(
        strstr(text, "# TYPE conclave_build_info gauge\nconclave_build_info{version=\""));
    assert_non_null(strstr(text, "\",raft=\""));
    assert_non_null(strstr(text, "# TYPE process_cpu_seconds_total counter\n"
                                 "process_cpu_seconds_total 1.25\n"));
    assert_non_null(strstr(text, "\nprocess_resident_memory_bytes 4096\n"));
    assert_non_null(strstr(text, "\nprocess_virtual_memory_bytes 8192\n"));
    assert_non_null(strstr(text, "\nprocess_open_fds 7\n"));
    assert_non_null(strstr(text, "\nprocess_max_fds 1024\n"));
    assert_non_null(strstr(text, "# TYPE process_start_time_seconds gauge\n"
                                 "process_start_time_seconds 1765000000.5\n"));
    free(text);
    metrics_free(m);

    struct procstat p;
    assert_int_equal(procstat_read(&p), 0);
    assert_true(p.cpu_seconds >= 0 && p.cpu_seconds < 3600);
    assert_true(p.resident_bytes > 0 && p.resident_bytes <= p.virtual_bytes);
    assert_true(p.open_fds >= 3 && p.open_fds <= p.max_fds);
    double now = (double)time(NULL);
    assert_true(p.start_time_seconds > now - 3600 && p.start_time_seconds <= now + 1);
}

/* Without raft and pool only the families that exist are written: no raft sample at all. */
static void test_no_raft_families(void **state)
{
    (void)state;
    struct metrics *m = metrics_new();
    metrics_observe_leader(m, 2);
    struct metrics_gauges g = {.auth_cache_entries = 0};
    char *text = render(m, &g);
    assert_null(strstr(text, "conclave_raft"));
    assert_null(strstr(text, "conclave_fsm"));
    assert_null(strstr(text, "conclave_materializer"));
    assert_null(strstr(text, "conclave_pg_pool"));
    assert_null(strstr(text, "process_"));
    assert_non_null(strstr(text, "\nconclave_auth_cache_entries 0\n"));
    free(text);
    metrics_free(m);
}

/* Sums print in the shortest form that reads back exactly; integers without an exponent. */
static void test_number_format(void **state)
{
    (void)state;
    static const double bounds[] = {1e-5, 100000, 1e6};
    struct metrics_gauges g = {.has_raft = true};
    struct metrics *m = metrics_new();
    metrics_histogram_init(&g.materializer_batch_size, bounds, 3);
    metrics_histogram_observe(&g.materializer_batch_size, 0.1);
    metrics_histogram_observe(&g.materializer_batch_size, 0.2);
    char *text = render(m, &g);
    assert_non_null(strstr(text, "conclave_materializer_batch_size_bucket{le=\"1e-05\"} 0\n"));
    assert_non_null(strstr(text, "conclave_materializer_batch_size_bucket{le=\"100000\"} 2\n"));
    assert_non_null(strstr(text, "conclave_materializer_batch_size_bucket{le=\"1000000\"} 2\n"));
    assert_non_null(strstr(text, "conclave_materializer_batch_size_sum 0.30000000000000004\n"));
    free(text);
    metrics_free(m);
}

/* The watch hub's families: present with the hub (exact lines), absent without it. */
static void test_watch_families(void **state)
{
    (void)state;
    struct metrics *m = metrics_new();
    struct metrics_gauges g = {
        .has_watch = true, .watch_waiting = 7, .watch_queries = 12, .watch_answered = 40};
    char *text = render(m, &g);
    assert_non_null(
        strstr(text, "# TYPE conclave_watch_waiting gauge\nconclave_watch_waiting 7\n"));
    assert_non_null(strstr(text, "# TYPE conclave_watch_queries_total counter\n"
                                 "conclave_watch_queries_total 12\n"));
    assert_non_null(strstr(text, "# TYPE conclave_watch_answered_total counter\n"
                                 "conclave_watch_answered_total 40\n"));
    free(text);
    g.has_watch = false;
    text = render(m, &g);
    assert_null(strstr(text, "conclave_watch_"));
    free(text);
    metrics_free(m);
}

/* Past METRICS_MAX_SERIES new series are dropped, existing ones still count. */
static void test_series_cap(void **state)
{
    (void)state;
    struct metrics *m = metrics_new();
    for (int i = 0; i < METRICS_MAX_SERIES + 10; i++) {
        metrics_observe_request(m, "/x", "GET", 1000 + i, 0.001);
    }
    metrics_observe_request(m, "/x", "GET", 1000, 0.001);
    char *text = render(m, NULL);
    size_t samples = 0;
    for (const char *p = text; (p = strstr(p, "\nconclave_http_requests_total{")) != NULL; p++) {
        samples++;
    }
    assert_int_equal(samples, METRICS_MAX_SERIES);
    assert_non_null(strstr(text, "{route=\"/x\",method=\"GET\",code=\"1000\"} 2\n"));
    assert_non_null(
        strstr(text, "conclave_http_request_duration_seconds_count{route=\"/x\",method=\"GET\"} "
                     "4107\n"));
    free(text);
    metrics_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_watch_families),
        cmocka_unit_test(test_requests_exact),
        cmocka_unit_test(test_label_escaping),
        cmocka_unit_test(test_histogram_cumulative),
        cmocka_unit_test(test_write_phases),
        cmocka_unit_test(test_no_raft_families),
        cmocka_unit_test(test_build_info_and_process),
        cmocka_unit_test(test_number_format),
        cmocka_unit_test(test_series_cap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
