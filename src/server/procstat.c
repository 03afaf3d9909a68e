#include "server/procstat.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

/* The boot time from /proc/stat's "btime" line, in seconds since the epoch, or 0. */
static uint64_t boot_time(void)
{
    FILE *f = fopen("/proc/stat", "r");
    if (f == NULL) {
        return 0;
    }
    char line[256];
    unsigned long long bt = 0;
    while (fgets(line, sizeof(line), f) != NULL) {
        if (sscanf(line, "btime %llu", &bt) == 1) {
            break;
        }
    }
    fclose(f);
    return bt;
}

static uint64_t count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (d == NULL) {
        return 0;
    }
    uint64_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        n += e->d_name[0] != '.';
    }
    closedir(d);
    return n > 0 ? n - 1 : 0; /* the directory stream's own descriptor is not the process's */
}

int procstat_read(struct procstat *out)
{
    memset(out, 0, sizeof(*out));
    FILE *f = fopen("/proc/self/stat", "r");
    if (f == NULL) {
        return -1;
    }
    char buf[1024];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* The command name (field 2) is in parentheses and may hold spaces: fields count from the
     * last ')'. After it: state (3), then fields 4..; utime is 14, stime 15, starttime 22,
     * vsize 23, rss 24 (proc(5)). */
    char *p = strrchr(buf, ')');
    if (p == NULL) {
        return -1;
    }
    unsigned long long utime, stime, start, vsize;
    long long rss;
    if (sscanf(p + 2,
               "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %*d %*d %*d %*d %*d %*d "
               "%llu %llu %lld",
               &utime, &stime, &start, &vsize, &rss) != 5) {
        return -1;
    }
    double ticks = (double)sysconf(_SC_CLK_TCK);
    long page = sysconf(_SC_PAGESIZE);
    if (ticks <= 0 || page <= 0) {
        return -1;
    }
    out->cpu_seconds = (double)(utime + stime) / ticks;
    out->virtual_bytes = vsize;
    out->resident_bytes = rss > 0 ? (uint64_t)rss * (uint64_t)page : 0;
    out->start_time_seconds = (double)boot_time() + (double)start / ticks;
    out->open_fds = count_fds();
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        out->max_fds = rl.rlim_cur == RLIM_INFINITY ? UINT64_MAX : (uint64_t)rl.rlim_cur;
    }
    return 0;
}
