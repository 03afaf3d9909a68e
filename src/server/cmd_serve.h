/*
 * cmd_serve: `conclave serve --config FILE`, one node in the foreground.
 */
#ifndef CONCLAVE_CMD_SERVE_H
#define CONCLAVE_CMD_SERVE_H

/* Returns the exit code: 0 after a clean stop, 1 when the node could not start, 2 usage. */
int cmd_serve(int argc, char **argv);

#endif /* CONCLAVE_CMD_SERVE_H */
