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
 * and then runs audit_verify_project() (src/audit/audit.h): hash chain, versions 1..N per key with
 * no gap or duplicate, and `configs` equal to the fold of the revisions ("audit").
 */
#ifndef CONCLAVE_CPG_H
#define CONCLAVE_CPG_H

#include <stddef.h>

#include "chist.h"
#include "clin.h"

struct cpg_summary {
    size_t rows;            /* revision rows of the project */
    size_t resolved_ok;     /* unknown writes found in PostgreSQL */
    size_t resolved_fail;   /* unknown writes not there */
    size_t audit_revisions; /* revisions the audit checked */
};

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
