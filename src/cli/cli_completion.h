/*
 * cli_completion: the shell completion scripts of `conclave completion bash|zsh`.
 *
 * The scripts are generated from the commands' own help texts, so that they never fall
 * behind the commands: the words after "conclave NAME" on a help's usage lines are NAME's
 * subcommands, every "--option" a help names is one of its options, and the global options
 * come from the global help. docs/cli.md, "Shell completion", says how to install them.
 */
#ifndef CONCLAVE_CLI_COMPLETION_H
#define CONCLAVE_CLI_COMPLETION_H

#include <stddef.h>
#include <stdio.h>

/* A top-level command that is not a client command (main.c's table): its name, and its help
 * text to take subcommands and options from, or NULL when only the name completes. */
struct cli_completion_cmd {
    const char *name;
    const char *help;
};

/*
 * Prints the completion script for SHELL ("bash" or "zsh") to OUT: every client command
 * (cli.h), the N commands of EXTRA (borrowed), "help" and "completion". Returns 0, or -1
 * when SHELL is neither (nothing printed) or memory ran out.
 */
int cli_completion_print(const char *shell, const struct cli_completion_cmd *extra, size_t n,
                         FILE *out);

#endif /* CONCLAVE_CLI_COMPLETION_H */
