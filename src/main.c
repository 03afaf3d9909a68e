/*
 * conclave: one binary for the node (`serve`) and every command-line tool.
 */
#include <stdio.h>
#include <string.h>

#include "cmd_admin.h"
#include "cmd_migrate.h"
#include "cmd_serve.h"

static const char usage_text[] =
    "usage: conclave COMMAND [ARGS...]\n"
    "\n"
    "commands:\n"
    "  serve      run one node: conclave serve --config FILE\n"
    "  admin      bootstrap tasks: conclave admin create-user --email E [--admin]\n"
    "  migrate    apply, revert or create PostgreSQL schema migrations\n"
    "  version    print the version\n"
    "\n"
    "`conclave COMMAND --help` describes a command.\n";

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        fputs(usage_text, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
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
    fprintf(stderr, "conclave: unknown command \"%s\"\n%s", argv[1], usage_text);
    return 2;
}
