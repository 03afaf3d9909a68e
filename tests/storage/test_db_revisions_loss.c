/*
 * PostgreSQL behind the cluster, the storage side (issue 14, item 4; docs/operations.md):
 * db_revisions_accept_loss() (the operator's record), db_revisions_skip_loss() (the leader
 * moving the cursor past it) and the batch writer's allowance for a version jump over an
 * accepted loss, against a real server with every migration applied. Each test gets a fresh
 * database. The lost revisions are built like the others but never written, as if
 * PostgreSQL had been restored from a backup taken before them.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "storage/db.h"
#include "storage/db_revisions.h"
#include "pgtest.h"

#define USER1 "'00000000-0000-0000-0000-000000000001'"
#define ARGON "'$argon2id$v=19$m=65536,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2g'"

#define MAXREV 16

static char conninfo[512];
static PGconn *conn;
static int db_counter;
static char err[1024];
static struct db_revision revs[MAXREV];
static char keys[MAXREV][16];
static size_t nrev;

static int setup(void **state)
{
    (void)state;
    char prefix[32];
    snprintf(prefix, sizeof(prefix), "loss%d", ++db_counter);
    pgtest_create_db(prefix, conninfo, sizeof(conninfo));
    pgtest_migrate_up(conninfo);
    conn = pgtest_connect(conninfo);
    pgtest_assert_rows(conn,
                       "INSERT INTO users (id, email, password_hash) VALUES "
                       "(" USER1 ", 'alice@example.com', " ARGON ")",
                       1);
    pgtest_assert_rows(conn,
                       "INSERT INTO projects (id, name, owner_user_id) VALUES "
                       "('payments', 'Payments', " USER1 ")",
                       1);
    memset(revs, 0, sizeof(revs));
    nrev = 0;
    err[0] = '\0';
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    PQfinish(conn);
    conn = NULL;
    return 0;
}

/* Appends revision nrev + 1 of KEY at VERSION (a put), at raft index 10 * (nrev + 1). */
static void add(const char *key, uint64_t version)
{
    assert_true(nrev < MAXREV);
    struct db_revision *r = &revs[nrev];
    r->revision = nrev + 1;
    r->project = "payments";
    snprintf(keys[nrev], sizeof(keys[nrev]), "%s", key);
    r->key = keys[nrev];
    r->version = version;
    r->op = "put";
    r->content = "{\"v\":1}";
    r->content_len = strlen(r->content);
    r->actor = "user:alice";
    r->created_at_us = INT64_C(1700000000000001) + (int64_t)nrev;
    r->raft_index = 10 * (nrev + 1);
    r->raft_term = 1;
    if (nrev > 0) {
        memcpy(r->prev_hash, revs[nrev - 1].hash, 32);
    }
    memset(r->hash, (int)(nrev + 1), 32);
    nrev++;
}

/* Writes revs[from..to) (indexes into revs) and returns the status. */
static int write_revs(size_t from, size_t to)
{
    uint64_t cursor = 0;
    return db_revisions_write_batch(conn, revs + from, to - from, &cursor, err, sizeof(err));
}

/* The loss of revs[from..to) as the leader computes it: from just after the cursor (the
 * revision before FROM) to the raft index of the last lost revision. */
static struct db_revisions_loss loss_of(size_t from, size_t to)
{
    struct db_revisions_loss l = {
        .revision_from = revs[from].revision,
        .revision_to = revs[to - 1].revision,
        .raft_index_from = from > 0 ? revs[from - 1].raft_index + 1 : 1,
        .raft_index_to = revs[to - 1].raft_index,
    };
    return l;
}

/* An accepted loss lets the writes after it continue: the cursor moves past it, a key
 * changed inside it continues its version, a key created inside it has no configs row and
 * starts at its state machine version; the lost rows stay missing. */
static void test_accepted_loss_continues(void **state)
{
    (void)state;
    add("a", 1); /* 1 */
    add("b", 1); /* 2 */
    add("a", 2); /* 3: lost */
    add("c", 1); /* 4: lost */
    add("a", 3); /* 5 */
    add("c", 2); /* 6 */
    pgtest_assert_db_ok(write_revs(0, 2), err);
    /* Without an accepted loss the next revision is a gap. */
    assert_int_equal(write_revs(4, 6), DB_ERROR);
    pgtest_assert_contains(err, "revision gap");
    struct db_revisions_loss l = loss_of(2, 4);
    pgtest_assert_db_ok(db_revisions_accept_loss(conn, &l, "test", "a reason", err, sizeof(err)),
                        err);
    pgtest_assert_value(conn,
                        "SELECT format('%s..%s %s..%s %s', revision_from, revision_to, "
                        "raft_index_from, raft_index_to, reason) FROM postgresql_losses",
                        "3..4 21..40 a reason");
    /* Recorded, but the cursor moves only when the materializer skips it. */
    pgtest_assert_value(conn, "SELECT revision FROM materializer_cursor", "2");
    pgtest_assert_db_ok(db_revisions_skip_loss(conn, &l, err, sizeof(err)), err);
    pgtest_assert_value(conn, "SELECT raft_index || ' ' || revision FROM materializer_cursor",
                        "40 4");
    /* A second skip finds the cursor moved: refused, nothing changes. */
    assert_int_equal(db_revisions_skip_loss(conn, &l, err, sizeof(err)), DB_REFUSED);
    pgtest_assert_db_ok(write_revs(4, 6), err);
    pgtest_assert_value(conn,
                        "SELECT string_agg(revision::text, ',' ORDER BY revision) FROM "
                        "config_revisions",
                        "1,2,5,6");
    pgtest_assert_value(conn,
                        "SELECT string_agg(key || '@' || version, ',' ORDER BY key) FROM configs",
                        "a@3,b@1,c@2");
}

/* The jump is allowed only over an accepted loss that lies between the key's stored revision
 * and the new one: a later version gap of the same key is still refused. */
static void test_jump_only_over_the_loss(void **state)
{
    (void)state;
    add("a", 1); /* 1 */
    add("a", 2); /* 2: lost */
    add("a", 3); /* 3 */
    add("a", 5); /* 4: a gap with no loss between revision 3 and it */
    pgtest_assert_db_ok(write_revs(0, 1), err);
    struct db_revisions_loss l = loss_of(1, 2);
    pgtest_assert_db_ok(db_revisions_accept_loss(conn, &l, "test", "", err, sizeof(err)), err);
    pgtest_assert_db_ok(db_revisions_skip_loss(conn, &l, err, sizeof(err)), err);
    pgtest_assert_db_ok(write_revs(2, 3), err);
    assert_int_equal(write_revs(3, 4), DB_ERROR);
    pgtest_assert_contains(err, "must be version 4");
    pgtest_assert_value(conn, "SELECT revision FROM materializer_cursor", "3");
}

/* The operator's record is refused, with what to fix, unless it starts right after the
 * cursor with sane ranges; the leader's skip is refused unless the record is exactly the
 * gap it sees. Nothing refused is recorded or moved. */
static void test_refusals(void **state)
{
    (void)state;
    add("a", 1); /* 1 */
    add("a", 2); /* 2: lost */
    add("a", 3); /* 3: lost */
    pgtest_assert_db_ok(write_revs(0, 1), err);
    struct db_revisions_loss l = loss_of(2, 3); /* starts at revision 3, not 2 */
    assert_int_equal(db_revisions_accept_loss(conn, &l, "test", "", err, sizeof(err)), DB_REFUSED);
    pgtest_assert_contains(err, "cursor is at revision 1 (raft index 10)");
    pgtest_assert_contains(err, "must start at revision 2 and raft index 11");
    struct db_revisions_loss inverted = {
        .revision_from = 3, .revision_to = 2, .raft_index_from = 11, .raft_index_to = 30};
    assert_int_equal(db_revisions_accept_loss(conn, &inverted, "test", "", err, sizeof(err)),
                     DB_REFUSED);
    pgtest_assert_contains(err, "1 <= FROM <= TO");
    pgtest_assert_value(conn, "SELECT count(*) FROM postgresql_losses", "0");
    /* Accepted 2..2, but the leader sees 2..3: the skip is refused. */
    struct db_revisions_loss short_loss = loss_of(1, 2);
    pgtest_assert_db_ok(db_revisions_accept_loss(conn, &short_loss, "test", "", err, sizeof(err)),
                        err);
    struct db_revisions_loss seen = loss_of(1, 3);
    assert_int_equal(db_revisions_skip_loss(conn, &seen, err, sizeof(err)), DB_REFUSED);
    pgtest_assert_value(conn, "SELECT revision FROM materializer_cursor", "1");
    /* Accepting again from the same revision replaces the range; then the skip applies. */
    pgtest_assert_db_ok(db_revisions_accept_loss(conn, &seen, "test", "", err, sizeof(err)), err);
    pgtest_assert_value(conn, "SELECT count(*) || ' ' || max(revision_to) FROM postgresql_losses",
                        "1 3");
    pgtest_assert_db_ok(db_revisions_skip_loss(conn, &seen, err, sizeof(err)), err);
    pgtest_assert_value(conn, "SELECT revision FROM materializer_cursor", "3");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_accepted_loss_continues, setup, teardown),
        cmocka_unit_test_setup_teardown(test_jump_only_over_the_loss, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
