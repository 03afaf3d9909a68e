/*
 * The config read queries (storage/db_configs.c) and the audit verifier (src/audit/audit.c) against
 * a real PostgreSQL with every migration applied.
 *
 * Each test gets a fresh database and a realistic history written by the materializer: two
 * projects with independent hash chains, puts, a delete, a rollback, a recreate after the
 * delete, a schema binding, request ids and UTF-8 text. Every revision's hash is computed
 * with raft/revision.c from a struct revision, exactly as the state machine does, so a
 * verifier that disagrees with the state machine about a single canonical byte fails here.
 *
 * config_revisions is append-only (a trigger refuses UPDATE and DELETE), so the tampering
 * tests switch the user triggers off as the superuser, change one thing, switch them back on
 * (and prove they are back), then require the verifier to name the revision and the problem.
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

#include <cmocka.h>
#include <sodium.h>

#include "audit/audit.h"
#include "storage/db.h"
#include "storage/db_configs.h"
#include "storage/db_revisions.h"
#include "pgtest.h"
#include "raft/revision.h"

#define USER1   "'00000000-0000-0000-0000-000000000001'"
#define SCHEMA1 "00000000-0000-0000-0000-0000000000a1"
#define HASH32  "decode(repeat('ab', 32), 'hex')"
#define ARGON   "'$argon2id$v=19$m=65536,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2g'"
#define BASE_US INT64_C(1700000000123457)

#define MAXREV 1300

static char conninfo[512];
static PGconn *conn;
static int db_counter;
static char err[1024];

/* The history. add() appends one revision whose strings live in the arrays below; seal()
 * chains and hashes what was added since the last seal, per project. */
static struct revision hist[MAXREV];
static char keys[MAXREV][64];
static char actors[MAXREV][32];
static char reqids[MAXREV][32];
static char *texts[MAXREV];
static size_t nrev, nsealed, nwritten;
static uint64_t last_index;

struct chain {
    const char *project;
    uint8_t head[32];
};
static struct chain chains[3];

static int setup(void **state)
{
    (void)state;
    char prefix[32];
    snprintf(prefix, sizeof(prefix), "audit%d", ++db_counter);
    pgtest_create_db(prefix, conninfo, sizeof(conninfo));
    pgtest_migrate_up(conninfo);
    conn = pgtest_connect(conninfo);
    pgtest_assert_rows(conn,
                       "INSERT INTO users (id, email, password_hash) VALUES "
                       "(" USER1 ", 'alice@example.com', " ARGON ")",
                       1);
    pgtest_assert_rows(conn,
                       "INSERT INTO projects (id, name, owner_user_id) VALUES "
                       "('payments', 'Payments', " USER1 "), ('search', 'Search', " USER1 "),"
                       " ('empty', 'Empty', " USER1 ")",
                       3);
    pgtest_assert_rows(conn,
                       "INSERT INTO config_schemas (id, name, schema_content, schema_hash) VALUES"
                       " ('" SCHEMA1 "', 'service', '{\"type\": \"object\"}', " HASH32 ")",
                       1);
    memset(hist, 0, sizeof(hist));
    memset(chains, 0, sizeof(chains));
    nrev = nsealed = nwritten = 0;
    last_index = 0;
    err[0] = '\0';
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    for (size_t i = 0; i < nrev; i++) {
        free(texts[i]);
        texts[i] = NULL;
    }
    PQfinish(conn);
    conn = NULL;
    return 0;
}

/* Appends the next revision: revision numbers count from 1 across projects, raft indexes
 * leave gaps, timestamps have odd microseconds, actors and request ids vary (one actor is
 * not ASCII). */
static struct revision *add(const char *project, const char *key, enum revision_op op,
                            uint64_t version, const char *content)
{
    assert_true(nrev < MAXREV);
    struct revision *r = &hist[nrev];
    memset(r, 0, sizeof(*r));
    r->revision = nrev + 1;
    r->project = (char *)project;
    snprintf(keys[nrev], sizeof(keys[nrev]), "%s", key);
    r->key = keys[nrev];
    r->version = version;
    r->op = op;
    if (content != NULL) {
        texts[nrev] = strdup(content);
        assert_non_null(texts[nrev]);
        r->content = (uint8_t *)texts[nrev];
        r->content_len = strlen(content);
    }
    static const char *const who[] = {"user:alice", "apikey:ab12cd34", "user:\xc3\xa9lise"};
    snprintf(actors[nrev], sizeof(actors[nrev]), "%s", who[nrev % 3]);
    r->actor = actors[nrev];
    if (nrev % 2 == 1) {
        snprintf(reqids[nrev], sizeof(reqids[nrev]), "req-%zu", nrev);
        r->request_id = reqids[nrev];
    }
    r->created_at = BASE_US + (int64_t)nrev * 1000003;
    last_index += 1 + nrev % 3;
    r->raft_index = last_index;
    r->raft_term = 1 + nrev / 7;
    nrev++;
    return r;
}

static void bind_schema(struct revision *r)
{
    r->has_schema = 1;
    memset(r->schema_id, 0, 16);
    r->schema_id[15] = 0xa1;
    memset(r->schema_hash, 0xab, 32);
}

static struct chain *chain_of(const char *project)
{
    for (size_t i = 0; i < sizeof(chains) / sizeof(chains[0]); i++) {
        if (chains[i].project == NULL) {
            chains[i].project = project;
        }
        if (strcmp(chains[i].project, project) == 0) {
            return &chains[i];
        }
    }
    fail_msg("too many projects");
    return NULL;
}

/* Chains and hashes the revisions added since the last call, as the state machine does. */
static void seal(void)
{
    for (; nsealed < nrev; nsealed++) {
        struct revision *r = &hist[nsealed];
        struct chain *c = chain_of(r->project);
        memcpy(r->prev_hash, c->head, 32);
        revision_compute_hash(r, r->hash);
        memcpy(c->head, r->hash, 32);
    }
}

/* Seals and materializes everything not yet written. */
static void write_all(void)
{
    seal();
    size_t n = nrev - nwritten;
    struct db_revision *m = calloc(n, sizeof(*m));
    assert_non_null(m);
    for (size_t i = 0; i < n; i++) {
        const struct revision *r = &hist[nwritten + i];
        m[i] = (struct db_revision){
            .revision = r->revision,
            .project = r->project,
            .key = r->key,
            .version = r->version,
            .op = revision_op_name(r->op),
            .content = (const char *)r->content,
            .content_len = r->content_len,
            .source_version = r->source_version,
            .has_schema = r->has_schema,
            .actor = r->actor,
            .request_id = r->request_id,
            .created_at_us = r->created_at,
            .raft_index = r->raft_index,
            .raft_term = r->raft_term,
        };
        memcpy(m[i].schema_id, r->schema_id, 16);
        memcpy(m[i].schema_hash, r->schema_hash, 32);
        memcpy(m[i].prev_hash, r->prev_hash, 32);
        memcpy(m[i].hash, r->hash, 32);
    }
    uint64_t cursor = 0;
    int rc = db_revisions_write_batch(conn, m, n, &cursor, err, sizeof(err));
    free(m);
    pgtest_assert_db_ok(rc, err);
    assert_int_equal(cursor, hist[nrev - 1].raft_index);
    nwritten = nrev;
}

/*
 * The standard history. Revision numbers (1-based) in brackets.
 *
 *   payments: [1] B v1, [2] a v1, [3] b v1 (schema), [5] a v2, [6] b v2 delete,
 *             [7] a v3 rollback to 1, [8] db.url v1 (schema), [10] b v3 (recreated),
 *             [11] feat_a v1, [12] featxb v1, [13] feature v1, [14] gone v1,
 *             [15] gone v2 delete, [17] B v2
 *   search:   [4] a v1, [9] z v1, [16] a v2
 *
 * Written in two batches.
 */
#define A_V1 "{\"s\":\"caf\xc3\xa9 \xe2\x82\xac\",\"x\":1.5}"

static void standard_history(void)
{
    add("payments", "B", REVISION_PUT, 1, "{\"n\":1}");
    add("payments", "a", REVISION_PUT, 1, A_V1);
    bind_schema(add("payments", "b", REVISION_PUT, 1, "[1,2,3]"));
    add("search", "a", REVISION_PUT, 1, "\"search-a\"");
    add("payments", "a", REVISION_PUT, 2, "{\"s\":\"two\"}");
    add("payments", "b", REVISION_DELETE, 2, NULL);
    add("payments", "a", REVISION_ROLLBACK, 3, A_V1)->source_version = 1;
    bind_schema(add("payments", "db.url", REVISION_PUT, 1, "\"postgres://x\""));
    write_all();
    add("search", "z", REVISION_PUT, 1, "true");
    add("payments", "b", REVISION_PUT, 3, "{\"again\":true}");
    add("payments", "feat_a", REVISION_PUT, 1, "1");
    add("payments", "featxb", REVISION_PUT, 1, "2");
    add("payments", "feature", REVISION_PUT, 1, "3");
    add("payments", "gone", REVISION_PUT, 1, "{}");
    add("payments", "gone", REVISION_DELETE, 2, NULL);
    add("search", "a", REVISION_PUT, 2, "\"search-a2\"");
    add("payments", "B", REVISION_PUT, 2, "{\"n\":2}");
    write_all();
}

static const struct revision *rev(uint64_t revision)
{
    assert_true(revision >= 1 && revision <= nrev);
    return &hist[revision - 1];
}

static void hex_text(const uint8_t *bytes, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++) {
        snprintf(out + 2 * i, 3, "%02x", bytes[i]);
    }
    out[2 * n] = '\0';
}

/* RFC 3339 UTC with microseconds, for a timestamp after 1970. */
static void ts_text(int64_t us, char out[40])
{
    time_t s = (time_t)(us / 1000000);
    struct tm tm;
    gmtime_r(&s, &tm);
    size_t n = strftime(out, 40, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, 40 - n, ".%06dZ", (int)(us % 1000000));
}

static json_int_t int_member(const json_t *obj, const char *name)
{
    json_t *v = json_object_get(obj, name);
    if (!json_is_integer(v)) {
        fail_msg("member \"%s\" is not an integer", name);
    }
    return json_integer_value(v);
}

static const char *str_member(const json_t *obj, const char *name)
{
    json_t *v = json_object_get(obj, name);
    if (!json_is_string(v)) {
        fail_msg("member \"%s\" is not a string", name);
    }
    return json_string_value(v);
}

static void assert_null_member(const json_t *obj, const char *name)
{
    json_t *v = json_object_get(obj, name);
    if (v == NULL || !json_is_null(v)) {
        fail_msg("member \"%s\" is missing or not null", name);
    }
}

/* CONTENT (a member of a returned object) must be the JSON value of TEXT. */
static void assert_content(const json_t *content, const char *text)
{
    json_error_t jerr;
    json_t *want = json_loads(text, JSON_DECODE_ANY, &jerr);
    assert_non_null(want);
    if (!json_equal(content, want)) {
        char *got = json_dumps(content, JSON_ENCODE_ANY);
        fail_msg("content %s, expected %s", got ? got : "(missing)", text);
    }
    json_decref(want);
}

/* OBJ must be revision R with every member (plus "key" when WITH_KEY) and nothing else. */
static void check_revision_json(const json_t *obj, const struct revision *r, bool with_key)
{
    char hex[65], ts[40];
    assert_true(json_is_object(obj));
    assert_int_equal(json_object_size(obj), with_key ? 15 : 14);
    if (with_key) {
        assert_string_equal(str_member(obj, "key"), r->key);
    }
    assert_int_equal(int_member(obj, "revision"), r->revision);
    assert_int_equal(int_member(obj, "version"), r->version);
    assert_string_equal(str_member(obj, "op"), revision_op_name(r->op));
    if (r->content == NULL) {
        assert_null_member(obj, "content");
    } else {
        assert_content(json_object_get(obj, "content"), (const char *)r->content);
    }
    if (r->source_version == 0) {
        assert_null_member(obj, "source_version");
    } else {
        assert_int_equal(int_member(obj, "source_version"), r->source_version);
    }
    if (r->has_schema) {
        assert_string_equal(str_member(obj, "schema_id"), SCHEMA1);
        hex_text(r->schema_hash, 32, hex);
        assert_string_equal(str_member(obj, "schema_hash"), hex);
    } else {
        assert_null_member(obj, "schema_id");
        assert_null_member(obj, "schema_hash");
    }
    assert_string_equal(str_member(obj, "actor"), r->actor);
    if (r->request_id == NULL) {
        assert_null_member(obj, "request_id");
    } else {
        assert_string_equal(str_member(obj, "request_id"), r->request_id);
    }
    ts_text(r->created_at, ts);
    assert_string_equal(str_member(obj, "created_at"), ts);
    assert_int_equal(int_member(obj, "raft_index"), r->raft_index);
    assert_int_equal(int_member(obj, "raft_term"), r->raft_term);
    hex_text(r->prev_hash, 32, hex);
    assert_string_equal(str_member(obj, "prev_hash"), hex);
    hex_text(r->hash, 32, hex);
    assert_string_equal(str_member(obj, "hash"), hex);
}

/* ---- dbconfigs ---- */

static void test_revisions_of_a_key(void **state)
{
    (void)state;
    standard_history();
    json_t *out;
    pgtest_assert_db_ok(db_configs_revisions(conn, "payments", "a", 0, 100, &out, err, sizeof(err)),
                        err);
    assert_int_equal(json_array_size(out), 3);
    check_revision_json(json_array_get(out, 0), rev(2), false);
    check_revision_json(json_array_get(out, 1), rev(5), false);
    check_revision_json(json_array_get(out, 2), rev(7), false); /* the rollback */
    json_decref(out);

    /* The delete and the recreate: versions keep counting, the delete has no content. */
    pgtest_assert_db_ok(db_configs_revisions(conn, "payments", "b", 0, 100, &out, err, sizeof(err)),
                        err);
    assert_int_equal(json_array_size(out), 3);
    check_revision_json(json_array_get(out, 0), rev(3), false);
    check_revision_json(json_array_get(out, 1), rev(6), false);
    check_revision_json(json_array_get(out, 2), rev(10), false);
    json_decref(out);

    /* Pages: after_version and limit. */
    pgtest_assert_db_ok(db_configs_revisions(conn, "payments", "a", 1, 1, &out, err, sizeof(err)),
                        err);
    assert_int_equal(json_array_size(out), 1);
    check_revision_json(json_array_get(out, 0), rev(5), false);
    json_decref(out);
    pgtest_assert_db_ok(db_configs_revisions(conn, "payments", "a", 3, 10, &out, err, sizeof(err)),
                        err);
    assert_int_equal(json_array_size(out), 0);
    json_decref(out);
    pgtest_assert_db_ok(
        db_configs_revisions(conn, "payments", "a", UINT64_MAX, 10, &out, err, sizeof(err)), err);
    assert_int_equal(json_array_size(out), 0);
    json_decref(out);

    /* Projects are separate: search's "a" is another key. */
    pgtest_assert_db_ok(db_configs_revisions(conn, "search", "a", 0, 100, &out, err, sizeof(err)),
                        err);
    assert_int_equal(json_array_size(out), 2);
    check_revision_json(json_array_get(out, 0), rev(4), false);
    check_revision_json(json_array_get(out, 1), rev(16), false);
    json_decref(out);

    pgtest_assert_db_ok(
        db_configs_revisions(conn, "payments", "nope", 0, 100, &out, err, sizeof(err)), err);
    assert_int_equal(json_array_size(out), 0);
    json_decref(out);
    assert_int_equal(db_configs_revisions(conn, "payments", "a", 0, -1, &out, err, sizeof(err)),
                     DB_INVALID);
    assert_null(out);
}

static void test_revision_at_version(void **state)
{
    (void)state;
    standard_history();
    json_t *out;
    pgtest_assert_db_ok(db_configs_at_version(conn, "payments", "a", 1, &out, err, sizeof(err)),
                        err);
    check_revision_json(out, rev(2), false);
    json_decref(out);
    pgtest_assert_db_ok(db_configs_at_version(conn, "payments", "b", 2, &out, err, sizeof(err)),
                        err);
    check_revision_json(out, rev(6), false);
    json_decref(out);
    pgtest_assert_db_ok(
        db_configs_at_version(conn, "payments", "db.url", 1, &out, err, sizeof(err)), err);
    check_revision_json(out, rev(8), false);
    json_decref(out);

    assert_int_equal(db_configs_at_version(conn, "payments", "a", 4, &out, err, sizeof(err)),
                     DB_NOT_FOUND);
    assert_null(out);
    pgtest_assert_contains(err, "payments/a has no version 4");
    assert_int_equal(db_configs_at_version(conn, "payments", "a", 0, &out, err, sizeof(err)),
                     DB_NOT_FOUND);
    assert_int_equal(db_configs_at_version(conn, "search", "db.url", 1, &out, err, sizeof(err)),
                     DB_NOT_FOUND);
}

static void test_changes_of_a_project(void **state)
{
    (void)state;
    standard_history();
    static const uint64_t payments[] = {1, 2, 3, 5, 6, 7, 8, 10, 11, 12, 13, 14, 15, 17};
    size_t n = sizeof(payments) / sizeof(payments[0]);
    json_t *out;
    pgtest_assert_db_ok(db_configs_changes(conn, "payments", 0, 1000, &out, err, sizeof(err)), err);
    assert_int_equal(json_array_size(out), n);
    for (size_t i = 0; i < n; i++) {
        check_revision_json(json_array_get(out, i), rev(payments[i]), true);
    }
    json_decref(out);

    /* A watcher pages with the last revision it saw, two at a time. Every page holds exactly
     * what is left, at most two, and the page after the last revision is empty: a query that
     * ignored its limit and returned everything at once fails here. The loop is bounded, so a
     * query that ignored the revision to start after fails instead of repeating forever. */
    uint64_t after = 0;
    size_t seen = 0;
    for (size_t page = 0; page <= (n + 1) / 2; page++) {
        pgtest_assert_db_ok(db_configs_changes(conn, "payments", after, 2, &out, err, sizeof(err)),
                            err);
        size_t got = json_array_size(out);
        assert_int_equal(got, n - seen < 2 ? n - seen : 2);
        for (size_t i = 0; i < got; i++) {
            check_revision_json(json_array_get(out, i), rev(payments[seen]), true);
            seen++;
        }
        if (got > 0) {
            after = (uint64_t)int_member(json_array_get(out, got - 1), "revision");
        }
        json_decref(out);
    }
    assert_int_equal(seen, n);

    pgtest_assert_db_ok(db_configs_changes(conn, "search", 4, 1000, &out, err, sizeof(err)), err);
    assert_int_equal(json_array_size(out), 2);
    check_revision_json(json_array_get(out, 0), rev(9), true);
    check_revision_json(json_array_get(out, 1), rev(16), true);
    json_decref(out);
    pgtest_assert_db_ok(db_configs_changes(conn, "search", 16, 1000, &out, err, sizeof(err)), err);
    assert_int_equal(json_array_size(out), 0);
    json_decref(out);
}

/* Lists and requires exactly the keys of WANT (NULL-terminated), in order. */
static json_t *list_keys(const char *prefix, const char *after, int limit, const char *const *want)
{
    json_t *out;
    pgtest_assert_db_ok(
        db_configs_list(conn, "payments", prefix, after, limit, &out, err, sizeof(err)), err);
    size_t n = 0;
    while (want[n] != NULL) {
        n++;
    }
    char got[512] = "";
    for (size_t i = 0; i < json_array_size(out); i++) {
        json_t *k = json_object_get(json_array_get(out, i), "key");
        strncat(got, json_is_string(k) ? json_string_value(k) : "?", sizeof(got) - strlen(got) - 2);
        strncat(got, " ", sizeof(got) - strlen(got) - 1);
    }
    char expected[512] = "";
    for (size_t i = 0; i < n; i++) {
        strncat(expected, want[i], sizeof(expected) - strlen(expected) - 2);
        strncat(expected, " ", sizeof(expected) - strlen(expected) - 1);
    }
    if (strcmp(got, expected) != 0) {
        fail_msg("prefix %s after %s limit %d: keys [%s], expected [%s]", prefix ? prefix : "-",
                 after ? after : "-", limit, got, expected);
    }
    return out;
}

static void test_list_live_configs(void **state)
{
    (void)state;
    standard_history();
    /* Bytewise order: "B" < "a" < "b", "_" < "u" < "x"; the deleted "gone" is not listed. */
    static const char *const all[] = {"B", "a", "b", "db.url", "feat_a", "feature", "featxb", NULL};
    json_t *out = list_keys(NULL, NULL, 100, all);
    /* Every member of a row. */
    for (size_t i = 0; i < json_array_size(out); i++) {
        assert_int_equal(json_object_size(json_array_get(out, i)), 7);
    }
    json_t *b = json_array_get(out, 2);
    const struct revision *r = rev(10);
    assert_int_equal(int_member(b, "version"), 3);
    assert_int_equal(int_member(b, "last_revision"), 10);
    assert_content(json_object_get(b, "content"), (const char *)r->content);
    assert_null_member(b, "schema_id");
    assert_string_equal(str_member(b, "updated_by"), r->actor);
    char ts[40];
    ts_text(r->created_at, ts);
    assert_string_equal(str_member(b, "updated_at"), ts);
    json_t *db = json_array_get(out, 3);
    assert_string_equal(str_member(db, "schema_id"), SCHEMA1);
    assert_content(json_object_get(db, "content"), "\"postgres://x\"");
    json_t *a = json_array_get(out, 1);
    assert_int_equal(int_member(a, "version"), 3);
    assert_content(json_object_get(a, "content"), A_V1);
    json_decref(out);
    out = list_keys("", "", 100, all);
    json_decref(out);

    /* Prefixes are literal: "_" and "%" are not wildcards, nor is "\". */
    static const char *const feat[] = {"feat_a", "feature", "featxb", NULL};
    static const char *const feat_[] = {"feat_a", NULL};
    static const char *const none[] = {NULL};
    json_decref(list_keys("feat", NULL, 100, feat));
    json_decref(list_keys("feat_", NULL, 100, feat_));
    json_decref(list_keys("feat%", NULL, 100, none));
    json_decref(list_keys("%", NULL, 100, none));
    json_decref(list_keys("_", NULL, 100, none));
    json_decref(list_keys("feat\\", NULL, 100, none));
    json_decref(list_keys("gone", NULL, 100, none));

    /* Pages: after the last key seen, in the same bytewise order. */
    static const char *const p1[] = {"B", "a", NULL};
    static const char *const p2[] = {"b", "db.url", NULL};
    static const char *const p4[] = {"featxb", NULL};
    json_decref(list_keys(NULL, NULL, 2, p1));
    json_decref(list_keys(NULL, "a", 2, p2));
    json_decref(list_keys(NULL, "feature", 2, p4));
    json_decref(list_keys(NULL, "featxb", 2, none));
    static const char *const after_upper[] = {"a", "b", NULL};
    json_decref(list_keys(NULL, "B", 2, after_upper));
    static const char *const feat_after[] = {"featxb", NULL};
    json_decref(list_keys("feat", "feature", 10, feat_after));

    pgtest_assert_db_ok(db_configs_list(conn, "empty", NULL, NULL, 100, &out, err, sizeof(err)),
                        err);
    assert_int_equal(json_array_size(out), 0);
    json_decref(out);
    assert_int_equal(db_configs_list(conn, "payments", NULL, NULL, -5, &out, err, sizeof(err)),
                     DB_INVALID);
    assert_null(out);
}

/* ---- audit ---- */

static json_t *verify(const char *project)
{
    json_t *report = NULL;
    int rc = audit_verify_project(conn, project, &report, err, sizeof(err));
    if (rc != DB_OK) {
        fail_msg("audit of %s failed with %d: %s", project, rc, err);
    }
    assert_non_null(report);
    assert_int_equal(PQtransactionStatus(conn), PQTRANS_IDLE);
    return report;
}

static void assert_report_ok(const json_t *report, const char *project, long revisions, long nkeys)
{
    json_t *problems = json_object_get(report, "problems");
    if (!json_is_true(json_object_get(report, "ok")) || json_array_size(problems) != 0) {
        char *text = json_dumps(report, 0);
        fail_msg("audit of %s is not ok: %s", project, text ? text : "?");
    }
    assert_string_equal(str_member(report, "project"), project);
    assert_int_equal(int_member(report, "revisions_checked"), revisions);
    assert_int_equal(int_member(report, "keys_checked"), nkeys);
    assert_int_equal(int_member(report, "problems_total"), 0);
}

/* REPORT must list exactly N problems, not ok. */
static void assert_problem_count(const json_t *report, size_t n)
{
    json_t *problems = json_object_get(report, "problems");
    if (json_array_size(problems) != n || json_is_true(json_object_get(report, "ok")) ||
        int_member(report, "problems_total") != (json_int_t)n) {
        char *text = json_dumps(report, JSON_INDENT(1));
        fail_msg("expected %zu problems: %s", n, text ? text : "?");
    }
}

/* Problem I of REPORT must concern REVISION (0: none) and KEY and contain TEXT. */
static void assert_problem(const json_t *report, size_t i, uint64_t revision, const char *key,
                           const char *text)
{
    json_t *p = json_array_get(json_object_get(report, "problems"), i);
    assert_non_null(p);
    assert_int_equal(json_object_size(p), 3);
    if (revision == 0) {
        assert_null_member(p, "revision");
    } else {
        assert_int_equal(int_member(p, "revision"), revision);
    }
    assert_string_equal(str_member(p, "key"), key);
    pgtest_assert_contains(str_member(p, "problem"), text);
}

/* Runs SQL on config_revisions with the append-only triggers off, requires it to change
 * exactly ROWS rows (a tampering that misses its row would leave the verifier nothing to
 * find), and proves the triggers are on again afterwards. */
static void tamper(const char *sql, long rows)
{
    pgtest_exec(conn, "ALTER TABLE config_revisions DISABLE TRIGGER USER");
    PGresult *res = PQexec(conn, sql);
    bool ok = PQresultStatus(res) == PGRES_COMMAND_OK;
    char why[512];
    snprintf(why, sizeof(why), "%s", ok ? PQcmdTuples(res) : PQresultErrorMessage(res));
    PQclear(res);
    pgtest_exec(conn, "ALTER TABLE config_revisions ENABLE TRIGGER USER");
    if (!ok) {
        fail_msg("%s for: %s", why, sql);
    }
    if (strtol(why, NULL, 10) != rows) {
        fail_msg("%s rows changed, expected %ld, by: %s", why, rows, sql);
    }
    pgtest_assert_sqlstate(conn, "23001", "UPDATE config_revisions SET actor = 'x' WHERE false");
}

static void test_verify_intact_history(void **state)
{
    (void)state;
    standard_history();
    char head[65];
    json_t *report = verify("payments");
    assert_report_ok(report, "payments", 14, 8);
    hex_text(rev(17)->hash, 32, head);
    assert_string_equal(str_member(report, "chain_head"), head);
    json_decref(report);
    report = verify("search");
    assert_report_ok(report, "search", 3, 2);
    hex_text(rev(16)->hash, 32, head);
    assert_string_equal(str_member(report, "chain_head"), head);
    json_decref(report);
    report = verify("empty");
    assert_report_ok(report, "empty", 0, 0);
    assert_null_member(report, "chain_head");
    json_decref(report);

    /* A soft-deleted project is audited too: its chain stays. */
    pgtest_assert_rows(conn, "UPDATE projects SET deleted_at = now() WHERE id = 'search'", 1);
    report = verify("search");
    assert_report_ok(report, "search", 3, 2);
    json_decref(report);

    report = (json_t *)1;
    assert_int_equal(audit_verify_project(conn, "nowhere", &report, err, sizeof(err)),
                     DB_NOT_FOUND);
    assert_null(report);
    pgtest_assert_contains(err, "nowhere");
    assert_int_equal(PQtransactionStatus(conn), PQTRANS_IDLE);
}

static void test_verify_detects_changed_content(void **state)
{
    (void)state;
    standard_history();
    char stored[65];
    /* The same JSON value in other text: jsonb cannot tell, the hash can. Revision 2 is not
     * the last of its key, so configs still agrees. */
    tamper("UPDATE config_revisions SET content = '{\"x\": 1.5, \"s\": \"caf\xc3\xa9 "
           "\xe2\x82\xac\"}' WHERE revision = 2",
           1);
    json_t *report = verify("payments");
    assert_problem_count(report, 1);
    hex_text(rev(2)->hash, 32, stored);
    assert_problem(report, 0, 2, "a", "hash mismatch: stored ");
    assert_problem(report, 0, 2, "a", stored);
    json_decref(report);

    /* Another value in the key's last revision: the hash, and configs no longer the fold. */
    tamper("UPDATE config_revisions SET content = '{\"n\":3}' WHERE revision = 17", 1);
    report = verify("payments");
    assert_problem_count(report, 3);
    assert_problem(report, 0, 2, "a", "hash mismatch");
    assert_problem(report, 1, 17, "B", "hash mismatch");
    assert_problem(report, 2, 17, "B", "fold mismatch");
    assert_problem(report, 2, 17, "B", "content differs");
    json_decref(report);

    /* The other project's chain is independent. */
    report = verify("search");
    assert_report_ok(report, "search", 3, 2);
    json_decref(report);
}

static void test_verify_detects_changed_actor(void **state)
{
    (void)state;
    standard_history();
    tamper("UPDATE config_revisions SET actor = 'user:mallory' WHERE revision = 1", 1);
    json_t *report = verify("payments");
    assert_problem_count(report, 1);
    assert_problem(report, 0, 1, "B", "hash mismatch");
    json_decref(report);

    /* A request id removed: configs does not keep request ids, so only the hash tells. */
    assert_non_null(rev(14)->request_id);
    tamper("UPDATE config_revisions SET request_id = NULL WHERE revision = 14", 1);
    report = verify("payments");
    assert_problem_count(report, 2);
    assert_problem(report, 1, 14, "gone", "hash mismatch");
    json_decref(report);
}

static void test_verify_detects_changed_hash(void **state)
{
    (void)state;
    standard_history();
    char orig[65], forged[65], sql[256];
    hex_text(rev(5)->hash, 32, orig);
    memset(forged, 'e', 64);
    forged[64] = '\0';
    snprintf(sql, sizeof(sql),
             "UPDATE config_revisions SET hash = decode('%s', 'hex') WHERE revision = 5", forged);
    tamper(sql, 1);
    json_t *report = verify("payments");
    assert_problem_count(report, 2);
    /* The row itself: its stored hash is not what its columns hash to. */
    char want[200];
    snprintf(want, sizeof(want), "hash mismatch: stored %s, computed %s", forged, orig);
    assert_problem(report, 0, 5, "a", want);
    /* The next row of the project still names the true hash. */
    snprintf(want, sizeof(want),
             "prev_hash mismatch: stored %s, but the previous revision 5 has "
             "hash %s",
             orig, forged);
    assert_problem(report, 1, 6, "b", want);
    json_decref(report);
    report = verify("search");
    assert_report_ok(report, "search", 3, 2);
    json_decref(report);
}

static void test_verify_detects_rewritten_chain_start(void **state)
{
    (void)state;
    standard_history();
    /* A first revision that claims a predecessor: both its link and its hash are wrong. */
    tamper("UPDATE config_revisions SET prev_hash = decode(repeat('01', 32), 'hex')"
           " WHERE revision = 4",
           1);
    json_t *report = verify("search");
    assert_problem_count(report, 2);
    assert_problem(report, 0, 4, "a", "prev_hash mismatch");
    assert_problem(report, 0, 4, "a", "first revision must have 32 zero bytes");
    assert_problem(report, 1, 4, "a", "hash mismatch");
    json_decref(report);
}

static void test_verify_detects_changed_configs(void **state)
{
    (void)state;
    standard_history();
    /* configs is not append-only: no triggers to switch off. */
    pgtest_assert_rows(conn,
                       "UPDATE configs SET content = '{\"s\": \"other\"}'"
                       " WHERE project_id = 'payments' AND key = 'a'",
                       1);
    json_t *report = verify("payments");
    assert_problem_count(report, 1);
    assert_problem(report, 0, 7, "a", "fold mismatch");
    assert_problem(report, 0, 7, "a", "content differs");
    json_decref(report);
    /* Semantically equal content is no mismatch (configs holds jsonb). */
    pgtest_assert_rows(
        conn,
        "UPDATE configs SET content = '{\"x\": 1.5, \"s\": \"caf\xc3\xa9 \xe2\x82\xac\"}'"
        " WHERE project_id = 'payments' AND key = 'a'",
        1);
    report = verify("payments");
    assert_report_ok(report, "payments", 14, 8);
    json_decref(report);

    pgtest_assert_rows(conn,
                       "UPDATE configs SET updated_by = 'mallory', version = 7"
                       " WHERE project_id = 'payments' AND key = 'feat_a'",
                       1);
    report = verify("payments");
    assert_problem_count(report, 1);
    assert_problem(report, 0, 11, "feat_a", "version: configs 7, revisions 1");
    char want[128];
    snprintf(want, sizeof(want), "updated_by: configs 'mallory', revisions '%s'", rev(11)->actor);
    assert_problem(report, 0, 11, "feat_a", want);
    json_decref(report);
    char sql[256];
    snprintf(sql, sizeof(sql),
             "UPDATE configs SET updated_by = '%s', version = 1"
             " WHERE project_id = 'payments' AND key = 'feat_a'",
             rev(11)->actor);
    pgtest_assert_rows(conn, sql, 1);
    report = verify("payments");
    assert_report_ok(report, "payments", 14, 8);
    json_decref(report);

    /* A tombstone brought back to life, a missing row and a row without revisions. */
    pgtest_assert_rows(conn,
                       "UPDATE configs SET deleted = false, content = '{}'"
                       " WHERE project_id = 'payments' AND key = 'gone'",
                       1);
    pgtest_assert_rows(conn, "DELETE FROM configs WHERE project_id = 'payments' AND key = 'featxb'",
                       1);
    pgtest_assert_rows(
        conn,
        "INSERT INTO configs (project_id, key, version, content, last_revision,"
        " updated_by, updated_at) VALUES ('payments', 'extra', 1, '1', 99, 'mallory', now())",
        1);
    pgtest_assert_rows(conn,
                       "UPDATE configs SET schema_id = NULL, schema_hash = NULL"
                       " WHERE project_id = 'payments' AND key = 'db.url'",
                       1);
    report = verify("payments");
    assert_problem_count(report, 4);
    assert_problem(report, 0, 8, "db.url", "schema_id: configs null, revisions " SCHEMA1);
    assert_problem(report, 0, 8, "db.url", "schema_hash: configs null, revisions abab");
    assert_problem(report, 1, 12, "featxb", "configs has no row for the key");
    assert_problem(report, 2, 15, "gone", "deleted: configs false, revisions true");
    assert_problem(report, 2, 15, "gone", "content differs");
    assert_problem(report, 3, 0, "extra", "key without revisions");
    json_decref(report);
    /* The revisions themselves are intact. */
    report = verify("search");
    assert_report_ok(report, "search", 3, 2);
    json_decref(report);
}

static void test_verify_detects_deleted_revision(void **state)
{
    (void)state;
    standard_history();
    tamper("DELETE FROM config_revisions WHERE revision = 5", 1);
    json_t *report = verify("payments");
    assert_problem_count(report, 2);
    char want[200], h3[65], h5[65];
    hex_text(rev(3)->hash, 32, h3);
    hex_text(rev(5)->hash, 32, h5);
    snprintf(want, sizeof(want),
             "prev_hash mismatch: stored %s, but the previous revision 3 has "
             "hash %s",
             h5, h3);
    assert_problem(report, 0, 6, "b", want);
    assert_problem(report, 1, 7, "a",
                   "version gap: version 3 follows version 1; version 2 is "
                   "missing");
    assert_int_equal(int_member(report, "revisions_checked"), 13);
    json_decref(report);

    /* The first revision of a key gone: its next version starts the key. */
    tamper("DELETE FROM config_revisions WHERE revision = 14", 1);
    report = verify("payments");
    assert_problem_count(report, 4);
    assert_problem(report, 2, 15, "gone", "prev_hash mismatch");
    assert_problem(report, 3, 15, "gone",
                   "version gap: the first revision of the key has "
                   "version 2, not 1");
    json_decref(report);

    /* The last revision of a key gone: configs is ahead of the revisions. */
    tamper("DELETE FROM config_revisions WHERE revision = 16", 1);
    report = verify("search");
    assert_problem_count(report, 1);
    assert_problem(report, 0, 4, "a", "version: configs 2, revisions 1");
    char h9[65];
    hex_text(rev(9)->hash, 32, h9);
    assert_string_equal(str_member(report, "chain_head"), h9);
    json_decref(report);
}

static void test_verify_detects_odd_rows(void **state)
{
    (void)state;
    standard_history();
    /* A schema id without its hash cannot be hashed at all (the state machine writes both or
     * neither); db.url's configs row keeps the hash, so the fold differs too. */
    tamper("UPDATE config_revisions SET schema_hash = NULL WHERE revision = 8", 1);
    json_t *report = verify("payments");
    assert_problem_count(report, 2);
    assert_problem(report, 0, 8, "db.url", "schema: schema_id is set but schema_hash is NULL");
    assert_problem(report, 1, 8, "db.url", "schema_hash: configs abab");
    json_decref(report);

    /* Raft order and revision order disagree. */
    tamper("UPDATE config_revisions SET raft_index = 2 WHERE revision = 5", 1);
    report = verify("payments");
    assert_problem_count(report, 4);
    assert_problem(report, 0, 5, "a",
                   "raft index 2 is not above raft index 6 of the previous "
                   "revision 3");
    assert_problem(report, 1, 5, "a", "hash mismatch");
    json_decref(report);
}

/* More revisions than one page holds, and more problems than a report lists. */
static void test_verify_many_pages(void **state)
{
    (void)state;
    uint64_t version[40] = {0};
    for (int i = 0; i < 1205; i++) {
        char key[32], content[64];
        snprintf(key, sizeof(key), "svc.k%02d", i % 40);
        snprintf(content, sizeof(content), "{\"i\":%d,\"tag\":\"v%d\"}", i, i * 7);
        add("payments", key, REVISION_PUT, ++version[i % 40], content);
    }
    write_all();
    json_t *report = verify("payments");
    assert_report_ok(report, "payments", 1205, 40);
    char head[65];
    hex_text(rev(1205)->hash, 32, head);
    assert_string_equal(str_member(report, "chain_head"), head);
    json_decref(report);

    /* 150 actors changed in the second page, none in a key's last revision. */
    tamper("UPDATE config_revisions SET actor = 'user:mallory'"
           " WHERE revision BETWEEN 1001 AND 1150",
           150);
    report = verify("payments");
    assert_false(json_is_true(json_object_get(report, "ok")));
    assert_int_equal(int_member(report, "problems_total"), 150);
    assert_int_equal(int_member(report, "revisions_checked"), 1205);
    json_t *problems = json_object_get(report, "problems");
    assert_int_equal(json_array_size(problems), AUDIT_MAX_PROBLEMS);
    for (size_t i = 0; i < AUDIT_MAX_PROBLEMS; i++) {
        char key[32];
        snprintf(key, sizeof(key), "svc.k%02zu", (1000 + i) % 40);
        assert_problem(report, i, 1001 + i, key, "hash mismatch");
    }
    json_decref(report);
}

/* Contents of about 1 MiB: pages are cut by bytes, and every row is still checked once. */
static void test_verify_large_contents(void **state)
{
    (void)state;
    size_t big = 1000000;
    char *content = malloc(big + 8);
    assert_non_null(content);
    for (int i = 0; i < 12; i++) {
        char key[16];
        snprintf(key, sizeof(key), "big%d", i % 4);
        snprintf(content, big + 8, "\"%0*d\"", (int)big, i);
        add("payments", key, REVISION_PUT, (uint64_t)(i / 4 + 1), content);
    }
    free(content);
    write_all();
    json_t *report = verify("payments");
    assert_report_ok(report, "payments", 12, 4);
    json_decref(report);
    tamper("UPDATE config_revisions SET content = '\"y\"' WHERE revision = 11", 1);
    report = verify("payments");
    assert_problem_count(report, 2);
    assert_problem(report, 0, 11, "big2", "hash mismatch");
    assert_problem(report, 1, 11, "big2", "content differs");
    json_decref(report);
}

static void test_verify_failures(void **state)
{
    (void)state;
    standard_history();
    json_t *report = (json_t *)1;
    /* Inside the caller's transaction: refused, and the transaction is left alone. */
    pgtest_exec(conn, "BEGIN");
    assert_int_equal(audit_verify_project(conn, "payments", &report, err, sizeof(err)), DB_ERROR);
    assert_null(report);
    pgtest_assert_contains(err, "inside a transaction");
    assert_int_equal(PQtransactionStatus(conn), PQTRANS_INTRANS);
    pgtest_exec(conn, "ROLLBACK");

    PGconn *victim = pgtest_connect(conninfo);
    char sql[128];
    snprintf(sql, sizeof(sql), "SELECT pg_terminate_backend(%d)", PQbackendPID(victim));
    pgtest_assert_value(conn, sql, "t");
    report = (json_t *)1;
    assert_int_equal(audit_verify_project(victim, "payments", &report, err, sizeof(err)),
                     DB_UNAVAILABLE);
    assert_null(report);
    PQfinish(victim);
}

int main(void)
{
    if (sodium_init() < 0) {
        fprintf(stderr, "sodium_init failed\n");
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_revisions_of_a_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_revision_at_version, setup, teardown),
        cmocka_unit_test_setup_teardown(test_changes_of_a_project, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_live_configs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_verify_intact_history, setup, teardown),
        cmocka_unit_test_setup_teardown(test_verify_detects_changed_content, setup, teardown),
        cmocka_unit_test_setup_teardown(test_verify_detects_changed_actor, setup, teardown),
        cmocka_unit_test_setup_teardown(test_verify_detects_changed_hash, setup, teardown),
        cmocka_unit_test_setup_teardown(test_verify_detects_rewritten_chain_start, setup, teardown),
        cmocka_unit_test_setup_teardown(test_verify_detects_changed_configs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_verify_detects_deleted_revision, setup, teardown),
        cmocka_unit_test_setup_teardown(test_verify_detects_odd_rows, setup, teardown),
        cmocka_unit_test_setup_teardown(test_verify_many_pages, setup, teardown),
        cmocka_unit_test_setup_teardown(test_verify_large_contents, setup, teardown),
        cmocka_unit_test_setup_teardown(test_verify_failures, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
