#include "storage/pglisten.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpq-fe.h>

#define BACKOFF_MIN_MS 100u
#define BACKOFF_MAX_MS 2000u

#define NS_PER_MS ((uint64_t)1000000)
#define NS_PER_S  ((uint64_t)1000000000)

/* One notification on its way to the loop; CHANNEL and PAYLOAD point into BUF. */
struct event {
    struct event *next;
    char *channel;
    char *payload;
    char buf[];
};

struct pglisten {
    uv_loop_t *loop;
    uv_async_t async; /* thread -> loop: events queued, thread exited */
    struct pgconf conf;
    char **channels; /* NULL-terminated, owned */
    pglisten_fn cb;
    void *data;
    uv_thread_t thread;
    int wake[2]; /* pipe: pglisten_close() writes to [1]; the thread polls [0] */
    atomic_bool stopping;

    /* The mutex is never held across a libpq call or the callback. */
    uv_mutex_t mu;
    struct event *head;
    struct event *tail;
    /* A reset is a flag rather than an event: it must reach the loop even when memory for an
     * event cannot be had, and delivering it before older queued events is harmless since it
     * already invalidates everything they would. */
    bool reset_pending;
    bool exited;

    /* Loop thread only. */
    bool close_requested;
    bool async_closing;
    void (*closed_cb)(void *data);
    void *closed_data;
};

static void quiet_notice(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

static void drain_pipe(int fd)
{
    char buf[64];
    while (read(fd, buf, sizeof(buf)) > 0) {
    }
}

/* Sleeps MS milliseconds unless pglisten_close() wakes the thread. Returns false when the
 * thread is to stop. */
static bool sleep_unless_stopped(struct pglisten *l, unsigned ms)
{
    uint64_t deadline = uv_hrtime() + ms * NS_PER_MS;
    for (;;) {
        if (atomic_load(&l->stopping)) {
            return false;
        }
        uint64_t now = uv_hrtime();
        if (now >= deadline) {
            return true;
        }
        struct pollfd p = {.fd = l->wake[0], .events = POLLIN};
        if (poll(&p, 1, (int)((deadline - now + NS_PER_MS - 1) / NS_PER_MS)) > 0) {
            drain_pipe(l->wake[0]);
        }
    }
}

/* Issues LISTEN for every channel. Returns 0, or -1 when the connection is unusable. */
static int listen_all(struct pglisten *l, PGconn *conn)
{
    for (char **ch = l->channels; *ch != NULL; ch++) {
        char *id = PQescapeIdentifier(conn, *ch, strlen(*ch));
        if (id == NULL) {
            return -1;
        }
        /* An escaped identifier of at most PGLISTEN_CHANNEL_MAX bytes fits easily. */
        char sql[2 * PGLISTEN_CHANNEL_MAX + 32];
        snprintf(sql, sizeof(sql), "LISTEN %s", id);
        PQfreemem(id);
        PGresult *res = PQexec(conn, sql);
        bool ok = PQresultStatus(res) == PGRES_COMMAND_OK;
        PQclear(res);
        if (!ok) {
            return -1;
        }
    }
    return 0;
}

static void post_reset(struct pglisten *l)
{
    uv_mutex_lock(&l->mu);
    l->reset_pending = true;
    uv_mutex_unlock(&l->mu);
    uv_async_send(&l->async);
}

/* Queues every notification libpq has parsed. */
static void queue_notifies(struct pglisten *l, PGconn *conn)
{
    bool any = false;
    PGnotify *n;
    while ((n = PQnotifies(conn)) != NULL) {
        size_t clen = strlen(n->relname) + 1;
        size_t plen = strlen(n->extra) + 1;
        struct event *e = malloc(sizeof(*e) + clen + plen);
        if (e != NULL) {
            e->next = NULL;
            e->channel = e->buf;
            e->payload = e->buf + clen;
            memcpy(e->channel, n->relname, clen);
            memcpy(e->payload, n->extra, plen);
        }
        PQfreemem(n);
        uv_mutex_lock(&l->mu);
        if (e == NULL) {
            /* The notification is lost; a reset tells the caller to assume the worst. */
            l->reset_pending = true;
        } else if (l->tail != NULL) {
            l->tail->next = e;
            l->tail = e;
        } else {
            l->head = l->tail = e;
        }
        uv_mutex_unlock(&l->mu);
        any = true;
    }
    if (any) {
        uv_async_send(&l->async);
    }
}

/* Waits for notifications on CONN until it fails or the thread is to stop. While nothing
 * arrives for PGLISTEN_PING_INTERVAL_S, a query checks that the server still answers: a
 * connection cut without a reset (a firewall, a dead host) would otherwise wait forever and
 * silently miss every notification. */
static void session(struct pglisten *l, PGconn *conn)
{
    const uint64_t interval = (uint64_t)PGLISTEN_PING_INTERVAL_S * NS_PER_S;
    const uint64_t ping_timeout = (uint64_t)PGLISTEN_PING_TIMEOUT_S * NS_PER_S;
    uint64_t last_heard = uv_hrtime();
    bool ping_pending = false;
    uint64_t ping_sent = 0;

    while (!atomic_load(&l->stopping)) {
        uint64_t now = uv_hrtime();
        uint64_t deadline = ping_pending ? ping_sent + ping_timeout : last_heard + interval;
        if (now >= deadline) {
            if (ping_pending || !PQsendQuery(conn, "SELECT 1")) {
                return;
            }
            ping_pending = true;
            ping_sent = now;
            continue;
        }
        struct pollfd fds[2] = {
            {.fd = PQsocket(conn), .events = POLLIN},
            {.fd = l->wake[0], .events = POLLIN},
        };
        int rc = poll(fds, 2, (int)((deadline - now + NS_PER_MS - 1) / NS_PER_MS));
        if (rc < 0 && errno != EINTR) {
            return;
        }
        if (rc <= 0) {
            continue;
        }
        if (fds[1].revents != 0) {
            drain_pipe(l->wake[0]);
        }
        if (fds[0].revents == 0) {
            continue;
        }
        if (!PQconsumeInput(conn)) {
            return;
        }
        last_heard = uv_hrtime();
        while (ping_pending && !PQisBusy(conn)) {
            PGresult *res = PQgetResult(conn);
            if (res == NULL) {
                ping_pending = false;
            }
            PQclear(res);
        }
        queue_notifies(l, conn);
        if (PQstatus(conn) != CONNECTION_OK) {
            return;
        }
    }
}

static void listen_main(void *arg)
{
    struct pglisten *l = arg;
    unsigned backoff_ms = 0;

    while (backoff_ms == 0 || sleep_unless_stopped(l, backoff_ms)) {
        if (atomic_load(&l->stopping)) {
            break;
        }
        PGconn *conn = NULL;
        char err[512];
        if (pgconf_connect(&l->conf, PGLISTEN_APPLICATION_NAME, &conn, err, sizeof(err)) != 0) {
            backoff_ms = backoff_ms == 0 ? BACKOFF_MIN_MS : backoff_ms * 2;
            backoff_ms = backoff_ms > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff_ms;
            continue;
        }
        PQsetNoticeProcessor(conn, quiet_notice, NULL);
        if (listen_all(l, conn) == 0) {
            /* Only now is every later notification sure to arrive, so only now may the caller
             * rebuild its caches. */
            post_reset(l);
            session(l, conn);
            /* The session was up; a short pause keeps a flapping server from being
             * hammered. */
            backoff_ms = BACKOFF_MIN_MS;
        } else {
            backoff_ms = backoff_ms == 0 ? BACKOFF_MIN_MS : backoff_ms * 2;
            backoff_ms = backoff_ms > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff_ms;
        }
        PQfinish(conn);
    }
    /* The async send happens under mu: once the loop sees EXITED, the thread touches the
     * handle no more, so it may be closed. */
    uv_mutex_lock(&l->mu);
    l->exited = true;
    uv_async_send(&l->async);
    uv_mutex_unlock(&l->mu);
}

static void free_listener(struct pglisten *l)
{
    struct event *e = l->head;
    while (e != NULL) {
        struct event *next = e->next;
        free(e);
        e = next;
    }
    if (l->channels != NULL) {
        for (char **ch = l->channels; *ch != NULL; ch++) {
            free(*ch);
        }
        free(l->channels);
    }
    pgconf_free(&l->conf);
    free(l);
}

static void on_closed(uv_handle_t *handle)
{
    struct pglisten *l = handle->data;
    void (*cb)(void *) = l->closed_cb;
    void *data = l->closed_data;
    uv_mutex_destroy(&l->mu);
    close(l->wake[0]);
    close(l->wake[1]);
    free_listener(l);
    if (cb != NULL) {
        cb(data);
    }
}

static void on_async(uv_async_t *async)
{
    struct pglisten *l = async->data;

    uv_mutex_lock(&l->mu);
    struct event *e = l->head;
    l->head = l->tail = NULL;
    bool reset = l->reset_pending;
    l->reset_pending = false;
    uv_mutex_unlock(&l->mu);

    /* The callback may close the listener; nothing is delivered after that. */
    if (reset && !l->close_requested) {
        l->cb(NULL, NULL, l->data);
    }
    while (e != NULL) {
        struct event *next = e->next;
        if (!l->close_requested) {
            l->cb(e->channel, e->payload, l->data);
        }
        free(e);
        e = next;
    }

    if (!l->close_requested || l->async_closing) {
        return;
    }
    uv_mutex_lock(&l->mu);
    bool exited = l->exited;
    uv_mutex_unlock(&l->mu);
    if (exited) {
        uv_thread_join(&l->thread);
        l->async_closing = true;
        uv_close((uv_handle_t *)&l->async, on_closed);
    }
}

int pglisten_start(struct pglisten **out, uv_loop_t *loop, const struct pgconf *conf,
                   const char *const *channels, pglisten_fn cb, void *data, char *errmsg,
                   size_t errlen)
{
    *out = NULL;
    if (channels == NULL || channels[0] == NULL || cb == NULL) {
        snprintf(errmsg, errlen, "pglisten needs a callback and at least one channel");
        return PGLISTEN_EINVAL;
    }
    size_t n = 0;
    for (; channels[n] != NULL; n++) {
        size_t len = strlen(channels[n]);
        if (len == 0 || len > PGLISTEN_CHANNEL_MAX) {
            snprintf(errmsg, errlen, "notification channel \"%.80s\" must be 1 to %d bytes long",
                     channels[n], PGLISTEN_CHANNEL_MAX);
            return PGLISTEN_EINVAL;
        }
    }

    int rc = 0;
    struct pglisten *l = calloc(1, sizeof(*l));
    if (l == NULL) {
        goto err_nomem;
    }
    l->loop = loop;
    l->cb = cb;
    l->data = data;
    l->conf = *conf;
    l->conf.url = strdup(conf->url);
    l->channels = calloc(n + 1, sizeof(*l->channels));
    if (l->conf.url == NULL || l->channels == NULL) {
        goto err_free;
    }
    for (size_t i = 0; i < n; i++) {
        l->channels[i] = strdup(channels[i]);
        if (l->channels[i] == NULL) {
            goto err_free;
        }
    }
    atomic_init(&l->stopping, false);

    if (pipe2(l->wake, O_CLOEXEC | O_NONBLOCK) != 0) {
        snprintf(errmsg, errlen, "creating the listener's wake-up pipe: %s", strerror(errno));
        free_listener(l);
        return PGLISTEN_ESYS;
    }
    rc = uv_mutex_init(&l->mu);
    if (rc != 0) {
        goto err_after_pipe;
    }
    rc = uv_async_init(loop, &l->async, on_async);
    if (rc != 0) {
        goto err_after_mutex;
    }
    l->async.data = l;
    rc = uv_thread_create(&l->thread, listen_main, l);
    if (rc != 0) {
        snprintf(errmsg, errlen, "starting the listener thread: %s", uv_strerror(rc));
        /* The handle belongs to the loop now; on_closed frees the rest. */
        l->close_requested = true;
        l->async_closing = true;
        uv_close((uv_handle_t *)&l->async, on_closed);
        return PGLISTEN_ESYS;
    }
    *out = l;
    return 0;

err_after_mutex:
    uv_mutex_destroy(&l->mu);
err_after_pipe:
    snprintf(errmsg, errlen, "starting the listener: %s", uv_strerror(rc));
    close(l->wake[0]);
    close(l->wake[1]);
    free_listener(l);
    return PGLISTEN_ESYS;

err_free:
    free_listener(l);
err_nomem:
    snprintf(errmsg, errlen, "out of memory starting the listener");
    return PGLISTEN_ENOMEM;
}

void pglisten_close(struct pglisten *l, void (*closed_cb)(void *data), void *data)
{
    l->close_requested = true;
    l->closed_cb = closed_cb;
    l->closed_data = data;
    atomic_store(&l->stopping, true);
    /* A full pipe already holds a wake-up, so a failed write loses nothing. */
    ssize_t w = write(l->wake[1], "x", 1);
    (void)w;
}
