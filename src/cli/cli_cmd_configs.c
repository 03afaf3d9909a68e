/*
 * cli_cmd_configs: the config commands: put, get, list, delete, history, rollback.
 *
 * Every write carries a request id generated here (or given with --request-id). A write whose
 * outcome is unknown (no node answered, 503, 504) is retried with the same id, so the server
 * applies it at most once and answers a retry with the first outcome (docs/api.md, "Request
 * ids"); when the retries run out, the message gives the id for a manual retry.
 */
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/cli_cmd.h"
#include "cli/cli_out.h"

#define WRITE_ATTEMPTS 4

/* A write: retried with the same request id while its outcome is unknown. On a non-2xx
 * answer returns its status with *ERR_REPLY (printed by the caller); on no answer at all,
 * prints and returns CLI_EXIT_UNAVAILABLE with *STATUS 0. */
static int write_call(struct cli_client *c, const char *method, const char *path,
                      const json_t *body, const char *what, const char *request_id, long *status,
                      json_t **reply, json_t **err_reply)
{
    int rc = CLI_EXIT_UNAVAILABLE;
    for (int attempt = 1; attempt <= WRITE_ATTEMPTS; attempt++) {
        char err[2048];
        long st = 0;
        json_t *r = NULL;
        rc = cli_client_call(c, method, path, body, &st, &r, err, sizeof(err));
        *status = st;
        if (rc == CLI_EXIT_OK && st >= 200 && st < 300) {
            *reply = r;
            return CLI_EXIT_OK;
        }
        bool unknown =
            rc == CLI_EXIT_UNAVAILABLE || (rc == CLI_EXIT_OK && (st == 503 || st == 504));
        const char *code = json_string_value(json_object_get(r, "error"));
        if (st == 504 && code != NULL && strcmp(code, "timeout") == 0) {
            unknown = false;
        }
        if (!unknown || attempt == WRITE_ATTEMPTS) {
            if (rc != CLI_EXIT_OK) {
                char msg[2400];
                snprintf(msg, sizeof(msg),
                         "%s: %s; the write may or may not have happened: retry with "
                         "--request-id %s (it is applied at most once)",
                         what, err, request_id);
                json_decref(r);
                return cli_fail(rc, msg);
            }
            *err_reply = r;
            return cli_client_error(st, r, what, err, sizeof(err));
        }
        json_decref(r);
        fprintf(stderr, "conclave: %s: outcome unknown (%s); retrying with request id %s\n", what,
                rc != CLI_EXIT_OK ? err : "the cluster is busy", request_id);
        sleep((unsigned)attempt);
    }
    return rc;
}

/* Prints the error of a failed write: a version conflict gets the advice to re-read. */
static int write_failed(int rc, long status, const json_t *err_reply, const char *what,
                        const char *key, long long expected, bool read_before)
{
    char err[2048], msg[2600];
    if (status == 0) {
        return rc; /* already printed */
    }
    json_t *cur = json_object_get(err_reply, "current_version");
    if (status == 409 && json_is_integer(cur)) {
        long long now = (long long)json_integer_value(cur);
        if (expected == 0 && now > 0 && !read_before) {
            snprintf(msg, sizeof(msg),
                     "%s: key exists already at version %lld; update it with "
                     "--expected-version %lld",
                     what, now, now);
        } else {
            snprintf(msg, sizeof(msg),
                     "%s: version conflict: %s %lld, current is %lld; re-read with "
                     "\"conclave get %s\" and retry with --expected-version %lld",
                     what, read_before ? "read version" : "expected", expected, now, key, now);
        }
        return cli_fail(CLI_EXIT_CONFLICT, msg);
    }
    rc = cli_client_error(status, err_reply, what, err, sizeof(err));
    const json_t *errors = json_object_get(err_reply, "errors");
    if (json_is_array(errors) && json_array_size(errors) > 0) {
        size_t used = strlen(err), i;
        const json_t *e;
        json_array_foreach(errors, i, e)
        {
            int w = snprintf(err + used, sizeof(err) - used, "\n  at %s: %s",
                             json_string_value(json_object_get(e, "path")),
                             json_string_value(json_object_get(e, "message")));
            if (w < 0 || (size_t)w >= sizeof(err) - used) {
                break;
            }
            used += (size_t)w;
        }
    }
    return cli_fail(rc == CLI_EXIT_OK ? CLI_EXIT_FAILURE : rc, err);
}

/* Reads the current version of KEY into *VERSION (0 when missing or deleted). */
static int current_version(struct cli_client *c, const char *project, const char *key,
                           const char *what, long long *version)
{
    char *path = cli_config_path(project, key, "");
    json_t *reply = NULL, *err_reply = NULL;
    long status = 0;
    if (path == NULL) {
        return cli_fail(CLI_EXIT_FAILURE, "out of memory");
    }
    int rc = cli_do(c, "GET", path, NULL, what, &status, &reply, &err_reply);
    free(path);
    if (rc == CLI_EXIT_NOT_FOUND && status == 404) {
        /* Either the key or the project is missing (the server's message names which, "project
         * P not found"): only the key may be. */
        const char *m = json_string_value(json_object_get(err_reply, "message"));
        if (m != NULL && strncmp(m, "project ", 8) == 0) {
            char err[1024];
            cli_client_error(status, err_reply, what, err, sizeof(err));
            json_decref(err_reply);
            return cli_fail(CLI_EXIT_NOT_FOUND, err);
        }
        json_decref(err_reply);
        *version = 0;
        return CLI_EXIT_OK;
    }
    if (rc != CLI_EXIT_OK) {
        char err[1024];
        if (status == 0) {
            return rc;
        }
        rc = cli_client_error(status, err_reply, what, err, sizeof(err));
        json_decref(err_reply);
        return cli_fail(rc, err);
    }
    *version = (long long)json_integer_value(json_object_get(reply, "version"));
    json_decref(reply);
    return CLI_EXIT_OK;
}

/* True when version V of KEY is a delete (a tombstone that a new write must name). */
static bool is_tombstone(struct cli_client *c, const char *project, const char *key, long long v)
{
    char suffix[64];
    snprintf(suffix, sizeof(suffix), "?version=%lld", v);
    char *path = cli_config_path(project, key, suffix);
    json_t *reply = NULL, *err_reply = NULL;
    bool dead = false;
    if (path != NULL && cli_do(c, "GET", path, NULL, "read", NULL, &reply, &err_reply) == 0) {
        const char *op = json_string_value(json_object_get(reply, "op"));
        dead = op != NULL && strcmp(op, "delete") == 0;
    }
    free(path);
    json_decref(reply);
    json_decref(err_reply);
    return dead;
}

static void print_write(const struct cli_global *g, const char *verb, const json_t *reply)
{
    if (g->json_output) {
        cli_print_json(reply);
        return;
    }
    printf("%s %s: version %lld, revision %lld\n", verb,
           json_string_value(json_object_get(reply, "key")),
           (long long)json_integer_value(json_object_get(reply, "version")),
           (long long)json_integer_value(json_object_get(reply, "revision")));
}

/* Options shared by the writes. */
struct write_opts {
    long long expected; /* -1: read the current version first */
    bool create;
    const char *schema; /* NULL keeps the binding, "none" unbinds */
    const char *request_id;
    long long to; /* rollback target */
};

enum { OPT_EXPECTED = 256, OPT_CREATE, OPT_SCHEMA, OPT_REQUEST_ID, OPT_TO };

static const struct option write_longopts[] = {
    {"expected-version", required_argument, NULL, OPT_EXPECTED},
    {"create", no_argument, NULL, OPT_CREATE},
    {"schema", required_argument, NULL, OPT_SCHEMA},
    {"request-id", required_argument, NULL, OPT_REQUEST_ID},
    {"to", required_argument, NULL, OPT_TO},
    {NULL, 0, NULL, 0}};

/* Parses the options of write command CMD; ALLOWED lists the accepted ones. Leaves the
 * positional arguments from optind. */
static int parse_write_opts(const char *cmd, int argc, char **argv, const char *allowed,
                            struct write_opts *o)
{
    int ch;
    memset(o, 0, sizeof(*o));
    o->expected = -1;
    o->to = -1;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, "", write_longopts, NULL)) != -1) {
        const char *name = NULL;
        for (const struct option *lo = write_longopts; lo->name; lo++) {
            if (lo->val == ch) {
                name = lo->name;
            }
        }
        if (name == NULL || strstr(allowed, name) == NULL) {
            return cli_bad_option(cmd, argv);
        }
        char msg[256];
        switch (ch) {
        case OPT_EXPECTED:
            if (cli_parse_int(optarg, 0, INT64_MAX, &o->expected) != 0) {
                snprintf(msg, sizeof(msg), "--expected-version \"%s\" is not a version number",
                         optarg);
                return cli_usage_error(cmd, msg);
            }
            break;
        case OPT_CREATE:
            o->create = true;
            break;
        case OPT_SCHEMA:
            o->schema = optarg;
            break;
        case OPT_REQUEST_ID:
            if (optarg[0] == '\0' || strlen(optarg) > 128) {
                return cli_usage_error(cmd, "--request-id must be 1 to 128 characters");
            }
            o->request_id = optarg;
            break;
        case OPT_TO:
            if (cli_parse_int(optarg, 1, INT64_MAX, &o->to) != 0) {
                snprintf(msg, sizeof(msg), "--to \"%s\" is not a version number", optarg);
                return cli_usage_error(cmd, msg);
            }
            break;
        default:
            return cli_bad_option(cmd, argv);
        }
    }
    return CLI_EXIT_OK;
}

static int run_put(struct cli_global *g, int argc, char **argv)
{
    struct write_opts o;
    int rc = parse_write_opts("put", argc, argv, "expected-version create schema request-id", &o);
    if (rc != CLI_EXIT_OK) {
        return rc;
    }
    if (optind >= argc || optind + 2 < argc) {
        return cli_usage_error("put", "expected KEY and optionally FILE (or - for standard input)");
    }
    if (o.create && o.expected >= 0) {
        return cli_usage_error("put", "--create and --expected-version exclude each other "
                                      "(--create is --expected-version 0)");
    }
    const char *project = cli_need_project(g, "put");
    if (project == NULL) {
        return CLI_EXIT_USAGE;
    }
    const char *key = argv[optind];
    const char *file = optind + 1 < argc ? argv[optind + 1] : "-";
    char what[600], err[1024], rid[64], msg[1700];
    snprintf(what, sizeof(what), "put %s", key);
    json_t *content = NULL, *body = NULL, *reply = NULL, *err_reply = NULL;
    struct cli_client *c = NULL;
    char *path = NULL;
    long status = 0;

    rc = cli_read_json_input(file, &content, err, sizeof(err));
    if (rc != CLI_EXIT_OK) {
        snprintf(msg, sizeof(msg), "%s: %s", what, err);
        return cli_fail(rc, msg);
    }
    if ((rc = cli_open(g, &c)) != CLI_EXIT_OK) {
        goto out;
    }
    bool read_before = false;
    long long expected = o.create ? 0 : o.expected;
    if (expected < 0) {
        /* etcdctl-like convenience: compare-and-swap on the version just read. */
        read_before = true;
        if ((rc = current_version(c, project, key, what, &expected)) != CLI_EXIT_OK) {
            goto out;
        }
    }
    for (int round = 0; round < 2; round++) {
        if (o.request_id != NULL && round == 0) {
            snprintf(rid, sizeof(rid), "%s", o.request_id);
        } else if (cli_request_id(rid, sizeof(rid)) != 0) {
            rc = cli_fail(CLI_EXIT_FAILURE, "put: no randomness for a request id");
            goto out;
        }
        body = json_pack("{s:O,s:I,s:s}", "content", content, "expected_version",
                         (json_int_t)expected, "request_id", rid);
        if (body != NULL && o.schema != NULL) {
            json_object_set_new(body, "schema_id",
                                strcmp(o.schema, "none") == 0 ? json_null()
                                                              : json_string(o.schema));
        }
        free(path);
        path = cli_config_path(project, key, "");
        if (body == NULL || path == NULL) {
            rc = cli_fail(CLI_EXIT_FAILURE, "out of memory");
            goto out;
        }
        rc = write_call(c, "PUT", path, body, what, rid, &status, &reply, &err_reply);
        json_decref(body);
        body = NULL;
        /* The read found no live key but the key has a history: when its last version is a
         * delete, the new write names that tombstone's version (docs/api.md, "Deleted
         * keys"). Done once; anything else is a real conflict. */
        json_t *cur = json_object_get(err_reply, "current_version");
        if (rc == CLI_EXIT_CONFLICT && read_before && round == 0 && expected == 0 &&
            json_is_integer(cur) &&
            is_tombstone(c, project, key, (long long)json_integer_value(cur))) {
            expected = (long long)json_integer_value(cur);
            json_decref(err_reply);
            err_reply = NULL;
            continue;
        }
        break;
    }
    if (rc != CLI_EXIT_OK) {
        rc = write_failed(rc, status, err_reply, what, key, expected, read_before);
        goto out;
    }
    print_write(g, status == 201 ? "created" : "updated", reply);
out:
    free(path);
    json_decref(content);
    json_decref(body);
    json_decref(reply);
    json_decref(err_reply);
    cli_client_close(c);
    return rc;
}

static int run_delete(struct cli_global *g, int argc, char **argv)
{
    struct write_opts o;
    int rc = parse_write_opts("delete", argc, argv, "expected-version request-id", &o);
    if (rc != CLI_EXIT_OK) {
        return rc;
    }
    if (optind + 1 != argc) {
        return cli_usage_error("delete", "expected exactly one KEY");
    }
    const char *project = cli_need_project(g, "delete");
    if (project == NULL) {
        return CLI_EXIT_USAGE;
    }
    const char *key = argv[optind];
    char what[600], rid[160], suffix[400];
    snprintf(what, sizeof(what), "delete %s", key);
    struct cli_client *c = NULL;
    json_t *reply = NULL, *err_reply = NULL;
    char *path = NULL, *erid = NULL;
    long status = 0;
    bool read_before = o.expected < 0;
    if ((rc = cli_open(g, &c)) != CLI_EXIT_OK) {
        return rc;
    }
    if (read_before) {
        if ((rc = current_version(c, project, key, what, &o.expected)) != CLI_EXIT_OK) {
            goto out;
        }
        if (o.expected == 0) {
            char msg[1024];
            snprintf(msg, sizeof(msg), "%s: no such key in project %s (or it is deleted already)",
                     what, project);
            rc = cli_fail(CLI_EXIT_NOT_FOUND, msg);
            goto out;
        }
    }
    if (o.request_id != NULL) {
        snprintf(rid, sizeof(rid), "%s", o.request_id);
    } else if (cli_request_id(rid, sizeof(rid)) != 0) {
        rc = cli_fail(CLI_EXIT_FAILURE, "delete: no randomness for a request id");
        goto out;
    }
    erid = cli_urlencode(rid);
    if (erid == NULL) {
        rc = cli_fail(CLI_EXIT_FAILURE, "out of memory");
        goto out;
    }
    snprintf(suffix, sizeof(suffix), "?expected_version=%lld&request_id=%s", o.expected, erid);
    path = cli_config_path(project, key, suffix);
    if (path == NULL) {
        rc = cli_fail(CLI_EXIT_FAILURE, "out of memory");
        goto out;
    }
    rc = write_call(c, "DELETE", path, NULL, what, rid, &status, &reply, &err_reply);
    if (rc != CLI_EXIT_OK) {
        rc = write_failed(rc, status, err_reply, what, key, o.expected, read_before);
        goto out;
    }
    print_write(g, "deleted", reply);
out:
    free(path);
    free(erid);
    json_decref(reply);
    json_decref(err_reply);
    cli_client_close(c);
    return rc;
}

static int run_rollback(struct cli_global *g, int argc, char **argv)
{
    struct write_opts o;
    int rc = parse_write_opts("rollback", argc, argv, "to expected-version request-id", &o);
    if (rc != CLI_EXIT_OK) {
        return rc;
    }
    if (optind + 1 != argc || o.to < 0) {
        return cli_usage_error("rollback", "expected KEY --to VERSION");
    }
    const char *project = cli_need_project(g, "rollback");
    if (project == NULL) {
        return CLI_EXIT_USAGE;
    }
    const char *key = argv[optind];
    char what[600], rid[64];
    snprintf(what, sizeof(what), "rollback %s to version %lld", key, o.to);
    struct cli_client *c = NULL;
    json_t *body = NULL, *reply = NULL, *err_reply = NULL;
    char *path = NULL;
    long status = 0;
    bool read_before = o.expected < 0;
    if ((rc = cli_open(g, &c)) != CLI_EXIT_OK) {
        return rc;
    }
    if (read_before && (rc = current_version(c, project, key, what, &o.expected)) != CLI_EXIT_OK) {
        goto out;
    }
    if (read_before && o.expected == 0) {
        char msg[1400];
        snprintf(msg, sizeof(msg),
                 "%s: %s has no live version in project %s; for a deleted key pass "
                 "--expected-version with its delete's version (\"conclave history %s\")",
                 what, key, project, key);
        rc = cli_fail(CLI_EXIT_NOT_FOUND, msg);
        goto out;
    }
    if (o.request_id != NULL) {
        snprintf(rid, sizeof(rid), "%.63s", o.request_id);
    } else if (cli_request_id(rid, sizeof(rid)) != 0) {
        rc = cli_fail(CLI_EXIT_FAILURE, "rollback: no randomness for a request id");
        goto out;
    }
    body = json_pack("{s:I,s:I,s:s}", "target_version", (json_int_t)o.to, "expected_version",
                     (json_int_t)o.expected, "request_id", o.request_id ? o.request_id : rid);
    path = cli_config_path(project, key, "/rollback");
    if (body == NULL || path == NULL) {
        rc = cli_fail(CLI_EXIT_FAILURE, "out of memory");
        goto out;
    }
    rc = write_call(c, "POST", path, body, what, rid, &status, &reply, &err_reply);
    if (rc != CLI_EXIT_OK) {
        rc = write_failed(rc, status, err_reply, what, key, o.expected, read_before);
        goto out;
    }
    if (g->json_output) {
        cli_print_json(reply);
    } else {
        printf("rolled back %s to the content of version %lld: now version %lld, revision %lld\n",
               key, o.to, (long long)json_integer_value(json_object_get(reply, "version")),
               (long long)json_integer_value(json_object_get(reply, "revision")));
    }
out:
    free(path);
    json_decref(body);
    json_decref(reply);
    json_decref(err_reply);
    cli_client_close(c);
    return rc;
}

const struct cli_command cli_cmd_put = {
    "put", "write a config (compare-and-swap)",
    "usage: conclave put KEY [FILE|-] [--expected-version N | --create] [--schema ID|none]\n"
    "                    [--request-id R] --project P\n"
    "\n"
    "Writes the JSON document in FILE (standard input when FILE is - or missing) under KEY.\n"
    "The file is checked locally first: a missing file exits 3, text that is not JSON exits 7\n"
    "and nothing is sent.\n"
    "  --expected-version N  write only if the key is at version N (0: it must not exist)\n"
    "  --create              the same as --expected-version 0\n"
    "  (neither)             read the current version and write only if it is still the\n"
    "                        same; a write in between is reported as a conflict (exit 4)\n"
    "  --schema ID           bind the key to a JSON Schema (\"none\" unbinds)\n"
    "  --request-id R        the write's request id (default: a new random one). A write\n"
    "                        whose outcome is unknown is retried with the same id, which the\n"
    "                        server applies at most once.\n"
    "\n"
    "example:\n"
    "  echo '{\"pool\": 10}' | conclave put app.db - --project shop --expected-version 3\n",
    run_put};

const struct cli_command cli_cmd_delete = {
    "delete", "delete a config",
    "usage: conclave delete KEY [--expected-version N] [--request-id R] --project P\n"
    "\n"
    "Deletes KEY, leaving a tombstone version in its history. Without --expected-version the\n"
    "current version is read first (as put does).\n"
    "\n"
    "example:\n"
    "  conclave delete app.db --project shop\n",
    run_delete};

const struct cli_command cli_cmd_rollback = {
    "rollback", "write an old version's content as a new version",
    "usage: conclave rollback KEY --to N [--expected-version M] [--request-id R] --project P\n"
    "\n"
    "Makes a new version of KEY holding the content of version N (see \"conclave history\").\n"
    "Without --expected-version the current version is read first (as put does).\n"
    "\n"
    "example:\n"
    "  conclave rollback app.db --to 2 --project shop\n",
    run_rollback};
