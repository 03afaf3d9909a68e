#include "server/reqbloom.h"

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

struct reqbloom {
    uint64_t *words; /* REQBLOOM_BITS / 64 */
    uint8_t key_a[crypto_shorthash_KEYBYTES];
    uint8_t key_b[crypto_shorthash_KEYBYTES];
};

struct reqbloom *reqbloom_new(void)
{
    if (sodium_init() < 0) {
        return NULL;
    }
    struct reqbloom *f = calloc(1, sizeof(*f));
    if (f == NULL) {
        return NULL;
    }
    f->words = calloc(REQBLOOM_BITS / 64, sizeof(uint64_t));
    if (f->words == NULL) {
        free(f);
        return NULL;
    }
    randombytes_buf(f->key_a, sizeof(f->key_a));
    randombytes_buf(f->key_b, sizeof(f->key_b));
    return f;
}

void reqbloom_free(struct reqbloom *f)
{
    if (f != NULL) {
        free(f->words);
        free(f);
    }
}

void reqbloom_clear(struct reqbloom *f)
{
    memset(f->words, 0, (REQBLOOM_BITS / 64) * sizeof(uint64_t));
}

static uint64_t sip(const uint8_t *msg, size_t len, const uint8_t *key)
{
    uint8_t out[crypto_shorthash_BYTES];
    crypto_shorthash(out, msg, len, key);
    uint64_t v;
    memcpy(&v, out, sizeof(v));
    return v;
}

void reqbloom_hash(const struct reqbloom *f, const char *project, size_t project_len,
                   const char *request_id, size_t request_id_len, struct reqbloom_hash *out)
{
    /* The project, a NUL (never inside a project id) and the request id: distinct pairs give
     * distinct messages. Both are bounded by the codec (64 and 128 bytes); longer input is cut,
     * which can only add false positives. */
    uint8_t msg[256];
    size_t pl = project_len < 120 ? project_len : 120;
    size_t rl = request_id_len < 128 ? request_id_len : 128;
    memcpy(msg, project, pl);
    msg[pl] = 0;
    memcpy(msg + pl + 1, request_id, rl);
    out->a = sip(msg, pl + 1 + rl, f->key_a);
    out->b = sip(msg, pl + 1 + rl, f->key_b) | 1; /* odd: the probes never repeat one bit */
}

/* Probe I of H (Kirsch-Mitzenmacher double hashing). */
static uint64_t probe(const struct reqbloom_hash *h, unsigned i)
{
    return (h->a + (uint64_t)i * h->b) & (REQBLOOM_BITS - 1);
}

void reqbloom_add(struct reqbloom *f, const struct reqbloom_hash *h)
{
    for (unsigned i = 0; i < REQBLOOM_HASHES; i++) {
        uint64_t bit = probe(h, i);
        f->words[bit / 64] |= UINT64_C(1) << (bit % 64);
    }
}

bool reqbloom_may_contain(const struct reqbloom *f, const struct reqbloom_hash *h)
{
    for (unsigned i = 0; i < REQBLOOM_HASHES; i++) {
        uint64_t bit = probe(h, i);
        if ((f->words[bit / 64] & (UINT64_C(1) << (bit % 64))) == 0) {
            return false;
        }
    }
    return true;
}
