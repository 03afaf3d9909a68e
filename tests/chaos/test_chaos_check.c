/* The chaos checker's own tests: planted violations must be rejected by the version check and
 * by the Wing-Gong-Lowe search, and correct concurrent histories accepted by both. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "chist.h"
#include "clin.h"

/* W(value, expected, version, invoke, complete, outcome) and R(value, version, ...). */
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
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
