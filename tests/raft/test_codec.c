/*
 * The Raft entry codec: round trips of every op, the documented byte layout (rebuilt here by
 * an independent writer), refusal of every kind of malformed input, and a fixed-seed mutation
 * fuzz whose inputs live in exactly-sized heap buffers so that ASan catches any overread.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "raft/codec.h"

static char err[256];

/* xorshift64*: a fixed-seed generator, so every run tests the same inputs. */
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rng(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545f4914f6cdd1dull;
}

static const uint8_t content[] = "{\"db\":{\"host\":\"pg-1\",\"port\":5432}}";

static struct codec_entry full_put(void)
{
    struct codec_entry e;
    memset(&e, 0, sizeof(e));
    e.op = CODEC_OP_PUT;
    e.expected_version = 41;
    e.term = 7;
    e.timestamp_us = 1700000000123456;
    e.project = "acme-prod";
    e.project_len = strlen(e.project);
    e.key = "db.primary:url";
    e.key_len = strlen(e.key);
    e.actor = "alice@example.com";
    e.actor_len = strlen(e.actor);
    e.request_id = "req-0001";
    e.request_id_len = strlen(e.request_id);
    for (int i = 0; i < 32; i++) {
        e.fingerprint[i] = (uint8_t)(0x50 + i);
    }
    e.has_schema = 1;
    for (int i = 0; i < 16; i++) {
        e.schema_id[i] = (uint8_t)(0x10 + i);
    }
    for (int i = 0; i < 32; i++) {
        e.schema_hash[i] = (uint8_t)(0xa0 + i);
    }
    e.content = content;
    e.content_len = sizeof(content) - 1;
    return e;
}

static struct codec_entry minimal(enum codec_op op)
{
    struct codec_entry e = full_put();
    e.op = op;
    e.request_id = NULL;
    e.request_id_len = 0;
    e.has_schema = 0;
    memset(e.schema_id, 0, sizeof(e.schema_id));
    memset(e.schema_hash, 0, sizeof(e.schema_hash));
    if (op == CODEC_OP_DELETE) {
        e.content = NULL;
        e.content_len = 0;
    }
    if (op == CODEC_OP_ROLLBACK) {
        e.source_version = 3;
    }
    if (op == CODEC_OP_MATERIALIZED) {
        struct codec_entry m;
        memset(&m, 0, sizeof(m));
        m.op = op;
        m.materialized_index = 123456789;
        return m;
    }
    return e;
}

static void assert_same_entry(const struct codec_entry *a, const struct codec_entry *b)
{
    assert_int_equal(a->op, b->op);
    if (a->op == CODEC_OP_MATERIALIZED) {
        assert_int_equal(a->materialized_index, b->materialized_index);
        return;
    }
    assert_int_equal(a->expected_version, b->expected_version);
    assert_int_equal(a->source_version, b->source_version);
    assert_int_equal(a->term, b->term);
    assert_int_equal(a->timestamp_us, b->timestamp_us);
    assert_int_equal(a->project_len, b->project_len);
    assert_memory_equal(a->project, b->project, a->project_len);
    assert_int_equal(a->key_len, b->key_len);
    assert_memory_equal(a->key, b->key, a->key_len);
    assert_int_equal(a->actor_len, b->actor_len);
    assert_memory_equal(a->actor, b->actor, a->actor_len);
    assert_int_equal(a->request_id_len, b->request_id_len);
    if (a->request_id_len > 0) {
        assert_memory_equal(a->request_id, b->request_id, a->request_id_len);
    }
    assert_memory_equal(a->fingerprint, b->fingerprint, 32);
    assert_int_equal(b->format, CODEC_VERSION);
    assert_int_equal(a->has_schema, b->has_schema);
    if (a->has_schema) {
        assert_memory_equal(a->schema_id, b->schema_id, 16);
        assert_memory_equal(a->schema_hash, b->schema_hash, 32);
    }
    assert_int_equal(a->content_len, b->content_len);
    if (a->content_len > 0) {
        assert_memory_equal(a->content, b->content, a->content_len);
    } else {
        assert_null(b->content);
    }
}

static uint8_t *encode_ok(const struct codec_entry *e, size_t *len)
{
    uint8_t *buf = NULL;
    int rc = codec_encode(e, &buf, len, err, sizeof(err));
    if (rc != 0) {
        fail_msg("encode: %s", err);
    }
    assert_non_null(buf);
    assert_int_equal(*len % 8, 0);
    return buf;
}

/* Decodes a heap copy of exactly LEN bytes, so that reading past LEN is an ASan error. */
static int decode_exact(const uint8_t *buf, size_t len, struct codec_entry *out)
{
    uint8_t *copy = malloc(len > 0 ? len : 1);
    assert_non_null(copy);
    if (len > 0) {
        memcpy(copy, buf, len);
    }
    int rc = codec_decode(copy, len, out, err, sizeof(err));
    free(copy);
    return rc;
}

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void store_le32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

/* Recomputes the checksum of a (possibly edited) entry from its header's payload length. */
static void reseal(uint8_t *buf)
{
    size_t payload = le32(buf + 8);
    store_le32(buf + 12, 0);
    store_le32(buf + 12, codec_crc32c(0, buf, CODEC_HEADER_SIZE + payload));
}

/* ---- an independent writer of the documented layout, without any validation ---- */

struct raw {
    uint8_t *b;
    size_t n;
};

static void raw_bytes(struct raw *r, const void *p, size_t n)
{
    if (n > 0) {
        memcpy(r->b + r->n, p, n);
    }
    r->n += n;
}

static void raw_u32(struct raw *r, uint32_t v)
{
    uint8_t b[4];
    store_le32(b, v);
    raw_bytes(r, b, 4);
}

static void raw_u64(struct raw *r, uint64_t v)
{
    raw_u32(r, (uint32_t)v);
    raw_u32(r, (uint32_t)(v >> 32));
}

static void raw_str(struct raw *r, const void *p, size_t n)
{
    raw_u32(r, (uint32_t)n);
    raw_bytes(r, p, n);
}

/* Writes E as the header comment of codec.h describes, with FLAGS as given, into a new
 * buffer. Checks nothing, so tests can produce entries the encoder refuses. */
static uint8_t *raw_entry_v(const struct codec_entry *e, unsigned flags, unsigned version,
                            size_t *len)
{
    size_t cap = 16 + 64 + 4 * 4 + e->project_len + e->key_len + e->actor_len + e->request_id_len +
                 32 + 48 + 4 + e->content_len + 8;
    struct raw r = {.b = calloc(1, cap), .n = 0};
    assert_non_null(r.b);
    raw_bytes(&r, "CNCL", 4);
    uint8_t h[4] = {(uint8_t)version, (uint8_t)e->op, (uint8_t)flags, 0};
    raw_bytes(&r, h, 4);
    raw_u64(&r, 0); /* length and checksum, filled below */
    if (e->op == CODEC_OP_MATERIALIZED) {
        raw_u64(&r, e->materialized_index);
    } else {
        raw_u64(&r, e->expected_version);
        raw_u64(&r, e->source_version);
        raw_u64(&r, e->term);
        raw_u64(&r, (uint64_t)e->timestamp_us);
        raw_str(&r, e->project, e->project_len);
        raw_str(&r, e->key, e->key_len);
        raw_str(&r, e->actor, e->actor_len);
        raw_str(&r, e->request_id, e->request_id_len);
        if (version >= 2) {
            raw_bytes(&r, e->fingerprint, 32);
        }
        if (flags & CODEC_FLAG_SCHEMA) {
            raw_bytes(&r, e->schema_id, 16);
            raw_bytes(&r, e->schema_hash, 32);
        }
        if (e->content != NULL) {
            raw_str(&r, e->content, e->content_len);
        }
    }
    store_le32(r.b + 8, (uint32_t)(r.n - 16));
    *len = (r.n + 7) & ~(size_t)7;
    reseal(r.b);
    return r.b;
}

static uint8_t *raw_entry(const struct codec_entry *e, unsigned flags, size_t *len)
{
    return raw_entry_v(e, flags, CODEC_VERSION, len);
}

/* ---- tests ---- */

static void test_crc32c(void **state)
{
    (void)state;
    assert_int_equal(codec_crc32c(0, "123456789", 9), 0xe3069283u);
    assert_int_equal(codec_crc32c(0, "", 0), 0);
    /* Incremental use gives the same value as one call. */
    uint32_t c = codec_crc32c(0, "1234", 4);
    assert_int_equal(codec_crc32c(c, "56789", 5), 0xe3069283u);
    /* 32 zero bytes: the iSCSI test vector of RFC 3720. */
    uint8_t zeros[32] = {0};
    assert_int_equal(codec_crc32c(0, zeros, sizeof(zeros)), 0x8a9136aau);
}

static void round_trip(const struct codec_entry *e)
{
    size_t len;
    uint8_t *buf = encode_ok(e, &len);
    struct codec_entry d;
    int rc = codec_decode(buf, len, &d, err, sizeof(err));
    if (rc != 0) {
        fail_msg("decode %s: %s", codec_op_name(e->op), err);
    }
    assert_same_entry(e, &d);
    /* Zero-copy: strings point into the buffer. */
    if (d.op != CODEC_OP_MATERIALIZED) {
        assert_true((const uint8_t *)d.key > buf && (const uint8_t *)d.key < buf + len);
    }
    /* The header carries the real length; the rest is zero padding. */
    size_t real = CODEC_HEADER_SIZE + le32(buf + 8);
    assert_true(real <= len && len - real < 8);
    for (size_t i = real; i < len; i++) {
        assert_int_equal(buf[i], 0);
    }
    /* The independent writer produces the same bytes. */
    size_t rlen;
    uint8_t *raw = raw_entry(e, e->op != CODEC_OP_MATERIALIZED && e->has_schema ? 1 : 0, &rlen);
    assert_int_equal(rlen, len);
    assert_memory_equal(raw, buf, len);
    free(raw);
    free(buf);
}

static void test_round_trip_all_ops(void **state)
{
    (void)state;
    struct codec_entry e = full_put();
    round_trip(&e); /* put with every optional field */
    e.expected_version = 0;
    round_trip(&e); /* create */
    e = minimal(CODEC_OP_PUT);
    round_trip(&e);
    e = minimal(CODEC_OP_DELETE);
    round_trip(&e);
    e.request_id = "del-7";
    e.request_id_len = 5;
    round_trip(&e);
    e = full_put();
    e.op = CODEC_OP_ROLLBACK;
    e.source_version = 41;
    round_trip(&e);
    e = minimal(CODEC_OP_ROLLBACK);
    round_trip(&e);
    e = minimal(CODEC_OP_MATERIALIZED);
    round_trip(&e);
    /* Every maximum exactly. */
    char project[CODEC_MAX_PROJECT];
    char key[CODEC_MAX_KEY];
    char actor[CODEC_MAX_ACTOR];
    char rid[CODEC_MAX_REQUEST_ID];
    memset(project, 'p', sizeof(project));
    memset(key, 'k', sizeof(key));
    memset(actor, 'a', sizeof(actor));
    memset(rid, 'r', sizeof(rid));
    uint8_t *big = malloc(CODEC_MAX_CONTENT);
    assert_non_null(big);
    memset(big, ' ', CODEC_MAX_CONTENT);
    e = full_put();
    e.project = project;
    e.project_len = sizeof(project);
    e.key = key;
    e.key_len = sizeof(key);
    e.actor = actor;
    e.actor_len = sizeof(actor);
    e.request_id = rid;
    e.request_id_len = sizeof(rid);
    e.content = big;
    e.content_len = CODEC_MAX_CONTENT;
    e.expected_version = (uint64_t)INT64_MAX - 1;
    e.term = (uint64_t)INT64_MAX;
    e.timestamp_us = CODEC_MAX_TIMESTAMP_US;
    round_trip(&e);
    free(big);
    /* UTF-8 actor. */
    e = full_put();
    e.actor = "J\xc3\xb6rg \xe2\x82\xac \xf0\x9f\x98\x80";
    e.actor_len = strlen(e.actor);
    round_trip(&e);
}

static void test_every_truncation_rejected(void **state)
{
    (void)state;
    struct codec_entry e = full_put();
    size_t len;
    uint8_t *buf = encode_ok(&e, &len);
    struct codec_entry d;
    for (size_t n = 0; n < len; n++) {
        assert_int_not_equal(decode_exact(buf, n, &d), 0);
    }
    assert_int_equal(decode_exact(buf, len, &d), 0);
    free(buf);
}

static void test_every_bit_flip_rejected(void **state)
{
    (void)state;
    struct codec_entry entries[3] = {full_put(), minimal(CODEC_OP_DELETE),
                                     minimal(CODEC_OP_MATERIALIZED)};
    for (size_t k = 0; k < 3; k++) {
        size_t len;
        uint8_t *buf = encode_ok(&entries[k], &len);
        struct codec_entry d;
        for (size_t bit = 0; bit < len * 8; bit++) {
            buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
            if (codec_decode(buf, len, &d, err, sizeof(err)) == 0) {
                fail_msg("entry %zu: flipping bit %zu was accepted", k, bit);
            }
            buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        }
        assert_int_equal(codec_decode(buf, len, &d, err, sizeof(err)), 0);
        free(buf);
    }
}

/* Decodes BUF/LEN, expects a refusal whose message contains WHAT, and frees BUF. */
static void expect_refused(uint8_t *buf, size_t len, const char *what)
{
    struct codec_entry d;
    memset(&d, 0xff, sizeof(d));
    int rc = decode_exact(buf, len, &d);
    free(buf);
    if (rc == 0) {
        fail_msg("accepted; expected an error about \"%s\"", what);
    }
    assert_int_equal(rc, CODEC_EINVAL);
    if (strstr(err, what) == NULL) {
        fail_msg("error \"%s\" does not mention \"%s\"", err, what);
    }
    /* A refused decode leaves nothing behind. */
    assert_null(d.key);
    assert_int_equal(d.op, 0);
}

static void test_framing_errors(void **state)
{
    (void)state;
    struct codec_entry e = full_put();
    size_t len;
    uint8_t *buf;

    buf = encode_ok(&e, &len);
    buf[0] = 'X';
    expect_refused(buf, len, "bad magic");

    buf = encode_ok(&e, &len);
    buf[4] = 3;
    reseal(buf);
    expect_refused(buf, len, "unsupported format version 3");
    buf = encode_ok(&e, &len);
    buf[4] = 0;
    reseal(buf);
    expect_refused(buf, len, "unsupported format version 0");

    buf = encode_ok(&e, &len);
    buf[5] = 9;
    reseal(buf);
    expect_refused(buf, len, "unknown op 9");
    buf = encode_ok(&e, &len);
    buf[5] = 0;
    reseal(buf);
    expect_refused(buf, len, "unknown op 0");

    buf = encode_ok(&e, &len);
    buf[6] |= 0x80;
    reseal(buf);
    expect_refused(buf, len, "flags 0x81");

    buf = encode_ok(&e, &len);
    buf[7] = 1;
    reseal(buf);
    expect_refused(buf, len, "reserved header byte");

    /* Padding: not to 8, non-zero, and extra bytes. */
    buf = encode_ok(&e, &len);
    expect_refused(buf, len - 1, "not a multiple of 8");
    buf = encode_ok(&e, &len);
    expect_refused(buf, len - 8, "truncated: payload length");
    buf = encode_ok(&e, &len);
    size_t real = CODEC_HEADER_SIZE + le32(buf + 8);
    assert_true(real < len); /* this entry has padding */
    buf[len - 1] = 1;
    expect_refused(buf, len, "padding byte");
    buf = encode_ok(&e, &len);
    uint8_t *longer = calloc(1, len + 8);
    assert_non_null(longer);
    memcpy(longer, buf, len);
    free(buf);
    expect_refused(longer, len + 8, "trailing bytes");
    buf = encode_ok(&e, &len);
    longer = calloc(1, len + 3);
    assert_non_null(longer);
    memcpy(longer, buf, len);
    free(buf);
    expect_refused(longer, len + 3, "not a multiple of 8");

    buf = encode_ok(&e, &len);
    buf[12] ^= 1;
    expect_refused(buf, len, "checksum mismatch");

    expect_refused(calloc(1, 8), 8, "truncated");
    struct codec_entry d;
    assert_int_equal(codec_decode(NULL, 0, &d, err, sizeof(err)), CODEC_EINVAL);
}

static void test_length_errors(void **state)
{
    (void)state;
    struct codec_entry e = full_put();
    size_t len;
    uint8_t *buf;
    /* The key length field sits after the fixed fields, the project and its length. */
    size_t key_len_off = CODEC_HEADER_SIZE + 32 + 4 + e.project_len;

    buf = raw_entry(&e, CODEC_FLAG_SCHEMA, &len);
    store_le32(buf + key_len_off, CODEC_MAX_KEY + 1);
    reseal(buf);
    expect_refused(buf, len, "key length 257 is above the maximum 256");

    buf = raw_entry(&e, CODEC_FLAG_SCHEMA, &len);
    store_le32(buf + key_len_off, 250); /* under the maximum, past the payload end */
    reseal(buf);
    expect_refused(buf, len, "runs past the payload end");

    buf = raw_entry(&e, CODEC_FLAG_SCHEMA, &len);
    store_le32(buf + key_len_off, 0xffffffffu);
    reseal(buf);
    expect_refused(buf, len, "above the maximum");

    /* A payload length that claims less than the fields need. */
    buf = raw_entry(&e, CODEC_FLAG_SCHEMA, &len);
    uint32_t payload = le32(buf + 8);
    uint8_t *cut = calloc(1, len);
    assert_non_null(cut);
    memcpy(cut, buf, CODEC_HEADER_SIZE + payload - 8);
    store_le32(cut + 8, payload - 8);
    reseal(cut);
    free(buf);
    expect_refused(cut, (CODEC_HEADER_SIZE + payload - 8 + 7) & ~(size_t)7,
                   "runs past the payload end");
    struct codec_entry mat = minimal(CODEC_OP_MATERIALIZED);
    buf = raw_entry(&mat, 0, &len);
    store_le32(buf + 8, 4);
    reseal(buf);
    expect_refused(buf, len, "payload ends inside the materialized index field");
    e = minimal(CODEC_OP_DELETE);
    buf = raw_entry(&e, 0, &len);
    payload = le32(buf + 8);
    /* Cut 2 bytes into the request id's length (the 32-byte fingerprint follows it); the
     * bytes past the new end are zeroed and the length shrunk to the padded size. */
    store_le32(buf + 8, payload - 32 - 2);
    memset(buf + CODEC_HEADER_SIZE + payload - 32 - 2, 0, 32 + 2);
    reseal(buf);
    expect_refused(buf, (CODEC_HEADER_SIZE + payload - 34 + 7) & ~(size_t)7,
                   "payload ends inside the length of the request id");

    /* Bytes after the last field, inside the payload. */
    struct codec_entry m = minimal(CODEC_OP_MATERIALIZED);
    buf = raw_entry(&m, 0, &len);
    assert_int_equal(len, 24);
    store_le32(buf + 8, 9);
    reseal(buf);
    expect_refused(buf, len, "truncated");
    uint8_t *b2 = calloc(1, 32);
    assert_non_null(b2);
    buf = raw_entry(&m, 0, &len);
    memcpy(b2, buf, len);
    free(buf);
    store_le32(b2 + 8, 9);
    reseal(b2);
    expect_refused(b2, 32, "unread bytes");

    /* Over-maximum strings, written without the encoder's checks. */
    char big[CODEC_MAX_KEY + 2];
    memset(big, 'a', sizeof(big));
    struct codec_entry x = full_put();
    x.project = big;
    x.project_len = CODEC_MAX_PROJECT + 1;
    buf = raw_entry(&x, CODEC_FLAG_SCHEMA, &len);
    expect_refused(buf, len, "project id length 64 is above the maximum 63");
    x = full_put();
    x.actor = big;
    x.actor_len = CODEC_MAX_ACTOR + 1;
    buf = raw_entry(&x, CODEC_FLAG_SCHEMA, &len);
    expect_refused(buf, len, "actor length 201");
    x = full_put();
    x.request_id = big;
    x.request_id_len = CODEC_MAX_REQUEST_ID + 1;
    buf = raw_entry(&x, CODEC_FLAG_SCHEMA, &len);
    expect_refused(buf, len, "request id length 129");
    x = full_put();
    uint8_t *huge = malloc(CODEC_MAX_CONTENT + 1);
    assert_non_null(huge);
    memset(huge, ' ', CODEC_MAX_CONTENT + 1);
    x.content = huge;
    x.content_len = CODEC_MAX_CONTENT + 1;
    buf = raw_entry(&x, CODEC_FLAG_SCHEMA, &len);
    expect_refused(buf, len, "content length");
    /* The encoder refuses the same entries. */
    uint8_t *out = (uint8_t *)1;
    assert_int_equal(codec_encode(&x, &out, &len, err, sizeof(err)), CODEC_EINVAL);
    assert_null(out);
    assert_int_equal(len, 0);
    free(huge);
}

/* An entry that breaks one field rule: both the encoder and the decoder refuse it, with a
 * message containing WHAT. */
static void expect_rule(const struct codec_entry *e, unsigned flags, const char *what)
{
    uint8_t *out = NULL;
    size_t len = 0;
    assert_int_equal(codec_encode(e, &out, &len, err, sizeof(err)), CODEC_EINVAL);
    assert_null(out);
    if (strstr(err, what) == NULL) {
        fail_msg("encode error \"%s\" does not mention \"%s\"", err, what);
    }
    uint8_t *buf = raw_entry(e, flags, &len);
    expect_refused(buf, len, what);
}

static void test_field_rules(void **state)
{
    (void)state;
    struct codec_entry e;
    const unsigned S = CODEC_FLAG_SCHEMA;

    const char *bad_projects[] = {"Acme", "-acme", "acme-", "ac_me", "ac me", ""};
    for (size_t i = 0; i < sizeof(bad_projects) / sizeof(bad_projects[0]); i++) {
        e = full_put();
        e.project = bad_projects[i];
        e.project_len = strlen(bad_projects[i]);
        expect_rule(&e, S, "project id");
    }
    const char *bad_keys[] = {".hidden", "-x", ":x", "a/b", "a b", "caf\xc3\xa9", ""};
    for (size_t i = 0; i < sizeof(bad_keys) / sizeof(bad_keys[0]); i++) {
        e = full_put();
        e.key = bad_keys[i];
        e.key_len = strlen(bad_keys[i]);
        expect_rule(&e, S, "key is not");
    }
    const char *bad_actors[] = {"", "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "ab\xe2\x82"};
    for (size_t i = 0; i < sizeof(bad_actors) / sizeof(bad_actors[0]); i++) {
        e = full_put();
        e.actor = bad_actors[i];
        e.actor_len = strlen(bad_actors[i]);
        expect_rule(&e, S, "actor is not");
    }
    e = full_put();
    e.actor = "a\0b";
    e.actor_len = 3;
    expect_rule(&e, S, "actor is not");
    e = full_put();
    e.request_id = "r\0";
    e.request_id_len = 2;
    expect_rule(&e, S, "request id is not");

    e = full_put();
    e.source_version = 1;
    expect_rule(&e, S, "source version 1 given outside a rollback");
    e = minimal(CODEC_OP_ROLLBACK);
    e.source_version = 0;
    expect_rule(&e, 0, "rollback: source version 0");
    e = minimal(CODEC_OP_ROLLBACK);
    e.source_version = e.expected_version + 1;
    expect_rule(&e, 0, "rollback: source version 42");
    e = full_put();
    e.expected_version = (uint64_t)INT64_MAX;
    expect_rule(&e, S, "expected version");
    e = full_put();
    e.term = 0;
    expect_rule(&e, S, "term 0");
    e = full_put();
    e.term = (uint64_t)INT64_MAX + 1;
    expect_rule(&e, S, "term");
    e = full_put();
    e.timestamp_us = -1;
    expect_rule(&e, S, "timestamp");
    e = full_put();
    e.timestamp_us = CODEC_MAX_TIMESTAMP_US + 1;
    expect_rule(&e, S, "timestamp");
    e = full_put();
    e.content_len = 0;
    expect_rule(&e, S, "content is not");
    e = minimal(CODEC_OP_MATERIALIZED);
    e.materialized_index = 0;
    expect_rule(&e, 0, "materialized index 0");

    /* A delete carries neither content nor schema. */
    e = minimal(CODEC_OP_DELETE);
    e.content = content;
    e.content_len = 3;
    uint8_t *out = NULL;
    size_t len;
    assert_int_equal(codec_encode(&e, &out, &len, err, sizeof(err)), CODEC_EINVAL);
    assert_non_null(strstr(err, "delete: carries content"));
    uint8_t *buf = raw_entry(&e, 0, &len);
    expect_refused(buf, len, "unread bytes");
    e = minimal(CODEC_OP_DELETE);
    e.has_schema = 1;
    assert_int_equal(codec_encode(&e, &out, &len, err, sizeof(err)), CODEC_EINVAL);
    assert_non_null(strstr(err, "delete: carries a schema"));
    buf = raw_entry(&e, CODEC_FLAG_SCHEMA, &len);
    expect_refused(buf, len, "flags 0x01 are not valid for delete");

    /* An op the encoder does not know. */
    e = full_put();
    e.op = (enum codec_op)7;
    assert_int_equal(codec_encode(&e, &out, &len, err, sizeof(err)), CODEC_EINVAL);
    assert_non_null(strstr(err, "unknown op 7"));
}

/* Thousands of mutated entries: the decoder must refuse or accept without reading outside
 * the buffer (ASan), and whatever it accepts must re-encode to the very same bytes. */
static void test_fuzz_mutations(void **state)
{
    (void)state;
    struct codec_entry seeds[5] = {full_put(), minimal(CODEC_OP_PUT), minimal(CODEC_OP_DELETE),
                                   minimal(CODEC_OP_ROLLBACK), minimal(CODEC_OP_MATERIALIZED)};
    uint8_t *bufs[5];
    size_t lens[5];
    for (int i = 0; i < 5; i++) {
        bufs[i] = encode_ok(&seeds[i], &lens[i]);
    }
    size_t accepted = 0;
    for (int iter = 0; iter < 20000; iter++) {
        size_t which = (size_t)(rng() % 5);
        size_t len = lens[which];
        size_t cap = len + 64;
        uint8_t *m = calloc(1, cap);
        assert_non_null(m);
        memcpy(m, bufs[which], len);
        int edits = 1 + (int)(rng() % 4);
        for (int k = 0; k < edits; k++) {
            switch (rng() % 6) {
            case 0: /* random byte */
                if (len > 0) {
                    m[rng() % len] = (uint8_t)rng();
                }
                break;
            case 1: /* bit flip */
                if (len > 0) {
                    m[rng() % len] ^= (uint8_t)(1u << (rng() % 8));
                }
                break;
            case 2: /* truncate */
                len = (size_t)(rng() % (len + 1));
                break;
            case 3: /* grow with random bytes */
                if (len + 8 <= cap) {
                    for (int j = 0; j < 8; j++) {
                        m[len++] = (uint8_t)rng();
                    }
                }
                break;
            case 4: /* a length field: a small or a huge value */
                if (len >= 24) {
                    size_t off = CODEC_HEADER_SIZE + (size_t)(rng() % (len - 20));
                    store_le32(m + off, rng() % 2 ? (uint32_t)(rng() % 300) : (uint32_t)rng());
                }
                break;
            default: /* keep the header's length in step so later checks are reached */
                if (len >= CODEC_HEADER_SIZE) {
                    store_le32(m + 8, (uint32_t)(len - CODEC_HEADER_SIZE - rng() % 8));
                }
                break;
            }
        }
        /* Half the time fix the checksum, so the payload parser sees the mutation. */
        if (rng() % 2 && len >= CODEC_HEADER_SIZE && le32(m + 8) <= len - CODEC_HEADER_SIZE) {
            reseal(m);
        }
        struct codec_entry d;
        if (decode_exact(m, len, &d) == 0) {
            accepted++;
            /* decode_exact freed its copy; decode again from M to re-encode from it. */
            assert_int_equal(codec_decode(m, len, &d, err, sizeof(err)), 0);
            uint8_t *again;
            size_t again_len;
            again = encode_ok(&d, &again_len);
            assert_int_equal(again_len, len);
            assert_memory_equal(again, m, len);
            free(again);
        }
        free(m);
    }
    /* Some mutations are harmless (e.g. a key byte changed to another key character with the
     * checksum fixed); the fuzz must reach the accepting path too. */
    assert_true(accepted > 0);
    for (int i = 0; i < 5; i++) {
        free(bufs[i]);
    }
}

static void test_field_checks(void **state)
{
    (void)state;
    assert_true(codec_project_ok("a", 1));
    assert_true(codec_project_ok("a-1", 3));
    assert_false(codec_project_ok("a-", 2));
    assert_true(codec_key_ok("_x.y:z-1", 8));
    assert_false(codec_key_ok("x/y", 3));
    assert_true(codec_text_ok("", 0));
    assert_true(codec_text_ok("\xef\xbf\xbf", 3));
    assert_false(codec_text_ok("\xe0\x80\xaf", 3)); /* overlong */
    assert_false(codec_text_ok("\xff", 1));
    assert_true(codec_request_id_ok(NULL, 0));
    assert_false(codec_actor_ok("", 0));
    assert_string_equal(codec_op_name(CODEC_OP_MATERIALIZED), "materialized");
    assert_string_equal(codec_op_name((enum codec_op)0), "unknown");
}

/* A put encoded by the build before codec version 2 (commit 58cc7f6, its codec_encode()):
 * project acme, key db.url, expected 4, term 3, actor user:u1, request id r-v1, schema id
 * 0x10.., hash 0xa0.., content {"a":1}. Old raft logs hold such entries; they must decode. */
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

static void test_version1_decodes(void **state)
{
    (void)state;
    struct codec_entry d;
    /* decode_exact() first, for its exact-size heap copy; then the array itself, whose
     * pointers stay valid for the field checks below. */
    assert_int_equal(decode_exact(v1_put, sizeof(v1_put), &d), 0);
    assert_int_equal(codec_decode(v1_put, sizeof(v1_put), &d, err, sizeof(err)), 0);
    assert_int_equal(d.format, 1);
    assert_int_equal(d.op, CODEC_OP_PUT);
    assert_int_equal(d.expected_version, 4);
    assert_int_equal(d.term, 3);
    assert_int_equal(d.key_len, 6);
    assert_memory_equal(d.key, "db.url", 6);
    assert_int_equal(d.request_id_len, 4);
    assert_memory_equal(d.request_id, "r-v1", 4);
    assert_int_equal(d.has_schema, 1);
    assert_int_equal(d.schema_id[0], 0x10);
    assert_int_equal(d.schema_hash[31], 0xbf);
    assert_int_equal(d.content_len, 7);
    assert_memory_equal(d.content, "{\"a\":1}", 7);
    uint8_t zero[32] = {0};
    assert_memory_equal(d.fingerprint, zero, 32); /* version 1 carries none */
    /* The independent writer's version-1 layout of the same entry is the same bytes. */
    size_t len;
    uint8_t *raw = raw_entry_v(&d, CODEC_FLAG_SCHEMA, 1, &len);
    assert_int_equal(len, sizeof(v1_put));
    assert_memory_equal(raw, v1_put, len);
    free(raw);
    /* A version-1 entry with a fingerprint where version 1 has none is refused (its bytes are
     * read as the schema and content): the version byte decides the layout. */
    struct codec_entry e = full_put();
    raw = raw_entry_v(&e, CODEC_FLAG_SCHEMA, 2, &len);
    raw[4] = 1;
    reseal(raw);
    assert_int_equal(decode_exact(raw, len, &d), CODEC_EINVAL);
    free(raw);
    /* The encoder writes the current version only. */
    uint8_t *buf = encode_ok(&e, &len);
    assert_int_equal(buf[4], CODEC_VERSION);
    assert_int_equal(CODEC_VERSION, 2);
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc32c),
        cmocka_unit_test(test_round_trip_all_ops),
        cmocka_unit_test(test_every_truncation_rejected),
        cmocka_unit_test(test_every_bit_flip_rejected),
        cmocka_unit_test(test_framing_errors),
        cmocka_unit_test(test_length_errors),
        cmocka_unit_test(test_field_rules),
        cmocka_unit_test(test_fuzz_mutations),
        cmocka_unit_test(test_field_checks),
        cmocka_unit_test(test_version1_decodes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
