/*
 * fsm_internal: the fsm module's one private header: the state machine's data structures and
 * the primitive operations of fsm_store.c, shared by fsm.c (apply and accessors), fsm_snap.c
 * (serialisation) and fsm_restore.c (restore). It includes only fsm.h and bytes.h, so
 * the module's parts form no include loop; nothing outside raft/fsm*.c includes it.
 *
 * None of these functions checks a limit or validates input: the callers in fsm.c and
 * fsm_restore.c do, before they change anything, so that a refused command or snapshot leaves
 * the state as it was.
 */
#ifndef CONCLAVE_FSM_INTERNAL_H
#define CONCLAVE_FSM_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <sodium.h>

#include "raft/bytes.h"
#include "raft/fsm.h"

#define SNAP_MAGIC "CNCLSNAP"
/* Version 2 adds each request's fingerprint rule byte; version 1 (no rule byte: every id was
 * recorded by the legacy rule) is still restored. */
#define SNAP_VERSION     2
#define SNAP_VERSION_MIN 1
#define SNAP_HEADER_SIZE 64

/* Open-addressing slots of the request-id table: a power of two at least twice the
 * capacity, so the load factor stays at or below 1/2 and every probe sequence meets an
 * empty slot. */
#define REQ_SLOTS (2u * FSM_REQUEST_CAPACITY)

/* The total capacity must leave room for every id that may not be forgotten (an OK outcome
 * whose revision is still queued: at most FSM_MAX_PENDING), so a full table always holds an
 * id it may evict. */
_Static_assert(FSM_REQUEST_CAPACITY > FSM_MAX_PENDING, "request table below the pending bound");
_Static_assert((REQ_SLOTS & (REQ_SLOTS - 1)) == 0, "request slots must be a power of two");

/*
 * Data structures. Everything that is hashed or serialised is kept in a canonical order by
 * construction, so the state hash can never depend on insertion history:
 * - projects: an array sorted by id (bytewise). Each project's configs form one sequence
 *   sorted by key (bytewise), held in chunks: a directory (an array of chunk pointers) of
 *   chunks of at most CHUNK_MAX config pointers each, every chunk non-empty, the chunks in
 *   key order. A lookup is a binary search over the chunks' first keys, then one within a
 *   chunk; an insert shifts at most CHUNK_MAX pointers, and a full chunk splits in two (the
 *   directory shifts one pointer per chunk, once per split). So an insert costs
 *   O(log n + CHUNK_MAX + n / CHUNK_MAX / CHUNK_MAX) at n keys, not O(n). Configs are never
 *   removed (tombstones stay), so there is no delete path and no chunk ever becomes empty.
 *   Chunks are shared with snapshot views (below), copy-on-write.
 * - pending: a ring of revisions in raft order (which is also raft_index order).
 * - requests: records in a slab (positions never move; freed ones are reused), threaded on
 *   two doubly linked lists in insertion (= raft index) order: one over every record (the
 *   order in which they are serialised, and the order of the global eviction) and one per
 *   project (the order of the per-project eviction). req_projects, sorted by id, holds each
 *   project's list ends and count; a project without records has no entry. A linear-probing
 *   index over the slab, keyed by SipHash of (project, request id), serves lookups; its
 *   layout depends on the hash key and is never serialised. Slab positions are local too:
 *   nothing replicated depends on them.
 */
/* Config pointers per chunk. 256 keeps an insert's shift within one 2 KiB chunk and the
 * directory at about 4,000 to 8,000 chunks per 1,000,000 configs, which is what freezing a
 * snapshot view copies. */
#define CHUNK_MAX 256u

/* A run of consecutive configs of one project. REFS counts the holders: the live state
 * (while the chunk is in a project's directory) and each snapshot view that froze it. A chunk
 * with REFS > 1 is frozen: nothing may change N or ITEMS; the loop copies it first
 * (chunk_unshare()). REFS is read and written on the loop thread only; a worker serialising
 * a view reads only N and ITEMS, which are separate memory locations. */
struct chunk {
    uint32_t refs;
    uint32_t n;
    struct fsm_config *items[CHUNK_MAX]; /* ascending by key; the configs are not owned */
};

struct project {
    char *id; /* NUL-terminated */
    size_t id_len;
    uint8_t head[REVISION_HASH_SIZE]; /* hash of the latest revision; zeros = genesis */
    struct chunk **chunks;            /* the directory, in key order; a reference on each */
    size_t nchunks;
    size_t chunks_cap;
    size_t count;   /* configs over all chunks; the configs are owned by the state */
    uint64_t moves; /* pointers shifted or copied by inserts and splits (fsm_config_moves()) */
    /* Scratch for fsm_restore()'s cross-checks; meaningless otherwise. */
    uint64_t max_revision;
    int seen_pending;
    uint64_t last_pending_revision;
    uint8_t last_pending_hash[REVISION_HASH_SIZE];
};

/* A position in a project's config sequence: chunk index and index within it. The end is
 * (nchunks, 0). */
struct cfg_pos {
    size_t chunk;
    size_t idx;
};

/* A project as a snapshot view froze it. */
struct view_project {
    const char *id; /* into fsm_view.ids */
    size_t id_len;
    uint8_t head[REVISION_HASH_SIZE];
    size_t count;
    struct chunk **chunks; /* into fsm_view.chunks; the view holds a reference on each */
    size_t nchunks;
};

/* See fsm.h. Everything but OWNER and RETIRED is written by fsm_view_take() and then only
 * read (by the worker). OWNER and RETIRED belong to the loop thread. */
struct fsm_view {
    struct fsm *owner; /* the state machine while it lives; NULL after its fsm_free() */
    uint64_t gen;      /* configs with gen <= this may be read through the view */
    uint64_t last_applied;
    uint64_t revision;
    uint64_t materialized;
    struct view_project *projects;
    size_t nprojects;
    struct chunk **chunks; /* every project's directory, back to back */
    size_t nchunks;
    char *ids; /* the project ids, NUL-terminated, back to back */
    /* The pending revisions and request records, serialised at the take (snapshot body
     * format, SNAP_VERSION): bounded queues, copied rather than shared. */
    uint8_t *tail;
    size_t tail_len;
    struct fsm_config *retired; /* configs the live state dropped that the view may read */
};

struct request {
    uint32_t prev, next;   /* every record, oldest first: slab position + 1, 0 = none */
    uint32_t pprev, pnext; /* the same project's records, oldest first; same encoding */
    uint64_t hash;         /* SipHash of the key, kept to rehome entries on deletion */
    uint8_t project_len;
    uint8_t request_id_len;
    char project[CODEC_MAX_PROJECT + 1];
    char request_id[CODEC_MAX_REQUEST_ID + 1];
    struct fsm_request outcome;
};

/* One project's remembered request ids. */
struct req_project {
    char id[CODEC_MAX_PROJECT + 1];
    uint8_t id_len;
    uint32_t first, last; /* its oldest and newest record: slab position + 1 */
    uint32_t count;
};

struct fsm {
    /* Replicated state. */
    uint64_t last_applied;
    uint64_t revision;
    uint64_t materialized;
    struct project **projects; /* ascending by id; each owned */
    size_t nprojects;
    size_t projects_cap;
    size_t nconfigs;
    size_t max_configs;       /* local setting: FSM_MAX_CONFIGS unless lowered (tests) */
    uint64_t content_bytes;   /* sum of live content lengths */
    uint64_t key_bytes;       /* sum of key lengths (local, for /metrics) */
    struct revision *pending; /* ring; entries own their strings */
    size_t pending_head;
    size_t pending_count;
    size_t pending_cap;
    uint64_t pending_bytes;   /* sum of queued content lengths */
    struct request *requests; /* slab of req_cap records, req_used of them ever handed out */
    size_t req_cap;
    size_t req_used;
    uint32_t req_free;                /* freed records, chained by next; slab position + 1 */
    uint32_t req_first, req_last;     /* every record, oldest first */
    size_t req_count;                 /* records on the lists */
    struct req_project *req_projects; /* ascending by id */
    size_t nreq_projects;
    size_t req_projects_cap;
    /* Derived (not serialised): how many records carry FSM_FP_LEGACY. Ids recorded before
     * codec version 2 were kept by the old global FIFO, so while any remain, which ids were
     * forgotten is not known (fsm_request_may_have_forgotten()). */
    size_t req_legacy;
    /* Local only: the lookup index over requests and its key. */
    uint32_t *req_slots; /* REQ_SLOTS entries: slab position + 1, or 0 when empty */
    uint8_t hash_key[crypto_shorthash_KEYBYTES];
    /* Local only: the generation new configs are stamped with (from 1; each view take moves
     * it on) and the live snapshot view, if any. */
    uint64_t gen;
    struct fsm_view *view;
};

int fsm_store_cmp_bytes(const char *a, size_t alen, const char *b, size_t blen);

struct project *fsm_store_project_find(const struct fsm *f, const char *id, size_t len);

/* The position of the first config of P whose key is >= KEY. */
struct cfg_pos fsm_store_config_lower(const struct project *p, const char *key, size_t len);

/* The config at POS, or NULL at the end. */
struct fsm_config *fsm_store_config_at(const struct project *p, struct cfg_pos pos);

/* The position after POS (POS not at the end). */
struct cfg_pos fsm_store_config_next(const struct project *p, struct cfg_pos pos);

struct fsm_config *fsm_store_config_find(const struct project *p, const char *key, size_t len);

/* A new config holding copies of KEY, CONTENT (NULL: none, a tombstone) and the actor BY in
 * the same allocation, every other field zero; NULL when memory runs out. A config object is
 * never changed after it entered the state: a change replaces it. */
struct fsm_config *fsm_store_config_new(const char *key, size_t key_len, const uint8_t *content,
                                        size_t content_len, const char *by, size_t by_len);

void fsm_store_config_free(struct fsm_config *c);

struct project *fsm_store_project_alloc(const char *id, size_t len);

/* Drops every config of P (fsm_store_config_drop()) and P's chunk references, then P. */
void fsm_store_project_free(struct fsm *f, struct project *p);

/* Non-zero when the live view of F may read C: C must then not change in place. */
int fsm_store_config_frozen(const struct fsm *f, const struct fsm_config *c);

/* Releases C, which the live state no longer references: to F's view when the view may read
 * it (freed at fsm_view_release()), otherwise at once. */
void fsm_store_config_drop(struct fsm *f, struct fsm_config *c);

int fsm_store_projects_reserve(struct fsm *f);

/* Stage one of a change to P's config KEY (fsm.c's commit_change()): makes the chunk that
 * holds KEY, or would hold it, private to the live state (a copy when a view shares it) and,
 * when KEY is absent, able to take one more pointer (a full chunk splits). Nothing
 * observable changes: the sequence stays the same. Returns FSM_ENOMEM, state unchanged in
 * content, when memory runs out. */
int fsm_store_configs_prepare(struct project *p, const char *key, size_t len);

/* Inserts P at its sorted position; room must have been reserved. */
void fsm_store_projects_insert(struct fsm *f, struct project *p);

/* Inserts C (its key absent) at its sorted position; fsm_store_configs_prepare() for its key
 * must have succeeded since the last change of P. */
void fsm_store_configs_insert(struct project *p, struct fsm_config *c);

/* Puts NC in the place of OLD (same key); prepared as for an insert. */
void fsm_store_configs_replace(struct project *p, const struct fsm_config *old,
                               struct fsm_config *nc);

/* Appends C, whose key is above every key of P (restore). */
int fsm_store_configs_append(struct project *p, struct fsm_config *c);

/* Drops one reference to CH and frees it (not its configs) at zero. Loop thread only. */
void fsm_store_chunk_unref(struct chunk *ch);

struct revision *fsm_store_pending_at(const struct fsm *f, size_t i);

int fsm_store_pending_reserve(struct fsm *f);

/* Moves R (its owned strings included) to the end of the queue; room must be reserved. */
void fsm_store_pending_push(struct fsm *f, const struct revision *r);

void fsm_store_pending_pop(struct fsm *f);

uint64_t fsm_store_request_hash(const struct fsm *f, const char *project, size_t project_len,
                                const char *request_id, size_t request_id_len);

/* Returns the slot holding (PROJECT, REQUEST_ID), or -1. Lengths must be within the codec's
 * maximums. */
long fsm_store_request_slot(const struct fsm *f, uint64_t h, const char *project,
                            size_t project_len, const char *request_id, size_t request_id_len);

/* Makes room for one more request: a slab record (the slab grows until it reaches the
 * capacity, after which inserts evict instead) and a project entry. */
int fsm_store_request_reserve(struct fsm *f);

/* Records a new key (not present; room reserved). First forgets, in this order: the
 * project's oldest ids while it holds FSM_PROJECT_REQUESTS or more and its oldest may be
 * forgotten; then, if the whole table is still full, the oldest id of any project that may be
 * forgotten. An id may be forgotten unless its outcome is OK and its revision is not yet
 * materialized (raft_index above f->materialized). Deterministic: it depends only on
 * replicated state. */
void fsm_store_request_insert(struct fsm *f, uint64_t h, const char *project, size_t project_len,
                              const char *request_id, size_t request_id_len,
                              const struct fsm_request *outcome);

/* Appends a new key (not present; room reserved) without forgetting anything: restore. */
void fsm_store_request_append(struct fsm *f, uint64_t h, const char *project, size_t project_len,
                              const char *request_id, size_t request_id_len,
                              const struct fsm_request *outcome);

/* Every record, oldest first: the first, and the one after R (NULL at the end). */
const struct request *fsm_store_request_first(const struct fsm *f);
const struct request *fsm_store_request_next(const struct fsm *f, const struct request *r);

/* The number of ids PROJECT has recorded. */
size_t fsm_store_request_project_count(const struct fsm *f, const char *project,
                                       size_t project_len);

/* The pending revisions and the request records in snapshot body format VERSION. */
void fsm_snap_write_tail(struct bytes_sink *s, const struct fsm *f, unsigned version);

/* SHA-256 of F's body serialised in snapshot format VERSION (1 or SNAP_VERSION): restore
 * checks a version-1 snapshot against the hash it was written with. */
void fsm_snap_state_hash_as(const struct fsm *f, unsigned version, uint8_t out[32]);

/* Frees everything F owns but the struct itself. */
void fsm_store_state_release(struct fsm *f);

#endif /* CONCLAVE_FSM_INTERNAL_H */
