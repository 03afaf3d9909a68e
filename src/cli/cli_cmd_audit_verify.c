/*
 * `conclave audit verify`: every hash of a project's chain recomputed, each key's versions
 * 1, 2, 3, ... and the live configs exactly what the revisions add up to; from the API, from
 * PostgreSQL (audit.c, which compares `configs` in the same snapshot) or from an export file.
 */
#include "cli/cli_cmd_audit_internal.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "audit/audit.h"
#include "audit/auditlog.h"
#include "cli/cli_audit_source.h"
#include "cli/cli_client.h"
#include "cli/cli_exit.h"
#include "storage/db.h"
#include "storage/db_configs.h"

/* Every project to verify: the one named, or all of them (all in the database; those the
 * caller can see through the API). *OUT is a new array of strings. */
static int list_projects(struct cli_cmd_audit_run *r, json_t **out)
{
    *out = NULL;
    if (r->g->project != NULL) {
        *out = json_pack("[s]", r->g->project);
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

/* PROJECT's live configs through the API (linearizable), every page: *OUT a new array. */
static int list_live(struct cli_cmd_audit_run *r, const char *project, json_t **out)
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
static int compare_live_api(struct cli_cmd_audit_run *r, const char *project, struct alog *a,
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
        struct cli_audit_source *s = NULL;
        rc = cli_audit_source_open_api(r->client, project, auditlog_last_revision(a), &s, r->err,
                                       sizeof(r->err));
        if (rc != CLI_EXIT_OK) {
            return rc;
        }
        rc = cli_cmd_audit_feed_all(r, s, a, NULL, p, problem);
        cli_audit_source_close(s);
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
static int verify_stream(struct cli_cmd_audit_run *r, const char *project,
                         struct cli_audit_source *s, json_t **result)
{
    struct alog *a = auditlog_new(project);
    struct auditlog_problem p;
    bool problem = false;
    if (a == NULL) {
        snprintf(r->err, sizeof(r->err), "out of memory");
        return CLI_EXIT_FAILURE;
    }
    int rc = cli_cmd_audit_feed_all(r, s, a, NULL, &p, &problem);
    if (rc == CLI_EXIT_AUDIT) {
        /* A broken export file is a finding like a broken chain. */
        memset(&p, 0, sizeof(p));
        snprintf(p.text, sizeof(p.text), "%.590s", r->err);
        problem = true;
        rc = CLI_EXIT_OK;
    }
    bool compared = false;
    /* The committed head or checkpoint first: a missing tail also makes the live configs differ
     * from the fold, and the missing tail is the finding that says what happened. */
    if (rc == CLI_EXIT_OK && !problem) {
        problem = cli_cmd_audit_watch_problem(r, a, &p);
    }
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

/*
 * Reads the committed head of PROJECT (GET /v1/projects/{id}/head) into r->watch[0]: the point
 * PostgreSQL must hold, which the chain read afterwards must contain (it may hold more:
 * revisions materialized meanwhile). Read before the revisions, so that it cannot be newer than
 * them. A project without revisions sets no watch.
 */
static int fetch_head(struct cli_cmd_audit_run *r, const char *project)
{
    struct cli_cmd_audit_watch *w = &r->watch[0];
    char *penc = cli_urlencode(project);
    char path[1024];
    long status = 0;
    json_t *reply = NULL;
    memset(w, 0, sizeof(*w));
    if (penc == NULL) {
        snprintf(r->err, sizeof(r->err), "out of memory");
        return CLI_EXIT_FAILURE;
    }
    snprintf(path, sizeof(path), "/v1/projects/%s/head", penc);
    free(penc);
    int rc = cli_client_call(r->client, "GET", path, NULL, &status, &reply, r->err, sizeof(r->err));
    if (rc == CLI_EXIT_OK && status != 200) {
        char what[512];
        snprintf(what, sizeof(what), "reading the committed head of project %s", project);
        rc = cli_client_error(status, reply, what, r->err, sizeof(r->err));
    }
    if (rc == CLI_EXIT_OK) {
        const json_t *m = json_object_get(reply, "materialized");
        const char *h = json_string_value(json_object_get(m, "hash"));
        json_t *rev = json_object_get(m, "revision");
        if (h != NULL && strlen(h) == 64) {
            w->on = true;
            snprintf(w->hash, sizeof(w->hash), "%s", h);
            w->revision = json_is_integer(rev) ? (uint64_t)json_integer_value(rev) : 0;
            w->what = "the cluster committed";
        }
    }
    json_decref(reply);
    return rc;
}

static int hex_nibble(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Verifies one project in PostgreSQL with audit.c, which also compares `configs` in the same
 * snapshot, into a report of the same shape as verify_stream()'s. */
static int verify_db(struct cli_cmd_audit_run *r, const char *project, json_t **result)
{
    json_t *rep = NULL;
    struct audit_expect e = {0};
    const struct cli_cmd_audit_watch *w = &r->watch[1];
    if (w->on) {
        /* The checkpoint's hash was checked to be 64 lowercase hex digits when read. */
        for (int i = 0; i < 32; i++) {
            e.hash[i] = (uint8_t)(hex_nibble(w->hash[2 * i]) << 4 | hex_nibble(w->hash[2 * i + 1]));
        }
        e.revision = w->revision;
        e.what = w->what;
    }
    int rc = audit_verify_project_expect(r->conn, project, w->on ? &e : NULL, &rep, r->err,
                                         sizeof(r->err));
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

int cli_cmd_audit_verify(struct cli_cmd_audit_run *r)
{
    json_t *projects = NULL, *reports = json_array();
    char *ckpt_project = NULL;
    int rc = CLI_EXIT_OK;
    bool all_ok = true;
    if (r->a.checkpoint != NULL) {
        rc = cli_cmd_audit_checkpoint_read(r, r->a.checkpoint, &ckpt_project);
        if (rc == CLI_EXIT_OK && r->g->project != NULL &&
            strcmp(r->g->project, ckpt_project) != 0) {
            snprintf(r->err, sizeof(r->err), "%s is a checkpoint of project %s, not %s",
                     r->a.checkpoint, ckpt_project, r->g->project);
            rc = CLI_EXIT_USAGE;
        }
        if (rc != CLI_EXIT_OK) {
            goto out;
        }
    }
    if (r->a.file != NULL) {
        struct cli_audit_source *s = NULL;
        const char *project = NULL;
        json_t *rep = NULL;
        rc = cli_audit_source_open_file(r->a.file, &s, &project, r->err, sizeof(r->err));
        if (rc == CLI_EXIT_AUDIT) {
            /* Not an export at all: there is no project to report on, only the file. */
            fprintf(stderr, "conclave audit verify: %s\n", r->err);
            goto out;
        }
        const char *want = ckpt_project ? ckpt_project : r->g->project;
        if (rc == CLI_EXIT_OK && want != NULL && strcmp(want, project) != 0) {
            snprintf(r->err, sizeof(r->err), "%s is an export of project %s, not %s", r->a.file,
                     project, want);
            rc = CLI_EXIT_USAGE;
        }
        if (rc == CLI_EXIT_OK) {
            rc = verify_stream(r, project, s, &rep);
        }
        cli_audit_source_close(s);
        if (rc != CLI_EXIT_OK) {
            goto out;
        }
        json_array_append_new(reports, rep);
    } else {
        if (ckpt_project != NULL) {
            projects = json_pack("[s]", ckpt_project);
            rc = projects ? CLI_EXIT_OK : CLI_EXIT_FAILURE;
        } else {
            rc = list_projects(r, &projects);
        }
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
                struct cli_audit_source *s = NULL;
                rc = fetch_head(r, json_string_value(id));
                if (rc == CLI_EXIT_OK) {
                    rc = cli_audit_source_open_api(r->client, json_string_value(id), 0, &s, r->err,
                                                   sizeof(r->err));
                }
                if (rc == CLI_EXIT_OK) {
                    rc = verify_stream(r, json_string_value(id), s, &rep);
                }
                cli_audit_source_close(s);
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
    if (r->g->json_output) {
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
    free(ckpt_project);
    json_decref(projects);
    json_decref(reports);
    return rc;
}
