/*
 * cli_global: the options every client command shares, from the command line, the
 * environment, the config file and the credentials file, in that order of precedence.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli_client.h"
#include "cli/cli_out.h"
#include "cli/cli_creds.h"

#define DEFAULT_ENDPOINTS "https://127.0.0.1:8081,https://127.0.0.1:8082,https://127.0.0.1:8083"

/* The config and credentials files' contents live as long as the process: the struct
 * cli_global borrows strings from them. */
static json_t *g_config;
static json_t *g_creds;
static char g_config_path[4200];
static char g_creds_path[4200];
static char *g_joined_endpoints;

/* Matches ARGV[*I] against the option NAME (and SHORT_NAME, may be NULL) taking a value:
 * "--name VALUE", "--name=VALUE", "-s VALUE" or "-sVALUE". Returns 1 with *VALUE and *USED
 * (how many argv entries it took), 0 when it is another word, -1 when the value is missing. */
static int match_opt(int argc, char **argv, int i, const char *name, const char *short_name,
                     const char **value, int *used)
{
    const char *a = argv[i];
    size_t n = strlen(name);
    if (strncmp(a, name, n) == 0 && a[n] == '=') {
        *value = a + n + 1;
        *used = 1;
        return 1;
    }
    if (strcmp(a, name) == 0 || (short_name != NULL && strcmp(a, short_name) == 0)) {
        if (i + 1 >= argc) {
            return -1;
        }
        *value = argv[i + 1];
        *used = 2;
        return 1;
    }
    if (short_name != NULL && strncmp(a, short_name, strlen(short_name)) == 0) {
        *value = a + strlen(short_name);
        *used = 1;
        return 1;
    }
    return 0;
}

/* A string member of the config file; NULL when absent. */
static const char *config_string(const char *name)
{
    return json_string_value(json_object_get(g_config, name));
}

/* Loads the config file: PATH when given (it must exist), else the default one if any. */
static int load_config(const char *path, char *err, size_t errlen)
{
    bool explicit = path != NULL;
    if (!explicit) {
        if (cli_config_file("config", g_config_path, sizeof(g_config_path), err, errlen) != 0) {
            return 0; /* no HOME: no default config either */
        }
    } else {
        snprintf(g_config_path, sizeof(g_config_path), "%s", path);
    }
    int rc = cli_read_json_file(g_config_path, &g_config, err, errlen);
    if (rc == 1 && explicit) {
        snprintf(err, errlen, "config file %s does not exist; check --config or CONCLAVE_CONFIG",
                 g_config_path);
        return -1;
    }
    if (rc < 0) {
        return -1;
    }
    /* "endpoints" may be a list of URLs: joined here so that it reads like the option. */
    json_t *eps = json_object_get(g_config, "endpoints");
    if (json_is_array(eps)) {
        size_t total = 1, i;
        json_t *v;
        json_array_foreach(eps, i, v)
        {
            if (!json_is_string(v)) {
                snprintf(err, errlen, "%s: \"endpoints\" should be a string or a list of strings",
                         g_config_path);
                return -1;
            }
            total += json_string_length(v) + 1;
        }
        g_joined_endpoints = calloc(1, total);
        if (g_joined_endpoints == NULL) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        json_array_foreach(eps, i, v)
        {
            if (i > 0) {
                strcat(g_joined_endpoints, ",");
            }
            strcat(g_joined_endpoints, json_string_value(v));
        }
    } else if (eps != NULL && !json_is_string(eps)) {
        snprintf(err, errlen, "%s: \"endpoints\" should be a string or a list of strings",
                 g_config_path);
        return -1;
    }
    return 0;
}

static int parse_output(const char *v, struct cli_global *g, const char *where, char *err,
                        size_t errlen)
{
    g->json_output = 0;
    g->value_output = 0;
    if (strcmp(v, "json") == 0) {
        g->json_output = 1;
    } else if (strcmp(v, "value") == 0) {
        g->value_output = 1;
    } else if (strcmp(v, "table") != 0 && strcmp(v, "text") != 0) {
        snprintf(err, errlen,
                 "%s: output format \"%s\" is unknown; use -o json, -o table or -o value", where,
                 v);
        return -1;
    }
    return 0;
}

/* A file name given by option (VALUE), else by the environment variable ENV, else by the
 * config file's NAME; *OUT is NULL when none is given. An empty name is a usage error. */
static int file_option(const char *value, const char *option, const char *env, const char *name,
                       const char **out, char *err, size_t errlen)
{
    const char *v = value;
    if (v == NULL && (v = getenv(env)) != NULL && v[0] == '\0') {
        v = NULL;
    }
    if (v == NULL) {
        v = config_string(name);
    }
    if (v != NULL && v[0] == '\0') {
        snprintf(err, errlen, "%s needs a file name", option);
        return -1;
    }
    *out = v;
    return 0;
}

int cli_global_parse(int *argc, char **argv, struct cli_global *g, char *err, size_t errlen)
{
    const char *endpoints = NULL, *project = NULL, *output = NULL, *api_key = NULL;
    const char *config = NULL, *timeout = NULL, *cacert = NULL, *cert = NULL, *key = NULL;
    struct {
        const char *name, *short_name;
        const char **slot;
    } opts[] = {
        {"--endpoints", NULL, &endpoints}, {"--project", "-p", &project},
        {"--output", "-o", &output},       {"--api-key", NULL, &api_key},
        {"--config", NULL, &config},       {"--timeout", NULL, &timeout},
        {"--cacert", NULL, &cacert},       {"--client-cert", NULL, &cert},
        {"--client-key", NULL, &key},
    };
    memset(g, 0, sizeof(*g));
    int out = 1;
    bool rest = false;
    for (int i = 1; i < *argc;) {
        if (rest || argv[i][0] != '-') {
            argv[out++] = argv[i++];
            continue;
        }
        if (strcmp(argv[i], "--") == 0) {
            rest = true; /* the command's own parser sees "--" too */
            argv[out++] = argv[i++];
            continue;
        }
        int used = 0, m = 0;
        for (size_t k = 0; k < sizeof(opts) / sizeof(opts[0]) && m == 0; k++) {
            m = match_opt(*argc, argv, i, opts[k].name, opts[k].short_name, opts[k].slot, &used);
            if (m < 0) {
                snprintf(err, errlen, "option %s needs a value; see \"conclave help\"", argv[i]);
                return CLI_EXIT_USAGE;
            }
        }
        if (m == 0) {
            argv[out++] = argv[i++];
        } else {
            i += used;
        }
    }
    argv[out] = NULL;
    *argc = out;

    if (config == NULL) {
        config = getenv("CONCLAVE_CONFIG");
        if (config != NULL && config[0] == '\0') {
            config = NULL;
        }
    }
    if (load_config(config, err, errlen) != 0) {
        return CLI_EXIT_USAGE;
    }
    if (g_config != NULL) {
        g->config_path = g_config_path;
    }

    const char *env;
    g->endpoints = endpoints;
    if (g->endpoints == NULL && (env = getenv("CONCLAVE_ENDPOINTS")) != NULL && env[0] != '\0') {
        g->endpoints = env;
    }
    if (g->endpoints == NULL) {
        g->endpoints = g_joined_endpoints ? g_joined_endpoints : config_string("endpoints");
    }
    if (g->endpoints == NULL) {
        g->endpoints = DEFAULT_ENDPOINTS;
    }

    g->project = project;
    if (g->project == NULL && (env = getenv("CONCLAVE_PROJECT")) != NULL && env[0] != '\0') {
        g->project = env;
    }
    if (g->project == NULL) {
        g->project = config_string("project");
    }

    bool output_flag = output != NULL;
    if (output == NULL && (output = getenv("CONCLAVE_OUTPUT")) != NULL && output[0] == '\0') {
        output = NULL;
    }
    if (output == NULL) {
        output = config_string("output");
    }
    if (output != NULL && parse_output(output, g, "-o", err, errlen) != 0) {
        return CLI_EXIT_USAGE;
    }
    cli_out_json_errors(g->json_output);
    /* A config's content alone is what get shows; for any other command -o value on its
     * command line is a mistake to report, while a default from the environment or the
     * config file just means the usual table there. */
    if (g->value_output && strcmp(argv[0], "get") != 0) {
        if (output_flag) {
            snprintf(err, errlen,
                     "-o value prints a config's content alone, which only get shows; use -o "
                     "json or -o table");
            return CLI_EXIT_USAGE;
        }
        g->value_output = 0;
    }

    if (file_option(cacert, "--cacert", "CONCLAVE_CACERT", "cacert", &g->cacert, err, errlen) !=
            0 ||
        file_option(cert, "--client-cert", "CONCLAVE_CLIENT_CERT", "client_cert", &g->cert, err,
                    errlen) != 0 ||
        file_option(key, "--client-key", "CONCLAVE_CLIENT_KEY", "client_key", &g->key, err,
                    errlen) != 0) {
        return CLI_EXIT_USAGE;
    }
    if ((g->cert == NULL) != (g->key == NULL)) {
        snprintf(err, errlen,
                 "%s needs %s too: a client certificate goes with its private key (PEM files)",
                 g->cert != NULL ? "--client-cert" : "--client-key",
                 g->cert != NULL ? "--client-key" : "--client-cert");
        return CLI_EXIT_USAGE;
    }

    g->timeout_s = 30;
    if (timeout != NULL) {
        char *end;
        errno = 0;
        long t = strtol(timeout, &end, 10);
        if (errno != 0 || end == timeout || *end != '\0' || t < 1 || t > 3600) {
            snprintf(err, errlen, "--timeout \"%s\" should be a number of seconds from 1 to 3600",
                     timeout);
            return CLI_EXIT_USAGE;
        }
        g->timeout_s = t;
    }

    /* Credentials: an API key (flag, then environment) wins over a session token (environment,
     * then the file saved by `conclave login`). */
    g->api_key = api_key;
    if (api_key != NULL) {
        g->credentials_source = "--api-key";
    } else if ((env = getenv("CONCLAVE_API_KEY")) != NULL && env[0] != '\0') {
        g->api_key = env;
        g->credentials_source = "CONCLAVE_API_KEY";
    }
    if ((env = getenv("CONCLAVE_TOKEN")) != NULL && env[0] != '\0') {
        g->token = env;
        if (g->credentials_source == NULL) {
            g->credentials_source = "CONCLAVE_TOKEN";
        }
    } else if (cli_config_file("credentials", g_creds_path, sizeof(g_creds_path), err, errlen) ==
               0) {
        int rc = cli_read_json_file(g_creds_path, &g_creds, err, errlen);
        if (rc < 0) {
            return CLI_EXIT_USAGE;
        }
        g->token = json_string_value(json_object_get(g_creds, "token"));
        if (g->token != NULL && g->credentials_source == NULL) {
            g->credentials_source = g_creds_path;
        }
    }
    err[0] = '\0';
    return CLI_EXIT_OK;
}
