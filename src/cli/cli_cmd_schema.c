/*
 * cli_cmd_schema: `conclave schema`, the instance-wide catalog of JSON Schemas that configs
 * can be bound to (put --schema ID).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonschema/jsonschema.h"

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
    const json_t *fa = json_object_get(s, "format_assertion");
    if (json_is_boolean(fa)) {
        printf("%-9s %s\n", "format:", json_is_true(fa) ? "asserted" : "annotation");
    }
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

/* The options of schema create and update. format_assertion: -1 not given, 0 off, 1 on. */
struct schema_opts {
    const char *name;
    bool strict;
    int format_assertion;
};

/* Parses the options of `schema SUB` (create or update: only update takes --name and
 * --no-format-assertion) and checks that MIN_POS to MAX_POS positional arguments follow;
 * USAGE names them. Returns CLI_EXIT_OK or the exit code of the usage error it printed. */
static int parse_schema_opts(const char *sub, int argc, char **argv, int min_pos, int max_pos,
                             const char *usage, struct schema_opts *o)
{
    enum { OPT_NAME = 256, OPT_STRICT, OPT_FORMAT, OPT_NO_FORMAT };
    const bool update = strcmp(sub, "update") == 0;
    static const struct option longopts[] = {
        {"strict", no_argument, NULL, OPT_STRICT},
        {"format-assertion", no_argument, NULL, OPT_FORMAT},
        {"name", required_argument, NULL, OPT_NAME},
        {"no-format-assertion", no_argument, NULL, OPT_NO_FORMAT},
        {NULL, 0, NULL, 0}};
    *o = (struct schema_opts){.format_assertion = -1};
    optind = 1;
    opterr = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        if (ch == OPT_STRICT) {
            o->strict = true;
        } else if (ch == OPT_FORMAT || (update && ch == OPT_NO_FORMAT)) {
            int on = ch == OPT_FORMAT;
            if (o->format_assertion != -1 && o->format_assertion != on) {
                return cli_usage_error("schema", "--format-assertion and --no-format-assertion "
                                                 "contradict each other: give one");
            }
            o->format_assertion = on;
        } else if (update && ch == OPT_NAME) {
            o->name = optarg;
        } else {
            return cli_bad_option("schema", argv);
        }
    }
    int pos = argc - optind;
    if (pos < min_pos || pos > max_pos) {
        char msg[300];
        snprintf(msg, sizeof(msg), "expected %s", usage);
        return cli_usage_error("schema", msg);
    }
    return CLI_EXIT_OK;
}

/* Adds the options of O that were given to BODY (a JSON object). Returns 0, or -1 when out of
 * memory. */
static int add_schema_opts(json_t *body, const struct schema_opts *o)
{
    if (o->strict && json_object_set_new(body, "strict", json_true()) != 0) {
        return -1;
    }
    if (o->format_assertion != -1 &&
        json_object_set_new(body, "format_assertion", json_boolean(o->format_assertion)) != 0) {
        return -1;
    }
    if (o->name != NULL && json_object_set_new(body, "name", json_string(o->name)) != 0) {
        return -1;
    }
    return 0;
}

static int schema_create(struct cli_global *g, int argc, char **argv)
{
    struct schema_opts o;
    int rc = parse_schema_opts("create", argc, argv, 1, 2,
                               "schema create NAME [FILE|-] [--strict] [--format-assertion]", &o);
    if (rc != CLI_EXIT_OK) {
        return rc;
    }
    const char *name = argv[optind], *file = optind + 1 < argc ? argv[optind + 1] : "-";
    json_t *content = NULL, *reply = NULL;
    if ((rc = read_schema(file, &content)) != CLI_EXIT_OK) {
        return rc;
    }
    json_t *body = json_pack("{s:s,s:o}", "name", name, "schema_content", content);
    if (body == NULL || add_schema_opts(body, &o) != 0) {
        json_decref(body);
        return cli_fail(CLI_EXIT_FAILURE, "out of memory");
    }
    char what[300];
    snprintf(what, sizeof(what), "schema create %s", name);
    rc = cli_call(g, "POST", strdup("/v1/schemas"), body, what, &reply);
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
    struct schema_opts o;
    int rc = parse_schema_opts("update", argc, argv, 1, 2,
                               "schema update ID [FILE|-] [--name NAME] [--strict] "
                               "[--format-assertion|--no-format-assertion]",
                               &o);
    if (rc != CLI_EXIT_OK) {
        return rc;
    }
    const char *id = argv[optind], *file = optind + 1 < argc ? argv[optind + 1] : NULL;
    if (file == NULL && o.strict) {
        return cli_usage_error("schema", "--strict checks new schema content: give a FILE");
    }
    if (file == NULL && o.name == NULL && o.format_assertion == -1) {
        return cli_usage_error("schema", "schema update needs a FILE, --name, "
                                         "--format-assertion or --no-format-assertion");
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
        add_schema_opts(body, &o) != 0) {
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
            printf("updated schema %s: hash %s, format %s (configs are checked against it on "
                   "their next write)\n",
                   id, json_string_value(json_object_get(reply, "schema_hash")),
                   json_is_true(json_object_get(reply, "format_assertion")) ? "asserted"
                                                                            : "annotation");
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

/* The name schema check --at gives the schema file, for the resolver below. */
#define CHECK_URI "urn:conclave:schema-check-file"

static json_t *serve_file(const char *uri, void *file)
{
    return strcmp(uri, CHECK_URI) == 0 ? json_incref((json_t *)file) : NULL;
}

/* `schema check SCHEMA DOC...`: validates documents against a schema file here, with the
 * validator the nodes run, without a server (docs/cli.md). --at POINTER picks a subschema of
 * the file (an OpenAPI document's components, a bundle's $defs); references inside the file
 * still resolve. */
static int schema_check(struct cli_global *g, int argc, char **argv)
{
    enum { OPT_AT = 256, OPT_STRICT, OPT_FORMAT };
    static const struct option longopts[] = {{"at", required_argument, NULL, OPT_AT},
                                             {"strict", no_argument, NULL, OPT_STRICT},
                                             {"format-assertion", no_argument, NULL, OPT_FORMAT},
                                             {NULL, 0, NULL, 0}};
    const char *at = NULL;
    struct jsonschema_options opts = {0};
    int ch;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        if (ch == OPT_AT) {
            at = optarg;
        } else if (ch == OPT_STRICT) {
            opts.strict = true;
        } else if (ch == OPT_FORMAT) {
            opts.format_assertion = true;
        } else {
            return cli_bad_option("schema", argv);
        }
    }
    if (argc - optind < 2) {
        return cli_usage_error("schema", "schema check needs a SCHEMA file and at least one "
                                         "DOCUMENT file (- for standard input)");
    }
    if (at != NULL && at[0] != '\0' && at[0] != '/') {
        return cli_usage_error("schema", "--at takes a JSON Pointer such as /$defs/port");
    }
    json_t *schema = NULL, *schema_file = NULL;
    int rc = read_schema(argv[optind], &schema);
    if (rc != CLI_EXIT_OK) {
        return rc;
    }
    if (at != NULL) {
        /* The file is served as a document of its own under CHECK_URI, and the schema is just
         * a reference to the pointer in it: the file's root keywords do not apply, and its
         * internal references resolve within it. */
        char ref[1100];
        snprintf(ref, sizeof(ref), "%s#%s", CHECK_URI, at);
        opts.resolver = serve_file;
        opts.resolver_data = schema;
        json_t *wrapper = json_pack("{s:s}", "$ref", ref);
        schema_file = schema;
        schema = wrapper;
    }
    struct jsonschema *compiled = NULL;
    char err[1024];
    int crc = jsonschema_compile_ex(schema, &opts, &compiled, err, sizeof(err));
    json_decref(schema_file);
    if (crc != 0) {
        json_decref(schema);
        char msg[1200];
        snprintf(msg, sizeof(msg), "schema check: %s is not a usable schema: %s", argv[optind],
                 err);
        return cli_fail(CLI_EXIT_INVALID, msg);
    }
    json_decref(schema);
    json_t *report = json_array();
    int worst = CLI_EXIT_OK;
    for (int i = optind + 1; i < argc; i++) {
        json_t *doc = NULL;
        char derr[1024];
        int r = cli_read_json_input(argv[i], &doc, derr, sizeof(derr));
        if (r != CLI_EXIT_OK) {
            jsonschema_free(compiled);
            json_decref(report);
            return cli_fail(r, derr);
        }
        json_t *errors = NULL;
        int v = jsonschema_validate(compiled, doc, &errors);
        json_decref(doc);
        if (v != 0 && v != JSONSCHEMA_INVALID) {
            jsonschema_free(compiled);
            json_decref(report);
            json_decref(errors);
            return cli_fail(CLI_EXIT_FAILURE, "schema check: out of memory");
        }
        if (v == JSONSCHEMA_INVALID) {
            worst = CLI_EXIT_INVALID;
        }
        if (!g->json_output) {
            printf("%s: %s\n", argv[i], v == 0 ? "valid" : "invalid");
            size_t k;
            json_t *e;
            json_array_foreach(errors, k, e)
            {
                const char *path = json_string_value(json_object_get(e, "path"));
                printf("  at %s: %s (%s)\n", path && path[0] ? path : "the root",
                       json_string_value(json_object_get(e, "message")),
                       json_string_value(json_object_get(e, "keyword")));
            }
        }
        json_array_append_new(report, json_pack("{s:s,s:b,s:o}", "file", argv[i], "valid", v == 0,
                                                "errors", errors ? errors : json_array()));
    }
    jsonschema_free(compiled);
    if (g->json_output) {
        cli_print_json(report);
    }
    json_decref(report);
    return worst;
}

static int run_schema(struct cli_global *g, int argc, char **argv)
{
    static const struct cli_sub subs[] = {{"create", schema_create}, {"get", schema_get},
                                          {"list", schema_list},     {"update", schema_update},
                                          {"delete", schema_delete}, {"check", schema_check}};
    return cli_dispatch("schema", subs, 6, g, argc, argv);
}

const struct cli_command cli_cmd_schema = {
    "schema", "create, show, list, update and delete JSON Schemas",
    "usage: conclave schema create NAME [FILE|-] [--strict] [--format-assertion]\n"
    "       conclave schema get ID\n"
    "       conclave schema list\n"
    "       conclave schema update ID [FILE|-] [--name NAME] [--strict]\n"
    "                              [--format-assertion|--no-format-assertion]\n"
    "       conclave schema delete ID\n"
    "       conclave schema check SCHEMA_FILE DOC_FILE... [--at POINTER] [--strict]\n"
    "                             [--format-assertion]\n"
    "\n"
    "check validates documents against a schema file here, with the nodes' validator and no\n"
    "server: exit 0 when every document is valid, 7 naming each failure otherwise; --at picks\n"
    "the subschema at a JSON Pointer of the file (e.g. /components/schemas/Config).\n"
    "\n"
    "Schemas are shared by every project of the cluster, so they must not hold secrets; only\n"
    "their creator or an instance admin changes or deletes them. The file (standard input\n"
    "when FILE is - or missing) holds the schema as JSON; a schema the server cannot compile\n"
    "exits 7 naming the faulty place. A schema still bound to a config cannot be deleted\n"
    "(exit 4). --strict refuses keywords the schema's dialect does not know (ignored by\n"
    "default); --format-assertion makes \"format\" refuse invalid strings (by default it is an\n"
    "annotation). docs/jsonschema.md lists the supported keywords.\n"
    "\n"
    "example:\n"
    "  echo '{\"type\": \"object\", \"required\": [\"pool\"]}' | conclave schema create "
    "db-config\n",
    run_schema};
