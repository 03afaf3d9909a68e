/*
 * migrate: applies and reverts migrations on PostgreSQL.
 *
 * The state lives in golang-migrate's table, schema_migrations(version bigint primary key,
 * dirty boolean), which holds at most one row: the version of the last migration applied, or
 * no row when none is. Every operation runs under one session-level advisory lock
 * (MIGRATE_LOCK_KEY), so two processes migrating at once take turns and each migration is
 * applied exactly once.
 *
 * Each migration runs in its own transaction together with the change of the version row, so
 * the schema and the recorded version can never disagree. When a migration fails its
 * transaction rolls back (the schema is as it was) and, in a second transaction, the version of
 * the failed migration is recorded as dirty. A dirty database refuses up and down until an
 * operator has looked at it and run `force`.
 */
#ifndef CONCLAVE_MIGRATE_H
#define CONCLAVE_MIGRATE_H

#include <stdbool.h>
#include <stddef.h>

#include <libpq-fe.h>

#include "storage/migration_set.h"

/* pg_advisory_lock key: the bytes of "conclave" read as a big-endian integer. */
#define MIGRATE_LOCK_KEY 7165064476440098405LL

/* How long to wait for another process's migration before giving up. */
#define MIGRATE_LOCK_TIMEOUT_MS 120000

struct migrate_state {
    long long version; /* 0 when no migration is applied */
    bool dirty;
};

/* Receives one progress line per migration applied or reverted ("applied 001_create_users"). */
typedef void (*migrate_log_fn)(void *data, const char *line);

struct migrate_ctx {
    PGconn *conn;           /* borrowed; must be idle (no transaction open) */
    const struct mset *set; /* borrowed */
    migrate_log_fn log;     /* may be NULL */
    void *log_data;
};

/* Reads the current state, creating schema_migrations if it does not exist. */
int migrate_version(struct migrate_ctx *ctx, struct migrate_state *out, char *errmsg,
                    size_t errlen);

/* Applies the next STEPS pending migrations, or all of them when STEPS is 0. *APPLIED (may be
 * NULL) receives how many were applied, also on failure. Refuses a dirty database, and a
 * database whose version has no file in the set. */
int migrate_up(struct migrate_ctx *ctx, long long steps, long long *applied, char *errmsg,
               size_t errlen);

/* Reverts the last STEPS applied migrations, or all of them when STEPS is 0. *REVERTED (may
 * be NULL) receives how many were reverted. Same refusals as migrate_up(). */
int migrate_down(struct migrate_ctx *ctx, long long steps, long long *reverted, char *errmsg,
                 size_t errlen);

/* Records VERSION as applied and clean without running anything: the way out of a dirty
 * state once an operator has repaired the schema by hand. VERSION is 0 (none applied) or a
 * version of the set. */
int migrate_force(struct migrate_ctx *ctx, long long version, char *errmsg, size_t errlen);

#endif /* CONCLAVE_MIGRATE_H */
