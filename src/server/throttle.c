#include "server/throttle.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#define KEY_BYTES 16

struct entry {
    uint8_t key[KEY_BYTES]; /* all zero: free */
    uint32_t failures;      /* within the window */
    uint64_t last_failure_ms;
    uint64_t locked_until_ms;
};

/* One table per kind. Linear scans: logins are rare and each costs a password hash (tens of
 * milliseconds), beside which scanning 4,096 entries is nothing. */
struct table {
    struct entry e[THROTTLE_SLOTS];
    unsigned free_failures;
};

struct throttle {
    struct table accounts, ips;
    uint8_t hash_key[crypto_generichash_KEYBYTES];
};

struct throttle *throttle_new(void)
{
    if (sodium_init() < 0) {
        return NULL;
    }
    struct throttle *t = calloc(1, sizeof(*t));
    if (t == NULL) {
        return NULL;
    }
    t->accounts.free_failures = THROTTLE_ACCOUNT_FREE;
    t->ips.free_failures = THROTTLE_IP_FREE;
    randombytes_buf(t->hash_key, sizeof(t->hash_key));
    return t;
}

void throttle_free(struct throttle *t)
{
    free(t);
}

/* KIND ('a' or 'i') and the text, lowercased (emails are compared without case), hashed. */
static void key_of(const struct throttle *t, char kind, const char *text, uint8_t out[KEY_BYTES])
{
    crypto_generichash_state st;
    crypto_generichash_init(&st, t->hash_key, sizeof(t->hash_key), KEY_BYTES);
    crypto_generichash_update(&st, (const unsigned char *)&kind, 1);
    for (const char *p = text; *p != '\0'; p++) {
        unsigned char c = (unsigned char)tolower((unsigned char)*p);
        crypto_generichash_update(&st, &c, 1);
    }
    crypto_generichash_final(&st, out, KEY_BYTES);
    /* All zero marks a free slot: a key that hashes to it is moved off it. */
    static const uint8_t zero[KEY_BYTES];
    if (memcmp(out, zero, KEY_BYTES) == 0) {
        out[0] = 1;
    }
}

static bool is_free(const struct entry *e)
{
    static const uint8_t zero[KEY_BYTES];
    return memcmp(e->key, zero, KEY_BYTES) == 0;
}

/* The entry of KEY, forgetting it when its window has passed; NULL when absent. */
static struct entry *find(struct table *tb, const uint8_t key[KEY_BYTES], uint64_t now_ms)
{
    for (size_t i = 0; i < THROTTLE_SLOTS; i++) {
        struct entry *e = &tb->e[i];
        if (!is_free(e) && memcmp(e->key, key, KEY_BYTES) == 0) {
            if (now_ms >= e->last_failure_ms + THROTTLE_WINDOW_MS && now_ms >= e->locked_until_ms) {
                memset(e, 0, sizeof(*e));
                return NULL;
            }
            return e;
        }
    }
    return NULL;
}

/* A slot for a new key: a free one, else the one whose last failure is oldest. */
static struct entry *slot_for(struct table *tb, const uint8_t key[KEY_BYTES])
{
    struct entry *oldest = &tb->e[0];
    for (size_t i = 0; i < THROTTLE_SLOTS; i++) {
        struct entry *e = &tb->e[i];
        if (is_free(e)) {
            oldest = e;
            break;
        }
        if (e->last_failure_ms < oldest->last_failure_ms) {
            oldest = e;
        }
    }
    memset(oldest, 0, sizeof(*oldest));
    memcpy(oldest->key, key, KEY_BYTES);
    return oldest;
}

static uint64_t wait_of(struct table *tb, const uint8_t key[KEY_BYTES], uint64_t now_ms)
{
    const struct entry *e = find(tb, key, now_ms);
    return e != NULL && e->locked_until_ms > now_ms ? e->locked_until_ms - now_ms : 0;
}

static void fail(struct table *tb, const uint8_t key[KEY_BYTES], uint64_t now_ms)
{
    struct entry *e = find(tb, key, now_ms);
    if (e == NULL) {
        e = slot_for(tb, key);
    }
    e->failures++;
    e->last_failure_ms = now_ms;
    if (e->failures > tb->free_failures) {
        /* 1 s, 2 s, 4 s, ... doubling per failure beyond the free ones, at most 15 min. */
        uint32_t over = e->failures - tb->free_failures - 1;
        uint64_t lock = over >= 20 ? THROTTLE_LOCK_MAX_MS : (uint64_t)THROTTLE_LOCK_MIN_MS << over;
        if (lock > THROTTLE_LOCK_MAX_MS) {
            lock = THROTTLE_LOCK_MAX_MS;
        }
        e->locked_until_ms = now_ms + lock;
    }
}

uint64_t throttle_wait_ms(struct throttle *t, const char *account, const char *ip, uint64_t now_ms)
{
    uint8_t k[KEY_BYTES];
    key_of(t, 'a', account, k);
    uint64_t w = wait_of(&t->accounts, k, now_ms);
    if (ip != NULL && ip[0] != '\0') {
        key_of(t, 'i', ip, k);
        uint64_t wi = wait_of(&t->ips, k, now_ms);
        w = wi > w ? wi : w;
    }
    return w;
}

void throttle_failed(struct throttle *t, const char *account, const char *ip, uint64_t now_ms)
{
    uint8_t k[KEY_BYTES];
    key_of(t, 'a', account, k);
    fail(&t->accounts, k, now_ms);
    if (ip != NULL && ip[0] != '\0') {
        key_of(t, 'i', ip, k);
        fail(&t->ips, k, now_ms);
    }
}

void throttle_succeeded(struct throttle *t, const char *account)
{
    uint8_t k[KEY_BYTES];
    key_of(t, 'a', account, k);
    struct entry *e = find(&t->accounts, k, 0);
    if (e != NULL) {
        memset(e, 0, sizeof(*e));
    }
}
