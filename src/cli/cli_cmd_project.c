/*
 * cli_cmd_project: the administration of projects: `project`, `role` and `apikey`. Every
 * subcommand is one API call (role revoke by email adds a lookup), printed as a table or, with
 * -o json, as the server's JSON.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli/cli.h"
#include "cli/cli_cmd.h"
#include "cli/cli_out.h"

/* Prints REPLY as JSON or MESSAGE (NULL: nothing), and releases REPLY. */
static int done(struct cli_global *g, json_t *reply, const char *message)
{
    if (g->json_output && reply != NULL) {
        cli_print_json(reply);
    } else if (message != NULL) {
        puts(message);
    }
    json_decref(reply);
    return CLI_EXIT_OK;
}

/* ---- project ---------------------------------------------------------------------------- */

static int project_create(struct cli_global *g, int argc, char **argv)
{
    static const char *const names[] = {"name"};
    const char *v[1];
    int rc = cli_parse_opts("project", argc, argv, 1, names, v, 1, 1, "project create ID");
    if (rc != CLI_EXIT_OK) {
        return rc;
    }
    const char *id = argv[optind];
    json_t *body = json_pack("{s:s,s:s}", "id", id, "name", v[0] ? v[0] : id);
    json_t *reply = NULL;
    char what[300];
    snprintf(what, sizeof(what), "project create %s", id);
    rc = body ? cli_call(g, "POST", strdup("/v1/projects"), body, what, &reply)
              : cli_fail(CLI_EXIT_FAILURE, "out of memory");
    json_decref(body);
    if (rc != CLI_EXIT_OK) {
        return rc;
    }
    if (g->json_output) {
        return done(g, reply, NULL);
    }
    json_t *key = json_object_get(reply, "api_key");
    printf("created project %s; you are its admin\n", id);
    printf("its first API key (shown only now; keep it somewhere safe):\n  %s\n",
           json_string_value(json_object_get(key, "key")));
    json_decref(reply);
    return CLI_EXIT_OK;
}

static int project_list(struct cli_global *g, int argc, char **argv)
{
    int rc = cli_parse_opts("project", argc, argv, 0, NULL, NULL, 0, 0, "project list");
    if (rc != CLI_EXIT_OK) {
        return rc;
    }
    static const char *const headers[] = {"ID", "NAME", "ROLE", "CREATED"};
    static const char *const members[] = {"id", "name", "role", "created_at"};
    return cli_list(g, strdup("/v1/projects"), "project list", 4, headers, members, NULL,
                    "no projects (create one with \"conclave project create ID\")");
}

static int project_delete(struct cli_global *g, int argc, char **argv)
{
    int rc = cli_parse_opts("project", argc, argv, 0, NULL, NULL, 1, 1, "project delete ID");
    if (rc != CLI_EXIT_OK) {
        return rc;
    }
    const char *id = argv[optind];
    char what[300], msg[400];
    snprintf(what, sizeof(what), "project delete %s", id);
    snprintf(msg, sizeof(msg), "deleted project %s (its revisions are kept)", id);
    json_t *reply = NULL;
    rc = cli_call(g, "DELETE", cli_project_path(id, ""), NULL, what, &reply);
    return rc == CLI_EXIT_OK ? done(g, reply, msg) : rc;
}

static int run_project(struct cli_global *g, int argc, char **argv)
{
    static const struct cli_sub subs[] = {
        {"create", project_create}, {"list", project_list}, {"delete", project_delete}};
    return cli_dispatch("project", subs, 3, g, argc, argv);
}

const struct cli_command cli_cmd_project = {
    "project", "create, list and delete projects",
    "usage: conclave project create ID [--name NAME]\n"
    "       conclave project list\n"
    "       conclave project delete ID\n"
    "\n"
    "create makes a project (ID: 1 to 63 of a-z, 0-9 and inner -) with you as its admin and\n"
    "prints its first API key, which is shown only this once. list shows the projects you have\n"
    "a role in, with that role. delete needs the admin role; the project's keys stop working,\n"
    "its revisions are kept and its id is never used again.\n"
    "\n"
    "example:\n"
    "  conclave project create shop --name \"Shop backend\"\n",
    run_project};

/* ---- role ------------------------------------------------------------------------------- */

static bool is_email(const char *user)
{
    return strchr(user, '@') != NULL;
}

static int role_grant(struct cli_global *g, int argc, char **argv)
{
    int rc = cli_parse_opts("role", argc, argv, 0, NULL, NULL, 2, 2,
                            "role grant USER admin|editor|viewer (USER: an email or a user id)");
    if (rc != CLI_EXIT_OK) {
        return rc;
    }
    const char *project = cli_need_project(g, "role");
    if (project == NULL) {
        return CLI_EXIT_USAGE;
    }
    const char *user = argv[optind], *role = argv[optind + 1];
    if (strcmp(role, "admin") != 0 && strcmp(role, "editor") != 0 && strcmp(role, "viewer") != 0) {
        char msg[300];
        snprintf(msg, sizeof(msg), "role \"%s\" should be admin, editor or viewer", role);
        return cli_usage_error("role", msg);
    }
    json_t *body =
        json_pack("{s:s,s:s}", is_email(user) ? "email" : "user_id", user, "role_level", role);
    json_t *reply = NULL;
    char what[400], msg[500];
    snprintf(what, sizeof(what), "role grant %s %s", user, role);
    snprintf(msg, sizeof(msg), "%s is now %s of project %s", user, role, project);
    rc = body ? cli_call(g, "POST", cli_project_path(project, "/roles"), body, what, &reply)
              : cli_fail(CLI_EXIT_FAILURE, "out of memory");
    json_decref(body);
    return rc == CLI_EXIT_OK ? done(g, reply, msg) : rc;
}

/* Finds the user id of EMAIL among the roles of PROJECT into ID. */
static int role_user_id(struct cli_client *c, const char *project, const char *email,
                        const char *what, char *id, size_t idlen)
{
    json_t *all = NULL;
    char *path = cli_project_path(project, "/roles");
    int rc = path ? cli_get_all(c, path, "items", "next_after", "after", what, &all)
                  : cli_fail(CLI_EXIT_FAILURE, "out of memory");
    free(path);
    if (rc != CLI_EXIT_OK) {
        return rc;
    }
    size_t i;
    json_t *item;
    rc = CLI_EXIT_NOT_FOUND;
    json_array_foreach(json_object_get(all, "items"), i, item)
    {
        const char *e = json_string_value(json_object_get(item, "email"));
        if (e != NULL && strcasecmp(e, email) == 0) {
            snprintf(id, idlen, "%s", json_string_value(json_object_get(item, "user_id")));
            rc = CLI_EXIT_OK;
            break;
        }
    }
    json_decref(all);
    if (rc != CLI_EXIT_OK) {
        char msg[600];
        snprintf(msg, sizeof(msg), "%s: %s has no role in project %s (\"conclave role list\")",
                 what, email, project);
        return cli_fail(rc, msg);
    }
    return CLI_EXIT_OK;
}

static int role_revoke(struct cli_global *g, int argc, char **argv)
{
    int rc = cli_parse_opts("role", argc, argv, 0, NULL, NULL, 1, 1,
                            "role revoke USER (an email or a user id)");
    if (rc != CLI_EXIT_OK) {
        return rc;
    }
    const char *project = cli_need_project(g, "role");
    if (project == NULL) {
        return CLI_EXIT_USAGE;
    }
    const char *user = argv[optind];
    char what[400], msg[500], id[64];
    snprintf(what, sizeof(what), "role revoke %s", user);
    snprintf(msg, sizeof(msg), "%s has no role in project %s any more", user, project);
    struct cli_client *c = NULL;
    if ((rc = cli_open(g, &c)) != CLI_EXIT_OK) {
        return rc;
    }
    snprintf(id, sizeof(id), "%s", user);
    if (is_email(user)) {
        rc = role_user_id(c, project, user, what, id, sizeof(id));
    }
    char *eid = rc == CLI_EXIT_OK ? cli_urlencode(id) : NULL;
    char *path = NULL;
    if (rc == CLI_EXIT_OK) {
        char suffix[200];
        snprintf(suffix, sizeof(suffix), "/roles/%s", eid ? eid : "");
        path = eid ? cli_project_path(project, suffix) : NULL;
        rc = path ? cli_do(c, "DELETE", path, NULL, what, NULL, NULL, NULL)
                  : cli_fail(CLI_EXIT_FAILURE, "out of memory");
    }
    free(eid);
    free(path);
    cli_client_close(c);
    return rc == CLI_EXIT_OK ? done(g, NULL, msg) : rc;
}

static int role_list(struct cli_global *g, int argc, char **argv)
{
    int rc = cli_parse_opts("role", argc, argv, 0, NULL, NULL, 0, 0, "role list");
    if (rc != CLI_EXIT_OK) {
        return rc;
    }
    const char *project = cli_need_project(g, "role");
    if (project == NULL) {
        return CLI_EXIT_USAGE;
    }
    static const char *const headers[] = {"EMAIL", "ROLE", "USER ID", "SINCE"};
    static const char *const members[] = {"email", "role_level", "user_id", "created_at"};
    return cli_list(g, cli_project_path(project, "/roles"), "role list", 4, headers, members, NULL,
                    "no roles");
}

static int run_role(struct cli_global *g, int argc, char **argv)
{
    static const struct cli_sub subs[] = {
        {"grant", role_grant}, {"revoke", role_revoke}, {"list", role_list}};
    return cli_dispatch("role", subs, 3, g, argc, argv);
}

const struct cli_command cli_cmd_role = {
    "role", "grant, revoke and list the roles of a project",
    "usage: conclave role grant USER admin|editor|viewer --project P\n"
    "       conclave role revoke USER --project P\n"
    "       conclave role list --project P\n"
    "\n"
    "USER is the user's email or id. viewer reads configs, editor also writes them, admin also\n"
    "manages roles and API keys and may delete the project. Granting replaces the user's role;\n"
    "a project always keeps one admin (taking away the last one exits 4). Needs the admin\n"
    "role.\n"
    "\n"
    "example:\n"
    "  conclave role grant bob@example.com editor --project shop\n",
    run_role};

/* ---- apikey ----------------------------------------------------------------------------- */

static int apikey_create(struct cli_global *g, int argc, char **argv)
{
    static const char *const names[] = {"name", "scope", "config-prefix"};
    const char *v[3];
    int rc = cli_parse_opts("apikey", argc, argv, 3, names, v, 0, 0,
                            "apikey create [--name N] [--scope read|read-write] "
                            "[--config-prefix P]");
    if (rc != CLI_EXIT_OK) {
        return rc;
    }
    const char *project = cli_need_project(g, "apikey");
    if (project == NULL) {
        return CLI_EXIT_USAGE;
    }
    if (v[1] != NULL && strcmp(v[1], "read") != 0 && strcmp(v[1], "read-write") != 0) {
        return cli_usage_error("apikey", "--scope must be read or read-write");
    }
    json_t *body = json_object();
    if (body != NULL && v[0] != NULL) {
        json_object_set_new(body, "name", json_string(v[0]));
    }
    if (body != NULL && v[1] != NULL) {
        json_object_set_new(body, "scope", json_string(v[1]));
    }
    if (body != NULL && v[2] != NULL) {
        json_object_set_new(body, "config_prefix", json_string(v[2]));
    }
    json_t *reply = NULL;
    rc = body ? cli_call(g, "POST", cli_project_path(project, "/api-keys"), body, "apikey create",
                         &reply)
              : cli_fail(CLI_EXIT_FAILURE, "out of memory");
    json_decref(body);
    if (rc != CLI_EXIT_OK || g->json_output) {
        return rc == CLI_EXIT_OK ? done(g, reply, NULL) : rc;
    }
    const char *cp = json_string_value(json_object_get(reply, "config_prefix"));
    printf("created %s API key %s for project %s%s%s%s (shown only now; keep it somewhere "
           "safe):\n  %s\n",
           json_string_value(json_object_get(reply, "scope")),
           json_string_value(json_object_get(reply, "id")), project,
           cp != NULL ? ", configs under \"" : "", cp != NULL ? cp : "", cp != NULL ? "\"" : "",
           json_string_value(json_object_get(reply, "key")));
    json_decref(reply);
    return CLI_EXIT_OK;
}

static int apikey_list(struct cli_global *g, int argc, char **argv)
{
    int rc = cli_parse_opts("apikey", argc, argv, 0, NULL, NULL, 0, 0, "apikey list");
    if (rc != CLI_EXIT_OK) {
        return rc;
    }
    const char *project = cli_need_project(g, "apikey");
    if (project == NULL) {
        return CLI_EXIT_USAGE;
    }
    static const char *const headers[] = {"ID",      "PREFIX",  "NAME",   "SCOPE",
                                          "CONFIGS", "CREATED", "REVOKED"};
    static const char *const members[] = {
        "id", "prefix", "name", "scope", "config_prefix", "created_at", "revoked_at"};
    return cli_list(g, cli_project_path(project, "/api-keys"), "apikey list", 7, headers, members,
                    NULL, "no API keys");
}

static int apikey_revoke(struct cli_global *g, int argc, char **argv)
{
    int rc = cli_parse_opts("apikey", argc, argv, 0, NULL, NULL, 1, 1, "apikey revoke KEY_ID");
    if (rc != CLI_EXIT_OK) {
        return rc;
    }
    const char *project = cli_need_project(g, "apikey");
    if (project == NULL) {
        return CLI_EXIT_USAGE;
    }
    const char *id = argv[optind];
    char *eid = cli_urlencode(id);
    char suffix[300], what[300], msg[400];
    snprintf(suffix, sizeof(suffix), "/api-keys/%s", eid ? eid : "");
    snprintf(what, sizeof(what), "apikey revoke %s", id);
    snprintf(msg, sizeof(msg), "revoked API key %s of project %s", id, project);
    json_t *reply = NULL;
    rc = cli_call(g, "DELETE", eid ? cli_project_path(project, suffix) : NULL, NULL, what, &reply);
    free(eid);
    return rc == CLI_EXIT_OK ? done(g, reply, msg) : rc;
}

static int run_apikey(struct cli_global *g, int argc, char **argv)
{
    static const struct cli_sub subs[] = {
        {"create", apikey_create}, {"list", apikey_list}, {"revoke", apikey_revoke}};
    return cli_dispatch("apikey", subs, 3, g, argc, argv);
}

const struct cli_command cli_cmd_apikey = {
    "apikey", "create, list and revoke a project's API keys",
    "usage: conclave apikey create [--name NAME] [--scope read|read-write]\n"
    "                              [--config-prefix PREFIX] --project P\n"
    "       conclave apikey list --project P\n"
    "       conclave apikey revoke KEY_ID --project P\n"
    "\n"
    "An API key lets a program use the project's configs without a user (pass it with\n"
    "--api-key or CONCLAVE_API_KEY). Its scope is read (read, list, history, watch) or\n"
    "read-write (also create, update, delete, roll back; the default). With --config-prefix\n"
    "it reaches only the configs whose keys start with PREFIX (lists and watches must ask\n"
    "for ?prefix=PREFIX or longer; the project's whole history and audit are refused).\n"
    "The key itself is\n"
    "printed once, by create; list shows ids, prefixes and scopes only. A revoked key stops\n"
    "working on every node within a second. Needs the admin role.\n"
    "\n"
    "examples:\n"
    "  conclave apikey create --name deployer --project shop\n"
    "  conclave apikey create --name web-readers --scope read --project shop\n"
    "  conclave apikey create --name payments --config-prefix payments. --project shop\n",
    run_apikey};
