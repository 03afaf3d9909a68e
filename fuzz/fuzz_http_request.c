/*
 * fuzz_http_request: the HTTP request parse path (src/http/http_request.c under http-parser)
 * on arbitrary bytes, without sockets.
 *
 * The target links http_request.c alone and plays the part of http_server.c's conn_drive():
 * a fake connection feeds the bytes to http_parser_execute() with the module's own callbacks,
 * in pieces whose sizes come from the input's first byte (so that callbacks see data split at
 * every place), with the server's limits on the head. http_server_conn_fail() and
 * http_server_conn_close() are replaced by stubs that end the connection as the real ones do
 * (no more parsing). Properties, after each complete head: http_request_headers_finalize()
 * returns 0 or 1; on 0 the path, query and method are set, every header name is
 * at most as long as the bytes received for it, no header value ends with a blank, and the header
 * array is NULL-terminated; a complete body has the length http-parser counted and a terminating
 * NUL. Nothing leaks.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/http_server_internal.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            abort();                                                                               \
    } while (0)

void http_server_conn_close(struct http_conn *c)
{
    c->closing = true;
}

void http_server_conn_fail(struct http_conn *c, const struct http_header *headers, int status,
                           const char *code, const char *fmt, ...)
{
    (void)headers;
    (void)code;
    (void)fmt;
    CHECK(status >= 400 && status <= 599);
    c->close_after = true;
}

/* What the server does when a head is complete: finalize it, check it. */
static void headers_done(struct http_conn *c)
{
    struct http_request *req = c->cur;
    int rc = http_request_headers_finalize(req);
    CHECK(rc == 0 || rc == 1);
    if (rc != 0) {
        c->close_after = true;
        return;
    }
    CHECK(req->path != NULL && req->query != NULL && req->method != NULL);
    size_t i = 0;
    for (; req->headers[i].name != NULL; i++) {
        const char *v = req->headers[i].value;
        size_t n = strlen(v);
        CHECK(strlen(req->headers[i].name) <= req->spans[i].name_len);
        CHECK(n == 0 || (v[n - 1] != ' ' && v[n - 1] != '\t'));
        CHECK(http_request_header(req, req->headers[i].name) != NULL);
    }
    CHECK(i == req->nspans);
    c->in_body = true;
}

static void message_done(struct http_conn *c)
{
    struct http_request *req = c->cur;
    size_t len = 0;
    const char *body = http_request_body(req, &len);
    CHECK(len == req->body_len);
    CHECK(body[len] == '\0');
    http_request_free(req);
    c->cur = NULL;
    c->in_body = false;
    c->hdr_bytes = 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t piece = (size_t)data[0] % 64 + 1;
    data++;
    size--;
    char *in = malloc(size ? size : 1);
    CHECK(in != NULL);
    memcpy(in, data, size);

    static struct http_server server;
    /* The defaults of http_config_init() (http_server.c, not linked here). */
    server.cfg.max_body_bytes = 1024 * 1024;
    server.cfg.max_header_bytes = 8 * 1024;
    server.cfg.max_url_bytes = 4 * 1024;
    server.cfg.max_headers = 100;
    memcpy(server.id_prefix, "fuzzfuzz", 9);
    struct http_conn *c = calloc(1, sizeof *c);
    CHECK(c != NULL);
    c->server = &server;
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;

    size_t pos = 0;
    /* Bounded: every pass consumes at least one byte or ends the loop. */
    while (pos < size && !c->closing && !c->close_after) {
        size_t avail = size - pos < piece ? size - pos : piece;
        bool in_head = !c->in_body;
        if (in_head && avail > server.cfg.max_header_bytes - c->hdr_bytes + 1)
            avail = server.cfg.max_header_bytes - c->hdr_bytes + 1;
        c->event = EV_NONE;
        size_t n = http_parser_execute(&c->parser, &http_request_parser_settings, in + pos, avail);
        CHECK(n <= avail);
        pos += n;
        if (in_head)
            c->hdr_bytes += n;
        if (c->closing || c->close_after)
            break;
        if (in_head && c->hdr_bytes > server.cfg.max_header_bytes)
            break;
        enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);
        if (e == HPE_PAUSED) {
            http_parser_pause(&c->parser, 0);
            if (c->event == EV_HEADERS)
                headers_done(c);
            else if (c->event == EV_MESSAGE)
                message_done(c);
            continue;
        }
        if (e != HPE_OK || n < avail)
            break;
    }
    if (c->cur)
        http_request_free(c->cur);
    free(c);
    free(in);
    return 0;
}
