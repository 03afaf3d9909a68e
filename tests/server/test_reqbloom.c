/* reqbloom: no false negatives, few false positives, distinct pairs stay distinct, clear. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "server/reqbloom.h"

static void hash_of(const struct reqbloom *f, const char *project, const char *rid,
                    struct reqbloom_hash *h)
{
    reqbloom_hash(f, project, strlen(project), rid, strlen(rid), h);
}

static void test_added_pairs_are_found_others_mostly_not(void **state)
{
    (void)state;
    struct reqbloom *f = reqbloom_new();
    assert_non_null(f);
    char rid[64];
    struct reqbloom_hash h;
    for (int i = 0; i < 100000; i++) {
        snprintf(rid, sizeof(rid), "req-%d", i);
        hash_of(f, "payments", rid, &h);
        reqbloom_add(f, &h);
    }
    for (int i = 0; i < 100000; i++) {
        snprintf(rid, sizeof(rid), "req-%d", i);
        hash_of(f, "payments", rid, &h);
        assert_true(reqbloom_may_contain(f, &h));
    }
    /* 100,000 of 2^25 bits with 7 probes: about 1e-10 false positives per query. The same
     * ids in another project, and other ids in the same project, are not in it. */
    int fp = 0;
    for (int i = 0; i < 100000; i++) {
        snprintf(rid, sizeof(rid), "req-%d", i);
        hash_of(f, "search", rid, &h);
        fp += reqbloom_may_contain(f, &h);
        snprintf(rid, sizeof(rid), "other-%d", i);
        hash_of(f, "payments", rid, &h);
        fp += reqbloom_may_contain(f, &h);
    }
    assert_int_equal(fp, 0);
    reqbloom_clear(f);
    hash_of(f, "payments", "req-1", &h);
    assert_false(reqbloom_may_contain(f, &h));
    reqbloom_free(f);
}

/* The separator keeps (ab, c) and (a, bc) apart. */
static void test_pairs_do_not_run_together(void **state)
{
    (void)state;
    struct reqbloom *f = reqbloom_new();
    assert_non_null(f);
    struct reqbloom_hash x, y;
    hash_of(f, "ab", "c", &x);
    hash_of(f, "a", "bc", &y);
    assert_false(x.a == y.a && x.b == y.b);
    reqbloom_add(f, &x);
    assert_true(reqbloom_may_contain(f, &x));
    assert_false(reqbloom_may_contain(f, &y));
    reqbloom_free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_added_pairs_are_found_others_mostly_not),
        cmocka_unit_test(test_pairs_do_not_run_together),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
