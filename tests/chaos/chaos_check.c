/*
 * chaos_check: the checker of a chaos run (docs/reliability.md).
 *
 *   chaos_check --history FILE [--db CONNINFO --project P] [--wgl-max-ops N]
 *               [--wgl-max-steps N]
 *
 * Loads the history, resolves unknown writes and checks it against PostgreSQL when --db is
 * given (tests/chaos/cpg.h), then checks linearizability per key by versions and by a
 * Wing-Gong-Lowe search on windows of each key's history cut at quiescent points (at most N
 * operations that may have an effect per window, default 5000, and a budget of 50,000,000
 * steps, --wgl-max-steps; a window over either is a violation, so the check never passes
 * unseen; --wgl-max-ops 0 turns the search off, and says so) (tests/chaos/clin.h). Answers a
 * correct server never gives (chist_check_answers()) are violations too.
 * Prints the operations by outcome, the longest time without an acknowledged write, every
 * violation (the first 10 of each kind in full) and a last line
 *
 *   verdict: clean
 *   verdict: VIOLATIONS: KIND (COUNT), ...
 *
 * Exit status: 0 clean, 1 violations, 2 when the check could not run (bad arguments, an
 * unreadable history, PostgreSQL unreachable).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chist.h"
#include "clin.h"
#include "cpg.h"

#define MAX_KINDS     32
#define SHOW_PER_KIND 10

struct tally {
    const char *kinds[MAX_KINDS];
    long counts[MAX_KINDS];
    size_t n;
};

static void on_violation(void *ud, const char *kind, const char *key, const char *msg)
{
    struct tally *t = ud;
    size_t i = 0;
    while (i < t->n && strcmp(t->kinds[i], kind) != 0) {
        i++;
    }
    if (i == t->n && t->n < MAX_KINDS) {
        t->kinds[t->n++] = kind;
    }
    if (i < MAX_KINDS) {
        if (++t->counts[i] <= SHOW_PER_KIND) {
            printf("  VIOLATION [%s] key %s: %s\n", kind, key[0] ? key : "-", msg);
        } else if (t->counts[i] == SHOW_PER_KIND + 1) {
            printf("  ... further [%s] violations counted, not shown\n", kind);
        }
    }
}

static void print_outcomes(const struct chist *h, const char *when)
{
    size_t c[2][3] = {{0}};
    for (size_t i = 0; i < h->n; i++) {
        c[h->ops[i].kind][h->ops[i].outcome]++;
    }
    printf("operations (%s): %zu\n", when, h->n);
    printf("  writes: %zu ok, %zu fail, %zu unknown\n", c[CHIST_WRITE][CHIST_OK],
           c[CHIST_WRITE][CHIST_FAIL], c[CHIST_WRITE][CHIST_UNKNOWN]);
    printf("  reads:  %zu ok, %zu fail\n", c[CHIST_READ][CHIST_OK], c[CHIST_READ][CHIST_FAIL]);
}

static int cmp_i64p(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* The longest interval in which no write was acknowledged (from the first invoke to the last
 * completion of the run), by the clients' answers as they came. */
static void print_unavailability(const struct chist *h)
{
    if (h->n == 0) {
        return;
    }
    int64_t *t = calloc(h->n + 2, sizeof(*t));
    if (t == NULL) {
        return;
    }
    int64_t first = INT64_MAX, last = 0;
    size_t n = 0;
    for (size_t i = 0; i < h->n; i++) {
        const struct chist_op *op = &h->ops[i];
        first = op->invoke < first ? op->invoke : first;
        last = op->complete > last ? op->complete : last;
        if (op->kind == CHIST_WRITE && op->outcome == CHIST_OK) {
            t[n++] = op->complete;
        }
    }
    t[n++] = first;
    t[n++] = last;
    qsort(t, n, sizeof(*t), cmp_i64p);
    int64_t gap = 0, at = first;
    for (size_t i = 1; i < n; i++) {
        if (t[i] - t[i - 1] > gap) {
            gap = t[i] - t[i - 1];
            at = t[i - 1];
        }
    }
    printf("longest time without an acknowledged write: %.2f s, from %.3f (unix time) on\n",
           (double)gap / 1e6, (double)at / 1e6);
    free(t);
}

static int usage(const char *msg)
{
    fprintf(stderr,
            "chaos_check: %s\nusage: chaos_check --history FILE [--db CONNINFO --project P] "
            "[--wgl-max-ops N] [--wgl-max-steps N]\n",
            msg);
    return 2;
}

int main(int argc, char **argv)
{
    const char *history = NULL, *db = NULL, *project = NULL;
    size_t wgl_max_ops = 5000, wgl_max_steps = 50000000;
    for (int i = 1; i < argc; i++) {
        if (i + 1 >= argc) {
            return usage("every option needs a value");
        }
        const char *a = argv[i], *v = argv[++i];
        if (strcmp(a, "--history") == 0) {
            history = v;
        } else if (strcmp(a, "--db") == 0) {
            db = v;
        } else if (strcmp(a, "--project") == 0) {
            project = v;
        } else if (strcmp(a, "--wgl-max-ops") == 0 || strcmp(a, "--wgl-max-steps") == 0) {
            char *end = NULL;
            errno = 0;
            unsigned long long n = strtoull(v, &end, 10);
            if (errno != 0 || end == v || *end != '\0' || v[0] == '-') {
                return usage("--wgl-max-ops and --wgl-max-steps take a whole number");
            }
            *(strcmp(a, "--wgl-max-ops") == 0 ? &wgl_max_ops : &wgl_max_steps) = (size_t)n;
        } else {
            fprintf(stderr, "chaos_check: unknown option %s\n", a);
            return usage("bad arguments");
        }
    }
    if (history == NULL || (db == NULL) != (project == NULL)) {
        return usage("--history is required; --db and --project go together");
    }
    char err[512];
    struct chist h;
    if (chist_load(history, &h, err, sizeof(err)) != 0) {
        fprintf(stderr, "chaos_check: %s\n", err);
        return 2;
    }
    struct tally t = {0};
    print_outcomes(&h, "as answered");
    print_unavailability(&h);
    printf("answers:\n");
    long bad = chist_check_answers(&h, on_violation, &t);
    printf("  %ld answers a correct server never gives (a write: 2xx, 409, 503 or 504; a read: "
           "200, 404, 503 or 504)\n",
           bad);
    if (db != NULL) {
        struct cpg_summary ps;
        printf("postgresql checks (project %s):\n", project);
        long v = cpg_resolve_and_check(&h, db, project, &ps, on_violation, &t, err, sizeof(err));
        if (v < 0) {
            fprintf(stderr, "chaos_check: %s\n", err);
            chist_free(&h);
            return 2;
        }
        printf("  %zu revision rows; unknown writes resolved: %zu happened, %zu did not; "
               "audit checked %zu revisions\n",
               ps.rows, ps.resolved_ok, ps.resolved_fail, ps.audit_revisions);
    } else {
        printf("postgresql checks: not run (no --db)\n");
    }
    struct clin_summary ls;
    printf("linearizability checks:\n");
    long v = clin_check_history(&h, wgl_max_ops, wgl_max_steps, &ls, on_violation, &t);
    if (v < 0) {
        fprintf(stderr, "chaos_check: out of memory in the linearizability check\n");
        chist_free(&h);
        return 2;
    }
    if (wgl_max_ops == 0) {
        printf("  %zu keys by versions; Wing-Gong-Lowe NOT RUN (--wgl-max-ops 0)\n", ls.keys);
    } else {
        printf("  %zu keys by versions; Wing-Gong-Lowe on %zu windows (split at quiescent "
               "points; the largest has %zu operations): %zu decided (%zu rejected), %zu not "
               "decided (each a violation)\n",
               ls.keys, ls.wgl_windows, ls.wgl_largest, ls.wgl_checked, ls.wgl_rejected,
               ls.wgl_too_big);
    }
    chist_free(&h);
    if (t.n == 0) {
        printf("verdict: clean\n");
        return 0;
    }
    printf("verdict: VIOLATIONS:");
    for (size_t i = 0; i < t.n; i++) {
        printf("%s %s (%ld)", i ? "," : "", t.kinds[i], t.counts[i]);
    }
    printf("\n");
    return 1;
}
