/*
 * mset: the migrations directory, as files on disk.
 *
 * A migration is a pair `NNN_name.up.sql` / `NNN_name.down.sql` (the golang-migrate naming
 * convention). This module finds and checks the pairs and writes new ones; it never talks to
 * PostgreSQL (that is migrate.c).
 */
#ifndef CONCLAVE_MIGRATION_SET_H
#define CONCLAVE_MIGRATION_SET_H

#include <stddef.h>

struct migration_set_migration {
    long long version; /* the NNN prefix, >= 1 */
    char *name;        /* the part between the prefix and ".up.sql"; owned */
    char *up_path;     /* full path of the .up.sql file; owned */
    char *down_path;   /* full path of the .down.sql file; owned */
};

struct mset {
    char *dir;                             /* owned copy of the directory */
    struct migration_set_migration *items; /* ascending by version; owned */
    size_t count;
};

/* What migration_set_parse_name() found in a file name. */
enum migration_set_name_kind {
    MSET_NAME_OTHER = 0, /* not a .sql file: not a migration, ignored */
    MSET_NAME_UP = 1,    /* NNN_name.up.sql */
    MSET_NAME_DOWN = 2,  /* NNN_name.down.sql */
    MSET_NAME_BAD = -1,  /* a .sql file that breaks the naming convention */
};

/* Classifies the file name FNAME (no directory part). For UP and DOWN, stores the version in
 * *VERSION and the name part's start and length in *NAME and *NAME_LEN (pointing into FNAME). */
enum migration_set_name_kind migration_set_parse_name(const char *fname, long long *version,
                                                      const char **name, size_t *name_len);

/* Reads DIR and fills OUT with every migration, sorted by version. Refuses a .sql file that
 * breaks the convention, an up without its down (or the reverse), two files for the same
 * version and direction, and an up and a down of one version with different names: each error
 * names the file. On success the caller owns OUT and releases it with migration_set_free(); on
 * failure OUT is left empty (safe to free) and ERRMSG says what is wrong. */
int migration_set_load(const char *dir, struct mset *out, char *errmsg, size_t errlen);

/* Releases what SET owns and leaves it empty. */
void migration_set_free(struct mset *set);

/* Returns the position of VERSION in SET, or -1 when SET has no such migration. */
long migration_set_index_of(const struct mset *set, long long version);

/* Reads the whole file at PATH into a new NUL-terminated buffer. On success the caller owns
 * *OUT (free with free()); on failure *OUT is NULL and ERRMSG names the path and the cause. */
int migration_set_read_file(const char *path, char **out, char *errmsg, size_t errlen);

/* Returns non-zero when NAME is acceptable for a new migration: 1 to 100 characters from
 * [a-z0-9_], starting with a letter. */
int migration_set_name_ok(const char *name);

/* Writes the next pair in DIR: version one above the highest present, zero-padded to at least
 * three digits, with a comment header. Files are created with O_EXCL, so a concurrent create
 * fails instead of overwriting. On success returns 0 and, when UP_PATH/DOWN_PATH are not NULL,
 * stores the new paths there (caller frees). On failure nothing is left behind. */
int migration_set_create(const char *dir, const char *name, char **up_path, char **down_path,
                         char *errmsg, size_t errlen);

#endif /* CONCLAVE_MIGRATION_SET_H */
