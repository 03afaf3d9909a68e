/*
 * mat: the materializer's PostgreSQL side. It writes batches of revisions that Raft has
 * committed to `config_revisions`, folds them into `configs` and advances
 * `materializer_cursor`, all in one transaction, so that after any crash a new leader
 * resumes exactly after the cursor: no gap, no duplicate.
 *
 * Blocking; pool worker threads only. storage/ includes nothing from raft/, so this module
 * has its own row type, struct db_revision, which the glue above fills from the state
 * machine's struct revision.
 *
 * Concurrency: every batch locks the cursor row first (SELECT ... FOR UPDATE), so two
 * materializers (an old leader that has not yet noticed it lost, and the new one) take turns,
 * and the second one skips what the first wrote. Nothing else writes `configs`,
 * `config_revisions` or the cursor.
 */
#ifndef CONCLAVE_DB_REVISIONS_H
#define CONCLAVE_DB_REVISIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

/*
 * The columns of a `config_revisions` row, in the table's order: DB_REVISIONS_COLUMNS names
 * them for SQL and enum db_revisions_col numbers them (the same order), for
 * db_revisions_write_batch()'s insert and for the audit that reads the rows back (audit/audit.c). A
 * new column is added here, in both. Where a query carries created_at as a number it is
 * microseconds since 1970-01-01 UTC (DB_REVISIONS_COL_CREATED_US).
 */
#define DB_REVISIONS_COLUMNS                                                                       \
    "revision, project_id, key, version, op, content, source_version, schema_id, schema_hash,"     \
    " actor, request_id, created_at, raft_index, raft_term, prev_hash, hash"

enum db_revisions_col {
    DB_REVISIONS_COL_REVISION,
    DB_REVISIONS_COL_PROJECT,
    DB_REVISIONS_COL_KEY,
    DB_REVISIONS_COL_VERSION,
    DB_REVISIONS_COL_OP,
    DB_REVISIONS_COL_CONTENT,
    DB_REVISIONS_COL_SOURCE_VERSION,
    DB_REVISIONS_COL_SCHEMA_ID,
    DB_REVISIONS_COL_SCHEMA_HASH,
    DB_REVISIONS_COL_ACTOR,
    DB_REVISIONS_COL_REQUEST_ID,
    DB_REVISIONS_COL_CREATED_US,
    DB_REVISIONS_COL_RAFT_INDEX,
    DB_REVISIONS_COL_RAFT_TERM,
    DB_REVISIONS_COL_PREV_HASH,
    DB_REVISIONS_COL_HASH,
    DB_REVISIONS_NCOLS,
};

/*
 * One committed revision, as one `config_revisions` row. The struct only borrows its strings
 * and content: db_revisions_write_batch() copies what it needs into its query and keeps no pointer.
 * Strings are NUL-terminated UTF-8; integers must fit in a bigint (at most INT64_MAX).
 */
struct db_revision {
    uint64_t revision; /* cluster-wide revision number, >= 1, +1 per revision */
    const char *project;
    const char *key;
    uint64_t version; /* the config's version after this change, >= 1 */
    const char *op;   /* "put", "delete" or "rollback" */
    /* Canonical JSON text, NULL exactly for delete. Stored byte for byte in
     * config_revisions.content (json) and parsed into configs.content (jsonb). It must not
     * contain a NUL byte. */
    const char *content;
    size_t content_len;
    uint64_t source_version; /* rollback: the version restored; 0 means NULL */
    int has_schema;          /* schema_id and schema_hash are present together or not at all */
    uint8_t schema_id[16];   /* the uuid's 16 bytes in network order */
    uint8_t schema_hash[32];
    const char *actor;
    const char *request_id; /* NULL when absent */
    int64_t created_at_us;  /* the leader's timestamp, microseconds since 1970-01-01 UTC */
    uint64_t raft_index;
    uint64_t raft_term;
    uint8_t prev_hash[32];
    uint8_t hash[32];
};

/* Reads the cursor: the highest Raft index, and the revision, whose changes are in
 * PostgreSQL. Returns DB_OK with both filled; DB_UNAVAILABLE when the connection is lost (the
 * caller retries, on another connection); DB_ERROR otherwise (no cursor row, for instance
 * because the migrations are not applied), with ERRMSG saying why. On failure the outputs are
 * left unchanged. */
int db_revisions_read_cursor(PGconn *conn, uint64_t *raft_index, uint64_t *revision, char *errmsg,
                             size_t errlen);

/*
 * Writes REVS[0..N) (in Raft order: raft_index and revision strictly increasing) in one
 * transaction on CONN, which must not be inside a transaction:
 *
 *   - revisions with raft_index <= the cursor were written by an earlier batch (perhaps by an
 *     earlier leader) and are skipped, after checking that the stored row at that raft index
 *     has the same revision number and hash;
 *   - the others are inserted into `config_revisions`; the first must be the cursor's
 *     revision + 1 and the rest consecutive, and each config's versions must continue its
 *     `configs` row (version 1 when there is none) without a gap;
 *   - `configs` is set to the fold of each key's revisions: put and rollback store the
 *     content and schema, delete leaves a tombstone (deleted, content and schema NULL);
 *   - the cursor moves to the last raft_index and revision of the batch.
 *
 * The caller keeps ownership of REVS and everything it points to. On DB_OK, *CURSOR_OUT is
 * the cursor's raft index after the call (unchanged when every revision was already
 * written; the current cursor when N is 0), and the batch is committed. Otherwise nothing of
 * the batch is written, *CURSOR_OUT is untouched, ERRMSG says why, and the result is:
 *
 *   DB_UNAVAILABLE  the connection was lost or the server is shutting down. If it happened
 *                   during COMMIT the outcome is unknown; retrying the same batch on another
 *                   connection is always safe, because the retry skips what was committed.
 *   DB_ERROR        anything else, and retrying the same batch will fail the same way: a
 *                   batch out of order, a revision or version gap, a divergence (a stored
 *                   row with the same raft index but another hash), a config, project or
 *                   schema row that disagrees with the batch, or a value the schema refuses.
 *
 * A schema deleted after the leader validated a revision against it, but before the
 * revision is materialized, makes the batch fail with DB_ERROR ("schema ... no longer
 * exists"): configs.schema_id references config_schemas with ON DELETE RESTRICT, and the
 * materializer does not rewrite a committed revision. The API soft-deletes schemas (migration
 * 013), so only a row removed by hand in SQL does this; see the comment in db_revisions.c.
 */
int db_revisions_write_batch(PGconn *conn, const struct db_revision *revs, size_t n,
                             uint64_t *cursor_out, char *errmsg, size_t errlen);

/*
 * Reads one page of config_revisions in revision order: the rows with revision above
 * AFTER_REVISION, at most LIMIT (1..1000000). Calls VISIT(ARG, project, request_id) for each
 * row that has a request id (the strings are valid during the call only), sets *ROWS to the
 * number of rows read and *LAST_REVISION to the highest revision read (AFTER_REVISION when
 * none). Returns DB_OK, DB_UNAVAILABLE or DB_ERROR (with ERRMSG).
 */
int db_revisions_request_ids(PGconn *conn, uint64_t after_revision, int limit,
                             void (*visit)(void *arg, const char *project, const char *request_id),
                             void *arg, size_t *rows, uint64_t *last_revision, char *errmsg,
                             size_t errlen);

/* Flags of db_revisions_write_batch_ex(). */
#define DB_REVISIONS_DEFER_FLUSH 1u /* the usual batch may commit with synchronous_commit off */

/*
 * db_revisions_write_batch() with FLAGS. Its commits wait for the flush the server's
 * synchronous_commit asks for, but never less than 'on' (the local disk, and a synchronous
 * standby where one is configured), except that with DB_REVISIONS_DEFER_FLUSH a batch written
 * in one statement (the usual case, see db_revisions.c) commits without waiting for any
 * flush: its rows are visible at once but a crash of PostgreSQL before its WAL writer flushes
 * them (within 3 x wal_writer_delay) loses them. On DB_OK, *FLUSHED says whether this commit
 * waited for the flush, which also covers every earlier commit. Otherwise as
 * db_revisions_write_batch().
 */
int db_revisions_write_batch_ex(PGconn *conn, const struct db_revision *revs, size_t n,
                                unsigned flags, uint64_t *cursor_out, bool *flushed, char *errmsg,
                                size_t errlen);

/*
 * Makes every commit so far durable: one small synchronous transaction (it touches the cursor
 * row's updated_at), whose commit waits for the flush of all WAL before it, as
 * db_revisions_write_batch_ex()'s synchronous commits do. It waits for a batch holding the
 * cursor row lock. On DB_OK, *RAFT_INDEX and *REVISION are the cursor at that commit: every
 * revision up to it is durable. Returns DB_OK, DB_UNAVAILABLE or DB_ERROR (with ERRMSG).
 */
int db_revisions_flush(PGconn *conn, uint64_t *raft_index, uint64_t *revision, char *errmsg,
                       size_t errlen);

/*
 * PostgreSQL behind the cluster (docs/operations.md). A range of committed revisions that
 * PostgreSQL lost (an older backup restored, a failover to an asynchronous replica) after every
 * state machine had trimmed them from its queue: they exist nowhere but in the raft log's
 * history, so the materializer cannot write them. An operator accepts the loss with
 * `conclave admin accept-postgresql-loss`, which records the range in `postgresql_losses`
 * (migration 014); the leader's materializer then moves the cursor past it
 * (db_revisions_skip_loss()), so the writes after it can continue the chain. Nothing else
 * changes: the lost rows stay missing, and audit verify reports them.
 */
struct db_revisions_loss {
    uint64_t revision_from, revision_to;     /* the lost revisions, inclusive */
    uint64_t raft_index_from, raft_index_to; /* the raft indexes they were committed at */
};

/* Reads the accepted loss that starts at REVISION_FROM into *OUT and sets *FOUND; *FOUND is 0
 * when there is none. Returns DB_OK, DB_UNAVAILABLE or DB_ERROR (with ERRMSG). */
int db_revisions_find_loss(PGconn *conn, uint64_t revision_from, struct db_revisions_loss *out,
                           int *found, char *errmsg, size_t errlen);

/*
 * The materializer's side of an accepted loss: moves the cursor from just below LOSS to its
 * end (raft_index_to, revision_to) in one statement, but only while the cursor is still at
 * (raft_index_from - 1, revision_from - 1) and `postgresql_losses` holds exactly LOSS. Returns
 * DB_OK when the cursor moved, DB_REFUSED when either condition does not hold (nothing
 * changed; ERRMSG says which), DB_UNAVAILABLE or DB_ERROR.
 */
int db_revisions_skip_loss(PGconn *conn, const struct db_revisions_loss *loss, char *errmsg,
                           size_t errlen);

/*
 * The operator's side (conclave admin accept-postgresql-loss, owner credentials): records
 * LOSS with ACTOR and REASON in one transaction, under the cursor row lock, after checking
 * that it starts right after PostgreSQL's cursor and that config_revisions holds none of its
 * revisions or raft indexes. A loss recorded earlier for the same first revision is replaced
 * (a corrected range) as long as the cursor has not moved past it. Returns DB_OK; DB_REFUSED
 * with ERRMSG naming what to fix; DB_UNAVAILABLE or DB_ERROR.
 */
int db_revisions_accept_loss(PGconn *conn, const struct db_revisions_loss *loss, const char *actor,
                             const char *reason, char *errmsg, size_t errlen);

/*
 * Failpoint for the tests (docs/hacking.md): when MS > 0, every db_revisions_write_batch()
 * sleeps MS milliseconds right after it has locked the cursor row, inside its transaction, so
 * a test can freeze or cut off a leader while it holds the lock. The server sets it once at
 * start from CONCLAVE_FAILPOINT_MATERIALIZER_PAUSE_MS; 0 (the default) disables it. Thread-safe.
 */
void db_revisions_failpoint_pause(unsigned ms);

#endif /* CONCLAVE_DB_REVISIONS_H */
