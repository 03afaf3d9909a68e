#include "cli/cli_cmd.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli_out.h"

int cli_open(const struct cli_global *g, struct cli_client **out)
{
    char err[1024];
    int rc = cli_client_open(g, out, err, sizeof(err));
    if (rc != CLI_EXIT_OK) {
        return cli_fail(rc, err);
    }
    return CLI_EXIT_OK;
}

int cli_do(struct cli_client *c, const char *method, const char *path, const json_t *body,
           const char *what, long *status, json_t **reply, json_t **err_reply)
{
    char err[2048], msg[2300];
    long st = 0;
    json_t *r = NULL;
    if (reply != NULL) {
        *reply = NULL;
    }
    if (err_reply != NULL) {
        *err_reply = NULL;
    }
    int rc = cli_client_call(c, method, path, body, &st, &r, err, sizeof(err));
    if (rc != CLI_EXIT_OK) {
        snprintf(msg, sizeof(msg), "%s: %s", what, err);
        return cli_fail(rc, msg);
    }
    if (status != NULL) {
        *status = st;
    }
    if (st >= 200 && st < 300) {
        if (reply != NULL) {
            *reply = r;
        } else {
            json_decref(r);
        }
        return CLI_EXIT_OK;
    }
    rc = cli_client_error(st, r, what, err, sizeof(err));
    if (rc == CLI_EXIT_OK) {
        rc = CLI_EXIT_FAILURE; /* 1xx or 3xx: not an answer this client understands */
    }
    if (err_reply != NULL) {
        *err_reply = r;
        return rc;
    }
    json_decref(r);
    return cli_fail(rc, err);
}

int cli_get_all(struct cli_client *c, const char *path, const char *items_key, const char *next_key,
                const char *cursor_param, const char *what, json_t **out)
{
    json_t *all = json_array();
    char *cursor = NULL;
    int rc = CLI_EXIT_FAILURE;
    if (all == NULL) {
        return cli_fail(CLI_EXIT_FAILURE, "out of memory");
    }
    for (;;) {
        size_t len = strlen(path) + strlen(cursor_param) + (cursor ? strlen(cursor) : 0) + 32;
        char *url = malloc(len);
        if (url == NULL) {
            rc = cli_fail(CLI_EXIT_FAILURE, "out of memory");
            goto out;
        }
        const char *sep = strchr(path, '?') ? "&" : "?";
        if (cursor != NULL) {
            snprintf(url, len, "%s%slimit=1000&%s=%s", path, sep, cursor_param, cursor);
        } else {
            snprintf(url, len, "%s%slimit=1000", path, sep);
        }
        json_t *page = NULL;
        rc = cli_do(c, "GET", url, NULL, what, NULL, &page, NULL);
        free(url);
        if (rc != CLI_EXIT_OK) {
            goto out;
        }
        json_t *items = json_object_get(page, items_key);
        if (!json_is_array(items)) {
            json_decref(page);
            char msg[512];
            snprintf(msg, sizeof(msg), "%s: the answer has no \"%s\" list", what, items_key);
            rc = cli_fail(CLI_EXIT_FAILURE, msg);
            goto out;
        }
        json_array_extend(all, items);
        json_t *next = json_object_get(page, next_key);
        free(cursor);
        cursor = NULL;
        if (json_is_string(next)) {
            cursor = cli_urlencode(json_string_value(next));
        } else if (json_is_integer(next)) {
            char num[32];
            snprintf(num, sizeof(num), "%lld", (long long)json_integer_value(next));
            cursor = strdup(num);
        }
        json_decref(page);
        if (!json_is_string(next) && !json_is_integer(next)) {
            break;
        }
        if (cursor == NULL) {
            rc = cli_fail(CLI_EXIT_FAILURE, "out of memory");
            goto out;
        }
    }
    *out = json_pack("{s:O,s:n}", items_key, all, next_key);
    rc = *out ? CLI_EXIT_OK : cli_fail(CLI_EXIT_FAILURE, "out of memory");
out:
    free(cursor);
    json_decref(all);
    return rc;
}

const char *cli_need_project(const struct cli_global *g, const char *cmd)
{
    if (g->project == NULL || g->project[0] == '\0') {
        cli_usage_error(cmd, "no project: pass --project P or set CONCLAVE_PROJECT");
        return NULL;
    }
    return g->project;
}

int cli_bad_option(const char *cmd, char **argv)
{
    char msg[512];
    const char *word = optind > 0 ? argv[optind - 1] : "?";
    if (optopt != 0 && optopt != '?' && strncmp(word, "--", 2) != 0) {
        /* A short option: getopt knows its letter. */
        snprintf(msg, sizeof(msg), "option -%c is unknown or needs a value", optopt);
    } else {
        snprintf(msg, sizeof(msg), "option %s is unknown or needs a value", word);
    }
    return cli_usage_error(cmd, msg);
}

int cli_parse_int(const char *text, long long min, long long max, long long *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || v < min || v > max) {
        return -1;
    }
    *out = v;
    return 0;
}

int cli_read_json_input(const char *path, json_t **out, char *err, size_t errlen)
{
    FILE *f = stdin;
    const char *name = "standard input";
    *out = NULL;
    if (strcmp(path, "-") != 0) {
        name = path;
        f = fopen(path, "r");
        if (f == NULL) {
            int e = errno;
            snprintf(err, errlen, "cannot open %s: %s", path, strerror(e));
            return e == ENOENT ? CLI_EXIT_NOT_FOUND : CLI_EXIT_FAILURE;
        }
    }
    json_error_t jerr;
    json_t *v = json_loadf(f, JSON_DECODE_ANY, &jerr);
    int read_failed = ferror(f);
    if (f != stdin) {
        fclose(f);
    }
    if (v == NULL) {
        if (read_failed) {
            snprintf(err, errlen, "cannot read %s", name);
            return CLI_EXIT_FAILURE;
        }
        snprintf(err, errlen, "%s is not valid JSON (line %d, column %d: %s); fix it and retry",
                 name, jerr.line, jerr.column, jerr.text);
        return CLI_EXIT_INVALID;
    }
    *out = v;
    return CLI_EXIT_OK;
}

char *cli_project_path(const char *project, const char *suffix)
{
    char *p = cli_urlencode(project);
    if (p == NULL) {
        return NULL;
    }
    size_t len = strlen(p) + strlen(suffix) + 16;
    char *out = malloc(len);
    if (out != NULL) {
        snprintf(out, len, "/v1/projects/%s%s", p, suffix);
    }
    free(p);
    return out;
}

char *cli_config_path(const char *project, const char *key, const char *suffix)
{
    char *p = cli_urlencode(project);
    char *k = key ? cli_urlencode(key) : NULL;
    char *out = NULL;
    if (p != NULL && (key == NULL || k != NULL)) {
        size_t len = strlen(p) + (k ? strlen(k) : 0) + strlen(suffix) + 32;
        out = malloc(len);
        if (out != NULL) {
            snprintf(out, len, "/v1/projects/%s/configs%s%s%s", p, k ? "/" : "", k ? k : "",
                     suffix);
        }
    }
    free(p);
    free(k);
    return out;
}

int cli_call(const struct cli_global *g, const char *method, char *path, const json_t *body,
             const char *what, json_t **reply)
{
    struct cli_client *c = NULL;
    int rc = path == NULL ? cli_fail(CLI_EXIT_FAILURE, "out of memory") : cli_open(g, &c);
    if (rc == CLI_EXIT_OK) {
        rc = cli_do(c, method, path, body, what, NULL, reply, NULL);
    }
    cli_client_close(c);
    free(path);
    return rc;
}

int cli_list(const struct cli_global *g, char *path, const char *what, size_t n,
             const char *const *headers, const char *const *members, const size_t *widths,
             const char *empty)
{
    struct cli_client *c = NULL;
    json_t *all = NULL;
    int rc = path == NULL ? cli_fail(CLI_EXIT_FAILURE, "out of memory") : cli_open(g, &c);
    if (rc == CLI_EXIT_OK) {
        rc = cli_get_all(c, path, "items", "next_after", "after", what, &all);
    }
    if (rc == CLI_EXIT_OK) {
        if (g->json_output) {
            cli_print_json(all);
        } else {
            rc = cli_print_items(json_object_get(all, "items"), n, headers, members, widths, empty);
        }
    }
    json_decref(all);
    cli_client_close(c);
    free(path);
    return rc;
}

int cli_print_items(const json_t *items, size_t n, const char *const *headers,
                    const char *const *members, const size_t *widths, const char *empty)
{
    if (json_array_size(items) == 0) {
        puts(empty);
        return CLI_EXIT_OK;
    }
    struct cli_table *t = cli_table_new(n, headers);
    if (t == NULL) {
        return cli_fail(CLI_EXIT_FAILURE, "out of memory");
    }
    int rc = CLI_EXIT_OK;
    size_t i;
    const json_t *item;
    json_array_foreach(items, i, item)
    {
        char *cells[CLI_TABLE_MAX_COLS] = {NULL};
        int bad = 0;
        for (size_t col = 0; col < n; col++) {
            cells[col] = cli_cell(json_object_get(item, members[col]), widths ? widths[col] : 60);
            bad |= cells[col] == NULL;
        }
        if (bad || cli_table_add(t, (const char *const *)cells) != 0) {
            rc = cli_fail(CLI_EXIT_FAILURE, "out of memory");
        }
        for (size_t col = 0; col < n; col++) {
            free(cells[col]);
        }
        if (rc != CLI_EXIT_OK) {
            break;
        }
    }
    if (rc == CLI_EXIT_OK) {
        cli_table_print(t, stdout);
    }
    cli_table_free(t);
    return rc;
}

int cli_dispatch(const char *cmd, const struct cli_sub *subs, size_t n, struct cli_global *g,
                 int argc, char **argv)
{
    char known[256] = "";
    for (size_t i = 0; i < n; i++) {
        if (argc >= 2 && strcmp(argv[1], subs[i].name) == 0) {
            return subs[i].run(g, argc - 1, argv + 1);
        }
        size_t used = strlen(known);
        snprintf(known + used, sizeof(known) - used, "%s%s", i ? ", " : "", subs[i].name);
    }
    char msg[512];
    if (argc < 2) {
        snprintf(msg, sizeof(msg), "missing subcommand: one of %s", known);
    } else {
        snprintf(msg, sizeof(msg), "unknown subcommand \"%s\": expected one of %s", argv[1], known);
    }
    return cli_usage_error(cmd, msg);
}

int cli_parse_opts(const char *cmd, int argc, char **argv, size_t n, const char *const *names,
                   const char **values, int min_pos, int max_pos, const char *positional)
{
    struct option longopts[8];
    if (n >= sizeof(longopts) / sizeof(longopts[0])) {
        return cli_fail(CLI_EXIT_FAILURE, "internal error: too many options");
    }
    for (size_t i = 0; i < n; i++) {
        longopts[i] = (struct option){names[i], required_argument, NULL, 256 + (int)i};
        values[i] = NULL;
    }
    longopts[n] = (struct option){NULL, 0, NULL, 0};
    optind = 1;
    opterr = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        if (ch < 256 || ch >= 256 + (int)n) {
            return cli_bad_option(cmd, argv);
        }
        values[ch - 256] = optarg;
    }
    int pos = argc - optind;
    if (pos < min_pos || pos > max_pos) {
        char msg[300];
        snprintf(msg, sizeof(msg), "expected %s", positional);
        return cli_usage_error(cmd, msg);
    }
    return CLI_EXIT_OK;
}
