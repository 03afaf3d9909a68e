/*
 * cli_cmd_read: the config reads: get, list, history.
 */
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/cli_cmd.h"
#include "cli/cli_out.h"

enum { OPT_VERSION = 256, OPT_CONSISTENCY };

static int check_consistency(const char *cmd, const char *v)
{
    if (v != NULL && strcmp(v, "linearizable") != 0 && strcmp(v, "stale") != 0) {
        char msg[256];
        snprintf(msg, sizeof(msg), "--consistency \"%s\" should be linearizable or stale", v);
        return cli_usage_error(cmd, msg);
    }
    return CLI_EXIT_OK;
}

/* -o value: the content alone, as `jq -r .content` would print it: a string as its raw text
 * (so that $(conclave get k -o value) is the string), anything else as indented JSON. */
static void print_value(const json_t *content)
{
    if (json_is_string(content)) {
        fwrite(json_string_value(content), 1, json_string_length(content), stdout);
        fputc('\n', stdout);
    } else {
        cli_print_json(content ? content : json_null());
    }
}

static int run_get(struct cli_global *g, int argc, char **argv)
{
    static const struct option longopts[] = {
        {"version", required_argument, NULL, OPT_VERSION},
        {"consistency", required_argument, NULL, OPT_CONSISTENCY},
        {NULL, 0, NULL, 0}};
    long long version = 0;
    const char *consistency = NULL;
    int ch;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        if (ch == OPT_VERSION) {
            if (cli_parse_int(optarg, 1, INT64_MAX, &version) != 0) {
                return cli_usage_error("get", "--version needs a version number from 1");
            }
        } else if (ch == OPT_CONSISTENCY) {
            consistency = optarg;
        } else {
            return cli_bad_option("get", argv);
        }
    }
    if (optind + 1 != argc) {
        return cli_usage_error("get", "expected exactly one KEY");
    }
    if (check_consistency("get", consistency) != CLI_EXIT_OK) {
        return CLI_EXIT_USAGE;
    }
    if (version > 0 && consistency != NULL) {
        return cli_usage_error("get", "--version reads the audit log; it takes no --consistency");
    }
    const char *project = cli_need_project(g, "get");
    if (project == NULL) {
        return CLI_EXIT_USAGE;
    }
    const char *key = argv[optind];
    char suffix[128] = "", what[600];
    if (version > 0) {
        snprintf(suffix, sizeof(suffix), "?version=%lld", version);
        snprintf(what, sizeof(what), "get %s version %lld", key, version);
    } else {
        if (consistency != NULL) {
            snprintf(suffix, sizeof(suffix), "?consistency=%s", consistency);
        }
        snprintf(what, sizeof(what), "get %s", key);
    }
    struct cli_client *c = NULL;
    json_t *reply = NULL;
    char *path = cli_config_path(project, key, suffix);
    int rc = path ? cli_open(g, &c) : cli_fail(CLI_EXIT_FAILURE, "out of memory");
    if (rc == CLI_EXIT_OK) {
        rc = cli_do(c, "GET", path, NULL, what, NULL, &reply, NULL);
    }
    if (rc == CLI_EXIT_OK) {
        if (g->value_output) {
            print_value(json_object_get(reply, "content"));
        } else if (g->json_output) {
            cli_print_json(reply);
        } else {
            cli_print_field(reply, "key", "key:", 10);
            cli_print_field(reply, "version", "version:", 10);
            if (json_object_get(reply, "op") != NULL) {
                cli_print_field(reply, "op", "op:", 10);
                cli_print_field(reply, "revision", "revision:", 10);
                cli_print_field(reply, "created_at", "written:", 10);
                cli_print_field(reply, "actor", "by:", 10);
                cli_print_field(reply, "hash", "hash:", 10);
            } else {
                cli_print_field(reply, "revision", "revision:", 10);
                cli_print_field(reply, "updated_at", "updated:", 10);
                cli_print_field(reply, "updated_by", "by:", 10);
            }
            cli_print_field(reply, "schema_id", "schema:", 10);
            printf("content:\n");
            cli_print_json(json_object_get(reply, "content"));
        }
    }
    free(path);
    json_decref(reply);
    cli_client_close(c);
    return rc;
}

static int run_list(struct cli_global *g, int argc, char **argv)
{
    static const struct option longopts[] = {
        {"consistency", required_argument, NULL, OPT_CONSISTENCY}, {NULL, 0, NULL, 0}};
    const char *consistency = NULL;
    int ch;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        if (ch == OPT_CONSISTENCY) {
            consistency = optarg;
        } else {
            return cli_bad_option("list", argv);
        }
    }
    if (optind + 1 < argc) {
        return cli_usage_error("list", "expected at most one PREFIX");
    }
    if (check_consistency("list", consistency) != CLI_EXIT_OK) {
        return CLI_EXIT_USAGE;
    }
    const char *project = cli_need_project(g, "list");
    if (project == NULL) {
        return CLI_EXIT_USAGE;
    }
    const char *prefix = optind < argc ? argv[optind] : "";
    char *eprefix = cli_urlencode(prefix);
    char suffix[1200];
    snprintf(suffix, sizeof(suffix), "?prefix=%s%s%s", eprefix ? eprefix : "",
             consistency ? "&consistency=" : "", consistency ? consistency : "");
    free(eprefix);
    static const char *const headers[] = {"KEY", "VERSION", "REVISION", "UPDATED", "BY", "CONTENT"};
    static const char *const members[] = {"key",        "version",    "revision",
                                          "updated_at", "updated_by", "content"};
    static const size_t widths[] = {0, 0, 0, 0, 0, 40};
    return cli_list(g, cli_config_path(project, NULL, suffix), "list", 6, headers, members, widths,
                    prefix[0] ? "no live keys with that prefix" : "no live keys");
}

static int run_history(struct cli_global *g, int argc, char **argv)
{
    static const struct option longopts[] = {{NULL, 0, NULL, 0}};
    opterr = 0;
    if (getopt_long(argc, argv, "", longopts, NULL) != -1) {
        return cli_bad_option("history", argv);
    }
    if (optind + 1 != argc) {
        return cli_usage_error("history", "expected exactly one KEY");
    }
    const char *project = cli_need_project(g, "history");
    if (project == NULL) {
        return CLI_EXIT_USAGE;
    }
    const char *key = argv[optind];
    char what[600];
    snprintf(what, sizeof(what), "history %s", key);
    struct cli_client *c = NULL;
    json_t *all = NULL;
    char *path = cli_config_path(project, key, "/revisions");
    int rc = path ? cli_open(g, &c) : cli_fail(CLI_EXIT_FAILURE, "out of memory");
    if (rc == CLI_EXIT_OK) {
        rc = cli_get_all(c, path, "items", "next_after_version", "after_version", what, &all);
    }
    if (rc != CLI_EXIT_OK) {
        goto out;
    }
    if (json_array_size(json_object_get(all, "items")) == 0) {
        /* The server lists nothing for a key that never existed: say so like get does. */
        snprintf(what, sizeof(what), "history %s: no such key in project %s", key, project);
        rc = cli_fail(CLI_EXIT_NOT_FOUND, what);
        goto out;
    }
    if (g->json_output) {
        cli_print_json(all);
        goto out;
    }
    /* The op column says which version a rollback copied. */
    size_t i;
    json_t *item;
    json_array_foreach(json_object_get(all, "items"), i, item)
    {
        char op[64];
        json_t *src = json_object_get(item, "source_version");
        snprintf(op, sizeof(op), "%s", json_string_value(json_object_get(item, "op")));
        if (json_is_integer(src)) {
            snprintf(op, sizeof(op), "rollback to %lld", (long long)json_integer_value(src));
        }
        json_object_set_new(item, "op_text", json_string(op));
    }
    static const char *const headers[] = {"VERSION", "OP", "REVISION", "WRITTEN", "BY", "CONTENT"};
    static const char *const members[] = {"version",    "op_text", "revision",
                                          "created_at", "actor",   "content"};
    static const size_t widths[] = {0, 0, 0, 0, 0, 40};
    rc = cli_print_items(json_object_get(all, "items"), 6, headers, members, widths, "");
out:
    free(path);
    json_decref(all);
    cli_client_close(c);
    return rc;
}

const struct cli_command cli_cmd_get = {
    "get", "read a config",
    "usage: conclave get KEY [--version N | --consistency linearizable|stale] --project P\n"
    "\n"
    "Prints KEY's version, revision, last writer and content (pretty-printed JSON).\n"
    "  --version N       version N from the audit log (also a deleted key's versions)\n"
    "  --consistency C   linearizable (default: through the leader) or stale (this node)\n"
    "With -o json prints the server's answer; its \"content\" member is the document.\n"
    "\n"
    "example:\n"
    "  conclave get app.db --project shop\n"
    "  conclave get app.db --project shop -o json | jq .content\n",
    run_get};

const struct cli_command cli_cmd_list = {
    "list", "list the live configs of a project",
    "usage: conclave list [PREFIX] [--consistency linearizable|stale] --project P\n"
    "\n"
    "Lists the live keys (starting with PREFIX) in byte order, every page. With -o json\n"
    "prints {\"items\": [...], \"next_after\": null} holding every page's items.\n"
    "\n"
    "example:\n"
    "  conclave list app. --project shop\n",
    run_list};

const struct cli_command cli_cmd_history = {
    "history", "list every version of a config",
    "usage: conclave history KEY --project P\n"
    "\n"
    "Lists KEY's versions from the audit log, oldest first: op (put, delete, rollback to N),\n"
    "revision, time, writer and content. With -o json prints {\"items\": [...],\n"
    "\"next_after_version\": null} holding every page's items. A key without any version\n"
    "exits 3.\n"
    "\n"
    "example:\n"
    "  conclave history app.db --project shop\n",
    run_history};
