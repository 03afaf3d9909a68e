/*
 * `conclave audit export`: a project's revisions with their hashes as JSON Lines (docs/cli.md
 * "Export format"), for `conclave audit verify --file`.
 */
#include "cli/cli_cmd_audit_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "audit/auditlog.h"
#include "cli/cli_audit_source.h"
#include "cli/cli_client.h"
#include "cli/cli_exit.h"

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
int cli_cmd_audit_export(struct cli_cmd_audit_run *r)
{
    const char *project = r->g->project;
    struct cli_audit_source *s = NULL;
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
    rc = cli_cmd_audit_open_source(r, project, &s);
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
    if (put_line(f, json_pack("{s:s,s:i,s:s,s:s,s:s}", "format", CLI_AUDIT_SOURCE_FORMAT,
                              "format_version", CLI_AUDIT_SOURCE_FORMAT_VERSION, "project", project,
                              "exported_at", stamp, "source", r->use_db ? "db" : "api")) != 0) {
        goto write_error;
    }
    for (;;) {
        const json_t *rev = NULL;
        rc = cli_audit_source_next(s, "", &rev, r->err, sizeof(r->err));
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
        cli_audit_source_progress(count, cli_audit_source_total(s));
    }
    cli_audit_source_progress_done();
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
    cli_audit_source_progress_done();
    if (f != NULL && f != stdout) {
        fclose(f);
    }
    if (tmp[0] != '\0') {
        unlink(tmp);
    }
    auditlog_free(a);
    cli_audit_source_close(s);
    return rc;
}
