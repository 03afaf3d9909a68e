/*
 * JSON Schema validation: every supported keyword on a valid and an invalid document, with
 * the exact document pointer and keyword of each failure; compile-time refusals with the
 * schema pointer in the message; and the limits that keep hostile input from crashing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "jsonschema/jsonschema.h"

static json_t *parse(const char *text)
{
    json_error_t e;
    json_t *v = json_loads(text, JSON_DECODE_ANY, &e);
    if (!v)
        fail_msg("test JSON does not parse: %s: %s", text, e.text);
    return v;
}

/* The options compile_text() and assert_refused() use: NULL (the defaults) unless a test
 * sets them, and resets them before it ends. */
static const struct jsonschema_options *options;
static const struct jsonschema_options strict_options = {.strict = true};
static const struct jsonschema_options format_options = {.format_assertion = true};

/* jsonschema_compile(), or jsonschema_compile_ex() when a test set OPTIONS. */
static int compile_with_options(const json_t *schema, struct jsonschema **s, char *err, size_t len)
{
    if (options)
        return jsonschema_compile_ex(schema, options, s, err, len);
    return jsonschema_compile(schema, s, err, len);
}

static struct jsonschema *compile_text(const char *schema_text)
{
    json_t *schema = parse(schema_text);
    struct jsonschema *s = NULL;
    char err[512];
    int rc = compile_with_options(schema, &s, err, sizeof err);
    /* The compiled schema must not depend on the caller's JSON. */
    json_decref(schema);
    if (rc != 0)
        fail_msg("schema %s refused: %s", schema_text, err);
    return s;
}

/* Validates DOC against S, checks that the verdict is the same with and without an error
 * list, and returns the list (NULL when DOC is valid). */
static json_t *validate_value(const struct jsonschema *s, const json_t *doc)
{
    json_t *errors = (json_t *)1;
    int rc = jsonschema_validate(s, doc, &errors);
    assert_int_equal(jsonschema_validate(s, doc, NULL), rc);
    if (rc == 0) {
        assert_null(errors);
        return NULL;
    }
    assert_int_equal(rc, JSONSCHEMA_INVALID);
    assert_non_null(errors);
    assert_true(json_is_array(errors));
    assert_true(json_array_size(errors) > 0);
    return errors;
}

static json_t *run(const char *schema_text, const char *doc_text)
{
    struct jsonschema *s = compile_text(schema_text);
    json_t *doc = parse(doc_text);
    json_t *errors = validate_value(s, doc);
    json_decref(doc);
    jsonschema_free(s);
    return errors;
}

static void assert_valid(const char *schema_text, const char *doc_text)
{
    json_t *errors = run(schema_text, doc_text);
    if (errors) {
        char *dump = json_dumps(errors, JSON_COMPACT);
        fail_msg("%s should be valid against %s, got %s", doc_text, schema_text, dump);
    }
}

struct want {
    const char *path, *keyword;
};

/* Asserts that ERRORS holds exactly N failures with these paths and keywords, in order, and
 * that each has the four documented members. Frees ERRORS. */
static void check_errors(json_t *errors, const struct want *want, size_t n, const char *what)
{
    char *dump = json_dumps(errors, JSON_COMPACT);
    if (json_array_size(errors) != n)
        fail_msg("%s: expected %zu failures, got %s", what, n, dump);
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_array_get(errors, i);
        assert_int_equal(json_object_size(e), 4);
        const char *path = json_string_value(json_object_get(e, "path"));
        const char *keyword = json_string_value(json_object_get(e, "keyword"));
        assert_non_null(json_string_value(json_object_get(e, "schema_path")));
        assert_non_null(json_string_value(json_object_get(e, "message")));
        if (!path || !keyword || strcmp(path, want[i].path) != 0 ||
            strcmp(keyword, want[i].keyword) != 0)
            fail_msg("%s: failure %zu should be at \"%s\" by %s, got %s", what, i, want[i].path,
                     want[i].keyword, dump);
    }
    free(dump);
    json_decref(errors);
}

static void check_invalid(const char *schema_text, const char *doc_text, const struct want *want,
                          size_t n)
{
    json_t *errors = run(schema_text, doc_text);
    if (!errors)
        fail_msg("%s should be invalid against %s", doc_text, schema_text);
    check_errors(errors, want, n, doc_text);
}

#define WANT(...)                                                                                  \
    (const struct want[]){__VA_ARGS__},                                                            \
        sizeof((const struct want[]){__VA_ARGS__}) / sizeof(struct want)
#define assert_invalid(schema, doc, ...) check_invalid(schema, doc, WANT(__VA_ARGS__))

/* Asserts the one failure of DOC has this schema_path and message. */
static void assert_failure(const char *schema_text, const char *doc_text, const char *schema_path,
                           const char *message)
{
    json_t *errors = run(schema_text, doc_text);
    assert_non_null(errors);
    assert_int_equal(json_array_size(errors), 1);
    json_t *e = json_array_get(errors, 0);
    assert_string_equal(json_string_value(json_object_get(e, "schema_path")), schema_path);
    assert_string_equal(json_string_value(json_object_get(e, "message")), message);
    json_decref(errors);
}

static void assert_refused(const char *schema_text, const char *message)
{
    json_t *schema = parse(schema_text);
    struct jsonschema *s = (struct jsonschema *)1;
    char err[512];
    assert_int_equal(compile_with_options(schema, &s, err, sizeof err), JSONSCHEMA_EBADSCHEMA);
    assert_null(s);
    assert_string_equal(err, message);
    json_decref(schema);
}

/* For messages that quote a PCRE2 error text: only our part is asserted. */
static void assert_refused_prefix(const char *schema_text, const char *prefix)
{
    json_t *schema = parse(schema_text);
    struct jsonschema *s = (struct jsonschema *)1;
    char err[512];
    assert_int_equal(compile_with_options(schema, &s, err, sizeof err), JSONSCHEMA_EBADSCHEMA);
    assert_null(s);
    if (strncmp(err, prefix, strlen(prefix)) != 0)
        fail_msg("message \"%s\" should start with \"%s\"", err, prefix);
    json_decref(schema);
}

/* N arrays nested in each other: [[[...]]]. */
static json_t *nested_arrays(int n)
{
    json_t *root = json_array(), *cur = root;
    for (int i = 1; i < n; i++) {
        json_t *child = json_array();
        json_array_append_new(cur, child);
        cur = child;
    }
    return root;
}

/* ---- types -------------------------------------------------------------------------- */

static void test_type_single(void **state)
{
    (void)state;
    assert_valid("{\"type\":\"string\"}", "\"x\"");
    assert_invalid("{\"type\":\"string\"}", "1", {"", "type"});
    assert_failure("{\"type\":\"string\"}", "1", "/type", "must be string, got integer");
    assert_valid("{\"type\":\"object\"}", "{}");
    assert_invalid("{\"type\":\"object\"}", "[]", {"", "type"});
    assert_valid("{\"type\":\"array\"}", "[]");
    assert_invalid("{\"type\":\"array\"}", "{}", {"", "type"});
    assert_valid("{\"type\":\"boolean\"}", "false");
    assert_invalid("{\"type\":\"boolean\"}", "0", {"", "type"});
    assert_valid("{\"type\":\"null\"}", "null");
    assert_invalid("{\"type\":\"null\"}", "false", {"", "type"});
    assert_valid("{\"type\":\"number\"}", "1");
    assert_valid("{\"type\":\"number\"}", "1.5");
    assert_invalid("{\"type\":\"number\"}", "\"1\"", {"", "type"});
}

static void test_type_integer_accepts_integral_reals(void **state)
{
    (void)state;
    const char *schema = "{\"type\":\"integer\"}";
    assert_valid(schema, "1");
    assert_valid(schema, "1.0");
    assert_valid(schema, "-0.0");
    assert_valid(schema, "1e300");
    assert_invalid(schema, "1.5", {"", "type"});
    assert_failure(schema, "1.5", "/type", "must be integer, got number");
    assert_invalid(schema, "\"1\"", {"", "type"});
}

static void test_type_list(void **state)
{
    (void)state;
    const char *schema = "{\"type\":[\"string\",\"null\"]}";
    assert_valid(schema, "null");
    assert_valid(schema, "\"a\"");
    assert_failure(schema, "3", "/type", "must be null or string, got integer");
}

/* ---- enum, const -------------------------------------------------------------------- */

static void test_enum(void **state)
{
    (void)state;
    const char *schema = "{\"enum\":[\"a\",1,{\"x\":[1,2]},null]}";
    assert_valid(schema, "\"a\"");
    assert_valid(schema, "1.0");
    assert_valid(schema, "{\"x\":[1.0,2]}");
    assert_valid(schema, "null");
    assert_invalid(schema, "\"b\"", {"", "enum"});
    assert_invalid(schema, "{\"x\":[2,1]}", {"", "enum"});
    assert_failure(schema, "true", "/enum", "must be one of [\"a\",1,{\"x\":[1,2]},null]");
}

static void test_const(void **state)
{
    (void)state;
    const char *schema = "{\"const\":{\"a\":1,\"b\":[true,null]}}";
    assert_valid(schema, "{\"b\":[true,null],\"a\":1.0}");
    assert_invalid(schema, "{\"a\":1}", {"", "const"});
    assert_invalid(schema, "{\"a\":1,\"b\":[true,null],\"c\":0}", {"", "const"});
    assert_valid("{\"const\":null}", "null");
    assert_invalid("{\"const\":null}", "false", {"", "const"});
    assert_invalid("{\"const\":0}", "false", {"", "const"});
    assert_failure("{\"const\":5}", "6", "/const", "must be 5");
}

/* ---- numbers ------------------------------------------------------------------------ */

static void test_minimum_maximum(void **state)
{
    (void)state;
    assert_valid("{\"minimum\":10}", "10");
    assert_valid("{\"minimum\":10}", "\"not a number\"");
    assert_invalid("{\"minimum\":10}", "9.99", {"", "minimum"});
    assert_failure("{\"minimum\":10}", "3", "/minimum", "must be >= 10, got 3");
    assert_valid("{\"maximum\":1.5}", "1.5");
    assert_failure("{\"maximum\":1.5}", "2", "/maximum", "must be <= 1.5, got 2");
    /* Exact comparison: as doubles both numbers would round to 2^53. */
    assert_invalid("{\"maximum\":9007199254740992}", "9007199254740993", {"", "maximum"});
    assert_invalid("{\"maximum\":9007199254740992.0}", "9007199254740993", {"", "maximum"});
    assert_valid("{\"minimum\":9007199254740992.0}", "9007199254740992");
}

static void test_exclusive_bounds(void **state)
{
    (void)state;
    assert_valid("{\"exclusiveMinimum\":10}", "10.5");
    assert_failure("{\"exclusiveMinimum\":10}", "10", "/exclusiveMinimum", "must be > 10, got 10");
    assert_invalid("{\"exclusiveMinimum\":10}", "10.0", {"", "exclusiveMinimum"});
    assert_valid("{\"exclusiveMaximum\":0}", "-1");
    assert_failure("{\"exclusiveMaximum\":0}", "0.5", "/exclusiveMaximum", "must be < 0, got 0.5");
    assert_invalid("{\"minimum\":1,\"exclusiveMaximum\":5}", "7", {"", "exclusiveMaximum"});
}

static void test_multiple_of(void **state)
{
    (void)state;
    assert_valid("{\"multipleOf\":0.1}", "0.3");
    assert_valid("{\"multipleOf\":0.01}", "19.99");
    assert_valid("{\"multipleOf\":0.0001}", "0.0075");
    assert_valid("{\"multipleOf\":2}", "4");
    assert_valid("{\"multipleOf\":2}", "4.0");
    assert_valid("{\"multipleOf\":2}", "0");
    assert_valid("{\"multipleOf\":2.0}", "-6");
    assert_invalid("{\"multipleOf\":2}", "7", {"", "multipleOf"});
    assert_invalid("{\"multipleOf\":0.0001}", "0.00751", {"", "multipleOf"});
    assert_invalid("{\"multipleOf\":3}", "1e-20", {"", "multipleOf"});
    assert_invalid("{\"multipleOf\":0.123456789}", "1e308", {"", "multipleOf"});
    assert_failure("{\"multipleOf\":0.1}", "0.35", "/multipleOf",
                   "must be a multiple of 0.1, got 0.35");
}

/* ---- strings ------------------------------------------------------------------------ */

static void test_length_counts_code_points(void **state)
{
    (void)state;
    const char *schema = "{\"minLength\":2,\"maxLength\":3}";
    assert_valid(schema, "\"ab\"");
    assert_valid(schema, "\"\xc3\xa9\xc3\xa9\xc3\xa9\"");         /* 3 x e-acute, 6 bytes */
    assert_valid(schema, "\"\xf0\x9f\x98\x80\xf0\x9f\x98\x80\""); /* 2 emoji, 8 bytes */
    assert_invalid(schema, "\"\xc3\xa9\"", {"", "minLength"});
    assert_failure(schema, "\"\xc3\xa9\"", "/minLength",
                   "must be at least 2 characters long, got 1");
    assert_invalid(schema, "\"abcd\"", {"", "maxLength"});
    assert_failure("{\"maxLength\":1}", "\"ab\"", "/maxLength",
                   "must be at most 1 character long, got 2");
    assert_valid("{\"maxLength\":1}", "\"\xf0\x9f\x98\x80\"");
    assert_valid("{\"maxLength\":1}", "\"\\ud83d\\ude00\""); /* the same emoji, escaped */
    assert_valid("{\"minLength\":5}", "12");                 /* not a string */
}

static void test_pattern(void **state)
{
    (void)state;
    assert_valid("{\"pattern\":\"[0-9]+\"}", "\"abc123\""); /* searched, not anchored */
    assert_invalid("{\"pattern\":\"[0-9]+\"}", "\"abc\"", {"", "pattern"});
    /* The message names the pattern but never quotes the value, which may be a secret. */
    assert_failure("{\"pattern\":\"^[0-9]+$\"}", "\"hunter2\"", "/pattern",
                   "must match the pattern \"^[0-9]+$\"");
    assert_valid("{\"pattern\":\"^\xc3\xa9.$\"}", "\"\xc3\xa9\xf0\x9f\x98\x80\"");
    assert_invalid("{\"pattern\":\"^a$\"}", "\"a\\n\"", {"", "pattern"});
    assert_valid("{\"pattern\":\"^\\\\u00e9$\"}", "\"\xc3\xa9\"");
    assert_valid("{\"pattern\":\"^a\"}", "3");
}

/* ---- formats ------------------------------------------------------------------------ */

struct format_case {
    const char *format, *value;
    bool valid;
};

static const struct format_case format_cases[] = {
    {"date-time", "2024-02-29T12:30:00Z", true},
    {"date-time", "2024-02-29T12:30:00.123+05:30", true},
    {"date-time", "2024-02-29t12:30:00z", true},
    {"date-time", "1998-12-31T23:59:60Z", true},
    {"date-time", "1998-12-31T15:59:60-08:00", true},
    {"date-time", "1998-12-31T23:58:60Z", false},
    {"date-time", "2023-02-29T12:00:00Z", false},
    {"date-time", "2024-02-29 12:30:00Z", false},
    {"date-time", "2024-02-29T24:00:00Z", false},
    {"date-time", "2024-02-29T12:30:00", false},
    {"date-time", "2024-02-29T12:30:00.Z", false},
    {"date-time", "2024-02-29T12:30:00+5:30", false},
    {"date", "2024-02-29", true},
    {"date", "2000-02-29", true},
    {"date", "2024-12-31", true},
    {"date", "2024-02-30", false},
    {"date", "2023-02-29", false},
    {"date", "1900-02-29", false},
    {"date", "2024-04-31", false},
    {"date", "2024-13-01", false},
    {"date", "2024-1-01", false},
    {"date", "2024-01-01T00:00:00Z", false},
    {"time", "23:59:59Z", true},
    {"time", "08:30:00.5+01:00", true},
    {"time", "25:00:00Z", false},
    {"time", "12:60:00Z", false},
    {"email", "ops@example.com", true},
    {"email", "first.last+tag@sub.example.org", true},
    {"email", "\"a b\"@example.com", true},
    {"email", "user@[192.0.2.1]", true},
    {"email", "user@[IPv6:2001:db8::1]", true},
    {"email", "a..b@example.com", false},
    {"email", ".a@example.com", false},
    {"email", "no-at.example.com", false},
    {"email", "a@", false},
    {"email", "@example.com", false},
    {"email", "a@-example.com", false},
    {"email", "a b@example.com", false},
    {"hostname", "example.com", true},
    {"hostname", "a-b.c0", true},
    {"hostname", "localhost", true},
    {"hostname", "-bad.com", false},
    {"hostname", "bad-.com", false},
    {"hostname", "a..b", false},
    {"hostname", "under_score.com", false},
    {"hostname", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.com", false},
    {"hostname", "", false},
    {"ipv4", "192.168.0.1", true},
    {"ipv4", "0.0.0.0", true},
    {"ipv4", "255.255.255.255", true},
    {"ipv4", "256.1.1.1", false},
    {"ipv4", "1.2.3", false},
    {"ipv4", "01.2.3.4", false},
    {"ipv4", "1.2.3.4.5", false},
    {"ipv4", "1.2.3.a", false},
    {"ipv4", " 1.2.3.4", false},
    {"ipv6", "::1", true},
    {"ipv6", "::", true},
    {"ipv6", "2001:db8::8a2e:370:7334", true},
    {"ipv6", "2001:0db8:0000:0000:0000:ff00:0042:8329", true},
    {"ipv6", "::ffff:192.0.2.128", true},
    {"ipv6", "1::", true},
    {"ipv6", "1:2:3:4:5:6:7::", true},
    {"ipv6", "1:2:3:4:5:6:7:8", true},
    {"ipv6", "12345::", false},
    {"ipv6", "1:2:3:4:5:6:7:8:9", false},
    {"ipv6", "1:2:3:4:5:6:7:8::", false},
    {"ipv6", "1::2::3", false},
    {"ipv6", ":1", false},
    {"ipv6", "1:", false},
    {"ipv6", ":::", false},
    {"ipv6", "::1%eth0", false},
    {"ipv6", "g::1", false},
    {"ipv6", "1.2.3.4", false},
    {"uri", "https://example.com/path?q=1#frag", true},
    {"uri", "mailto:ops@example.com", true},
    {"uri", "urn:isbn:0451450523", true},
    {"uri", "http://[::1]:8080/", true},
    {"uri", "http://user:pw@host:80", true},
    {"uri", "file:///etc/hosts", true},
    {"uri", "/relative/path", false},
    {"uri", "example.com", false},
    {"uri", "http://exa mple.com", false},
    {"uri", "http://example.com/%zz", false},
    {"uri", "1http://x", false},
    {"uri", "http://host:port/", false},
    {"uri", "http://[::g]/", false},
    {"uuid", "123e4567-e89b-12d3-a456-426614174000", true},
    {"uuid", "123E4567-E89B-12D3-A456-426614174000", true},
    {"uuid", "123e4567e89b12d3a456426614174000", false},
    {"uuid", "123e4567-e89b-12d3-a456-42661417400g", false},
    {"uuid", "123e4567-e89b-12d3-a456-4266141740000", false},
    {"duration", "P4DT12H30M5S", true},
    {"duration", "PT1D", false},
    {"duration", "4DT12H30M5S", false},
    {"duration", "P", false},
    {"duration", "P1YT", false},
    {"duration", "PT", false},
    {"duration", "P2D1Y", false},
    {"duration", "P1D2H", false},
    {"duration", "P2S", false},
    {"duration", "P4Y", true},
    {"duration", "PT0S", true},
    {"duration", "P0D", true},
    {"duration", "P1M", true},
    {"duration", "PT1M", true},
    {"duration", "PT36H", true},
    {"duration", "P1DT12H", true},
    {"duration", "P2W", true},
    {"duration", "P1Y2W", false},
    {"duration",
     "P\xe0\xa7\xa8"
     "Y",
     false},
    {"duration", "P1", false},
    {"duration", "P1Y2M3DT4H5M6S", true},
    {"duration", "PT0.5S", false},
    {"duration", "P1Y2D", false},
    {"duration", "PT1H2S", false},
    {"duration", "PT1M2S", true},
    {"duration", "-P1D", false},
    {"duration", "P1D2T3H", false},
    {"duration", "P1WT1H", false},
    {"duration", "P0Y1W", false},
    {"duration", "P01D", true},
    {"uri-reference", "http://foo.bar/?baz=qux#quux", true},
    {"uri-reference", "//foo.bar/?baz=qux#quux", true},
    {"uri-reference", "/abc", true},
    {"uri-reference", "\\\\WINDOWS\\fileshare", false},
    {"uri-reference", "abc", true},
    {"uri-reference", "#fragment", true},
    {"uri-reference", "#frag\\ment", false},
    {"uri-reference",
     "/foobar\xc2\xae"
     ".txt",
     false},
    {"uri-reference", "https://example.org/foobar\\.txt", false},
    {"uri-reference", "http://087.10.0.1/", true},
    {"uri-reference", "http://999.999.999.999/", true},
    {"uri-reference", "", true},
    {"uri-reference", "?query=1", true},
    {"uri-reference", "//", true},
    {"uri-reference", "/%zz", false},
    {"uri-reference", "/a\"b", false},
    {"uri-reference", "/[::1]", false},
    {"uri-reference", "//example.com:abc/p", false},
    {"uri-reference", "//a@b@example.com/", false},
    {"uri-reference", "//[::ffff:192.168.0.01]/p", false},
    {"uri-reference", "1:b", false},
    {"uri-reference", "./this:that", true},
    {"uri-reference", "/p\n", false},
    {"uri-reference", "//[V1.fe]/p", true},
    {"uri-reference", "/abc", true},
    {"uri-reference", "abc", true},
    {"uri-reference", "#fragment", true},
    {"uri-reference", "", true},
    {"uri-reference", "\\\\WINDOWS\\fileshare", false},
    {"uri-reference", "#frag\\ment", false},
    {"uri-reference", "1:x", false},
    {"uri-reference", "a#b#c", false},
    {"iri",
     "http://\xc6\x92"
     "\xc3\xb8"
     "\xc3\xb8"
     ".\xc3\x9f"
     "\xc3\xa5"
     "r/?\xe2\x88\x82"
     "\xc3\xa9"
     "\xc5\x93"
     "=\xcf\x80"
     "\xc3\xae"
     "x#\xcf\x80"
     "\xc3\xae"
     "\xc3\xbc"
     "x",
     true},
    {"iri", "http://[2001:0db8:85a3:0000:0000:8a2e:0370:7334]", true},
    {"iri", "/abc", false},
    {"iri", "http://2001:0db8:85a3:0000:0000:8a2e:0370:7334", false},
    {"iri-reference",
     "//\xc6\x92"
     "\xc3\xb8"
     "\xc3\xb8"
     ".\xc3\x9f"
     "\xc3\xa5"
     "r/?\xe2\x88\x82"
     "\xc3\xa9"
     "\xc5\x93"
     "=\xcf\x80"
     "\xc3\xae"
     "x#\xcf\x80"
     "\xc3\xae"
     "\xc3\xbc"
     "x",
     true},
    {"iri-reference",
     "/\xc3\xa2"
     "\xcf\x80"
     "\xcf\x80"
     "",
     true},
    {"iri-reference",
     "#\xc6\x92"
     "r\xc3\xa4"
     "gm\xc3\xaa"
     "nt",
     true},
    {"iri-reference",
     "#\xc6\x92"
     "r\xc3\xa4"
     "g\\m\xc3\xaa"
     "nt",
     false},
    {"uri-template", "http://example.com/dictionary/{term:1}/{term}", true},
    {"uri-template", "dictionary/{term:1}/{term}", true},
    {"uri-template", "{/list*,path:4}{?x,y}{#frag}{+reserved}", true},
    {"uri-template", "http://example.com/dictionary/{term:1}/{term", false},
    {"uri-template", "{term:0}", false},
    {"uri-template", "{a b}", false},
    {"uri-template", "a}b", false},
    {"json-pointer", "/foo/bar~0/baz~1/%a", true},
    {"json-pointer", "", true},
    {"json-pointer", "/", true},
    {"json-pointer", "/foo//bar", true},
    {"json-pointer", "/foo/bar~", false},
    {"json-pointer", "#/", false},
    {"json-pointer", "a", false},
    {"json-pointer", "/~2", false},
    {"relative-json-pointer", "1", true},
    {"relative-json-pointer", "0/foo/bar", true},
    {"relative-json-pointer", "0#", true},
    {"relative-json-pointer", "120/foo/bar", true},
    {"relative-json-pointer", "/foo/bar", false},
    {"relative-json-pointer", "-1/foo/bar", false},
    {"relative-json-pointer", "+1/foo/bar", false},
    {"relative-json-pointer", "0##", false},
    {"relative-json-pointer", "01/a", false},
    {"relative-json-pointer", "", false},
    {"relative-json-pointer", "0+1/foo", true},
    {"relative-json-pointer", "1-2/bar", true},
    {"relative-json-pointer", "0-1#", true},
    {"relative-json-pointer", "0+", false},
    {"relative-json-pointer", "0-01", false},
    {"relative-json-pointer", "0++1", false},
    {"relative-json-pointer", "0+1not-a-pointer", false},
    {"relative-json-pointer", "1foo", false},
    {"relative-json-pointer", "1#/foo/bar", false},
    {"uri-template", "a'b", true},
    {"uri-template", "{a..b}", false},
    {"uri-template", "{%41}", true},
    {"uri-template", "{%}", false},
    {"uri-template", "{var=def}", false},
    {"uri-template", "{,+var}", false},
    {"uri-template", "{a,}", false},
    {"uri-template", "{v:01}", false},
    {"uri-template", "{v:1000}", true},
    {"uri-template", "a%", false},
    {"uri-template", "{}", false},
    {"regex", "([abc])+\\s+$", true},
    {"regex", "^(abc]", false},
    {"regex", "\\a", false},
    {"regex", "\\p{Letter}+", true},
    {"idn-email",
     "\xec\x8b\xa4"
     "\xeb\xa1\x80"
     "@\xec\x8b\xa4"
     "\xeb\xa1\x80"
     ".\xed\x85\x8c"
     "\xec\x8a\xa4"
     "\xed\x8a\xb8"
     "",
     true},
    {"idn-email", "joe.bloggs@example.com", true},
    {"idn-email", "2962", false},
    {"idn-hostname",
     "\xec\x8b\xa4"
     "\xeb\xa1\x80"
     ".\xed\x85\x8c"
     "\xec\x8a\xa4"
     "\xed\x8a\xb8"
     "",
     true},
    {"idn-hostname", "xn--fsqu00a.xn--0zwm56d", true},
    {"idn-hostname", "XN--fsqu00a.example", true},
    {"idn-hostname",
     "\xe3\x80\xae"
     "\xec\x8b\xa4"
     "\xeb\xa1\x80"
     ".\xed\x85\x8c"
     "\xec\x8a\xa4"
     "\xed\x8a\xb8"
     "",
     false},
    {"idn-hostname", "xn--abc", false},
    {"idn-hostname", "ab--c", false},
    {"idn-hostname",
     "l\xc2\xb7"
     "l",
     true},
    {"idn-hostname",
     "a\xc2\xb7"
     "l",
     false},
    {"idn-hostname",
     "\xce\xb1"
     "\xcd\xb5"
     "\xce\xb2"
     "",
     true},
    {"idn-hostname",
     "\xce\xb1"
     "\xcd\xb5"
     "",
     false},
    {"idn-hostname",
     "\xd7\x90"
     "\xd7\xb3"
     "\xd7\x91"
     "",
     true},
    {"idn-hostname",
     "a\xd7\xb3"
     "b",
     false},
    {"idn-hostname",
     "\xe3\x81\x81"
     "\xe3\x83\xbb"
     "\xe3\x81\x81"
     "",
     true},
    {"idn-hostname",
     "\xe3\x83\xbb"
     "",
     false},
    {"idn-hostname",
     "\xd9\xa1"
     "\xdb\xb2"
     "",
     false},
    {"idn-hostname",
     "\xe0\xa4\x95"
     "\xe0\xa5\x8d"
     "\xe2\x80\x8d"
     "",
     true},
    {"idn-hostname",
     "a\xe2\x80\x8d"
     "",
     false},
    {"idn-hostname",
     "\xcc\x81"
     "a",
     false},
    {"idn-hostname",
     "\xc3\x96"
     "bb.at",
     false},
    {"idn-hostname",
     "m\xc3\xbc"
     "ller.de",
     true},
    {"idn-hostname", "a_b.com", false},
    {"idn-hostname",
     "\xe2\x99\xa5"
     ".com",
     false},
    {"idn-hostname",
     "\xe4\xbe\x8b"
     "\xe5\xad\x90"
     "\xe3\x80\x82"
     "\xe6\xb5\x8b"
     "\xe8\xaf\x95"
     "",
     true},
};

static void test_formats(void **state)
{
    (void)state;
    options = &format_options;
    for (size_t i = 0; i < sizeof format_cases / sizeof *format_cases; i++) {
        const struct format_case *fc = &format_cases[i];
        char schema_text[64];
        snprintf(schema_text, sizeof schema_text, "{\"format\":\"%s\"}", fc->format);
        struct jsonschema *s = compile_text(schema_text);
        json_t *doc = json_string(fc->value);
        assert_non_null(doc);
        json_t *errors = validate_value(s, doc);
        if (fc->valid && errors)
            fail_msg("\"%s\" should be a valid %s", fc->value, fc->format);
        if (!fc->valid && !errors)
            fail_msg("\"%s\" should not be a valid %s", fc->value, fc->format);
        if (errors) {
            char message[64];
            snprintf(message, sizeof message, "must be a valid %s", fc->format);
            assert_int_equal(json_array_size(errors), 1);
            json_t *e = json_array_get(errors, 0);
            assert_string_equal(json_string_value(json_object_get(e, "keyword")), "format");
            assert_string_equal(json_string_value(json_object_get(e, "message")), message);
        }
        json_decref(errors);
        json_decref(doc);
        jsonschema_free(s);
    }
    assert_valid("{\"format\":\"ipv4\"}", "12"); /* formats apply to strings only */
    /* Unknown formats are ignored, also when formats assert. */
    assert_valid("{\"format\":\"date_time\"}", "\"x\"");
    options = NULL;
    /* By default format is an annotation, as the specification says. */
    assert_valid("{\"format\":\"date\"}", "\"2024-02-30\"");
    assert_valid("{\"format\":\"no-such-format\"}", "\"x\"");
}

/* ---- objects ------------------------------------------------------------------------ */

static const char *endpoint_schema =
    "{\"type\":\"object\","
    "\"properties\":{\"host\":{\"type\":\"string\"},"
    "\"port\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":65535},"
    "\"tls\":{\"type\":\"boolean\"}},"
    "\"required\":[\"host\",\"port\"]}";

static void test_properties_lists_every_failure(void **state)
{
    (void)state;
    assert_valid(endpoint_schema, "{\"host\":\"db\",\"port\":5432,\"tls\":true,\"x\":1}");
    json_t *errors = run(endpoint_schema, "{\"host\":5,\"port\":70000,\"tls\":\"yes\"}");
    assert_non_null(errors);
    json_t *port = json_array_get(errors, 1);
    assert_string_equal(json_string_value(json_object_get(port, "schema_path")),
                        "/properties/port/maximum");
    assert_string_equal(json_string_value(json_object_get(port, "message")),
                        "must be <= 65535, got 70000");
    check_errors(errors, WANT({"/host", "type"}, {"/port", "maximum"}, {"/tls", "type"}),
                 "three bad properties");
}

static void test_required(void **state)
{
    (void)state;
    assert_invalid(endpoint_schema, "{}", {"", "required"}, {"", "required"});
    json_t *errors = run(endpoint_schema, "{\"host\":\"db\"}");
    assert_non_null(errors);
    json_t *e = json_array_get(errors, 0);
    assert_string_equal(json_string_value(json_object_get(e, "message")),
                        "missing required property \"port\"");
    assert_string_equal(json_string_value(json_object_get(e, "schema_path")), "/required");
    check_errors(errors, WANT({"", "required"}), "missing port");
    assert_valid("{\"required\":[\"a\"]}", "[1]"); /* applies to objects only */
}

static void test_additional_properties(void **state)
{
    (void)state;
    const char *closed = "{\"properties\":{\"a\":{}},\"additionalProperties\":false}";
    assert_valid(closed, "{\"a\":1}");
    assert_invalid(closed, "{\"a\":1,\"b\":2,\"c\":3}", {"/b", "additionalProperties"},
                   {"/c", "additionalProperties"});
    assert_failure(closed, "{\"b~/\":2}", "/additionalProperties",
                   "property \"b~/\" is not allowed");
    assert_invalid(closed, "{\"b~/\":2}", {"/b~0~1", "additionalProperties"});
    /* A key with a NUL byte (jansson's parser refuses them, its API does not) keeps the byte
     * in the pointer. */
    struct jsonschema *s = compile_text(closed);
    json_t *doc = json_object();
    json_object_setn_new(doc, "b\0c", 3, json_integer(1));
    json_t *errors = validate_value(s, doc);
    json_t *path = json_object_get(json_array_get(errors, 0), "path");
    assert_int_equal(json_string_length(path), 4);
    assert_memory_equal(json_string_value(path), "/b\0c", 4);
    json_decref(errors);
    json_decref(doc);
    jsonschema_free(s);
    const char *typed = "{\"additionalProperties\":{\"type\":\"integer\"}}";
    assert_valid(typed, "{\"a\":1}");
    assert_failure(typed, "{\"a\":1,\"b\":\"x\"}", "/additionalProperties/type",
                   "must be integer, got string");
}

static void test_pattern_properties(void **state)
{
    (void)state;
    const char *schema = "{\"patternProperties\":{\"^x-\":{\"type\":\"string\"},"
                         "\"[0-9]$\":{\"type\":\"integer\"}},\"additionalProperties\":false}";
    assert_valid(schema, "{\"x-a\":\"s\",\"b1\":1}");
    /* "x-1" matches both patterns; "b" matches none. */
    assert_invalid(schema, "{\"x-a\":\"s\",\"x-1\":\"s\",\"b\":1}", {"/x-1", "type"},
                   {"/b", "additionalProperties"});
}

static void test_property_names(void **state)
{
    (void)state;
    const char *schema = "{\"propertyNames\":{\"pattern\":\"^[a-z_]+$\",\"maxLength\":5}}";
    assert_valid(schema, "{\"ok\":1,\"fine_\":2}");
    assert_invalid(schema, "{\"ok\":1,\"Bad\":2,\"toolong\":3}", {"/Bad", "pattern"},
                   {"/toolong", "maxLength"});
    assert_failure(schema, "{\"Bad\":2}", "/propertyNames/pattern",
                   "must match the pattern \"^[a-z_]+$\"");
}

static void test_min_max_properties(void **state)
{
    (void)state;
    const char *schema = "{\"minProperties\":1,\"maxProperties\":2}";
    assert_valid(schema, "{\"a\":1}");
    assert_failure(schema, "{}", "/minProperties", "must have at least 1 property, got 0");
    assert_failure(schema, "{\"a\":1,\"b\":2,\"c\":3}", "/maxProperties",
                   "must have at most 2 properties, got 3");
}

static void test_dependent_required(void **state)
{
    (void)state;
    const char *schema = "{\"dependentRequired\":{\"tls_cert\":[\"tls_key\",\"tls_ca\"]}}";
    assert_valid(schema, "{}");
    assert_valid(schema, "{\"tls_cert\":1,\"tls_key\":1,\"tls_ca\":1}");
    assert_invalid(schema, "{\"tls_cert\":1}", {"", "dependentRequired"},
                   {"", "dependentRequired"});
    assert_failure(schema, "{\"tls_cert\":1,\"tls_ca\":1}", "/dependentRequired",
                   "missing property \"tls_key\", required when \"tls_cert\" is present");
}

static void test_dependent_schemas(void **state)
{
    (void)state;
    const char *schema = "{\"dependentSchemas\":{\"tls\":{\"required\":[\"cert\"]}}}";
    assert_valid(schema, "{}");
    assert_valid(schema, "{\"tls\":true,\"cert\":\"x\"}");
    assert_failure(schema, "{\"tls\":true}", "/dependentSchemas/tls/required",
                   "missing required property \"cert\"");
}

/* ---- arrays ------------------------------------------------------------------------- */

static void test_items(void **state)
{
    (void)state;
    assert_valid("{\"items\":{\"type\":\"integer\"}}", "[1,2,3.0]");
    assert_invalid("{\"items\":{\"type\":\"integer\"}}", "[1,\"a\",2,\"b\"]", {"/1", "type"},
                   {"/3", "type"});
}

static void test_prefix_items(void **state)
{
    (void)state;
    const char *closed =
        "{\"prefixItems\":[{\"type\":\"string\"},{\"type\":\"integer\"}],\"items\":false}";
    assert_valid(closed, "[\"a\",1]");
    assert_valid(closed, "[\"a\"]");
    assert_invalid(closed, "[\"a\",1,true,null]", {"/2", "items"}, {"/3", "items"});
    assert_invalid(closed, "[1]", {"/0", "type"});
    assert_failure(closed, "[\"a\",1,2]", "/items",
                   "is not allowed: the array may hold at most 2 items");
    const char *rest = "{\"prefixItems\":[{\"type\":\"string\"}],\"items\":{\"type\":\"integer\"}}";
    assert_valid(rest, "[\"a\",1,2]");
    assert_invalid(rest, "[\"a\",\"b\",2,\"c\"]", {"/1", "type"}, {"/3", "type"});
}

static void test_contains(void **state)
{
    (void)state;
    const char *schema = "{\"contains\":{\"type\":\"string\"}}";
    assert_valid(schema, "[1,\"a\"]");
    assert_invalid(schema, "[1,2]", {"", "contains"});
    assert_invalid(schema, "[]", {"", "contains"});
    assert_failure(schema, "[1]", "/contains",
                   "must contain at least 1 item matching contains, found 0");
    const char *counted =
        "{\"contains\":{\"type\":\"integer\"},\"minContains\":2,\"maxContains\":3}";
    assert_valid(counted, "[1,\"a\",2]");
    assert_invalid(counted, "[1,\"a\"]", {"", "minContains"});
    assert_invalid(counted, "[1,2,3,4]", {"", "maxContains"});
    assert_valid("{\"contains\":{\"type\":\"integer\"},\"minContains\":0}", "[]");
}

static void test_min_max_items(void **state)
{
    (void)state;
    const char *schema = "{\"minItems\":1,\"maxItems\":2}";
    assert_valid(schema, "[1,2]");
    assert_failure(schema, "[]", "/minItems", "must have at least 1 item, got 0");
    assert_failure(schema, "[1,2,3]", "/maxItems", "must have at most 2 items, got 3");
}

static void test_unique_items(void **state)
{
    (void)state;
    const char *schema = "{\"uniqueItems\":true}";
    assert_valid(schema, "[1,2,3]");
    assert_valid(schema, "[[1,2],[2,1]]");
    assert_valid(schema, "[0,false,null,\"0\",[],{}]");
    assert_valid(schema, "[{\"a\":1},{\"a\":2}]");
    assert_invalid(schema, "[1,2,1]", {"", "uniqueItems"});
    assert_failure(schema, "[1,2,1]", "/uniqueItems",
                   "items 0 and 2 are equal; items must be unique");
    assert_invalid(schema, "[1,1.0]", {"", "uniqueItems"});
    assert_failure(schema, "[{\"a\":1,\"b\":[2]},3,{\"b\":[2.0],\"a\":1}]", "/uniqueItems",
                   "items 0 and 2 are equal; items must be unique");
    assert_invalid(schema, "[1,2,1,2,1]", {"", "uniqueItems"}, {"", "uniqueItems"},
                   {"", "uniqueItems"});
    assert_valid("{\"uniqueItems\":false}", "[1,1]");
}

/* ---- applicators -------------------------------------------------------------------- */

static void test_all_of(void **state)
{
    (void)state;
    const char *schema = "{\"allOf\":[{\"minimum\":2},{\"maximum\":5}]}";
    assert_valid(schema, "3");
    assert_failure(schema, "7", "/allOf/1/maximum", "must be <= 5, got 7");
}

static void test_any_of(void **state)
{
    (void)state;
    const char *schema = "{\"anyOf\":[{\"type\":\"string\"},{\"type\":\"integer\"}]}";
    assert_valid(schema, "\"a\"");
    assert_valid(schema, "1");
    assert_invalid(schema, "1.5", {"", "anyOf"});
    assert_failure(schema, "null", "/anyOf",
                   "must match at least one of the 2 schemas in anyOf, matched none");
}

static void test_one_of(void **state)
{
    (void)state;
    const char *schema = "{\"oneOf\":[{\"type\":\"integer\"},{\"minimum\":2}]}";
    assert_valid(schema, "1");
    assert_valid(schema, "2.5");
    assert_failure(schema, "3", "/oneOf",
                   "must match exactly one schema in oneOf, matched schemas 0 and 1");
    assert_failure(schema, "1.5", "/oneOf",
                   "must match exactly one of the 2 schemas in oneOf, matched none");
}

static void test_not(void **state)
{
    (void)state;
    assert_valid("{\"not\":{\"type\":\"null\"}}", "1");
    assert_invalid("{\"not\":{\"type\":\"null\"}}", "null", {"", "not"});
    assert_failure("{\"not\":{\"type\":\"null\"}}", "null", "/not",
                   "must not match the schema in not");
}

static void test_if_then_else(void **state)
{
    (void)state;
    const char *schema =
        "{\"if\":{\"properties\":{\"tls\":{\"const\":true}},\"required\":[\"tls\"]},"
        "\"then\":{\"required\":[\"cert\"]},"
        "\"else\":{\"properties\":{\"cert\":false}}}";
    assert_valid(schema, "{\"tls\":true,\"cert\":\"x\"}");
    assert_valid(schema, "{}");
    assert_failure(schema, "{\"tls\":true}", "/then/required",
                   "missing required property \"cert\"");
    assert_invalid(schema, "{\"tls\":false,\"cert\":\"x\"}", {"/cert", "false"});
    assert_failure(schema, "{\"tls\":false,\"cert\":\"x\"}", "/else/properties/cert",
                   "no value is allowed here");
    assert_valid("{\"then\":false}", "1"); /* then without if does nothing */
}

static void test_boolean_schemas(void **state)
{
    (void)state;
    assert_valid("true", "{\"anything\":[1,2]}");
    assert_valid("{}", "null");
    assert_invalid("false", "1", {"", "false"});
    assert_failure("false", "1", "", "no value is allowed here");
    assert_invalid("{\"properties\":{\"a\":false}}", "{\"a\":1}", {"/a", "false"});
}

/* ---- $ref --------------------------------------------------------------------------- */

static void test_ref_nested_defs(void **state)
{
    (void)state;
    const char *schema =
        "{\"$defs\":{\"port\":{\"type\":\"integer\",\"minimum\":1},"
        "\"endpoint\":{\"type\":\"object\",\"properties\":{\"port\":{\"$ref\":\"#/$defs/port\"}}}},"
        "\"properties\":{\"primary\":{\"$ref\":\"#/$defs/endpoint\"},"
        "\"backup\":{\"$ref\":\"#/$defs/endpoint\"}}}";
    assert_valid(schema, "{\"primary\":{\"port\":1},\"backup\":{}}");
    assert_invalid(schema, "{\"primary\":{\"port\":0},\"backup\":{\"port\":\"x\"}}",
                   {"/primary/port", "minimum"}, {"/backup/port", "type"});
    /* schema_path names where the keyword is written, after following $ref. */
    assert_failure(schema, "{\"primary\":{\"port\":0}}", "/$defs/port/minimum",
                   "must be >= 1, got 0");
}

static void test_ref_to_root(void **state)
{
    (void)state;
    const char *tree = "{\"type\":\"object\",\"required\":[\"name\"],"
                       "\"properties\":{\"name\":{\"type\":\"string\"},"
                       "\"children\":{\"type\":\"array\",\"items\":{\"$ref\":\"#\"}}}}";
    assert_valid(tree, "{\"name\":\"a\",\"children\":[{\"name\":\"b\",\"children\":[]}]}");
    assert_invalid(
        tree,
        "{\"name\":\"a\",\"children\":[{\"name\":\"b\",\"children\":[{\"children\":[]}]},"
        "{\"name\":1}]}",
        {"/children/0/children/0", "required"}, {"/children/1/name", "type"});
}

static void test_ref_pointer_escapes(void **state)
{
    (void)state;
    const char *schema = "{\"$defs\":{\"a/b\":{\"type\":\"integer\"},\"c~d\":{\"type\":\"string\"},"
                         "\"e f\":{\"type\":\"null\"},\"\xc3\xa9\":{\"type\":\"boolean\"}},"
                         "\"properties\":{\"x\":{\"$ref\":\"#/$defs/a~1b\"},"
                         "\"y\":{\"$ref\":\"#/$defs/c~0d\"},"
                         "\"z\":{\"$ref\":\"#/$defs/e%20f\"},"
                         "\"w\":{\"$ref\":\"#/$defs/%C3%A9\"}}}";
    assert_valid(schema, "{\"x\":1,\"y\":\"s\",\"z\":null,\"w\":true}");
    assert_invalid(schema, "{\"x\":\"s\",\"y\":1,\"z\":1,\"w\":1}", {"/x", "type"}, {"/y", "type"},
                   {"/z", "type"}, {"/w", "type"});
    assert_failure(schema, "{\"x\":\"s\"}", "/$defs/a~1b/type", "must be integer, got string");
}

static void test_ref_anywhere_and_siblings(void **state)
{
    (void)state;
    const char *schema =
        "{\"properties\":{\"a\":{\"type\":\"integer\"},\"b\":{\"$ref\":\"#/properties/a\"}}}";
    assert_failure(schema, "{\"b\":\"x\"}", "/properties/a/type", "must be integer, got string");
    /* In 2020-12 keywords next to $ref apply too. */
    const char *siblings = "{\"$defs\":{\"i\":{\"type\":\"integer\"}},"
                           "\"$ref\":\"#/$defs/i\",\"minimum\":5}";
    assert_valid(siblings, "6");
    assert_invalid(siblings, "3", {"", "minimum"});
    assert_invalid(siblings, "\"x\"", {"", "type"});
    assert_invalid(siblings, "2.5", {"", "type"}, {"", "minimum"});
}

/* ---- compile refusals --------------------------------------------------------------- */

static void test_refuse_unknown_type(void **state)
{
    (void)state;
    assert_refused("{\"type\":\"strin\"}",
                   "at /type: unknown type \"strin\" (expected null, boolean, object, array, "
                   "number, string or integer)");
    assert_refused("{\"properties\":{\"a\":{\"type\":[\"string\",\"nul\"]}}}",
                   "at /properties/a/type/1: unknown type \"nul\" (expected null, boolean, "
                   "object, array, number, string or integer)");
    assert_refused("{\"type\":[\"string\",\"string\"]}",
                   "at /type/1: type \"string\" is listed twice");
    assert_refused("{\"properties\":{\"a/b\":{\"type\":1}}}",
                   "at /properties/a~1b/type: must be a string or an array of strings, got "
                   "integer");
}

static void test_refuse_malformed_values(void **state)
{
    (void)state;
    assert_refused("{\"minimum\":\"3\"}", "at /minimum: must be a number, got string");
    assert_refused("{\"exclusiveMinimum\":true}",
                   "at /exclusiveMinimum: must be a number, got boolean (the boolean form is "
                   "from draft 4)");
    assert_refused("{\"minLength\":-1}", "at /minLength: must be a non-negative integer, got -1");
    assert_refused("{\"maxItems\":1.5}", "at /maxItems: must be a non-negative integer, got 1.5");
    assert_refused("{\"maxItems\":\"2\"}",
                   "at /maxItems: must be a non-negative integer, got string");
    assert_refused("{\"multipleOf\":0}", "at /multipleOf: must be greater than 0, got 0");
    assert_refused("{\"required\":\"a\"}", "at /required: must be an array of strings, got string");
    assert_refused("{\"required\":[\"a\",3]}", "at /required/1: must be a string, got integer");
    assert_refused("{\"required\":[\"a\",\"b\",\"a\"]}", "at /required/2: \"a\" is listed twice");
    assert_refused("{\"dependentRequired\":{\"a\":[\"b\",false]}}",
                   "at /dependentRequired/a/1: must be a string, got boolean");
    assert_refused("{\"properties\":{\"a\":3}}",
                   "at /properties/a: must be a schema (an object or a boolean), got integer");
    assert_refused("{\"properties\":[]}",
                   "at /properties: must be an object of schemas, got array");
    assert_refused("{\"items\":[{}]}",
                   "at /items: the array form of \"items\" is from draft 2019-09 and earlier; in "
                   "draft 2020-12 write the array as \"prefixItems\" (and \"items\" for the items "
                   "after it)");
    assert_refused("{\"allOf\":[]}", "at /allOf: must not be empty");
    assert_refused("{\"anyOf\":[{},\"x\"]}",
                   "at /anyOf/1: must be a schema (an object or a boolean), got string");
    assert_refused("{\"uniqueItems\":\"yes\"}", "at /uniqueItems: must be a boolean, got string");
    assert_refused("{\"title\":3}", "at /title: must be a string, got integer");
    assert_refused("3", "at the root: must be a schema (an object or a boolean), got integer");
}

static void test_refuse_bad_regex(void **state)
{
    (void)state;
    assert_refused_prefix("{\"pattern\":\"a(\"}",
                          "at /pattern: invalid regular expression at offset 2: ");
    assert_refused_prefix("{\"properties\":{\"x\":{\"patternProperties\":{\"[a-\":{}}}}}",
                          "at /properties/x/patternProperties/[a-: invalid regular expression");
}

static void test_refuse_bad_ref(void **state)
{
    (void)state;
    assert_refused("{\"$ref\":\"#/$defs/nope\"}",
                   "at /$ref: $ref \"#/$defs/nope\" does not point at a schema in this document");
    assert_refused("{\"required\":[\"a\"],\"properties\":{\"a\":{\"$ref\":\"#/required\"}}}",
                   "at /properties/a/$ref: $ref \"#/required\" does not point at a schema in "
                   "this document");
    assert_refused("{\"properties\":{\"a\":{\"$ref\":\"https://example.com/s.json\"}}}",
                   "at /properties/a/$ref: $ref \"https://example.com/s.json\" refers to another "
                   "schema (\"https://example.com/s.json\"), and no resolver for other schemas is "
                   "configured");
    assert_refused("{\"$ref\":\"#foo\"}",
                   "at /$ref: $ref \"#foo\" does not point at a schema in this document");
    assert_refused("{\"$ref\":\"other.json\"}",
                   "at /$ref: $ref \"other.json\" does not resolve: no schema \"other.json\" is "
                   "known");
    assert_refused("{\"$ref\":\"#/$defs/a~2\"}",
                   "at /$ref: $ref \"#/$defs/a~2\" has an invalid escape (\"~\" must be "
                   "followed by 0 or 1)");
    assert_refused("{\"$ref\":\"#/%zz\"}",
                   "at /$ref: malformed percent-encoding in $ref \"#/%zz\"");
    assert_refused("{\"$ref\":3}", "at /$ref: must be a string, got integer");
}

static void test_refuse_ref_cycles(void **state)
{
    (void)state;
    assert_refused("{\"allOf\":[{\"$ref\":\"#\"}]}",
                   "at /allOf/0/$ref: $ref \"#\" forms a cycle that never descends into the "
                   "document (validation would recurse forever)");
    assert_refused("{\"$defs\":{\"a\":{\"$ref\":\"#/$defs/b\"},"
                   "\"b\":{\"anyOf\":[{\"$ref\":\"#/$defs/a\"}]}},\"$ref\":\"#/$defs/a\"}",
                   "at /$defs/b/anyOf/0/$ref: $ref \"#/$defs/a\" forms a cycle that never "
                   "descends into the document (validation would recurse forever)");
    assert_refused("{\"$defs\":{\"a\":{\"$ref\":\"#/$defs/a\"}}}",
                   "at /$defs/a/$ref: $ref \"#/$defs/a\" forms a cycle that never descends "
                   "into the document (validation would recurse forever)");
}

static void test_refuse_unknown_keyword(void **state)
{
    (void)state;
    options = &strict_options;
    assert_refused("{\"properties\":{\"port\":{\"type\":\"integer\"}},\"requried\":[\"port\"]}",
                   "at /requried: unknown keyword \"requried\" (did you mean \"required\"?)");
    assert_refused("{\"properties\":{\"a\":{\"maxLenght\":3}}}",
                   "at /properties/a/maxLenght: unknown keyword \"maxLenght\" (did you mean "
                   "\"maxLength\"?)");
    assert_refused("{\"frobnicate\":1}", "at /frobnicate: unknown keyword \"frobnicate\"");
    assert_refused("{\"definitions\":{}}",
                   "at /definitions: keyword \"definitions\" is not part of draft 2020-12 (use "
                   "\"$defs\")");
    assert_refused("{\"$schema\":\"http://json-schema.org/draft-07/schema#\",\"$defs\":{}}",
                   "at /$defs: keyword \"$defs\" is not part of draft 7 (use \"definitions\")");
    assert_refused("{\"enum\":[]}", "at /enum: must not be empty (no value could ever match)");
    assert_refused("{\"format\":\"date_time\"}",
                   "at /format: unknown format \"date_time\" (supported: date-time, date, time, "
                   "duration, email, idn-email, hostname, idn-hostname, ipv4, ipv6, uri, "
                   "uri-reference, iri, iri-reference, uuid, uri-template, json-pointer, "
                   "relative-json-pointer, regex)");
    options = NULL;
    /* By default unknown keywords are ignored, as the specification says, also the
     * subschemas under them. */
    assert_valid("{\"frobnicate\":{\"type\":\"string\"},\"x-vendor\":1}", "3");
    assert_invalid("{\"enum\":[]}", "[]", {"", "enum"});
}

static void test_annotations_accepted(void **state)
{
    (void)state;
    const char *schema =
        "{\"$schema\":\"https://json-schema.org/draft/2020-12/schema\","
        "\"$id\":\"https://example.com/conf.json\",\"title\":\"t\",\"description\":\"d\","
        "\"default\":{\"any\":[1]},\"examples\":[1,\"x\"],\"$comment\":\"c\","
        "\"deprecated\":false,\"readOnly\":true,\"writeOnly\":false,\"type\":\"integer\"}";
    assert_valid(schema, "1");
    assert_invalid(schema, "\"x\"", {"", "type"});
}

static void test_compile_copies_schema(void **state)
{
    (void)state;
    json_t *schema = parse("{\"properties\":{\"a\":{\"enum\":[\"x\"]}},\"required\":[\"a\"]}");
    struct jsonschema *s = NULL;
    char err[256];
    assert_int_equal(jsonschema_compile(schema, &s, err, sizeof err), 0);
    /* Changing the caller's JSON after compilation changes nothing. */
    json_object_clear(schema);
    json_decref(schema);
    json_t *doc = parse("{\"a\":\"y\"}");
    json_t *errors = validate_value(s, doc);
    check_errors(errors, WANT({"/a", "enum"}), "after the caller's schema is gone");
    json_decref(doc);
    jsonschema_free(s);
    jsonschema_free(NULL);
}

static void test_compile_message_buffer(void **state)
{
    (void)state;
    json_t *schema = parse("{\"minimum\":\"3\"}");
    struct jsonschema *s = NULL;
    char small[8];
    /* A short buffer gets a cut but terminated message; no buffer at all is allowed. */
    assert_int_equal(jsonschema_compile(schema, &s, small, sizeof small), JSONSCHEMA_EBADSCHEMA);
    assert_string_equal(small, "at /min");
    assert_int_equal(jsonschema_compile(schema, &s, NULL, 0), JSONSCHEMA_EBADSCHEMA);
    assert_null(s);
    json_decref(schema);
}

/* ---- limits ------------------------------------------------------------------------- */

static void test_deep_document_is_an_error(void **state)
{
    (void)state;
    struct jsonschema *s = compile_text("{\"items\":{\"$ref\":\"#\"}}");
    json_t *doc = nested_arrays(10000);
    json_t *errors = validate_value(s, doc);
    assert_int_equal(json_array_size(errors), 1);
    json_t *e = json_array_get(errors, 0);
    assert_string_equal(json_string_value(json_object_get(e, "keyword")), "limit");
    assert_string_equal(json_string_value(json_object_get(e, "message")),
                        "arrays and objects nest deeper than 128 levels here");
    /* The pointer names the 129th array: 128 steps of "/0". */
    const char *path = json_string_value(json_object_get(e, "path"));
    assert_int_equal(strlen(path), 2 * JSONSCHEMA_MAX_DEPTH);
    assert_memory_equal(path, "/0/0/0", 6);
    json_decref(errors);
    json_decref(doc);

    doc = nested_arrays(JSONSCHEMA_MAX_DEPTH);
    assert_null(validate_value(s, doc));
    json_decref(doc);
    doc = nested_arrays(JSONSCHEMA_MAX_DEPTH + 1);
    check_errors(validate_value(s, doc),
                 WANT({"/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0"
                       "/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0"
                       "/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0"
                       "/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0"
                       "/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0"
                       "/0/0",
                       "limit"}),
                 "129 nested arrays");
    json_decref(doc);
    jsonschema_free(s);
}

static void test_deep_schema_is_refused(void **state)
{
    (void)state;
    json_t *schema = json_object(), *cur = schema;
    for (int i = 0; i < 10000; i++) {
        json_t *inner = json_object();
        json_object_set_new(cur, "not", inner);
        cur = inner;
    }
    struct jsonschema *s = NULL;
    char err[2048];
    assert_int_equal(jsonschema_compile(schema, &s, err, sizeof err), JSONSCHEMA_EBADSCHEMA);
    assert_null(s);
    char want[2048] = "at ";
    for (int i = 0; i < JSONSCHEMA_MAX_DEPTH; i++)
        strcat(want, "/not");
    strcat(want, ": schema nests arrays and objects deeper than 128 levels");
    assert_string_equal(err, want);
    json_decref(schema);
}

static void test_long_ref_chain_is_an_error(void **state)
{
    (void)state;
    /* 600 $defs, each a $ref to the next: no cycle, but deeper than the evaluation limit. */
    size_t cap = 64 * 1024;
    char *text = malloc(cap);
    assert_non_null(text);
    size_t len = (size_t)snprintf(text, cap, "{\"$ref\":\"#/$defs/d0\",\"$defs\":{");
    for (int i = 0; i < 600; i++)
        len += (size_t)snprintf(text + len, cap - len, "\"d%d\":{\"$ref\":\"#/$defs/d%d\"},", i,
                                i + 1);
    snprintf(text + len, cap - len, "\"d600\":{\"type\":\"string\"}}}");
    json_t *errors = run(text, "1");
    assert_non_null(errors);
    assert_int_equal(json_array_size(errors), 1);
    json_t *e = json_array_get(errors, 0);
    assert_string_equal(json_string_value(json_object_get(e, "keyword")), "limit");
    assert_string_equal(json_string_value(json_object_get(e, "message")),
                        "validation stopped: more than 512 subschemas nested (a long chain of "
                        "$ref?)");
    json_decref(errors);
    free(text);
}

static void test_exponential_schema_is_linear(void **state)
{
    (void)state;
    /* The first branch of anyOf does all the work of the second and then fails, so every
     * level of nesting would double the work: 2^40 evaluations. The validator remembers the
     * result of each reference target on each array, so it is one evaluation per level. */
    struct jsonschema *s = compile_text("{\"anyOf\":[{\"items\":{\"$ref\":\"#\"},\"contains\":"
                                        "false},{\"items\":{\"$ref\":\"#\"}}]}");
    json_t *doc = nested_arrays(40);
    assert_null(validate_value(s, doc));
    json_decref(doc);
    jsonschema_free(s);
}

static void test_exponential_schema_hits_step_budget(void **state)
{
    (void)state;
    /* The same through $dynamicRef: results then depend on the dynamic scope and are not
     * remembered, so the step budget is what stops it. */
    struct jsonschema *s =
        compile_text("{\"$dynamicAnchor\":\"n\",\"anyOf\":[{\"items\":{\"$dynamicRef\":\"#n\"},"
                     "\"contains\":false},{\"items\":{\"$dynamicRef\":\"#n\"}}]}");
    json_t *doc = nested_arrays(40);
    json_t *errors = validate_value(s, doc);
    json_t *last = json_array_get(errors, json_array_size(errors) - 1);
    assert_string_equal(json_string_value(json_object_get(last, "keyword")), "limit");
    assert_non_null(strstr(json_string_value(json_object_get(last, "message")), "steps"));
    json_decref(errors);
    json_decref(doc);
    jsonschema_free(s);
}

static void test_regex_backtracking_is_bounded(void **state)
{
    (void)state;
    /* Exponential backtracking: without the match limit this takes years. */
    assert_failure("{\"pattern\":\"^(a|aa)+$\"}",
                   "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab\"", "/pattern",
                   "could not be matched against \"^(a|aa)+$\": match limit exceeded");
}

static void test_error_cap(void **state)
{
    (void)state;
    struct jsonschema *s = compile_text("{\"items\":{\"type\":\"string\"}}");
    json_t *doc = json_array();
    for (int i = 0; i < 150; i++)
        json_array_append_new(doc, json_integer(i));
    json_t *errors = validate_value(s, doc);
    assert_int_equal(json_array_size(errors), JSONSCHEMA_MAX_ERRORS + 1);
    json_t *e = json_array_get(errors, JSONSCHEMA_MAX_ERRORS - 1);
    assert_string_equal(json_string_value(json_object_get(e, "path")), "/99");
    e = json_array_get(errors, JSONSCHEMA_MAX_ERRORS);
    assert_string_equal(json_string_value(json_object_get(e, "keyword")), "limit");
    assert_string_equal(json_string_value(json_object_get(e, "message")),
                        "more than 100 failures; only the first 100 are listed");
    json_decref(errors);
    json_decref(doc);

    /* Exactly the cap: no "limit" entry. */
    doc = json_array();
    for (int i = 0; i < JSONSCHEMA_MAX_ERRORS; i++)
        json_array_append_new(doc, json_integer(i));
    errors = validate_value(s, doc);
    assert_int_equal(json_array_size(errors), JSONSCHEMA_MAX_ERRORS);
    json_decref(errors);
    json_decref(doc);
    jsonschema_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_type_single),
        cmocka_unit_test(test_type_integer_accepts_integral_reals),
        cmocka_unit_test(test_type_list),
        cmocka_unit_test(test_enum),
        cmocka_unit_test(test_const),
        cmocka_unit_test(test_minimum_maximum),
        cmocka_unit_test(test_exclusive_bounds),
        cmocka_unit_test(test_multiple_of),
        cmocka_unit_test(test_length_counts_code_points),
        cmocka_unit_test(test_pattern),
        cmocka_unit_test(test_formats),
        cmocka_unit_test(test_properties_lists_every_failure),
        cmocka_unit_test(test_required),
        cmocka_unit_test(test_additional_properties),
        cmocka_unit_test(test_pattern_properties),
        cmocka_unit_test(test_property_names),
        cmocka_unit_test(test_min_max_properties),
        cmocka_unit_test(test_dependent_required),
        cmocka_unit_test(test_dependent_schemas),
        cmocka_unit_test(test_items),
        cmocka_unit_test(test_prefix_items),
        cmocka_unit_test(test_contains),
        cmocka_unit_test(test_min_max_items),
        cmocka_unit_test(test_unique_items),
        cmocka_unit_test(test_all_of),
        cmocka_unit_test(test_any_of),
        cmocka_unit_test(test_one_of),
        cmocka_unit_test(test_not),
        cmocka_unit_test(test_if_then_else),
        cmocka_unit_test(test_boolean_schemas),
        cmocka_unit_test(test_ref_nested_defs),
        cmocka_unit_test(test_ref_to_root),
        cmocka_unit_test(test_ref_pointer_escapes),
        cmocka_unit_test(test_ref_anywhere_and_siblings),
        cmocka_unit_test(test_refuse_unknown_type),
        cmocka_unit_test(test_refuse_malformed_values),
        cmocka_unit_test(test_refuse_bad_regex),
        cmocka_unit_test(test_refuse_bad_ref),
        cmocka_unit_test(test_refuse_ref_cycles),
        cmocka_unit_test(test_refuse_unknown_keyword),
        cmocka_unit_test(test_annotations_accepted),
        cmocka_unit_test(test_compile_copies_schema),
        cmocka_unit_test(test_compile_message_buffer),
        cmocka_unit_test(test_deep_document_is_an_error),
        cmocka_unit_test(test_deep_schema_is_refused),
        cmocka_unit_test(test_long_ref_chain_is_an_error),
        cmocka_unit_test(test_exponential_schema_is_linear),
        cmocka_unit_test(test_exponential_schema_hits_step_budget),
        cmocka_unit_test(test_regex_backtracking_is_bounded),
        cmocka_unit_test(test_error_cap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
