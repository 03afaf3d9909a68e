#include "server/cmd_migrate.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "storage/migrate.h"
#include "storage/migration_set.h"
#include "storage/pgconf.h"

#define EXIT_USAGE 2

static const char usage_text[] =
    "usage: conclave migrate [--dir DIR] [--database-url URL] COMMAND\n"
    "\n"
    "commands:\n"
    "  up [N]           apply every pending migration, or only the next N\n"
    "  down [N | --all] revert the last applied migration, the last N, or all of them\n"
    "  version          print the applied version (\"none\" when nothing is applied)\n"
    "  force V          record V as applied and clean without running anything\n"
    "                   (0 = none applied); the way out after a failed migration\n"
    "  create NAME      write the next NNN_NAME.up.sql and NNN_NAME.down.sql\n"
    "\n"
    "options:\n"
    "  --dir DIR           migrations directory (default: $CONCLAVE_MIGRATIONS_DIR, or\n"
    "                      ../share/conclave/migrations beside an installed binary, or\n"
    "                      " CONCLAVE_MIGRATIONS_DIR ")\n"
    "  --database-url URL  PostgreSQL connection string (default: $DATABASE_URL, or\n"
    "                      " PGCONF_DEFAULT_URL ")\n"
    "\n"
    "The pool settings DB_MAX_CONNECTIONS, DB_MIN_CONNECTIONS, DB_ACQUIRE_TIMEOUT_SECONDS,\n"
    "DB_IDLE_TIMEOUT_SECONDS and DB_MAX_LIFETIME_SECONDS are read and checked as the server\n"
    "does; DB_ACQUIRE_TIMEOUT_SECONDS is also the connect timeout.\n"
    "\n"
    "example:\n"
    "  DATABASE_URL=postgresql://conclave@127.0.0.1:55432/conclave conclave migrate up\n";

/* The migrations of an installed binary: <prefix>/share/conclave/migrations beside
 * <prefix>/bin/conclave (cmake --install, the .deb), found from /proc/self/exe, so that one
 * build works from its build tree (the compiled default, the source tree) and installed.
 * Returns DIR (filled) when that directory exists, else NULL. */
static const char *installed_dir(char *dir, size_t n)
{
    char exe[PATH_MAX];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (len <= 0) {
        return NULL;
    }
    exe[len] = '\0';
    char *slash = strrchr(exe, '/');
    if (slash == NULL) {
        return NULL;
    }
    *slash = '\0';
    struct stat st;
    if ((size_t)snprintf(dir, n, "%s/../share/conclave/migrations", exe) >= n ||
        stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        return NULL;
    }
    return dir;
}

static void log_line(void *data, const char *line)
{
    (void)data;
    printf("%s\n", line);
    fflush(stdout);
}

/* Parses a count argument: a whole number >= MIN. */
static int parse_count(const char *text, long long min, long long *out)
{
    char *end = NULL;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || v < min) {
        return -1;
    }
    *out = v;
    return 0;
}

static int usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, "conclave migrate: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\nrun `conclave migrate --help` for usage\n");
    return EXIT_USAGE;
}

/* The parsed command line. */
struct migrate_args {
    const char *dir;
    const char *url;
    const char *command;
    long long count; /* up/down: 0 = all; force: the version */
    const char *name;
};

static int parse_args(int argc, char **argv, struct migrate_args *a)
{
    static const struct option opts[] = {
        {"dir", required_argument, NULL, 'd'},
        {"database-url", required_argument, NULL, 'u'},
        {"help", no_argument, NULL, 'h'},
        {"all", no_argument, NULL, 'a'},
        {NULL, 0, NULL, 0},
    };
    int all = 0, c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
        switch (c) {
        case 'd':
            a->dir = optarg;
            break;
        case 'u':
            a->url = optarg;
            break;
        case 'a':
            all = 1;
            break;
        case 'h':
            fputs(usage_text, stdout);
            return -1;
        default:
            return usage_error("unknown option %s", argv[optind - 1]);
        }
    }
    if (optind >= argc) {
        return usage_error("%s", "missing command: up, down, version, force or create");
    }
    a->command = argv[optind++];
    /* Options may also follow the command (`migrate down --all`). */
    while (optind < argc) {
        c = getopt_long(argc, argv, "+h", opts, NULL);
        if (c == -1) {
            break;
        }
        if (c == 'a') {
            all = 1;
        } else if (c == 'd') {
            a->dir = optarg;
        } else if (c == 'u') {
            a->url = optarg;
        } else {
            return usage_error("unknown option %s", argv[optind - 1]);
        }
    }
    const char *arg = optind < argc ? argv[optind] : NULL;
    if (optind + 1 < argc) {
        return usage_error("unexpected argument \"%s\"", argv[optind + 1]);
    }
    if (all && strcmp(a->command, "down") != 0) {
        return usage_error("%s", "--all goes only with down");
    }
    if (strcmp(a->command, "up") == 0) {
        a->count = 0;
        if (arg != NULL && parse_count(arg, 1, &a->count) != 0) {
            return usage_error("up takes a number of migrations >= 1, got \"%s\"", arg);
        }
    } else if (strcmp(a->command, "down") == 0) {
        a->count = 1;
        if (all && arg != NULL) {
            return usage_error("down takes N or --all, not both (got \"%s\")", arg);
        }
        if (all) {
            a->count = 0;
        } else if (arg != NULL && parse_count(arg, 1, &a->count) != 0) {
            return usage_error("down takes a number of migrations >= 1, got \"%s\"", arg);
        }
    } else if (strcmp(a->command, "version") == 0) {
        if (arg != NULL) {
            return usage_error("version takes no argument, got \"%s\"", arg);
        }
    } else if (strcmp(a->command, "force") == 0) {
        if (arg == NULL || parse_count(arg, 0, &a->count) != 0) {
            return usage_error("force takes a version >= 0, got \"%s\"", arg ? arg : "nothing");
        }
    } else if (strcmp(a->command, "create") == 0) {
        if (arg == NULL) {
            return usage_error("%s", "create takes a NAME, e.g. `create add_config_labels`");
        }
        if (!migration_set_name_ok(arg)) {
            return usage_error("migration name \"%s\" is not valid; use 1 to 100 characters "
                               "from a-z, 0-9 and _, starting with a letter",
                               arg);
        }
        a->name = arg;
    } else {
        return usage_error("unknown command \"%s\"; expected up, down, version, force or create",
                           a->command);
    }
    return 0;
}

int cmd_migrate(int argc, char **argv)
{
    struct migrate_args a = {0};
    int rc = parse_args(argc, argv, &a);
    if (rc != 0) {
        return rc < 0 ? 0 : rc;
    }
    if (a.dir == NULL) {
        a.dir = getenv("CONCLAVE_MIGRATIONS_DIR");
    }
    char installed[PATH_MAX + 64];
    if (a.dir == NULL) {
        a.dir = installed_dir(installed, sizeof(installed));
    }
    if (a.dir == NULL) {
        a.dir = CONCLAVE_MIGRATIONS_DIR;
    }

    char err[2048];
    if (strcmp(a.command, "create") == 0) {
        char *up = NULL, *down = NULL;
        if (migration_set_create(a.dir, a.name, &up, &down, err, sizeof(err)) != 0) {
            fprintf(stderr, "conclave migrate: %s\n", err);
            return 1;
        }
        printf("created %s\ncreated %s\n", up ? up : "(up file)", down ? down : "(down file)");
        free(up);
        free(down);
        return 0;
    }

    struct mset set;
    struct pgconf conf;
    PGconn *conn = NULL;
    rc = 1;
    if (migration_set_load(a.dir, &set, err, sizeof(err)) != 0) {
        fprintf(stderr, "conclave migrate: %s\n", err);
        return 1;
    }
    if (pgconf_init(&conf) != 0) {
        fprintf(stderr, "conclave migrate: out of memory\n");
        goto out_set;
    }
    if (pgconf_apply_env(&conf, err, sizeof(err)) != 0 ||
        (a.url != NULL && pgconf_set_url(&conf, a.url, err, sizeof(err)) != 0)) {
        fprintf(stderr, "conclave migrate: %s\n", err);
        goto out_conf;
    }
    if (pgconf_connect(&conf, "conclave-migrate", &conn, err, sizeof(err)) != 0) {
        fprintf(stderr, "conclave migrate: %s\n(set DATABASE_URL or --database-url)\n", err);
        goto out_conf;
    }

    struct migrate_ctx ctx = {.conn = conn, .set = &set, .log = log_line};
    long long n = 0;
    if (strcmp(a.command, "version") == 0) {
        struct migrate_state st;
        if (migrate_version(&ctx, &st, err, sizeof(err)) != 0) {
            goto fail;
        }
        if (st.version == 0 && !st.dirty) {
            printf("none\n");
        } else {
            printf("%lld%s\n", st.version, st.dirty ? " (dirty)" : "");
        }
    } else if (strcmp(a.command, "up") == 0) {
        if (migrate_up(&ctx, a.count, &n, err, sizeof(err)) != 0) {
            goto fail;
        }
        if (n == 0) {
            printf("no change: every migration is applied\n");
        }
    } else if (strcmp(a.command, "down") == 0) {
        if (migrate_down(&ctx, a.count, &n, err, sizeof(err)) != 0) {
            goto fail;
        }
        if (n == 0) {
            printf("no change: no migration is applied\n");
        }
    } else {
        if (migrate_force(&ctx, a.count, err, sizeof(err)) != 0) {
            goto fail;
        }
        printf("forced version %lld (clean)\n", a.count);
    }
    rc = 0;
    goto out_conn;

fail:
    fprintf(stderr, "conclave migrate %s: %s\n", a.command, err);
out_conn:
    PQfinish(conn);
out_conf:
    pgconf_free(&conf);
out_set:
    migration_set_free(&set);
    return rc;
}
