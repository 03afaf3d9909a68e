#include "server/sdnotify.h"

#include <stdio.h>

#include <systemd/sd-daemon.h>

/* sd_notify() failures are not the node's problem: a manager that went away cannot be told,
 * and the node's work does not depend on it. They are ignored here on purpose. */

void sdnotify_status(const char *status)
{
    (void)sd_notifyf(0, "STATUS=%s", status);
}

void sdnotify_ready(const char *status)
{
    (void)sd_notifyf(0, "READY=1\nSTATUS=%s", status);
}

void sdnotify_stopping(const char *status)
{
    (void)sd_notifyf(0, "STOPPING=1\nSTATUS=%s", status);
}

void sdnotify_watchdog(void)
{
    (void)sd_notify(0, "WATCHDOG=1");
}

uint64_t sdnotify_watchdog_ms(void)
{
    uint64_t usec = 0;
    if (sd_watchdog_enabled(0, &usec) <= 0) {
        return 0;
    }
    return usec / 1000;
}
