/*
 * snap_cost: what taking a snapshot costs, split as a node splits it (raft/rfsm.c): the part
 * that holds the loop thread (fsm_view_take, freezing a copy-on-write view, and
 * fsm_view_release) and the part a worker thread runs meanwhile (fsm_view_write and
 * fsm_snapshot_seal: serialising the view, the state hash and the checksum). For comparison it
 * also times once what the loop paid before views (fsm_snapshot_write: one serialised copy).
 * And memory: the process RSS per key against the live data size (keys + contents), at rest
 * and while a snapshot is in flight (view alive, buffer written, 1% of the keys updated).
 *
 *   build/snap-cost [KEYS [VALUE_BYTES [PROJECTS]]]   (defaults 100000, 250, 1; 12-byte keys)
 *
 * Every write carries a request id, as the API's do; with PROJECTS >= 128 the request-id
 * table fills to its bound (FSM_REQUEST_CAPACITY), the worst case of what a view copies on
 * the loop besides the pending queue (which the bench keeps short, as the materializer does).
 *
 * Builds a state of KEYS configs in one project with JSON values of about VALUE_BYTES bytes
 * (through fsm_apply, as raft would, keys in a scattered order), then times each half five
 * times and prints the medians. Run it once per size: RSS is the whole process's. No server,
 * no network, nothing to clean up.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "raft/codec.h"
#include "raft/fsm.h"

#define ROUNDS 5

/* The process's resident set in bytes (Linux /proc/self/statm), 0 when unknown. */
static double rss_bytes(void)
{
    FILE *fp = fopen("/proc/self/statm", "r");
    unsigned long size = 0, resident = 0;
    if (fp == NULL) {
        return 0;
    }
    int n = fscanf(fp, "%lu %lu", &size, &resident);
    fclose(fp);
    return n == 2 ? (double)resident * 4096.0 : 0;
}

/* Key number K of KEYS in a scattered order (a multiplicative permutation): inserts land all
 * over the key space, as a real load's would, not only at the end. */
static unsigned long scatter(unsigned long k, unsigned long keys)
{
    return (unsigned long)(((unsigned long long)k * 2654435761ull) % keys);
}

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
    unsigned long nprojects = argc > 3 ? strtoul(argv[3], NULL, 10) : 1;
    if (keys == 0 || keys > 2000000 || vbytes < 16 || vbytes > 65536 || nprojects == 0 ||
        nprojects > 1000) {
        fprintf(stderr, "usage: snap-cost [KEYS (1..2000000) [VALUE_BYTES (16..65536) "
                        "[PROJECTS (1..1000)]]]\n");
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
    double rss0 = rss_bytes();
    uint64_t index = 0;
    /* 2654435761 is prime and does not divide KEYS (at most 2,000,000): a permutation. */
    for (unsigned long k = 0; k < keys; k++) {
        char key[32];
        unsigned long n = scatter(k, keys);
        int klen = snprintf(key, sizeof(key), "k%011lu", n);
        char project[16], rid[24];
        int plen = snprintf(project, sizeof(project), "bench%03lu", n % nprojects);
        int rlen = snprintf(rid, sizeof(rid), "rid-%lu", k);
        struct codec_entry e = {.op = CODEC_OP_PUT,
                                .expected_version = 0,
                                .term = 1,
                                .timestamp_us = 1,
                                .project = project,
                                .project_len = (size_t)plen,
                                .request_id = rid,
                                .request_id_len = (size_t)rlen,
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
    double live = (double)fsm_live_bytes(f);
    double rss_rest = rss_bytes();
    size_t rids = 0;
    for (unsigned long p = 0; p < nprojects; p++) {
        char project[16];
        int plen = snprintf(project, sizeof(project), "bench%03lu", p);
        rids += fsm_request_count(f, project, (size_t)plen);
    }
    printf("projects %lu, request ids recorded %zu\n", nprojects, rids);
    printf("keys %lu (%zu configs), values %lu bytes: live data %.1f MB (keys + contents); "
           "process RSS %.1f MB = %.0f bytes per key = %.2fx the live data (%.2fx counting only "
           "what the state added to the RSS)\n",
           keys, fsm_config_count(f), vbytes, live / 1e6, rss_rest / 1e6, rss_rest / (double)keys,
           rss_rest / live, (rss_rest - rss0) / live);

    double loop[ROUNDS], worker[ROUNDS];
    size_t len = 0;
    double rss_flight = 0;
    for (int r = 0; r < ROUNDS; r++) {
        uint8_t *buf = NULL;
        struct fsm_view *v = NULL;
        double t0 = now_ms();
        if (fsm_view_take(f, &v, err, sizeof(err)) != 0) {
            fprintf(stderr, "snap-cost: %s\n", err);
            return 1;
        }
        double t1 = now_ms();
        if (fsm_view_write(v, &buf, &len, err, sizeof(err)) != 0) {
            fprintf(stderr, "snap-cost: %s\n", err);
            return 1;
        }
        fsm_snapshot_seal(buf, len);
        double t2 = now_ms();
        if (r == 0) {
            /* In flight: the loop keeps writing, 1% of the keys (copy-on-write of their
             * configs and chunks). */
            for (unsigned long k = 0; k < keys / 100; k++) {
                char key[32];
                unsigned long n = scatter(k * 97 % keys, keys);
                int klen = snprintf(key, sizeof(key), "k%011lu", n);
                char project[16];
                int plen = snprintf(project, sizeof(project), "bench%03lu", n % nprojects);
                const struct fsm_config *c = fsm_get(f, project, (size_t)plen, key, (size_t)klen);
                struct codec_entry e = {.op = CODEC_OP_PUT,
                                        .expected_version = c != NULL ? c->version : 0,
                                        .term = 1,
                                        .timestamp_us = 2,
                                        .project = project,
                                        .project_len = (size_t)plen,
                                        .key = key,
                                        .key_len = (size_t)klen,
                                        .actor = "bench",
                                        .actor_len = 5,
                                        .content = (const uint8_t *)value,
                                        .content_len = vbytes};
                if (apply(f, ++index, &e) != 0) {
                    return 1;
                }
            }
            struct codec_entry m = {.op = CODEC_OP_MATERIALIZED, .materialized_index = index};
            if (apply(f, ++index, &m) != 0) {
                return 1;
            }
            rss_flight = rss_bytes();
        }
        double t3 = now_ms();
        fsm_view_release(v);
        double t4 = now_ms();
        loop[r] = (t1 - t0) + (t4 - t3);
        worker[r] = t2 - t1;
        free(buf);
    }
    uint8_t *old = NULL;
    size_t old_len = 0;
    double t0 = now_ms();
    if (fsm_snapshot_write(f, &old, &old_len, err, sizeof(err)) != 0) {
        fprintf(stderr, "snap-cost: %s\n", err);
        return 1;
    }
    double before_views = now_ms() - t0;
    free(old);
    qsort(loop, ROUNDS, sizeof(double), cmp_double);
    qsort(worker, ROUNDS, sizeof(double), cmp_double);
    printf("snapshot %.1f MB: on the loop (take + release the view) %.2f ms, on a worker "
           "(serialise + hash + checksum) %.1f ms (medians of %d); before views the loop paid "
           "%.1f ms to serialise; RSS with a snapshot in flight (view + buffer, 1%% of the keys "
           "rewritten) %.1f MB = %.2fx the live data\n",
           (double)len / 1e6, loop[ROUNDS / 2], worker[ROUNDS / 2], ROUNDS, before_views,
           rss_flight / 1e6, rss_flight / live);
    free(value);
    fsm_free(f);
    return 0;
}
