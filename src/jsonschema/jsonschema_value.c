/* The JSON Schema data model over jansson values. */
#include "jsonschema/jsonschema_value.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const type_names[] = {"null",   "boolean", "object", "array",
                                         "number", "string",  "integer"};
#define NTYPES (sizeof type_names / sizeof *type_names)

/* 2^63 as a double: every double in [-2^63, 2^63) truncates to a json_int_t exactly. */
#define TWO_POW_63 9223372036854775808.0
/* 2^52: doubles of this magnitude or more have no fractional bits. */
#define TWO_POW_52 4503599627370496.0

unsigned jsonschema_value_type_bit(const char *name)
{
    for (size_t t = 0; t < NTYPES; t++) {
        if (strcmp(name, type_names[t]) == 0)
            return 1u << t;
    }
    return 0;
}

unsigned jsonschema_value_types_of(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return JSVALUE_OBJECT;
    case JSON_ARRAY:
        return JSVALUE_ARRAY;
    case JSON_STRING:
        return JSVALUE_STRING;
    case JSON_INTEGER:
        return JSVALUE_NUMBER | JSVALUE_INTEGER;
    case JSON_REAL: {
        double d = json_real_value(v);
        json_int_t ignored;
        bool integral = jsonschema_value_as_int(v, &ignored) || d >= TWO_POW_52 || d <= -TWO_POW_52;
        return JSVALUE_NUMBER | (integral ? JSVALUE_INTEGER : 0);
    }
    case JSON_TRUE:
    case JSON_FALSE:
        return JSVALUE_BOOLEAN;
    case JSON_NULL:
        return JSVALUE_NULL;
    }
    return 0;
}

void jsonschema_value_put_types(struct jsbuf *b, unsigned types)
{
    bool first = true;
    for (size_t t = 0; t < NTYPES; t++) {
        if (types & (1u << t)) {
            jsonschema_buf_puts(b, first ? "" : " or ");
            jsonschema_buf_puts(b, type_names[t]);
            first = false;
        }
    }
}

const char *jsonschema_value_type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "object";
    case JSON_ARRAY:
        return "array";
    case JSON_STRING:
        return "string";
    case JSON_INTEGER:
        return "integer";
    case JSON_REAL:
        return "number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "boolean";
    case JSON_NULL:
        return "null";
    }
    return "unknown";
}

bool jsonschema_value_as_int(const json_t *x, json_int_t *out)
{
    if (json_is_integer(x)) {
        *out = json_integer_value(x);
        return true;
    }
    if (!json_is_real(x))
        return false;
    double d = json_real_value(x);
    if (d >= -TWO_POW_63 && d < TWO_POW_63 && d == (double)(json_int_t)d) {
        *out = (json_int_t)d;
        return true;
    }
    return false;
}

double jsonschema_value_number(const json_t *x)
{
    return json_is_integer(x) ? (double)json_integer_value(x) : json_real_value(x);
}

static int int_real_cmp(json_int_t i, double d)
{
    if (d >= TWO_POW_63)
        return -1;
    if (d < -TWO_POW_63)
        return 1;
    json_int_t t = (json_int_t)d;
    if (i != t)
        return i < t ? -1 : 1;
    double frac = d - (double)t; /* exact: the fractional part of a double is a double */
    return frac > 0 ? -1 : frac < 0 ? 1 : 0;
}

int jsonschema_value_cmp(const json_t *a, const json_t *b)
{
    if (json_is_integer(a) && json_is_integer(b)) {
        json_int_t x = json_integer_value(a), y = json_integer_value(b);
        return x < y ? -1 : x > y;
    }
    if (json_is_real(a) && json_is_real(b)) {
        double x = json_real_value(a), y = json_real_value(b);
        return x < y ? -1 : x > y;
    }
    if (json_is_integer(a))
        return int_real_cmp(json_integer_value(a), json_real_value(b));
    return -int_real_cmp(json_integer_value(b), json_real_value(a));
}

bool jsonschema_value_equal(const json_t *a, const json_t *b)
{
    if (json_is_number(a) && json_is_number(b))
        return jsonschema_value_cmp(a, b) == 0;
    if (json_typeof(a) != json_typeof(b))
        return false;
    switch (json_typeof(a)) {
    case JSON_STRING:
        return json_string_length(a) == json_string_length(b) &&
               memcmp(json_string_value(a), json_string_value(b), json_string_length(a)) == 0;
    case JSON_ARRAY:
        if (json_array_size(a) != json_array_size(b))
            return false;
        for (size_t i = 0; i < json_array_size(a); i++) {
            if (!jsonschema_value_equal(json_array_get(a, i), json_array_get(b, i)))
                return false;
        }
        return true;
    case JSON_OBJECT:
        if (json_object_size(a) != json_object_size(b))
            return false;
        /* Jansson's iterators take a non-const object but only read it. */
        for (void *it = json_object_iter((json_t *)a); it;
             it = json_object_iter_next((json_t *)a, it)) {
            const json_t *other =
                json_object_getn(b, json_object_iter_key(it), json_object_iter_key_len(it));
            if (!other || !jsonschema_value_equal(json_object_iter_value(it), other))
                return false;
        }
        return true;
    default:
        return true; /* true, false and null carry nothing beyond their type */
    }
}

static uint64_t mix(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9u;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebu;
    return x ^ (x >> 31);
}

static uint64_t hash_bytes(const char *s, size_t n)
{
    uint64_t h = 0xcbf29ce484222325u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 0x100000001b3u;
    return h;
}

uint64_t jsonschema_value_hash(const json_t *v)
{
    json_int_t i;
    uint64_t h;
    switch (json_typeof(v)) {
    case JSON_INTEGER:
    case JSON_REAL:
        /* 1 and 1.0 are equal, so every integral number hashes as an integer. */
        if (jsonschema_value_as_int(v, &i))
            return mix((uint64_t)i ^ 3);
        double d = json_real_value(v);
        memcpy(&h, &d, sizeof h);
        return mix(h ^ 4);
    case JSON_STRING:
        return mix(hash_bytes(json_string_value(v), json_string_length(v)) ^ 5);
    case JSON_ARRAY:
        h = 6;
        for (size_t k = 0; k < json_array_size(v); k++)
            h = mix(h + jsonschema_value_hash(json_array_get(v, k)));
        return h;
    case JSON_OBJECT:
        /* A sum does not depend on the order of the members. */
        h = 0;
        for (void *it = json_object_iter((json_t *)v); it;
             it = json_object_iter_next((json_t *)v, it)) {
            uint64_t key = hash_bytes(json_object_iter_key(it), json_object_iter_key_len(it));
            h += mix(key ^ mix(jsonschema_value_hash(json_object_iter_value(it))));
        }
        return mix(h ^ 7);
    case JSON_TRUE:
        return 1;
    case JSON_FALSE:
        return 2;
    case JSON_NULL:
        return 0;
    }
    return 0;
}

void jsonschema_value_number_text(const json_t *x, char *buf, size_t len)
{
    if (json_is_integer(x)) {
        snprintf(buf, len, "%" JSON_INTEGER_FORMAT, json_integer_value(x));
        return;
    }
    double d = json_real_value(x);
    snprintf(buf, len, "%.15g", d);
    if (strtod(buf, NULL) != d)
        snprintf(buf, len, "%.17g", d);
}

bool jsonschema_value_too_deep(const json_t *v, int level, int max_depth, const struct jspath *at,
                               struct jsbuf *where)
{
    if (!json_is_array(v) && !json_is_object(v))
        return false;
    if (level >= max_depth) {
        jsonschema_buf_put_path(where, at);
        return true;
    }
    if (json_is_array(v)) {
        for (size_t i = 0; i < json_array_size(v); i++) {
            struct jspath child = {at, NULL, 0, i};
            if (jsonschema_value_too_deep(json_array_get(v, i), level + 1, max_depth, &child,
                                          where))
                return true;
        }
        return false;
    }
    for (void *it = json_object_iter((json_t *)v); it;
         it = json_object_iter_next((json_t *)v, it)) {
        struct jspath child = {at, json_object_iter_key(it), json_object_iter_key_len(it), 0};
        if (jsonschema_value_too_deep(json_object_iter_value(it), level + 1, max_depth, &child,
                                      where))
            return true;
    }
    return false;
}
