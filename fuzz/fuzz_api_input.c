/*
 * fuzz_api_input: the JSON request body and query readers of the API (src/server/api_input.c).
 *
 * The input is a query string and a body separated by the first NUL byte (no NUL: all body).
 * The target links api_input.c and http_request.c alone, with a request built by hand and
 * stubs for api_error()/api_field_error() that record the answer. Properties: the body parser
 * (jansson with our flags) accepts only objects and answers 400 otherwise; each field reader
 * either succeeds or answers 400 exactly once, and a string field it returns has the length
 * limits it was asked for; api_input_query()/api_input_pct_decode() write a NUL-terminated
 * result shorter than the buffer and never a NUL inside; the page readers keep their limits.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/http_server_internal.h"
#include "server/api_internal.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            abort();                                                                               \
    } while (0)

/* http_request.c's parser callbacks call these; this target never runs the parser. */
void http_server_conn_close(struct http_conn *c)
{
    (void)c;
    abort();
}

void http_server_conn_fail(struct http_conn *c, const struct http_header *headers, int status,
                           const char *code, const char *fmt, ...)
{
    (void)c;
    (void)headers;
    (void)status;
    (void)code;
    (void)fmt;
    abort();
}

static int answers;
static int last_status;

void api_error(struct api_call *call, int status, const char *code, const char *fmt, ...)
{
    (void)call;
    (void)code;
    (void)fmt;
    answers++;
    last_status = status;
}

void api_field_error(struct api_call *call, const char *field, const char *fmt, ...)
{
    (void)call;
    CHECK(field != NULL);
    (void)fmt;
    answers++;
    last_status = 400;
}

static size_t code_points(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *nul = memchr(data, '\0', size);
    size_t qlen = nul ? (size_t)(nul - (const char *)data) : 0;
    size_t boff = nul ? qlen + 1 : 0;
    char *query = malloc(qlen + 1);
    size_t blen = size - boff;
    char *body = malloc(blen + 1);
    CHECK(query != NULL && body != NULL);
    memcpy(query, data, qlen);
    query[qlen] = '\0';
    memcpy(body, data + boff, blen);
    body[blen] = '\0';

    struct http_request req;
    memset(&req, 0, sizeof req);
    req.query = query;
    req.body = body;
    req.body_len = blen;
    struct api_call call;
    memset(&call, 0, sizeof call);
    call.req = &req;
    answers = 0;

    /* The query readers. */
    char out[64];
    int q = api_input_query(&call, "after", out, sizeof out);
    CHECK(q >= -1 && q <= 1);
    if (q == 1)
        CHECK(strlen(out) < sizeof out);
    CHECK(answers == 0); /* api_input_query() answers nothing */
    uint64_t u = 0;
    if (api_input_query_u64(&call, "version", 7, 1000, &u) == 0)
        CHECK(u <= 1000 && answers == 0);
    else
        CHECK(answers == 1 && last_status == 400);
    answers = 0;
    if (api_input_page_start(&call, true) == 0) {
        CHECK(answers == 0);
        CHECK(call.page_limit >= 1 && call.page_limit <= 1000);
        CHECK(call.page_after == NULL || api_input_is_uuid(call.page_after));
    } else {
        CHECK(answers == 1 && last_status == 400);
    }
    char dec[32];
    if (api_input_pct_decode(query, qlen, dec, sizeof dec, true) == 0)
        CHECK(strlen(dec) <= qlen && strlen(dec) < sizeof dec);

    /* The body readers. */
    answers = 0;
    if (api_input_body_object(&call) != 0) {
        CHECK(answers == 1 && last_status == 400 && call.body == NULL);
        goto done;
    }
    CHECK(answers == 0 && json_is_object(call.body));
    const char *s = NULL;
    if (api_input_field_string(&call, "name", true, 1, 10, &s) == 0) {
        CHECK(s != NULL && code_points(s) >= 1 && code_points(s) <= 10 && answers == 0);
    } else {
        CHECK(s == NULL && answers == 1);
    }
    answers = 0;
    bool b = false;
    if (api_input_field_bool(&call, "force", true, &b) != 0)
        CHECK(answers == 1);
    answers = 0;
    static const char *const allowed[] = {"name", "force", NULL};
    int k = api_input_fields_known(&call, allowed);
    CHECK(k == 0 ? answers == 0 : answers == 1);
    if (k == 0)
        CHECK(json_object_size(call.body) <= 2);
done:
    json_decref(call.body);
    free(query);
    free(body);
    return 0;
}
