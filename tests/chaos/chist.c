#include "chist.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

const char *chist_outcome_name(enum chist_outcome o)
{
    switch (o) {
    case CHIST_OK:
        return "ok";
    case CHIST_FAIL:
        return "fail";
    default:
        return "unknown";
    }
}

void chist_op_free(struct chist_op *op)
{
    free(op->key);
    free(op->value);
    free(op->request_id);
    op->key = op->value = op->request_id = NULL;
}

void chist_free(struct chist *h)
{
    for (size_t i = 0; i < h->n; i++) {
        chist_op_free(&h->ops[i]);
    }
    free(h->ops);
    h->ops = NULL;
    h->n = 0;
}

/* Member NAME of O as an integer into *OUT; MISSING_OK leaves *OUT alone when absent. */
static int get_int(json_t *o, const char *name, bool missing_ok, int64_t *out, size_t line,
                   char *errmsg, size_t errlen)
{
    json_t *v = json_object_get(o, name);
    if (v == NULL && missing_ok) {
        return 0;
    }
    if (!json_is_integer(v)) {
        snprintf(errmsg, errlen, "history line %zu: \"%s\" must be an integer", line, name);
        return -1;
    }
    *out = (int64_t)json_integer_value(v);
    return 0;
}

/* Member NAME of O as a new string into *OUT (NULL for null or, with MISSING_OK, absent). */
static int get_str(json_t *o, const char *name, bool missing_ok, char **out, size_t line,
                   char *errmsg, size_t errlen)
{
    json_t *v = json_object_get(o, name);
    *out = NULL;
    if ((v == NULL && missing_ok) || json_is_null(v)) {
        return 0;
    }
    if (!json_is_string(v)) {
        snprintf(errmsg, errlen, "history line %zu: \"%s\" must be a string", line, name);
        return -1;
    }
    *out = strdup(json_string_value(v));
    if (*out == NULL) {
        snprintf(errmsg, errlen, "history line %zu: out of memory", line);
        return -1;
    }
    return 0;
}

int chist_parse_line(const char *text, size_t line, struct chist_op *op, char *errmsg,
                     size_t errlen)
{
    json_error_t jerr;
    memset(op, 0, sizeof(*op));
    op->line = line;
    op->version = -1;
    op->revision = -1;
    json_t *o = json_loads(text, 0, &jerr);
    if (!json_is_object(o)) {
        snprintf(errmsg, errlen, "history line %zu: not a JSON object: %s", line,
                 o == NULL ? jerr.text : "another JSON value");
        json_decref(o);
        return -1;
    }
    int64_t client = 0, status = -1, retries = 0;
    const char *kind = json_string_value(json_object_get(o, "op"));
    const char *outcome = json_string_value(json_object_get(o, "outcome"));
    if (kind == NULL || (strcmp(kind, "read") != 0 && strcmp(kind, "write") != 0 &&
                         strcmp(kind, "rollback") != 0)) {
        snprintf(errmsg, errlen,
                 "history line %zu: \"op\" must be \"read\", \"write\" or \"rollback\"", line);
        goto fail;
    }
    op->kind = strcmp(kind, "read") == 0 ? CHIST_READ : CHIST_WRITE;
    bool rollback = strcmp(kind, "rollback") == 0;
    if (outcome == NULL) {
        snprintf(errmsg, errlen, "history line %zu: \"outcome\" must be a string", line);
        goto fail;
    } else if (strcmp(outcome, "ok") == 0) {
        op->outcome = CHIST_OK;
    } else if (strcmp(outcome, "fail") == 0) {
        op->outcome = CHIST_FAIL;
    } else if (strcmp(outcome, "unknown") == 0) {
        op->outcome = CHIST_UNKNOWN;
    } else {
        snprintf(errmsg, errlen,
                 "history line %zu: \"outcome\" must be \"ok\", \"fail\" or \"unknown\"", line);
        goto fail;
    }
    if (get_int(o, "client", false, &client, line, errmsg, errlen) != 0 ||
        get_int(o, "invoke", false, &op->invoke, line, errmsg, errlen) != 0 ||
        get_int(o, "complete", false, &op->complete, line, errmsg, errlen) != 0 ||
        get_int(o, "version", true, &op->version, line, errmsg, errlen) != 0 ||
        get_int(o, "status", true, &status, line, errmsg, errlen) != 0 ||
        get_int(o, "revision", true, &op->revision, line, errmsg, errlen) != 0 ||
        get_int(o, "retries", true, &retries, line, errmsg, errlen) != 0 ||
        get_str(o, "key", false, &op->key, line, errmsg, errlen) != 0 ||
        get_str(o, "value", true, &op->value, line, errmsg, errlen) != 0) {
        goto fail;
    }
    if (op->key == NULL) {
        snprintf(errmsg, errlen, "history line %zu: \"key\" must be a string", line);
        goto fail;
    }
    if (op->complete < op->invoke) {
        snprintf(errmsg, errlen, "history line %zu: \"complete\" is before \"invoke\"", line);
        goto fail;
    }
    if (op->kind == CHIST_WRITE) {
        if (get_int(o, "expected_version", false, &op->expected_version, line, errmsg, errlen) !=
                0 ||
            get_str(o, "request_id", false, &op->request_id, line, errmsg, errlen) != 0) {
            goto fail;
        }
        if (op->request_id == NULL || op->value == NULL || op->expected_version < 0) {
            snprintf(errmsg, errlen,
                     "history line %zu: a write needs \"request_id\", \"value\" and a "
                     "non-negative \"expected_version\"",
                     line);
            goto fail;
        }
        if (rollback &&
            (get_int(o, "target_version", false, &op->target_version, line, errmsg, errlen) != 0 ||
             op->target_version < 1 || op->target_version >= op->expected_version)) {
            snprintf(errmsg, errlen,
                     "history line %zu: a rollback needs a \"target_version\" from 1 to below "
                     "its \"expected_version\"",
                     line);
            goto fail;
        }
    }
    if (retries < 0 || retries > 1000) {
        snprintf(errmsg, errlen, "history line %zu: \"retries\" must be 0 to 1000", line);
        goto fail;
    }
    op->retries = (int)retries;
    op->client = (int)client;
    op->status = (int)status;
    json_decref(o);
    return 0;
fail:
    chist_op_free(op);
    json_decref(o);
    return -1;
}

/* Not definitive (docs/write-path.md): nothing was written (503, refused), or it is unknown
 * whether anything was (504, no answer). */
static bool not_definitive(int status)
{
    return status == 503 || status == 504 || status == 0 || status == -1;
}

long chist_check_answers(const struct chist *h, chist_report_fn report, void *ud)
{
    long violations = 0;
    char msg[512];
    for (size_t i = 0; i < h->n; i++) {
        const struct chist_op *op = &h->ops[i];
        int st = op->status;
        if (not_definitive(st)) {
            continue;
        }
        if (op->kind == CHIST_READ) {
            if (st == 200 || st == 404) {
                continue;
            }
            snprintf(msg, sizeof(msg), "read at line %zu was answered %d", op->line, st);
            report(ud, "unexpected answer", op->key, msg);
            violations++;
            continue;
        }
        if ((st >= 200 && st < 300) || st == 409) {
            continue;
        }
        if (op->retries > 0) {
            snprintf(msg, sizeof(msg),
                     "%s %s (line %zu) was answered %d to retry %d with the same request id, "
                     "not its first outcome",
                     op->target_version > 0 ? "rollback" : "write", op->request_id, op->line, st,
                     op->retries);
            report(ud, "retry refused", op->key, msg);
        } else {
            snprintf(msg, sizeof(msg), "%s %s (line %zu) was answered %d",
                     op->target_version > 0 ? "rollback" : "write", op->request_id, op->line, st);
            report(ud, "unexpected answer", op->key, msg);
        }
        violations++;
    }
    return violations;
}

int chist_append(struct chist *h, struct chist_op *op)
{
    /* Grows by doubling: capacity is the next power of two at or above n. */
    size_t cap = 1;
    while (cap < h->n) {
        cap *= 2;
    }
    if (h->n == 0 || h->n == cap) {
        size_t ncap = h->n == 0 ? 16 : cap * 2;
        struct chist_op *nops = realloc(h->ops, ncap * sizeof(*nops));
        if (nops == NULL) {
            chist_op_free(op);
            return -1;
        }
        h->ops = nops;
    }
    h->ops[h->n++] = *op;
    return 0;
}

int chist_load(const char *path, struct chist *h, char *errmsg, size_t errlen)
{
    h->ops = NULL;
    h->n = 0;
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        snprintf(errmsg, errlen, "cannot open history %s: %s", path, strerror(errno));
        return -1;
    }
    char *buf = NULL;
    size_t cap = 0;
    ssize_t len;
    size_t line = 0;
    int rc = 0;
    while ((len = getline(&buf, &cap, f)) >= 0) {
        line++;
        if (len == 0 || (len == 1 && buf[0] == '\n')) {
            continue;
        }
        struct chist_op op;
        if (chist_parse_line(buf, line, &op, errmsg, errlen) != 0) {
            rc = -1;
            break;
        }
        if (chist_append(h, &op) != 0) {
            snprintf(errmsg, errlen, "history %s: out of memory at line %zu", path, line);
            rc = -1;
            break;
        }
    }
    if (rc == 0 && ferror(f)) {
        snprintf(errmsg, errlen, "reading history %s failed", path);
        rc = -1;
    }
    free(buf);
    fclose(f);
    if (rc != 0) {
        chist_free(h);
    }
    return rc;
}
