#include "http/forward.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include <curl/curl.h>

/* Idle connections the multi handle keeps open for reuse, over all upstreams together. */
#define FWD_MAX_CACHED_CONNS 64L
/* A cached connection idle for longer is not reused but closed. It stays well below the HTTP
 * server's default keep-alive idle timeout (60 s, docs/http.md), so that we never send on a
 * connection the leader is closing at the same moment. */
#define FWD_MAX_IDLE_AGE_S 30L
#define FWD_USER_AGENT     "conclave-forward"

/* The response headers a request captures, in the order of the fields of struct forward_response
 * they fill. */
enum {
    HDR_CONTENT_TYPE,
    HDR_RETRY_AFTER,
    HDR_ETAG,
    HDR_CONCLAVE_INDEX,
    HDR_WWW_AUTHENTICATE,
    HDR_COUNT
};
static const char *const captured_headers[HDR_COUNT] = {"Content-Type", "Retry-After", "ETag",
                                                        "X-Conclave-Index", "WWW-Authenticate"};

struct forward_sock;
struct forward_req;

struct fwd {
    uv_loop_t *loop;
    CURLM *multi;             /* NULL once forward_close() ran: no libcurl call after that */
    uv_timer_t timer;         /* libcurl's single timeout */
    char forwarded_by[64];    /* the complete "X-Conclave-Forwarded-By: N" header line */
    struct forward_req *reqs; /* accepted, not yet answered; after forward_close(): to be failed */
    struct forward_sock *socks; /* poll handles not yet closing */
    unsigned open_handles;      /* the timer plus every poll handle whose close callback is due */
    bool closing;               /* forward_close() was called */
    bool timer_closed;          /* the timer's close callback ran, FWD_ECLOSED was delivered */
    bool poll_failed;           /* some request in reqs has poll_err set */
    int poll_errno;             /* the socket error on_poll() is reporting to libcurl, or 0 */
    void (*closed_cb)(void *data);
    void *closed_data;
    char *ca_file; /* forward_set_tls(): the only CAs an https server may chain to; or NULL */
};

/* One socket libcurl asked us to watch, associated with it through curl_multi_assign(). */
struct forward_sock {
    uv_poll_t poll;
    struct fwd *f;
    curl_socket_t fd;
    struct forward_sock *prev, *next;
};

/* One request from forward_send() to its callback. Owns every buffer libcurl reads or writes. */
struct forward_req {
    struct fwd *f;
    struct forward_req *prev, *next;
    CURL *easy; /* NULL once forward_close() cleaned it up */
    struct curl_slist *headers;
    char *body; /* the request body copy, or NULL */
    char *resp; /* the response body, NUL-terminated, or NULL while empty */
    size_t resp_len, resp_cap;
    char *hdr[HDR_COUNT];
    char *what;                    /* "METHOD base_url/path" without the query, for messages */
    struct curl_slist *connect_to; /* https with a server name: "NAME:PORT:HOST:PORT" */
    forward_done_cb cb;
    void *data;
    bool sent;      /* a connection was ready and the request about to go out */
    bool too_large; /* the body limit stopped the transfer */
    bool oom;       /* one of our callbacks ran out of memory */
    int poll_err;   /* a libuv error that leaves the request without a watched socket */
    char errbuf[CURL_ERROR_SIZE];
};

/* ---------------------------------------------------------------- helpers */

static void set_err(char *errmsg, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(char *errmsg, size_t errlen, const char *fmt, ...)
{
    if (errmsg == NULL || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(errmsg, errlen, fmt, ap);
    va_end(ap);
}

/* An RFC 9110 token, as a method must be. */
static bool is_token(const char *s)
{
    if (*s == '\0')
        return false;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c <= 0x20 || c >= 0x7f || strchr("\"(),/:;<=>?@[\\]{}", c) != NULL)
            return false;
    }
    return true;
}

/* A header value we can put on the wire unchanged: no control character but tab. */
static bool is_header_value(const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return false;
    }
    return true;
}

/* Appends "name: value" to *list; false when out of memory (*list is unchanged then). */
static bool add_header(struct curl_slist **list, const char *name, const char *value)
{
    char line[512];
    char *heap = NULL;
    const char *text = line;
    int n = snprintf(line, sizeof line, "%s: %s", name, value);
    if (n < 0)
        return false;
    if ((size_t)n >= sizeof line) {
        size_t nlen = strlen(name);
        heap = malloc(nlen + 2 + strlen(value) + 1);
        if (heap == NULL)
            return false;
        memcpy(heap, name, nlen);
        memcpy(heap + nlen, ": ", 2);
        strcpy(heap + nlen + 2, value);
        text = heap;
    }
    struct curl_slist *grown = curl_slist_append(*list, text);
    free(heap);
    if (grown == NULL)
        return false;
    *list = grown;
    return true;
}

static void req_free(struct forward_req *req)
{
    if (req->easy != NULL)
        curl_easy_cleanup(req->easy);
    curl_slist_free_all(req->headers);
    curl_slist_free_all(req->connect_to);
    free(req->body);
    free(req->resp);
    for (int i = 0; i < HDR_COUNT; i++)
        free(req->hdr[i]);
    free(req->what);
    free(req);
}

static void req_link(struct fwd *f, struct forward_req *req)
{
    req->prev = NULL;
    req->next = f->reqs;
    if (f->reqs != NULL)
        f->reqs->prev = req;
    f->reqs = req;
}

static void req_unlink(struct fwd *f, struct forward_req *req)
{
    if (req->prev != NULL)
        req->prev->next = req->next;
    else
        f->reqs = req->next;
    if (req->next != NULL)
        req->next->prev = req->prev;
    req->prev = req->next = NULL;
}

/* ---------------------------------------------------------------- libcurl's data callbacks */

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    struct forward_req *req = userdata;
    size_t n = size * nmemb;
    if (n > FWD_MAX_RESPONSE_BYTES - req->resp_len) {
        req->too_large = true;
        return 0; /* anything but n aborts the transfer */
    }
    if (req->resp_len + n + 1 > req->resp_cap) {
        size_t cap = req->resp_cap ? req->resp_cap : 4096;
        while (cap < req->resp_len + n + 1)
            cap *= 2;
        if (cap > FWD_MAX_RESPONSE_BYTES + 1)
            cap = FWD_MAX_RESPONSE_BYTES + 1;
        char *grown = realloc(req->resp, cap);
        if (grown == NULL) {
            req->oom = true;
            return 0;
        }
        req->resp = grown;
        req->resp_cap = cap;
    }
    memcpy(req->resp + req->resp_len, ptr, n);
    req->resp_len += n;
    req->resp[req->resp_len] = '\0';
    return n;
}

/* Receives each header line with its CRLF, the status line included. */
static size_t on_header(char *buffer, size_t size, size_t nitems, void *userdata)
{
    struct forward_req *req = userdata;
    size_t n = size * nitems;

    /* A new status line starts a new response (after a 1xx): forget what came before. */
    if (n >= 5 && memcmp(buffer, "HTTP/", 5) == 0) {
        for (int i = 0; i < HDR_COUNT; i++) {
            free(req->hdr[i]);
            req->hdr[i] = NULL;
        }
        return n;
    }
    const char *colon = memchr(buffer, ':', n);
    if (colon == NULL)
        return n; /* the blank line that ends the headers */
    size_t name_len = (size_t)(colon - buffer);
    while (name_len > 0 && (buffer[name_len - 1] == ' ' || buffer[name_len - 1] == '\t'))
        name_len--;
    const char *value = colon + 1;
    const char *end = buffer + n;
    while (value < end && (*value == ' ' || *value == '\t'))
        value++;
    while (end > value && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t'))
        end--;

    for (int i = 0; i < HDR_COUNT; i++) {
        const char *want = captured_headers[i];
        if (strlen(want) != name_len || strncasecmp(want, buffer, name_len) != 0)
            continue;
        if (req->hdr[i] != NULL)
            break; /* the first of repeated fields wins */
        req->hdr[i] = strndup(value, (size_t)(end - value));
        if (req->hdr[i] == NULL) {
            req->oom = true;
            return 0;
        }
        break;
    }
    return n;
}

/* Runs once a connection is ready, just before the request is written to it. */
static int on_prereq(void *clientp, char *conn_primary_ip, char *conn_local_ip,
                     int conn_primary_port, int conn_local_port)
{
    (void)conn_primary_ip;
    (void)conn_local_ip;
    (void)conn_primary_port;
    (void)conn_local_port;
    struct forward_req *req = clientp;
    req->sent = true;
    return CURL_PREREQFUNC_OK;
}

/* ---------------------------------------------------------------- completion */

/* Maps a finished transfer to our codes; see "Error codes" in forward.h. A request that never
 * had a ready connection was certainly not delivered, whatever the failure. */
static int classify(const struct forward_req *req, CURLcode res)
{
    if (req->oom || res == CURLE_OUT_OF_MEMORY)
        return FWD_ENOMEM;
    if (req->too_large || res == CURLE_FILESIZE_EXCEEDED)
        return FWD_ETOOLARGE;
    if (!req->sent) {
        switch (res) {
        case CURLE_SSL_CONNECT_ERROR:
        case CURLE_PEER_FAILED_VERIFICATION:
        case CURLE_SSL_CERTPROBLEM:
        case CURLE_SSL_CIPHER:
        case CURLE_SSL_CACERT_BADFILE:
        case CURLE_SSL_ISSUER_ERROR:
        case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
        case CURLE_SSL_INVALIDCERTSTATUS:
            return FWD_ETLS;
        default:
            return FWD_EUNREACHABLE;
        }
    }
    switch (res) {
    case CURLE_OPERATION_TIMEDOUT:
        return FWD_ETIMEDOUT;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
        return FWD_ERESET;
    default:
        return FWD_EPROTO;
    }
}

/*
 * Takes req out of the multi handle, runs its callback and frees it: with libcurl's result res,
 * or, when poll_failure, with req->poll_err for a transfer libcurl still considers running.
 * Must not run inside a libcurl call. The callback may call forward_send() and forward_close(); req
 * is unlinked first, so forward_close() does not see it.
 */
static void req_finish(struct forward_req *req, CURLcode res, bool poll_failure)
{
    struct fwd *f = req->f;
    req_unlink(f, req);
    curl_multi_remove_handle(f->multi, req->easy);

    int rc;
    if (poll_failure)
        rc = req->sent ? FWD_ERESET : FWD_EUNREACHABLE;
    else
        rc = res == CURLE_OK && !req->oom ? 0 : classify(req, res);
    if (rc == 0) {
        long status = 0, connects = 0;
        curl_easy_getinfo(req->easy, CURLINFO_RESPONSE_CODE, &status);
        curl_easy_getinfo(req->easy, CURLINFO_NUM_CONNECTS, &connects);
        struct forward_response resp = {
            .status = (int)status,
            .body = req->resp != NULL ? req->resp : "",
            .len = req->resp_len,
            .content_type = req->hdr[HDR_CONTENT_TYPE],
            .retry_after = req->hdr[HDR_RETRY_AFTER],
            .etag = req->hdr[HDR_ETAG],
            .www_authenticate = req->hdr[HDR_WWW_AUTHENTICATE],
            .conclave_index = req->hdr[HDR_CONCLAVE_INDEX],
            .new_connections = connects,
        };
        req->cb(req->data, 0, &resp, NULL);
    } else {
        char msg[CURL_ERROR_SIZE + 512];
        if (poll_failure)
            snprintf(msg, sizeof msg, "%s: cannot watch the socket: %s", req->what,
                     uv_strerror(req->poll_err));
        else if (rc == FWD_ETOOLARGE)
            snprintf(msg, sizeof msg, "%s: response body over %zu bytes", req->what,
                     FWD_MAX_RESPONSE_BYTES);
        else if (rc == FWD_ENOMEM)
            snprintf(msg, sizeof msg, "%s: out of memory", req->what);
        else if (f->poll_errno != 0 && strstr(req->errbuf, "select/poll") != NULL)
            /* libcurl only learnt that the socket failed; say how (reset, refused, ...). */
            snprintf(msg, sizeof msg, "%s: %s", req->what, strerror(f->poll_errno));
        else
            snprintf(msg, sizeof msg, "%s: %s", req->what,
                     req->errbuf[0] ? req->errbuf : curl_easy_strerror(res));
        req->cb(req->data, rc, NULL, msg);
    }
    req_free(req);
}

/* Delivers every finished transfer. Runs after each curl_multi_socket_action(). */
static void check_completions(struct fwd *f)
{
    CURLMsg *msg;
    int left;
    /* f->multi turns NULL when a callback calls forward_close(); f itself stays valid until the
     * close callbacks, which run after this loop iteration. */
    while (f->multi != NULL && (msg = curl_multi_info_read(f->multi, &left)) != NULL) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        void *priv = NULL;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv);
        /* msg dies with the removal that req_finish() does; take the result first. */
        CURLcode res = msg->data.result;
        if (priv != NULL)
            req_finish(priv, res, false);
    }
    while (f->multi != NULL && f->poll_failed) {
        f->poll_failed = false;
        for (struct forward_req *req = f->reqs; req != NULL; req = req->next) {
            if (req->poll_err != 0) {
                f->poll_failed = true; /* look again: the callback may change the list */
                req_finish(req, CURLE_OK, true);
                break;
            }
        }
    }
}

/* ---------------------------------------------------------------- libuv driving libcurl */

static void on_sock_closed(uv_handle_t *handle);

static void sock_close(struct forward_sock *sk)
{
    struct fwd *f = sk->f;
    if (sk->prev != NULL)
        sk->prev->next = sk->next;
    else
        f->socks = sk->next;
    if (sk->next != NULL)
        sk->next->prev = sk->prev;
    /* uv_close() stops watching the descriptor at once, before libcurl closes it. */
    uv_close((uv_handle_t *)&sk->poll, on_sock_closed);
}

static void maybe_finish_close(struct fwd *f)
{
    if (!f->closing || !f->timer_closed || f->open_handles != 0)
        return;
    void (*cb)(void *) = f->closed_cb;
    void *data = f->closed_data;
    free(f->ca_file);
    free(f);
    if (cb != NULL)
        cb(data);
}

static void on_sock_closed(uv_handle_t *handle)
{
    struct forward_sock *sk = handle->data;
    struct fwd *f = sk->f;
    free(sk);
    f->open_handles--;
    maybe_finish_close(f);
}

static void on_poll(uv_poll_t *handle, int status, int events)
{
    struct forward_sock *sk = handle->data;
    struct fwd *f = sk->f;
    if (f->multi == NULL)
        return;
    int flags = 0;
    if (status < 0) {
        /* libuv stopped the handle on POLLERR; libcurl fails the transfer at once. */
        flags = CURL_CSELECT_ERR;
        int so_error = 0;
        socklen_t optlen = sizeof so_error;
        if (getsockopt(sk->fd, SOL_SOCKET, SO_ERROR, &so_error, &optlen) == 0)
            f->poll_errno = so_error;
    } else {
        if (events & UV_READABLE)
            flags |= CURL_CSELECT_IN;
        if (events & UV_WRITABLE)
            flags |= CURL_CSELECT_OUT;
    }
    int running;
    curl_multi_socket_action(f->multi, sk->fd, flags, &running);
    check_completions(f);
    f->poll_errno = 0;
}

static void on_timeout(uv_timer_t *timer)
{
    struct fwd *f = timer->data;
    if (f->multi == NULL)
        return;
    int running;
    curl_multi_socket_action(f->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_completions(f);
}

/* Records that easy's transfer lost its socket watch; check_completions() fails it. */
static void fail_transfer(struct fwd *f, CURL *easy, int uv_err)
{
    void *priv = NULL;
    if (easy != NULL)
        curl_easy_getinfo(easy, CURLINFO_PRIVATE, &priv);
    if (priv == NULL)
        return; /* an internal handle; its connection will time out or be closed */
    struct forward_req *req = priv;
    req->poll_err = uv_err;
    f->poll_failed = true;
}

/*
 * CURLMOPT_SOCKETFUNCTION. Runs inside libcurl calls, so it only adjusts libuv handles; it
 * never calls back into libcurl except curl_multi_assign(). A failure is not returned to
 * libcurl (that would abort every transfer of the multi handle) but pinned on the one transfer.
 */
static int on_socket(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
    struct fwd *f = userp;
    struct forward_sock *sk = socketp;

    if (what == CURL_POLL_REMOVE) {
        if (sk != NULL)
            sock_close(sk); /* libcurl forgets the association itself */
        return 0;
    }
    if (sk == NULL) {
        if (f->closing)
            return 0;
        sk = calloc(1, sizeof *sk);
        if (sk == NULL) {
            fail_transfer(f, easy, UV_ENOMEM);
            return 0;
        }
        int rc = uv_poll_init_socket(f->loop, &sk->poll, s);
        if (rc == UV_EEXIST) {
            /* A handle for this descriptor number outlived libcurl's use of it (the socket
             * was closed without a removal call): it watches a dead socket, drop it. */
            for (struct forward_sock *old = f->socks; old != NULL; old = old->next) {
                if (old->fd == s) {
                    sock_close(old);
                    break;
                }
            }
            rc = uv_poll_init_socket(f->loop, &sk->poll, s);
        }
        if (rc != 0) {
            free(sk);
            fail_transfer(f, easy, rc);
            return 0;
        }
        sk->poll.data = sk;
        sk->f = f;
        sk->fd = s;
        sk->next = f->socks;
        if (f->socks != NULL)
            f->socks->prev = sk;
        f->socks = sk;
        f->open_handles++;
        curl_multi_assign(f->multi, s, sk);
    }
    int events = 0;
    if (what & CURL_POLL_IN)
        events |= UV_READABLE;
    if (what & CURL_POLL_OUT)
        events |= UV_WRITABLE;
    int rc = events ? uv_poll_start(&sk->poll, events, on_poll) : uv_poll_stop(&sk->poll);
    if (rc != 0)
        fail_transfer(f, easy, rc);
    return 0;
}

/* CURLMOPT_TIMERFUNCTION: only (re)arms the timer; libcurl is called from on_timeout(). */
static int on_curl_timer(CURLM *multi, long timeout_ms, void *userp)
{
    (void)multi;
    struct fwd *f = userp;
    if (timeout_ms < 0)
        uv_timer_stop(&f->timer);
    else
        uv_timer_start(&f->timer, on_timeout, (uint64_t)timeout_ms, 0);
    return 0;
}

/* ---------------------------------------------------------------- public API */

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc;

/* curl_global_init() must run once before any other libcurl call. pthread_once makes the first
 * forward_init() calls of concurrent threads wait for one initialisation and share its result. */
static void global_init(void)
{
    global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

int forward_init(struct fwd **out, uv_loop_t *loop, unsigned self_node_id, char *errmsg,
                 size_t errlen)
{
    *out = NULL;
    pthread_once(&global_once, global_init);
    if (global_rc != CURLE_OK) {
        set_err(errmsg, errlen, "curl_global_init: %s", curl_easy_strerror(global_rc));
        return FWD_EINVAL;
    }

    struct fwd *f = calloc(1, sizeof *f);
    if (f == NULL) {
        set_err(errmsg, errlen, "forwarder: out of memory");
        return FWD_ENOMEM;
    }
    f->loop = loop;
    snprintf(f->forwarded_by, sizeof f->forwarded_by, "%s: %u", FWD_HEADER_FORWARDED_BY,
             self_node_id);

    f->multi = curl_multi_init();
    if (f->multi == NULL) {
        set_err(errmsg, errlen, "curl_multi_init: out of memory");
        goto err_free;
    }
    CURLMcode mc = curl_multi_setopt(f->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
    if (mc == CURLM_OK)
        mc = curl_multi_setopt(f->multi, CURLMOPT_SOCKETDATA, f);
    if (mc == CURLM_OK)
        mc = curl_multi_setopt(f->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
    if (mc == CURLM_OK)
        mc = curl_multi_setopt(f->multi, CURLMOPT_TIMERDATA, f);
    if (mc == CURLM_OK)
        mc = curl_multi_setopt(f->multi, CURLMOPT_MAXCONNECTS, FWD_MAX_CACHED_CONNS);
    if (mc != CURLM_OK) {
        set_err(errmsg, errlen, "curl_multi_setopt: %s", curl_multi_strerror(mc));
        goto err_after_multi;
    }

    int rc = uv_timer_init(loop, &f->timer);
    if (rc != 0) {
        set_err(errmsg, errlen, "uv_timer_init: %s", uv_strerror(rc));
        goto err_after_multi;
    }
    f->timer.data = f;
    f->open_handles = 1;
    *out = f;
    return 0;

err_after_multi:
    curl_multi_cleanup(f->multi);
    free(f);
    return FWD_EINVAL;
err_free:
    free(f);
    return FWD_ENOMEM;
}

/* Sets every libcurl option of req's easy handle; false if libcurl refused one. */
static bool setup_easy(struct forward_req *req, const char *url, bool https, const char *method,
                       bool has_body, size_t len, unsigned timeout_ms)
{
    CURL *e = req->easy;
    bool ok = true;
    const char *scheme = https ? "https" : "http";
    ok &= curl_easy_setopt(e, CURLOPT_URL, url) == CURLE_OK;
    ok &= curl_easy_setopt(e, CURLOPT_PATH_AS_IS, 1L) == CURLE_OK;
    ok &= curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, scheme) == CURLE_OK;
    ok &= curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, scheme) == CURLE_OK;
    if (https) {
        /* The cluster's CA alone: no system bundle, no CA directory. The name checked is the
         * URL's host, which forward_send() sets to the server name it was given. */
        ok &= curl_easy_setopt(e, CURLOPT_CAINFO, req->f->ca_file) == CURLE_OK;
        ok &= curl_easy_setopt(e, CURLOPT_CAPATH, NULL) == CURLE_OK;
        ok &= curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L) == CURLE_OK;
        ok &= curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L) == CURLE_OK;
        ok &= curl_easy_setopt(e, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2) == CURLE_OK;
        if (req->connect_to != NULL)
            ok &= curl_easy_setopt(e, CURLOPT_CONNECT_TO, req->connect_to) == CURLE_OK;
    }
    ok &= curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L) == CURLE_OK;
    ok &= curl_easy_setopt(e, CURLOPT_PROXY, "") == CURLE_OK; /* ignore http_proxy & co */
    ok &= curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L) == CURLE_OK;
    /* Without this, ending a transfer whose host name is still being resolved (timeout,
     * forward_close) joins the resolver thread and blocks the loop until getaddrinfo() returns. */
    ok &= curl_easy_setopt(e, CURLOPT_QUICK_EXIT, 1L) == CURLE_OK;
    ok &= curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1) == CURLE_OK;
    ok &= curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)timeout_ms) == CURLE_OK;
    ok &= curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)FWD_MAX_RESPONSE_BYTES) ==
          CURLE_OK;
    ok &= curl_easy_setopt(e, CURLOPT_MAXAGE_CONN, FWD_MAX_IDLE_AGE_S) == CURLE_OK;
    ok &= curl_easy_setopt(e, CURLOPT_USERAGENT, FWD_USER_AGENT) == CURLE_OK;
    ok &= curl_easy_setopt(e, CURLOPT_HTTPHEADER, req->headers) == CURLE_OK;
    ok &= curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body) == CURLE_OK;
    ok &= curl_easy_setopt(e, CURLOPT_WRITEDATA, req) == CURLE_OK;
    ok &= curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header) == CURLE_OK;
    ok &= curl_easy_setopt(e, CURLOPT_HEADERDATA, req) == CURLE_OK;
    ok &= curl_easy_setopt(e, CURLOPT_PREREQFUNCTION, on_prereq) == CURLE_OK;
    ok &= curl_easy_setopt(e, CURLOPT_PREREQDATA, req) == CURLE_OK;
    ok &= curl_easy_setopt(e, CURLOPT_ERRORBUFFER, req->errbuf) == CURLE_OK;
    ok &= curl_easy_setopt(e, CURLOPT_PRIVATE, (void *)req) == CURLE_OK;

    if (has_body) {
        /* req->body outlives the transfer, so libcurl need not copy it. */
        ok &= curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len) == CURLE_OK;
        ok &= curl_easy_setopt(e, CURLOPT_POSTFIELDS, req->body) == CURLE_OK;
        ok &= curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method) == CURLE_OK;
    } else if (strcmp(method, "GET") == 0) {
        ok &= curl_easy_setopt(e, CURLOPT_HTTPGET, 1L) == CURLE_OK;
    } else if (strcmp(method, "HEAD") == 0) {
        ok &= curl_easy_setopt(e, CURLOPT_NOBODY, 1L) == CURLE_OK;
    } else {
        ok &= curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method) == CURLE_OK;
    }
    return ok;
}

/* A host name as a certificate may carry it: letters, digits, '-' and '.'. */
static bool is_dns_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 253)
        return false;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '.'))
            return false;
    }
    return true;
}

/*
 * Checks url with libcurl's own parser, as it will be parsed for the transfer
 * (CURLOPT_PATH_AS_IS): an http or https URL with a host. *final is the URL to request (the
 * caller frees it with free()): url itself, or with server_name (https only) url with its host
 * replaced by that name, and *connect_to routes NAME:PORT back to the host and port of url. The
 * connection then goes where url says, and libcurl checks the certificate against the name.
 */
static bool url_prepare(const char *url, const char *server_name, bool *https, char **final,
                        struct curl_slist **connect_to, char *errmsg, size_t errlen)
{
    CURLU *u = curl_url();
    if (u == NULL) {
        set_err(errmsg, errlen, "curl_url: out of memory");
        return false;
    }
    bool ok = false;
    char *scheme = NULL, *host = NULL, *port = NULL, *renamed = NULL;
    CURLUcode uc = curl_url_set(u, CURLUPART_URL, url, CURLU_PATH_AS_IS);
    if (uc != CURLUE_OK) {
        set_err(errmsg, errlen, "bad url: %s", curl_url_strerror(uc));
        goto out;
    }
    if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0)) {
        set_err(errmsg, errlen, "bad url: only http:// and https:// are supported");
        goto out;
    }
    *https = strcmp(scheme, "https") == 0;
    if (curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || host[0] == '\0') {
        set_err(errmsg, errlen, "bad url: no host");
        goto out;
    }
    if (server_name == NULL) {
        *final = strdup(url);
        ok = *final != NULL;
        if (!ok)
            set_err(errmsg, errlen, "out of memory");
        goto out;
    }
    if (!*https || !is_dns_name(server_name)) {
        set_err(errmsg, errlen,
                "bad server name: it needs an https:// url and must be a host name");
        goto out;
    }
    char line[600];
    if (curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK ||
        curl_url_set(u, CURLUPART_HOST, server_name, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_URL, &renamed, 0) != CURLUE_OK ||
        (size_t)snprintf(line, sizeof line, "%s:%s:%s:%s", server_name, port, host, port) >=
            sizeof line) {
        set_err(errmsg, errlen, "bad url: cannot route the server name %s to it", server_name);
        goto out;
    }
    *connect_to = curl_slist_append(NULL, line);
    *final = strdup(renamed);
    if (*connect_to == NULL || *final == NULL) {
        curl_slist_free_all(*connect_to);
        *connect_to = NULL;
        free(*final);
        *final = NULL;
        set_err(errmsg, errlen, "out of memory");
        goto out;
    }
    ok = true;
out:
    curl_free(renamed);
    curl_free(port);
    curl_free(host);
    curl_free(scheme);
    curl_url_cleanup(u);
    return ok;
}

int forward_set_tls(struct fwd *f, const char *ca_file, char *errmsg, size_t errlen)
{
    FILE *fp = fopen(ca_file, "r");
    if (fp == NULL) {
        set_err(errmsg, errlen, "forward: cannot read the ca file %s: %s", ca_file,
                strerror(errno));
        return FWD_EINVAL;
    }
    fclose(fp);
    char *copy = strdup(ca_file);
    if (copy == NULL) {
        set_err(errmsg, errlen, "forward: out of memory");
        return FWD_ENOMEM;
    }
    free(f->ca_file);
    f->ca_file = copy;
    return 0;
}

int forward_send(struct fwd *f, const char *base_url, const char *server_name, const char *method,
                 const char *path_and_query, const char *authorization, const char *request_id,
                 const void *body, size_t len, unsigned timeout_ms, forward_done_cb cb, void *data,
                 char *errmsg, size_t errlen)
{
    return forward_send_ex(f, base_url, server_name, method, path_and_query, authorization,
                           request_id, NULL, body, len, timeout_ms, cb, data, errmsg, errlen);
}

/* Whether NAME may be sent as an extra header: a token, and none of the ones forward_send()
 * sets or libcurl frames. */
static bool extra_header_ok(const char *name, const char *value)
{
    static const char *const reserved[] = {
        "Authorization",  "X-Request-Id",      "Content-Type",
        "Content-Length", "Transfer-Encoding", "Expect",
        "Host",           "Connection",        FWD_HEADER_FORWARDED_BY};
    if (name == NULL || value == NULL || !is_token(name) || !is_header_value(value))
        return false;
    for (size_t i = 0; i < sizeof reserved / sizeof reserved[0]; i++) {
        if (strcasecmp(name, reserved[i]) == 0)
            return false;
    }
    return true;
}

int forward_send_ex(struct fwd *f, const char *base_url, const char *server_name,
                    const char *method, const char *path_and_query, const char *authorization,
                    const char *request_id, const struct http_header *extra, const void *body,
                    size_t len, unsigned timeout_ms, forward_done_cb cb, void *data, char *errmsg,
                    size_t errlen)
{
    if (f->closing) {
        set_err(errmsg, errlen, "forward: the forwarder is closed");
        return FWD_ECLOSED;
    }
    if (cb == NULL || timeout_ms == 0 || base_url == NULL || method == NULL ||
        path_and_query == NULL || (body == NULL && len != 0)) {
        set_err(errmsg, errlen, "forward: missing argument or zero timeout");
        return FWD_EINVAL;
    }
    bool https = strncasecmp(base_url, "https://", 8) == 0;
    if (strncasecmp(base_url, "http://", 7) != 0 && !https) {
        set_err(errmsg, errlen, "forward to %s: only http:// and https:// urls are supported",
                base_url);
        return FWD_EINVAL;
    }
    if (https && f->ca_file == NULL) {
        set_err(errmsg, errlen, "forward to %s: https needs the ca file of forward_set_tls()",
                base_url);
        return FWD_EINVAL;
    }
    if (!is_token(method)) {
        set_err(errmsg, errlen, "forward to %s: bad method", base_url);
        return FWD_EINVAL;
    }
    if (path_and_query[0] != '/') {
        set_err(errmsg, errlen, "forward to %s: path does not start with '/'", base_url);
        return FWD_EINVAL;
    }
    if ((authorization != NULL && !is_header_value(authorization)) ||
        (request_id != NULL && !is_header_value(request_id))) {
        set_err(errmsg, errlen, "forward to %s: control character in a header value", base_url);
        return FWD_EINVAL;
    }
    for (size_t i = 0; extra != NULL && extra[i].name != NULL; i++) {
        if (!extra_header_ok(extra[i].name, extra[i].value)) {
            set_err(errmsg, errlen, "forward to %s: header %s cannot be forwarded", base_url,
                    extra[i].name);
            return FWD_EINVAL;
        }
    }

    /* base_url may end in '/': the path brings its own. */
    size_t base_len = strlen(base_url);
    while (base_len > 0 && base_url[base_len - 1] == '/')
        base_len--;
    size_t full_len = strlen(path_and_query);
    size_t path_len = strcspn(path_and_query, "?");
    char *url = NULL, *final = NULL;

    struct forward_req *req = calloc(1, sizeof *req);
    if (req == NULL)
        goto err_nomem;
    req->f = f;
    req->cb = cb;
    req->data = data;

    url = malloc(base_len + full_len + 1);
    req->what = malloc(strlen(method) + 1 + base_len + path_len + 1);
    if (url == NULL || req->what == NULL)
        goto err_nomem_req;
    memcpy(url, base_url, base_len);
    memcpy(url + base_len, path_and_query, full_len + 1);
    sprintf(req->what, "%s %.*s", method, (int)(base_len + path_len), url);
    if (!url_prepare(url, server_name, &https, &final, &req->connect_to, errmsg, errlen)) {
        free(url);
        req_free(req);
        return FWD_EINVAL;
    }
    free(url);
    url = final;

    bool post_like =
        strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0 || strcmp(method, "PATCH") == 0;
    bool has_body = body != NULL || post_like;
    if (has_body) {
        req->body = malloc(len ? len : 1);
        if (req->body == NULL)
            goto err_nomem_req;
        if (len)
            memcpy(req->body, body, len);
    }

    /* "Expect:" and the empty Content-Type remove what libcurl would add on its own: a
     * 100-continue round trip before large bodies, and a form content type on empty ones. */
    const char *fixed[] = {f->forwarded_by, "Expect:",
                           body != NULL ? "Content-Type: application/json" : "Content-Type:"};
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) {
        struct curl_slist *grown = curl_slist_append(req->headers, fixed[i]);
        if (grown == NULL)
            goto err_nomem_req;
        req->headers = grown;
    }
    if (authorization != NULL && !add_header(&req->headers, "Authorization", authorization))
        goto err_nomem_req;
    if (request_id != NULL && !add_header(&req->headers, "X-Request-Id", request_id))
        goto err_nomem_req;
    for (size_t i = 0; extra != NULL && extra[i].name != NULL; i++) {
        if (!add_header(&req->headers, extra[i].name, extra[i].value))
            goto err_nomem_req;
    }

    req->easy = curl_easy_init();
    if (req->easy == NULL)
        goto err_nomem_req;
    if (!setup_easy(req, url, https, method, has_body, len, timeout_ms)) {
        set_err(errmsg, errlen, "%s: curl_easy_setopt failed", req->what);
        free(url);
        req_free(req);
        return FWD_EINVAL;
    }
    free(url); /* CURLOPT_URL copied it */

    /* Only arms the timer: the transfer starts from the loop, so cb cannot run in here. */
    CURLMcode mc = curl_multi_add_handle(f->multi, req->easy);
    if (mc != CURLM_OK) {
        set_err(errmsg, errlen, "%s: curl_multi_add_handle: %s", req->what,
                curl_multi_strerror(mc));
        req_free(req);
        return mc == CURLM_OUT_OF_MEMORY ? FWD_ENOMEM : FWD_EINVAL;
    }
    req_link(f, req);
    return 0;

err_nomem_req:
    free(url);
    req_free(req);
err_nomem:
    set_err(errmsg, errlen, "forward to %s: out of memory", base_url);
    return FWD_ENOMEM;
}

static void on_timer_closed(uv_handle_t *handle)
{
    struct fwd *f = handle->data;
    f->open_handles--;
    f->timer_closed = true;
    /* Every request still listed was abandoned by forward_close(). A callback may call
     * forward_send() (which fails) or forward_close() (which does nothing), never add to the list.
     */
    while (f->reqs != NULL) {
        struct forward_req *req = f->reqs;
        req_unlink(f, req);
        char msg[512];
        snprintf(msg, sizeof msg, "%s: the forwarder was closed", req->what);
        req->cb(req->data, FWD_ECLOSED, NULL, msg);
        req_free(req);
    }
    maybe_finish_close(f);
}

void forward_close(struct fwd *f, void (*closed_cb)(void *data), void *data)
{
    if (f->closing)
        return;
    f->closing = true;
    f->closed_cb = closed_cb;
    f->closed_data = data;

    /* Stop every transfer now (closing its connection), but run the callbacks from the loop. */
    for (struct forward_req *req = f->reqs; req != NULL; req = req->next) {
        curl_multi_remove_handle(f->multi, req->easy);
        curl_easy_cleanup(req->easy);
        req->easy = NULL;
    }
    curl_multi_cleanup(f->multi); /* closes the cached connections */
    f->multi = NULL;
    /* libcurl announces the removal of every socket it closes; this is for any it did not. */
    while (f->socks != NULL)
        sock_close(f->socks);
    uv_close((uv_handle_t *)&f->timer, on_timer_closed);
}
