/*
 * cmd_migrate: the `conclave migrate` command line.
 */
#ifndef CONCLAVE_CMD_MIGRATE_H
#define CONCLAVE_CMD_MIGRATE_H

/* Runs `conclave migrate ARGS...`; ARGV[0] is "migrate". Returns the process exit code:
 * 0 success, 1 failure (the reason is on stderr), 2 usage error. */
int cmd_migrate(int argc, char **argv);

#endif /* CONCLAVE_CMD_MIGRATE_H */
