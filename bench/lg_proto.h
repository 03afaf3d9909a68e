/*
 * What the load generator says to each system over HTTP, and how it reads the answers:
 * conclave's configs API and etcd 3.4's JSON gateway (base64 keys and values, int64 as
 * strings). Requests are whole HTTP/1.1 messages with keep-alive.
 */
#ifndef LG_PROTO_H
#define LG_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "lg_http.h"

enum lg_system { LG_CONCLAVE, LG_ETCD, LG_PG };

/* The outcome of one operation as the benchmark counts it. */
enum lg_outcome {
    LG_OK,       /* done; a write's new version is known */
    LG_CONFLICT, /* a CAS write met another version (now known); nothing was written */
    LG_ERROR,    /* anything else: counted, not timed */
};

/* Writes the benchmark's config value for key index KEY and sequence SEQ into OUT: a JSON object
 * of exactly SIZE bytes (SIZE >= 160) that changes with SEQ. Returns the length, or 0 when SIZE
 * is too small or OUT cannot hold SIZE + 1 bytes (CAP). */
size_t lg_value(char *out, size_t cap, size_t size, int key, uint64_t seq);

/* The key name of index KEY ("k0042"). OUT holds at least 16 bytes. */
void lg_key(char *out, size_t cap, int key);

/* Standard base64 of LEN bytes appended to B. Returns 0 or -1 (out of memory). */
int lg_base64(struct lg_buf *b, const unsigned char *data, size_t len);

/* Builds the whole HTTP request into B (reset first). HOST is "ip:port", TOKEN conclave's
 * bearer token, PROJECT its project. A read is linearizable unless STALE. Each returns 0 or -1
 * (out of memory). */
int lg_conclave_write(struct lg_buf *b, const char *host, const char *token, const char *project,
                      const char *key, const char *value, uint64_t expected_version);
int lg_conclave_read(struct lg_buf *b, const char *host, const char *token, const char *project,
                     const char *key, int stale);
int lg_etcd_write(struct lg_buf *b, const char *host, const char *key, const char *value,
                  uint64_t expected_version);
int lg_etcd_read(struct lg_buf *b, const char *host, const char *key, int stale);
int lg_etcd_put(struct lg_buf *b, const char *host, const char *key, const char *value);

/* Reads the answer to a write (STATUS and BODY of LEN bytes). On LG_OK and LG_CONFLICT
 * *VERSION is the key's version now; on LG_ERROR a short reason is in WHY (CAP bytes). */
enum lg_outcome lg_conclave_write_result(int status, const char *body, size_t len,
                                         uint64_t *version, char *why, size_t cap);
enum lg_outcome lg_etcd_write_result(int status, const char *body, size_t len,
                                     uint64_t expected_version, uint64_t *version, char *why,
                                     size_t cap);

/* Reads the answer to a read. *VERSION is the key's version (0 when it does not exist, which
 * is LG_OK for etcd and LG_ERROR for conclave's 404). */
enum lg_outcome lg_conclave_read_result(int status, const char *body, size_t len, uint64_t *version,
                                        char *why, size_t cap);
enum lg_outcome lg_etcd_read_result(int status, const char *body, size_t len, uint64_t *version,
                                    char *why, size_t cap);

/* The request opening an etcd watch stream on KEY (POST /v3/watch): events from revision
 * START_REV on (0: from now). The answer is one JSON object per message, never complete. */
int lg_etcd_watch(struct lg_buf *b, const char *host, const char *key, uint64_t start_rev);

/* Reads the answer to an etcd put: *REVISION is the store revision of the put (the
 * mod_revision its watchers see). LG_OK or LG_ERROR with WHY. */
enum lg_outcome lg_etcd_put_result(int status, const char *body, size_t len, uint64_t *revision,
                                   char *why, size_t cap);

/* Finds the first whole top-level JSON object in the LEN bytes at P (a stream of objects,
 * whitespace between them): returns 1 with [*START, *END) its bytes, 0 when the object is not
 * complete yet (nothing but whitespace, or an object cut short), -1 when the bytes cannot be
 * one (anything but whitespace before '{', a closing bracket that does not match the open one,
 * or nesting deeper than 64). Strings and their escapes are honoured, so brackets inside strings
 * do not count; the object's content is not otherwise checked. */
int lg_json_next_object(const char *p, size_t len, size_t *start, size_t *end);

/* One message of an etcd watch stream (one JSON object of LEN bytes at MSG). On LG_OK,
 * *CREATED is 1 when it confirms the watch, and the mod_revision of each of its events is in
 * REVS (at most NREVS_CAP; *NREVS of them). LG_ERROR with WHY for an error message, a canceled
 * watch, malformed JSON, an event without a mod_revision or more events than REVS holds. */
enum lg_outcome lg_etcd_watch_message(const char *msg, size_t len, int *created, uint64_t *revs,
                                      size_t nrevs_cap, size_t *nrevs, char *why, size_t cap);

#endif
