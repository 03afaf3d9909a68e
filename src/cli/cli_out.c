#include "cli/cli_out.h"

#include <stdlib.h>
#include <string.h>

#include "cli/cli_exit.h"
#include "cli/cli_width.h"

struct cli_table {
    size_t n_cols;
    const char *const *headers;
    char **cells; /* row-major, n_rows * n_cols */
    size_t n_rows;
    size_t cap_rows;
};

struct cli_table *cli_table_new(size_t n_cols, const char *const *headers)
{
    if (n_cols == 0 || n_cols > CLI_TABLE_MAX_COLS) {
        return NULL;
    }
    struct cli_table *t = calloc(1, sizeof(*t));
    if (t != NULL) {
        t->n_cols = n_cols;
        t->headers = headers;
    }
    return t;
}

int cli_table_add(struct cli_table *t, const char *const *cells)
{
    if (t->n_rows == t->cap_rows) {
        size_t cap = t->cap_rows ? t->cap_rows * 2 : 16;
        char **grown = realloc(t->cells, cap * t->n_cols * sizeof(*grown));
        if (grown == NULL) {
            return -1;
        }
        t->cells = grown;
        t->cap_rows = cap;
    }
    char **row = t->cells + t->n_rows * t->n_cols;
    for (size_t i = 0; i < t->n_cols; i++) {
        row[i] = strdup(cells[i] ? cells[i] : "-");
        if (row[i] == NULL) {
            for (size_t k = 0; k < i; k++) {
                free(row[k]);
            }
            return -1;
        }
    }
    t->n_rows++;
    return 0;
}

/* Terminal columns of a cell: wide characters take two (cli_width.h). */
static size_t width(const char *s)
{
    return cli_width(s);
}

static void print_row(const struct cli_table *t, const char *const *row, const size_t *widths,
                      FILE *out)
{
    for (size_t i = 0; i < t->n_cols; i++) {
        fputs(row[i], out);
        if (i + 1 < t->n_cols) {
            for (size_t pad = width(row[i]); pad < widths[i] + 2; pad++) {
                fputc(' ', out);
            }
        }
    }
    fputc('\n', out);
}

void cli_table_print(const struct cli_table *t, FILE *out)
{
    size_t widths[CLI_TABLE_MAX_COLS];
    for (size_t i = 0; i < t->n_cols; i++) {
        widths[i] = width(t->headers[i]);
        for (size_t r = 0; r < t->n_rows; r++) {
            size_t w = width(t->cells[r * t->n_cols + i]);
            widths[i] = w > widths[i] ? w : widths[i];
        }
    }
    print_row(t, t->headers, widths, out);
    for (size_t r = 0; r < t->n_rows; r++) {
        print_row(t, (const char *const *)t->cells + r * t->n_cols, widths, out);
    }
}

void cli_table_free(struct cli_table *t)
{
    if (t == NULL) {
        return;
    }
    for (size_t i = 0; i < t->n_rows * t->n_cols; i++) {
        free(t->cells[i]);
    }
    free(t->cells);
    free(t);
}

void cli_print_json(const json_t *v)
{
    char *s = json_dumps(v, JSON_INDENT(2) | JSON_ENCODE_ANY);
    if (s != NULL) {
        puts(s);
        free(s);
    }
}

char *cli_cell(const json_t *v, size_t max)
{
    char *s;
    if (v == NULL || json_is_null(v)) {
        return strdup("-");
    }
    if (json_is_string(v)) {
        s = strdup(json_string_value(v));
    } else {
        s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    }
    if (s != NULL && max > 3 && strlen(s) > max) {
        /* Cut on a UTF-8 character boundary. */
        size_t cut = max - 3;
        while (cut > 0 && ((unsigned char)s[cut] & 0xC0) == 0x80) {
            cut--;
        }
        memcpy(s + cut, "...", 4);
    }
    return s;
}

void cli_print_field(const json_t *obj, const char *name, const char *label, int w)
{
    char *s = cli_cell(json_object_get(obj, name), 0);
    printf("%-*s %s\n", w, label, s ? s : "-");
    free(s);
}

/* Process-wide, as the CLI runs one command per process: whether errors are JSON, and the
 * last server error answer not yet reported. */
static int g_json_errors;
static long g_server_status;
static json_t *g_server_reply;

void cli_out_json_errors(int on)
{
    g_json_errors = on;
}

void cli_out_server_error(long status, const json_t *reply)
{
    json_decref(g_server_reply);
    g_server_reply = json_is_object(reply) ? json_deep_copy(reply) : NULL;
    g_server_status = status;
}

static const char *exit_name(int rc)
{
    static const char *const names[] = {"ok",          "failure",  "usage",
                                        "not_found",   "conflict", "permission",
                                        "unavailable", "invalid",  "audit"};
    return rc >= 0 && rc < (int)(sizeof(names) / sizeof(names[0])) ? names[rc] : "failure";
}

/* The JSON form of an error (cli_fail()), one line on standard error. */
static void print_json_error(int rc, const char *msg)
{
    json_t *e = json_object();
    if (e != NULL && g_server_status != 0) {
        const char *k;
        json_t *v;
        json_object_foreach(g_server_reply, k, v)
        {
            if (strcmp(k, "error") != 0 && strcmp(k, "message") != 0) {
                json_object_set(e, k, v);
            }
        }
        json_t *code = json_object_get(g_server_reply, "error");
        json_object_set_new(e, "http_status", json_integer(g_server_status));
        json_object_set_new(
            e, "error",
            json_string(json_is_string(code) ? json_string_value(code) : exit_name(rc)));
    } else if (e != NULL) {
        json_object_set_new(e, "error", json_string(exit_name(rc)));
    }
    json_object_set_new(e, "message", json_string(msg));
    json_object_set_new(e, "exit_code", json_integer(rc));
    char *s = e ? json_dumps(e, JSON_COMPACT) : NULL;
    fprintf(stderr, "%s\n", s ? s : "{\"error\":\"failure\",\"message\":\"out of memory\"}");
    free(s);
    json_decref(e);
    cli_out_server_error(0, NULL);
}

int cli_fail(int rc, const char *msg)
{
    if (g_json_errors) {
        print_json_error(rc, msg);
    } else {
        fprintf(stderr, "conclave: %s\n", msg);
    }
    return rc;
}

int cli_usage_error(const char *cmd, const char *msg)
{
    if (g_json_errors) {
        char full[1200];
        snprintf(full, sizeof(full), "conclave %s: %s; see \"conclave help %s\"", cmd, msg, cmd);
        cli_out_server_error(0, NULL);
        print_json_error(CLI_EXIT_USAGE, full);
    } else {
        fprintf(stderr, "conclave %s: %s; see \"conclave help %s\"\n", cmd, msg, cmd);
    }
    return CLI_EXIT_USAGE;
}
