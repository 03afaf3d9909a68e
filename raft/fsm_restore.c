/*
 * Restoring a snapshot: every byte checked, every cross-reference verified, into a fresh
 * state that replaces the old one only when all of it was read.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "raft/bytes.h"
#include "raft/fsm_internal.h"

/* ---- restore ---- */

/* A bounds-checked cursor over the snapshot body with a sticky error: after the first
 * failure every read returns zeros and the first message is kept. Invariant: off <= len. */
struct reader {
    const uint8_t *p;
    size_t len;
    size_t off;
    int failed;
    char *errmsg;
    size_t errlen;
    unsigned version; /* the snapshot's format version */
};

static void rd_error(struct reader *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void rd_error(struct reader *r, const char *fmt, ...)
{
    if (r->failed) {
        return;
    }
    r->failed = 1;
    if (r->errmsg != NULL && r->errlen > 0) {
        int n = snprintf(r->errmsg, r->errlen, "snapshot: ");
        if (n > 0 && (size_t)n < r->errlen) {
            va_list ap;
            va_start(ap, fmt);
            vsnprintf(r->errmsg + n, r->errlen - (size_t)n, fmt, ap);
            va_end(ap);
        }
    }
}

static const uint8_t *rd_take(struct reader *r, size_t n, const char *what)
{
    if (r->failed) {
        return NULL;
    }
    if (r->len - r->off < n) {
        rd_error(r, "body ends inside %s at offset %zu", what, r->off);
        return NULL;
    }
    const uint8_t *p = r->p + r->off;
    r->off += n;
    return p;
}

static uint64_t rd_u64(struct reader *r, const char *what)
{
    const uint8_t *p = rd_take(r, 8, what);
    return p != NULL ? bytes_get_le64(p) : 0;
}

static unsigned rd_u8(struct reader *r, const char *what)
{
    const uint8_t *p = rd_take(r, 1, what);
    return p != NULL ? p[0] : 0;
}

static void rd_fixed(struct reader *r, uint8_t *out, size_t n, const char *what)
{
    const uint8_t *p = rd_take(r, n, what);
    if (p != NULL) {
        memcpy(out, p, n);
    } else {
        memset(out, 0, n);
    }
}

/* A u32 length (at most MAX) and the bytes. Returns NULL after a failure. */
static const char *rd_str(struct reader *r, size_t *len, size_t max, const char *what)
{
    *len = 0;
    const uint8_t *p = rd_take(r, 4, what);
    if (p == NULL) {
        return NULL;
    }
    size_t n = bytes_get_le32(p);
    if (n > max) {
        rd_error(r, "%s length %zu is above the maximum %zu", what, n, max);
        return NULL;
    }
    const uint8_t *s = rd_take(r, n, what);
    if (s != NULL) {
        *len = n;
    }
    return (const char *)s;
}

/* A 0/1 flag byte. */
static int rd_bool(struct reader *r, const char *what)
{
    unsigned v = rd_u8(r, what);
    if (v > 1) {
        rd_error(r, "%s is %u, not 0 or 1", what, v);
    }
    return (int)v;
}

/* A count of records that each take at least MIN_SIZE bytes, so that a corrupt count can
 * neither exceed LIMIT nor make the reader allocate more than the input could describe. */
static size_t rd_count(struct reader *r, uint64_t limit, size_t min_size, const char *what)
{
    uint64_t n = rd_u64(r, what);
    if (r->failed) {
        return 0;
    }
    if (n > limit || n > (r->len - r->off) / min_size) {
        rd_error(r, "%s %llu is above the limit or the remaining bytes", what,
                 (unsigned long long)n);
        return 0;
    }
    return (size_t)n;
}

static void rd_schema(struct reader *r, int *has_schema, uint8_t id[16], uint8_t hash[32])
{
    *has_schema = rd_bool(r, "schema flag");
    memset(id, 0, 16);
    memset(hash, 0, 32);
    if (*has_schema) {
        rd_fixed(r, id, 16, "schema id");
        rd_fixed(r, hash, 32, "schema hash");
    }
}

static int rd_timestamp(struct reader *r, int64_t *out, const char *what)
{
    uint64_t v = rd_u64(r, what);
    if (!r->failed && v > (uint64_t)CODEC_MAX_TIMESTAMP_US) {
        rd_error(r, "%s %llu is out of range", what, (unsigned long long)v);
    }
    *out = r->failed ? 0 : (int64_t)v;
    return r->failed ? FSM_EINVAL : 0;
}

static int parse_config(struct fsm *t, struct project *p, struct reader *r)
{
    size_t key_len;
    const char *key = rd_str(r, &key_len, CODEC_MAX_KEY, "config key");
    if (key == NULL) {
        return FSM_EINVAL;
    }
    if (!codec_key_ok(key, key_len)) {
        rd_error(r, "project %s: invalid config key", p->id);
        return FSM_EINVAL;
    }
    if (p->count > 0) {
        const struct chunk *last = p->chunks[p->nchunks - 1];
        const struct fsm_config *prev = last->items[last->n - 1];
        if (fsm_store_cmp_bytes(prev->key, prev->key_len, key, key_len) >= 0) {
            rd_error(r, "project %s: config keys out of order at %.*s", p->id, (int)key_len, key);
            return FSM_EINVAL;
        }
    }
    struct fsm_config c;
    memset(&c, 0, sizeof(c));
    c.version = rd_u64(r, "config version");
    c.deleted = rd_bool(r, "deleted flag");
    rd_schema(r, &c.has_schema, c.schema_id, c.schema_hash);
    const char *content = NULL;
    if (!c.deleted) {
        content = rd_str(r, &c.content_len, CODEC_MAX_CONTENT, "config content");
    }
    c.last_revision = rd_u64(r, "config last revision");
    c.raft_index = rd_u64(r, "config raft index");
    size_t by_len;
    const char *by = rd_str(r, &by_len, CODEC_MAX_ACTOR, "config updated_by");
    if (rd_timestamp(r, &c.updated_at, "config updated_at") != 0) {
        return FSM_EINVAL;
    }
    const char *bad = NULL;
    if (c.version < 1 || c.version > CODEC_MAX_INT64) {
        bad = "version out of range";
    } else if (c.deleted && c.has_schema) {
        bad = "a tombstone with a schema";
    } else if (!c.deleted && c.content_len < 1) {
        bad = "a live config without content";
    } else if (c.last_revision < 1 || c.last_revision > t->revision) {
        bad = "last revision out of range";
    } else if (c.raft_index < 1 || c.raft_index > t->last_applied) {
        bad = "raft index out of range";
    } else if (!codec_actor_ok(by, by_len)) {
        bad = "invalid updated_by";
    }
    if (bad != NULL) {
        rd_error(r, "project %s: config %.*s: %s", p->id, (int)key_len, key, bad);
        return FSM_EINVAL;
    }
    t->content_bytes += c.content_len;
    if (t->content_bytes > FSM_MAX_CONTENT_BYTES) {
        rd_error(r, "content bytes above the limit %llu",
                 (unsigned long long)FSM_MAX_CONTENT_BYTES);
        return FSM_EINVAL;
    }
    struct fsm_config *n =
        fsm_store_config_new(key, key_len, (const uint8_t *)content, c.content_len, by, by_len);
    if (n == NULL) {
        return FSM_ENOMEM;
    }
    n->project = p->id;
    n->version = c.version;
    n->deleted = c.deleted;
    n->has_schema = c.has_schema;
    memcpy(n->schema_id, c.schema_id, sizeof(n->schema_id));
    memcpy(n->schema_hash, c.schema_hash, sizeof(n->schema_hash));
    n->last_revision = c.last_revision;
    n->raft_index = c.raft_index;
    n->updated_at = c.updated_at;
    n->gen = t->gen;
    t->key_bytes += key_len;
    /* Keys arrive in order, checked above. */
    if (fsm_store_configs_append(p, n) != 0) {
        fsm_store_config_free(n);
        return FSM_ENOMEM;
    }
    t->nconfigs++;
    if (c.last_revision > p->max_revision) {
        p->max_revision = c.last_revision;
    }
    return 0;
}

static int parse_projects(struct fsm *t, struct reader *r)
{
    size_t n = rd_count(r, FSM_MAX_CONFIGS, 4 + 1 + REVISION_HASH_SIZE + 8, "project count");
    if (r->failed) {
        return FSM_EINVAL;
    }
    if (n > 0 && (t->projects = calloc(n, sizeof(t->projects[0]))) == NULL) {
        return FSM_ENOMEM;
    }
    t->projects_cap = n;
    for (size_t i = 0; i < n; i++) {
        size_t id_len;
        const char *id = rd_str(r, &id_len, CODEC_MAX_PROJECT, "project id");
        if (id == NULL) {
            return FSM_EINVAL;
        }
        if (!codec_project_ok(id, id_len)) {
            rd_error(r, "invalid project id at offset %zu", r->off - id_len);
            return FSM_EINVAL;
        }
        if (i > 0) {
            const struct project *prev = t->projects[i - 1];
            if (fsm_store_cmp_bytes(prev->id, prev->id_len, id, id_len) >= 0) {
                rd_error(r, "projects out of order at %.*s", (int)id_len, id);
                return FSM_EINVAL;
            }
        }
        struct project *p = fsm_store_project_alloc(id, id_len);
        if (p == NULL) {
            return FSM_ENOMEM;
        }
        t->projects[t->nprojects++] = p;
        rd_fixed(r, p->head, sizeof(p->head), "chain head");
        /* A project exists only once it has a revision, which always leaves a config. */
        size_t count = rd_count(r, FSM_MAX_CONFIGS - t->nconfigs, 44, "config count");
        if (r->failed) {
            return FSM_EINVAL;
        }
        if (count == 0) {
            rd_error(r, "project %s has no configs", p->id);
            return FSM_EINVAL;
        }
        for (size_t k = 0; k < count; k++) {
            int rc = parse_config(t, p, r);
            if (rc != 0) {
                return rc;
            }
        }
    }
    return 0;
}

/* Reads one queued revision into *REV (owning its strings even on failure; the caller clears
 * it) and checks it against everything already restored. PREV is the previous queued
 * revision or NULL. */
static int parse_revision(struct fsm *t, struct reader *r, const struct revision *prev,
                          struct revision *rev)
{
    memset(rev, 0, sizeof(*rev));
    size_t project_len, key_len, actor_len, rid_len, content_len = 0;
    rev->revision = rd_u64(r, "revision number");
    const char *project = rd_str(r, &project_len, CODEC_MAX_PROJECT, "revision project");
    const char *key = rd_str(r, &key_len, CODEC_MAX_KEY, "revision key");
    rev->version = rd_u64(r, "revision version");
    unsigned op = rd_u8(r, "revision op");
    rev->op = (enum revision_op)op;
    rev->source_version = rd_u64(r, "revision source version");
    rd_schema(r, &rev->has_schema, rev->schema_id, rev->schema_hash);
    const char *content = NULL;
    if (op != REVISION_DELETE) {
        content = rd_str(r, &content_len, CODEC_MAX_CONTENT, "revision content");
    }
    const char *actor = rd_str(r, &actor_len, CODEC_MAX_ACTOR, "revision actor");
    const char *rid = rd_str(r, &rid_len, CODEC_MAX_REQUEST_ID, "revision request id");
    rd_timestamp(r, &rev->created_at, "revision created_at");
    rev->raft_index = rd_u64(r, "revision raft index");
    rev->raft_term = rd_u64(r, "revision raft term");
    rd_fixed(r, rev->prev_hash, sizeof(rev->prev_hash), "revision prev_hash");
    rd_fixed(r, rev->hash, sizeof(rev->hash), "revision hash");
    if (r->failed) {
        return FSM_EINVAL;
    }

    const char *bad = NULL;
    const struct project *p = NULL;
    const struct fsm_config *c = NULL;
    if (!codec_project_ok(project, project_len) || !codec_key_ok(key, key_len) ||
        !codec_actor_ok(actor, actor_len) || !codec_request_id_ok(rid, rid_len)) {
        bad = "invalid project, key, actor or request id";
    } else if (op < REVISION_PUT || op > REVISION_ROLLBACK) {
        bad = "unknown op";
    } else if (rev->revision < 1 || rev->revision > t->revision ||
               (prev != NULL && rev->revision != prev->revision + 1)) {
        /* The queue is every revision after the materialized index, so its numbers are
         * consecutive. */
        bad = "revision number out of order or range";
    } else if (rev->raft_index <= t->materialized || rev->raft_index > t->last_applied ||
               (prev != NULL && rev->raft_index <= prev->raft_index)) {
        bad = "raft index out of order or range";
    } else if (rev->raft_term < 1 || rev->raft_term > CODEC_MAX_INT64) {
        bad = "raft term out of range";
    } else if (rev->version < 1 || rev->version > CODEC_MAX_INT64) {
        bad = "version out of range";
    } else if (op != REVISION_DELETE && content_len < 1) {
        bad = "no content";
    } else if (op == REVISION_DELETE && rev->has_schema) {
        bad = "a delete with a schema";
    } else if (op == REVISION_ROLLBACK
                   ? (rev->source_version < 1 || rev->source_version >= rev->version)
                   : rev->source_version != 0) {
        bad = "source version out of range";
    } else if ((p = fsm_store_project_find(t, project, project_len)) == NULL ||
               (c = fsm_store_config_find(p, key, key_len)) == NULL) {
        bad = "no config for it";
    } else if (rev->revision > c->last_revision ||
               (rev->revision == c->last_revision
                    ? (rev->version != c->version || rev->raft_index != c->raft_index ||
                       (op == REVISION_DELETE) != (c->deleted != 0))
                    : rev->version >= c->version)) {
        bad = "disagrees with its config";
    } else if (p->seen_pending &&
               memcmp(rev->prev_hash, p->last_pending_hash, REVISION_HASH_SIZE) != 0) {
        bad = "prev_hash does not continue the project's chain";
    }
    if (bad != NULL) {
        rd_error(r, "queued revision %llu: %s", (unsigned long long)rev->revision, bad);
        return FSM_EINVAL;
    }

    if ((rev->project = bytes_dup(project, project_len)) == NULL ||
        (rev->key = bytes_dup(key, key_len)) == NULL ||
        (rev->actor = bytes_dup(actor, actor_len)) == NULL ||
        (rid_len > 0 && (rev->request_id = bytes_dup(rid, rid_len)) == NULL) ||
        (content != NULL && (rev->content = (uint8_t *)bytes_dup(content, content_len)) == NULL)) {
        return FSM_ENOMEM;
    }
    rev->content_len = content_len;
    uint8_t h[REVISION_HASH_SIZE];
    revision_compute_hash(rev, h);
    if (memcmp(h, rev->hash, sizeof(h)) != 0) {
        rd_error(r, "queued revision %llu: hash does not match its contents",
                 (unsigned long long)rev->revision);
        return FSM_EINVAL;
    }
    struct project *mp = (struct project *)p;
    mp->seen_pending = 1;
    mp->last_pending_revision = rev->revision;
    memcpy(mp->last_pending_hash, rev->hash, REVISION_HASH_SIZE);
    return 0;
}

static int parse_pending(struct fsm *t, struct reader *r)
{
    size_t n = rd_count(r, FSM_MAX_PENDING, 8, "queued revision count");
    if (r->failed) {
        return FSM_EINVAL;
    }
    if (n > 0 && (t->pending = calloc(n, sizeof(t->pending[0]))) == NULL) {
        return FSM_ENOMEM;
    }
    t->pending_cap = n;
    for (size_t i = 0; i < n; i++) {
        struct revision rev;
        int rc = parse_revision(t, r, i > 0 ? fsm_store_pending_at(t, i - 1) : NULL, &rev);
        if (rc != 0) {
            revision_clear(&rev);
            return rc;
        }
        if (t->pending_bytes + rev.content_len > FSM_MAX_PENDING_BYTES) {
            revision_clear(&rev);
            rd_error(r, "queued content bytes above the limit %llu",
                     (unsigned long long)FSM_MAX_PENDING_BYTES);
            return FSM_EINVAL;
        }
        fsm_store_pending_push(t, &rev);
    }
    if (n > 0 && fsm_store_pending_at(t, n - 1)->revision != t->revision) {
        rd_error(r, "the last queued revision is not the revision counter %llu",
                 (unsigned long long)t->revision);
        return FSM_EINVAL;
    }
    /* The queue holds every revision after the materialized index, so a project's last
     * queued revision is its latest one and its hash is the chain head. */
    for (size_t i = 0; i < t->nprojects; i++) {
        const struct project *p = t->projects[i];
        if (p->seen_pending && (p->last_pending_revision != p->max_revision ||
                                memcmp(p->last_pending_hash, p->head, REVISION_HASH_SIZE) != 0)) {
            rd_error(r, "project %s: chain head is not its latest queued revision", p->id);
            return FSM_EINVAL;
        }
    }
    return 0;
}

static int parse_requests(struct fsm *t, struct reader *r)
{
    size_t n = rd_count(r, FSM_REQUEST_CAPACITY, 8, "request count");
    if (r->failed) {
        return FSM_EINVAL;
    }
    if (n > 0 && (t->requests = calloc(n, sizeof(t->requests[0]))) == NULL) {
        return FSM_ENOMEM;
    }
    t->req_cap = n;
    /* In the order of the snapshot, which is the order they were recorded in: appending
     * rebuilds the per-project lists exactly, and forgets nothing (a project may hold more
     * than FSM_PROJECT_REQUESTS ids it could not forget when they were recorded). */
    uint64_t prev_index = 0;
    for (size_t i = 0; i < n; i++) {
        size_t project_len, rid_len;
        const char *project = rd_str(r, &project_len, CODEC_MAX_PROJECT, "request project");
        const char *rid = rd_str(r, &rid_len, CODEC_MAX_REQUEST_ID, "request id");
        struct fsm_request q;
        memset(&q, 0, sizeof(q));
        unsigned status = rd_u8(r, "request status");
        q.status = (enum fsm_status)status;
        q.version = rd_u64(r, "request version");
        q.revision = rd_u64(r, "request revision");
        q.raft_index = rd_u64(r, "request raft index");
        /* Version 1 predates client fingerprints: every id it holds used the legacy rule. */
        unsigned rule = r->version >= 2 ? rd_u8(r, "request fingerprint rule") : FSM_FP_LEGACY;
        q.rule = (uint8_t)rule;
        rd_fixed(r, q.fingerprint, sizeof(q.fingerprint), "request fingerprint");
        if (r->failed) {
            return FSM_EINVAL;
        }
        const char *bad = NULL;
        if (!codec_project_ok(project, project_len) || rid_len == 0 ||
            !codec_request_id_ok(rid, rid_len)) {
            bad = "invalid project or request id";
        } else if (status != FSM_OK && status != FSM_CONFLICT && status != FSM_NOT_FOUND) {
            bad = "unknown status";
        } else if (rule != FSM_FP_LEGACY && rule != FSM_FP_CLIENT) {
            bad = "unknown fingerprint rule";
        } else if (q.version > CODEC_MAX_INT64 || q.revision > t->revision ||
                   (status == FSM_OK ? (q.version < 1 || q.revision < 1) : q.revision != 0)) {
            bad = "version or revision out of range";
        } else if (q.raft_index <= prev_index || q.raft_index > t->last_applied) {
            bad = "raft index out of order or range";
        }
        uint64_t h =
            bad == NULL ? fsm_store_request_hash(t, project, project_len, rid, rid_len) : 0;
        if (bad == NULL && fsm_store_request_slot(t, h, project, project_len, rid, rid_len) >= 0) {
            bad = "recorded twice";
        }
        if (bad != NULL) {
            rd_error(r, "request entry %zu: %s", i, bad);
            return FSM_EINVAL;
        }
        if (fsm_store_request_reserve(t) != 0) {
            return FSM_ENOMEM;
        }
        fsm_store_request_append(t, h, project, project_len, rid, rid_len, &q);
        prev_index = q.raft_index;
    }
    return 0;
}

static int parse_body(struct fsm *t, struct reader *r)
{
    t->last_applied = rd_u64(r, "last applied index");
    t->revision = rd_u64(r, "revision counter");
    t->materialized = rd_u64(r, "materialized index");
    if (r->failed) {
        return FSM_EINVAL;
    }
    if (t->last_applied > CODEC_MAX_INT64 || t->revision > CODEC_MAX_INT64 ||
        t->materialized > t->last_applied) {
        rd_error(r, "counters out of range");
        return FSM_EINVAL;
    }
    int rc;
    if ((rc = parse_projects(t, r)) != 0 || (rc = parse_pending(t, r)) != 0 ||
        (rc = parse_requests(t, r)) != 0) {
        return rc;
    }
    if (r->off != r->len) {
        rd_error(r, "%zu unread bytes at the end of the body", r->len - r->off);
        return FSM_EINVAL;
    }
    return 0;
}

int fsm_restore(struct fsm *f, const uint8_t *buf, size_t len, char *errmsg, size_t errlen)
{
    if (buf == NULL || len < SNAP_HEADER_SIZE) {
        bytes_errmsg(errmsg, errlen, "snapshot: truncated: %zu bytes, the header alone needs %d",
                     len, SNAP_HEADER_SIZE);
        return FSM_EINVAL;
    }
    if (memcmp(buf, SNAP_MAGIC, 8) != 0) {
        bytes_errmsg(errmsg, errlen, "snapshot: bad magic (not a conclave snapshot)");
        return FSM_EINVAL;
    }
    uint64_t version = bytes_get_le32(buf + 8);
    if (version < SNAP_VERSION_MIN || version > SNAP_VERSION) {
        bytes_errmsg(errmsg, errlen,
                     "snapshot: unsupported format version %llu (this build reads %d to %d)",
                     (unsigned long long)version, SNAP_VERSION_MIN, SNAP_VERSION);
        return FSM_EINVAL;
    }
    for (size_t i = 56; i < SNAP_HEADER_SIZE; i++) {
        if (buf[i] != 0) {
            bytes_errmsg(errmsg, errlen, "snapshot: reserved header bytes are not zero");
            return FSM_EINVAL;
        }
    }
    if (len % 8 != 0) {
        bytes_errmsg(errmsg, errlen, "snapshot: length %zu is not a multiple of 8", len);
        return FSM_EINVAL;
    }
    uint64_t body = bytes_get_le64(buf + 16);
    if (body > len - SNAP_HEADER_SIZE) {
        bytes_errmsg(errmsg, errlen,
                     "snapshot: truncated: body length %llu, have %zu bytes after the "
                     "header",
                     (unsigned long long)body, len - SNAP_HEADER_SIZE);
        return FSM_EINVAL;
    }
    size_t real = SNAP_HEADER_SIZE + (size_t)body;
    size_t total = (real + 7) & ~(size_t)7;
    /* body <= len - 64 and len is a multiple of 8, so total <= len. */
    if (len != total) {
        bytes_errmsg(errmsg, errlen, "snapshot: %zu trailing bytes after the padded body",
                     len - total);
        return FSM_EINVAL;
    }
    for (size_t i = real; i < total; i++) {
        if (buf[i] != 0) {
            bytes_errmsg(errmsg, errlen, "snapshot: padding byte %zu is not zero", i - real);
            return FSM_EINVAL;
        }
    }
    uint8_t header[SNAP_HEADER_SIZE];
    memcpy(header, buf, sizeof(header));
    memset(header + 12, 0, 4);
    uint32_t crc = codec_crc32c(0, header, sizeof(header));
    crc = codec_crc32c(crc, buf + SNAP_HEADER_SIZE, (size_t)body);
    uint32_t stored = bytes_get_le32(buf + 12);
    if (crc != stored) {
        bytes_errmsg(errmsg, errlen, "snapshot: checksum mismatch (stored 0x%08x, computed 0x%08x)",
                     stored, crc);
        return FSM_EINVAL;
    }

    /* Build the new state aside; F is only touched once everything has been checked. */
    struct fsm *t;
    int rc = fsm_new(&t, f->hash_key, errmsg, errlen);
    if (rc != 0) {
        return rc;
    }
    t->gen = f->gen;
    t->max_configs = f->max_configs; /* a local setting, not part of the snapshot */
    struct reader r = {.p = buf + SNAP_HEADER_SIZE,
                       .len = (size_t)body,
                       .off = 0,
                       .failed = 0,
                       .errmsg = errmsg,
                       .errlen = errlen,
                       .version = (unsigned)version};
    rc = parse_body(t, &r);
    if (rc == FSM_ENOMEM) {
        bytes_errmsg(errmsg, errlen, "snapshot: out of memory restoring %llu bytes",
                     (unsigned long long)body);
        goto err_after_new;
    }
    if (rc != 0) {
        goto err_after_new;
    }
    /* The body is canonical: the restored state must serialise back to exactly the same
     * bytes, which the stored state hash (SHA-256 of the body) confirms. */
    uint8_t h[32];
    fsm_snap_state_hash_as(t, (unsigned)version, h);
    if (memcmp(h, buf + 24, sizeof(h)) != 0) {
        bytes_errmsg(errmsg, errlen,
                     "snapshot: state hash mismatch (the body is not canonical or the "
                     "header's hash is wrong)");
        rc = FSM_EINVAL;
        goto err_after_new;
    }

    /* The old state's configs that F's snapshot view may read go to that view; the view
     * stays F's, and the new configs (stamped with F's current generation, above the view's)
     * are not frozen. */
    struct fsm_view *view = f->view;
    fsm_store_state_release(f);
    *f = *t;
    f->view = view;
    free(t);
    return 0;

err_after_new:
    fsm_free(t);
    return rc;
}
