/* JSON Schema compilation: checks a schema keyword by keyword, in the dialect its "$schema"
 * names, and builds the node tree that jsonschema_validate.c walks (see
 * jsonschema_internal.h for its invariants). URIs and references are jsonschema_ref.c's. */
#include "jsonschema/jsonschema_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonschema/jsonschema_compile.h"
#include "jsonschema/jsonschema_ref.h"
#include "jsonschema/jsonschema_regex.h"
#include "jsonschema/jsonschema_uri.h"
#include "jsonschema/jsonschema_value.h"

#define refuse jsonschema_cc_refuse
#define nomem  jsonschema_cc_nomem

static void node_free(struct node *n)
{
    free(n->path);
    free(n->uri);
    free(n->dynanchors);
    pcre2_code_free(n->pattern);
    for (size_t i = 0; i < n->npattern_properties; i++)
        pcre2_code_free(n->pattern_properties[i].re);
    free(n->pattern_properties);
    json_decref(n->owned_dependent_required);
    free(n->properties.v);
    free(n->dependent_schemas.v);
    free(n->defs.v);
    free(n->prefix_items.v);
    free(n->all_of.v);
    free(n->any_of.v);
    free(n->one_of.v);
    free(n);
}

static void free_uris(struct jsonschema *s)
{
    free(s->by_path);
    s->by_path = NULL;
    s->by_path_cap = 0;
    for (size_t i = 0; i < s->nuris; i++) {
        free(s->uris[i].uri);
        free(s->uris[i].anchor);
    }
    free(s->uris);
    s->uris = NULL;
    s->nuris = s->capuris = 0;
}

void jsonschema_free(struct jsonschema *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->nnodes; i++)
        node_free(s->nodes[i]);
    free(s->nodes);
    free_uris(s);
    for (size_t i = 0; i < s->ndocs; i++)
        json_decref(s->docs[i]);
    free(s->docs);
    free(s);
}

/* ---- compiling ---------------------------------------------------------------------- */

int jsonschema_cc_nomem(struct compiler *cc)
{
    if (cc->errlen > 0)
        snprintf(cc->errmsg, cc->errlen, "out of memory");
    return JSONSCHEMA_ENOMEM;
}

int jsonschema_cc_refuse(struct compiler *cc, const char *fmt, ...)
{
    if (cc->path.oom)
        return nomem(cc);
    if (cc->errlen == 0)
        return JSONSCHEMA_EBADSCHEMA;
    int n = snprintf(cc->errmsg, cc->errlen,
                     "at %s: ", cc->path.len > 0 ? jsonschema_buf_str(&cc->path) : "the root");
    if (n >= 0 && (size_t)n < cc->errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(cc->errmsg + n, cc->errlen - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return JSONSCHEMA_EBADSCHEMA;
}

/* push_*() extend the current path and return the length to pop() back to. */
static size_t push_key(struct compiler *cc, const char *key, size_t len)
{
    size_t mark = cc->path.len;
    jsonschema_buf_put_token(&cc->path, key, len);
    return mark;
}

static size_t push_index(struct compiler *cc, size_t i)
{
    size_t mark = cc->path.len;
    jsonschema_buf_printf(&cc->path, "/%zu", i);
    return mark;
}

static void pop(struct compiler *cc, size_t mark)
{
    jsonschema_buf_truncate(&cc->path, mark);
}

static int compile_regex(struct compiler *cc, const char *src, size_t len, pcre2_code **out)
{
    char why[256];
    size_t offset;
    int rc = jsonschema_regex_compile(src, len, out, why, sizeof why, &offset);
    if (rc == 0)
        return 0;
    if (rc == JSONSCHEMA_REGEX_ENOMEM)
        return nomem(cc);
    return refuse(cc, "invalid regular expression at offset %zu: %s", offset, why);
}

/* Checks the "type" value V: a type name or a non-empty array of distinct type names. */
static int compile_type(struct compiler *cc, struct node *n, const json_t *v)
{
    const json_t *one = v;
    size_t count = 1;
    if (json_is_array(v)) {
        count = json_array_size(v);
        if (count == 0)
            return refuse(cc, "must not be empty");
    } else if (!json_is_string(v)) {
        return refuse(cc, "must be a string or an array of strings, got %s",
                      jsonschema_value_type_name(v));
    }
    for (size_t i = 0; i < count; i++) {
        size_t mark = cc->path.len;
        if (json_is_array(v)) {
            one = json_array_get(v, i);
            mark = push_index(cc, i);
        }
        if (!json_is_string(one))
            return refuse(cc, "must be a string, got %s", jsonschema_value_type_name(one));
        unsigned bit = jsonschema_value_type_bit(json_string_value(one));
        if (bit == 0)
            return refuse(cc,
                          "unknown type \"%s\" (expected null, boolean, object, array, number, "
                          "string or integer)",
                          json_string_value(one));
        if (n->types & bit)
            return refuse(cc, "type \"%s\" is listed twice", json_string_value(one));
        n->types |= bit;
        pop(cc, mark);
    }
    return 0;
}

/* Checks that V, at the current path, is an array of distinct strings (required and the
 * values of dependentRequired). */
static int check_names(struct compiler *cc, const json_t *v)
{
    if (!json_is_array(v))
        return refuse(cc, "must be an array of strings, got %s", jsonschema_value_type_name(v));
    for (size_t i = 0; i < json_array_size(v); i++) {
        const json_t *name = json_array_get(v, i);
        size_t mark = push_index(cc, i);
        if (!json_is_string(name))
            return refuse(cc, "must be a string, got %s", jsonschema_value_type_name(name));
        for (size_t j = 0; j < i; j++) {
            if (jsonschema_value_equal(json_array_get(v, j), name))
                return refuse(cc, "\"%s\" is listed twice", json_string_value(name));
        }
        pop(cc, mark);
    }
    return 0;
}

/* A list of schemas; EMPTY_OK for the draft 2019-09 and earlier array form of "items". */
static int compile_list(struct compiler *cc, json_t *v, struct nodelist *out, bool empty_ok)
{
    if (!json_is_array(v))
        return refuse(cc, "must be an array of schemas, got %s", jsonschema_value_type_name(v));
    if (json_array_size(v) == 0)
        return empty_ok ? 0 : refuse(cc, "must not be empty");
    out->v = calloc(json_array_size(v), sizeof *out->v);
    if (!out->v)
        return nomem(cc);
    for (size_t i = 0; i < json_array_size(v); i++) {
        size_t mark = push_index(cc, i);
        int rc = jsonschema_cc_node(cc, json_array_get(v, i), &out->v[i]);
        if (rc != 0)
            return rc;
        out->n++;
        pop(cc, mark);
    }
    return 0;
}

static int name_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
    int r = memcmp(a, b, alen < blen ? alen : blen);
    if (r != 0)
        return r;
    return alen < blen ? -1 : alen > blen;
}

static int named_cmp(const void *a, const void *b)
{
    const struct named *x = a, *y = b;
    return name_cmp(x->name, x->len, y->name, y->len);
}

const struct named *jsonschema_find_named(const struct namedlist *l, const char *name, size_t len)
{
    size_t lo = 0, hi = l->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int r = name_cmp(name, len, l->v[mid].name, l->v[mid].len);
        if (r == 0)
            return &l->v[mid];
        if (r < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

static int compile_map(struct compiler *cc, json_t *v, struct namedlist *out)
{
    if (!json_is_object(v))
        return refuse(cc, "must be an object of schemas, got %s", jsonschema_value_type_name(v));
    if (json_object_size(v) == 0)
        return 0;
    out->v = calloc(json_object_size(v), sizeof *out->v);
    if (!out->v)
        return nomem(cc);
    for (void *it = json_object_iter(v); it; it = json_object_iter_next(v, it)) {
        struct named *e = &out->v[out->n];
        e->name = json_object_iter_key(it);
        e->len = json_object_iter_key_len(it);
        size_t mark = push_key(cc, e->name, e->len);
        int rc = jsonschema_cc_node(cc, json_object_iter_value(it), &e->schema);
        if (rc != 0)
            return rc;
        out->n++;
        pop(cc, mark);
    }
    qsort(out->v, out->n, sizeof *out->v, named_cmp);
    return 0;
}

static int compile_pattern_properties(struct compiler *cc, struct node *n, json_t *v)
{
    if (!json_is_object(v))
        return refuse(cc, "must be an object of schemas, got %s", jsonschema_value_type_name(v));
    if (json_object_size(v) == 0)
        return 0;
    n->pattern_properties = calloc(json_object_size(v), sizeof *n->pattern_properties);
    if (!n->pattern_properties)
        return nomem(cc);
    for (void *it = json_object_iter(v); it; it = json_object_iter_next(v, it)) {
        struct patprop *p = &n->pattern_properties[n->npattern_properties];
        const char *src = json_object_iter_key(it);
        size_t len = json_object_iter_key_len(it);
        size_t mark = push_key(cc, src, len);
        int rc = compile_regex(cc, src, len, &p->re);
        if (rc != 0)
            return rc;
        p->source = src;
        n->npattern_properties++;
        rc = jsonschema_cc_node(cc, json_object_iter_value(it), &p->schema);
        if (rc != 0)
            return rc;
        pop(cc, mark);
    }
    return 0;
}

/* Draft 7 and earlier "dependencies": each value is a list of property names (stored in an
 * owned object, as dependentRequired) or a schema (stored as dependentSchemas). */
static int compile_dependencies(struct compiler *cc, struct node *n, json_t *v)
{
    if (!json_is_object(v))
        return refuse(cc, "must be an object, got %s", jsonschema_value_type_name(v));
    n->owned_dependent_required = json_object();
    n->dependent_schemas.v = calloc(json_object_size(v) + 1, sizeof *n->dependent_schemas.v);
    if (!n->owned_dependent_required || !n->dependent_schemas.v)
        return nomem(cc);
    n->dependent_required = n->owned_dependent_required;
    for (void *it = json_object_iter(v); it; it = json_object_iter_next(v, it)) {
        const char *key = json_object_iter_key(it);
        size_t len = json_object_iter_key_len(it);
        json_t *value = json_object_iter_value(it);
        size_t mark = push_key(cc, key, len);
        int rc;
        if (json_is_array(value)) {
            rc = check_names(cc, value);
            if (rc == 0 && json_object_setn(n->owned_dependent_required, key, len, value) != 0)
                rc = nomem(cc);
        } else {
            struct named *e = &n->dependent_schemas.v[n->dependent_schemas.n];
            e->name = key;
            e->len = len;
            rc = jsonschema_cc_node(cc, value, &e->schema);
            if (rc == 0)
                n->dependent_schemas.n++;
        }
        if (rc != 0)
            return rc;
        pop(cc, mark);
    }
    qsort(n->dependent_schemas.v, n->dependent_schemas.n, sizeof *n->dependent_schemas.v,
          named_cmp);
    return 0;
}

/* How each keyword's value is checked and where it is stored (an offset into struct node,
 * whose member type the kind fixes). */
enum kwkind {
    KW_ANY,           /* annotation, any value */
    KW_STRING,        /* annotation, a string */
    KW_BOOLEAN,       /* annotation, a boolean */
    KW_ARRAY,         /* annotation, an array */
    KW_OBJECT,        /* annotation, an object */
    KW_DONE,          /* handled before the keyword loop ($schema, $id, anchors) */
    KW_REF,           /* const char *: a reference, resolved after compilation */
    KW_RECREF,        /* 2019-09 $recursiveRef: "#" */
    KW_TYPE,          /* unsigned: T_* bits */
    KW_ENUM,          /* const json_t *: an array */
    KW_CONST,         /* const json_t *: anything */
    KW_NUMBER,        /* const json_t *: a number */
    KW_EXCL_FLAG,     /* bool: draft 4 exclusiveMinimum / exclusiveMaximum */
    KW_DIVISOR,       /* const json_t *: a number greater than 0 */
    KW_COUNT,         /* json_int_t: a non-negative integer */
    KW_FLAG,          /* bool */
    KW_PATTERN,       /* pcre2_code * */
    KW_FORMAT,        /* enum jsformat */
    KW_NAMES,         /* const json_t *: an array of distinct strings */
    KW_NAMES_MAP,     /* const json_t *: an object of arrays of distinct strings */
    KW_SCHEMA,        /* struct node * */
    KW_ITEMS,         /* struct node *, or before 2020-12 also an array into prefix_items */
    KW_SCHEMA_LIST,   /* struct nodelist: a non-empty array of schemas */
    KW_SCHEMA_MAP,    /* struct namedlist: an object of schemas */
    KW_PATTERN_PROPS, /* struct patprop array */
    KW_DEPENDENCIES   /* draft 7 and earlier dependencies */
};

struct keyword {
    const char *name;
    unsigned dialects; /* D* bits */
    enum kwkind kind;
    size_t offset;
};

#define D2019UP    (D2020 | D2019)
#define D6UP       (D2020 | D2019 | D7 | D6)
#define D7UP       (D2020 | D2019 | D7)
#define DOLD       (D2019 | D7 | D6 | D4)
#define AT(member) offsetof(struct node, member)
static const struct keyword keywords[] = {
    {"$schema", DALL, KW_DONE, 0},
    {"$id", D6UP, KW_DONE, 0},
    {"id", D4, KW_DONE, 0},
    {"$anchor", D2019UP, KW_DONE, 0},
    {"$dynamicAnchor", D2020, KW_DONE, 0},
    {"$recursiveAnchor", D2019, KW_DONE, 0},
    {"$vocabulary", D2019UP, KW_OBJECT, 0},
    {"$comment", D7UP, KW_STRING, 0},
    {"title", DALL, KW_STRING, 0},
    {"description", DALL, KW_STRING, 0},
    {"default", DALL, KW_ANY, 0},
    {"examples", D6UP, KW_ARRAY, 0},
    {"deprecated", D2019UP, KW_BOOLEAN, 0},
    {"readOnly", D7UP, KW_BOOLEAN, 0},
    {"writeOnly", D7UP, KW_BOOLEAN, 0},
    {"contentEncoding", D7UP, KW_STRING, 0},
    {"contentMediaType", D7UP, KW_STRING, 0},
    {"contentSchema", D2019UP, KW_SCHEMA, AT(content_schema)},
    {"$defs", D2019UP, KW_SCHEMA_MAP, AT(defs)},
    {"definitions", D7 | D6 | D4, KW_SCHEMA_MAP, AT(defs)},
    {"$ref", DALL, KW_REF, AT(ref)},
    {"$dynamicRef", D2020, KW_REF, AT(dynamic_ref)},
    {"$recursiveRef", D2019, KW_RECREF, 0},
    {"type", DALL, KW_TYPE, AT(types)},
    {"enum", DALL, KW_ENUM, AT(enum_values)},
    {"const", D6UP, KW_CONST, AT(const_value)},
    {"minimum", DALL, KW_NUMBER, AT(minimum)},
    {"maximum", DALL, KW_NUMBER, AT(maximum)},
    {"exclusiveMinimum", D6UP, KW_NUMBER, AT(exclusive_minimum)},
    {"exclusiveMaximum", D6UP, KW_NUMBER, AT(exclusive_maximum)},
    {"exclusiveMinimum", D4, KW_EXCL_FLAG, AT(exclusive_min_flag)},
    {"exclusiveMaximum", D4, KW_EXCL_FLAG, AT(exclusive_max_flag)},
    {"multipleOf", DALL, KW_DIVISOR, AT(multiple_of)},
    {"minLength", DALL, KW_COUNT, AT(min_length)},
    {"maxLength", DALL, KW_COUNT, AT(max_length)},
    {"pattern", DALL, KW_PATTERN, AT(pattern)},
    {"format", DALL, KW_FORMAT, AT(format)},
    {"minItems", DALL, KW_COUNT, AT(min_items)},
    {"maxItems", DALL, KW_COUNT, AT(max_items)},
    {"uniqueItems", DALL, KW_FLAG, AT(unique_items)},
    {"prefixItems", D2020, KW_SCHEMA_LIST, AT(prefix_items)},
    {"items", DALL, KW_ITEMS, AT(items)},
    {"additionalItems", DOLD, KW_SCHEMA, AT(additional_items)},
    {"contains", D6UP, KW_SCHEMA, AT(contains)},
    {"minContains", D2019UP, KW_COUNT, AT(min_contains)},
    {"maxContains", D2019UP, KW_COUNT, AT(max_contains)},
    {"unevaluatedItems", D2019UP, KW_SCHEMA, AT(unevaluated_items)},
    {"minProperties", DALL, KW_COUNT, AT(min_properties)},
    {"maxProperties", DALL, KW_COUNT, AT(max_properties)},
    {"required", DALL, KW_NAMES, AT(required)},
    {"properties", DALL, KW_SCHEMA_MAP, AT(properties)},
    {"patternProperties", DALL, KW_PATTERN_PROPS, AT(pattern_properties)},
    {"additionalProperties", DALL, KW_SCHEMA, AT(additional_properties)},
    {"unevaluatedProperties", D2019UP, KW_SCHEMA, AT(unevaluated_properties)},
    {"propertyNames", D6UP, KW_SCHEMA, AT(property_names)},
    {"dependentRequired", D2019UP, KW_NAMES_MAP, AT(dependent_required)},
    {"dependentSchemas", D2019UP, KW_SCHEMA_MAP, AT(dependent_schemas)},
    {"dependencies", D7 | D6 | D4, KW_DEPENDENCIES, 0},
    {"allOf", DALL, KW_SCHEMA_LIST, AT(all_of)},
    {"anyOf", DALL, KW_SCHEMA_LIST, AT(any_of)},
    {"oneOf", DALL, KW_SCHEMA_LIST, AT(one_of)},
    {"not", DALL, KW_SCHEMA, AT(not_schema)},
    {"if", D7UP, KW_SCHEMA, AT(if_schema)},
    {"then", D7UP, KW_SCHEMA, AT(then_schema)},
    {"else", D7UP, KW_SCHEMA, AT(else_schema)},
};
#define NKEYWORDS (sizeof keywords / sizeof *keywords)

/* Hints for keywords that belong to other drafts, given in strict mode. */
static const struct {
    const char *name, *hint;
} other_draft[] = {
    {"definitions", "use \"$defs\""},
    {"dependencies", "use \"dependentRequired\" or \"dependentSchemas\""},
    {"additionalItems", "use \"items\" after \"prefixItems\""},
    {"$recursiveRef", "use \"$dynamicRef\""},
    {"$recursiveAnchor", "use \"$dynamicAnchor\""},
    {"$defs", "use \"definitions\""},
    {"dependentRequired", "use \"dependencies\""},
    {"dependentSchemas", "use \"dependencies\""},
    {"prefixItems", "use \"items\" with an array"},
};

static const char *dialect_name(unsigned d)
{
    switch (d) {
    case D2019:
        return "draft 2019-09";
    case D7:
        return "draft 7";
    case D6:
        return "draft 6";
    case D4:
        return "draft 4";
    default:
        return "draft 2020-12";
    }
}

/* Levenshtein distance, for "did you mean"; both strings are shorter than 64 bytes. */
static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b), row[64];
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

/* Refuses the unknown keyword NAME in strict mode (the current path points at it): a typo
 * such as "requried" would otherwise make every property optional without anyone noticing. */
static int refuse_unknown(struct compiler *cc, const char *name)
{
    for (size_t i = 0; i < sizeof other_draft / sizeof *other_draft; i++) {
        if (strcmp(name, other_draft[i].name) == 0)
            return refuse(cc, "keyword \"%s\" is not part of %s (%s)", name,
                          dialect_name(cc->dialect), other_draft[i].hint);
    }
    size_t len = strlen(name), best = SIZE_MAX;
    const char *guess = NULL;
    if (len < 40) {
        for (size_t i = 0; i < NKEYWORDS; i++) {
            if (!(keywords[i].dialects & cc->dialect))
                continue;
            size_t d = edit_distance(name, keywords[i].name);
            if (d < best) {
                best = d;
                guess = keywords[i].name;
            }
        }
    }
    if (guess && best <= 2 && best <= len / 2)
        return refuse(cc, "unknown keyword \"%s\" (did you mean \"%s\"?)", name, guess);
    return refuse(cc, "unknown keyword \"%s\"", name);
}

/* Checks V as the value of KW in N (the current path points at V) and stores it. */
static int compile_keyword(struct compiler *cc, struct node *n, const struct keyword *kw, json_t *v)
{
    void *slot = (char *)n + kw->offset;
    char num[32];
    json_int_t count;
    switch (kw->kind) {
    case KW_ANY:
        return 0;
    case KW_DONE:
        /* Used before the keyword loop; here only the type is checked. */
        if (strcmp(kw->name, "$recursiveAnchor") == 0)
            return json_is_boolean(v)
                       ? 0
                       : refuse(cc, "must be a boolean, got %s", jsonschema_value_type_name(v));
        return json_is_string(v)
                   ? 0
                   : refuse(cc, "must be a string, got %s", jsonschema_value_type_name(v));
    case KW_STRING:
        return json_is_string(v)
                   ? 0
                   : refuse(cc, "must be a string, got %s", jsonschema_value_type_name(v));
    case KW_BOOLEAN:
        return json_is_boolean(v)
                   ? 0
                   : refuse(cc, "must be a boolean, got %s", jsonschema_value_type_name(v));
    case KW_ARRAY:
        return json_is_array(v)
                   ? 0
                   : refuse(cc, "must be an array, got %s", jsonschema_value_type_name(v));
    case KW_OBJECT:
        return json_is_object(v)
                   ? 0
                   : refuse(cc, "must be an object, got %s", jsonschema_value_type_name(v));
    case KW_REF:
        if (!json_is_string(v))
            return refuse(cc, "must be a string, got %s", jsonschema_value_type_name(v));
        *(const char **)slot = json_string_value(v);
        return 0;
    case KW_RECREF:
        if (!json_is_string(v))
            return refuse(cc, "must be a string, got %s", jsonschema_value_type_name(v));
        if (strcmp(json_string_value(v), "#") != 0)
            return refuse(cc, "$recursiveRef must be \"#\", got \"%s\"", json_string_value(v));
        n->recursive_ref = true;
        return 0;
    case KW_TYPE:
        return compile_type(cc, n, v);
    case KW_ENUM:
        if (!json_is_array(v))
            return refuse(cc, "must be an array, got %s", jsonschema_value_type_name(v));
        /* The specification allows an empty enum (it matches nothing); strict mode refuses
         * it as the mistake it almost always is. */
        if (json_array_size(v) == 0 && cc->opts->strict)
            return refuse(cc, "must not be empty (no value could ever match)");
        *(const json_t **)slot = v;
        return 0;
    case KW_CONST:
        *(const json_t **)slot = v;
        return 0;
    case KW_NUMBER:
    case KW_DIVISOR:
        if (!json_is_number(v))
            return refuse(cc, "must be a number, got %s%s", jsonschema_value_type_name(v),
                          json_is_boolean(v) ? " (the boolean form is from draft 4)" : "");
        if (kw->kind == KW_DIVISOR && !(json_number_value(v) > 0)) {
            jsonschema_value_number_text(v, num, sizeof num);
            return refuse(cc, "must be greater than 0, got %s", num);
        }
        *(const json_t **)slot = v;
        return 0;
    case KW_EXCL_FLAG:
        if (!json_is_boolean(v))
            return refuse(cc, "must be a boolean in draft 4, got %s",
                          jsonschema_value_type_name(v));
        *(bool *)slot = json_is_true(v);
        return 0;
    case KW_COUNT:
        if (!json_is_number(v))
            return refuse(cc, "must be a non-negative integer, got %s",
                          jsonschema_value_type_name(v));
        if (!jsonschema_value_as_int(v, &count) || count < 0) {
            jsonschema_value_number_text(v, num, sizeof num);
            return refuse(cc, "must be a non-negative integer, got %s", num);
        }
        *(json_int_t *)slot = count;
        return 0;
    case KW_FLAG:
        if (!json_is_boolean(v))
            return refuse(cc, "must be a boolean, got %s", jsonschema_value_type_name(v));
        *(bool *)slot = json_is_true(v);
        return 0;
    case KW_PATTERN:
        if (!json_is_string(v))
            return refuse(cc, "must be a string, got %s", jsonschema_value_type_name(v));
        n->pattern_source = json_string_value(v);
        return compile_regex(cc, json_string_value(v), json_string_length(v), slot);
    case KW_FORMAT:
        if (!json_is_string(v))
            return refuse(cc, "must be a string, got %s", jsonschema_value_type_name(v));
        *(enum jsformat *)slot = jsonschema_format_lookup(json_string_value(v));
        n->format_assertion = cc->opts->format_assertion || (cc->vocabs & VOC_FORMAT_ASSERTION);
        /* Unknown formats are ignored, as the specification says; strict mode refuses them
         * for the same reason as unknown keywords. */
        if (*(enum jsformat *)slot == JSFORMAT_NONE && cc->opts->strict)
            return refuse(cc, "unknown format \"%s\" (supported: %s)", json_string_value(v),
                          jsonschema_format_list());
        return 0;
    case KW_NAMES:
        *(const json_t **)slot = v;
        return check_names(cc, v);
    case KW_NAMES_MAP:
        if (!json_is_object(v))
            return refuse(cc, "must be an object of string arrays, got %s",
                          jsonschema_value_type_name(v));
        for (void *it = json_object_iter(v); it; it = json_object_iter_next(v, it)) {
            size_t mark = push_key(cc, json_object_iter_key(it), json_object_iter_key_len(it));
            int rc = check_names(cc, json_object_iter_value(it));
            if (rc != 0)
                return rc;
            pop(cc, mark);
        }
        *(const json_t **)slot = v;
        return 0;
    case KW_SCHEMA:
        return jsonschema_cc_node(cc, v, slot);
    case KW_ITEMS:
        if (json_is_array(v)) {
            if (cc->dialect == D2020)
                return refuse(cc, "the array form of \"items\" is from draft 2019-09 and "
                                  "earlier; in draft 2020-12 write the array as \"prefixItems\" "
                                  "(and \"items\" for the items after it)");
            n->legacy_items = true;
            return compile_list(cc, v, &n->prefix_items, true);
        }
        return jsonschema_cc_node(cc, v, slot);
    case KW_SCHEMA_LIST:
        return compile_list(cc, v, slot, false);
    case KW_SCHEMA_MAP:
        return compile_map(cc, v, slot);
    case KW_PATTERN_PROPS:
        return compile_pattern_properties(cc, n, v);
    case KW_DEPENDENCIES:
        return compile_dependencies(cc, n, v);
    }
    return refuse(cc, "internal error: unhandled keyword kind");
}

/* The dialect a "$schema" URI names, or 0 for an unknown one. http and https, and a trailing
 * "#" or not, name the same meta-schema. */
static unsigned dialect_of(const char *uri)
{
    static const struct {
        const char *uri;
        unsigned dialect;
    } known[] = {
        {"json-schema.org/draft/2020-12/schema", D2020},
        {"json-schema.org/draft/2019-09/schema", D2019},
        {"json-schema.org/draft-07/schema", D7},
        {"json-schema.org/draft-06/schema", D6},
        {"json-schema.org/draft-04/schema", D4},
    };
    if (strncmp(uri, "https://", 8) == 0)
        uri += 8;
    else if (strncmp(uri, "http://", 7) == 0)
        uri += 7;
    else
        return 0;
    size_t len = strlen(uri);
    if (len > 0 && uri[len - 1] == '#')
        len--;
    for (size_t i = 0; i < sizeof known / sizeof *known; i++) {
        if (strlen(known[i].uri) == len && memcmp(known[i].uri, uri, len) == 0)
            return known[i].dialect;
    }
    return 0;
}

static int register_dynamic_anchor(struct compiler *cc, struct node *n, const char *name)
{
    struct node *r = n->res;
    struct dynanchor *v = realloc(r->dynanchors, (r->ndynanchors + 1) * sizeof *v);
    if (!v)
        return nomem(cc);
    r->dynanchors = v;
    v[r->ndynanchors++] = (struct dynanchor){name, n};
    n->dynamic_anchor = name;
    return 0;
}

/* Makes N the root of a resource with URI (the first LEN bytes), registered by that URI. */
static int start_resource(struct compiler *cc, struct node *n, const char *uri, size_t len)
{
    free(n->uri);
    n->uri = strndup(uri, len);
    if (!n->uri)
        return nomem(cc);
    n->res = n;
    return jsonschema_ref_register(cc, n->uri, NULL, n);
}

/* The identity keywords of the object schema V: "$schema" (the dialect), "$id" / "id" (a new
 * resource, or in draft 7 and earlier also an anchor "#name"), "$anchor", "$dynamicAnchor"
 * and "$recursiveAnchor". Sets cc->res and cc->dialect for the keywords of V. */
static int compile_identity(struct compiler *cc, struct node *n, json_t *v)
{
    const json_t *schema = json_object_get(v, "$schema");
    if (json_is_string(schema)) {
        unsigned d = dialect_of(json_string_value(schema));
        if (d) {
            cc->dialect = n->dialect = d;
            cc->vocabs = VOC_ALL;
        } else if (cc->resolver && jsonschema_uri_has_scheme(json_string_value(schema))) {
            /* A custom meta-schema: its own dialect, and the vocabularies it lists. */
            d = cc->dialect;
            int rc = jsonschema_ref_metaschema(cc, json_string_value(schema), &d, &cc->vocabs);
            if (rc != 0)
                return rc;
            cc->dialect = n->dialect = d;
        }
    }
    /* Draft 7 and earlier ignore every keyword beside "$ref", $id included. */
    bool ref_only = cc->dialect & (D7 | D6 | D4) && json_object_get(v, "$ref");
    const json_t *id = json_object_get(v, cc->dialect == D4 ? "id" : "$id");
    if (json_is_string(id) && !ref_only) {
        size_t mark = push_key(cc, cc->dialect == D4 ? "id" : "$id", cc->dialect == D4 ? 2 : 3);
        char *uri = jsonschema_uri_resolve(n->res ? n->res->uri : cc->base, json_string_value(id));
        if (!uri)
            return nomem(cc);
        size_t blen = jsonschema_uri_base_len(uri);
        const char *frag = uri[blen] == '#' ? uri + blen + 1 : "";
        int rc = 0;
        if (cc->dialect & D2019UP) {
            if (frag[0] != '\0' && cc->opts->strict)
                rc = refuse(cc, "$id must not have a fragment; use \"$anchor\" for \"#%s\"", frag);
            else
                rc = start_resource(cc, n, uri, blen);
        } else {
            /* "#name" alone is an anchor of the enclosing resource; anything else starts a
             * resource, and a fragment beside it is an anchor of that resource. */
            if (json_string_value(id)[0] != '#')
                rc = start_resource(cc, n, uri, blen);
            if (rc == 0 && frag[0] != '\0' && frag[0] != '/')
                rc = jsonschema_ref_register(cc, n->res->uri, frag, n);
        }
        free(uri);
        if (rc != 0)
            return rc;
        pop(cc, mark);
    }
    if (cc->dialect & D2019UP) {
        const json_t *anchor = json_object_get(v, "$anchor");
        if (json_is_string(anchor)) {
            int rc = jsonschema_ref_register(cc, n->res->uri, json_string_value(anchor), n);
            if (rc != 0)
                return rc;
        }
    }
    if (cc->dialect == D2020) {
        const json_t *anchor = json_object_get(v, "$dynamicAnchor");
        if (json_is_string(anchor)) {
            int rc = jsonschema_ref_register(cc, n->res->uri, json_string_value(anchor), n);
            if (rc == 0)
                rc = register_dynamic_anchor(cc, n, json_string_value(anchor));
            if (rc != 0)
                return rc;
        }
    }
    if (cc->dialect == D2019)
        n->recursive_anchor = json_is_true(json_object_get(v, "$recursiveAnchor"));
    cc->res = n->res;
    return 0;
}

/* The vocabulary group (VOC_*) of keyword KW. */
static unsigned vocab_of(const struct keyword *kw)
{
    static const char *const validation[] = {
        "type",          "enum",
        "const",         "multipleOf",
        "maximum",       "exclusiveMaximum",
        "minimum",       "exclusiveMinimum",
        "maxLength",     "minLength",
        "pattern",       "maxItems",
        "minItems",      "uniqueItems",
        "maxContains",   "minContains",
        "maxProperties", "minProperties",
        "required",      "dependentRequired",
    };
    static const char *const applicator[] = {
        "prefixItems",
        "items",
        "contains",
        "additionalProperties",
        "properties",
        "patternProperties",
        "dependentSchemas",
        "propertyNames",
        "if",
        "then",
        "else",
        "allOf",
        "anyOf",
        "oneOf",
        "not",
        "additionalItems",
        "unevaluatedItems",
        "unevaluatedProperties",
    };
    for (size_t i = 0; i < sizeof validation / sizeof *validation; i++) {
        if (strcmp(kw->name, validation[i]) == 0)
            return VOC_VALIDATION;
    }
    for (size_t i = 0; i < sizeof applicator / sizeof *applicator; i++) {
        if (strcmp(kw->name, applicator[i]) == 0)
            return VOC_APPLICATOR;
    }
    return strcmp(kw->name, "format") == 0 ? VOC_FORMAT : VOC_OTHER;
}

/* The keyword of the current dialect and vocabularies spelt as the LEN bytes at NAME, or
 * NULL. */
static const struct keyword *find_keyword(const struct compiler *cc, const char *name, size_t len)
{
    for (size_t i = 0; i < NKEYWORDS; i++) {
        /* Compared with the length: a key may hold a NUL byte ("type\0x" is not "type"). */
        if ((keywords[i].dialects & cc->dialect) && strlen(keywords[i].name) == len &&
            memcmp(name, keywords[i].name, len) == 0)
            return (vocab_of(&keywords[i]) & cc->vocabs) ? &keywords[i] : NULL;
    }
    return NULL;
}

static int compile_object(struct compiler *cc, struct node *n, json_t *v)
{
    int rc = compile_identity(cc, n, v);
    if (rc != 0)
        return rc;
    bool ref_only = cc->dialect & (D7 | D6 | D4) && json_object_get(v, "$ref");
    for (void *it = json_object_iter(v); it; it = json_object_iter_next(v, it)) {
        const char *name = json_object_iter_key(it);
        size_t len = json_object_iter_key_len(it);
        if (ref_only && !(len == 4 && memcmp(name, "$ref", 4) == 0))
            continue;
        size_t mark = push_key(cc, name, len);
        const struct keyword *kw = find_keyword(cc, name, len);
        if (kw)
            rc = compile_keyword(cc, n, kw, json_object_iter_value(it));
        else if (cc->opts->strict)
            rc = refuse_unknown(cc, name);
        if (rc != 0)
            return rc;
        pop(cc, mark);
    }
    /* Before 2020-12, additionalItems applies only after an array of items. */
    if (n->legacy_items)
        n->items = n->additional_items;
    /* Draft 4: a true exclusiveMaximum makes maximum exclusive. */
    if (n->exclusive_max_flag && n->maximum) {
        n->exclusive_maximum = n->maximum;
        n->maximum = NULL;
    }
    if (n->exclusive_min_flag && n->minimum) {
        n->exclusive_minimum = n->minimum;
        n->minimum = NULL;
    }
    return 0;
}

int jsonschema_cc_node(struct compiler *cc, json_t *v, struct node **out)
{
    struct jsonschema *s = cc->s;
    if (cc->path.oom)
        return nomem(cc);
    if (s->nnodes == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 16;
        struct node **nodes = realloc(s->nodes, cap * sizeof *nodes);
        if (!nodes)
            return nomem(cc);
        s->nodes = nodes;
        s->cap = cap;
    }
    struct node *n = calloc(1, sizeof *n);
    if (!n)
        return nomem(cc);
    s->nodes[s->nnodes++] = n;
    *out = n;
    n->path = strdup(jsonschema_buf_str(&cc->path));
    if (!n->path)
        return nomem(cc);
    n->doc = cc->doc;
    n->json = v;
    int irc = jsonschema_ref_index(cc, n);
    if (irc != 0)
        return irc;
    n->dialect = cc->dialect;
    n->res = cc->res;
    n->min_length = n->max_length = n->min_items = n->max_items = -1;
    n->min_contains = n->max_contains = n->min_properties = n->max_properties = -1;
    struct node *saved_res = cc->res;
    unsigned saved_dialect = cc->dialect, saved_vocabs = cc->vocabs;
    int rc = 0;
    /* The root of a document is a resource named by the URI it was fetched by. */
    if (!n->res)
        rc = start_resource(cc, n, cc->base, strlen(cc->base));
    if (rc != 0)
        return rc;
    if (json_is_boolean(v)) {
        n->boolean = json_is_true(v);
        return 0;
    }
    n->boolean = -1;
    if (!json_is_object(v))
        return refuse(cc, "must be a schema (an object or a boolean), got %s",
                      jsonschema_value_type_name(v));
    rc = compile_object(cc, n, v);
    cc->res = saved_res;
    cc->dialect = saved_dialect;
    cc->vocabs = saved_vocabs;
    return rc;
}

int jsonschema_cc_document(struct compiler *cc, json_t *doc, const char *base, unsigned dialect)
{
    struct jsonschema *s = cc->s;
    struct jsbuf where = {0};
    bool deep = jsonschema_value_too_deep(doc, 0, JSONSCHEMA_MAX_DEPTH, NULL, &where);
    free(where.p);
    if (deep)
        return refuse(cc, "the schema \"%s\" nests arrays and objects deeper than %d levels", base,
                      JSONSCHEMA_MAX_DEPTH);
    s->docs[s->ndocs] = json_deep_copy(doc);
    if (!s->docs[s->ndocs])
        return nomem(cc);
    /* Compiled with its own path, from its own root; the caller's path, which names the
     * reference, stays for messages. */
    struct compiler sub = *cc;
    sub.path = (struct jsbuf){0};
    sub.doc = s->ndocs++;
    sub.res = NULL;
    sub.base = base;
    sub.dialect = dialect;
    sub.vocabs = VOC_ALL;
    char why[256] = "";
    sub.errmsg = why;
    sub.errlen = sizeof why;
    struct node *root;
    int rc = jsonschema_cc_node(&sub, s->docs[sub.doc], &root);
    if (rc == 0 && sub.path.oom)
        rc = nomem(cc);
    free(sub.path.p);
    /* Named at the reference that fetched it, with the spot inside it. */
    if (rc == JSONSCHEMA_EBADSCHEMA)
        rc = refuse(cc, "in the schema \"%s\", %s", base, why);
    else if (rc != 0)
        rc = nomem(cc);
    return rc;
}

static unsigned dialect_bit(enum jsonschema_dialect d)
{
    switch (d) {
    case JSONSCHEMA_DRAFT2019_09:
        return D2019;
    case JSONSCHEMA_DRAFT7:
        return D7;
    case JSONSCHEMA_DRAFT6:
        return D6;
    case JSONSCHEMA_DRAFT4:
        return D4;
    default:
        return D2020;
    }
}

int jsonschema_compile_ex(const json_t *schema, const struct jsonschema_options *opts,
                          struct jsonschema **out, char *errmsg, size_t errlen)
{
    static const struct jsonschema_options defaults = {0};
    struct compiler cc = {
        .errmsg = errmsg, .errlen = errlen, .opts = opts ? opts : &defaults, .base = ""};
    cc.resolver = cc.opts->resolver;
    cc.resolver_data = cc.opts->resolver_data;
    int rc;
    *out = NULL;
    if (errlen > 0)
        errmsg[0] = '\0';
    if (!schema)
        return refuse(&cc, "no schema given");
    cc.dialect = dialect_bit(cc.opts->default_dialect);
    cc.vocabs = VOC_ALL;
    if (jsonschema_value_too_deep(schema, 0, JSONSCHEMA_MAX_DEPTH, NULL, &cc.path)) {
        rc = refuse(&cc, "schema nests arrays and objects deeper than %d levels",
                    JSONSCHEMA_MAX_DEPTH);
        goto err_path;
    }
    cc.s = calloc(1, sizeof *cc.s);
    if (!cc.s) {
        rc = nomem(&cc);
        goto err_path;
    }
    cc.s->docs = calloc(JSONSCHEMA_MAX_DOCUMENTS, sizeof *cc.s->docs);
    if (!cc.s->docs) {
        rc = nomem(&cc);
        goto err_schema;
    }
    cc.s->docs[0] = json_deep_copy(schema);
    if (!cc.s->docs[0]) {
        rc = nomem(&cc);
        goto err_schema;
    }
    cc.s->ndocs = 1;
    rc = jsonschema_cc_node(&cc, cc.s->docs[0], &cc.s->root);
    if (rc != 0)
        goto err_schema;
    rc = jsonschema_ref_resolve_all(&cc);
    if (rc != 0)
        goto err_schema;
    rc = jsonschema_ref_check_cycles(&cc);
    if (rc != 0)
        goto err_schema;
    free_uris(cc.s);
    free(cc.path.p);
    *out = cc.s;
    return 0;

err_schema:
    jsonschema_free(cc.s);
err_path:
    free(cc.path.p);
    return rc;
}

int jsonschema_compile(const json_t *schema, struct jsonschema **out, char *errmsg, size_t errlen)
{
    return jsonschema_compile_ex(schema, NULL, out, errmsg, errlen);
}
