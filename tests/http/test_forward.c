/*
 * forward against real loopback servers on the same libuv loop: our http_server as the
 * upstream (it echoes what it received, or holds requests unanswered), plus a raw TCP server
 * for broken upstreams. Everything runs on the test's thread; callbacks only record what they
 * saw and the assertions run after the loop has delivered them. Every test ends with
 * forward_close(), http_server_close() and uv_loop_close() returning 0.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <jansson.h>

#include "http/forward.h"
#include "http/http_server.h"

#define SELF_NODE_ID 7
#define MAX_HUNG     16
#define MAX_SEEN     16
#define WAIT_MS      10000
#define LONG_TIMEOUT 10000

struct fixture {
    uv_loop_t loop;
    struct http_server server;
    struct fwd *fwd;
    uv_timer_t watchdog;
    bool expired;
    char base[64]; /* "http://127.0.0.1:PORT" */
    int port;

    int handled;              /* requests the upstream received */
    char seen[MAX_SEEN][160]; /* "METHOD path?query" of the first MAX_SEEN, as received */
    struct http_request *hung[MAX_HUNG];
    int nhung;

    int ndone; /* fwd callbacks, all requests together */
    bool forward_closing;
    int forward_closed; /* closed_cb calls */
    bool server_closed;
};

/* What one request's callback saw. */
struct result {
    struct fixture *fx;
    int calls;
    int rc;
    int status;
    char *body;
    size_t len;
    char *content_type, *retry_after, *etag, *conclave_index, *www_authenticate;
    long new_connections;
    char errmsg[512];
    uint64_t start_ns, end_ns;
    bool closed_before; /* closed_cb had already run when this callback ran */
    bool close_in_cb;   /* the callback calls forward_close() */
    bool send_in_cb;    /* the callback tries forward_send() and stores the result in resend_rc */
    int resend_rc;
};

static char *dup_or_null(const char *s)
{
    if (s == NULL)
        return NULL;
    char *d = strdup(s);
    assert_non_null(d);
    return d;
}

static void result_clear(struct result *r)
{
    free(r->body);
    free(r->content_type);
    free(r->retry_after);
    free(r->etag);
    free(r->conclave_index);
    free(r->www_authenticate);
    memset(r, 0, sizeof *r);
}

/* ---------------------------------------------------------------- upstream */

static int query_int(const char *query, const char *name, int dflt)
{
    const char *p = strstr(query, name);
    if (p == NULL || p[strlen(name)] != '=')
        return dflt;
    return atoi(p + strlen(name) + 1);
}

/*
 * /echo?status=N           JSON of what arrived, with Retry-After, ETag, X-Conclave-Index
 * /echo-case?status=N      the same, header names in odd letter case
 * /hang                    never answered until the test ends
 * /big?n=N                 N bytes of 'x'
 * /redirect                302 to /echo
 */
static void handler(struct http_request *req, void *data)
{
    struct fixture *fx = data;
    const char *path = http_request_path(req);
    const char *query = http_request_query(req);
    if (fx->handled < MAX_SEEN)
        snprintf(fx->seen[fx->handled], sizeof fx->seen[0], "%s %s%s%s", http_request_method(req),
                 path, query[0] != '\0' ? "?" : "", query);
    fx->handled++;

    if (strcmp(path, "/echo") == 0 || strcmp(path, "/echo-case") == 0) {
        size_t len;
        const char *body = http_request_body(req, &len);
        json_t *echo = json_pack(
            "{s:s, s:s, s:s%, s:s?, s:s?, s:s?, s:s?, s:s?}", "method", http_request_method(req),
            "query", query, "body", body, len, "authorization",
            http_request_header(req, "authorization"), "forwarded_by",
            http_request_header(req, "x-conclave-forwarded-by"), "request_id",
            http_request_header(req, "x-request-id"), "content_type",
            http_request_header(req, "content-type"), "expect", http_request_header(req, "expect"));
        struct http_header plain[] = {{"Retry-After", "3"},
                                      {"ETag", "\"v7\""},
                                      {"X-Conclave-Index", "42"},
                                      {"WWW-Authenticate", "Bearer realm=\"conclave\""},
                                      {NULL, NULL}};
        struct http_header odd[] = {{"retry-after", "5"},
                                    {"ETAG", "\"w\""},
                                    {"x-conclave-INDEX", "9"},
                                    {"www-AUTHENTICATE", "Bearer realm=\"x\""},
                                    {NULL, NULL}};
        http_respond_json_ex(req, query_int(query, "status", 200),
                             strcmp(path, "/echo") == 0 ? plain : odd, echo);
    } else if (strcmp(path, "/hang") == 0) {
        assert_true(fx->nhung < MAX_HUNG);
        fx->hung[fx->nhung++] = req;
    } else if (strcmp(path, "/big") == 0) {
        size_t n = (size_t)query_int(query, "n", 0);
        char *buf = malloc(n ? n : 1);
        assert_non_null(buf);
        memset(buf, 'x', n);
        http_respond(req, 200, NULL, buf, n);
        free(buf);
    } else if (strcmp(path, "/redirect") == 0) {
        struct http_header headers[] = {{"Location", "/echo"}, {NULL, NULL}};
        http_respond(req, 302, headers, "moved", 5);
    } else {
        http_respond_error(req, 404, "not_found", "no route for %s", path);
    }
}

static void quiet_log(const char *line, void *data)
{
    (void)line;
    (void)data;
}

/* ---------------------------------------------------------------- fixture */

static void on_watchdog(uv_timer_t *timer)
{
    struct fixture *fx = timer->data;
    fx->expired = true;
    uv_stop(timer->loop);
}

static void on_fwd_closed(void *data)
{
    struct fixture *fx = data;
    fx->forward_closed++;
}

static void on_server_closed(struct http_server *server)
{
    struct fixture *fx = server->data;
    fx->server_closed = true;
}

static struct fixture *fixture_start(void)
{
    struct fixture *fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    char err[256] = "";
    assert_int_equal(uv_loop_init(&fx->loop), 0);

    struct http_config cfg;
    http_config_init(&cfg);
    cfg.log = quiet_log;
    cfg.request_timeout_ms = 60000;
    assert_int_equal(http_server_init(&fx->server, &fx->loop, &cfg, handler, fx, err, sizeof err),
                     0);
    if (http_server_listen(&fx->server, "127.0.0.1", 0, err, sizeof err) != 0)
        fail_msg("listen: %s", err);
    fx->port = http_server_port(&fx->server);
    assert_true(fx->port > 0);
    snprintf(fx->base, sizeof fx->base, "http://127.0.0.1:%d", fx->port);

    if (forward_init(&fx->fwd, &fx->loop, SELF_NODE_ID, err, sizeof err) != 0)
        fail_msg("forward_init: %s", err);
    assert_non_null(fx->fwd);

    assert_int_equal(uv_timer_init(&fx->loop, &fx->watchdog), 0);
    fx->watchdog.data = fx;
    return fx;
}

/* Runs the loop until *counter reaches target or ms pass; true if it was reached. */
static bool run_until(struct fixture *fx, const int *counter, int target, uint64_t ms)
{
    fx->expired = false;
    uv_timer_start(&fx->watchdog, on_watchdog, ms, 0);
    while (*counter < target && !fx->expired)
        uv_run(&fx->loop, UV_RUN_ONCE);
    uv_timer_stop(&fx->watchdog);
    return *counter >= target;
}

/* Answers held requests, closes the forwarder (unless the test did) and the server, and
 * checks that nothing is left on the loop. */
static void fixture_finish(struct fixture *fx)
{
    for (int i = 0; i < fx->nhung; i++)
        http_respond(fx->hung[i], 200, NULL, "late", 4);
    fx->nhung = 0;
    if (!fx->forward_closing) {
        fx->forward_closing = true;
        forward_close(fx->fwd, on_fwd_closed, fx);
    }
    http_server_close(&fx->server, on_server_closed);

    /* The watchdog does not keep the loop alive; it only stops a loop that something else
     * keeps alive too long. */
    fx->expired = false;
    uv_timer_start(&fx->watchdog, on_watchdog, WAIT_MS, 0);
    uv_unref((uv_handle_t *)&fx->watchdog);
    uv_run(&fx->loop, UV_RUN_DEFAULT);
    if (fx->expired) {
        uv_print_all_handles(&fx->loop, stderr);
        fail_msg("handles still open %d ms after closing", WAIT_MS);
    }
    assert_int_equal(fx->forward_closed, 1);
    assert_true(fx->server_closed);
    uv_close((uv_handle_t *)&fx->watchdog, NULL);
    uv_run(&fx->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&fx->loop), 0);
    free(fx);
}

/* ---------------------------------------------------------------- client side */

static void on_done(void *data, int rc, const struct forward_response *resp, const char *errmsg)
{
    struct result *r = data;
    struct fixture *fx = r->fx;
    r->calls++;
    r->rc = rc;
    r->end_ns = uv_hrtime();
    r->closed_before = fx->forward_closed > 0;
    fx->ndone++;
    if (rc == 0) {
        assert_non_null(resp);
        assert_null(errmsg);
        r->status = resp->status;
        r->len = resp->len;
        r->body = malloc(resp->len + 1);
        assert_non_null(r->body);
        memcpy(r->body, resp->body, resp->len + 1); /* the NUL after the body too */
        r->content_type = dup_or_null(resp->content_type);
        r->retry_after = dup_or_null(resp->retry_after);
        r->etag = dup_or_null(resp->etag);
        r->conclave_index = dup_or_null(resp->conclave_index);
        r->www_authenticate = dup_or_null(resp->www_authenticate);
        r->new_connections = resp->new_connections;
    } else {
        assert_null(resp);
        assert_non_null(errmsg);
        snprintf(r->errmsg, sizeof r->errmsg, "%s", errmsg);
    }
    if (r->send_in_cb) {
        char err[256];
        r->resend_rc = forward_send(fx->fwd, fx->base, NULL, "GET", "/echo", NULL, NULL, NULL, 0,
                                    1000, on_done, r, err, sizeof err);
    }
    if (r->close_in_cb && !fx->forward_closing) {
        fx->forward_closing = true;
        forward_close(fx->fwd, on_fwd_closed, fx);
    }
}

static void send_to(struct fixture *fx, const char *base, struct result *r, const char *method,
                    const char *path, const char *auth, const char *request_id, const char *body,
                    unsigned timeout_ms)
{
    char err[256] = "";
    r->fx = fx;
    r->start_ns = uv_hrtime();
    int rc = forward_send(fx->fwd, base, NULL, method, path, auth, request_id, body,
                          body != NULL ? strlen(body) : 0, timeout_ms, on_done, r, err, sizeof err);
    if (rc != 0)
        fail_msg("forward_send %s %s: %d %s", method, path, rc, err);
    assert_int_equal(r->calls, 0); /* never from inside forward_send() */
}

static void send_req(struct fixture *fx, struct result *r, const char *method, const char *path,
                     const char *auth, const char *request_id, const char *body)
{
    send_to(fx, fx->base, r, method, path, auth, request_id, body, LONG_TIMEOUT);
}

static void wait_done(struct fixture *fx, int n)
{
    if (!run_until(fx, &fx->ndone, n, WAIT_MS))
        fail_msg("only %d of %d requests finished", fx->ndone, n);
}

static double elapsed_ms(const struct result *r)
{
    return (double)(r->end_ns - r->start_ns) / 1e6;
}

/* Parses r's JSON echo; the caller frees it with json_decref(). */
static json_t *echo_of(const struct result *r)
{
    if (r->rc != 0)
        fail_msg("request failed: %d %s", r->rc, r->errmsg);
    json_error_t jerr;
    json_t *j = json_loadb(r->body, r->len, 0, &jerr);
    if (j == NULL)
        fail_msg("not JSON (%s): %.200s", jerr.text, r->body);
    return j;
}

static void assert_field(json_t *echo, const char *name, const char *expected)
{
    json_t *v = json_object_get(echo, name);
    if (expected == NULL) {
        if (!json_is_null(v))
            fail_msg("%s: expected null, got %s", name, json_string_value(v));
        return;
    }
    if (!json_is_string(v))
        fail_msg("%s: expected \"%s\", got no string", name, expected);
    assert_string_equal(json_string_value(v), expected);
}

static int compare_strings(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Asserts that the upstream received exactly the requests in want ("METHOD path?query"), in any
 * order: concurrent requests reach it in no fixed order. */
static void assert_seen(const struct fixture *fx, const char *const *want, size_t n)
{
    const char *got[MAX_SEEN], *expected[MAX_SEEN];
    assert_true(n <= MAX_SEEN);
    assert_int_equal(fx->handled, n);
    for (size_t i = 0; i < n; i++) {
        got[i] = fx->seen[i];
        expected[i] = want[i];
    }
    qsort(got, n, sizeof got[0], compare_strings);
    qsort(expected, n, sizeof expected[0], compare_strings);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(got[i], expected[i]);
}

/* ---------------------------------------------------------------- tests */

static void test_get_relayed(void **state)
{
    (void)state;
    struct fixture *fx = fixture_start();
    struct result r = {0};
    char base[80];
    snprintf(base, sizeof base, "%s/", fx->base); /* a trailing slash is tolerated */
    send_to(fx, base, &r, "GET", "/echo?status=200&x=a%20b", "Bearer abc", "req-1", NULL,
            LONG_TIMEOUT);
    wait_done(fx, 1);

    assert_int_equal(r.calls, 1);
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.new_connections, 1);
    assert_non_null(r.content_type);
    assert_string_equal(r.content_type, "application/json");
    assert_non_null(r.retry_after);
    assert_string_equal(r.retry_after, "3");
    assert_non_null(r.etag);
    assert_string_equal(r.etag, "\"v7\"");
    assert_non_null(r.conclave_index);
    assert_string_equal(r.conclave_index, "42");
    assert_non_null(r.www_authenticate);
    assert_string_equal(r.www_authenticate, "Bearer realm=\"conclave\"");
    assert_int_equal(r.body[r.len], '\0');

    json_t *echo = echo_of(&r);
    assert_field(echo, "method", "GET");
    assert_field(echo, "query", "status=200&x=a%20b");
    assert_field(echo, "body", "");
    assert_field(echo, "authorization", "Bearer abc");
    assert_field(echo, "forwarded_by", "7");
    assert_field(echo, "request_id", "req-1");
    assert_field(echo, "content_type", NULL);
    json_decref(echo);
    result_clear(&r);
    fixture_finish(fx);
}

static void test_put_and_others_relayed(void **state)
{
    (void)state;
    struct fixture *fx = fixture_start();
    const char *body = "{\"content\":{\"a\":[1,2,\"\\u00e9\"]},\"expected_version\":3}";
    struct result put = {0}, post = {0}, del = {0}, redir = {0}, missing = {0};
    send_req(fx, &put, "PUT", "/echo?status=409", "Bearer tok", "put-1", body);
    send_req(fx, &post, "POST", "/echo-case?status=503", NULL, NULL, NULL);
    send_req(fx, &del, "DELETE", "/echo?status=204&expected_version=4", "Bearer d", NULL, NULL);
    send_req(fx, &redir, "GET", "/redirect", NULL, NULL, NULL);
    send_req(fx, &missing, "GET", "/nowhere", NULL, NULL, NULL);
    wait_done(fx, 5);

    /* A conflict is an answer like any other: status, headers and body come back as sent. */
    assert_int_equal(put.rc, 0);
    assert_int_equal(put.status, 409);
    assert_string_equal(put.retry_after, "3");
    assert_string_equal(put.etag, "\"v7\"");
    assert_string_equal(put.conclave_index, "42");
    json_t *echo = echo_of(&put);
    assert_field(echo, "method", "PUT");
    assert_field(echo, "body", body);
    assert_field(echo, "content_type", "application/json");
    assert_field(echo, "authorization", "Bearer tok");
    assert_field(echo, "request_id", "put-1");
    assert_field(echo, "forwarded_by", "7");
    assert_field(echo, "expect", NULL);
    json_decref(echo);

    /* Header names in any letter case; an empty POST carries no content type. */
    assert_int_equal(post.rc, 0);
    assert_int_equal(post.status, 503);
    assert_non_null(post.retry_after);
    assert_string_equal(post.retry_after, "5");
    assert_non_null(post.etag);
    assert_string_equal(post.etag, "\"w\"");
    assert_non_null(post.conclave_index);
    assert_string_equal(post.conclave_index, "9");
    assert_non_null(post.www_authenticate);
    assert_string_equal(post.www_authenticate, "Bearer realm=\"x\"");
    echo = echo_of(&post);
    assert_field(echo, "method", "POST");
    assert_field(echo, "body", "");
    assert_field(echo, "content_type", NULL);
    assert_field(echo, "authorization", NULL);
    assert_field(echo, "request_id", NULL);
    json_decref(echo);

    /* 204 has no body: what the upstream recorded shows the method and that the query string
     * travels unchanged. */
    assert_int_equal(del.rc, 0);
    assert_int_equal(del.status, 204);
    assert_int_equal(del.len, 0);
    assert_string_equal(del.body, "");

    /* Redirects are not followed. */
    assert_int_equal(redir.rc, 0);
    assert_int_equal(redir.status, 302);
    assert_string_equal(redir.body, "moved");
    assert_null(redir.retry_after);
    assert_null(redir.conclave_index);

    assert_int_equal(missing.rc, 0);
    assert_int_equal(missing.status, 404);
    assert_non_null(strstr(missing.body, "not_found"));

    /* Every request arrived once as sent, and the redirect was not followed. */
    const char *const seen[] = {"PUT /echo?status=409", "POST /echo-case?status=503",
                                "DELETE /echo?status=204&expected_version=4", "GET /redirect",
                                "GET /nowhere"};
    assert_seen(fx, seen, sizeof seen / sizeof seen[0]);
    result_clear(&put);
    result_clear(&post);
    result_clear(&del);
    result_clear(&redir);
    result_clear(&missing);
    fixture_finish(fx);
}

/* 100 requests one after the other, each sent from the previous one's callback. */
#define NSEQ 100
struct chain {
    struct fixture *fx;
    int sent;
    int rc[NSEQ];
    int status[NSEQ];
    long conns[NSEQ];
    bool id_matches[NSEQ];
};

static void chain_next(struct chain *c);

static void on_chain_done(void *data, int rc, const struct forward_response *resp,
                          const char *errmsg)
{
    struct chain *c = data;
    int i = c->sent - 1;
    c->fx->ndone++;
    c->rc[i] = rc;
    if (rc != 0) {
        print_error("request %d: %s\n", i, errmsg);
        return;
    }
    c->status[i] = resp->status;
    c->conns[i] = resp->new_connections;
    char want[64];
    snprintf(want, sizeof want, "\"request_id\":\"seq-%d\"", i);
    c->id_matches[i] = strstr(resp->body, want) != NULL;
    if (c->sent < NSEQ)
        chain_next(c);
}

static void chain_next(struct chain *c)
{
    char id[32], err[256] = "";
    snprintf(id, sizeof id, "seq-%d", c->sent);
    c->sent++;
    int rc = forward_send(c->fx->fwd, c->fx->base, NULL, "GET", "/echo", "Bearer s", id, NULL, 0,
                          LONG_TIMEOUT, on_chain_done, c, err, sizeof err);
    if (rc != 0)
        fail_msg("forward_send: %s", err);
}

static void count_poll(uv_handle_t *handle, void *arg)
{
    if (handle->type == UV_POLL && !uv_is_closing(handle))
        ++*(int *)arg;
}

/* Poll handles on the loop that are not closing. */
static int poll_handles(struct fixture *fx)
{
    int n = 0;
    uv_walk(&fx->loop, count_poll, &n);
    return n;
}

static void test_sequential_reuse_connection(void **state)
{
    (void)state;
    struct fixture *fx = fixture_start();
    struct chain *c = calloc(1, sizeof *c);
    assert_non_null(c);
    c->fx = fx;
    chain_next(c);
    wait_done(fx, NSEQ);

    assert_int_equal(c->sent, NSEQ);
    long total = 0;
    for (int i = 0; i < NSEQ; i++) {
        assert_int_equal(c->rc[i], 0);
        assert_int_equal(c->status[i], 200);
        assert_true(c->id_matches[i]);
        if (i > 0 && c->conns[i] != 0)
            fail_msg("request %d opened %ld new connections", i, c->conns[i]);
        total += c->conns[i];
    }
    assert_int_equal(total, 1);
    assert_int_equal(fx->handled, NSEQ);
    /* A socket libcurl stops using loses its poll handle: at most the one idle connection
     * may still be watched. */
    assert_true(poll_handles(fx) <= 1);
    free(c);
    fixture_finish(fx);
}

#define NCONC 50
static void test_concurrent(void **state)
{
    (void)state;
    struct fixture *fx = fixture_start();
    struct result *r = calloc(2 * NCONC, sizeof *r);
    assert_non_null(r);
    char body[64];

    for (int round = 0; round < 2; round++) {
        struct result *batch = r + round * NCONC;
        for (int i = 0; i < NCONC; i++) {
            snprintf(body, sizeof body, "{\"round\":%d,\"i\":%d}", round, i);
            send_req(fx, &batch[i], "POST", "/echo", NULL, NULL, body);
        }
        wait_done(fx, (round + 1) * NCONC);
        long conns = 0;
        for (int i = 0; i < NCONC; i++) {
            assert_int_equal(batch[i].calls, 1);
            assert_int_equal(batch[i].status, 200);
            json_t *echo = echo_of(&batch[i]);
            snprintf(body, sizeof body, "{\"round\":%d,\"i\":%d}", round, i);
            assert_field(echo, "body", body); /* each answer reached its own request */
            json_decref(echo);
            conns += batch[i].new_connections;
        }
        if (round == 0) {
            assert_true(conns >= 1 && conns <= NCONC);
        } else if (conns != 0) {
            /* Every connection of the first round waits in the cache for the second. */
            fail_msg("second round opened %ld new connections", conns);
        }
    }
    assert_int_equal(fx->handled, 2 * NCONC);
    for (int i = 0; i < 2 * NCONC; i++)
        result_clear(&r[i]);
    free(r);
    fixture_finish(fx);
}

static void test_timeout(void **state)
{
    (void)state;
    struct fixture *fx = fixture_start();
    struct result r = {0}, after = {0};
    send_to(fx, fx->base, &r, "PUT", "/hang?secret=1", NULL, "t-1", "{}", 300);
    wait_done(fx, 1);

    assert_int_equal(fx->nhung, 1); /* the request was delivered, then nothing came back */
    assert_int_equal(r.rc, FWD_ETIMEDOUT);
    double ms = elapsed_ms(&r);
    if (ms < 290 || ms > 1500)
        fail_msg("timed out after %.0f ms, not about 300", ms);
    assert_non_null(strstr(r.errmsg, "PUT http://127.0.0.1:"));
    assert_non_null(strstr(r.errmsg, "/hang"));
    assert_null(strstr(r.errmsg, "secret")); /* the query stays out of messages */

    /* The forwarder still works afterwards. */
    send_req(fx, &after, "GET", "/echo", NULL, NULL, NULL);
    wait_done(fx, 2);
    assert_int_equal(after.rc, 0);
    assert_int_equal(after.status, 200);
    result_clear(&r);
    result_clear(&after);
    fixture_finish(fx);
}

static void test_refused_is_unreachable(void **state)
{
    (void)state;
    struct fixture *fx = fixture_start();

    /* A port that is bound but not listening refuses connections, and nobody can take it
     * while we hold it. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = 0};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&addr, sizeof addr), 0);
    socklen_t alen = sizeof addr;
    assert_int_equal(getsockname(fd, (struct sockaddr *)&addr, &alen), 0);
    char base[64];
    snprintf(base, sizeof base, "http://127.0.0.1:%d", ntohs(addr.sin_port));

    struct result r = {0};
    send_to(fx, base, &r, "PUT", "/v1/projects/p/configs/k", "Bearer x", "r-1", "{}", LONG_TIMEOUT);
    wait_done(fx, 1);
    close(fd);

    assert_int_equal(r.calls, 1);
    assert_int_equal(r.rc, FWD_EUNREACHABLE);
    if (elapsed_ms(&r) > 2000)
        fail_msg("refusal took %.0f ms", elapsed_ms(&r));
    char want[128];
    snprintf(want, sizeof want, "PUT %s/v1/projects/p/configs/k: ", base);
    if (strncmp(r.errmsg, want, strlen(want)) != 0)
        fail_msg("errmsg: %s", r.errmsg);
    result_clear(&r);
    fixture_finish(fx);
}

/* A raw upstream that reads one request and then resets the connection or answers garbage. */
enum raw_mode { RAW_RESET, RAW_GARBAGE };
struct raw_server {
    uv_tcp_t listener;
    enum raw_mode mode;
    int port;
    int accepted;
};
struct raw_conn {
    uv_tcp_t tcp;
    struct raw_server *rs;
    uv_write_t write;
    char buf[4096];
    size_t len;
};

static void raw_conn_free(uv_handle_t *handle)
{
    free(handle->data);
}

static void raw_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    struct raw_conn *c = handle->data;
    *buf = uv_buf_init(c->buf + c->len, (unsigned)(sizeof c->buf - c->len - 1));
}

static void raw_written(uv_write_t *w, int status)
{
    (void)status;
    struct raw_conn *c = w->data;
    uv_close((uv_handle_t *)&c->tcp, raw_conn_free);
}

static void raw_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    (void)buf;
    struct raw_conn *c = stream->data;
    if (nread < 0) {
        uv_close((uv_handle_t *)&c->tcp, raw_conn_free);
        return;
    }
    c->len += (size_t)nread;
    c->buf[c->len] = '\0';
    if (strstr(c->buf, "\r\n\r\n") == NULL)
        return;
    uv_read_stop(stream);
    if (c->rs->mode == RAW_RESET) {
        assert_int_equal(uv_tcp_close_reset(&c->tcp, raw_conn_free), 0);
        return;
    }
    static char garbage[] = "HELLO WORLD\r\n\r\n";
    uv_buf_t out = uv_buf_init(garbage, sizeof garbage - 1);
    c->write.data = c;
    assert_int_equal(uv_write(&c->write, stream, &out, 1, raw_written), 0);
}

static void raw_on_connection(uv_stream_t *listener, int status)
{
    struct raw_server *rs = listener->data;
    assert_int_equal(status, 0);
    struct raw_conn *c = calloc(1, sizeof *c);
    assert_non_null(c);
    c->rs = rs;
    assert_int_equal(uv_tcp_init(listener->loop, &c->tcp), 0);
    c->tcp.data = c;
    assert_int_equal(uv_accept(listener, (uv_stream_t *)&c->tcp), 0);
    rs->accepted++;
    assert_int_equal(uv_read_start((uv_stream_t *)&c->tcp, raw_alloc, raw_read), 0);
}

static void raw_start(struct fixture *fx, struct raw_server *rs, enum raw_mode mode)
{
    memset(rs, 0, sizeof *rs);
    rs->mode = mode;
    assert_int_equal(uv_tcp_init(&fx->loop, &rs->listener), 0);
    rs->listener.data = rs;
    struct sockaddr_in addr;
    assert_int_equal(uv_ip4_addr("127.0.0.1", 0, &addr), 0);
    assert_int_equal(uv_tcp_bind(&rs->listener, (struct sockaddr *)&addr, 0), 0);
    assert_int_equal(uv_listen((uv_stream_t *)&rs->listener, 16, raw_on_connection), 0);
    int alen = sizeof addr;
    assert_int_equal(uv_tcp_getsockname(&rs->listener, (struct sockaddr *)&addr, &alen), 0);
    rs->port = ntohs(addr.sin_port);
}

static void test_broken_upstreams(void **state)
{
    (void)state;
    struct fixture *fx = fixture_start();
    struct raw_server reset, garbage;
    raw_start(fx, &reset, RAW_RESET);
    raw_start(fx, &garbage, RAW_GARBAGE);
    char base_reset[64], base_garbage[64];
    snprintf(base_reset, sizeof base_reset, "http://127.0.0.1:%d", reset.port);
    snprintf(base_garbage, sizeof base_garbage, "http://127.0.0.1:%d", garbage.port);

    struct result r1 = {0}, r2 = {0};
    send_to(fx, base_reset, &r1, "PUT", "/v1/x", NULL, NULL, "{}", LONG_TIMEOUT);
    send_to(fx, base_garbage, &r2, "GET", "/v1/y", NULL, NULL, NULL, LONG_TIMEOUT);
    wait_done(fx, 2);

    /* The request went out, so a reset leaves the outcome unknown: not "unreachable". */
    if (r1.rc != FWD_ERESET)
        fail_msg("reset: rc %d (%s)", r1.rc, r1.errmsg);
    assert_int_equal(reset.accepted, 1);
    if (strstr(r1.errmsg, "PUT http://127.0.0.1:") == NULL || strstr(r1.errmsg, "reset") == NULL)
        fail_msg("reset: errmsg %s", r1.errmsg);
    if (r2.rc != FWD_EPROTO)
        fail_msg("garbage: rc %d (%s)", r2.rc, r2.errmsg);
    assert_int_equal(garbage.accepted, 1);

    uv_close((uv_handle_t *)&reset.listener, NULL);
    uv_close((uv_handle_t *)&garbage.listener, NULL);
    result_clear(&r1);
    result_clear(&r2);
    fixture_finish(fx);
}

static void test_body_limit(void **state)
{
    (void)state;
    struct fixture *fx = fixture_start();
    char path_ok[64], path_big[64];
    snprintf(path_ok, sizeof path_ok, "/big?n=%zu", FWD_MAX_RESPONSE_BYTES);
    snprintf(path_big, sizeof path_big, "/big?n=%zu", FWD_MAX_RESPONSE_BYTES + 1);
    struct result ok = {0}, big = {0};
    send_req(fx, &ok, "GET", path_ok, NULL, NULL, NULL);
    send_req(fx, &big, "GET", path_big, NULL, NULL, NULL);
    wait_done(fx, 2);

    assert_int_equal(ok.rc, 0);
    assert_int_equal(ok.status, 200);
    assert_int_equal(ok.len, FWD_MAX_RESPONSE_BYTES);
    assert_int_equal(ok.body[0], 'x');
    assert_int_equal(ok.body[ok.len - 1], 'x');
    assert_int_equal(big.rc, FWD_ETOOLARGE);
    assert_non_null(strstr(big.errmsg, "/big"));
    result_clear(&ok);
    result_clear(&big);
    fixture_finish(fx);
}

static void test_close_with_pending(void **state)
{
    (void)state;
    struct fixture *fx = fixture_start();
    struct result r[5] = {{0}};
    for (int i = 0; i < 5; i++) {
        r[i].send_in_cb = true; /* must fail: the forwarder is closing */
        send_req(fx, &r[i], "PUT", "/hang", NULL, NULL, "{}");
    }
    if (!run_until(fx, &fx->nhung, 5, WAIT_MS))
        fail_msg("only %d requests reached the upstream", fx->nhung);
    assert_int_equal(fx->ndone, 0);

    fx->forward_closing = true;
    forward_close(fx->fwd, on_fwd_closed, fx);
    forward_close(fx->fwd, on_fwd_closed, fx); /* a second call does nothing */
    assert_int_equal(fx->ndone, 0);            /* the callbacks come from the loop */

    char err[256] = "";
    struct result late = {.fx = fx};
    assert_int_equal(forward_send(fx->fwd, fx->base, NULL, "GET", "/echo", NULL, NULL, NULL, 0,
                                  1000, on_done, &late, err, sizeof err),
                     FWD_ECLOSED);
    assert_true(err[0] != '\0');

    if (!run_until(fx, &fx->forward_closed, 1, WAIT_MS))
        fail_msg("closed_cb did not run");
    assert_int_equal(fx->ndone, 5);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(r[i].calls, 1);
        assert_int_equal(r[i].rc, FWD_ECLOSED);
        assert_false(r[i].closed_before);
        assert_int_equal(r[i].resend_rc, FWD_ECLOSED);
        assert_non_null(strstr(r[i].errmsg, "/hang"));
        result_clear(&r[i]);
    }
    assert_int_equal(late.calls, 0);
    fixture_finish(fx);
}

static void test_close_from_callback(void **state)
{
    (void)state;
    struct fixture *fx = fixture_start();
    struct result fast = {0}, slow = {0};
    send_req(fx, &slow, "GET", "/hang", NULL, NULL, NULL);
    if (!run_until(fx, &fx->nhung, 1, WAIT_MS))
        fail_msg("the slow request did not arrive");
    fast.close_in_cb = true;
    send_req(fx, &fast, "GET", "/echo", NULL, NULL, NULL);
    if (!run_until(fx, &fx->forward_closed, 1, WAIT_MS))
        fail_msg("closed_cb did not run");

    assert_int_equal(fast.calls, 1);
    assert_int_equal(fast.rc, 0);
    assert_int_equal(fast.status, 200);
    assert_int_equal(slow.calls, 1);
    assert_int_equal(slow.rc, FWD_ECLOSED);
    assert_false(slow.closed_before);
    result_clear(&fast);
    result_clear(&slow);
    fixture_finish(fx);
}

static void test_bad_arguments(void **state)
{
    (void)state;
    struct fixture *fx = fixture_start();
    struct result r = {.fx = fx};
    char err[256];
    const char *b = fx->base;
    struct {
        const char *base, *method, *path, *auth, *rid;
        unsigned timeout;
        bool no_cb;
    } cases[] = {
        {"https://127.0.0.1:1", "GET", "/", NULL, NULL, 1000, false},
        {"ftp://127.0.0.1:1", "GET", "/", NULL, NULL, 1000, false},
        {"127.0.0.1:80", "GET", "/", NULL, NULL, 1000, false},
        {"http://", "GET", "/", NULL, NULL, 1000, false},
        {b, "GE T", "/", NULL, NULL, 1000, false},
        {b, "", "/", NULL, NULL, 1000, false},
        {b, "GET\r\nX-Evil: 1", "/", NULL, NULL, 1000, false},
        {b, "GET", "echo", NULL, NULL, 1000, false},
        {b, "GET", "/a b", NULL, NULL, 1000, false},
        {b, "GET", "/echo", "Bearer x\r\nX-Evil: 1", NULL, 1000, false},
        {b, "GET", "/echo", NULL, "id\n", 1000, false},
        {b, "GET", "/echo", NULL, NULL, 0, false},
        {b, "GET", "/echo", NULL, NULL, 1000, true},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        err[0] = '\0';
        int rc = forward_send(fx->fwd, cases[i].base, NULL, cases[i].method, cases[i].path,
                              cases[i].auth, cases[i].rid, NULL, 0, cases[i].timeout,
                              cases[i].no_cb ? NULL : on_done, &r, err, sizeof err);
        if (rc != FWD_EINVAL)
            fail_msg("case %zu: rc %d, expected FWD_EINVAL", i, rc);
        if (err[0] == '\0')
            fail_msg("case %zu: no message", i);
    }
    run_until(fx, &fx->ndone, 1, 200);
    assert_int_equal(r.calls, 0);
    assert_int_equal(fx->handled, 0);
    fixture_finish(fx);
}

/* A CA bundle that exists on the test machines (Debian's ca-certificates, which curl uses). */
#define SYSTEM_CA "/etc/ssl/certs/ca-certificates.crt"

/* HTTPS: an https URL needs forward_set_tls() first, whose CA file must be readable; a server
 * name needs https and must be a host name. A request to an https URL of a server that does
 * not speak TLS (the plain fixture) fails with FWD_ETLS naming the URL, and the server handled
 * nothing. */
static void test_https(void **state)
{
    (void)state;
    struct fixture *fx = fixture_start();
    struct result r = {.fx = fx};
    char err[256], url[64];
    snprintf(url, sizeof url, "https://127.0.0.1:%d", fx->port);
    assert_int_equal(forward_send(fx->fwd, url, NULL, "GET", "/echo", NULL, NULL, NULL, 0, 1000,
                                  on_done, &r, err, sizeof err),
                     FWD_EINVAL);
    assert_non_null(strstr(err, "https needs the ca file"));
    assert_int_equal(forward_set_tls(fx->fwd, "/nonexistent/ca.pem", err, sizeof err), FWD_EINVAL);
    assert_non_null(strstr(err, "cannot read the ca file /nonexistent/ca.pem"));
    assert_int_equal(forward_set_tls(fx->fwd, SYSTEM_CA, err, sizeof err), 0);
    assert_int_equal(forward_send(fx->fwd, fx->base, "conclave-node-1", "GET", "/echo", NULL, NULL,
                                  NULL, 0, 1000, on_done, &r, err, sizeof err),
                     FWD_EINVAL);
    assert_non_null(strstr(err, "bad server name"));
    assert_int_equal(forward_send(fx->fwd, url, "node 1", "GET", "/echo", NULL, NULL, NULL, 0, 1000,
                                  on_done, &r, err, sizeof err),
                     FWD_EINVAL);
    assert_non_null(strstr(err, "bad server name"));

    assert_int_equal(forward_send(fx->fwd, url, "conclave-node-1", "GET", "/echo", NULL, NULL, NULL,
                                  0, LONG_TIMEOUT, on_done, &r, err, sizeof err),
                     0);
    assert_true(run_until(fx, &fx->ndone, 1, WAIT_MS));
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.rc, FWD_ETLS);
    char want[96];
    snprintf(want, sizeof want, "GET %s/echo: ", url);
    if (strstr(r.errmsg, want) == NULL)
        fail_msg("the message should name the url: %s", r.errmsg);
    assert_int_equal(fx->handled, 0);
    result_clear(&r);
    fixture_finish(fx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_get_relayed),
        cmocka_unit_test(test_put_and_others_relayed),
        cmocka_unit_test(test_sequential_reuse_connection),
        cmocka_unit_test(test_concurrent),
        cmocka_unit_test(test_timeout),
        cmocka_unit_test(test_refused_is_unreachable),
        cmocka_unit_test(test_broken_upstreams),
        cmocka_unit_test(test_body_limit),
        cmocka_unit_test(test_close_with_pending),
        cmocka_unit_test(test_close_from_callback),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_https),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
