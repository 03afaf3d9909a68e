/*
 * cmd_admin: `conclave admin ...`, bootstrap tasks that talk to PostgreSQL directly.
 */
#ifndef CONCLAVE_CMD_ADMIN_H
#define CONCLAVE_CMD_ADMIN_H

/* Returns the exit code: 0 success, 1 failure, 2 usage. */
int cmd_admin(int argc, char **argv);

#endif /* CONCLAVE_CMD_ADMIN_H */
