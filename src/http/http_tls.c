#include "http/http_tls.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

/* TLS 1.2 suites: ephemeral ECDHE key exchange with an AEAD cipher only. TLS 1.3 suites are
 * OpenSSL's defaults, all of which are AEAD with forward secrecy. */
#define TLS12_CIPHERS "ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL"

struct http_tls {
    SSL_CTX *ctx; /* the context new connections use */
    char *cert_file;
    char *key_file;
};

struct http_tls_conn {
    SSL *ssl;
    BIO *net_in;  /* ciphertext from the client, for OpenSSL; owned by ssl */
    BIO *net_out; /* ciphertext from OpenSSL, for the client; owned by ssl */
    char peer[64];
    bool first;  /* no byte has arrived yet */
    bool more;   /* SSL_read has not reported WANT_READ since the last bytes arrived */
    bool failed; /* a fatal error: no close_notify, no more writes */
    char inbuf[HTTP_TLS_READ_BUF];
};

/* OpenSSL's queued errors (and the verifier's reason, if any) as one line; empties the queue. */
static void ossl_reason(char *buf, size_t len)
{
    size_t used = 0;
    unsigned long e;
    buf[0] = '\0';
    while ((e = ERR_get_error()) != 0) {
        char one[256];
        ERR_error_string_n(e, one, sizeof one);
        if (used < len) {
            int n = snprintf(buf + used, len - used, "%s%s", used > 0 ? "; " : "", one);
            used += n > 0 ? (size_t)n : 0;
        }
    }
    if (buf[0] == '\0')
        snprintf(buf, len, "no reason given by openssl");
}

static SSL_CTX *ctx_new(const char *cert_file, const char *key_file, char *errmsg, size_t errlen)
{
    char why[512];
    ERR_clear_error();
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL) {
        ossl_reason(why, sizeof why);
        snprintf(errmsg, errlen, "https: cannot create an openssl context: %s", why);
        return NULL;
    }
    if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
        SSL_CTX_set_cipher_list(ctx, TLS12_CIPHERS) != 1) {
        ossl_reason(why, sizeof why);
        snprintf(errmsg, errlen, "https: cannot set the protocol versions and ciphers: %s", why);
        goto err;
    }
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                                 SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_TICKET);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_num_tickets(ctx, 0);
    /* Idle keep-alive connections then hold no record buffers. */
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    if (SSL_CTX_use_certificate_chain_file(ctx, cert_file) != 1) {
        ossl_reason(why, sizeof why);
        snprintf(errmsg, errlen, "https: cannot load the certificate file %s: %s", cert_file, why);
        goto err;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, key_file, SSL_FILETYPE_PEM) != 1) {
        ossl_reason(why, sizeof why);
        snprintf(errmsg, errlen, "https: cannot load the key file %s: %s", key_file, why);
        goto err;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        ossl_reason(why, sizeof why);
        snprintf(errmsg, errlen, "https: the key %s does not match the certificate %s: %s",
                 key_file, cert_file, why);
        goto err;
    }
    return ctx;
err:
    SSL_CTX_free(ctx);
    return NULL;
}

int http_tls_new(struct http_tls **out, const char *cert_file, const char *key_file, char *errmsg,
                 size_t errlen)
{
    *out = NULL;
    struct http_tls *tls = calloc(1, sizeof *tls);
    if (tls == NULL)
        goto err_nomem;
    tls->cert_file = strdup(cert_file);
    tls->key_file = strdup(key_file);
    if (tls->cert_file == NULL || tls->key_file == NULL)
        goto err_nomem_tls;
    tls->ctx = ctx_new(cert_file, key_file, errmsg, errlen);
    if (tls->ctx == NULL) {
        http_tls_free(tls);
        return -1;
    }
    *out = tls;
    return 0;

err_nomem_tls:
    http_tls_free(tls);
err_nomem:
    snprintf(errmsg, errlen, "https: out of memory");
    return -1;
}

/* The wrapper keeps SSL_CTX out of the header. */
struct http_tls_loaded {
    SSL_CTX *ctx;
};

int http_tls_load(const struct http_tls *tls, struct http_tls_loaded **out, char *errmsg,
                  size_t errlen)
{
    *out = NULL;
    struct http_tls_loaded *l = malloc(sizeof *l);
    if (l == NULL) {
        snprintf(errmsg, errlen, "https: out of memory");
        return -1;
    }
    l->ctx = ctx_new(tls->cert_file, tls->key_file, errmsg, errlen);
    if (l->ctx == NULL) {
        free(l);
        return -1;
    }
    *out = l;
    return 0;
}

void http_tls_install(struct http_tls *tls, struct http_tls_loaded *loaded)
{
    /* Sessions still open hold their own reference to the old context. */
    SSL_CTX_free(tls->ctx);
    tls->ctx = loaded->ctx;
    free(loaded);
}

void http_tls_loaded_free(struct http_tls_loaded *loaded)
{
    if (loaded == NULL)
        return;
    SSL_CTX_free(loaded->ctx);
    free(loaded);
}

void http_tls_free(struct http_tls *tls)
{
    if (tls == NULL)
        return;
    SSL_CTX_free(tls->ctx);
    free(tls->cert_file);
    free(tls->key_file);
    free(tls);
}

struct http_tls_conn *http_tls_conn_new(struct http_tls *tls, const char *peer, char *errmsg,
                                        size_t errlen)
{
    char why[512];
    struct http_tls_conn *t = calloc(1, sizeof *t);
    if (t == NULL) {
        snprintf(errmsg, errlen, "https: out of memory");
        return NULL;
    }
    snprintf(t->peer, sizeof t->peer, "%s", peer);
    t->first = true;
    ERR_clear_error();
    t->ssl = SSL_new(tls->ctx);
    t->net_in = BIO_new(BIO_s_mem());
    t->net_out = BIO_new(BIO_s_mem());
    if (t->ssl == NULL || t->net_in == NULL || t->net_out == NULL) {
        ossl_reason(why, sizeof why);
        snprintf(errmsg, errlen, "https: cannot create a session: %s", why);
        BIO_free(t->net_in);
        BIO_free(t->net_out);
        SSL_free(t->ssl);
        free(t);
        return NULL;
    }
    /* An empty memory BIO reports "retry", not end of file. */
    BIO_set_mem_eof_return(t->net_in, -1);
    BIO_set_mem_eof_return(t->net_out, -1);
    SSL_set_bio(t->ssl, t->net_in, t->net_out); /* ssl owns both from here */
    SSL_set_accept_state(t->ssl);
    return t;
}

void http_tls_conn_free(struct http_tls_conn *t)
{
    if (t == NULL)
        return;
    SSL_free(t->ssl);
    free(t);
}

const char *http_tls_conn_peer(const struct http_tls_conn *t)
{
    return t->peer;
}

char *http_tls_conn_inbuf(struct http_tls_conn *t, size_t *len)
{
    *len = sizeof t->inbuf;
    return t->inbuf;
}

int http_tls_conn_received(struct http_tls_conn *t, size_t n, char *errmsg, size_t errlen)
{
    if (n == 0)
        return 0;
    if (t->first) {
        t->first = false;
        /* A TLS connection starts with a handshake record (content type 22); an HTTP request
         * starts with its method's capital letters. Telling the two apart lets the client
         * get an answer it can read instead of an alert it cannot. */
        unsigned char c = (unsigned char)t->inbuf[0];
        if (c >= 'A' && c <= 'Z') {
            t->failed = true;
            return HTTP_TLS_PLAIN;
        }
    }
    if (n > sizeof t->inbuf || BIO_write(t->net_in, t->inbuf, (int)n) != (int)n) {
        t->failed = true;
        snprintf(errmsg, errlen, "cannot buffer %zu received bytes for openssl", n);
        return HTTP_TLS_FAILED;
    }
    t->more = true;
    return 0;
}

bool http_tls_conn_has_input(const struct http_tls_conn *t)
{
    return t->more && !t->failed;
}

ssize_t http_tls_conn_read(struct http_tls_conn *t, char *buf, size_t len, char *errmsg,
                           size_t errlen)
{
    if (t->failed || !t->more)
        return HTTP_TLS_AGAIN;
    if (len > INT32_MAX)
        len = INT32_MAX;
    ERR_clear_error();
    int n = SSL_read(t->ssl, buf, (int)len);
    if (n > 0)
        return n;
    int e = SSL_get_error(t->ssl, n);
    if (e == SSL_ERROR_WANT_READ) {
        t->more = false;
        return HTTP_TLS_AGAIN;
    }
    t->more = false;
    if (e == SSL_ERROR_ZERO_RETURN)
        return HTTP_TLS_CLOSED;
    t->failed = true;
    char why[512];
    ossl_reason(why, sizeof why);
    snprintf(errmsg, errlen, "%s: %s",
             SSL_is_init_finished(t->ssl) ? "tls record error" : "tls handshake failed", why);
    return HTTP_TLS_FAILED;
}

bool http_tls_conn_established(const struct http_tls_conn *t)
{
    return SSL_is_init_finished(t->ssl) == 1;
}

int http_tls_conn_write(struct http_tls_conn *t, const void *data, size_t len, char *errmsg,
                        size_t errlen)
{
    if (t->failed || !SSL_is_init_finished(t->ssl)) {
        snprintf(errmsg, errlen, "tls session cannot send: %s",
                 t->failed ? "it failed" : "no handshake yet");
        return HTTP_TLS_FAILED;
    }
    const char *p = data;
    while (len > 0) {
        int chunk = len > (1u << 30) ? (1 << 30) : (int)len;
        ERR_clear_error();
        int n = SSL_write(t->ssl, p, chunk);
        if (n != chunk) {
            t->failed = true;
            char why[512];
            ossl_reason(why, sizeof why);
            snprintf(errmsg, errlen, "tls write: %s", why);
            return HTTP_TLS_FAILED;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

void http_tls_conn_shutdown(struct http_tls_conn *t)
{
    if (t->failed || !SSL_is_init_finished(t->ssl))
        return;
    ERR_clear_error();
    (void)SSL_shutdown(t->ssl); /* queues close_notify; we never wait for the client's */
    ERR_clear_error();
}

int http_tls_conn_output(struct http_tls_conn *t, char **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    size_t pending = BIO_ctrl_pending(t->net_out);
    if (pending == 0)
        return 0;
    char *data = malloc(pending);
    if (data == NULL)
        return -1;
    if (pending > INT32_MAX || BIO_read(t->net_out, data, (int)pending) != (int)pending) {
        free(data);
        return -1;
    }
    *out = data;
    *len = pending;
    return 0;
}
