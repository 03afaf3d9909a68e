#include "server/authcache.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NBUCKETS 4096 /* a power of two */

/* One entry: a principal keyed by token hash, or a role keyed by "user/project". */
struct entry {
    struct entry *next;
    uint64_t expires_ms;
    bool is_role;
    unsigned char key[32];      /* principals: the token hash */
    char role_key[37 + 1 + 64]; /* roles: "user_id/project_id" */
    struct principal p;
    bool exists;
    enum role_level role;
};

struct authcache {
    struct entry *buckets[NBUCKETS];
    unsigned size;
    uint64_t generation;
};

static uint32_t fnv(const unsigned char *s, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) {
        h = (h ^ s[i]) * 16777619u;
    }
    return h;
}

struct authcache *authcache_new(void)
{
    return calloc(1, sizeof(struct authcache));
}

void authcache_flush(struct authcache *c)
{
    for (size_t i = 0; i < NBUCKETS; i++) {
        struct entry *e = c->buckets[i];
        while (e != NULL) {
            struct entry *next = e->next;
            free(e);
            e = next;
        }
        c->buckets[i] = NULL;
    }
    c->size = 0;
    c->generation++;
}

uint64_t authcache_generation(const struct authcache *c)
{
    return c->generation;
}

void authcache_free(struct authcache *c)
{
    if (c != NULL) {
        authcache_flush(c);
        free(c);
    }
}

unsigned authcache_size(const struct authcache *c)
{
    return c->size;
}

/* Finds the live entry matching the key in bucket B, dropping expired ones on the way. */
static struct entry *find(struct authcache *c, uint32_t b, bool is_role, const void *key,
                          uint64_t now_ms)
{
    struct entry **pp = &c->buckets[b];
    while (*pp != NULL) {
        struct entry *e = *pp;
        if (e->expires_ms <= now_ms) {
            *pp = e->next;
            free(e);
            c->size--;
            continue;
        }
        if (e->is_role == is_role &&
            (is_role ? strcmp(e->role_key, key) == 0 : memcmp(e->key, key, 32) == 0)) {
            return e;
        }
        pp = &e->next;
    }
    return NULL;
}

static struct entry *insert(struct authcache *c, uint32_t b)
{
    if (c->size >= AUTHCACHE_MAX_ENTRIES) {
        authcache_flush(c);
    }
    struct entry *e = calloc(1, sizeof(*e));
    if (e == NULL) {
        return NULL; /* not caching is always correct */
    }
    e->next = c->buckets[b];
    c->buckets[b] = e;
    c->size++;
    return e;
}

bool authcache_get_principal(struct authcache *c, const unsigned char token_hash[32],
                             uint64_t now_ms, struct principal *out)
{
    uint32_t b = fnv(token_hash, 32) & (NBUCKETS - 1);
    struct entry *e = find(c, b, false, token_hash, now_ms);
    if (e == NULL) {
        return false;
    }
    *out = e->p;
    return true;
}

void authcache_put_principal(struct authcache *c, uint64_t gen, const struct principal *p,
                             uint64_t now_ms, uint64_t valid_for_ms)
{
    if (gen != c->generation) {
        return;
    }
    uint32_t b = fnv(p->token_hash, 32) & (NBUCKETS - 1);
    struct entry *e = find(c, b, false, p->token_hash, now_ms);
    if (e == NULL && (e = insert(c, b)) == NULL) {
        return;
    }
    memcpy(e->key, p->token_hash, 32);
    e->p = *p;
    e->expires_ms = now_ms + (valid_for_ms < AUTHCACHE_TTL_MS ? valid_for_ms : AUTHCACHE_TTL_MS);
}

static void role_key(char *out, size_t n, const char *user_id, const char *project_id)
{
    snprintf(out, n, "%s/%s", user_id, project_id);
}

bool authcache_get_role(struct authcache *c, const char *user_id, const char *project_id,
                        uint64_t now_ms, bool *exists, enum role_level *role)
{
    char key[sizeof(((struct entry *)0)->role_key)];
    role_key(key, sizeof(key), user_id, project_id);
    uint32_t b = fnv((const unsigned char *)key, strlen(key)) & (NBUCKETS - 1);
    struct entry *e = find(c, b, true, key, now_ms);
    if (e == NULL) {
        return false;
    }
    *exists = e->exists;
    *role = e->role;
    return true;
}

void authcache_put_role(struct authcache *c, uint64_t gen, const char *user_id,
                        const char *project_id, bool exists, enum role_level role, uint64_t now_ms)
{
    if (gen != c->generation) {
        return;
    }
    char key[sizeof(((struct entry *)0)->role_key)];
    role_key(key, sizeof(key), user_id, project_id);
    uint32_t b = fnv((const unsigned char *)key, strlen(key)) & (NBUCKETS - 1);
    struct entry *e = find(c, b, true, key, now_ms);
    if (e == NULL && (e = insert(c, b)) == NULL) {
        return;
    }
    e->is_role = true;
    snprintf(e->role_key, sizeof(e->role_key), "%s", key);
    e->exists = exists;
    e->role = role;
    e->expires_ms = now_ms + AUTHCACHE_TTL_MS;
}
