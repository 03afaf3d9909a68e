/*
 * The HTTP/1.1 side of the load generator: a growable byte buffer for requests and bodies, and
 * a response reader over http-parser that understands Content-Length, chunked bodies and
 * keep-alive. One response is read at a time (requests are never pipelined).
 */
#ifndef LG_HTTP_H
#define LG_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#include <http_parser.h>

struct lg_buf {
    char *p; /* NUL-terminated after every append; owned */
    size_t len;
    size_t cap;
};

/* An empty buffer; nothing is allocated until the first append. */
void lg_buf_init(struct lg_buf *b);
/* Empties the buffer and keeps its memory. */
void lg_buf_reset(struct lg_buf *b);
/* Appends LEN bytes. Returns 0, or -1 when memory runs out (B is unchanged). */
int lg_buf_add(struct lg_buf *b, const char *data, size_t len);
/* Appends printf-formatted text. Returns 0 or -1 (out of memory or a format error). */
int lg_buf_printf(struct lg_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Frees the memory; B may be reused after lg_buf_init. */
void lg_buf_free(struct lg_buf *b);

struct lg_resp {
    http_parser parser;
    int status;         /* the status code once the headers are read, else 0 */
    bool complete;      /* the whole response was read */
    bool keep_alive;    /* the connection may carry the next request */
    struct lg_buf body; /* the decoded body; owned */
    char error[160];    /* why lg_resp_feed failed */
};

/* Prepares R for the next response on a connection (memory of the body is kept). */
void lg_resp_start(struct lg_resp *r);

/* Feeds bytes read from the connection. Returns 0 (read more unless R->complete), or -1 with
 * R->error set: malformed HTTP, bytes after the end of the response (nothing was pipelined, so
 * they cannot belong to anything), or out of memory. */
int lg_resp_feed(struct lg_resp *r, const char *data, size_t len);

/* Tells R that the peer closed the connection; a body delimited by the close ends here.
 * Returns 0 when that completed the response, -1 (error set) when it was cut short. */
int lg_resp_eof(struct lg_resp *r);

/* Frees what R owns. */
void lg_resp_free(struct lg_resp *r);

#endif
