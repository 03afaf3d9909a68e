/*
 * cli: the client commands of `conclave` (login, put, get, project, ...) and their help. Each
 * command is a struct cli_command exported by its module and listed in cli.c; docs/cli.md is
 * the manual.
 */
#ifndef CONCLAVE_CLI_H
#define CONCLAVE_CLI_H

#include <stdbool.h>
#include <stdio.h>

#include "cli/cli_client.h"

struct cli_command {
    const char *name;
    const char *summary; /* one line for the command list */
    const char *help;    /* the full `conclave help NAME` text, with an example */
    /* Runs the command. ARGV[0] is the command's name; the global options are already parsed
     * into G and removed. Returns a CLI_EXIT_* status. */
    int (*run)(struct cli_global *g, int argc, char **argv);
};

extern const struct cli_command cli_cmd_login, cli_cmd_logout;
extern const struct cli_command cli_cmd_put, cli_cmd_get, cli_cmd_list, cli_cmd_delete,
    cli_cmd_history, cli_cmd_rollback;
extern const struct cli_command cli_cmd_watch;
extern const struct cli_command cli_cmd_project, cli_cmd_role, cli_cmd_apikey;
extern const struct cli_command cli_cmd_schema, cli_cmd_cluster;

/* The command called NAME, or NULL. */
const struct cli_command *cli_find(const char *name);

/* Runs the client command ARGV[0] (it must be one cli_find knows) and returns the exit
 * status: parses the global options, answers --help, and runs it. */
int cli_main(int argc, char **argv);

/* `conclave help [COMMAND]`: the command's help, or the list of commands. Returns the exit
 * status (CLI_EXIT_USAGE for an unknown command). */
int cli_help(const char *name);

/* Prints the list of client commands with their summaries to OUT. */
void cli_list_commands(FILE *out);

/* The client commands, in `conclave help` order: the Ith, or NULL past the last. */
const struct cli_command *cli_command_at(size_t i);

/* The help text of the global options every client command takes. */
const char *cli_global_help(void);

#endif /* CONCLAVE_CLI_H */
