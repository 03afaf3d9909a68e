/*
 * authcache: who a token belongs to, and which role a user has in a project, remembered on
 * the loop thread so that most requests need no PostgreSQL round trip.
 *
 * Correctness rests on invalidation, not on expiry: PostgreSQL announces every change that
 * can take access away on the conclave_auth channel (migration 010), and the node flushes the
 * whole cache on each announcement and whenever its LISTEN connection is re-made. Entries also
 * expire after AUTHCACHE_TTL_MS as a second line of defence, and never outlive the session
 * they describe. Loop thread only; no locking.
 */
#ifndef CONCLAVE_AUTHCACHE_H
#define CONCLAVE_AUTHCACHE_H

#include <stdbool.h>
#include <stdint.h>

#define AUTHCACHE_TTL_MS      60000
#define AUTHCACHE_MAX_ENTRIES 16384 /* past this the cache is flushed and refills */

enum principal_kind {
    PRINCIPAL_USER = 1,
    PRINCIPAL_APIKEY = 2,
};

/* The authenticated caller of a request. */
struct principal {
    enum principal_kind kind;
    char user_id[37];    /* users: the user's id */
    char email[256];     /* users */
    bool is_admin;       /* users: instance admin */
    char key_id[37];     /* api keys: the key's id */
    char project_id[64]; /* api keys: the one project the key may touch */
    bool read_only;      /* api keys: scope "read" (viewer), else "read-write" (editor) */
    /* api keys: "" (the whole project) or the config prefix every key it reaches starts with;
     * CODEC_MAX_KEY (256) characters at most */
    char config_prefix[257];
    unsigned char token_hash[32];
};

/* A user's role in a project: none, or one of these (higher value = more rights). */
enum role_level {
    ROLE_NONE = 0,
    ROLE_VIEWER = 1,
    ROLE_EDITOR = 2,
    ROLE_ADMIN = 3,
};

struct authcache;

/* Returns a new empty cache, or NULL when out of memory. */
struct authcache *authcache_new(void);
void authcache_free(struct authcache *c);

/* Drops every entry and starts a new generation. */
void authcache_flush(struct authcache *c);

/* The current generation. A lookup that was read from PostgreSQL before a flush may be stale,
 * so the put functions ignore an answer whose GEN (taken when the lookup started) is older. */
uint64_t authcache_generation(const struct authcache *c);

/* Looks up the principal of TOKEN_HASH at time NOW_MS; copies it into OUT when present. */
bool authcache_get_principal(struct authcache *c, const unsigned char token_hash[32],
                             uint64_t now_ms, struct principal *out);

/* Remembers P (copied) until NOW_MS + min(TTL, VALID_FOR_MS). */
void authcache_put_principal(struct authcache *c, uint64_t gen, const struct principal *p,
                             uint64_t now_ms, uint64_t valid_for_ms);

/* Looks up USER_ID's role in PROJECT_ID. *EXISTS is false when the project was found not to
 * exist (a cached negative answer). */
bool authcache_get_role(struct authcache *c, const char *user_id, const char *project_id,
                        uint64_t now_ms, bool *exists, enum role_level *role);

void authcache_put_role(struct authcache *c, uint64_t gen, const char *user_id,
                        const char *project_id, bool exists, enum role_level role, uint64_t now_ms);

/* Entries held, for /metrics and tests. */
unsigned authcache_size(const struct authcache *c);

#endif /* CONCLAVE_AUTHCACHE_H */
