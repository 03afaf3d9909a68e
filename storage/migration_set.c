#include "storage/migration_set.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Versions above this are refused: they would not survive a round trip through the bigint
 * column golang-migrate uses, and no sane project has more. */
#define MAX_VERSION 999999999999LL

static int ends_with(const char *s, size_t len, const char *suffix)
{
    size_t n = strlen(suffix);
    return len >= n && memcmp(s + len - n, suffix, n) == 0;
}

enum migration_set_name_kind migration_set_parse_name(const char *fname, long long *version,
                                                      const char **name, size_t *name_len)
{
    size_t len = strlen(fname);
    if (!ends_with(fname, len, ".sql")) {
        return MSET_NAME_OTHER;
    }
    enum migration_set_name_kind kind;
    size_t stem;
    if (ends_with(fname, len, ".up.sql")) {
        kind = MSET_NAME_UP;
        stem = len - strlen(".up.sql");
    } else if (ends_with(fname, len, ".down.sql")) {
        kind = MSET_NAME_DOWN;
        stem = len - strlen(".down.sql");
    } else {
        return MSET_NAME_BAD;
    }
    size_t digits = 0;
    long long v = 0;
    while (digits < stem && isdigit((unsigned char)fname[digits])) {
        if (v > MAX_VERSION / 10) {
            return MSET_NAME_BAD;
        }
        v = v * 10 + (fname[digits] - '0');
        digits++;
    }
    /* NNN, then '_', then a non-empty name. */
    if (digits == 0 || v < 1 || v > MAX_VERSION || digits + 1 >= stem || fname[digits] != '_') {
        return MSET_NAME_BAD;
    }
    for (size_t i = digits + 1; i < stem; i++) {
        unsigned char c = (unsigned char)fname[i];
        if (!(isalnum(c) || c == '_' || c == '-')) {
            return MSET_NAME_BAD;
        }
    }
    *version = v;
    *name = fname + digits + 1;
    *name_len = stem - digits - 1;
    return kind;
}

void migration_set_free(struct mset *set)
{
    for (size_t i = 0; i < set->count; i++) {
        free(set->items[i].name);
        free(set->items[i].up_path);
        free(set->items[i].down_path);
    }
    free(set->items);
    free(set->dir);
    memset(set, 0, sizeof(*set));
}

static char *join_path(const char *dir, const char *fname)
{
    size_t n = strlen(dir) + 1 + strlen(fname) + 1;
    char *p = malloc(n);
    if (p != NULL) {
        snprintf(p, n, "%s/%s", dir, fname);
    }
    return p;
}

/* Finds or appends the entry for VERSION. Returns NULL when out of memory. */
static struct migration_set_migration *entry_for(struct mset *set, size_t *cap, long long version)
{
    for (size_t i = 0; i < set->count; i++) {
        if (set->items[i].version == version) {
            return &set->items[i];
        }
    }
    if (set->count == *cap) {
        size_t ncap = *cap ? *cap * 2 : 16;
        struct migration_set_migration *n = realloc(set->items, ncap * sizeof(*n));
        if (n == NULL) {
            return NULL;
        }
        set->items = n;
        *cap = ncap;
    }
    struct migration_set_migration *m = &set->items[set->count++];
    memset(m, 0, sizeof(*m));
    m->version = version;
    return m;
}

static int by_version(const void *a, const void *b)
{
    long long va = ((const struct migration_set_migration *)a)->version;
    long long vb = ((const struct migration_set_migration *)b)->version;
    return (va > vb) - (va < vb);
}

/* Records one parsed file in SET. Returns 0, or -1 with ERRMSG. */
static int add_file(struct mset *set, size_t *cap, const char *fname,
                    enum migration_set_name_kind kind, long long version, const char *name,
                    size_t name_len, char *errmsg, size_t errlen)
{
    struct migration_set_migration *m = entry_for(set, cap, version);
    if (m == NULL) {
        snprintf(errmsg, errlen, "out of memory reading migrations");
        return -1;
    }
    char **slot = kind == MSET_NAME_UP ? &m->up_path : &m->down_path;
    if (*slot != NULL) {
        snprintf(errmsg, errlen, "%s/%s: a second %s migration for version %lld (first: %s)",
                 set->dir, fname, kind == MSET_NAME_UP ? "up" : "down", version, *slot);
        return -1;
    }
    if (m->name == NULL) {
        m->name = strndup(name, name_len);
        if (m->name == NULL) {
            snprintf(errmsg, errlen, "out of memory reading migrations");
            return -1;
        }
    } else if (strlen(m->name) != name_len || memcmp(m->name, name, name_len) != 0) {
        snprintf(errmsg, errlen,
                 "%s/%s: version %lld is named \"%s\" by its other file; both files of a "
                 "migration must share the name",
                 set->dir, fname, version, m->name);
        return -1;
    }
    *slot = join_path(set->dir, fname);
    if (*slot == NULL) {
        snprintf(errmsg, errlen, "out of memory reading migrations");
        return -1;
    }
    return 0;
}

int migration_set_load(const char *dir, struct mset *out, char *errmsg, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    size_t cap = 0;
    DIR *d = opendir(dir);
    if (d == NULL) {
        snprintf(errmsg, errlen, "cannot open migrations directory %s: %s", dir, strerror(errno));
        return -1;
    }
    out->dir = strdup(dir);
    if (out->dir == NULL) {
        snprintf(errmsg, errlen, "out of memory reading migrations");
        goto err;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        long long version = 0;
        const char *name = NULL;
        size_t name_len = 0;
        enum migration_set_name_kind kind =
            migration_set_parse_name(e->d_name, &version, &name, &name_len);
        if (kind == MSET_NAME_OTHER) {
            continue;
        }
        if (kind == MSET_NAME_BAD) {
            snprintf(errmsg, errlen,
                     "%s/%s: not a migration name; expected NNN_name.up.sql or "
                     "NNN_name.down.sql with NNN >= 1",
                     dir, e->d_name);
            goto err;
        }
        if (add_file(out, &cap, e->d_name, kind, version, name, name_len, errmsg, errlen) != 0) {
            goto err;
        }
    }
    closedir(d);
    d = NULL;
    if (out->count > 1) {
        qsort(out->items, out->count, sizeof(out->items[0]), by_version);
    }
    for (size_t i = 0; i < out->count; i++) {
        struct migration_set_migration *m = &out->items[i];
        if (m->up_path == NULL || m->down_path == NULL) {
            /* Name the missing file after the present one, keeping its zero padding. */
            const char *have = m->up_path != NULL ? m->up_path : m->down_path;
            const char *base = strrchr(have, '/') + 1;
            int stem = (int)(strstr(base, m->up_path != NULL ? ".up.sql" : ".down.sql") - base);
            snprintf(errmsg, errlen, "%s: migration %.*s has no %s file; add %.*s.%s.sql", dir,
                     stem, base, m->up_path == NULL ? "up" : "down", stem, base,
                     m->up_path == NULL ? "up" : "down");
            goto err;
        }
    }
    return 0;

err:
    if (d != NULL) {
        closedir(d);
    }
    migration_set_free(out);
    return -1;
}

long migration_set_index_of(const struct mset *set, long long version)
{
    for (size_t i = 0; i < set->count; i++) {
        if (set->items[i].version == version) {
            return (long)i;
        }
    }
    return -1;
}

int migration_set_read_file(const char *path, char **out, char *errmsg, size_t errlen)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        snprintf(errmsg, errlen, "cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    if (buf == NULL) {
        goto err_oom;
    }
    for (;;) {
        if (cap - len < 2) {
            char *n = realloc(buf, cap * 2);
            if (n == NULL) {
                goto err_oom;
            }
            buf = n;
            cap *= 2;
        }
        size_t got = fread(buf + len, 1, cap - len - 1, f);
        len += got;
        if (got == 0) {
            break;
        }
    }
    if (ferror(f)) {
        snprintf(errmsg, errlen, "cannot read %s: %s", path, strerror(errno));
        free(buf);
        fclose(f);
        return -1;
    }
    if (memchr(buf, '\0', len) != NULL) {
        snprintf(errmsg, errlen, "%s holds a NUL byte; a migration must be SQL text", path);
        free(buf);
        fclose(f);
        return -1;
    }
    buf[len] = '\0';
    fclose(f);
    *out = buf;
    return 0;

err_oom:
    free(buf);
    fclose(f);
    snprintf(errmsg, errlen, "out of memory reading %s", path);
    return -1;
}

int migration_set_name_ok(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > 100 || !islower((unsigned char)name[0])) {
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        if (!(islower(c) || isdigit(c) || c == '_')) {
            return 0;
        }
    }
    return 1;
}

/* Creates PATH exclusively and writes TEXT to it. */
static int write_new_file(const char *path, const char *text, char *errmsg, size_t errlen)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) {
        snprintf(errmsg, errlen, "cannot create %s: %s", path, strerror(errno));
        return -1;
    }
    size_t len = strlen(text), off = 0;
    while (off < len) {
        ssize_t w = write(fd, text + off, len - off);
        if (w < 0) {
            if (errno == EINTR) {
                continue;
            }
            snprintf(errmsg, errlen, "cannot write %s: %s", path, strerror(errno));
            close(fd);
            unlink(path);
            return -1;
        }
        off += (size_t)w;
    }
    if (close(fd) != 0) {
        snprintf(errmsg, errlen, "cannot write %s: %s", path, strerror(errno));
        unlink(path);
        return -1;
    }
    return 0;
}

int migration_set_create(const char *dir, const char *name, char **up_path, char **down_path,
                         char *errmsg, size_t errlen)
{
    if (!migration_set_name_ok(name)) {
        snprintf(errmsg, errlen,
                 "migration name \"%s\" is not valid; use 1 to 100 characters from a-z, 0-9 "
                 "and _, starting with a letter",
                 name);
        return -1;
    }
    struct mset set;
    if (migration_set_load(dir, &set, errmsg, errlen) != 0) {
        return -1;
    }
    long long next = set.count ? set.items[set.count - 1].version + 1 : 1;
    migration_set_free(&set);

    char fname[160], up[4096], down[4096], text[512];
    snprintf(fname, sizeof(fname), "%03lld_%s.up.sql", next, name);
    snprintf(up, sizeof(up), "%s/%s", dir, fname);
    snprintf(down, sizeof(down), "%s/%03lld_%s.down.sql", dir, next, name);

    snprintf(text, sizeof(text),
             "-- Migration %03lld: %s (up).\n"
             "-- Runs in one transaction with the version bump; do not add BEGIN or COMMIT.\n",
             next, name);
    if (write_new_file(up, text, errmsg, errlen) != 0) {
        return -1;
    }
    snprintf(text, sizeof(text),
             "-- Migration %03lld: %s (down). Must undo everything the up file does.\n"
             "-- Runs in one transaction with the version change; do not add BEGIN or COMMIT.\n",
             next, name);
    if (write_new_file(down, text, errmsg, errlen) != 0) {
        unlink(up);
        return -1;
    }
    if (up_path != NULL) {
        *up_path = strdup(up);
    }
    if (down_path != NULL) {
        *down_path = strdup(down);
    }
    return 0;
}
