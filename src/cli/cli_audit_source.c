#include "cli/cli_audit_source.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli_exit.h"
#include "storage/db.h"
#include "storage/db_configs.h"

/* Revisions per page from the API or the database: large enough that the round trips do not
 * dominate, small enough that a page of large contents stays a few megabytes. */
#define SOURCE_PAGE 1000

enum source_kind { SOURCE_API, SOURCE_DB, SOURCE_FILE };

struct cli_audit_source {
    enum source_kind kind;
    char *project;
    uint64_t total;
    /* API and database: the current page and the position in it. */
    struct cli_client *client;
    PGconn *conn;
    bool in_tx;
    json_t *page;
    size_t pos;
    uint64_t after; /* the last revision handed out: the next page starts after it */
    bool exhausted;
    /* File. */
    FILE *file;
    bool own_file;
    char *line;
    size_t cap;
    uint64_t lineno;
    uint64_t read; /* revisions read from the file */
    json_t *current;
};

static struct cli_audit_source *source_new(enum source_kind kind, const char *project)
{
    struct cli_audit_source *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        return NULL;
    }
    s->kind = kind;
    s->project = project ? strdup(project) : NULL;
    if (project != NULL && s->project == NULL) {
        free(s);
        return NULL;
    }
    return s;
}

void cli_audit_source_close(struct cli_audit_source *s)
{
    if (s == NULL) {
        return;
    }
    if (s->in_tx) {
        db_rollback(s->conn);
    }
    if (s->own_file && s->file != NULL) {
        fclose(s->file);
    }
    json_decref(s->page);
    json_decref(s->current);
    free(s->line);
    free(s->project);
    free(s);
}

uint64_t cli_audit_source_total(const struct cli_audit_source *s)
{
    return s->total;
}

/* ---- the API ---------------------------------------------------------------------------- */

static int api_page(struct cli_audit_source *s, char *err, size_t errlen)
{
    char *enc = cli_urlencode(s->project);
    char path[1024];
    long status = 0;
    json_t *reply = NULL;
    char what[512];
    if (enc == NULL) {
        snprintf(err, errlen, "out of memory");
        return CLI_EXIT_FAILURE;
    }
    snprintf(path, sizeof(path), "/v1/projects/%s/revisions?after_revision=%" PRIu64 "&limit=%d",
             enc, s->after, SOURCE_PAGE);
    free(enc);
    int rc = cli_client_call(s->client, "GET", path, NULL, &status, &reply, err, errlen);
    if (rc != CLI_EXIT_OK) {
        return rc;
    }
    if (status != 200) {
        snprintf(what, sizeof(what), "reading the revisions of project %s", s->project);
        rc = cli_client_error(status, reply, what, err, errlen);
        json_decref(reply);
        return rc;
    }
    json_t *items = json_object_get(reply, "items");
    if (!json_is_array(items)) {
        json_decref(reply);
        snprintf(err, errlen, "reading the revisions of project %s: the answer has no items",
                 s->project);
        return CLI_EXIT_FAILURE;
    }
    if (s->total == 0) {
        json_int_t n = json_integer_value(json_object_get(reply, "revisions"));
        s->total = n > 0 ? (uint64_t)n : 0;
    }
    json_decref(s->page);
    s->page = json_incref(items);
    s->pos = 0;
    s->exhausted =
        json_is_null(json_object_get(reply, "next_after_revision")) || json_array_size(items) == 0;
    json_decref(reply);
    return CLI_EXIT_OK;
}

int cli_audit_source_open_api(struct cli_client *client, const char *project, uint64_t after,
                              struct cli_audit_source **out, char *err, size_t errlen)
{
    struct cli_audit_source *s = source_new(SOURCE_API, project);
    *out = NULL;
    if (s == NULL) {
        snprintf(err, errlen, "out of memory");
        return CLI_EXIT_FAILURE;
    }
    s->client = client;
    s->after = after;
    int rc = api_page(s, err, errlen);
    if (rc != CLI_EXIT_OK) {
        cli_audit_source_close(s);
        return rc;
    }
    *out = s;
    return CLI_EXIT_OK;
}

/* ---- PostgreSQL ----------------------------------------------------------------------------- */

static int db_exit(int status)
{
    switch (status) {
    case DB_NOT_FOUND:
        return CLI_EXIT_NOT_FOUND;
    case DB_UNAVAILABLE:
        return CLI_EXIT_UNAVAILABLE;
    default:
        return CLI_EXIT_FAILURE;
    }
}

static int db_page(struct cli_audit_source *s, char *err, size_t errlen)
{
    json_t *rows = NULL;
    int rc = db_configs_changes(s->conn, s->project, s->after, SOURCE_PAGE, &rows, err, errlen);
    if (rc != DB_OK) {
        return db_exit(rc);
    }
    json_decref(s->page);
    s->page = rows;
    s->pos = 0;
    s->exhausted = json_array_size(rows) < SOURCE_PAGE;
    return CLI_EXIT_OK;
}

int cli_audit_source_open_db(PGconn *conn, const char *project, struct cli_audit_source **out,
                             char *err, size_t errlen)
{
    struct cli_audit_source *s = source_new(SOURCE_DB, project);
    PGresult *res = NULL;
    json_t *head = NULL;
    *out = NULL;
    if (s == NULL) {
        snprintf(err, errlen, "out of memory");
        return CLI_EXIT_FAILURE;
    }
    s->conn = conn;
    int rc =
        db_query(conn, "opening a snapshot of the revisions",
                 "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY", 0, NULL, &res, err, errlen);
    PQclear(res);
    if (rc != DB_OK) {
        rc = db_exit(rc);
        goto fail;
    }
    s->in_tx = true;
    rc = db_configs_head(conn, project, &head, err, errlen);
    if (rc == DB_NOT_FOUND) {
        snprintf(err, errlen, "project %s not found in the database", project);
    }
    if (rc != DB_OK) {
        rc = db_exit(rc);
        goto fail;
    }
    json_int_t n = json_integer_value(json_object_get(head, "revisions"));
    s->total = n > 0 ? (uint64_t)n : 0;
    json_decref(head);
    rc = db_page(s, err, errlen);
    if (rc != CLI_EXIT_OK) {
        goto fail;
    }
    *out = s;
    return CLI_EXIT_OK;
fail:
    cli_audit_source_close(s);
    return rc;
}

/* ---- export files ------------------------------------------------------------------------- */

/* Reads the next non-empty line as JSON into *OUT (NULL at the end of the file). */
static int file_line(struct cli_audit_source *s, json_t **out, char *err, size_t errlen)
{
    json_error_t jerr;
    *out = NULL;
    for (;;) {
        errno = 0;
        ssize_t n = getline(&s->line, &s->cap, s->file);
        if (n < 0) {
            if (ferror(s->file)) {
                snprintf(err, errlen, "reading the export file: %s", strerror(errno));
                return CLI_EXIT_FAILURE;
            }
            return CLI_EXIT_OK;
        }
        s->lineno++;
        if (n > 0 && s->line[n - 1] == '\n') {
            s->line[--n] = '\0';
        }
        if (n == 0) {
            continue;
        }
        *out = json_loadb(s->line, (size_t)n, JSON_REJECT_DUPLICATES, &jerr);
        if (*out == NULL || !json_is_object(*out)) {
            json_decref(*out);
            *out = NULL;
            snprintf(err, errlen, "export file line %" PRIu64 ": not a JSON object: %s", s->lineno,
                     jerr.text);
            return CLI_EXIT_AUDIT;
        }
        return CLI_EXIT_OK;
    }
}

int cli_audit_source_open_file(const char *path, struct cli_audit_source **out,
                               const char **project_out, char *err, size_t errlen)
{
    struct cli_audit_source *s = source_new(SOURCE_FILE, NULL);
    json_t *header = NULL;
    int rc;
    *out = NULL;
    if (s == NULL) {
        snprintf(err, errlen, "out of memory");
        return CLI_EXIT_FAILURE;
    }
    if (strcmp(path, "-") == 0) {
        s->file = stdin;
    } else {
        s->file = fopen(path, "r");
        s->own_file = true;
        if (s->file == NULL) {
            snprintf(err, errlen, "cannot open export file %s: %s", path, strerror(errno));
            rc = errno == ENOENT ? CLI_EXIT_NOT_FOUND : CLI_EXIT_FAILURE;
            goto fail;
        }
    }
    rc = file_line(s, &header, err, errlen);
    if (rc != CLI_EXIT_OK) {
        goto fail;
    }
    const char *format = json_string_value(json_object_get(header, "format"));
    const char *project = json_string_value(json_object_get(header, "project"));
    if (header == NULL || format == NULL || strcmp(format, CLI_AUDIT_SOURCE_FORMAT) != 0 ||
        project == NULL) {
        snprintf(err, errlen,
                 "%s is not a conclave audit export: its first line must be the header "
                 "{\"format\": \"%s\", \"project\": ...}",
                 path, CLI_AUDIT_SOURCE_FORMAT);
        rc = CLI_EXIT_AUDIT;
        goto fail;
    }
    if (json_integer_value(json_object_get(header, "format_version")) !=
        CLI_AUDIT_SOURCE_FORMAT_VERSION) {
        snprintf(err, errlen,
                 "%s: export format version %" JSON_INTEGER_FORMAT
                 " is not supported (this conclave reads version %d)",
                 path, json_integer_value(json_object_get(header, "format_version")),
                 CLI_AUDIT_SOURCE_FORMAT_VERSION);
        rc = CLI_EXIT_AUDIT;
        goto fail;
    }
    s->project = strdup(project);
    if (s->project == NULL) {
        snprintf(err, errlen, "out of memory");
        rc = CLI_EXIT_FAILURE;
        goto fail;
    }
    json_decref(header);
    *project_out = s->project;
    *out = s;
    return CLI_EXIT_OK;
fail:
    json_decref(header);
    cli_audit_source_close(s);
    return rc;
}

/* The trailer {"end": true, "revisions": N, "chain_head": HEX or null} must match what was read:
 * without it a file cut after any line would look like a shorter, valid history. */
static int file_trailer(struct cli_audit_source *s, const json_t *t, const char *chain_head,
                        char *err, size_t errlen)
{
    const json_t *n = json_object_get(t, "revisions");
    const json_t *head = json_object_get(t, "chain_head");
    const char *want = json_is_null(head) ? "" : json_string_value(head);
    if (!json_is_integer(n) || want == NULL) {
        snprintf(err, errlen, "export file line %" PRIu64 ": malformed trailer", s->lineno);
        return CLI_EXIT_AUDIT;
    }
    if ((uint64_t)json_integer_value(n) != s->read) {
        snprintf(err, errlen,
                 "export file: the trailer counts %" JSON_INTEGER_FORMAT
                 " revisions, the file holds %" PRIu64,
                 json_integer_value(n), s->read);
        return CLI_EXIT_AUDIT;
    }
    if (strcmp(want, chain_head) != 0) {
        snprintf(err, errlen,
                 "export file: the trailer's chain head %s is not the last revision's hash %s",
                 want[0] ? want : "(none)", chain_head[0] ? chain_head : "(none)");
        return CLI_EXIT_AUDIT;
    }
    json_t *extra = NULL;
    int rc = file_line(s, &extra, err, errlen);
    if (rc == CLI_EXIT_OK && extra != NULL) {
        json_decref(extra);
        snprintf(err, errlen, "export file line %" PRIu64 ": data after the trailer", s->lineno);
        return CLI_EXIT_AUDIT;
    }
    return rc;
}

static int file_next(struct cli_audit_source *s, const char *chain_head, const json_t **rev,
                     char *err, size_t errlen)
{
    json_decref(s->current);
    s->current = NULL;
    int rc = file_line(s, &s->current, err, errlen);
    if (rc != CLI_EXIT_OK) {
        return rc;
    }
    if (s->current == NULL) {
        snprintf(err, errlen,
                 "export file ends after line %" PRIu64
                 " without its trailer line: it is truncated",
                 s->lineno);
        return CLI_EXIT_AUDIT;
    }
    if (json_is_true(json_object_get(s->current, "end"))) {
        rc = file_trailer(s, s->current, chain_head, err, errlen);
        json_decref(s->current);
        s->current = NULL;
        return rc;
    }
    const char *project = json_string_value(json_object_get(s->current, "project"));
    if (project == NULL || strcmp(project, s->project) != 0) {
        snprintf(err, errlen,
                 "export file line %" PRIu64 ": revision of project %s in an export of %s",
                 s->lineno, project ? project : "(none)", s->project);
        return CLI_EXIT_AUDIT;
    }
    s->read++;
    *rev = s->current;
    return CLI_EXIT_OK;
}

int cli_audit_source_next(struct cli_audit_source *s, const char *chain_head, const json_t **rev,
                          char *err, size_t errlen)
{
    *rev = NULL;
    if (s->kind == SOURCE_FILE) {
        return file_next(s, chain_head, rev, err, errlen);
    }
    if (s->pos == json_array_size(s->page)) {
        if (s->exhausted) {
            return CLI_EXIT_OK;
        }
        int rc = s->kind == SOURCE_API ? api_page(s, err, errlen) : db_page(s, err, errlen);
        if (rc != CLI_EXIT_OK) {
            return rc;
        }
        if (json_array_size(s->page) == 0) {
            return CLI_EXIT_OK;
        }
    }
    const json_t *r = json_array_get(s->page, s->pos++);
    json_int_t n = json_integer_value(json_object_get(r, "revision"));
    s->after = n > 0 ? (uint64_t)n : s->after;
    *rev = r;
    return CLI_EXIT_OK;
}

/* ---- progress ------------------------------------------------------------------------------ */

static int progress_state = -1; /* -1 unknown, 0 off, 1 on */
static uint64_t progress_last_ms;
static bool progress_drawn;

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void cli_audit_source_progress(uint64_t n, uint64_t total)
{
    if (progress_state < 0) {
        progress_state = isatty(STDOUT_FILENO) && isatty(STDERR_FILENO);
    }
    uint64_t t = now_ms();
    if (progress_state == 0 || (progress_drawn && t - progress_last_ms < 100)) {
        return;
    }
    progress_last_ms = t;
    progress_drawn = true;
    if (total == 0 || n > total) {
        fprintf(stderr, "\r%" PRIu64 " revisions", n);
    } else {
        char bar[31];
        size_t filled = (size_t)(n * 30 / total);
        memset(bar, '#', filled);
        memset(bar + filled, '.', 30 - filled);
        bar[30] = '\0';
        fprintf(stderr, "\r[%s] %3u%% %" PRIu64 "/%" PRIu64 " revisions", bar,
                (unsigned)(n * 100 / total), n, total);
    }
    fflush(stderr);
}

void cli_audit_source_progress_done(void)
{
    if (progress_drawn) {
        fprintf(stderr, "\r\033[K");
        fflush(stderr);
        progress_drawn = false;
    }
}
