#include "cpg.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "audit/audit.h"
#include "storage/db.h"

static int cmp_row(const void *a, const void *b)
{
    return strcmp(((const struct cpg_row *)a)->request_id, ((const struct cpg_row *)b)->request_id);
}

/* The first row (ROWS sorted by request id) with request id RID, or NULL. */
static struct cpg_row *find_row(struct cpg_row *rows, size_t n, const char *rid)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(rows[mid].request_id, rid) < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo < n && strcmp(rows[lo].request_id, rid) == 0 ? &rows[lo] : NULL;
}

#define REPORT(kind, key, ...)                                                                     \
    do {                                                                                           \
        snprintf(msg, sizeof(msg), __VA_ARGS__);                                                   \
        report(ud, kind, key, msg);                                                                \
        violations++;                                                                              \
    } while (0)

long cpg_check_rows(struct chist *h, struct cpg_row *rows, size_t n, struct cpg_summary *sum,
                    clin_report_fn report, void *ud)
{
    long violations = 0;
    char msg[512];
    qsort(rows, n, sizeof(*rows), cmp_row);
    for (size_t i = 1; i < n; i++) {
        if (strcmp(rows[i].request_id, rows[i - 1].request_id) == 0) {
            REPORT("duplicate request id", rows[i].key,
                   "request id %s has two revision rows (versions %lld and %lld)",
                   rows[i].request_id, rows[i - 1].version, rows[i].version);
        }
    }

    for (size_t i = 0; i < h->n; i++) {
        struct chist_op *op = &h->ops[i];
        if (op->kind != CHIST_WRITE) {
            continue;
        }
        struct cpg_row *r = find_row(rows, n, op->request_id);
        /* Every row of the request id is claimed: a second one is a "duplicate request id"
         * (above), not also a phantom. */
        for (struct cpg_row *d = r;
             d != NULL && d < rows + n && strcmp(d->request_id, op->request_id) == 0; d++) {
            d->seen = true;
        }
        if (op->outcome == CHIST_UNKNOWN) {
            if (r != NULL) {
                op->outcome = CHIST_OK;
                op->version = r->version;
                sum->resolved_ok++;
            } else {
                op->outcome = CHIST_FAIL;
                sum->resolved_fail++;
                continue;
            }
        }
        if (op->outcome == CHIST_OK) {
            if (r == NULL) {
                REPORT("lost write", op->key,
                       "write %s (line %zu) was acknowledged as version %lld but has no "
                       "revision row",
                       op->request_id, op->line, (long long)op->version);
            } else if (strcmp(r->key, op->key) != 0 || r->version != op->version ||
                       r->value == NULL || strcmp(r->value, op->value) != 0) {
                REPORT("lost write", op->key,
                       "write %s (line %zu) was acknowledged as %s version %lld value %s, but "
                       "its revision row holds %s version %lld value %s",
                       op->request_id, op->line, op->key, (long long)op->version, op->value, r->key,
                       r->version, r->value != NULL ? r->value : "(not a string)");
            } else if (op->revision > 0 && r->revision != op->revision) {
                REPORT("wrong revision row", op->key,
                       "write %s (line %zu) was acknowledged as revision %lld, but its row is "
                       "revision %lld",
                       op->request_id, op->line, (long long)op->revision, r->revision);
            }
        } else if (r != NULL) {
            REPORT("failed write left a row", op->key,
                   "write %s (line %zu) failed with %d but is revision row version %lld",
                   op->request_id, op->line, op->status, r->version);
        }
    }
    for (size_t i = 0; i < n; i++) {
        if (!rows[i].seen) {
            REPORT("phantom revision", rows[i].key,
                   "revision row %s version %lld has a request id no client used", rows[i].key,
                   rows[i].version);
        }
    }

    return violations;
}

long cpg_resolve_and_check(struct chist *h, const char *conninfo, const char *project,
                           struct cpg_summary *sum, clin_report_fn report, void *ud, char *errmsg,
                           size_t errlen)
{
    long violations = 0;
    char msg[512];
    PGresult *res = NULL;
    struct cpg_row *rows = NULL;
    json_t *audit = NULL;
    memset(sum, 0, sizeof(*sum));
    PGconn *conn = PQconnectdb(conninfo);
    if (PQstatus(conn) != CONNECTION_OK) {
        snprintf(errmsg, errlen, "connecting to PostgreSQL: %s", PQerrorMessage(conn));
        violations = -1;
        goto out;
    }
    const char *params[1] = {project};
    res = PQexecParams(conn,
                       "SELECT request_id, key, version, revision,"
                       " CASE WHEN json_typeof(content) = 'string' THEN content #>> '{}' END"
                       " FROM config_revisions WHERE project_id = $1",
                       1, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        snprintf(errmsg, errlen, "reading config_revisions of %s: %s", project,
                 PQerrorMessage(conn));
        violations = -1;
        goto out;
    }
    size_t n = (size_t)PQntuples(res);
    sum->rows = n;
    rows = calloc(n + 1, sizeof(*rows));
    if (rows == NULL) {
        snprintf(errmsg, errlen, "out of memory for %zu revision rows", n);
        violations = -1;
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        rows[i].request_id = PQgetvalue(res, (int)i, 0);
        rows[i].key = PQgetvalue(res, (int)i, 1);
        rows[i].version = strtoll(PQgetvalue(res, (int)i, 2), NULL, 10);
        rows[i].revision = strtoll(PQgetvalue(res, (int)i, 3), NULL, 10);
        rows[i].value = PQgetisnull(res, (int)i, 4) ? NULL : PQgetvalue(res, (int)i, 4);
    }
    violations = cpg_check_rows(h, rows, n, sum, report, ud);

    if (audit_verify_project(conn, project, &audit, msg, sizeof(msg)) != DB_OK) {
        snprintf(errmsg, errlen, "verifying the audit log of %s: %s", project, msg);
        violations = -1;
        goto out;
    }
    sum->audit_revisions = (size_t)json_integer_value(json_object_get(audit, "revisions_checked"));
    size_t k;
    json_t *p;
    json_array_foreach(json_object_get(audit, "problems"), k, p)
    {
        const char *key = json_string_value(json_object_get(p, "key"));
        REPORT("audit", key != NULL ? key : "", "%s",
               json_string_value(json_object_get(p, "problem")));
    }
    long total = (long)json_integer_value(json_object_get(audit, "problems_total"));
    if (total > (long)json_array_size(json_object_get(audit, "problems"))) {
        REPORT("audit", "", "%ld more audit problems not listed",
               total - (long)json_array_size(json_object_get(audit, "problems")));
    }
out:
    json_decref(audit);
    free(rows);
    PQclear(res);
    PQfinish(conn);
    return violations;
}
