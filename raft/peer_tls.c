#include "raft/peer_tls.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "raft/bytes.h"
#include "raft/peer_tls_ctx.h"

/* raft 0.15's TCP handshake (src/uv_tcp_connect.c): protocol version, server id, length of
 * the address buffer (the address, NUL-terminated, padded to 8 bytes), all little endian. */
#define RAFT_HANDSHAKE_PROTOCOL 1
#define PREAMBLE_BYTES          24
/* raft's own addresses are "IP:PORT"; anything longer in a handshake is refused. */
#define ADDRESS_MAX 256
/* Flow control of each direction: past HIGH bytes queued towards one side, stop reading the
 * other side until the queue drains below LOW, so a slow peer cannot grow memory unbounded. */
#define QUEUE_HIGH (8u << 20)
#define QUEUE_LOW  (1u << 20)
#define READ_CHUNK 65536

enum conn_state {
    HANDSHAKE, /* TLS handshake running */
    PREAMBLE,  /* accepting side: reading raft's handshake inside the tunnel */
    TUNNEL,    /* raft has the pipe; bytes are pumped both ways */
    CLOSING,
};

struct transport;

/* One peer connection. Owned by the transport's list from creation until every handle of it
 * is closed; then freed by conn_handle_closed(). */
struct conn {
    struct conn *prev, *next;
    struct transport *tr;
    enum conn_state state;
    bool outgoing;
    uint64_t peer_id; /* outgoing: the id dialed; incoming: the id its certificate names */
    char peer[64];    /* the socket address, for the log */

    uv_tcp_t tcp;
    uv_connect_t connect;
    uv_timer_t timer; /* the handshake deadline */
    uv_pipe_t inner;  /* our end of the socketpair */
    /* raft's end, allocated with raft_malloc because raft frees it with raft_free after its
     * uv_close(); owned here until handed to raft (handed == true). */
    uv_pipe_t *raft_end;
    bool inner_open, raft_end_open, handed;
    bool tcp_paused, inner_paused; /* reading stopped by flow control */
    unsigned open_handles;

    struct raft_uv_connect *req; /* outgoing, until its callback fired */
    raft_uv_connect_cb cb;
    int status; /* given to req's callback when the connection fails */

    SSL *ssl;
    BIO *net_in;  /* ciphertext read from TCP, for OpenSSL */
    BIO *net_out; /* ciphertext OpenSSL produced, for TCP */

    unsigned char preamble[PREAMBLE_BYTES];
    size_t npreamble;
    char *address; /* the claimed address, ADDRESS_MAX at most */
    size_t address_len, naddress;
};

struct transport {
    struct raft_uv_transport *t;
    uv_loop_t *loop;
    SSL_CTX *ctx;
    uint64_t id;
    char address[ADDRESS_MAX];
    uv_tcp_t listener;
    bool listener_inited, listener_closed;
    raft_uv_accept_cb accept_cb;
    struct conn *conns;
    bool closing;
    raft_uv_transport_close_cb close_cb;
};

/* A buffer in flight to a stream; freed by its write callback. */
struct wreq {
    uv_write_t req;
    struct conn *c;
    char data[];
};

static void conn_close(struct conn *c, const char *why);
static void on_tcp_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);
static void on_inner_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h;
    (void)suggested;
    buf->base = malloc(READ_CHUNK);
    buf->len = buf->base == NULL ? 0 : READ_CHUNK;
}

/* ---- closing ------------------------------------------------------------------------- */

static void maybe_transport_closed(struct transport *tr)
{
    if (!tr->closing || tr->conns != NULL || (tr->listener_inited && !tr->listener_closed)) {
        return;
    }
    raft_uv_transport_close_cb cb = tr->close_cb;
    tr->close_cb = NULL;
    if (cb != NULL) {
        cb(tr->t);
    }
}

static void conn_handle_closed(uv_handle_t *h)
{
    struct conn *c = h->data;
    if (h == (uv_handle_t *)c->raft_end) {
        raft_free(c->raft_end);
        c->raft_end = NULL;
    }
    if (--c->open_handles > 0) {
        return;
    }
    struct transport *tr = c->tr;
    if (c->prev != NULL) {
        c->prev->next = c->next;
    } else {
        tr->conns = c->next;
    }
    if (c->next != NULL) {
        c->next->prev = c->prev;
    }
    /* raft's connect callback fires once, after every handle is gone, as raft's own TCP
     * transport does: raft may then retry or release the request. */
    if (c->req != NULL) {
        c->req->cb(c->req, NULL, c->status);
    }
    SSL_free(c->ssl); /* frees both memory BIOs */
    free(c->address);
    free(c);
    maybe_transport_closed(tr);
}

static void close_handle(struct conn *c, uv_handle_t *h)
{
    if (!uv_is_closing(h)) {
        uv_close(h, conn_handle_closed);
    }
    (void)c;
}

/* Closes every handle of C; WHY (NULL for an ordinary end of a tunnel) is logged with the
 * peer's address. Idempotent. */
static void conn_close(struct conn *c, const char *why)
{
    if (c->state == CLOSING) {
        return;
    }
    if (why != NULL) {
        char node[48] = "";
        if (c->peer_id != 0) {
            snprintf(node, sizeof(node), " (node %llu)", (unsigned long long)c->peer_id);
        }
        fprintf(stderr, "peer_tls: %s connection %s %s%s closed: %s\n",
                c->outgoing ? "outgoing" : "incoming", c->outgoing ? "to" : "from", c->peer, node,
                why);
    }
    c->state = CLOSING;
    close_handle(c, (uv_handle_t *)&c->tcp);
    close_handle(c, (uv_handle_t *)&c->timer);
    if (c->inner_open) {
        close_handle(c, (uv_handle_t *)&c->inner);
    }
    if (c->raft_end_open && !c->handed) {
        close_handle(c, (uv_handle_t *)c->raft_end);
    }
}

/* ---- writing ------------------------------------------------------------------------- */

static void on_tcp_written(uv_write_t *req, int status)
{
    struct wreq *w = (struct wreq *)req;
    struct conn *c = w->c;
    free(w);
    if (status < 0) {
        if (status != UV_ECANCELED) {
            char why[128];
            snprintf(why, sizeof(why), "tcp write: %s", uv_strerror(status));
            conn_close(c, why);
        }
        return;
    }
    if (c->inner_paused && c->state == TUNNEL && c->tcp.write_queue_size < QUEUE_LOW) {
        c->inner_paused = false;
        uv_read_start((uv_stream_t *)&c->inner, alloc_cb, on_inner_read);
    }
}

static void on_inner_written(uv_write_t *req, int status)
{
    struct wreq *w = (struct wreq *)req;
    struct conn *c = w->c;
    free(w);
    if (status < 0) {
        if (status != UV_ECANCELED) {
            conn_close(c, NULL); /* raft closed its end */
        }
        return;
    }
    if (c->tcp_paused && c->state == TUNNEL && c->inner.write_queue_size < QUEUE_LOW) {
        c->tcp_paused = false;
        uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, on_tcp_read);
    }
}

/* Queues a copy of DATA on stream S. */
static int write_copy(struct conn *c, uv_stream_t *s, const void *data, size_t len, uv_write_cb cb)
{
    struct wreq *w = malloc(sizeof(*w) + len);
    if (w == NULL) {
        return UV_ENOMEM;
    }
    w->c = c;
    memcpy(w->data, data, len);
    uv_buf_t b = uv_buf_init(w->data, (unsigned)len);
    int rv = uv_write(&w->req, s, &b, 1, cb);
    if (rv != 0) {
        free(w);
    }
    return rv;
}

/* Sends what OpenSSL produced to the peer. Returns -1 after closing C. */
static int flush_out(struct conn *c)
{
    size_t pending;
    while ((pending = BIO_ctrl_pending(c->net_out)) > 0) {
        struct wreq *w = malloc(sizeof(*w) + pending);
        if (w == NULL) {
            conn_close(c, "out of memory");
            return -1;
        }
        w->c = c;
        int n = BIO_read(c->net_out, w->data, (int)pending);
        if (n <= 0) {
            free(w);
            conn_close(c, "cannot read openssl's output buffer");
            return -1;
        }
        uv_buf_t b = uv_buf_init(w->data, (unsigned)n);
        int rv = uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_tcp_written);
        if (rv != 0) {
            free(w);
            char why[128];
            snprintf(why, sizeof(why), "tcp write: %s", uv_strerror(rv));
            conn_close(c, why);
            return -1;
        }
    }
    if (c->state == TUNNEL && !c->inner_paused && c->tcp.write_queue_size > QUEUE_HIGH) {
        c->inner_paused = true;
        uv_read_stop((uv_stream_t *)&c->inner);
    }
    return 0;
}

/* ---- the tunnel ---------------------------------------------------------------------- */

/* raft wrote plaintext on its end: encrypt it towards the peer. */
static void on_inner_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct conn *c = s->data;
    if (nread < 0) {
        free(buf->base);
        conn_close(c, NULL); /* raft closed its end, or the pair broke */
        return;
    }
    if (nread > 0 && c->state == TUNNEL) {
        /* A memory BIO never refuses bytes, so SSL_write takes all of them at once. */
        if (SSL_write(c->ssl, buf->base, (int)nread) != (int)nread) {
            char why[512], ossl[400];
            peer_tls_ctx_errors(NULL, ossl, sizeof(ossl));
            snprintf(why, sizeof(why), "tls write: %s", ossl);
            free(buf->base);
            conn_close(c, why);
            return;
        }
        flush_out(c);
    }
    free(buf->base);
}

/* Creates the socketpair; raft's end stays unowned by raft until handed over. */
static int open_pair(struct conn *c, char *why, size_t len)
{
    int fds[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) {
        snprintf(why, len, "socketpair: %s", strerror(errno));
        return -1;
    }
    c->raft_end = raft_malloc(sizeof(*c->raft_end));
    if (c->raft_end == NULL) {
        close(fds[0]);
        close(fds[1]);
        snprintf(why, len, "out of memory");
        return -1;
    }
    uv_pipe_init(c->tr->loop, &c->inner, 0);
    c->inner.data = c;
    c->inner_open = true;
    c->open_handles++;
    uv_pipe_init(c->tr->loop, c->raft_end, 0);
    c->raft_end->data = c;
    c->raft_end_open = true;
    c->open_handles++;
    int rv = uv_pipe_open(&c->inner, fds[1]);
    if (rv != 0) {
        close(fds[1]);
        close(fds[0]);
        snprintf(why, len, "uv_pipe_open: %s", uv_strerror(rv));
        return -1;
    }
    rv = uv_pipe_open(c->raft_end, fds[0]);
    if (rv != 0) {
        close(fds[0]);
        snprintf(why, len, "uv_pipe_open: %s", uv_strerror(rv));
        return -1;
    }
    rv = uv_read_start((uv_stream_t *)&c->inner, alloc_cb, on_inner_read);
    if (rv != 0) {
        snprintf(why, len, "reading the tunnel: %s", uv_strerror(rv));
        return -1;
    }
    return 0;
}

/* raft's end becomes raft's: raft closes it and frees it, so it no longer counts among the
 * handles this connection waits for. */
static void hand_over(struct conn *c)
{
    c->handed = true;
    c->raft_end = NULL;
    c->open_handles--;
}

/* Decrypted bytes from the peer: raft's handshake first (accepting side), then raft's. */
static int on_plain(struct conn *c, const unsigned char *p, size_t n)
{
    char why[512];
    while (n > 0 && c->state == PREAMBLE) {
        if (c->npreamble < PREAMBLE_BYTES) {
            size_t k = PREAMBLE_BYTES - c->npreamble;
            k = k < n ? k : n;
            memcpy(c->preamble + c->npreamble, p, k);
            c->npreamble += k;
            p += k;
            n -= k;
            if (c->npreamble < PREAMBLE_BYTES) {
                return 0;
            }
            uint64_t protocol = bytes_get_le64(c->preamble);
            uint64_t claimed = bytes_get_le64(c->preamble + 8);
            uint64_t alen = bytes_get_le64(c->preamble + 16);
            if (protocol != RAFT_HANDSHAKE_PROTOCOL) {
                snprintf(why, sizeof(why), "raft handshake protocol %llu, expected %d",
                         (unsigned long long)protocol, RAFT_HANDSHAKE_PROTOCOL);
                conn_close(c, why);
                return -1;
            }
            /* The check this module exists for: a certificate names one node, and raft
             * attributes every message of this connection to the id claimed here. */
            if (claimed != c->peer_id) {
                snprintf(why, sizeof(why),
                         "raft handshake claims node %llu but the certificate names node %llu",
                         (unsigned long long)claimed, (unsigned long long)c->peer_id);
                conn_close(c, why);
                return -1;
            }
            if (alen == 0 || alen > ADDRESS_MAX || alen % 8 != 0) {
                snprintf(why, sizeof(why), "raft handshake address length %llu is invalid",
                         (unsigned long long)alen);
                conn_close(c, why);
                return -1;
            }
            c->address_len = (size_t)alen;
            c->address = calloc(1, c->address_len + 1);
            if (c->address == NULL) {
                conn_close(c, "out of memory");
                return -1;
            }
            continue;
        }
        size_t k = c->address_len - c->naddress;
        k = k < n ? k : n;
        memcpy(c->address + c->naddress, p, k);
        c->naddress += k;
        p += k;
        n -= k;
        if (c->naddress < c->address_len) {
            return 0;
        }
        if (memchr(c->address, '\0', c->address_len) == NULL || c->address[0] == '\0') {
            conn_close(c, "raft handshake address is not a terminated string");
            return -1;
        }
        if (open_pair(c, why, sizeof(why)) != 0) {
            conn_close(c, why);
            return -1;
        }
        uv_timer_stop(&c->timer);
        c->state = TUNNEL;
        if (n > 0 && write_copy(c, (uv_stream_t *)&c->inner, p, n, on_inner_written) != 0) {
            conn_close(c, "cannot queue bytes for raft");
            return -1;
        }
        n = 0;
        uv_stream_t *stream = (uv_stream_t *)c->raft_end;
        hand_over(c);
        c->tr->accept_cb(c->tr->t, c->peer_id, c->address, stream);
    }
    if (n > 0 && c->state == TUNNEL) {
        int rv = write_copy(c, (uv_stream_t *)&c->inner, p, n, on_inner_written);
        if (rv != 0) {
            conn_close(c, NULL);
            return -1;
        }
        if (!c->tcp_paused && c->inner.write_queue_size > QUEUE_HIGH) {
            c->tcp_paused = true;
            uv_read_stop((uv_stream_t *)&c->tcp);
        }
    }
    return 0;
}

/* The dialing side's TLS handshake completed and the server proved the id dialed: send raft's
 * handshake inside the tunnel and give raft its end. */
static void outgoing_ready(struct conn *c)
{
    char why[512];
    size_t alen = (strlen(c->tr->address) + 1 + 7) / 8 * 8;
    unsigned char hs[PREAMBLE_BYTES + ADDRESS_MAX] = {0};
    bytes_put_le64(hs, RAFT_HANDSHAKE_PROTOCOL);
    bytes_put_le64(hs + 8, c->tr->id);
    bytes_put_le64(hs + 16, alen);
    memcpy(hs + PREAMBLE_BYTES, c->tr->address, strlen(c->tr->address));
    if (SSL_write(c->ssl, hs, (int)(PREAMBLE_BYTES + alen)) != (int)(PREAMBLE_BYTES + alen)) {
        char ossl[400];
        peer_tls_ctx_errors(NULL, ossl, sizeof(ossl));
        snprintf(why, sizeof(why), "tls write of raft's handshake: %s", ossl);
        conn_close(c, why);
        return;
    }
    if (flush_out(c) != 0) {
        return;
    }
    if (open_pair(c, why, sizeof(why)) != 0) {
        conn_close(c, why);
        return;
    }
    uv_timer_stop(&c->timer);
    c->state = TUNNEL;
    uv_stream_t *stream = (uv_stream_t *)c->raft_end;
    hand_over(c);
    struct raft_uv_connect *req = c->req;
    c->req = NULL;
    req->cb(req, stream, 0);
}

/* Runs OpenSSL over what arrived: the handshake, then decryption. */
static void pump_in(struct conn *c)
{
    char why[600], ossl[512];
    if (c->state == HANDSHAKE) {
        ERR_clear_error();
        int r = SSL_do_handshake(c->ssl);
        if (r != 1) {
            int e = SSL_get_error(c->ssl, r);
            if (e == SSL_ERROR_WANT_READ) {
                flush_out(c);
                return;
            }
            peer_tls_ctx_errors(c->ssl, ossl, sizeof(ossl));
            snprintf(why, sizeof(why), "tls handshake failed: %s", ossl);
            flush_out(c); /* the alert, so the peer learns why */
            conn_close(c, why);
            return;
        }
        if (flush_out(c) != 0) {
            return;
        }
        uint64_t id = 0;
        if (peer_tls_ctx_peer_id(c->ssl, &id, ossl, sizeof(ossl)) != 0) {
            conn_close(c, ossl);
            return;
        }
        if (c->outgoing) {
            if (id != c->peer_id) {
                snprintf(why, sizeof(why), "dialed node %llu but its certificate names node %llu",
                         (unsigned long long)c->peer_id, (unsigned long long)id);
                conn_close(c, why);
                return;
            }
            outgoing_ready(c);
            if (c->state != TUNNEL) {
                return;
            }
        } else {
            c->peer_id = id;
            c->state = PREAMBLE;
        }
    }
    unsigned char plain[16384];
    while (c->state == PREAMBLE || c->state == TUNNEL) {
        ERR_clear_error();
        int n = SSL_read(c->ssl, plain, sizeof(plain));
        if (n > 0) {
            if (on_plain(c, plain, (size_t)n) != 0) {
                return;
            }
            continue;
        }
        int e = SSL_get_error(c->ssl, n);
        if (e == SSL_ERROR_WANT_READ) {
            break;
        }
        if (e == SSL_ERROR_ZERO_RETURN) {
            conn_close(c, NULL);
            return;
        }
        peer_tls_ctx_errors(c->ssl, ossl, sizeof(ossl));
        snprintf(why, sizeof(why), "tls read: %s", ossl);
        conn_close(c, why);
        return;
    }
    if (c->state != CLOSING) {
        flush_out(c);
    }
}

static void on_tcp_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct conn *c = s->data;
    if (nread < 0) {
        free(buf->base);
        /* The peer went away. Before the tunnel that is worth a line; after it, raft logs. */
        conn_close(c, c->state == TUNNEL ? NULL
                      : nread == UV_EOF  ? "peer closed the connection during the handshake"
                                         : uv_strerror((int)nread));
        return;
    }
    if (nread > 0 && c->state != CLOSING) {
        if (BIO_write(c->net_in, buf->base, (int)nread) != (int)nread) {
            free(buf->base);
            conn_close(c, "cannot buffer received bytes for openssl");
            return;
        }
        free(buf->base);
        pump_in(c);
        return;
    }
    free(buf->base);
}

static void on_deadline(uv_timer_t *timer)
{
    struct conn *c = timer->data;
    char why[128];
    snprintf(why, sizeof(why), "no complete tls and raft handshake within %d ms",
             PEER_TLS_HANDSHAKE_MS);
    conn_close(c, why);
}

/* ---- creating connections ------------------------------------------------------------ */

/* A connection with its TCP handle and deadline initialised, in the transport's list. */
static struct conn *conn_new(struct transport *tr, bool outgoing, char *why, size_t len)
{
    struct conn *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        snprintf(why, len, "out of memory");
        return NULL;
    }
    c->tr = tr;
    c->outgoing = outgoing;
    c->state = HANDSHAKE;
    c->status = RAFT_NOCONNECTION;
    snprintf(c->peer, sizeof(c->peer), "?");
    ERR_clear_error();
    c->ssl = SSL_new(tr->ctx);
    c->net_in = BIO_new(BIO_s_mem());
    c->net_out = BIO_new(BIO_s_mem());
    if (c->ssl == NULL || c->net_in == NULL || c->net_out == NULL) {
        char ossl[256];
        peer_tls_ctx_errors(NULL, ossl, sizeof(ossl));
        snprintf(why, len, "cannot create a tls session: %.200s", ossl);
        BIO_free(c->net_in);
        BIO_free(c->net_out);
        SSL_free(c->ssl);
        free(c);
        return NULL;
    }
    /* A memory BIO at end of data asks to be retried instead of reporting EOF. */
    BIO_set_mem_eof_return(c->net_in, -1);
    BIO_set_mem_eof_return(c->net_out, -1);
    SSL_set_bio(c->ssl, c->net_in, c->net_out); /* the SSL now owns both */
    if (outgoing) {
        SSL_set_connect_state(c->ssl);
    } else {
        SSL_set_accept_state(c->ssl);
    }
    uv_tcp_init(tr->loop, &c->tcp);
    c->tcp.data = c;
    uv_timer_init(tr->loop, &c->timer);
    c->timer.data = c;
    c->open_handles = 2;
    uv_timer_start(&c->timer, on_deadline, PEER_TLS_HANDSHAKE_MS, 0);
    c->next = tr->conns;
    if (tr->conns != NULL) {
        tr->conns->prev = c;
    }
    tr->conns = c;
    return c;
}

static void name_peer(struct conn *c)
{
    struct sockaddr_storage ss;
    int sl = sizeof(ss);
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &sl) != 0) {
        return;
    }
    char ip[48] = "?";
    int port = 0;
    if (ss.ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)&ss;
        uv_ip4_name(a, ip, sizeof(ip));
        port = ntohs(a->sin_port);
    } else if (ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&ss;
        uv_ip6_name(a, ip, sizeof(ip));
        port = ntohs(a->sin6_port);
    }
    snprintf(c->peer, sizeof(c->peer), "%s:%d", ip, port);
}

static void on_connection(uv_stream_t *listener, int status)
{
    struct transport *tr = listener->data;
    char why[256];
    if (status != 0 || tr->closing) {
        return;
    }
    struct conn *c = conn_new(tr, false, why, sizeof(why));
    if (c == NULL) {
        fprintf(stderr, "peer_tls: cannot take an incoming connection: %s\n", why);
        return;
    }
    int rv = uv_accept(listener, (uv_stream_t *)&c->tcp);
    if (rv != 0) {
        snprintf(why, sizeof(why), "accept: %s", uv_strerror(rv));
        conn_close(c, why);
        return;
    }
    name_peer(c);
    uv_tcp_nodelay(&c->tcp, 1);
    rv = uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, on_tcp_read);
    if (rv != 0) {
        snprintf(why, sizeof(why), "read: %s", uv_strerror(rv));
        conn_close(c, why);
    }
}

static void on_connected(uv_connect_t *req, int status)
{
    struct conn *c = req->data;
    if (c->state == CLOSING) {
        return;
    }
    if (status != 0) {
        char why[128];
        snprintf(why, sizeof(why), "connect: %s", uv_strerror(status));
        /* A peer that is down is routine (raft retries): not worth a line each time. */
        (void)why;
        conn_close(c, NULL);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    int rv = uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, on_tcp_read);
    if (rv != 0) {
        char why[128];
        snprintf(why, sizeof(why), "read: %s", uv_strerror(rv));
        conn_close(c, why);
        return;
    }
    pump_in(c); /* the ClientHello */
}

/* Parses "IPv4:PORT", the form raft's addresses take. */
static int parse_address(const char *address, struct sockaddr_in *out)
{
    const char *colon = strrchr(address, ':');
    if (colon == NULL || colon == address || (size_t)(colon - address) >= 48) {
        return -1;
    }
    char host[48];
    memcpy(host, address, (size_t)(colon - address));
    host[colon - address] = '\0';
    char *end = NULL;
    long port = strtol(colon + 1, &end, 10);
    if (end == colon + 1 || *end != '\0' || port < 1 || port > 65535) {
        return -1;
    }
    return uv_ip4_addr(host, (int)port, out) == 0 ? 0 : -1;
}

/* ---- the raft_uv_transport interface ------------------------------------------------- */

static int tr_init(struct raft_uv_transport *t, raft_id id, const char *address)
{
    struct transport *tr = t->impl;
    if (strlen(address) >= sizeof(tr->address)) {
        snprintf(t->errmsg, sizeof(t->errmsg), "address %.200s is too long", address);
        return RAFT_NAMETOOLONG;
    }
    if (id != tr->id) {
        snprintf(t->errmsg, sizeof(t->errmsg), "raft id %llu is not the certificate's %llu",
                 (unsigned long long)id, (unsigned long long)tr->id);
        return RAFT_INVALID;
    }
    snprintf(tr->address, sizeof(tr->address), "%s", address);
    return 0;
}

static int tr_listen(struct raft_uv_transport *t, raft_uv_accept_cb cb)
{
    struct transport *tr = t->impl;
    struct sockaddr_in addr;
    if (parse_address(tr->address, &addr) != 0) {
        snprintf(t->errmsg, sizeof(t->errmsg), "raft address %.200s is not IPv4:PORT", tr->address);
        return RAFT_INVALID;
    }
    tr->accept_cb = cb;
    uv_tcp_init(tr->loop, &tr->listener);
    tr->listener.data = tr;
    tr->listener_inited = true;
    int rv = uv_tcp_bind(&tr->listener, (const struct sockaddr *)&addr, 0);
    if (rv == 0) {
        rv = uv_listen((uv_stream_t *)&tr->listener, 16, on_connection);
    }
    if (rv != 0) {
        snprintf(t->errmsg, sizeof(t->errmsg), "listen on %.150s: %.80s", tr->address,
                 uv_strerror(rv));
        return RAFT_IOERR;
    }
    return 0;
}

static int tr_connect(struct raft_uv_transport *t, struct raft_uv_connect *req, raft_id id,
                      const char *address, raft_uv_connect_cb cb)
{
    struct transport *tr = t->impl;
    char why[256];
    struct sockaddr_in addr;
    if (tr->closing) {
        return RAFT_CANCELED;
    }
    if (parse_address(address, &addr) != 0) {
        snprintf(t->errmsg, sizeof(t->errmsg), "peer address %.200s is not IPv4:PORT", address);
        return RAFT_NOCONNECTION;
    }
    struct conn *c = conn_new(tr, true, why, sizeof(why));
    if (c == NULL) {
        snprintf(t->errmsg, sizeof(t->errmsg), "%s", why);
        return RAFT_NOMEM;
    }
    c->peer_id = id;
    snprintf(c->peer, sizeof(c->peer), "%s", address);
    req->cb = cb;
    c->connect.data = c;
    int rv = uv_tcp_connect(&c->connect, &c->tcp, (const struct sockaddr *)&addr, on_connected);
    if (rv != 0) {
        /* Not yet owned by raft: close without calling its callback, report synchronously. */
        conn_close(c, NULL);
        snprintf(t->errmsg, sizeof(t->errmsg), "connect to %.150s: %.80s", address,
                 uv_strerror(rv));
        return RAFT_NOCONNECTION;
    }
    c->req = req;
    return 0;
}

static void listener_closed(uv_handle_t *h)
{
    struct transport *tr = h->data;
    tr->listener_closed = true;
    maybe_transport_closed(tr);
}

static void tr_close(struct raft_uv_transport *t, raft_uv_transport_close_cb cb)
{
    struct transport *tr = t->impl;
    tr->closing = true;
    tr->close_cb = cb;
    for (struct conn *c = tr->conns; c != NULL; c = c->next) {
        c->status = RAFT_CANCELED;
        conn_close(c, NULL);
    }
    if (tr->listener_inited && !uv_is_closing((uv_handle_t *)&tr->listener)) {
        uv_close((uv_handle_t *)&tr->listener, listener_closed);
    }
    /* Every close above completes in a later loop iteration, so CB never runs inside this
     * call unless nothing was open at all. */
    maybe_transport_closed(tr);
}

int peer_tls_init(struct raft_uv_transport *t, uv_loop_t *loop, const struct peer_tls_config *conf,
                  char *errmsg, size_t errlen)
{
    memset(t, 0, sizeof(*t));
    struct transport *tr = calloc(1, sizeof(*tr));
    if (tr == NULL) {
        snprintf(errmsg, errlen, "raft tls: out of memory");
        return -1;
    }
    tr->ctx =
        peer_tls_ctx_new(conf->ca_file, conf->cert_file, conf->key_file, conf->id, errmsg, errlen);
    if (tr->ctx == NULL) {
        free(tr);
        return -1;
    }
    tr->t = t;
    tr->loop = loop;
    tr->id = conf->id;
    t->impl = tr;
    t->init = tr_init;
    t->listen = tr_listen;
    t->connect = tr_connect;
    t->close = tr_close;
    return 0;
}

static void free_after_listener(uv_handle_t *h)
{
    struct transport *tr = h->data;
    SSL_CTX_free(tr->ctx);
    free(tr);
}

void peer_tls_free(struct raft_uv_transport *t)
{
    struct transport *tr = t->impl;
    if (tr == NULL) {
        return;
    }
    t->impl = NULL;
    /* raft closed the transport before this on every normal path; if it never did (a start
     * that failed), the listener may still be open and must be closed before its memory goes. */
    if (tr->listener_inited && !uv_is_closing((uv_handle_t *)&tr->listener)) {
        tr->listener.data = tr;
        uv_close((uv_handle_t *)&tr->listener, free_after_listener);
        return;
    }
    SSL_CTX_free(tr->ctx);
    free(tr);
}
