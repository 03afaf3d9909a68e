/* JSON Schema validation: walks a document against a compiled schema (see
 * jsonschema_internal.h), collecting failures as JSON objects. */
#include "jsonschema/jsonschema_internal.h"

#include <float.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonschema/jsonschema_buf.h"
#include "jsonschema/jsonschema_value.h"

/* Backtracking budget of one regex match: a pathological pattern fails the keyword instead
 * of stalling the thread. */
#define REGEX_MATCH_LIMIT 1000000u
/* multipleOf on non-integers: accepted when the quotient is within this fraction of itself
 * from an integer. Doubles carry about 16 significant digits, so 0.3 / 0.1, which is
 * 2.9999999999999996, passes while 0.31 / 0.1 does not. */
#define MULTIPLE_TOLERANCE 1e-12

struct vctx {
    json_t *errors; /* the failures so far; NULL when the caller wants only the verdict */
    size_t nerrors;
    long steps;
    bool stop; /* a limit was hit or memory ran out: every evaluation now fails at once */
    bool oom;
    pcre2_match_data *md;    /* created on the first regex match */
    pcre2_match_context *mc; /* carries REGEX_MATCH_LIMIT */
    bool use_memo;           /* results do not depend on the dynamic scope */
    struct memo *memo;       /* created on first use */
    /* The property names propertyNames validated, as strings kept until the validation ends:
     * remembered results are keyed by address, which a freed string could pass on. */
    json_t *names;
};

/* Remembered results of evaluating a reference target on an instance: with them a schema
 * that reaches the same (subschema, instance) pair along many paths (anyOf of two $refs at
 * every level) costs one evaluation per pair instead of one per path. Keyed by addresses,
 * which stay valid because every instance lives until the validation ends (the document, and
 * the property names in vctx.names). Sound only while results do not depend on the dynamic
 * scope (vctx.use_memo). Open addressing with linear probing, at most half full. */
struct memo_entry {
    const struct node *n; /* NULL: an empty slot */
    const json_t *v;
    bool ok;
    bool reported;       /* the failures were collected (an evaluation with an error list) */
    unsigned char *seen; /* owned copy of the annotations when they were gathered, or NULL */
};

struct memo {
    struct memo_entry *v;
    size_t cap, count;
};

/* Which members of an object (by position in jansson's iteration order, which is the same
 * for every walk of one unmodified object) or items of an array were evaluated by a
 * subschema that succeeded: the annotations unevaluatedProperties and unevaluatedItems
 * read. SEEN has N entries. */
struct annot {
    size_t n;
    unsigned char *seen;
};

/* The dynamic scope: the schema resources entered on the way to the current evaluation,
 * innermost first, as frames on the C stack. $dynamicRef and $recursiveRef search it. */
struct scope {
    const struct node *res;
    const struct scope *up;
};

/* Appends one failure object. PATH is the rendered document pointer (it may hold NUL bytes
 * from document keys); the schema pointer is SCHEMA_PATH followed by TOKEN unless TOKEN is
 * NULL. An allocation failure stops the validation. */
static void add_error(struct vctx *c, const struct jsbuf *path, const char *schema_path,
                      const char *token, const char *keyword, const struct jsbuf *msg)
{
    struct jsbuf spath = {0};
    jsonschema_buf_puts(&spath, schema_path);
    if (token)
        jsonschema_buf_put_token(&spath, token, strlen(token));
    json_t *e = json_object();
    bool ok =
        e && !path->oom && !spath.oom && !msg->oom &&
        json_object_set_new(e, "path", json_stringn(jsonschema_buf_str(path), path->len)) == 0 &&
        json_object_set_new(e, "keyword", json_string(keyword)) == 0 &&
        json_object_set_new(e, "schema_path", json_string(jsonschema_buf_str(&spath))) == 0 &&
        json_object_set_new(e, "message", json_string(jsonschema_buf_str(msg))) == 0;
    free(spath.p);
    if (!ok) {
        json_decref(e);
        c->oom = c->stop = true;
    } else if (json_array_append_new(c->errors, e) != 0) {
        c->oom = c->stop = true;
    }
}

/* Stops the validation, which then reports the document invalid, with a "limit" entry at AT
 * whether or not the failing evaluation was collecting errors. */
__attribute__((format(printf, 4, 5))) static void
limit(struct vctx *c, const struct jspath *at, const char *schema_path, const char *fmt, ...)
{
    if (c->stop)
        return;
    c->stop = true;
    if (!c->errors)
        return;
    struct jsbuf path = {0}, msg = {0};
    jsonschema_buf_put_path(&path, at);
    va_list ap;
    va_start(ap, fmt);
    jsonschema_buf_vprintf(&msg, fmt, ap);
    va_end(ap);
    add_error(c, &path, schema_path, NULL, "limit", &msg);
    free(path.p);
    free(msg.p);
}

/* Records that KEYWORD of N failed at AT when COLLECT is set; returns false, so checks can
 * write `ok = fail(...)`. The failure of a false schema points at the schema itself. */
__attribute__((format(printf, 6, 7))) static bool fail(struct vctx *c, bool collect,
                                                       const struct jspath *at,
                                                       const struct node *n, const char *keyword,
                                                       const char *fmt, ...)
{
    if (!collect || c->stop)
        return false;
    if (c->nerrors == JSONSCHEMA_MAX_ERRORS) {
        limit(c, NULL, "", "more than %d failures; only the first %d are listed",
              JSONSCHEMA_MAX_ERRORS, JSONSCHEMA_MAX_ERRORS);
        return false;
    }
    struct jsbuf path = {0}, msg = {0};
    jsonschema_buf_put_path(&path, at);
    va_list ap;
    va_start(ap, fmt);
    jsonschema_buf_vprintf(&msg, fmt, ap);
    va_end(ap);
    add_error(c, &path, n->path, n->boolean == 0 ? NULL : keyword, keyword, &msg);
    c->nerrors++;
    free(path.p);
    free(msg.p);
    return false;
}

/* Searches S for RE: 1 on a match, 0 on none, a negative PCRE2 error code otherwise. */
static int regex_search(struct vctx *c, const pcre2_code *re, const char *s, size_t len)
{
    if (!c->md) {
        c->md = pcre2_match_data_create(1, NULL);
        c->mc = pcre2_match_context_create(NULL);
        if (!c->md || !c->mc) {
            c->oom = c->stop = true;
            return PCRE2_ERROR_NOMEMORY;
        }
        pcre2_set_match_limit(c->mc, REGEX_MATCH_LIMIT);
    }
    /* 0 means the one-pair ovector was too small to hold the groups: still a match. */
    int rc = pcre2_match(re, (PCRE2_SPTR)s, len, 0, 0, c->md, c->mc);
    if (rc >= 0)
        return 1;
    return rc == PCRE2_ERROR_NOMATCH ? 0 : rc;
}

static const char *regex_error(int code, char *buf, size_t len)
{
    pcre2_get_error_message(code, (PCRE2_UCHAR *)buf, len);
    return buf;
}

static const char *plural(json_int_t n)
{
    return n == 1 ? "" : "s";
}

static bool eval(struct vctx *c, const struct node *n, const json_t *v, const struct jspath *at,
                 int depth, bool collect, const struct scope *scope, struct annot *out);

/* type, enum, const: the keywords that apply to every instance type. */
static bool check_common(struct vctx *c, const struct node *n, const json_t *v,
                         const struct jspath *at, bool collect)
{
    bool ok = true;
    if (n->types && !(n->types & jsonschema_value_types_of(v))) {
        struct jsbuf names = {0};
        jsonschema_value_put_types(&names, n->types);
        ok = fail(c, collect, at, n, "type", "must be %s, got %s", jsonschema_buf_str(&names),
                  jsonschema_value_type_name(v));
        free(names.p);
    }
    if (n->enum_values) {
        bool found = false;
        for (size_t i = 0; i < json_array_size(n->enum_values) && !found; i++)
            found = jsonschema_value_equal(v, json_array_get(n->enum_values, i));
        if (!found && collect) {
            struct jsbuf text = {0};
            jsonschema_buf_put_json(&text, n->enum_values);
            ok = fail(c, collect, at, n, "enum", "must be one of %s", jsonschema_buf_str(&text));
            free(text.p);
        }
        ok = ok && found;
    }
    if (n->const_value && !jsonschema_value_equal(v, n->const_value)) {
        if (collect) {
            struct jsbuf text = {0};
            jsonschema_buf_put_json(&text, n->const_value);
            fail(c, collect, at, n, "const", "must be %s", jsonschema_buf_str(&text));
            free(text.p);
        }
        ok = false;
    }
    return ok;
}

static bool is_multiple(const json_t *v, const json_t *divisor)
{
    json_int_t iv, id;
    if (jsonschema_value_as_int(v, &iv) && jsonschema_value_as_int(divisor, &id))
        return iv % id == 0; /* id > 0 was checked when compiling */
    double q = jsonschema_value_number(v) / jsonschema_value_number(divisor);
    if (q > DBL_MAX || q < -DBL_MAX)
        return false; /* an overflowing quotient: no integer count of divisors reaches v */
    double aq = q < 0 ? -q : q;
    if (aq >= 4503599627370496.0)
        return true; /* no fractional bits left */
    double frac = aq - (double)(json_int_t)aq;
    double dist = frac < 0.5 ? frac : 1.0 - frac;
    return dist <= MULTIPLE_TOLERANCE * aq;
}

static bool check_number(struct vctx *c, const struct node *n, const json_t *v,
                         const struct jspath *at, bool collect)
{
    if (!n->minimum && !n->exclusive_minimum && !n->maximum && !n->exclusive_maximum &&
        !n->multiple_of)
        return true;
    char got[32], bound[32];
    bool ok = true;
    jsonschema_value_number_text(v, got, sizeof got);
    if (n->minimum && jsonschema_value_cmp(v, n->minimum) < 0) {
        jsonschema_value_number_text(n->minimum, bound, sizeof bound);
        ok = fail(c, collect, at, n, "minimum", "must be >= %s, got %s", bound, got);
    }
    if (n->exclusive_minimum && jsonschema_value_cmp(v, n->exclusive_minimum) <= 0) {
        jsonschema_value_number_text(n->exclusive_minimum, bound, sizeof bound);
        ok = fail(c, collect, at, n, "exclusiveMinimum", "must be > %s, got %s", bound, got);
    }
    if (n->maximum && jsonschema_value_cmp(v, n->maximum) > 0) {
        jsonschema_value_number_text(n->maximum, bound, sizeof bound);
        ok = fail(c, collect, at, n, "maximum", "must be <= %s, got %s", bound, got);
    }
    if (n->exclusive_maximum && jsonschema_value_cmp(v, n->exclusive_maximum) >= 0) {
        jsonschema_value_number_text(n->exclusive_maximum, bound, sizeof bound);
        ok = fail(c, collect, at, n, "exclusiveMaximum", "must be < %s, got %s", bound, got);
    }
    if (n->multiple_of && !is_multiple(v, n->multiple_of)) {
        jsonschema_value_number_text(n->multiple_of, bound, sizeof bound);
        ok = fail(c, collect, at, n, "multipleOf", "must be a multiple of %s, got %s", bound, got);
    }
    return ok;
}

static bool check_string(struct vctx *c, const struct node *n, const json_t *v,
                         const struct jspath *at, bool collect)
{
    const char *s = json_string_value(v);
    size_t len = json_string_length(v);
    bool ok = true;
    if (n->min_length >= 0 || n->max_length >= 0) {
        /* Code points: jansson strings are valid UTF-8, so every byte that is not a
         * continuation byte (10xxxxxx) starts one. */
        json_int_t chars = 0;
        for (size_t i = 0; i < len; i++)
            chars += ((unsigned char)s[i] & 0xC0) != 0x80;
        if (n->min_length >= 0 && chars < n->min_length)
            ok = fail(c, collect, at, n, "minLength",
                      "must be at least %" JSON_INTEGER_FORMAT
                      " character%s long, got %" JSON_INTEGER_FORMAT,
                      n->min_length, plural(n->min_length), chars);
        if (n->max_length >= 0 && chars > n->max_length)
            ok = fail(c, collect, at, n, "maxLength",
                      "must be at most %" JSON_INTEGER_FORMAT
                      " character%s long, got %" JSON_INTEGER_FORMAT,
                      n->max_length, plural(n->max_length), chars);
    }
    if (n->pattern) {
        int m = regex_search(c, n->pattern, s, len);
        char why[128];
        if (m == 0)
            ok = fail(c, collect, at, n, "pattern", "must match the pattern \"%s\"",
                      n->pattern_source);
        else if (m < 0)
            ok = fail(c, collect, at, n, "pattern", "could not be matched against \"%s\": %s",
                      n->pattern_source, regex_error(m, why, sizeof why));
    }
    if (n->format && n->format_assertion && !jsonschema_format_check(n->format, s, len))
        ok = fail(c, collect, at, n, "format", "must be a valid %s",
                  jsonschema_format_name(n->format));
    return ok;
}

struct hashed {
    uint64_t hash;
    size_t index;
};

/* Orders by hash, then by index, so that within a bucket earlier items come first. */
static int hashed_cmp(const void *a, const void *b)
{
    const struct hashed *x = a, *y = b;
    if (x->hash != y->hash)
        return x->hash < y->hash ? -1 : 1;
    return x->index < y->index ? -1 : x->index > y->index;
}

/* uniqueItems: hashes every item and compares only items with equal hashes, so a large array
 * costs O(n log n) rather than O(n^2) comparisons. Failures come in item order. */
static bool check_unique(struct vctx *c, const struct node *n, const json_t *v,
                         const struct jspath *at, bool collect)
{
    size_t size = json_array_size(v);
    if (size < 2)
        return true;
    struct hashed *h = malloc(size * sizeof *h);
    size_t *first = calloc(size, sizeof *first); /* index of an earlier equal item + 1, or 0 */
    if (!h || !first) {
        free(h);
        free(first);
        c->oom = c->stop = true;
        return false;
    }
    for (size_t i = 0; i < size; i++)
        h[i] = (struct hashed){jsonschema_value_hash(json_array_get(v, i)), i};
    qsort(h, size, sizeof *h, hashed_cmp);
    for (size_t run = 0; run < size;) {
        size_t end = run + 1;
        while (end < size && h[end].hash == h[run].hash)
            end++;
        /* An item that duplicates an earlier one is skipped as a candidate: the earlier one
         * comes first in the bucket and matches too. */
        for (size_t j = run + 1; j < end; j++) {
            for (size_t k = run; k < j && !first[h[j].index]; k++) {
                if (!first[h[k].index] && jsonschema_value_equal(json_array_get(v, h[k].index),
                                                                 json_array_get(v, h[j].index)))
                    first[h[j].index] = h[k].index + 1;
            }
        }
        run = end;
    }
    bool ok = true;
    for (size_t i = 0; i < size && (ok || collect); i++) {
        if (first[i])
            ok = fail(c, collect, at, n, "uniqueItems",
                      "items %zu and %zu are equal; items must be unique", first[i] - 1, i);
    }
    free(h);
    free(first);
    return ok;
}

static const char *properties_word(json_int_t n)
{
    return n == 1 ? "property" : "properties";
}

static size_t instance_size(const json_t *v)
{
    return json_is_object(v) ? json_object_size(v) : json_is_array(v) ? json_array_size(v) : 0;
}

/* Starts an annotation set for V; false (and the validation stopped) when out of memory. */
static bool annot_init(struct vctx *c, struct annot *a, const json_t *v)
{
    a->n = instance_size(v);
    a->seen = NULL;
    if (a->n == 0)
        return true;
    a->seen = calloc(a->n, 1);
    if (!a->seen) {
        c->oom = c->stop = true;
        return false;
    }
    return true;
}

static void mark(struct annot *a, size_t i)
{
    if (a && i < a->n)
        a->seen[i] = 1;
}

static size_t memo_slot(const struct memo *m, const struct node *n, const json_t *v)
{
    uint64_t h = (uint64_t)(uintptr_t)n * 0x9E3779B97F4A7C15u ^ (uint64_t)(uintptr_t)v;
    h ^= h >> 29;
    h *= 0xBF58476D1CE4E5B9u;
    h ^= h >> 32;
    size_t i = (size_t)h & (m->cap - 1);
    /* Terminates: the table is never more than half full. */
    while (m->v[i].n && (m->v[i].n != n || m->v[i].v != v))
        i = (i + 1) & (m->cap - 1);
    return i;
}

static const struct memo_entry *memo_find(const struct vctx *c, const struct node *n,
                                          const json_t *v)
{
    if (!c->memo)
        return NULL;
    const struct memo_entry *e = &c->memo->v[memo_slot(c->memo, n, v)];
    return e->n ? e : NULL;
}

/* Remembers that N on V gave OK, with the annotations ANN (NULL when not gathered), its
 * failures REPORTED or not. Out of memory only forgets. */
static void memo_store(struct vctx *c, const struct node *n, const json_t *v, bool ok,
                       const struct annot *ann, bool reported)
{
    struct memo *m = c->memo;
    if (!m) {
        m = c->memo = calloc(1, sizeof *m);
        if (!m)
            return;
    }
    if ((m->count + 1) * 2 > m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 64;
        struct memo old = *m;
        m->v = calloc(cap, sizeof *m->v);
        if (!m->v) {
            *m = old;
            return;
        }
        m->cap = cap;
        for (size_t i = 0; i < old.cap; i++) {
            if (old.v[i].n)
                m->v[memo_slot(m, old.v[i].n, old.v[i].v)] = old.v[i];
        }
        free(old.v);
    }
    struct memo_entry *e = &m->v[memo_slot(m, n, v)];
    if (!e->n) {
        m->count++;
        *e = (struct memo_entry){n, v, ok, false, NULL};
    }
    e->reported = e->reported || reported;
    if (!e->seen && ann && ann->n > 0) {
        e->seen = malloc(ann->n);
        if (e->seen)
            memcpy(e->seen, ann->seen, ann->n);
    }
}

static void memo_free(struct memo *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->cap; i++)
        free(m->v[i].seen);
    free(m->v);
    free(m);
}

/* Evaluates the subschema SUB that applies to the same instance V. With ANN (the caller
 * tracks annotations), SUB's annotations are gathered apart and added to ANN only if SUB
 * succeeds: a failing subschema contributes none. */
static bool eval_inplace(struct vctx *c, const struct node *sub, const json_t *v,
                         const struct jspath *at, int depth, bool collect,
                         const struct scope *scope, struct annot *ann)
{
    if (!ann || ann->n == 0)
        return eval(c, sub, v, at, depth + 1, collect, scope, NULL);
    struct annot tmp;
    if (!annot_init(c, &tmp, v))
        return false;
    bool ok = eval(c, sub, v, at, depth + 1, collect, scope, &tmp);
    if (ok) {
        for (size_t i = 0; i < tmp.n; i++)
            ann->seen[i] |= tmp.seen[i];
    }
    free(tmp.seen);
    return ok;
}

static bool check_array(struct vctx *c, const struct node *n, const json_t *v,
                        const struct jspath *at, int depth, bool collect, const struct scope *scope,
                        struct annot *ann)
{
    size_t size = json_array_size(v);
    bool ok = true;
    if (n->min_items >= 0 && (json_int_t)size < n->min_items)
        ok = fail(c, collect, at, n, "minItems",
                  "must have at least %" JSON_INTEGER_FORMAT " item%s, got %zu", n->min_items,
                  plural(n->min_items), size);
    if (n->max_items >= 0 && (json_int_t)size > n->max_items)
        ok = fail(c, collect, at, n, "maxItems",
                  "must have at most %" JSON_INTEGER_FORMAT " item%s, got %zu", n->max_items,
                  plural(n->max_items), size);
    if (!ok && !collect)
        return false;
    const char *items_kw = n->legacy_items ? "additionalItems" : "items";
    for (size_t i = 0; i < size; i++) {
        /* prefixItems (or an array of items) covers the first items, items (or
         * additionalItems) every item after them. */
        const struct node *sub = i < n->prefix_items.n ? n->prefix_items.v[i] : n->items;
        if (!sub)
            break;
        mark(ann, i);
        struct jspath child = {at, NULL, 0, i};
        bool item_ok;
        if (sub == n->items && sub->boolean == 0)
            item_ok = fail(c, collect, &child, n, items_kw,
                           "is not allowed: the array may hold at most %zu item%s",
                           n->prefix_items.n, plural((json_int_t)n->prefix_items.n));
        else
            item_ok = eval(c, sub, json_array_get(v, i), &child, depth + 1, collect, scope, NULL);
        if (!item_ok) {
            ok = false;
            if (!collect || c->stop)
                return false;
        }
    }
    if (n->contains) {
        json_int_t found = 0;
        /* Items that match contains count as evaluated in 2020-12, not in 2019-09. */
        struct annot *contains_ann = n->dialect == D2020 ? ann : NULL;
        for (size_t i = 0; i < size; i++) {
            struct jspath child = {at, NULL, 0, i};
            if (eval(c, n->contains, json_array_get(v, i), &child, depth + 1, false, scope, NULL)) {
                found++;
                mark(contains_ann, i);
            }
            if (c->stop)
                return false;
        }
        json_int_t min = n->min_contains >= 0 ? n->min_contains : 1;
        if (found < min)
            ok = fail(c, collect, at, n, n->min_contains >= 0 ? "minContains" : "contains",
                      "must contain at least %" JSON_INTEGER_FORMAT
                      " item%s matching contains, found %" JSON_INTEGER_FORMAT,
                      min, plural(min), found);
        if (n->max_contains >= 0 && found > n->max_contains)
            ok = fail(c, collect, at, n, "maxContains",
                      "must contain at most %" JSON_INTEGER_FORMAT
                      " item%s matching contains, found %" JSON_INTEGER_FORMAT,
                      n->max_contains, plural(n->max_contains), found);
    }
    if (n->unique_items && (ok || collect))
        ok = check_unique(c, n, v, at, collect) && ok;
    return ok;
}

/* The subschemas that apply to one property KEY of an object: properties, the matching
 * patternProperties, else additionalProperties; and propertyNames on the name itself.
 * *EVALUATED says whether one of the first three applied. */
static bool check_property(struct vctx *c, const struct node *n, const char *key, size_t klen,
                           const json_t *value, const struct jspath *at, int depth, bool collect,
                           const struct scope *scope, bool *evaluated)
{
    struct jspath child = {at, key, klen, 0};
    bool ok = true, matched = false;
    const struct named *p = jsonschema_find_named(&n->properties, key, klen);
    if (p) {
        matched = true;
        ok = eval(c, p->schema, value, &child, depth + 1, collect, scope, NULL);
        if (!ok && (!collect || c->stop))
            return false;
    }
    for (size_t i = 0; i < n->npattern_properties; i++) {
        const struct patprop *pp = &n->pattern_properties[i];
        int m = regex_search(c, pp->re, key, klen);
        bool sub_ok = true;
        if (m < 0) {
            char why[128];
            sub_ok = fail(c, collect, &child, n, "patternProperties",
                          "property name could not be matched against \"%s\": %s", pp->source,
                          regex_error(m, why, sizeof why));
        } else if (m > 0) {
            matched = true;
            sub_ok = eval(c, pp->schema, value, &child, depth + 1, collect, scope, NULL);
        }
        if (!sub_ok) {
            ok = false;
            if (!collect || c->stop)
                return false;
        }
    }
    if (!matched && n->additional_properties) {
        bool sub_ok;
        matched = true;
        if (n->additional_properties->boolean == 0)
            sub_ok = fail(c, collect, &child, n, "additionalProperties",
                          "property \"%s\" is not allowed", key);
        else
            sub_ok =
                eval(c, n->additional_properties, value, &child, depth + 1, collect, scope, NULL);
        if (!sub_ok) {
            ok = false;
            if (!collect || c->stop)
                return false;
        }
    }
    *evaluated = matched;
    if (n->property_names) {
        json_t *name = json_stringn_nocheck(key, klen);
        if (!c->names)
            c->names = json_array();
        if (!name || !c->names || json_array_append_new(c->names, name) != 0) {
            c->oom = c->stop = true;
            return false;
        }
        if (!eval(c, n->property_names, name, &child, depth + 1, collect, scope, NULL))
            ok = false;
    }
    return ok;
}

static bool check_object(struct vctx *c, const struct node *n, const json_t *v,
                         const struct jspath *at, int depth, bool collect,
                         const struct scope *scope, struct annot *ann)
{
    json_int_t size = (json_int_t)json_object_size(v);
    bool ok = true;
    if (n->min_properties >= 0 && size < n->min_properties)
        ok = fail(c, collect, at, n, "minProperties",
                  "must have at least %" JSON_INTEGER_FORMAT " %s, got %" JSON_INTEGER_FORMAT,
                  n->min_properties, properties_word(n->min_properties), size);
    if (n->max_properties >= 0 && size > n->max_properties)
        ok = fail(c, collect, at, n, "maxProperties",
                  "must have at most %" JSON_INTEGER_FORMAT " %s, got %" JSON_INTEGER_FORMAT,
                  n->max_properties, properties_word(n->max_properties), size);
    for (size_t i = 0; n->required && i < json_array_size(n->required); i++) {
        const json_t *name = json_array_get(n->required, i);
        if (!json_object_getn(v, json_string_value(name), json_string_length(name)))
            ok = fail(c, collect, at, n, "required", "missing required property \"%s\"",
                      json_string_value(name));
    }
    if (n->dependent_required) {
        json_t *deps = (json_t *)n->dependent_required;
        for (void *it = json_object_iter(deps); it; it = json_object_iter_next(deps, it)) {
            if (!json_object_getn(v, json_object_iter_key(it), json_object_iter_key_len(it)))
                continue;
            const json_t *names = json_object_iter_value(it);
            for (size_t i = 0; i < json_array_size(names); i++) {
                const json_t *name = json_array_get(names, i);
                if (!json_object_getn(v, json_string_value(name), json_string_length(name)))
                    /* Draft 7 and earlier wrote it as "dependencies" (split at compile time):
                     * the report names the keyword the schema has. */
                    ok = fail(c, collect, at, n,
                              n->owned_dependent_required ? "dependencies" : "dependentRequired",
                              "missing property \"%s\", required when \"%s\" is present",
                              json_string_value(name), json_object_iter_key(it));
            }
        }
    }
    if (!ok && !collect)
        return false;
    if (n->properties.n || n->npattern_properties || n->additional_properties ||
        n->property_names) {
        json_t *obj = (json_t *)v;
        size_t i = 0;
        for (void *it = json_object_iter(obj); it; it = json_object_iter_next(obj, it), i++) {
            bool evaluated = false;
            if (!check_property(c, n, json_object_iter_key(it), json_object_iter_key_len(it),
                                json_object_iter_value(it), at, depth, collect, scope,
                                &evaluated)) {
                ok = false;
                if (!collect || c->stop)
                    return false;
            }
            if (evaluated)
                mark(ann, i);
        }
    }
    for (size_t i = 0; i < n->dependent_schemas.n; i++) {
        const struct named *d = &n->dependent_schemas.v[i];
        if (json_object_getn(v, d->name, d->len) &&
            !eval_inplace(c, d->schema, v, at, depth, collect, scope, ann)) {
            ok = false;
            if (!collect || c->stop)
                return false;
        }
    }
    return ok;
}

/* allOf, anyOf, oneOf, not, if/then/else. Only allOf and the chosen then/else branch report
 * their subschemas' failures; the others are tried silently and fail as a whole. With ANN
 * (annotations wanted), anyOf tries every alternative, since each one that matches
 * contributes, and if is evaluated even without then and else. */
static bool check_applicators(struct vctx *c, const struct node *n, const json_t *v,
                              const struct jspath *at, int depth, bool collect,
                              const struct scope *scope, struct annot *ann)
{
    bool ok = true;
    for (size_t i = 0; i < n->all_of.n; i++) {
        if (!eval_inplace(c, n->all_of.v[i], v, at, depth, collect, scope, ann)) {
            ok = false;
            if (!collect || c->stop)
                return false;
        }
    }
    if (n->any_of.n > 0) {
        bool any = false;
        for (size_t i = 0; i < n->any_of.n && (!any || ann); i++)
            any = eval_inplace(c, n->any_of.v[i], v, at, depth, false, scope, ann) || any;
        if (c->stop)
            return false;
        if (!any)
            ok = fail(c, collect, at, n, "anyOf",
                      "must match at least one of the %zu schemas in anyOf, matched none",
                      n->any_of.n);
    }
    if (n->one_of.n > 0) {
        size_t matches = 0, first = 0, second = 0;
        for (size_t i = 0; i < n->one_of.n && matches < 2; i++) {
            if (eval_inplace(c, n->one_of.v[i], v, at, depth, false, scope, ann)) {
                if (matches++ == 0)
                    first = i;
                else
                    second = i;
            }
        }
        if (c->stop)
            return false;
        if (matches == 0)
            ok = fail(c, collect, at, n, "oneOf",
                      "must match exactly one of the %zu schemas in oneOf, matched none",
                      n->one_of.n);
        else if (matches > 1)
            ok = fail(c, collect, at, n, "oneOf",
                      "must match exactly one schema in oneOf, matched schemas %zu and %zu", first,
                      second);
    }
    if (n->not_schema) {
        bool matched = eval(c, n->not_schema, v, at, depth + 1, false, scope, NULL);
        if (c->stop)
            return false;
        if (matched)
            ok = fail(c, collect, at, n, "not", "must not match the schema in not");
    }
    /* Without then or else, if can only contribute annotations. */
    if (n->if_schema && (n->then_schema || n->else_schema || ann)) {
        bool cond = eval_inplace(c, n->if_schema, v, at, depth, false, scope, ann);
        if (c->stop)
            return false;
        const struct node *branch = cond ? n->then_schema : n->else_schema;
        if (branch && !eval_inplace(c, branch, v, at, depth, collect, scope, ann))
            ok = false;
    }
    return ok;
}

/* The target of N's $dynamicRef: when it is dynamic, the outermost resource in the dynamic
 * scope with a $dynamicAnchor of its name, else its static target. */
static const struct node *dynamic_target(const struct node *n, const struct scope *scope)
{
    const struct node *t = n->dynamic_target;
    if (!n->dynamic_name)
        return t;
    for (const struct scope *s = scope; s; s = s->up) {
        for (size_t i = 0; i < s->res->ndynanchors; i++) {
            if (strcmp(s->res->dynanchors[i].name, n->dynamic_name) == 0) {
                t = s->res->dynanchors[i].node;
                break;
            }
        }
    }
    return t;
}

/* The target of N's $recursiveRef (2019-09): when its static target has "$recursiveAnchor":
 * true, the outermost resource in the dynamic scope that has it too. */
static const struct node *recursive_target(const struct node *n, const struct scope *scope)
{
    const struct node *t = n->recursive_target;
    if (!t->recursive_anchor)
        return t;
    for (const struct scope *s = scope; s; s = s->up) {
        if (s->res->recursive_anchor)
            t = s->res;
    }
    return t;
}

/* unevaluatedProperties and unevaluatedItems: the members and items no other keyword of N
 * (or of a subschema that applied in place and succeeded) evaluated. */
static bool check_unevaluated(struct vctx *c, const struct node *n, const json_t *v,
                              const struct jspath *at, int depth, bool collect,
                              const struct scope *scope, struct annot *ann)
{
    bool ok = true;
    if (n->unevaluated_properties && json_is_object(v)) {
        json_t *obj = (json_t *)v;
        size_t i = 0;
        for (void *it = json_object_iter(obj); it; it = json_object_iter_next(obj, it), i++) {
            if (ann->seen[i])
                continue;
            struct jspath child = {at, json_object_iter_key(it), json_object_iter_key_len(it), 0};
            bool sub_ok;
            if (n->unevaluated_properties->boolean == 0)
                sub_ok = fail(c, collect, &child, n, "unevaluatedProperties",
                              "property \"%s\" is not allowed", json_object_iter_key(it));
            else
                sub_ok = eval(c, n->unevaluated_properties, json_object_iter_value(it), &child,
                              depth + 1, collect, scope, NULL);
            if (!sub_ok) {
                ok = false;
                if (!collect || c->stop)
                    return false;
            }
        }
        memset(ann->seen, 1, ann->n);
    }
    if (n->unevaluated_items && json_is_array(v)) {
        for (size_t i = 0; i < json_array_size(v); i++) {
            if (ann->seen[i])
                continue;
            struct jspath child = {at, NULL, 0, i};
            bool sub_ok;
            if (n->unevaluated_items->boolean == 0)
                sub_ok = fail(c, collect, &child, n, "unevaluatedItems",
                              "is not allowed: no other keyword evaluates this item");
            else
                sub_ok = eval(c, n->unevaluated_items, json_array_get(v, i), &child, depth + 1,
                              collect, scope, NULL);
            if (!sub_ok) {
                ok = false;
                if (!collect || c->stop)
                    return false;
            }
        }
        memset(ann->seen, 1, ann->n);
    }
    return ok;
}

static bool eval_node(struct vctx *c, const struct node *n, const json_t *v,
                      const struct jspath *at, int depth, bool collect, const struct scope *scope,
                      struct annot *ann)
{
    bool ok = true;
    const struct node *refs[3] = {
        n->ref_target,
        n->dynamic_target ? dynamic_target(n, scope) : NULL,
        n->recursive_target ? recursive_target(n, scope) : NULL,
    };
    for (size_t i = 0; i < 3; i++) {
        if (refs[i] && !eval_inplace(c, refs[i], v, at, depth, collect, scope, ann)) {
            ok = false;
            if (!collect || c->stop)
                return false;
        }
    }
    ok = check_common(c, n, v, at, collect) && ok;
    if (!ok && !collect)
        return false;
    switch (json_typeof(v)) {
    case JSON_INTEGER:
    case JSON_REAL:
        ok = check_number(c, n, v, at, collect) && ok;
        break;
    case JSON_STRING:
        ok = check_string(c, n, v, at, collect) && ok;
        break;
    case JSON_ARRAY:
        ok = check_array(c, n, v, at, depth, collect, scope, ann) && ok;
        break;
    case JSON_OBJECT:
        ok = check_object(c, n, v, at, depth, collect, scope, ann) && ok;
        break;
    default:
        break;
    }
    if (!ok && !collect)
        return false;
    ok = check_applicators(c, n, v, at, depth, collect, scope, ann) && ok;
    if (!ok && !collect)
        return false;
    if (ann && (n->unevaluated_properties || n->unevaluated_items))
        ok = check_unevaluated(c, n, v, at, depth, collect, scope, ann) && ok;
    return ok;
}

/* Validates V at AT against N. COLLECT: record every failure; otherwise stop at the first
 * and record nothing (anyOf, oneOf, not, if, contains, and callers without an error list).
 * DEPTH counts the evaluations in progress. SCOPE is the dynamic scope so far. OUT, when not
 * NULL, receives the members or items of V that N evaluates (when N succeeds). */
static bool eval(struct vctx *c, const struct node *n, const json_t *v, const struct jspath *at,
                 int depth, bool collect, const struct scope *scope, struct annot *out)
{
    if (c->stop)
        return false;
    if (++c->steps > JSONSCHEMA_MAX_STEPS) {
        limit(c, at, n->path,
              "validation stopped after %ld steps; the schema branches too much for this "
              "document",
              JSONSCHEMA_MAX_STEPS);
        return false;
    }
    if (depth > JSONSCHEMA_MAX_EVAL_DEPTH) {
        limit(c, at, n->path,
              "validation stopped: more than %d subschemas nested (a long chain of $ref?)",
              JSONSCHEMA_MAX_EVAL_DEPTH);
        return false;
    }
    if (n->boolean == 1)
        return true;
    if (n->boolean == 0)
        return fail(c, collect, at, n, "false", "no value is allowed here");
    struct scope here = {n->res, scope};
    if (!scope || scope->res != n->res)
        scope = &here;
    /* Annotations are tracked only where someone reads them: for a caller that asked, or
     * for this node's own unevaluated keywords. */
    struct annot own = {0, NULL}, *ann = out;
    if (!ann && (n->unevaluated_properties || n->unevaluated_items) && instance_size(v) > 0) {
        if (!annot_init(c, &own, v))
            return false;
        ann = &own;
    }
    if (ann && ann->n == 0)
        ann = NULL;
    /* Only reference targets can meet the same instance twice: on a container along many
     * paths through the document, on any value along the many paths of a DAG of in-place
     * references (allOf of two $refs at every level). */
    bool memo = c->use_memo && n->ref_target_of;
    if (memo) {
        const struct memo_entry *e = memo_find(c, n, v);
        /* A success has nothing to report; a failure is reported once, not once per path. */
        if (e && (!out || e->seen) && (!collect || e->ok || e->reported)) {
            if (out && e->ok) {
                for (size_t i = 0; i < out->n; i++)
                    out->seen[i] |= e->seen[i];
            }
            free(own.seen);
            return e->ok;
        }
    }
    bool ok = eval_node(c, n, v, at, depth, collect, scope, ann);
    if (memo && !c->stop)
        memo_store(c, n, v, ok, out, collect);
    free(own.seen);
    return ok && !c->stop;
}

int jsonschema_validate(const struct jsonschema *s, const json_t *doc, json_t **errors)
{
    struct vctx c = {0};
    struct jsbuf where = {0};
    bool valid;
    c.use_memo = !s->dynamic;
    if (errors) {
        *errors = NULL;
        c.errors = json_array();
        if (!c.errors)
            return JSONSCHEMA_ENOMEM;
    }
    if (jsonschema_value_too_deep(doc, 0, JSONSCHEMA_MAX_DEPTH, NULL, &where)) {
        valid = false;
        if (c.errors) {
            struct jsbuf msg = {0};
            jsonschema_buf_printf(&msg, "arrays and objects nest deeper than %d levels here",
                                  JSONSCHEMA_MAX_DEPTH);
            add_error(&c, &where, "", NULL, "limit", &msg);
            free(msg.p);
        }
    } else {
        valid = eval(&c, s->root, doc, NULL, 0, errors != NULL, NULL, NULL) && !c.stop;
    }
    free(where.p);
    pcre2_match_data_free(c.md);
    pcre2_match_context_free(c.mc);
    memo_free(c.memo);
    json_decref(c.names);
    if (c.oom) {
        json_decref(c.errors);
        return JSONSCHEMA_ENOMEM;
    }
    if (valid) {
        json_decref(c.errors);
        return 0;
    }
    if (errors)
        *errors = c.errors;
    return JSONSCHEMA_INVALID;
}
