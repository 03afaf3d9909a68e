/*
 * Latency samples: every latency of a run is kept exactly (nanoseconds), then sorted once so
 * that quantiles are exact order statistics rather than bucket estimates. A run of a few
 * million operations costs a few tens of megabytes, which a benchmark machine has.
 */
#ifndef LG_HIST_H
#define LG_HIST_H

#include <stddef.h>
#include <stdint.h>

struct lg_hist {
    uint64_t *v; /* samples in nanoseconds; owned */
    size_t n;
    size_t cap;
    int sorted; /* 1 once lg_hist_sort ran and nothing was added since */
};

/* Initialises an empty set of samples; nothing is allocated until the first add. */
void lg_hist_init(struct lg_hist *h);

/* Appends one latency. Returns 0, or -1 when memory runs out (H is unchanged). */
int lg_hist_add(struct lg_hist *h, uint64_t ns);

/* Appends every sample of SRC to DST (SRC is not changed). Returns 0 or -1 (out of memory). */
int lg_hist_merge(struct lg_hist *dst, const struct lg_hist *src);

/* Sorts the samples so that lg_hist_quantile can answer. */
void lg_hist_sort(struct lg_hist *h);

/* The nearest-rank quantile Q (0 < Q <= 1) of a sorted set: the smallest sample such that at
 * least Q of all samples are at or below it. 0 for an empty set. */
uint64_t lg_hist_quantile(const struct lg_hist *h, double q);

/* Frees the samples; H may be reused after lg_hist_init. */
void lg_hist_free(struct lg_hist *h);

#endif
