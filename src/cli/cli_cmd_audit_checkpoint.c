/*
 * `conclave audit checkpoint PROJECT [--out FILE]`: the project's head revision and hash, after
 * verifying the whole chain up to it, as one JSON object (docs/cli.md "Checkpoints"):
 *
 *   {"format": "conclave-audit-checkpoint", "format_version": 1, "project": P,
 *    "revision": R, "hash": H, "created_at": T, "source": "api" | "db"}
 *
 * Kept somewhere the database's users cannot write (another host, a ticket, a signed mail), it
 * lets `conclave audit verify --checkpoint FILE` prove later that the history still holds
 * revision R with hash H: a chain whose newest revisions were deleted, or an older backup
 * restored, cannot hide that from it, whoever had the rights to do it.
 *
 * Also reads such a file back for verify (cli_cmd_audit_checkpoint_read()).
 */
#include "cli/cli_cmd_audit_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "audit/auditlog.h"
#include "cli/cli_audit_source.h"
#include "cli/cli_exit.h"

#define CHECKPOINT_FORMAT         "conclave-audit-checkpoint"
#define CHECKPOINT_FORMAT_VERSION 1

static void now_rfc3339(char out[80])
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    snprintf(out, 80, "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000);
}

static bool is_hex64(const char *s)
{
    if (s == NULL || strlen(s) != 64) {
        return false;
    }
    for (const char *c = s; *c; c++) {
        if (!((*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'f'))) {
            return false;
        }
    }
    return true;
}

/* Writes DOC plus a newline to PATH through a temporary file renamed over it, so a reader
 * never sees half a checkpoint. Returns 0, or -1 with R->err. */
static int write_file(struct cli_cmd_audit_run *r, const char *path, const json_t *doc)
{
    char tmp[4200];
    snprintf(tmp, sizeof(tmp), "%s.tmp-%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "w");
    if (f == NULL) {
        snprintf(r->err, sizeof(r->err), "cannot create %.900s: %s", tmp, strerror(errno));
        return -1;
    }
    int bad = json_dumpf(doc, f, JSON_COMPACT) != 0 || fputc('\n', f) == EOF || fflush(f) != 0 ||
              fsync(fileno(f)) != 0;
    int saved = errno;
    if (fclose(f) != 0 && !bad) {
        bad = 1;
        saved = errno;
    }
    if (!bad && rename(tmp, path) != 0) {
        bad = 1;
        saved = errno;
    }
    if (bad) {
        snprintf(r->err, sizeof(r->err), "cannot write the checkpoint to %.900s: %s", path,
                 strerror(saved));
        unlink(tmp);
        return -1;
    }
    return 0;
}

int cli_cmd_audit_checkpoint(struct cli_cmd_audit_run *r)
{
    const char *project = r->a.project ? r->a.project : r->g->project;
    struct cli_audit_source *s = NULL;
    struct alog *a = NULL;
    struct auditlog_problem p = {0};
    bool problem = false;
    json_t *doc = NULL;
    char stamp[80];
    int rc;
    if (project == NULL) {
        snprintf(r->err, sizeof(r->err),
                 "checkpoint needs a project: conclave audit checkpoint "
                 "PROJECT [--out FILE]");
        return CLI_EXIT_USAGE;
    }
    if (r->a.project != NULL && r->g->project != NULL && strcmp(r->a.project, r->g->project)) {
        snprintf(r->err, sizeof(r->err), "two projects given: %s and --project %s", r->a.project,
                 r->g->project);
        return CLI_EXIT_USAGE;
    }
    rc = cli_cmd_audit_open_source(r, project, &s);
    if (rc != CLI_EXIT_OK) {
        goto out;
    }
    a = auditlog_new(project);
    if (a == NULL) {
        snprintf(r->err, sizeof(r->err), "out of memory");
        rc = CLI_EXIT_FAILURE;
        goto out;
    }
    /* A checkpoint vouches for the chain up to it: verify first, write nothing when it fails. */
    rc = cli_cmd_audit_feed_all(r, s, a, NULL, &p, &problem);
    if (rc != CLI_EXIT_OK) {
        goto out;
    }
    if (problem) {
        snprintf(r->err, sizeof(r->err),
                 "no checkpoint written: the history does not verify at revision %" PRIu64
                 "%s%s: %.500s",
                 p.revision, p.key[0] ? " key " : "", p.key, p.text);
        rc = CLI_EXIT_AUDIT;
        goto out;
    }
    if (auditlog_revisions(a) == 0) {
        snprintf(r->err, sizeof(r->err),
                 "project %s has no revision yet: nothing to checkpoint; write a config first",
                 project);
        rc = CLI_EXIT_NOT_FOUND;
        goto out;
    }
    now_rfc3339(stamp);
    doc = json_pack("{s:s,s:i,s:s,s:I,s:s,s:s,s:s}", "format", CHECKPOINT_FORMAT, "format_version",
                    CHECKPOINT_FORMAT_VERSION, "project", project, "revision",
                    (json_int_t)auditlog_last_revision(a), "hash", auditlog_chain_head(a),
                    "created_at", stamp, "source", r->use_db ? "db" : "api");
    if (doc == NULL) {
        snprintf(r->err, sizeof(r->err), "out of memory");
        rc = CLI_EXIT_FAILURE;
        goto out;
    }
    if (r->a.out == NULL || strcmp(r->a.out, "-") == 0) {
        json_dumpf(doc, stdout, JSON_COMPACT);
        putchar('\n');
    } else if (write_file(r, r->a.out, doc) != 0) {
        rc = CLI_EXIT_FAILURE;
        goto out;
    } else {
        fprintf(stderr, "checkpoint of project %s: revision %" PRIu64 ", hash %s, written to %s\n",
                project, auditlog_last_revision(a), auditlog_chain_head(a), r->a.out);
    }
    rc = CLI_EXIT_OK;
out:
    json_decref(doc);
    auditlog_free(a);
    cli_audit_source_close(s);
    return rc;
}

int cli_cmd_audit_checkpoint_read(struct cli_cmd_audit_run *r, const char *path, char **project)
{
    json_error_t jerr;
    *project = NULL;
    json_t *doc = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    if (doc == NULL) {
        FILE *f = fopen(path, "r");
        if (f == NULL) {
            snprintf(r->err, sizeof(r->err), "cannot read checkpoint %.900s: %s", path,
                     strerror(errno));
            return CLI_EXIT_NOT_FOUND;
        }
        fclose(f);
        snprintf(r->err, sizeof(r->err), "%.700s is not a checkpoint: %.160s (line %d)", path,
                 jerr.text, jerr.line);
        return CLI_EXIT_USAGE;
    }
    const char *format = json_string_value(json_object_get(doc, "format"));
    const char *proj = json_string_value(json_object_get(doc, "project"));
    const char *hash = json_string_value(json_object_get(doc, "hash"));
    json_t *rev = json_object_get(doc, "revision");
    json_t *ver = json_object_get(doc, "format_version");
    const char *bad = NULL;
    if (format == NULL || strcmp(format, CHECKPOINT_FORMAT) != 0) {
        bad = "its \"format\" is not " CHECKPOINT_FORMAT;
    } else if (!json_is_integer(ver) || json_integer_value(ver) != CHECKPOINT_FORMAT_VERSION) {
        bad = "its \"format_version\" is not 1";
    } else if (proj == NULL || proj[0] == '\0') {
        bad = "it names no \"project\"";
    } else if (!json_is_integer(rev) || json_integer_value(rev) < 1) {
        bad = "its \"revision\" is not a revision number (1 or more)";
    } else if (!is_hex64(hash)) {
        bad = "its \"hash\" is not 64 lowercase hex digits";
    }
    if (bad != NULL) {
        snprintf(r->err, sizeof(r->err), "%.900s is not a checkpoint: %s", path, bad);
        json_decref(doc);
        return CLI_EXIT_USAGE;
    }
    struct cli_cmd_audit_watch *w = &r->watch[1];
    memset(w, 0, sizeof(*w));
    w->on = true;
    w->revision = (uint64_t)json_integer_value(rev);
    snprintf(w->hash, sizeof(w->hash), "%s", hash);
    w->what = "the checkpoint names";
    *project = strdup(proj);
    json_decref(doc);
    if (*project == NULL) {
        snprintf(r->err, sizeof(r->err), "out of memory");
        return CLI_EXIT_FAILURE;
    }
    return CLI_EXIT_OK;
}
