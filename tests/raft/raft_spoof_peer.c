/*
 * raft_spoof_peer: plays a hostile raft peer against one node, for tests/raft/raft_spoof.sh.
 *
 *   raft_spoof_peer 127.0.0.1:PORT CLAIM_ID TERM plain|tls|tls-nocert [CERT KEY]
 *                   [--quiet|--vote-only]
 *
 * Connects (plain TCP, or TLS with CERT/KEY, or TLS presenting no certificate; the server's
 * certificate is not checked: the point is what the server accepts), sends raft 0.15's TCP
 * handshake claiming CLAIM_ID, then a RequestVote (not a pre-vote, disrupting the leader) of
 * term TERM, an AppendEntries of term TERM carrying one entry, and a TimeoutNow of term TERM,
 * unless --quiet (handshake only) or --vote-only (handshake and RequestVote). Then waits up to 2 s
 * and prints "closed" when the node closed the connection (EOF, reset or a TLS alert), "open" when
 * it kept it. Exits 2 when the connection or the local TLS setup failed before anything was sent.
 *
 * The encoding is written from raft 0.15's src/uv_tcp_connect.c (handshake) and
 * src/uv_encoding.c (messages): every integer is 64-bit little endian; a message is its type,
 * the length of its header, the header, then its payload.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

struct out {
    unsigned char b[1024];
    size_t n;
};

static void put64(struct out *o, uint64_t v)
{
    for (int i = 0; i < 8; i++) {
        o->b[o->n++] = (unsigned char)(v >> (8 * i));
    }
}

static void put_bytes(struct out *o, const void *p, size_t n)
{
    memcpy(o->b + o->n, p, n);
    o->n += n;
}

/* Message types of raft.h (enum raft_io_type). */
enum { APPEND_ENTRIES = 1, REQUEST_VOTE = 3, TIMEOUT_NOW = 6 };

static void encode(struct out *o, uint64_t claim, uint64_t term, int quiet)
{
    const char addr[16] = "127.0.0.1:1"; /* NUL-padded to 16, a multiple of 8 */
    put64(o, 1);                         /* handshake protocol */
    put64(o, claim);
    put64(o, sizeof(addr));
    put_bytes(o, addr, sizeof(addr));
    if (quiet == 1) {
        return;
    }
    /* RequestVote: term, candidate, last index, last term, flags (bit 0: disrupt leader). */
    put64(o, REQUEST_VOTE);
    put64(o, 5 * 8);
    put64(o, term);
    put64(o, claim);
    put64(o, 1000000);
    put64(o, term);
    put64(o, 1);
    if (quiet == 2) {
        return;
    }
    /* AppendEntries: term, prev index, prev term, commit, then the batch header (count, and
     * per entry: term, type byte, 3 unused bytes, length as 32 bits), then the payload. */
    put64(o, APPEND_ENTRIES);
    put64(o, 4 * 8 + 8 + 16);
    put64(o, term);
    put64(o, 0);
    put64(o, 0);
    put64(o, 1000000);
    put64(o, 1);
    put64(o, term);
    put64(o, 1 /* RAFT_COMMAND */ | (uint64_t)8 << 32);
    put_bytes(o, "spoofed!", 8);
    /* TimeoutNow: term, last index, last term. */
    put64(o, TIMEOUT_NOW);
    put64(o, 3 * 8);
    put64(o, term);
    put64(o, 1000000);
    put64(o, term);
}

int main(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr, "usage: raft_spoof_peer IP:PORT CLAIM_ID TERM plain|tls|tls-nocert "
                        "[CERT KEY] [--quiet]\n");
        return 2;
    }
    const char *mode = argv[4];
    int quiet = strcmp(argv[argc - 1], "--quiet") == 0       ? 1
                : strcmp(argv[argc - 1], "--vote-only") == 0 ? 2
                                                             : 0;
    char host[64];
    snprintf(host, sizeof(host), "%s", argv[1]);
    char *colon = strrchr(host, ':');
    if (colon == NULL) {
        fprintf(stderr, "raft_spoof_peer: %s is not IP:PORT\n", argv[1]);
        return 2;
    }
    *colon = '\0';
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(colon + 1))};
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
        fprintf(stderr, "raft_spoof_peer: %s is not an IPv4 address\n", host);
        return 2;
    }
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        fprintf(stderr, "raft_spoof_peer: connect %s: %s\n", argv[1], strerror(errno));
        return 2;
    }
    struct out o = {.n = 0};
    encode(&o, strtoull(argv[2], NULL, 10), strtoull(argv[3], NULL, 10), quiet);

    /* One way out past this point, so that the TLS objects are always released (the ASan
     * build of this tool fails on a leak). */
    SSL_CTX *ctx = NULL;
    SSL *ssl = NULL;
    int rc = 0;
    const char *verdict = "open";
    if (strcmp(mode, "plain") == 0) {
        if (write(fd, o.b, o.n) != (ssize_t)o.n) {
            fprintf(stderr, "raft_spoof_peer: write: %s\n", strerror(errno));
            rc = 2;
            goto out;
        }
    } else {
        ctx = SSL_CTX_new(TLS_client_method());
        if (ctx == NULL) {
            fprintf(stderr, "raft_spoof_peer: cannot make a tls context\n");
            rc = 2;
            goto out;
        }
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
        if (strcmp(mode, "tls") == 0 &&
            (argc < 7 || SSL_CTX_use_certificate_chain_file(ctx, argv[5]) != 1 ||
             SSL_CTX_use_PrivateKey_file(ctx, argv[6], SSL_FILETYPE_PEM) != 1)) {
            fprintf(stderr, "raft_spoof_peer: cannot load the certificate and key\n");
            rc = 2;
            goto out;
        }
        ssl = SSL_new(ctx);
        if (ssl == NULL) {
            fprintf(stderr, "raft_spoof_peer: cannot make a tls connection\n");
            rc = 2;
            goto out;
        }
        SSL_set_fd(ssl, fd);
        /* TLS 1.2 servers would refuse a client at SSL_connect; ours (1.3 only) may answer
         * after it, so a refusal shows at the write or at the reads below. */
        if (SSL_connect(ssl) != 1 || SSL_write(ssl, o.b, (int)o.n) != (int)o.n) {
            verdict = "closed";
            goto out;
        }
    }
    /* Whatever the node answers is read and dropped; what counts is whether it hangs up. */
    for (int rounds = 0; rounds < 40; rounds++) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int r = (ssl != NULL && SSL_pending(ssl) > 0) ? 1 : poll(&p, 1, 50);
        if (r == 0) {
            continue;
        }
        char buf[4096];
        ssize_t n = ssl != NULL ? SSL_read(ssl, buf, sizeof(buf)) : read(fd, buf, sizeof(buf));
        if (n <= 0) {
            verdict = "closed";
            break;
        }
    }
out:
    if (rc == 0) {
        printf("%s\n", verdict);
    }
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    close(fd);
    return rc;
}
