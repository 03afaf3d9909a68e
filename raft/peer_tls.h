/*
 * peer_tls: a raft_uv_transport (raft/uv.h) whose every connection completes mutual TLS 1.3
 * and proves the peer's raft id before raft sees a byte.
 *
 * Per connection, raft gets one end of a socketpair(AF_UNIX) as a uv_pipe_t; this module pumps
 * bytes between the other end and the TCP socket through an SSL object over memory BIOs, on
 * the loop thread (OpenSSL does no I/O of its own, so nothing blocks). What flows inside the
 * tunnel is exactly what raft's own TCP transport sends in the clear: the connecting side's
 * handshake (protocol 1, its server id, the length of its address padded to 8 bytes, the
 * address) and then raft's messages.
 *
 * Identity (peer_tls_ctx.h): dialing node N, the server's certificate must name N; accepting,
 * the client's certificate names the id it may claim in raft's handshake, which this module
 * reads and checks before calling raft's accept callback. Any failure closes the connection
 * with one log line naming the peer's address and why. A connection that has not finished
 * both handshakes within PEER_TLS_HANDSHAKE_MS is closed too.
 */
#ifndef CONCLAVE_PEER_TLS_H
#define CONCLAVE_PEER_TLS_H

#include <stddef.h>
#include <stdint.h>

#include <raft.h>
#include <raft/uv.h>
#include <uv.h>

#define PEER_TLS_HANDSHAKE_MS 5000

struct peer_tls_config {
    uint64_t id;           /* this node's raft id; its certificate must name it */
    const char *ca_file;   /* the cluster's CA, PEM */
    const char *cert_file; /* this node's certificate (chain), PEM */
    const char *key_file;  /* its private key, PEM */
};

/* Fills T with this transport, for raft_uv_init(). Loads and checks the certificates now, so
 * a bad file stops the node at start. The strings of CONF are not kept. On success release T
 * with peer_tls_free() once raft has closed it (or if raft_uv_init never took it); on failure
 * nothing is left to release and ERRMSG says which file and why. */
int peer_tls_init(struct raft_uv_transport *t, uv_loop_t *loop, const struct peer_tls_config *conf,
                  char *errmsg, size_t errlen);

/* Releases what peer_tls_init() allocated. The memory of T itself stays the caller's. */
void peer_tls_free(struct raft_uv_transport *t);

#endif /* CONCLAVE_PEER_TLS_H */
