/* URIs and references of the JSON Schema compiler: the registry of resources and anchors,
 * resolution of $ref / $dynamicRef / $recursiveRef (fetching other schemas through the
 * caller's resolver), and the check that no reference cycle re-validates a value forever. */
#include "jsonschema/jsonschema_ref.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "jsonschema/jsonschema_uri.h"

#define refuse jsonschema_cc_refuse
#define nomem  jsonschema_cc_nomem

int jsonschema_ref_register(struct compiler *cc, const char *uri, const char *anchor,
                            struct node *node)
{
    struct jsonschema *s = cc->s;
    if (s->nuris == s->capuris) {
        size_t cap = s->capuris ? s->capuris * 2 : 16;
        struct uri_entry *v = realloc(s->uris, cap * sizeof *v);
        if (!v)
            return nomem(cc);
        s->uris = v;
        s->capuris = cap;
    }
    struct uri_entry *e = &s->uris[s->nuris];
    e->uri = strdup(uri);
    e->anchor = anchor ? strdup(anchor) : NULL;
    e->node = node;
    if (!e->uri || (anchor && !e->anchor)) {
        free(e->uri);
        free(e->anchor);
        return nomem(cc);
    }
    s->nuris++;
    return 0;
}

static uint64_t path_hash(size_t doc, const char *path)
{
    uint64_t h = 1469598103934665603u ^ doc;
    for (const char *p = path; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211u;
    return h;
}

/* The slot of (DOC, PATH) in the index: its node, or the empty slot it would take. */
static size_t path_slot(struct node *const *v, size_t cap, size_t doc, const char *path)
{
    size_t i = (size_t)path_hash(doc, path) & (cap - 1);
    /* Terminates: the index is never more than half full. */
    while (v[i] && (v[i]->doc != doc || strcmp(v[i]->path, path) != 0))
        i = (i + 1) & (cap - 1);
    return i;
}

int jsonschema_ref_index(struct compiler *cc, struct node *n)
{
    struct jsonschema *s = cc->s;
    if (s->nnodes * 2 > s->by_path_cap) {
        size_t cap = s->by_path_cap ? s->by_path_cap * 2 : 64;
        while (s->nnodes * 2 > cap)
            cap *= 2;
        struct node **v = calloc(cap, sizeof *v);
        if (!v)
            return nomem(cc);
        for (size_t i = 0; i < s->by_path_cap; i++) {
            struct node *m = s->by_path[i];
            if (m)
                v[path_slot(v, cap, m->doc, m->path)] = m;
        }
        free(s->by_path);
        s->by_path = v;
        s->by_path_cap = cap;
    }
    size_t i = path_slot(s->by_path, s->by_path_cap, n->doc, n->path);
    if (!s->by_path[i])
        s->by_path[i] = n;
    return 0;
}

/* The node registered as URI (LEN bytes) with ANCHOR (NULL: the resource itself). */
static struct node *lookup(const struct jsonschema *s, const char *uri, size_t len,
                           const char *anchor)
{
    for (size_t i = 0; i < s->nuris; i++) {
        const struct uri_entry *e = &s->uris[i];
        if (strlen(e->uri) == len && memcmp(e->uri, uri, len) == 0 &&
            (anchor ? e->anchor && strcmp(e->anchor, anchor) == 0 : !e->anchor))
            return e->node;
    }
    return NULL;
}

/* Fetches the document URI (LEN bytes, absolute, not yet registered) through the resolver
 * and compiles it as a new document in DIALECT unless its "$schema" says otherwise. Returns
 * 0 also when the resolver does not know it (the caller then finds nothing). */
static int fetch(struct compiler *cc, const char *uri, size_t len, unsigned dialect)
{
    if (!cc->resolver || !jsonschema_uri_has_scheme(uri) ||
        cc->s->ndocs == JSONSCHEMA_MAX_DOCUMENTS)
        return 0;
    char *base = strndup(uri, len);
    if (!base)
        return nomem(cc);
    json_t *doc = cc->resolver(base, cc->resolver_data);
    int rc = doc ? jsonschema_cc_document(cc, doc, base, dialect) : 0;
    json_decref(doc);
    free(base);
    return rc;
}

/* Appends to B the token at *P (up to the next "/" or the end) unescaped ("~1" is "/", "~0"
 * is "~"), advancing *P past it. False on an invalid "~" escape. */
static bool next_token(const char **p, struct jsbuf *b)
{
    jsonschema_buf_truncate(b, 0);
    const char *s = *p;
    while (*s && *s != '/') {
        if (*s == '~') {
            if (s[1] != '0' && s[1] != '1')
                return false;
            jsonschema_buf_putn(b, s[1] == '0' ? "~" : "/", 1);
            s += 2;
        } else {
            jsonschema_buf_putn(b, s, 1);
            s++;
        }
    }
    *p = s;
    return true;
}

/* Follows the JSON Pointer PTR ("/a/b", escaped) from V; NULL when it leads nowhere. */
static json_t *walk_pointer(json_t *v, const char *ptr, bool *bad)
{
    struct jsbuf tok = {0};
    *bad = false;
    /* Every step consumes at least the "/" it starts with. */
    while (v && *ptr == '/') {
        ptr++;
        if (!next_token(&ptr, &tok)) {
            *bad = true;
            v = NULL;
            break;
        }
        const char *t = jsonschema_buf_str(&tok);
        if (json_is_object(v)) {
            v = json_object_getn(v, t, tok.len);
        } else if (json_is_array(v)) {
            char *end;
            unsigned long long i = strtoull(t, &end, 10);
            bool digits = tok.len > 0 && *end == '\0' && (t[0] != '0' || tok.len == 1) &&
                          t[0] >= '0' && t[0] <= '9';
            v = digits ? json_array_get(v, (size_t)i) : NULL;
        } else {
            v = NULL;
        }
    }
    free(tok.p);
    return v;
}

/* The node at the JSON Pointer FRAG inside resource R: an existing node, or the value there
 * compiled now (a subschema under a keyword this dialect does not know, such as "definitions"
 * in 2020-12). NULL when the pointer does not lead to a schema. */
static int pointer_target(struct compiler *cc, struct node *r, const char *kw, const char *ref,
                          const char *frag, struct node **out)
{
    struct jsonschema *s = cc->s;
    struct jsbuf target = {0};
    jsonschema_buf_puts(&target, r->path);
    jsonschema_buf_puts(&target, frag);
    if (target.oom) {
        free(target.p);
        return nomem(cc);
    }
    *out = NULL;
    for (const char *t = strchr(frag, '~'); t; t = strchr(t + 1, '~')) {
        if (t[1] != '0' && t[1] != '1') {
            free(target.p);
            return refuse(cc, "%s \"%s\" has an invalid escape (\"~\" must be followed by 0 or 1)",
                          kw, ref);
        }
    }
    if (s->by_path_cap > 0)
        *out = s->by_path[path_slot(s->by_path, s->by_path_cap, r->doc, target.p)];
    int rc = 0;
    bool bad = false;
    json_t *v = *out ? NULL : walk_pointer((json_t *)r->json, frag, &bad);
    if (bad) {
        rc = refuse(cc, "%s \"%s\" has an invalid escape (\"~\" must be followed by 0 or 1)", kw,
                    ref);
    } else if (v && (json_is_object(v) || json_is_boolean(v))) {
        struct compiler sub = *cc;
        sub.path = target;
        sub.doc = r->doc;
        sub.res = r;
        sub.dialect = r->dialect;
        sub.vocabs = VOC_ALL;
        target = (struct jsbuf){0};
        rc = jsonschema_cc_node(&sub, v, out);
        target = sub.path;
    }
    free(target.p);
    return rc;
}

/* Resolves REF, the value of keyword KW in FROM, to *OUT; *NAME receives the fragment when
 * it is an anchor name (a new string the caller frees), else NULL. */
static int resolve(struct compiler *cc, const struct node *from, const char *kw, const char *ref,
                   struct node **out, char **name)
{
    *out = NULL;
    *name = NULL;
    char *abs = jsonschema_uri_resolve(from->res->uri, ref);
    if (!abs)
        return nomem(cc);
    size_t blen = jsonschema_uri_base_len(abs);
    bool bad = false;
    char *frag = jsonschema_uri_decode(abs[blen] == '#' ? abs + blen + 1 : "", &bad);
    int rc = 0;
    if (!frag) {
        rc = bad ? refuse(cc, "malformed percent-encoding in %s \"%s\"", kw, ref) : nomem(cc);
        free(abs);
        return rc;
    }
    struct node *r = lookup(cc->s, abs, blen, NULL);
    if (!r) {
        rc = fetch(cc, abs, blen, from->dialect);
        if (rc == 0)
            r = lookup(cc->s, abs, blen, NULL);
    }
    if (rc == 0 && r) {
        if (frag[0] == '\0')
            *out = r;
        else if (frag[0] == '/')
            rc = pointer_target(cc, r, kw, ref, frag, out);
        else
            *out = lookup(cc->s, abs, blen, frag);
    }
    if (rc == 0 && !*out) {
        if (!r && jsonschema_uri_has_scheme(abs) && !cc->resolver)
            rc = refuse(cc,
                        "%s \"%s\" refers to another schema (\"%.*s\"), and no resolver for "
                        "other schemas is configured",
                        kw, ref, (int)blen, abs);
        else if (!r)
            rc = refuse(cc, "%s \"%s\" does not resolve: no schema \"%.*s\" is known", kw, ref,
                        (int)blen, abs);
        else
            rc = refuse(cc, "%s \"%s\" does not point at a schema in this document", kw, ref);
    }
    if (rc == 0 && frag[0] != '\0' && frag[0] != '/') {
        *name = frag;
        frag = NULL;
    }
    free(frag);
    free(abs);
    return rc;
}

/* The vocabulary URIs of drafts 2020-12 and 2019-09 and the keyword groups they enable. */
static unsigned vocab_bits(const char *uri)
{
    static const struct {
        const char *suffix;
        unsigned bits;
    } vocabs[] = {
        {"/vocab/applicator", VOC_APPLICATOR},
        {"/vocab/unevaluated", VOC_APPLICATOR},
        {"/vocab/validation", VOC_VALIDATION},
        {"/vocab/format-annotation", VOC_FORMAT},
        {"/vocab/format-assertion", VOC_FORMAT | VOC_FORMAT_ASSERTION},
        {"/vocab/format", VOC_FORMAT},
    };
    size_t len = strlen(uri);
    for (size_t i = 0; i < sizeof vocabs / sizeof *vocabs; i++) {
        size_t n = strlen(vocabs[i].suffix);
        if (len > n && strcmp(uri + len - n, vocabs[i].suffix) == 0 &&
            strncmp(uri, "https://json-schema.org/draft/", 30) == 0)
            return vocabs[i].bits;
    }
    return 0;
}

int jsonschema_ref_metaschema(struct compiler *cc, const char *uri, unsigned *dialect,
                              unsigned *vocabs)
{
    size_t blen = jsonschema_uri_base_len(uri);
    struct node *m = lookup(cc->s, uri, blen, NULL);
    if (!m) {
        int rc = fetch(cc, uri, blen, cc->dialect);
        if (rc != 0)
            return rc;
        m = lookup(cc->s, uri, blen, NULL);
    }
    if (!m || !json_is_object(m->json))
        return 0;
    *dialect = m->dialect;
    json_t *v = json_object_get(m->json, "$vocabulary");
    if (json_is_object(v)) {
        unsigned bits = VOC_OTHER;
        for (void *it = json_object_iter(v); it; it = json_object_iter_next(v, it))
            bits |= vocab_bits(json_object_iter_key(it));
        *vocabs = bits;
    }
    return 0;
}

static void set_path(struct compiler *cc, const struct node *n, const char *keyword)
{
    jsonschema_buf_truncate(&cc->path, 0);
    jsonschema_buf_puts(&cc->path, n->path);
    jsonschema_buf_put_token(&cc->path, keyword, strlen(keyword));
}

int jsonschema_ref_resolve_all(struct compiler *cc)
{
    struct jsonschema *s = cc->s;
    int rc = 0;
    /* NNODES grows while pointer targets and fetched documents are compiled; each node is
     * visited once, and both kinds of growth are bounded (nodes by the documents' size,
     * documents by JSONSCHEMA_MAX_DOCUMENTS). */
    for (size_t i = 0; i < s->nnodes && rc == 0; i++) {
        struct node *n = s->nodes[i];
        char *name = NULL;
        if (n->ref) {
            set_path(cc, n, "$ref");
            rc = resolve(cc, n, "$ref", n->ref, &n->ref_target, &name);
            free(name);
        }
        if (rc == 0 && n->dynamic_ref) {
            set_path(cc, n, "$dynamicRef");
            rc = resolve(cc, n, "$dynamicRef", n->dynamic_ref, &n->dynamic_target, &name);
            /* Dynamic only when the static target has a $dynamicAnchor of that name. */
            if (rc == 0 && name && n->dynamic_target->dynamic_anchor &&
                strcmp(name, n->dynamic_target->dynamic_anchor) == 0)
                n->dynamic_name = n->dynamic_target->dynamic_anchor;
            free(name);
        }
        if (rc == 0 && n->recursive_ref)
            n->recursive_target = n->res;
    }
    for (size_t i = 0; i < s->nnodes && rc == 0; i++) {
        struct node *n = s->nodes[i];
        struct node *targets[] = {n->ref_target, n->dynamic_target, n->recursive_target};
        for (size_t k = 0; k < 3; k++) {
            if (targets[k])
                targets[k]->ref_target_of = true;
        }
        if (n->dynamic_name || (n->recursive_target && n->recursive_target->recursive_anchor))
            s->dynamic = true;
    }
    return rc;
}

/* ---- cycles ------------------------------------------------------------------------- */

/* The I-th subschema N applies to the same instance ($ref first), NULL for an absent slot;
 * false once I is past the last one. */
static bool inplace_child(const struct node *n, size_t i, struct node **child)
{
    struct node *const fixed[] = {n->ref_target, n->dynamic_target, n->recursive_target,
                                  n->not_schema, n->if_schema,      n->then_schema,
                                  n->else_schema};
    if (i < 7) {
        *child = fixed[i];
        return true;
    }
    i -= 7;
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
int jsonschema_ref_check_cycles(struct compiler *cc)
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
                 * following a reference (edges 0 to 2); name it. */
                size_t k = depth - 1;
                while (k > 0 && stack[k].next > 3 && stack[k].n != child)
                    k--;
                const struct node *at = stack[k].n;
                const char *kw = at->ref           ? "$ref"
                                 : at->dynamic_ref ? "$dynamicRef"
                                                   : "$recursiveRef";
                set_path(cc, at, kw);
                rc = refuse(cc,
                            "%s \"%s\" forms a cycle that never descends into the document "
                            "(validation would recurse forever)",
                            kw,
                            at->ref           ? at->ref
                            : at->dynamic_ref ? at->dynamic_ref
                                              : "#");
            } else if (child && child->mark == 0) {
                child->mark = 1;
                stack[depth++] = (struct frame){child, 0};
            }
        }
    }
    free(stack);
    return rc;
}
