/*
 * conclave-lg-watch: the watch fan-out benchmark (lg_watch.h), against conclave (default) or
 * etcd. Prints one result line on stdout (key=value pairs); progress goes to stderr. The
 * conclave bearer token is read from LG_TOKEN.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lg_args.h"
#include "lg_watch.h"

static const char usage[] =
    "usage: conclave-lg-watch [--system conclave|etcd] --target IP:PORT... [--watchers N]\n"
    "         [--writes N] [--interval S] [--poll-timeout S] [--project ID] [--key KEY]\n"
    "         [--quiet]\n"
    "Watchers are spread over the targets; writes go through the first one. conclave: the\n"
    "project must exist and be written by nothing else during the run, LG_TOKEN holds the\n"
    "bearer token. etcd: the watchers watch key bench/KEY on the JSON gateway (/v3/watch).\n";

static int parse(int argc, char **argv, struct lg_watch_opts *o, char *err, size_t cap)
{
    memset(o, 0, sizeof *o);
    o->watchers = 100;
    o->writes = 30;
    o->interval_s = 1;
    o->poll_timeout_s = 60;
    o->project = "bench-watch";
    o->key = "watched";
    o->token = getenv("LG_TOKEN");
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        double d = 0;
        if (strcmp(a, "--quiet") == 0) {
            o->quiet = 1;
            continue;
        }
        if (!v) {
            snprintf(err, cap, "%s needs a value", a);
            return -1;
        }
        i++;
        if (strcmp(a, "--system") == 0) {
            if (strcmp(v, "conclave") == 0) {
                o->system = LG_CONCLAVE;
            } else if (strcmp(v, "etcd") == 0) {
                o->system = LG_ETCD;
            } else {
                snprintf(err, cap, "unknown system \"%s\" (conclave or etcd)", v);
                return -1;
            }
        } else if (strcmp(a, "--target") == 0) {
            if (lg_args_target(o->targets, &o->ntargets, LG_MAX_TARGETS, v, err, cap) != 0) {
                return -1;
            }
        } else if (strcmp(a, "--watchers") == 0) {
            if (lg_args_num(a, v, 1, 100000, &d, err, cap) != 0) {
                return -1;
            }
            o->watchers = (int)d;
        } else if (strcmp(a, "--writes") == 0) {
            if (lg_args_num(a, v, 1, 100000, &d, err, cap) != 0) {
                return -1;
            }
            o->writes = (int)d;
        } else if (strcmp(a, "--interval") == 0) {
            if (lg_args_num(a, v, 0.01, 3600, &o->interval_s, err, cap) != 0) {
                return -1;
            }
        } else if (strcmp(a, "--poll-timeout") == 0) {
            if (lg_args_num(a, v, 1, 300, &d, err, cap) != 0) {
                return -1;
            }
            o->poll_timeout_s = (int)d;
        } else if (strcmp(a, "--project") == 0) {
            o->project = v;
        } else if (strcmp(a, "--key") == 0) {
            o->key = v;
        } else {
            snprintf(err, cap, "unknown option %s", a);
            return -1;
        }
    }
    if (o->ntargets == 0) {
        snprintf(err, cap, "at least one --target is needed");
        return -1;
    }
    if (o->system == LG_CONCLAVE && (!o->token || !o->token[0])) {
        snprintf(err, cap, "conclave needs the bearer token in LG_TOKEN");
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct lg_watch_opts o;
    struct lg_watch_result r;
    char err[512] = "";
    if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        fputs(usage, stdout);
        return 0;
    }
    if (parse(argc, argv, &o, err, sizeof err) != 0) {
        fprintf(stderr, "conclave-lg-watch: %s\n%s", err, usage);
        return 2;
    }
    memset(&r, 0, sizeof r);
    lg_hist_init(&r.lat);
    for (int i = 0; i < LG_MAX_TARGETS; i++) {
        lg_hist_init(&r.lat_target[i]);
    }
    if (lg_watch_run(&o, &r, err, sizeof err) != 0) {
        fprintf(stderr, "conclave-lg-watch: %s\n", err);
        lg_hist_free(&r.lat);
        for (int i = 0; i < LG_MAX_TARGETS; i++) {
            lg_hist_free(&r.lat_target[i]);
        }
        return 1;
    }
    lg_hist_sort(&r.lat);
    /* hub_queries (conclave's PostgreSQL queries of the watch hubs) is 0 for etcd, which has
     * none; created is the etcd streams the client saw confirmed (conclave: registered). */
    printf("system=%s watchers=%d registered=%" PRIu64 " created=%" PRIu64
           " targets=%d writes=%d expected=%" PRIu64 " delivered=%" PRIu64 " missed=%" PRIu64
           " duplicates=%" PRIu64 " before_ack=%" PRIu64 " errors=%" PRIu64
           " p50_ms=%.1f p99_ms=%.1f max_ms=%.1f hub_queries=%" PRIu64
           " hub_queries_per_write=%.2f setup_s=%.1f",
           o.system == LG_ETCD ? "etcd" : "conclave", o.watchers, r.registered,
           o.system == LG_ETCD ? r.created : r.registered, o.ntargets, r.writes, r.expected,
           r.delivered, r.missed, r.duplicates, r.before_ack, r.errors,
           (double)lg_hist_quantile(&r.lat, 0.5) / 1e6,
           (double)lg_hist_quantile(&r.lat, 0.99) / 1e6,
           (double)lg_hist_quantile(&r.lat, 1.0) / 1e6, r.queries_total,
           r.writes ? (double)r.queries_total / r.writes : 0.0, r.setup_s);
    for (int i = 0; i < o.ntargets; i++) {
        lg_hist_sort(&r.lat_target[i]);
        printf(" queries_%d=%" PRIu64 " p50_ms_%d=%.1f p99_ms_%d=%.1f", i + 1, r.queries[i], i + 1,
               (double)lg_hist_quantile(&r.lat_target[i], 0.5) / 1e6, i + 1,
               (double)lg_hist_quantile(&r.lat_target[i], 0.99) / 1e6);
    }
    printf("\n");
    lg_hist_free(&r.lat);
    for (int i = 0; i < LG_MAX_TARGETS; i++) {
        lg_hist_free(&r.lat_target[i]);
    }
    return 0;
}
