/*
 * Canonical JSON: the exact bytes the hash chain covers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "jsonschema/canonjson.h"

/* Parses IN and checks that its canonical text is EXPECTED, and that the canonical text is a
 * fixed point (canonicalising it again changes nothing). */
static void check(const char *in, const char *expected)
{
    json_t *v = NULL;
    char err[256], *out = NULL, *again = NULL;
    size_t len = 0, len2 = 0;
    if (canonjson_parse(in, strlen(in), &v, err, sizeof(err)) != 0) {
        fail_msg("parse of %s failed: %s", in, err);
    }
    assert_int_equal(canonjson_dump(v, &out, &len, err, sizeof(err)), 0);
    assert_string_equal(out, expected);
    assert_int_equal(len, strlen(expected));
    json_decref(v);
    assert_int_equal(canonjson_parse(out, len, &v, err, sizeof(err)), 0);
    assert_int_equal(canonjson_dump(v, &again, &len2, err, sizeof(err)), 0);
    assert_string_equal(again, out);
    json_decref(v);
    free(out);
    free(again);
}

static void test_objects_sorted_compact(void **state)
{
    (void)state;
    check("{ \"b\" : 1, \"a\" : [ true, false, null ], \"A\": {} }",
          "{\"A\":{},\"a\":[true,false,null],\"b\":1}");
    /* Byte order of UTF-8: "é" (0xC3 0xA9) sorts after "z". */
    check("{\"\xc3\xa9\": 1, \"z\": 2}", "{\"z\":2,\"\xc3\xa9\":1}");
    check("[]", "[]");
    check("\"top-level string\"", "\"top-level string\"");
}

static void test_numbers(void **state)
{
    (void)state;
    check("[0.1, 1.0, 1.5e300, -0.0, 100, -9223372036854775808, 2.5E-8]",
          "[0.1,1.0,1.5e+300,-0.0,100,-9223372036854775808,2.5e-08]");
    check("[3.141592653589793]", "[3.141592653589793]");
    check("[1e22]", "[1e+22]");
}

static void test_strings_escaped_minimally(void **state)
{
    (void)state;
    check("\"a\\\"b\\\\c\\/d\\u00e9\\n\\t\\u0001\\u007f\"",
          "\"a\\\"b\\\\c/d\xc3\xa9\\n\\t\\u0001\x7f\"");
}

static void test_refusals(void **state)
{
    (void)state;
    json_t *v = (json_t *)1;
    char err[256];
    const char *dup = "{\"a\": 1, \"a\": 2}";
    assert_int_equal(canonjson_parse(dup, strlen(dup), &v, err, sizeof(err)), -1);
    assert_null(v);
    assert_non_null(strstr(err, "duplicate object key"));
    const char *nul = "\"a\\u0000b\"";
    assert_int_equal(canonjson_parse(nul, strlen(nul), &v, err, sizeof(err)), -1);
    const char *big = "[99999999999999999999]";
    assert_int_equal(canonjson_parse(big, strlen(big), &v, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "too big"));
    const char *trailing = "{} x";
    assert_int_equal(canonjson_parse(trailing, strlen(trailing), &v, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "line 1, column"));
    const char *bad_utf8 = "\"\xff\"";
    assert_int_equal(canonjson_parse(bad_utf8, strlen(bad_utf8), &v, err, sizeof(err)), -1);
}

static void test_depth_limit(void **state)
{
    (void)state;
    char buf[2 * (CANONJSON_MAX_DEPTH + 1) + 1];
    json_t *v = NULL;
    char err[256];
    /* Exactly the limit is accepted. */
    memset(buf, '[', CANONJSON_MAX_DEPTH);
    memset(buf + CANONJSON_MAX_DEPTH, ']', CANONJSON_MAX_DEPTH);
    assert_int_equal(canonjson_parse(buf, 2 * CANONJSON_MAX_DEPTH, &v, err, sizeof(err)), 0);
    json_decref(v);
    /* One more level is refused. */
    memset(buf, '[', CANONJSON_MAX_DEPTH + 1);
    memset(buf + CANONJSON_MAX_DEPTH + 1, ']', CANONJSON_MAX_DEPTH + 1);
    assert_int_equal(canonjson_parse(buf, 2 * (CANONJSON_MAX_DEPTH + 1), &v, err, sizeof(err)), -1);
    assert_string_equal(err, "json nests deeper than 128 levels");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_objects_sorted_compact),
        cmocka_unit_test(test_numbers),
        cmocka_unit_test(test_strings_escaped_minimally),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_depth_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
