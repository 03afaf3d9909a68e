/*
 * cli_cmd: helpers the client commands share: opening the client, making a call and turning
 * a failure into the printed message and exit status, reading every page of a list, option
 * errors and reading JSON input.
 */
#ifndef CONCLAVE_CLI_CMD_H
#define CONCLAVE_CLI_CMD_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "cli/cli_client.h"

/* Opens a client for G into *OUT; prints the failure and returns its status otherwise. */
int cli_open(const struct cli_global *g, struct cli_client **out);

/* Calls METHOD PATH with BODY (borrowed, may be NULL). A 2xx answer returns CLI_EXIT_OK with
 * *REPLY (new reference or NULL; REPLY may be NULL to drop it) and *STATUS (may be NULL).
 * Anything else prints "conclave: WHAT: message" and returns its exit status; when
 * ERR_REPLY is not NULL it then receives the error body (new reference, may be NULL) so that
 * the caller can add advice, and nothing is printed. */
int cli_do(struct cli_client *c, const char *method, const char *path, const json_t *body,
           const char *what, long *status, json_t **reply, json_t **err_reply);

/* GETs every page of a list at PATH (which may already hold a query): ITEMS_KEY is the array
 * member, NEXT_KEY the cursor member and CURSOR_PARAM the query parameter it goes back in.
 * Returns CLI_EXIT_OK with *OUT a new object {ITEMS_KEY: [...all...], NEXT_KEY: null}, or the
 * printed failure's status. */
int cli_get_all(struct cli_client *c, const char *path, const char *items_key, const char *next_key,
                const char *cursor_param, const char *what, json_t **out);

/* The project from G, or prints a usage error for CMD and returns NULL. */
const char *cli_need_project(const struct cli_global *g, const char *cmd);

/* Reports the getopt failure for CMD (unknown option or missing value) and returns
 * CLI_EXIT_USAGE. ARGV and the getopt state name the offending word. */
int cli_bad_option(const char *cmd, char **argv);

/* Parses TEXT as a decimal integer from MIN to MAX into *OUT. Returns 0 or -1. */
int cli_parse_int(const char *text, long long min, long long max, long long *out);

/* Reads the JSON document in PATH ("-" is standard input) into *OUT (new reference). Returns
 * CLI_EXIT_OK, CLI_EXIT_NOT_FOUND (no such file), CLI_EXIT_FAILURE (unreadable) or
 * CLI_EXIT_INVALID (not JSON) with ERR naming the file, the line and what is wrong. */
int cli_read_json_input(const char *path, json_t **out, char *err, size_t errlen);

/* "/v1/projects/PROJECT" + SUFFIX with PROJECT percent-encoded, in a new string the caller
 * frees (NULL when out of memory). SUFFIX is appended as is. */
char *cli_project_path(const char *project, const char *suffix);

/* "/v1/projects/PROJECT/configs[/KEY]SUFFIX" with PROJECT and KEY (may be NULL)
 * percent-encoded, in a new string the caller frees (NULL when out of memory). */
char *cli_config_path(const char *project, const char *key, const char *suffix);

/* Prints ITEMS (an array of objects, borrowed) as a table: column i has header HEADERS[i] and
 * shows member MEMBERS[i] of each item, cut to WIDTHS[i] characters (WIDTHS NULL: 60 each).
 * N is at most CLI_TABLE_MAX_COLS. Prints EMPTY instead when there are no items. Returns
 * CLI_EXIT_OK or the printed failure's status. */
int cli_print_items(const json_t *items, size_t n, const char *const *headers,
                    const char *const *members, const size_t *widths, const char *empty);

/* Opens a client for G and makes one call of METHOD PATH with BODY (borrowed, may be NULL).
 * PATH is owned and freed here; NULL means building it ran out of memory. On success *REPLY
 * (may be NULL to drop it) gets the answer (new reference or NULL). Failures are printed;
 * returns the exit status. */
int cli_call(const struct cli_global *g, const char *method, char *path, const json_t *body,
             const char *what, json_t **reply);

/* Reads every page of the list at PATH (owned, freed here; NULL: out of memory) and prints it
 * as cli_print_items does, or as one JSON document with -o json. Returns the exit status. */
int cli_list(const struct cli_global *g, char *path, const char *what, size_t n,
             const char *const *headers, const char *const *members, const size_t *widths,
             const char *empty);

/* Dispatches `conclave CMD SUB ...`: finds ARGV[1] among the N names in SUBS and runs the
 * matching function with ARGC-1/ARGV+1 (so that ARGV[0] is the subcommand). A missing or
 * unknown subcommand is a usage error listing the known ones. */
struct cli_sub {
    const char *name;
    int (*run)(struct cli_global *g, int argc, char **argv);
};
int cli_dispatch(const char *cmd, const struct cli_sub *subs, size_t n, struct cli_global *g,
                 int argc, char **argv);

/* Parses the options of a subcommand that takes only long options with values: for each
 * i < N, --NAMES[i] VALUE stores VALUE in VALUES[i] (borrowed from ARGV; NULL when absent).
 * Afterwards optind is the first positional argument, which must number from MIN_POS to
 * MAX_POS. Returns CLI_EXIT_OK or prints the usage error for CMD. */
int cli_parse_opts(const char *cmd, int argc, char **argv, size_t n, const char *const *names,
                   const char **values, int min_pos, int max_pos, const char *positional);

#endif /* CONCLAVE_CLI_CMD_H */
