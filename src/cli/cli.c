#include "cli/cli.h"

#include <string.h>

#include "cli/cli_out.h"

/* Every client command, in the order `conclave help` lists them. */
static const struct cli_command *const commands[] = {
    &cli_cmd_login,  &cli_cmd_logout,  &cli_cmd_put,      &cli_cmd_get,     &cli_cmd_list,
    &cli_cmd_delete, &cli_cmd_history, &cli_cmd_rollback, &cli_cmd_watch,   &cli_cmd_project,
    &cli_cmd_role,   &cli_cmd_apikey,  &cli_cmd_schema,   &cli_cmd_cluster,
};

static const char global_help[] =
    "global options (anywhere after the command):\n"
    "  --endpoints URL[,URL...]  the nodes to talk to (CONCLAVE_ENDPOINTS; default\n"
    "                            "
    "https://127.0.0.1:8081,https://127.0.0.1:8082,https://127.0.0.1:8083)\n"
    "  -p, --project P           the project of project-scoped commands (CONCLAVE_PROJECT)\n"
    "  -o, --output json|table|value\n"
    "                            json prints the server's JSON for scripts, errors too\n"
    "                            (on stderr); value (get) the content alone (CONCLAVE_OUTPUT)\n"
    "  --api-key KEY             authenticate with a project API key (CONCLAVE_API_KEY)\n"
    "  --config FILE             defaults file (CONCLAVE_CONFIG; default\n"
    "                            ~/.config/conclave/config)\n"
    "  --timeout SECONDS         per-request timeout (default 30)\n"
    "  --cacert FILE             the CA (PEM) an https:// node's certificate must chain to,\n"
    "                            e.g. the cluster's ca.pem (CONCLAVE_CACERT)\n"
    "  --client-cert FILE --client-key FILE\n"
    "                            a client certificate and its key (PEM) for a server that\n"
    "                            asks for one (CONCLAVE_CLIENT_CERT, CONCLAVE_CLIENT_KEY)\n"
    "  -h, --help                this command's help\n";

const struct cli_command *cli_find(const char *name)
{
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
        if (strcmp(commands[i]->name, name) == 0) {
            return commands[i];
        }
    }
    return NULL;
}

const struct cli_command *cli_command_at(size_t i)
{
    return i < sizeof(commands) / sizeof(commands[0]) ? commands[i] : NULL;
}

const char *cli_global_help(void)
{
    return global_help;
}

void cli_list_commands(FILE *out)
{
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
        fprintf(out, "  %-10s %s\n", commands[i]->name, commands[i]->summary);
    }
}

int cli_help(const char *name)
{
    if (name == NULL) {
        fputs("usage: conclave COMMAND [ARGS...] [GLOBAL OPTIONS]\n\nclient commands:\n", stdout);
        cli_list_commands(stdout);
        fputs("\n", stdout);
        fputs(global_help, stdout);
        fputs("\n\"conclave help COMMAND\" describes a command; docs/cli.md is the manual.\n",
              stdout);
        return CLI_EXIT_OK;
    }
    const struct cli_command *cmd = cli_find(name);
    if (cmd == NULL) {
        fprintf(stderr, "conclave help: no command \"%s\"; \"conclave help\" lists them\n", name);
        return CLI_EXIT_USAGE;
    }
    fputs(cmd->help, stdout);
    fputs("\n", stdout);
    fputs(global_help, stdout);
    return CLI_EXIT_OK;
}

int cli_main(int argc, char **argv)
{
    const struct cli_command *cmd = cli_find(argv[0]);
    if (cmd == NULL) {
        fprintf(stderr, "conclave: unknown command \"%s\"; \"conclave help\" lists them\n",
                argv[0]);
        return CLI_EXIT_USAGE;
    }
    for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            return cli_help(cmd->name);
        }
    }
    struct cli_global g;
    char err[1024];
    int rc = cli_global_parse(&argc, argv, &g, err, sizeof(err));
    if (rc != CLI_EXIT_OK) {
        return cli_usage_error(cmd->name, err);
    }
    return cmd->run(&g, argc, argv);
}
