/*
 * cli_exit: the exit statuses of every client command of `conclave` (docs/cli.md lists them).
 *
 * Scripts branch on these, so each class of failure has its own status and a status never
 * changes meaning. The server's HTTP answers map onto them as noted; a command that made no
 * request uses the same classes for its own failures (a missing file is CLI_EXIT_NOT_FOUND,
 * an unreadable one CLI_EXIT_FAILURE).
 */
#ifndef CONCLAVE_CLI_EXIT_H
#define CONCLAVE_CLI_EXIT_H

enum cli_exit {
    CLI_EXIT_OK = 0,          /* the command did what it was asked */
    CLI_EXIT_FAILURE = 1,     /* anything not below: HTTP 500, a local I/O error, out of memory */
    CLI_EXIT_USAGE = 2,       /* bad command line: unknown flag, missing argument */
    CLI_EXIT_NOT_FOUND = 3,   /* HTTP 404: no such project, key, version, user, schema, key id */
    CLI_EXIT_CONFLICT = 4,    /* HTTP 409: version conflict, already exists, still in use */
    CLI_EXIT_PERMISSION = 5,  /* HTTP 401 or 403: not logged in, bad token, role too low */
    CLI_EXIT_UNAVAILABLE = 6, /* no endpoint answered, HTTP 503 or 504 (outcome unknown) */
    CLI_EXIT_INVALID = 7,     /* HTTP 400, 413 or 422: the server refused the input */
    CLI_EXIT_AUDIT = 8,       /* `audit verify` found a problem in the history */
};

#endif /* CONCLAVE_CLI_EXIT_H */
