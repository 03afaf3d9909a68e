/*
 * The schema's constraints, against a real PostgreSQL with every migration applied. Each
 * test first shows that a well-formed row is accepted, then that the constraint refuses the
 * bad one with the expected SQLSTATE, so a missing constraint or a broken fixture fails.
 * Accepted statements must change exactly the rows they name, and reads must return exactly
 * the expected values: a statement that succeeds without touching a row proves nothing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "pgtest.h"

#define USER1   "'00000000-0000-0000-0000-000000000001'"
#define USER2   "'00000000-0000-0000-0000-000000000002'"
#define SCHEMA1 "'00000000-0000-0000-0000-0000000000a1'"
#define SCHEMA2 "'00000000-0000-0000-0000-0000000000a2'"
#define HASH32  "decode(repeat('ab', 32), 'hex')"
#define ARGON   "'$argon2id$v=19$m=65536,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2g'"

static char conninfo[512];
static PGconn *conn;

static int setup(void **state)
{
    (void)state;
    pgtest_create_db("schema", conninfo, sizeof(conninfo));
    pgtest_migrate_up(conninfo);
    conn = pgtest_connect(conninfo);
    pgtest_assert_rows(conn,
                       "INSERT INTO users (id, email, password_hash) VALUES "
                       "(" USER1 ", 'alice@example.com', " ARGON "),"
                       "(" USER2 ", 'bob@example.com', " ARGON ")",
                       2);
    pgtest_assert_rows(conn,
                       "INSERT INTO projects (id, name, owner_user_id) VALUES "
                       "('payments', 'Payments', " USER1 ")",
                       1);
    pgtest_assert_rows(conn,
                       "INSERT INTO config_schemas (id, name, schema_content, schema_hash) VALUES"
                       " (" SCHEMA1 ", 'service', '{\"type\": \"object\"}', " HASH32 "),"
                       " (" SCHEMA2 ", 'unused', 'true', " HASH32 ")",
                       2);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    PQfinish(conn);
    return 0;
}

/* An INSERT of one revision; OP_CONTENT is "'put', '{}'" or "'delete', NULL". */
static const char *revision_sql(long rev, const char *key, long version, const char *op_content,
                                long raft_index)
{
    static char sql[1024];
    snprintf(sql, sizeof(sql),
             "INSERT INTO config_revisions (revision, project_id, key, version, op, content, "
             "actor, created_at, raft_index, raft_term, prev_hash, hash) VALUES "
             "(%ld, 'payments', '%s', %ld, %s, 'user:alice', now(), %ld, 1, " HASH32 ", " HASH32
             ")",
             rev, key, version, op_content, raft_index);
    return sql;
}

static void test_duplicate_email_refused(void **state)
{
    (void)state;
    pgtest_assert_sqlstate(conn, "23505",
                           "INSERT INTO users (email, password_hash) VALUES "
                           "('Alice@Example.com', " ARGON ")");
    /* A deleted account's address may be registered again. */
    pgtest_assert_rows(conn,
                       "INSERT INTO users (email, password_hash, deleted_at) VALUES "
                       "('carol@example.com', " ARGON ", now())",
                       1);
    pgtest_assert_rows(conn,
                       "INSERT INTO users (email, password_hash) VALUES "
                       "('carol@example.com', " ARGON ")",
                       1);
    pgtest_assert_value(conn,
                        "SELECT string_agg(CASE WHEN deleted_at IS NULL THEN 'live' ELSE "
                        "'deleted' END, ',' ORDER BY deleted_at IS NULL) FROM users "
                        "WHERE email = 'carol@example.com'",
                        "deleted,live");
}

static void test_user_columns_checked(void **state)
{
    (void)state;
    pgtest_assert_sqlstate(conn, "23514",
                           "INSERT INTO users (email, password_hash) VALUES "
                           "('dave@example.com', 'hunter2')");
    pgtest_assert_sqlstate(conn, "23514",
                           "INSERT INTO users (email, password_hash) VALUES "
                           "('not-an-address', " ARGON ")");
}

static void test_unknown_role_refused(void **state)
{
    (void)state;
    pgtest_assert_rows(conn,
                       "INSERT INTO roles (user_id, project_id, role_level) VALUES "
                       "(" USER2 ", 'payments', 'viewer')",
                       1);
    pgtest_assert_sqlstate(conn, "22P02",
                           "INSERT INTO roles (user_id, project_id, role_level) VALUES "
                           "(" USER1 ", 'payments', 'owner')");
    /* One role per user and project. */
    pgtest_assert_sqlstate(conn, "23505",
                           "INSERT INTO roles (user_id, project_id, role_level) VALUES "
                           "(" USER2 ", 'payments', 'editor')");
    pgtest_assert_value(conn, "SELECT role_level FROM roles WHERE user_id = " USER2, "viewer");
}

static void test_project_slug_checked(void **state)
{
    (void)state;
    pgtest_assert_rows(conn,
                       "INSERT INTO projects (id, name, owner_user_id) VALUES "
                       "('a-b-9', 'ok', " USER1 ")",
                       1);
    pgtest_assert_sqlstate(conn, "23514",
                           "INSERT INTO projects (id, name, owner_user_id) VALUES "
                           "('Bad_Slug', 'x', " USER1 ")");
    pgtest_assert_sqlstate(conn, "23514",
                           "INSERT INTO projects (id, name, owner_user_id) VALUES "
                           "('-lead', 'x', " USER1 ")");
    pgtest_assert_sqlstate(conn, "23514",
                           "INSERT INTO projects (id, name, owner_user_id) VALUES "
                           "('ok2', '', " USER1 ")");
}

static void test_secret_hashes_have_length(void **state)
{
    (void)state;
    pgtest_assert_rows(conn,
                       "INSERT INTO api_keys (project_id, prefix, key_hash) VALUES "
                       "('payments', 'abcd1234', " HASH32 ")",
                       1);
    pgtest_assert_sqlstate(conn, "23505",
                           "INSERT INTO api_keys (project_id, prefix, key_hash) VALUES "
                           "('payments', 'abcd1234', " HASH32 ")");
    pgtest_assert_sqlstate(conn, "23514",
                           "INSERT INTO api_keys (project_id, prefix, key_hash) VALUES "
                           "('payments', 'efgh5678', 'plaintext-key')");
    pgtest_assert_sqlstate(conn, "23514",
                           "INSERT INTO sessions (token_hash, user_id, expires_at) VALUES "
                           "('short', " USER1 ", now() + interval '1 hour')");
    pgtest_assert_sqlstate(conn, "23514",
                           "INSERT INTO sessions (token_hash, user_id, expires_at) VALUES "
                           "(" HASH32 ", " USER1 ", now() - interval '1 hour')");
}

static void test_config_version_zero_refused(void **state)
{
    (void)state;
    pgtest_assert_rows(conn,
                       "INSERT INTO configs (project_id, key, version, content, last_revision, "
                       "updated_by, updated_at) VALUES "
                       "('payments', 'db.url', 1, '\"x\"', 1, 'user:alice', now())",
                       1);
    pgtest_assert_sqlstate(conn, "23514",
                           "INSERT INTO configs (project_id, key, version, content, "
                           "last_revision, updated_by, updated_at) VALUES "
                           "('payments', 'db.port', 0, '1', 1, 'user:alice', now())");
    pgtest_assert_sqlstate(conn, "23514", revision_sql(900, "v0", 0, "'put', '{}'", 900));
    /* A key with a character outside the allowed set. */
    pgtest_assert_sqlstate(conn, "23514",
                           "INSERT INTO configs (project_id, key, version, content, "
                           "last_revision, updated_by, updated_at) VALUES "
                           "('payments', 'a/b', 1, '1', 1, 'user:alice', now())");
}

static void test_duplicate_revision_version_refused(void **state)
{
    (void)state;
    pgtest_assert_rows(conn, revision_sql(1, "feature.flags", 1, "'put', '{\"a\": 1}'", 10), 1);
    pgtest_assert_rows(conn, revision_sql(2, "feature.flags", 2, "'put', '{\"a\": 2}'", 11), 1);
    /* Same project, key and version under a new revision number and raft index. */
    pgtest_assert_sqlstate(conn, "23505",
                           revision_sql(3, "feature.flags", 2, "'put', '{\"a\": 3}'", 12));
    /* Same raft index twice: the materializer's replay protection. */
    pgtest_assert_sqlstate(conn, "23505", revision_sql(4, "other", 1, "'put', '{}'", 11));
    /* A delete carries no content; a put must. */
    pgtest_assert_sqlstate(conn, "23514",
                           revision_sql(5, "feature.flags", 3, "'delete', '{}'", 13));
    pgtest_assert_sqlstate(conn, "23514", revision_sql(6, "feature.flags", 3, "'put', NULL", 14));
    pgtest_assert_rows(conn, revision_sql(7, "feature.flags", 3, "'delete', NULL", 15), 1);
    /* Exactly the accepted revisions are stored, and nothing of the refused ones. */
    pgtest_assert_value(conn,
                        "SELECT string_agg(revision || ':' || version || ':' || op, ' ' ORDER BY "
                        "revision) FROM config_revisions WHERE revision < 20",
                        "1:1:put 2:2:put 7:3:delete");
}

static void test_revisions_are_append_only(void **state)
{
    (void)state;
    pgtest_assert_rows(conn, revision_sql(20, "audit.me", 1, "'put', '{}'", 20), 1);
    pgtest_assert_sqlstate(conn, "23001",
                           "UPDATE config_revisions SET actor = 'x' WHERE revision = 20");
    assert_string_equal(pgtest_last_message(), "config_revisions is append-only: UPDATE is not "
                                               "allowed");
    pgtest_assert_sqlstate(conn, "23001", "DELETE FROM config_revisions WHERE revision = 20");
    pgtest_assert_sqlstate(conn, "23001", "TRUNCATE config_revisions");
    /* Statement-level: refused even when no row matches. */
    pgtest_assert_sqlstate(conn, "23001", "UPDATE config_revisions SET actor = 'x' WHERE false");
    /* The row is still there, exactly once and unchanged. */
    pgtest_assert_value(conn,
                        "SELECT actor || ' ' || key || ' v' || version FROM config_revisions "
                        "WHERE revision = 20",
                        "user:alice audit.me v1");
}

static void test_schema_in_use_cannot_be_deleted(void **state)
{
    (void)state;
    pgtest_assert_rows(conn,
                       "INSERT INTO configs (project_id, key, version, content, schema_id, "
                       "schema_hash, last_revision, updated_by, updated_at) VALUES "
                       "('payments', 'svc', 1, '{}', " SCHEMA1 ", " HASH32 ", 1, 'u', now())",
                       1);
    pgtest_assert_sqlstate(conn, "23503", "DELETE FROM config_schemas WHERE id = " SCHEMA1);
    pgtest_assert_rows(conn, "DELETE FROM config_schemas WHERE id = " SCHEMA2, 1);
    pgtest_assert_value(conn, "SELECT string_agg(name, ',') FROM config_schemas", "service");
    /* A schema id without its hash (or the reverse) cannot be stored. */
    pgtest_assert_sqlstate(conn, "23514",
                           "INSERT INTO configs (project_id, key, version, content, schema_id, "
                           "last_revision, updated_by, updated_at) VALUES "
                           "('payments', 'svc2', 1, '{}', " SCHEMA1 ", 1, 'u', now())");
}

static void test_cursor_is_one_row(void **state)
{
    (void)state;
    /* A fresh database's cursor covers nothing: a new leader starts at the first entry. */
    pgtest_assert_value(conn, "SELECT raft_index || ',' || revision FROM materializer_cursor",
                        "0,0");
    pgtest_assert_sqlstate(conn, "23505", "INSERT INTO materializer_cursor DEFAULT VALUES");
    pgtest_assert_sqlstate(conn, "23514", "INSERT INTO materializer_cursor (id) VALUES (false)");
    pgtest_assert_sqlstate(conn, "23514", "UPDATE materializer_cursor SET raft_index = -1");
    pgtest_assert_sqlstate(conn, "23514", "UPDATE materializer_cursor SET revision = -1");
    pgtest_assert_value(conn, "SELECT count(*) FROM materializer_cursor", "1");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_duplicate_email_refused),
        cmocka_unit_test(test_user_columns_checked),
        cmocka_unit_test(test_unknown_role_refused),
        cmocka_unit_test(test_project_slug_checked),
        cmocka_unit_test(test_secret_hashes_have_length),
        cmocka_unit_test(test_config_version_zero_refused),
        cmocka_unit_test(test_duplicate_revision_version_refused),
        cmocka_unit_test(test_revisions_are_append_only),
        cmocka_unit_test(test_schema_in_use_cannot_be_deleted),
        cmocka_unit_test(test_cursor_is_one_row),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
