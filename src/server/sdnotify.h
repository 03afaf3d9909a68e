/*
 * sdnotify: what the node tells its service manager (systemd with Type=notify; docs/operations.md,
 * "Running under systemd"), through libsystemd's sd_notify().
 *
 * Without a NOTIFY_SOCKET in the environment (a node started by hand, by scripts/cluster or by
 * the tests) every function does nothing. The messages: READY=1 once, when the node can do its
 * work (sdnotify_ready()); STATUS= lines that say what it waits for; WATCHDOG=1 from the event
 * loop, so a loop that hangs is restarted; STOPPING=1 when a stop begins.
 */
#ifndef CONCLAVE_SDNOTIFY_H
#define CONCLAVE_SDNOTIFY_H

#include <stdint.h>

/* STATUS=STATUS. */
void sdnotify_status(const char *status);

/* READY=1 with STATUS=STATUS. */
void sdnotify_ready(const char *status);

/* STOPPING=1 with STATUS=STATUS. */
void sdnotify_stopping(const char *status);

/* WATCHDOG=1: the loop is alive. */
void sdnotify_watchdog(void);

/* The watchdog period the manager expects of this process (WatchdogSec=, passed as
 * WATCHDOG_USEC), in milliseconds; 0 when there is none. */
uint64_t sdnotify_watchdog_ms(void);

#endif /* CONCLAVE_SDNOTIFY_H */
