/*
 * The load generator's own logic, without any server: exact quantiles, the HTTP response
 * reader (Content-Length, chunked, split reads, keep-alive, malformed and cut-short answers),
 * the request and value builders, base64, and reading conclave's and etcd's answers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "lg_args.h"
#include "lg_hist.h"
#include "lg_http.h"
#include "lg_proto.h"

/* The option helpers: bounds, junk, a missing value, a full target list. */
static void test_args(void **state)
{
    (void)state;
    char err[128];
    double d = 0;
    assert_int_equal(lg_args_num("--clients", "64", 1, 4096, &d, err, sizeof err), 0);
    assert_true(d == 64);
    assert_int_equal(lg_args_num("--clients", "0", 1, 4096, &d, err, sizeof err), -1);
    assert_string_equal(err, "--clients needs a number from 1 to 4096, not \"0\"");
    assert_int_equal(lg_args_num("--clients", "4097", 1, 4096, &d, err, sizeof err), -1);
    assert_int_equal(lg_args_num("--clients", "6x", 1, 4096, &d, err, sizeof err), -1);
    assert_int_equal(lg_args_num("--clients", "", 1, 4096, &d, err, sizeof err), -1);
    assert_int_equal(lg_args_num("--clients", NULL, 1, 4096, &d, err, sizeof err), -1);
    assert_string_equal(err, "--clients needs a number from 1 to 4096, not \"\"");
    const char *t[2];
    int n = 0;
    assert_int_equal(lg_args_target(t, &n, 2, "127.0.0.1:1", err, sizeof err), 0);
    assert_int_equal(lg_args_target(t, &n, 2, "127.0.0.1:2", err, sizeof err), 0);
    assert_int_equal(lg_args_target(t, &n, 2, "127.0.0.1:3", err, sizeof err), -1);
    assert_string_equal(err, "at most 2 targets");
    assert_int_equal(n, 2);
    assert_string_equal(t[1], "127.0.0.1:2");
}

static void test_quantiles(void **state)
{
    (void)state;
    struct lg_hist h, other;
    lg_hist_init(&h);
    lg_hist_init(&other);
    assert_int_equal(lg_hist_quantile(&h, 0.5), 0);
    /* 1..1000 in a scrambled order, half of them merged from a second set. */
    for (uint64_t i = 0; i < 1000; i++) {
        uint64_t v = (i * 7919) % 1000 + 1;
        assert_int_equal(lg_hist_add(i % 2 ? &h : &other, v), 0);
    }
    assert_int_equal(lg_hist_merge(&h, &other), 0);
    assert_int_equal(h.n, 1000);
    lg_hist_sort(&h);
    assert_int_equal(lg_hist_quantile(&h, 0.5), 500);
    assert_int_equal(lg_hist_quantile(&h, 0.99), 990);
    assert_int_equal(lg_hist_quantile(&h, 0.999), 999);
    assert_int_equal(lg_hist_quantile(&h, 1.0), 1000);
    assert_int_equal(lg_hist_quantile(&h, 0.0001), 1);
    lg_hist_free(&h);
    lg_hist_free(&other);
}

static void test_single_sample(void **state)
{
    (void)state;
    struct lg_hist h;
    lg_hist_init(&h);
    assert_int_equal(lg_hist_add(&h, 42), 0);
    lg_hist_sort(&h);
    assert_int_equal(lg_hist_quantile(&h, 0.5), 42);
    assert_int_equal(lg_hist_quantile(&h, 0.999), 42);
    lg_hist_free(&h);
}

/* Feeds TEXT to R one byte at a time (the hardest split) and returns the last result. */
static int feed_bytewise(struct lg_resp *r, const char *text)
{
    for (size_t i = 0; text[i]; i++) {
        if (lg_resp_feed(r, text + i, 1) != 0) {
            return -1;
        }
    }
    return 0;
}

static void test_response_content_length(void **state)
{
    (void)state;
    struct lg_resp r;
    memset(&r, 0, sizeof r);
    lg_resp_start(&r);
    const char *text = "HTTP/1.1 409 Conflict\r\nContent-Type: application/json\r\n"
                       "Content-Length: 22\r\n\r\n{\"current_version\":7}\n";
    assert_int_equal(feed_bytewise(&r, text), 0);
    assert_true(r.complete);
    assert_true(r.keep_alive);
    assert_int_equal(r.status, 409);
    assert_int_equal(r.body.len, 22);
    uint64_t v = 0;
    char why[128];
    assert_int_equal(lg_conclave_write_result(r.status, r.body.p, r.body.len, &v, why, sizeof why),
                     LG_CONFLICT);
    assert_int_equal(v, 7);
    /* The same reader takes the next answer on the connection. */
    lg_resp_start(&r);
    text = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
           "5\r\n{\"ver\r\nb\r\nsion\":8,\"x\"\r\n4\r\n:1}\n\r\n0\r\n\r\n";
    assert_int_equal(lg_resp_feed(&r, text, strlen(text)), 0);
    assert_true(r.complete);
    assert_false(r.keep_alive);
    assert_string_equal(r.body.p, "{\"version\":8,\"x\":1}\n");
    assert_int_equal(lg_conclave_write_result(r.status, r.body.p, r.body.len, &v, why, sizeof why),
                     LG_OK);
    assert_int_equal(v, 8);
    lg_resp_free(&r);
}

static void test_response_bad(void **state)
{
    (void)state;
    struct lg_resp r;
    memset(&r, 0, sizeof r);
    /* Garbage instead of a status line. */
    lg_resp_start(&r);
    assert_int_equal(lg_resp_feed(&r, "HTTX/9 oops\r\n\r\n", 15), -1);
    assert_non_null(strstr(r.error, "malformed"));
    /* Bytes after a complete answer: nothing was pipelined, so they are an error. */
    lg_resp_start(&r);
    const char *two = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\nHTTP/1.1 200 OK\r\n";
    assert_int_equal(lg_resp_feed(&r, two, strlen(two)), -1);
    assert_non_null(strstr(r.error, "unexpected bytes"));
    /* A close in the middle of a Content-Length body. */
    lg_resp_start(&r);
    const char *cut = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc";
    assert_int_equal(lg_resp_feed(&r, cut, strlen(cut)), 0);
    assert_false(r.complete);
    assert_int_equal(lg_resp_eof(&r), -1);
    assert_non_null(strstr(r.error, "closed before"));
    /* A body delimited by the close is complete at the close. */
    lg_resp_start(&r);
    const char *eof = "HTTP/1.0 200 OK\r\n\r\n{}";
    assert_int_equal(lg_resp_feed(&r, eof, strlen(eof)), 0);
    assert_int_equal(lg_resp_eof(&r), 0);
    assert_true(r.complete);
    assert_false(r.keep_alive);
    assert_string_equal(r.body.p, "{}");
    lg_resp_free(&r);
}

static void test_value_and_key(void **state)
{
    (void)state;
    char v[600];
    assert_int_equal(lg_value(v, sizeof v, 250, 42, 9), 250);
    assert_int_equal(strlen(v), 250);
    assert_true(v[0] == '{' && v[249] == '}');
    assert_non_null(strstr(v, "\"seq\":9,"));
    char w[600];
    assert_int_equal(lg_value(w, sizeof w, 250, 42, 10), 250);
    assert_string_not_equal(v, w);
    assert_int_equal(lg_value(v, sizeof v, 100, 1, 1), 0); /* too small for the fields */
    assert_int_equal(lg_value(v, 200, 250, 1, 1), 0);      /* does not fit the buffer */
    char k[16];
    lg_key(k, sizeof k, 42);
    assert_string_equal(k, "k0042");
}

static void test_base64(void **state)
{
    (void)state;
    struct lg_buf b;
    lg_buf_init(&b);
    static const struct {
        const char *in, *out;
    } cases[] = {{"", ""},
                 {"f", "Zg=="},
                 {"fo", "Zm8="},
                 {"foo", "Zm9v"},
                 {"bench/k0001", "YmVuY2gvazAwMDE="}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        lg_buf_reset(&b);
        assert_int_equal(lg_base64(&b, (const unsigned char *)cases[i].in, strlen(cases[i].in)), 0);
        assert_string_equal(b.p ? b.p : "", cases[i].out);
    }
    lg_buf_free(&b);
}

static void test_requests(void **state)
{
    (void)state;
    struct lg_buf b;
    lg_buf_init(&b);
    assert_int_equal(
        lg_conclave_write(&b, "127.0.0.1:8081", "cs_T", "bench", "k0001", "{\"a\":1}", 3), 0);
    assert_non_null(strstr(b.p, "PUT /v1/projects/bench/configs/k0001 HTTP/1.1\r\n"));
    assert_non_null(strstr(b.p, "Authorization: Bearer cs_T\r\n"));
    assert_non_null(
        strstr(b.p, "Content-Length: 40\r\n\r\n{\"content\":{\"a\":1},\"expected_version\":3}"));
    assert_int_equal(lg_conclave_read(&b, "h:1", "cs_T", "bench", "k0001", 1), 0);
    assert_non_null(strstr(b.p, "GET /v1/projects/bench/configs/k0001?consistency=stale HTTP/1.1"));
    assert_int_equal(lg_etcd_write(&b, "h:1", "k0001", "v", 0), 0);
    assert_non_null(strstr(b.p, "POST /v3/kv/txn HTTP/1.1\r\n"));
    assert_non_null(strstr(b.p, "\"key\":\"YmVuY2gvazAwMDE=\",\"target\":\"VERSION\""));
    assert_non_null(strstr(b.p, "\"version\":\"0\""));
    assert_non_null(strstr(b.p, "\"value\":\"dg==\""));
    assert_int_equal(lg_etcd_read(&b, "h:1", "k0001", 1), 0);
    assert_non_null(strstr(b.p, "\"serializable\":true"));
    lg_buf_free(&b);
}

static void test_answers(void **state)
{
    (void)state;
    uint64_t v = 99;
    char why[256];
    const char *ok = "{\"header\":{},\"succeeded\":true,\"responses\":[{\"response_put\":{}}]}";
    assert_int_equal(lg_etcd_write_result(200, ok, strlen(ok), 4, &v, why, sizeof why), LG_OK);
    assert_int_equal(v, 5);
    const char *failed = "{\"header\":{},\"responses\":[{\"response_range\":{\"kvs\":[{\"key\":"
                         "\"eA==\",\"version\":\"12\"}],\"count\":\"1\"}}]}";
    assert_int_equal(lg_etcd_write_result(200, failed, strlen(failed), 4, &v, why, sizeof why),
                     LG_CONFLICT);
    assert_int_equal(v, 12);
    assert_int_equal(lg_etcd_write_result(200, "{}", 2, 4, &v, why, sizeof why), LG_ERROR);
    assert_non_null(strstr(why, "response_range"));
    assert_int_equal(lg_etcd_write_result(503, "busy", 4, 4, &v, why, sizeof why), LG_ERROR);
    assert_non_null(strstr(why, "HTTP 503"));
    const char *empty = "{\"header\":{}}";
    assert_int_equal(lg_etcd_read_result(200, empty, strlen(empty), &v, why, sizeof why), LG_OK);
    assert_int_equal(v, 0);
    const char *read = "{\"key\":\"k\",\"version\":3,\"content\":{\"a\":1}}";
    assert_int_equal(lg_conclave_read_result(200, read, strlen(read), &v, why, sizeof why), LG_OK);
    assert_int_equal(v, 3);
    assert_int_equal(lg_conclave_read_result(200, "{\"version\":3}", 13, &v, why, sizeof why),
                     LG_ERROR);
    assert_int_equal(lg_conclave_read_result(200, "not json", 8, &v, why, sizeof why), LG_ERROR);
    assert_non_null(strstr(why, "not a JSON object"));
    assert_int_equal(lg_conclave_write_result(409, "{}", 2, &v, why, sizeof why), LG_ERROR);
    assert_non_null(strstr(why, "current_version"));
    assert_int_equal(
        lg_conclave_write_result(504, "{\"error\":\"outcome_unknown\"}", 27, &v, why, sizeof why),
        LG_ERROR);
}

/* Splitting an etcd watch stream into its messages: whole objects, objects cut short, braces
 * and escaped quotes inside strings, whitespace between, and bytes that cannot start one. */
static void test_json_next_object(void **state)
{
    (void)state;
    size_t st = 99, en = 99;
    const char *two = "{\"a\":{\"b\":[1,{}]}}\n {\"c\":\"}{\\\"}\"}\n";
    assert_int_equal(lg_json_next_object(two, strlen(two), &st, &en), 1);
    assert_int_equal(st, 0);
    assert_int_equal(en, 18);
    assert_int_equal(lg_json_next_object(two + en, strlen(two) - en, &st, &en), 1);
    assert_int_equal(st, 2);
    /* The second object is {"c":"}{\"}"}: the braces and the escaped quote are in the string. */
    assert_int_equal(en, 2 + 13);
    /* Every strict prefix of an object is incomplete, never a whole object or an error. */
    const char *one = "{\"result\":{\"x\":\"a\\\\\",\"events\":[{\"kv\":{}}]}}";
    for (size_t n = 0; n < strlen(one); n++) {
        assert_int_equal(lg_json_next_object(one, n, &st, &en), 0);
    }
    assert_int_equal(lg_json_next_object(one, strlen(one), &st, &en), 1);
    assert_int_equal(en, strlen(one));
    assert_int_equal(lg_json_next_object(" \r\n\t", 4, &st, &en), 0);
    assert_int_equal(lg_json_next_object("x{}", 3, &st, &en), -1);
    assert_int_equal(lg_json_next_object("[1]", 3, &st, &en), -1);
    assert_int_equal(lg_json_next_object("{]]", 3, &st, &en), -1);
    assert_int_equal(lg_json_next_object("}", 1, &st, &en), -1);
    assert_int_equal(lg_json_next_object("{[}", 3, &st, &en), -1);
    char deep[200];
    memset(deep, '[', sizeof deep);
    deep[0] = '{';
    assert_int_equal(lg_json_next_object(deep, 64, &st, &en), 0);
    assert_int_equal(lg_json_next_object(deep, 65, &st, &en), -1);
}

/* The messages of an etcd watch stream as the JSON gateway of etcd 3.4 sends them, and the
 * ones the benchmark must refuse. */
static void test_etcd_watch_message(void **state)
{
    (void)state;
    uint64_t revs[2] = {0, 0};
    size_t n = 99;
    int created = 99;
    char why[256];
    const char *c = "{\"result\":{\"header\":{\"revision\":\"1\"},\"created\":true}}";
    assert_int_equal(lg_etcd_watch_message(c, strlen(c), &created, revs, 2, &n, why, sizeof why),
                     LG_OK);
    assert_int_equal(created, 1);
    assert_int_equal(n, 0);
    const char *ev = "{\"result\":{\"header\":{\"revision\":\"8\"},\"events\":[{\"kv\":{\"key\":"
                     "\"eA==\",\"mod_revision\":\"7\"}},{\"kv\":{\"mod_revision\":\"8\"}}]}}";
    assert_int_equal(lg_etcd_watch_message(ev, strlen(ev), &created, revs, 2, &n, why, sizeof why),
                     LG_OK);
    assert_int_equal(created, 0);
    assert_int_equal(n, 2);
    assert_int_equal(revs[0], 7);
    assert_int_equal(revs[1], 8);
    /* More events than the caller can hold. */
    assert_int_equal(lg_etcd_watch_message(ev, strlen(ev), &created, revs, 1, &n, why, sizeof why),
                     LG_ERROR);
    assert_string_equal(why, "watch message with more than 1 events");
    assert_int_equal(n, 0);
    const char *norev = "{\"result\":{\"events\":[{\"kv\":{\"key\":\"eA==\"}}]}}";
    assert_int_equal(
        lg_etcd_watch_message(norev, strlen(norev), &created, revs, 2, &n, why, sizeof why),
        LG_ERROR);
    assert_string_equal(why, "watch event without kv.mod_revision");
    const char *badrev = "{\"result\":{\"events\":[{\"kv\":{\"mod_revision\":\"7x\"}}]}}";
    assert_int_equal(
        lg_etcd_watch_message(badrev, strlen(badrev), &created, revs, 2, &n, why, sizeof why),
        LG_ERROR);
    const char *notarray = "{\"result\":{\"events\":{}}}";
    assert_int_equal(
        lg_etcd_watch_message(notarray, strlen(notarray), &created, revs, 2, &n, why, sizeof why),
        LG_ERROR);
    assert_string_equal(why, "watch message whose events are not an array");
    const char *cancel = "{\"result\":{\"canceled\":true,\"cancel_reason\":\"compacted\"}}";
    assert_int_equal(
        lg_etcd_watch_message(cancel, strlen(cancel), &created, revs, 2, &n, why, sizeof why),
        LG_ERROR);
    assert_string_equal(why, "watch canceled: compacted");
    const char *err = "{\"error\":{\"grpc_code\":14,\"message\":\"etcdserver: no leader\"}}";
    assert_int_equal(
        lg_etcd_watch_message(err, strlen(err), &created, revs, 2, &n, why, sizeof why), LG_ERROR);
    assert_string_equal(why, "watch message without result: etcdserver: no leader");
    assert_int_equal(
        lg_etcd_watch_message("{\"result\":", 10, &created, revs, 2, &n, why, sizeof why),
        LG_ERROR);
    assert_non_null(strstr(why, "not a JSON object"));
}

/* A whole etcd watch answer (chunked, as captured from etcd 3.4.23) read in 7-byte pieces:
 * the messages come out of the body one by one, as lg_watch.c takes them. */
static void test_etcd_watch_stream(void **state)
{
    (void)state;
    static const char *msgs[] = {
        "{\"result\":{\"header\":{\"revision\":\"1\"},\"created\":true}}\n",
        "{\"result\":{\"header\":{\"revision\":\"2\"},\"events\":[{\"kv\":{\"key\":\"YmVuY2gv\","
        "\"mod_revision\":\"2\",\"version\":\"1\",\"value\":\"eyJ9\"}}]}}\n",
        "{\"result\":{\"header\":{\"revision\":\"3\"},\"events\":[{\"kv\":{\"key\":\"YmVuY2gv\","
        "\"mod_revision\":\"3\",\"version\":\"2\",\"value\":\"eyJ9\"}}]}}\n",
    };
    struct lg_buf wire;
    lg_buf_init(&wire);
    assert_int_equal(lg_buf_printf(&wire, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                          "Transfer-Encoding: chunked\r\n\r\n"),
                     0);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(lg_buf_printf(&wire, "%zx\r\n%s\r\n", strlen(msgs[i]), msgs[i]), 0);
    }
    struct lg_resp r;
    memset(&r, 0, sizeof r);
    lg_buf_init(&r.body);
    lg_resp_start(&r);
    size_t scan = 0;
    int created = 0;
    uint64_t got[4];
    size_t ngot = 0;
    for (size_t off = 0; off < wire.len; off += 7) {
        size_t len = wire.len - off < 7 ? wire.len - off : 7;
        assert_int_equal(lg_resp_feed(&r, wire.p + off, len), 0);
        size_t st, en;
        while (lg_json_next_object(r.body.p + scan, r.body.len - scan, &st, &en) == 1) {
            uint64_t revs[4];
            size_t n = 0;
            int c = 0;
            char why[256];
            assert_int_equal(lg_etcd_watch_message(r.body.p + scan + st, en - st, &c, revs, 4, &n,
                                                   why, sizeof why),
                             LG_OK);
            created += c;
            for (size_t i = 0; i < n; i++) {
                got[ngot++] = revs[i];
            }
            scan += en;
        }
    }
    /* The stream never completes: the watch is still open. */
    assert_false(r.complete);
    assert_int_equal(r.status, 200);
    assert_int_equal(created, 1);
    assert_int_equal(ngot, 2);
    assert_int_equal(got[0], 2);
    assert_int_equal(got[1], 3);
    lg_resp_free(&r);
    lg_buf_free(&wire);
}

static void test_etcd_put_and_watch_requests(void **state)
{
    (void)state;
    uint64_t rev = 0;
    char why[256];
    const char *put = "{\"header\":{\"cluster_id\":\"1\",\"revision\":\"42\",\"raft_term\":\"2\"}}";
    assert_int_equal(lg_etcd_put_result(200, put, strlen(put), &rev, why, sizeof why), LG_OK);
    assert_int_equal(rev, 42);
    assert_int_equal(lg_etcd_put_result(200, "{\"header\":{}}", 13, &rev, why, sizeof why),
                     LG_ERROR);
    assert_string_equal(why, "put answer without header.revision");
    const char *zero = "{\"header\":{\"revision\":\"0\"}}";
    assert_int_equal(lg_etcd_put_result(200, zero, strlen(zero), &rev, why, sizeof why), LG_ERROR);
    assert_int_equal(lg_etcd_put_result(500, "boom", 4, &rev, why, sizeof why), LG_ERROR);
    assert_non_null(strstr(why, "HTTP 500"));
    struct lg_buf b;
    lg_buf_init(&b);
    assert_int_equal(lg_etcd_watch(&b, "h:1", "watched", 0), 0);
    assert_non_null(strstr(b.p, "POST /v3/watch HTTP/1.1\r\n"));
    /* base64 of "bench/watched" */
    assert_non_null(strstr(b.p, "{\"create_request\":{\"key\":\"YmVuY2gvd2F0Y2hlZA==\"}}"));
    assert_int_equal(lg_etcd_watch(&b, "h:1", "watched", 17), 0);
    assert_non_null(strstr(b.p, ",\"start_revision\":\"17\"}}"));
    lg_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_args),
        cmocka_unit_test(test_quantiles),
        cmocka_unit_test(test_single_sample),
        cmocka_unit_test(test_response_content_length),
        cmocka_unit_test(test_response_bad),
        cmocka_unit_test(test_value_and_key),
        cmocka_unit_test(test_base64),
        cmocka_unit_test(test_requests),
        cmocka_unit_test(test_answers),
        cmocka_unit_test(test_json_next_object),
        cmocka_unit_test(test_etcd_watch_message),
        cmocka_unit_test(test_etcd_watch_stream),
        cmocka_unit_test(test_etcd_put_and_watch_requests),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
