/*
 * fsm: conclave's deterministic state machine, the part of the Raft layer every node runs
 * identically.
 *
 * It consumes codec entries in Raft order and holds the replicated state: every config's
 * current version, content, tombstone flag and schema binding; the cluster-wide revision
 * counter; each project's hash-chain head; the queue of revisions not yet in PostgreSQL; a
 * bounded table of recent request ids with their outcomes; and the last applied index.
 *
 * It does no I/O and reads no clock and no randomness, so all nodes that applied the same
 * entries hold byte-identical state (fsm_state_hash() proves it). Nothing here is
 * thread-safe: the glue calls every function from one thread (the loop), and the pointers
 * returned by the accessors stay valid only until the next fsm_apply(), fsm_restore() or
 * fsm_free(). The one exception is fsm_view_write() on a snapshot view, which another thread
 * may run while the loop goes on (see "Copy-on-write snapshot views" below).
 *
 * Rules (docs/state-machine.md has the full text):
 * - put: applies when the current version (0 when the key never existed; a tombstone's own
 *   version after a delete) equals expected_version. The version becomes expected + 1, the
 *   revision counter grows by one, the project's chain advances, and the revision joins the
 *   pending queue. Recreating a deleted key therefore takes expected_version = the
 *   tombstone's version: versions never restart, so (project, key, version) stays unique in
 *   config_revisions.
 * - delete and rollback of a key that is absent or deleted: NOT_FOUND. Otherwise the same
 *   CAS as put; delete leaves a tombstone (no content, no schema) holding the new version.
 * - any other version mismatch: CONFLICT with the current version, and nothing changes.
 * - materialized(N): drops the queued revisions with raft_index <= N.
 * - a non-empty request id is recorded with the outcome of OK, CONFLICT and NOT_FOUND (keyed
 *   by project and request id; per-project bound FSM_PROJECT_REQUESTS, total bound
 *   FSM_REQUEST_CAPACITY, see below); the same id again returns DUPLICATE with that first
 *   outcome and changes nothing.
 * - INVALID (an entry that does not decode) and FULL (a limit below would be exceeded) are
 *   not recorded, so a retry can still succeed.
 *
 * The limits below bound memory. They are compile-time constants and part of the replicated
 * semantics (they decide which entries get FULL), so changing one needs every node of a
 * cluster upgraded together, like a change of the entry format.
 */
#ifndef CONCLAVE_FSM_H
#define CONCLAVE_FSM_H

#include <stddef.h>
#include <stdint.h>

#include "raft/codec.h"
#include "raft/revision.h"

/* Configs, tombstones included (a tombstone is never dropped). Twice the 1,000,000 keys the
 * benchmark's largest row holds, so that a store of that size still has room for others. */
#define FSM_MAX_CONFIGS 2000000u
/* Sum of the content lengths of the live configs. */
#define FSM_MAX_CONTENT_BYTES ((uint64_t)1 << 30)
/* Revisions waiting for PostgreSQL, and the sum of their content lengths. When PostgreSQL is
 * down for long, writes get FULL instead of growing memory without bound. */
#define FSM_MAX_PENDING       65536u
#define FSM_MAX_PENDING_BYTES ((uint64_t)256 << 20)
/* Recorded request ids (docs/state-machine.md, "Request ids"). Each project keeps its own
 * recent ids: a project forgets its oldest once it holds FSM_PROJECT_REQUESTS, never an id
 * whose write is OK and not yet materialized (the state machine is then the only place that
 * knows its outcome), so it may hold more while PostgreSQL lags. FSM_REQUEST_CAPACITY bounds
 * all projects together: only when they fill it does an insert forget another project's
 * oldest forgettable id. Memory: at most FSM_REQUEST_CAPACITY records of about 300 bytes
 * (about 40 MiB) plus a 1 MiB index. */
#define FSM_PROJECT_REQUESTS 1024u
#define FSM_REQUEST_CAPACITY 131072u

/* Error codes of the functions that can fail. */
#define FSM_EINVAL (-1) /* a snapshot that is not valid */
#define FSM_ENOMEM (-2)
#define FSM_EBUSY  (-3) /* a snapshot view is already alive */

enum fsm_status {
    FSM_OK = 0,
    FSM_CONFLICT = 1,  /* expected_version differs from the current version */
    FSM_NOT_FOUND = 2, /* delete or rollback of an absent or deleted key */
    FSM_DUPLICATE = 3, /* the request id was seen: first_status etc. hold the first outcome */
    FSM_INVALID = 4,   /* the entry does not decode, or its index is not above the last one */
    FSM_FULL = 5,      /* a limit above would be exceeded; nothing changed */
    /* Never from fsm_apply(): rfsm.c reports it when this node could not apply the entry
     * (out of memory) and stops. The entry is committed and the other nodes apply it; this
     * node applies it from its log after a restart. Its outcome is unknown here. */
    FSM_STOPPED = 6,
};

/* What one fsm_apply() did. Raft never sees a failure: the glue passes this to the waiting
 * request. */
/* The limit a FULL outcome hit. */
enum fsm_limit {
    FSM_LIMIT_NONE = 0,
    FSM_LIMIT_CONFIGS,       /* FSM_MAX_CONFIGS (or the lowered fsm_set_max_configs()) */
    FSM_LIMIT_CONTENT_BYTES, /* FSM_MAX_CONTENT_BYTES */
    FSM_LIMIT_PENDING,       /* FSM_MAX_PENDING or FSM_MAX_PENDING_BYTES: PostgreSQL lags */
    FSM_LIMIT_REVISIONS,     /* revision numbers ran out */
};

struct fsm_result {
    enum fsm_status status;
    enum codec_op op; /* the entry's op; 0 when it did not decode */
    /* OK: the new version. CONFLICT, NOT_FOUND: the current version (0 when the key never
     * existed). DUPLICATE: the first outcome's version. */
    uint64_t version;
    /* OK (and DUPLICATE of an OK): the revision number; otherwise 0. */
    uint64_t revision;
    /* DUPLICATE only: the first outcome's status and raft index, and whether this retry's
     * op, key, expected and source version, content, schema or actor differ from the first
     * request's (a reused request id: the API should not pretend the retry was applied). */
    enum fsm_status first_status;
    uint64_t first_index;
    int mismatch;
    /* materialized: how many revisions left the queue. */
    uint64_t trimmed;
    /* FULL: which limit; FSM_LIMIT_NONE otherwise. The API answers by it: a queue for
     * PostgreSQL drains by itself, the other limits do not. */
    enum fsm_limit limit;
    /* INVALID, FULL: why, for logs. Empty otherwise. */
    char message[200];
};

/* A config as the state machine holds it. Returned by pointer for reading only. (Fields are
 * ordered to leave no padding: a state holds up to a million of these.) */
struct fsm_config {
    const char *project; /* the project id, NUL-terminated */
    char *key;           /* NUL-terminated */
    size_t key_len;
    uint64_t version; /* >= 1; a tombstone keeps the version of its delete */
    int deleted;
    int has_schema;   /* never set on a tombstone */
    uint8_t *content; /* NULL exactly when deleted; NUL-terminated for convenience */
    size_t content_len;
    uint8_t schema_id[16];
    uint8_t schema_hash[32];
    uint64_t last_revision; /* the revision that produced this state */
    uint64_t raft_index;    /* the raft index of that revision */
    char *updated_by;       /* that revision's actor */
    int64_t updated_at;     /* that revision's leader timestamp (microseconds) */
    /* The fsm module's bookkeeping, not state. While the config is in the live state: the
     * generation it was created in (a snapshot view taken in a later generation may read it).
     * Once the live state dropped it into a view's keeping: the next of the view's retired
     * configs. */
    union {
        uint64_t gen;
        struct fsm_config *retired_next;
    };
};

/* The first outcome recorded for a (project, request id). */
struct fsm_request {
    enum fsm_status status; /* FSM_OK, FSM_CONFLICT or FSM_NOT_FOUND */
    uint64_t version;       /* as in struct fsm_result */
    uint64_t revision;
    uint64_t raft_index; /* the entry that produced the outcome */
    uint8_t rule; /* FSM_FP_CLIENT, or FSM_FP_LEGACY for an id recorded from a version-1 entry */
    /* BLAKE2b-256 of what the request asked for, by RULE (see fsm_request_fingerprint()). */
    uint8_t fingerprint[32];
};

struct fsm;

/* Creates an empty state machine (also calls sodium_init()). HASH_KEY, when not NULL, is a
 * 16-byte secret keying the request-id hash table, so that clients cannot choose request ids
 * that collide; it changes no result and no replicated byte, so every node may use its own
 * random key. NULL uses a fixed key (tests). On success returns 0 and *OUT is owned by the
 * caller (release with fsm_free()); on failure *OUT is NULL and ERRMSG says why. */
int fsm_new(struct fsm **out, const uint8_t *hash_key, char *errmsg, size_t errlen);

/* Releases F and everything it owns. Safe on NULL. */
void fsm_free(struct fsm *f);

/* Lowers F's limit on configs from FSM_MAX_CONFIGS to MAX (1..FSM_MAX_CONFIGS; other values
 * are clamped into that range), for tests that must reach it (the failpoint
 * CONCLAVE_FAILPOINT_FSM_MAX_CONFIGS, raft/rfsm.c). The limit decides the outcome of
 * replicated entries, so every node of a cluster must use the same value. */
void fsm_set_max_configs(struct fsm *f, size_t max);

/* Applies the LEN bytes at BUF (an encoded codec entry; only read, not kept) as the entry at
 * raft index INDEX, and describes the outcome in *OUT. A malformed entry, a conflict, a
 * duplicate, a missing key and a full state are outcomes, not failures: the function returns
 * 0 and every such outcome except an INDEX not above the last applied one advances the last
 * applied index. Returns FSM_ENOMEM only when memory runs out; then the state is exactly as
 * before and the caller must stop the node, because a node that skipped an entry would
 * diverge from the others. */
int fsm_apply(struct fsm *f, uint64_t index, const uint8_t *buf, size_t len,
              struct fsm_result *out);

/* Returns the current config of PROJECT/KEY (tombstones included), or NULL when the key
 * never existed. The pointer is valid until the next call that changes F. */
const struct fsm_config *fsm_get(const struct fsm *f, const char *project, size_t project_len,
                                 const char *key, size_t key_len);

/* Calls VISIT(config, ARG) for PROJECT's configs (tombstones included) in ascending bytewise
 * key order, starting after the key AFTER (AFTER_LEN 0: from the first) and keeping only the
 * keys that start with PREFIX (PREFIX_LEN 0: all), until VISIT returns non-zero. VISIT must
 * not change F. Returns how many configs VISIT saw. */
size_t fsm_list(const struct fsm *f, const char *project, size_t project_len, const char *prefix,
                size_t prefix_len, const char *after, size_t after_len,
                int (*visit)(const struct fsm_config *config, void *arg), void *arg);

/* Returns the recorded outcome of (PROJECT, REQUEST_ID), or NULL. The leader consults it
 * before its early version check, so a retry after "outcome unknown" gets the first outcome
 * rather than a conflict with its own earlier write. Valid until the next change of F. */
const struct fsm_request *fsm_request_find(const struct fsm *f, const char *project,
                                           size_t project_len, const char *request_id,
                                           size_t request_id_len);

/* What the body of a write said about the schema. */
enum fsm_schema_ask {
    FSM_SCHEMA_ABSENT = 0, /* no schema_id field: the key keeps its binding */
    FSM_SCHEMA_NULL = 1,   /* "schema_id": null: unbind */
    FSM_SCHEMA_ID = 2,     /* "schema_id": a UUID */
};

/* What a client asked for, before the leader resolved anything: the input of a request
 * fingerprint. Strings are (pointer, length) pairs and only read. */
struct fsm_ask {
    enum codec_op op; /* put (create is a put with expected_version 0), delete, rollback */
    const char *key;
    size_t key_len;
    uint64_t expected_version;
    uint64_t source_version; /* rollback: the target version; otherwise 0 */
    /* put: the content as sent, canonicalised; delete and rollback: NULL, 0 (a rollback's
     * content is loaded by the leader from the target version, so it is not what was asked) */
    const uint8_t *content;
    size_t content_len;
    enum fsm_schema_ask schema;
    uint8_t schema_id[16]; /* FSM_SCHEMA_ID only */
    const char *actor;
    size_t actor_len;
};

/* Fingerprint rules, recorded with each request (struct fsm_request.rule). */
#define FSM_FP_LEGACY 1 /* version-1 entries: fsm_request_fingerprint_legacy() of the entry */
#define FSM_FP_CLIENT 2 /* version-2 entries: the fingerprint the entry carries */

/* Returns non-zero when PROJECT may have had request ids forgotten: its own bound or the
 * total bound was reached, or ids recorded before codec version 2 (kept by the old global
 * FIFO) are still in the table. Zero means every request id this state machine applied for
 * PROJECT is still in the table, so a retry it does not find is new, and the leader skips the
 * PostgreSQL lookup. Derived from replicated state only: the same on every node. */
int fsm_request_may_have_forgotten(const struct fsm *f, const char *project, size_t project_len);

/* Computes the fingerprint of what a client asked (FSM_FP_CLIENT): BLAKE2b-256 over a domain
 * tag, the op, key, expected and source version, the schema as given, the content as sent and
 * the actor. The API computes it before resolving the schema or loading a rollback's content
 * and puts it in the entry (codec_entry.fingerprint), so that a retry of the same request has
 * the same fingerprint whatever the leader resolved in between. */
void fsm_request_fingerprint(const struct fsm_ask *a, uint8_t out[32]);

/* The rule before codec version 2 (FSM_FP_LEGACY): BLAKE2b-256 over the entry's op, key,
 * expected and source version, resolved schema, content and actor. Kept so that version-1
 * entries of an old raft log apply exactly as they did. */
void fsm_request_fingerprint_legacy(const struct codec_entry *e, uint8_t out[32]);

/* The number of request ids PROJECT has recorded. */
size_t fsm_request_count(const struct fsm *f, const char *project, size_t project_len);

/* Counters. */
uint64_t fsm_last_applied(const struct fsm *f);       /* raft index of the last entry applied */
uint64_t fsm_revision(const struct fsm *f);           /* the last revision number, 0 at first */
uint64_t fsm_materialized_index(const struct fsm *f); /* the highest materialized(N) seen */

/* A work counter for tests and benchmarks, not replicated: how many config and chunk
 * pointers PROJECT's inserts and chunk splits shifted or copied since this state was created
 * or restored (0 for an unknown project). An insert shifts at most one chunk's worth. */
uint64_t fsm_config_moves(const struct fsm *f, const char *project, size_t project_len);

/* Copies PROJECT's chain head (the hash of its latest revision, or 32 zero bytes for a
 * project without revisions) into OUT. */
void fsm_chain_head(const struct fsm *f, const char *project, size_t project_len,
                    uint8_t out[REVISION_HASH_SIZE]);

/* Returns the number of revisions waiting for PostgreSQL. */
size_t fsm_pending_count(const struct fsm *f);

/* Stores in OUT[0..MAX) pointers to the queued revisions with raft_index >= FROM_INDEX, in
 * raft order, and returns how many it stored. The revisions stay owned by F and valid until
 * the next call that changes F; copy them (revision_copy()) to hand them to another thread. */
size_t fsm_pending_from(const struct fsm *f, uint64_t from_index, const struct revision **out,
                        size_t max);

/* Computes SHA-256 over the canonical serialisation of everything replicated (the body of
 * a snapshot) into OUT. Equal on every node that applied the same entries. */
void fsm_state_hash(const struct fsm *f, uint8_t out[32]);

/* Serialises F into a new buffer (the snapshot format of docs/state-machine.md: header with
 * magic, version, CRC-32C and state hash; zero-padded to a multiple of 8). On success returns
 * 0, the caller frees *BUF with free(), *LEN is its length. On failure returns FSM_ENOMEM,
 * *BUF is NULL and ERRMSG says so. */
int fsm_snapshot(const struct fsm *f, uint8_t **buf, size_t *len, char *errmsg, size_t errlen);

/* fsm_snapshot() in two halves. The first serialises F into a new buffer (the fields the
 * second half fills are zero); the second computes the state hash and the checksum of that
 * buffer and writes them into its header. A node serialises a snapshot view instead
 * (fsm_view_write(), below) and seals that with the second half. The second reads and writes only
 * BUF: it may run on any thread while F keeps changing, and it cannot fail. BUF/LEN as
 * fsm_snapshot()'s; the snapshot is valid only once sealed. */
int fsm_snapshot_write(const struct fsm *f, uint8_t **buf, size_t *len, char *errmsg,
                       size_t errlen);
void fsm_snapshot_seal(uint8_t *buf, size_t len);

/*
 * Copy-on-write snapshot views (docs/state-machine.md, "Snapshot views").
 *
 * fsm_view_take() freezes F as it is now, on the loop thread, at a cost proportional to the
 * number of projects and config chunks (not keys or bytes) plus a serialised copy of the
 * bounded queues (the pending revisions and the request-id records). fsm_view_write() then
 * serialises the frozen state into a snapshot buffer on ANY thread (raft's worker), while the
 * loop thread keeps calling fsm_apply() and fsm_restore() on F, and even fsm_free(F). The bytes
 * are exactly those fsm_snapshot_write() would have produced at the moment of the take.
 * fsm_view_release() (loop thread) frees what only the view still referenced.
 *
 * Threading rules, so that this is not a data race (TSan agrees: tests/raft/test_fsm.c):
 * - The worker reads only the view itself (written before the take returned, then constant),
 *   the n and items fields of the chunks it references, and the configs those hold.
 * - A chunk the view references has a reference count above one until the release; the loop
 *   never changes n or items of such a chunk: it copies the chunk first. The count itself is
 *   read and written by the loop only (a distinct memory location from n and items).
 * - A config created in a generation the view can see is never changed in place while the
 *   view lives: the loop puts a new object in its place and hands the old one to the view,
 *   which frees it at the release. Restore and free hand over every such object the same way.
 * - The hand-over of the view to the worker and back goes through the queue that runs the
 *   work (libuv's uv_queue_work, a mutex), which orders the take before the worker's reads and
 *   the worker's reads before the release.
 * At most one view lives at a time (raft 0.15 takes one snapshot at a time): a second take
 * returns FSM_EBUSY.
 */
struct fsm_view;

/* Loop thread. On success *OUT is the view (release it with fsm_view_release()). Returns
 * FSM_EBUSY when F has a live view, FSM_ENOMEM when memory runs out; ERRMSG says which. */
int fsm_view_take(struct fsm *f, struct fsm_view **out, char *errmsg, size_t errlen);

/* Any thread: serialises V into a new buffer as fsm_snapshot_write() does (unsealed: seal it
 * with fsm_snapshot_seal()). Reads only V and what V froze. Returns 0 or FSM_ENOMEM. */
int fsm_view_write(const struct fsm_view *v, uint8_t **buf, size_t *len, char *errmsg,
                   size_t errlen);

/* Loop thread, once no thread reads V any more. Safe on NULL; valid after fsm_free() of the
 * state machine V was taken from. */
void fsm_view_release(struct fsm_view *v);

/* Live data, for /metrics: the number of configs (tombstones included) and the sum of the
 * key and live content lengths. */
size_t fsm_config_count(const struct fsm *f);
uint64_t fsm_live_bytes(const struct fsm *f);

/* Replaces F's whole state with the snapshot in BUF/LEN (only read, not kept). Everything is
 * checked before F is touched: framing, checksum, every field rule, ordering, limits, every
 * queued revision's hash, and that the parsed state serialises back to the stored state
 * hash. On success returns 0 and nothing of F's previous state remains. On failure returns
 * FSM_EINVAL or FSM_ENOMEM, ERRMSG says what is wrong, and F is unchanged. */
int fsm_restore(struct fsm *f, const uint8_t *buf, size_t len, char *errmsg, size_t errlen);

#endif /* CONCLAVE_FSM_H */
