#include "server/auth.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <sodium.h>

int auth_init(void)
{
    return sodium_init() < 0 ? -1 : 0;
}

int auth_password_acceptable(const char *password, char *errmsg, size_t errlen)
{
    size_t bytes = strlen(password), points = 0;
    for (size_t i = 0; i < bytes; i++) {
        if (((unsigned char)password[i] & 0xC0) != 0x80) {
            points++;
        }
    }
    if (points < AUTH_PASSWORD_MIN) {
        snprintf(errmsg, errlen, "password must have at least %d characters", AUTH_PASSWORD_MIN);
        return -1;
    }
    if (bytes > AUTH_PASSWORD_MAX) {
        snprintf(errmsg, errlen, "password must have at most %d bytes", AUTH_PASSWORD_MAX);
        return -1;
    }
    return 0;
}

int auth_password_hash(const char *password, unsigned long long ops, size_t mem_kib,
                       char out[AUTH_PASSWORD_HASH_MAX], char *errmsg, size_t errlen)
{
    char buf[crypto_pwhash_STRBYTES];
    if (crypto_pwhash_str_alg(buf, password, strlen(password), ops, mem_kib * 1024,
                              crypto_pwhash_ALG_ARGON2ID13) != 0) {
        snprintf(errmsg, errlen, "hashing the password failed: out of memory");
        return -1;
    }
    snprintf(out, AUTH_PASSWORD_HASH_MAX, "%s", buf);
    return 0;
}

/* The dummy hash for unknown emails, made once with the node's own parameters. */
static pthread_once_t dummy_once = PTHREAD_ONCE_INIT;
static char dummy_hash[crypto_pwhash_STRBYTES];
static unsigned long long dummy_ops;
static size_t dummy_mem_kib;

static void make_dummy(void)
{
    char pw[32];
    randombytes_buf(pw, sizeof(pw) - 1);
    pw[sizeof(pw) - 1] = '\0';
    if (crypto_pwhash_str_alg(dummy_hash, pw, sizeof(pw) - 1, dummy_ops, dummy_mem_kib * 1024,
                              crypto_pwhash_ALG_ARGON2ID13) != 0) {
        dummy_hash[0] = '\0';
    }
}

bool auth_password_verify(const char *hash, const char *password, unsigned long long ops,
                          size_t mem_kib)
{
    if (hash == NULL) {
        /* The parameters are the same for every call in one process. */
        dummy_ops = ops;
        dummy_mem_kib = mem_kib;
        pthread_once(&dummy_once, make_dummy);
        /* The result is meaningless (a random password); only the time spent matters. */
        volatile int spent = dummy_hash[0] != '\0'
                                 ? crypto_pwhash_str_verify(dummy_hash, password, strlen(password))
                                 : -1;
        (void)spent;
        return false;
    }
    return crypto_pwhash_str_verify(hash, password, strlen(password)) == 0;
}

static void random_b64(char *out, size_t out_size)
{
    unsigned char raw[32];
    randombytes_buf(raw, sizeof(raw));
    sodium_bin2base64(out, out_size, raw, sizeof(raw), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    sodium_memzero(raw, sizeof(raw));
}

void auth_new_session_token(char out[AUTH_SESSION_CHARS + 1])
{
    memcpy(out, "cs_", 3);
    random_b64(out + 3, AUTH_SECRET_CHARS + 1);
}

void auth_new_api_key(char key[AUTH_KEY_CHARS + 1], char prefix[AUTH_KEY_PREFIX_CHARS + 1])
{
    unsigned char raw[AUTH_KEY_PREFIX_CHARS / 2];
    randombytes_buf(raw, sizeof(raw));
    sodium_bin2hex(prefix, AUTH_KEY_PREFIX_CHARS + 1, raw, sizeof(raw));
    snprintf(key, AUTH_KEY_CHARS + 1, "ck_%s_", prefix);
    random_b64(key + 3 + AUTH_KEY_PREFIX_CHARS + 1, AUTH_SECRET_CHARS + 1);
}

static bool all_in(const char *s, size_t n, const char *set)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\0' || strchr(set, s[i]) == NULL) {
            return false;
        }
    }
    return true;
}

static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

enum auth_token_kind auth_token_kind(const char *token, char prefix[AUTH_KEY_PREFIX_CHARS + 1])
{
    size_t n = strlen(token);
    if (n == AUTH_SESSION_CHARS && strncmp(token, "cs_", 3) == 0 &&
        all_in(token + 3, AUTH_SECRET_CHARS, b64url)) {
        return AUTH_TOKEN_SESSION;
    }
    if (n == AUTH_KEY_CHARS && strncmp(token, "ck_", 3) == 0 &&
        all_in(token + 3, AUTH_KEY_PREFIX_CHARS, "0123456789abcdef") &&
        token[3 + AUTH_KEY_PREFIX_CHARS] == '_' &&
        all_in(token + 3 + AUTH_KEY_PREFIX_CHARS + 1, AUTH_SECRET_CHARS, b64url)) {
        memcpy(prefix, token + 3, AUTH_KEY_PREFIX_CHARS);
        prefix[AUTH_KEY_PREFIX_CHARS] = '\0';
        return AUTH_TOKEN_APIKEY;
    }
    return AUTH_TOKEN_BAD;
}

void auth_hmac(const unsigned char *secret, size_t secret_len, const char *token,
               unsigned char out[AUTH_HASH_BYTES])
{
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init(&st, secret, secret_len);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)token, strlen(token));
    crypto_auth_hmacsha256_final(&st, out);
    sodium_memzero(&st, sizeof(st));
}

bool auth_hash_equals_hex(const unsigned char hash[AUTH_HASH_BYTES], const char *hex)
{
    unsigned char other[AUTH_HASH_BYTES];
    size_t len = 0;
    if (sodium_hex2bin(other, sizeof(other), hex, strlen(hex), NULL, &len, NULL) != 0 ||
        len != AUTH_HASH_BYTES) {
        return false;
    }
    return sodium_memcmp(hash, other, AUTH_HASH_BYTES) == 0;
}
