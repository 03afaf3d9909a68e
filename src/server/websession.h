/*
 * websession: the browser's way to hold a session (docs/console.md, docs/security.md).
 *
 * A browser must not keep a bearer token where scripts can read it, so the console logs in
 * with "session": "cookie" and gets the session token only as an HttpOnly, SameSite=Strict
 * cookie. A cookie is sent by the browser on its own, so every state-changing request that
 * authenticates with it must also prove it comes from a page of this origin: it carries the
 * session's CSRF token in the X-CSRF-Token header. That token is derived from the session
 * (an HMAC under the cluster's secret), so every node can check it without a lookup and it
 * dies with the session. A bearer token in an Authorization header is never sent by a browser
 * by itself, which is why requests that carry one need no CSRF token and ignore cookies.
 *
 * Pure functions: no I/O, no state.
 */
#ifndef CONCLAVE_WEBSESSION_H
#define CONCLAVE_WEBSESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The cookie that carries a console session's token. */
#define WEBSESSION_COOKIE "conclave_session"
/* The request header that carries the CSRF token. */
#define WEBSESSION_CSRF_HEADER "X-CSRF-Token"
/* A CSRF token: 64 lowercase hex digits. */
#define WEBSESSION_CSRF_CHARS 64

/*
 * Finds the WEBSESSION_COOKIE cookie in the value of a Cookie header (RFC 6265 5.4:
 * "name=value; name2=value2") and copies its value, without optional double quotes, into OUT
 * (OUTLEN bytes with the terminator). Returns 1 when found, 0 when the header has no such
 * cookie, -1 when the value is longer than OUTLEN - 1 or holds a character a cookie value
 * may not. When the cookie appears more than once the first wins, as browsers send the most
 * specific path first.
 */
int websession_cookie_token(const char *cookie_header, char *out, size_t outlen);

/*
 * The CSRF token of the session whose token hashes (auth_hmac()) to TOKEN_HASH, under the
 * cluster's SECRET: hex(HMAC-SHA256(SECRET, "conclave-csrf" || TOKEN_HASH)).
 */
void websession_csrf(const unsigned char *secret, size_t secret_len,
                     const unsigned char token_hash[32], char out[WEBSESSION_CSRF_CHARS + 1]);

/* Whether HEADER (the X-CSRF-Token value, or NULL) is the session's CSRF token. The
 * comparison takes the same time wherever the first difference is. */
bool websession_csrf_ok(const unsigned char *secret, size_t secret_len,
                        const unsigned char token_hash[32], const char *header);

/*
 * Writes the value of a Set-Cookie header into OUT: the session cookie holding TOKEN for
 * MAX_AGE_S seconds, or, with TOKEN NULL, one that deletes it (Max-Age=0). Always Path=/,
 * HttpOnly and SameSite=Strict; SECURE adds Secure (the node serves HTTPS). Returns 0, or -1
 * when OUT is too small.
 */
int websession_set_cookie(char *out, size_t outlen, const char *token, uint64_t max_age_s,
                          bool secure);

#endif /* CONCLAVE_WEBSESSION_H */
