/*
 * The materializer's PostgreSQL side against a real server with every migration applied.
 * Each test gets a fresh database (config_revisions is append-only, so a database cannot be
 * reset) and builds a history with add(); the checks compare every column of
 * config_revisions with the history, every column of configs with its fold, and the cursor
 * with the last revision written.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <pthread.h>

#include <cmocka.h>

#include "storage/db.h"
#include "storage/db_revisions.h"
#include "pgtest.h"

#define USER1   "'00000000-0000-0000-0000-000000000001'"
#define SCHEMA1 "00000000-0000-0000-0000-0000000000a1"
#define SCHEMA2 "00000000-0000-0000-0000-0000000000a2"
#define HASH32  "decode(repeat('ab', 32), 'hex')"
#define ARGON   "'$argon2id$v=19$m=65536,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2g'"
#define BASE_US INT64_C(1700000000123457)

#define MAXREV 600

static char conninfo[512];
static PGconn *conn;
static int db_counter;
static char err[1024];

/* The history under test. add() appends one revision; the strings live in the arrays. */
static struct db_revision revs[MAXREV];
static char keys[MAXREV][64];
static char texts[MAXREV][128];
static size_t nrev;
static uint64_t last_index;

static int setup(void **state)
{
    (void)state;
    char prefix[32];
    snprintf(prefix, sizeof(prefix), "mat%d", ++db_counter);
    pgtest_create_db(prefix, conninfo, sizeof(conninfo));
    pgtest_migrate_up(conninfo);
    conn = pgtest_connect(conninfo);
    pgtest_assert_rows(conn,
                       "INSERT INTO users (id, email, password_hash) VALUES "
                       "(" USER1 ", 'alice@example.com', " ARGON ")",
                       1);
    pgtest_assert_rows(conn,
                       "INSERT INTO projects (id, name, owner_user_id) VALUES "
                       "('payments', 'Payments', " USER1 "), ('search', 'Search', " USER1 ")",
                       2);
    pgtest_assert_rows(conn,
                       "INSERT INTO config_schemas (id, name, schema_content, schema_hash) VALUES"
                       " ('" SCHEMA1 "', 'service', '{\"type\": \"object\"}', " HASH32 "),"
                       " ('" SCHEMA2 "', 'doomed', 'true', " HASH32 ")",
                       2);
    memset(revs, 0, sizeof(revs));
    nrev = 0;
    last_index = 0;
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

static void fill_hash(uint8_t out[32], uint64_t seed)
{
    for (int i = 0; i < 32; i++) {
        out[i] = (uint8_t)(seed * 31u + (uint64_t)i * 7u);
    }
}

/* Appends the next revision: revision numbers count from 1, raft indexes leave gaps (other
 * entries sit between revisions in a real log), timestamps have odd microseconds. */
static struct db_revision *add(const char *project, const char *key, const char *op,
                               uint64_t version, const char *content)
{
    assert_true(nrev < MAXREV);
    struct db_revision *r = &revs[nrev];
    memset(r, 0, sizeof(*r));
    r->revision = nrev + 1;
    r->project = project;
    snprintf(keys[nrev], sizeof(keys[nrev]), "%s", key);
    r->key = keys[nrev];
    r->version = version;
    r->op = op;
    if (content != NULL) {
        snprintf(texts[nrev], sizeof(texts[nrev]), "%s", content);
        r->content = texts[nrev];
        r->content_len = strlen(content);
    }
    r->actor = (nrev % 2) ? "user:alice" : "apikey:ab12cd34";
    r->created_at_us = BASE_US + (int64_t)nrev * 1000003;
    last_index += 1 + nrev % 3;
    r->raft_index = last_index;
    r->raft_term = 1 + nrev / 7;
    if (nrev > 0) {
        memcpy(r->prev_hash, revs[nrev - 1].hash, 32);
    }
    fill_hash(r->hash, r->raft_index);
    nrev++;
    return r;
}

static void set_schema(struct db_revision *r, uint8_t last_byte)
{
    r->has_schema = 1;
    memset(r->schema_id, 0, 16);
    r->schema_id[15] = last_byte;
    memset(r->schema_hash, 0xab, 32);
}

static void uuid_text(const uint8_t id[16], char out[37])
{
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", id[0],
             id[1], id[2], id[3], id[4], id[5], id[6], id[7], id[8], id[9], id[10], id[11], id[12],
             id[13], id[14], id[15]);
}

static void hex_text(const uint8_t *bytes, size_t n, char *out)
{
    char tmp[2 * 32 + 3];
    db_bytea_hex(bytes, n, tmp);
    strcpy(out, tmp + 2);
}

static PGresult *query(const char *sql, int nparams, const char *const *params)
{
    PGresult *res = PQexecParams(conn, sql, nparams, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        fail_msg("query failed: %s: %s", PQresultErrorMessage(res), sql);
    }
    return res;
}

static long count_rows(const char *table)
{
    char sql[128];
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s", table);
    return pgtest_long(conn, sql);
}

static void check_cursor(uint64_t want_index, uint64_t want_revision)
{
    uint64_t idx = 99, rev = 99;
    pgtest_assert_db_ok(db_revisions_read_cursor(conn, &idx, &rev, err, sizeof(err)), err);
    assert_int_equal(idx, want_index);
    assert_int_equal(rev, want_revision);
    /* The row itself, read without the code under test. */
    char want[64];
    snprintf(want, sizeof(want), "%llu,%llu", (unsigned long long)want_index,
             (unsigned long long)want_revision);
    pgtest_assert_value(conn, "SELECT raft_index || ',' || revision FROM materializer_cursor",
                        want);
}

/* The cursor must cover exactly revs[0..upto). */
static void check_cursor_at(size_t upto)
{
    if (upto == 0) {
        check_cursor(0, 0);
    } else {
        check_cursor(revs[upto - 1].raft_index, revs[upto - 1].revision);
    }
}

/* config_revisions must hold exactly revs[0..upto), every column as given. */
static void check_revisions(size_t upto)
{
    PGresult *res = query(
        "SELECT revision, project_id, key, version, op, content::text, source_version,"
        " schema_id, encode(schema_hash, 'hex'), actor, request_id,"
        " (extract(epoch FROM created_at) * 1000000)::bigint, raft_index, raft_term,"
        " encode(prev_hash, 'hex'), encode(hash, 'hex') FROM config_revisions ORDER BY revision",
        0, NULL);
    assert_int_equal(PQntuples(res), upto);
    for (int i = 0; i < (int)upto; i++) {
        const struct db_revision *r = &revs[i];
        char num[32], hex[65], id[37];
        snprintf(num, sizeof(num), "%llu", (unsigned long long)r->revision);
        assert_string_equal(PQgetvalue(res, i, 0), num);
        assert_string_equal(PQgetvalue(res, i, 1), r->project);
        assert_string_equal(PQgetvalue(res, i, 2), r->key);
        snprintf(num, sizeof(num), "%llu", (unsigned long long)r->version);
        assert_string_equal(PQgetvalue(res, i, 3), num);
        assert_string_equal(PQgetvalue(res, i, 4), r->op);
        if (r->content == NULL) {
            assert_true(PQgetisnull(res, i, 5));
        } else {
            /* json keeps the text byte for byte. */
            assert_int_equal(PQgetlength(res, i, 5), r->content_len);
            assert_memory_equal(PQgetvalue(res, i, 5), r->content, r->content_len);
        }
        if (r->source_version == 0) {
            assert_true(PQgetisnull(res, i, 6));
        } else {
            snprintf(num, sizeof(num), "%llu", (unsigned long long)r->source_version);
            assert_string_equal(PQgetvalue(res, i, 6), num);
        }
        if (!r->has_schema) {
            assert_true(PQgetisnull(res, i, 7));
            assert_true(PQgetisnull(res, i, 8));
        } else {
            uuid_text(r->schema_id, id);
            assert_string_equal(PQgetvalue(res, i, 7), id);
            hex_text(r->schema_hash, 32, hex);
            assert_string_equal(PQgetvalue(res, i, 8), hex);
        }
        assert_string_equal(PQgetvalue(res, i, 9), r->actor);
        if (r->request_id == NULL) {
            assert_true(PQgetisnull(res, i, 10));
        } else {
            assert_string_equal(PQgetvalue(res, i, 10), r->request_id);
        }
        snprintf(num, sizeof(num), "%lld", (long long)r->created_at_us);
        assert_string_equal(PQgetvalue(res, i, 11), num);
        snprintf(num, sizeof(num), "%llu", (unsigned long long)r->raft_index);
        assert_string_equal(PQgetvalue(res, i, 12), num);
        snprintf(num, sizeof(num), "%llu", (unsigned long long)r->raft_term);
        assert_string_equal(PQgetvalue(res, i, 13), num);
        hex_text(r->prev_hash, 32, hex);
        assert_string_equal(PQgetvalue(res, i, 14), hex);
        hex_text(r->hash, 32, hex);
        assert_string_equal(PQgetvalue(res, i, 15), hex);
    }
    PQclear(res);
}

/* configs must be the fold of revs[0..upto): one row per key, every column from the key's
 * last revision (a delete leaves a tombstone without content or schema). */
static void check_configs(size_t upto)
{
    long keys_seen = 0;
    for (size_t i = 0; i < upto; i++) {
        const struct db_revision *last = NULL;
        bool first = true;
        for (size_t j = 0; j < upto; j++) {
            if (strcmp(revs[j].project, revs[i].project) == 0 &&
                strcmp(revs[j].key, revs[i].key) == 0) {
                first = first && j >= i;
                last = &revs[j];
            }
        }
        if (!first) {
            continue; /* the key was checked at its first revision */
        }
        keys_seen++;
        bool del = strcmp(last->op, "delete") == 0;
        char content[160];
        if (!del) {
            snprintf(content, sizeof(content), "%.*s", (int)last->content_len, last->content);
        }
        const char *p[] = {last->project, last->key, del ? NULL : content};
        PGresult *res = query("SELECT version, deleted, schema_id, encode(schema_hash, 'hex'),"
                              " last_revision, updated_by,"
                              " (extract(epoch FROM updated_at) * 1000000)::bigint,"
                              " content IS NOT DISTINCT FROM $3::jsonb, content::text"
                              " FROM configs WHERE project_id = $1 AND key = $2",
                              3, p);
        if (PQntuples(res) != 1) {
            fail_msg("configs has no row for %s/%s", last->project, last->key);
        }
        char num[32], hex[65], id[37];
        snprintf(num, sizeof(num), "%llu", (unsigned long long)last->version);
        assert_string_equal(PQgetvalue(res, 0, 0), num);
        assert_string_equal(PQgetvalue(res, 0, 1), del ? "t" : "f");
        if (del || !last->has_schema) {
            assert_true(PQgetisnull(res, 0, 2));
            assert_true(PQgetisnull(res, 0, 3));
        } else {
            uuid_text(last->schema_id, id);
            assert_string_equal(PQgetvalue(res, 0, 2), id);
            hex_text(last->schema_hash, 32, hex);
            assert_string_equal(PQgetvalue(res, 0, 3), hex);
        }
        snprintf(num, sizeof(num), "%llu", (unsigned long long)last->revision);
        assert_string_equal(PQgetvalue(res, 0, 4), num);
        assert_string_equal(PQgetvalue(res, 0, 5), last->actor);
        snprintf(num, sizeof(num), "%lld", (long long)last->created_at_us);
        assert_string_equal(PQgetvalue(res, 0, 6), num);
        if (strcmp(PQgetvalue(res, 0, 7), "t") != 0) {
            fail_msg("configs %s/%s holds %s, expected %s", last->project, last->key,
                     PQgetvalue(res, 0, 8), del ? "NULL" : content);
        }
        if (del) {
            assert_true(PQgetisnull(res, 0, 8));
        }
        PQclear(res);
    }
    assert_int_equal(count_rows("configs"), keys_seen);
}

static void check_all(size_t upto)
{
    check_revisions(upto);
    check_configs(upto);
    check_cursor_at(upto);
}

/* Writes revs[from..to) and requires DB_OK with the cursor at revs[to - 1]. */
static void write_ok(size_t from, size_t to)
{
    uint64_t cursor = 0;
    pgtest_assert_db_ok(
        db_revisions_write_batch(conn, revs + from, to - from, &cursor, err, sizeof(err)), err);
    assert_int_equal(cursor, revs[to - 1].raft_index);
}

/* Writes revs[from..to) and requires DB_ERROR with a message containing WANT, and
 * *cursor_out untouched. */
static void write_fails(size_t from, size_t to, const char *want)
{
    uint64_t cursor = 12345;
    int rc = db_revisions_write_batch(conn, revs + from, to - from, &cursor, err, sizeof(err));
    if (rc != DB_ERROR) {
        fail_msg("expected DB_ERROR, got %d (%s)", rc, err);
    }
    assert_int_equal(cursor, 12345);
    pgtest_assert_contains(err, want);
}

/* A mixed history on several keys and two projects. */
static void mixed_history(void)
{
    add("payments", "db.url", "put", 1, "\"postgres://a\"");
    add("payments", "db.url", "put", 2, "\"postgres://b\"");
    add("payments", "feature:flags", "put", 1, "{\"beta\":true}");
    add("payments", "db.url", "delete", 3, NULL);
    set_schema(add("payments", "svc_limits", "put", 1, "{\"rps\":100}"), 0xa1);
    add("search", "db.url", "put", 1, "[1,2,3]")->request_id = "req-42";
    add("payments", "feature:flags", "put", 2, "{\"beta\":false}");
    add("payments", "feature:flags", "rollback", 3, "{\"beta\":true}")->source_version = 1;
    add("payments", "db.url", "put", 4, "\"postgres://c\""); /* recreated after the delete */
    set_schema(add("search", "tmp.key", "put", 1, "{}"), 0xa1);
    /* A tombstone has no schema, even when the delete revision names one. */
    set_schema(add("search", "tmp.key", "delete", 2, NULL), 0xa1);
    set_schema(add("payments", "svc_limits", "put", 2, "{\"rps\":200}"), 0xa1);
}

static void test_batch_lands_as_fold(void **state)
{
    (void)state;
    check_all(0);
    mixed_history();
    write_ok(0, nrev);
    check_all(nrev);
    /* A second batch continues versions from the configs rows the first one left. */
    add("payments", "db.url", "put", 5, "\"postgres://d\"");
    add("search", "tmp.key", "put", 3, "{\"back\":1}");
    add("payments", "svc_limits", "delete", 3, NULL);
    write_ok(nrev - 3, nrev);
    check_all(nrev);
}

static void test_replay_is_noop(void **state)
{
    (void)state;
    mixed_history();
    /* A write moves the cursor's updated_at; otherwise "it stays" below would prove nothing. */
    char before[64], stamp[64], sql[160];
    snprintf(before, sizeof(before), "%s",
             pgtest_value(conn, "SELECT updated_at::text FROM materializer_cursor"));
    write_ok(0, nrev);
    snprintf(stamp, sizeof(stamp), "%s",
             pgtest_value(conn, "SELECT updated_at::text FROM materializer_cursor"));
    snprintf(sql, sizeof(sql), "SELECT updated_at > '%s' FROM materializer_cursor", before);
    pgtest_assert_value(conn, sql, "t");
    /* The whole batch again, and a part of it: nothing is written, the cursor stays. Had the
     * insert been an UPDATE of any kind, the append-only trigger would have refused it. */
    write_ok(0, nrev);
    uint64_t cursor = 0;
    pgtest_assert_db_ok(db_revisions_write_batch(conn, revs + 2, 3, &cursor, err, sizeof(err)),
                        err);
    assert_int_equal(cursor, revs[nrev - 1].raft_index); /* the cursor, not the batch's end */
    check_all(nrev);
    pgtest_assert_value(conn, "SELECT updated_at::text FROM materializer_cursor", stamp);
    /* An empty batch reports the cursor. */
    cursor = 0;
    pgtest_assert_db_ok(db_revisions_write_batch(conn, revs, 0, &cursor, err, sizeof(err)), err);
    assert_int_equal(cursor, revs[nrev - 1].raft_index);
}

static void test_overlap_writes_only_new_part(void **state)
{
    (void)state;
    mixed_history();
    write_ok(0, 5);
    check_all(5);
    write_ok(3, nrev); /* 3 and 4 are written already */
    check_all(nrev);
}

static void test_content_is_stored_byte_for_byte(void **state)
{
    (void)state;
    add("payments", "order", "put", 1, "{\"b\":1,\"a\":0.1}");
    add("payments", "spaces", "put", 1, "{ \"z\" : [ 1.50, 2e3 ] ,\"a\":null }");
    add("payments", "escapes", "put", 1, "{\"q\":\"say \\\"hi\\\"\",\"p\":\"C:\\\\dir\\u00e9\"}");
    add("payments", "unicode", "put", 1, "\"caf\xc3\xa9 \xe2\x82\xac\"");
    add("payments", "literal-null", "put", 1, "\"NULL\"");
    write_ok(0, nrev);
    check_all(nrev);
    pgtest_assert_value(conn, "SELECT content::text FROM config_revisions WHERE key = 'order'",
                        "{\"b\":1,\"a\":0.1}");
    /* configs holds jsonb: the same value, re-serialised. */
    pgtest_assert_value(conn,
                        "SELECT (content->>'a') || ' ' || (content->>'b') FROM configs"
                        " WHERE key = 'order'",
                        "0.1 1");
    pgtest_assert_value(conn, "SELECT content->>'p' FROM configs WHERE key = 'escapes'",
                        "C:\\dir\xc3\xa9");
}

/* A batch refused for a version gap leaves nothing behind, not even its valid first part. */
static void test_version_gap_refused_atomically(void **state)
{
    (void)state;
    mixed_history();
    size_t good = nrev;
    write_ok(0, good);
    add("payments", "fresh", "put", 1, "1");         /* valid */
    add("payments", "feature:flags", "put", 5, "2"); /* configs is at 3 */
    write_fails(good, nrev, "config payments/feature:flags: revision 14");
    pgtest_assert_contains(err, "has version 5, but follows version 3, so it must be version 4");
    check_all(good);

    /* A gap inside the batch itself. */
    nrev = good;
    add("payments", "fresh", "put", 1, "1");
    add("payments", "fresh", "put", 3, "2");
    write_fails(good, nrev, "config payments/fresh: revision 14");
    pgtest_assert_contains(err, "has version 3, but follows version 1, so it must be version 2");
    check_all(good);

    /* A new key must start at version 1. */
    nrev = good;
    add("search", "newkey", "put", 2, "1");
    write_fails(good, nrev, "config search/newkey: revision 13");
    pgtest_assert_contains(err, "the config has no row, so it must be version 1");
    check_all(good);

    /* A duplicate version (the row is at 4, not below). */
    nrev = good;
    add("payments", "db.url", "put", 4, "1");
    write_fails(good, nrev, "has version 4, but follows version 4, so it must be version 5");
    check_all(good);

    /* The whole batch is fine now. */
    nrev = good;
    add("payments", "fresh", "put", 1, "1");
    add("payments", "feature:flags", "put", 4, "2");
    write_ok(good, nrev);
    check_all(nrev);
}

static void test_revision_gap_refused(void **state)
{
    (void)state;
    mixed_history();
    write_ok(0, 4);
    /* Revision 6 right after a cursor at revision 4: revision 5 would be lost. */
    write_fails(5, nrev, "revision gap: the cursor is at revision 4");
    check_all(4);
    /* Out of order inside a batch: refused before anything is sent. */
    struct db_revision swapped[2] = {revs[5], revs[4]};
    uint64_t cursor = 7;
    assert_int_equal(db_revisions_write_batch(conn, swapped, 2, &cursor, err, sizeof(err)),
                     DB_ERROR);
    pgtest_assert_contains(err, "raft indexes are not increasing");
    assert_int_equal(cursor, 7);
    check_all(4);
}

static void test_divergent_replay_reported(void **state)
{
    (void)state;
    mixed_history();
    write_ok(0, 6);
    /* A different history for raft index of revision 4, followed by new revisions. */
    struct db_revision other[MAXREV];
    memcpy(other, revs, sizeof(revs[0]) * nrev);
    other[3].hash[0] ^= 1;
    uint64_t cursor = 7;
    assert_int_equal(db_revisions_write_batch(conn, other + 2, nrev - 2, &cursor, err, sizeof(err)),
                     DB_ERROR);
    pgtest_assert_contains(err, "divergence at raft index");
    char want[64];
    snprintf(want, sizeof(want), "raft index %llu", (unsigned long long)revs[3].raft_index);
    pgtest_assert_contains(err, want);
    assert_int_equal(cursor, 7);
    check_all(6);
    /* A raft index below the cursor that never held a revision. */
    memcpy(other, revs, sizeof(revs[0]) * nrev);
    other[5].raft_index = other[4].raft_index + 1; /* a gap index in the stored history */
    assert_true(other[5].raft_index < revs[5].raft_index);
    assert_int_equal(db_revisions_write_batch(conn, other + 5, nrev - 5, &cursor, err, sizeof(err)),
                     DB_ERROR);
    pgtest_assert_contains(err, "config_revisions has no row for it");
    assert_int_equal(cursor, 7);
    check_all(6);
    /* The true history still goes through. */
    write_ok(2, nrev);
    check_all(nrev);
}

/* A row beyond the cursor means something wrote config_revisions without the materializer:
 * the batch is refused rather than silently skipping it. */
static void test_row_beyond_cursor_reported(void **state)
{
    (void)state;
    mixed_history();
    write_ok(0, 2);
    char sql[512];
    snprintf(sql, sizeof(sql),
             "INSERT INTO config_revisions (revision, project_id, key, version, op, content, "
             "actor, created_at, raft_index, raft_term, prev_hash, hash) VALUES (3, 'payments', "
             "'%s', 1, 'put', '{}', 'intruder', now(), %llu, 1, " HASH32 ", " HASH32 ")",
             revs[2].key, (unsigned long long)revs[2].raft_index);
    pgtest_assert_rows(conn, sql, 1);
    write_fails(2, nrev, "were already in config_revisions beyond the cursor");
    pgtest_assert_contains(err, "1 of 10 revisions");
    assert_int_equal(count_rows("config_revisions"), 3);
    check_configs(2);
    check_cursor_at(2);
}

static void test_created_at_keeps_microseconds(void **state)
{
    (void)state;
    /* The last one, in 2255, is beyond what to_timestamp(double precision) keeps exactly. */
    static const int64_t stamps[] = {BASE_US,
                                     1,
                                     -1,
                                     INT64_C(4102444799999999),
                                     INT64_C(-2208988800000001),
                                     INT64_C(8999999999999999)};
    for (size_t i = 0; i < sizeof(stamps) / sizeof(stamps[0]); i++) {
        char key[16];
        snprintf(key, sizeof(key), "t%zu", i);
        add("payments", key, "put", 1, "0")->created_at_us = stamps[i];
    }
    write_ok(0, nrev);
    check_all(nrev); /* compares created_at and updated_at to the microsecond */
    pgtest_assert_value(conn,
                        "SELECT created_at AT TIME ZONE 'UTC' FROM config_revisions"
                        " WHERE key = 't0'",
                        "2023-11-14 22:13:20.123457");
}

static void test_batch_of_500(void **state)
{
    (void)state;
    /* 50 keys in each of two projects; every eleventh change of a live key is a delete. */
    uint64_t version[2][50] = {{0}};
    bool live[2][50] = {{false}};
    for (int i = 0; i < 500; i++) {
        char key[32], content[96];
        int p = i % 2, k = (i / 2 * 7) % 50;
        snprintf(key, sizeof(key), "bulk.key-%02d", k);
        snprintf(content, sizeof(content), "{\"i\":%d,\"name\":\"value number %d\",\"ok\":true}", i,
                 i);
        bool del = i % 11 == 10 && live[p][k];
        add(p ? "payments" : "search", key, del ? "delete" : "put", ++version[p][k],
            del ? NULL : content);
        live[p][k] = !del;
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    write_ok(0, nrev);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
    print_message("materialized a batch of %zu revisions in %.2f ms\n", nrev, ms);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    write_ok(0, nrev);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
    print_message("replayed it (verify only) in %.2f ms\n", ms);
    check_all(nrev);
    assert_int_equal(count_rows("configs"), 100);
}

/* The schema row disappears between validation and materialization. */
static void test_deleted_schema_reported(void **state)
{
    (void)state;
    add("payments", "a", "put", 1, "1");
    set_schema(add("payments", "bound", "put", 1, "{}"), 0xa2);
    pgtest_assert_rows(conn, "DELETE FROM config_schemas WHERE id = '" SCHEMA2 "'", 1);
    write_fails(0, nrev, "schema " SCHEMA2 " of config payments/bound (revision 2");
    pgtest_assert_contains(err, "no longer exists");
    check_all(0);
    /* Restoring the schema row unblocks the materializer. */
    pgtest_assert_rows(conn,
                       "INSERT INTO config_schemas (id, name, schema_content, schema_hash) VALUES"
                       " ('" SCHEMA2 "', 'doomed', 'true', " HASH32 ")",
                       1);
    write_ok(0, nrev);
    check_all(nrev);
    /* A schema that only an intermediate revision of a key names is not needed: configs
     * gets the key's last state, here a tombstone. */
    set_schema(add("payments", "temp", "put", 1, "{}"), 0xa3); /* no such schema row */
    add("payments", "temp", "delete", 2, NULL);
    write_ok(2, nrev);
    check_all(nrev);
}

static void test_missing_project_reported(void **state)
{
    (void)state;
    add("payments", "a", "put", 1, "1");
    add("nowhere", "a", "put", 1, "1");
    write_fails(0, nrev, "project nowhere of revision 2");
    check_all(0);
}

static void test_lost_connection_is_unavailable(void **state)
{
    (void)state;
    mixed_history();
    PGconn *victim = pgtest_connect(conninfo);
    char sql[128];
    snprintf(sql, sizeof(sql), "SELECT pg_terminate_backend(%d)", PQbackendPID(victim));
    pgtest_assert_value(conn, sql, "t");
    uint64_t cursor = 7;
    int rc = db_revisions_write_batch(victim, revs, nrev, &cursor, err, sizeof(err));
    assert_int_equal(rc, DB_UNAVAILABLE);
    assert_int_equal(cursor, 7);
    uint64_t idx, rev;
    assert_int_equal(db_revisions_read_cursor(victim, &idx, &rev, err, sizeof(err)),
                     DB_UNAVAILABLE);
    PQfinish(victim);
    /* The retry on another connection writes the batch once. */
    write_ok(0, nrev);
    check_all(nrev);
}

/* Two materializers: the second waits on the cursor lock while the first writes, then finds
 * everything written. */
struct racer {
    PGconn *conn;
    size_t from, to;
    int rc;
    uint64_t cursor;
    char err[512];
};

static void *race(void *arg)
{
    struct racer *r = arg;
    r->rc = db_revisions_write_batch(r->conn, revs + r->from, r->to - r->from, &r->cursor, r->err,
                                     sizeof(r->err));
    return NULL;
}

/* Waits (at most 5 s) until WAITER's backend waits for a lock, as seen from conn. */
static void wait_blocked_on_lock(PGconn *waiter)
{
    char sql[256];
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM pg_stat_activity WHERE pid = %d AND wait_event_type = 'Lock'",
             PQbackendPID(waiter));
    bool blocked = false;
    for (int i = 0; i < 500 && !blocked; i++) {
        blocked = pgtest_long(conn, sql) == 1;
        if (!blocked) {
            usleep(10000);
        }
    }
    assert_true(blocked);
}

static void test_concurrent_materializers_take_turns(void **state)
{
    (void)state;
    mixed_history();
    write_ok(0, 2);
    /* This connection holds the cursor lock, as a materializer in the middle of a batch. */
    pgtest_exec(conn, "BEGIN");
    char want[32];
    snprintf(want, sizeof(want), "%llu", (unsigned long long)revs[1].raft_index);
    pgtest_assert_value(conn, "SELECT raft_index FROM materializer_cursor FOR UPDATE", want);
    struct racer other = {.conn = pgtest_connect(conninfo), .from = 2, .to = nrev};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, race, &other), 0);
    /* Wait until the other materializer is blocked on the lock. */
    wait_blocked_on_lock(other.conn);
    /* Meanwhile this materializer writes revisions 3..5 and commits (its BEGIN inside the
     * open transaction only warns, and its COMMIT ends the transaction begun above). */
    write_ok(2, 5);
    assert_int_equal(PQtransactionStatus(conn), PQTRANS_IDLE);
    assert_int_equal(pthread_join(t, NULL), 0);
    if (other.rc != DB_OK) {
        fail_msg("the waiting materializer failed: %s", other.err);
    }
    assert_int_equal(other.cursor, revs[nrev - 1].raft_index);
    PQfinish(other.conn);
    check_all(nrev);
}

/* The usual batch is one statement with its own commit: a deferred flush commits with
 * synchronous_commit off for that transaction only, a plain one waits for the flush, and
 * neither leaves its setting behind on the connection. */
static void test_one_statement_defers_only_when_asked(void **state)
{
    (void)state;
    mixed_history();
    pgtest_exec(conn, "SET synchronous_commit = remote_write");
    uint64_t cursor = 0;
    bool flushed = true;
    pgtest_assert_db_ok(db_revisions_write_batch_ex(conn, revs, 4, DB_REVISIONS_DEFER_FLUSH,
                                                    &cursor, &flushed, err, sizeof(err)),
                        err);
    assert_false(flushed);
    assert_int_equal(cursor, revs[3].raft_index);
    pgtest_assert_value(conn, "SHOW synchronous_commit", "remote_write");
    flushed = false;
    pgtest_assert_db_ok(db_revisions_write_batch_ex(conn, revs + 4, nrev - 4, 0, &cursor, &flushed,
                                                    err, sizeof(err)),
                        err);
    assert_true(flushed);
    pgtest_assert_value(conn, "SHOW synchronous_commit", "remote_write");
    check_all(nrev);
    /* The flush reports the cursor and moves nothing but its timestamp. */
    uint64_t idx = 0, rev = 0;
    pgtest_assert_db_ok(db_revisions_flush(conn, &idx, &rev, err, sizeof(err)), err);
    assert_int_equal(idx, revs[nrev - 1].raft_index);
    assert_int_equal(rev, revs[nrev - 1].revision);
    check_all(nrev);
    pgtest_exec(conn, "RESET synchronous_commit");
}

/* A batch whose one statement waited for another materializer's lock reads configs rows
 * older than what that one committed: it must write nothing itself and leave the batch to the
 * full transaction, which writes it once, correctly. */
static void test_one_statement_after_lock_wait(void **state)
{
    (void)state;
    mixed_history();
    write_ok(0, 2);
    pgtest_exec(conn, "BEGIN");
    pgtest_exec(conn, "SELECT raft_index FROM materializer_cursor FOR UPDATE");
    /* The other's batch starts right after what this one is about to commit, and shares
     * keys with it (db.url and feature:flags). */
    struct racer other = {.conn = pgtest_connect(conninfo), .from = 5, .to = nrev};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, race, &other), 0);
    wait_blocked_on_lock(other.conn);
    write_ok(2, 5);
    assert_int_equal(pthread_join(t, NULL), 0);
    if (other.rc != DB_OK) {
        fail_msg("the waiting materializer failed: %s", other.err);
    }
    assert_int_equal(other.cursor, revs[nrev - 1].raft_index);
    PQfinish(other.conn);
    check_all(nrev);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_batch_lands_as_fold, setup, teardown),
        cmocka_unit_test_setup_teardown(test_one_statement_defers_only_when_asked, setup, teardown),
        cmocka_unit_test_setup_teardown(test_one_statement_after_lock_wait, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replay_is_noop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_overlap_writes_only_new_part, setup, teardown),
        cmocka_unit_test_setup_teardown(test_content_is_stored_byte_for_byte, setup, teardown),
        cmocka_unit_test_setup_teardown(test_version_gap_refused_atomically, setup, teardown),
        cmocka_unit_test_setup_teardown(test_revision_gap_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_divergent_replay_reported, setup, teardown),
        cmocka_unit_test_setup_teardown(test_row_beyond_cursor_reported, setup, teardown),
        cmocka_unit_test_setup_teardown(test_created_at_keeps_microseconds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batch_of_500, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deleted_schema_reported, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_project_reported, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lost_connection_is_unavailable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_materializers_take_turns, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
