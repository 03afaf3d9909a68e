/*
 * `conclave audit verify | replay | export`: proving a project's history complete and
 * untampered, and rebuilding its configs as they stood at any past point.
 *
 * The checks themselves are auditlog.c's (or, reading PostgreSQL directly for `verify`,
 * audit.c's, which also compares the `configs` table in the same snapshot); the sources are
 * cli_audit_source.c's. This file parses the command line, opens the source, drives a source
 * through the checker and hands over to the subcommand: cli_cmd_audit_verify.c,
 * cli_cmd_audit_replay.c and cli_cmd_audit_export.c (cli_cmd_audit_internal.h). Nothing here trusts
 * the server: every hash is recomputed in this process.
 */
#include "cli/cli_cmd_audit_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/auditlog.h"
#include "cli/cli_audit_source.h"
#include "cli/cli_client.h"
#include "cli/cli_exit.h"
#include "storage/pgconf.h"

const char cli_cmd_audit_help[] =
    "usage: conclave audit verify [--project P] [--file FILE] [--source api|db]\n"
    "       conclave audit replay --project P [--key K] [--as-of-revision R | --as-of-time T]\n"
    "                             [--out DIR] [--file FILE] [--source api|db]\n"
    "       conclave audit export --project P [--out FILE] [--source api|db]\n"
    "       conclave audit checkpoint PROJECT [--out FILE] [--source api|db]\n"
    "       conclave audit verify --checkpoint FILE [--file FILE] [--source api|db]\n"
    "\n"
    "verify   recomputes every hash of the chain, checks that each key's versions are\n"
    "         1, 2, 3, ... and that the live configs are exactly what the revisions add up\n"
    "         to. Every project you can see without --project. Exit 0 when all holds, 8\n"
    "         naming the first bad revision otherwise. With --file, checks an export\n"
    "         offline (no server, no database).\n"
    "replay   rebuilds the configs as they stood after revision R, or at time T (RFC 3339,\n"
    "         e.g. 2026-11-22T10:00:00Z: the history up to the first revision made after T);\n"
    "         the latest state without either. Prints them, or writes DIR/KEY.json each.\n"
    "         The history up to that point is verified first.\n"
    "export   writes the project's revisions with their hashes as JSON Lines (stdout\n"
    "         without --out) for `verify --file`.\n"
    "checkpoint  verifies the project's chain and prints (or writes to --out) its head\n"
    "         revision and hash; keep it away from the database. `verify --checkpoint FILE`\n"
    "         then finds that revision with that hash in the history, or exits 8.\n"
    "\n"
    "sources: the API of --endpoints (default), or PostgreSQL directly with --source db,\n"
    "         which is the default when DATABASE_URL or --database-url is set.\n"
    "options: --database-url URL  PostgreSQL connection string (default: $DATABASE_URL)\n"
    "         plus the global options of `conclave --help` (--endpoints, -o json, ...).\n"
    "\n"
    "examples:\n"
    "  conclave audit verify --project shop\n"
    "  conclave audit replay --project shop --as-of-revision 120 --out ./shop-at-120\n"
    "  conclave audit export --project shop --out shop.jsonl && conclave audit verify --file "
    "shop.jsonl\n";

static int usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, "conclave audit: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n(see conclave audit --help)\n");
    return CLI_EXIT_USAGE;
}

static int parse_args(int argc, char **argv, struct cli_cmd_audit_args *a)
{
    if (argc < 2) {
        fputs(cli_cmd_audit_help, stderr);
        return CLI_EXIT_USAGE;
    }
    a->sub = argv[1];
    if (strcmp(a->sub, "verify") != 0 && strcmp(a->sub, "replay") != 0 &&
        strcmp(a->sub, "export") != 0 && strcmp(a->sub, "checkpoint") != 0) {
        return usage_error("unknown subcommand \"%s\": use verify, replay, export or checkpoint",
                           a->sub);
    }
    for (int i = 2; i < argc; i++) {
        const char *opt = argv[i];
        const char **slot = NULL;
        if (strcmp(opt, "--file") == 0) {
            slot = &a->file;
        } else if (strcmp(opt, "--source") == 0) {
            slot = &a->source;
        } else if (strcmp(opt, "--database-url") == 0) {
            slot = &a->database_url;
        } else if (strcmp(opt, "--key") == 0) {
            slot = &a->key;
        } else if (strcmp(opt, "--out") == 0) {
            slot = &a->out;
        } else if (strcmp(opt, "--checkpoint") == 0) {
            slot = &a->checkpoint;
        } else if (opt[0] != '-' && strcmp(a->sub, "checkpoint") == 0 && a->project == NULL) {
            a->project = opt;
            continue;
        } else if (strcmp(opt, "--as-of-revision") == 0 || strcmp(opt, "--as-of-time") == 0) {
            slot = opt[8] == 'r' ? NULL : &a->as_of_time_text;
            if (i + 1 >= argc) {
                return usage_error("%s needs a value", opt);
            }
            if (slot == NULL) {
                char *end = NULL;
                errno = 0;
                a->as_of_revision = strtoull(argv[i + 1], &end, 10);
                if (argv[i + 1][0] < '0' || argv[i + 1][0] > '9' || *end != '\0' || errno != 0) {
                    return usage_error("--as-of-revision must be a revision number, not \"%s\"",
                                       argv[i + 1]);
                }
                a->have_revision = true;
                i++;
                continue;
            }
        } else {
            return usage_error("unknown option \"%s\"", opt);
        }
        if (i + 1 >= argc) {
            return usage_error("%s needs a value", opt);
        }
        *slot = argv[++i];
    }
    if (a->as_of_time_text != NULL) {
        if (auditlog_parse_time(a->as_of_time_text, &a->as_of_time) != 0) {
            return usage_error("--as-of-time \"%s\" is not an RFC 3339 time such as "
                               "2026-11-22T10:00:00Z",
                               a->as_of_time_text);
        }
        a->have_time = true;
    }
    bool replay = strcmp(a->sub, "replay") == 0, export = strcmp(a->sub, "export") == 0;
    if (a->have_revision && a->have_time) {
        return usage_error("%s", "give --as-of-revision or --as-of-time, not both");
    }
    if (!replay && (a->key || a->have_revision || a->have_time)) {
        return usage_error("--key, --as-of-revision and --as-of-time belong to replay, not %s",
                           a->sub);
    }
    if (strcmp(a->sub, "verify") == 0 && a->out != NULL) {
        return usage_error("%s", "verify writes no file: drop --out");
    }
    if (a->checkpoint != NULL && strcmp(a->sub, "verify") != 0) {
        return usage_error("--checkpoint belongs to verify, not %s", a->sub);
    }
    if (strcmp(a->sub, "checkpoint") == 0 && a->file != NULL) {
        return usage_error("%s", "checkpoint reads the server or the database, not --file");
    }
    if (export && a->file != NULL) {
        return usage_error("%s", "export reads the server or the database, not --file");
    }
    if (a->source != NULL && strcmp(a->source, "api") != 0 && strcmp(a->source, "db") != 0) {
        return usage_error("--source must be api or db, not \"%s\"", a->source);
    }
    if (a->file != NULL && (a->source != NULL || a->database_url != NULL)) {
        return usage_error("%s", "--file reads the file only: drop --source and --database-url");
    }
    return CLI_EXIT_OK;
}

/* ---- sources ------------------------------------------------------------------------------ */

static int connect_source(struct cli_cmd_audit_run *r)
{
    const char *env = getenv("DATABASE_URL");
    r->use_db = r->a.source ? strcmp(r->a.source, "db") == 0
                            : (r->a.database_url != NULL || (env != NULL && env[0] != '\0'));
    if (r->a.file != NULL) {
        return CLI_EXIT_OK;
    }
    if (!r->use_db) {
        return cli_client_open(r->g, &r->client, r->err, sizeof(r->err));
    }
    struct pgconf conf;
    if (pgconf_init(&conf) != 0) {
        snprintf(r->err, sizeof(r->err), "out of memory");
        return CLI_EXIT_FAILURE;
    }
    int rc = CLI_EXIT_OK;
    if (pgconf_apply_env(&conf, r->err, sizeof(r->err)) != 0 ||
        (r->a.database_url != NULL &&
         pgconf_set_url(&conf, r->a.database_url, r->err, sizeof(r->err)) != 0)) {
        rc = CLI_EXIT_USAGE;
    } else if (pgconf_connect(&conf, "conclave-audit", &r->conn, r->err, sizeof(r->err)) != 0) {
        size_t n = strlen(r->err);
        snprintf(r->err + n, sizeof(r->err) - n,
                 "; check DATABASE_URL or --database-url, or use the API with --source api");
        rc = CLI_EXIT_UNAVAILABLE;
    }
    pgconf_free(&conf);
    return rc;
}

int cli_cmd_audit_open_source(struct cli_cmd_audit_run *r, const char *project,
                              struct cli_audit_source **s)
{
    if (r->use_db) {
        return cli_audit_source_open_db(r->conn, project, s, r->err, sizeof(r->err));
    }
    return cli_audit_source_open_api(r->client, project, 0, s, r->err, sizeof(r->err));
}

/* Notes REV (already checked) in every watch that is on. */
static void watch_see(struct cli_cmd_audit_run *r, const json_t *rev)
{
    const char *h = json_string_value(json_object_get(rev, "hash"));
    json_int_t n = json_integer_value(json_object_get(rev, "revision"));
    for (int i = 0; i < CLI_CMD_AUDIT_WATCHES && h != NULL; i++) {
        struct cli_cmd_audit_watch *w = &r->watch[i];
        if (!w->on) {
            continue;
        }
        if (strcmp(h, w->hash) == 0 && (w->revision == 0 || (uint64_t)n == w->revision)) {
            w->found = true;
        }
        if (w->revision != 0 && (uint64_t)n == w->revision) {
            w->rev_seen = true;
            snprintf(w->rev_hash, sizeof(w->rev_hash), "%s", h);
        }
    }
}

bool cli_cmd_audit_watch_problem(const struct cli_cmd_audit_run *r, const struct alog *a,
                                 struct auditlog_problem *p)
{
    for (int i = 0; i < CLI_CMD_AUDIT_WATCHES; i++) {
        const struct cli_cmd_audit_watch *w = &r->watch[i];
        char rev[32] = "";
        if (!w->on || w->found) {
            continue;
        }
        memset(p, 0, sizeof(*p));
        p->revision = w->revision;
        if (w->revision != 0) {
            snprintf(rev, sizeof(rev), " %" PRIu64, w->revision);
        }
        if (w->rev_seen) {
            snprintf(p->text, sizeof(p->text),
                     "head mismatch: %s revision%s with hash %s, but the history holds "
                     "revision%s with hash %s",
                     w->what, rev, w->hash, rev, w->rev_hash);
        } else if (auditlog_revisions(a) == 0) {
            snprintf(p->text, sizeof(p->text),
                     "missing tail: %s revision%s with hash %s, but the history holds no "
                     "revision of the project",
                     w->what, rev, w->hash);
        } else {
            snprintf(p->text, sizeof(p->text),
                     "missing tail: %s revision%s with hash %s, but the history ends at "
                     "revision %" PRIu64 " with hash %s",
                     w->what, rev, w->hash, auditlog_last_revision(a), auditlog_chain_head(a));
        }
        return true;
    }
    return false;
}

int cli_cmd_audit_feed_all(struct cli_cmd_audit_run *r, struct cli_audit_source *s, struct alog *a,
                           cli_cmd_audit_stop_fn stop, struct auditlog_problem *p, bool *problem)
{
    uint64_t total = cli_audit_source_total(s);
    *problem = false;
    for (;;) {
        const json_t *rev = NULL;
        int rc = cli_audit_source_next(s, auditlog_chain_head(a), &rev, r->err, sizeof(r->err));
        if (rc != CLI_EXIT_OK || rev == NULL) {
            cli_audit_source_progress_done();
            return rc;
        }
        if (stop != NULL && stop(&r->a, rev)) {
            cli_audit_source_progress_done();
            return CLI_EXIT_OK;
        }
        rc = auditlog_feed(a, rev, p);
        if (rc == ALOG_OK) {
            watch_see(r, rev);
        }
        if (rc == ALOG_NOMEM) {
            cli_audit_source_progress_done();
            snprintf(r->err, sizeof(r->err), "out of memory");
            return CLI_EXIT_FAILURE;
        }
        if (rc == ALOG_PROBLEM) {
            cli_audit_source_progress_done();
            *problem = true;
            return CLI_EXIT_OK;
        }
        cli_audit_source_progress(auditlog_revisions(a), total);
    }
}

/* ---- entry -------------------------------------------------------------------------------- */

int cli_cmd_audit(int argc, char **argv)
{
    struct cli_cmd_audit_run *r = calloc(1, sizeof(*r));
    struct cli_global g = {0};
    int rc;
    if (r == NULL) {
        fprintf(stderr, "conclave audit: out of memory\n");
        return CLI_EXIT_FAILURE;
    }
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(cli_cmd_audit_help, stdout);
            free(r);
            return CLI_EXIT_OK;
        }
    }
    r->g = &g;
    rc = cli_global_parse(&argc, argv, &g, r->err, sizeof(r->err));
    if (rc != CLI_EXIT_OK) {
        fprintf(stderr, "conclave audit: %s\n", r->err);
        free(r);
        return rc;
    }
    rc = parse_args(argc, argv, &r->a);
    if (rc != CLI_EXIT_OK) {
        free(r);
        return rc;
    }
    rc = connect_source(r);
    if (rc == CLI_EXIT_OK) {
        if (strcmp(r->a.sub, "verify") == 0) {
            rc = cli_cmd_audit_verify(r);
        } else if (strcmp(r->a.sub, "replay") == 0) {
            rc = cli_cmd_audit_replay(r);
        } else if (strcmp(r->a.sub, "checkpoint") == 0) {
            rc = cli_cmd_audit_checkpoint(r);
        } else {
            rc = cli_cmd_audit_export(r);
        }
    }
    if (rc != CLI_EXIT_OK && rc != CLI_EXIT_AUDIT) {
        fprintf(stderr, "conclave audit %s: %s\n", r->a.sub, r->err);
    } else if (rc == CLI_EXIT_AUDIT && r->err[0] != '\0' && strcmp(r->a.sub, "verify") != 0) {
        fprintf(stderr, "conclave audit %s: %s\n", r->a.sub, r->err);
    }
    if (r->client != NULL) {
        cli_client_close(r->client);
    }
    if (r->conn != NULL) {
        PQfinish(r->conn);
    }
    free(r);
    return rc;
}
