/*
 * websession: the session cookie and its CSRF token (websession.h).
 */
#include "server/websession.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <sodium.h>

/* RFC 6265 4.1.1 cookie-octet: visible ASCII but DQUOTE, comma, semicolon and backslash. */
static bool cookie_octet(unsigned char c)
{
    return c >= 0x21 && c <= 0x7e && c != '"' && c != ',' && c != ';' && c != '\\';
}

int websession_cookie_token(const char *cookie_header, char *out, size_t outlen)
{
    static const size_t name_len = sizeof(WEBSESSION_COOKIE) - 1;
    const char *p = cookie_header;
    if (outlen == 0) {
        return -1;
    }
    out[0] = '\0';
    while (p != NULL && *p != '\0') {
        while (*p == ' ' || *p == '\t' || *p == ';') {
            p++;
        }
        const char *end = strchr(p, ';');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len > name_len && strncmp(p, WEBSESSION_COOKIE, name_len) == 0 && p[name_len] == '=') {
            const char *v = p + name_len + 1;
            size_t vlen = len - name_len - 1;
            while (vlen > 0 && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t')) {
                vlen--; /* trailing whitespace before the next ';' is not the value's */
            }
            if (vlen >= 2 && v[0] == '"' && v[vlen - 1] == '"') {
                v++;
                vlen -= 2;
            }
            if (vlen >= outlen) {
                return -1;
            }
            for (size_t i = 0; i < vlen; i++) {
                if (!cookie_octet((unsigned char)v[i])) {
                    return -1;
                }
            }
            memcpy(out, v, vlen);
            out[vlen] = '\0';
            return 1;
        }
        p = end;
    }
    return 0;
}

void websession_csrf(const unsigned char *secret, size_t secret_len,
                     const unsigned char token_hash[32], char out[WEBSESSION_CSRF_CHARS + 1])
{
    static const unsigned char domain[] = "conclave-csrf";
    unsigned char mac[crypto_auth_hmacsha256_BYTES];
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init(&st, secret, secret_len);
    crypto_auth_hmacsha256_update(&st, domain, sizeof(domain) - 1);
    crypto_auth_hmacsha256_update(&st, token_hash, 32);
    crypto_auth_hmacsha256_final(&st, mac);
    sodium_memzero(&st, sizeof(st));
    sodium_bin2hex(out, WEBSESSION_CSRF_CHARS + 1, mac, sizeof(mac));
}

bool websession_csrf_ok(const unsigned char *secret, size_t secret_len,
                        const unsigned char token_hash[32], const char *header)
{
    if (header == NULL || strlen(header) != WEBSESSION_CSRF_CHARS) {
        return false;
    }
    char want[WEBSESSION_CSRF_CHARS + 1];
    websession_csrf(secret, secret_len, token_hash, want);
    return sodium_memcmp(want, header, WEBSESSION_CSRF_CHARS) == 0;
}

int websession_set_cookie(char *out, size_t outlen, const char *token, uint64_t max_age_s,
                          bool secure)
{
    int n = snprintf(out, outlen, "%s=%s; Path=/; Max-Age=%" PRIu64 "; HttpOnly; SameSite=Strict%s",
                     WEBSESSION_COOKIE, token ? token : "", token ? max_age_s : 0,
                     secure ? "; Secure" : "");
    return n < 0 || (size_t)n >= outlen ? -1 : 0;
}
