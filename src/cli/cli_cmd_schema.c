/*
 * cli_cmd_schema: `conclave schema`, the instance-wide catalog of JSON Schemas that configs
 * can be bound to (put --schema ID).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/cli_cmd.h"
#include "cli/cli_out.h"

/* "/v1/schemas/ID" with ID percent-encoded, in a new string (NULL when out of memory). */
static char *schema_path(const char *id)
{
    char *e = cli_urlencode(id);
    if (e == NULL) {
        return NULL;
    }
    size_t len = strlen(e) + 16;
    char *out = malloc(len);
    if (out != NULL) {
        snprintf(out, len, "/v1/schemas/%s", e);
    }
    free(e);
    return out;
}

/* Prints a schema reply as fields and its content, or as JSON. */
static void print_schema(const struct cli_global *g, const json_t *s)
{
    if (g->json_output) {
        cli_print_json(s);
        return;
    }
    cli_print_field(s, "id", "id:", 9);
    cli_print_field(s, "name", "name:", 9);
    cli_print_field(s, "schema_hash", "hash:", 9);
    cli_print_field(s, "updated_at", "updated:", 9);
    json_t *content = json_object_get(s, "schema_content");
    if (content != NULL) {
        printf("schema:\n");
        cli_print_json(content);
    }
}

/* Reads the schema document in FILE ("-": standard input) into *OUT, or prints why not. */
static int read_schema(const char *file, json_t **out)
{
    char err[1024];
    int rc = cli_read_json_input(file, out, err, sizeof(err));
    return rc == CLI_EXIT_OK ? rc : cli_fail(rc, err);
}

static int schema_create(struct cli_global *g, int argc, char **argv)
{
    int rc =
        cli_parse_opts("schema", argc, argv, 0, NULL, NULL, 1, 2, "schema create NAME [FILE|-]");
    if (rc != CLI_EXIT_OK) {
        return rc;
    }
    const char *name = argv[optind], *file = optind + 1 < argc ? argv[optind + 1] : "-";
    json_t *content = NULL, *reply = NULL;
    if ((rc = read_schema(file, &content)) != CLI_EXIT_OK) {
        return rc;
    }
    json_t *body = json_pack("{s:s,s:o}", "name", name, "schema_content", content);
    char what[300];
    snprintf(what, sizeof(what), "schema create %s", name);
    rc = body ? cli_call(g, "POST", strdup("/v1/schemas"), body, what, &reply)
              : cli_fail(CLI_EXIT_FAILURE, "out of memory");
    json_decref(body);
    if (rc == CLI_EXIT_OK) {
        if (g->json_output) {
            cli_print_json(reply);
        } else {
            printf("created schema %s (%s); bind a config to it with \"conclave put KEY FILE "
                   "--schema %s\"\n",
                   json_string_value(json_object_get(reply, "id")), name,
                   json_string_value(json_object_get(reply, "id")));
        }
    }
    json_decref(reply);
    return rc;
}

static int schema_update(struct cli_global *g, int argc, char **argv)
{
    static const char *const names[] = {"name"};
    const char *v[1];
    int rc = cli_parse_opts("schema", argc, argv, 1, names, v, 1, 2,
                            "schema update ID [FILE|-] [--name NAME]");
    if (rc != CLI_EXIT_OK) {
        return rc;
    }
    const char *id = argv[optind], *file = optind + 1 < argc ? argv[optind + 1] : NULL;
    if (file == NULL && v[0] == NULL) {
        return cli_usage_error("schema", "schema update needs a FILE, --name, or both");
    }
    json_t *body = json_object(), *content = NULL, *reply = NULL;
    if (body == NULL) {
        return cli_fail(CLI_EXIT_FAILURE, "out of memory");
    }
    if (file != NULL && (rc = read_schema(file, &content)) != CLI_EXIT_OK) {
        json_decref(body);
        return rc;
    }
    if ((content != NULL && json_object_set_new(body, "schema_content", content) != 0) ||
        (v[0] != NULL && json_object_set_new(body, "name", json_string(v[0])) != 0)) {
        json_decref(body);
        return cli_fail(CLI_EXIT_FAILURE, "out of memory");
    }
    char what[300];
    snprintf(what, sizeof(what), "schema update %s", id);
    rc = cli_call(g, "PUT", schema_path(id), body, what, &reply);
    json_decref(body);
    if (rc == CLI_EXIT_OK) {
        if (g->json_output) {
            cli_print_json(reply);
        } else {
            printf("updated schema %s: hash %s (configs are checked against it on their next "
                   "write)\n",
                   id, json_string_value(json_object_get(reply, "schema_hash")));
        }
    }
    json_decref(reply);
    return rc;
}

static int schema_get(struct cli_global *g, int argc, char **argv)
{
    int rc = cli_parse_opts("schema", argc, argv, 0, NULL, NULL, 1, 1, "schema get ID");
    if (rc != CLI_EXIT_OK) {
        return rc;
    }
    char what[300];
    snprintf(what, sizeof(what), "schema get %s", argv[optind]);
    json_t *reply = NULL;
    rc = cli_call(g, "GET", schema_path(argv[optind]), NULL, what, &reply);
    if (rc == CLI_EXIT_OK) {
        print_schema(g, reply);
    }
    json_decref(reply);
    return rc;
}

static int schema_list(struct cli_global *g, int argc, char **argv)
{
    int rc = cli_parse_opts("schema", argc, argv, 0, NULL, NULL, 0, 0, "schema list");
    if (rc != CLI_EXIT_OK) {
        return rc;
    }
    static const char *const headers[] = {"ID", "NAME", "HASH", "UPDATED"};
    static const char *const members[] = {"id", "name", "schema_hash", "updated_at"};
    return cli_list(g, strdup("/v1/schemas"), "schema list", 4, headers, members, NULL,
                    "no schemas (create one with \"conclave schema create\")");
}

static int schema_delete(struct cli_global *g, int argc, char **argv)
{
    int rc = cli_parse_opts("schema", argc, argv, 0, NULL, NULL, 1, 1, "schema delete ID");
    if (rc != CLI_EXIT_OK) {
        return rc;
    }
    char what[300];
    snprintf(what, sizeof(what), "schema delete %s", argv[optind]);
    rc = cli_call(g, "DELETE", schema_path(argv[optind]), NULL, what, NULL);
    if (rc == CLI_EXIT_OK && !g->json_output) {
        printf("deleted schema %s\n", argv[optind]);
    }
    return rc;
}

static int run_schema(struct cli_global *g, int argc, char **argv)
{
    static const struct cli_sub subs[] = {{"create", schema_create},
                                          {"get", schema_get},
                                          {"list", schema_list},
                                          {"update", schema_update},
                                          {"delete", schema_delete}};
    return cli_dispatch("schema", subs, 5, g, argc, argv);
}

const struct cli_command cli_cmd_schema = {
    "schema", "create, show, list, update and delete JSON Schemas",
    "usage: conclave schema create NAME [FILE|-]\n"
    "       conclave schema get ID\n"
    "       conclave schema list\n"
    "       conclave schema update ID [FILE|-] [--name NAME]\n"
    "       conclave schema delete ID\n"
    "\n"
    "Schemas are shared by every project of the cluster, so they must not hold secrets; only\n"
    "their creator or an instance admin changes or deletes them. The file (standard input\n"
    "when FILE is - or missing) holds the schema as JSON; a schema the server cannot compile\n"
    "exits 7 naming the faulty place. A schema still bound to a config cannot be deleted\n"
    "(exit 4). docs/jsonschema.md lists the supported keywords.\n"
    "\n"
    "example:\n"
    "  echo '{\"type\": \"object\", \"required\": [\"pool\"]}' | conclave schema create "
    "db-config\n",
    run_schema};
