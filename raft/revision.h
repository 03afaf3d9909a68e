/*
 * revision: one committed change of a config, its canonical bytes, and the hash chain.
 *
 * A revision is what the state machine produces for every successful put, delete or
 * rollback, and what the materializer writes as one `config_revisions` row. Each project's
 * revisions form a hash chain:
 *
 *   hash = SHA-256(prev_hash || canonical bytes)
 *
 * where prev_hash is the hash of the project's previous revision, or 32 zero bytes for its
 * first one (the genesis). The canonical bytes cover every column of the row except `hash`
 * (prev_hash included), so an auditor can recompute the chain from PostgreSQL alone.
 *
 * Canonical bytes, version 1. Integers are BIG-endian (network order) so that PostgreSQL's
 * own int8send()/int4send()/uuid_send() produce them; "str" is a u32 byte length followed by
 * the UTF-8 bytes; "opt" is one byte, 0 (NULL column, nothing follows) or 1 (the value
 * follows):
 *
 *   size    field            column / how to rebuild it from a row
 *   4       "CRV1"           constant 0x43 0x52 0x56 0x31
 *   8       revision         int8send(revision)
 *   str     project_id       int4send(octet_length(project_id)) || convert_to(project_id,'UTF8')
 *   str     key              likewise
 *   8       version          int8send(version)
 *   str     op               "put", "delete" or "rollback" (the revision_op label)
 *   opt str content          NULL for delete; the exact content bytes of the Raft entry
 *   opt 8   source_version   NULL except for rollback
 *   opt 16  schema_id        uuid_send(schema_id)
 *   opt 32  schema_hash      the 32 bytes
 *   str     actor
 *   opt str request_id       NULL when the request had none
 *   8       created_at       microseconds since 1970-01-01 UTC, signed:
 *                            int8send((extract(epoch FROM created_at) * 1000000)::bigint)
 *   8       raft_index       int8send(raft_index)
 *   8       raft_term        int8send(raft_term)
 *   32      prev_hash        the 32 bytes
 *
 * Every variable-length field carries its length and every optional one a presence byte, so
 * two different rows can never produce the same bytes.
 */
#ifndef CONCLAVE_REVISION_H
#define CONCLAVE_REVISION_H

#include <stddef.h>
#include <stdint.h>

#define REVISION_HASH_SIZE 32

/* Values match the order of the PostgreSQL enum revision_op ('put', 'delete', 'rollback'). */
enum revision_op {
    REVISION_PUT = 1,
    REVISION_DELETE = 2,
    REVISION_ROLLBACK = 3,
};

/*
 * One revision. A struct revision owns its strings and content (each a separate malloc'd,
 * NUL-terminated block) once filled by revision_copy() or by the state machine; release it
 * with revision_clear(). Strings hold no NUL byte, so the terminator is only for libpq's
 * convenience; content_len is authoritative for content.
 */
struct revision {
    uint64_t revision; /* the cluster-wide revision number, >= 1 */
    char *project;     /* project id */
    char *key;
    uint64_t version; /* the config's version after this change, >= 1 */
    enum revision_op op;
    uint8_t *content; /* canonical JSON; NULL exactly for delete */
    size_t content_len;
    uint64_t source_version; /* rollback: the version restored; otherwise 0 (NULL column) */
    int has_schema;          /* schema_id and schema_hash are both present or both NULL */
    uint8_t schema_id[16];
    uint8_t schema_hash[32];
    char *actor;
    char *request_id;   /* NULL when absent (never empty) */
    int64_t created_at; /* the leader's timestamp, microseconds since the Unix epoch */
    uint64_t raft_index;
    uint64_t raft_term;
    uint8_t prev_hash[REVISION_HASH_SIZE];
    uint8_t hash[REVISION_HASH_SIZE];
};

/* Returns "put", "delete", "rollback" or "unknown". */
const char *revision_op_name(enum revision_op op);

/* Returns the length of R's canonical bytes. */
size_t revision_canonical_size(const struct revision *r);

/* Writes R's canonical bytes (layout above). On success returns 0, *BUF is a new buffer the
 * caller frees with free(), and *LEN its length. On failure (out of memory, the only cause)
 * returns -1, *BUF is NULL and ERRMSG says so. */
int revision_canonical_bytes(const struct revision *r, uint8_t **buf, size_t *len, char *errmsg,
                             size_t errlen);

/* Computes SHA-256(r->prev_hash || canonical bytes of R) into OUT without allocating; it
 * does not read or change r->hash. OUT may be r->hash. Cannot fail. sodium_init() must have
 * succeeded before (fsm_new() calls it). */
void revision_compute_hash(const struct revision *r, uint8_t out[REVISION_HASH_SIZE]);

/* Makes DST a deep copy of SRC. On success returns 0 and DST owns its copies (release with
 * revision_clear()); on failure (out of memory) returns -1, ERRMSG says so and DST is left
 * zeroed. DST's previous contents are overwritten, not released. */
int revision_copy(struct revision *dst, const struct revision *src, char *errmsg, size_t errlen);

/* Frees what R owns and zeroes it. Safe on a zeroed struct. */
void revision_clear(struct revision *r);

#endif /* CONCLAVE_REVISION_H */
