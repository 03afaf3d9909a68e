/*
 * Connection settings from the environment: defaults, overrides, and refusals that name the
 * variable and leave the settings untouched.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "storage/pgconf.h"

static const char *vars[] = {"DATABASE_URL",
                             "DB_MAX_CONNECTIONS",
                             "DB_MIN_CONNECTIONS",
                             "DB_ACQUIRE_TIMEOUT_SECONDS",
                             "DB_IDLE_TIMEOUT_SECONDS",
                             "DB_MAX_LIFETIME_SECONDS"};

static int clear_env(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++) {
        unsetenv(vars[i]);
    }
    return 0;
}

static void test_defaults(void **state)
{
    (void)state;
    struct pgconf c;
    char err[256];
    assert_int_equal(pgconf_init(&c), 0);
    assert_int_equal(pgconf_apply_env(&c, err, sizeof(err)), 0);
    assert_string_equal(c.url, PGCONF_DEFAULT_URL);
    assert_int_equal(c.max_connections, 20);
    assert_int_equal(c.min_connections, 1);
    assert_int_equal(c.acquire_timeout_s, 30);
    assert_int_equal(c.idle_timeout_s, 600);
    assert_int_equal(c.max_lifetime_s, 1800);
    pgconf_free(&c);
}

static void test_environment_overrides(void **state)
{
    (void)state;
    struct pgconf c;
    char err[256];
    setenv("DATABASE_URL", "postgresql://u@127.0.0.1:5/db", 1);
    setenv("DB_MAX_CONNECTIONS", "7", 1);
    setenv("DB_MIN_CONNECTIONS", "2", 1);
    setenv("DB_ACQUIRE_TIMEOUT_SECONDS", "3", 1);
    assert_int_equal(pgconf_init(&c), 0);
    assert_int_equal(pgconf_apply_env(&c, err, sizeof(err)), 0);
    assert_string_equal(c.url, "postgresql://u@127.0.0.1:5/db");
    assert_int_equal(c.max_connections, 7);
    assert_int_equal(c.min_connections, 2);
    assert_int_equal(c.acquire_timeout_s, 3);
    pgconf_free(&c);
}

static void test_bad_values_refused_whole(void **state)
{
    (void)state;
    struct pgconf c;
    char err[256];
    assert_int_equal(pgconf_init(&c), 0);
    setenv("DATABASE_URL", "postgresql://changed", 1);
    setenv("DB_MAX_CONNECTIONS", "lots", 1);
    assert_int_equal(pgconf_apply_env(&c, err, sizeof(err)), -1);
    assert_string_equal(err, "DB_MAX_CONNECTIONS=\"lots\" is not a whole number from 1 to 1000");
    /* Nothing was applied, not even the valid URL. */
    assert_string_equal(c.url, PGCONF_DEFAULT_URL);

    setenv("DB_MAX_CONNECTIONS", "0", 1);
    assert_int_equal(pgconf_apply_env(&c, err, sizeof(err)), -1);
    setenv("DB_MAX_CONNECTIONS", "12abc", 1);
    assert_int_equal(pgconf_apply_env(&c, err, sizeof(err)), -1);

    setenv("DB_MAX_CONNECTIONS", "2", 1);
    setenv("DB_MIN_CONNECTIONS", "5", 1);
    assert_int_equal(pgconf_apply_env(&c, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "min connections (5) is larger than max connections (2)"));
    assert_int_equal(c.max_connections, 20);

    unsetenv("DB_MIN_CONNECTIONS");
    unsetenv("DB_MAX_CONNECTIONS");
    setenv("DATABASE_URL", "", 1);
    assert_int_equal(pgconf_apply_env(&c, err, sizeof(err)), -1);
    assert_string_equal(err, "DATABASE_URL is set but empty");
    pgconf_free(&c);
}

static void test_connect_failure_names_target(void **state)
{
    (void)state;
    struct pgconf c;
    char err[1024];
    PGconn *conn = (PGconn *)1;
    assert_int_equal(pgconf_init(&c), 0);
    /* Port 1 on loopback: nothing listens there, so the refusal is immediate. */
    assert_int_equal(pgconf_set_url(&c, "postgresql://x@127.0.0.1:1/db", err, sizeof(err)), 0);
    assert_int_equal(pgconf_connect(&c, "test", &conn, err, sizeof(err)), -1);
    assert_null(conn);
    assert_non_null(strstr(err, "cannot connect to postgresql: "));
    assert_non_null(strstr(err, "127.0.0.1"));
    pgconf_free(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_defaults, clear_env),
        cmocka_unit_test_setup(test_environment_overrides, clear_env),
        cmocka_unit_test_setup(test_bad_values_refused_whole, clear_env),
        cmocka_unit_test_setup(test_connect_failure_names_target, clear_env),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
