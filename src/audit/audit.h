/*
 * audit: verifying a project's audit log from PostgreSQL alone (design invariants 2 and 4).
 *
 * For one project, audit_verify_project() reads config_revisions in revision order and
 * checks, for every row:
 *
 *   - chain: its prev_hash is the previous row's stored hash (32 zero bytes for the
 *     project's first revision), and its raft_index is above the previous row's;
 *   - hash: SHA-256(prev_hash || canonical bytes) recomputed from the row's own columns
 *     (raft/revision.h; content is the exact stored json text) equals its stored hash;
 *   - versions: each key's versions, in revision order, are 1, 2, 3, ... with no gap,
 *     duplicate or step back;
 *
 * and then that `configs` holds exactly the fold of the revisions: one row per key that has
 * revisions, equal to the key's last revision (version, tombstone flag, content compared as
 * jsonb, schema id and hash, last_revision, updated_by, updated_at), and no other row.
 *
 * Everything is read in one REPEATABLE READ, READ ONLY transaction, so a materializer
 * committing meanwhile cannot make the revisions and `configs` disagree in what the audit
 * sees. Revisions are fetched in pages bounded by row count and content bytes, so the
 * client's memory stays bounded whatever the size of the history; the version and fold
 * checks run in PostgreSQL and return only their first problems.
 *
 * Blocking: run it on a pool worker thread or in the CLI. Never calls libuv.
 */
#ifndef CONCLAVE_AUDIT_H
#define CONCLAVE_AUDIT_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <libpq-fe.h>

/* The most problems a report lists; "problems_total" counts them all. */
#define AUDIT_MAX_PROBLEMS 100

/*
 * Verifies PROJECT (live or soft-deleted) on CONN, which must not be inside a transaction
 * (the function opens and ends its own).
 *
 * Returns DB_OK with *REPORT a new object the caller releases with json_decref():
 *
 *   {"project": ID, "revisions_checked": N, "keys_checked": K, "ok": bool,
 *    "chain_head": hex of the last revision's stored hash, or null when there is none,
 *    "problems_total": P,
 *    "problems": [{"revision": N or null, "key": KEY or null, "problem": TEXT}, ...]}
 *
 * "problems" holds at most AUDIT_MAX_PROBLEMS entries, in revision order (problems of a
 * `configs` row that has no revision last), and "ok" is true exactly when P is 0. Problems
 * are findings, not failures: the status is DB_OK whatever they are. Texts start with what
 * failed: "prev_hash mismatch: ...", "hash mismatch: stored ..., computed ...", "raft index
 * ...", "version gap: ...", "duplicate version ...", "versions go backwards: ...", "schema
 * ...", "fold mismatch: ...".
 *
 * Otherwise *REPORT is NULL, ERRMSG says what failed, and the status is DB_NOT_FOUND (no
 * project PROJECT), DB_UNAVAILABLE (connection lost: retry on another connection) or DB_ERROR
 * (any other PostgreSQL failure, out of memory, or a row this code cannot read).
 */
int audit_verify_project(PGconn *conn, const char *project, json_t **report, char *errmsg,
                         size_t errlen);

/*
 * A point the project's chain must contain, known from outside PostgreSQL: the head the
 * cluster committed (the node's state machine) or a checkpoint saved earlier. PostgreSQL may
 * hold more after it (revisions materialized since), never less.
 */
struct audit_expect {
    uint8_t hash[32];  /* the stored hash that revision must have; all zeros: nothing expected */
    uint64_t revision; /* its revision number, or 0 when unknown (then only HASH is looked for) */
    const char *what;  /* who says so, for the message: "the cluster committed" */
};

/*
 * audit_verify_project(), and also that the chain holds EXPECT (borrowed; NULL: no such
 * check). When it does not, one more problem is reported (with EXPECT's revision, or null):
 *
 *   "missing tail: WHAT revision R with hash H, but PostgreSQL's chain ends at revision M
 *    with hash X" (or "... but PostgreSQL holds no revision of the project"), when the chain
 *    lacks it: newest revisions deleted, or an older backup restored;
 *   "head mismatch: WHAT revision R with hash H, but PostgreSQL holds revision R with hash X"
 *    when the revision is there with another hash.
 *
 * The report then also has "expected": {"revision": R or null, "hash": H, "found": bool}.
 */
int audit_verify_project_expect(PGconn *conn, const char *project,
                                const struct audit_expect *expect, json_t **report, char *errmsg,
                                size_t errlen);

#endif /* CONCLAVE_AUDIT_H */
