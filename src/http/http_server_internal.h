/*
 * http_server_internal: the HTTP server module's one private header: what http_server.c
 * (connections, writing, timers, the listener) and http_request.c (a request's storage, the
 * parser callbacks that fill it, its accessors) share. It includes only the module's public
 * http_server.h; nothing but those two files includes it.
 */
#ifndef CONCLAVE_HTTP_SERVER_INTERNAL_H
#define CONCLAVE_HTTP_SERVER_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <http_parser.h>
#include <uv.h>

#include "http/http_server.h"

struct http_tls_conn; /* http/http_tls.h */

/* Bytes read from a socket at once. Reading pauses while unparsed bytes remain, so this is
 * also the most a connection buffers ahead of the parser. */
#define READ_BUF_SIZE  16384
#define LISTEN_BACKLOG 511
/* After our last response we drain the client's remaining bytes this long at most, so that
 * closing with unread data does not reset the connection and destroy that response. */
#define LINGER_MAX_MS 2000
/* The longest path written to the access log. */
#define LOG_PATH_MAX 256

#define REJECT_BODY   "{\"error\":\"unavailable\",\"message\":\"too many open connections\"}"
#define FALLBACK_BODY "{\"error\":\"internal\",\"message\":\"the response could not be built\"}"
#define CONTINUE_LINE "HTTP/1.1 100 Continue\r\n\r\n"

/* A connection's single timer serves one purpose at a time; docs/http.md "Timeouts". */
enum conn_timer {
    TIMER_NONE,      /* waiting for the handler: its business, not the client's */
    TIMER_IDLE,      /* nothing in flight: request_timeout before the first request, then idle */
    TIMER_REQUEST,   /* a request is partly received: 408 when it expires */
    TIMER_WRITE,     /* answers wait for the client to read them */
    TIMER_LINGER,    /* our side is shut down; draining the client's last bytes */
    TIMER_HANDSHAKE, /* HTTPS: the TLS handshake is not finished; never restarted by progress */
};

/* What paused the parser, handled by conn_drive() outside of http-parser's callbacks. */
enum conn_event { EV_NONE, EV_HEADERS, EV_MESSAGE };

/* Where a header field lives in a request's arena until the headers are complete. */
struct hdr_span {
    size_t name_off, name_len;
    size_t value_off, value_len; /* value_off is SIZE_MAX for a field without value bytes */
};

struct http_request {
    struct http_server *server; /* NULL once detached and the server closed: no access log */
    struct http_conn *conn;     /* NULL once detached: the answer will be discarded */
    struct http_request *next;  /* conn's queue, or server->detached */
    struct http_request *prev;  /* server->detached only */
    uint64_t start_ns;
    const char *method; /* http-parser's static name, NULL until the request line is read */
    bool head;          /* HEAD: answers carry no body bytes */
    bool http10;
    bool keep_alive;
    bool dispatched; /* handed to the handler: from then on only the handler answers it */
    bool responded;

    /* The target and the header fields, copied as the parser delivers them in pieces: the
     * target at offset 0, then each name and value, each followed by a NUL. Offsets only
     * while receiving; headers_finalize() sets the pointers below, after which the arena
     * never grows again (trailer fields of chunked bodies are dropped). */
    char *arena;
    size_t arena_len, arena_cap;
    size_t url_len;
    enum { PART_URL, PART_FIELD, PART_VALUE } part;
    struct hdr_span *spans;
    size_t nspans, spans_cap;
    struct http_header *headers; /* nspans entries and a NULL name */
    const char *path;
    const char *query;

    char *body; /* body_len bytes and a NUL, or NULL when empty */
    size_t body_len, body_cap;
    char id[HTTP_REQUEST_ID_MAX + 1];
    const char *tag; /* http_request_set_tag(); not owned */

    char *out; /* the serialised answer, waiting for the earlier ones to be written */
    size_t out_len;
};

struct http_conn {
    struct http_server *server;
    struct http_conn *next, *prev; /* server->conns */
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_shutdown_t shutdown;
    http_parser parser;
    struct http_request *cur;         /* being received; NULL between requests */
    struct http_request *head, *tail; /* received, answer not yet written, arrival order */
    struct http_tls_conn *tls;        /* HTTPS only: the session rbuf is decrypted by; owned */
    unsigned nqueued;                 /* length of head..tail */
    unsigned writes_pending;          /* uv_write()s without callback yet */
    size_t rpos, rlen;                /* rbuf[rpos..rlen) is not parsed yet */
    size_t hdr_bytes;                 /* head bytes of the request being received */
    int handles_open;                 /* tcp and timer until their close callbacks ran */
    enum conn_event event;
    enum conn_timer timer_mode;
    bool reading;
    bool in_drive;         /* conn_drive() is on the stack; nested calls return at once */
    bool in_body;          /* cur's headers are complete */
    bool served;           /* a request has started on this connection */
    bool timer_reset;      /* progress was made: restart the current timer */
    bool continue_pending; /* cur awaits "100 Continue" until earlier answers are written */
    bool close_after;      /* read no more requests; close once every answer is written */
    bool finishing;        /* shut down after the last answer, draining the client */
    bool closing;          /* uv_close() called; freed when both handles report closed */
    char rbuf[READ_BUF_SIZE];
};

struct http_write {
    uv_write_t req;
    char *data;
};

/* ---- http_request.c ---- */

/* The callbacks that fill a connection's current request; conn_drive() runs the parser. */
extern const http_parser_settings http_request_parser_settings;

/* A new request on C (not yet queued), or NULL when out of memory. */
struct http_request *http_request_new(struct http_conn *c);
/* Frees REQ and everything it owns; REQ must not be linked anywhere. */
void http_request_free(struct http_request *req);
/* The connection is going away with REQ unanswered: REQ stays with its handler, on the
 * server's detached list (or on none once the server is closing). */
void http_request_detach(struct http_request *req);
/* Unlinks a detached REQ from the server's list and frees it. */
void http_request_release_detached(struct http_request *req);
/* Turns the arena's offsets into REQ's header array, path and query. Returns 0, -1 when out
 * of memory, or 1 when the target is not a valid URL. */
int http_request_headers_finalize(struct http_request *req);

/* ---- http_server.c ---- */

/* Closes C at once, dropping unwritten answers (see the definition). */
void http_server_conn_close(struct http_conn *c);
/* Ends C on a protocol error or limit: an error answer behind those still owed, then close. */
void http_server_conn_fail(struct http_conn *c, const struct http_header *headers, int status,
                           const char *code, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

#endif /* CONCLAVE_HTTP_SERVER_INTERNAL_H */
