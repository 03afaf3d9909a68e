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

/* A rollback ("op": "rollback") is a CHIST_WRITE with target_version > 0: a compare-and-swap
 * from expected_version whose value is the content of target_version (which the client knew
 * when it sent it; PostgreSQL's row confirms it). Values are therefore unique per request id
 * only for plain writes; checkers match a read to the write that produced its version. */
struct chist_op {
    int client;
    enum chist_kind kind;
    char *key;                /* owned */
    char *value;              /* owned; NULL: a read that found no key, or none given */
    char *request_id;         /* owned; NULL for reads */
    int64_t expected_version; /* writes */
    int64_t target_version;   /* a rollback's target version (op "rollback"); 0 for a write */
    int64_t revision;         /* the revision an acknowledged write was answered with, or -1 */
    int retries;              /* attempts after the first one, all with the same request id */
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

/*
 * Reports every answer of H that a correct server never gives these clients: a definitive
 * status (anything but 2xx, 409, 503, 504, a refused connection or no answer) for a write
 * (kind "unexpected answer"; after a retry with the same request id, "retry refused"), and
 * for a read anything but 200, 404, 503, 504, refused or no answer. A retry of an identical
 * request must get the first outcome (docs/write-path.md), so a 400 there is a violation,
 * never tolerated. Returns the number of violations.
 */
typedef void (*chist_report_fn)(void *ud, const char *kind, const char *key, const char *msg);
long chist_check_answers(const struct chist *h, chist_report_fn report, void *ud);

void chist_op_free(struct chist_op *op);
void chist_free(struct chist *h);

const char *chist_outcome_name(enum chist_outcome o);

#endif /* CONCLAVE_CHIST_H */
