/*
 * cli_audit_source: where `conclave audit` reads a project's revisions from, one at a time, in
 * revision order, whatever the source:
 *
 *   - the API: GET /v1/projects/{id}/revisions, a page of 1000 at a time, through whichever
 *     node answers (cli_client);
 *   - PostgreSQL directly: the same rows (storage/db_configs.h), every page read inside one
 *     REPEATABLE READ, READ ONLY transaction so the history is one consistent snapshot;
 *   - an export file (JSON Lines, docs/cli.md "Export format"): a header line, one revision per
 *     line, and a trailer line with the count and the chain head, so that a truncated file is
 *     told from a complete one.
 *
 * Every source yields the revision objects of docs/api.md. The caller checks them (auditlog.h);
 * this module only reads, and says when the source itself is broken (a line that is not JSON, a
 * missing trailer) as a finding (CLI_EXIT_AUDIT), not as a failure to read.
 *
 * It also draws the progress bar: on stderr, only when both stdout and stderr are terminals.
 */
#ifndef CONCLAVE_CLI_AUDIT_SOURCE_H
#define CONCLAVE_CLI_AUDIT_SOURCE_H

#include <stdint.h>
#include <stdio.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "cli/cli_client.h"

/* The first line of an export file names the format and its version. */
#define CLI_AUDIT_SOURCE_FORMAT         "conclave-audit-export"
#define CLI_AUDIT_SOURCE_FORMAT_VERSION 1

struct cli_audit_source;

/* Opens PROJECT's history through the API, from the first revision after AFTER (0 for all).
 * CLIENT is borrowed and must outlive the source. Returns a cli_exit status: CLI_EXIT_NOT_FOUND
 * when the project does not exist (or the caller may not see it), CLI_EXIT_PERMISSION,
 * CLI_EXIT_UNAVAILABLE... with ERR saying what failed. */
int cli_audit_source_open_api(struct cli_client *client, const char *project, uint64_t after,
                              struct cli_audit_source **out, char *err, size_t errlen);

/* Opens PROJECT's history in PostgreSQL on CONN (borrowed, not inside a transaction; the source
 * opens one and ends it when closed). */
int cli_audit_source_open_db(PGconn *conn, const char *project, struct cli_audit_source **out,
                             char *err, size_t errlen);

/* Opens the export file PATH ("-" for stdin) and reads its header. *PROJECT_OUT (borrowed from
 * the source) is the project the header names. CLI_EXIT_NOT_FOUND when the file is missing,
 * CLI_EXIT_AUDIT when its first line is not an export header. */
int cli_audit_source_open_file(const char *path, struct cli_audit_source **out,
                               const char **project_out, char *err, size_t errlen);

/* The next revision: *REV is borrowed until the next call, NULL at the end of the history.
 * Returns CLI_EXIT_OK, or a cli_exit status with ERR (CLI_EXIT_AUDIT for a malformed or
 * truncated export file; *REV is then NULL). At the end of a file it also checks the trailer's
 * count and chain head against what was read: CHAIN_HEAD is the hex hash of the last revision
 * the caller checked ("" when none). */
int cli_audit_source_next(struct cli_audit_source *s, const char *chain_head, const json_t **rev,
                          char *err, size_t errlen);

/* How many revisions the history holds (for the progress bar): exact for the database and the
 * API at open time, 0 for a file (unknown until its trailer). */
uint64_t cli_audit_source_total(const struct cli_audit_source *s);

void cli_audit_source_close(struct cli_audit_source *s);

/* A progress bar for N of TOTAL revisions, redrawn at most ten times a second; a no-op unless
 * stdout and stderr are terminals. cli_audit_source_progress_done() erases it. */
void cli_audit_source_progress(uint64_t n, uint64_t total);
void cli_audit_source_progress_done(void);

#endif /* CONCLAVE_CLI_AUDIT_SOURCE_H */
