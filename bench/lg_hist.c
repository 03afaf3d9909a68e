/* Exact latency samples and nearest-rank quantiles (see lg_hist.h). */
#include "lg_hist.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void lg_hist_init(struct lg_hist *h)
{
    memset(h, 0, sizeof *h);
}

static int reserve(struct lg_hist *h, size_t need)
{
    if (need <= h->cap) {
        return 0;
    }
    size_t cap = h->cap ? h->cap : 4096;
    while (cap < need) {
        cap *= 2;
    }
    uint64_t *v = realloc(h->v, cap * sizeof *v);
    if (!v) {
        return -1;
    }
    h->v = v;
    h->cap = cap;
    return 0;
}

int lg_hist_add(struct lg_hist *h, uint64_t ns)
{
    if (reserve(h, h->n + 1) != 0) {
        return -1;
    }
    h->v[h->n++] = ns;
    h->sorted = 0;
    return 0;
}

int lg_hist_merge(struct lg_hist *dst, const struct lg_hist *src)
{
    if (src->n == 0) {
        return 0;
    }
    if (reserve(dst, dst->n + src->n) != 0) {
        return -1;
    }
    memcpy(dst->v + dst->n, src->v, src->n * sizeof *src->v);
    dst->n += src->n;
    dst->sorted = 0;
    return 0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a;
    uint64_t y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

void lg_hist_sort(struct lg_hist *h)
{
    if (h->n > 1) {
        qsort(h->v, h->n, sizeof *h->v, cmp_u64);
    }
    h->sorted = 1;
}

uint64_t lg_hist_quantile(const struct lg_hist *h, double q)
{
    if (h->n == 0) {
        return 0;
    }
    if (q <= 0) {
        return h->v[0];
    }
    /* Nearest rank: the ceil(q * n)-th smallest sample, 1-based. */
    double rank = ceil(q * (double)h->n);
    size_t i = rank < 1 ? 0 : (size_t)rank - 1;
    if (i >= h->n) {
        i = h->n - 1;
    }
    return h->v[i];
}

void lg_hist_free(struct lg_hist *h)
{
    free(h->v);
    lg_hist_init(h);
}
