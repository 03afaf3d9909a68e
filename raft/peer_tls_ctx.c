#include "raft/peer_tls_ctx.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

void peer_tls_ctx_errors(SSL *ssl, char *buf, size_t len)
{
    size_t used = 0;
    buf[0] = '\0';
    if (ssl != NULL) {
        long v = SSL_get_verify_result(ssl);
        if (v != X509_V_OK) {
            int n = snprintf(buf, len, "certificate: %s", X509_verify_cert_error_string(v));
            used = n > 0 ? (size_t)n : 0;
        }
    }
    unsigned long e;
    while ((e = ERR_get_error()) != 0) {
        char one[256];
        ERR_error_string_n(e, one, sizeof(one));
        if (used < len) {
            int n = snprintf(buf + used, len - used, "%s%s", used > 0 ? "; " : "", one);
            used += n > 0 ? (size_t)n : 0;
        }
    }
    if (buf[0] == '\0') {
        snprintf(buf, len, "no reason given by openssl");
    }
}

/* Parses the common name of CERT as PEER_TLS_CN_PREFIX + a decimal id, strictly: no sign, no
 * leading zero, nothing after the digits, 1..2^63 (raft ids are positive). */
static int cert_id(X509 *cert, uint64_t *id, char *errmsg, size_t errlen)
{
    X509_NAME *name = X509_get_subject_name(cert);
    char cn[256];
    int n = name == NULL ? -1 : X509_NAME_get_text_by_NID(name, NID_commonName, cn, sizeof(cn));
    if (n <= 0) {
        snprintf(errmsg, errlen, "certificate has no subject common name");
        return -1;
    }
    /* A second common name would make "which one counts" ambiguous: refuse it. */
    int first = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
    if (X509_NAME_get_index_by_NID(name, NID_commonName, first) >= 0) {
        snprintf(errmsg, errlen, "certificate has more than one subject common name");
        return -1;
    }
    size_t plen = strlen(PEER_TLS_CN_PREFIX);
    const char *digits = cn + plen;
    if ((size_t)n != strlen(cn) || strncmp(cn, PEER_TLS_CN_PREFIX, plen) != 0 || digits[0] < '1' ||
        digits[0] > '9' || strlen(digits) > 19) {
        snprintf(errmsg, errlen, "certificate common name \"%s\" is not %s<id>", cn,
                 PEER_TLS_CN_PREFIX);
        return -1;
    }
    uint64_t v = 0;
    for (const char *d = digits; *d != '\0'; d++) {
        if (*d < '0' || *d > '9') {
            snprintf(errmsg, errlen, "certificate common name \"%s\" is not %s<id>", cn,
                     PEER_TLS_CN_PREFIX);
            return -1;
        }
        v = v * 10 + (uint64_t)(*d - '0');
    }
    if (v > (UINT64_C(1) << 63)) {
        snprintf(errmsg, errlen, "certificate common name \"%s\" names an id out of range", cn);
        return -1;
    }
    *id = v;
    return 0;
}

int peer_tls_ctx_peer_id(SSL *ssl, uint64_t *id, char *errmsg, size_t errlen)
{
    X509 *cert = SSL_get1_peer_certificate(ssl);
    if (cert == NULL) {
        snprintf(errmsg, errlen, "peer presented no certificate");
        return -1;
    }
    int rc = -1;
    long v = SSL_get_verify_result(ssl);
    if (v != X509_V_OK) {
        snprintf(errmsg, errlen, "peer certificate did not verify: %s",
                 X509_verify_cert_error_string(v));
        goto out;
    }
    rc = cert_id(cert, id, errmsg, errlen);
out:
    X509_free(cert);
    return rc;
}

/* Verifies this node's own certificate MINE (with the chain loaded into CTX) against CTX's
 * trust store, at the current time, as a peer running with the same ca file would during the
 * handshake. Why at start: a node whose certificate expired, is not yet valid, or was not
 * issued by its own CA would start and stay out of the cluster, with the reason only in its
 * peers' logs. A node whose peers trust another CA than its own still passes (rotation step 1
 * gives every node the bundle of both CAs). */
static int verify_own(SSL_CTX *ctx, X509 *mine, char *errmsg, size_t errlen)
{
    STACK_OF(X509) *chain = NULL;
    if (SSL_CTX_get0_chain_certs(ctx, &chain) != 1) {
        snprintf(errmsg, errlen, "cannot read the certificate chain");
        return -1;
    }
    X509_STORE_CTX *vctx = X509_STORE_CTX_new();
    if (vctx == NULL) {
        snprintf(errmsg, errlen, "out of memory");
        return -1;
    }
    int rc = -1;
    if (X509_STORE_CTX_init(vctx, SSL_CTX_get_cert_store(ctx), mine, chain) != 1) {
        snprintf(errmsg, errlen, "cannot set up the verification");
        goto out;
    }
    if (X509_verify_cert(vctx) != 1) {
        snprintf(errmsg, errlen, "%s",
                 X509_verify_cert_error_string(X509_STORE_CTX_get_error(vctx)));
        goto out;
    }
    rc = 0;
out:
    X509_STORE_CTX_free(vctx);
    ERR_clear_error();
    return rc;
}

SSL_CTX *peer_tls_ctx_new(const char *ca_file, const char *cert_file, const char *key_file,
                          uint64_t self_id, char *errmsg, size_t errlen)
{
    char why[512];
    ERR_clear_error();
    SSL_CTX *ctx = SSL_CTX_new(TLS_method());
    if (ctx == NULL) {
        peer_tls_ctx_errors(NULL, why, sizeof(why));
        snprintf(errmsg, errlen, "raft tls: cannot create an openssl context: %s", why);
        return NULL;
    }
    /* TLS 1.3 only: no renegotiation, no static-RSA or CBC suites to reason about. */
    if (SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) != 1 ||
        SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) != 1) {
        peer_tls_ctx_errors(NULL, why, sizeof(why));
        snprintf(errmsg, errlen, "raft tls: cannot restrict the context to tls 1.3: %s", why);
        goto err;
    }
    if (SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1) {
        peer_tls_ctx_errors(NULL, why, sizeof(why));
        snprintf(errmsg, errlen, "raft tls: cannot load the ca file %s: %s", ca_file, why);
        goto err;
    }
    if (SSL_CTX_use_certificate_chain_file(ctx, cert_file) != 1) {
        peer_tls_ctx_errors(NULL, why, sizeof(why));
        snprintf(errmsg, errlen, "raft tls: cannot load the certificate file %s: %s", cert_file,
                 why);
        goto err;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, key_file, SSL_FILETYPE_PEM) != 1) {
        peer_tls_ctx_errors(NULL, why, sizeof(why));
        snprintf(errmsg, errlen, "raft tls: cannot load the key file %s: %s", key_file, why);
        goto err;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        peer_tls_ctx_errors(NULL, why, sizeof(why));
        snprintf(errmsg, errlen, "raft tls: the key %s does not match the certificate %s: %s",
                 key_file, cert_file, why);
        goto err;
    }
    uint64_t own = 0;
    X509 *mine = SSL_CTX_get0_certificate(ctx);
    if (mine == NULL || cert_id(mine, &own, why, sizeof(why)) != 0) {
        snprintf(errmsg, errlen, "raft tls: %s: %s", cert_file,
                 mine == NULL ? "no certificate" : why);
        goto err;
    }
    if (own != self_id) {
        snprintf(errmsg, errlen,
                 "raft tls: %s names node %llu, but this is node %llu: peers would refuse it",
                 cert_file, (unsigned long long)own, (unsigned long long)self_id);
        goto err;
    }
    if (verify_own(ctx, mine, why, sizeof(why)) != 0) {
        snprintf(errmsg, errlen,
                 "raft tls: %s does not verify against the ca file %s: %s; peers would refuse "
                 "it (docs/operations.md, \"Rotating raft certificates\")",
                 cert_file, ca_file, why);
        goto err;
    }
    /* Both sides require and verify the other's certificate; a client without one is refused
     * during the handshake. */
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    /* Connections are long-lived and re-established rarely: no resumption, so every
     * connection presents and verifies a certificate. */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_num_tickets(ctx, 0);
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
    return ctx;

err:
    SSL_CTX_free(ctx);
    return NULL;
}
