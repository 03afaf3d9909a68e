/*
 * http_server over real loopback sockets. The server's loop runs on the test's main thread;
 * each test's client runs on a second thread with plain blocking sockets, stores what it
 * received, and when it returns the server is closed from the loop via a uv_async_t. Every
 * assertion happens on the main thread after the client thread is joined.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "http/http_response.h"
#include "http/http_server.h"

#define MAX_RESP         8
#define RESP_CAP         16384
#define MAX_LOG          32
#define CLIENT_TIMEOUT_S 5

struct fixture;
typedef void (*client_fn)(struct fixture *fx);

struct fixture {
    uv_loop_t loop;
    struct http_server server;
    uv_async_t done;
    pthread_t thread;
    int port;
    bool server_closed;

    /* What the generic client sends and how many answers it reads. */
    client_fn client;
    const char *send;
    size_t send_len; /* 0: strlen(send) */
    int expect;
    bool head;
    bool check_eof;

    /* Written by the client thread, read after the join. */
    char resp[MAX_RESP][RESP_CAP];
    long resp_len[MAX_RESP];
    bool eof;
    double elapsed_ms;
    int leftover_fd; /* a socket the client left open for the main thread to close */

    /* Written by the loop thread. */
    char *log[MAX_LOG];
    int nlog;
    int deferring;     /* /defer requests the handler holds and has not answered yet */
    int max_deferring; /* the most it held at once */
    atomic_int handled;
    atomic_int deferred_done;
    atomic_int cancelled_seen;
};

/* ---------------------------------------------------------------- server side */

static void capture_log(const char *line, void *data)
{
    struct fixture *fx = data;
    if (fx->nlog < MAX_LOG)
        fx->log[fx->nlog++] = strdup(line);
}

struct deferred {
    uv_timer_t timer;
    struct fixture *fx;
    struct http_request *req;
    char text[32];
};

static void deferred_free(uv_handle_t *handle)
{
    free(handle->data);
}

static void on_deferred(uv_timer_t *timer)
{
    struct deferred *d = timer->data;
    if (http_request_cancelled(d->req))
        atomic_fetch_add(&d->fx->cancelled_seen, 1);
    /* Counted down before answering: the answer may let the server hand over the next
     * pipelined request from inside http_respond(). */
    d->fx->deferring--;
    http_respond(d->req, 200, NULL, d->text, strlen(d->text));
    atomic_fetch_add(&d->fx->deferred_done, 1);
    uv_close((uv_handle_t *)&d->timer, deferred_free);
}

/* Routes by path; "/defer?ms=N&name=X" answers X after N ms from a timer. */
static void handler(struct http_request *req, void *data)
{
    struct fixture *fx = data;
    const char *path = http_request_path(req);
    atomic_fetch_add(&fx->handled, 1);

    if (strcmp(path, "/json") == 0) {
        http_respond_json(req, 200,
                          json_pack("{s:s, s:s}", "path", path, "query", http_request_query(req)));
    } else if (strcmp(path, "/echo") == 0) {
        size_t len;
        const char *body = http_request_body(req, &len);
        const char *type = http_request_header(req, "content-type");
        struct http_header headers[] = {{"Content-Type", type ? type : "text/plain"}, {NULL, NULL}};
        http_respond(req, 200, headers, body, len);
    } else if (strcmp(path, "/defer") == 0) {
        struct deferred *d = calloc(1, sizeof *d);
        unsigned ms = 0;
        assert_non_null(d);
        if (sscanf(http_request_query(req), "ms=%u&name=%31s", &ms, d->text) != 2) {
            free(d);
            http_respond_error(req, 400, "bad_request", "bad defer query");
            return;
        }
        d->fx = fx;
        d->req = req;
        if (++fx->deferring > fx->max_deferring)
            fx->max_deferring = fx->deferring;
        uv_timer_init(&fx->loop, &d->timer);
        d->timer.data = d;
        uv_timer_start(&d->timer, on_deferred, ms, 0);
    } else if (strcmp(path, "/conflict") == 0) {
        struct http_header headers[] = {{"Retry-After", "2"}, {NULL, NULL}};
        http_respond_error_ex(req, 409, headers,
                              json_pack("{s:i, s:s}", "current_version", 7, "error", "ignored"),
                              "conflict", "version %d is stale", 3);
    } else if (strcmp(path, "/bad-header") == 0) {
        struct http_header headers[] = {{"Content-Length", "3"}, {NULL, NULL}};
        http_respond(req, 200, headers, "abc", 3);
    } else {
        http_respond_error(req, 404, "not_found", "no route for %s", path);
    }
}

static void on_server_closed(struct http_server *server)
{
    struct fixture *fx = server->data;
    fx->server_closed = true;
}

static void on_done(uv_async_t *async)
{
    struct fixture *fx = async->data;
    uv_close((uv_handle_t *)&fx->done, NULL);
    http_server_close(&fx->server, on_server_closed);
}

static void *client_main(void *arg)
{
    struct fixture *fx = arg;
    fx->client(fx);
    uv_async_send(&fx->done);
    return NULL;
}

static struct fixture *fixture_new(void)
{
    struct fixture *fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    fx->leftover_fd = -1;
    return fx;
}

static void fixture_free(struct fixture *fx)
{
    for (int i = 0; i < fx->nlog; i++)
        free(fx->log[i]);
    free(fx);
}

static void test_config(struct http_config *cfg, struct fixture *fx)
{
    http_config_init(cfg);
    cfg->log = capture_log;
    cfg->log_data = fx;
}

/* Runs the server until the client is done and the server closed, then closes the loop. */
static void run(struct fixture *fx, const struct http_config *cfg, client_fn client)
{
    char err[256] = "";
    assert_int_equal(uv_loop_init(&fx->loop), 0);
    int rc = http_server_init(&fx->server, &fx->loop, cfg, handler, fx, err, sizeof err);
    assert_int_equal(rc, 0);
    rc = http_server_listen(&fx->server, "127.0.0.1", 0, err, sizeof err);
    if (rc != 0)
        fail_msg("listen: %s", err);
    fx->port = http_server_port(&fx->server);
    assert_true(fx->port > 0);
    assert_int_equal(uv_async_init(&fx->loop, &fx->done, on_done), 0);
    fx->done.data = fx;
    fx->client = client;
    assert_int_equal(pthread_create(&fx->thread, NULL, client_main, fx), 0);
    uv_run(&fx->loop, UV_RUN_DEFAULT);
    assert_int_equal(pthread_join(fx->thread, NULL), 0);
    if (fx->leftover_fd >= 0)
        close(fx->leftover_fd);
    assert_true(fx->server_closed);
    assert_int_equal(uv_loop_close(&fx->loop), 0);
}

/* ---------------------------------------------------------------- client side */

struct client {
    int fd;
    char buf[65536];
    size_t len;
};

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static bool cl_connect(struct client *cl, int port)
{
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    struct timeval tv = {.tv_sec = CLIENT_TIMEOUT_S};
    cl->len = 0;
    cl->fd = socket(AF_INET, SOCK_STREAM, 0);
    if (cl->fd < 0)
        return false;
    inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
    setsockopt(cl->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(cl->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    return connect(cl->fd, (struct sockaddr *)&addr, sizeof addr) == 0;
}

static void cl_send(struct client *cl, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t n = send(cl->fd, data, len, MSG_NOSIGNAL);
        if (n <= 0)
            return;
        data += n;
        len -= (size_t)n;
    }
}

static void cl_sends(struct client *cl, const char *text)
{
    cl_send(cl, text, strlen(text));
}

/* Reads one response (head, then Content-Length body bytes unless head_only) into raw as a
 * NUL-terminated string. Returns its length, or -1 when the connection ended first. */
static long cl_response(struct client *cl, char *raw, size_t cap, bool head_only)
{
    for (;;) {
        char *end = memmem(cl->buf, cl->len, "\r\n\r\n", 4);
        if (end) {
            size_t hlen = (size_t)(end - cl->buf) + 4;
            size_t blen = 0;
            char saved = cl->buf[hlen - 1];
            cl->buf[hlen - 1] = '\0';
            const char *cl_hdr = strcasestr(cl->buf, "\r\nContent-Length:");
            if (cl_hdr && !head_only)
                blen = strtoul(cl_hdr + 17, NULL, 10);
            cl->buf[hlen - 1] = saved;
            if (cl->len >= hlen + blen) {
                size_t total = hlen + blen;
                if (total >= cap)
                    return -1;
                memcpy(raw, cl->buf, total);
                raw[total] = '\0';
                memmove(cl->buf, cl->buf + total, cl->len - total);
                cl->len -= total;
                return (long)total;
            }
        }
        if (cl->len == sizeof cl->buf)
            return -1;
        ssize_t n = recv(cl->fd, cl->buf + cl->len, sizeof cl->buf - cl->len, 0);
        if (n <= 0)
            return -1;
        cl->len += (size_t)n;
    }
}

/* True when the server closed the connection with nothing more to read. */
static bool cl_eof(struct client *cl)
{
    char byte;
    return cl->len == 0 && recv(cl->fd, &byte, 1, 0) == 0;
}

/* Waits (up to the client timeout) until *counter reaches value. */
static bool wait_for(atomic_int *counter, int value)
{
    for (int i = 0; i < CLIENT_TIMEOUT_S * 1000; i++) {
        if (atomic_load(counter) >= value)
            return true;
        usleep(1000);
    }
    return false;
}

/* Sends fx->send in one write, reads fx->expect responses, then optionally checks EOF. */
static void client_script(struct fixture *fx)
{
    struct client *cl = calloc(1, sizeof *cl);
    if (!cl || !cl_connect(cl, fx->port))
        goto out;
    double start = now_ms();
    cl_send(cl, fx->send, fx->send_len ? fx->send_len : strlen(fx->send));
    for (int i = 0; i < fx->expect; i++)
        fx->resp_len[i] = cl_response(cl, fx->resp[i], RESP_CAP, fx->head);
    fx->elapsed_ms = now_ms() - start;
    if (fx->check_eof)
        fx->eof = cl_eof(cl);
out:
    if (cl && cl->fd >= 0)
        close(cl->fd);
    free(cl);
}

/* ---------------------------------------------------------------- response helpers */

static void assert_status(const char *raw, const char *expected)
{
    char line[128];
    size_t n = strcspn(raw, "\r");
    snprintf(line, sizeof line, "%.*s", (int)n, raw);
    assert_string_equal(line, expected);
}

static const char *body_of(const char *raw)
{
    const char *end = strstr(raw, "\r\n\r\n");
    return end ? end + 4 : "";
}

/* The value of header name in raw, or "" (copied into a static buffer). */
static const char *header_of(const char *raw, const char *name)
{
    static char value[256];
    char needle[128];
    snprintf(needle, sizeof needle, "\r\n%s: ", name);
    const char *end = strstr(raw, "\r\n\r\n");
    const char *at = strcasestr(raw, needle);
    value[0] = '\0';
    if (!at || (end && at >= end))
        return value;
    at += strlen(needle);
    snprintf(value, sizeof value, "%.*s", (int)strcspn(at, "\r"), at);
    return value;
}

/* Asserts that line is the access-log line that starts with head and ends with request id rid;
 * the duration between them varies and is not compared. */
static void assert_access_line(const char *line, const char *head, const char *rid)
{
    char tail[80];
    snprintf(tail, sizeof tail, " rid=%s", rid);
    size_t len = strlen(line);
    size_t tail_len = strlen(tail);
    if (strncmp(line, head, strlen(head)) != 0 || len < tail_len ||
        strcmp(line + len - tail_len, tail) != 0)
        fail_msg("log line \"%s\" is not \"%s...%s\"", line, head, tail);
}

/* ---------------------------------------------------------------- tests */

static void test_get_json(void **state)
{
    (void)state;
    struct fixture *fx = fixture_new();
    struct http_config cfg;
    test_config(&cfg, fx);
    fx->send = "GET /json?x=1 HTTP/1.1\r\nHost: t\r\nX-Request-Id: test-123\r\n\r\n";
    fx->expect = 1;
    run(fx, &cfg, client_script);

    assert_int_equal(fx->resp_len[0], strlen(fx->resp[0]));
    assert_status(fx->resp[0], "HTTP/1.1 200 OK");
    assert_string_equal(header_of(fx->resp[0], "Content-Type"), "application/json");
    assert_string_equal(header_of(fx->resp[0], "Content-Length"), "30");
    assert_string_equal(header_of(fx->resp[0], "X-Request-Id"), "test-123");
    assert_string_equal(header_of(fx->resp[0], "Connection"), "");
    assert_string_equal(body_of(fx->resp[0]), "{\"path\":\"/json\",\"query\":\"x=1\"}");
    fixture_free(fx);
}

static void client_keepalive(struct fixture *fx)
{
    struct client *cl = calloc(1, sizeof *cl);
    if (!cl || !cl_connect(cl, fx->port))
        goto out;
    cl_sends(cl, "GET /json?n=1 HTTP/1.1\r\nHost: t\r\n\r\n");
    fx->resp_len[0] = cl_response(cl, fx->resp[0], RESP_CAP, false);
    /* An insane request id is replaced by a generated one. */
    cl_sends(cl, "GET /json?n=2 HTTP/1.1\r\nHost: t\r\nX-Request-Id: has spaces\r\n\r\n");
    fx->resp_len[1] = cl_response(cl, fx->resp[1], RESP_CAP, false);
out:
    if (cl && cl->fd >= 0)
        close(cl->fd);
    free(cl);
}

static void test_keepalive_sequential(void **state)
{
    (void)state;
    struct fixture *fx = fixture_new();
    struct http_config cfg;
    test_config(&cfg, fx);
    run(fx, &cfg, client_keepalive);

    assert_true(fx->resp_len[0] > 0);
    assert_true(fx->resp_len[1] > 0);
    assert_status(fx->resp[0], "HTTP/1.1 200 OK");
    assert_string_equal(body_of(fx->resp[0]), "{\"path\":\"/json\",\"query\":\"n=1\"}");
    assert_status(fx->resp[1], "HTTP/1.1 200 OK");
    assert_string_equal(body_of(fx->resp[1]), "{\"path\":\"/json\",\"query\":\"n=2\"}");
    char rid0[128];
    snprintf(rid0, sizeof rid0, "%s", header_of(fx->resp[0], "X-Request-Id"));
    const char *rid1 = header_of(fx->resp[1], "X-Request-Id");
    assert_true(strlen(rid0) > 2);
    assert_true(strlen(rid1) > 2);
    assert_string_not_equal(rid0, rid1);
    assert_null(strstr(rid1, "spaces"));
    assert_int_equal(atomic_load(&fx->handled), 2);
    fixture_free(fx);
}

static void test_pipelined_reverse(void **state)
{
    (void)state;
    struct fixture *fx = fixture_new();
    struct http_config cfg;
    test_config(&cfg, fx);
    /* The delays are far apart so that the answer order does not depend on scheduling. */
    fx->send = "GET /defer?ms=300&name=a HTTP/1.1\r\nHost: t\r\nX-Request-Id: id-a\r\n\r\n"
               "GET /defer?ms=150&name=b HTTP/1.1\r\nHost: t\r\nX-Request-Id: id-b\r\n\r\n"
               "GET /defer?ms=1&name=c HTTP/1.1\r\nHost: t\r\nX-Request-Id: id-c\r\n\r\n";
    fx->expect = 3;
    run(fx, &cfg, client_script);

    const char *names[] = {"a", "b", "c"};
    const char *ids[] = {"id-a", "id-b", "id-c"};
    for (int i = 0; i < 3; i++) {
        assert_status(fx->resp[i], "HTTP/1.1 200 OK");
        assert_string_equal(body_of(fx->resp[i]), names[i]);
        assert_string_equal(header_of(fx->resp[i], "X-Request-Id"), ids[i]);
        assert_string_equal(header_of(fx->resp[i], "Content-Type"), "text/plain; charset=utf-8");
    }
    /* All three reached the handler before any was answered, and it answered c first: the
     * log is in answer order, the wire in request order. */
    assert_int_equal(fx->max_deferring, 3);
    assert_int_equal(fx->nlog, 3);
    const char *head = "http method=GET path=/defer status=200 ms=";
    assert_access_line(fx->log[0], head, "id-c");
    assert_access_line(fx->log[1], head, "id-b");
    assert_access_line(fx->log[2], head, "id-a");
    fixture_free(fx);
}

static void test_pipelined_backpressure(void **state)
{
    (void)state;
    struct fixture *fx = fixture_new();
    struct http_config cfg;
    test_config(&cfg, fx);
    cfg.max_pipelined = 2;
    /* In each pair the first request takes much longer than the second, so the handler answers
     * every pair in reverse and the pairs one after the other. */
    fx->send = "GET /defer?ms=150&name=r0 HTTP/1.1\r\nHost: t\r\nX-Request-Id: id-0\r\n\r\n"
               "GET /defer?ms=1&name=r1 HTTP/1.1\r\nHost: t\r\nX-Request-Id: id-1\r\n\r\n"
               "GET /defer?ms=150&name=r2 HTTP/1.1\r\nHost: t\r\nX-Request-Id: id-2\r\n\r\n"
               "GET /defer?ms=1&name=r3 HTTP/1.1\r\nHost: t\r\nX-Request-Id: id-3\r\n\r\n"
               "GET /defer?ms=150&name=r4 HTTP/1.1\r\nHost: t\r\nX-Request-Id: id-4\r\n\r\n"
               "GET /defer?ms=1&name=r5 HTTP/1.1\r\nHost: t\r\nX-Request-Id: id-5\r\n"
               "Connection: close\r\n\r\n";
    fx->expect = 6;
    fx->check_eof = true;
    run(fx, &cfg, client_script);

    for (int i = 0; i < 6; i++) {
        char name[8], id[8];
        snprintf(name, sizeof name, "r%d", i);
        snprintf(id, sizeof id, "id-%d", i);
        assert_status(fx->resp[i], "HTTP/1.1 200 OK");
        assert_string_equal(body_of(fx->resp[i]), name);
        assert_string_equal(header_of(fx->resp[i], "X-Request-Id"), id);
    }
    assert_string_equal(header_of(fx->resp[4], "Connection"), "");
    assert_string_equal(header_of(fx->resp[5], "Connection"), "close");
    assert_true(fx->eof);
    /* The limit holds the handler to two requests at a time: the next request is handed over
     * only once an earlier answer has been written, so the log shows the pairs in turn. */
    assert_int_equal(fx->max_deferring, 2);
    assert_int_equal(fx->nlog, 6);
    const char *head = "http method=GET path=/defer status=200 ms=";
    const char *answered[] = {"id-1", "id-0", "id-3", "id-2", "id-5", "id-4"};
    for (int i = 0; i < 6; i++)
        assert_access_line(fx->log[i], head, answered[i]);
    fixture_free(fx);
}

static void test_chunked_echo(void **state)
{
    (void)state;
    struct fixture *fx = fixture_new();
    struct http_config cfg;
    test_config(&cfg, fx);
    fx->send = "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Type: text/x-test\r\n"
               "Transfer-Encoding: chunked\r\n\r\n"
               "6\r\nhello \r\n5;ext=1\r\nworld\r\n0\r\nX-Trailer: t\r\n\r\n";
    fx->expect = 1;
    run(fx, &cfg, client_script);

    assert_status(fx->resp[0], "HTTP/1.1 200 OK");
    assert_string_equal(header_of(fx->resp[0], "Content-Type"), "text/x-test");
    assert_string_equal(header_of(fx->resp[0], "Content-Length"), "11");
    assert_string_equal(body_of(fx->resp[0]), "hello world");
    fixture_free(fx);
}

/* One byte per write, with a pause, so that the server parses every piece separately. */
static void client_trickle(struct fixture *fx)
{
    struct client *cl = calloc(1, sizeof *cl);
    if (!cl || !cl_connect(cl, fx->port))
        goto out;
    for (const char *p = fx->send; *p; p++) {
        cl_send(cl, p, 1);
        usleep(200);
    }
    fx->resp_len[0] = cl_response(cl, fx->resp[0], RESP_CAP, false);
out:
    if (cl && cl->fd >= 0)
        close(cl->fd);
    free(cl);
}

static void test_byte_by_byte(void **state)
{
    (void)state;
    struct fixture *fx = fixture_new();
    struct http_config cfg;
    test_config(&cfg, fx);
    fx->send = "POST /echo?q=1 HTTP/1.1\r\nHost: t\r\nX-Request-Id: split-id\r\n"
               "Content-Type: text/x-split \t\r\nTransfer-Encoding: chunked\r\n\r\n"
               "3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
    run(fx, &cfg, client_trickle);

    assert_status(fx->resp[0], "HTTP/1.1 200 OK");
    assert_string_equal(header_of(fx->resp[0], "Content-Type"), "text/x-split");
    assert_string_equal(header_of(fx->resp[0], "X-Request-Id"), "split-id");
    assert_string_equal(body_of(fx->resp[0]), "abcde");
    fixture_free(fx);
}

static void client_continue(struct fixture *fx)
{
    struct client *cl = calloc(1, sizeof *cl);
    if (!cl || !cl_connect(cl, fx->port))
        goto out;
    cl_sends(cl, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n"
                 "Expect: 100-continue\r\n\r\n");
    fx->resp_len[0] = cl_response(cl, fx->resp[0], RESP_CAP, false);
    cl_sends(cl, "hello");
    fx->resp_len[1] = cl_response(cl, fx->resp[1], RESP_CAP, false);
out:
    if (cl && cl->fd >= 0)
        close(cl->fd);
    free(cl);
}

static void test_expect_continue(void **state)
{
    (void)state;
    struct fixture *fx = fixture_new();
    struct http_config cfg;
    test_config(&cfg, fx);
    run(fx, &cfg, client_continue);

    assert_string_equal(fx->resp[0], "HTTP/1.1 100 Continue\r\n\r\n");
    assert_status(fx->resp[1], "HTTP/1.1 200 OK");
    assert_string_equal(body_of(fx->resp[1]), "hello");
    fixture_free(fx);
}

/* Runs one request that the server must refuse with status and body, then close. */
static void check_refusal(const struct http_config *base, const char *request, size_t len,
                          const char *status, const char *body)
{
    struct fixture *fx = fixture_new();
    struct http_config cfg = *base;
    cfg.log_data = fx;
    fx->send = request;
    fx->send_len = len;
    fx->expect = 1;
    fx->check_eof = true;
    run(fx, &cfg, client_script);

    assert_true(fx->resp_len[0] > 0);
    assert_status(fx->resp[0], status);
    assert_string_equal(header_of(fx->resp[0], "Content-Type"), "application/json");
    assert_string_equal(header_of(fx->resp[0], "Connection"), "close");
    assert_string_equal(body_of(fx->resp[0]), body);
    assert_true(fx->eof);
    assert_int_equal(atomic_load(&fx->handled), 0);
    assert_int_equal(fx->nlog, 1);
    fixture_free(fx);
}

static void test_413_content_length(void **state)
{
    (void)state;
    struct http_config cfg;
    test_config(&cfg, NULL);
    cfg.max_body_bytes = 1024;
    const char *req = "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 2048\r\n\r\nabc";
    check_refusal(&cfg, req, 0, "HTTP/1.1 413 Payload Too Large",
                  "{\"error\":\"payload_too_large\",\"message\":\"request body exceeds 1024 "
                  "bytes\"}");
}

static void test_413_chunked(void **state)
{
    (void)state;
    struct http_config cfg;
    test_config(&cfg, NULL);
    cfg.max_body_bytes = 1024;
    char req[2048];
    char chunk[1025];
    memset(chunk, 'a', 1024);
    chunk[1024] = '\0';
    snprintf(req, sizeof req,
             "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
             "400\r\n%s\r\n1\r\nb\r\n0\r\n\r\n",
             chunk);
    check_refusal(&cfg, req, 0, "HTTP/1.1 413 Payload Too Large",
                  "{\"error\":\"payload_too_large\",\"message\":\"request body exceeds 1024 "
                  "bytes\"}");
}

static void test_431_huge_headers(void **state)
{
    (void)state;
    struct http_config cfg;
    test_config(&cfg, NULL);
    size_t big = 9000;
    char *req = malloc(big + 128);
    assert_non_null(req);
    int n = snprintf(req, 128, "GET /json HTTP/1.1\r\nHost: t\r\nX-Big: ");
    memset(req + n, 'a', big);
    strcpy(req + (size_t)n + big, "\r\n\r\n");
    check_refusal(&cfg, req, 0, "HTTP/1.1 431 Request Header Fields Too Large",
                  "{\"error\":\"headers_too_large\",\"message\":\"request line and headers "
                  "exceed 8192 bytes\"}");
    free(req);
}

static void test_400_length_and_chunked(void **state)
{
    (void)state;
    struct http_config cfg;
    test_config(&cfg, NULL);
    check_refusal(&cfg,
                  "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n"
                  "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
                  0, "HTTP/1.1 400 Bad Request",
                  "{\"error\":\"bad_request\",\"message\":\"Content-Length with "
                  "Transfer-Encoding, or repeated Content-Length\"}");
}

static void test_400_garbage(void **state)
{
    (void)state;
    struct http_config cfg;
    test_config(&cfg, NULL);
    check_refusal(&cfg, "\x01\x02garbage\r\n\r\n", 0, "HTTP/1.1 400 Bad Request",
                  "{\"error\":\"bad_request\",\"message\":\"malformed request: invalid HTTP "
                  "method\"}");
}

static void test_400_missing_host(void **state)
{
    (void)state;
    struct http_config cfg;
    test_config(&cfg, NULL);
    check_refusal(&cfg, "GET /json HTTP/1.1\r\n\r\n", 0, "HTTP/1.1 400 Bad Request",
                  "{\"error\":\"bad_request\",\"message\":\"HTTP/1.1 request without Host "
                  "header\"}");
}

static void test_405_and_414(void **state)
{
    (void)state;
    struct http_config cfg;
    test_config(&cfg, NULL);
    check_refusal(&cfg, "PROPFIND /json HTTP/1.1\r\nHost: t\r\n\r\n", 0,
                  "HTTP/1.1 405 Method Not Allowed",
                  "{\"error\":\"method_not_allowed\",\"message\":\"method PROPFIND is not "
                  "supported\"}");

    char *req = malloc(6000);
    assert_non_null(req);
    strcpy(req, "GET /");
    memset(req + 5, 'u', 5000);
    strcpy(req + 5005, " HTTP/1.1\r\nHost: t\r\n\r\n");
    check_refusal(&cfg, req, 0, "HTTP/1.1 414 URI Too Long",
                  "{\"error\":\"uri_too_long\",\"message\":\"request target longer than 4096 "
                  "bytes\"}");
    free(req);
}

static void test_stalled_request_times_out(void **state)
{
    (void)state;
    struct fixture *fx = fixture_new();
    struct http_config cfg;
    test_config(&cfg, fx);
    cfg.request_timeout_ms = 200;
    fx->send = "GET /json HTTP/1.1\r\nHost: t\r\n";
    fx->expect = 1;
    fx->check_eof = true;
    run(fx, &cfg, client_script);

    assert_status(fx->resp[0], "HTTP/1.1 408 Request Timeout");
    assert_string_equal(header_of(fx->resp[0], "Connection"), "close");
    assert_string_equal(body_of(fx->resp[0]), "{\"error\":\"request_timeout\",\"message\":"
                                              "\"request not received within 200 ms\"}");
    assert_true(fx->eof);
    assert_true(fx->elapsed_ms >= 150);
    assert_true(fx->elapsed_ms < 3000);
    assert_int_equal(atomic_load(&fx->handled), 0);
    assert_int_equal(fx->nlog, 1);
    assert_non_null(strstr(fx->log[0], "http method=GET path=/json status=408 "));
    fixture_free(fx);
}

static void client_idle(struct fixture *fx)
{
    struct client *cl = calloc(1, sizeof *cl);
    if (!cl || !cl_connect(cl, fx->port))
        goto out;
    cl_sends(cl, "GET /json HTTP/1.1\r\nHost: t\r\n\r\n");
    fx->resp_len[0] = cl_response(cl, fx->resp[0], RESP_CAP, false);
    double start = now_ms();
    fx->eof = cl_eof(cl);
    fx->elapsed_ms = now_ms() - start;
out:
    if (cl && cl->fd >= 0)
        close(cl->fd);
    free(cl);
}

static void test_idle_keepalive_closed(void **state)
{
    (void)state;
    struct fixture *fx = fixture_new();
    struct http_config cfg;
    test_config(&cfg, fx);
    cfg.idle_timeout_ms = 200;
    run(fx, &cfg, client_idle);

    assert_status(fx->resp[0], "HTTP/1.1 200 OK");
    assert_true(fx->eof);
    assert_true(fx->elapsed_ms >= 150);
    assert_true(fx->elapsed_ms < 3000);
    fixture_free(fx);
}

static void test_connection_close(void **state)
{
    (void)state;
    struct fixture *fx = fixture_new();
    struct http_config cfg;
    test_config(&cfg, fx);
    /* The second request follows a Connection: close one and must be ignored. */
    fx->send = "GET /json HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
               "GET /json HTTP/1.1\r\nHost: t\r\n\r\n";
    fx->expect = 1;
    fx->check_eof = true;
    run(fx, &cfg, client_script);

    assert_status(fx->resp[0], "HTTP/1.1 200 OK");
    assert_string_equal(header_of(fx->resp[0], "Connection"), "close");
    assert_string_equal(body_of(fx->resp[0]), "{\"path\":\"/json\",\"query\":\"\"}");
    assert_true(fx->eof);
    assert_int_equal(atomic_load(&fx->handled), 1);
    fixture_free(fx);
}

static void test_http10(void **state)
{
    (void)state;
    struct fixture *fx = fixture_new();
    struct http_config cfg;
    test_config(&cfg, fx);
    fx->send = "GET /json HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
               "GET /json?second HTTP/1.0\r\n\r\n";
    fx->expect = 2;
    fx->check_eof = true;
    run(fx, &cfg, client_script);

    assert_status(fx->resp[0], "HTTP/1.1 200 OK");
    assert_string_equal(header_of(fx->resp[0], "Connection"), "keep-alive");
    assert_status(fx->resp[1], "HTTP/1.1 200 OK");
    assert_string_equal(header_of(fx->resp[1], "Connection"), "close");
    assert_string_equal(body_of(fx->resp[1]), "{\"path\":\"/json\",\"query\":\"second\"}");
    assert_true(fx->eof);
    fixture_free(fx);
}

static void test_head_has_no_body(void **state)
{
    (void)state;
    struct fixture *fx = fixture_new();
    struct http_config cfg;
    test_config(&cfg, fx);
    fx->send = "HEAD /json HTTP/1.1\r\nHost: t\r\n\r\n"
               "HEAD /json HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    fx->expect = 2;
    fx->head = true;
    fx->check_eof = true;
    run(fx, &cfg, client_script);

    assert_status(fx->resp[0], "HTTP/1.1 200 OK");
    assert_string_equal(header_of(fx->resp[0], "Content-Length"), "27");
    assert_string_equal(body_of(fx->resp[0]), "");
    assert_status(fx->resp[1], "HTTP/1.1 200 OK");
    assert_string_equal(body_of(fx->resp[1]), "");
    assert_true(fx->eof); /* no stray body bytes were sent */
    fixture_free(fx);
}

static void test_error_helpers(void **state)
{
    (void)state;
    struct fixture *fx = fixture_new();
    struct http_config cfg;
    test_config(&cfg, fx);
    fx->send = "PUT /conflict HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\n{}"
               "GET /bad-header HTTP/1.1\r\nHost: t\r\n\r\n"
               "GET /nowhere HTTP/1.1\r\nHost: t\r\n\r\n";
    fx->expect = 3;
    run(fx, &cfg, client_script);

    assert_status(fx->resp[0], "HTTP/1.1 409 Conflict");
    assert_string_equal(header_of(fx->resp[0], "Retry-After"), "2");
    assert_string_equal(body_of(fx->resp[0]), "{\"error\":\"conflict\",\"message\":\"version 3 is "
                                              "stale\",\"current_version\":7}");
    assert_status(fx->resp[1], "HTTP/1.1 500 Internal Server Error");
    assert_string_equal(body_of(fx->resp[1]),
                        "{\"error\":\"internal\",\"message\":\"the response could not be built\"}");
    assert_status(fx->resp[2], "HTTP/1.1 404 Not Found");
    assert_string_equal(body_of(fx->resp[2]),
                        "{\"error\":\"not_found\",\"message\":\"no route for /nowhere\"}");
    /* The 500 explains itself in the log, before its access line. */
    bool explained = false;
    for (int i = 0; i < fx->nlog; i++)
        if (strstr(fx->log[i], "set by the server"))
            explained = true;
    assert_true(explained);
    fixture_free(fx);
}

static void client_disconnects(struct fixture *fx)
{
    struct client *cl = calloc(1, sizeof *cl);
    if (!cl || !cl_connect(cl, fx->port))
        goto out;
    cl_sends(cl, "GET /defer?ms=300&name=late HTTP/1.1\r\nHost: t\r\n\r\n");
    wait_for(&fx->handled, 1);
    close(cl->fd);
    cl->fd = -1;
    wait_for(&fx->deferred_done, 1);
out:
    if (cl && cl->fd >= 0)
        close(cl->fd);
    free(cl);
}

static void test_client_disconnects_before_answer(void **state)
{
    (void)state;
    struct fixture *fx = fixture_new();
    struct http_config cfg;
    test_config(&cfg, fx);
    run(fx, &cfg, client_disconnects);

    assert_int_equal(atomic_load(&fx->handled), 1);
    assert_int_equal(atomic_load(&fx->deferred_done), 1);
    assert_int_equal(atomic_load(&fx->cancelled_seen), 1);
    assert_int_equal(fx->nlog, 1);
    assert_non_null(strstr(fx->log[0], "http method=GET path=/defer status=499 "));
    fixture_free(fx);
}

static void client_leaves_open(struct fixture *fx)
{
    struct client *cl = calloc(1, sizeof *cl);
    if (!cl || !cl_connect(cl, fx->port))
        goto out;
    cl_sends(cl, "GET /defer?ms=200&name=late HTTP/1.1\r\nHost: t\r\n\r\n");
    wait_for(&fx->handled, 1);
    fx->leftover_fd = cl->fd; /* closed by the main thread after the server */
    cl->fd = -1;
out:
    if (cl && cl->fd >= 0)
        close(cl->fd);
    free(cl);
}

/* The server closes while a handler still holds a request, which it answers afterwards. */
static void test_server_closes_before_answer(void **state)
{
    (void)state;
    struct fixture *fx = fixture_new();
    struct http_config cfg;
    test_config(&cfg, fx);
    run(fx, &cfg, client_leaves_open);

    assert_int_equal(atomic_load(&fx->deferred_done), 1);
    assert_int_equal(atomic_load(&fx->cancelled_seen), 1);
    assert_int_equal(fx->nlog, 0); /* the server was gone when the answer came */
    fixture_free(fx);
}

static void test_access_log_hides_query(void **state)
{
    (void)state;
    struct fixture *fx = fixture_new();
    struct http_config cfg;
    test_config(&cfg, fx);
    fx->send = "GET /json?token=secret HTTP/1.1\r\nHost: t\r\nX-Request-Id: rid-42\r\n"
               "Authorization: Bearer hush\r\n\r\n";
    fx->expect = 1;
    run(fx, &cfg, client_script);

    assert_status(fx->resp[0], "HTTP/1.1 200 OK");
    assert_int_equal(fx->nlog, 1);
    const char *line = fx->log[0];
    const char *prefix = "http method=GET path=/json status=200 ms=";
    assert_memory_equal(line, prefix, strlen(prefix));
    const char *rid = strstr(line, " rid=");
    assert_non_null(rid);
    assert_string_equal(rid, " rid=rid-42");
    assert_null(strstr(line, "secret"));
    assert_null(strstr(line, "hush"));
    fixture_free(fx);
}

static void client_two_connections(struct fixture *fx)
{
    struct client *a = calloc(1, sizeof *a);
    struct client *b = calloc(1, sizeof *b);
    if (!a || !b || !cl_connect(a, fx->port))
        goto out;
    cl_sends(a, "GET /json?a=1 HTTP/1.1\r\nHost: t\r\n\r\n");
    fx->resp_len[0] = cl_response(a, fx->resp[0], RESP_CAP, false);
    /* b is over the limit: it only reads, so the refusal cannot be lost to a reset. */
    if (!cl_connect(b, fx->port))
        goto out;
    fx->resp_len[1] = cl_response(b, fx->resp[1], RESP_CAP, false);
    fx->eof = cl_eof(b);
    cl_sends(a, "GET /json?a=2 HTTP/1.1\r\nHost: t\r\n\r\n");
    fx->resp_len[2] = cl_response(a, fx->resp[2], RESP_CAP, false);
out:
    if (a && a->fd > 0)
        close(a->fd);
    if (b && b->fd > 0)
        close(b->fd);
    free(a);
    free(b);
}

static void test_max_connections(void **state)
{
    (void)state;
    struct fixture *fx = fixture_new();
    struct http_config cfg;
    test_config(&cfg, fx);
    cfg.max_connections = 1;
    run(fx, &cfg, client_two_connections);

    assert_status(fx->resp[0], "HTTP/1.1 200 OK");
    assert_status(fx->resp[1], "HTTP/1.1 503 Service Unavailable");
    assert_string_equal(header_of(fx->resp[1], "Retry-After"), "1");
    assert_string_equal(body_of(fx->resp[1]),
                        "{\"error\":\"unavailable\",\"message\":\"too many open connections\"}");
    assert_true(fx->eof);
    assert_status(fx->resp[2], "HTTP/1.1 200 OK");
    assert_string_equal(body_of(fx->resp[2]), "{\"path\":\"/json\",\"query\":\"a=2\"}");
    fixture_free(fx);
}

static void test_config_rejected(void **state)
{
    (void)state;
    uv_loop_t loop;
    struct http_server server;
    struct http_config cfg;
    char err[256] = "";
    assert_int_equal(uv_loop_init(&loop), 0);
    http_config_init(&cfg);
    cfg.max_url_bytes = cfg.max_header_bytes + 1;
    assert_int_not_equal(http_server_init(&server, &loop, &cfg, handler, NULL, err, sizeof err), 0);
    assert_string_equal(err, "http config: max_url_bytes must be between 1 and max_header_bytes");
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* ---------------------------------------------------------------- http_response */

static void test_response_build(void **state)
{
    (void)state;
    char err[256];
    char *out;
    size_t len;
    struct http_response_head head = {
        .status = 204, .request_id = "r1", .content_type = "text/plain"};
    assert_int_equal(http_response_build(&head, NULL, "ignored", 7, &out, &len, err, sizeof err),
                     0);
    /* Date comes first, then the rest byte for byte. */
    const char *date_line = "HTTP/1.1 204 No Content\r\nDate: ";
    assert_memory_equal(out, date_line, strlen(date_line));
    const char *after = strstr(out, " GMT\r\n");
    assert_non_null(after);
    assert_int_equal(after - out, (long)strlen(date_line) + 25);
    assert_string_equal(after + 6, "X-Request-Id: r1\r\n\r\n");
    assert_int_equal(len, strlen(out));
    free(out);
    /* The format itself, at known instants (RFC 9110's example; a leap day; the epoch). */
    char date[HTTP_DATE_SIZE];
    http_response_date(784111777, date);
    assert_string_equal(date, "Sun, 06 Nov 1994 08:49:37 GMT");
    http_response_date(1709164800, date);
    assert_string_equal(date, "Thu, 29 Feb 2024 00:00:00 GMT");
    http_response_date(0, date);
    assert_string_equal(date, "Thu, 01 Jan 1970 00:00:00 GMT");

    struct http_header split[] = {{"X-A", "a\r\nX-Evil: 1"}, {NULL, NULL}};
    assert_int_not_equal(http_response_build(&head, split, NULL, 0, &out, &len, err, sizeof err),
                         0);
    assert_null(out);
    assert_string_equal(err, "response header X-A: value holds CR or LF");

    head.status = 100;
    assert_int_not_equal(http_response_build(&head, NULL, NULL, 0, &out, &len, err, sizeof err), 0);
    assert_string_equal(err, "response status 100: outside 200..599");

    json_t *body = http_response_error_body("e", "m", json_pack("{s:s}", "message", "x"));
    char *text = http_response_dump(body, NULL);
    assert_string_equal(text, "{\"error\":\"e\",\"message\":\"m\"}");
    free(text);
    json_decref(body);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_get_json),
        cmocka_unit_test(test_keepalive_sequential),
        cmocka_unit_test(test_pipelined_reverse),
        cmocka_unit_test(test_pipelined_backpressure),
        cmocka_unit_test(test_chunked_echo),
        cmocka_unit_test(test_byte_by_byte),
        cmocka_unit_test(test_expect_continue),
        cmocka_unit_test(test_413_content_length),
        cmocka_unit_test(test_413_chunked),
        cmocka_unit_test(test_431_huge_headers),
        cmocka_unit_test(test_400_length_and_chunked),
        cmocka_unit_test(test_400_garbage),
        cmocka_unit_test(test_400_missing_host),
        cmocka_unit_test(test_405_and_414),
        cmocka_unit_test(test_stalled_request_times_out),
        cmocka_unit_test(test_idle_keepalive_closed),
        cmocka_unit_test(test_connection_close),
        cmocka_unit_test(test_http10),
        cmocka_unit_test(test_head_has_no_body),
        cmocka_unit_test(test_error_helpers),
        cmocka_unit_test(test_client_disconnects_before_answer),
        cmocka_unit_test(test_server_closes_before_answer),
        cmocka_unit_test(test_access_log_hides_query),
        cmocka_unit_test(test_max_connections),
        cmocka_unit_test(test_config_rejected),
        cmocka_unit_test(test_response_build),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
