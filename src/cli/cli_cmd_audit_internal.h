/*
 * cli_cmd_audit_internal: the private header of the `conclave audit` module, one subcommand per
 * file (cli_cmd_audit_verify.c, cli_cmd_audit_replay.c, cli_cmd_audit_export.c,
 * cli_cmd_audit_checkpoint.c) around what they
 * share in cli_cmd_audit.c: the parsed command line, the source (API, PostgreSQL or an export file)
 * and the loop that feeds a source through the checker with the progress bar. It includes only the
 * module's public cli_cmd_audit.h.
 */
#ifndef CONCLAVE_CLI_AUDIT_INTERNAL_H
#define CONCLAVE_CLI_AUDIT_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "cli/cli_cmd_audit.h"

struct cli_global;
struct cli_client;
struct cli_audit_source;
struct alog;
struct auditlog_problem;

/* The options after `conclave audit SUB`; the strings are borrowed from argv. */
struct cli_cmd_audit_args {
    const char *sub;
    const char *file;
    const char *source;
    const char *database_url;
    const char *key;
    const char *out;
    bool have_revision, have_time;
    uint64_t as_of_revision;
    int64_t as_of_time;
    const char *as_of_time_text;
    const char *checkpoint; /* verify --checkpoint FILE */
    const char *project;    /* checkpoint PROJECT (positional) */
};

/*
 * A point the chain must contain, checked as the revisions are fed (cli_cmd_audit_feed_all):
 * the committed head the API names, or a saved checkpoint. HASH is 64 lowercase hex digits;
 * REVISION 0 when only the hash is known.
 */
struct cli_cmd_audit_watch {
    bool on;
    uint64_t revision;
    char hash[65];
    const char *what;  /* "the cluster committed", "the checkpoint names" */
    bool found;        /* a fed revision has HASH (and REVISION, when known) */
    bool rev_seen;     /* a fed revision has REVISION ... */
    char rev_hash[65]; /* ... with this hash */
};

#define CLI_CMD_AUDIT_WATCHES 2

/* Everything one run holds; released in one place, by cli_cmd_audit(). */
struct cli_cmd_audit_run {
    const struct cli_global *g; /* the global options; owned by cli_cmd_audit() */
    struct cli_cmd_audit_args a;
    struct cli_client *client; /* the API source, or NULL */
    PGconn *conn;              /* the PostgreSQL source, or NULL */
    bool use_db;
    struct cli_cmd_audit_watch watch[CLI_CMD_AUDIT_WATCHES]; /* [0] API head, [1] checkpoint */
    char err[1024]; /* what failed, for the subcommand's non-zero status */
};

/* The subcommands, in cli_cmd_audit_verify.c, cli_cmd_audit_replay.c and cli_cmd_audit_export.c.
 * Each returns a cli_exit status; on failure R->err says what failed and cli_cmd_audit() prints it
 * (verify prints its own findings for CLI_EXIT_AUDIT). */
int cli_cmd_audit_verify(struct cli_cmd_audit_run *r);
int cli_cmd_audit_replay(struct cli_cmd_audit_run *r);
int cli_cmd_audit_export(struct cli_cmd_audit_run *r);
int cli_cmd_audit_checkpoint(struct cli_cmd_audit_run *r);

/* After a chain was fed whole into A without a problem: fills *P and returns true when a watch
 * that is on was not found (a missing tail, or the revision with another hash). */
bool cli_cmd_audit_watch_problem(const struct cli_cmd_audit_run *r, const struct alog *a,
                                 struct auditlog_problem *p);

/* Reads checkpoint file PATH into r->watch[1]; *PROJECT (new, caller frees) is the project it
 * names. CLI_EXIT_NOT_FOUND when missing, CLI_EXIT_USAGE when it is not a checkpoint. */
int cli_cmd_audit_checkpoint_read(struct cli_cmd_audit_run *r, const char *path, char **project);

/* Opens PROJECT's history from the run's source (the API or PostgreSQL, not a file) into *S,
 * which the caller closes with cli_audit_source_close(). */
int cli_cmd_audit_open_source(struct cli_cmd_audit_run *r, const char *project,
                              struct cli_audit_source **s);

/* Feeds every revision of S into A until the end, or until STOP says a revision is past the
 * point asked for. Returns CLI_EXIT_OK (with *PROBLEM true and *P filled when the history does
 * not verify), CLI_EXIT_AUDIT with r->err for a broken export file, or the source's error. */
typedef bool (*cli_cmd_audit_stop_fn)(const struct cli_cmd_audit_args *a, const json_t *rev);

int cli_cmd_audit_feed_all(struct cli_cmd_audit_run *r, struct cli_audit_source *s, struct alog *a,
                           cli_cmd_audit_stop_fn stop, struct auditlog_problem *p, bool *problem);

#endif /* CONCLAVE_CLI_AUDIT_INTERNAL_H */
