/*
 * auth: the cryptography of authentication, with libsodium.
 *
 * Passwords are argon2id hashes in libsodium's encoded form. Session tokens and API keys are
 * 256 random bits, base64url encoded, with a type prefix (`cs_`, `ck_`); the database holds
 * only their HMAC-SHA256 under the node secret, which every node of a cluster shares.
 * An API key also carries a public 12-hex-digit prefix that finds its row before the HMAC is
 * compared in constant time.
 *
 * Password hashing takes tens of milliseconds and tens of MiB on purpose: never call
 * auth_password_hash() or auth_password_verify() on the loop thread.
 */
#ifndef CONCLAVE_AUTH_H
#define CONCLAVE_AUTH_H

#include <stdbool.h>
#include <stddef.h>

#define AUTH_HASH_BYTES        32
#define AUTH_SECRET_CHARS      43 /* base64url of 32 bytes, no padding */
#define AUTH_SESSION_CHARS     (3 + AUTH_SECRET_CHARS)
#define AUTH_KEY_PREFIX_CHARS  12
#define AUTH_KEY_CHARS         (3 + AUTH_KEY_PREFIX_CHARS + 1 + AUTH_SECRET_CHARS)
#define AUTH_PASSWORD_MIN      10   /* code points */
#define AUTH_PASSWORD_MAX      1024 /* bytes */
#define AUTH_PASSWORD_HASH_MAX 128

enum auth_token_kind {
    AUTH_TOKEN_BAD = 0,
    AUTH_TOKEN_SESSION,
    AUTH_TOKEN_APIKEY,
};

/* Initialises libsodium. Returns 0, or -1 when it cannot (no entropy source). */
int auth_init(void);

/* Checks PASSWORD against the policy. Returns 0, or -1 with ERRMSG saying what to change. */
int auth_password_acceptable(const char *password, char *errmsg, size_t errlen);

/* Hashes PASSWORD with argon2id (OPS passes, MEM_KIB KiB) into OUT. Blocking and slow. */
int auth_password_hash(const char *password, unsigned long long ops, size_t mem_kib,
                       char out[AUTH_PASSWORD_HASH_MAX], char *errmsg, size_t errlen);

/* True when PASSWORD matches HASH. When HASH is NULL a fixed dummy hash is checked instead, so
 * that an unknown email costs the same time as a wrong password. Blocking and slow. */
bool auth_password_verify(const char *hash, const char *password, unsigned long long ops,
                          size_t mem_kib);

/* Writes a new session token ("cs_" + 43 characters) into OUT. */
void auth_new_session_token(char out[AUTH_SESSION_CHARS + 1]);

/* Writes a new API key into KEY and its public prefix (12 hex digits) into PREFIX. */
void auth_new_api_key(char key[AUTH_KEY_CHARS + 1], char prefix[AUTH_KEY_PREFIX_CHARS + 1]);

/* Classifies TOKEN by its exact shape. For an API key the prefix is copied into PREFIX. */
enum auth_token_kind auth_token_kind(const char *token, char prefix[AUTH_KEY_PREFIX_CHARS + 1]);

/* OUT = HMAC-SHA256 under SECRET of the whole TOKEN text. */
void auth_hmac(const unsigned char *secret, size_t secret_len, const char *token,
               unsigned char out[AUTH_HASH_BYTES]);

/* Constant-time comparison of two AUTH_HASH_BYTES hashes, the second given as 64 hex digits.
 * False also when HEX is malformed. */
bool auth_hash_equals_hex(const unsigned char hash[AUTH_HASH_BYTES], const char *hex);

#endif /* CONCLAVE_AUTH_H */
