/*
 * cli_cmd_auth: `conclave login` and `conclave logout`, the session token's life in the
 * credentials file.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/cli_cmd.h"
#include "cli/cli_creds.h"
#include "cli/cli_out.h"

static int run_login(struct cli_global *g, int argc, char **argv)
{
    static const struct option longopts[] = {{"email", required_argument, NULL, 'e'},
                                             {NULL, 0, NULL, 0}};
    const char *email = NULL;
    int ch;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, "+e:", longopts, NULL)) != -1) {
        if (ch == 'e') {
            email = optarg;
        } else {
            return cli_bad_option("login", argv);
        }
    }
    if (optind < argc) {
        return cli_usage_error("login", "unexpected argument; the email goes in --email");
    }
    if (email == NULL || email[0] == '\0') {
        return cli_usage_error("login", "--email EMAIL is required");
    }

    char password[1100], err[1024], path[4200], msg[1400];
    struct cli_client *c = NULL;
    json_t *body = NULL, *reply = NULL, *creds = NULL;
    int rc;
    if (cli_read_password("password: ", password, sizeof(password), err, sizeof(err)) != 0) {
        snprintf(msg, sizeof(msg), "login: %s", err);
        return cli_fail(CLI_EXIT_USAGE, msg);
    }
    if ((rc = cli_open(g, &c)) != CLI_EXIT_OK) {
        goto out;
    }
    /* A stale saved token must not travel with the login request. */
    cli_client_no_auth(c);
    body = json_pack("{s:s,s:s}", "email", email, "password", password);
    if (body == NULL) {
        rc = cli_fail(CLI_EXIT_INVALID, "login: the email or password is not valid UTF-8");
        goto out;
    }
    snprintf(msg, sizeof(msg), "login as %s", email);
    rc = cli_do(c, "POST", "/v1/auth/login", body, msg, NULL, &reply, NULL);
    if (rc != CLI_EXIT_OK) {
        goto out;
    }
    const char *token = json_string_value(json_object_get(reply, "token"));
    if (token == NULL) {
        rc = cli_fail(CLI_EXIT_FAILURE, "login: the answer holds no token");
        goto out;
    }
    creds = json_pack("{s:s,s:s,s:O,s:O,s:s}", "token", token, "email", email, "user_id",
                      json_object_get(reply, "user_id"), "expires_at",
                      json_object_get(reply, "expires_at"), "endpoint", cli_client_endpoint(c));
    if (creds == NULL || cli_creds_save(creds, path, sizeof(path), err, sizeof(err)) != 0) {
        snprintf(msg, sizeof(msg), "login: the session was opened but not saved: %s",
                 creds ? err : "out of memory");
        rc = cli_fail(CLI_EXIT_FAILURE, msg);
        goto out;
    }
    if (g->json_output) {
        /* The token stays out of standard output, where logs would keep it. */
        json_object_del(reply, "token");
        json_object_set_new(reply, "email", json_string(email));
        json_object_set_new(reply, "credentials_file", json_string(path));
        cli_print_json(reply);
    } else {
        char *expires = cli_cell(json_object_get(reply, "expires_at"), 0);
        printf("logged in as %s until %s; token saved in %s\n", email, expires ? expires : "-",
               path);
        free(expires);
    }
    if (g->api_key != NULL ||
        (g->credentials_source != NULL && strcmp(g->credentials_source, "CONCLAVE_TOKEN") == 0)) {
        fprintf(stderr, "conclave: note: %s is set and is used instead of the saved token\n",
                g->api_key ? "an API key" : "CONCLAVE_TOKEN");
    }
out:
    explicit_bzero(password, sizeof(password));
    if (body != NULL) {
        json_object_clear(body);
    }
    json_decref(body);
    json_decref(reply);
    json_decref(creds);
    cli_client_close(c);
    return rc;
}

static int run_logout(struct cli_global *g, int argc, char **argv)
{
    int ch;
    static const struct option longopts[] = {{NULL, 0, NULL, 0}};
    opterr = 0;
    while ((ch = getopt_long(argc, argv, "+", longopts, NULL)) != -1) {
        return cli_bad_option("logout", argv);
    }
    if (optind < argc) {
        return cli_usage_error("logout", "logout takes no arguments");
    }
    if (g->token == NULL) {
        if (g->api_key != NULL) {
            return cli_usage_error("logout", "an API key has no session to end; revoke it "
                                             "with \"conclave apikey revoke\" instead");
        }
        printf("not logged in; nothing to do\n");
        return CLI_EXIT_OK;
    }
    bool from_file = g->credentials_source != NULL &&
                     strcmp(g->credentials_source, "CONCLAVE_TOKEN") != 0 &&
                     strcmp(g->credentials_source, "CONCLAVE_API_KEY") != 0 &&
                     strcmp(g->credentials_source, "--api-key") != 0;
    struct cli_global session = *g;
    session.api_key = NULL; /* the session token is the one to revoke */
    struct cli_client *c = NULL;
    json_t *err_reply = NULL;
    long status = 0;
    char err[1024], msg[1400];
    int rc = cli_open(&session, &c);
    if (rc != CLI_EXIT_OK) {
        return rc;
    }
    rc = cli_do(c, "POST", "/v1/auth/logout", NULL, "logout", &status, NULL, &err_reply);
    cli_client_close(c);
    if (rc != CLI_EXIT_OK && status != 401) {
        /* Not known to be over: keep the token so that the user can retry. */
        cli_client_error(status, err_reply, "logout", err, sizeof(err));
        json_decref(err_reply);
        if (status == 0) {
            return rc; /* cli_do printed why no node answered */
        }
        snprintf(msg, sizeof(msg), "%s; the token is still saved, retry later", err);
        return cli_fail(rc, msg);
    }
    json_decref(err_reply);
    bool existed = false;
    if (from_file && cli_creds_remove(&existed, err, sizeof(err)) != 0) {
        snprintf(msg, sizeof(msg), "logout: the session ended but %s", err);
        return cli_fail(CLI_EXIT_FAILURE, msg);
    }
    printf("%s%s\n", status == 401 ? "the session had already ended" : "logged out",
           existed ? "; saved token removed" : "");
    return CLI_EXIT_OK;
}

const struct cli_command cli_cmd_login = {
    "login", "log in and save a session token",
    "usage: conclave login --email EMAIL\n"
    "\n"
    "Opens a session and saves its token in ~/.config/conclave/credentials (mode 0600, in\n"
    "$XDG_CONFIG_HOME/conclave when that is set). The password is read from the terminal\n"
    "without echo, or as one line from standard input when it is not a terminal.\n"
    "With -o json prints {user_id, expires_at, email, credentials_file}, never the token.\n"
    "\n"
    "example:\n"
    "  conclave login --email admin@localhost < .conclave/admin-password\n",
    run_login};

const struct cli_command cli_cmd_logout = {
    "logout", "end the session and forget the saved token",
    "usage: conclave logout\n"
    "\n"
    "Ends the session on the server and removes the credentials file. A session that had\n"
    "already expired is only forgotten. When no node answers the token stays saved (exit 6).\n"
    "\n"
    "example:\n"
    "  conclave logout\n",
    run_logout};
