/*
 * throttle: slows a password guesser down (POST /v1/auth/login, docs/security.md).
 *
 * Failed logins are counted per account (the email as sent, lowercased) and per source address
 * (the TCP peer's IP). Each may fail a few times freely (THROTTLE_ACCOUNT_FREE, THROTTLE_IP_FREE
 * within THROTTLE_WINDOW_MS); every failure beyond that locks it for a delay that doubles, from
 * THROTTLE_LOCK_MIN_MS up to THROTTLE_LOCK_MAX_MS. While either the account or the address is
 * locked, a login is refused before any password is checked (429 with Retry-After). A success
 * clears the account's count but not the address's, so that an attacker with one valid account
 * cannot wash the address between guesses. A count is forgotten THROTTLE_WINDOW_MS after its
 * last failure.
 *
 * Unknown and known emails are counted alike, and a refused login does no password work, so
 * neither the answers nor their timing tell whether an account exists.
 *
 * Memory is bounded: at most THROTTLE_SLOTS accounts and as many addresses. When a table is
 * full, the entry whose last failure is oldest is forgotten (counts are per node and in memory:
 * a restart, or a flood of distinct keys, forgets; docs/security.md says what that allows).
 * Keys are stored as keyed BLAKE2b hashes, never as emails. Loop thread only.
 */
#ifndef CONCLAVE_THROTTLE_H
#define CONCLAVE_THROTTLE_H

#include <stddef.h>
#include <stdint.h>

#define THROTTLE_ACCOUNT_FREE 5u
#define THROTTLE_IP_FREE      20u
#define THROTTLE_LOCK_MIN_MS  1000u
#define THROTTLE_LOCK_MAX_MS  (15u * 60u * 1000u)
#define THROTTLE_WINDOW_MS    (15u * 60u * 1000u)
#define THROTTLE_SLOTS        4096u

struct throttle;

/* Returns NULL when out of memory. */
struct throttle *throttle_new(void);
void throttle_free(struct throttle *t);

/* 0 when a login of ACCOUNT from IP may be tried at NOW_MS; otherwise the milliseconds until
 * it may (the longer of the two locks). IP may be "" (unknown: not counted). */
uint64_t throttle_wait_ms(struct throttle *t, const char *account, const char *ip, uint64_t now_ms);

/* Records a failed login (wrong email or password) of ACCOUNT from IP at NOW_MS. */
void throttle_failed(struct throttle *t, const char *account, const char *ip, uint64_t now_ms);

/* Records a successful login of ACCOUNT: its count is cleared. */
void throttle_succeeded(struct throttle *t, const char *account);

#endif /* CONCLAVE_THROTTLE_H */
