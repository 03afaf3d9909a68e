#include "audit/auditlog.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "jsonschema/canonjson.h"
#include "raft/revision.h"

struct alog {
    char *project;
    json_t *fold; /* key -> {"version", "deleted", "content", "schema_id", ...}; owned */
    uint64_t revisions;
    uint64_t last_revision;
    uint64_t last_raft_index;
    uint8_t last_hash[REVISION_HASH_SIZE]; /* zeros before the first revision: the genesis */
    char head_hex[2 * REVISION_HASH_SIZE + 1];
    bool broken;
    struct auditlog_problem first; /* the problem that broke the checker, repeated afterwards */
};

struct alog *auditlog_new(const char *project)
{
    if (sodium_init() < 0) {
        return NULL;
    }
    struct alog *a = calloc(1, sizeof(*a));
    if (a == NULL) {
        return NULL;
    }
    a->project = strdup(project);
    a->fold = json_object();
    if (a->project == NULL || a->fold == NULL) {
        auditlog_free(a);
        return NULL;
    }
    return a;
}

void auditlog_free(struct alog *a)
{
    if (a == NULL) {
        return;
    }
    json_decref(a->fold);
    free(a->project);
    free(a);
}

uint64_t auditlog_revisions(const struct alog *a)
{
    return a->revisions;
}

uint64_t auditlog_keys(const struct alog *a)
{
    return json_object_size(a->fold);
}

uint64_t auditlog_last_revision(const struct alog *a)
{
    return a->last_revision;
}

const char *auditlog_chain_head(const struct alog *a)
{
    return a->head_hex;
}

static int problem(struct alog *a, struct auditlog_problem *p, uint64_t revision, const char *key,
                   const char *fmt, ...)
{
    va_list ap;
    memset(p, 0, sizeof(*p));
    p->revision = revision;
    snprintf(p->key, sizeof(p->key), "%s", key != NULL ? key : "");
    va_start(ap, fmt);
    vsnprintf(p->text, sizeof(p->text), fmt, ap);
    va_end(ap);
    if (a != NULL) {
        a->broken = true;
        a->first = *p;
    }
    return ALOG_PROBLEM;
}

/* ---- reading one revision object ---------------------------------------------------------- */

/* A member that must be a whole number >= MIN. */
static bool get_u64(const json_t *rev, const char *name, uint64_t min, uint64_t *out)
{
    const json_t *v = json_object_get(rev, name);
    if (!json_is_integer(v) || json_integer_value(v) < 0 || (uint64_t)json_integer_value(v) < min) {
        return false;
    }
    *out = (uint64_t)json_integer_value(v);
    return true;
}

/* A member that must be a string without NUL bytes; NULL_OK lets it be null (*OUT NULL). */
static bool get_str(const json_t *rev, const char *name, bool null_ok, const char **out)
{
    const json_t *v = json_object_get(rev, name);
    *out = NULL;
    if (null_ok && json_is_null(v)) {
        return true;
    }
    if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v)) {
        return false;
    }
    *out = json_string_value(v);
    return true;
}

static bool get_hex(const json_t *rev, const char *name, uint8_t *out, size_t n)
{
    const char *hex;
    size_t len = 0;
    if (!get_str(rev, name, false, &hex) || strlen(hex) != 2 * n) {
        return false;
    }
    return sodium_hex2bin(out, n, hex, 2 * n, NULL, &len, NULL) == 0 && len == n;
}

static bool parse_uuid(const char *text, uint8_t out[16])
{
    char hex[33];
    size_t n = 0, len = 0;
    if (strlen(text) != 36) {
        return false;
    }
    for (size_t i = 0; i < 36; i++) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash != (text[i] == '-')) {
            return false;
        }
        if (!dash) {
            hex[n++] = text[i];
        }
    }
    hex[n] = '\0';
    return sodium_hex2bin(out, 16, hex, 32, NULL, &len, NULL) == 0 && len == 16;
}

int auditlog_parse_time(const char *text, int64_t *out_us)
{
    struct tm tm = {0};
    int frac_digits = 0;
    int64_t frac = 0;
    const char *p = text;
    int n = 0;
    if (sscanf(p, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
               &tm.tm_min, &tm.tm_sec, &n) != 6 ||
        n != 19) {
        return -1;
    }
    p += n;
    if (*p == '.') {
        p++;
        while (isdigit((unsigned char)*p)) {
            if (frac_digits == 6) {
                return -1;
            }
            frac = frac * 10 + (*p++ - '0');
            frac_digits++;
        }
        if (frac_digits == 0) {
            return -1;
        }
    }
    for (; frac_digits < 6; frac_digits++) {
        frac *= 10;
    }
    int64_t offset_s = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int hh = 0, mm = 0, m = 0;
        if (sscanf(p + 1, "%2d:%2d%n", &hh, &mm, &m) != 2 || m != 5 || hh > 23 || mm > 59) {
            return -1;
        }
        offset_s = (*p == '+' ? 1 : -1) * (int64_t)(hh * 3600 + mm * 60);
        p += 6;
    } else {
        return -1;
    }
    if (*p != '\0' || tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 || tm.tm_mday > 31 ||
        tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > 60) {
        return -1;
    }
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    time_t secs = timegm(&tm);
    *out_us = ((int64_t)secs - offset_s) * 1000000 + frac;
    return 0;
}

/*
 * Fills R (borrowing REV's strings; content is a new canonical text R owns) from REV. Returns
 * NULL, or the name of the first member that is missing or malformed.
 */
static const char *read_revision(const json_t *rev, const char *project, struct revision *r,
                                 char **content_buf)
{
    const char *op, *s;
    *content_buf = NULL;
    memset(r, 0, sizeof(*r));
    r->project = (char *)project;
    if (!json_is_object(rev)) {
        return "(the revision is not a JSON object)";
    }
    if (!get_u64(rev, "revision", 1, &r->revision)) {
        return "revision";
    }
    if (!get_str(rev, "key", false, &s) || s[0] == '\0') {
        return "key";
    }
    r->key = (char *)s;
    if (!get_u64(rev, "version", 1, &r->version)) {
        return "version";
    }
    if (!get_str(rev, "op", false, &op)) {
        return "op";
    }
    if (strcmp(op, "put") == 0) {
        r->op = REVISION_PUT;
    } else if (strcmp(op, "delete") == 0) {
        r->op = REVISION_DELETE;
    } else if (strcmp(op, "rollback") == 0) {
        r->op = REVISION_ROLLBACK;
    } else {
        return "op";
    }
    const json_t *content = json_object_get(rev, "content");
    if (r->op == REVISION_DELETE) {
        if (content != NULL && !json_is_null(content)) {
            return "content (a delete has none)";
        }
    } else {
        char err[256];
        size_t len = 0;
        if (content == NULL || canonjson_dump(content, content_buf, &len, err, sizeof(err)) != 0) {
            return "content";
        }
        r->content = (uint8_t *)*content_buf;
        r->content_len = len;
    }
    const json_t *sv = json_object_get(rev, "source_version");
    if (r->op == REVISION_ROLLBACK) {
        if (!get_u64(rev, "source_version", 1, &r->source_version)) {
            return "source_version";
        }
    } else if (sv != NULL && !json_is_null(sv)) {
        return "source_version (only a rollback has one)";
    }
    const char *schema_id, *schema_hash;
    if (!get_str(rev, "schema_id", true, &schema_id) ||
        (schema_id != NULL && !parse_uuid(schema_id, r->schema_id))) {
        return "schema_id";
    }
    if (!get_str(rev, "schema_hash", true, &schema_hash) ||
        (schema_id == NULL) != (schema_hash == NULL) ||
        (schema_hash != NULL && !get_hex(rev, "schema_hash", r->schema_hash, 32))) {
        return "schema_hash";
    }
    r->has_schema = schema_id != NULL;
    if (!get_str(rev, "actor", false, &s)) {
        return "actor";
    }
    r->actor = (char *)s;
    if (!get_str(rev, "request_id", true, &s) || (s != NULL && s[0] == '\0')) {
        return "request_id";
    }
    r->request_id = (char *)s;
    if (!get_str(rev, "created_at", false, &s) || auditlog_parse_time(s, &r->created_at) != 0) {
        return "created_at";
    }
    if (!get_u64(rev, "raft_index", 1, &r->raft_index)) {
        return "raft_index";
    }
    if (!get_u64(rev, "raft_term", 1, &r->raft_term)) {
        return "raft_term";
    }
    if (!get_hex(rev, "prev_hash", r->prev_hash, REVISION_HASH_SIZE)) {
        return "prev_hash";
    }
    if (!get_hex(rev, "hash", r->hash, REVISION_HASH_SIZE)) {
        return "hash";
    }
    return NULL;
}

/* ---- checking and folding ------------------------------------------------------------------ */

static int check_versions(struct alog *a, const struct revision *r, json_t *prev,
                          struct auditlog_problem *p)
{
    uint64_t last = prev ? (uint64_t)json_integer_value(json_object_get(prev, "version")) : 0;
    bool deleted = prev ? json_is_true(json_object_get(prev, "deleted")) : true;
    if (r->version != last + 1) {
        if (r->version <= last) {
            return problem(
                a, p, r->revision, r->key, "%s: key %s is at version %" PRIu64 " already",
                r->version == last ? "duplicate version" : "versions go backwards", r->key, last);
        }
        return problem(a, p, r->revision, r->key,
                       "version gap: key %s goes from version %" PRIu64 " to %" PRIu64
                       "; versions %" PRIu64 " to %" PRIu64 " are missing",
                       r->key, last, r->version, last + 1, r->version - 1);
    }
    if (r->op == REVISION_DELETE && deleted) {
        return problem(a, p, r->revision, r->key, "delete of key %s, which is not live", r->key);
    }
    if (r->op == REVISION_ROLLBACK && r->source_version >= r->version) {
        return problem(a, p, r->revision, r->key,
                       "rollback of key %s to version %" PRIu64
                       ", which is not earlier than %" PRIu64,
                       r->key, r->source_version, r->version);
    }
    return ALOG_OK;
}

static int fold_in(struct alog *a, const struct revision *r, const json_t *rev)
{
    json_t *entry = json_pack(
        "{s:s,s:I,s:b,s:O,s:O,s:I,s:O,s:O}", "key", r->key, "version", (json_int_t)r->version,
        "deleted", r->op == REVISION_DELETE, "content",
        r->op == REVISION_DELETE ? json_null() : json_object_get(rev, "content"), "schema_id",
        json_object_get(rev, "schema_id"), "revision", (json_int_t)r->revision, "updated_by",
        json_object_get(rev, "actor"), "updated_at", json_object_get(rev, "created_at"));
    if (entry == NULL || json_object_set_new(a->fold, r->key, entry) != 0) {
        return ALOG_NOMEM;
    }
    return ALOG_OK;
}

int auditlog_feed(struct alog *a, const json_t *rev, struct auditlog_problem *p)
{
    if (a->broken) {
        *p = a->first;
        return ALOG_PROBLEM;
    }
    struct revision r;
    char *content = NULL;
    uint64_t number = 0;
    const char *bad = read_revision(rev, a->project, &r, &content);
    int rc = ALOG_OK;
    if (bad != NULL) {
        get_u64(rev, "revision", 0, &number);
        const char *key = NULL;
        get_str(rev, "key", false, &key);
        rc = problem(a, p, number, key,
                     "unreadable revision: member \"%s\" is missing or malformed", bad);
        goto out;
    }
    char stored[2 * REVISION_HASH_SIZE + 1], computed[2 * REVISION_HASH_SIZE + 1];
    if (a->revisions > 0 && r.revision <= a->last_revision) {
        rc = problem(a, p, r.revision, r.key,
                     "out of order: revision %" PRIu64 " comes after revision %" PRIu64, r.revision,
                     a->last_revision);
        goto out;
    }
    if (memcmp(r.prev_hash, a->last_hash, REVISION_HASH_SIZE) != 0) {
        sodium_bin2hex(stored, sizeof(stored), r.prev_hash, REVISION_HASH_SIZE);
        sodium_bin2hex(computed, sizeof(computed), a->last_hash, REVISION_HASH_SIZE);
        rc = problem(a, p, r.revision, r.key,
                     "prev_hash mismatch: it is %s, but the %s is %s (a revision before it is "
                     "missing, re-ordered or altered)",
                     stored, a->revisions == 0 ? "genesis" : "previous revision's hash", computed);
        goto out;
    }
    uint8_t h[REVISION_HASH_SIZE];
    revision_compute_hash(&r, h);
    if (memcmp(h, r.hash, REVISION_HASH_SIZE) != 0) {
        sodium_bin2hex(stored, sizeof(stored), r.hash, REVISION_HASH_SIZE);
        sodium_bin2hex(computed, sizeof(computed), h, REVISION_HASH_SIZE);
        rc = problem(a, p, r.revision, r.key,
                     "hash mismatch: stored %s, computed %s (the revision's columns were altered)",
                     stored, computed);
        goto out;
    }
    if (a->revisions > 0 && r.raft_index <= a->last_raft_index) {
        rc = problem(a, p, r.revision, r.key,
                     "raft index %" PRIu64 " is not above the previous revision's %" PRIu64,
                     r.raft_index, a->last_raft_index);
        goto out;
    }
    rc = check_versions(a, &r, json_object_get(a->fold, r.key), p);
    if (rc != ALOG_OK) {
        goto out;
    }
    rc = fold_in(a, &r, rev);
    if (rc != ALOG_OK) {
        goto out;
    }
    a->revisions++;
    a->last_revision = r.revision;
    a->last_raft_index = r.raft_index;
    memcpy(a->last_hash, r.hash, REVISION_HASH_SIZE);
    sodium_bin2hex(a->head_hex, sizeof(a->head_hex), r.hash, REVISION_HASH_SIZE);
out:
    free(content);
    return rc;
}

json_t *auditlog_fold(const struct alog *a)
{
    json_t *out = json_object();
    const char *key;
    json_t *entry;
    if (out == NULL) {
        return NULL;
    }
    json_object_foreach(a->fold, key, entry)
    {
        if (json_is_true(json_object_get(entry, "deleted"))) {
            continue;
        }
        json_t *copy = json_deep_copy(entry);
        if (copy == NULL || json_object_del(copy, "deleted") != 0 ||
            json_object_set_new(out, key, copy) != 0) {
            json_decref(out);
            return NULL;
        }
    }
    return out;
}

int auditlog_compare_live(const struct alog *a, const json_t *live, struct auditlog_problem *p)
{
    static const char *const members[] = {"version", "content", "schema_id", "revision",
                                          "updated_by"};
    size_t i, live_count = 0;
    const json_t *item;
    json_array_foreach(live, i, item)
    {
        const char *key = json_string_value(json_object_get(item, "key"));
        const json_t *f = key ? json_object_get(a->fold, key) : NULL;
        if (key == NULL) {
            return problem(NULL, p, 0, NULL, "fold mismatch: a live config has no key");
        }
        if (f == NULL || json_is_true(json_object_get(f, "deleted"))) {
            return problem(NULL, p, 0, key,
                           "fold mismatch: config %s is live at version %" PRIu64
                           ", but no revision %s it",
                           key, (uint64_t)json_integer_value(json_object_get(item, "version")),
                           f == NULL ? "creates" : "recreates");
        }
        live_count++;
        for (size_t m = 0; m < sizeof(members) / sizeof(members[0]); m++) {
            const json_t *want = json_object_get(f, members[m]),
                         *got = json_object_get(item, members[m]);
            if (got == NULL || !json_equal(want, got)) {
                char *w = json_dumps(want, JSON_ENCODE_ANY | JSON_COMPACT);
                char *g = got ? json_dumps(got, JSON_ENCODE_ANY | JSON_COMPACT) : NULL;
                problem(NULL, p, (uint64_t)json_integer_value(json_object_get(f, "revision")), key,
                        "fold mismatch: config %s has %s %.150s, but its revisions give %.150s",
                        key, members[m], g ? g : "(nothing)", w ? w : "(out of memory)");
                free(w);
                free(g);
                return ALOG_PROBLEM;
            }
        }
    }
    const char *key;
    const json_t *f;
    size_t live_in_fold = 0;
    json_object_foreach((json_t *)a->fold, key, f)
    {
        if (!json_is_true(json_object_get(f, "deleted"))) {
            live_in_fold++;
        }
    }
    if (live_in_fold != live_count) {
        /* Some key the revisions leave live is not in LIVE: name the first one. */
        json_object_foreach((json_t *)a->fold, key, f)
        {
            bool found = false;
            if (json_is_true(json_object_get(f, "deleted"))) {
                continue;
            }
            json_array_foreach(live, i, item)
            {
                const char *k = json_string_value(json_object_get(item, "key"));
                if (k != NULL && strcmp(k, key) == 0) {
                    found = true;
                    break;
                }
            }
            if (!found) {
                return problem(NULL, p,
                               (uint64_t)json_integer_value(json_object_get(f, "revision")), key,
                               "fold mismatch: revisions leave config %s live at version %" PRIu64
                               ", but it is missing from the configs",
                               key, (uint64_t)json_integer_value(json_object_get(f, "version")));
            }
        }
        return problem(NULL, p, 0, NULL, "fold mismatch: a config is listed twice");
    }
    return ALOG_OK;
}
