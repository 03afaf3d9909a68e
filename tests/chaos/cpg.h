/*
 * cpg: what a chaos run's history must match in PostgreSQL (the source of truth).
 *
 * cpg_resolve_and_check() loads every revision row of the project and, by request id:
 *   - resolves each write of unknown outcome: a row means it happened (it becomes ok with the
 *     row's version), no row means it did not (it becomes fail);
 *   - requires a row for every acknowledged write, with the key, version and value answered
 *     ("lost write" otherwise);
 *   - requires no row for any failed write ("failed write left a row");
 *   - requires every row to come from a write in the history ("phantom revision");
 *   - requires one row per request id: no two rows of the project share one ("duplicate
 *     request id"), and the row of every acknowledged write has the version and revision
 *     it was answered with ("wrong revision row" when the revision differs);
 * and then runs audit_verify_project() (src/audit/audit.h): hash chain, versions 1..N per key with
 * no gap or duplicate, and `configs` equal to the fold of the revisions ("audit").
 */
#ifndef CONCLAVE_CPG_H
#define CONCLAVE_CPG_H

#include <stdbool.h>
#include <stddef.h>

#include "chist.h"
#include "clin.h"

struct cpg_summary {
    size_t rows;            /* revision rows of the project */
    size_t resolved_ok;     /* unknown writes found in PostgreSQL */
    size_t resolved_fail;   /* unknown writes not there */
    size_t audit_revisions; /* revisions the audit checked */
};

/* One revision row of the project, as cpg_check_rows() needs it. The strings are borrowed. */
struct cpg_row {
    const char *request_id;
    const char *key;
    const char *value; /* the content when it is a JSON string, else NULL */
    long long version;
    long long revision;
    bool seen; /* a history write claims it (set by cpg_check_rows()) */
};

/*
 * The checks above that need only the rows (not the audit): resolves H's unknown writes by
 * ROWS[0..N), which it sorts by request id, and reports through REPORT. Returns the number of
 * violations. Split from cpg_resolve_and_check() so that the checker's tests can plant rows.
 */
long cpg_check_rows(struct chist *h, struct cpg_row *rows, size_t n, struct cpg_summary *sum,
                    clin_report_fn report, void *ud);

/*
 * Checks H against PROJECT in the database at CONNINFO, changing the outcome of H's unknown
 * writes as described above. Violations go to REPORT (key "" for project-wide ones). Returns
 * the number of violations, or -1 with ERRMSG when the check itself could not run (no
 * connection, a failed query, out of memory).
 */
long cpg_resolve_and_check(struct chist *h, const char *conninfo, const char *project,
                           struct cpg_summary *sum, clin_report_fn report, void *ud, char *errmsg,
                           size_t errlen);

#endif /* CONCLAVE_CPG_H */
