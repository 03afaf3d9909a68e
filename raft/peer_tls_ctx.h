/*
 * peer_tls_ctx: the OpenSSL side of the raft peers' mutual TLS (peer_tls.c is the transport).
 *
 * Identity: a node's certificate is signed by the cluster's CA and its subject common name is
 * exactly "conclave-node-<id>", <id> the node's raft id in decimal without leading zeros
 * (PEER_TLS_CN_PREFIX). That name is the only thing a peer's certificate is trusted for: the
 * connecting side requires it to name the id it dials; the accepting side requires raft's own
 * handshake inside the tunnel to claim the id it names (docs/security.md).
 */
#ifndef CONCLAVE_PEER_TLS_CTX_H
#define CONCLAVE_PEER_TLS_CTX_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#define PEER_TLS_CN_PREFIX "conclave-node-"

/* Builds the context every peer connection of this node uses: TLS 1.3 only, the peer's
 * certificate required and verified against CA_FILE (chain, validity dates, purpose), this
 * node's CERT_FILE and KEY_FILE presented. Refuses a certificate whose common name does not
 * name SELF_ID or whose key does not match, so a misconfigured node stops at start rather
 * than being refused by every peer. On success the caller owns the context (SSL_CTX_free).
 * On failure returns NULL and ERRMSG names the file and keeps OpenSSL's reason. */
SSL_CTX *peer_tls_ctx_new(const char *ca_file, const char *cert_file, const char *key_file,
                          uint64_t self_id, char *errmsg, size_t errlen);

/* The raft id named by the verified peer certificate of SSL, whose handshake completed. Fails
 * (-1, ERRMSG says why) when there is no certificate, it did not verify, or its common name
 * is not exactly PEER_TLS_CN_PREFIX followed by an id from 1 to 2^63. */
int peer_tls_ctx_peer_id(SSL *ssl, uint64_t *id, char *errmsg, size_t errlen);

/* Writes OpenSSL's queued errors (and, for a certificate that failed verification, the
 * verifier's reason from SSL, which may be NULL) to BUF as one line, and empties the queue. */
void peer_tls_ctx_errors(SSL *ssl, char *buf, size_t len);

#endif /* CONCLAVE_PEER_TLS_CTX_H */
