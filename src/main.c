/*
 * conclave: one binary for the node (`serve`) and every command-line tool.
 *
 * The client commands are listed once, in cli/cli.c; the others once, in the table below, which
 * the usage text, the dispatch and `conclave help COMMAND` all read.
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/cli_cmd_audit.h"
#include "cli/cli_completion.h"
#include "server/cmd_admin.h"
#include "server/cmd_migrate.h"
#include "server/cmd_serve.h"

/* Prints the version; takes no argument (not even --help). */
static int version(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    printf("conclave %s\n", CONCLAVE_VERSION);
    return 0;
}

static int completion(int argc, char **argv);

struct command {
    const char *name;
    const char *summary; /* one line for the usage text */
    /* Runs the command. ARGV[0] is the command's name; returns the exit status. */
    int (*run)(int argc, char **argv);
};

/* The audit and server commands, in the order the usage text lists them. */
static const struct command commands[] = {
    {"audit", "verify, replay, export or checkpoint a project's revisions", cli_cmd_audit},
    {"serve", "run one node: conclave serve --config FILE", cmd_serve},
    {"admin", "bootstrap tasks: conclave admin create-user --email E [--admin]", cmd_admin},
    {"migrate", "apply, revert or create PostgreSQL schema migrations", cmd_migrate},
    {"version", "print the version", version},
    {"completion", "print the bash or zsh completion script: conclave completion bash|zsh",
     completion},
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

/* `conclave completion bash|zsh`: the script for the shell, made from every command's help
 * (cli_completion.h). The audit command's help names its subcommands and options; the
 * server commands complete by name. */
static int completion(int argc, char **argv)
{
    if (argc != 2 || (strcmp(argv[1], "bash") != 0 && strcmp(argv[1], "zsh") != 0)) {
        fputs("usage: conclave completion bash|zsh\n\n"
              "Prints a completion script for the shell; load it with\n"
              "  source <(conclave completion bash)   # in ~/.bashrc\n"
              "  source <(conclave completion zsh)    # in ~/.zshrc, after compinit\n",
              argc == 2 && strcmp(argv[1], "--help") == 0 ? stdout : stderr);
        return argc == 2 && strcmp(argv[1], "--help") == 0 ? CLI_EXIT_OK : CLI_EXIT_USAGE;
    }
    struct cli_completion_cmd extra[NCOMMANDS];
    size_t n = 0;
    for (size_t i = 0; i < NCOMMANDS; i++) {
        if (strcmp(commands[i].name, "completion") != 0) {
            extra[n].name = commands[i].name;
            extra[n].help = commands[i].run == cli_cmd_audit ? cli_cmd_audit_help : NULL;
            n++;
        }
    }
    if (cli_completion_print(argv[1], extra, n, stdout) != 0) {
        fputs("conclave completion: out of memory\n", stderr);
        return CLI_EXIT_FAILURE;
    }
    return CLI_EXIT_OK;
}

/* The command of the table called NAME ("--version" is "version"), or NULL. */
static const struct command *find(const char *name)
{
    if (strcmp(name, "--version") == 0) {
        name = "version";
    }
    for (size_t i = 0; i < NCOMMANDS; i++) {
        if (strcmp(commands[i].name, name) == 0) {
            return &commands[i];
        }
    }
    return NULL;
}

static void usage(FILE *out)
{
    fputs("usage: conclave COMMAND [ARGS...]\n\nclient commands:\n", out);
    cli_list_commands(out);
    fputs("\naudit and server commands:\n", out);
    for (size_t i = 0; i < NCOMMANDS; i++) {
        fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
    }
    fputs("\n"
          "\"conclave help COMMAND\" or \"conclave COMMAND --help\" describes a command;\n"
          "docs/cli.md is the manual.\n",
          out);
}

/* Runs the command ARGV[1] (ARGC >= 2). */
static int run(int argc, char **argv)
{
    const struct command *cmd = find(argv[1]);
    if (cmd != NULL) {
        return cmd->run(argc - 1, argv + 1);
    }
    if (cli_find(argv[1]) != NULL) {
        return cli_main(argc - 1, argv + 1);
    }
    fprintf(stderr, "conclave: unknown command \"%s\"\n", argv[1]);
    usage(stderr);
    return CLI_EXIT_USAGE;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return CLI_EXIT_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        (strcmp(argv[1], "help") == 0 && argc == 2)) {
        usage(stdout);
        return CLI_EXIT_OK;
    }
    if (strcmp(argv[1], "help") == 0) {
        /* `help CMD` is `CMD --help` for the commands that have a help; cli_help names the
         * rest. `version` has none: `help version` and `help --version` answer as for a
         * command that does not exist, as they always have. */
        const struct command *cmd = find(argv[2]);
        if (cli_find(argv[2]) == NULL && (cmd == NULL || cmd->run == version)) {
            return cli_help(argv[2]);
        }
        static char help_flag[] = "--help";
        char *help_argv[] = {argv[0], argv[2], help_flag, NULL};
        return run(3, help_argv);
    }
    return run(argc, argv);
}
