/* Request buffers and the response reader of the load generator (see lg_http.h). */
#include "lg_http.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void lg_buf_init(struct lg_buf *b)
{
    memset(b, 0, sizeof *b);
}

void lg_buf_reset(struct lg_buf *b)
{
    b->len = 0;
    if (b->p) {
        b->p[0] = '\0';
    }
}

static int buf_reserve(struct lg_buf *b, size_t extra)
{
    size_t need = b->len + extra + 1;
    if (need <= b->cap) {
        return 0;
    }
    size_t cap = b->cap ? b->cap : 512;
    while (cap < need) {
        cap *= 2;
    }
    char *p = realloc(b->p, cap);
    if (!p) {
        return -1;
    }
    b->p = p;
    b->cap = cap;
    return 0;
}

int lg_buf_add(struct lg_buf *b, const char *data, size_t len)
{
    if (buf_reserve(b, len) != 0) {
        return -1;
    }
    memcpy(b->p + b->len, data, len);
    b->len += len;
    b->p[b->len] = '\0';
    return 0;
}

int lg_buf_printf(struct lg_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || buf_reserve(b, (size_t)n) != 0) {
        return -1;
    }
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

void lg_buf_free(struct lg_buf *b)
{
    free(b->p);
    lg_buf_init(b);
}

static int on_headers_complete(http_parser *p)
{
    struct lg_resp *r = p->data;
    r->status = (int)p->status_code;
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    struct lg_resp *r = p->data;
    if (lg_buf_add(&r->body, at, len) != 0) {
        snprintf(r->error, sizeof r->error, "out of memory reading a response body");
        return 1;
    }
    return 0;
}

static int on_message_complete(http_parser *p)
{
    struct lg_resp *r = p->data;
    r->complete = true;
    r->keep_alive = http_should_keep_alive(p) != 0;
    /* Stop right after this message: http-parser would otherwise go on and parse whatever
     * follows as the next response, and those bytes could not belong to anything. */
    http_parser_pause(p, 1);
    return 0;
}

static const http_parser_settings settings = {
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

void lg_resp_start(struct lg_resp *r)
{
    http_parser_init(&r->parser, HTTP_RESPONSE);
    r->parser.data = r;
    r->status = 0;
    r->complete = false;
    r->keep_alive = false;
    lg_buf_reset(&r->body);
    r->error[0] = '\0';
}

int lg_resp_feed(struct lg_resp *r, const char *data, size_t len)
{
    if (r->complete) {
        if (len > 0) {
            snprintf(r->error, sizeof r->error, "%zu unexpected bytes after a complete response",
                     len);
            return -1;
        }
        return 0;
    }
    size_t used = http_parser_execute(&r->parser, &settings, data, len);
    if (r->error[0]) {
        return -1;
    }
    if (HTTP_PARSER_ERRNO(&r->parser) != HPE_OK && HTTP_PARSER_ERRNO(&r->parser) != HPE_PAUSED) {
        snprintf(r->error, sizeof r->error, "malformed response: %s",
                 http_errno_description(HTTP_PARSER_ERRNO(&r->parser)));
        return -1;
    }
    if (used < len) {
        snprintf(r->error, sizeof r->error, "%zu unexpected bytes after a complete response",
                 len - used);
        return -1;
    }
    return 0;
}

int lg_resp_eof(struct lg_resp *r)
{
    if (!r->complete) {
        /* A zero-length execute tells http-parser about the close; a body delimited by the
         * close completes here, anything else is an error. */
        http_parser_execute(&r->parser, &settings, NULL, 0);
    }
    if (!r->complete) {
        snprintf(r->error, sizeof r->error, "connection closed before the response ended");
        return -1;
    }
    r->keep_alive = false;
    return 0;
}

void lg_resp_free(struct lg_resp *r)
{
    lg_buf_free(&r->body);
}
