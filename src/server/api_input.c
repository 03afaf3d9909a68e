/*
 * api_input: what handlers read from a request, checked before any work starts: the JSON
 * body and its fields, query parameters, the page cursor of list endpoints, and the syntax of
 * ids (UUIDs, project slugs). Every reader that refuses its input answers 400 naming the field
 * or parameter and ends the call, so a handler returns at once on -1. Part of the API module
 * (declared in api_internal.h); runs on the loop thread.
 */
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "server/api_internal.h"

/* ---- syntax ------------------------------------------------------------------------- */

bool api_input_is_uuid(const char *s)
{
    if (strlen(s) != 36) {
        return false;
    }
    for (int i = 0; i < 36; i++) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? s[i] != '-' : !isxdigit((unsigned char)s[i])) {
            return false;
        }
    }
    return true;
}

bool api_input_is_slug(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 63 || s[0] == '-' || s[n - 1] == '-') {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (!(islower((unsigned char)s[i]) || isdigit((unsigned char)s[i]) || s[i] == '-')) {
            return false;
        }
    }
    return true;
}

void api_input_uuid_text(const uint8_t id[16], char out[37])
{
    char hex[33];
    sodium_bin2hex(hex, sizeof(hex), id, 16);
    snprintf(out, 37, "%.8s-%.4s-%.4s-%.4s-%.12s", hex, hex + 8, hex + 12, hex + 16, hex + 20);
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    c = (char)tolower((unsigned char)c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

int api_input_pct_decode(const char *in, size_t n, char *out, size_t outlen, bool plus_space)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char c = in[i];
        if (c == '%') {
            int hi = i + 1 < n ? hexval(in[i + 1]) : -1, lo = i + 2 < n ? hexval(in[i + 2]) : -1;
            if (hi < 0 || lo < 0) {
                return -1;
            }
            c = (char)(hi * 16 + lo);
            i += 2;
            if (c == '\0') {
                return -1;
            }
        } else if (c == '+' && plus_space) {
            c = ' ';
        }
        if (o + 1 >= outlen) {
            return -1;
        }
        out[o++] = c;
    }
    out[o] = '\0';
    return 0;
}

/* ---- the body ----------------------------------------------------------------------- */

int api_input_body_object(struct api_call *call)
{
    size_t len = 0;
    const char *text = http_request_body(call->req, &len);
    json_error_t err;
    json_t *v = json_loadb(text, len, JSON_REJECT_DUPLICATES, &err);
    if (v == NULL) {
        /* jansson's words for \u0000 name its own flag; say what the user must change, and
         * why it is refused: PostgreSQL's jsonb (configs.content) cannot store U+0000. */
        const char *why = strstr(err.text, "JSON_ALLOW_NUL") != NULL
                              ? "\\u0000 (U+0000) is not allowed in strings: postgresql cannot "
                                "store it; remove it or encode it differently"
                              : err.text;
        api_error(call, 400, "bad_request",
                  "request body is not valid json: line %d, column "
                  "%d: %s",
                  err.line, err.column, why);
        return -1;
    }
    if (!json_is_object(v)) {
        json_decref(v);
        api_error(call, 400, "bad_request", "request body must be a json object");
        return -1;
    }
    call->body = v;
    return 0;
}

static size_t code_points(const char *s)
{
    size_t n = 0;
    for (; *s; s++) {
        n += ((unsigned char)*s & 0xC0) != 0x80;
    }
    return n;
}

int api_input_field_string(struct api_call *call, const char *name, bool required, size_t min,
                           size_t max, const char **out)
{
    json_t *v = json_object_get(call->body, name);
    *out = NULL;
    if (v == NULL) {
        if (required) {
            api_field_error(call, name, "field \"%s\" is required", name);
            return -1;
        }
        return 0;
    }
    if (!json_is_string(v)) {
        api_field_error(call, name, "field \"%s\" must be a string", name);
        return -1;
    }
    const char *s = json_string_value(v);
    size_t n = code_points(s);
    if (strlen(s) != json_string_length(v) || n < min || n > max) {
        api_field_error(call, name, "field \"%s\" must have %zu to %zu characters", name, min, max);
        return -1;
    }
    *out = s;
    return 0;
}

int api_input_field_bool(struct api_call *call, const char *name, bool def, bool *out)
{
    json_t *v = json_object_get(call->body, name);
    *out = def;
    if (v == NULL) {
        return 0;
    }
    if (!json_is_boolean(v)) {
        api_field_error(call, name, "field \"%s\" must be true or false", name);
        return -1;
    }
    *out = json_is_true(v);
    return 0;
}

int api_input_fields_known(struct api_call *call, const char *const *allowed)
{
    const char *key;
    json_t *v;
    json_object_foreach(call->body, key, v)
    {
        bool ok = false;
        for (const char *const *a = allowed; *a; a++) {
            ok = ok || strcmp(*a, key) == 0;
        }
        if (!ok) {
            api_field_error(call, key, "field \"%s\" is not known here", key);
            return -1;
        }
    }
    return 0;
}

/* ---- the query ---------------------------------------------------------------------- */

int api_input_query(struct api_call *call, const char *name, char *out, size_t outlen)
{
    const char *q = http_request_query(call->req);
    size_t nlen = strlen(name);
    while (*q != '\0') {
        const char *amp = strchr(q, '&');
        size_t len = amp ? (size_t)(amp - q) : strlen(q);
        if (len > nlen && strncmp(q, name, nlen) == 0 && q[nlen] == '=') {
            int rc = api_input_pct_decode(q + nlen + 1, len - nlen - 1, out, outlen, true);
            return rc == 0 ? 1 : -1;
        }
        q += len + (amp ? 1 : 0);
    }
    return 0;
}

int api_input_query_u64(struct api_call *call, const char *name, uint64_t def, uint64_t max,
                        uint64_t *out)
{
    char buf[32];
    char *end = NULL;
    int q = api_input_query(call, name, buf, sizeof(buf));
    *out = def;
    if (q == 0) {
        return 0;
    }
    if (q > 0) {
        *out = strtoull(buf, &end, 10);
    }
    if (q < 0 || end == buf || *end != '\0' || buf[0] == '-' || *out > max) {
        api_field_error(call, name, "query parameter %s must be a whole number from 0 to %" PRIu64,
                        name, max);
        return -1;
    }
    return 0;
}

/* ---- pages -------------------------------------------------------------------------- */

int api_input_page_start(struct api_call *call, bool after_is_uuid)
{
    char buf[96];
    call->page_limit = 100;
    call->page_after = NULL;
    int rc = api_input_query(call, "limit", buf, sizeof(buf));
    if (rc != 0) {
        char *end = NULL;
        long v = rc > 0 ? strtol(buf, &end, 10) : 0;
        if (rc < 0 || end == buf || *end != '\0' || v < 1 || v > 1000) {
            api_field_error(call, "limit",
                            "query parameter limit must be a whole number from 1 to "
                            "1000");
            return -1;
        }
        call->page_limit = (int)v;
    }
    rc = api_input_query(call, "after", buf, sizeof(buf));
    if (rc != 0) {
        if (rc < 0 || !(after_is_uuid ? api_input_is_uuid(buf) : api_input_is_slug(buf))) {
            api_field_error(call, "after",
                            "query parameter after must be the next_after of a previous page");
            return -1;
        }
        snprintf(call->after, sizeof(call->after), "%s", buf);
        call->page_after = call->after;
    }
    return 0;
}

json_t *api_input_page_result(json_t *items, int limit, const char *key)
{
    json_t *next = json_null();
    if (json_array_size(items) > (size_t)limit) {
        json_array_remove(items, (size_t)limit);
        next = json_incref(json_object_get(json_array_get(items, (size_t)limit - 1), key));
    }
    return json_pack("{s:o,s:o}", "items", items, "next_after", next);
}
