/*
 * pglisten: PostgreSQL LISTEN/NOTIFY delivered to the libuv loop.
 *
 * A dedicated thread owns one connection, LISTENs on a fixed set of channels and waits for
 * notifications; each one is handed to a callback on the loop thread. PostgreSQL does not
 * queue notifications for a session that is gone, so whenever the connection is (re)made the
 * callback first gets a reset event (channel NULL): anything may have changed unseen, drop
 * every cache. Notifications sent after that event are never missed while the connection
 * stays up; when it drops the thread reconnects with backoff (100 ms doubling to 2 s) and
 * sends the next reset. An idle connection is checked with a query every
 * PGLISTEN_PING_INTERVAL_S seconds, so one that died silently is noticed too.
 *
 * Threading: pglisten_start() and pglisten_close() are called on the loop thread, and the
 * callback runs there.
 */
#ifndef CONCLAVE_PGLISTEN_H
#define CONCLAVE_PGLISTEN_H

#include <stddef.h>

#include <uv.h>

#include "storage/pgconf.h"

#define PGLISTEN_EINVAL (-1) /* bad arguments (no channel, a channel name too long) */
#define PGLISTEN_ENOMEM (-2) /* out of memory */
#define PGLISTEN_ESYS   (-3) /* a pipe, thread or libuv handle could not be created */

/* The application_name of the listener's session, to find it in pg_stat_activity. */
#define PGLISTEN_APPLICATION_NAME "conclave-listen"

/* Longest channel name PostgreSQL keeps whole (NAMEDATALEN - 1); a longer one would be
 * truncated by the server and its notifications would arrive under another name. */
#define PGLISTEN_CHANNEL_MAX 63

#define PGLISTEN_PING_INTERVAL_S 30 /* idle time before the connection is checked */
#define PGLISTEN_PING_TIMEOUT_S  10 /* time the check may take before the connection is dropped */

struct pglisten;

/* Receives one notification on the loop thread: CHANNEL and PAYLOAD ("" when the sender gave
 * none) are valid only during the call. CHANNEL and PAYLOAD are both NULL for a reset event:
 * notifications may have been missed, drop every cache. DATA is pglisten_start()'s. */
typedef void (*pglisten_fn)(const char *channel, const char *payload, void *data);

/* Starts listening on CHANNELS (a NULL-terminated array of at least one channel name, each
 * 1 to PGLISTEN_CHANNEL_MAX bytes, case-sensitive as given: they are quoted identifiers) with
 * CONF's URL. CONF and CHANNELS are copied; LOOP is borrowed and must outlive the listener.
 * PostgreSQL need not be up: the thread connects in the background, and the first reset event
 * says when it has. The listener's async handle keeps the loop running until it is closed. On
 * success returns 0 and stores the listener in *OUT; release it with pglisten_close(). On
 * failure returns a PGLISTEN_E* code, *OUT is NULL and ERRMSG says why; the loop may then
 * need one more uv_run() before uv_loop_close() succeeds. */
int pglisten_start(struct pglisten **out, uv_loop_t *loop, const struct pgconf *conf,
                   const char *const *channels, pglisten_fn cb, void *data, char *errmsg,
                   size_t errlen);

/* Stops the listener: no callback runs after this call; the thread is woken, closes its
 * connection and is joined, the async handle is closed, and then CLOSED_CB(DATA) runs on the
 * loop thread (CLOSED_CB may be NULL) and the listener is freed. A thread waiting for
 * notifications or a backoff stops at once; one that is connecting finishes that attempt
 * first (at most CONF's connect timeout). May be called from the callback. Call it once. */
void pglisten_close(struct pglisten *l, void (*closed_cb)(void *data), void *data);

#endif /* CONCLAVE_PGLISTEN_H */
