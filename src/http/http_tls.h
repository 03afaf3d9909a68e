/*
 * http_tls: TLS for the HTTP server's connections (HTTPS on the API port).
 *
 * This module is OpenSSL only; it does no I/O. Each connection's SSL object sits between two
 * memory BIOs: the server hands it the ciphertext it read from the socket, takes back the
 * plaintext for its parser, gives it the plaintext of its answers and writes the ciphertext
 * OpenSSL produced. Everything runs on the loop thread and nothing blocks.
 *
 * The context: TLS 1.2 at least; TLS 1.2 limited to forward-secret AEAD suites (ECDHE with
 * AES-GCM or ChaCha20-Poly1305), the server's preference order; no compression, no
 * renegotiation, no session tickets or cache (a new connection costs a full handshake, and a
 * reloaded certificate applies to every new connection). Client certificates are not asked
 * for: a request authenticates with its Authorization header (docs/security.md).
 *
 * Reload, in two steps so that reading the files never blocks the loop thread: http_tls_load()
 * (any thread, typically a uv_queue_work() job) builds a new context from the same files, and
 * http_tls_install() (the loop thread) makes it the one new connections get. Connections open
 * at that moment keep the context they started with (each SSL object holds a reference). A
 * load that fails changes nothing.
 */
#ifndef CONCLAVE_HTTP_TLS_H
#define CONCLAVE_HTTP_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Ciphertext read from the socket at once; reading pauses until OpenSSL has decrypted it all,
 * so this also bounds what one connection buffers ahead of its TLS session. */
#define HTTP_TLS_READ_BUF 16384

/* http_tls_conn_read() results other than a byte count. */
#define HTTP_TLS_AGAIN  0  /* nothing to read until more ciphertext arrives */
#define HTTP_TLS_CLOSED -1 /* the client ended the session (close_notify) */
#define HTTP_TLS_FAILED -2 /* a handshake or record failure; errmsg has OpenSSL's reason */
#define HTTP_TLS_PLAIN  -3 /* the client spoke plain HTTP to the TLS port */

struct http_tls;
struct http_tls_conn;
struct http_tls_loaded; /* a context http_tls_load() built, not yet installed */

/* Loads CERT_FILE (PEM, the certificate followed by its chain) and KEY_FILE (PEM) and checks
 * that they match. The paths are copied (for http_tls_reload). On success *OUT is the caller's
 * and is released with http_tls_free() once no connection uses it any more (connections hold
 * their own reference to the context, not to *OUT). On failure *OUT is NULL and ERRMSG names
 * the file and keeps OpenSSL's reason. */
int http_tls_new(struct http_tls **out, const char *cert_file, const char *key_file, char *errmsg,
                 size_t errlen);

/* Reads the files given to http_tls_new() again into a new context, *OUT, which the caller
 * passes to http_tls_install() (or releases with http_tls_loaded_free()). Reads only the file
 * names of TLS, which never change, so it may run on a worker thread while the loop uses TLS.
 * On failure *OUT is NULL and ERRMSG names the file and keeps OpenSSL's reason. */
int http_tls_load(const struct http_tls *tls, struct http_tls_loaded **out, char *errmsg,
                  size_t errlen);

/* On the loop thread: LOADED (taken over) becomes the context of connections accepted from now
 * on; the previous one lives on in the connections that use it. */
void http_tls_install(struct http_tls *tls, struct http_tls_loaded *loaded);

/* Releases a loaded context that is not installed (NULL is ignored). */
void http_tls_loaded_free(struct http_tls_loaded *loaded);

/* Releases TLS (NULL is ignored). Connections still open keep their session. */
void http_tls_free(struct http_tls *tls);

/* A server-side session for a new connection from PEER (its address, for messages; copied).
 * On success the caller releases it with http_tls_conn_free(); NULL when out of memory, with
 * ERRMSG filled. */
struct http_tls_conn *http_tls_conn_new(struct http_tls *tls, const char *peer, char *errmsg,
                                        size_t errlen);

/* Releases T and its SSL object (NULL is ignored). */
void http_tls_conn_free(struct http_tls_conn *t);

/* The client's address given to http_tls_conn_new(); owned by T. */
const char *http_tls_conn_peer(const struct http_tls_conn *t);

/* The buffer (owned by T, *LEN bytes) into which the caller reads ciphertext from the socket;
 * only while http_tls_conn_has_input() is false. */
char *http_tls_conn_inbuf(struct http_tls_conn *t, size_t *len);

/* N bytes were read into the buffer of http_tls_conn_inbuf(): they go to OpenSSL. Returns 0,
 * HTTP_TLS_PLAIN when the very first bytes of the connection are plain text (an HTTP request
 * line, not a TLS record), or HTTP_TLS_FAILED (out of memory) with ERRMSG filled. */
int http_tls_conn_received(struct http_tls_conn *t, size_t n, char *errmsg, size_t errlen);

/* True while OpenSSL may still produce plaintext (or handshake progress) from what it was
 * given: the caller must call http_tls_conn_read() before reading the socket again. */
bool http_tls_conn_has_input(const struct http_tls_conn *t);

/* Runs the handshake and decrypts into BUF (LEN bytes). Returns the number of plaintext bytes
 * (> 0), HTTP_TLS_AGAIN, HTTP_TLS_CLOSED, or HTTP_TLS_FAILED with ERRMSG holding OpenSSL's
 * reason. Output for the client (handshake messages, an alert) may be waiting afterwards:
 * always collect it with http_tls_conn_output(). */
ssize_t http_tls_conn_read(struct http_tls_conn *t, char *buf, size_t len, char *errmsg,
                           size_t errlen);

/* True once the handshake completed. */
bool http_tls_conn_established(const struct http_tls_conn *t);

/* Encrypts LEN bytes of DATA (borrowed; whole, a memory BIO never refuses bytes). Returns 0,
 * or HTTP_TLS_FAILED with ERRMSG when the session cannot send (failed or not established). */
int http_tls_conn_write(struct http_tls_conn *t, const void *data, size_t len, char *errmsg,
                        size_t errlen);

/* Queues the TLS close_notify, when the session is established and has not failed. */
void http_tls_conn_shutdown(struct http_tls_conn *t);

/* Takes the ciphertext waiting for the client: *OUT (malloc'ed, the caller frees it) and
 * *LEN, or *OUT NULL and *LEN 0 when there is none. Returns 0, or -1 when out of memory. */
int http_tls_conn_output(struct http_tls_conn *t, char **out, size_t *len);

#endif /* CONCLAVE_HTTP_TLS_H */
