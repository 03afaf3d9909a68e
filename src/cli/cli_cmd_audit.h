/*
 * cli_cmd_audit: the `conclave audit` command (verify, replay, export); docs/cli.md describes it.
 */
#ifndef CONCLAVE_CLI_CMD_AUDIT_H
#define CONCLAVE_CLI_CMD_AUDIT_H

/* Runs `conclave audit ARGV[1...]` (ARGV[0] is "audit") and returns its exit status
 * (cli_exit.h). Prints results on stdout and errors on stderr. */
int cli_cmd_audit(int argc, char **argv);

/* The text of `conclave audit --help` (also read by the completion script's generator). */
extern const char cli_cmd_audit_help[];

#endif /* CONCLAVE_CLI_CMD_AUDIT_H */
