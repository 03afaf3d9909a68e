/*
 * The migrations directory: naming rules, pairing, ordering and `create` numbering, on
 * temporary directories.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "storage/migration_set.h"

static char dir[256];

static int make_dir(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/conclave-mset.XXXXXX");
    return mkdtemp(dir) == NULL ? -1 : 0;
}

static int remove_dir(void **state)
{
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd);
}

static void touch(const char *fname, const char *text)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, fname);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_parse_name(void **state)
{
    (void)state;
    long long v = 0;
    const char *name = NULL;
    size_t len = 0;
    assert_int_equal(migration_set_parse_name("001_create_users.up.sql", &v, &name, &len),
                     MSET_NAME_UP);
    assert_int_equal(v, 1);
    assert_int_equal(len, strlen("create_users"));
    assert_memory_equal(name, "create_users", len);
    assert_int_equal(migration_set_parse_name("12_x.down.sql", &v, &name, &len), MSET_NAME_DOWN);
    assert_int_equal(v, 12);
    assert_int_equal(migration_set_parse_name("README.md", &v, &name, &len), MSET_NAME_OTHER);
    assert_int_equal(migration_set_parse_name("001_x.sql", &v, &name, &len), MSET_NAME_BAD);
    assert_int_equal(migration_set_parse_name("000_x.up.sql", &v, &name, &len), MSET_NAME_BAD);
    assert_int_equal(migration_set_parse_name("abc_x.up.sql", &v, &name, &len), MSET_NAME_BAD);
    assert_int_equal(migration_set_parse_name("001_.up.sql", &v, &name, &len), MSET_NAME_BAD);
    assert_int_equal(migration_set_parse_name("001x.up.sql", &v, &name, &len), MSET_NAME_BAD);
    assert_int_equal(migration_set_parse_name("001_a b.up.sql", &v, &name, &len), MSET_NAME_BAD);
    assert_int_equal(migration_set_parse_name("99999999999999999999_x.up.sql", &v, &name, &len),
                     MSET_NAME_BAD);
}

static void test_load_sorts_and_pairs(void **state)
{
    (void)state;
    touch("010_ten.up.sql", "");
    touch("010_ten.down.sql", "");
    touch("002_two.up.sql", "");
    touch("002_two.down.sql", "");
    touch("notes.txt", "ignored");
    struct mset set;
    char err[512];
    assert_int_equal(migration_set_load(dir, &set, err, sizeof(err)), 0);
    assert_int_equal(set.count, 2);
    assert_int_equal(set.items[0].version, 2);
    assert_string_equal(set.items[0].name, "two");
    assert_int_equal(set.items[1].version, 10);
    assert_non_null(strstr(set.items[1].down_path, "/010_ten.down.sql"));
    assert_int_equal(migration_set_index_of(&set, 10), 1);
    assert_int_equal(migration_set_index_of(&set, 3), -1);
    migration_set_free(&set);
}

static void test_load_refuses_missing_down(void **state)
{
    (void)state;
    touch("001_a.up.sql", "");
    struct mset set;
    char err[512];
    assert_int_equal(migration_set_load(dir, &set, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "001_a has no down file"));
    assert_int_equal(set.count, 0);
    migration_set_free(&set);
}

static void test_load_refuses_bad_and_mismatched_names(void **state)
{
    (void)state;
    struct mset set;
    char err[512];
    touch("001_a.up.sql", "");
    touch("001_b.down.sql", "");
    assert_int_equal(migration_set_load(dir, &set, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "must share the name"));
    migration_set_free(&set);

    remove_dir(NULL);
    make_dir(NULL);
    touch("schema.sql", "");
    assert_int_equal(migration_set_load(dir, &set, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "schema.sql: not a migration name"));
    migration_set_free(&set);
}

static void test_load_missing_dir(void **state)
{
    (void)state;
    struct mset set;
    char err[512];
    assert_int_equal(migration_set_load("/nonexistent/conclave", &set, err, sizeof(err)), -1);
    assert_string_equal(err, "cannot open migrations directory /nonexistent/conclave: No such "
                             "file or directory");
}

static void test_create_numbers_after_highest(void **state)
{
    (void)state;
    char err[512];
    char *up = NULL, *down = NULL;
    assert_int_equal(migration_set_create(dir, "first_table", &up, &down, err, sizeof(err)), 0);
    assert_non_null(strstr(up, "/001_first_table.up.sql"));
    assert_non_null(strstr(down, "/001_first_table.down.sql"));
    free(up);
    free(down);
    touch("007_seven.up.sql", "");
    touch("007_seven.down.sql", "");
    assert_int_equal(migration_set_create(dir, "add_labels", &up, NULL, err, sizeof(err)), 0);
    assert_non_null(strstr(up, "/008_add_labels.up.sql"));
    free(up);
    struct mset set;
    assert_int_equal(migration_set_load(dir, &set, err, sizeof(err)), 0);
    assert_int_equal(set.count, 3);
    assert_int_equal(set.items[2].version, 8);
    migration_set_free(&set);
}

static void test_create_refuses_bad_names(void **state)
{
    (void)state;
    char err[512];
    assert_int_equal(migration_set_create(dir, "Bad-Name", NULL, NULL, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "\"Bad-Name\" is not valid"));
    assert_int_equal(migration_set_create(dir, "", NULL, NULL, err, sizeof(err)), -1);
    assert_int_equal(migration_set_create(dir, "9lives", NULL, NULL, err, sizeof(err)), -1);
    assert_true(migration_set_name_ok("add_x2"));
}

static void test_read_file(void **state)
{
    (void)state;
    touch("001_a.up.sql", "CREATE TABLE t (x int);\n");
    char path[512], err[512], *text = NULL;
    snprintf(path, sizeof(path), "%s/001_a.up.sql", dir);
    assert_int_equal(migration_set_read_file(path, &text, err, sizeof(err)), 0);
    assert_string_equal(text, "CREATE TABLE t (x int);\n");
    free(text);
    snprintf(path, sizeof(path), "%s/missing.sql", dir);
    assert_int_equal(migration_set_read_file(path, &text, err, sizeof(err)), -1);
    assert_null(text);
    assert_non_null(strstr(err, "missing.sql: No such file"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_name),
        cmocka_unit_test_setup_teardown(test_load_sorts_and_pairs, make_dir, remove_dir),
        cmocka_unit_test_setup_teardown(test_load_refuses_missing_down, make_dir, remove_dir),
        cmocka_unit_test_setup_teardown(test_load_refuses_bad_and_mismatched_names, make_dir,
                                        remove_dir),
        cmocka_unit_test(test_load_missing_dir),
        cmocka_unit_test_setup_teardown(test_create_numbers_after_highest, make_dir, remove_dir),
        cmocka_unit_test_setup_teardown(test_create_refuses_bad_names, make_dir, remove_dir),
        cmocka_unit_test_setup_teardown(test_read_file, make_dir, remove_dir),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
