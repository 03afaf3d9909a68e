/*
 * `conclave audit verify | replay | export`: proving a project's history complete and
 * untampered, and rebuilding its configs as they stood at any past point.
 *
 * The checks themselves are auditlog.c's (or, reading PostgreSQL directly for `verify`,
 * audit.c's, which also compares the `configs` table in the same snapshot); the sources are
 * cli_asrc.c's. This file parses the command line, drives a source through the checker, and
 * prints. Nothing here trusts the server: every hash is recomputed in this process.
 */
#include "cli/cli_audit.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "audit/audit.h"
#include "audit/auditlog.h"
#include "cli/cli_asrc.h"
#include "cli/cli_client.h"
#include "cli/cli_exit.h"
#include "storage/db.h"
#include "storage/db_configs.h"
#include "storage/pgconf.h"

static const char usage_text[] =
    "usage: conclave audit verify [--project P] [--file FILE] [--source api|db]\n"
    "       conclave audit replay --project P [--key K] [--as-of-revision R | --as-of-time T]\n"
    "                             [--out DIR] [--file FILE] [--source api|db]\n"
    "       conclave audit export --project P [--out FILE] [--source api|db]\n"
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

struct audit_args {
    const char *sub;
    const char *file;
    const char *source;
    const char *database_url;
    const char *key;
    const char *out;
    bool have_revision, have_time;
    uint64_t as_of_revision;
    int64_t as_of_time;
    const char *as_of_time_text;
};

/* Everything one run holds; released in one place. */
struct audit_run {
    struct cli_global g;
    struct audit_args a;
    struct cli_client *client;
    PGconn *conn;
    bool use_db;
    char err[1024];
};

static int usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, "conclave audit: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n(see conclave audit --help)\n");
    return CLI_EXIT_USAGE;
}

static int parse_args(int argc, char **argv, struct audit_args *a)
{
    if (argc < 2) {
        fputs(usage_text, stderr);
        return CLI_EXIT_USAGE;
    }
    a->sub = argv[1];
    if (strcmp(a->sub, "verify") != 0 && strcmp(a->sub, "replay") != 0 &&
        strcmp(a->sub, "export") != 0) {
        return usage_error("unknown subcommand \"%s\": use verify, replay or export", a->sub);
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

static int connect_source(struct audit_run *r)
{
    const char *env = getenv("DATABASE_URL");
    r->use_db = r->a.source ? strcmp(r->a.source, "db") == 0
                            : (r->a.database_url != NULL || (env != NULL && env[0] != '\0'));
    if (r->a.file != NULL) {
        return CLI_EXIT_OK;
    }
    if (!r->use_db) {
        return cli_client_open(&r->g, &r->client, r->err, sizeof(r->err));
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

static int open_source(struct audit_run *r, const char *project, struct cli_asrc **s)
{
    if (r->use_db) {
        return cli_asrc_open_db(r->conn, project, s, r->err, sizeof(r->err));
    }
    return cli_asrc_open_api(r->client, project, 0, s, r->err, sizeof(r->err));
}

/* Every project to verify: the one named, or all of them (all in the database; those the
 * caller can see through the API). *OUT is a new array of strings. */
static int list_projects(struct audit_run *r, json_t **out)
{
    *out = NULL;
    if (r->g.project != NULL) {
        *out = json_pack("[s]", r->g.project);
        return CLI_EXIT_OK;
    }
    if (r->use_db) {
        int rc = db_configs_audit_projects(r->conn, out, r->err, sizeof(r->err));
        return rc == DB_OK ? CLI_EXIT_OK : CLI_EXIT_FAILURE;
    }
    json_t *ids = json_array();
    char *after = NULL;
    for (;;) {
        char path[512];
        char *enc = after ? cli_urlencode(after) : NULL;
        snprintf(path, sizeof(path), "/v1/projects?limit=1000%s%s", enc ? "&after=" : "",
                 enc ? enc : "");
        free(enc);
        long status = 0;
        json_t *reply = NULL;
        int rc =
            cli_client_call(r->client, "GET", path, NULL, &status, &reply, r->err, sizeof(r->err));
        if (rc == CLI_EXIT_OK && status != 200) {
            rc = cli_client_error(status, reply, "listing projects", r->err, sizeof(r->err));
        }
        if (rc != CLI_EXIT_OK) {
            json_decref(reply);
            json_decref(ids);
            free(after);
            return rc;
        }
        size_t i;
        json_t *p;
        json_array_foreach(json_object_get(reply, "items"), i, p)
        {
            json_array_append(ids, json_object_get(p, "id"));
        }
        free(after);
        after = json_string_value(json_object_get(reply, "next_after"))
                    ? strdup(json_string_value(json_object_get(reply, "next_after")))
                    : NULL;
        json_decref(reply);
        if (after == NULL) {
            break;
        }
    }
    *out = ids;
    return CLI_EXIT_OK;
}

/* Feeds every revision of S into A until the end, or until STOP says a revision is past the
 * point asked for. Returns CLI_EXIT_OK, CLI_EXIT_AUDIT with *P filled (or with r->err for a
 * broken export file), or the source's error. */
typedef bool (*stop_fn)(const struct audit_args *a, const json_t *rev);

static int feed_all(struct audit_run *r, struct cli_asrc *s, struct alog *a, stop_fn stop,
                    struct auditlog_problem *p, bool *problem)
{
    uint64_t total = cli_asrc_total(s);
    *problem = false;
    for (;;) {
        const json_t *rev = NULL;
        int rc = cli_asrc_next(s, auditlog_chain_head(a), &rev, r->err, sizeof(r->err));
        if (rc != CLI_EXIT_OK || rev == NULL) {
            cli_asrc_progress_done();
            return rc;
        }
        if (stop != NULL && stop(&r->a, rev)) {
            cli_asrc_progress_done();
            return CLI_EXIT_OK;
        }
        rc = auditlog_feed(a, rev, p);
        if (rc == ALOG_NOMEM) {
            cli_asrc_progress_done();
            snprintf(r->err, sizeof(r->err), "out of memory");
            return CLI_EXIT_FAILURE;
        }
        if (rc == ALOG_PROBLEM) {
            cli_asrc_progress_done();
            *problem = true;
            return CLI_EXIT_OK;
        }
        cli_asrc_progress(auditlog_revisions(a), total);
    }
}

/* ---- verify ------------------------------------------------------------------------------- */

/* PROJECT's live configs through the API (linearizable), every page: *OUT a new array. */
static int list_live(struct audit_run *r, const char *project, json_t **out)
{
    json_t *all = json_array();
    char *after = NULL;
    char *penc = cli_urlencode(project);
    int rc = CLI_EXIT_OK;
    *out = NULL;
    while (rc == CLI_EXIT_OK) {
        char path[1024];
        char *enc = after ? cli_urlencode(after) : NULL;
        snprintf(path, sizeof(path), "/v1/projects/%s/configs?limit=1000%s%s", penc,
                 enc ? "&after=" : "", enc ? enc : "");
        free(enc);
        long status = 0;
        json_t *reply = NULL;
        rc = cli_client_call(r->client, "GET", path, NULL, &status, &reply, r->err, sizeof(r->err));
        if (rc == CLI_EXIT_OK && status != 200) {
            char what[512];
            snprintf(what, sizeof(what), "listing the configs of project %s", project);
            rc = cli_client_error(status, reply, what, r->err, sizeof(r->err));
        }
        if (rc == CLI_EXIT_OK) {
            json_array_extend(all, json_object_get(reply, "items"));
            free(after);
            const char *next = json_string_value(json_object_get(reply, "next_after"));
            after = next ? strdup(next) : NULL;
        }
        json_decref(reply);
        if (after == NULL) {
            break;
        }
    }
    free(after);
    free(penc);
    if (rc != CLI_EXIT_OK) {
        json_decref(all);
        return rc;
    }
    *out = all;
    return CLI_EXIT_OK;
}

/*
 * The configs are served from the state machine and the revisions from PostgreSQL, which the
 * materializer fills a moment later; with writes in flight the two can differ for a moment
 * without anything being wrong. So a difference is re-checked, with the revisions written
 * since, a few times over two seconds, and reported only when it persists.
 */
static int compare_live_api(struct audit_run *r, const char *project, struct alog *a,
                            struct auditlog_problem *p, bool *problem)
{
    for (int attempt = 0;; attempt++) {
        json_t *live = NULL;
        int rc = list_live(r, project, &live);
        if (rc != CLI_EXIT_OK) {
            return rc;
        }
        rc = auditlog_compare_live(a, live, p);
        json_decref(live);
        *problem = rc == ALOG_PROBLEM;
        if (!*problem || attempt == 4) {
            return CLI_EXIT_OK;
        }
        struct timespec pause = {0, 500 * 1000 * 1000};
        nanosleep(&pause, NULL);
        struct cli_asrc *s = NULL;
        rc = cli_asrc_open_api(r->client, project, auditlog_last_revision(a), &s, r->err,
                               sizeof(r->err));
        if (rc != CLI_EXIT_OK) {
            return rc;
        }
        rc = feed_all(r, s, a, NULL, p, problem);
        cli_asrc_close(s);
        if (rc != CLI_EXIT_OK || *problem) {
            return rc;
        }
    }
}

static json_t *problem_json(const struct auditlog_problem *p)
{
    return json_pack("{s:o,s:o,s:s}", "revision",
                     p->revision ? json_integer((json_int_t)p->revision) : json_null(), "key",
                     p->key[0] ? json_string(p->key) : json_null(), "problem", p->text);
}

/* Verifies one project from the API or a file into *RESULT (a report object). */
static int verify_stream(struct audit_run *r, const char *project, struct cli_asrc *s,
                         json_t **result)
{
    struct alog *a = auditlog_new(project);
    struct auditlog_problem p;
    bool problem = false;
    if (a == NULL) {
        snprintf(r->err, sizeof(r->err), "out of memory");
        return CLI_EXIT_FAILURE;
    }
    int rc = feed_all(r, s, a, NULL, &p, &problem);
    if (rc == CLI_EXIT_AUDIT) {
        /* A broken export file is a finding like a broken chain. */
        memset(&p, 0, sizeof(p));
        snprintf(p.text, sizeof(p.text), "%.590s", r->err);
        problem = true;
        rc = CLI_EXIT_OK;
    }
    bool compared = false;
    if (rc == CLI_EXIT_OK && !problem && r->client != NULL) {
        rc = compare_live_api(r, project, a, &p, &problem);
        compared = true;
    }
    if (rc == CLI_EXIT_OK) {
        *result = json_pack(
            "{s:s,s:b,s:I,s:I,s:o,s:b,s:o}", "project", project, "ok", !problem,
            "revisions_checked", (json_int_t)auditlog_revisions(a), "keys_checked",
            (json_int_t)auditlog_keys(a), "chain_head",
            auditlog_chain_head(a)[0] ? json_string(auditlog_chain_head(a)) : json_null(),
            "configs_compared", compared, "problem", problem ? problem_json(&p) : json_null());
    }
    auditlog_free(a);
    return rc;
}

/* Verifies one project in PostgreSQL with audit.c, which also compares `configs` in the same
 * snapshot, into a report of the same shape as verify_stream()'s. */
static int verify_db(struct audit_run *r, const char *project, json_t **result)
{
    json_t *rep = NULL;
    int rc = audit_verify_project(r->conn, project, &rep, r->err, sizeof(r->err));
    if (rc != DB_OK) {
        if (rc == DB_NOT_FOUND) {
            snprintf(r->err, sizeof(r->err), "project %s not found in the database", project);
        }
        return rc == DB_NOT_FOUND     ? CLI_EXIT_NOT_FOUND
               : rc == DB_UNAVAILABLE ? CLI_EXIT_UNAVAILABLE
                                      : CLI_EXIT_FAILURE;
    }
    json_t *first = json_array_get(json_object_get(rep, "problems"), 0);
    *result = json_pack(
        "{s:s,s:O,s:O,s:O,s:O,s:b,s:O}", "project", project, "ok", json_object_get(rep, "ok"),
        "revisions_checked", json_object_get(rep, "revisions_checked"), "keys_checked",
        json_object_get(rep, "keys_checked"), "chain_head", json_object_get(rep, "chain_head"),
        "configs_compared", 1, "problem", first ? first : json_null());
    json_decref(rep);
    return CLI_EXIT_OK;
}

static void print_verdict(const json_t *rep)
{
    const char *project = json_string_value(json_object_get(rep, "project"));
    const json_t *p = json_object_get(rep, "problem");
    if (json_is_true(json_object_get(rep, "ok"))) {
        const char *head = json_string_value(json_object_get(rep, "chain_head"));
        json_int_t keys = json_integer_value(json_object_get(rep, "keys_checked"));
        printf("project %s: ok: %" JSON_INTEGER_FORMAT " revisions, %" JSON_INTEGER_FORMAT
               " key%s, chain head %s%s\n",
               project, json_integer_value(json_object_get(rep, "revisions_checked")), keys,
               keys == 1 ? "" : "s", head ? head : "(none)",
               json_is_true(json_object_get(rep, "configs_compared"))
                   ? ""
                   : " (configs not compared: an export holds only the revisions)");
        return;
    }
    const json_t *rev = json_object_get(p, "revision");
    const char *key = json_string_value(json_object_get(p, "key"));
    printf("project %s: FAILED", project);
    if (json_is_integer(rev)) {
        printf(" at revision %" JSON_INTEGER_FORMAT, json_integer_value(rev));
    }
    if (key != NULL) {
        printf(" (key %s)", key);
    }
    printf(": %s\n", json_string_value(json_object_get(p, "problem")));
}

static int cmd_verify(struct audit_run *r)
{
    json_t *projects = NULL, *reports = json_array();
    int rc;
    bool all_ok = true;
    if (r->a.file != NULL) {
        struct cli_asrc *s = NULL;
        const char *project = NULL;
        json_t *rep = NULL;
        rc = cli_asrc_open_file(r->a.file, &s, &project, r->err, sizeof(r->err));
        if (rc == CLI_EXIT_AUDIT) {
            /* Not an export at all: there is no project to report on, only the file. */
            fprintf(stderr, "conclave audit verify: %s\n", r->err);
            goto out;
        }
        if (rc == CLI_EXIT_OK && r->g.project != NULL && strcmp(r->g.project, project) != 0) {
            snprintf(r->err, sizeof(r->err), "%s is an export of project %s, not %s", r->a.file,
                     project, r->g.project);
            rc = CLI_EXIT_USAGE;
        }
        if (rc == CLI_EXIT_OK) {
            rc = verify_stream(r, project, s, &rep);
        }
        cli_asrc_close(s);
        if (rc != CLI_EXIT_OK) {
            goto out;
        }
        json_array_append_new(reports, rep);
    } else {
        rc = list_projects(r, &projects);
        size_t i;
        json_t *id;
        json_array_foreach(projects, i, id)
        {
            json_t *rep = NULL;
            if (rc != CLI_EXIT_OK) {
                break;
            }
            if (r->use_db) {
                rc = verify_db(r, json_string_value(id), &rep);
            } else {
                struct cli_asrc *s = NULL;
                rc = cli_asrc_open_api(r->client, json_string_value(id), 0, &s, r->err,
                                       sizeof(r->err));
                if (rc == CLI_EXIT_OK) {
                    rc = verify_stream(r, json_string_value(id), s, &rep);
                }
                cli_asrc_close(s);
            }
            if (rc == CLI_EXIT_OK) {
                json_array_append_new(reports, rep);
            }
        }
        if (rc != CLI_EXIT_OK) {
            goto out;
        }
    }
    size_t i;
    json_t *rep;
    json_array_foreach(reports, i, rep)
    {
        all_ok = all_ok && json_is_true(json_object_get(rep, "ok"));
    }
    if (r->g.json_output) {
        json_t *doc = json_pack("{s:b,s:s,s:O}", "ok", all_ok, "source",
                                r->a.file   ? "file"
                                : r->use_db ? "db"
                                            : "api",
                                "projects", reports);
        json_dumpf(doc, stdout, JSON_INDENT(2));
        putchar('\n');
        json_decref(doc);
    } else {
        json_array_foreach(reports, i, rep)
        {
            print_verdict(rep);
        }
        if (json_array_size(reports) == 0) {
            printf("no project to verify\n");
        }
    }
    rc = all_ok ? CLI_EXIT_OK : CLI_EXIT_AUDIT;
out:
    json_decref(projects);
    json_decref(reports);
    return rc;
}

/* ---- replay ------------------------------------------------------------------------------- */

/* True when REV is past the point replay was asked for: revisions are in order, so the fold of
 * everything before the first such revision is the state at that point. */
static bool past_point(const struct audit_args *a, const json_t *rev)
{
    if (a->have_revision) {
        json_int_t n = json_integer_value(json_object_get(rev, "revision"));
        return n > 0 && (uint64_t)n > a->as_of_revision;
    }
    if (a->have_time) {
        int64_t t = 0;
        const char *s = json_string_value(json_object_get(rev, "created_at"));
        /* An unreadable time is left to the checker, which names it. */
        return s != NULL && auditlog_parse_time(s, &t) == 0 && t > a->as_of_time;
    }
    return false;
}

/* Writes TEXT to DIR/NAME through a temporary file and a rename, so that a reader never sees
 * half a file. */
static int write_file(const char *dir, const char *name, const char *text, char *err, size_t errlen)
{
    char path[4096], tmp[4200];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    snprintf(tmp, sizeof(tmp), "%s.tmp-%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "w");
    if (f == NULL) {
        snprintf(err, errlen, "cannot create %.900s: %s", tmp, strerror(errno));
        return CLI_EXIT_FAILURE;
    }
    bool ok = fputs(text, f) >= 0 && fputc('\n', f) != EOF;
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path) != 0) {
        snprintf(err, errlen, "cannot write %.900s: %s", path, strerror(errno));
        unlink(tmp);
        return CLI_EXIT_FAILURE;
    }
    return CLI_EXIT_OK;
}

static int replay_output(struct audit_run *r, const char *project, json_t *fold, uint64_t as_of)
{
    const char *key;
    json_t *c;
    size_t n = 0;
    if (r->a.key != NULL) {
        json_t *only = json_object_get(fold, r->a.key);
        if (only == NULL) {
            snprintf(r->err, sizeof(r->err),
                     "key %s did not exist in project %s as of revision %" PRIu64
                     " (never written, or deleted); see conclave history %s",
                     r->a.key, project, as_of, r->a.key);
            return CLI_EXIT_NOT_FOUND;
        }
        json_t *single = json_pack("{s:O}", r->a.key, only);
        json_object_clear(fold);
        json_object_update(fold, single);
        json_decref(single);
    }
    if (r->a.out != NULL) {
        if (mkdir(r->a.out, 0777) != 0 && errno != EEXIST) {
            snprintf(r->err, sizeof(r->err), "cannot create directory %s: %s", r->a.out,
                     strerror(errno));
            return CLI_EXIT_FAILURE;
        }
        json_object_foreach(fold, key, c)
        {
            /* Keys are [A-Za-z0-9._:-] and never start with "." (docs/api.md), so KEY.json is
             * always a plain file name inside DIR. */
            char name[300];
            char *text = json_dumps(json_object_get(c, "content"),
                                    JSON_ENCODE_ANY | JSON_INDENT(2) | JSON_SORT_KEYS);
            snprintf(name, sizeof(name), "%s.json", key);
            int rc =
                text ? write_file(r->a.out, name, text, r->err, sizeof(r->err)) : CLI_EXIT_FAILURE;
            free(text);
            if (rc != CLI_EXIT_OK) {
                return rc;
            }
            n++;
        }
    }
    if (r->g.json_output) {
        json_t *list = json_array();
        json_object_foreach(fold, key, c)
        {
            json_array_append(list, c);
        }
        json_t *doc = json_pack("{s:s,s:I,s:o}", "project", project, "as_of_revision",
                                (json_int_t)as_of, "configs", list);
        json_dumpf(doc, stdout, JSON_INDENT(2));
        putchar('\n');
        json_decref(doc);
    } else if (r->a.out != NULL) {
        printf("wrote %zu config%s of project %s as of revision %" PRIu64 " to %s\n", n,
               n == 1 ? "" : "s", project, as_of, r->a.out);
    } else {
        printf("project %s as of revision %" PRIu64 ": %zu live config%s\n", project, as_of,
               json_object_size(fold), json_object_size(fold) == 1 ? "" : "s");
        json_object_foreach(fold, key, c)
        {
            char *text = json_dumps(json_object_get(c, "content"),
                                    JSON_ENCODE_ANY | JSON_INDENT(2) | JSON_SORT_KEYS);
            printf("\n%s  version %" JSON_INTEGER_FORMAT "  revision %" JSON_INTEGER_FORMAT
                   "  by %s  at %s\n%s\n",
                   key, json_integer_value(json_object_get(c, "version")),
                   json_integer_value(json_object_get(c, "revision")),
                   json_string_value(json_object_get(c, "updated_by")),
                   json_string_value(json_object_get(c, "updated_at")), text ? text : "");
            free(text);
        }
    }
    return CLI_EXIT_OK;
}

static int cmd_replay(struct audit_run *r)
{
    struct cli_asrc *s = NULL;
    struct alog *a = NULL;
    const char *project = r->g.project;
    struct auditlog_problem p;
    bool problem = false;
    json_t *fold = NULL;
    int rc;
    if (r->a.file != NULL) {
        const char *fp = NULL;
        rc = cli_asrc_open_file(r->a.file, &s, &fp, r->err, sizeof(r->err));
        if (rc == CLI_EXIT_OK && project != NULL && strcmp(project, fp) != 0) {
            snprintf(r->err, sizeof(r->err), "%s is an export of project %s, not %s", r->a.file, fp,
                     project);
            rc = CLI_EXIT_USAGE;
        }
        project = fp;
    } else if (project == NULL) {
        snprintf(r->err, sizeof(r->err), "replay needs --project P (or CONCLAVE_PROJECT)");
        return CLI_EXIT_USAGE;
    } else {
        rc = open_source(r, project, &s);
    }
    if (rc != CLI_EXIT_OK) {
        goto out;
    }
    a = auditlog_new(project);
    if (a == NULL) {
        snprintf(r->err, sizeof(r->err), "out of memory");
        rc = CLI_EXIT_FAILURE;
        goto out;
    }
    rc = feed_all(r, s, a, past_point, &p, &problem);
    if (rc == CLI_EXIT_OK && problem) {
        snprintf(r->err, sizeof(r->err),
                 "the history of project %s does not verify up to that point, so it cannot be "
                 "replayed: revision %" PRIu64 "%s%s: %s",
                 project, p.revision, p.key[0] ? " key " : "", p.key, p.text);
        rc = CLI_EXIT_AUDIT;
    }
    if (rc != CLI_EXIT_OK) {
        goto out;
    }
    fold = auditlog_fold(a);
    rc = fold ? replay_output(r, project, fold, auditlog_last_revision(a)) : CLI_EXIT_FAILURE;
out:
    json_decref(fold);
    auditlog_free(a);
    cli_asrc_close(s);
    return rc;
}

/* ---- export ------------------------------------------------------------------------------- */

static void now_rfc3339(char out[80])
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    snprintf(out, 80, "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000);
}

static int put_line(FILE *f, json_t *doc)
{
    int rc = json_dumpf(doc, f, JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(doc);
    return rc == 0 && fputc('\n', f) != EOF ? 0 : -1;
}

/*
 * Writes the export: the header, every revision with "project" added, and the trailer with the
 * count and the last stored hash. The revisions are also checked on the way; a history that does
 * not verify is still exported whole (it is evidence), but the command then exits 8.
 */
static int cmd_export(struct audit_run *r)
{
    const char *project = r->g.project;
    struct cli_asrc *s = NULL;
    struct alog *a = NULL;
    struct auditlog_problem p = {0};
    bool problem = false, to_stdout = r->a.out == NULL || strcmp(r->a.out, "-") == 0;
    char tmp[4200] = "", stamp[80], last_hash[80] = "";
    uint64_t count = 0;
    FILE *f = stdout;
    int rc;
    if (project == NULL) {
        snprintf(r->err, sizeof(r->err), "export needs --project P (or CONCLAVE_PROJECT)");
        return CLI_EXIT_USAGE;
    }
    rc = open_source(r, project, &s);
    if (rc != CLI_EXIT_OK) {
        return rc;
    }
    a = auditlog_new(project);
    if (a == NULL) {
        snprintf(r->err, sizeof(r->err), "out of memory");
        rc = CLI_EXIT_FAILURE;
        goto out;
    }
    if (!to_stdout) {
        snprintf(tmp, sizeof(tmp), "%s.tmp-%ld", r->a.out, (long)getpid());
        f = fopen(tmp, "w");
        if (f == NULL) {
            snprintf(r->err, sizeof(r->err), "cannot create %.900s: %s", tmp, strerror(errno));
            tmp[0] = '\0';
            rc = CLI_EXIT_FAILURE;
            goto out;
        }
    }
    now_rfc3339(stamp);
    if (put_line(f, json_pack("{s:s,s:i,s:s,s:s,s:s}", "format", CLI_ASRC_FORMAT, "format_version",
                              CLI_ASRC_FORMAT_VERSION, "project", project, "exported_at", stamp,
                              "source", r->use_db ? "db" : "api")) != 0) {
        goto write_error;
    }
    for (;;) {
        const json_t *rev = NULL;
        rc = cli_asrc_next(s, "", &rev, r->err, sizeof(r->err));
        if (rc != CLI_EXIT_OK) {
            goto out;
        }
        if (rev == NULL) {
            break;
        }
        json_t *line = json_deep_copy(rev);
        if (line == NULL || json_object_set_new(line, "project", json_string(project)) != 0 ||
            put_line(f, line) != 0) {
            goto write_error;
        }
        count++;
        const char *h = json_string_value(json_object_get(rev, "hash"));
        snprintf(last_hash, sizeof(last_hash), "%s", h != NULL ? h : "");
        if (!problem && auditlog_feed(a, rev, &p) == ALOG_PROBLEM) {
            problem = true;
        }
        cli_asrc_progress(count, cli_asrc_total(s));
    }
    cli_asrc_progress_done();
    if (put_line(f, json_pack("{s:b,s:I,s:o}", "end", 1, "revisions", (json_int_t)count,
                              "chain_head", last_hash[0] ? json_string(last_hash) : json_null())) !=
            0 ||
        fflush(f) != 0 || (!to_stdout && fsync(fileno(f)) != 0)) {
        goto write_error;
    }
    if (!to_stdout) {
        int closed = fclose(f);
        f = NULL;
        if (closed != 0 || rename(tmp, r->a.out) != 0) {
            goto write_error;
        }
        tmp[0] = '\0';
        fprintf(stderr, "exported %" PRIu64 " revisions of project %s to %s (chain head %s)\n",
                count, project, r->a.out, last_hash[0] ? last_hash : "none");
    }
    if (problem) {
        snprintf(r->err, sizeof(r->err),
                 "exported, but the history does not verify: revision %" PRIu64 "%s%s: %s",
                 p.revision, p.key[0] ? " key " : "", p.key, p.text);
        rc = CLI_EXIT_AUDIT;
    }
    goto out;
write_error:
    snprintf(r->err, sizeof(r->err), "cannot write the export to %.900s: %s",
             to_stdout ? "stdout" : tmp, strerror(errno));
    rc = CLI_EXIT_FAILURE;
out:
    cli_asrc_progress_done();
    if (f != NULL && f != stdout) {
        fclose(f);
    }
    if (tmp[0] != '\0') {
        unlink(tmp);
    }
    auditlog_free(a);
    cli_asrc_close(s);
    return rc;
}

/* ---- entry -------------------------------------------------------------------------------- */

int cli_audit(int argc, char **argv)
{
    struct audit_run *r = calloc(1, sizeof(*r));
    int rc;
    if (r == NULL) {
        fprintf(stderr, "conclave audit: out of memory\n");
        return CLI_EXIT_FAILURE;
    }
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(usage_text, stdout);
            free(r);
            return CLI_EXIT_OK;
        }
    }
    rc = cli_global_parse(&argc, argv, &r->g, r->err, sizeof(r->err));
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
            rc = cmd_verify(r);
        } else if (strcmp(r->a.sub, "replay") == 0) {
            rc = cmd_replay(r);
        } else {
            rc = cmd_export(r);
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
