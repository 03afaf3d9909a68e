#include "server/metrics.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const double metrics_duration_bounds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                          0.1,    0.25,  0.5,    1,     2.5,  5,     10};
const size_t metrics_duration_nbounds =
    sizeof(metrics_duration_bounds) / sizeof(metrics_duration_bounds[0]);

const double metrics_phase_bounds[] = {0.00001, 0.000025, 0.00005, 0.0001,  0.00015, 0.0002,
                                       0.0003,  0.0004,   0.0005,  0.00075, 0.001,   0.0015,
                                       0.002,   0.003,    0.005,   0.01,    0.025,   0.05,
                                       0.1,     0.25,     0.5,     1,       2.5,     10};
const size_t metrics_phase_nbounds = sizeof(metrics_phase_bounds) / sizeof(metrics_phase_bounds[0]);

/* The name and help text of each write phase's histogram, in enum metrics_phase order. Each
 * help text names the two points the phase lies between; docs/operations.md says more. */
static const struct {
    const char *name;
    const char *help;
} phase_families[METRICS_NPHASES] = {
    {"conclave_write_http_in_seconds",
     "Config writes received by this node: from the first byte of the request to the write "
     "handler being called (request read, routed, caller authenticated and authorised, from the "
     "cache or PostgreSQL)."},
    {"conclave_write_forward_seconds",
     "Config writes this node forwarded to the leader: from handing the request to the "
     "forwarding client to the leader's answer being back on this node (the round trip, with "
     "all of the leader's work)."},
    {"conclave_write_prepare_seconds",
     "Config writes on the leader: from the write handler being called to the entry being "
     "proposed with raft_apply (body, canonical JSON, request id and version checks, schema "
     "validation)."},
    {"conclave_write_propose_to_commit_seconds",
     "Config writes on the leader: from raft_apply to raft finding the entry committed (the "
     "leader's append and fsync and a follower's acknowledgement, whichever comes last)."},
    {"conclave_write_commit_to_apply_seconds",
     "Config writes on the leader: from raft finding the entry committed to the state "
     "machine having applied it and raft reporting the outcome."},
    {"conclave_write_apply_to_postgresql_commit_seconds",
     "Config writes on the leader: from the entry's outcome being reported to the loop learning "
     "that the PostgreSQL transaction holding its revision committed (the wait for the "
     "materializer, the hand-off to a pool worker and back, the transaction)."},
    {"conclave_write_answer_out_seconds",
     "Config writes: from this node knowing the outcome (the leader: PostgreSQL's commit; a "
     "forwarding follower: the leader's answer) to the answer being handed to the socket "
     "(encoding, the response head, the access log line, the write call)."},
};

/* One conclave_http_requests_total series. */
struct req_series {
    char *route;
    char *method;
    int status;
    uint64_t count;
};

/* One conclave_http_request_duration_seconds series. */
struct dur_series {
    char *route;
    char *method;
    struct metrics_histogram h;
};

struct metrics {
    struct req_series *reqs;
    size_t nreqs, reqs_cap;
    struct dur_series *durs;
    size_t ndurs, durs_cap;
    struct metrics_histogram phases[METRICS_NPHASES];
    uint64_t leader;         /* the last non-zero leader id seen */
    uint64_t leader_changes; /* changes of it, the first leader included */
};

/* ---- histograms ---------------------------------------------------------------------- */

void metrics_histogram_init(struct metrics_histogram *h, const double *bounds, size_t nbounds)
{
    memset(h, 0, sizeof(*h));
    h->bounds = bounds;
    h->nbounds = nbounds < METRICS_MAX_BOUNDS ? nbounds : METRICS_MAX_BOUNDS;
}

void metrics_histogram_observe(struct metrics_histogram *h, double v)
{
    for (size_t i = 0; i < h->nbounds; i++) {
        if (v <= h->bounds[i]) {
            h->buckets[i]++;
            break;
        }
    }
    h->count++;
    h->sum += v;
}

/* ---- counting ------------------------------------------------------------------------ */

struct metrics *metrics_new(void)
{
    struct metrics *m = calloc(1, sizeof(struct metrics));
    if (m == NULL) {
        return NULL;
    }
    for (size_t i = 0; i < METRICS_NPHASES; i++) {
        metrics_histogram_init(&m->phases[i], metrics_phase_bounds, metrics_phase_nbounds);
    }
    return m;
}

void metrics_free(struct metrics *m)
{
    if (m == NULL) {
        return;
    }
    for (size_t i = 0; i < m->nreqs; i++) {
        free(m->reqs[i].route);
        free(m->reqs[i].method);
    }
    for (size_t i = 0; i < m->ndurs; i++) {
        free(m->durs[i].route);
        free(m->durs[i].method);
    }
    free(m->reqs);
    free(m->durs);
    free(m);
}

/* Grows *ARR (of *CAP elements of SIZE bytes) so that one more fits after N. */
static int reserve(void **arr, size_t *cap, size_t n, size_t size)
{
    if (n < *cap) {
        return 0;
    }
    if (n >= METRICS_MAX_SERIES) {
        return -1;
    }
    size_t ncap = *cap ? *cap * 2 : 16;
    void *grown = realloc(*arr, ncap * size);
    if (grown == NULL) {
        return -1;
    }
    *arr = grown;
    *cap = ncap;
    return 0;
}

/* Copies ROUTE and METHOD into *R and *M; -1 (nothing kept) when out of memory. */
static int copy_labels(const char *route, const char *method, char **r, char **m)
{
    *r = strdup(route);
    *m = strdup(method);
    if (*r == NULL || *m == NULL) {
        free(*r);
        free(*m);
        return -1;
    }
    return 0;
}

/* The series are found by a linear scan: a node sees a few dozen of them, and a scan of those
 * costs less than the rest of any request. */
static struct req_series *req_series_get(struct metrics *m, const char *route, const char *method,
                                         int status)
{
    for (size_t i = 0; i < m->nreqs; i++) {
        struct req_series *s = &m->reqs[i];
        if (s->status == status && strcmp(s->method, method) == 0 && strcmp(s->route, route) == 0) {
            return s;
        }
    }
    if (reserve((void **)&m->reqs, &m->reqs_cap, m->nreqs, sizeof(*m->reqs)) != 0) {
        return NULL;
    }
    struct req_series *s = &m->reqs[m->nreqs];
    memset(s, 0, sizeof(*s));
    if (copy_labels(route, method, &s->route, &s->method) != 0) {
        return NULL;
    }
    s->status = status;
    m->nreqs++;
    return s;
}

static struct dur_series *dur_series_get(struct metrics *m, const char *route, const char *method)
{
    for (size_t i = 0; i < m->ndurs; i++) {
        struct dur_series *s = &m->durs[i];
        if (strcmp(s->method, method) == 0 && strcmp(s->route, route) == 0) {
            return s;
        }
    }
    if (reserve((void **)&m->durs, &m->durs_cap, m->ndurs, sizeof(*m->durs)) != 0) {
        return NULL;
    }
    struct dur_series *s = &m->durs[m->ndurs];
    memset(s, 0, sizeof(*s));
    if (copy_labels(route, method, &s->route, &s->method) != 0) {
        return NULL;
    }
    metrics_histogram_init(&s->h, metrics_duration_bounds, metrics_duration_nbounds);
    m->ndurs++;
    return s;
}

void metrics_observe_request(struct metrics *m, const char *route, const char *method, int status,
                             double seconds)
{
    if (route == NULL) {
        route = "other";
    }
    if (method == NULL || method[0] == '\0') {
        method = "-";
    }
    struct req_series *r = req_series_get(m, route, method, status);
    if (r != NULL) {
        r->count++;
    }
    struct dur_series *d = dur_series_get(m, route, method);
    if (d != NULL) {
        metrics_histogram_observe(&d->h, seconds);
    }
}

void metrics_observe_phase(struct metrics *m, enum metrics_phase phase, uint64_t from_ns,
                           uint64_t to_ns)
{
    if (m == NULL || (unsigned)phase >= METRICS_NPHASES || from_ns == 0 || to_ns < from_ns) {
        return;
    }
    metrics_histogram_observe(&m->phases[phase], (double)(to_ns - from_ns) / 1e9);
}

void metrics_observe_leader(struct metrics *m, uint64_t leader_id)
{
    if (leader_id != 0 && leader_id != m->leader) {
        m->leader = leader_id;
        m->leader_changes++;
    }
}

/* ---- rendering ----------------------------------------------------------------------- */

/* The output being built. After a failed allocation every append does nothing and oom stays
 * set, so the renderer checks once at the end. */
struct buf {
    char *p;
    size_t len, cap;
    bool oom;
};

static void buf_grow(struct buf *b, size_t more)
{
    if (b->oom || b->len + more + 1 <= b->cap) {
        return;
    }
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + more + 1) {
        cap *= 2;
    }
    char *grown = realloc(b->p, cap);
    if (grown == NULL) {
        b->oom = true;
        return;
    }
    b->p = grown;
    b->cap = cap;
}

static void buf_add(struct buf *b, const char *s, size_t n)
{
    buf_grow(b, n);
    if (b->oom) {
        return;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void buf_str(struct buf *b, const char *s)
{
    buf_add(b, s, strlen(s));
}

static void buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void buf_printf(struct buf *b, const char *fmt, ...)
{
    char small[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->oom = true;
        return;
    }
    if ((size_t)n < sizeof(small)) {
        buf_add(b, small, (size_t)n);
        return;
    }
    buf_grow(b, (size_t)n);
    if (b->oom) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

/* A label value with the escapes of the exposition format: backslash, double quote and line
 * feed. */
static void buf_label_value(struct buf *b, const char *v)
{
    for (; *v != '\0'; v++) {
        switch (*v) {
        case '\\':
            buf_str(b, "\\\\");
            break;
        case '"':
            buf_str(b, "\\\"");
            break;
        case '\n':
            buf_str(b, "\\n");
            break;
        default:
            buf_add(b, v, 1);
        }
    }
}

/* A sample value: the fewest significant digits that read back as V, positional below 1e21
 * (10, not 1e+01; as Go's client writes them), and +Inf, -Inf, NaN as the format spells them. */
static void format_double(double v, char *out, size_t outlen)
{
    if (isnan(v)) {
        snprintf(out, outlen, "NaN");
        return;
    }
    if (isinf(v)) {
        snprintf(out, outlen, "%s", v > 0 ? "+Inf" : "-Inf");
        return;
    }
    char e[64];
    int digits = 1;
    for (; digits < 17; digits++) {
        snprintf(e, sizeof(e), "%.*e", digits - 1, v);
        if (strtod(e, NULL) == v) {
            break;
        }
    }
    snprintf(e, sizeof(e), "%.*e", digits - 1, v);
    const char *exp_text = strchr(e, 'e');
    int exp = exp_text != NULL ? atoi(exp_text + 1) : 0;
    int prec = exp >= 0 && exp < 21 && exp + 1 > digits ? exp + 1 : digits;
    snprintf(out, outlen, "%.*g", prec, v);
}

static void family(struct buf *b, const char *name, const char *type, const char *help)
{
    buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void sample_u64(struct buf *b, const char *name, uint64_t v)
{
    buf_printf(b, "%s %llu\n", name, (unsigned long long)v);
}

static void gauge(struct buf *b, const char *name, const char *help, uint64_t v)
{
    family(b, name, "gauge", help);
    sample_u64(b, name, v);
}

static void counter(struct buf *b, const char *name, const char *help, uint64_t v)
{
    family(b, name, "counter", help);
    sample_u64(b, name, v);
}

static void family_double(struct buf *b, const char *name, const char *type, const char *help,
                          double v)
{
    char num[64];
    format_double(v, num, sizeof(num));
    family(b, name, type, help);
    buf_printf(b, "%s %s\n", name, num);
}

/* The families every Prometheus client library exports under these names, so that the usual
 * dashboards and alerts on process_* work for conclave too. */
static void render_process(struct buf *b, const struct procstat *p)
{
    family_double(b, "process_cpu_seconds_total", "counter",
                  "Total user and system CPU time spent in seconds.", p->cpu_seconds);
    gauge(b, "process_resident_memory_bytes", "Resident memory size in bytes.", p->resident_bytes);
    gauge(b, "process_virtual_memory_bytes", "Virtual memory size in bytes.", p->virtual_bytes);
    gauge(b, "process_open_fds", "Number of open file descriptors.", p->open_fds);
    gauge(b, "process_max_fds", "Maximum number of open file descriptors.", p->max_fds);
    family_double(b, "process_start_time_seconds", "gauge",
                  "Start time of the process since unix epoch in seconds.", p->start_time_seconds);
}

/* The samples of histogram NAME with LABELS (already escaped, "" for none): cumulative buckets,
 * +Inf, _sum and _count. */
static void histogram_samples(struct buf *b, const char *name, const char *labels,
                              const struct metrics_histogram *h)
{
    const char *sep = labels[0] != '\0' ? "," : "";
    char num[64];
    uint64_t cumulative = 0;
    for (size_t i = 0; i < h->nbounds; i++) {
        cumulative += h->buckets[i];
        format_double(h->bounds[i], num, sizeof(num));
        buf_printf(b, "%s_bucket{%s%sle=\"%s\"} %llu\n", name, labels, sep, num,
                   (unsigned long long)cumulative);
    }
    buf_printf(b, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, labels, sep,
               (unsigned long long)h->count);
    format_double(h->sum, num, sizeof(num));
    if (labels[0] != '\0') {
        buf_printf(b, "%s_sum{%s} %s\n%s_count{%s} %llu\n", name, labels, num, name, labels,
                   (unsigned long long)h->count);
    } else {
        buf_printf(b, "%s_sum %s\n%s_count %llu\n", name, num, name, (unsigned long long)h->count);
    }
}

/* route="R",method="M" escaped, into a buffer of its own (for histogram_samples). */
static int route_labels(const char *route, const char *method, struct buf *lb)
{
    lb->len = 0;
    buf_str(lb, "route=\"");
    buf_label_value(lb, route);
    buf_str(lb, "\",method=\"");
    buf_label_value(lb, method);
    buf_str(lb, "\"");
    return lb->oom ? -1 : 0;
}

static int cmp_labels(const char *r1, const char *m1, const char *r2, const char *m2)
{
    int c = strcmp(r1, r2);
    return c != 0 ? c : strcmp(m1, m2);
}

static int cmp_req(const void *a, const void *b)
{
    const struct req_series *x = *(const struct req_series *const *)a;
    const struct req_series *y = *(const struct req_series *const *)b;
    int c = cmp_labels(x->route, x->method, y->route, y->method);
    return c != 0 ? c : (x->status > y->status) - (x->status < y->status);
}

static int cmp_dur(const void *a, const void *b)
{
    const struct dur_series *x = *(const struct dur_series *const *)a;
    const struct dur_series *y = *(const struct dur_series *const *)b;
    return cmp_labels(x->route, x->method, y->route, y->method);
}

static void render_requests(struct buf *b, const struct metrics *m)
{
    family(b, "conclave_http_requests_total", "counter",
           "HTTP requests answered, by route pattern (\"other\": no route matched), method and "
           "status code.");
    const struct req_series **order = calloc(m->nreqs + 1, sizeof(*order));
    if (order == NULL) {
        b->oom = true;
        return;
    }
    for (size_t i = 0; i < m->nreqs; i++) {
        order[i] = &m->reqs[i];
    }
    qsort(order, m->nreqs, sizeof(*order), cmp_req);
    for (size_t i = 0; i < m->nreqs; i++) {
        const struct req_series *s = order[i];
        buf_str(b, "conclave_http_requests_total{route=\"");
        buf_label_value(b, s->route);
        buf_str(b, "\",method=\"");
        buf_label_value(b, s->method);
        buf_printf(b, "\",code=\"%d\"} %llu\n", s->status, (unsigned long long)s->count);
    }
    free(order);
}

static void render_durations(struct buf *b, const struct metrics *m)
{
    family(b, "conclave_http_request_duration_seconds", "histogram",
           "Time from the first byte of a request to its answer being queued, by route pattern and "
           "method.");
    const struct dur_series **order = calloc(m->ndurs + 1, sizeof(*order));
    struct buf lb = {0};
    if (order == NULL) {
        b->oom = true;
        return;
    }
    for (size_t i = 0; i < m->ndurs; i++) {
        order[i] = &m->durs[i];
    }
    qsort(order, m->ndurs, sizeof(*order), cmp_dur);
    for (size_t i = 0; i < m->ndurs; i++) {
        if (route_labels(order[i]->route, order[i]->method, &lb) != 0) {
            b->oom = true;
            break;
        }
        histogram_samples(b, "conclave_http_request_duration_seconds", lb.p, &order[i]->h);
    }
    free(lb.p);
    free(order);
}

static void render_phases(struct buf *b, const struct metrics *m)
{
    for (size_t i = 0; i < METRICS_NPHASES; i++) {
        family(b, phase_families[i].name, "histogram", phase_families[i].help);
        histogram_samples(b, phase_families[i].name, "", &m->phases[i]);
    }
}

static void render_raft(struct buf *b, const struct metrics *m, const struct metrics_gauges *g)
{
    gauge(b, "conclave_raft_term", "The current raft term.", g->raft_term);
    gauge(b, "conclave_raft_commit_index", "The highest raft index known to be committed.",
          g->raft_commit_index);
    gauge(b, "conclave_raft_applied_index", "The highest raft index applied to the state machine.",
          g->raft_applied_index);
    gauge(b, "conclave_raft_is_leader", "1 when this node is the raft leader, else 0.",
          g->raft_is_leader ? 1 : 0);
    counter(b, "conclave_raft_leader_changes_total",
            "Changes of the leader this node observed (sampled every second), the first leader "
            "included.",
            m->leader_changes);
    counter(b, "conclave_raft_read_index_rounds_total",
            "ReadIndex rounds (probes to the voters) this node started for linearizable reads.",
            g->raft_read_index_rounds);
    counter(b, "conclave_raft_read_index_reads_total",
            "Linearizable reads this node answered after a ReadIndex round, without a log append.",
            g->raft_read_index_reads);
    gauge(b, "conclave_fsm_revision", "The last revision number of the state machine.",
          g->fsm_revision);
    gauge(b, "conclave_fsm_pending_revisions",
          "Revisions in this node's state machine queue that no materialized(N) entry covers yet.",
          g->fsm_pending_revisions);
    gauge(b, "conclave_fsm_configs", "Configs in this node's state machine, tombstones included.",
          g->fsm_configs);
    gauge(b, "conclave_fsm_live_bytes",
          "Live data in this node's state machine: the sum of the config key and live content "
          "lengths (compare with the node process's resident memory).",
          g->fsm_live_bytes);
    gauge(b, "conclave_materializer_lag_revisions",
          "Queued revisions beyond the materializer's PostgreSQL cursor (on a follower: every "
          "queued revision).",
          g->materializer_lag_revisions);
    counter(b, "conclave_request_id_filter_new_total",
            "Writes of a project whose old request ids the state machine may have forgotten, "
            "proposed without a PostgreSQL lookup because the leader's request-id filter "
            "proved the id new.",
            g->request_id_filter_new);
    counter(b, "conclave_request_id_filter_lookups_total",
            "Such writes whose request id was looked up in PostgreSQL (the filter may contain "
            "it, is loading, or lags the trimmed revisions).",
            g->request_id_filter_lookup);
    gauge(b, "conclave_request_id_filter_revision",
          "The revision up to which the leader's request-id filter holds every request id of "
          "config_revisions.",
          g->request_id_filter_revision);
    counter(b, "conclave_materializer_batches_total",
            "Batches of revisions this node wrote to PostgreSQL as leader.",
            g->materializer_batches);
    family(b, "conclave_materializer_batch_size", "histogram",
           "Revisions per batch written to PostgreSQL.");
    histogram_samples(b, "conclave_materializer_batch_size", "", &g->materializer_batch_size);
    family(b, "conclave_materializer_batch_seconds", "histogram",
           "Batches this node wrote to PostgreSQL as leader: from handing the batch to a pool "
           "worker to its outcome being back on the loop.");
    histogram_samples(b, "conclave_materializer_batch_seconds", "", &g->materializer_batch_seconds);
    family(b, "conclave_materializer_transaction_seconds", "histogram",
           "The same batches: time on the pool worker in the PostgreSQL transaction (its "
           "statements and the commit), the rest of a batch's time being hand-offs.");
    histogram_samples(b, "conclave_materializer_transaction_seconds", "",
                      &g->materializer_transaction_seconds);
    counter(b, "conclave_materializer_failures_total",
            "Materializer jobs (cursor reads and batch writes) that failed and were retried.",
            g->materializer_failures);
    gauge(b, "conclave_materializer_stalled",
          "1 while the leader's last materializer attempt failed (writes are not acknowledged; "
          "/ready says why), else 0.",
          g->materializer_stalled ? 1 : 0);
    gauge(b, "conclave_materializer_consecutive_failures",
          "Materializer attempts that failed in a row since the last success.",
          g->materializer_failures_in_row);
    gauge(b, "conclave_materializer_stalled_raft_index",
          "The first raft index of the batch that keeps failing (0 when not stalled or when the "
          "cursor read fails).",
          g->materializer_stalled_raft_index);
    gauge(b, "conclave_materializer_postgresql_behind",
          "1 while this leader finds PostgreSQL behind the cluster: it lacks revisions every node "
          "already trimmed (an older backup restored?); writes are refused with 503 "
          "postgresql_behind.",
          g->materializer_postgresql_behind ? 1 : 0);
    gauge(b, "conclave_materializer_postgresql_ahead",
          "1 while PostgreSQL holds revisions past this cluster's state machine (the nodes' raft "
          "data is older than the database): writes are refused with 503 postgresql_ahead.",
          g->materializer_postgresql_ahead);
    gauge(b, "conclave_materializer_postgresql_missing_revisions",
          "How many revisions PostgreSQL lacks while it is behind, else 0.",
          g->materializer_postgresql_behind
              ? g->materializer_missing_to_revision - g->materializer_missing_from_revision + 1
              : 0);
    gauge(b, "conclave_materializer_postgresql_missing_from_revision",
          "The first revision PostgreSQL lacks (0 when it is not behind).",
          g->materializer_missing_from_revision);
    gauge(b, "conclave_materializer_postgresql_missing_to_revision",
          "The last revision PostgreSQL lacks (0 when it is not behind).",
          g->materializer_missing_to_revision);
    gauge(b, "conclave_materializer_postgresql_missing_from_raft_index",
          "The first raft index of the lost range, just after PostgreSQL's cursor (0 when it is "
          "not behind).",
          g->materializer_missing_from_raft_index);
    gauge(b, "conclave_materializer_postgresql_missing_to_raft_index",
          "The raft index of the last revision PostgreSQL lacks (0 when it is not behind).",
          g->materializer_missing_to_raft_index);
}

static void render_pool(struct buf *b, const struct metrics_gauges *g)
{
    gauge(b, "conclave_pg_pool_connections_open", "PostgreSQL connections open in the pool.",
          g->pool_connections_open);
    gauge(b, "conclave_pg_pool_busy", "PostgreSQL jobs running on pool workers.", g->pool_busy);
    gauge(b, "conclave_pg_pool_queued", "PostgreSQL jobs waiting for a pool worker.",
          g->pool_queued);
    counter(b, "conclave_pg_pool_jobs_total", "PostgreSQL jobs finished.", g->pool_jobs);
    counter(b, "conclave_pg_pool_jobs_failed_total",
            "PostgreSQL jobs finished with a failure status (including no connection).",
            g->pool_jobs_failed);
    counter(b, "conclave_pg_pool_connect_failures_total",
            "Failed attempts to open a PostgreSQL connection.", g->pool_connect_failures);
}

int metrics_render(const struct metrics *m, const struct metrics_gauges *g, char **out, size_t *len)
{
    struct buf b = {0};
    *out = NULL;
    *len = 0;
    family(&b, "conclave_build_info", "gauge",
           "Always 1; the labels say which conclave and which raft library this node runs.");
    buf_printf(&b, "conclave_build_info{version=\"%s\",raft=\"%s\"} 1\n", CONCLAVE_VERSION,
               CONCLAVE_RAFT_VERSION);
    render_requests(&b, m);
    render_durations(&b, m);
    render_phases(&b, m);
    if (g != NULL && g->has_raft) {
        render_raft(&b, m, g);
    }
    if (g != NULL && g->has_pool) {
        render_pool(&b, g);
    }
    if (g != NULL) {
        gauge(&b, "conclave_auth_cache_entries", "Entries in this node's authentication cache.",
              g->auth_cache_entries);
    }
    if (g != NULL && g->has_watch) {
        gauge(&b, "conclave_watch_waiting", "Long-poll watchers waiting on this node.",
              g->watch_waiting);
        counter(&b, "conclave_watch_queries_total",
                "PostgreSQL queries the watch hub ran (one per watched project per change).",
                g->watch_queries);
        counter(&b, "conclave_watch_answered_total", "Long-poll watchers answered.",
                g->watch_answered);
    }
    if (g != NULL && g->has_process) {
        render_process(&b, &g->process);
    }
    buf_grow(&b, 0); /* an empty output is still a string */
    if (b.oom) {
        free(b.p);
        return -1;
    }
    *out = b.p;
    *len = b.len;
    return 0;
}
