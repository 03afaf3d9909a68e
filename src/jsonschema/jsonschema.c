/* JSON Schema compilation: checks a schema keyword by keyword and builds the node tree
 * that jsonschema_validate.c walks (see jsonschema_internal.h for its invariants). */
#include "jsonschema/jsonschema_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonschema/jsonschema_buf.h"
#include "jsonschema/jsonschema_value.h"

/* ECMA-262 is the regex dialect JSON Schema names: "$" matches only at the very end and
 * "\uXXXX" is a code point. Invalid UTF-8 subjects, which jansson never produces, fail to
 * match instead of being undefined behaviour. */
#define REGEX_OPTIONS                                                                              \
    (PCRE2_UTF | PCRE2_DOLLAR_ENDONLY | PCRE2_ALT_BSUX | PCRE2_NEVER_BACKSLASH_C |                 \
     PCRE2_MATCH_INVALID_UTF)

static void node_free(struct node *n)
{
    free(n->path);
    pcre2_code_free(n->pattern);
    for (size_t i = 0; i < n->npattern_properties; i++)
        pcre2_code_free(n->pattern_properties[i].re);
    free(n->pattern_properties);
    free(n->properties.v);
    free(n->dependent_schemas.v);
    free(n->defs.v);
    free(n->prefix_items.v);
    free(n->all_of.v);
    free(n->any_of.v);
    free(n->one_of.v);
    free(n);
}

void jsonschema_free(struct jsonschema *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->nnodes; i++)
        node_free(s->nodes[i]);
    free(s->nodes);
    json_decref(s->doc);
    free(s);
}

/* ---- compiling ---------------------------------------------------------------------- */

struct compiler {
    struct jsonschema *s;
    struct jsbuf path; /* JSON Pointer of the schema value being compiled */
    char *errmsg;
    size_t errlen;
};

static int nomem(struct compiler *cc)
{
    if (cc->errlen > 0)
        snprintf(cc->errmsg, cc->errlen, "out of memory");
    return JSONSCHEMA_ENOMEM;
}

/* Writes "at <current path>: <message>" and returns JSONSCHEMA_EBADSCHEMA. */
__attribute__((format(printf, 2, 3))) static int refuse(struct compiler *cc, const char *fmt, ...)
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

static int compile_node(struct compiler *cc, json_t *v, struct node **out);

static int compile_regex(struct compiler *cc, const char *src, size_t len, pcre2_code **out)
{
    int code;
    PCRE2_SIZE offset;
    *out = pcre2_compile((PCRE2_SPTR)src, len, REGEX_OPTIONS, &code, &offset, NULL);
    if (*out)
        return 0;
    PCRE2_UCHAR why[256];
    pcre2_get_error_message(code, why, sizeof why);
    return refuse(cc, "invalid regular expression at offset %zu: %s", (size_t)offset,
                  (const char *)why);
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

static int compile_list(struct compiler *cc, json_t *v, struct nodelist *out)
{
    if (!json_is_array(v))
        return refuse(cc, "must be an array of schemas, got %s", jsonschema_value_type_name(v));
    if (json_array_size(v) == 0)
        return refuse(cc, "must not be empty");
    out->v = calloc(json_array_size(v), sizeof *out->v);
    if (!out->v)
        return nomem(cc);
    for (size_t i = 0; i < json_array_size(v); i++) {
        size_t mark = push_index(cc, i);
        int rc = compile_node(cc, json_array_get(v, i), &out->v[i]);
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
        int rc = compile_node(cc, json_object_iter_value(it), &e->schema);
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
        rc = compile_node(cc, json_object_iter_value(it), &p->schema);
        if (rc != 0)
            return rc;
        pop(cc, mark);
    }
    return 0;
}

/* How each keyword's value is checked and where it is stored (an offset into struct node,
 * whose member type the kind fixes). */
enum kwkind {
    KW_ANY,          /* annotation, any value */
    KW_STRING,       /* annotation, a string */
    KW_BOOLEAN,      /* annotation, a boolean */
    KW_ARRAY,        /* annotation, an array */
    KW_ID,           /* a string, only at the root */
    KW_REF,          /* const char *: a local reference, resolved after compilation */
    KW_TYPE,         /* unsigned: T_* bits */
    KW_ENUM,         /* const json_t *: a non-empty array */
    KW_CONST,        /* const json_t *: anything */
    KW_NUMBER,       /* const json_t *: a number */
    KW_DIVISOR,      /* const json_t *: a number greater than 0 */
    KW_COUNT,        /* json_int_t: a non-negative integer */
    KW_FLAG,         /* bool */
    KW_PATTERN,      /* pcre2_code * */
    KW_FORMAT,       /* enum jsformat */
    KW_NAMES,        /* const json_t *: an array of distinct strings */
    KW_NAMES_MAP,    /* const json_t *: an object of arrays of distinct strings */
    KW_SCHEMA,       /* struct node * */
    KW_SCHEMA_LIST,  /* struct nodelist: a non-empty array of schemas */
    KW_SCHEMA_MAP,   /* struct namedlist: an object of schemas */
    KW_PATTERN_PROPS /* struct patprop array */
};

struct keyword {
    const char *name;
    enum kwkind kind;
    size_t offset;
};

#define AT(member) offsetof(struct node, member)
static const struct keyword keywords[] = {
    {"$schema", KW_STRING, 0},
    {"$id", KW_ID, 0},
    {"$comment", KW_STRING, 0},
    {"title", KW_STRING, 0},
    {"description", KW_STRING, 0},
    {"default", KW_ANY, 0},
    {"examples", KW_ARRAY, 0},
    {"deprecated", KW_BOOLEAN, 0},
    {"readOnly", KW_BOOLEAN, 0},
    {"writeOnly", KW_BOOLEAN, 0},
    {"$defs", KW_SCHEMA_MAP, AT(defs)},
    {"$ref", KW_REF, AT(ref)},
    {"type", KW_TYPE, AT(types)},
    {"enum", KW_ENUM, AT(enum_values)},
    {"const", KW_CONST, AT(const_value)},
    {"minimum", KW_NUMBER, AT(minimum)},
    {"maximum", KW_NUMBER, AT(maximum)},
    {"exclusiveMinimum", KW_NUMBER, AT(exclusive_minimum)},
    {"exclusiveMaximum", KW_NUMBER, AT(exclusive_maximum)},
    {"multipleOf", KW_DIVISOR, AT(multiple_of)},
    {"minLength", KW_COUNT, AT(min_length)},
    {"maxLength", KW_COUNT, AT(max_length)},
    {"pattern", KW_PATTERN, AT(pattern)},
    {"format", KW_FORMAT, AT(format)},
    {"minItems", KW_COUNT, AT(min_items)},
    {"maxItems", KW_COUNT, AT(max_items)},
    {"uniqueItems", KW_FLAG, AT(unique_items)},
    {"prefixItems", KW_SCHEMA_LIST, AT(prefix_items)},
    {"items", KW_SCHEMA, AT(items)},
    {"contains", KW_SCHEMA, AT(contains)},
    {"minContains", KW_COUNT, AT(min_contains)},
    {"maxContains", KW_COUNT, AT(max_contains)},
    {"minProperties", KW_COUNT, AT(min_properties)},
    {"maxProperties", KW_COUNT, AT(max_properties)},
    {"required", KW_NAMES, AT(required)},
    {"properties", KW_SCHEMA_MAP, AT(properties)},
    {"patternProperties", KW_PATTERN_PROPS, AT(pattern_properties)},
    {"additionalProperties", KW_SCHEMA, AT(additional_properties)},
    {"propertyNames", KW_SCHEMA, AT(property_names)},
    {"dependentRequired", KW_NAMES_MAP, AT(dependent_required)},
    {"dependentSchemas", KW_SCHEMA_MAP, AT(dependent_schemas)},
    {"allOf", KW_SCHEMA_LIST, AT(all_of)},
    {"anyOf", KW_SCHEMA_LIST, AT(any_of)},
    {"oneOf", KW_SCHEMA_LIST, AT(one_of)},
    {"not", KW_SCHEMA, AT(not_schema)},
    {"if", KW_SCHEMA, AT(if_schema)},
    {"then", KW_SCHEMA, AT(then_schema)},
    {"else", KW_SCHEMA, AT(else_schema)},
};
#define NKEYWORDS (sizeof keywords / sizeof *keywords)

/* Keywords of other drafts or vocabularies that are refused with a pointer to what to use. */
static const struct {
    const char *name, *hint;
} unsupported[] = {
    {"definitions", "use \"$defs\""},
    {"dependencies", "use \"dependentRequired\" or \"dependentSchemas\""},
    {"additionalItems", "use \"items\" after \"prefixItems\""},
    {"unevaluatedProperties", "use \"additionalProperties\""},
    {"unevaluatedItems", "use \"items\""},
    {"$anchor", "refer to subschemas by JSON Pointer, e.g. \"#/$defs/name\""},
    {"$dynamicRef", "use \"$ref\""},
    {"$dynamicAnchor", "use \"$ref\""},
    {"$recursiveRef", "use \"$ref\""},
    {"$recursiveAnchor", "use \"$ref\""},
    {"$vocabulary", "only the 2020-12 keywords listed in docs/jsonschema.md are known"},
    {"contentEncoding", "content keywords are not validated"},
    {"contentMediaType", "content keywords are not validated"},
    {"contentSchema", "content keywords are not validated"},
};

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

/* Refuses the unknown keyword NAME (the current path points at it). A config store must not
 * skip a misspelt keyword: "requried" would otherwise make every property optional. */
static int refuse_unknown(struct compiler *cc, const char *name)
{
    for (size_t i = 0; i < sizeof unsupported / sizeof *unsupported; i++) {
        if (strcmp(name, unsupported[i].name) == 0)
            return refuse(cc, "unsupported keyword \"%s\" (%s)", name, unsupported[i].hint);
    }
    size_t len = strlen(name), best = SIZE_MAX;
    const char *guess = NULL;
    if (len < 40) {
        for (size_t i = 0; i < NKEYWORDS; i++) {
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
    case KW_ID:
        /* An embedded $id would start a new base URI for the $refs below it; refs are
         * resolved against the root only, so it is accepted only where it changes nothing. */
        if (n->path[0] != '\0')
            return refuse(cc, "$id is only supported at the root of the schema");
        return json_is_string(v)
                   ? 0
                   : refuse(cc, "must be a string, got %s", jsonschema_value_type_name(v));
    case KW_REF:
        if (!json_is_string(v))
            return refuse(cc, "must be a string, got %s", jsonschema_value_type_name(v));
        *(const char **)slot = json_string_value(v);
        return 0;
    case KW_TYPE:
        return compile_type(cc, n, v);
    case KW_ENUM:
        if (!json_is_array(v))
            return refuse(cc, "must be an array, got %s", jsonschema_value_type_name(v));
        if (json_array_size(v) == 0)
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
        if (*(enum jsformat *)slot == JSFORMAT_NONE)
            return refuse(cc,
                          "unknown format \"%s\" (supported: date-time, date, time, email, "
                          "hostname, ipv4, ipv6, uri, uuid)",
                          json_string_value(v));
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
        return compile_node(cc, v, slot);
    case KW_SCHEMA_LIST:
        return compile_list(cc, v, slot);
    case KW_SCHEMA_MAP:
        return compile_map(cc, v, slot);
    case KW_PATTERN_PROPS:
        return compile_pattern_properties(cc, n, v);
    }
    return refuse(cc, "internal error: unhandled keyword kind");
}

/* Compiles the schema V found at the current path into a new node registered with the
 * compiled schema, which owns it whether or not compilation succeeds. */
static int compile_node(struct compiler *cc, json_t *v, struct node **out)
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
    n->min_length = n->max_length = n->min_items = n->max_items = -1;
    n->min_contains = n->max_contains = n->min_properties = n->max_properties = -1;
    if (json_is_boolean(v)) {
        n->boolean = json_is_true(v);
        return 0;
    }
    n->boolean = -1;
    if (!json_is_object(v))
        return refuse(cc, "must be a schema (an object or a boolean), got %s",
                      jsonschema_value_type_name(v));
    for (void *it = json_object_iter(v); it; it = json_object_iter_next(v, it)) {
        const char *name = json_object_iter_key(it);
        size_t len = json_object_iter_key_len(it);
        size_t mark = push_key(cc, name, len);
        const struct keyword *kw = NULL;
        for (size_t i = 0; i < NKEYWORDS && !kw; i++) {
            /* Compared with the length: a key may hold a NUL byte ("type\0x" is not "type"). */
            if (strlen(keywords[i].name) == len && memcmp(name, keywords[i].name, len) == 0)
                kw = &keywords[i];
        }
        int rc =
            kw ? compile_keyword(cc, n, kw, json_object_iter_value(it)) : refuse_unknown(cc, name);
        if (rc != 0)
            return rc;
        pop(cc, mark);
    }
    return 0;
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static int node_path_cmp(const void *a, const void *b)
{
    return strcmp((*(struct node *const *)a)->path, (*(struct node *const *)b)->path);
}

/* Resolves N's $ref (the current path points at it) against SORTED, every node by path. The
 * fragment is percent-decoded and then, being a JSON Pointer in the escaped form node paths
 * use too, compared as is. */
static int resolve_ref(struct compiler *cc, struct node *n, struct node **sorted, size_t count)
{
    const char *ref = n->ref;
    if (ref[0] != '#')
        return refuse(cc,
                      "remote reference \"%s\" is not supported, only references inside this "
                      "schema (starting with \"#\")",
                      ref);
    struct jsbuf ptr = {0};
    int rc = 0;
    for (const char *p = ref + 1; *p && rc == 0; p++) {
        if (*p != '%') {
            jsonschema_buf_putn(&ptr, p, 1);
            continue;
        }
        int hi = hex_value(p[1]), lo = hi < 0 ? -1 : hex_value(p[2]);
        if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
            rc = refuse(cc, "malformed percent-encoding in $ref \"%s\"", ref);
        } else {
            char c = (char)(hi * 16 + lo);
            jsonschema_buf_putn(&ptr, &c, 1);
            p += 2;
        }
    }
    const char *target = jsonschema_buf_str(&ptr);
    if (rc == 0 && ptr.oom)
        rc = nomem(cc);
    if (rc == 0 && target[0] != '\0' && target[0] != '/')
        rc = refuse(cc,
                    "$ref \"%s\" is not a JSON Pointer; anchors are not supported, write e.g. "
                    "\"#/$defs/name\"",
                    ref);
    for (const char *t = strchr(target, '~'); rc == 0 && t; t = strchr(t + 1, '~')) {
        if (t[1] != '0' && t[1] != '1')
            rc = refuse(cc, "$ref \"%s\" has an invalid escape (\"~\" must be followed by 0 or 1)",
                        ref);
    }
    if (rc == 0) {
        size_t lo = 0, hi = count;
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            int r = strcmp(target, sorted[mid]->path);
            if (r == 0) {
                n->ref_target = sorted[mid];
                break;
            }
            if (r < 0)
                hi = mid;
            else
                lo = mid + 1;
        }
        if (!n->ref_target)
            rc = refuse(cc, "$ref \"%s\" does not point at a schema in this document", ref);
    }
    free(ptr.p);
    return rc;
}

static int resolve_refs(struct compiler *cc)
{
    struct jsonschema *s = cc->s;
    struct node **sorted = malloc(s->nnodes * sizeof *sorted);
    if (!sorted)
        return nomem(cc);
    memcpy(sorted, s->nodes, s->nnodes * sizeof *sorted);
    qsort(sorted, s->nnodes, sizeof *sorted, node_path_cmp);
    int rc = 0;
    for (size_t i = 0; i < s->nnodes && rc == 0; i++) {
        struct node *n = s->nodes[i];
        if (!n->ref)
            continue;
        pop(cc, 0);
        jsonschema_buf_puts(&cc->path, n->path);
        push_key(cc, "$ref", 4);
        rc = resolve_ref(cc, n, sorted, s->nnodes);
    }
    free(sorted);
    return rc;
}

/* The I-th subschema N applies to the same instance ($ref first), NULL for an absent slot;
 * false once I is past the last one. */
static bool inplace_child(const struct node *n, size_t i, struct node **child)
{
    struct node *const fixed[] = {n->ref_target, n->not_schema, n->if_schema, n->then_schema,
                                  n->else_schema};
    if (i < 5) {
        *child = fixed[i];
        return true;
    }
    i -= 5;
    const struct nodelist *lists[] = {&n->all_of, &n->any_of, &n->one_of};
    for (size_t k = 0; k < 3; k++) {
        if (i < lists[k]->n) {
            *child = lists[k]->v[i];
            return true;
        }
        i -= lists[k]->n;
    }
    if (i < n->dependent_schemas.n) {
        *child = n->dependent_schemas.v[i].schema;
        return true;
    }
    return false;
}

/* Refuses a cycle of $ref and in-place applicators: it would re-validate the same value
 * forever. The spec leaves such schemas undefined; at upload is the place to say so. The
 * depth-first search keeps its own stack, because a chain of $refs may be long. */
static int check_cycles(struct compiler *cc)
{
    struct jsonschema *s = cc->s;
    struct frame {
        struct node *n;
        size_t next;
    } *stack = malloc(s->nnodes * sizeof *stack);
    if (!stack)
        return nomem(cc);
    int rc = 0;
    for (size_t r = 0; r < s->nnodes && rc == 0; r++) {
        if (s->nodes[r]->mark != 0)
            continue;
        size_t depth = 0;
        stack[depth++] = (struct frame){s->nodes[r], 0};
        s->nodes[r]->mark = 1;
        while (depth > 0 && rc == 0) {
            struct frame *top = &stack[depth - 1];
            struct node *child;
            if (!inplace_child(top->n, top->next++, &child)) {
                top->n->mark = 2;
                depth--;
            } else if (child && child->mark == 1) {
                /* Tree edges cannot close a cycle, so one frame from CHILD up is
                 * following its $ref (edge 0); name that $ref. */
                size_t k = depth - 1;
                while (k > 0 && stack[k].next != 1 && stack[k].n != child)
                    k--;
                pop(cc, 0);
                jsonschema_buf_puts(&cc->path, stack[k].n->path);
                push_key(cc, "$ref", 4);
                rc = refuse(cc,
                            "$ref \"%s\" forms a cycle that never descends into the document "
                            "(validation would recurse forever)",
                            stack[k].n->ref ? stack[k].n->ref : "");
            } else if (child && child->mark == 0) {
                child->mark = 1;
                stack[depth++] = (struct frame){child, 0};
            }
        }
    }
    free(stack);
    return rc;
}

int jsonschema_compile(const json_t *schema, struct jsonschema **out, char *errmsg, size_t errlen)
{
    struct compiler cc = {.errmsg = errmsg, .errlen = errlen};
    int rc;
    *out = NULL;
    if (errlen > 0)
        errmsg[0] = '\0';
    if (!schema)
        return refuse(&cc, "no schema given");
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
    cc.s->doc = json_deep_copy(schema);
    if (!cc.s->doc) {
        rc = nomem(&cc);
        goto err_schema;
    }
    rc = compile_node(&cc, cc.s->doc, &cc.s->root);
    if (rc != 0)
        goto err_schema;
    rc = resolve_refs(&cc);
    if (rc != 0)
        goto err_schema;
    rc = check_cycles(&cc);
    if (rc != 0)
        goto err_schema;
    free(cc.path.p);
    *out = cc.s;
    return 0;

err_schema:
    jsonschema_free(cc.s);
err_path:
    free(cc.path.p);
    return rc;
}

/* ---- validating --------------------------------------------------------------------- */
