#include "clin.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the version check ---- */

/* An operation with an effect on (or a view of) the register, placed at POS. */
struct item {
    int64_t pos; /* 2V for a write of version V, 2V+1 for an observation of version V */
    int64_t invoke;
    int64_t complete;
    size_t op;
};

static const struct chist_op *sort_ops; /* qsort has no context argument */

static int cmp_value(const void *a, const void *b)
{
    return strcmp(sort_ops[*(const size_t *)a].value, sort_ops[*(const size_t *)b].value);
}

static int cmp_i64(int64_t a, int64_t b)
{
    return a < b ? -1 : a > b;
}

static int cmp_item_pos(const void *a, const void *b)
{
    return cmp_i64(((const struct item *)a)->pos, ((const struct item *)b)->pos);
}

static int cmp_item_invoke(const void *a, const void *b)
{
    return cmp_i64(((const struct item *)a)->invoke, ((const struct item *)b)->invoke);
}

static int cmp_item_complete(const void *a, const void *b)
{
    return cmp_i64(((const struct item *)a)->complete, ((const struct item *)b)->complete);
}

/* The first index in BYVAL (the writes' indices sorted by value) whose value is not below
 * VALUE; NW when there is none. Values repeat only for rollbacks (a rollback writes an older
 * version's value again), so equal values form one run from here. */
static size_t lower_bound(const struct chist_op *ops, const size_t *byval, size_t nw,
                          const char *value)
{
    size_t lo = 0, hi = nw;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(ops[byval[mid]].value, value) < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo;
}

/* The version a write took (or would take): the answered one when acknowledged, else E+1. */
static int64_t write_version(const struct chist_op *w)
{
    return w->outcome == CHIST_OK ? w->version : w->expected_version + 1;
}

/* The write that produced the observation (VERSION, VALUE): among the writes with that value,
 * one whose version is VERSION, preferring an acknowledged, then an unknown, then a failed
 * one (which the caller reports). SIZE_MAX when none; *ANY is then some write with that value
 * (SIZE_MAX when no write has it). */
static size_t find_producer(const struct chist_op *ops, const size_t *byval, size_t nw,
                            const char *value, int64_t version, size_t *any)
{
    size_t unknown = SIZE_MAX, failed = SIZE_MAX;
    *any = SIZE_MAX;
    for (size_t k = lower_bound(ops, byval, nw, value);
         k < nw && strcmp(ops[byval[k]].value, value) == 0; k++) {
        const struct chist_op *w = &ops[byval[k]];
        *any = byval[k];
        if (write_version(w) != version) {
            continue;
        }
        if (w->outcome == CHIST_OK) {
            return byval[k];
        }
        *(w->outcome == CHIST_UNKNOWN ? &unknown : &failed) = byval[k];
    }
    return unknown != SIZE_MAX ? unknown : failed;
}

static bool observes(const struct chist_op *op)
{
    return op->kind == CHIST_READ && op->outcome == CHIST_OK;
}

#define REPORT(kind, ...)                                                                          \
    do {                                                                                           \
        snprintf(msg, sizeof(msg), __VA_ARGS__);                                                   \
        report(ud, kind, key, msg);                                                                \
        violations++;                                                                              \
    } while (0)

long clin_check_versions(const struct chist_op *ops, size_t n, clin_report_fn report, void *ud)
{
    long violations = 0;
    char msg[512];
    const char *key = n > 0 ? ops[0].key : "";
    size_t *byval = calloc(n + 1, sizeof(*byval));
    bool *effective = calloc(n + 1, sizeof(*effective));
    struct item *items = calloc(n + 1, sizeof(*items));
    struct item *bycomplete = calloc(n + 1, sizeof(*bycomplete));
    if (byval == NULL || effective == NULL || items == NULL || bycomplete == NULL) {
        violations = -1;
        goto out;
    }
    size_t nw = 0;
    for (size_t i = 0; i < n; i++) {
        if (ops[i].kind == CHIST_WRITE) {
            byval[nw++] = i;
        }
    }
    sort_ops = ops;
    qsort(byval, nw, sizeof(*byval), cmp_value);

    /* Which writes took effect: the acknowledged ones, and unknown ones someone observed. */
    for (size_t i = 0; i < n; i++) {
        if (ops[i].kind == CHIST_WRITE && ops[i].outcome == CHIST_OK) {
            effective[i] = true;
        }
    }
    for (size_t i = 0; i < n; i++) {
        if (observes(&ops[i]) && ops[i].value != NULL) {
            size_t any = SIZE_MAX;
            size_t w = find_producer(ops, byval, nw, ops[i].value, ops[i].version, &any);
            if (w != SIZE_MAX && ops[w].outcome == CHIST_UNKNOWN) {
                effective[w] = true;
            }
        }
    }

    size_t ni = 0;
    for (size_t i = 0; i < n; i++) {
        const struct chist_op *op = &ops[i];
        if (op->kind == CHIST_WRITE && effective[i]) {
            int64_t v = op->outcome == CHIST_OK ? op->version : op->expected_version + 1;
            if (v != op->expected_version + 1) {
                REPORT("bad version",
                       "write %s (line %zu) expected version %lld but was acknowledged as "
                       "version %lld",
                       op->request_id, op->line, (long long)op->expected_version, (long long)v);
            }
            items[ni++] =
                (struct item){.pos = 2 * v,
                              .invoke = op->invoke,
                              .complete = op->outcome == CHIST_OK ? op->complete : CHIST_NEVER,
                              .op = i};
        } else if (observes(op)) {
            if (op->version < 0 || (op->version > 0 && op->value == NULL) ||
                (op->version == 0 && op->value != NULL)) {
                REPORT("value never written",
                       "read at line %zu answered version %lld with %s, which no write produced",
                       op->line, (long long)op->version,
                       op->value != NULL ? op->value : "no value");
                continue;
            }
            if (op->version > 0) {
                size_t any = SIZE_MAX;
                size_t w = find_producer(ops, byval, nw, op->value, op->version, &any);
                if (w == SIZE_MAX && any == SIZE_MAX) {
                    REPORT("value never written",
                           "read at line %zu returned %s (version %lld), a value no client wrote",
                           op->line, op->value, (long long)op->version);
                    continue;
                }
                if (w == SIZE_MAX) {
                    REPORT("version mismatch",
                           "read at line %zu returned %s as version %lld, but it was written as "
                           "version %lld (line %zu)",
                           op->line, op->value, (long long)op->version,
                           (long long)write_version(&ops[any]), ops[any].line);
                    continue;
                }
                if (ops[w].outcome == CHIST_FAIL) {
                    REPORT("failed write visible",
                           "read at line %zu returned %s, whose write (line %zu) failed with %d",
                           op->line, op->value, ops[w].line, ops[w].status);
                    continue;
                }
            }
            items[ni++] = (struct item){.pos = 2 * op->version + 1,
                                        .invoke = op->invoke,
                                        .complete = op->complete,
                                        .op = i};
        }
    }

    /* (1) One write per version. */
    qsort(items, ni, sizeof(*items), cmp_item_pos);
    for (size_t i = 1; i < ni; i++) {
        if (items[i].pos == items[i - 1].pos && items[i].pos % 2 == 0) {
            const struct chist_op *a = &ops[items[i - 1].op], *b = &ops[items[i].op];
            REPORT("duplicate version",
                   "writes %s (line %zu, %s) and %s (line %zu, %s) both became version %lld: "
                   "one of them was lost",
                   a->request_id, a->line, chist_outcome_name(a->outcome), b->request_id, b->line,
                   chist_outcome_name(b->outcome), (long long)(items[i].pos / 2));
        }
    }

    /* (3) Real time: sweep the operations by invoke; MAX is the highest position among the
     * operations that completed before the current one began. */
    memcpy(bycomplete, items, ni * sizeof(*items));
    qsort(bycomplete, ni, sizeof(*items), cmp_item_complete);
    qsort(items, ni, sizeof(*items), cmp_item_invoke);
    size_t j = 0, best = SIZE_MAX;
    for (size_t i = 0; i < ni; i++) {
        while (j < ni && bycomplete[j].complete < items[i].invoke) {
            if (best == SIZE_MAX || bycomplete[j].pos > bycomplete[best].pos) {
                best = j;
            }
            j++;
        }
        if (best == SIZE_MAX || bycomplete[best].pos <= items[i].pos) {
            continue;
        }
        const struct chist_op *before = &ops[bycomplete[best].op], *op = &ops[items[i].op];
        const char *what = op->kind == CHIST_READ ? "read" : "write";
        if (before->kind == CHIST_WRITE) {
            REPORT("lost write",
                   "%s at line %zu (version %lld) began after write %s (line %zu) had been "
                   "acknowledged as version %lld",
                   what, op->line, (long long)(items[i].pos / 2), before->request_id, before->line,
                   (long long)before->version);
        } else {
            REPORT("stale read",
                   "%s at line %zu (version %lld) began after the read at line %zu had "
                   "already seen version %lld",
                   what, op->line, (long long)(items[i].pos / 2), before->line,
                   (long long)before->version);
        }
    }
out:
    free(byval);
    free(effective);
    free(items);
    free(bycomplete);
    return violations;
}

/* ---- Wing-Gong-Lowe ---- */

struct wop {
    bool write;
    bool has_return;
    int64_t expected; /* write */
    int64_t version;  /* write ok: the answered version; read: the observed one */
    long value;       /* value id; -1 none, -2 a value no write has */
    size_t call, ret; /* entry indices */
};

struct entry {
    int64_t time;
    bool is_call;
    size_t op;
    size_t prev, next; /* list links; SIZE_MAX = none */
};

struct wstate {
    int64_t version;
    long value;
};

/* A set of (linearized bitset, state), open addressing. */
struct cache {
    uint64_t **slots; /* each: words of bits, then version, then value */
    size_t cap, used, words;
};

static uint64_t hash_blob(const uint64_t *b, size_t n)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 1099511628211ULL;
        h ^= h >> 29;
    }
    return h;
}

/* Adds BLOB (N words) unless present. Returns 1 added, 0 present, -1 out of memory. */
static int cache_add(struct cache *c, const uint64_t *blob, size_t n)
{
    if ((c->used + 1) * 2 > c->cap) {
        size_t ncap = c->cap ? c->cap * 2 : 1024;
        uint64_t **ns = calloc(ncap, sizeof(*ns));
        if (ns == NULL) {
            return -1;
        }
        for (size_t i = 0; i < c->cap; i++) {
            if (c->slots[i] != NULL) {
                size_t k = hash_blob(c->slots[i], n) & (ncap - 1);
                while (ns[k] != NULL) {
                    k = (k + 1) & (ncap - 1);
                }
                ns[k] = c->slots[i];
            }
        }
        free(c->slots);
        c->slots = ns;
        c->cap = ncap;
    }
    size_t k = hash_blob(blob, n) & (c->cap - 1);
    while (c->slots[k] != NULL) {
        if (memcmp(c->slots[k], blob, n * sizeof(*blob)) == 0) {
            return 0;
        }
        k = (k + 1) & (c->cap - 1);
    }
    c->slots[k] = malloc(n * sizeof(*blob));
    if (c->slots[k] == NULL) {
        return -1;
    }
    memcpy(c->slots[k], blob, n * sizeof(*blob));
    c->used++;
    return 1;
}

static void cache_free(struct cache *c)
{
    for (size_t i = 0; i < c->cap; i++) {
        free(c->slots[i]);
    }
    free(c->slots);
}

/* Applies OP to S: false when OP cannot happen in state S. */
static bool step(const struct wop *op, struct wstate *s)
{
    if (op->write) {
        if (s->version != op->expected || (op->has_return && op->version != op->expected + 1)) {
            return false;
        }
        s->version = op->expected + 1;
        s->value = op->value;
        return true;
    }
    return s->version == op->version && s->value == op->value;
}

static int cmp_entry(const void *a, const void *b)
{
    const struct entry *x = a, *y = b;
    int c = cmp_i64(x->time, y->time);
    if (c != 0) {
        return c;
    }
    /* At one instant calls come first: operations that touch are concurrent. */
    return (int)y->is_call - (int)x->is_call;
}

static void unlink_entry(struct entry *e, size_t *head, size_t i)
{
    if (e[i].prev != SIZE_MAX) {
        e[e[i].prev].next = e[i].next;
    } else {
        *head = e[i].next;
    }
    if (e[i].next != SIZE_MAX) {
        e[e[i].next].prev = e[i].prev;
    }
}

static void relink_entry(struct entry *e, size_t *head, size_t i)
{
    if (e[i].prev != SIZE_MAX) {
        e[e[i].prev].next = i;
    } else {
        *head = i;
    }
    if (e[i].next != SIZE_MAX) {
        e[e[i].next].prev = i;
    }
}

/* The value id of VALUE: the position of its first write in BYVAL (so that a rollback's value
 * and the original write's share one id), -3 for the window's initial value when no write of
 * the window has it, -2 for a value nothing wrote, -1 for none. */
static long value_id(const struct chist_op *ops, const size_t *byval, size_t nv, const char *value,
                     const char *init_value)
{
    if (value == NULL) {
        return -1;
    }
    size_t k = lower_bound(ops, byval, nv, value);
    if (k < nv && strcmp(ops[byval[k]].value, value) == 0) {
        return (long)k;
    }
    return init_value != NULL && strcmp(init_value, value) == 0 ? -3 : -2;
}

enum clin_wgl_result clin_wgl(const struct chist_op *ops, size_t n, size_t max_steps)
{
    return clin_wgl_from(ops, n, 0, NULL, max_steps);
}

enum clin_wgl_result clin_wgl_from(const struct chist_op *ops, size_t n, int64_t init_version,
                                   const char *init_value, size_t max_steps)
{
    enum clin_wgl_result res = CLIN_NOMEM;
    struct wop *w = calloc(n + 1, sizeof(*w));
    struct entry *e = calloc(2 * n + 1, sizeof(*e));
    size_t *byval = calloc(n + 1, sizeof(*byval));
    size_t *stack = calloc(n + 1, sizeof(*stack));
    struct wstate *saved = calloc(n + 1, sizeof(*saved));
    size_t nwords = (n + 63) / 64 + 2;
    uint64_t *blob = calloc(nwords, sizeof(*blob));
    struct cache cache = {.words = nwords};
    if (w == NULL || e == NULL || byval == NULL || stack == NULL || saved == NULL || blob == NULL) {
        goto out;
    }
    size_t nv = 0;
    for (size_t i = 0; i < n; i++) {
        if (ops[i].kind == CHIST_WRITE) {
            byval[nv++] = i;
        }
    }
    sort_ops = ops;
    qsort(byval, nv, sizeof(*byval), cmp_value);

    size_t nw = 0, ne = 0, returns = 0;
    for (size_t i = 0; i < n; i++) {
        const struct chist_op *op = &ops[i];
        struct wop x = {.write = op->kind == CHIST_WRITE, .value = -1};
        if (op->kind == CHIST_WRITE) {
            if (op->outcome == CHIST_FAIL) {
                continue;
            }
            x.has_return = op->outcome == CHIST_OK;
            x.expected = op->expected_version;
            x.version = op->version;
        } else {
            if (!observes(op)) {
                continue;
            }
            x.has_return = true;
            x.version = op->version;
        }
        x.value = value_id(ops, byval, nv, op->value, init_value);
        e[ne++] = (struct entry){.time = op->invoke, .is_call = true, .op = nw};
        if (x.has_return) {
            e[ne++] = (struct entry){.time = op->complete, .is_call = false, .op = nw};
            returns++;
        }
        w[nw++] = x;
    }
    qsort(e, ne, sizeof(*e), cmp_entry);
    for (size_t i = 0; i < ne; i++) {
        e[i].prev = i == 0 ? SIZE_MAX : i - 1;
        e[i].next = i + 1 == ne ? SIZE_MAX : i + 1;
        if (e[i].is_call) {
            w[e[i].op].call = i;
        } else {
            w[e[i].op].ret = i;
        }
    }
    size_t head = ne > 0 ? 0 : SIZE_MAX, cur = head, depth = 0, steps = 0;
    struct wstate s = {.version = init_version,
                       .value = value_id(ops, byval, nv, init_value, init_value)};
    uint64_t *bits = blob;
    while (returns > 0) {
        if (++steps > max_steps) {
            res = CLIN_TOO_BIG;
            goto out;
        }
        if (cur == SIZE_MAX) {
            /* Only calls without returns are left after the last return: cannot happen
             * while returns remain, since every return follows its call. */
            res = CLIN_NOT_LINEARIZABLE;
            goto out;
        }
        struct entry *en = &e[cur];
        if (en->is_call) {
            const struct wop *op = &w[en->op];
            struct wstate ns = s;
            if (step(op, &ns)) {
                bits[en->op / 64] |= 1ULL << (en->op % 64);
                blob[nwords - 2] = (uint64_t)ns.version;
                blob[nwords - 1] = (uint64_t)ns.value;
                int added = cache_add(&cache, blob, nwords);
                if (added < 0) {
                    goto out;
                }
                if (added == 1) {
                    saved[depth] = s;
                    stack[depth++] = en->op;
                    s = ns;
                    unlink_entry(e, &head, op->call);
                    if (op->has_return) {
                        unlink_entry(e, &head, op->ret);
                        returns--;
                    }
                    cur = head;
                    continue;
                }
                bits[en->op / 64] &= ~(1ULL << (en->op % 64));
            }
            cur = en->next;
        } else {
            /* A return whose operation is not linearized yet: undo the last choice. */
            if (depth == 0) {
                res = CLIN_NOT_LINEARIZABLE;
                goto out;
            }
            size_t k = stack[--depth];
            s = saved[depth];
            bits[k / 64] &= ~(1ULL << (k % 64));
            if (w[k].has_return) {
                relink_entry(e, &head, w[k].ret);
                returns++;
            }
            relink_entry(e, &head, w[k].call);
            cur = e[w[k].call].next;
        }
    }
    res = CLIN_LINEARIZABLE;
out:
    cache_free(&cache);
    free(w);
    free(e);
    free(byval);
    free(stack);
    free(saved);
    free(blob);
    return res;
}

/* ---- all keys ---- */

/*
 * Runs WGL on one key's operations OPS[0..N) (sorted by invoke) in windows cut at quiescent
 * points: instants before which every operation that may have an effect (outcome not FAIL;
 * an unknown one never completes) has completed, and after which every later one is invoked.
 *
 * Why that is sound and complete: real time orders every operation of a window before every
 * operation of a later one, so a linearization of the whole history is exactly the
 * concatenation of linearizations of the windows, each starting in the state the previous one
 * ended in. That state is forced: a window that ends at a cut has no unknown write (it would
 * block the cut), so all its writes take effect, and compare-and-swap chains them by version;
 * it ends in the (version, value) of its highest acknowledged write, or in its own initial
 * state when it has no write.
 *
 * A window with more than MAX_OPS such operations, or on which the search runs out of its
 * MAX_STEPS budget, is reported as a violation ("linearizability not checked"): a check that
 * could not run must fail the run, never pass it silently. VERSION_VIOLATIONS is what the
 * version check reported on this key; a WGL rejection it missed is reported as "not
 * linearizable (wgl)". Returns the number of violations reported, or -1 when out of memory.
 */
static long wgl_windows(const struct chist_op *ops, size_t n, long version_violations,
                        size_t max_ops, size_t max_steps, struct clin_summary *sum,
                        clin_report_fn report, void *ud)
{
    long violations = 0;
    char msg[512];
    const char *key = n > 0 ? ops[0].key : "";
    int64_t init_version = 0, max_complete = INT64_MIN;
    const char *init_value = NULL;
    size_t start = 0, relevant = 0;
    for (size_t i = 0; i <= n; i++) {
        bool effect = i < n && ops[i].outcome != CHIST_FAIL;
        bool cut = i == n || (effect && relevant > 0 && max_complete < ops[i].invoke);
        if (cut && relevant > 0) {
            sum->wgl_windows++;
            sum->wgl_largest = relevant > sum->wgl_largest ? relevant : sum->wgl_largest;
            enum clin_wgl_result r =
                relevant > max_ops
                    ? CLIN_TOO_BIG
                    : clin_wgl_from(&ops[start], i - start, init_version, init_value, max_steps);
            if (r == CLIN_NOMEM) {
                return -1;
            }
            if (r == CLIN_TOO_BIG) {
                sum->wgl_too_big++;
                REPORT("linearizability not checked",
                       "the window of lines %zu.. (%zu operations with an effect) is over the "
                       "Wing-Gong-Lowe limit of %zu operations or %zu steps",
                       ops[start].line, relevant, max_ops, max_steps);
            } else {
                sum->wgl_checked++;
            }
            if (r == CLIN_NOT_LINEARIZABLE) {
                sum->wgl_rejected++;
                if (version_violations == 0) {
                    REPORT("not linearizable (wgl)",
                           "the Wing-Gong-Lowe search found no linearization of the window of "
                           "lines %zu.. (from version %lld) although the version check passed",
                           ops[start].line, (long long)init_version);
                }
            }
            /* The next window starts where this one ended: its highest acknowledged write. */
            for (size_t k = start; k < i; k++) {
                if (ops[k].kind == CHIST_WRITE && ops[k].outcome == CHIST_OK &&
                    ops[k].version > init_version) {
                    init_version = ops[k].version;
                    init_value = ops[k].value;
                }
            }
            start = i;
            relevant = 0;
        }
        if (effect) {
            relevant++;
            int64_t c = ops[i].outcome == CHIST_UNKNOWN ? CHIST_NEVER : ops[i].complete;
            max_complete = c > max_complete ? c : max_complete;
        }
    }
    return violations;
}

static int cmp_key_invoke(const void *a, const void *b)
{
    const struct chist_op *x = &sort_ops[*(const size_t *)a], *y = &sort_ops[*(const size_t *)b];
    int c = strcmp(x->key, y->key);
    return c != 0 ? c : cmp_i64(x->invoke, y->invoke);
}

long clin_check_history(const struct chist *h, size_t wgl_max_ops, size_t wgl_max_steps,
                        struct clin_summary *sum, clin_report_fn report, void *ud)
{
    memset(sum, 0, sizeof(*sum));
    size_t *idx = calloc(h->n + 1, sizeof(*idx));
    struct chist_op *group = calloc(h->n + 1, sizeof(*group));
    long total = 0;
    if (idx == NULL || group == NULL) {
        total = -1;
        goto out;
    }
    for (size_t i = 0; i < h->n; i++) {
        idx[i] = i;
    }
    sort_ops = h->ops;
    qsort(idx, h->n, sizeof(*idx), cmp_key_invoke);
    for (size_t i = 0; i < h->n;) {
        size_t j = i, g = 0;
        /* Shallow copies: the strings stay owned by H. */
        while (j < h->n && strcmp(h->ops[idx[j]].key, h->ops[idx[i]].key) == 0) {
            group[g++] = h->ops[idx[j++]];
        }
        sum->keys++;
        long v = clin_check_versions(group, g, report, ud);
        if (v < 0) {
            total = -1;
            goto out;
        }
        total += v;
        if (wgl_max_ops > 0) {
            long w = wgl_windows(group, g, v, wgl_max_ops, wgl_max_steps, sum, report, ud);
            if (w < 0) {
                total = -1;
                goto out;
            }
            total += w;
        }
        i = j;
    }
out:
    free(idx);
    free(group);
    return total;
}
