/*
 * conclave: one binary for the node (`serve`) and every command-line tool.
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/cli_audit.h"
#include "server/cmd_admin.h"
#include "server/cmd_migrate.h"
#include "server/cmd_serve.h"

static const char server_text[] =
    "\n"
    "audit and server commands:\n"
    "  audit      verify, replay or export a project's revisions\n"
    "  serve      run one node: conclave serve --config FILE\n"
    "  admin      bootstrap tasks: conclave admin create-user --email E [--admin]\n"
    "  migrate    apply, revert or create PostgreSQL schema migrations\n"
    "  version    print the version\n"
    "\n"
    "\"conclave help COMMAND\" or \"conclave COMMAND --help\" describes a command;\n"
    "docs/cli.md is the manual.\n";

static void usage(FILE *out)
{
    fputs("usage: conclave COMMAND [ARGS...]\n\nclient commands:\n", out);
    cli_list_commands(out);
    fputs(server_text, out);
}

/* Runs the command ARGV[1] (ARGC >= 2). */
static int run(int argc, char **argv)
{
    if (strcmp(argv[1], "version") == 0 || strcmp(argv[1], "--version") == 0) {
        printf("conclave %s\n", CONCLAVE_VERSION);
        return 0;
    }
    if (strcmp(argv[1], "serve") == 0) {
        return cmd_serve(argc - 1, argv + 1);
    }
    if (strcmp(argv[1], "admin") == 0) {
        return cmd_admin(argc - 1, argv + 1);
    }
    if (strcmp(argv[1], "migrate") == 0) {
        return cmd_migrate(argc - 1, argv + 1);
    }
    if (strcmp(argv[1], "audit") == 0) {
        return cli_audit(argc - 1, argv + 1);
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
        /* `help CMD` is `CMD --help` for the commands that exist; cli_help names the rest. */
        if (cli_find(argv[2]) == NULL && strcmp(argv[2], "audit") != 0 &&
            strcmp(argv[2], "serve") != 0 && strcmp(argv[2], "admin") != 0 &&
            strcmp(argv[2], "migrate") != 0) {
            return cli_help(argv[2]);
        }
        static char help_flag[] = "--help";
        char *help_argv[] = {argv[0], argv[2], help_flag, NULL};
        return run(3, help_argv);
    }
    return run(argc, argv);
}
