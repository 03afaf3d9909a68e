/* websession: finding the session cookie among others (quoting, bad octets, length), the
 * CSRF token (derived, per session, per secret, compared in full) and the Set-Cookie value. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "server/websession.h"

static void test_cookie_found_among_others(void **state)
{
    (void)state;
    char out[64];
    assert_int_equal(websession_cookie_token("conclave_session=cs_abc", out, sizeof(out)), 1);
    assert_string_equal(out, "cs_abc");
    assert_int_equal(websession_cookie_token("a=1; conclave_session=cs_x; b=2", out, sizeof(out)),
                     1);
    assert_string_equal(out, "cs_x");
    /* A cookie whose name only ends or starts like ours is another cookie. */
    assert_int_equal(
        websession_cookie_token("my_conclave_session=cs_no; conclave_session2=x", out, sizeof(out)),
        0);
    assert_int_equal(websession_cookie_token("conclave_session=cs_q ; z=1", out, sizeof(out)), 1);
    assert_string_equal(out, "cs_q");
    assert_int_equal(websession_cookie_token("conclave_session=\"cs_quoted\"", out, sizeof(out)),
                     1);
    assert_string_equal(out, "cs_quoted");
    /* The first of two wins (the most specific path comes first). */
    assert_int_equal(
        websession_cookie_token("conclave_session=cs_1; conclave_session=cs_2", out, sizeof(out)),
        1);
    assert_string_equal(out, "cs_1");
}

static void test_cookie_absent_or_malformed(void **state)
{
    (void)state;
    char out[8];
    assert_int_equal(websession_cookie_token("", out, sizeof(out)), 0);
    assert_int_equal(websession_cookie_token("a=b", out, sizeof(out)), 0);
    assert_int_equal(websession_cookie_token("conclave_session", out, sizeof(out)), 0);
    assert_int_equal(websession_cookie_token("conclave_session=12345678", out, sizeof(out)), -1);
    assert_int_equal(websession_cookie_token("conclave_session=a\\b", out, sizeof(out)), -1);
    assert_int_equal(websession_cookie_token("conclave_session=a,b", out, sizeof(out)), -1);
    assert_int_equal(websession_cookie_token("conclave_session=a\"b", out, sizeof(out)), -1);
    assert_int_equal(websession_cookie_token("conclave_session=a\x7f", out, sizeof(out)), -1);
    /* An empty value is found, and is no token: the caller refuses it. */
    assert_int_equal(websession_cookie_token("conclave_session=", out, sizeof(out)), 1);
    assert_string_equal(out, "");
}

static void test_csrf_is_per_session_and_secret(void **state)
{
    (void)state;
    const unsigned char s1[] = "secret-one-secret-one-secret-one";
    const unsigned char s2[] = "secret-two-secret-two-secret-two";
    unsigned char h1[32], h2[32];
    memset(h1, 1, sizeof(h1));
    memset(h2, 2, sizeof(h2));
    char a[WEBSESSION_CSRF_CHARS + 1], b[WEBSESSION_CSRF_CHARS + 1], c[WEBSESSION_CSRF_CHARS + 1];
    websession_csrf(s1, sizeof(s1) - 1, h1, a);
    websession_csrf(s1, sizeof(s1) - 1, h2, b);
    websession_csrf(s2, sizeof(s2) - 1, h1, c);
    assert_int_equal(strlen(a), WEBSESSION_CSRF_CHARS);
    assert_string_not_equal(a, b);
    assert_string_not_equal(a, c);
    assert_true(websession_csrf_ok(s1, sizeof(s1) - 1, h1, a));
    assert_false(websession_csrf_ok(s1, sizeof(s1) - 1, h2, a));
    assert_false(websession_csrf_ok(s2, sizeof(s2) - 1, h1, a));
    assert_false(websession_csrf_ok(s1, sizeof(s1) - 1, h1, NULL));
    assert_false(websession_csrf_ok(s1, sizeof(s1) - 1, h1, ""));
    /* A prefix, a longer value and one changed last digit are all refused. */
    char t[WEBSESSION_CSRF_CHARS + 2];
    snprintf(t, sizeof(t), "%.*s", WEBSESSION_CSRF_CHARS - 1, a);
    assert_false(websession_csrf_ok(s1, sizeof(s1) - 1, h1, t));
    snprintf(t, sizeof(t), "%s0", a);
    assert_false(websession_csrf_ok(s1, sizeof(s1) - 1, h1, t));
    snprintf(t, sizeof(t), "%s", a);
    t[WEBSESSION_CSRF_CHARS - 1] = t[WEBSESSION_CSRF_CHARS - 1] == '0' ? '1' : '0';
    assert_false(websession_csrf_ok(s1, sizeof(s1) - 1, h1, t));
}

static void test_set_cookie_values(void **state)
{
    (void)state;
    char out[160];
    assert_int_equal(websession_set_cookie(out, sizeof(out), "cs_tok", 3600, false), 0);
    assert_string_equal(out,
                        "conclave_session=cs_tok; Path=/; Max-Age=3600; HttpOnly; SameSite=Strict");
    assert_int_equal(websession_set_cookie(out, sizeof(out), "cs_tok", 60, true), 0);
    assert_string_equal(
        out, "conclave_session=cs_tok; Path=/; Max-Age=60; HttpOnly; SameSite=Strict; Secure");
    assert_int_equal(websession_set_cookie(out, sizeof(out), NULL, 999, true), 0);
    assert_string_equal(out,
                        "conclave_session=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict; Secure");
    char tiny[20];
    assert_int_equal(websession_set_cookie(tiny, sizeof(tiny), "cs_tok", 1, false), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cookie_found_among_others),
        cmocka_unit_test(test_cookie_absent_or_malformed),
        cmocka_unit_test(test_csrf_is_per_session_and_secret),
        cmocka_unit_test(test_set_cookie_values),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
