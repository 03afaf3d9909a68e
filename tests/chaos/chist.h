/*
 * chist: a chaos run's history (JSON Lines, written by chaos_client; format in
 * docs/reliability.md), loaded into memory for the checker.
 */
#ifndef CONCLAVE_CHIST_H
#define CONCLAVE_CHIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum chist_kind { CHIST_READ, CHIST_WRITE };
enum chist_outcome { CHIST_OK, CHIST_FAIL, CHIST_UNKNOWN };

/* An unknown operation never completes as far as ordering is concerned. */
#define CHIST_NEVER INT64_MAX

struct chist_op {
    int client;
    enum chist_kind kind;
    char *key;                /* owned */
    char *value;              /* owned; NULL: a read that found no key, or none given */
    char *request_id;         /* owned; NULL for reads */
    int64_t expected_version; /* writes */
    int64_t version;          /* the version answered (see chaos_client.c), -1 for none */
    int64_t invoke;           /* microseconds */
    int64_t complete;         /* microseconds; >= invoke */
    enum chist_outcome outcome;
    int status;  /* HTTP status, 0 refused, -1 no answer */
    size_t line; /* 1-based line in the history file, for messages */
};

struct chist {
    struct chist_op *ops; /* owned, in file order */
    size_t n;
};

/*
 * Parses one history line into *OP (zeroed first; the caller frees it with chist_op_free()
 * on success). Returns 0, or -1 with ERRMSG naming the line and the member that is wrong; on
 * failure *OP holds nothing to free.
 */
int chist_parse_line(const char *text, size_t line, struct chist_op *op, char *errmsg,
                     size_t errlen);

/* Loads every line of PATH into *H (the caller frees it with chist_free()). Returns 0, or -1
 * with ERRMSG (an unreadable file or the first bad line) and *H empty. */
int chist_load(const char *path, struct chist *h, char *errmsg, size_t errlen);

/* Appends a copy of *OP (whose strings are taken over) to *H. Returns 0, or -1 when out of
 * memory (then *OP is freed). */
int chist_append(struct chist *h, struct chist_op *op);

void chist_op_free(struct chist_op *op);
void chist_free(struct chist *h);

const char *chist_outcome_name(enum chist_outcome o);

#endif /* CONCLAVE_CHIST_H */
