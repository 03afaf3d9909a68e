/*
 * cli_client: what every client command of `conclave` shares: the global options (endpoints,
 * credentials, project, output format) and HTTP calls to the nodes with failover.
 *
 * A call goes to the endpoints in order, starting with the one that answered last. A node
 * that cannot be reached, or answers 503, is skipped for the next one; any other HTTP answer
 * is final. A request other than GET that reached a node which then gave no answer (reset,
 * timeout) is not sent elsewhere, since it may have been carried out: the call fails with
 * CLI_EXIT_UNAVAILABLE and the next call starts at the next node. docs/cli.md describes the
 * options and files.
 */
#ifndef CONCLAVE_CLI_CLIENT_H
#define CONCLAVE_CLI_CLIENT_H

#include <signal.h>
#include <stddef.h>

#include <jansson.h>

#include "cli/cli_exit.h"

/* Global options every client command shares, filled by cli_global_parse(). Strings are
 * borrowed from argv or the environment (never freed). */
struct cli_global {
    const char *endpoints; /* comma-separated base URLs */
    const char *token;     /* session token or NULL */
    const char *api_key;   /* project API key or NULL */
    const char *project;   /* --project / CONCLAVE_PROJECT or NULL */
    int json_output;       /* -o json */
    int value_output;      /* -o value: get prints the config's content alone */
    /* Where the credentials came from, for messages: "--api-key", "CONCLAVE_TOKEN", the
     * credentials file's path, or NULL when there are none. */
    const char *credentials_source;
    const char *config_path; /* the config file that was read, or NULL */
    long timeout_s;          /* per-request timeout in seconds (--timeout, default 30) */
    /* --cacert / CONCLAVE_CACERT / "cacert" of the config file: the PEM file of the CAs an
     * https:// endpoint's certificate must chain to (the cluster's CA), or NULL for the
     * system's CAs. */
    const char *cacert;
    /* --client-cert / --client-key (CONCLAVE_CLIENT_CERT / CONCLAVE_CLIENT_KEY /
     * "client_cert" and "client_key" of the config file):
     * a client certificate (PEM, with its chain) and its private key (PEM, unencrypted) to
     * present when a server asks for one, such as a proxy in front of the nodes that requires
     * mutual TLS (the nodes themselves do not ask). Both or neither. */
    const char *cert;
    const char *key;
};

/* Parses and removes the global options from *ARGC/ARGV (they may appear anywhere after the
 * command name), applies the environment and the saved credentials. Returns CLI_EXIT_OK or
 * CLI_EXIT_USAGE with ERR filled. */
int cli_global_parse(int *argc, char **argv, struct cli_global *g, char *err, size_t errlen);

struct cli_client; /* opaque */
/* Returns CLI_EXIT_OK with *OUT a new client the caller releases with cli_client_close(). */
int cli_client_open(const struct cli_global *g, struct cli_client **out, char *err, size_t errlen);
void cli_client_close(struct cli_client *c);
/* Sends METHOD PATH (path with query, already percent-encoded, starting with "/v1/") with BODY
 * (borrowed, may be NULL) as JSON, to the first endpoint that answers, with the credentials.
 * On CLI_EXIT_OK: *STATUS is the HTTP status (whatever it is) and *REPLY the parsed JSON body
 * (new reference, NULL when the body is empty). Otherwise (no endpoint answered, or the body is
 * not JSON) the exit class with ERR saying what failed. */
int cli_client_call(struct cli_client *c, const char *method, const char *path, const json_t *body,
                    long *status, json_t **reply, char *err, size_t errlen);
/* Maps an HTTP status and error reply to an exit class and a message "WHAT: server message". */
int cli_client_error(long status, const json_t *reply, const char *what, char *err, size_t errlen);
/* Percent-encodes S for a path segment or query value into a new string the caller frees. */
char *cli_urlencode(const char *s);

/* Sets the timeout of the following calls of C in seconds (a long poll needs more than the
 * default). */
void cli_client_set_timeout(struct cli_client *c, long seconds);
/* Makes the following calls of C give up within about a second once *FLAG (set by a signal
 * handler) is non-zero: cli_client_call then returns CLI_EXIT_FAILURE with ERR
 * "interrupted". FLAG is borrowed and must outlive C. */
void cli_client_set_abort(struct cli_client *c, volatile sig_atomic_t *flag);
/* Drops the credentials of C: the following calls send no Authorization (login). */
void cli_client_no_auth(struct cli_client *c);
/* The base URL of the endpoint that answered the last call (borrowed from C), or NULL. */
const char *cli_client_endpoint(const struct cli_client *c);

/* Fills BUF (at least 37 bytes) with a new random request id "cli-" + 32 hex digits. Returns
 * 0, or -1 when the system has no randomness to give. */
int cli_request_id(char *buf, size_t len);

#endif /* CONCLAVE_CLI_CLIENT_H */
