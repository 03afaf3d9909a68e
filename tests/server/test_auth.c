/*
 * Token shapes, HMACs, password hashing and the auth cache (including the generation rule
 * that keeps a lookup started before a revocation out of the cache).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "server/auth.h"
#include "server/authcache.h"

static const unsigned char secret[32] = {1, 2, 3};

static void test_token_shapes(void **state)
{
    (void)state;
    char token[AUTH_SESSION_CHARS + 1], key[AUTH_KEY_CHARS + 1];
    char prefix[AUTH_KEY_PREFIX_CHARS + 1], got[AUTH_KEY_PREFIX_CHARS + 1] = "";
    assert_int_equal(auth_init(), 0);
    auth_new_session_token(token);
    assert_int_equal(strlen(token), AUTH_SESSION_CHARS);
    assert_int_equal(auth_token_kind(token, got), AUTH_TOKEN_SESSION);
    auth_new_api_key(key, prefix);
    assert_int_equal(strlen(key), AUTH_KEY_CHARS);
    assert_int_equal(auth_token_kind(key, got), AUTH_TOKEN_APIKEY);
    assert_string_equal(got, prefix);
    assert_memory_equal(key + 3, prefix, AUTH_KEY_PREFIX_CHARS);

    /* Near misses are refused. */
    token[10] = '!';
    assert_int_equal(auth_token_kind(token, got), AUTH_TOKEN_BAD);
    key[3] = 'G'; /* not hex */
    assert_int_equal(auth_token_kind(key, got), AUTH_TOKEN_BAD);
    assert_int_equal(auth_token_kind("", got), AUTH_TOKEN_BAD);
    assert_int_equal(auth_token_kind("cs_short", got), AUTH_TOKEN_BAD);
    char two[AUTH_SESSION_CHARS + 1];
    auth_new_session_token(two);
    token[10] = two[10];
    assert_string_not_equal(two, token); /* 256 random bits */
}

static void test_hmac(void **state)
{
    (void)state;
    unsigned char a[32], b[32], expect[32];
    auth_hmac(secret, sizeof(secret), "cs_token", a);
    auth_hmac(secret, sizeof(secret), "cs_token", b);
    assert_memory_equal(a, b, 32);
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init(&st, secret, sizeof(secret));
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)"cs_token", 8);
    crypto_auth_hmacsha256_final(&st, expect);
    assert_memory_equal(a, expect, 32);
    auth_hmac(secret, sizeof(secret), "cs_tokem", b);
    assert_memory_not_equal(a, b, 32);

    char hex[65];
    sodium_bin2hex(hex, sizeof(hex), a, 32);
    assert_true(auth_hash_equals_hex(a, hex));
    hex[0] = hex[0] == '0' ? '1' : '0';
    assert_false(auth_hash_equals_hex(a, hex));
    assert_false(auth_hash_equals_hex(a, "abcd"));
}

static void test_passwords(void **state)
{
    (void)state;
    char hash[AUTH_PASSWORD_HASH_MAX], err[128];
    assert_int_equal(auth_password_hash("correct horse", 1, 64, hash, err, sizeof(err)), 0);
    assert_non_null(strstr(hash, "$argon2id$"));
    assert_true(auth_password_verify(hash, "correct horse", 1, 64));
    assert_false(auth_password_verify(hash, "correct horsf", 1, 64));
    assert_false(auth_password_verify(NULL, "correct horse", 1, 64));
    assert_int_equal(auth_password_acceptable("short", err, sizeof(err)), -1);
    assert_string_equal(err, "password must have at least 10 characters");
    /* Ten code points, more bytes. */
    assert_int_equal(auth_password_acceptable("\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
                                              "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9",
                                              err, sizeof(err)),
                     0);
}

static void test_cache(void **state)
{
    (void)state;
    struct authcache *c = authcache_new();
    struct principal p = {.kind = PRINCIPAL_USER}, out;
    memset(p.token_hash, 7, 32);
    strcpy(p.user_id, "u1");
    uint64_t gen = authcache_generation(c);
    authcache_put_principal(c, gen, &p, 1000, 5000);
    assert_true(authcache_get_principal(c, p.token_hash, 1001, &out));
    assert_string_equal(out.user_id, "u1");
    /* Never outlives what the session has left. */
    assert_false(authcache_get_principal(c, p.token_hash, 6000, &out));

    bool exists;
    enum role_level role;
    authcache_put_role(c, gen, "u1", "p1", true, ROLE_EDITOR, 1000);
    assert_true(authcache_get_role(c, "u1", "p1", 1001, &exists, &role));
    assert_true(exists);
    assert_int_equal(role, ROLE_EDITOR);
    assert_false(authcache_get_role(c, "u1", "p2", 1001, &exists, &role));
    assert_false(authcache_get_role(c, "u1", "p1", 1000 + AUTHCACHE_TTL_MS, &exists, &role));

    /* A flush empties it, and an answer looked up before the flush is not cached. */
    authcache_put_role(c, gen, "u1", "p1", true, ROLE_EDITOR, 1000);
    authcache_flush(c);
    assert_int_equal(authcache_size(c), 0);
    assert_false(authcache_get_role(c, "u1", "p1", 1001, &exists, &role));
    authcache_put_role(c, gen, "u1", "p1", true, ROLE_ADMIN, 1002);
    assert_false(authcache_get_role(c, "u1", "p1", 1003, &exists, &role));
    authcache_put_principal(c, gen, &p, 1002, 5000);
    assert_false(authcache_get_principal(c, p.token_hash, 1003, &out));
    authcache_put_role(c, authcache_generation(c), "u1", "p1", false, ROLE_NONE, 1002);
    assert_true(authcache_get_role(c, "u1", "p1", 1003, &exists, &role));
    assert_false(exists);
    authcache_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_token_shapes),
        cmocka_unit_test(test_hmac),
        cmocka_unit_test(test_passwords),
        cmocka_unit_test(test_cache),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
