/*
 * http_server: the HTTP/1.1 server of one node, on the node's libuv loop.
 *
 * The server parses requests with http-parser, hands each complete request to one handler
 * callback, and writes the answers back in request order (pipelining), whatever order the
 * handler produces them in. The handler answers asynchronously: it may call http_respond*()
 * from inside the callback or later, for instance from the after-work callback of a
 * uv_queue_work() job. Every function of this module must be called on the loop thread.
 *
 * Request lifetime, the rule everything else follows: the server allocates a request and
 * passes it to the handler; from then on the handler holds it and must call exactly one
 * http_respond*() function on it, which releases it. Until that call the request stays valid,
 * even when the client disconnects or the server closes meanwhile (http_request_cancelled()
 * then returns true and the response is discarded). A request the handler never answers leaks.
 *
 * docs/http.md describes the behaviour a client sees: keep-alive, limits, timeouts, log format.
 */
#ifndef CONCLAVE_HTTP_SERVER_H
#define CONCLAVE_HTTP_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <uv.h>

#include "http/http_response.h"

/* The longest request id, taken from X-Request-Id or generated, without its terminator. */
#define HTTP_REQUEST_ID_MAX 64

/* Receives one access-log line (no trailing newline). The line is only valid during the call. */
typedef void (*http_log_fn)(const char *line, void *data);

struct http_request;

/*
 * Receives the same event as the access log, structured: REQ was just answered with STATUS
 * (499 when its client was gone) SECONDS after its first byte arrived. REQ may only be read
 * (method, path, tag, ...) during the call; it may be one that failed before its request line
 * was parsed (method "", path "/").
 */
typedef void (*http_observe_fn)(const struct http_request *req, int status, double seconds,
                                void *data);

/*
 * Limits and timeouts. Fill with http_config_init() and then change fields; the server copies
 * the struct at init. The status a client gets when a limit is hit is in docs/http.md.
 */
struct http_config {
    size_t max_body_bytes;       /* request body, declared or chunked; default 1 MiB (413) */
    size_t max_header_bytes;     /* request line plus headers; default 8 KiB, max 64 KiB (431) */
    size_t max_url_bytes;        /* request target; default 4 KiB (414), <= max_header_bytes */
    size_t max_headers;          /* header fields per request; default 100 (431) */
    uint64_t request_timeout_ms; /* see docs/http.md "Timeouts"; default 10 s (408) */
    uint64_t idle_timeout_ms;    /* keep-alive connection with nothing in flight; default 60 s */
    unsigned max_connections;    /* open client connections; default 512 (503 beyond) */
    unsigned max_pipelined;      /* requests in flight per connection; default 32 */
    http_log_fn log;             /* access log; NULL writes lines to stderr */
    void *log_data;              /* passed to log; not owned */
    http_observe_fn observe;     /* with every access-log line; NULL: none (the default) */
    void *observe_data;          /* passed to observe; not owned */
    /* HTTPS: when non-NULL (http_tls_new()), every connection speaks TLS and nothing else.
     * Borrowed: it must outlive the server's close callback. NULL (the default): plain HTTP. */
    struct http_tls *tls;
    uint64_t tls_handshake_timeout_ms; /* from accept to a finished handshake; default 10 s */
};

struct http_request;
struct http_server;
struct http_conn;
struct http_tls;

/*
 * Called on the loop thread once per complete request. The handler takes over req (see the
 * lifetime rule at the top) and data is the pointer given to http_server_init().
 */
typedef void (*http_handler_fn)(struct http_request *req, void *data);

/* Called once every handle of the server is closed; the server may then be freed. */
typedef void (*http_server_close_cb)(struct http_server *server);

/* The server. Allocated by the caller; every field is private to http_server.c. */
struct http_server {
    uv_loop_t *loop;
    uv_tcp_t listener;
    struct http_config cfg;
    http_handler_fn handler;
    void *data;
    http_server_close_cb close_cb;
    struct http_conn *conns;       /* every connection not yet freed */
    unsigned nconns;               /* length of conns, counted against max_connections */
    unsigned nrejecting;           /* refused connections whose handle is still closing */
    struct http_request *detached; /* unanswered requests whose connection is gone */
    uint64_t next_id;              /* counter part of generated request ids */
    char id_prefix[9];             /* random part of generated request ids */
    int port;                      /* bound port, -1 before listen */
    bool closing;                  /* http_server_close() was called */
    bool listener_closed;          /* the listener's close callback ran */
    bool saturated;                /* at max_connections; logged once per episode */
};

/* Fills cfg with the defaults documented in struct http_config. */
void http_config_init(struct http_config *cfg);

/*
 * Prepares server on loop. cfg is copied (NULL means the defaults); handler and data are kept
 * and used until the close callback. On success the caller must eventually call
 * http_server_close() and run the loop until its callback before uv_loop_close(). On failure
 * nothing is left to release and errmsg says why (for instance an inconsistent config).
 */
int http_server_init(struct http_server *server, uv_loop_t *loop, const struct http_config *cfg,
                     http_handler_fn handler, void *data, char *errmsg, size_t errlen);

/*
 * Binds host (an IPv4 or IPv6 literal, not a name) and port (0 picks a free port) and starts
 * accepting. host is not kept. On failure the server is still initialised and must be closed.
 */
int http_server_listen(struct http_server *server, const char *host, int port, char *errmsg,
                       size_t errlen);

/* The bound port after a successful http_server_listen(), else -1. */
int http_server_port(const struct http_server *server);

/*
 * Stops accepting and closes every connection at once (responses not yet written are lost;
 * unanswered requests become cancelled but stay with their handler). close_cb (may be NULL)
 * runs from the loop once every handle is closed. Calling it again does nothing.
 */
void http_server_close(struct http_server *server, http_server_close_cb close_cb);

/*
 * Request accessors. Every returned pointer is owned by req and valid until req is answered.
 * Strings are NUL-terminated and never NULL unless stated.
 */
const char *http_request_method(const struct http_request *req); /* "GET", "POST", ... */
const char *http_request_path(const struct http_request *req);   /* still percent-encoded */
const char *http_request_query(const struct http_request *req);  /* raw, without '?'; "" */
const char *http_request_id(const struct http_request *req);

/* Attaches TAG to req for the observer (the API tags its route pattern). TAG is kept by pointer,
 * not copied: it must outlive req, typically a static string. */
void http_request_set_tag(struct http_request *req, const char *tag);

/* The tag set by http_request_set_tag(), or NULL. */
const char *http_request_tag(const struct http_request *req);

/* The uv_hrtime() at which the first byte of req was parsed (the start of the request's
 * conclave_http_request_duration_seconds and of a write's "HTTP in" phase). */
uint64_t http_request_start_ns(const struct http_request *req);

/* The first header named name (case-insensitive), value without surrounding blanks; or NULL. */
const char *http_request_header(const struct http_request *req, const char *name);

/* The TCP peer's IP address as text into OUT (LEN bytes; 46 hold any), "" when unknown (the
 * connection is gone). Never a forwarding header: those are the client's to invent. */
void http_request_peer_ip(const struct http_request *req, char *out, size_t len);

/* Every header in arrival order, ending with a NULL name. */
const struct http_header *http_request_headers(const struct http_request *req);

/* The decoded body (chunked bodies are joined) and its length; "" and 0 when there is none.
 * The body is followed by a NUL byte that len does not count. len may be NULL. */
const char *http_request_body(const struct http_request *req, size_t *len);

/* True once the connection is gone (client left, timeout, server closing): the answer will be
 * discarded, so the handler may skip its work, but it must still answer to release req. */
bool http_request_cancelled(const struct http_request *req);

/*
 * Answer functions. Each consumes req: it must not be used afterwards. None can fail from the
 * caller's point of view: a response that cannot be built (bad status, a header the server
 * sets itself such as Content-Length or Connection, CR/LF in a value, JSON that cannot be
 * encoded) is replaced by a 500 with an "internal" error body and the cause goes to the log.
 *
 * http_respond: headers (may be NULL) and body (len bytes, may be NULL when len is 0) are
 * copied, the caller keeps them. Without a Content-Type header the type is
 * "text/plain; charset=utf-8".
 */
void http_respond(struct http_request *req, int status, const struct http_header *headers,
                  const void *body, size_t len);

/* Sends body as compact JSON with Content-Type application/json. Steals the reference to body
 * (so json_pack() can be passed directly); NULL body sends a 500. */
void http_respond_json(struct http_request *req, int status, json_t *body);

/* As http_respond_json, plus extra headers (copied, may be NULL), e.g. Retry-After. */
void http_respond_json_ex(struct http_request *req, int status, const struct http_header *headers,
                          json_t *body);

/* Sends {"error": code, "message": <formatted>} as JSON. code is copied. */
void http_respond_error(struct http_request *req, int status, const char *code, const char *fmt,
                        ...) __attribute__((format(printf, 4, 5)));

/*
 * As http_respond_error, plus headers (copied, may be NULL) and extra fields merged into the
 * body (e.g. current_version for 409, errors for 422). extra's reference is stolen and may be
 * NULL; its "error" and "message" keys are ignored.
 */
void http_respond_error_ex(struct http_request *req, int status, const struct http_header *headers,
                           json_t *extra, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

#endif
