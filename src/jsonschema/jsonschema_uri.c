/* RFC 3986 reference resolution for the JSON Schema validator. A URI is split into its five
 * components by position only (no validation): the validator compares the results as
 * strings, so it only needs resolution to be deterministic and to agree with RFC 3986 on the
 * URIs real schemas use. */
#include "jsonschema/jsonschema_uri.h"

#include <stdlib.h>
#include <string.h>

#include "jsonschema/jsonschema_buf.h"

/* The components of a URI reference as [start, start + len) slices of one string; a
 * component that is absent has DEFINED false (an empty query "?" is defined). */
struct part {
    const char *p;
    size_t len;
    bool defined;
};

struct uri {
    struct part scheme, authority, path, query, fragment;
};

bool jsonschema_uri_has_scheme(const char *s)
{
    if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z')))
        return false;
    for (const char *p = s + 1; *p; p++) {
        if (*p == ':')
            return true;
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '+' || *p == '-' || *p == '.'))
            return false;
    }
    return false;
}

static void split(const char *s, struct uri *u)
{
    memset(u, 0, sizeof *u);
    const char *p = s;
    if (jsonschema_uri_has_scheme(s)) {
        const char *colon = strchr(s, ':');
        u->scheme = (struct part){s, (size_t)(colon - s), true};
        p = colon + 1;
    }
    if (p[0] == '/' && p[1] == '/') {
        size_t n = strcspn(p + 2, "/?#");
        u->authority = (struct part){p + 2, n, true};
        p += 2 + n;
    }
    size_t n = strcspn(p, "?#");
    u->path = (struct part){p, n, true};
    p += n;
    if (*p == '?') {
        n = strcspn(p + 1, "#");
        u->query = (struct part){p + 1, n, true};
        p += 1 + n;
    }
    if (*p == '#')
        u->fragment = (struct part){p + 1, strlen(p + 1), true};
}

/* RFC 3986 5.2.4: removes "." and ".." segments from the LEN bytes at IN, appending the
 * result to OUT. Works on a private copy so that "replace the prefix by /" is a write of one
 * byte; every step consumes at least one byte of the copy, so the loop ends. */
static void remove_dots(struct jsbuf *out, const char *in, size_t len)
{
    char *buf = malloc(len + 1);
    struct jsbuf res = {0};
    if (!buf) {
        out->oom = true;
        return;
    }
    memcpy(buf, in, len);
    buf[len] = '\0';
    size_t i = 0;
    while (i < len) {
        const char *p = buf + i;
        size_t rest = len - i;
        if (rest >= 3 && memcmp(p, "../", 3) == 0) {
            i += 3;
        } else if (rest >= 2 && memcmp(p, "./", 2) == 0) {
            i += 2;
        } else if (rest >= 3 && memcmp(p, "/./", 3) == 0) {
            i += 2;
        } else if (rest == 2 && memcmp(p, "/.", 2) == 0) {
            buf[i + 1] = '/';
            i += 1;
        } else if ((rest >= 4 && memcmp(p, "/../", 4) == 0) ||
                   (rest == 3 && memcmp(p, "/..", 3) == 0)) {
            size_t k = res.len;
            while (k > 0 && res.p[k - 1] != '/')
                k--;
            jsonschema_buf_truncate(&res, k > 0 ? k - 1 : 0);
            i += 2;
            buf[i] = '/';
        } else if ((rest == 1 && p[0] == '.') || (rest == 2 && memcmp(p, "..", 2) == 0)) {
            i += rest;
        } else {
            size_t seg = p[0] == '/' ? 1 : 0;
            while (seg < rest && p[seg] != '/')
                seg++;
            jsonschema_buf_putn(&res, p, seg);
            i += seg;
        }
    }
    jsonschema_buf_putn(out, jsonschema_buf_str(&res), res.len);
    if (res.oom)
        out->oom = true;
    free(res.p);
    free(buf);
}

static void put_part(struct jsbuf *b, const char *prefix, const struct part *x)
{
    if (!x->defined)
        return;
    jsonschema_buf_puts(b, prefix);
    jsonschema_buf_putn(b, x->p, x->len);
}

char *jsonschema_uri_resolve(const char *base, const char *ref)
{
    struct uri b, r;
    split(base, &b);
    split(ref, &r);
    struct jsbuf out = {0};
    /* Target components, written in order: scheme, authority, path, query, fragment. */
    if (r.scheme.defined) {
        jsonschema_buf_putn(&out, r.scheme.p, r.scheme.len);
        jsonschema_buf_putn(&out, ":", 1);
        put_part(&out, "//", &r.authority);
        remove_dots(&out, r.path.p, r.path.len);
        put_part(&out, "?", &r.query);
    } else {
        if (b.scheme.defined) {
            jsonschema_buf_putn(&out, b.scheme.p, b.scheme.len);
            jsonschema_buf_putn(&out, ":", 1);
        }
        if (r.authority.defined) {
            put_part(&out, "//", &r.authority);
            remove_dots(&out, r.path.p, r.path.len);
            put_part(&out, "?", &r.query);
        } else {
            put_part(&out, "//", &b.authority);
            if (r.path.len == 0) {
                jsonschema_buf_putn(&out, b.path.p, b.path.len);
                put_part(&out, "?", r.query.defined ? &r.query : &b.query);
            } else if (r.path.p[0] == '/') {
                remove_dots(&out, r.path.p, r.path.len);
                put_part(&out, "?", &r.query);
            } else {
                /* RFC 3986 5.2.3: merge with the base path up to its last "/". */
                struct jsbuf merged = {0};
                if (b.authority.defined && b.path.len == 0) {
                    jsonschema_buf_putn(&merged, "/", 1);
                } else {
                    size_t k = b.path.len;
                    while (k > 0 && b.path.p[k - 1] != '/')
                        k--;
                    jsonschema_buf_putn(&merged, b.path.p, k);
                }
                jsonschema_buf_putn(&merged, r.path.p, r.path.len);
                remove_dots(&out, jsonschema_buf_str(&merged), merged.len);
                if (merged.oom)
                    out.oom = true;
                free(merged.p);
                put_part(&out, "?", &r.query);
            }
        }
    }
    put_part(&out, "#", &r.fragment);
    if (out.oom) {
        free(out.p);
        return NULL;
    }
    if (!out.p)
        return strdup("");
    return out.p;
}

size_t jsonschema_uri_base_len(const char *uri)
{
    return strcspn(uri, "#");
}

char *jsonschema_uri_decode(const char *s, bool *bad)
{
    size_t len = strlen(s);
    char *out = malloc(len + 1), *o = out;
    *bad = false;
    if (!out)
        return NULL;
    for (const char *p = s; *p; p++) {
        if (*p != '%') {
            *o++ = *p;
            continue;
        }
        int hi = jsonschema_hex_digit(p[1]), lo = hi < 0 ? -1 : jsonschema_hex_digit(p[2]);
        if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
            *bad = true;
            free(out);
            return NULL;
        }
        *o++ = (char)(hi * 16 + lo);
        p += 2;
    }
    *o = '\0';
    return out;
}
