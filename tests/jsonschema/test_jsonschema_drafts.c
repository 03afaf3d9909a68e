/*
 * JSON Schema beyond the keywords of test_jsonschema.c: the dialects chosen by "$schema"
 * (2020-12, 2019-09, 7, 6, 4), identifiers and anchors anywhere, $dynamicRef and
 * $recursiveRef, references to other schemas through the resolver hook, the unevaluated
 * keywords, the options of jsonschema_compile_ex(), ECMA-262 regexes, and the cost of deep and
 * wide schemas.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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

/* Documents the resolver of these tests serves, by URI; RESOLVED counts its calls. */
static const struct {
    const char *uri, *json;
} remote_docs[] = {
    {"https://example.com/port.json", "{\"type\":\"integer\",\"minimum\":1,\"maximum\":65535}"},
    {"https://example.com/defs.json", "{\"$defs\":{\"name\":{\"type\":\"string\",\"minLength\":1},"
                                      "\"tagged\":{\"$anchor\":\"tag\",\"pattern\":\"^t-\"}}}"},
    {"https://example.com/draft7.json",
     "{\"$schema\":\"http://json-schema.org/draft-07/schema#\","
     "\"definitions\":{\"n\":{\"type\":\"number\"}},"
     "\"properties\":{\"a\":{\"$ref\":\"#/definitions/n\",\"type\":\"string\"}}}"},
    {"https://example.com/loop.json", "{\"items\":{\"$ref\":\"https://example.com/loop.json\"}}"},
    {"https://example.com/meta-applicator",
     "{\"$schema\":\"https://json-schema.org/draft/2020-12/schema\","
     "\"$vocabulary\":{\"https://json-schema.org/draft/2020-12/vocab/core\":true,"
     "\"https://json-schema.org/draft/2020-12/vocab/applicator\":true}}"},
    {"https://example.com/meta-formats",
     "{\"$schema\":\"https://json-schema.org/draft/2020-12/schema\","
     "\"$vocabulary\":{\"https://json-schema.org/draft/2020-12/vocab/core\":true,"
     "\"https://json-schema.org/draft/2020-12/vocab/validation\":true,"
     "\"https://json-schema.org/draft/2020-12/vocab/format-assertion\":true}}"},
    {"https://example.com/bad.json", "{\"properties\":{\"a\":{\"minimum\":\"1\"}}}"},
};
static int resolved;

static json_t *resolver(const char *uri, void *data)
{
    assert_ptr_equal(data, &resolved);
    resolved++;
    for (size_t i = 0; i < sizeof remote_docs / sizeof *remote_docs; i++) {
        if (strcmp(uri, remote_docs[i].uri) == 0)
            return parse(remote_docs[i].json);
    }
    return NULL;
}

static const struct jsonschema_options with_resolver = {.resolver = resolver,
                                                        .resolver_data = &resolved};

static struct jsonschema *compile_opts(const char *text, const struct jsonschema_options *opts)
{
    json_t *schema = parse(text);
    struct jsonschema *s = NULL;
    char err[512];
    int rc = jsonschema_compile_ex(schema, opts, &s, err, sizeof err);
    json_decref(schema);
    if (rc != 0)
        fail_msg("schema %s refused: %s", text, err);
    return s;
}

/* Validates DOC against S with and without an error list (the verdicts must agree); returns
 * whether it is valid. */
static bool valid_against(const struct jsonschema *s, const char *doc_text)
{
    json_t *doc = parse(doc_text);
    json_t *errors = NULL;
    int rc = jsonschema_validate(s, doc, &errors);
    assert_int_equal(jsonschema_validate(s, doc, NULL), rc);
    assert_true(rc == 0 || rc == JSONSCHEMA_INVALID);
    assert_true((rc == 0) == (errors == NULL));
    json_decref(errors);
    json_decref(doc);
    return rc == 0;
}

/* Checks each of the N documents in DOCS ("+" prefix: valid, "-": invalid) against SCHEMA
 * compiled with OPTS. */
static void check_docs(const char *schema, const struct jsonschema_options *opts,
                       const char *const *docs, size_t n)
{
    struct jsonschema *s = compile_opts(schema, opts);
    for (size_t i = 0; i < n; i++) {
        bool want = docs[i][0] == '+';
        if (valid_against(s, docs[i] + 1) != want)
            fail_msg("%s should be %s against %s", docs[i] + 1, want ? "valid" : "invalid", schema);
    }
    jsonschema_free(s);
}

#define DOCS(...)                                                                                  \
    (const char *const[]){__VA_ARGS__},                                                            \
        sizeof((const char *const[]){__VA_ARGS__}) / sizeof(const char *)
#define check(schema, opts, ...) check_docs(schema, opts, DOCS(__VA_ARGS__))

static void assert_refused_opts(const char *text, const struct jsonschema_options *opts,
                                const char *message)
{
    json_t *schema = parse(text);
    struct jsonschema *s = (struct jsonschema *)1;
    char err[512];
    assert_int_equal(jsonschema_compile_ex(schema, opts, &s, err, sizeof err),
                     JSONSCHEMA_EBADSCHEMA);
    assert_null(s);
    assert_string_equal(err, message);
    json_decref(schema);
}

/* ---- dialects ----------------------------------------------------------------------- */

static void test_draft7_ref_ignores_siblings(void **state)
{
    (void)state;
    /* Draft 7: keywords beside $ref, $id included, are ignored; "definitions" holds schemas;
     * the array form of items and additionalItems; dependencies in both forms. */
    check("{\"$schema\":\"http://json-schema.org/draft-07/schema#\","
          "\"definitions\":{\"s\":{\"type\":\"string\"}},"
          "\"properties\":{\"a\":{\"$ref\":\"#/definitions/s\",\"maxLength\":1}}}",
          NULL, "+{\"a\":\"long\"}", "-{\"a\":1}");
    check("{\"$schema\":\"http://json-schema.org/draft-07/schema\","
          "\"items\":[{\"type\":\"integer\"}],\"additionalItems\":false}",
          NULL, "+[1]", "-[1,2]", "-[\"x\"]");
    check("{\"$schema\":\"http://json-schema.org/draft-07/schema#\","
          "\"dependencies\":{\"a\":[\"b\"],\"c\":{\"required\":[\"d\"]}}}",
          NULL, "+{\"a\":1,\"b\":2}", "-{\"a\":1}", "-{\"c\":1}", "+{\"c\":1,\"d\":1}");
    /* In 2020-12 the same $ref has siblings that apply. */
    check("{\"$defs\":{\"s\":{\"type\":\"string\"}},"
          "\"properties\":{\"a\":{\"$ref\":\"#/$defs/s\",\"maxLength\":1}}}",
          NULL, "-{\"a\":\"long\"}", "+{\"a\":\"l\"}");
}

/* Draft 7's array "dependencies" is reported under its own name, not 2019-09's. */
static void test_draft7_dependencies_reported_as_written(void **state)
{
    (void)state;
    json_t *schema = parse("{\"$schema\":\"http://json-schema.org/draft-07/schema#\","
                           "\"dependencies\":{\"shell\":[\"run\"]}}");
    json_t *doc = parse("{\"shell\":\"bash\"}");
    struct jsonschema *s = NULL;
    char err[256];
    assert_int_equal(jsonschema_compile(schema, &s, err, sizeof(err)), 0);
    json_t *errors = NULL;
    assert_int_equal(jsonschema_validate(s, doc, &errors), JSONSCHEMA_INVALID);
    json_t *e = json_array_get(errors, 0);
    assert_string_equal(json_string_value(json_object_get(e, "keyword")), "dependencies");
    assert_string_equal(json_string_value(json_object_get(e, "schema_path")), "/dependencies");
    json_decref(errors);
    jsonschema_free(s);
    json_decref(schema);
    json_decref(doc);
}

static void test_draft4(void **state)
{
    (void)state;
    /* Boolean exclusiveMaximum / exclusiveMinimum modify maximum / minimum; "id" is the
     * identifier; a draft-4 default dialect needs no $schema. */
    static const struct jsonschema_options draft4 = {.default_dialect = JSONSCHEMA_DRAFT4};
    check("{\"maximum\":3,\"exclusiveMaximum\":true,\"minimum\":1,\"exclusiveMinimum\":true}",
          &draft4, "+2", "-3", "-1", "+2.5");
    check("{\"id\":\"http://example.com/root.json\",\"definitions\":{\"a\":{\"id\":\"#foo\","
          "\"type\":\"integer\"}},\"properties\":{\"x\":{\"$ref\":\"#foo\"}}}",
          &draft4, "+{\"x\":1}", "-{\"x\":\"1\"}");
    /* const is not a draft-4 keyword: ignored. */
    check("{\"$schema\":\"http://json-schema.org/draft-04/schema#\",\"const\":1}", NULL, "+2");
}

static void test_draft2019_keywords(void **state)
{
    (void)state;
    check("{\"$schema\":\"https://json-schema.org/draft/2019-09/schema\","
          "\"items\":[{\"type\":\"string\"}],\"additionalItems\":{\"type\":\"integer\"}}",
          NULL, "+[\"a\",1,2]", "-[\"a\",\"b\"]", "-[1]");
    /* prefixItems is not a 2019-09 keyword. */
    check("{\"$schema\":\"https://json-schema.org/draft/2019-09/schema\","
          "\"prefixItems\":[false]}",
          NULL, "+[1]");
    /* $recursiveRef: the extension's $recursiveAnchor wins over the base's. */
    const char *tree =
        "{\"$schema\":\"https://json-schema.org/draft/2019-09/schema\","
        "\"$id\":\"https://example.com/strict-tree\",\"$recursiveAnchor\":true,"
        "\"$ref\":\"tree\",\"unevaluatedProperties\":false,"
        "\"$defs\":{\"tree\":{\"$id\":\"tree\",\"$recursiveAnchor\":true,\"type\":\"object\","
        "\"properties\":{\"data\":true,\"children\":{\"type\":\"array\","
        "\"items\":{\"$recursiveRef\":\"#\"}}}}}}";
    check(tree, NULL, "+{\"children\":[{\"data\":1}]}", "-{\"children\":[{\"daat\":1}]}");
}

static void test_older_form_in_2020_is_explained(void **state)
{
    (void)state;
    assert_refused_opts("{\"properties\":{\"a\":{\"items\":[true]}}}", NULL,
                        "at /properties/a/items: the array form of \"items\" is from draft "
                        "2019-09 and earlier; in draft 2020-12 write the array as "
                        "\"prefixItems\" (and \"items\" for the items after it)");
    static const struct jsonschema_options strict = {.strict = true};
    assert_refused_opts("{\"additionalItems\":false}", &strict,
                        "at /additionalItems: keyword \"additionalItems\" is not part of draft "
                        "2020-12 (use \"items\" after \"prefixItems\")");
    assert_refused_opts("{\"$defs\":{\"a\":{\"$id\":3}}}", NULL,
                        "at /$defs/a/$id: must be a string, got integer");
    assert_refused_opts("{\"$anchor\":true}", NULL, "at /$anchor: must be a string, got boolean");
    /* Without strict, keywords of other drafts are unknown keywords: ignored. */
    check("{\"additionalItems\":false,\"definitions\":{\"x\":false}}", NULL, "+[1,2]");
}

/* ---- identifiers, anchors and references --------------------------------------------- */

static void test_ids_and_anchors_anywhere(void **state)
{
    (void)state;
    /* An embedded $id starts a resource: "#" and relative references inside it resolve
     * against it. */
    check("{\"$id\":\"https://example.com/root.json\","
          "\"properties\":{\"a\":{\"$ref\":\"item.json\"},\"b\":{\"$ref\":\"#/$defs/n\"}},"
          "\"$defs\":{\"n\":{\"type\":\"null\"},"
          "\"item\":{\"$id\":\"item.json\",\"type\":\"array\",\"items\":{\"$ref\":\"#\"}}}}",
          NULL, "+{\"a\":[[],[[]]],\"b\":null}", "-{\"a\":[1]}", "-{\"b\":1}");
    check("{\"$ref\":\"#pos\",\"$defs\":{\"p\":{\"$anchor\":\"pos\",\"minimum\":0}}}", NULL, "+1",
          "--1");
    check("{\"$id\":\"urn:uuid:deadbeef-1234-ffff-ffff-4321feebdaed\","
          "\"properties\":{\"a\":{\"$ref\":\"urn:uuid:deadbeef-1234-ffff-ffff-4321feebdaed#/"
          "$defs/s\"}},\"$defs\":{\"s\":{\"type\":\"string\"}}}",
          NULL, "+{\"a\":\"x\"}", "-{\"a\":1}");
    /* A JSON Pointer may reach into a keyword this dialect does not know. */
    check("{\"$ref\":\"#/definitions/s\",\"definitions\":{\"s\":{\"type\":\"string\"}}}", NULL,
          "+\"x\"", "-1");
}

static void test_dynamic_ref(void **state)
{
    (void)state;
    /* The generic list's items are whatever the outermost "item" dynamic anchor says. */
    const char *list = "{\"$id\":\"https://example.com/strings\",\"$ref\":\"list\","
                       "\"$defs\":{\"item\":{\"$dynamicAnchor\":\"item\",\"type\":\"string\"},"
                       "\"list\":{\"$id\":\"list\",\"type\":\"array\","
                       "\"items\":{\"$dynamicRef\":\"#item\"},"
                       "\"$defs\":{\"item\":{\"$dynamicAnchor\":\"item\"}}}}}";
    check(list, NULL, "+[\"a\"]", "-[1]");
    /* Without a $dynamicAnchor at the static target, $dynamicRef is a $ref. */
    check("{\"$id\":\"https://example.com/r\",\"$defs\":{\"a\":{\"$anchor\":\"x\","
          "\"type\":\"integer\"}},\"items\":{\"$dynamicRef\":\"#x\"}}",
          NULL, "+[1]", "-[\"1\"]");
}

static void test_resolver(void **state)
{
    (void)state;
    resolved = 0;
    check("{\"properties\":{\"port\":{\"$ref\":\"https://example.com/port.json\"},"
          "\"p2\":{\"$ref\":\"https://example.com/port.json#\"},"
          "\"name\":{\"$ref\":\"https://example.com/defs.json#/$defs/name\"},"
          "\"tag\":{\"$ref\":\"https://example.com/defs.json#tag\"}}}",
          &with_resolver, "+{\"port\":80,\"name\":\"n\",\"tag\":\"t-1\"}", "-{\"port\":0}",
          "-{\"p2\":\"80\"}", "-{\"name\":\"\"}", "-{\"tag\":\"x\"}");
    /* Each document is fetched once. */
    assert_int_equal(resolved, 2);
    /* A fetched document keeps its own dialect: draft 7 ignores the type beside $ref. */
    check("{\"$ref\":\"https://example.com/draft7.json\"}", &with_resolver, "+{\"a\":1}",
          "-{\"a\":\"x\"}");
    /* A fetched document may refer to itself. */
    check("{\"$ref\":\"https://example.com/loop.json\"}", &with_resolver, "+[[[]]]", "+[]");
    resolved = 0;
    assert_refused_opts("{\"$ref\":\"https://example.com/nope.json\"}", &with_resolver,
                        "at /$ref: $ref \"https://example.com/nope.json\" does not resolve: no "
                        "schema \"https://example.com/nope.json\" is known");
    assert_int_equal(resolved, 1);
    assert_refused_opts("{\"items\":{\"$ref\":\"https://example.com/bad.json\"}}", &with_resolver,
                        "at /items/$ref: in the schema \"https://example.com/bad.json\", at "
                        "/properties/a/minimum: must be a number, got string");
    assert_refused_opts("{\"$ref\":\"https://example.com/defs.json#/$defs/none\"}", &with_resolver,
                        "at /$ref: $ref \"https://example.com/defs.json#/$defs/none\" does not "
                        "point at a schema in this document");
}

/* ---- unevaluated keywords ------------------------------------------------------------ */

static void test_unevaluated_properties(void **state)
{
    (void)state;
    check("{\"allOf\":[{\"properties\":{\"a\":true}}],\"properties\":{\"b\":true},"
          "\"unevaluatedProperties\":false}",
          NULL, "+{\"a\":1,\"b\":2}", "-{\"a\":1,\"c\":3}");
    /* Only the alternatives that match contribute. */
    check("{\"anyOf\":[{\"properties\":{\"a\":{\"type\":\"string\"}}},"
          "{\"properties\":{\"b\":true}}],\"unevaluatedProperties\":false}",
          NULL, "+{\"a\":\"x\",\"b\":1}", "-{\"a\":1,\"b\":1}", "+{\"b\":1}");
    /* if contributes even without then or else; not never does. */
    check("{\"if\":{\"properties\":{\"a\":{\"const\":1}}},\"unevaluatedProperties\":false}", NULL,
          "+{\"a\":1}", "-{\"a\":2}");
    check("{\"not\":{\"not\":{\"properties\":{\"a\":true}}},\"unevaluatedProperties\":false}", NULL,
          "-{\"a\":1}", "+{}");
    /* Through $ref, and with a schema instead of false. */
    check("{\"$ref\":\"#/$defs/a\",\"$defs\":{\"a\":{\"properties\":{\"a\":true}}},"
          "\"unevaluatedProperties\":{\"type\":\"integer\"}}",
          NULL, "+{\"a\":\"x\",\"b\":1}", "-{\"a\":1,\"b\":\"x\"}");
}

static void test_unevaluated_items(void **state)
{
    (void)state;
    check("{\"prefixItems\":[true],\"allOf\":[{\"prefixItems\":[true,true]}],"
          "\"unevaluatedItems\":false}",
          NULL, "+[1,2]", "-[1,2,3]");
    /* In 2020-12 items that match contains count as evaluated; in 2019-09 they do not. */
    check("{\"contains\":{\"minimum\":5},\"unevaluatedItems\":{\"maximum\":3}}", NULL, "+[5,1]",
          "-[5,4]");
    check("{\"$schema\":\"https://json-schema.org/draft/2019-09/schema\","
          "\"contains\":{\"minimum\":5},\"unevaluatedItems\":{\"maximum\":3}}",
          NULL, "-[5,1]");
}

/* ---- options ------------------------------------------------------------------------- */

static void test_options(void **state)
{
    (void)state;
    /* NULL options and zeroed options are the defaults. */
    static const struct jsonschema_options zero = {0};
    check("{\"format\":\"ipv4\",\"x-vendor\":{\"type\":\"string\"}}", NULL, "+\"no\"", "+1");
    check("{\"format\":\"ipv4\",\"x-vendor\":true}", &zero, "+\"no\"");
    static const struct jsonschema_options formats = {.format_assertion = true};
    check("{\"format\":\"ipv4\"}", &formats, "-\"no\"", "+\"10.0.0.1\"", "+1");
    static const struct jsonschema_options strict = {.strict = true};
    assert_refused_opts("{\"x-vendor\":1}", &strict, "at /x-vendor: unknown keyword \"x-vendor\"");
    /* An unknown $schema keeps the default dialect. */
    static const struct jsonschema_options draft7 = {.default_dialect = JSONSCHEMA_DRAFT7};
    check("{\"$schema\":\"https://example.com/meta\",\"$ref\":\"#/definitions/"
          "a\",\"type\":\"string\","
          "\"definitions\":{\"a\":{\"type\":\"integer\"}}}",
          &draft7, "+1", "-\"1\"");
}

static void test_custom_metaschema_vocabularies(void **state)
{
    (void)state;
    /* Without the validation vocabulary, minimum is an unknown keyword; applicators work. */
    check("{\"$schema\":\"https://example.com/meta-applicator\",\"minimum\":5,"
          "\"properties\":{\"a\":false}}",
          &with_resolver, "+1", "-{\"a\":1}");
    /* With the format-assertion vocabulary, format asserts without the option. */
    check("{\"$schema\":\"https://example.com/meta-formats\",\"format\":\"ipv4\",\"minimum\":5}",
          &with_resolver, "-\"x\"", "+\"10.0.0.1\"", "-1");
    /* An unknown meta-schema the resolver does not have: the default dialect. */
    check("{\"$schema\":\"https://example.com/none\",\"minimum\":5}", &with_resolver, "-1");
}

/* ---- content keywords ----------------------------------------------------------------- */

static void test_content_is_annotation(void **state)
{
    (void)state;
    check("{\"contentMediaType\":\"application/json\",\"contentEncoding\":\"base64\","
          "\"contentSchema\":{\"type\":\"object\"}}",
          NULL, "+\"not base64!\"", "+1");
}

/* ---- regular expressions ----------------------------------------------------------- */

static void test_ecma_regex(void **state)
{
    (void)state;
    /* \d and \w are ASCII; \s includes Unicode spaces; long property names work. */
    check("{\"pattern\":\"^\\\\d+$\"}", NULL, "+\"42\"", "-\"\xd9\xa4\"");
    check("{\"pattern\":\"^\\\\w$\"}", NULL, "+\"a\"", "-\"\xc3\xa9\"");
    check("{\"pattern\":\"^\\\\s$\"}", NULL, "+\" \"", "+\"\xc2\xa0\"", "+\"\xe2\x80\xa8\"",
          "-\"x\"");
    check("{\"pattern\":\"^\\\\S$\"}", NULL, "-\"\xc2\xa0\"", "+\"x\"");
    check("{\"pattern\":\"^\\\\p{Letter}+$\"}", NULL, "+\"\xc3\xa9t\xc3\xa9\"", "-\"1\"");
    check("{\"pattern\":\"^\\\\p{Lu}$\"}", NULL, "+\"A\"", "-\"a\"");
    check("{\"pattern\":\"^\\\\p{Script=Greek}\\\\p{General_Category=Letter}$\"}", NULL,
          "+\"\xce\xb1\xce\xb2\"", "-\"ab\"");
    check("{\"patternProperties\":{\"^[\\\\s_]+$\":false}}", NULL, "-{\"\xe3\x80\x80\":1}",
          "+{\"a\":1}");
    check("{\"pattern\":\"^\\\\D\\\\W$\"}", NULL, "+\"\xdf\x80\xc3\xa9\"", "-\"0\xc3\xa9\"");
    check("{\"pattern\":\"^\\\\p{digit}+$\"}", NULL, "+\"4\xe0\xa7\xaa\"", "-\"x\"");
    /* $ only at the very end; control escapes; code points beyond the BMP. */
    check("{\"pattern\":\"^abc$\"}", NULL, "+\"abc\"", "-\"abc\\n\"");
    check("{\"pattern\":\"^\\\\cC\\\\t$\"}", NULL, "+\"\\u0003\\t\"", "-\"cC\"");
    check("{\"pattern\":\"^\\\\u{1F600}\\\\uD83D\\\\uDE00$\"}", NULL,
          "+\"\xf0\x9f\x98\x80\xf0\x9f\x98\x80\"", "-\"x\"");
    check("{\"pattern\":\"^[\\\\u{41}-\\\\u{5A}]$\"}", NULL, "+\"Q\"", "-\"q\"");
    /* Escapes ECMA-262 does not have are refused, not given PCRE2's meaning. */
    assert_refused_opts("{\"pattern\":\"x\\\\z\"}", NULL,
                        "at /pattern: invalid regular expression at offset 1: \"\\z\" is not an "
                        "ECMA-262 escape");
    /* An invalid pattern is reported at its offset in the source. */
    assert_refused_opts("{\"pattern\":\"\\\\s(\"}", NULL,
                        "at /pattern: invalid regular expression at offset 3: missing closing "
                        "parenthesis");
}

/* ---- cost ---------------------------------------------------------------------------- */

static double seconds(void)
{
    return (double)clock() / CLOCKS_PER_SEC;
}

static void test_deep_and_wide_unevaluated(void **state)
{
    (void)state;
    /* Deep: 60 levels of $defs, each an anyOf of two $refs to the next level, with
     * unevaluatedProperties at the top: 2^60 paths, which each level's remembered result
     * makes 60 evaluations. */
    enum { DEEP = 60, WIDE = 1000 };
    json_t *defs = json_object();
    for (int i = 0; i < DEEP; i++) {
        char name[16], next[32];
        snprintf(name, sizeof name, "l%d", i);
        snprintf(next, sizeof next, "#/$defs/l%d", i + 1);
        json_t *level = i == DEEP - 1
                            ? json_pack("{s:{s:{s:s}}}", "properties", "a", "type", "integer")
                            : json_pack("{s:[{s:s},{s:s,s:{s:{s:b}}}]}", "anyOf", "$ref", next,
                                        "$ref", next, "properties", "b", "not", true);
        json_object_set_new(defs, name, level);
    }
    json_t *deep = json_pack("{s:o,s:s,s:b}", "$defs", defs, "$ref", "#/$defs/l0",
                             "unevaluatedProperties", false);
    struct jsonschema *s = NULL;
    char err[256];
    assert_int_equal(jsonschema_compile(deep, &s, err, sizeof err), 0);
    double start = seconds();
    assert_true(valid_against(s, "{\"a\":1}"));
    assert_false(valid_against(s, "{\"a\":1,\"c\":2}"));
    assert_false(valid_against(s, "{\"a\":\"x\"}"));
    jsonschema_free(s);
    json_decref(deep);

    /* A DAG of in-place references on one value: 2^60 paths, 60 evaluations. */
    defs = json_object();
    for (int i = 0; i < DEEP; i++) {
        char name[16], next[32];
        snprintf(name, sizeof name, "l%d", i);
        snprintf(next, sizeof next, "#/$defs/l%d", i + 1);
        json_object_set_new(
            defs, name,
            i == DEEP - 1 ? json_pack("{s:i}", "minimum", 0)
                          : json_pack("{s:[{s:s},{s:s}]}", "allOf", "$ref", next, "$ref", next));
    }
    deep = json_pack("{s:o,s:s}", "$defs", defs, "$ref", "#/$defs/l0");
    assert_int_equal(jsonschema_compile(deep, &s, err, sizeof err), 0);
    assert_true(valid_against(s, "1"));
    assert_false(valid_against(s, "-1"));
    assert_true(valid_against(s, "{\"a\":1}"));
    jsonschema_free(s);
    json_decref(deep);

    /* Wide: anyOf of 1000 alternatives, each declaring one property, on an object with 1000
     * properties: every alternative contributes. */
    json_t *alts = json_array(), *doc = json_object();
    for (int i = 0; i < WIDE; i++) {
        char key[16];
        snprintf(key, sizeof key, "p%d", i);
        json_array_append_new(alts,
                              json_pack("{s:{s:{s:s}}}", "properties", key, "type", "integer"));
        json_object_set_new(doc, key, json_integer(i));
    }
    json_t *wide = json_pack("{s:o,s:b}", "anyOf", alts, "unevaluatedProperties", false);
    assert_int_equal(jsonschema_compile(wide, &s, err, sizeof err), 0);
    assert_int_equal(jsonschema_validate(s, doc, NULL), 0);
    json_object_set_new(doc, "extra", json_true());
    assert_int_equal(jsonschema_validate(s, doc, NULL), JSONSCHEMA_INVALID);
    jsonschema_free(s);
    json_decref(wide);
    json_decref(doc);
    /* Generous even under sanitizers: the point is no exponential blow-up. */
    assert_true(seconds() - start < 5.0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_draft7_ref_ignores_siblings),
        cmocka_unit_test(test_draft4),
        cmocka_unit_test(test_draft7_dependencies_reported_as_written),
        cmocka_unit_test(test_draft2019_keywords),
        cmocka_unit_test(test_older_form_in_2020_is_explained),
        cmocka_unit_test(test_ids_and_anchors_anywhere),
        cmocka_unit_test(test_dynamic_ref),
        cmocka_unit_test(test_resolver),
        cmocka_unit_test(test_unevaluated_properties),
        cmocka_unit_test(test_unevaluated_items),
        cmocka_unit_test(test_options),
        cmocka_unit_test(test_custom_metaschema_vocabularies),
        cmocka_unit_test(test_content_is_annotation),
        cmocka_unit_test(test_ecma_regex),
        cmocka_unit_test(test_deep_and_wide_unevaluated),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
