/*
 * reqbloom: a Bloom filter over (project, request id) pairs, so that the leader can tell that
 * a request id is new without asking PostgreSQL.
 *
 * Why: once a project has recorded FSM_PROJECT_REQUESTS ids, the state machine may have
 * forgotten some (raft/fsm.h), and a request id it does not know might then be the retry of a
 * write whose revision only PostgreSQL still holds; the leader looked every such id up in
 * config_revisions before proposing (a pool round trip on every write of a busy project). The
 * materializer keeps this filter over every request id of config_revisions up to a revision
 * (materializer.h says how it stays complete); an id the filter does not contain is in no
 * revision up to there, so the lookup is skipped. A false positive only costs the lookup.
 *
 * Fixed size (REQBLOOM_BITS bits, 4 MiB), so memory stays bounded whatever the history's
 * length; false positives grow with it: about 1 % at 3.5 million request ids, 37 % at 10
 * million, where most writes would do the lookup again (still correct).
 *
 * The hash is SipHash keyed with a per-process random key (libsodium), so clients cannot
 * choose ids that collide on purpose. Not thread-safe: the loop thread owns a filter;
 * reqbloom_hash() is pure and may run on any thread (the loader hashes on a pool worker).
 */
#ifndef CONCLAVE_REQBLOOM_H
#define CONCLAVE_REQBLOOM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define REQBLOOM_BITS   (UINT64_C(1) << 25)
#define REQBLOOM_HASHES 7

/* The two independent 64-bit hashes of one pair; the filter derives its probes from them. */
struct reqbloom_hash {
    uint64_t a, b;
};

struct reqbloom;

/* Creates an empty filter with a fresh random key. Returns NULL when out of memory. */
struct reqbloom *reqbloom_new(void);
void reqbloom_free(struct reqbloom *f);

/* Empties F (keeps its key). */
void reqbloom_clear(struct reqbloom *f);

/* Hashes (PROJECT, REQUEST_ID) with F's key into *OUT. Reads only the key, which never
 * changes after reqbloom_new(): safe on any thread while F lives. */
void reqbloom_hash(const struct reqbloom *f, const char *project, size_t project_len,
                   const char *request_id, size_t request_id_len, struct reqbloom_hash *out);

void reqbloom_add(struct reqbloom *f, const struct reqbloom_hash *h);

/* False only when the pair was never added. */
bool reqbloom_may_contain(const struct reqbloom *f, const struct reqbloom_hash *h);

#endif /* CONCLAVE_REQBLOOM_H */
