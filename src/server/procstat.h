/*
 * procstat: this process's own resource figures, for the standard process_* metrics of
 * Prometheus client libraries (docs/operations.md, "Metrics"). Read from /proc/self (stat,
 * fd/), /proc/stat's boot time and getrlimit(); /proc is the kernel's memory, so a read does
 * not block on a disk. Linux only, as conclave is.
 */
#ifndef CONCLAVE_PROCSTAT_H
#define CONCLAVE_PROCSTAT_H

#include <stdint.h>

struct procstat {
    double cpu_seconds;        /* user and system CPU time spent */
    uint64_t resident_bytes;   /* resident set size */
    uint64_t virtual_bytes;    /* virtual memory size */
    uint64_t open_fds;         /* open file descriptors */
    uint64_t max_fds;          /* RLIMIT_NOFILE's soft limit */
    double start_time_seconds; /* when the process started, in seconds since the Unix epoch */
};

/* Fills OUT. Returns 0, or -1 when /proc cannot be read (OUT is then zeroed). */
int procstat_read(struct procstat *out);

#endif /* CONCLAVE_PROCSTAT_H */
