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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_args),          cmocka_unit_test(test_quantiles),
        cmocka_unit_test(test_single_sample), cmocka_unit_test(test_response_content_length),
        cmocka_unit_test(test_response_bad),  cmocka_unit_test(test_value_and_key),
        cmocka_unit_test(test_base64),        cmocka_unit_test(test_requests),
        cmocka_unit_test(test_answers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
