/*
 * snap_cost: what taking a snapshot costs, split as a node splits it (raft/rfsm.c): the part
 * that holds the loop thread (fsm_snapshot_write: one serialised copy of the state) and the
 * part a worker thread runs meanwhile (fsm_snapshot_seal: the state hash and the checksum).
 * Before the split, a node paid both on the loop.
 *
 *   build/snap-cost [KEYS [VALUE_BYTES]]     (defaults 100000 and 250)
 *
 * Builds a state of KEYS configs in one project with JSON values of about VALUE_BYTES bytes
 * (through fsm_apply, as raft would), then times each half five times and prints the median
 * and the state's size. No server, no network, nothing to clean up.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "raft/codec.h"
#include "raft/fsm.h"

#define ROUNDS 5

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : (x > y ? 1 : 0);
}

static int apply(struct fsm *f, uint64_t index, const struct codec_entry *e)
{
    char err[256];
    uint8_t *buf = NULL;
    size_t len = 0;
    if (codec_encode(e, &buf, &len, err, sizeof(err)) != 0) {
        fprintf(stderr, "snap-cost: encode: %s\n", err);
        return -1;
    }
    struct fsm_result out;
    int rc = fsm_apply(f, index, buf, len, &out);
    free(buf);
    if (rc != 0 || (e->op != CODEC_OP_MATERIALIZED && out.status != FSM_OK)) {
        fprintf(stderr, "snap-cost: apply at %llu: %s\n", (unsigned long long)index, out.message);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    unsigned long keys = argc > 1 ? strtoul(argv[1], NULL, 10) : 100000;
    unsigned long vbytes = argc > 2 ? strtoul(argv[2], NULL, 10) : 250;
    if (keys == 0 || keys > 2000000 || vbytes < 16 || vbytes > 65536) {
        fprintf(stderr, "usage: snap-cost [KEYS (1..2000000) [VALUE_BYTES (16..65536)]]\n");
        return 2;
    }
    char err[256];
    struct fsm *f = NULL;
    if (fsm_new(&f, NULL, err, sizeof(err)) != 0) {
        fprintf(stderr, "snap-cost: %s\n", err);
        return 1;
    }
    char *value = malloc(vbytes + 1);
    if (value == NULL) {
        return 1;
    }
    memset(value, 'x', vbytes);
    memcpy(value, "{\"v\":\"", 6);
    memcpy(value + vbytes - 2, "\"}", 2);
    uint64_t index = 0;
    for (unsigned long k = 0; k < keys; k++) {
        char key[32];
        int klen = snprintf(key, sizeof(key), "app.key-%07lu", k);
        struct codec_entry e = {.op = CODEC_OP_PUT,
                                .expected_version = 0,
                                .term = 1,
                                .timestamp_us = 1,
                                .project = "bench",
                                .project_len = 5,
                                .key = key,
                                .key_len = (size_t)klen,
                                .actor = "bench",
                                .actor_len = 5,
                                .content = (const uint8_t *)value,
                                .content_len = vbytes};
        if (apply(f, ++index, &e) != 0) {
            return 1;
        }
        /* Keep the queue for PostgreSQL short, as the materializer does. */
        if (k % 1000 == 999 || k + 1 == keys) {
            struct codec_entry m = {.op = CODEC_OP_MATERIALIZED, .materialized_index = index};
            if (apply(f, ++index, &m) != 0) {
                return 1;
            }
        }
    }
    double loop[ROUNDS], worker[ROUNDS];
    size_t len = 0;
    for (int r = 0; r < ROUNDS; r++) {
        uint8_t *buf = NULL;
        double t0 = now_ms();
        if (fsm_snapshot_write(f, &buf, &len, err, sizeof(err)) != 0) {
            fprintf(stderr, "snap-cost: %s\n", err);
            return 1;
        }
        double t1 = now_ms();
        fsm_snapshot_seal(buf, len);
        double t2 = now_ms();
        loop[r] = t1 - t0;
        worker[r] = t2 - t1;
        free(buf);
    }
    qsort(loop, ROUNDS, sizeof(double), cmp_double);
    qsort(worker, ROUNDS, sizeof(double), cmp_double);
    printf("keys %lu, values %lu bytes, snapshot %.1f MB: on the loop (serialise) %.1f ms, on "
           "a worker (hash + checksum) %.1f ms; before the split the loop paid %.1f ms "
           "(medians of %d)\n",
           keys, vbytes, (double)len / 1e6, loop[ROUNDS / 2], worker[ROUNDS / 2],
           loop[ROUNDS / 2] + worker[ROUNDS / 2], ROUNDS);
    free(value);
    fsm_free(f);
    return 0;
}
