/*
 * cli_creds: the client's files under $XDG_CONFIG_HOME/conclave (else $HOME/.config/conclave):
 * `credentials`, the session token saved by `conclave login` (mode 0600 in a 0700 directory),
 * and `config`, the optional defaults (endpoints, project, output). Both are JSON objects;
 * docs/cli.md ("Files") gives their members.
 */
#ifndef CONCLAVE_CLI_CREDS_H
#define CONCLAVE_CLI_CREDS_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

/* Writes the path of the client's directory (no trailing slash) into BUF. Returns 0, or -1
 * with ERR filled when neither XDG_CONFIG_HOME nor HOME is set or the path is too long. */
int cli_config_dir(char *buf, size_t len, char *err, size_t errlen);

/* Writes the path of the file NAME of the client's directory into BUF; as cli_config_dir. */
int cli_config_file(const char *name, char *buf, size_t len, char *err, size_t errlen);

/* Reads the JSON object in PATH into *OUT (new reference). Returns 0; 1 when the file does
 * not exist (*OUT NULL); -1 with ERR filled when it cannot be read or is not a JSON object. */
int cli_read_json_file(const char *path, json_t **out, char *err, size_t errlen);

/* Saves CREDS (borrowed) as the credentials file: the directory is created with mode 0700,
 * the file written to a temporary name with mode 0600 and renamed over the old one, so a
 * reader never sees half a file and the token is never readable by others. Fills PATH (LEN
 * bytes) with the file's path. Returns 0 or -1 with ERR filled. */
int cli_creds_save(const json_t *creds, char *path, size_t len, char *err, size_t errlen);

/* Removes the credentials file. Returns 0 (also when there was none; *EXISTED says which) or
 * -1 with ERR filled. */
int cli_creds_remove(bool *existed, char *err, size_t errlen);

/* Reads a password into BUF (LEN bytes, NUL-terminated, without the newline): from the
 * terminal with echo off after PROMPT when standard input is one, else one line of standard
 * input. Returns 0 or -1 with ERR filled (end of input, too long, empty). */
int cli_read_password(const char *prompt, char *buf, size_t len, char *err, size_t errlen);

#endif /* CONCLAVE_CLI_CREDS_H */
