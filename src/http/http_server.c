#include "http/http_server.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <http_parser.h>

#include "http/http_server_internal.h"
#include "http/http_response.h"
#include "http/http_tls.h"

static void conn_drive(struct http_conn *c);

/* ---------------------------------------------------------------- logging */

static void log_stderr(const char *line, void *data)
{
    (void)data;
    fprintf(stderr, "%s\n", line);
}

static void server_log(struct http_server *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void server_log(struct http_server *s, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    s->cfg.log(line, s->cfg.log_data);
}

/* Copies the path of req for the log: never the query (it may hold secrets), at most
 * LOG_PATH_MAX bytes, bytes outside printable ASCII as %XX so a line stays one line. */
static void log_path(const struct http_request *req, char *dst, size_t dstlen)
{
    const char *src = req->path;
    size_t len = src ? strlen(src) : 0;
    if (!src && req->url_len > 0) {
        /* The request failed before its target was parsed: log the raw target's path. */
        src = req->arena;
        len = req->url_len;
    }
    if (!src || len == 0) {
        snprintf(dst, dstlen, "-");
        return;
    }
    size_t o = 0;
    for (size_t i = 0; i < len && src[i] != '?' && src[i] != '\0'; i++) {
        if (i >= LOG_PATH_MAX || o + 4 >= dstlen) {
            snprintf(dst + o, dstlen - o, "...");
            return;
        }
        unsigned char ch = (unsigned char)src[i];
        if (ch > 0x20 && ch < 0x7f) {
            dst[o++] = (char)ch;
        } else {
            snprintf(dst + o, dstlen - o, "%%%02X", ch);
            o += 3;
        }
    }
    dst[o] = '\0';
}

static void access_log(const struct http_request *req, int status)
{
    if (!req->server)
        return;
    char path[LOG_PATH_MAX * 3 + 8];
    log_path(req, path, sizeof path);
    uint64_t elapsed_ns = uv_hrtime() - req->start_ns;
    double ms = (double)elapsed_ns / 1e6;
    server_log(req->server, "http method=%s path=%s status=%d ms=%.2f rid=%s",
               req->method ? req->method : "-", path, status, ms, req->id);
    if (req->server->cfg.observe)
        req->server->cfg.observe(req, status, (double)elapsed_ns / 1e9,
                                 req->server->cfg.observe_data);
}

/* ---------------------------------------------------------------- writing */

static void on_write(uv_write_t *wreq, int status)
{
    struct http_write *w = (struct http_write *)wreq;
    struct http_conn *c = wreq->data;
    free(w->data);
    free(w);
    c->writes_pending--;
    if (c->closing)
        return;
    if (status < 0) {
        http_server_conn_close(c);
        return;
    }
    if (c->timer_mode == TIMER_WRITE)
        c->timer_reset = true;
    conn_drive(c);
}

/* Queues data (malloc'ed, taken over in every case) on the socket as it is. */
static void conn_write_raw(struct http_conn *c, char *data, size_t len)
{
    struct http_write *w = malloc(sizeof *w);
    if (!w || len > UINT32_MAX) {
        free(w);
        free(data);
        http_server_conn_close(c);
        return;
    }
    w->data = data;
    w->req.data = c;
    uv_buf_t buf = uv_buf_init(data, (unsigned int)len);
    if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &buf, 1, on_write) != 0) {
        free(data);
        free(w);
        http_server_conn_close(c);
        return;
    }
    c->writes_pending++;
}

/* HTTPS: writes whatever ciphertext the TLS session has for the client. */
static void conn_tls_flush(struct http_conn *c)
{
    char *out;
    size_t len;
    if (http_tls_conn_output(c->tls, &out, &len) != 0) {
        http_server_conn_close(c);
        return;
    }
    if (out != NULL)
        conn_write_raw(c, out, len);
}

/* Queues data (malloc'ed, taken over in every case) for the client: through TLS on HTTPS. */
static void conn_write(struct http_conn *c, char *data, size_t len)
{
    char err[600];
    if (c->tls == NULL) {
        conn_write_raw(c, data, len);
        return;
    }
    int rc = http_tls_conn_write(c->tls, data, len, err, sizeof err);
    free(data);
    if (rc != 0) {
        server_log(c->server, "http tls: connection from %s closed: %s", http_tls_conn_peer(c->tls),
                   err);
        http_server_conn_close(c);
        return;
    }
    conn_tls_flush(c);
}

/* ---------------------------------------------------------------- HTTPS */

/* Ends an HTTPS connection whose TLS session failed. Before the handshake nothing is owed,
 * so OpenSSL's alert goes out and the connection ends the ordinary way; after it, answers
 * still owed cannot be sent, so it closes at once. */
static void conn_tls_fail(struct http_conn *c, const char *why)
{
    server_log(c->server, "http tls: connection from %s closed: %s", http_tls_conn_peer(c->tls),
               why);
    if (c->head != NULL || http_tls_conn_established(c->tls)) {
        http_server_conn_close(c);
        return;
    }
    conn_tls_flush(c);
    c->close_after = true;
}

/* Plain HTTP on the HTTPS port: one plain answer that says so, then the connection ends. */
static void conn_tls_refuse_plain(struct http_conn *c)
{
    static const char body[] = "{\"error\":\"bad_request\",\"message\":\"this port speaks "
                               "https only: use an https:// url\"}";
    char head[256], date[HTTP_DATE_SIZE];
    http_response_date(time(NULL), date);
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 400 Bad Request\r\nDate: %s\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                     date, sizeof body - 1);
    size_t len = (size_t)n + sizeof body - 1;
    char *out = malloc(len);
    server_log(c->server, "http tls: connection from %s closed: plain http on the https port",
               http_tls_conn_peer(c->tls));
    c->close_after = true;
    if (out == NULL) {
        http_server_conn_close(c);
        return;
    }
    memcpy(out, head, (size_t)n);
    memcpy(out + n, body, sizeof body - 1);
    conn_write_raw(c, out, len);
}

/* Ciphertext arrived in the session's buffer: hand it over, then let conn_drive() decrypt. */
static void conn_tls_received(struct http_conn *c, size_t n)
{
    char err[256];
    int rc = http_tls_conn_received(c->tls, n, err, sizeof err);
    if (rc == HTTP_TLS_PLAIN)
        conn_tls_refuse_plain(c);
    else if (rc != 0)
        conn_tls_fail(c, err);
    conn_drive(c);
}

/* Refills rbuf, which the parser has consumed, with plaintext the session can decrypt from
 * what it holds. False when it needs more ciphertext first (or the connection ended). */
static bool conn_tls_fill(struct http_conn *c)
{
    char err[600];
    if (c->tls == NULL)
        return false;
    ssize_t n = http_tls_conn_read(c->tls, c->rbuf, sizeof c->rbuf, err, sizeof err);
    if (n == HTTP_TLS_FAILED) {
        conn_tls_fail(c, err);
        return false;
    }
    conn_tls_flush(c); /* handshake messages */
    if (c->closing)
        return false;
    if (n == HTTP_TLS_CLOSED) {
        /* close_notify: as end of file on plain HTTP, no request can follow. */
        http_server_conn_close(c);
        return false;
    }
    if (n <= 0)
        return false;
    c->rpos = 0;
    c->rlen = (size_t)n;
    return true;
}

/* Gives a new HTTPS connection its session. Returns -1 after closing C. */
static int conn_tls_start(struct http_conn *c)
{
    struct sockaddr_storage addr;
    int len = sizeof addr;
    char peer[64] = "?", ip[INET6_ADDRSTRLEN] = "?", err[256];
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&addr, &len) == 0) {
        if (addr.ss_family == AF_INET6) {
            uv_ip6_name((struct sockaddr_in6 *)&addr, ip, sizeof ip);
            snprintf(peer, sizeof peer, "[%s]:%u", ip,
                     ntohs(((struct sockaddr_in6 *)&addr)->sin6_port));
        } else {
            uv_ip4_name((struct sockaddr_in *)&addr, ip, sizeof ip);
            snprintf(peer, sizeof peer, "%s:%u", ip,
                     ntohs(((struct sockaddr_in *)&addr)->sin_port));
        }
    }
    c->tls = http_tls_conn_new(c->server->cfg.tls, peer, err, sizeof err);
    if (c->tls == NULL) {
        server_log(c->server, "http tls: connection from %s refused: %s", peer, err);
        http_server_conn_close(c);
        return -1;
    }
    return 0;
}

static void conn_send_continue(struct http_conn *c)
{
    char *data = strdup(CONTINUE_LINE);
    c->continue_pending = false;
    if (!data) {
        http_server_conn_close(c);
        return;
    }
    conn_write(c, data, strlen(CONTINUE_LINE));
}

/* Writes every answer at the head of the queue that is ready, in request order. */
static void conn_flush(struct http_conn *c)
{
    while (!c->closing && c->head && c->head->responded) {
        struct http_request *req = c->head;
        c->head = req->next;
        if (!c->head)
            c->tail = NULL;
        c->nqueued--;
        char *out = req->out;
        size_t out_len = req->out_len;
        req->out = NULL;
        http_request_free(req);
        conn_write(c, out, out_len);
    }
    /* "100 Continue" must not overtake answers to earlier requests. */
    if (!c->closing && c->continue_pending && !c->head)
        conn_send_continue(c);
    conn_drive(c);
}

/*
 * Serialises an answer into req and logs it. For a detached request only the log line (with
 * status 499: nobody receives it) and the release happen.
 */
static void request_answer(struct http_request *req, int status, const struct http_header *headers,
                           const char *content_type, const void *body, size_t len)
{
    struct http_conn *c = req->conn;
    char err[256];

    req->responded = true;
    if (!c) {
        access_log(req, 499);
        http_request_release_detached(req);
        return;
    }
    struct http_response_head h = {
        .status = status,
        .request_id = req->id,
        .content_type = content_type,
        .close = !req->keep_alive,
        .keep_alive = req->keep_alive && req->http10,
        .omit_body = req->head,
    };
    if (http_response_build(&h, headers, body, len, &req->out, &req->out_len, err, sizeof err) !=
        0) {
        server_log(c->server, "http respond rid=%s: %s; sending 500 instead", req->id, err);
        h.status = status = 500;
        h.content_type = "application/json";
        if (http_response_build(&h, NULL, FALLBACK_BODY, strlen(FALLBACK_BODY), &req->out,
                                &req->out_len, err, sizeof err) != 0) {
            access_log(req, status);
            http_server_conn_close(c); /* frees req: it is answered */
            return;
        }
    }
    access_log(req, status);
    conn_flush(c);
}

/* ---------------------------------------------------------------- answering, public */

void http_respond(struct http_request *req, int status, const struct http_header *headers,
                  const void *body, size_t len)
{
    request_answer(req, status, headers, "text/plain; charset=utf-8", body, len);
}

void http_respond_json_ex(struct http_request *req, int status, const struct http_header *headers,
                          json_t *body)
{
    size_t len = 0;
    const char *why = body ? "cannot be encoded" : "missing";
    char *text = body ? http_response_dump(body, &len) : NULL;
    json_decref(body);
    if (!text) {
        if (req->server)
            server_log(req->server, "http respond rid=%s: JSON body %s; sending 500 instead",
                       req->id, why);
        request_answer(req, 500, NULL, "application/json", FALLBACK_BODY, strlen(FALLBACK_BODY));
        return;
    }
    request_answer(req, status, headers, "application/json", text, len);
    free(text);
}

void http_respond_json(struct http_request *req, int status, json_t *body)
{
    http_respond_json_ex(req, status, NULL, body);
}

static void respond_error_v(struct http_request *req, int status, const struct http_header *headers,
                            json_t *extra, const char *code, const char *fmt, va_list ap)
    __attribute__((format(printf, 6, 0)));

static void respond_error_v(struct http_request *req, int status, const struct http_header *headers,
                            json_t *extra, const char *code, const char *fmt, va_list ap)
{
    char message[512];
    vsnprintf(message, sizeof message, fmt, ap);
    /* Keep a reference to extra: a message that is not valid UTF-8 (say, echoing client
     * input) is retried in ASCII rather than turning a 4xx into a 500. */
    json_incref(extra);
    json_t *body = http_response_error_body(code, message, extra);
    if (body) {
        json_decref(extra);
    } else {
        for (char *p = message; *p; p++)
            if ((unsigned char)*p >= 0x80)
                *p = '?';
        body = http_response_error_body(code, message, extra);
    }
    http_respond_json_ex(req, status, headers, body);
}

void http_respond_error(struct http_request *req, int status, const char *code, const char *fmt,
                        ...)
{
    va_list ap;
    va_start(ap, fmt);
    respond_error_v(req, status, NULL, NULL, code, fmt, ap);
    va_end(ap);
}

void http_respond_error_ex(struct http_request *req, int status, const struct http_header *headers,
                           json_t *extra, const char *code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    respond_error_v(req, status, headers, extra, code, fmt, ap);
    va_end(ap);
}

/* ---------------------------------------------------------------- connection state */

/* Appends REQ to the connection's queue of answers owed, in arrival order. The queue holds
 * REQ from here on: conn_flush() frees it once its answer is written; closing the connection
 * frees it, or detaches it while a handler still owes its answer. */
static void conn_enqueue(struct http_conn *c, struct http_request *req)
{
    req->next = NULL;
    if (c->tail)
        c->tail->next = req;
    else
        c->head = req;
    c->tail = req;
    c->nqueued++;
}

/*
 * Ends the connection on a protocol error or limit: the request being received (or a new one
 * standing for it) gets an error answer queued behind the answers still owed, reading stops,
 * and the connection closes once that answer is written.
 */
void http_server_conn_fail(struct http_conn *c, const struct http_header *headers, int status,
                           const char *code, const char *fmt, ...)
{
    if (c->closing || c->close_after)
        return;
    struct http_request *req = c->cur ? c->cur : http_request_new(c);
    c->cur = NULL;
    if (!req) {
        http_server_conn_close(c);
        return;
    }
    c->in_body = false;
    c->close_after = true;
    c->continue_pending = false;
    req->keep_alive = false;
    conn_enqueue(c, req);
    va_list ap;
    va_start(ap, fmt);
    respond_error_v(req, status, headers, NULL, code, fmt, ap);
    va_end(ap);
}

static bool method_supported(unsigned method)
{
    switch (method) {
    case HTTP_GET:
    case HTTP_HEAD:
    case HTTP_POST:
    case HTTP_PUT:
    case HTTP_PATCH:
    case HTTP_DELETE:
    case HTTP_OPTIONS:
        return true;
    default:
        return false;
    }
}

/* The head of c->cur is complete: check it before any body byte is accepted. */
static void conn_headers_done(struct http_conn *c)
{
    static const struct http_header allow[] = {
        {"Allow", "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"}, {NULL, NULL}};
    struct http_server *s = c->server;
    struct http_request *req = c->cur;
    http_parser *p = &c->parser;

    c->in_body = true;
    req->http10 = p->http_major == 1 && p->http_minor == 0;
    if (p->http_major != 1) {
        http_server_conn_fail(c, NULL, 505, "http_version_not_supported",
                              "HTTP/%u.%u is not supported", (unsigned)p->http_major,
                              (unsigned)p->http_minor);
        return;
    }
    if (!method_supported(p->method)) {
        http_server_conn_fail(c, allow, 405, "method_not_allowed", "method %s is not supported",
                              http_method_str((enum http_method)p->method));
        return;
    }
    int rc = http_request_headers_finalize(req);
    if (rc < 0) {
        http_server_conn_close(c);
        return;
    }
    if (rc > 0) {
        http_server_conn_fail(c, NULL, 400, "bad_request", "malformed request target");
        return;
    }
    if (!req->http10 && !http_request_header(req, "Host")) {
        http_server_conn_fail(c, NULL, 400, "bad_request", "HTTP/1.1 request without Host header");
        return;
    }
    bool chunked = p->flags & F_CHUNKED;
    bool has_length = !chunked && p->content_length != UINT64_MAX;
    if (has_length && p->content_length > s->cfg.max_body_bytes) {
        http_server_conn_fail(c, NULL, 413, "payload_too_large", "request body exceeds %zu bytes",
                              s->cfg.max_body_bytes);
        return;
    }
    const char *expect = http_request_header(req, "Expect");
    if (expect) {
        if (strcasecmp(expect, "100-continue") != 0) {
            http_server_conn_fail(c, NULL, 417, "expectation_failed", "unsupported Expect header");
            return;
        }
        /* HTTP/1.0 clients do not know 100 (RFC 9110 10.1.1); bodiless requests need none. */
        if (!req->http10 && (chunked || (has_length && p->content_length > 0))) {
            if (c->head)
                c->continue_pending = true;
            else
                conn_send_continue(c);
        }
    }
    if (has_length && p->content_length > 0) {
        req->body_cap = (size_t)p->content_length + 1;
        req->body = malloc(req->body_cap);
        if (!req->body)
            http_server_conn_close(c);
    }
}

/* c->cur is complete: queue it for its answer and give it to the handler. */
static void conn_message_done(struct http_conn *c)
{
    struct http_server *s = c->server;
    struct http_request *req = c->cur;

    c->cur = NULL;
    c->in_body = false;
    c->hdr_bytes = 0;
    c->continue_pending = false;
    /* An Upgrade is never honoured; what the client sends after it may not be HTTP. */
    req->keep_alive = http_should_keep_alive(&c->parser) && !c->parser.upgrade;
    if (!req->keep_alive)
        c->close_after = true;
    conn_enqueue(c, req);
    req->dispatched = true;
    s->handler(req, s->data); /* may answer, and so free req, before returning */
}

/* Answers not yet completely written, counted against max_pipelined: bounding them bounds
 * both the handler work and the unsent output one connection can cause. */
static bool conn_saturated(const struct http_conn *c)
{
    return c->nqueued + c->writes_pending >= c->server->cfg.max_pipelined;
}

static void on_timer(uv_timer_t *timer);

static void conn_settle_timer(struct http_conn *c)
{
    const struct http_config *cfg = &c->server->cfg;
    enum conn_timer want;
    uint64_t ms = cfg->request_timeout_ms;

    if (c->tls && !http_tls_conn_established(c->tls)) {
        want = TIMER_HANDSHAKE;
        ms = cfg->tls_handshake_timeout_ms;
    } else if (c->cur)
        want = TIMER_REQUEST;
    else if (c->writes_pending)
        want = TIMER_WRITE;
    else if (c->head || c->close_after)
        want = TIMER_NONE;
    else
        want = TIMER_IDLE;
    if (want == TIMER_IDLE && c->served)
        ms = cfg->idle_timeout_ms;
    /* Progress restarts the timer only in the body of a request and while writing: the head
     * of a request must arrive within one request_timeout as a whole. */
    bool restart =
        want != c->timer_mode || (c->timer_reset && (want == TIMER_WRITE || want == TIMER_REQUEST));
    c->timer_reset = false;
    if (!restart)
        return;
    c->timer_mode = want;
    if (want == TIMER_NONE)
        uv_timer_stop(&c->timer);
    else
        uv_timer_start(&c->timer, on_timer, ms, 0);
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    struct http_conn *c = handle->data;
    (void)suggested;
    /* Reading only runs once rbuf is fully parsed (or when draining, where it is junk);
     * anything else is a bug, answered with an empty buffer and thus UV_ENOBUFS. */
    if (!c->finishing && c->rpos < c->rlen) {
        *buf = uv_buf_init(NULL, 0);
    } else if (c->tls && !c->finishing) {
        size_t len;
        char *p = http_tls_conn_inbuf(c->tls, &len);
        *buf = uv_buf_init(p, (unsigned int)len);
    } else {
        *buf = uv_buf_init(c->rbuf, sizeof c->rbuf);
    }
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    struct http_conn *c = req->data;
    if (c->closing)
        return;
    if (status < 0 || uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0) {
        http_server_conn_close(c);
        return;
    }
    c->reading = true;
}

/* Every answer is written and no more requests will be read: send FIN, then drain what the
 * client still sends until it closes or the linger time ends. */
static void conn_finish(struct http_conn *c)
{
    const struct http_config *cfg = &c->server->cfg;
    c->finishing = true;
    if (c->reading) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = false;
    }
    if (c->tls) {
        /* close_notify goes out before the FIN that uv_shutdown sends after queued writes. */
        http_tls_conn_shutdown(c->tls);
        conn_tls_flush(c);
        if (c->closing)
            return;
    }
    c->shutdown.data = c;
    if (uv_shutdown(&c->shutdown, (uv_stream_t *)&c->tcp, on_shutdown) != 0) {
        http_server_conn_close(c);
        return;
    }
    c->timer_mode = TIMER_LINGER;
    uv_timer_start(
        &c->timer, on_timer,
        cfg->request_timeout_ms < LINGER_MAX_MS ? cfg->request_timeout_ms : LINGER_MAX_MS, 0);
}

/*
 * The one place that moves a connection forward: parses buffered bytes while answers may
 * still be queued, then decides reading, closing and the timer from the resulting state.
 * Every event (read, answer, write done, timer) ends here. Re-entrant calls (an answer given
 * from inside the handler) return at once; the outer call sees their effects.
 */
static void conn_drive(struct http_conn *c)
{
    const struct http_config *cfg = &c->server->cfg;
    if (c->in_drive || c->closing || c->finishing)
        return;
    c->in_drive = true;
    while (!c->closing && !c->close_after && !conn_saturated(c) &&
           (c->rpos < c->rlen || conn_tls_fill(c))) {
        size_t avail = c->rlen - c->rpos;
        bool in_head = !c->in_body;
        /* Feed at most one byte past the head limit, so an oversized head is caught without
         * copying more of it. hdr_bytes <= max_header_bytes holds here. */
        if (in_head && avail > cfg->max_header_bytes - c->hdr_bytes + 1)
            avail = cfg->max_header_bytes - c->hdr_bytes + 1;
        c->event = EV_NONE;
        size_t n = http_parser_execute(&c->parser, &http_request_parser_settings, c->rbuf + c->rpos,
                                       avail);
        c->rpos += n;
        if (in_head)
            c->hdr_bytes += n;
        if (c->closing || c->close_after)
            break; /* a callback failed the request */
        if (in_head && c->hdr_bytes > cfg->max_header_bytes) {
            http_server_conn_fail(c, NULL, 431, "headers_too_large",
                                  "request line and headers exceed %zu bytes",
                                  cfg->max_header_bytes);
            break;
        }
        enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);
        if (e == HPE_PAUSED) {
            http_parser_pause(&c->parser, 0);
            if (c->event == EV_HEADERS)
                conn_headers_done(c);
            else if (c->event == EV_MESSAGE)
                conn_message_done(c);
            continue;
        }
        if (e == HPE_HEADER_OVERFLOW) {
            http_server_conn_fail(c, NULL, 431, "headers_too_large", "header fields too large");
        } else if (e == HPE_UNEXPECTED_CONTENT_LENGTH) {
            http_server_conn_fail(
                c, NULL, 400, "bad_request",
                "Content-Length with Transfer-Encoding, or repeated Content-Length");
        } else if (e == HPE_INVALID_TRANSFER_ENCODING) {
            http_server_conn_fail(c, NULL, 400, "bad_request",
                                  "Transfer-Encoding other than chunked");
        } else if (e != HPE_OK) {
            http_server_conn_fail(c, NULL, 400, "bad_request", "malformed request: %s",
                                  http_errno_description(e));
        } else if (n < avail) {
            /* http-parser stops early without an error only after an Upgrade, which
             * conn_message_done() turns into close_after; anything else is a bug. */
            http_server_conn_close(c);
        }
        if (e != HPE_OK || n < avail)
            break;
    }
    c->in_drive = false;
    if (c->closing)
        return;

    if (c->close_after && !c->head && !c->writes_pending) {
        conn_finish(c);
        return;
    }
    bool want_read = !c->close_after && !conn_saturated(c) && c->rpos == c->rlen &&
                     !(c->tls && http_tls_conn_has_input(c->tls));
    if (want_read && !c->reading) {
        if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0) {
            http_server_conn_close(c);
            return;
        }
        c->reading = true;
    } else if (!want_read && c->reading) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = false;
    }
    conn_settle_timer(c);
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    struct http_conn *c = stream->data;
    (void)buf;
    if (nread < 0) {
        /* EOF or an error: no further request can arrive, and a client that is gone cannot
         * read answers, so unanswered requests become cancelled. */
        if (c->tls && !http_tls_conn_established(c->tls) && !c->finishing)
            server_log(c->server,
                       "http tls: connection from %s closed: %s during the tls handshake",
                       http_tls_conn_peer(c->tls),
                       nread == UV_EOF ? "end of file" : uv_strerror((int)nread));
        http_server_conn_close(c);
        return;
    }
    if (nread == 0 || c->finishing)
        return; /* draining after our last answer: the bytes are dropped */
    if (c->tls) {
        conn_tls_received(c, (size_t)nread);
        return;
    }
    c->rpos = 0;
    c->rlen = (size_t)nread;
    conn_drive(c);
}

static void on_timer(uv_timer_t *timer)
{
    struct http_conn *c = timer->data;
    enum conn_timer mode = c->timer_mode;
    c->timer_mode = TIMER_NONE;
    if (mode == TIMER_REQUEST) {
        http_server_conn_fail(c, NULL, 408, "request_timeout",
                              "request not received within %" PRIu64 " ms",
                              c->server->cfg.request_timeout_ms);
        return;
    }
    if (mode == TIMER_HANDSHAKE)
        server_log(c->server,
                   "http tls: connection from %s closed: no tls handshake within %" PRIu64 " ms",
                   http_tls_conn_peer(c->tls), c->server->cfg.tls_handshake_timeout_ms);
    http_server_conn_close(c);
}

/* ---------------------------------------------------------------- connection lifetime */

static void server_maybe_closed(struct http_server *s)
{
    if (s->closing && s->listener_closed && s->nconns == 0 && s->nrejecting == 0 && s->close_cb)
        s->close_cb(s); /* may free s */
}

static void on_conn_handle_closed(uv_handle_t *handle)
{
    struct http_conn *c = handle->data;
    struct http_server *s = c->server;
    if (--c->handles_open > 0)
        return;
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    s->nconns--;
    if (s->nconns < s->cfg.max_connections)
        s->saturated = false;
    http_tls_conn_free(c->tls);
    free(c);
    server_maybe_closed(s);
}

/* Closes at once, dropping unwritten answers. Unanswered requests stay with the handler,
 * detached; everything else is freed now, the connection itself in the close callbacks. */
void http_server_conn_close(struct http_conn *c)
{
    if (c->closing)
        return;
    c->closing = true;
    struct http_request *req = c->head;
    while (req) {
        struct http_request *next = req->next;
        if (req->dispatched && !req->responded)
            http_request_detach(req);
        else
            http_request_free(req);
        req = next;
    }
    c->head = c->tail = NULL;
    c->nqueued = 0;
    if (c->cur) {
        http_request_free(c->cur);
        c->cur = NULL;
    }
    uv_close((uv_handle_t *)&c->timer, on_conn_handle_closed);
    uv_close((uv_handle_t *)&c->tcp, on_conn_handle_closed);
}

static void on_reject_closed(uv_handle_t *handle)
{
    struct http_server *s = handle->data;
    free(handle);
    s->nrejecting--;
    server_maybe_closed(s);
}

/* Over max_connections: accept (else libuv stops accepting), send a best-effort 503 and
 * close, so that a flood costs one fd only for an instant. */
static void server_reject(struct http_server *s)
{
    char response[384];
    uv_tcp_t *tcp = malloc(sizeof *tcp);
    if (!tcp)
        return;
    if (uv_tcp_init(s->loop, tcp) != 0) {
        free(tcp);
        return;
    }
    tcp->data = s;
    /* A plain answer means nothing to a TLS client: on HTTPS the close alone says it. */
    if (uv_accept((uv_stream_t *)&s->listener, (uv_stream_t *)tcp) == 0 && s->cfg.tls == NULL) {
        char date[HTTP_DATE_SIZE];
        http_response_date(time(NULL), date);
        int n = snprintf(response, sizeof response,
                         "HTTP/1.1 503 Service Unavailable\r\nDate: %s\r\nContent-Type: "
                         "application/json\r\nContent-Length: %zu\r\nRetry-After: 1\r\n"
                         "Connection: close\r\n\r\n%s",
                         date, strlen(REJECT_BODY), REJECT_BODY);
        uv_buf_t buf = uv_buf_init(response, (unsigned int)n);
        (void)uv_try_write((uv_stream_t *)tcp, &buf, 1); /* best effort by design */
    }
    s->nrejecting++;
    uv_close((uv_handle_t *)tcp, on_reject_closed);
    if (!s->saturated) {
        s->saturated = true;
        server_log(s, "http connections refused: max_connections=%u reached",
                   s->cfg.max_connections);
    }
}

static void on_connection(uv_stream_t *listener, int status)
{
    struct http_server *s = listener->data;
    if (status < 0) {
        server_log(s, "http accept: %s", uv_strerror(status));
        return;
    }
    if (s->closing)
        return;
    if (s->nconns >= s->cfg.max_connections) {
        server_reject(s);
        return;
    }
    struct http_conn *c = calloc(1, sizeof *c);
    if (!c) {
        server_reject(s);
        return;
    }
    c->server = s;
    if (uv_tcp_init(s->loop, &c->tcp) != 0) {
        free(c);
        server_reject(s);
        return;
    }
    uv_timer_init(s->loop, &c->timer); /* cannot fail */
    c->tcp.data = c;
    c->timer.data = c;
    c->handles_open = 2;
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    s->nconns++;
    if (uv_accept(listener, (uv_stream_t *)&c->tcp) != 0) {
        http_server_conn_close(c);
        return;
    }
    /* Answers are single writes; Nagle would only delay pipelined ones. */
    uv_tcp_nodelay(&c->tcp, 1);
    if (s->cfg.tls != NULL && conn_tls_start(c) != 0)
        return;
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    conn_drive(c);
}

/* ---------------------------------------------------------------- server */

void http_config_init(struct http_config *cfg)
{
    *cfg = (struct http_config){
        .max_body_bytes = 1024 * 1024,
        .max_header_bytes = 8 * 1024,
        .max_url_bytes = 4 * 1024,
        .max_headers = 100,
        .request_timeout_ms = 10 * 1000,
        .idle_timeout_ms = 60 * 1000,
        .max_connections = 512,
        .max_pipelined = 32,
        .log = NULL,
        .log_data = NULL,
        .observe = NULL,
        .observe_data = NULL,
        .tls = NULL,
        .tls_handshake_timeout_ms = 10 * 1000,
    };
}

static int config_check(const struct http_config *cfg, char *errmsg, size_t errlen)
{
    const char *bad = NULL;
    if (cfg->max_body_bytes == 0 || cfg->max_body_bytes >= SIZE_MAX / 2)
        bad = "max_body_bytes must be between 1 and SIZE_MAX/2";
    /* http-parser enforces its own 80 KiB head limit, which must never be the one hit. */
    else if (cfg->max_header_bytes < 64 || cfg->max_header_bytes > 64 * 1024)
        bad = "max_header_bytes must be between 64 and 65536";
    else if (cfg->max_url_bytes == 0 || cfg->max_url_bytes > cfg->max_header_bytes)
        bad = "max_url_bytes must be between 1 and max_header_bytes";
    else if (cfg->max_headers == 0)
        bad = "max_headers must be at least 1";
    else if (cfg->request_timeout_ms == 0 || cfg->idle_timeout_ms == 0 ||
             cfg->tls_handshake_timeout_ms == 0)
        bad = "request_timeout_ms, idle_timeout_ms and tls_handshake_timeout_ms must be positive";
    else if (cfg->max_connections == 0 || cfg->max_pipelined == 0)
        bad = "max_connections and max_pipelined must be at least 1";
    if (bad) {
        snprintf(errmsg, errlen, "http config: %s", bad);
        return -1;
    }
    return 0;
}

int http_server_init(struct http_server *server, uv_loop_t *loop, const struct http_config *cfg,
                     http_handler_fn handler, void *data, char *errmsg, size_t errlen)
{
    uint8_t rnd[4];
    int rc;

    memset(server, 0, sizeof *server);
    if (cfg)
        server->cfg = *cfg;
    else
        http_config_init(&server->cfg);
    if (config_check(&server->cfg, errmsg, errlen) != 0)
        return -1;
    if (!handler) {
        snprintf(errmsg, errlen, "http server: no handler");
        return -1;
    }
    if (!server->cfg.log)
        server->cfg.log = log_stderr;
    server->loop = loop;
    server->handler = handler;
    server->data = data;
    server->port = -1;
    /* Generated ids need only differ between nodes and restarts, not be secret: fall back
     * to the clock if the kernel has no randomness to give yet. */
    if (uv_random(NULL, NULL, rnd, sizeof rnd, 0, NULL) != 0) {
        uint64_t now = uv_hrtime();
        memcpy(rnd, &now, sizeof rnd);
    }
    snprintf(server->id_prefix, sizeof server->id_prefix, "%02x%02x%02x%02x", rnd[0], rnd[1],
             rnd[2], rnd[3]);
    rc = uv_tcp_init(loop, &server->listener);
    if (rc != 0) {
        snprintf(errmsg, errlen, "http server: tcp handle: %s", uv_strerror(rc));
        return -1;
    }
    server->listener.data = server;
    return 0;
}

int http_server_listen(struct http_server *server, const char *host, int port, char *errmsg,
                       size_t errlen)
{
    struct sockaddr_storage addr;
    struct sockaddr_storage bound;
    int len = sizeof bound;
    int rc;

    if (port < 0 || port > 65535) {
        snprintf(errmsg, errlen, "http listen %s:%d: port out of range", host, port);
        return -1;
    }
    if (strchr(host, ':'))
        rc = uv_ip6_addr(host, port, (struct sockaddr_in6 *)&addr);
    else
        rc = uv_ip4_addr(host, port, (struct sockaddr_in *)&addr);
    if (rc != 0) {
        snprintf(errmsg, errlen, "http listen %s:%d: not an IP address", host, port);
        return -1;
    }
    rc = uv_tcp_bind(&server->listener, (const struct sockaddr *)&addr, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&server->listener, LISTEN_BACKLOG, on_connection);
    if (rc == 0)
        rc = uv_tcp_getsockname(&server->listener, (struct sockaddr *)&bound, &len);
    if (rc != 0) {
        snprintf(errmsg, errlen, "http listen %s:%d: %s", host, port, uv_strerror(rc));
        return -1;
    }
    if (bound.ss_family == AF_INET6)
        server->port = ntohs(((struct sockaddr_in6 *)&bound)->sin6_port);
    else
        server->port = ntohs(((struct sockaddr_in *)&bound)->sin_port);
    return 0;
}

int http_server_port(const struct http_server *server)
{
    return server->port;
}

static void on_listener_closed(uv_handle_t *handle)
{
    struct http_server *s = handle->data;
    s->listener_closed = true;
    server_maybe_closed(s);
}

void http_server_close(struct http_server *server, http_server_close_cb close_cb)
{
    if (server->closing)
        return;
    server->closing = true;
    server->close_cb = close_cb;
    /* Detached requests outlive the server when their handler is slow: cut them loose. */
    for (struct http_request *req = server->detached; req;) {
        struct http_request *next = req->next;
        req->server = NULL;
        req->next = req->prev = NULL;
        req = next;
    }
    server->detached = NULL;
    for (struct http_conn *c = server->conns; c; c = c->next)
        http_server_conn_close(c); /* unlinks only in its close callback, so c->next stays valid */
    uv_close((uv_handle_t *)&server->listener, on_listener_closed);
}
