#include "audit/audit.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "storage/db.h"
#include "storage/db_auth.h"
#include "storage/db_revisions.h"
#include "raft/revision.h"

/*
 * Pages. Keyset pagination (revision > the last one seen, served by
 * config_revisions_project_revision_idx) inside one REPEATABLE READ transaction sees one
 * snapshot, so pages neither skip nor repeat rows. A page holds at most PAGE_ROWS rows and
 * stops before the row that would take its content past PAGE_BYTES (one row is always taken,
 * so a single large content still makes progress): with contents of up to about 1 MiB, a
 * page by rows alone could be a gigabyte.
 *
 * Exact bytes. The hash covers UTF-8 bytes, so every text that enters it (key, content,
 * actor, request_id) is fetched as convert_to(..., 'UTF8') in hex: the result does not depend
 * on the connection's client_encoding. content::text of a json column is its stored text,
 * byte for byte.
 */
#define PAGE_ROWS  1000
#define PAGE_BYTES (8 * 1024 * 1024)

/* The page's columns are the table's, in enum db_revisions_col order (DB_REVISIONS_COLUMNS),
 * each turned into the text form check_row() reads by the inner SELECT, which names it. */
static const char PAGE_SQL[] =
    "SELECT " DB_REVISIONS_COLUMNS " FROM ("
    " SELECT revision, project_id, encode(convert_to(key, 'UTF8'), 'hex') AS key, version,"
    "  op::text AS op, encode(convert_to(content::text, 'UTF8'), 'hex') AS content,"
    "  source_version, encode(uuid_send(schema_id), 'hex') AS schema_id,"
    "  encode(schema_hash, 'hex') AS schema_hash, encode(convert_to(actor, 'UTF8'), 'hex') AS "
    "actor,"
    "  encode(convert_to(request_id, 'UTF8'), 'hex') AS request_id,"
    "  (extract(epoch FROM created_at) * 1000000)::bigint AS created_at, raft_index, raft_term,"
    "  encode(prev_hash, 'hex') AS prev_hash, encode(hash, 'hex') AS hash"
    " FROM (SELECT r.*, sum(coalesce(octet_length(r.content::text), 0)) OVER (ORDER BY r.revision)"
    "  - coalesce(octet_length(r.content::text), 0) AS bytes_before"
    "  FROM (SELECT * FROM config_revisions WHERE project_id = $1 AND revision > $2::bigint"
    "   ORDER BY revision LIMIT $3::int) r) p"
    " WHERE bytes_before < $4::bigint) page ORDER BY revision";

/* Each key's versions in revision order must be 1, 2, 3, ... Only revision, key and version
 * are read, so the sort PostgreSQL does stays small; the client gets the first problems. */
static const char VERSIONS_SQL[] =
    "WITH v AS ("
    " SELECT revision, key, version,"
    "  lag(version) OVER (PARTITION BY key ORDER BY revision) AS prev"
    " FROM config_revisions WHERE project_id = $1"
    "), bad AS ("
    " SELECT revision, key, CASE"
    "  WHEN prev IS NULL THEN"
    "   format('version gap: the first revision of the key has version %s, not 1', version)"
    "  WHEN version = prev THEN format('duplicate version %s', version)"
    "  WHEN version < prev THEN"
    "   format('versions go backwards: version %s follows version %s', version, prev)"
    "  WHEN version = prev + 2 THEN"
    "   format('version gap: version %s follows version %s; version %s is missing',"
    "    version, prev, prev + 1)"
    "  ELSE format('version gap: version %s follows version %s; versions %s to %s are missing',"
    "   version, prev, prev + 1, version - 1) END AS problem"
    " FROM v WHERE version <> coalesce(prev, 0) + 1"
    ")"
    " SELECT json_build_object('total', (SELECT count(*) FROM bad),"
    "  'problems', coalesce((SELECT json_agg(json_build_object('revision', revision,"
    "   'key', key, 'problem', problem) ORDER BY revision)"
    "   FROM (SELECT * FROM bad ORDER BY revision LIMIT $2::int) x), '[]'::json))";

/* Timestamps in fold problems, as the API shows them. */
#define TS_CONFIGS DB_TS("c.updated_at")
#define TS_FOLD    DB_TS("l.created_at")

/* configs must equal the fold of the revisions: each key's last revision (a delete leaves a
 * tombstone without content or schema). Only the last revision of each key has its content
 * parsed as jsonb. */
static const char FOLD_SQL[] =
    "WITH heads AS ("
    " SELECT DISTINCT ON (key) key, revision FROM config_revisions WHERE project_id = $1"
    " ORDER BY key, revision DESC"
    "), last AS ("
    " SELECT r.key, r.revision, r.version, r.op = 'delete' AS deleted,"
    "  CASE WHEN r.op = 'delete' THEN NULL ELSE r.content::jsonb END AS content,"
    "  CASE WHEN r.op = 'delete' THEN NULL ELSE r.schema_id END AS schema_id,"
    "  CASE WHEN r.op = 'delete' THEN NULL ELSE r.schema_hash END AS schema_hash,"
    "  r.actor, r.created_at"
    " FROM heads h JOIN config_revisions r ON r.revision = h.revision"
    "), cur AS ("
    " SELECT * FROM configs WHERE project_id = $1"
    "), diff AS ("
    " SELECT coalesce(l.key, c.key) AS key, l.revision, CASE"
    "  WHEN c.key IS NULL THEN format('fold mismatch: configs has no row for the key,"
    " whose revisions reach version %s', l.version)"
    "  WHEN l.key IS NULL THEN format('fold mismatch: configs has a row (version %s) for a key"
    " without revisions', c.version)"
    "  ELSE 'fold mismatch: ' || nullif(concat_ws('; ',"
    "   CASE WHEN c.version <> l.version THEN"
    "    format('version: configs %s, revisions %s', c.version, l.version) END,"
    "   CASE WHEN c.deleted <> l.deleted THEN"
    "    format('deleted: configs %s, revisions %s', c.deleted::text, l.deleted::text) END,"
    "   CASE WHEN c.content IS DISTINCT FROM l.content THEN 'content differs' END,"
    "   CASE WHEN c.schema_id IS DISTINCT FROM l.schema_id THEN"
    "    format('schema_id: configs %s, revisions %s', coalesce(c.schema_id::text, 'null'),"
    "    coalesce(l.schema_id::text, 'null')) END,"
    "   CASE WHEN c.schema_hash IS DISTINCT FROM l.schema_hash THEN"
    "    format('schema_hash: configs %s, revisions %s',"
    "    coalesce(encode(c.schema_hash, 'hex'), 'null'),"
    "    coalesce(encode(l.schema_hash, 'hex'), 'null')) END,"
    "   CASE WHEN c.last_revision <> l.revision THEN"
    "    format('last_revision: configs %s, revisions %s', c.last_revision, l.revision) END,"
    "   CASE WHEN c.updated_by <> l.actor THEN"
    "    format('updated_by: configs %L, revisions %L', c.updated_by, l.actor) END,"
    "   CASE WHEN c.updated_at <> l.created_at THEN"
    "    format('updated_at: configs %s, revisions %s', " TS_CONFIGS ", " TS_FOLD ") END"
    "  ), '') END AS problem"
    " FROM last l FULL JOIN cur c ON c.key = l.key"
    ")"
    " SELECT json_build_object('keys', (SELECT count(*) FROM heads),"
    "  'total', (SELECT count(*) FROM diff WHERE problem IS NOT NULL),"
    "  'problems', coalesce((SELECT json_agg(json_build_object('revision',"
    "   revision, 'key', key, 'problem', problem)"
    "   ORDER BY revision NULLS LAST, key COLLATE \"C\")"
    "   FROM (SELECT * FROM diff WHERE problem IS NOT NULL"
    "   ORDER BY revision NULLS LAST, key COLLATE \"C\" LIMIT $2::int) x),"
    "  '[]'::json))";

/* The state of one verification. */
struct audit {
    const char *project;
    uint64_t rows;                               /* revisions read so far */
    uint64_t prev_revision;                      /* the previous row's, when rows > 0 */
    uint64_t prev_raft_index;                    /* likewise */
    uint8_t head[REVISION_HASH_SIZE];            /* the previous row's stored hash, or zeros */
    json_t *problems;                            /* the chain problems listed, in revision order */
    const struct audit_expect *expect;           /* a point the chain must hold, or NULL */
    bool expect_found;                           /* a row's stored hash equals expect->hash */
    uint64_t expect_found_revision;              /* that row's revision */
    bool expect_rev_seen;                        /* a row has revision expect->revision ... */
    uint8_t expect_rev_hash[REVISION_HASH_SIZE]; /* ... and this stored hash */
    uint64_t total;                              /* every chain problem found, listed or not */
    bool oom;
};

static void hex_of(const uint8_t *bytes, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[bytes[i] >> 4];
        out[2 * i + 1] = digits[bytes[i] & 15];
    }
    out[2 * n] = '\0';
}

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

/* Decodes N bytes from exactly 2 * N hex digits. */
static bool unhex(const char *hex, size_t hexlen, uint8_t *out, size_t n)
{
    if (hexlen != 2 * n) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        int hi = hex_digit(hex[2 * i]), lo = hex_digit(hex[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            return false;
        }
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return true;
}

/* Decodes a hex column into a new NUL-terminated buffer (*LEN bytes before the terminator).
 * Returns NULL when out of memory or when the column is not hex; *BAD tells which. */
static char *unhex_alloc(const PGresult *res, int row, int col, size_t *len, bool *bad)
{
    const char *hex = PQgetvalue(res, row, col);
    size_t hexlen = (size_t)PQgetlength(res, row, col);
    *bad = hexlen % 2 != 0;
    if (*bad) {
        return NULL;
    }
    char *out = malloc(hexlen / 2 + 1);
    if (out == NULL) {
        return NULL;
    }
    if (!unhex(hex, hexlen, (uint8_t *)out, hexlen / 2)) {
        free(out);
        *bad = true;
        return NULL;
    }
    out[hexlen / 2] = '\0';
    *len = hexlen / 2;
    return out;
}

static bool parse_i64(const char *s, int64_t *out)
{
    if (s == NULL || *s == '\0') {
        return false;
    }
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno != 0 || *end != '\0') {
        return false;
    }
    *out = (int64_t)v;
    return true;
}

static bool parse_u64(const char *s, uint64_t *out)
{
    int64_t v;
    if (!parse_i64(s, &v) || v < 0) {
        return false;
    }
    *out = (uint64_t)v;
    return true;
}

/* Records a chain problem: counted always, listed while the list has room. */
static void add_problem(struct audit *a, uint64_t revision, const char *key, size_t keylen,
                        const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void add_problem(struct audit *a, uint64_t revision, const char *key, size_t keylen,
                        const char *fmt, ...)
{
    a->total++;
    if (a->oom || json_array_size(a->problems) >= AUDIT_MAX_PROBLEMS) {
        return;
    }
    char text[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    /* json_array_append_new() releases P when it fails. */
    /* Revision 0 and a NULL key: a problem of the whole chain, not of one row. */
    json_t *p = json_pack("{s:o, s:o, s:s}", "revision",
                          revision ? json_integer((json_int_t)revision) : json_null(), "key",
                          key ? json_stringn(key, keylen) : json_null(), "problem", text);
    if (p == NULL || json_array_append_new(a->problems, p) != 0) {
        a->oom = true;
    }
}

/* The strings a row's struct revision borrows; freed after the row. */
struct row_bufs {
    char *key, *content, *actor, *request_id;
};

static void row_bufs_free(struct row_bufs *b)
{
    free(b->key);
    free(b->content);
    free(b->actor);
    free(b->request_id);
}

/*
 * Rebuilds the revision of ROW, recomputes its hash and checks it against the chain so far.
 * Problems are recorded in A; the return value is DB_ERROR only for a row that cannot be read
 * at all (out of memory, or a value the column types make impossible), with ERRMSG.
 */
static int check_row(struct audit *a, const PGresult *res, int row, char *errmsg, size_t errlen)
{
    struct revision r;
    struct row_bufs b = {0};
    size_t keylen = 0, len = 0;
    bool bad = false;
    const char *what = NULL;
    memset(&r, 0, sizeof(r));
    /* revision_compute_hash() only reads the struct; the cast does not let it write. */
    r.project = (char *)a->project;

    if (!parse_u64(PQgetvalue(res, row, DB_REVISIONS_COL_REVISION), &r.revision)) {
        what = "revision";
        goto unreadable;
    }
    if ((b.key = unhex_alloc(res, row, DB_REVISIONS_COL_KEY, &keylen, &bad)) == NULL) {
        what = "key";
        goto fail;
    }
    r.key = b.key;
    if (!parse_u64(PQgetvalue(res, row, DB_REVISIONS_COL_VERSION), &r.version)) {
        what = "version";
        goto unreadable;
    }
    const char *op = PQgetvalue(res, row, DB_REVISIONS_COL_OP);
    if (strcmp(op, "put") == 0) {
        r.op = REVISION_PUT;
    } else if (strcmp(op, "delete") == 0) {
        r.op = REVISION_DELETE;
    } else if (strcmp(op, "rollback") == 0) {
        r.op = REVISION_ROLLBACK;
    } else {
        what = "op";
        goto unreadable;
    }
    if (!PQgetisnull(res, row, DB_REVISIONS_COL_CONTENT)) {
        if ((b.content = unhex_alloc(res, row, DB_REVISIONS_COL_CONTENT, &len, &bad)) == NULL) {
            what = "content";
            goto fail;
        }
        r.content = (uint8_t *)b.content;
        r.content_len = len;
    }
    /* source_version is >= 1 when present (a check constraint), so 0 means NULL as in
     * struct revision. */
    if (!PQgetisnull(res, row, DB_REVISIONS_COL_SOURCE_VERSION) &&
        (!parse_u64(PQgetvalue(res, row, DB_REVISIONS_COL_SOURCE_VERSION), &r.source_version) ||
         r.source_version == 0)) {
        what = "source_version";
        goto unreadable;
    }
    if ((b.actor = unhex_alloc(res, row, DB_REVISIONS_COL_ACTOR, &len, &bad)) == NULL) {
        what = "actor";
        goto fail;
    }
    r.actor = b.actor;
    if (!PQgetisnull(res, row, DB_REVISIONS_COL_REQUEST_ID)) {
        if ((b.request_id = unhex_alloc(res, row, DB_REVISIONS_COL_REQUEST_ID, &len, &bad)) ==
            NULL) {
            what = "request_id";
            goto fail;
        }
        r.request_id = b.request_id;
    }
    if (!parse_i64(PQgetvalue(res, row, DB_REVISIONS_COL_CREATED_US), &r.created_at)) {
        what = "created_at";
        goto unreadable;
    }
    if (!parse_u64(PQgetvalue(res, row, DB_REVISIONS_COL_RAFT_INDEX), &r.raft_index) ||
        !parse_u64(PQgetvalue(res, row, DB_REVISIONS_COL_RAFT_TERM), &r.raft_term)) {
        what = "raft_index or raft_term";
        goto unreadable;
    }
    uint8_t stored[REVISION_HASH_SIZE];
    if (!unhex(PQgetvalue(res, row, DB_REVISIONS_COL_PREV_HASH),
               (size_t)PQgetlength(res, row, DB_REVISIONS_COL_PREV_HASH), r.prev_hash,
               REVISION_HASH_SIZE) ||
        !unhex(PQgetvalue(res, row, DB_REVISIONS_COL_HASH),
               (size_t)PQgetlength(res, row, DB_REVISIONS_COL_HASH), stored, REVISION_HASH_SIZE)) {
        what = "prev_hash or hash";
        goto unreadable;
    }
    bool has_id = !PQgetisnull(res, row, DB_REVISIONS_COL_SCHEMA_ID);
    bool has_hash = !PQgetisnull(res, row, DB_REVISIONS_COL_SCHEMA_HASH);
    if (has_id &&
        !unhex(PQgetvalue(res, row, DB_REVISIONS_COL_SCHEMA_ID),
               (size_t)PQgetlength(res, row, DB_REVISIONS_COL_SCHEMA_ID), r.schema_id, 16)) {
        what = "schema_id";
        goto unreadable;
    }
    if (has_hash &&
        !unhex(PQgetvalue(res, row, DB_REVISIONS_COL_SCHEMA_HASH),
               (size_t)PQgetlength(res, row, DB_REVISIONS_COL_SCHEMA_HASH), r.schema_hash, 32)) {
        what = "schema_hash";
        goto unreadable;
    }
    r.has_schema = has_id && has_hash;

    char want[2 * REVISION_HASH_SIZE + 1], got[2 * REVISION_HASH_SIZE + 1];
    /* The chain: this row must name the previous row's stored hash. */
    if (memcmp(r.prev_hash, a->head, REVISION_HASH_SIZE) != 0) {
        hex_of(r.prev_hash, REVISION_HASH_SIZE, got);
        if (a->rows == 0) {
            add_problem(a, r.revision, r.key, keylen,
                        "prev_hash mismatch: stored %s, but the project's first revision must "
                        "have 32 zero bytes",
                        got);
        } else {
            hex_of(a->head, REVISION_HASH_SIZE, want);
            add_problem(a, r.revision, r.key, keylen,
                        "prev_hash mismatch: stored %s, but the previous revision %" PRIu64
                        " has hash %s",
                        got, a->prev_revision, want);
        }
    }
    if (a->rows > 0 && r.raft_index <= a->prev_raft_index) {
        add_problem(a, r.revision, r.key, keylen,
                    "raft index %" PRIu64 " is not above raft index %" PRIu64
                    " of the previous revision %" PRIu64,
                    r.raft_index, a->prev_raft_index, a->prev_revision);
    }
    if (has_id != has_hash) {
        /* The canonical bytes cannot express one without the other (the state machine never
         * writes such a row), so the stored hash cannot be reproduced. */
        add_problem(a, r.revision, r.key, keylen,
                    "schema: %s is set but %s is NULL, so the hash cannot be recomputed",
                    has_id ? "schema_id" : "schema_hash", has_id ? "schema_hash" : "schema_id");
    } else {
        uint8_t computed[REVISION_HASH_SIZE];
        revision_compute_hash(&r, computed);
        if (memcmp(computed, stored, REVISION_HASH_SIZE) != 0) {
            hex_of(stored, REVISION_HASH_SIZE, got);
            hex_of(computed, REVISION_HASH_SIZE, want);
            add_problem(a, r.revision, r.key, keylen, "hash mismatch: stored %s, computed %s", got,
                        want);
        }
    }
    /* The next row chains from what is stored, not from what was recomputed: a tampered
     * hash shows as a mismatch here and a broken link at the next row. */
    memcpy(a->head, stored, REVISION_HASH_SIZE);
    if (a->expect != NULL) {
        if (!a->expect_found && memcmp(stored, a->expect->hash, REVISION_HASH_SIZE) == 0) {
            a->expect_found = true;
            a->expect_found_revision = r.revision;
        }
        if (a->expect->revision != 0 && r.revision == a->expect->revision) {
            a->expect_rev_seen = true;
            memcpy(a->expect_rev_hash, stored, REVISION_HASH_SIZE);
        }
    }
    a->prev_revision = r.revision;
    a->prev_raft_index = r.raft_index;
    a->rows++;
    row_bufs_free(&b);
    if (a->oom) {
        snprintf(errmsg, errlen, "auditing project %s: out of memory", a->project);
        return DB_ERROR;
    }
    return DB_OK;

fail:
    if (!bad) {
        row_bufs_free(&b);
        snprintf(errmsg, errlen, "auditing project %s: out of memory reading %s of row %d",
                 a->project, what, row);
        return DB_ERROR;
    }
unreadable:
    snprintf(errmsg, errlen, "auditing project %s: unreadable %s in config_revisions row '%s'",
             a->project, what, PQgetvalue(res, row, DB_REVISIONS_COL_REVISION));
    row_bufs_free(&b);
    return DB_ERROR;
}

/* Streams the project's revisions through check_row(). */
static int check_chain(PGconn *conn, struct audit *a, char *errmsg, size_t errlen)
{
    char after[24], rows[16], bytes[24];
    snprintf(rows, sizeof(rows), "%d", PAGE_ROWS);
    snprintf(bytes, sizeof(bytes), "%d", PAGE_BYTES);
    for (;;) {
        snprintf(after, sizeof(after), "%" PRIu64, a->rows > 0 ? a->prev_revision : 0);
        const char *p[] = {a->project, after, rows, bytes};
        PGresult *res;
        int rc = db_query(conn, "reading config_revisions", PAGE_SQL, 4, p, &res, errmsg, errlen);
        if (rc != DB_OK) {
            return rc;
        }
        int n = PQntuples(res);
        if (PQnfields(res) != DB_REVISIONS_NCOLS) {
            snprintf(errmsg, errlen, "auditing project %s: page has %d columns, not %d", a->project,
                     PQnfields(res), DB_REVISIONS_NCOLS);
            PQclear(res);
            return DB_ERROR;
        }
        for (int i = 0; i < n; i++) {
            rc = check_row(a, res, i, errmsg, errlen);
            if (rc != DB_OK) {
                PQclear(res);
                return rc;
            }
        }
        PQclear(res);
        if (n == 0) {
            return DB_OK;
        }
    }
}

static json_int_t revision_of(json_t *problem)
{
    json_t *r = json_object_get(problem, "revision");
    return json_is_integer(r) ? json_integer_value(r) : INT64_MAX;
}

/* Merges the three lists (each in revision order, problems without a revision last) into a
 * new array of at most AUDIT_MAX_PROBLEMS; on a tie the earlier list comes first. */
static json_t *merge_problems(json_t *lists[3])
{
    json_t *out = json_array();
    size_t at[3] = {0, 0, 0};
    while (out != NULL && json_array_size(out) < AUDIT_MAX_PROBLEMS) {
        int best = -1;
        json_int_t best_rev = 0;
        for (int i = 0; i < 3; i++) {
            json_t *p = json_array_get(lists[i], at[i]);
            if (p != NULL && (best < 0 || revision_of(p) < best_rev)) {
                best = i;
                best_rev = revision_of(p);
            }
        }
        if (best < 0) {
            break;
        }
        if (json_array_append(out, json_array_get(lists[best], at[best])) != 0) {
            json_decref(out);
            return NULL;
        }
        at[best]++;
    }
    return out;
}

/* Runs a query of VERSIONS_SQL or FOLD_SQL's shape; *OUT is its object. */
static int sql_check(PGconn *conn, const char *what, const char *sql, const char *project,
                     json_t **out, char *errmsg, size_t errlen)
{
    char lim[16];
    snprintf(lim, sizeof(lim), "%d", AUDIT_MAX_PROBLEMS);
    const char *p[] = {project, lim};
    int rc = db_query_json_row(conn, what, sql, 2, p, out, errmsg, errlen);
    if (rc == DB_OK && (!json_is_integer(json_object_get(*out, "total")) ||
                        !json_is_array(json_object_get(*out, "problems")))) {
        snprintf(errmsg, errlen, "%s: unexpected result", what);
        json_decref(*out);
        *out = NULL;
        rc = DB_ERROR;
    }
    return rc == DB_NOT_FOUND ? DB_ERROR : rc;
}

static bool expect_none(const struct audit_expect *e)
{
    static const uint8_t zero[REVISION_HASH_SIZE];
    return e == NULL || memcmp(e->hash, zero, REVISION_HASH_SIZE) == 0;
}

/* After the chain was read: adds the problem of a missing or different expected point, and
 * returns the report's "expected" member (new), or NULL when nothing was expected. A chain
 * holding the expected hash as a later revision than expected is still a finding (the
 * revision number is part of what was committed). */
static json_t *expect_check(struct audit *a)
{
    const struct audit_expect *e = a->expect;
    char want[2 * REVISION_HASH_SIZE + 1], have[2 * REVISION_HASH_SIZE + 1], rev[32] = "";
    if (expect_none(e)) {
        return NULL;
    }
    bool found = a->expect_found && (e->revision == 0 || a->expect_found_revision == e->revision);
    hex_of(e->hash, REVISION_HASH_SIZE, want);
    if (e->revision != 0) {
        snprintf(rev, sizeof(rev), " %" PRIu64, e->revision);
    }
    if (!found && e->revision != 0 && a->expect_rev_seen) {
        hex_of(a->expect_rev_hash, REVISION_HASH_SIZE, have);
        add_problem(a, e->revision, NULL, 0,
                    "head mismatch: %s revision%s with hash %s, but PostgreSQL holds revision%s "
                    "with hash %s",
                    e->what, rev, want, rev, have);
    } else if (!found && a->rows == 0) {
        add_problem(a, e->revision, NULL, 0,
                    "missing tail: %s revision%s with hash %s, but PostgreSQL holds no revision "
                    "of the project",
                    e->what, e->revision ? rev : "", want);
    } else if (!found) {
        hex_of(a->head, REVISION_HASH_SIZE, have);
        add_problem(a, e->revision, NULL, 0,
                    "missing tail: %s revision%s with hash %s, but PostgreSQL's chain ends at "
                    "revision %" PRIu64 " with hash %s",
                    e->what, e->revision ? rev : "", want, a->prev_revision, have);
    }
    uint64_t r = e->revision ? e->revision : (found ? a->expect_found_revision : 0);
    return json_pack("{s:o,s:s,s:b}", "revision", r ? json_integer((json_int_t)r) : json_null(),
                     "hash", want, "found", found);
}

int audit_verify_project(PGconn *conn, const char *project, json_t **report, char *errmsg,
                         size_t errlen)
{
    return audit_verify_project_expect(conn, project, NULL, report, errmsg, errlen);
}

int audit_verify_project_expect(PGconn *conn, const char *project,
                                const struct audit_expect *expect, json_t **report, char *errmsg,
                                size_t errlen)
{
    struct audit a = {.project = project, .expect = expect};
    json_t *expected = NULL;
    json_t *versions = NULL, *fold = NULL, *listed = NULL;
    PGresult *res = NULL;
    int rc;
    *report = NULL;

    if (sodium_init() < 0) {
        snprintf(errmsg, errlen, "auditing project %s: libsodium failed to initialise", project);
        return DB_ERROR;
    }
    if (PQstatus(conn) != CONNECTION_OK) {
        snprintf(errmsg, errlen, "auditing project %s: the connection is lost", project);
        return DB_UNAVAILABLE;
    }
    if (PQtransactionStatus(conn) != PQTRANS_IDLE) {
        snprintf(errmsg, errlen,
                 "auditing project %s: the connection is busy or inside a transaction", project);
        return DB_ERROR;
    }
    a.problems = json_array();
    if (a.problems == NULL) {
        snprintf(errmsg, errlen, "auditing project %s: out of memory", project);
        return DB_ERROR;
    }
    /* One snapshot for every statement: the revisions and configs are seen as of one moment,
     * whatever the materializer commits meanwhile. */
    rc =
        db_query(conn, "starting audit transaction",
                 "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY", 0, NULL, &res, errmsg, errlen);
    PQclear(res);
    if (rc != DB_OK) {
        goto err;
    }
    const char *p[] = {project};
    rc = db_query(conn, "auditing project", "SELECT 1 FROM projects WHERE id = $1", 1, p, &res,
                  errmsg, errlen);
    if (rc != DB_OK) {
        goto err_in_tx;
    }
    bool exists = PQntuples(res) == 1;
    PQclear(res);
    if (!exists) {
        snprintf(errmsg, errlen, "auditing project %s: no such project", project);
        rc = DB_NOT_FOUND;
        goto err_in_tx;
    }
    rc = check_chain(conn, &a, errmsg, errlen);
    if (rc != DB_OK) {
        goto err_in_tx;
    }
    rc = sql_check(conn, "checking config versions", VERSIONS_SQL, project, &versions, errmsg,
                   errlen);
    if (rc != DB_OK) {
        goto err_in_tx;
    }
    rc = sql_check(conn, "checking configs against the revisions", FOLD_SQL, project, &fold, errmsg,
                   errlen);
    if (rc != DB_OK) {
        goto err_in_tx;
    }
    /* Read-only: ending with ROLLBACK discards nothing and cannot fail in a way that matters. */
    db_rollback(conn);
    expected = expect_check(&a);
    if (!expect_none(expect) && expected == NULL) {
        a.oom = true;
    }

    json_t *lists[3] = {a.problems, json_object_get(versions, "problems"),
                        json_object_get(fold, "problems")};
    listed = merge_problems(lists);
    json_int_t total = (json_int_t)a.total +
                       json_integer_value(json_object_get(versions, "total")) +
                       json_integer_value(json_object_get(fold, "total"));
    char head[2 * REVISION_HASH_SIZE + 1];
    hex_of(a.head, REVISION_HASH_SIZE, head);
    json_t *keys = json_object_get(fold, "keys");
    *report = listed == NULL ? NULL
                             : json_pack("{s:s, s:I, s:I, s:b, s:o, s:I, s:O}", "project", project,
                                         "revisions_checked", (json_int_t)a.rows, "keys_checked",
                                         json_is_integer(keys) ? json_integer_value(keys) : 0, "ok",
                                         total == 0, "chain_head",
                                         a.rows > 0 ? json_string(head) : json_null(),
                                         "problems_total", total, "problems", listed);
    if (*report != NULL && expected != NULL &&
        json_object_set_new(*report, "expected", json_incref(expected)) != 0) {
        json_decref(*report);
        *report = NULL;
    }
    if (a.oom) {
        json_decref(*report);
        *report = NULL;
    }
    json_decref(expected);
    json_decref(listed);
    json_decref(versions);
    json_decref(fold);
    json_decref(a.problems);
    if (*report == NULL) {
        snprintf(errmsg, errlen, "auditing project %s: out of memory building the report", project);
        return DB_ERROR;
    }
    return DB_OK;

err_in_tx:
    db_rollback(conn);
err:
    json_decref(versions);
    json_decref(fold);
    json_decref(a.problems);
    return rc;
}
