/*
 * cli_out: what the client commands print: aligned tables, pretty-printed JSON, field lists
 * and error lines. Everything for scripts goes to standard output; errors and progress go to
 * standard error.
 */
#ifndef CONCLAVE_CLI_OUT_H
#define CONCLAVE_CLI_OUT_H

#include <stdio.h>

#include <jansson.h>

#define CLI_TABLE_MAX_COLS 8

struct cli_table; /* opaque */

/* A new table with the N_COLS (at most CLI_TABLE_MAX_COLS) column HEADERS (borrowed; they
 * must outlive the table). Returns NULL when out of memory. */
struct cli_table *cli_table_new(size_t n_cols, const char *const *headers);
/* Appends a row of n_cols CELLS (copied; NULL prints "-"). Returns 0 or -1 out of memory. */
int cli_table_add(struct cli_table *t, const char *const *cells);
/* Prints the table to OUT with every column padded to its widest cell. */
void cli_table_print(const struct cli_table *t, FILE *out);
void cli_table_free(struct cli_table *t);

/* Prints V to standard output as indented JSON followed by a newline. */
void cli_print_json(const json_t *v);

/* V as one table cell or field, in a new string the caller frees: a string as is, null and
 * NULL as "-", anything else as compact JSON cut to MAX characters ("..." marks the cut; 0
 * means no limit). Returns NULL when out of memory. */
char *cli_cell(const json_t *v, size_t max);

/* Prints "NAME:" padded to WIDTH and then cli_cell of member NAME of OBJ (no length limit). */
void cli_print_field(const json_t *obj, const char *name, const char *label, int width);

/* Prints "conclave: MSG" to standard error and returns RC, so that a command can
 * `return cli_fail(rc, err);`. Under -o json (cli_out_json_errors()) it prints one JSON
 * object instead: {"error": CODE, "message": MSG, "exit_code": RC}, where CODE is the
 * server's error code when the failure was a server's answer (cli_out_server_error(): then
 * also "http_status" and the answer's other fields, such as current_version) and otherwise
 * the exit status's name ("usage", "not_found", ...; docs/cli.md). */
int cli_fail(int rc, const char *msg);

/* Prints "conclave CMD: MSG; see \"conclave help CMD\"" to standard error (or, under -o
 * json, the JSON object of cli_fail() with error "usage") and returns CLI_EXIT_USAGE. */
int cli_usage_error(const char *cmd, const char *msg);

/* Errors as JSON from now on (ON non-zero), as -o json asks. */
void cli_out_json_errors(int on);

/* Remembers the server's error answer REPLY (borrowed; copied) with HTTP STATUS for the next
 * cli_fail(), which reports its code and fields under -o json and forgets it. */
void cli_out_server_error(long status, const json_t *reply);

#endif /* CONCLAVE_CLI_OUT_H */
