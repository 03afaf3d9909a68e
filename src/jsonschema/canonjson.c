#include "jsonschema/canonjson.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A growable output buffer; ok turns false on the first allocation failure. */
struct out {
    char *buf;
    size_t len, cap;
    int ok;
};

static void put(struct out *o, const char *s, size_t n)
{
    if (!o->ok) {
        return;
    }
    if (o->cap - o->len < n + 1) {
        size_t cap = o->cap ? o->cap : 256;
        while (cap - o->len < n + 1) {
            cap *= 2;
        }
        char *b = realloc(o->buf, cap);
        if (b == NULL) {
            o->ok = 0;
            return;
        }
        o->buf = b;
        o->cap = cap;
    }
    memcpy(o->buf + o->len, s, n);
    o->len += n;
    o->buf[o->len] = '\0';
}

static void put_string(struct out *o, const char *s, size_t n)
{
    put(o, "\"", 1);
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        const char *esc = NULL;
        char u[8];
        switch (c) {
        case '"':
            esc = "\\\"";
            break;
        case '\\':
            esc = "\\\\";
            break;
        case '\b':
            esc = "\\b";
            break;
        case '\f':
            esc = "\\f";
            break;
        case '\n':
            esc = "\\n";
            break;
        case '\r':
            esc = "\\r";
            break;
        case '\t':
            esc = "\\t";
            break;
        default:
            if (c < 0x20) {
                snprintf(u, sizeof(u), "\\u%04x", c);
                esc = u;
            }
        }
        if (esc != NULL) {
            put(o, s + i - run, run);
            run = 0;
            put(o, esc, strlen(esc));
        } else {
            run++;
        }
    }
    put(o, s + n - run, run);
    put(o, "\"", 1);
}

static void put_real(struct out *o, double v)
{
    char buf[40];
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, sizeof(buf), "%.*g", prec, v);
        if (strtod(buf, NULL) == v) {
            break;
        }
    }
    put(o, buf, strlen(buf));
    /* "1" or "-0" would read back as an integer; keep it a real. */
    if (strpbrk(buf, ".eEn") == NULL) {
        put(o, ".0", 2);
    }
}

static int cmp_keys(const void *a, const void *b)
{
    const char *ka = *(const char *const *)a, *kb = *(const char *const *)b;
    return strcmp(ka, kb); /* strcmp compares as unsigned bytes: UTF-8 byte order */
}

static int dump(struct out *o, const json_t *v, int depth)
{
    char num[32];
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        if (depth >= CANONJSON_MAX_DEPTH) {
            return -1;
        }
        size_t n = json_object_size(v), i = 0;
        const char **keys = malloc((n ? n : 1) * sizeof(*keys));
        if (keys == NULL) {
            o->ok = 0;
            return 0;
        }
        const char *key;
        json_t *val;
        json_object_foreach((json_t *)v, key, val)
        {
            keys[i++] = key;
        }
        qsort(keys, n, sizeof(*keys), cmp_keys);
        put(o, "{", 1);
        for (i = 0; i < n; i++) {
            if (i > 0) {
                put(o, ",", 1);
            }
            put_string(o, keys[i], strlen(keys[i]));
            put(o, ":", 1);
            if (dump(o, json_object_get(v, keys[i]), depth + 1) != 0) {
                free(keys);
                return -1;
            }
        }
        free(keys);
        put(o, "}", 1);
        return 0;
    }
    case JSON_ARRAY:
        if (depth >= CANONJSON_MAX_DEPTH) {
            return -1;
        }
        put(o, "[", 1);
        for (size_t i = 0; i < json_array_size(v); i++) {
            if (i > 0) {
                put(o, ",", 1);
            }
            if (dump(o, json_array_get(v, i), depth + 1) != 0) {
                return -1;
            }
        }
        put(o, "]", 1);
        return 0;
    case JSON_STRING:
        put_string(o, json_string_value(v), json_string_length(v));
        return 0;
    case JSON_INTEGER:
        snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        put(o, num, strlen(num));
        return 0;
    case JSON_REAL:
        put_real(o, json_real_value(v));
        return 0;
    case JSON_TRUE:
        put(o, "true", 4);
        return 0;
    case JSON_FALSE:
        put(o, "false", 5);
        return 0;
    case JSON_NULL:
        put(o, "null", 4);
        return 0;
    }
    return -1;
}

int canonjson_dump(const json_t *value, char **out, size_t *len, char *errmsg, size_t errlen)
{
    struct out o = {.ok = 1};
    *out = NULL;
    if (dump(&o, value, 0) != 0) {
        free(o.buf);
        snprintf(errmsg, errlen, "json nests deeper than %d levels", CANONJSON_MAX_DEPTH);
        return -1;
    }
    if (!o.ok) {
        free(o.buf);
        snprintf(errmsg, errlen, "out of memory writing json");
        return -1;
    }
    if (o.buf == NULL) {
        put(&o, "", 0);
    }
    *out = o.buf;
    *len = o.len;
    return 0;
}

/* The nesting depth of V (a scalar is 0, a container 1 + its deepest member), computed only
 * far enough to know whether it exceeds LIMIT. */
static int depth_of(const json_t *v, int limit)
{
    if (!json_is_object(v) && !json_is_array(v)) {
        return 0;
    }
    if (limit == 0) {
        return 1;
    }
    int max = 0;
    if (json_is_object(v)) {
        const char *key;
        json_t *val;
        json_object_foreach((json_t *)v, key, val)
        {
            int d = depth_of(val, limit - 1);
            max = d > max ? d : max;
            if (1 + max > limit) {
                break;
            }
        }
    } else {
        for (size_t i = 0; i < json_array_size(v) && 1 + max <= limit; i++) {
            int d = depth_of(json_array_get(v, i), limit - 1);
            max = d > max ? d : max;
        }
    }
    return 1 + max;
}

int canonjson_parse(const char *text, size_t len, json_t **out, char *errmsg, size_t errlen)
{
    json_error_t err;
    /* Without JSON_ALLOW_NUL jansson refuses \u0000, which jsonb could not store either. */
    json_t *v = json_loadb(text, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &err);
    *out = NULL;
    if (v == NULL) {
        snprintf(errmsg, errlen, "line %d, column %d: %s", err.line, err.column, err.text);
        return -1;
    }
    if (depth_of(v, CANONJSON_MAX_DEPTH) > CANONJSON_MAX_DEPTH) {
        json_decref(v);
        snprintf(errmsg, errlen, "json nests deeper than %d levels", CANONJSON_MAX_DEPTH);
        return -1;
    }
    *out = v;
    return 0;
}
