/*
 * auditlog: checking a project's revision history one revision at a time, from any source.
 *
 * `conclave audit` reads revisions from the API, from an export file or from PostgreSQL, as
 * the JSON objects GET /v1/projects/{id}/revisions answers (docs/api.md): "revision", "key",
 * "version", "op", "content", "source_version", "schema_id", "schema_hash", "actor",
 * "request_id", "created_at", "raft_index", "raft_term", "prev_hash", "hash". It feeds them
 * here in revision order. For each one, auditlog_feed() checks, in this order:
 *
 *   - that every member is present and well-formed;
 *   - order: its revision number and raft index are above the previous revision's;
 *   - chain: its prev_hash is the previous revision's hash (32 zero bytes for the first);
 *   - hash: SHA-256(prev_hash || canonical bytes) recomputed from its own members (see
 *     raft/revision.h; content is re-encoded canonically, which reproduces the stored bytes
 *     exactly because only canonical text is ever stored) equals its stored hash;
 *   - versions: its version is one above the key's previous version (1 for a new key), a
 *     delete deletes a live key, and a rollback names an earlier version as its source;
 *
 * and then folds it into the state it describes: per key, the last version, its content and
 * whether it is deleted. The fold is what `replay` prints and what `verify` compares with the
 * live configs.
 *
 * The checker stops at the first problem: after a broken link, every later hash is suspect and
 * more findings would only repeat the first. It never allocates per revision beyond the fold.
 */
#ifndef CONCLAVE_AUDITLOG_H
#define CONCLAVE_AUDITLOG_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

enum auditlog_status {
    ALOG_OK = 0,
    ALOG_PROBLEM = 1, /* the history is wrong; the problem says where and how */
    ALOG_NOMEM = -1,
};

/* What is wrong, and where: REVISION is 0 and KEY empty when the problem is not one revision's
 * (for instance a config no revision explains). */
struct auditlog_problem {
    uint64_t revision;
    char key[257];
    char text[600];
};

struct alog;

/* Returns a new checker for PROJECT's history (PROJECT is copied), or NULL when out of memory.
 * Calls sodium_init(). Release it with auditlog_free(). */
struct alog *auditlog_new(const char *project);
void auditlog_free(struct alog *a);

/* Checks REV (borrowed) as the next revision and folds it in. ALOG_OK, or ALOG_PROBLEM with
 * *PROBLEM filled (the checker then refuses every later revision with the same problem), or
 * ALOG_NOMEM. */
int auditlog_feed(struct alog *a, const json_t *rev, struct auditlog_problem *problem);

/* Counts so far, and the last revision's stored hash as 64 hex digits ("" before the first). */
uint64_t auditlog_revisions(const struct alog *a);
uint64_t auditlog_keys(const struct alog *a);
uint64_t auditlog_last_revision(const struct alog *a);
const char *auditlog_chain_head(const struct alog *a);

/*
 * The fold: a new JSON object (the caller releases it) mapping every key that is live after the
 * revisions fed so far to {"key", "version", "content", "schema_id", "revision", "updated_by",
 * "updated_at"}, the members GET /v1/projects/{id}/configs/{key} answers. NULL when out of
 * memory.
 */
json_t *auditlog_fold(const struct alog *a);

/*
 * Compares the fold with LIVE (borrowed), an array of configs as GET /v1/projects/{id}/configs
 * lists them: the same keys, and for each the same version, content, schema_id, revision and
 * updated_by. ALOG_OK when they agree; ALOG_PROBLEM with the first difference otherwise.
 */
int auditlog_compare_live(const struct alog *a, const json_t *live,
                          struct auditlog_problem *problem);

/* Parses an RFC 3339 UTC time as the API writes it ("2026-11-22T07:49:44.123456Z"; the fraction
 * is optional, at most 6 digits; "+00:00" or any other offset is accepted) into microseconds
 * since 1970-01-01 UTC. Returns 0, or -1 when TEXT is not such a time. */
int auditlog_parse_time(const char *text, int64_t *out_us);

#endif /* CONCLAVE_AUDITLOG_H */
