/* throttle: free failures, doubling locks up to the cap, the window, what a success clears,
 * unknown and known accounts alike, case, and the bounded tables. Time is passed in. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include "server/throttle.h"

static void fail_n(struct throttle *t, const char *acct, const char *ip, unsigned n, uint64_t now)
{
    for (unsigned i = 0; i < n; i++) {
        throttle_failed(t, acct, ip, now);
    }
}

static void test_account_locks_after_free_failures_and_doubles(void **state)
{
    (void)state;
    struct throttle *t = throttle_new();
    assert_non_null(t);
    uint64_t now = 1000000;
    fail_n(t, "a@example.com", "", THROTTLE_ACCOUNT_FREE, now);
    assert_int_equal(throttle_wait_ms(t, "a@example.com", "", now), 0);
    throttle_failed(t, "a@example.com", "", now);
    assert_int_equal(throttle_wait_ms(t, "a@example.com", "", now), THROTTLE_LOCK_MIN_MS);
    assert_int_equal(throttle_wait_ms(t, "A@Example.COM", "", now + 400), 600);
    assert_int_equal(throttle_wait_ms(t, "a@example.com", "", now + 1000), 0);
    throttle_failed(t, "a@example.com", "", now + 1000);
    assert_int_equal(throttle_wait_ms(t, "a@example.com", "", now + 1000),
                     2 * THROTTLE_LOCK_MIN_MS);
    throttle_failed(t, "a@example.com", "", now + 3000);
    assert_int_equal(throttle_wait_ms(t, "a@example.com", "", now + 3000),
                     4 * THROTTLE_LOCK_MIN_MS);
    /* Many more: capped. */
    fail_n(t, "a@example.com", "", 40, now + 10000);
    assert_int_equal(throttle_wait_ms(t, "a@example.com", "", now + 10000), THROTTLE_LOCK_MAX_MS);
    /* Another account is not affected; a success clears this one. */
    assert_int_equal(throttle_wait_ms(t, "b@example.com", "", now + 10000), 0);
    throttle_succeeded(t, "a@example.com");
    assert_int_equal(throttle_wait_ms(t, "a@example.com", "", now + 10000), 0);
    throttle_free(t);
}

static void test_window_forgets(void **state)
{
    (void)state;
    struct throttle *t = throttle_new();
    uint64_t now = 5000;
    fail_n(t, "w@example.com", "", THROTTLE_ACCOUNT_FREE, now);
    /* After the window, the count starts again: the next failure is free. */
    now += THROTTLE_WINDOW_MS;
    throttle_failed(t, "w@example.com", "", now);
    assert_int_equal(throttle_wait_ms(t, "w@example.com", "", now), 0);
    throttle_free(t);
}

static void test_address_counts_across_accounts_and_survives_success(void **state)
{
    (void)state;
    struct throttle *t = throttle_new();
    uint64_t now = 7000;
    char acct[64];
    for (unsigned i = 0; i <= THROTTLE_IP_FREE; i++) {
        snprintf(acct, sizeof(acct), "guess%u@example.com", i);
        throttle_failed(t, acct, "192.0.2.7", now);
    }
    /* A fresh account from that address waits; from another address it does not. */
    assert_int_equal(throttle_wait_ms(t, "fresh@example.com", "192.0.2.7", now),
                     THROTTLE_LOCK_MIN_MS);
    assert_int_equal(throttle_wait_ms(t, "fresh@example.com", "192.0.2.8", now), 0);
    /* A success on some account does not wash the address. */
    throttle_succeeded(t, "fresh@example.com");
    assert_int_equal(throttle_wait_ms(t, "fresh@example.com", "192.0.2.7", now),
                     THROTTLE_LOCK_MIN_MS);
    throttle_free(t);
}

/* The tables are bounded: more distinct keys than slots evict the oldest, never grow. */
static void test_bounded(void **state)
{
    (void)state;
    struct throttle *t = throttle_new();
    char acct[64];
    fail_n(t, "old@example.com", "", THROTTLE_ACCOUNT_FREE + 1, 1);
    for (unsigned i = 0; i < THROTTLE_SLOTS; i++) {
        snprintf(acct, sizeof(acct), "n%u@example.com", i);
        throttle_failed(t, acct, "", 100 + i);
    }
    /* old@ had the oldest failure: it was the one forgotten. */
    assert_int_equal(throttle_wait_ms(t, "old@example.com", "", 200), 0);
    throttle_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_account_locks_after_free_failures_and_doubles),
        cmocka_unit_test(test_window_forgets),
        cmocka_unit_test(test_address_counts_across_accounts_and_survives_success),
        cmocka_unit_test(test_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
