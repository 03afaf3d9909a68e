#include "storage/db_revisions.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "storage/db.h"

/* The failpoint's pause in milliseconds; 0 = off. Atomic: set on the loop thread, read on
 * the pool's workers. */
static _Atomic unsigned failpoint_pause_ms;

void db_revisions_failpoint_pause(unsigned ms)
{
    failpoint_pause_ms = ms;
}

/*
 * How a batch is written, in four round trips (five when the batch overlaps the cursor):
 *
 *   1. BEGIN;
 *   2. lock the cursor row (SELECT ... FOR UPDATE). A concurrent materializer waits here
 *      until the holder commits, and then, in READ COMMITTED, every later statement of this
 *      transaction sees what the holder wrote; so the version checks below never read a
 *      stale configs row. The lock is taken by its own statement for that reason: a
 *      statement's snapshot is taken before it waits for a lock;
 *   3. (only when some revisions are at or below the cursor) read their stored revision
 *      numbers and hashes, to prove the replay is the same history;
 *   4. one statement that receives the new revisions as 16 parallel arrays (unnest), checks
 *      them against the database (version chain, project and schema rows), and only when
 *      nothing is wrong inserts the revisions, upserts the fold of each key into configs and
 *      advances the cursor. It returns the first problem found, or the row counts;
 *   5. COMMIT.
 *
 * Arrays keep the SQL text constant whatever the batch size (no statement of 9,000
 * parameters to parse) and cost one text literal per column.
 *
 * The one round trip. Those four round trips are what a batch costs when something is
 * unusual; the usual batch (the cursor just below it, nothing to check against stored rows)
 * is first tried as ONE statement in its own transaction (ONE_SQL below), which locks the
 * cursor row in a CTE. That statement's snapshot predates the lock wait, so after waiting for
 * another materializer it may read configs rows older than what that one committed; the
 * version checks then fail, nothing is written, and the four round trips above decide with a
 * fresh snapshot. The one statement therefore commits only what the full transaction would
 * also commit, and never part of a batch (its last column raises an error, aborting it, when
 * the writes did not all happen). It may also commit with synchronous_commit off (the
 * caller's DB_REVISIONS_DEFER_FLUSH): visible at once, flushed by PostgreSQL's WAL writer a
 * little later or by the next synchronous commit (db_revisions_flush()). docs/write-path.md,
 * "Deferred flushes", says why an acknowledged write is still never lost.
 *
 * The deleted-schema race. The leader validates content against a schema and proposes the
 * revision; if the schema row is deleted before the revision reaches PostgreSQL, the
 * configs upsert cannot reference it (ON DELETE RESTRICT only protects schemas already bound
 * in configs). The revision is committed in Raft and cannot be changed, and storing the
 * config with schema_id NULL would make configs differ from the fold of its revisions
 * (invariant 2). Since migration 013 the API only soft-deletes schemas (deleted_at), so the
 * row the foreign key needs never disappears through the API and the race is closed. The check
 * below stays for a row removed by hand in SQL: the batch then fails with DB_ERROR naming the
 * schema, the materializer reports it (log, /ready, /metrics) and retries with backoff until
 * an operator restores the row (same id; the revision carries its hash).
 */

/* Sets this transaction's synchronous_commit to the server's setting, but never below 'on': the
 * materializer's durable commits must reach the disk (and a synchronous standby, where one is
 * configured) even on a server that commits asynchronously by default. */
#define SYNC_AT_LEAST_ON                                                                           \
    "set_config('synchronous_commit', CASE WHEN current_setting('synchronous_commit') = 'off'"     \
    " THEN 'on' ELSE current_setting('synchronous_commit') END, true)"

#define WRITE_SQL_INPUT                                                                            \
    /* The batch as rows with the table's columns, the parameters in enum db_revisions_col         \
     * order; input.created_at is the bigint of microseconds, not yet a timestamptz. */            \
    "WITH input AS ("                                                                              \
    " SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::bigint[], $5::text[],"        \
    "  $6::text[], $7::bigint[], $8::uuid[], $9::text[], $10::text[], $11::text[],"                \
    "  $12::bigint[], $13::bigint[], $14::bigint[], $15::text[], $16::text[])"                     \
    " AS t(" DB_REVISIONS_COLUMNS ")"                                                              \
    ")"

#define WRITE_SQL_CHECKS                                                                                 \
    /* Each revision with the version it follows: the previous one of its key in the batch,              \
     * else the configs row's, else 0 (no row); and, for the first of its key in the batch,              \
     * the revision the configs row was last written by (0: no row). */                                  \
    " chain AS ("                                                                                        \
    " SELECT i.project_id, i.key, i.revision, i.raft_index, i.version,"                                  \
    "  coalesce(lag(i.version) OVER w, c.version, 0) AS previous,"                                       \
    "  lag(i.version) OVER w IS NULL AS first_of_key,"                                                   \
    "  coalesce(c.last_revision, 0) AS stored_revision"                                                  \
    " FROM input i LEFT JOIN configs c ON c.project_id = i.project_id AND c.key = i.key"                 \
    " WINDOW w AS (PARTITION BY i.project_id, i.key ORDER BY i.raft_index)"                              \
    ")," /* The last revision of each key in the batch: the state configs must hold. */                  \
    " last AS ("                                                                                         \
    " SELECT DISTINCT ON (project_id, key) * FROM input"                                                 \
    " ORDER BY project_id, key, raft_index DESC"                                                         \
    "),"                                                                                                 \
    " problem AS ("                                                                                      \
    " SELECT raft_index, format('config %s/%s: revision %s (raft index %s) has version %s, '"            \
    "  || CASE WHEN previous = 0 THEN 'but the config has no row, so it must be version 1'"              \
    "  ELSE format('but follows version %s, so it must be version %s', previous,"                        \
    "  previous + 1) END, project_id, key, revision, raft_index, version) AS msg" /* A version           \
                                                                                   * jump is the         \
                                                                                   * loss of the         \
                                                                                   * key's               \
                                                                                   * revisions           \
                                                                                   * inside a            \
                                                                                   * range an            \
                                                                                   * operator            \
                                                                                   * accepted as         \
                                                                                   * lost                \
                                                                                   * (postgresql_losses, \
                                                                                   * migration           \
                                                                                   * 014): allowed       \
                                                                                   * only forward,       \
                                                                                   * only for the        \
                                                                                   * key's first         \
                                                                                   * revision in         \
                                                                                   * the batch,          \
                                                                                   * and only when       \
                                                                                   * an accepted         \
                                                                                   * range lies          \
                                                                                   * between the         \
                                                                                   * revision its        \
                                                                                   * configs row         \
                                                                                   * holds and           \
                                                                                   * this one. */        \
    " FROM chain WHERE version <> previous + 1"                                                          \
    " AND NOT (first_of_key AND version > previous + 1 AND EXISTS (SELECT 1"                             \
    "  FROM postgresql_losses g WHERE g.revision_from > stored_revision"                                 \
    "  AND g.revision_to < chain.revision))"                                                             \
    " UNION ALL"                                                                                         \
    " SELECT raft_index, format('project %s of revision %s (raft index %s) does not exist',"             \
    "  project_id, revision, raft_index)"                                                                \
    " FROM input i WHERE NOT EXISTS (SELECT 1 FROM projects p WHERE p.id = i.project_id)"                \
    " UNION ALL"                                                                                         \
    " SELECT raft_index, format('schema %s of config %s/%s (revision %s, raft index %s) no "             \
    "longer exists; it was deleted after the revision was validated against it',"                        \
    "  schema_id, project_id, key, revision, raft_index)"                                                \
    " FROM last l WHERE op <> 'delete' AND schema_id IS NOT NULL"                                        \
    " AND NOT EXISTS (SELECT 1 FROM config_schemas s WHERE s.id = l.schema_id)"

#define WRITE_SQL_WRITES                                                                           \
    /* ON CONFLICT DO NOTHING (never DO UPDATE, which the append-only trigger refuses): a          \
     * row already present beyond the cursor is skipped here and detected by its count.            \
     * created_at is 'epoch' plus a whole number of microseconds: exact for |input.created_at| <   \
     * 2^53 (until the year 2255), where to_timestamp(double precision) starts rounding in         \
     * 2242. */                                                                                    \
    " ins AS ("                                                                                    \
    " INSERT INTO config_revisions (" DB_REVISIONS_COLUMNS ")"                                     \
    " SELECT revision, project_id, key, version, op::revision_op, content::json,"                  \
    "  source_version, schema_id, decode(schema_hash, 'hex'), actor, request_id,"                  \
    "  'epoch'::timestamptz + created_at * interval '1 microsecond', raft_index, raft_term,"       \
    "  decode(prev_hash, 'hex'), decode(hash, 'hex')"                                              \
    " FROM input WHERE NOT EXISTS (SELECT 1 FROM problem)"                                         \
    " ON CONFLICT (raft_index) DO NOTHING"                                                         \
    " RETURNING 1"                                                                                 \
    "),"                                                                                           \
    " up AS ("                                                                                     \
    " INSERT INTO configs (project_id, key, version, content, deleted, schema_id,"                 \
    "  schema_hash, last_revision, updated_by, updated_at)"                                        \
    " SELECT project_id, key, version,"                                                            \
    "  CASE WHEN op = 'delete' THEN NULL ELSE content::jsonb END, op = 'delete',"                  \
    "  CASE WHEN op = 'delete' THEN NULL ELSE schema_id END,"                                      \
    "  CASE WHEN op = 'delete' THEN NULL ELSE decode(schema_hash, 'hex') END,"                     \
    "  revision, actor, 'epoch'::timestamptz + created_at * interval '1 microsecond'"              \
    " FROM last WHERE NOT EXISTS (SELECT 1 FROM problem)"                                          \
    " ON CONFLICT (project_id, key) DO UPDATE SET version = excluded.version,"                     \
    "  content = excluded.content, deleted = excluded.deleted, schema_id = excluded.schema_id,"    \
    "  schema_hash = excluded.schema_hash, last_revision = excluded.last_revision,"                \
    "  updated_by = excluded.updated_by, updated_at = excluded.updated_at"                         \
    " RETURNING 1"                                                                                 \
    "),"                                                                                           \
    " cur AS ("                                                                                    \
    " UPDATE materializer_cursor SET raft_index = (SELECT max(raft_index) FROM input),"            \
    "  revision = (SELECT max(revision) FROM input), updated_at = now()"                           \
    " WHERE id AND NOT EXISTS (SELECT 1 FROM problem)"                                             \
    " RETURNING 1"                                                                                 \
    ")"

/* The statement of the transaction's round trip 4: the checks and the writes. */
static const char WRITE_SQL[] =
    WRITE_SQL_INPUT "," WRITE_SQL_CHECKS ")," WRITE_SQL_WRITES
                    " SELECT (SELECT msg FROM problem ORDER BY raft_index LIMIT 1),"
                    "  (SELECT count(*) FROM problem), (SELECT count(*) FROM ins),"
                    "  (SELECT count(*) FROM up), (SELECT count(*) FROM cur)";

/*
 * The same batch as ONE statement, so one round trip and its own transaction (see "The one
 * round trip" above). Besides WRITE_SQL's CTEs it locks the cursor row itself (gate) and sets
 * the transaction's synchronous_commit from $17 (sync: 'off' when the caller defers the flush,
 * otherwise the server's setting but never below 'on'); the gate adds one problem when the
 * cursor is not just below the batch; and the last column raises an error, which aborts the
 * statement and so the whole transaction, when the writes did not all happen although no
 * problem was found: the statement cannot commit a partial batch.
 */
static const char ONE_SQL[] = WRITE_SQL_INPUT
    ","
    " gate AS (SELECT raft_index, revision FROM materializer_cursor WHERE id FOR UPDATE),"
    " sync AS (SELECT CASE WHEN $17::bool"
    "  THEN set_config('synchronous_commit', 'off', true) ELSE " SYNC_AT_LEAST_ON
    " END AS level)," WRITE_SQL_CHECKS " UNION ALL"
    " SELECT 0, 'the cursor is not just below the batch' WHERE NOT EXISTS (SELECT 1 FROM gate"
    "  WHERE revision = (SELECT min(revision) FROM input) - 1"
    "  AND raft_index < (SELECT min(raft_index) FROM input))"
    ")," WRITE_SQL_WRITES " SELECT (SELECT msg FROM problem ORDER BY raft_index LIMIT 1),"
    "  (SELECT raft_index FROM gate), (SELECT revision FROM gate), (SELECT level FROM sync),"
    "  CASE WHEN EXISTS (SELECT 1 FROM problem) THEN 0"
    "  WHEN (SELECT count(*) FROM ins) = (SELECT count(*) FROM input)"
    "  AND (SELECT count(*) FROM up) > 0 AND (SELECT count(*) FROM cur) = 1 THEN 1"
    "  ELSE ('materializing in one statement: ' || (SELECT count(*) FROM ins) || ' revisions, '"
    "  || (SELECT count(*) FROM up) || ' configs and ' || (SELECT count(*) FROM cur)"
    "  || ' cursor rows written')::int END";

/* A growing text buffer; after a failed allocation it stays failed and ignores writes. */
struct buf {
    char *data;
    size_t len, cap;
    bool oom;
};

static void buf_put(struct buf *b, const char *s, size_t n)
{
    if (b->oom) {
        return;
    }
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1) {
            cap *= 2;
        }
        char *d = realloc(b->data, cap);
        if (d == NULL) {
            b->oom = true;
            return;
        }
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

static void buf_puts(struct buf *b, const char *s)
{
    buf_put(b, s, strlen(s));
}

/* Starts the next element of an array literal: "{" before the first, "," before others. */
static void elem(struct buf *b)
{
    buf_put(b, b->len == 0 ? "{" : ",", 1);
}

static void elem_null(struct buf *b)
{
    elem(b);
    buf_puts(b, "NULL");
}

static void elem_u64(struct buf *b, uint64_t v)
{
    char s[24];
    snprintf(s, sizeof(s), "%" PRIu64, v);
    elem(b);
    buf_puts(b, s);
}

static void elem_i64(struct buf *b, int64_t v)
{
    char s[24];
    snprintf(s, sizeof(s), "%" PRId64, v);
    elem(b);
    buf_puts(b, s);
}

/* A text element, double-quoted with '"' and '\' escaped, as array_in() reads it. */
static void elem_text(struct buf *b, const char *s, size_t n)
{
    elem(b);
    buf_put(b, "\"", 1);
    size_t start = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '"' || s[i] == '\\') {
            buf_put(b, s + start, i - start);
            buf_put(b, "\\", 1);
            start = i;
        }
    }
    buf_put(b, s + start, n - start);
    buf_put(b, "\"", 1);
}

static void elem_hex(struct buf *b, const uint8_t *bytes, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    elem(b);
    for (size_t i = 0; i < n; i++) {
        char h[2] = {digits[bytes[i] >> 4], digits[bytes[i] & 15]};
        buf_put(b, h, 2);
    }
}

static void elem_uuid(struct buf *b, const uint8_t id[16])
{
    char s[37];
    snprintf(s, sizeof(s), "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
             id[0], id[1], id[2], id[3], id[4], id[5], id[6], id[7], id[8], id[9], id[10], id[11],
             id[12], id[13], id[14], id[15]);
    elem(b);
    buf_puts(b, s);
}

/* Ends an array literal ("{}" when it has no element). */
static void arr_end(struct buf *b)
{
    if (b->len == 0) {
        buf_put(b, "{", 1);
    }
    buf_put(b, "}", 1);
}

/* Parses a non-negative bigint column. */
static bool parse_u64(const char *s, uint64_t *out)
{
    if (s == NULL || *s < '0' || *s > '9') {
        return false;
    }
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0') {
        return false;
    }
    *out = (uint64_t)v;
    return true;
}

/* Only two outcomes matter to the caller: retry (connection lost) or stop. */
static int settle(int rc)
{
    return rc == DB_OK || rc == DB_UNAVAILABLE ? rc : DB_ERROR;
}

static bool is_op(const char *op)
{
    return strcmp(op, "put") == 0 || strcmp(op, "delete") == 0 || strcmp(op, "rollback") == 0;
}

/* Checks what can be checked without the database. Returns 0, or -1 with ERRMSG. */
static int check_batch(const struct db_revision *revs, size_t n, char *errmsg, size_t errlen)
{
    for (size_t i = 0; i < n; i++) {
        const struct db_revision *r = &revs[i];
        const char *bad = NULL;
        if (r->project == NULL || r->key == NULL || r->op == NULL || r->actor == NULL) {
            bad = "project, key, op and actor are required";
        } else if (!is_op(r->op)) {
            bad = "op is not put, delete or rollback";
        } else if ((r->content == NULL) != (strcmp(r->op, "delete") == 0)) {
            bad = "content must be NULL exactly for a delete";
        } else if (r->content != NULL && memchr(r->content, '\0', r->content_len) != NULL) {
            bad = "content holds a NUL byte";
        } else if (r->revision > INT64_MAX || r->version > INT64_MAX ||
                   r->source_version > INT64_MAX || r->raft_index > INT64_MAX ||
                   r->raft_term > INT64_MAX) {
            bad = "a number does not fit in a bigint";
        } else if (i > 0 && r->raft_index <= revs[i - 1].raft_index) {
            bad = "raft indexes are not increasing";
        } else if (i > 0 && r->revision != revs[i - 1].revision + 1) {
            bad = "revision numbers are not consecutive";
        }
        if (bad != NULL) {
            snprintf(errmsg, errlen,
                     "materializing: batch entry %zu (revision %" PRIu64 ", raft index %" PRIu64
                     "): %s",
                     i, r->revision, r->raft_index, bad);
            return -1;
        }
    }
    return 0;
}

int db_revisions_read_cursor(PGconn *conn, uint64_t *raft_index, uint64_t *revision, char *errmsg,
                             size_t errlen)
{
    PGresult *res;
    int rc = db_query(conn, "reading materializer cursor",
                      "SELECT raft_index, revision FROM materializer_cursor WHERE id", 0, NULL,
                      &res, errmsg, errlen);
    if (rc != DB_OK) {
        return settle(rc);
    }
    uint64_t idx, rev;
    if (PQntuples(res) != 1) {
        snprintf(errmsg, errlen,
                 "reading materializer cursor: materializer_cursor has %d rows, "
                 "not 1 (are the migrations applied?)",
                 PQntuples(res));
        PQclear(res);
        return DB_ERROR;
    }
    if (!parse_u64(PQgetvalue(res, 0, 0), &idx) || !parse_u64(PQgetvalue(res, 0, 1), &rev)) {
        snprintf(errmsg, errlen, "reading materializer cursor: unreadable values '%s', '%s'",
                 PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1));
        PQclear(res);
        return DB_ERROR;
    }
    PQclear(res);
    *raft_index = idx;
    *revision = rev;
    return DB_OK;
}

/* Reads the cursor under a row lock that lasts until the transaction ends. */
static int lock_cursor(PGconn *conn, uint64_t *raft_index, uint64_t *revision, char *errmsg,
                       size_t errlen)
{
    PGresult *res;
    int rc = db_query(conn, "locking materializer cursor",
                      "SELECT raft_index, revision, " SYNC_AT_LEAST_ON
                      " FROM materializer_cursor WHERE id FOR UPDATE",
                      0, NULL, &res, errmsg, errlen);
    if (rc != DB_OK) {
        return settle(rc);
    }
    bool ok = PQntuples(res) == 1 && parse_u64(PQgetvalue(res, 0, 0), raft_index) &&
              parse_u64(PQgetvalue(res, 0, 1), revision);
    if (!ok) {
        snprintf(errmsg, errlen, "locking materializer cursor: no readable cursor row (%d rows)",
                 PQntuples(res));
    }
    PQclear(res);
    return ok ? DB_OK : DB_ERROR;
}

/*
 * Proves that REVS[0..N), all at or below the cursor, are the rows already stored: same
 * raft index, same revision number, same hash. A mismatch means this leader's log and the
 * history in PostgreSQL disagree, which Raft should make impossible; nothing may be written.
 */
static int verify_written(PGconn *conn, const struct db_revision *revs, size_t n, char *errmsg,
                          size_t errlen)
{
    struct buf idx = {0};
    for (size_t i = 0; i < n; i++) {
        elem_u64(&idx, revs[i].raft_index);
    }
    arr_end(&idx);
    if (idx.oom) {
        free(idx.data);
        snprintf(errmsg, errlen, "checking materialized revisions: out of memory");
        return DB_ERROR;
    }
    const char *p[] = {idx.data};
    PGresult *res;
    int rc = db_query(conn, "checking materialized revisions",
                      "SELECT raft_index, revision, encode(hash, 'hex') FROM config_revisions"
                      " WHERE raft_index = ANY($1::bigint[]) ORDER BY raft_index",
                      1, p, &res, errmsg, errlen);
    free(idx.data);
    if (rc != DB_OK) {
        return settle(rc);
    }
    int rows = PQntuples(res);
    int row = 0;
    rc = DB_OK;
    for (size_t i = 0; i < n && rc == DB_OK; i++) {
        const struct db_revision *r = &revs[i];
        char hex[2 * 32 + 3];
        db_bytea_hex(r->hash, 32, hex);
        const char *want = hex + 2; /* db_bytea_hex() adds a "\x" prefix, encode() does not */
        uint64_t stored_index = 0, stored_rev = 0;
        if (row < rows) {
            parse_u64(PQgetvalue(res, row, 0), &stored_index);
            parse_u64(PQgetvalue(res, row, 1), &stored_rev);
        }
        if (row >= rows || stored_index != r->raft_index) {
            snprintf(errmsg, errlen,
                     "materializing: divergence at raft index %" PRIu64
                     ": it is at or below the cursor but config_revisions has no row for it",
                     r->raft_index);
            rc = DB_ERROR;
            break;
        }
        const char *have = PQgetvalue(res, row, 2);
        if (stored_rev != r->revision || strcmp(have, want) != 0) {
            snprintf(errmsg, errlen,
                     "materializing: divergence at raft index %" PRIu64
                     ": config_revisions holds revision %" PRIu64 " with hash %s, the batch has "
                     "revision %" PRIu64 " with hash %s",
                     r->raft_index, stored_rev, have, r->revision, want);
            rc = DB_ERROR;
        }
        row++;
    }
    PQclear(res);
    return rc;
}

/* Fills the 16 array literals of WRITE_SQL from REVS[0..N). Returns false when out of
 * memory; the caller frees every buffer either way. */
static bool build_arrays(const struct db_revision *revs, size_t n,
                         struct buf cols[DB_REVISIONS_NCOLS])
{
    for (size_t i = 0; i < n; i++) {
        const struct db_revision *r = &revs[i];
        elem_u64(&cols[DB_REVISIONS_COL_REVISION], r->revision);
        elem_text(&cols[DB_REVISIONS_COL_PROJECT], r->project, strlen(r->project));
        elem_text(&cols[DB_REVISIONS_COL_KEY], r->key, strlen(r->key));
        elem_u64(&cols[DB_REVISIONS_COL_VERSION], r->version);
        elem_text(&cols[DB_REVISIONS_COL_OP], r->op, strlen(r->op));
        if (r->content != NULL) {
            elem_text(&cols[DB_REVISIONS_COL_CONTENT], r->content, r->content_len);
        } else {
            elem_null(&cols[DB_REVISIONS_COL_CONTENT]);
        }
        if (r->source_version != 0) {
            elem_u64(&cols[DB_REVISIONS_COL_SOURCE_VERSION], r->source_version);
        } else {
            elem_null(&cols[DB_REVISIONS_COL_SOURCE_VERSION]);
        }
        if (r->has_schema) {
            elem_uuid(&cols[DB_REVISIONS_COL_SCHEMA_ID], r->schema_id);
            elem_hex(&cols[DB_REVISIONS_COL_SCHEMA_HASH], r->schema_hash, 32);
        } else {
            elem_null(&cols[DB_REVISIONS_COL_SCHEMA_ID]);
            elem_null(&cols[DB_REVISIONS_COL_SCHEMA_HASH]);
        }
        elem_text(&cols[DB_REVISIONS_COL_ACTOR], r->actor, strlen(r->actor));
        if (r->request_id != NULL) {
            elem_text(&cols[DB_REVISIONS_COL_REQUEST_ID], r->request_id, strlen(r->request_id));
        } else {
            elem_null(&cols[DB_REVISIONS_COL_REQUEST_ID]);
        }
        elem_i64(&cols[DB_REVISIONS_COL_CREATED_US], r->created_at_us);
        elem_u64(&cols[DB_REVISIONS_COL_RAFT_INDEX], r->raft_index);
        elem_u64(&cols[DB_REVISIONS_COL_RAFT_TERM], r->raft_term);
        elem_hex(&cols[DB_REVISIONS_COL_PREV_HASH], r->prev_hash, 32);
        elem_hex(&cols[DB_REVISIONS_COL_HASH], r->hash, 32);
    }
    bool ok = true;
    for (int c = 0; c < DB_REVISIONS_NCOLS; c++) {
        arr_end(&cols[c]);
        ok = ok && !cols[c].oom;
    }
    return ok;
}

/* A batch as the parameters of WRITE_SQL and ONE_SQL: the 16 array literals, and room for
 * ONE_SQL's 17th. Owns the literals (batch_params_free()). */
struct batch_params {
    struct buf cols[DB_REVISIONS_NCOLS];
    const char *params[DB_REVISIONS_NCOLS + 1];
};

/* Fills BP from REVS[0..N). Returns 0, or DB_ERROR with ERRMSG when out of memory; BP must be
 * freed either way. */
static int batch_params_build(struct batch_params *bp, const struct db_revision *revs, size_t n,
                              char *errmsg, size_t errlen)
{
    memset(bp, 0, sizeof(*bp));
    if (!build_arrays(revs, n, bp->cols)) {
        snprintf(errmsg, errlen, "materializing: out of memory building the batch");
        return DB_ERROR;
    }
    for (int c = 0; c < DB_REVISIONS_NCOLS; c++) {
        bp->params[c] = bp->cols[c].data;
    }
    return 0;
}

static void batch_params_free(struct batch_params *bp)
{
    for (int c = 0; c < DB_REVISIONS_NCOLS; c++) {
        free(bp->cols[c].data);
    }
}

/* Inserts REVS[0..N), all above the cursor, and advances the cursor: round trip 4. */
static int write_new(PGconn *conn, const struct db_revision *revs, size_t n, char *errmsg,
                     size_t errlen)
{
    struct batch_params bp;
    PGresult *res = NULL;
    int rc = batch_params_build(&bp, revs, n, errmsg, errlen);
    if (rc != 0) {
        goto out;
    }
    rc = db_query(conn, "materializing revisions", WRITE_SQL, DB_REVISIONS_NCOLS, bp.params, &res,
                  errmsg, errlen);
    if (rc != DB_OK) {
        rc = settle(rc);
        goto out;
    }
    const char *problem = PQgetisnull(res, 0, 0) ? NULL : PQgetvalue(res, 0, 0);
    uint64_t problems = 0, inserted = 0, upserted = 0, cursors = 0;
    parse_u64(PQgetvalue(res, 0, 1), &problems);
    parse_u64(PQgetvalue(res, 0, 2), &inserted);
    parse_u64(PQgetvalue(res, 0, 3), &upserted);
    parse_u64(PQgetvalue(res, 0, 4), &cursors);
    if (problem != NULL) {
        snprintf(errmsg, errlen, "materializing: %s%s", problem,
                 problems > 1 ? " (and more problems in the same batch)" : "");
        rc = DB_ERROR;
    } else if (inserted != n) {
        /* Under the cursor lock, rows beyond the cursor can only come from a writer that
         * bypassed it: the cursor and the log disagree. */
        snprintf(errmsg, errlen,
                 "materializing: %" PRIu64 " of %zu revisions (raft indexes %" PRIu64 "..%" PRIu64
                 ") were already in config_revisions beyond the cursor",
                 (uint64_t)n - inserted, n, revs[0].raft_index, revs[n - 1].raft_index);
        rc = DB_ERROR;
    } else if (cursors != 1 || upserted == 0) {
        snprintf(errmsg, errlen,
                 "materializing: unexpected outcome: %" PRIu64 " configs and %" PRIu64
                 " cursor rows written",
                 upserted, cursors);
        rc = DB_ERROR;
    }
out:
    PQclear(res);
    batch_params_free(&bp);
    return rc;
}

/* The one round trip (ONE_SQL). Returns DB_OK when the batch is committed (*CURSOR_OUT,
 * *FLUSHED set), ONE_DECLINED when the statement wrote nothing and the full transaction must
 * decide (the cursor is elsewhere, a check failed, or PostgreSQL refused the statement: the
 * full transaction finds and reports the same thing with a fresh snapshot), or DB_UNAVAILABLE
 * with ERRMSG (the outcome is unknown; a retry is safe, as for the full transaction). */
#define ONE_DECLINED 1
static int write_one(PGconn *conn, const struct db_revision *revs, size_t n, bool defer,
                     uint64_t *cursor_out, bool *flushed, char *errmsg, size_t errlen)
{
    struct batch_params bp;
    PGresult *res = NULL;
    int rc = batch_params_build(&bp, revs, n, errmsg, errlen);
    if (rc != 0) {
        goto out;
    }
    bp.params[DB_REVISIONS_NCOLS] = defer ? "true" : "false";
    /* Prepared: the statement is long and planning it is a large part of a small batch. */
    rc = db_query_prepared(conn, "conclave_write_one", "materializing revisions in one statement",
                           ONE_SQL, DB_REVISIONS_NCOLS + 1, bp.params, &res, errmsg, errlen);
    if (rc != DB_OK) {
        rc = rc == DB_UNAVAILABLE ? DB_UNAVAILABLE : ONE_DECLINED;
        goto out;
    }
    if (PQntuples(res) != 1 || !PQgetisnull(res, 0, 0) || strcmp(PQgetvalue(res, 0, 4), "1") != 0) {
        rc = ONE_DECLINED;
        goto out;
    }
    *cursor_out = revs[n - 1].raft_index;
    *flushed = strcmp(PQgetvalue(res, 0, 3), "off") != 0;
    rc = DB_OK;
out:
    PQclear(res);
    batch_params_free(&bp);
    return rc;
}

int db_revisions_write_batch(PGconn *conn, const struct db_revision *revs, size_t n,
                             uint64_t *cursor_out, char *errmsg, size_t errlen)
{
    bool flushed;
    return db_revisions_write_batch_ex(conn, revs, n, 0, cursor_out, &flushed, errmsg, errlen);
}

int db_revisions_write_batch_ex(PGconn *conn, const struct db_revision *revs, size_t n,
                                unsigned flags, uint64_t *cursor_out, bool *flushed, char *errmsg,
                                size_t errlen)
{
    uint64_t cur_index, cur_rev;
    *flushed = false;
    if (n == 0) {
        int rc = db_revisions_read_cursor(conn, &cur_index, &cur_rev, errmsg, errlen);
        if (rc == DB_OK) {
            *cursor_out = cur_index;
        }
        return rc;
    }
    if (check_batch(revs, n, errmsg, errlen) != 0) {
        return DB_ERROR;
    }
    int rc;
    /* The one statement is its own transaction only outside one: a caller's open transaction
     * (tests do that) gets the full path, whose COMMIT ends it as before. */
    if (failpoint_pause_ms == 0 && PQtransactionStatus(conn) == PQTRANS_IDLE) {
        rc = write_one(conn, revs, n, (flags & DB_REVISIONS_DEFER_FLUSH) != 0, cursor_out, flushed,
                       errmsg, errlen);
        if (rc != ONE_DECLINED) {
            return rc;
        }
    }
    rc = settle(db_begin(conn, errmsg, errlen));
    if (rc != DB_OK) {
        return rc;
    }
    rc = lock_cursor(conn, &cur_index, &cur_rev, errmsg, errlen);
    if (rc != DB_OK) {
        goto err_in_tx;
    }
    unsigned pause = failpoint_pause_ms;
    if (pause > 0) {
        /* Failpoint: hold the cursor lock in an idle transaction (tests only). */
        struct timespec ts = {.tv_sec = pause / 1000, .tv_nsec = (long)(pause % 1000) * 1000000L};
        /* Resumed after a signal (SIGSTOP/SIGCONT): sleep the rest; bounded all the same. */
        for (int i = 0; i < 100 && nanosleep(&ts, &ts) != 0 && errno == EINTR; i++) {
        }
    }
    /* revs is in raft order, so what is already written is a prefix. */
    size_t done = 0;
    while (done < n && revs[done].raft_index <= cur_index) {
        done++;
    }
    if (done > 0) {
        rc = verify_written(conn, revs, done, errmsg, errlen);
        if (rc != DB_OK) {
            goto err_in_tx;
        }
    }
    if (done == n) {
        db_rollback(conn); /* nothing to write; the transaction only held the lock */
        *cursor_out = cur_index;
        return DB_OK;
    }
    if (revs[done].revision != cur_rev + 1) {
        snprintf(errmsg, errlen,
                 "materializing: revision gap: the cursor is at revision %" PRIu64
                 " (raft index %" PRIu64 ") but the next revision of the batch is %" PRIu64
                 " (raft index %" PRIu64 ")",
                 cur_rev, cur_index, revs[done].revision, revs[done].raft_index);
        rc = DB_ERROR;
        goto err_in_tx;
    }
    rc = write_new(conn, revs + done, n - done, errmsg, errlen);
    if (rc != DB_OK) {
        goto err_in_tx;
    }
    rc = settle(db_commit(conn, errmsg, errlen));
    if (rc != DB_OK) {
        /* A failed COMMIT has ended the transaction (rolled back, or unknown when the
         * connection dropped); there is nothing left to roll back. */
        return rc;
    }
    *cursor_out = revs[n - 1].raft_index;
    *flushed = true;
    return DB_OK;

err_in_tx:
    db_rollback(conn);
    return rc;
}

int db_revisions_request_ids(PGconn *conn, uint64_t after_revision, int limit,
                             void (*visit)(void *arg, const char *project, const char *request_id),
                             void *arg, size_t *rows, uint64_t *last_revision, char *errmsg,
                             size_t errlen)
{
    if (limit < 1 || limit > 1000000 || after_revision > INT64_MAX) {
        snprintf(errmsg, errlen,
                 "reading request ids: limit %d or revision %" PRIu64 " out of range", limit,
                 after_revision);
        return DB_ERROR;
    }
    char after[24], lim[16];
    snprintf(after, sizeof(after), "%" PRIu64, after_revision);
    snprintf(lim, sizeof(lim), "%d", limit);
    const char *p[] = {after, lim};
    PGresult *res;
    /* The primary key on revision serves the range scan. */
    int rc = db_query(conn, "reading request ids",
                      "SELECT revision, project_id, request_id FROM config_revisions"
                      " WHERE revision > $1::bigint ORDER BY revision LIMIT $2::int",
                      2, p, &res, errmsg, errlen);
    if (rc != DB_OK) {
        return settle(rc);
    }
    int n = PQntuples(res);
    uint64_t last = after_revision;
    for (int i = 0; i < n; i++) {
        if (!PQgetisnull(res, i, 2)) {
            visit(arg, PQgetvalue(res, i, 1), PQgetvalue(res, i, 2));
        }
    }
    if (n > 0 && !parse_u64(PQgetvalue(res, n - 1, 0), &last)) {
        snprintf(errmsg, errlen, "reading request ids: unreadable revision '%s'",
                 PQgetvalue(res, n - 1, 0));
        PQclear(res);
        return DB_ERROR;
    }
    PQclear(res);
    *rows = (size_t)n;
    *last_revision = last;
    return DB_OK;
}

int db_revisions_flush(PGconn *conn, uint64_t *raft_index, uint64_t *revision, char *errmsg,
                       size_t errlen)
{
    /* An UPDATE, because only a transaction that wrote WAL waits for its commit to be flushed
     * (PostgreSQL commits a transaction without WAL asynchronously whatever the setting). */
    PGresult *res;
    int rc = db_query(conn, "flushing materialized revisions",
                      "WITH s AS (SELECT " SYNC_AT_LEAST_ON " AS level)"
                      " UPDATE materializer_cursor SET updated_at = now()"
                      " WHERE id AND EXISTS (SELECT 1 FROM s) RETURNING raft_index, revision",
                      0, NULL, &res, errmsg, errlen);
    if (rc != DB_OK) {
        return settle(rc);
    }
    bool ok = PQntuples(res) == 1 && parse_u64(PQgetvalue(res, 0, 0), raft_index) &&
              parse_u64(PQgetvalue(res, 0, 1), revision);
    if (!ok) {
        snprintf(errmsg, errlen,
                 "flushing materialized revisions: no readable cursor row (%d rows)",
                 PQntuples(res));
    }
    PQclear(res);
    return ok ? DB_OK : DB_ERROR;
}

int db_revisions_find_loss(PGconn *conn, uint64_t revision_from, struct db_revisions_loss *out,
                           int *found, char *errmsg, size_t errlen)
{
    char from[24];
    snprintf(from, sizeof(from), "%" PRIu64, revision_from);
    const char *p[] = {from};
    PGresult *res;
    int rc = db_query(conn, "reading accepted postgresql losses",
                      "SELECT revision_from, revision_to, raft_index_from, raft_index_to"
                      " FROM postgresql_losses WHERE revision_from = $1::bigint",
                      1, p, &res, errmsg, errlen);
    if (rc != DB_OK) {
        return settle(rc);
    }
    *found = 0;
    if (PQntuples(res) == 1) {
        struct db_revisions_loss l;
        if (!parse_u64(PQgetvalue(res, 0, 0), &l.revision_from) ||
            !parse_u64(PQgetvalue(res, 0, 1), &l.revision_to) ||
            !parse_u64(PQgetvalue(res, 0, 2), &l.raft_index_from) ||
            !parse_u64(PQgetvalue(res, 0, 3), &l.raft_index_to)) {
            snprintf(errmsg, errlen, "reading accepted postgresql losses: unreadable row");
            PQclear(res);
            return DB_ERROR;
        }
        *out = l;
        *found = 1;
    }
    PQclear(res);
    return DB_OK;
}

/* The four numbers of LOSS as text parameters, in the struct's order. */
struct loss_text {
    char v[4][24];
};

static void loss_params(const struct db_revisions_loss *loss, struct loss_text *t)
{
    snprintf(t->v[0], sizeof(t->v[0]), "%" PRIu64, loss->revision_from);
    snprintf(t->v[1], sizeof(t->v[1]), "%" PRIu64, loss->revision_to);
    snprintf(t->v[2], sizeof(t->v[2]), "%" PRIu64, loss->raft_index_from);
    snprintf(t->v[3], sizeof(t->v[3]), "%" PRIu64, loss->raft_index_to);
}

int db_revisions_skip_loss(PGconn *conn, const struct db_revisions_loss *loss, char *errmsg,
                           size_t errlen)
{
    /* One statement: it waits for a batch holding the cursor row lock, then re-checks its
     * WHERE against the row that batch left (READ COMMITTED), so the cursor moves only from
     * exactly below the loss, never back over written revisions. */
    struct loss_text t;
    loss_params(loss, &t);
    const char *p[] = {t.v[0], t.v[1], t.v[2], t.v[3]};
    PGresult *res;
    int rc = db_query(conn, "moving the cursor past an accepted loss",
                      "UPDATE materializer_cursor SET raft_index = $4::bigint,"
                      " revision = $2::bigint, updated_at = now()"
                      " WHERE id AND revision = $1::bigint - 1 AND raft_index = $3::bigint - 1"
                      " AND EXISTS (SELECT 1 FROM postgresql_losses g"
                      "  WHERE g.revision_from = $1::bigint AND g.revision_to = $2::bigint"
                      "  AND g.raft_index_from = $3::bigint AND g.raft_index_to = $4::bigint)"
                      " RETURNING 1",
                      4, p, &res, errmsg, errlen);
    if (rc != DB_OK) {
        return settle(rc);
    }
    int moved = PQntuples(res);
    PQclear(res);
    if (moved != 1) {
        snprintf(errmsg, errlen,
                 "the cursor is no longer just below revision %" PRIu64
                 " or the accepted loss changed",
                 loss->revision_from);
        return DB_REFUSED;
    }
    return DB_OK;
}

int db_revisions_accept_loss(PGconn *conn, const struct db_revisions_loss *loss, const char *actor,
                             const char *reason, char *errmsg, size_t errlen)
{
    uint64_t cur_index, cur_rev;
    PGresult *res = NULL;
    if (loss->revision_from < 1 || loss->revision_to < loss->revision_from ||
        loss->raft_index_from < 1 || loss->raft_index_to < loss->raft_index_from ||
        loss->revision_to > INT64_MAX || loss->raft_index_to > INT64_MAX) {
        snprintf(errmsg, errlen,
                 "the ranges must be FROM..TO with 1 <= FROM <= TO (revisions %" PRIu64 "..%" PRIu64
                 ", raft indexes %" PRIu64 "..%" PRIu64 ")",
                 loss->revision_from, loss->revision_to, loss->raft_index_from,
                 loss->raft_index_to);
        return DB_REFUSED;
    }
    int rc = settle(db_begin(conn, errmsg, errlen));
    if (rc != DB_OK) {
        return rc;
    }
    rc = lock_cursor(conn, &cur_index, &cur_rev, errmsg, errlen);
    if (rc != DB_OK) {
        goto err_in_tx;
    }
    if (cur_rev + 1 != loss->revision_from || cur_index + 1 != loss->raft_index_from) {
        snprintf(errmsg, errlen,
                 "postgresql's cursor is at revision %" PRIu64 " (raft index %" PRIu64
                 "), so a loss must start at revision %" PRIu64 " and raft index %" PRIu64
                 "; copy the range from the leader's /ready answer",
                 cur_rev, cur_index, cur_rev + 1, cur_index + 1);
        rc = DB_REFUSED;
        goto err_in_tx;
    }
    struct loss_text t;
    loss_params(loss, &t);
    const char *p[] = {t.v[0], t.v[1], t.v[2], t.v[3], actor, reason};
    rc = db_query(conn, "checking the lost range",
                  "SELECT count(*) FROM config_revisions WHERE revision BETWEEN $1::bigint AND "
                  "$2::bigint OR raft_index BETWEEN $3::bigint AND $4::bigint",
                  4, p, &res, errmsg, errlen);
    if (rc != DB_OK) {
        rc = settle(rc);
        goto err_in_tx;
    }
    if (strcmp(PQgetvalue(res, 0, 0), "0") != 0) {
        snprintf(errmsg, errlen,
                 "config_revisions holds %s rows inside revisions %" PRIu64 "..%" PRIu64
                 " or raft indexes %" PRIu64 "..%" PRIu64 ": they are not lost",
                 PQgetvalue(res, 0, 0), loss->revision_from, loss->revision_to,
                 loss->raft_index_from, loss->raft_index_to);
        rc = DB_REFUSED;
        goto err_in_tx;
    }
    PQclear(res);
    res = NULL;
    rc = db_query(conn, "recording the accepted loss",
                  "INSERT INTO postgresql_losses (revision_from, revision_to, raft_index_from,"
                  " raft_index_to, accepted_by, reason)"
                  " VALUES ($1::bigint, $2::bigint, $3::bigint, $4::bigint,"
                  " format('%s, database role %s', $5::text, current_user), $6)"
                  " ON CONFLICT (revision_from) DO UPDATE SET revision_to = excluded.revision_to,"
                  " raft_index_from = excluded.raft_index_from,"
                  " raft_index_to = excluded.raft_index_to, accepted_at = now(),"
                  " accepted_by = excluded.accepted_by, reason = excluded.reason",
                  6, p, &res, errmsg, errlen);
    if (rc != DB_OK) {
        rc = settle(rc);
        goto err_in_tx;
    }
    PQclear(res);
    return settle(db_commit(conn, errmsg, errlen));

err_in_tx:
    PQclear(res);
    db_rollback(conn);
    return rc;
}
