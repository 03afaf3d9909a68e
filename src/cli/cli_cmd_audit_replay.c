/*
 * `conclave audit replay`: a project's configs as they stood after a revision or at a time,
 * rebuilt from the history after verifying it up to that point; printed, or written as one
 * KEY.json file each.
 */
#include "cli/cli_cmd_audit_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "audit/auditlog.h"
#include "cli/cli_audit_source.h"
#include "cli/cli_client.h"
#include "cli/cli_exit.h"

/* True when REV is past the point replay was asked for: revisions are in order, so the fold of
 * everything before the first such revision is the state at that point. */
static bool past_point(const struct cli_cmd_audit_args *a, const json_t *rev)
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

static int replay_output(struct cli_cmd_audit_run *r, const char *project, json_t *fold,
                         uint64_t as_of)
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
    if (r->g->json_output) {
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

int cli_cmd_audit_replay(struct cli_cmd_audit_run *r)
{
    struct cli_audit_source *s = NULL;
    struct alog *a = NULL;
    const char *project = r->g->project;
    struct auditlog_problem p;
    bool problem = false;
    json_t *fold = NULL;
    int rc;
    if (r->a.file != NULL) {
        const char *fp = NULL;
        rc = cli_audit_source_open_file(r->a.file, &s, &fp, r->err, sizeof(r->err));
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
        rc = cli_cmd_audit_open_source(r, project, &s);
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
    rc = cli_cmd_audit_feed_all(r, s, a, past_point, &p, &problem);
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
    cli_audit_source_close(s);
    return rc;
}
