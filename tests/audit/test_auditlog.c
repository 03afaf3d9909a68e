/*
 * auditlog: the client-side history checker of `conclave audit`. Histories are built here with
 * raft/revision.c's own hash, as the server builds them, and then broken one way at a time:
 * each break must be found, at the right revision, with the right complaint.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <sodium.h>

#include "audit/auditlog.h"
#include "raft/revision.h"

#define T0 1795000000000000LL /* 2026-11-18T...Z, microseconds */

/* A history under construction: the JSON revisions and the chain's last hash. */
struct hist {
    json_t *revs;
    uint8_t last[REVISION_HASH_SIZE];
    uint64_t next_revision;
};

static void format_time(int64_t us, char out[80])
{
    time_t secs = (time_t)(us / 1000000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    snprintf(out, 80, "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(us % 1000000));
}

/* Appends a revision of KEY at VERSION with OP and CONTENT (canonical JSON text, or NULL for a
 * delete), hashed and chained like the state machine does. */
static void add(struct hist *h, const char *key, uint64_t version, enum revision_op op,
                const char *content, uint64_t source_version)
{
    struct revision r = {0};
    char when[80], prev[65], hash[65];
    r.revision = h->next_revision;
    r.project = "shop";
    r.key = (char *)key;
    r.version = version;
    r.op = op;
    r.content = (uint8_t *)content;
    r.content_len = content ? strlen(content) : 0;
    r.source_version = source_version;
    r.actor = "user:alice";
    r.request_id = version % 2 ? "req-odd" : NULL;
    r.created_at = T0 + (int64_t)h->next_revision * 1000;
    r.raft_index = 10 + h->next_revision * 2;
    r.raft_term = 3;
    memcpy(r.prev_hash, h->last, sizeof(h->last));
    revision_compute_hash(&r, r.hash);
    format_time(r.created_at, when);
    sodium_bin2hex(prev, sizeof(prev), r.prev_hash, 32);
    sodium_bin2hex(hash, sizeof(hash), r.hash, 32);
    json_error_t jerr;
    json_t *c = content ? json_loads(content, JSON_DECODE_ANY, &jerr) : json_null();
    assert_non_null(c);
    json_t *rev =
        json_pack("{s:I,s:s,s:I,s:s,s:o,s:o,s:n,s:n,s:s,s:o,s:s,s:I,s:I,s:s,s:s}", "revision",
                  (json_int_t)r.revision, "key", key, "version", (json_int_t)version, "op",
                  revision_op_name(op), "content", c, "source_version",
                  source_version ? json_integer((json_int_t)source_version) : json_null(),
                  "schema_id", "schema_hash", "actor", r.actor, "request_id",
                  r.request_id ? json_string(r.request_id) : json_null(), "created_at", when,
                  "raft_index", (json_int_t)r.raft_index, "raft_term", (json_int_t)r.raft_term,
                  "prev_hash", prev, "hash", hash);
    assert_non_null(rev);
    json_array_append_new(h->revs, rev);
    memcpy(h->last, r.hash, sizeof(h->last));
    h->next_revision += 3; /* revision numbers are cluster-wide: a project's skip */
}

/* a: v1 put, v2 put, v3 delete, v4 put (recreated); b: v1 put, v2 rollback to 1. */
static json_t *good_history(void)
{
    struct hist h = {.revs = json_array(), .next_revision = 5};
    add(&h, "a", 1, REVISION_PUT, "{\"n\":1}", 0);
    add(&h, "b", 1, REVISION_PUT, "[1,2.5,\"x\"]", 0);
    add(&h, "a", 2, REVISION_PUT, "{\"n\":2,\"z\":null}", 0);
    add(&h, "b", 2, REVISION_PUT, "\"two\"", 0);
    add(&h, "a", 3, REVISION_DELETE, NULL, 0);
    add(&h, "b", 3, REVISION_ROLLBACK, "[1,2.5,\"x\"]", 1);
    add(&h, "a", 4, REVISION_PUT, "{\"n\":4}", 0);
    return h.revs;
}

/* Feeds REVS; returns the index of the revision refused (-1 when all pass) and its problem. */
static int run(const json_t *revs, struct auditlog_problem *p, struct alog **keep)
{
    struct alog *a = auditlog_new("shop");
    assert_non_null(a);
    int bad = -1;
    for (size_t i = 0; i < json_array_size(revs); i++) {
        int rc = auditlog_feed(a, json_array_get(revs, i), p);
        if (rc != ALOG_OK) {
            assert_int_equal(rc, ALOG_PROBLEM);
            bad = (int)i;
            break;
        }
    }
    if (keep != NULL) {
        *keep = a;
    } else {
        auditlog_free(a);
    }
    return bad;
}

static void expect_problem(json_t *revs, int index, uint64_t revision, const char *prefix)
{
    struct auditlog_problem p;
    int bad = run(revs, &p, NULL);
    if (bad != index || p.revision != revision || strncmp(p.text, prefix, strlen(prefix)) != 0) {
        fail_msg("expected \"%s...\" at index %d (revision %llu), got index %d revision %llu: %s",
                 prefix, index, (unsigned long long)revision, bad, (unsigned long long)p.revision,
                 bad >= 0 ? p.text : "(no problem)");
    }
    json_decref(revs);
}

static uint64_t rev_no(const json_t *revs, size_t i)
{
    return (uint64_t)json_integer_value(json_object_get(json_array_get(revs, i), "revision"));
}

static void test_good_history_and_fold(void **state)
{
    (void)state;
    json_t *revs = good_history();
    struct auditlog_problem p;
    struct alog *a = NULL;
    assert_int_equal(run(revs, &p, &a), -1);
    assert_int_equal(auditlog_revisions(a), 7);
    assert_int_equal(auditlog_keys(a), 2);
    assert_int_equal(auditlog_last_revision(a), rev_no(revs, 6));
    assert_string_equal(auditlog_chain_head(a),
                        json_string_value(json_object_get(json_array_get(revs, 6), "hash")));
    json_t *fold = auditlog_fold(a);
    assert_int_equal(json_object_size(fold), 2);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(fold, "a"), "version")), 4);
    json_t *bc = json_object_get(json_object_get(fold, "b"), "content");
    assert_int_equal(json_array_size(bc), 3);
    /* The live configs as the API lists them agree; every kind of difference is named. */
    json_t *live = json_array();
    const char *k;
    json_t *c;
    json_object_foreach(fold, k, c)
    {
        json_array_append_new(live, json_deep_copy(c));
    }
    assert_int_equal(auditlog_compare_live(a, live, &p), ALOG_OK);
    json_object_set_new(json_array_get(live, 0), "version", json_integer(9));
    assert_int_equal(auditlog_compare_live(a, live, &p), ALOG_PROBLEM);
    assert_non_null(strstr(p.text, "has version 9"));
    json_array_remove(live, 0);
    assert_int_equal(auditlog_compare_live(a, live, &p), ALOG_PROBLEM);
    assert_non_null(strstr(p.text, "missing from the configs"));
    json_array_append_new(live, json_pack("{s:s,s:i}", "key", "ghost", "version", 1));
    json_array_append_new(live, json_deep_copy(json_object_get(fold, "a")));
    assert_int_equal(auditlog_compare_live(a, live, &p), ALOG_PROBLEM);
    assert_non_null(strstr(p.text, "config ghost is live"));
    json_decref(live);
    json_decref(fold);
    auditlog_free(a);
    json_decref(revs);
}

static void test_tampered_content(void **state)
{
    (void)state;
    json_t *revs = good_history();
    json_object_set_new(json_array_get(revs, 2), "content", json_pack("{s:i}", "n", 200));
    expect_problem(revs, 2, rev_no(revs, 2), "hash mismatch");
}

static void test_tampered_actor_and_time(void **state)
{
    (void)state;
    json_t *revs = good_history();
    json_object_set_new(json_array_get(revs, 4), "actor", json_string("user:mallory"));
    expect_problem(revs, 4, rev_no(revs, 4), "hash mismatch");
    revs = good_history();
    json_object_set_new(json_array_get(revs, 1), "created_at", json_string("2030-01-01T00:00:00Z"));
    expect_problem(revs, 1, rev_no(revs, 1), "hash mismatch");
}

static void test_deleted_row(void **state)
{
    (void)state;
    json_t *revs = good_history();
    json_array_remove(revs, 3);
    /* The revision after the hole no longer chains to its predecessor. */
    expect_problem(revs, 3, rev_no(revs, 3), "prev_hash mismatch");
    revs = good_history();
    json_array_remove(revs, 0);
    expect_problem(revs, 0, rev_no(revs, 0), "prev_hash mismatch");
}

static void test_reordered_rows(void **state)
{
    (void)state;
    /* Swapped in place: out of order by revision number. */
    json_t *revs = good_history();
    json_t *x = json_incref(json_array_get(revs, 2));
    json_array_set(revs, 2, json_array_get(revs, 3));
    json_array_set_new(revs, 3, x);
    expect_problem(revs, 2, rev_no(revs, 2), "prev_hash mismatch");
    /* Revision numbers swapped too, so the order looks right: the hashes still tell. */
    revs = good_history();
    json_t *r2 = json_array_get(revs, 2), *r3 = json_array_get(revs, 3);
    json_t *n2 = json_incref(json_object_get(r2, "revision"));
    json_object_set(r2, "revision", json_object_get(r3, "revision"));
    json_object_set_new(r3, "revision", n2);
    x = json_incref(r2);
    json_array_set(revs, 2, r3);
    json_array_set_new(revs, 3, x);
    expect_problem(revs, 2, rev_no(revs, 2), "prev_hash mismatch");
}

static void test_version_rules(void **state)
{
    (void)state;
    struct hist h = {.revs = json_array(), .next_revision = 1};
    add(&h, "a", 1, REVISION_PUT, "1", 0);
    add(&h, "a", 3, REVISION_PUT, "3", 0);
    expect_problem(h.revs, 1, 4, "version gap");

    h = (struct hist){.revs = json_array(), .next_revision = 1};
    add(&h, "a", 1, REVISION_PUT, "1", 0);
    add(&h, "a", 1, REVISION_PUT, "1", 0);
    expect_problem(h.revs, 1, 4, "duplicate version");

    h = (struct hist){.revs = json_array(), .next_revision = 1};
    add(&h, "a", 2, REVISION_PUT, "2", 0);
    expect_problem(h.revs, 0, 1, "version gap");

    h = (struct hist){.revs = json_array(), .next_revision = 1};
    add(&h, "a", 1, REVISION_DELETE, NULL, 0);
    expect_problem(h.revs, 0, 1, "delete of key a, which is not live");

    h = (struct hist){.revs = json_array(), .next_revision = 1};
    add(&h, "a", 1, REVISION_PUT, "1", 0);
    add(&h, "a", 2, REVISION_ROLLBACK, "1", 2);
    expect_problem(h.revs, 1, 4, "rollback of key a to version 2");
}

static void test_malformed_members(void **state)
{
    (void)state;
    static const char *const members[] = {"revision",   "key",  "version",   "op",    "content",
                                          "created_at", "hash", "prev_hash", "actor", "raft_index"};
    /* The whole message is compared: "revision" is in the message's own words and "hash" in
     * the name "prev_hash", so looking for the member's name alone would always succeed. */
    char want[128];
    for (size_t i = 0; i < sizeof(members) / sizeof(members[0]); i++) {
        json_t *revs = good_history();
        json_object_del(json_array_get(revs, 1), members[i]);
        struct auditlog_problem p;
        assert_int_equal(run(revs, &p, NULL), 1);
        snprintf(want, sizeof(want), "unreadable revision: member \"%s\" is missing or malformed",
                 members[i]);
        assert_string_equal(p.text, want);
        json_decref(revs);
    }
    /* A hash that is not hex is unreadable, not merely a mismatch. */
    json_t *revs = good_history();
    json_object_set_new(json_array_get(revs, 0), "hash", json_string("zz"));
    struct auditlog_problem p;
    assert_int_equal(run(revs, &p, NULL), 0);
    assert_string_equal(p.text, "unreadable revision: member \"hash\" is missing or malformed");
    json_decref(revs);
}

static void test_broken_checker_stays_broken(void **state)
{
    (void)state;
    json_t *revs = good_history();
    json_object_set_new(json_array_get(revs, 0), "actor", json_string("x"));
    struct alog *a = auditlog_new("shop");
    struct auditlog_problem p, q;
    assert_int_equal(auditlog_feed(a, json_array_get(revs, 0), &p), ALOG_PROBLEM);
    assert_int_equal(auditlog_feed(a, json_array_get(revs, 1), &q), ALOG_PROBLEM);
    assert_string_equal(p.text, q.text);
    assert_int_equal(auditlog_revisions(a), 0);
    auditlog_free(a);
    json_decref(revs);
}

static void test_parse_time(void **state)
{
    (void)state;
    int64_t t = 0;
    assert_int_equal(auditlog_parse_time("1970-01-01T00:00:01Z", &t), 0);
    assert_int_equal(t, 1000000);
    assert_int_equal(auditlog_parse_time("1970-01-01T00:00:01.5Z", &t), 0);
    assert_int_equal(t, 1500000);
    assert_int_equal(auditlog_parse_time("1970-01-01T01:00:00.000001+01:00", &t), 0);
    assert_int_equal(t, 1);
    assert_int_equal(auditlog_parse_time("2026-11-22T07:49:44.123456Z", &t), 0);
    assert_int_equal(t, 1795333784123456LL);
    static const char *const bad[] = {"",
                                      "2026-11-22",
                                      "2026-11-22T07:49:44",
                                      "2026-11-22T07:49:44.Z",
                                      "2026-11-22T07:49:44.1234567Z",
                                      "2026-13-22T07:49:44Z",
                                      "2026-11-22T07:49:44Zx",
                                      "2026-11-22 07:49:44Z"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (auditlog_parse_time(bad[i], &t) == 0) {
            fail_msg("\"%s\" parsed as a time", bad[i]);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_history_and_fold),
        cmocka_unit_test(test_tampered_content),
        cmocka_unit_test(test_tampered_actor_and_time),
        cmocka_unit_test(test_deleted_row),
        cmocka_unit_test(test_reordered_rows),
        cmocka_unit_test(test_version_rules),
        cmocka_unit_test(test_malformed_members),
        cmocka_unit_test(test_broken_checker_stays_broken),
        cmocka_unit_test(test_parse_time),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
