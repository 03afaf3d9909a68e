/*
 * The state machine and the revision hash chain: a known-answer test of the canonical
 * revision bytes, the CAS, tombstone, rollback, request-id and materialized rules, limits,
 * determinism over generated logs, and snapshots (round trip, replacement of a different
 * state, refusal of corrupted ones without any change).
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "raft/codec.h"
#include "raft/fsm.h"
#include "raft/revision.h"

static char err[256];

static uint64_t rng_state;

static uint64_t rng(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545f4914f6cdd1dull;
}

static struct fsm *new_fsm(const uint8_t *key)
{
    struct fsm *f = NULL;
    if (fsm_new(&f, key, err, sizeof(err)) != 0) {
        fail_msg("fsm_new: %s", err);
    }
    return f;
}

/* A request as the leader would propose it. */
struct req {
    enum codec_op op;
    const char *project;
    const char *key;
    uint64_t expected;
    uint64_t source;
    const char *content; /* NULL for delete */
    const char *rid;     /* NULL: none */
    int schema;          /* 0: none; n: a schema id/hash derived from n */
    const char *actor;   /* NULL: "alice" */
    uint64_t materialized;
    /* The schema the client asked for, which the fingerprint covers (the resolved schema
     * above may differ: inherited from the key, or its hash changed). */
    enum fsm_schema_ask ask_schema;
    int ask_schema_id; /* FSM_SCHEMA_ID: an id derived from n */
};

/* The fingerprint the API would compute for R. */
static void req_fingerprint(const struct req *r, uint8_t out[32])
{
    struct fsm_ask a;
    memset(&a, 0, sizeof(a));
    a.op = r->op;
    a.key = r->key;
    a.key_len = strlen(r->key);
    a.expected_version = r->expected;
    a.source_version = r->source;
    if (r->op == CODEC_OP_PUT) {
        a.content = (const uint8_t *)r->content;
        a.content_len = strlen(r->content);
    }
    a.schema = r->ask_schema;
    memset(a.schema_id, r->ask_schema_id, sizeof(a.schema_id));
    a.actor = r->actor != NULL ? r->actor : "alice";
    a.actor_len = strlen(a.actor);
    fsm_request_fingerprint(&a, out);
}

static uint8_t *encode_req(const struct req *r, uint64_t index, size_t *len)
{
    struct codec_entry e;
    memset(&e, 0, sizeof(e));
    e.op = r->op;
    if (r->op == CODEC_OP_MATERIALIZED) {
        e.materialized_index = r->materialized;
    } else {
        e.project = r->project;
        e.project_len = strlen(r->project);
        e.key = r->key;
        e.key_len = strlen(r->key);
        e.expected_version = r->expected;
        e.source_version = r->source;
        e.term = 1 + index / 100;
        e.timestamp_us = 1700000000000000 + (int64_t)index * 1000;
        e.actor = r->actor != NULL ? r->actor : "alice";
        e.actor_len = strlen(e.actor);
        if (r->rid != NULL) {
            e.request_id = r->rid;
            e.request_id_len = strlen(r->rid);
        }
        if (r->schema) {
            e.has_schema = 1;
            memset(e.schema_id, r->schema, sizeof(e.schema_id));
            memset(e.schema_hash, r->schema + 1, sizeof(e.schema_hash));
        }
        if (r->content != NULL) {
            e.content = (const uint8_t *)r->content;
            e.content_len = strlen(r->content);
        }
        req_fingerprint(r, e.fingerprint);
    }
    uint8_t *buf = NULL;
    if (codec_encode(&e, &buf, len, err, sizeof(err)) != 0) {
        fail_msg("encode: %s", err);
    }
    return buf;
}

static struct fsm_result apply_at(struct fsm *f, uint64_t index, const uint8_t *buf, size_t len)
{
    struct fsm_result res;
    assert_int_equal(fsm_apply(f, index, buf, len, &res), 0);
    return res;
}

static struct fsm_result run(struct fsm *f, const struct req *r)
{
    uint64_t index = fsm_last_applied(f) + 1;
    size_t len;
    uint8_t *buf = encode_req(r, index, &len);
    struct fsm_result res = apply_at(f, index, buf, len);
    free(buf);
    return res;
}

static struct fsm_result put(struct fsm *f, const char *project, const char *key, uint64_t expected,
                             const char *content, const char *rid)
{
    struct req r = {.op = CODEC_OP_PUT,
                    .project = project,
                    .key = key,
                    .expected = expected,
                    .content = content,
                    .rid = rid};
    return run(f, &r);
}

static struct fsm_result del(struct fsm *f, const char *project, const char *key, uint64_t expected,
                             const char *rid)
{
    struct req r = {
        .op = CODEC_OP_DELETE, .project = project, .key = key, .expected = expected, .rid = rid};
    return run(f, &r);
}

static struct fsm_result rollback(struct fsm *f, const char *project, const char *key,
                                  uint64_t expected, uint64_t source, const char *content)
{
    struct req r = {.op = CODEC_OP_ROLLBACK,
                    .project = project,
                    .key = key,
                    .expected = expected,
                    .source = source,
                    .content = content};
    return run(f, &r);
}

static struct fsm_result materialize(struct fsm *f, uint64_t n)
{
    struct req r = {.op = CODEC_OP_MATERIALIZED, .materialized = n};
    return run(f, &r);
}

static void expect(struct fsm_result res, enum fsm_status status, uint64_t version)
{
    if (res.status != status || res.version != version) {
        fail_msg("got status %d version %llu (%s), want status %d version %llu", res.status,
                 (unsigned long long)res.version, res.message, status, (unsigned long long)version);
    }
}

static const struct fsm_config *get(const struct fsm *f, const char *project, const char *key)
{
    return fsm_get(f, project, strlen(project), key, strlen(key));
}

static void state_hash(const struct fsm *f, uint8_t out[32])
{
    fsm_state_hash(f, out);
}

/* ---- revision canonical bytes: known answers ---- */

struct hand {
    uint8_t b[512];
    size_t n;
};

static void h_bytes(struct hand *h, const void *p, size_t n)
{
    memcpy(h->b + h->n, p, n);
    h->n += n;
}

static void h_be(struct hand *h, uint64_t v, int size)
{
    for (int i = size - 1; i >= 0; i--) {
        h->b[h->n++] = (uint8_t)(v >> (8 * i));
    }
}

static void h_str(struct hand *h, const char *s)
{
    h_be(h, strlen(s), 4);
    h_bytes(h, s, strlen(s));
}

static void hex_to(const char *hex, uint8_t *out, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        assert_int_equal(sscanf(hex + 2 * i, "%2x", &v), 1);
        out[i] = (uint8_t)v;
    }
}

static void check_revision(const struct revision *r, const struct hand *h, const char *want_hex)
{
    uint8_t *bytes;
    size_t len;
    assert_int_equal(revision_canonical_bytes(r, &bytes, &len, err, sizeof(err)), 0);
    assert_int_equal(len, h->n);
    assert_int_equal(revision_canonical_size(r), h->n);
    assert_memory_equal(bytes, h->b, h->n);
    free(bytes);
    /* hash = SHA-256(prev_hash || canonical bytes), computed here with libsodium directly. */
    uint8_t msg[32 + sizeof(h->b)];
    memcpy(msg, r->prev_hash, 32);
    memcpy(msg + 32, h->b, h->n);
    uint8_t expect_hash[32];
    crypto_hash_sha256(expect_hash, msg, 32 + h->n);
    uint8_t got[32];
    revision_compute_hash(r, got);
    assert_memory_equal(got, expect_hash, 32);
    /* And the value pinned from an independent Python implementation of the layout. */
    uint8_t pinned[32];
    hex_to(want_hex, pinned, 32);
    assert_memory_equal(got, pinned, 32);
}

static void test_revision_known_answer(void **state)
{
    (void)state;
    assert_true(sodium_init() >= 0);
    char project[] = "acme", key[] = "db.url", actor1[] = "alice@example.com", rid1[] = "req-1",
         actor2[] = "bob", actor3[] = "carol", rid3[] = "r3";
    uint8_t content[] = "{\"a\":1}";

    struct revision r1;
    memset(&r1, 0, sizeof(r1));
    r1.revision = 7;
    r1.project = project;
    r1.key = key;
    r1.version = 3;
    r1.op = REVISION_PUT;
    r1.content = content;
    r1.content_len = 7;
    r1.has_schema = 1;
    for (int i = 0; i < 16; i++) {
        r1.schema_id[i] = (uint8_t)i;
    }
    for (int i = 0; i < 32; i++) {
        r1.schema_hash[i] = (uint8_t)(0x20 + i);
    }
    r1.actor = actor1;
    r1.request_id = rid1;
    r1.created_at = 1700000000123456;
    r1.raft_index = 42;
    r1.raft_term = 5;
    memset(r1.prev_hash, 0xaa, 32);

    struct hand h = {.n = 0};
    h_bytes(&h, "CRV1", 4);
    h_be(&h, 7, 8);
    h_str(&h, "acme");
    h_str(&h, "db.url");
    h_be(&h, 3, 8);
    h_str(&h, "put");
    h_be(&h, 1, 1);
    h_str(&h, "{\"a\":1}");
    h_be(&h, 0, 1); /* no source version */
    h_be(&h, 1, 1);
    h_bytes(&h, r1.schema_id, 16);
    h_be(&h, 1, 1);
    h_bytes(&h, r1.schema_hash, 32);
    h_str(&h, "alice@example.com");
    h_be(&h, 1, 1);
    h_str(&h, "req-1");
    h_be(&h, 1700000000123456, 8);
    h_be(&h, 42, 8);
    h_be(&h, 5, 8);
    h_bytes(&h, r1.prev_hash, 32);
    assert_int_equal(h.n, 195);
    check_revision(&r1, &h, "1d2ccc48ace73fdcfc5e7edfc3494ecd38f6beb2eea5bf752c760e32c35a65ed");
    revision_compute_hash(&r1, r1.hash);

    /* A delete chained to it: no content, no schema, no request id. */
    struct revision r2;
    memset(&r2, 0, sizeof(r2));
    r2.revision = 8;
    r2.project = project;
    r2.key = key;
    r2.version = 4;
    r2.op = REVISION_DELETE;
    r2.actor = actor2;
    r2.created_at = 1700000000999999;
    r2.raft_index = 43;
    r2.raft_term = 5;
    memcpy(r2.prev_hash, r1.hash, 32);
    h.n = 0;
    h_bytes(&h, "CRV1", 4);
    h_be(&h, 8, 8);
    h_str(&h, "acme");
    h_str(&h, "db.url");
    h_be(&h, 4, 8);
    h_str(&h, "delete");
    h_be(&h, 0, 1);
    h_be(&h, 0, 1);
    h_be(&h, 0, 1);
    h_be(&h, 0, 1);
    h_str(&h, "bob");
    h_be(&h, 0, 1);
    h_be(&h, 1700000000999999, 8);
    h_be(&h, 43, 8);
    h_be(&h, 5, 8);
    h_bytes(&h, r2.prev_hash, 32);
    check_revision(&r2, &h, "0d596d9a20fdd6e314df07a40fc4ee53e16b8fdc36eb94624ce84f70c1fd1c5e");
    revision_compute_hash(&r2, r2.hash);

    /* A rollback: source version present. */
    struct revision r3;
    memset(&r3, 0, sizeof(r3));
    r3.revision = 9;
    r3.project = project;
    r3.key = key;
    r3.version = 5;
    r3.op = REVISION_ROLLBACK;
    r3.content = content;
    r3.content_len = 7;
    r3.source_version = 3;
    r3.actor = actor3;
    r3.request_id = rid3;
    r3.created_at = 1700000001000000;
    r3.raft_index = 44;
    r3.raft_term = 6;
    memcpy(r3.prev_hash, r2.hash, 32);
    h.n = 0;
    h_bytes(&h, "CRV1", 4);
    h_be(&h, 9, 8);
    h_str(&h, "acme");
    h_str(&h, "db.url");
    h_be(&h, 5, 8);
    h_str(&h, "rollback");
    h_be(&h, 1, 1);
    h_str(&h, "{\"a\":1}");
    h_be(&h, 1, 1);
    h_be(&h, 3, 8);
    h_be(&h, 0, 1);
    h_be(&h, 0, 1);
    h_str(&h, "carol");
    h_be(&h, 1, 1);
    h_str(&h, "r3");
    h_be(&h, 1700000001000000, 8);
    h_be(&h, 44, 8);
    h_be(&h, 6, 8);
    h_bytes(&h, r3.prev_hash, 32);
    check_revision(&r3, &h, "75fcd2676ad3f383fb660dadc483e3d6e730a6d4ffd0be435759731090d10bb9");

    /* A deep copy owns its strings and hashes the same. */
    struct revision copy;
    assert_int_equal(revision_copy(&copy, &r3, err, sizeof(err)), 0);
    assert_ptr_not_equal(copy.project, r3.project);
    uint8_t a[32], b[32];
    revision_compute_hash(&r3, a);
    revision_compute_hash(&copy, b);
    assert_memory_equal(a, b, 32);
    revision_clear(&copy);
    assert_null(copy.project);
    assert_string_equal(revision_op_name(REVISION_ROLLBACK), "rollback");
}

/* ---- rules ---- */

static void test_cas(void **state)
{
    (void)state;
    struct fsm *f = new_fsm(NULL);
    expect(put(f, "acme", "a", 0, "{\"v\":1}", NULL), FSM_OK, 1);
    assert_int_equal(fsm_revision(f), 1);
    /* Create again: the key exists. */
    expect(put(f, "acme", "a", 0, "{\"v\":9}", NULL), FSM_CONFLICT, 1);
    expect(put(f, "acme", "a", 1, "{\"v\":2}", NULL), FSM_OK, 2);
    /* A stale expected version. */
    struct fsm_result res = put(f, "acme", "a", 1, "{\"v\":9}", NULL);
    expect(res, FSM_CONFLICT, 2);
    assert_int_equal(res.revision, 0);
    /* Expected from the future. */
    expect(put(f, "acme", "a", 7, "{\"v\":9}", NULL), FSM_CONFLICT, 2);
    /* Updating a missing key. */
    expect(put(f, "acme", "b", 3, "{}", NULL), FSM_CONFLICT, 0);
    assert_null(get(f, "acme", "b"));
    /* Only successes count revisions. */
    assert_int_equal(fsm_revision(f), 2);
    res = put(f, "acme", "b", 0, "{}", NULL);
    expect(res, FSM_OK, 1);
    assert_int_equal(res.revision, 3);
    assert_int_equal(fsm_revision(f), 3);

    const struct fsm_config *c = get(f, "acme", "a");
    assert_non_null(c);
    assert_int_equal(c->version, 2);
    assert_false(c->deleted);
    assert_int_equal(c->content_len, 7);
    assert_memory_equal(c->content, "{\"v\":2}", 7);
    assert_int_equal(c->last_revision, 2);
    assert_int_equal(c->raft_index, 3);
    assert_string_equal(c->updated_by, "alice");
    assert_string_equal(c->project, "acme");
    assert_int_equal(fsm_last_applied(f), 7);
    /* Same key in another project is another config. */
    expect(put(f, "other", "a", 0, "{}", NULL), FSM_OK, 1);
    fsm_free(f);
}

static void test_delete_tombstone_recreate(void **state)
{
    (void)state;
    struct fsm *f = new_fsm(NULL);
    struct req r = {.op = CODEC_OP_PUT,
                    .project = "acme",
                    .key = "k",
                    .expected = 0,
                    .content = "{\"x\":1}",
                    .schema = 3};
    expect(run(f, &r), FSM_OK, 1);
    assert_true(get(f, "acme", "k")->has_schema);
    expect(del(f, "acme", "k", 5, NULL), FSM_CONFLICT, 1);
    struct fsm_result res = del(f, "acme", "k", 1, NULL);
    expect(res, FSM_OK, 2);
    assert_int_equal(res.revision, 2);
    const struct fsm_config *c = get(f, "acme", "k");
    assert_non_null(c);
    assert_true(c->deleted);
    assert_null(c->content);
    assert_int_equal(c->content_len, 0);
    assert_false(c->has_schema);
    assert_int_equal(c->version, 2);
    /* Deleting again, or deleting/rolling back what never existed: not found. */
    expect(del(f, "acme", "k", 2, NULL), FSM_NOT_FOUND, 2);
    expect(del(f, "acme", "nope", 0, NULL), FSM_NOT_FOUND, 0);
    expect(rollback(f, "acme", "k", 2, 1, "{\"x\":1}"), FSM_NOT_FOUND, 2);
    expect(rollback(f, "acme", "nope", 3, 1, "{}"), FSM_NOT_FOUND, 0);
    /* Recreating takes the tombstone's version; 0 is a conflict. */
    expect(put(f, "acme", "k", 0, "{\"x\":2}", NULL), FSM_CONFLICT, 2);
    expect(put(f, "acme", "k", 2, "{\"x\":2}", NULL), FSM_OK, 3);
    c = get(f, "acme", "k");
    assert_false(c->deleted);
    assert_memory_equal(c->content, "{\"x\":2}", 7);
    assert_int_equal(fsm_revision(f), 3);

    /* The delete revision in the queue has no content. */
    const struct revision *revs[8];
    size_t n = fsm_pending_from(f, 0, revs, 8);
    assert_int_equal(n, 3);
    assert_int_equal(revs[1]->op, REVISION_DELETE);
    assert_null(revs[1]->content);
    assert_int_equal(revs[1]->version, 2);
    assert_int_equal(revs[2]->op, REVISION_PUT);
    assert_int_equal(revs[2]->version, 3);
    fsm_free(f);
}

static void test_rollback(void **state)
{
    (void)state;
    struct fsm *f = new_fsm(NULL);
    expect(put(f, "acme", "k", 0, "\"one\"", NULL), FSM_OK, 1);
    expect(put(f, "acme", "k", 1, "\"two\"", NULL), FSM_OK, 2);
    expect(rollback(f, "acme", "k", 1, 1, "\"one\""), FSM_CONFLICT, 2);
    struct fsm_result res = rollback(f, "acme", "k", 2, 1, "\"one\"");
    expect(res, FSM_OK, 3);
    const struct fsm_config *c = get(f, "acme", "k");
    assert_memory_equal(c->content, "\"one\"", 5);
    const struct revision *revs[4];
    assert_int_equal(fsm_pending_from(f, 0, revs, 4), 3);
    assert_int_equal(revs[2]->op, REVISION_ROLLBACK);
    assert_int_equal(revs[2]->source_version, 1);
    assert_int_equal(revs[2]->version, 3);
    assert_int_equal(revs[2]->revision, res.revision);
    assert_int_equal(revs[0]->source_version, 0);
    fsm_free(f);
}

static void test_chain(void **state)
{
    (void)state;
    struct fsm *f = new_fsm(NULL);
    const char *projects[] = {"alpha", "beta", "alpha", "alpha", "gamma", "beta", "alpha"};
    uint64_t versions[3] = {0, 0, 0};
    for (size_t i = 0; i < 7; i++) {
        int p = projects[i][0] == 'a' ? 0 : projects[i][0] == 'b' ? 1 : 2;
        expect(put(f, projects[i], "k", versions[p], "{}", NULL), FSM_OK, versions[p] + 1);
        versions[p]++;
    }
    expect(del(f, "beta", "k", 2, NULL), FSM_OK, 3);
    const struct revision *revs[16];
    size_t n = fsm_pending_from(f, 0, revs, 16);
    assert_int_equal(n, 8);
    uint8_t zero[32] = {0};
    for (size_t i = 0; i < n; i++) {
        const struct revision *r = revs[i];
        assert_int_equal(r->revision, i + 1);
        assert_int_equal(r->raft_index, i + 1);
        uint8_t h[32];
        revision_compute_hash(r, h);
        assert_memory_equal(h, r->hash, 32);
        /* prev_hash is the hash of the previous revision of the same project. */
        const struct revision *prev = NULL;
        for (size_t j = i; j-- > 0;) {
            if (strcmp(revs[j]->project, r->project) == 0) {
                prev = revs[j];
                break;
            }
        }
        assert_memory_equal(r->prev_hash, prev != NULL ? prev->hash : zero, 32);
    }
    uint8_t head[32];
    fsm_chain_head(f, "alpha", 5, head);
    assert_memory_equal(head, revs[6]->hash, 32);
    fsm_chain_head(f, "beta", 4, head);
    assert_memory_equal(head, revs[7]->hash, 32);
    fsm_chain_head(f, "gamma", 5, head);
    assert_memory_equal(head, revs[4]->hash, 32);
    fsm_chain_head(f, "delta", 5, head);
    assert_memory_equal(head, zero, 32);
    /* A failed write does not move the chain. */
    expect(put(f, "alpha", "k", 1, "{}", NULL), FSM_CONFLICT, 4);
    fsm_chain_head(f, "alpha", 5, head);
    assert_memory_equal(head, revs[6]->hash, 32);
    fsm_free(f);
}

static void test_request_ids(void **state)
{
    (void)state;
    struct fsm *f = new_fsm(NULL);
    struct fsm_result res = put(f, "acme", "k", 0, "{\"a\":1}", "r1");
    expect(res, FSM_OK, 1);
    /* The same request again: the first outcome, applied once. */
    res = put(f, "acme", "k", 0, "{\"a\":1}", "r1");
    assert_int_equal(res.status, FSM_DUPLICATE);
    assert_int_equal(res.first_status, FSM_OK);
    assert_int_equal(res.version, 1);
    assert_int_equal(res.revision, 1);
    assert_int_equal(res.first_index, 1);
    assert_false(res.mismatch);
    assert_int_equal(fsm_revision(f), 1);
    assert_int_equal(get(f, "acme", "k")->version, 1);
    assert_int_equal(fsm_pending_count(f), 1);
    assert_int_equal(fsm_last_applied(f), 2);
    /* A different request reusing the id: still the first outcome, flagged. */
    res = put(f, "acme", "k", 1, "{\"a\":2}", "r1");
    assert_int_equal(res.status, FSM_DUPLICATE);
    assert_true(res.mismatch);
    assert_int_equal(get(f, "acme", "k")->version, 1);

    /* A conflict is recorded too: the retry gets the conflict even though it would now
     * succeed. */
    res = put(f, "acme", "k", 5, "{\"a\":3}", "r2");
    expect(res, FSM_CONFLICT, 1);
    res = put(f, "acme", "k", 5, "{\"a\":3}", "r2");
    assert_int_equal(res.status, FSM_DUPLICATE);
    assert_int_equal(res.first_status, FSM_CONFLICT);
    assert_int_equal(res.version, 1);
    assert_int_equal(res.first_index, 4);
    expect(put(f, "acme", "k", 1, "{\"a\":3}", NULL), FSM_OK, 2);
    /* Now current is 2; a retry of "r2" still answers the first conflict. */
    res = put(f, "acme", "k", 5, "{\"a\":3}", "r2");
    assert_int_equal(res.first_status, FSM_CONFLICT);
    assert_int_equal(res.version, 1);
    /* Not found is recorded. */
    expect(del(f, "acme", "gone", 0, "r3"), FSM_NOT_FOUND, 0);
    expect(put(f, "acme", "gone", 0, "{}", NULL), FSM_OK, 1);
    res = del(f, "acme", "gone", 0, "r3");
    assert_int_equal(res.status, FSM_DUPLICATE);
    assert_int_equal(res.first_status, FSM_NOT_FOUND);

    /* Ids are per project. */
    expect(put(f, "other", "k", 0, "{}", "r1"), FSM_OK, 1);

    /* Lookup for the leader's early check. */
    const struct fsm_request *q = fsm_request_find(f, "acme", 4, "r1", 2);
    assert_non_null(q);
    assert_int_equal(q->status, FSM_OK);
    assert_int_equal(q->version, 1);
    assert_int_equal(q->raft_index, 1);
    struct req asked = {
        .op = CODEC_OP_PUT, .project = "acme", .key = "k", .content = "{\"a\":1}", .rid = "r1"};
    uint8_t fp[32];
    req_fingerprint(&asked, fp);
    assert_int_equal(q->rule, FSM_FP_CLIENT);
    assert_memory_equal(fp, q->fingerprint, 32);
    assert_null(fsm_request_find(f, "acme", 4, "zz", 2));
    assert_null(fsm_request_find(f, "nope", 4, "r1", 2));
    assert_null(fsm_request_find(f, "acme", 4, "", 0));

    /* An invalid entry is not recorded. */
    uint64_t idx = fsm_last_applied(f) + 1;
    size_t len;
    struct req r = {.op = CODEC_OP_PUT,
                    .project = "acme",
                    .key = "fresh",
                    .expected = 0,
                    .content = "{}",
                    .rid = "r9"};
    uint8_t *buf = encode_req(&r, idx, &len);
    buf[len - 1] ^= 0x40; /* padding or payload: refused either way */
    res = apply_at(f, idx, buf, len);
    assert_int_equal(res.status, FSM_INVALID);
    free(buf);
    assert_null(fsm_request_find(f, "acme", 4, "r9", 2));
    expect(put(f, "acme", "fresh", 0, "{}", "r9"), FSM_OK, 1);
    fsm_free(f);
}

static void test_materialized(void **state)
{
    (void)state;
    struct fsm *f = new_fsm(NULL);
    for (int i = 0; i < 5; i++) {
        char key[8];
        snprintf(key, sizeof(key), "k%d", i);
        expect(put(f, "acme", key, 0, "{}", NULL), FSM_OK, 1);
    }
    expect(put(f, "acme", "k0", 9, "{}", NULL), FSM_CONFLICT, 1); /* index 6, no revision */
    assert_int_equal(fsm_pending_count(f), 5);
    const struct revision *revs[8];
    assert_int_equal(fsm_pending_from(f, 4, revs, 8), 2);
    assert_int_equal(revs[0]->raft_index, 4);
    assert_int_equal(fsm_pending_from(f, 4, revs, 1), 1);
    assert_int_equal(fsm_pending_from(f, 99, revs, 8), 0);

    struct fsm_result res = materialize(f, 3); /* index 7 */
    assert_int_equal(res.status, FSM_OK);
    assert_int_equal(res.op, CODEC_OP_MATERIALIZED);
    assert_int_equal(res.trimmed, 3);
    assert_int_equal(fsm_pending_count(f), 2);
    assert_int_equal(fsm_pending_from(f, 0, revs, 8), 2);
    assert_int_equal(revs[0]->raft_index, 4);
    assert_int_equal(fsm_materialized_index(f), 3);
    /* A late, lower one from an old leader trims nothing and does not move the index. */
    res = materialize(f, 2);
    assert_int_equal(res.status, FSM_OK);
    assert_int_equal(res.trimmed, 0);
    assert_int_equal(fsm_materialized_index(f), 3);
    /* N at or above the entry's own index is invalid, but still applied as an index. */
    uint64_t before = fsm_last_applied(f);
    res = materialize(f, before + 1);
    assert_int_equal(res.status, FSM_INVALID);
    assert_int_equal(fsm_last_applied(f), before + 1);
    assert_int_equal(fsm_pending_count(f), 2);
    res = materialize(f, 100);
    assert_int_equal(res.status, FSM_INVALID);
    res = materialize(f, 5);
    assert_int_equal(res.trimmed, 2);
    assert_int_equal(fsm_pending_count(f), 0);
    fsm_free(f);
}

static void test_invalid_entries(void **state)
{
    (void)state;
    struct fsm *f = new_fsm(NULL);
    expect(put(f, "acme", "k", 0, "{}", NULL), FSM_OK, 1);
    uint8_t garbage[24] = "not an entry at all....";
    struct fsm_result res = apply_at(f, 2, garbage, sizeof(garbage));
    assert_int_equal(res.status, FSM_INVALID);
    assert_non_null(strstr(res.message, "bad magic"));
    assert_int_equal(fsm_last_applied(f), 2);
    res = apply_at(f, 3, NULL, 0);
    assert_int_equal(res.status, FSM_INVALID);
    assert_int_equal(fsm_last_applied(f), 3);
    /* A truncated valid entry. */
    size_t len;
    struct req r = {
        .op = CODEC_OP_PUT, .project = "acme", .key = "k", .expected = 1, .content = "{}"};
    uint8_t *buf = encode_req(&r, 4, &len);
    res = apply_at(f, 4, buf, len - 8);
    assert_int_equal(res.status, FSM_INVALID);
    assert_int_equal(fsm_revision(f), 1);
    assert_int_equal(get(f, "acme", "k")->version, 1);
    /* An index that does not advance changes nothing at all. */
    uint8_t before[32], after[32];
    state_hash(f, before);
    res = apply_at(f, 4, buf, len);
    assert_int_equal(res.status, FSM_INVALID);
    res = apply_at(f, 2, buf, len);
    assert_int_equal(res.status, FSM_INVALID);
    res = apply_at(f, (uint64_t)INT64_MAX + 1, buf, len);
    assert_int_equal(res.status, FSM_INVALID);
    state_hash(f, after);
    assert_memory_equal(before, after, 32);
    assert_int_equal(fsm_last_applied(f), 4);
    /* Gaps are fine: raft applies barriers and configuration entries in between. */
    res = apply_at(f, 10, buf, len);
    expect(res, FSM_OK, 2);
    assert_int_equal(get(f, "acme", "k")->raft_index, 10);
    free(buf);
    fsm_free(f);
}

static int collect(const struct fsm_config *c, void *arg)
{
    char *out = arg;
    strcat(out, c->key);
    strcat(out, c->deleted ? "(x) " : " ");
    return 0;
}

static int stop_at_first(const struct fsm_config *c, void *arg)
{
    (void)c;
    (*(int *)arg)++;
    return 1;
}

static size_t count_last;

/* Checks ascending order while counting. */
static int count_visit(const struct fsm_config *c, void *arg)
{
    (void)arg;
    static char prev[CODEC_MAX_KEY + 1];
    if (count_last > 0 && strcmp(prev, c->key) >= 0) {
        fail_msg("list out of order: %s after %s", c->key, prev);
    }
    snprintf(prev, sizeof(prev), "%s", c->key);
    count_last++;
    return 0;
}

static void test_list(void **state)
{
    (void)state;
    struct fsm *f = new_fsm(NULL);
    const char *keys[] = {"b2", "app.y", "a", "b", "app.x", "B", "_z"};
    for (size_t i = 0; i < 7; i++) {
        expect(put(f, "acme", keys[i], 0, "{}", NULL), FSM_OK, 1);
    }
    expect(put(f, "zeta", "q", 0, "{}", NULL), FSM_OK, 1);
    expect(del(f, "acme", "b", 1, NULL), FSM_OK, 2);
    char out[256] = "";
    assert_int_equal(fsm_list(f, "acme", 4, NULL, 0, NULL, 0, collect, out), 7);
    assert_string_equal(out, "B _z a app.x app.y b(x) b2 ");
    out[0] = '\0';
    assert_int_equal(fsm_list(f, "acme", 4, "app.", 4, NULL, 0, collect, out), 2);
    assert_string_equal(out, "app.x app.y ");
    out[0] = '\0';
    assert_int_equal(fsm_list(f, "acme", 4, NULL, 0, "app.x", 5, collect, out), 3);
    assert_string_equal(out, "app.y b(x) b2 ");
    out[0] = '\0';
    assert_int_equal(fsm_list(f, "acme", 4, "b", 1, "b", 1, collect, out), 1);
    assert_string_equal(out, "b2 ");
    out[0] = '\0';
    assert_int_equal(fsm_list(f, "acme", 4, "app.", 4, "az", 2, collect, out), 0);
    assert_int_equal(fsm_list(f, "acme", 4, "app.", 4, "a", 1, collect, out), 2);
    assert_int_equal(fsm_list(f, "nope", 4, NULL, 0, NULL, 0, collect, out), 0);
    int calls = 0;
    assert_int_equal(fsm_list(f, "acme", 4, NULL, 0, NULL, 0, stop_at_first, &calls), 1);
    assert_int_equal(calls, 1);
    fsm_free(f);
}

/* ---- the config container (chunks of sorted pointers) ---- */

static int cmp_cstr(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

struct walk {
    const char **want; /* the keys expected, in order */
    size_t n;
    size_t at;
    size_t stop_after; /* 0: never stop */
};

/* Checks that fsm_list() visits exactly WANT[at..] in order. */
static int walk_check(const struct fsm_config *c, void *arg)
{
    struct walk *w = arg;
    if (w->at >= w->n || strcmp(c->key, w->want[w->at]) != 0) {
        fail_msg("list visited %s at %zu, want %s", c->key, w->at,
                 w->at < w->n ? w->want[w->at] : "(end)");
    }
    w->at++;
    return w->stop_after != 0 && w->at % w->stop_after == 0;
}

/* Inserts keys of varied lengths at random positions (many chunk splits) and checks, after
 * each batch, that listing visits every key in bytewise order and that each key is found. */
static void test_container_random_inserts(void **state)
{
    (void)state;
    enum { N = 6000 };
    rng_state = 0x5eed1234;
    struct fsm *f = new_fsm(NULL);
    char **keys = calloc(N, sizeof(*keys));
    const char **sorted = calloc(N, sizeof(*sorted));
    assert_non_null(keys);
    assert_non_null(sorted);
    for (size_t i = 0; i < N; i++) {
        char k[40];
        int len = snprintf(k, sizeof(k), "k%llu", (unsigned long long)(rng() % 1000000000));
        /* Distinct keys: suffix the index; varied lengths through the random number. */
        snprintf(k + len, sizeof(k) - (size_t)len, ".%zu", i);
        keys[i] = strdup(k);
    }
    for (size_t i = 0; i < N; i++) {
        expect(put(f, "acme", keys[i], 0, "{}", NULL), FSM_OK, 1);
        if (i % 500 == 499) {
            materialize(f, fsm_last_applied(f));
        }
        if (i % 1500 == 1499 || i + 1 == N) {
            for (size_t k = 0; k <= i; k++) {
                sorted[k] = keys[k];
            }
            qsort(sorted, i + 1, sizeof(sorted[0]), cmp_cstr);
            struct walk w = {.want = sorted, .n = i + 1};
            assert_int_equal(fsm_list(f, "acme", 4, NULL, 0, NULL, 0, walk_check, &w), i + 1);
            assert_int_equal(w.at, i + 1);
            for (size_t k = 0; k <= i; k++) {
                const struct fsm_config *c = get(f, "acme", keys[k]);
                assert_non_null(c);
                assert_string_equal(c->key, keys[k]);
            }
        }
    }
    /* An update of an existing key in a full chunk neither inserts nor moves anything. */
    uint64_t moves = fsm_config_moves(f, "acme", 4);
    expect(put(f, "acme", keys[17], 1, "{\"a\":1}", NULL), FSM_OK, 2);
    assert_int_equal(fsm_config_moves(f, "acme", 4), moves);
    assert_null(get(f, "acme", "k"));
    assert_null(get(f, "acme", "zzz"));
    for (size_t i = 0; i < N; i++) {
        free(keys[i]);
    }
    free(keys);
    free(sorted);
    fsm_free(f);
}

/* Prefix listing and paging (AFTER) across chunk boundaries: 3 x 1000 keys, the middle
 * prefix listed in pages of 97 (not a divisor of the chunk size) resuming after each page's
 * last key. */
static void test_container_prefix_paging(void **state)
{
    (void)state;
    struct fsm *f = new_fsm(NULL);
    static char names[3000][16];
    const char *mid[1000];
    const char *prefixes[3] = {"a:", "b:", "c:"};
    /* Inserted interleaved and from the top down, so no chunk is filled in order. */
    for (int i = 999; i >= 0; i--) {
        for (int p = 2; p >= 0; p--) {
            char *k = names[p * 1000 + i];
            snprintf(k, 16, "%s%04d", prefixes[p], i);
            expect(put(f, "acme", k, 0, "{}", NULL), FSM_OK, 1);
        }
        if (i % 100 == 0) {
            materialize(f, fsm_last_applied(f));
        }
    }
    for (int i = 0; i < 1000; i++) {
        mid[i] = names[1000 + i];
    }
    struct walk w = {.want = mid, .n = 1000, .stop_after = 97};
    const char *after = NULL;
    size_t pages = 0;
    while (w.at < 1000 && pages < 20) {
        size_t before = w.at;
        size_t seen = fsm_list(f, "acme", 4, "b:", 2, after, after != NULL ? strlen(after) : 0,
                               walk_check, &w);
        assert_int_equal(seen, w.at - before);
        after = mid[w.at - 1];
        pages++;
    }
    assert_int_equal(w.at, 1000);
    assert_int_equal(pages, 11);
    /* After the last key of the prefix: nothing; a prefix between keys: nothing. */
    struct walk none = {.want = mid, .n = 0};
    assert_int_equal(fsm_list(f, "acme", 4, "b:", 2, "b:0999", 6, walk_check, &none), 0);
    assert_int_equal(fsm_list(f, "acme", 4, "b:5", 3, NULL, 0, walk_check, &none), 0);
    fsm_free(f);
}

/* 1,000,000 keys inserted at random positions up to a limit lowered to that count: the
 * pointers shifted stay within a bound linear in the key count (one sorted array would shift
 * about n * n / 4 of them). */
static void test_container_million_bounded(void **state)
{
    (void)state;
    const size_t n = 1000000;
    rng_state = 0xabcdef12;
    struct fsm *f = new_fsm(NULL);
    fsm_set_max_configs(f, n);
    /* A permutation of 0..n-1 by multiplying by an odd constant modulo 2^20 (n <= 2^20). */
    assert_true(n <= (1u << 20));
    size_t done = 0;
    for (size_t i = 0; done < n; i++) {
        size_t v = (i * 769231u) & ((1u << 20) - 1);
        if (v >= n) {
            continue;
        }
        char k[16];
        snprintf(k, sizeof(k), "k%07zu", v);
        expect(put(f, "big", k, 0, "1", NULL), FSM_OK, 1);
        done++;
        if (done % 20000 == 0) {
            materialize(f, fsm_last_applied(f));
        }
    }
    uint64_t moves = fsm_config_moves(f, "big", 3);
    if (moves > 200 * (uint64_t)n) {
        fail_msg("%llu pointer moves for %zu inserts", (unsigned long long)moves, n);
    }
    /* One more key is refused (the limit), and every key is there in order. */
    struct fsm_result over = put(f, "big", "zzz", 0, "1", NULL);
    expect(over, FSM_FULL, 0);
    assert_int_equal(over.limit, FSM_LIMIT_CONFIGS);
    count_last = 0;
    assert_int_equal(fsm_list(f, "big", 3, NULL, 0, NULL, 0, count_visit, NULL), n);
    assert_int_equal(count_last, n);
    const struct fsm_config *c = get(f, "big", "k0000000");
    assert_non_null(c);
    assert_non_null(get(f, "big", "k0999999"));
    assert_null(get(f, "big", "k1000000"));
    fsm_free(f);
}

/* ---- generated logs ---- */

struct entry {
    uint64_t index;
    uint8_t *buf;
    size_t len;
};

static const char *gen_projects[] = {"alpha", "beta", "gamma-1"};

/* Generates N entries with a fixed seed, choosing expected versions from a reference state
 * machine so that most writes succeed, with conflicts, deletes, rollbacks, request-id reuse,
 * verbatim replays, materialized entries, garbage and index gaps mixed in. */
static struct entry *generate(size_t n, uint64_t seed)
{
    rng_state = seed;
    struct fsm *g = new_fsm(NULL);
    struct entry *out = calloc(n, sizeof(*out));
    assert_non_null(out);
    uint64_t index = 0;
    for (size_t i = 0; i < n; i++) {
        index += 1 + (rng() % 8 == 0 ? rng() % 3 : 0);
        const char *project = gen_projects[rng() % 3];
        char key[8], content[48], rid[16];
        snprintf(key, sizeof(key), "k%d", (int)(rng() % 8));
        snprintf(content, sizeof(content), "{\"n\":%llu}", (unsigned long long)(rng() % 1000));
        snprintf(rid, sizeof(rid), "req-%d", (int)(rng() % 40));
        const struct fsm_config *c = fsm_get(g, project, strlen(project), key, strlen(key));
        uint64_t current = c != NULL ? c->version : 0;
        uint64_t expected = rng() % 5 == 0 ? rng() % 4 : current;
        struct req r = {.project = project,
                        .key = key,
                        .expected = expected,
                        .content = content,
                        .rid = rng() % 3 == 0 ? rid : NULL,
                        .schema = rng() % 3 == 0 ? 1 + (int)(rng() % 5) : 0};
        unsigned pick = (unsigned)(rng() % 100);
        if (pick < 45) {
            r.op = CODEC_OP_PUT;
        } else if (pick < 60) {
            r.op = CODEC_OP_DELETE;
            r.content = NULL;
            r.schema = 0;
        } else if (pick < 70) {
            r.op = CODEC_OP_ROLLBACK;
            if (r.expected == 0) {
                r.expected = 1;
            }
            r.source = 1 + rng() % r.expected;
        } else if (pick < 80) {
            r.op = CODEC_OP_MATERIALIZED;
            r.materialized = index > 20 ? index - 1 - rng() % 20 : 1;
            if (r.materialized >= index) {
                r.materialized = index - 1;
            }
        }
        if (pick < 80 && !(r.op == CODEC_OP_MATERIALIZED && r.materialized == 0)) {
            out[i].buf = encode_req(&r, index, &out[i].len);
        } else if (pick < 88 && i > 0) {
            /* A verbatim replay of an earlier entry at a new index. */
            size_t j = (size_t)(rng() % i);
            out[i].len = out[j].len;
            out[i].buf = malloc(out[i].len);
            assert_non_null(out[i].buf);
            memcpy(out[i].buf, out[j].buf, out[i].len);
        } else {
            out[i].len = 8 * (1 + (size_t)(rng() % 8));
            out[i].buf = malloc(out[i].len);
            assert_non_null(out[i].buf);
            for (size_t k = 0; k < out[i].len; k++) {
                out[i].buf[k] = (uint8_t)rng();
            }
        }
        out[i].index = index;
        apply_at(g, index, out[i].buf, out[i].len);
    }
    fsm_free(g);
    return out;
}

static void free_entries(struct entry *e, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(e[i].buf);
    }
    free(e);
}

static void apply_all(struct fsm *f, const struct entry *e, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        apply_at(f, e[i].index, e[i].buf, e[i].len);
    }
}

static void test_determinism(void **state)
{
    (void)state;
    const size_t n = 1000;
    struct entry *log = generate(n, 0x1234567887654321ull);
    uint8_t key[16];
    memset(key, 0x5a, sizeof(key));
    /* Different request-table hash keys must not matter. */
    struct fsm *a = new_fsm(NULL);
    struct fsm *b = new_fsm(key);
    size_t seen[6] = {0};
    for (size_t i = 0; i < n; i++) {
        struct fsm_result ra = apply_at(a, log[i].index, log[i].buf, log[i].len);
        struct fsm_result rb = apply_at(b, log[i].index, log[i].buf, log[i].len);
        assert_int_equal(ra.status, rb.status);
        assert_int_equal(ra.version, rb.version);
        assert_int_equal(ra.revision, rb.revision);
        seen[ra.status]++;
        uint8_t ha[32], hb[32];
        state_hash(a, ha);
        state_hash(b, hb);
        if (memcmp(ha, hb, 32) != 0) {
            fail_msg("state hashes differ after entry %zu (index %llu)", i,
                     (unsigned long long)log[i].index);
        }
    }
    /* The generator reaches every outcome except FULL. */
    for (int s = FSM_OK; s <= FSM_INVALID; s++) {
        if (seen[s] == 0) {
            fail_msg("no entry produced status %d", s);
        }
    }
    /* The same entries in another order give another state. */
    struct fsm *c = new_fsm(NULL);
    for (size_t i = 0; i < n; i++) {
        apply_at(c, log[i].index, log[n - 1 - i].buf, log[n - 1 - i].len);
    }
    uint8_t ha[32], hc[32];
    state_hash(a, ha);
    state_hash(c, hc);
    assert_memory_not_equal(ha, hc, 32);
    fsm_free(a);
    fsm_free(b);
    fsm_free(c);
    free_entries(log, n);
}

/* ---- snapshots ---- */

static uint8_t *snapshot_of(const struct fsm *f, size_t *len)
{
    uint8_t *buf = NULL;
    if (fsm_snapshot(f, &buf, len, err, sizeof(err)) != 0) {
        fail_msg("snapshot: %s", err);
    }
    assert_int_equal(*len % 8, 0);
    return buf;
}

/* The two halves of an asynchronous snapshot (rfsm.c): the copy written at index I, sealed
 * after the state moved on (more entries applied, the queue trimmed), is byte for byte the
 * snapshot fsm_snapshot() takes at I, and restores to the state at I. Unsealed, it does not
 * restore. */
static void test_snapshot_sealed_later(void **state)
{
    (void)state;
    struct entry *log = generate(600, 7);
    struct fsm *a = new_fsm(NULL);
    apply_all(a, log, 400);
    size_t len_ref;
    uint8_t *ref = snapshot_of(a, &len_ref);
    uint8_t *copy = NULL;
    size_t len = 0;
    assert_int_equal(fsm_snapshot_write(a, &copy, &len, err, sizeof(err)), 0);
    assert_int_equal(len, len_ref);
    struct fsm *b = new_fsm(NULL);
    assert_int_not_equal(fsm_restore(b, copy, len, err, sizeof(err)), 0); /* not sealed yet */
    uint64_t base = fsm_last_applied(a);
    for (size_t i = 400; i < 600; i++) {
        apply_at(a, log[i].index, log[i].buf, log[i].len);
    }
    assert_true(fsm_last_applied(a) > base);
    fsm_snapshot_seal(copy, len);
    assert_memory_equal(copy, ref, len);
    if (fsm_restore(b, copy, len, err, sizeof(err)) != 0) {
        fail_msg("restore of the sealed copy: %s", err);
    }
    assert_int_equal(fsm_last_applied(b), base);
    free(copy);
    free(ref);
    fsm_free(a);
    fsm_free(b);
    free_entries(log, 600);
}

static void test_snapshot_round_trip(void **state)
{
    (void)state;
    struct entry *log = generate(600, 42);
    struct fsm *a = new_fsm(NULL);
    apply_all(a, log, 600);
    size_t len;
    uint8_t *snap = snapshot_of(a, &len);
    struct fsm *b = new_fsm(NULL);
    if (fsm_restore(b, snap, len, err, sizeof(err)) != 0) {
        fail_msg("restore: %s", err);
    }
    uint8_t ha[32], hb[32];
    state_hash(a, ha);
    state_hash(b, hb);
    assert_memory_equal(ha, hb, 32);
    /* The header carries the same state hash. */
    assert_memory_equal(snap + 24, ha, 32);
    assert_int_equal(fsm_last_applied(a), fsm_last_applied(b));
    assert_int_equal(fsm_revision(a), fsm_revision(b));
    assert_int_equal(fsm_pending_count(a), fsm_pending_count(b));
    /* And both go on identically. */
    struct entry *more = generate(200, 43);
    uint64_t base = fsm_last_applied(a);
    for (size_t i = 0; i < 200; i++) {
        struct fsm_result ra = apply_at(a, base + more[i].index, more[i].buf, more[i].len);
        struct fsm_result rb = apply_at(b, base + more[i].index, more[i].buf, more[i].len);
        assert_int_equal(ra.status, rb.status);
    }
    state_hash(a, ha);
    state_hash(b, hb);
    assert_memory_equal(ha, hb, 32);
    /* An empty state round-trips too. */
    struct fsm *e = new_fsm(NULL);
    free(snap);
    snap = snapshot_of(e, &len);
    assert_int_equal(fsm_restore(b, snap, len, err, sizeof(err)), 0);
    state_hash(e, ha);
    state_hash(b, hb);
    assert_memory_equal(ha, hb, 32);
    assert_int_equal(fsm_last_applied(b), 0);
    free(snap);
    fsm_free(a);
    fsm_free(b);
    fsm_free(e);
    free_entries(log, 600);
    free_entries(more, 200);
}

static void test_restore_replaces_state(void **state)
{
    (void)state;
    struct fsm *a = new_fsm(NULL);
    expect(put(a, "acme", "alpha", 0, "{\"a\":1}", "ra"), FSM_OK, 1);
    expect(put(a, "acme", "alpha", 1, "{\"a\":2}", NULL), FSM_OK, 2);
    struct fsm *b = new_fsm(NULL);
    for (int i = 0; i < 50; i++) {
        char key[16], rid[16];
        snprintf(key, sizeof(key), "old%d", i);
        snprintf(rid, sizeof(rid), "rb%d", i);
        expect(put(b, i % 2 ? "other" : "acme", key, 0, "{\"old\":true}", rid), FSM_OK, 1);
    }
    expect(del(b, "acme", "old0", 1, NULL), FSM_OK, 2);
    materialize(b, 10);
    size_t len;
    uint8_t *snap = snapshot_of(a, &len);
    assert_int_equal(fsm_restore(b, snap, len, err, sizeof(err)), 0);
    uint8_t ha[32], hb[32];
    state_hash(a, ha);
    state_hash(b, hb);
    assert_memory_equal(ha, hb, 32);
    assert_null(get(b, "acme", "old0"));
    assert_null(get(b, "other", "old1"));
    assert_null(fsm_request_find(b, "acme", 4, "rb0", 3));
    assert_non_null(fsm_request_find(b, "acme", 4, "ra", 2));
    uint8_t head[32], zero[32] = {0};
    fsm_chain_head(b, "other", 5, head);
    assert_memory_equal(head, zero, 32);
    assert_int_equal(fsm_pending_count(b), 2);
    assert_int_equal(fsm_materialized_index(b), 0);
    assert_int_equal(fsm_revision(b), 2);
    assert_int_equal(fsm_last_applied(b), 2);
    char out[64] = "";
    assert_int_equal(fsm_list(b, "acme", 4, NULL, 0, NULL, 0, collect, out), 1);
    assert_string_equal(out, "alpha ");
    /* The old request ids no longer answer: the same id is new again. */
    expect(put(b, "acme", "fresh", 0, "{}", "rb0"), FSM_OK, 1);
    free(snap);
    fsm_free(a);
    fsm_free(b);
}

/* Rewrites the header's state hash and checksum after an edit of the body, as a forger
 * would, so that only the body checks stand between the edit and the state. */
static void reseal_snapshot(uint8_t *snap, int fix_state_hash)
{
    uint64_t body = 0;
    for (int i = 7; i >= 0; i--) {
        body = (body << 8) | snap[16 + i];
    }
    if (fix_state_hash) {
        crypto_hash_sha256(snap + 24, snap + 64, body);
    }
    memset(snap + 12, 0, 4);
    uint32_t crc = codec_crc32c(0, snap, 64 + body);
    for (int i = 0; i < 4; i++) {
        snap[12 + i] = (uint8_t)(crc >> (8 * i));
    }
}

static void test_corrupt_snapshot_refused(void **state)
{
    (void)state;
    struct entry *log = generate(40, 7);
    struct fsm *src = new_fsm(NULL);
    apply_all(src, log, 40);
    expect(put(src, "acme", "marker", 0, "\"zzz-marker-content\"", NULL), FSM_OK, 1);
    size_t len;
    uint8_t *snap = snapshot_of(src, &len);

    /* The target has a state of its own that must survive every refusal. */
    struct fsm *t = new_fsm(NULL);
    expect(put(t, "mine", "k", 0, "{\"mine\":1}", "rid"), FSM_OK, 1);
    uint8_t before[32], now[32];
    state_hash(t, before);

    for (size_t bit = 0; bit < len * 8; bit++) {
        snap[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        if (fsm_restore(t, snap, len, err, sizeof(err)) == 0) {
            fail_msg("flipping bit %zu was accepted", bit);
        }
        snap[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    }
    for (size_t n = 0; n < len; n++) {
        uint8_t *cut = malloc(n > 0 ? n : 1);
        assert_non_null(cut);
        memcpy(cut, snap, n);
        assert_int_not_equal(fsm_restore(t, cut, n, err, sizeof(err)), 0);
        free(cut);
    }
    state_hash(t, now);
    assert_memory_equal(before, now, 32);

    /* A consistent checksum over an edited body: the state hash no longer matches. */
    uint8_t *m = memmem(snap, len, "zzz-marker", 10);
    assert_non_null(m);
    m[0] = 'y';
    reseal_snapshot(snap, 0);
    assert_int_equal(fsm_restore(t, snap, len, err, sizeof(err)), FSM_EINVAL);
    assert_non_null(strstr(err, "state hash mismatch"));
    m[0] = 'z';
    reseal_snapshot(snap, 0);

    /* Forged snapshots with both checks redone: every refusal leaves the state alone, and
     * whatever is accepted is exactly the state the header claims. */
    rng_state = 99;
    uint8_t *work = malloc(len);
    assert_non_null(work);
    for (int iter = 0; iter < 3000; iter++) {
        memcpy(work, snap, len);
        int edits = 1 + (int)(rng() % 3);
        for (int k = 0; k < edits; k++) {
            size_t off = 64 + (size_t)(rng() % (len - 64));
            switch (rng() % 3) {
            case 0:
                work[off] ^= (uint8_t)(1u << (rng() % 8));
                break;
            case 1:
                work[off] = (uint8_t)rng();
                break;
            default:
                work[off] = (uint8_t)(rng() % 4);
                break;
            }
        }
        reseal_snapshot(work, 1);
        struct fsm *fresh = new_fsm(NULL);
        expect(put(fresh, "mine", "k", 0, "{\"mine\":1}", "rid"), FSM_OK, 1);
        if (fsm_restore(fresh, work, len, err, sizeof(err)) == 0) {
            state_hash(fresh, now);
            assert_memory_equal(now, work + 24, 32);
        } else {
            state_hash(fresh, now);
            assert_memory_equal(now, before, 32);
        }
        fsm_free(fresh);
    }
    free(work);

    /* The untouched snapshot still restores. */
    assert_int_equal(fsm_restore(t, snap, len, err, sizeof(err)), 0);
    uint8_t hs[32];
    state_hash(src, hs);
    state_hash(t, now);
    assert_memory_equal(hs, now, 32);
    free(snap);
    fsm_free(src);
    fsm_free(t);
    free_entries(log, 40);
}

/* ---- limits ---- */

/* The config limit, lowered as the failpoint CONCLAVE_FAILPOINT_FSM_MAX_CONFIGS does: a new
 * key past it is FULL (limit CONFIGS) and changes nothing; a tombstone still counts, so
 * deleting makes no room, while existing keys, deleted ones too, can still be written; the
 * setting is local and survives a restore. Out-of-range values are clamped. */
static void test_max_configs_lowered(void **state)
{
    (void)state;
    struct fsm *f = new_fsm(NULL);
    fsm_set_max_configs(f, 3);
    expect(put(f, "acme", "a", 0, "1", NULL), FSM_OK, 1);
    expect(put(f, "acme", "b", 0, "1", NULL), FSM_OK, 1);
    expect(put(f, "other", "c", 0, "1", NULL), FSM_OK, 1);
    uint64_t rev = fsm_revision(f);
    struct fsm_result res = put(f, "acme", "d", 0, "1", "rid-d");
    expect(res, FSM_FULL, 0);
    assert_int_equal(res.limit, FSM_LIMIT_CONFIGS);
    assert_non_null(strstr(res.message, "configs (limit 3)"));
    assert_int_equal(fsm_revision(f), rev);
    assert_null(get(f, "acme", "d"));
    assert_null(fsm_request_find(f, "acme", 4, "rid-d", 5));
    expect(put(f, "acme", "a", 1, "2", NULL), FSM_OK, 2);
    expect(del(f, "acme", "b", 1, NULL), FSM_OK, 2);
    res = put(f, "acme", "d", 0, "1", NULL);
    expect(res, FSM_FULL, 0);
    assert_int_equal(res.limit, FSM_LIMIT_CONFIGS);
    expect(put(f, "acme", "b", 2, "3", NULL), FSM_OK, 3);
    /* Other outcomes carry no limit. */
    res = put(f, "acme", "a", 1, "x", NULL);
    expect(res, FSM_CONFLICT, 2);
    assert_int_equal(res.limit, FSM_LIMIT_NONE);

    size_t len;
    uint8_t *snap = snapshot_of(f, &len);
    assert_int_equal(fsm_restore(f, snap, len, err, sizeof(err)), 0);
    free(snap);
    res = put(f, "acme", "d", 0, "1", NULL);
    expect(res, FSM_FULL, 0);
    assert_int_equal(res.limit, FSM_LIMIT_CONFIGS);
    fsm_set_max_configs(f, 0);
    assert_int_equal(put(f, "acme", "d", 0, "1", NULL).status, FSM_FULL);
    assert_non_null(strstr(put(f, "acme", "d", 0, "1", NULL).message, "(limit 1)"));
    fsm_set_max_configs(f, (size_t)FSM_MAX_CONFIGS + 5);
    expect(put(f, "acme", "d", 0, "1", NULL), FSM_OK, 1);
    fsm_free(f);
}

static void test_pending_limit(void **state)
{
    (void)state;
    struct fsm *f = new_fsm(NULL);
    char key[16];
    for (unsigned i = 0; i < FSM_MAX_PENDING; i++) {
        snprintf(key, sizeof(key), "k%u", i);
        struct fsm_result res = put(f, "acme", key, 0, "1", NULL);
        assert_int_equal(res.status, FSM_OK);
    }
    assert_int_equal(fsm_pending_count(f), FSM_MAX_PENDING);
    /* Full: nothing changes and the request id is not recorded, so a retry can succeed. */
    uint64_t rev = fsm_revision(f);
    struct fsm_result res = put(f, "acme", "late", 0, "1", "late-1");
    assert_int_equal(res.status, FSM_FULL);
    assert_int_equal(res.limit, FSM_LIMIT_PENDING);
    assert_non_null(strstr(res.message, "waiting for PostgreSQL"));
    assert_int_equal(fsm_revision(f), rev);
    assert_null(get(f, "acme", "late"));
    assert_null(fsm_request_find(f, "acme", 4, "late-1", 6));
    /* A conflict still answers while full: it needs no queue room. */
    expect(put(f, "acme", "k0", 0, "1", NULL), FSM_CONFLICT, 1);
    res = materialize(f, 100);
    assert_int_equal(res.trimmed, 100);
    expect(put(f, "acme", "late", 0, "1", "late-1"), FSM_OK, 1);
    fsm_free(f);
}

static int remembered(const struct fsm *f, const char *project, const char *rid)
{
    return fsm_request_find(f, project, strlen(project), rid, strlen(rid)) != NULL;
}

/* N writes to PROJECT with request ids PREFIX0 .. PREFIX(N-1), over 100 keys; materialized
 * after each write when MATERIALIZE. */
static void write_ids(struct fsm *f, const char *project, const char *prefix, unsigned n,
                      int materialize_each)
{
    char key[16], rid[32];
    for (unsigned i = 0; i < n; i++) {
        snprintf(key, sizeof(key), "k%u", i % 100);
        snprintf(rid, sizeof(rid), "%s%u", prefix, i);
        const struct fsm_config *c = get(f, project, key);
        struct fsm_result res = put(f, project, key, c != NULL ? c->version : 0, "1", rid);
        if (res.status != FSM_OK) {
            fail_msg("write %s/%s: status %d (%s)", project, rid, res.status, res.message);
        }
        if (materialize_each) {
            materialize(f, fsm_last_applied(f));
        }
    }
}

static void test_request_eviction(void **state)
{
    (void)state;
    struct fsm *f = new_fsm(NULL);
    char rid[32];
    /* A project forgets its own oldest ids past its bound: 100 more than the bound forget
     * a0 .. a99 and keep the rest. */
    const unsigned extra = 100;
    write_ids(f, "acme", "a", FSM_PROJECT_REQUESTS + extra, 1);
    for (unsigned i = 0; i < FSM_PROJECT_REQUESTS + extra; i++) {
        snprintf(rid, sizeof(rid), "a%u", i);
        if (remembered(f, "acme", rid) != (i >= extra)) {
            fail_msg("request id %s: remembered %d, expected %d", rid, remembered(f, "acme", rid),
                     i >= extra);
        }
    }
    /* Other projects writing far more than their own bound forget none of acme's ids. */
    for (int p = 0; p < 20; p++) {
        char project[16];
        snprintf(project, sizeof(project), "busy-%d", p);
        write_ids(f, project, "b", 3 * FSM_PROJECT_REQUESTS, p % 2);
    }
    materialize(f, fsm_last_applied(f));
    for (unsigned i = extra; i < FSM_PROJECT_REQUESTS + extra; i++) {
        snprintf(rid, sizeof(rid), "a%u", i);
        if (!remembered(f, "acme", rid)) {
            fail_msg("request id %s of acme forgotten by other projects' writes", rid);
        }
    }
    /* busy-1 (materialized at once) keeps its last FSM_PROJECT_REQUESTS ids; busy-0 (not
     * materialized until the end, and no write since) still holds all of them. */
    assert_true(remembered(f, "busy-1", "b3071"));
    assert_true(remembered(f, "busy-1", "b2048"));
    assert_false(remembered(f, "busy-1", "b2047"));
    assert_int_equal(fsm_request_count(f, "busy-1", 6), FSM_PROJECT_REQUESTS);
    assert_int_equal(fsm_request_count(f, "busy-0", 6), 3 * FSM_PROJECT_REQUESTS);
    /* A forgotten id is new again. */
    const struct fsm_config *c = get(f, "acme", "k0");
    expect(put(f, "acme", "k0", c->version, "1", "a0"), FSM_OK, c->version + 1);
    fsm_free(f);
}

/* fsm_request_may_have_forgotten() says "no" exactly while a project never reached its
 * bound, so the leader may skip the PostgreSQL lookup then and only then. */
static void test_request_may_have_forgotten(void **state)
{
    (void)state;
    struct fsm *f = new_fsm(NULL);
    assert_false(fsm_request_may_have_forgotten(f, "acme", 4));
    write_ids(f, "acme", "a", FSM_PROJECT_REQUESTS - 1, 1);
    assert_false(fsm_request_may_have_forgotten(f, "acme", 4));
    write_ids(f, "acme", "z", 1, 1);
    assert_true(fsm_request_may_have_forgotten(f, "acme", 4));
    /* Past the bound the project forgot ids, and stays at its bound. */
    write_ids(f, "acme", "y", 10, 1);
    assert_false(remembered(f, "acme", "a0"));
    assert_true(fsm_request_may_have_forgotten(f, "acme", 4));
    /* Another project's count is its own. */
    write_ids(f, "beta", "b", 10, 1);
    assert_false(fsm_request_may_have_forgotten(f, "beta", 4));
    /* A restored format-2 snapshot derives the same answers. */
    size_t len = 0;
    uint8_t *buf = snapshot_of(f, &len);
    struct fsm *g = new_fsm(NULL);
    assert_int_equal(fsm_restore(g, buf, len, err, sizeof(err)), 0);
    assert_true(fsm_request_may_have_forgotten(g, "acme", 4));
    assert_false(fsm_request_may_have_forgotten(g, "beta", 4));
    free(buf);
    fsm_free(g);
    fsm_free(f);
}

static void test_request_unmaterialized_kept(void **state)
{
    (void)state;
    struct fsm *f = new_fsm(NULL);
    char rid[32];
    /* While PostgreSQL lags, a project keeps every id whose write is not materialized, past
     * its bound. */
    const unsigned n = FSM_PROJECT_REQUESTS + 500;
    write_ids(f, "acme", "a", n, 0);
    for (unsigned i = 0; i < n; i++) {
        snprintf(rid, sizeof(rid), "a%u", i);
        if (!remembered(f, "acme", rid)) {
            fail_msg("unmaterialized request id %s forgotten", rid);
        }
    }
    /* A conflict's id may be forgotten at once (nothing was written for it): with the
     * project over its bound, the next insert forgets the oldest only if it may. */
    uint64_t v = get(f, "acme", "k0")->version;
    expect(put(f, "acme", "k0", v + 7, "1", "conflict-1"), FSM_CONFLICT, v);
    assert_true(remembered(f, "acme", "a0"));
    /* Once materialized, the next insert trims the project back to its bound. */
    materialize(f, fsm_last_applied(f));
    expect(put(f, "acme", "k0", v, "1", "after"), FSM_OK, v + 1);
    assert_false(remembered(f, "acme", "a0"));
    assert_false(remembered(f, "acme", "a501"));
    assert_true(remembered(f, "acme", "a502"));
    assert_true(remembered(f, "acme", "conflict-1"));
    assert_true(remembered(f, "acme", "after"));

    /* A restored table (more than the bound: nothing unforgettable was trimmed yet) makes the
     * same decisions as the original. */
    struct fsm *g0 = new_fsm(NULL);
    write_ids(g0, "acme", "a", n, 0);
    size_t len;
    uint8_t *snap = snapshot_of(g0, &len);
    struct fsm *g = new_fsm(NULL);
    assert_int_equal(fsm_restore(g, snap, len, err, sizeof(err)), 0);
    free(snap);
    materialize(g0, fsm_last_applied(g0));
    materialize(g, fsm_last_applied(g));
    write_ids(g0, "acme", "z", 3, 0);
    write_ids(g, "acme", "z", 3, 0);
    assert_false(remembered(g, "acme", "a502"));
    assert_true(remembered(g, "acme", "a503"));
    uint8_t h0[32], h1[32];
    state_hash(g0, h0);
    state_hash(g, h1);
    assert_memory_equal(h0, h1, 32);
    fsm_free(g0);
    fsm_free(g);
    fsm_free(f);
}

/* The total bound: only when every project together fills the table does an insert forget
 * another project's id, the oldest one that may be forgotten. */
static void test_request_total_bound(void **state)
{
    (void)state;
    struct fsm *f = new_fsm(NULL);
    const unsigned projects = FSM_REQUEST_CAPACITY / FSM_PROJECT_REQUESTS;
    char project[16];
    for (unsigned p = 0; p < projects; p++) {
        snprintf(project, sizeof(project), "p%u", p);
        write_ids(f, project, "r", FSM_PROJECT_REQUESTS, 0);
        materialize(f, fsm_last_applied(f));
    }
    assert_true(remembered(f, "p0", "r0"));
    write_ids(f, "late", "r", 2, 0);
    assert_false(remembered(f, "p0", "r0"));
    assert_false(remembered(f, "p0", "r1"));
    assert_true(remembered(f, "p0", "r2"));
    assert_true(remembered(f, "late", "r0"));
    fsm_free(f);
}

/* The fingerprint is what the client asked, carried by the entry: a retry whose leader
 * resolved a different schema (inherited from the key, or the schema's hash changed between
 * the attempts) is the same request; a different ask under the same id is not. */
static void test_fingerprint_carried(void **state)
{
    (void)state;
    struct fsm *f = new_fsm(NULL);
    /* Bound in the body to schema 5, resolved hash from 5. */
    struct req first = {.op = CODEC_OP_PUT,
                        .project = "acme",
                        .key = "k",
                        .content = "{\"a\":1}",
                        .rid = "s1",
                        .schema = 5,
                        .ask_schema = FSM_SCHEMA_ID,
                        .ask_schema_id = 5};
    expect(run(f, &first), FSM_OK, 1);
    struct req retry = first;
    retry.schema = 9; /* the leader resolved something else this time */
    struct fsm_result res = run(f, &retry);
    assert_int_equal(res.status, FSM_DUPLICATE);
    assert_int_equal(res.first_status, FSM_OK);
    assert_false(res.mismatch);
    /* Inherited (no schema_id in the body): the retry resolves the binding again. */
    struct req inh = {.op = CODEC_OP_PUT,
                      .project = "acme",
                      .key = "k",
                      .expected = 1,
                      .content = "{\"a\":2}",
                      .rid = "s2",
                      .schema = 5};
    expect(run(f, &inh), FSM_OK, 2);
    inh.schema = 0;
    res = run(f, &inh);
    assert_int_equal(res.status, FSM_DUPLICATE);
    assert_false(res.mismatch);
    /* The same id for a different ask: explicit null instead of absent, another schema id,
     * another content, another actor, another expected version. */
    struct req other = inh;
    other.ask_schema = FSM_SCHEMA_NULL;
    assert_true(run(f, &other).mismatch);
    other = first;
    other.ask_schema_id = 6;
    assert_true(run(f, &other).mismatch);
    other = first;
    other.content = "{\"a\":9}";
    assert_true(run(f, &other).mismatch);
    other = first;
    other.actor = "mallory";
    assert_true(run(f, &other).mismatch);
    other = first;
    other.expected = 3;
    assert_true(run(f, &other).mismatch);
    /* A rollback's fingerprint leaves out the content the leader loaded. */
    struct req rb = {.op = CODEC_OP_ROLLBACK,
                     .project = "acme",
                     .key = "k",
                     .expected = 2,
                     .source = 1,
                     .content = "{\"a\":1}",
                     .rid = "s3",
                     .schema = 5};
    expect(run(f, &rb), FSM_OK, 3);
    rb.content = "{\"a\": 1}";
    rb.schema = 0;
    res = run(f, &rb);
    assert_int_equal(res.status, FSM_DUPLICATE);
    assert_false(res.mismatch);
    rb.source = 2;
    assert_true(run(f, &rb).mismatch);
    assert_int_equal(get(f, "acme", "k")->version, 3);
    fsm_free(f);
}

/* A put written by the build before codec version 2 (see tests/raft/test_codec.c). */
static const uint8_t v1_put[] = {
    0x43, 0x4e, 0x43, 0x4c, 0x01, 0x01, 0x01, 0x00, 0x80, 0x00, 0x00, 0x00, 0x3f, 0x24, 0x60, 0xd0,
    0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x40, 0x1e, 0x18, 0x24, 0x0a, 0x06, 0x00,
    0x04, 0x00, 0x00, 0x00, 0x61, 0x63, 0x6d, 0x65, 0x06, 0x00, 0x00, 0x00, 0x64, 0x62, 0x2e, 0x75,
    0x72, 0x6c, 0x07, 0x00, 0x00, 0x00, 0x75, 0x73, 0x65, 0x72, 0x3a, 0x75, 0x31, 0x04, 0x00, 0x00,
    0x00, 0x72, 0x2d, 0x76, 0x31, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a,
    0x1b, 0x1c, 0x1d, 0x1e, 0x1f, 0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8, 0xa9, 0xaa,
    0xab, 0xac, 0xad, 0xae, 0xaf, 0xb0, 0xb1, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7, 0xb8, 0xb9, 0xba,
    0xbb, 0xbc, 0xbd, 0xbe, 0xbf, 0x07, 0x00, 0x00, 0x00, 0x7b, 0x22, 0x61, 0x22, 0x3a, 0x31, 0x7d,
};

/* Its fingerprint by the legacy rule, as the build before codec version 2 computed it. */
static const uint8_t v1_put_fingerprint[32] = {
    0x5c, 0x6e, 0x2b, 0x60, 0x41, 0x7f, 0x8c, 0x87, 0xeb, 0xbc, 0x9e, 0x9c, 0x00, 0x4b, 0x82, 0xc0,
    0x43, 0x6d, 0x8e, 0x8d, 0x09, 0xd0, 0x8d, 0x3d, 0x91, 0x02, 0x80, 0xc0, 0x51, 0xd7, 0x40, 0xfc,
};

/* An old raft log's version-1 entries apply as before: recorded by the legacy rule, and the
 * same entry again is a duplicate of itself. */
static void test_version1_entries_apply(void **state)
{
    (void)state;
    struct fsm *f = new_fsm(NULL);
    expect(put(f, "acme", "db.url", 0, "1", NULL), FSM_OK, 1);
    for (uint64_t v = 1; v < 4; v++) {
        expect(put(f, "acme", "db.url", v, "1", NULL), FSM_OK, v + 1);
    }
    uint64_t idx = fsm_last_applied(f) + 1;
    struct fsm_result res = apply_at(f, idx, v1_put, sizeof(v1_put));
    expect(res, FSM_OK, 5);
    const struct fsm_request *q = fsm_request_find(f, "acme", 4, "r-v1", 4);
    assert_non_null(q);
    assert_int_equal(q->rule, FSM_FP_LEGACY);
    assert_memory_equal(q->fingerprint, v1_put_fingerprint, 32);
    res = apply_at(f, idx + 1, v1_put, sizeof(v1_put));
    assert_int_equal(res.status, FSM_DUPLICATE);
    assert_false(res.mismatch);
    /* A version-2 retry of an id recorded by the legacy rule is compared by that rule. */
    struct req v2 = {.op = CODEC_OP_PUT,
                     .project = "acme",
                     .key = "db.url",
                     .expected = 4,
                     .content = "{\"a\":1}",
                     .rid = "r-v1",
                     .actor = "user:u1",
                     .schema = 0x10};
    uint8_t *buf;
    size_t len;
    struct codec_entry e;
    buf = encode_req(&v2, idx + 2, &len);
    assert_int_equal(codec_decode(buf, len, &e, err, sizeof(err)), 0);
    /* encode_req derives schema bytes from one value; the v1 entry has 0x10.. and 0xa0..,
     * so rebuild the same resolved schema here. E points into BUF until it is encoded. */
    uint8_t *first_buf = buf;
    for (int i = 0; i < 16; i++) {
        e.schema_id[i] = (uint8_t)(0x10 + i);
    }
    for (int i = 0; i < 32; i++) {
        e.schema_hash[i] = (uint8_t)(0xa0 + i);
    }
    assert_int_equal(codec_encode(&e, &buf, &len, err, sizeof(err)), 0);
    free(first_buf);
    res = apply_at(f, idx + 2, buf, len);
    free(buf);
    assert_int_equal(res.status, FSM_DUPLICATE);
    assert_false(res.mismatch);
    assert_int_equal(get(f, "acme", "db.url")->version, 5);
    fsm_free(f);
}

/* A snapshot written by the build before snapshot version 2 (one put of acme/k with request
 * id old-1, bound to a schema): it restores, its ids keep the legacy rule, and a retry of the
 * same old entry is still recognised. */
static const uint8_t v1_snapshot[] = {
    0x43, 0x4e, 0x43, 0x4c, 0x53, 0x4e, 0x41, 0x50, 0x01, 0x00, 0x00, 0x00, 0x56, 0x07, 0xdc, 0xe3,
    0xe1, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x92, 0x06, 0xf6, 0x6c, 0xa9, 0xd0, 0x60, 0x2c,
    0x1c, 0x12, 0x83, 0xbf, 0x6d, 0x0f, 0x2e, 0x9b, 0xeb, 0xa3, 0xc4, 0xfe, 0x5e, 0xdf, 0xcd, 0x3c,
    0x10, 0x49, 0x07, 0x00, 0x27, 0x31, 0xdc, 0xe3, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x04, 0x00, 0x00, 0x00, 0x61, 0x63, 0x6d, 0x65, 0x88, 0x28, 0xf9, 0x46, 0x9b, 0x0d, 0x4c, 0xcf,
    0xd7, 0xfb, 0x33, 0x13, 0x49, 0x48, 0x2a, 0x57, 0x70, 0x03, 0xff, 0xc6, 0xba, 0xd6, 0xeb, 0xc9,
    0x3d, 0xf5, 0xc2, 0x78, 0x11, 0x91, 0x48, 0x44, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x01, 0x00, 0x00, 0x00, 0x6b, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x07,
    0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x08,
    0x08, 0x08, 0x08, 0x08, 0x08, 0x08, 0x08, 0x08, 0x08, 0x08, 0x08, 0x08, 0x08, 0x08, 0x08, 0x08,
    0x08, 0x08, 0x08, 0x08, 0x08, 0x08, 0x08, 0x08, 0x08, 0x08, 0x08, 0x08, 0x08, 0x08, 0x08, 0x07,
    0x00, 0x00, 0x00, 0x7b, 0x22, 0x61, 0x22, 0x3a, 0x31, 0x7d, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05, 0x00, 0x00, 0x00, 0x61, 0x6c,
    0x69, 0x63, 0x65, 0x01, 0x40, 0x1e, 0x18, 0x24, 0x0a, 0x06, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x61,
    0x63, 0x6d, 0x65, 0x01, 0x00, 0x00, 0x00, 0x6b, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07,
    0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x08, 0x08, 0x08, 0x08, 0x08, 0x08,
    0x08, 0x08, 0x08, 0x08, 0x08, 0x08, 0x08, 0x08, 0x08, 0x08, 0x08, 0x08, 0x08, 0x08, 0x08, 0x08,
    0x08, 0x08, 0x08, 0x08, 0x08, 0x08, 0x08, 0x08, 0x08, 0x08, 0x07, 0x00, 0x00, 0x00, 0x7b, 0x22,
    0x61, 0x22, 0x3a, 0x31, 0x7d, 0x05, 0x00, 0x00, 0x00, 0x61, 0x6c, 0x69, 0x63, 0x65, 0x05, 0x00,
    0x00, 0x00, 0x6f, 0x6c, 0x64, 0x2d, 0x31, 0x01, 0x40, 0x1e, 0x18, 0x24, 0x0a, 0x06, 0x00, 0x01,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x88,
    0x28, 0xf9, 0x46, 0x9b, 0x0d, 0x4c, 0xcf, 0xd7, 0xfb, 0x33, 0x13, 0x49, 0x48, 0x2a, 0x57, 0x70,
    0x03, 0xff, 0xc6, 0xba, 0xd6, 0xeb, 0xc9, 0x3d, 0xf5, 0xc2, 0x78, 0x11, 0x91, 0x48, 0x44, 0x01,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x61, 0x63, 0x6d, 0x65, 0x05,
    0x00, 0x00, 0x00, 0x6f, 0x6c, 0x64, 0x2d, 0x31, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x7d, 0xb7, 0x6d, 0x7f, 0x8a, 0xb7, 0x8c, 0x4c, 0x10, 0x0c, 0x79, 0xaa, 0x54, 0x75, 0xd9,
    0x03, 0x70, 0x79, 0x5e, 0x93, 0x77, 0x77, 0xc7, 0x19, 0x8e, 0x0a, 0x0f, 0x71, 0xdb, 0x2b, 0x84,
    0xc5, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
};

static void test_version1_snapshot_restores(void **state)
{
    (void)state;
    struct fsm *f = new_fsm(NULL);
    assert_int_equal(fsm_restore(f, v1_snapshot, sizeof(v1_snapshot), err, sizeof(err)), 0);
    assert_int_equal(fsm_last_applied(f), 1);
    assert_int_equal(get(f, "acme", "k")->version, 1);
    const struct fsm_request *q = fsm_request_find(f, "acme", 4, "old-1", 5);
    assert_non_null(q);
    assert_int_equal(q->rule, FSM_FP_LEGACY);
    /* The same entry as a version-1 retry (what an old log replays). */
    struct codec_entry e;
    memset(&e, 0, sizeof(e));
    e.op = CODEC_OP_PUT;
    e.term = 1;
    e.timestamp_us = 1700000000000001;
    e.project = "acme";
    e.project_len = 4;
    e.key = "k";
    e.key_len = 1;
    e.actor = "alice";
    e.actor_len = 5;
    e.request_id = "old-1";
    e.request_id_len = 5;
    e.has_schema = 1;
    memset(e.schema_id, 7, 16);
    memset(e.schema_hash, 8, 32);
    e.content = (const uint8_t *)"{\"a\":1}";
    e.content_len = 7;
    uint8_t fp[32];
    fsm_request_fingerprint_legacy(&e, fp);
    assert_memory_equal(fp, q->fingerprint, 32);
    /* Snapshots are written in version 2 from now on and restore to the same state. */
    size_t len;
    uint8_t *snap = snapshot_of(f, &len);
    struct fsm *g = new_fsm(NULL);
    assert_int_equal(fsm_restore(g, snap, len, err, sizeof(err)), 0);
    assert_int_equal(snap[8], 2);
    free(snap);
    assert_int_equal(fsm_request_find(g, "acme", 4, "old-1", 5)->rule, FSM_FP_LEGACY);
    /* Ids of the old global FIFO: which were forgotten is unknown, for every project, also
     * after the state went through a version-2 snapshot. */
    assert_true(fsm_request_may_have_forgotten(f, "acme", 4));
    assert_true(fsm_request_may_have_forgotten(f, "beta", 4));
    assert_true(fsm_request_may_have_forgotten(g, "beta", 4));
    /* A version-1 snapshot with its hash edited is refused (the hash is checked in the
     * version it was written in). */
    uint8_t bad[sizeof(v1_snapshot)];
    memcpy(bad, v1_snapshot, sizeof(bad));
    bad[24] ^= 1;
    memset(bad + 12, 0, 4);
    size_t body = (size_t)bad[16] | (size_t)bad[17] << 8 | (size_t)bad[18] << 16;
    uint32_t crc = codec_crc32c(0, bad, 64 + body);
    for (int i = 0; i < 4; i++) {
        bad[12 + i] = (uint8_t)(crc >> (8 * i));
    }
    struct fsm *h = new_fsm(NULL);
    assert_int_equal(fsm_restore(h, bad, sizeof(bad), err, sizeof(err)), FSM_EINVAL);
    assert_non_null(strstr(err, "state hash mismatch"));
    fsm_free(h);
    fsm_free(g);
    fsm_free(f);
}

/* ---- copy-on-write snapshot views ---- */

/* Applies a deterministic mix of ROUNDS changes to F from SEED: updates of existing keys,
 * deletes, recreations, new keys at random positions (splitting chunks), a new project,
 * request ids and materialized entries. Version numbers come from F itself, so the same call
 * on two state machines holding the same state applies the same entries. */
static void churn(struct fsm *f, uint64_t seed, size_t rounds)
{
    rng_state = seed;
    const char *projects[] = {"acme", "beta", "newco"};
    for (size_t i = 0; i < rounds; i++) {
        const char *project = projects[rng() % (i > rounds / 2 ? 3 : 2)];
        char key[24], content[48], rid[48];
        snprintf(key, sizeof(key), "key.%05llu", (unsigned long long)(rng() % 5000));
        snprintf(content, sizeof(content), "{\"v\":%llu}", (unsigned long long)rng() % 100000);
        snprintf(rid, sizeof(rid), "rid-%llu-%zu", (unsigned long long)seed % 1000, i);
        const struct fsm_config *c = get(f, project, key);
        uint64_t version = c != NULL ? c->version : 0;
        if (c != NULL && !c->deleted && rng() % 4 == 0) {
            expect(del(f, project, key, version, rid), FSM_OK, version + 1);
        } else {
            expect(put(f, project, key, version, content, rng() % 2 ? rid : NULL), FSM_OK,
                   version + 1);
        }
        if (rng() % 64 == 0) {
            materialize(f, fsm_last_applied(f) - rng() % 8);
        }
    }
}

/* Serialises V and checks it against WANT byte for byte. */
static void expect_view(const struct fsm_view *v, const uint8_t *want, size_t want_len)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    if (fsm_view_write(v, &buf, &len, err, sizeof(err)) != 0) {
        fail_msg("fsm_view_write: %s", err);
    }
    fsm_snapshot_seal(buf, len);
    assert_int_equal(len, want_len);
    assert_memory_equal(buf, want, len);
    free(buf);
}

/* A view serialises to exactly the snapshot of the moment it was taken, whatever the loop
 * applied, restored or freed meanwhile; and the live state is exactly the state a twin that
 * never had a view reaches with the same entries (copy-on-write changes nothing visible). */
static void test_view_copy_on_write(void **state)
{
    (void)state;
    struct fsm *f = new_fsm(NULL);
    struct fsm *twin = new_fsm(NULL);
    churn(f, 11, 3000);
    churn(twin, 11, 3000);
    uint8_t *at_take = NULL;
    size_t at_take_len = 0;
    at_take = snapshot_of(f, &at_take_len);

    struct fsm_view *v = NULL;
    assert_int_equal(fsm_view_take(f, &v, err, sizeof(err)), 0);
    struct fsm_view *second = NULL;
    assert_int_equal(fsm_view_take(f, &second, err, sizeof(err)), FSM_EBUSY);
    assert_null(second);
    expect_view(v, at_take, at_take_len);

    /* Keep applying: the view still serialises the state of the take. */
    churn(f, 12, 3000);
    churn(twin, 12, 3000);
    expect_view(v, at_take, at_take_len);
    uint8_t hf[32], ht[32];
    state_hash(f, hf);
    state_hash(twin, ht);
    assert_memory_equal(hf, ht, 32);

    /* Restore a different state into F while the view lives. */
    struct fsm *other = new_fsm(NULL);
    churn(other, 13, 500);
    uint8_t *snap = NULL;
    size_t snap_len = 0;
    snap = snapshot_of(other, &snap_len);
    assert_int_equal(fsm_restore(f, snap, snap_len, err, sizeof(err)), 0);
    assert_int_equal(fsm_restore(twin, snap, snap_len, err, sizeof(err)), 0);
    churn(f, 14, 500);
    churn(twin, 14, 500);
    expect_view(v, at_take, at_take_len);
    fsm_view_release(v);

    /* After the release, a new view sees the new state; changes apply in place again. */
    state_hash(f, hf);
    state_hash(twin, ht);
    assert_memory_equal(hf, ht, 32);
    uint8_t *now = NULL;
    size_t now_len = 0;
    now = snapshot_of(f, &now_len);
    assert_int_equal(fsm_view_take(f, &v, err, sizeof(err)), 0);
    churn(f, 15, 200);
    /* Free the state machine while the view lives: the view stays readable. */
    fsm_free(f);
    expect_view(v, now, now_len);
    fsm_view_release(v);

    free(now);
    free(snap);
    free(at_take);
    fsm_free(other);
    fsm_free(twin);
}

struct view_thread {
    const struct fsm_view *v;
    uint8_t *buf;
    size_t len;
    int rc;
};

static void *view_thread_main(void *arg)
{
    struct view_thread *t = arg;
    char terr[256];
    /* Several passes, so that the writes overlap the loop's applies. */
    for (int i = 0; i < 4; i++) {
        free(t->buf);
        t->buf = NULL;
        t->rc = fsm_view_write(t->v, &t->buf, &t->len, terr, sizeof(terr));
        if (t->rc != 0) {
            break;
        }
    }
    if (t->rc == 0) {
        fsm_snapshot_seal(t->buf, t->len);
    }
    return NULL;
}

/* A real thread serialises the view while this thread applies (updates, deletes, new keys,
 * splits, materialized) and then restores: the result is the snapshot of the take, and the
 * TSan build reports no race. */
static void test_view_thread(void **state)
{
    (void)state;
    struct fsm *f = new_fsm(NULL);
    churn(f, 21, 3000);
    uint8_t *at_take = NULL;
    size_t at_take_len = 0;
    at_take = snapshot_of(f, &at_take_len);
    struct fsm_view *v = NULL;
    assert_int_equal(fsm_view_take(f, &v, err, sizeof(err)), 0);
    struct view_thread t = {.v = v};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, view_thread_main, &t), 0);
    churn(f, 22, 3000);
    struct fsm *other = new_fsm(NULL);
    churn(other, 23, 100);
    uint8_t *snap = NULL;
    size_t snap_len = 0;
    snap = snapshot_of(other, &snap_len);
    assert_int_equal(fsm_restore(f, snap, snap_len, err, sizeof(err)), 0);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_int_equal(t.rc, 0);
    assert_int_equal(t.len, at_take_len);
    assert_memory_equal(t.buf, at_take, at_take_len);
    fsm_view_release(v);
    free(t.buf);
    free(snap);
    free(at_take);
    fsm_free(other);
    fsm_free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_revision_known_answer),
        cmocka_unit_test(test_cas),
        cmocka_unit_test(test_delete_tombstone_recreate),
        cmocka_unit_test(test_rollback),
        cmocka_unit_test(test_chain),
        cmocka_unit_test(test_request_ids),
        cmocka_unit_test(test_materialized),
        cmocka_unit_test(test_invalid_entries),
        cmocka_unit_test(test_list),
        cmocka_unit_test(test_container_random_inserts),
        cmocka_unit_test(test_container_prefix_paging),
        cmocka_unit_test(test_container_million_bounded),
        cmocka_unit_test(test_view_copy_on_write),
        cmocka_unit_test(test_view_thread),
        cmocka_unit_test(test_determinism),
        cmocka_unit_test(test_snapshot_round_trip),
        cmocka_unit_test(test_restore_replaces_state),
        cmocka_unit_test(test_corrupt_snapshot_refused),
        cmocka_unit_test(test_max_configs_lowered),
        cmocka_unit_test(test_pending_limit),
        cmocka_unit_test(test_request_eviction),
        cmocka_unit_test(test_request_may_have_forgotten),
        cmocka_unit_test(test_request_unmaterialized_kept),
        cmocka_unit_test(test_request_total_bound),
        cmocka_unit_test(test_fingerprint_carried),
        cmocka_unit_test(test_version1_entries_apply),
        cmocka_unit_test(test_version1_snapshot_restores),
        cmocka_unit_test(test_snapshot_sealed_later),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
