/* logfmt: levels, components, the JSON form of a line (escaping, invalid UTF-8, the access
 * log's fields), and the level names. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "server/logfmt.h"

static json_t *parse(const char *line)
{
    char *s = logfmt_json(line, 3, 1765000000123.0);
    assert_non_null(s);
    size_t n = strlen(s);
    assert_true(n > 1 && s[n - 1] == '\n' && strchr(s, '\n') == s + n - 1);
    json_t *j = json_loads(s, 0, NULL);
    free(s);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "time")), "2025-12-06T05:46:40.123Z");
    assert_int_equal(json_integer_value(json_object_get(j, "node")), 3);
    return j;
}

static void test_levels(void **state)
{
    (void)state;
    assert_int_equal(logfmt_level_of("node 2: serving http on 127.0.0.1:8081"), LOGFMT_INFO);
    assert_int_equal(logfmt_level_of("node 2: fatal: raft stopped working: x"), LOGFMT_ERROR);
    assert_int_equal(logfmt_level_of("api: rid=x internal error: y"), LOGFMT_ERROR);
    assert_int_equal(logfmt_level_of("materializer: writing revisions 1..2 failed (attempt 1)"),
                     LOGFMT_WARN);
    assert_int_equal(logfmt_level_of("conclave serve: warning: http.insecure_plaintext is true"),
                     LOGFMT_WARN);
    /* An access line is info even for a 500 or a path holding "error". */
    assert_int_equal(logfmt_level_of("http method=GET path=/v1/error status=500 ms=1.00 rid=a"),
                     LOGFMT_INFO);
    enum logfmt_level lv;
    assert_int_equal(logfmt_parse_level("warn", &lv), 0);
    assert_int_equal(lv, LOGFMT_WARN);
    assert_int_equal(logfmt_parse_level("debug", &lv), -1);
    assert_int_equal(logfmt_parse_level("", &lv), -1);
}

static void test_json_lines(void **state)
{
    (void)state;
    json_t *j = parse("materializer: writing revisions 1..2 failed: \"quoted\"\ttab");
    assert_string_equal(json_string_value(json_object_get(j, "level")), "warn");
    assert_string_equal(json_string_value(json_object_get(j, "component")), "materializer");
    assert_string_equal(json_string_value(json_object_get(j, "msg")),
                        "writing revisions 1..2 failed: \"quoted\"\ttab");
    json_decref(j);
    j = parse("node 3: serving http on 127.0.0.1:8081");
    assert_string_equal(json_string_value(json_object_get(j, "component")), "node");
    assert_string_equal(json_string_value(json_object_get(j, "msg")),
                        "serving http on 127.0.0.1:8081");
    json_decref(j);
    /* No short component before ": ": the whole line is the message. */
    j = parse("a line without a component, {braces}: and more");
    assert_string_equal(json_string_value(json_object_get(j, "component")), "conclave");
    assert_string_equal(json_string_value(json_object_get(j, "msg")),
                        "a line without a component, {braces}: and more");
    json_decref(j);
    /* Invalid UTF-8 is kept readable, not dropped. */
    j = parse("forward: bad \xff\xfe bytes");
    assert_string_equal(json_string_value(json_object_get(j, "msg")), "bad ?? bytes");
    json_decref(j);
}

static void test_access_fields(void **state)
{
    (void)state;
    json_t *j = parse("http method=PUT path=/v1/projects/p/configs/k status=201 ms=2.50 rid=abc-1");
    assert_string_equal(json_string_value(json_object_get(j, "component")), "access");
    assert_string_equal(json_string_value(json_object_get(j, "level")), "info");
    assert_string_equal(json_string_value(json_object_get(j, "method")), "PUT");
    assert_string_equal(json_string_value(json_object_get(j, "path")), "/v1/projects/p/configs/k");
    assert_int_equal(json_integer_value(json_object_get(j, "status")), 201);
    assert_true(json_real_value(json_object_get(j, "ms")) == 2.5);
    assert_string_equal(json_string_value(json_object_get(j, "rid")), "abc-1");
    json_decref(j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_levels),
        cmocka_unit_test(test_json_lines),
        cmocka_unit_test(test_access_fields),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
