/*
 * conclave-lg: the load generator behind scripts/bench. One invocation runs one workload
 * against one system and prints one result line on stdout (key=value pairs, see
 * print_result); the progress line goes to stderr. scripts/bench documents the workloads.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lg_args.h"
#include "lg_run.h"

static const char usage[] =
    "usage: conclave-lg --system conclave|etcd|pg --workload setup|cas|read|stale|mixed|failover\n"
    "         [--clients N] [--duration S] [--timeout S] [--keys N] [--value-size BYTES]\n"
    "         [--write-keys N] [--setup-from N] [--write-pct P] [--target IP:PORT]...\n"
    "         [--project ID] [--pg-url URL]\n"
    "         [--pg-schema NAME] [--kill-pid PID] [--kill-after S] [--label TEXT] [--quiet]\n"
    "The conclave bearer token is read from the environment variable LG_TOKEN.\n";

static int parse_args(int argc, char **argv, struct lg_opts *o, char *err, size_t cap)
{
    memset(o, 0, sizeof *o);
    o->system = -1;
    o->workload = -1;
    o->clients = 1;
    o->duration_s = 10;
    o->timeout_s = 2;
    o->keys = 1000;
    o->value_size = 250;
    o->write_pct = 10;
    o->kill_after_s = 2;
    o->project = "bench";
    o->pg_schema = "bench_baseline";
    o->token = getenv("LG_TOKEN");
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        double d = 0;
        int used = 1;
        if (strcmp(a, "--quiet") == 0) {
            o->quiet = 1;
            used = 0;
        } else if (!v) {
            snprintf(err, cap, "%s needs a value", a);
            return -1;
        } else if (strcmp(a, "--system") == 0) {
            o->system = strcmp(v, "conclave") == 0 ? LG_CONCLAVE
                        : strcmp(v, "etcd") == 0   ? LG_ETCD
                        : strcmp(v, "pg") == 0     ? LG_PG
                                                   : (enum lg_system) - 1;
            if ((int)o->system < 0) {
                snprintf(err, cap, "unknown system \"%s\" (conclave, etcd or pg)", v);
                return -1;
            }
        } else if (strcmp(a, "--workload") == 0) {
            static const char *names[] = {"setup", "cas", "read", "stale", "mixed", "failover"};
            for (int w = 0; w < 6; w++) {
                if (strcmp(v, names[w]) == 0) {
                    o->workload = (enum lg_workload)w;
                }
            }
            if ((int)o->workload < 0) {
                snprintf(err, cap, "unknown workload \"%s\"", v);
                return -1;
            }
        } else if (strcmp(a, "--clients") == 0) {
            if (lg_args_num(a, v, 1, 4096, &d, err, cap) != 0) {
                return -1;
            }
            o->clients = (int)d;
        } else if (strcmp(a, "--duration") == 0) {
            if (lg_args_num(a, v, 0.1, 86400, &o->duration_s, err, cap) != 0) {
                return -1;
            }
        } else if (strcmp(a, "--timeout") == 0) {
            if (lg_args_num(a, v, 0.01, 600, &o->timeout_s, err, cap) != 0) {
                return -1;
            }
        } else if (strcmp(a, "--keys") == 0) {
            if (lg_args_num(a, v, 1, 10000000, &d, err, cap) != 0) {
                return -1;
            }
            o->keys = (int)d;
        } else if (strcmp(a, "--write-keys") == 0) {
            if (lg_args_num(a, v, 1, 10000000, &d, err, cap) != 0) {
                return -1;
            }
            o->write_keys = (int)d;
        } else if (strcmp(a, "--setup-from") == 0) {
            if (lg_args_num(a, v, 0, 10000000, &d, err, cap) != 0) {
                return -1;
            }
            o->setup_from = (int)d;
        } else if (strcmp(a, "--value-size") == 0) {
            if (lg_args_num(a, v, 160, 4000, &d, err, cap) != 0) {
                return -1;
            }
            o->value_size = (int)d;
        } else if (strcmp(a, "--write-pct") == 0) {
            if (lg_args_num(a, v, 0, 100, &d, err, cap) != 0) {
                return -1;
            }
            o->write_pct = (int)d;
        } else if (strcmp(a, "--target") == 0) {
            if (lg_args_target(o->targets, &o->ntargets, LG_MAX_TARGETS, v, err, cap) != 0) {
                return -1;
            }
        } else if (strcmp(a, "--project") == 0) {
            o->project = v;
        } else if (strcmp(a, "--pg-url") == 0) {
            o->pg_url = v;
        } else if (strcmp(a, "--pg-schema") == 0) {
            o->pg_schema = v;
        } else if (strcmp(a, "--kill-pid") == 0) {
            if (lg_args_num(a, v, 2, 4194304, &d, err, cap) != 0) {
                return -1;
            }
            o->kill_pid = (int)d;
        } else if (strcmp(a, "--kill-after") == 0) {
            if (lg_args_num(a, v, 0.1, 600, &o->kill_after_s, err, cap) != 0) {
                return -1;
            }
        } else if (strcmp(a, "--label") == 0) {
            o->label = v;
        } else {
            snprintf(err, cap, "unknown option %s", a);
            return -1;
        }
        i += used;
    }
    if (o->setup_from > o->keys) {
        snprintf(err, cap, "--setup-from %d is beyond --keys %d", o->setup_from, o->keys);
        return -1;
    }
    if ((int)o->system < 0 || (int)o->workload < 0) {
        snprintf(err, cap, "--system and --workload are required");
        return -1;
    }
    if (o->system == LG_PG) {
        if (o->write_keys || o->setup_from) {
            snprintf(err, cap, "--write-keys and --setup-from are for conclave and etcd only");
            return -1;
        }
        if (!o->pg_url) {
            snprintf(err, cap, "the pg system needs --pg-url");
            return -1;
        }
        /* The schema name is put into SQL text, so it is restricted to a plain identifier. */
        if (!o->pg_schema[0] ||
            strspn(o->pg_schema, "abcdefghijklmnopqrstuvwxyz_") != strlen(o->pg_schema)) {
            snprintf(err, cap, "--pg-schema must be lowercase letters and underscores");
            return -1;
        }
    } else if (o->ntargets == 0) {
        snprintf(err, cap, "conclave and etcd need at least one --target");
        return -1;
    }
    if (o->system == LG_CONCLAVE && (!o->token || !o->token[0])) {
        snprintf(err, cap, "conclave needs a bearer token in LG_TOKEN");
        return -1;
    }
    if (o->workload == LG_W_FAILOVER &&
        (o->system == LG_PG || o->kill_pid == 0 || o->kill_after_s >= o->duration_s)) {
        snprintf(err, cap,
                 "failover runs against conclave or etcd with --kill-pid and --kill-after "
                 "below --duration");
        return -1;
    }
    return 0;
}

static void print_result(const struct lg_opts *o, struct lg_result *r)
{
    static const char *systems[] = {"conclave", "etcd", "pg"};
    static const char *workloads[] = {"setup", "cas", "read", "stale", "mixed", "failover"};
    lg_hist_sort(&r->lat);
    double tput = r->seconds > 0 ? (double)r->ops / r->seconds : 0;
    printf("system=%s workload=%s clients=%d ops=%" PRIu64 " seconds=%.3f throughput=%.1f "
           "p50_us=%.1f p99_us=%.1f p999_us=%.1f conflicts=%" PRIu64 " errors=%" PRIu64
           " failover_ms=%.1f\n",
           systems[o->system], workloads[o->workload], o->clients, r->ops, r->seconds, tput,
           (double)lg_hist_quantile(&r->lat, 0.5) / 1e3,
           (double)lg_hist_quantile(&r->lat, 0.99) / 1e3,
           (double)lg_hist_quantile(&r->lat, 0.999) / 1e3, r->conflicts, r->errors,
           o->workload == LG_W_FAILOVER ? r->failover_ms : 0.0);
}

int main(int argc, char **argv)
{
    struct lg_opts o;
    char err[512] = "";
    if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        fputs(usage, stdout);
        return 0;
    }
    if (parse_args(argc, argv, &o, err, sizeof err) != 0) {
        fprintf(stderr, "conclave-lg: %s\n%s", err, usage);
        return 2;
    }
    struct lg_result r;
    memset(&r, 0, sizeof r);
    lg_hist_init(&r.lat);
    int rc = o.system == LG_PG ? lg_pg_run(&o, &r, err, sizeof err)
                               : lg_net_run(&o, &r, err, sizeof err);
    if (rc != 0) {
        fprintf(stderr, "conclave-lg: %s\n", err);
        lg_hist_free(&r.lat);
        return 1;
    }
    print_result(&o, &r);
    lg_hist_free(&r.lat);
    return 0;
}
