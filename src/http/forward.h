/*
 * forward: an asynchronous HTTP/1.1 client on the node's libuv loop, with which a follower
 * forwards a client's request to the leader (design brief, write path step 1).
 *
 * libcurl's multi-socket interface does the HTTP work and libuv drives it: one uv_poll_t per
 * socket libcurl asks us to watch and one uv_timer_t for libcurl's timeouts, so the loop thread
 * never blocks (host names, if any, are resolved on libcurl's resolver thread). The multi
 * handle keeps finished connections open in its connection cache, so repeated requests to the
 * same leader reuse kept-alive connections instead of paying a TCP handshake each time.
 *
 * Every function of this module must be called on the loop thread, and every callback runs
 * there, from the loop itself: never from inside forward_send() or forward_close().
 *
 * Loop guard: every forwarded request carries FWD_HEADER_FORWARDED_BY with the sender's node
 * id. A node that receives a request with this header must answer it itself (or fail it) and
 * never forward it again, so a request makes at most one hop even while nodes disagree about
 * who leads.
 */
#ifndef CONCLAVE_FORWARD_H
#define CONCLAVE_FORWARD_H

#include <stddef.h>

#include <uv.h>

#include "http/http_response.h"

#define FWD_HEADER_FORWARDED_BY "X-Conclave-Forwarded-By"

/* The largest response body accepted; a larger one fails the request with FWD_ETOOLARGE. */
#define FWD_MAX_RESPONSE_BYTES ((size_t)16 * 1024 * 1024)

/*
 * Error codes, passed to forward_done_cb and returned by forward_init() and forward_send().
 *
 * For a write, FWD_EUNREACHABLE and FWD_ETLS mean the leader certainly never saw the request: it
 * can be retried anywhere (a 503 for the client). After FWD_ETIMEDOUT, FWD_ERESET, FWD_EPROTO,
 * FWD_ETOOLARGE, FWD_ENOMEM or FWD_ECLOSED from the callback the request may have reached the
 * leader, so the outcome is unknown (a 504) and the client must retry with the same request
 * id. libcurl itself re-sends a request once, on a fresh connection, when a reused kept-alive
 * connection turns out to be closed before any answer byte arrived; request ids make that
 * harmless too.
 */
#define FWD_EUNREACHABLE (-1) /* connect refused, failed or timed out: nothing was sent */
#define FWD_ETIMEDOUT    (-2) /* connected, but no full answer within the timeout */
#define FWD_ENOMEM       (-3) /* out of memory */
#define FWD_ECLOSED      (-4) /* forward_close() was called */
#define FWD_EINVAL       (-5) /* a bad argument, or libcurl unusable; nothing was sent */
#define FWD_ETOOLARGE    (-6) /* the response body is over FWD_MAX_RESPONSE_BYTES */
#define FWD_EPROTO       (-7) /* the answer is not valid HTTP/1.1 */
#define FWD_ERESET       (-8) /* connection lost after the request went out, before the answer */
/* https: the TLS handshake failed or the server's certificate was refused (another CA, not
 * the server name asked for, expired); nothing was sent. */
#define FWD_ETLS (-9)

/* An upstream answer. Everything it points to is owned by the module and valid only during the
 * callback; copy what you keep. Header values are without surrounding blanks. */
struct forward_response {
    int status;                 /* HTTP status from upstream, any value (4xx and 5xx too) */
    const char *body;           /* never NULL; followed by a NUL byte that len does not count */
    size_t len;                 /* body length in bytes */
    const char *content_type;   /* Content-Type, or NULL */
    const char *retry_after;    /* Retry-After, or NULL */
    const char *etag;           /* ETag, or NULL */
    const char *conclave_index; /* X-Conclave-Index, or NULL */
    /* WWW-Authenticate, or NULL: a 401 of the leader (a token revoked between the follower's
     * check and the leader's) says how to authenticate, as the follower's own 401 does. */
    const char *www_authenticate;
    /* Connections this request opened (CURLINFO_NUM_CONNECTS): 0 when it ran on a kept-alive
     * one. For metrics and tests. */
    long new_connections;
};

/*
 * Called exactly once per accepted forward_send(), on the loop thread. rc is 0 when a complete
 * answer arrived (whatever its status): resp is then non-NULL and errmsg NULL. Otherwise rc is
 * one of the FWD_E* codes, resp is NULL and errmsg says what failed (for instance
 * "PUT http://10.0.0.2:8082/v1/projects/p/configs/k: connection refused"; the query string is
 * left out of messages). errmsg is only valid during the call. The callback may call forward_send()
 * and forward_close().
 */
typedef void (*forward_done_cb)(void *data, int rc, const struct forward_response *resp,
                                const char *errmsg);

struct fwd;

/*
 * Creates a forwarder on loop. self_node_id goes into FWD_HEADER_FORWARDED_BY of every
 * request. The first call in the process also runs curl_global_init(), under a pthread_once so
 * that concurrent first calls from several threads are safe; nothing calls
 * curl_global_cleanup(), libcurl's global state lives as long as the process.
 *
 * On success *out is set and the caller must eventually call forward_close() and run the loop
 * until its callback. On failure (FWD_ENOMEM, or FWD_EINVAL when libcurl or the timer cannot
 * be set up) *out is NULL, nothing is left to release and errmsg says why.
 */
int forward_init(struct fwd **out, uv_loop_t *loop, unsigned self_node_id, char *errmsg,
                 size_t errlen);

/*
 * HTTPS for the following requests to https:// URLs: the server's certificate must chain to a
 * CA of ca_file (PEM; the system's CAs are not trusted) and name the server (see
 * forward_send). No client certificate is presented. ca_file is copied; it is read by
 * libcurl for each new connection, and here once to fail early. Returns 0, or FWD_EINVAL
 * (the file cannot be read) or FWD_ENOMEM with errmsg filled; on failure nothing changed.
 */
int forward_set_tls(struct fwd *f, const char *ca_file, char *errmsg, size_t errlen);

/*
 * Starts one request: method (an HTTP token such as "GET" or "PUT") on base_url (an
 * "http://host:port" or "https://host:port" URL; https only after forward_set_tls(); other
 * schemes are refused) followed by path_and_query (starting with '/', sent as is: no
 * dot-segment removal, no re-encoding).
 *
 * server_name (https only; NULL: the host of base_url) is the name the server's certificate
 * must carry (a subjectAltName DNS entry, or without any, its common name). The connection
 * still goes to base_url's host and port; only the name checked (and sent as SNI and Host)
 * changes. This is how a node asks for "the leader, node N" at the leader's address.
 *
 * Headers sent: FWD_HEADER_FORWARDED_BY, Authorization when authorization is non-NULL,
 * X-Request-Id when request_id is non-NULL, and Content-Type: application/json when body is
 * non-NULL (len bytes, may be 0). POST, PUT and PATCH without a body send an empty one.
 * Redirects are not followed (a 3xx is returned like any answer), proxies from the environment
 * are ignored, and timeout_ms (> 0) bounds the whole exchange including the connect.
 *
 * Every argument is copied; the caller keeps ownership of all of them. data is handed to cb
 * untouched and not owned.
 *
 * Returns 0 when the request was accepted: cb then runs exactly once, later, from the loop.
 * Otherwise returns FWD_EINVAL (bad URL or server name, https without forward_set_tls(), method,
 * header value with CR/LF, zero timeout, NULL cb), FWD_ENOMEM, or FWD_ECLOSED (after
 * forward_close()), fills errmsg, and cb never runs.
 */
int forward_send(struct fwd *f, const char *base_url, const char *server_name, const char *method,
                 const char *path_and_query, const char *authorization, const char *request_id,
                 const void *body, size_t len, unsigned timeout_ms, forward_done_cb cb, void *data,
                 char *errmsg, size_t errlen);

/* forward_send() that also sends the headers of EXTRA (NULL-name terminated, may be NULL):
 * names must be HTTP tokens other than the ones forward_send() sets, values without control
 * characters (FWD_EINVAL otherwise). The node passes a write's conditional headers (If-Match,
 * If-None-Match) to the leader this way. */
int forward_send_ex(struct fwd *f, const char *base_url, const char *server_name,
                    const char *method, const char *path_and_query, const char *authorization,
                    const char *request_id, const struct http_header *extra, const void *body,
                    size_t len, unsigned timeout_ms, forward_done_cb cb, void *data, char *errmsg,
                    size_t errlen);

/*
 * Stops everything: pending requests are abandoned (their connections closed) and each of their
 * callbacks runs with FWD_ECLOSED, from the loop, before closed_cb. Then closed_cb (may be
 * NULL) runs with data once every handle is closed and f is freed; afterwards the module holds
 * nothing on the loop, so uv_loop_close() can return 0. Later forward_send() calls, including
 * those made from the FWD_ECLOSED callbacks, fail with FWD_ECLOSED. Calling forward_close() again
 * does nothing (its arguments are ignored). f must not be used after closed_cb.
 */
void forward_close(struct fwd *f, void (*closed_cb)(void *data), void *data);

#endif /* CONCLAVE_FORWARD_H */
