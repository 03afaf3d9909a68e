/* The chaos checker's own tests: planted violations must be rejected by the version check and
 * by the Wing-Gong-Lowe search, and correct concurrent histories accepted by both; answers a
 * correct server never gives, two rows for one request id and an acknowledged write without
 * its row are reported; a history over the old 5,000-operation limit is checked in windows,
 * and a violation planted in it is caught. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "chist.h"
#include "clin.h"
#include "cpg.h"

#include <stdlib.h>

/* W(value, expected, version, invoke, complete, outcome) and R(value, version, ...);
 * B(value, request_id, target, expected, version, invoke, complete, outcome): a rollback. */
#define B(v, rid, t, e, ver, i, c, o)                                                              \
    "{\"client\":3,\"op\":\"rollback\",\"key\":\"k\",\"value\":\"" v "\",\"target_version\":" #t   \
    ",\"expected_version\":" #e ",\"version\":" #ver ",\"request_id\":\"" rid "\",\"invoke\":" #i  \
    ",\"complete\":" #c ",\"outcome\":\"" o "\",\"status\":200}"
#define W(v, e, ver, i, c, o)                                                                      \
    "{\"client\":1,\"op\":\"write\",\"key\":\"k\",\"value\":\"" v "\",\"expected_version\":" #e    \
    ",\"version\":" #ver ",\"request_id\":\"" v "\",\"invoke\":" #i ",\"complete\":" #c            \
    ",\"outcome\":\"" o "\",\"status\":200}"
#define R(v, ver, i, c)                                                                            \
    "{\"client\":2,\"op\":\"read\",\"key\":\"k\",\"value\":" v ",\"version\":" #ver                \
    ",\"invoke\":" #i ",\"complete\":" #c ",\"outcome\":\"ok\",\"status\":200}"

struct seen {
    int count;
    char kinds[256];
};

static void collect(void *ud, const char *kind, const char *key, const char *msg)
{
    struct seen *s = ud;
    (void)key;
    (void)msg;
    s->count++;
    strncat(s->kinds, kind, sizeof(s->kinds) - strlen(s->kinds) - 2);
    strcat(s->kinds, ";");
}

static void load(struct chist *h, const char *const *lines)
{
    char err[256];
    h->ops = NULL;
    h->n = 0;
    for (size_t i = 0; lines[i] != NULL; i++) {
        struct chist_op op;
        int rc = chist_parse_line(lines[i], i + 1, &op, err, sizeof(err));
        if (rc != 0) {
            fail_msg("line %zu does not parse: %s", i + 1, err);
        }
        assert_int_equal(chist_append(h, &op), 0);
    }
}

/* Both checks on LINES; EXPECT_KIND NULL means accepted, else the kind the version check
 * must name. */
static void check(const char *const *lines, const char *expect_kind)
{
    struct chist h;
    struct seen s = {0};
    load(&h, lines);
    long v = clin_check_versions(h.ops, h.n, collect, &s);
    enum clin_wgl_result w = clin_wgl(h.ops, h.n, 1000000);
    if (expect_kind == NULL) {
        if (v != 0) {
            fail_msg("a correct history was rejected: %s", s.kinds);
        }
        assert_int_equal(w, CLIN_LINEARIZABLE);
    } else {
        assert_true(v > 0);
        if (strstr(s.kinds, expect_kind) == NULL) {
            fail_msg("expected a \"%s\" violation, got: %s", expect_kind, s.kinds);
        }
        assert_int_equal(w, CLIN_NOT_LINEARIZABLE);
    }
    chist_free(&h);
}

static void test_concurrent_history_accepted(void **state)
{
    (void)state;
    const char *lines[] = {
        R("null", 0, 0, 5),
        W("a", 0, 1, 1, 20, "ok"),
        /* Concurrent with the write: may see either state. */
        R("\"a\"", 1, 2, 8),
        R("null", 0, 3, 9),
        W("b", 1, 2, 21, 40, "ok"),
        W("x", 1, -1, 22, 41, "fail"), /* lost the race: a 409 */
        R("\"b\"", 2, 30, 50),
        /* Unknown outcome, observed: it happened as version 3. */
        W("c", 2, -1, 45, 100, "unknown"),
        R("\"c\"", 3, 60, 70),
        /* Unknown outcome, never observed: it may not have happened. */
        W("d", 3, -1, 71, 200, "unknown"),
        R("\"c\"", 3, 110, 120),
        NULL,
    };
    check(lines, NULL);
}

static void test_sequential_history_accepted(void **state)
{
    (void)state;
    const char *lines[] = {
        W("a", 0, 1, 0, 1, "ok"),
        R("\"a\"", 1, 2, 3),
        W("b", 1, 2, 4, 5, "ok"),
        R("\"b\"", 2, 6, 7),
        W("c", 2, 3, 8, 9, "ok"),
        R("\"c\"", 3, 10, 11),
        NULL,
    };
    check(lines, NULL);
}

static void test_stale_read_rejected(void **state)
{
    (void)state;
    const char *lines[] = {
        W("a", 0, 1, 0, 10, "ok"),
        W("b", 1, 2, 11, 100, "ok"),
        R("\"b\"", 2, 20, 30), /* b is visible (its write is still in flight) ... */
        R("\"a\"", 1, 40, 50), /* ... and then it is not: stale */
        NULL,
    };
    check(lines, "stale read");
}

static void test_lost_write_rejected(void **state)
{
    (void)state;
    const char *lines[] = {
        W("a", 0, 1, 0, 10, "ok"),
        W("b", 1, 2, 11, 20, "ok"),
        R("\"a\"", 1, 30, 40), /* b was acknowledged, then is gone */
        NULL,
    };
    check(lines, "lost write");
}

static void test_two_writes_one_version_rejected(void **state)
{
    (void)state;
    const char *lines[] = {
        W("a", 0, 1, 0, 10, "ok"),
        W("b", 0, 1, 5, 15, "ok"), /* concurrent creates, both acknowledged as version 1 */
        NULL,
    };
    check(lines, "duplicate version");
}

static void test_never_written_value_rejected(void **state)
{
    (void)state;
    const char *lines[] = {
        W("a", 0, 1, 0, 10, "ok"),
        R("\"zz\"", 1, 20, 30),
        NULL,
    };
    check(lines, "value never written");
}

static void test_failed_write_visible_rejected(void **state)
{
    (void)state;
    const char *lines[] = {
        W("a", 0, 1, 0, 10, "ok"),
        W("b", 1, -1, 11, 20, "fail"),
        R("\"b\"", 2, 30, 40),
        NULL,
    };
    check(lines, "failed write visible");
}

static void test_read_before_write_rejected(void **state)
{
    (void)state;
    /* A read that completed before the write of its value began. */
    const char *lines[] = {
        R("\"a\"", 1, 0, 5),
        W("a", 0, 1, 10, 20, "ok"),
        NULL,
    };
    struct chist h;
    struct seen s = {0};
    load(&h, lines);
    assert_true(clin_check_versions(h.ops, h.n, collect, &s) > 0);
    assert_int_equal(clin_wgl(h.ops, h.n, 1000000), CLIN_NOT_LINEARIZABLE);
    chist_free(&h);
}

static void test_wgl_budget(void **state)
{
    (void)state;
    const char *lines[] = {W("a", 0, 1, 0, 10, "ok"), R("\"a\"", 1, 20, 30), NULL};
    struct chist h;
    load(&h, lines);
    assert_int_equal(clin_wgl(h.ops, h.n, 1), CLIN_TOO_BIG);
    chist_free(&h);
}

static void test_bad_lines_refused(void **state)
{
    (void)state;
    char err[256];
    struct chist_op op;
    const char *bad[] = {
        "not json",
        "[1]",
        "{\"client\":1,\"op\":\"delete\",\"key\":\"k\",\"invoke\":0,\"complete\":1,"
        "\"outcome\":\"ok\"}",
        "{\"client\":1,\"op\":\"read\",\"key\":\"k\",\"invoke\":0,\"complete\":1,"
        "\"outcome\":\"maybe\"}",
        "{\"client\":1,\"op\":\"read\",\"key\":\"k\",\"invoke\":5,\"complete\":1,"
        "\"outcome\":\"ok\"}",
        "{\"client\":1,\"op\":\"write\",\"key\":\"k\",\"invoke\":0,\"complete\":1,"
        "\"outcome\":\"ok\",\"value\":\"a\"}",
        "{\"client\":1,\"op\":\"read\",\"key\":7,\"invoke\":0,\"complete\":1,\"outcome\":\"ok\"}",
        NULL,
    };
    for (size_t i = 0; bad[i] != NULL; i++) {
        err[0] = '\0';
        assert_int_equal(chist_parse_line(bad[i], 3, &op, err, sizeof(err)), -1);
        assert_non_null(strstr(err, "history line 3"));
    }
    struct chist h;
    assert_int_equal(chist_load("/nonexistent/history.jsonl", &h, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "cannot open history"));
}

static void test_rollback_history_accepted(void **state)
{
    (void)state;
    /* A rollback writes an older version's value again, as a new version. */
    const char *lines[] = {
        W("a", 0, 1, 0, 10, "ok"),
        W("b", 1, 2, 11, 20, "ok"),
        B("a", "r1", 1, 2, 3, 21, 30, "ok"),
        R("\"a\"", 3, 31, 40),
        W("c", 3, 4, 41, 50, "ok"),
        /* An unknown rollback, observed: it happened as version 5. */
        B("b", "r2", 2, 4, -1, 51, 200, "unknown"),
        R("\"b\"", 5, 60, 70),
        NULL,
    };
    check(lines, NULL);
}

static void test_rollback_stale_read_rejected(void **state)
{
    (void)state;
    const char *lines[] = {
        W("a", 0, 1, 0, 10, "ok"),
        W("b", 1, 2, 11, 20, "ok"),
        B("a", "r1", 1, 2, 3, 21, 30, "ok"),
        R("\"b\"", 2, 31, 40), /* the rollback was acknowledged: b is stale */
        NULL,
    };
    check(lines, "lost write");
}

static void test_failed_rollback_visible_rejected(void **state)
{
    (void)state;
    const char *lines[] = {
        W("a", 0, 1, 0, 10, "ok"),
        W("b", 1, 2, 11, 20, "ok"),
        B("a", "r1", 1, 2, -1, 21, 30, "fail"),
        R("\"a\"", 3, 31, 40), /* version 3 holding a: only the failed rollback wrote that */
        NULL,
    };
    check(lines, "failed write visible");
}

/* ---- answers and rows ---- */

static void test_unexpected_answers_rejected(void **state)
{
    (void)state;
    const char *lines[] = {
        /* A retry of an identical write answered 400 (issue 14's first hole). */
        "{\"client\":1,\"op\":\"write\",\"key\":\"k\",\"value\":\"a\",\"expected_version\":0,"
        "\"version\":-1,\"request_id\":\"a\",\"invoke\":0,\"complete\":9,\"outcome\":\"fail\","
        "\"status\":400,\"retries\":1}",
        /* A first attempt answered 422 (the chaos schema accepts every value it sends). */
        "{\"client\":1,\"op\":\"write\",\"key\":\"k\",\"value\":\"b\",\"expected_version\":0,"
        "\"version\":-1,\"request_id\":\"b\",\"invoke\":0,\"complete\":9,\"outcome\":\"fail\","
        "\"status\":422}",
        /* Not definitive or correct: none of these is a violation. */
        "{\"client\":1,\"op\":\"write\",\"key\":\"k\",\"value\":\"c\",\"expected_version\":0,"
        "\"version\":-1,\"request_id\":\"c\",\"invoke\":0,\"complete\":9,\"outcome\":\"unknown\","
        "\"status\":504,\"retries\":3}",
        "{\"client\":1,\"op\":\"write\",\"key\":\"k\",\"value\":\"d\",\"expected_version\":0,"
        "\"version\":-1,\"request_id\":\"d\",\"invoke\":0,\"complete\":9,\"outcome\":\"fail\","
        "\"status\":409,\"retries\":2}",
        "{\"client\":1,\"op\":\"write\",\"key\":\"k\",\"value\":\"e\",\"expected_version\":0,"
        "\"version\":1,\"request_id\":\"e\",\"invoke\":0,\"complete\":9,\"outcome\":\"ok\","
        "\"status\":201,\"retries\":1}",
        R("null", 0, 10, 20),
        "{\"client\":2,\"op\":\"read\",\"key\":\"k\",\"value\":null,\"version\":-1,"
        "\"invoke\":0,\"complete\":9,\"outcome\":\"fail\",\"status\":500}",
        NULL,
    };
    struct chist h;
    struct seen s = {0};
    load(&h, lines);
    assert_int_equal(chist_check_answers(&h, collect, &s), 3);
    assert_string_equal(s.kinds, "retry refused;unexpected answer;unexpected answer;");
    chist_free(&h);
}

/* Rows for cpg_check_rows(): request id, key, value, version, revision. */
static struct cpg_row row(const char *rid, const char *value, long long version, long long revision)
{
    return (struct cpg_row){
        .request_id = rid, .key = "k", .value = value, .version = version, .revision = revision};
}

static const char *const acked[] = {
    "{\"client\":1,\"op\":\"write\",\"key\":\"k\",\"value\":\"a\",\"expected_version\":0,"
    "\"version\":1,\"revision\":7,\"request_id\":\"a\",\"invoke\":0,\"complete\":9,"
    "\"outcome\":\"ok\",\"status\":201}",
    "{\"client\":1,\"op\":\"write\",\"key\":\"k\",\"value\":\"b\",\"expected_version\":1,"
    "\"version\":2,\"revision\":9,\"request_id\":\"b\",\"invoke\":10,\"complete\":19,"
    "\"outcome\":\"ok\",\"status\":200}",
    NULL,
};

/* Runs cpg_check_rows() on the two acknowledged writes above and ROWS; returns the kinds. */
static long check_rows(struct cpg_row *rows, size_t n, struct seen *s)
{
    struct chist h;
    struct cpg_summary sum = {0};
    load(&h, acked);
    long v = cpg_check_rows(&h, rows, n, &sum, collect, s);
    chist_free(&h);
    return v;
}

static void test_rows_match_accepted(void **state)
{
    (void)state;
    struct cpg_row rows[] = {row("b", "b", 2, 9), row("a", "a", 1, 7)};
    struct seen s = {0};
    assert_int_equal(check_rows(rows, 2, &s), 0);
}

static void test_two_rows_one_request_id_rejected(void **state)
{
    (void)state;
    /* The write of request id b applied twice (as versions 2 and 3): one revision per request
     * id is broken although every acknowledged answer has its row. */
    struct cpg_row rows[] = {row("a", "a", 1, 7), row("b", "b", 2, 9), row("b", "b", 3, 10)};
    struct seen s = {0};
    assert_int_equal(check_rows(rows, 3, &s), 1);
    assert_string_equal(s.kinds, "duplicate request id;");
}

static void test_acked_without_row_rejected(void **state)
{
    (void)state;
    struct cpg_row rows[] = {row("a", "a", 1, 7)};
    struct seen s = {0};
    assert_int_equal(check_rows(rows, 1, &s), 1);
    assert_string_equal(s.kinds, "lost write;");
}

static void test_acked_with_other_revision_rejected(void **state)
{
    (void)state;
    struct cpg_row rows[] = {row("a", "a", 1, 7), row("b", "b", 2, 8)};
    struct seen s = {0};
    assert_int_equal(check_rows(rows, 2, &s), 1);
    assert_string_equal(s.kinds, "wrong revision row;");
}

/* ---- histories over the old Wing-Gong-Lowe limit ---- */

#define BIG 12000 /* operations on one key; the old limit skipped keys above 5,000 */

static void add_op(struct chist *h, enum chist_kind kind, int64_t version, int64_t expected,
                   int64_t invoke, int64_t complete, enum chist_outcome outcome, size_t line)
{
    char value[32];
    snprintf(value, sizeof(value), "v%lld", (long long)version);
    struct chist_op op = {.client = kind == CHIST_WRITE ? 1 : 2,
                          .kind = kind,
                          .key = strdup("k"),
                          .value = version > 0 ? strdup(value) : NULL,
                          .request_id = kind == CHIST_WRITE ? strdup(value) : NULL,
                          .expected_version = expected,
                          .version = version,
                          .revision = -1,
                          .invoke = invoke,
                          .complete = complete,
                          .outcome = outcome,
                          .status = 200,
                          .line = line};
    assert_non_null(op.key);
    assert_int_equal(chist_append(h, &op), 0);
}

/* BIG operations on one key: pairs of a write and an overlapping read (which sees the new
 * version), each pair quiescent from the next. When STALE is set, one read in the middle
 * begins after a write was acknowledged and sees the version before it. */
static void big_history(struct chist *h, bool stale)
{
    h->ops = NULL;
    h->n = 0;
    for (int64_t i = 0; i < BIG / 2; i++) {
        int64_t t = i * 100;
        add_op(h, CHIST_WRITE, i + 1, i, t, t + 60, CHIST_OK, (size_t)(2 * i + 1));
        if (stale && i == BIG / 4) {
            /* Begins after the write of version i+1 was acknowledged, sees version i. */
            add_op(h, CHIST_READ, i, 0, t + 70, t + 90, CHIST_OK, (size_t)(2 * i + 2));
        } else {
            add_op(h, CHIST_READ, i + 1, 0, t + 50, t + 90, CHIST_OK, (size_t)(2 * i + 2));
        }
    }
}

static void test_big_history_checked_in_windows(void **state)
{
    (void)state;
    struct chist h;
    struct clin_summary sum;
    struct seen s = {0};
    big_history(&h, false);
    assert_int_equal(clin_check_history(&h, 5000, 50000000, &sum, collect, &s), 0);
    assert_int_equal(s.count, 0);
    /* Checked whole, not skipped: every window decided, none too big. */
    assert_true(sum.wgl_windows > 1);
    assert_int_equal(sum.wgl_checked, sum.wgl_windows);
    assert_int_equal(sum.wgl_too_big, 0);
    chist_free(&h);
}

static void test_big_history_violation_caught(void **state)
{
    (void)state;
    struct chist h;
    struct clin_summary sum;
    struct seen s = {0};
    big_history(&h, true);
    assert_true(clin_check_history(&h, 5000, 50000000, &sum, collect, &s) > 0);
    assert_non_null(strstr(s.kinds, "lost write"));
    assert_int_equal(sum.wgl_rejected, 1); /* the window holding the stale read */
    assert_int_equal(sum.wgl_too_big, 0);
    chist_free(&h);
}

static void test_window_over_limit_is_a_violation(void **state)
{
    (void)state;
    /* A write of unknown outcome at the start never completes, so no quiescent point follows:
     * one window of BIG operations, over the limit. It must fail the check, not be skipped. */
    struct chist h;
    struct clin_summary sum;
    struct seen s = {0};
    big_history(&h, false);
    add_op(&h, CHIST_WRITE, -1, 0, -5, -1, CHIST_UNKNOWN, BIG + 1);
    free(h.ops[h.n - 1].value);
    h.ops[h.n - 1].value = strdup("never-seen");
    assert_non_null(h.ops[h.n - 1].value);
    assert_true(clin_check_history(&h, 5000, 50000000, &sum, collect, &s) > 0);
    assert_string_equal(s.kinds, "linearizability not checked;");
    assert_int_equal(sum.wgl_too_big, 1);
    chist_free(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_concurrent_history_accepted),
        cmocka_unit_test(test_sequential_history_accepted),
        cmocka_unit_test(test_stale_read_rejected),
        cmocka_unit_test(test_lost_write_rejected),
        cmocka_unit_test(test_two_writes_one_version_rejected),
        cmocka_unit_test(test_never_written_value_rejected),
        cmocka_unit_test(test_failed_write_visible_rejected),
        cmocka_unit_test(test_read_before_write_rejected),
        cmocka_unit_test(test_wgl_budget),
        cmocka_unit_test(test_bad_lines_refused),
        cmocka_unit_test(test_rollback_history_accepted),
        cmocka_unit_test(test_rollback_stale_read_rejected),
        cmocka_unit_test(test_failed_rollback_visible_rejected),
        cmocka_unit_test(test_unexpected_answers_rejected),
        cmocka_unit_test(test_rows_match_accepted),
        cmocka_unit_test(test_two_rows_one_request_id_rejected),
        cmocka_unit_test(test_acked_without_row_rejected),
        cmocka_unit_test(test_acked_with_other_revision_rejected),
        cmocka_unit_test(test_big_history_checked_in_windows),
        cmocka_unit_test(test_big_history_violation_caught),
        cmocka_unit_test(test_window_over_limit_is_a_violation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
