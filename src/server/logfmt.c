#include "server/logfmt.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

int logfmt_parse_level(const char *s, enum logfmt_level *out)
{
    static const char *const names[] = {"info", "warn", "error"};
    for (int i = 0; i < 3; i++) {
        if (strcmp(s, names[i]) == 0) {
            *out = (enum logfmt_level)i;
            return 0;
        }
    }
    return -1;
}

/* An access log line (http_server.c): "http method=M path=P status=S ms=T rid=R". */
static bool is_access(const char *line)
{
    return strncmp(line, "http method=", 12) == 0;
}

static bool has_word(const char *line, const char *const *words)
{
    for (const char *const *w = words; *w != NULL; w++) {
        if (strstr(line, *w) != NULL) {
            return true;
        }
    }
    return false;
}

enum logfmt_level logfmt_level_of(const char *line)
{
    static const char *const errors[] = {"fatal", "internal error", NULL};
    static const char *const warnings[] = {"failed", "refused", "cannot",  " lost", "behind",
                                           "ahead",  "stalled", "warning", "error", NULL};
    /* The access log is info whatever its path or status says. */
    if (is_access(line)) {
        return LOGFMT_INFO;
    }
    if (has_word(line, errors)) {
        return LOGFMT_ERROR;
    }
    return has_word(line, warnings) ? LOGFMT_WARN : LOGFMT_INFO;
}

/* The component of LINE into OUT (see logfmt.h). */
static void component_of(const char *line, char *out, size_t outlen)
{
    if (is_access(line)) {
        snprintf(out, outlen, "access");
        return;
    }
    const char *colon = strstr(line, ": ");
    size_t n = colon ? (size_t)(colon - line) : 0;
    bool ok = n > 0 && n <= 32;
    for (size_t i = 0; ok && i < n; i++) {
        unsigned char c = (unsigned char)line[i];
        ok = isalnum(c) || c == ' ' || c == '_' || c == '-';
    }
    if (!ok) {
        snprintf(out, outlen, "conclave");
        return;
    }
    /* "node 3: ..." and "conclave serve: ...": the first word names the part. */
    const char *space = memchr(line, ' ', n);
    size_t m = space ? (size_t)(space - line) : n;
    snprintf(out, outlen, "%.*s", (int)m, line);
}

char *logfmt_json(const char *line, unsigned node_id, double epoch_ms)
{
    static const char *const names[] = {"info", "warn", "error"};
    char comp[40], when[40];
    component_of(line, comp, sizeof(comp));
    time_t secs = (time_t)(epoch_ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    size_t k = strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(when + k, sizeof(when) - k, ".%03dZ", (int)((long long)epoch_ms % 1000));
    /* The message loses the component's prefix; jansson escapes quotes and control bytes and
     * replaces invalid UTF-8 (json_stringn_nocheck is not used for that reason). */
    const char *msg = line;
    size_t clen = strlen(comp);
    if (strcmp(comp, "access") != 0 && strcmp(comp, "conclave") != 0 &&
        strncmp(line, comp, clen) == 0) {
        const char *colon = strstr(line, ": ");
        msg = colon ? colon + 2 : line;
    }
    json_t *m = json_string(msg);
    if (m == NULL) { /* not valid UTF-8: keep it readable rather than drop it */
        char *copy = strdup(msg);
        if (copy == NULL) {
            return NULL;
        }
        for (char *p = copy; *p; p++) {
            if ((unsigned char)*p >= 0x80) {
                *p = '?';
            }
        }
        m = json_string(copy);
        free(copy);
    }
    json_t *o =
        json_pack("{s:s,s:s,s:I,s:s,s:o}", "time", when, "level", names[logfmt_level_of(line)],
                  "node", (json_int_t)node_id, "component", comp, "msg", m);
    if (o != NULL && is_access(line)) {
        /* Its key=value pairs as fields, numbers as numbers: what a log pipeline indexes. */
        char *copy = strdup(line + 5);
        char *save = NULL;
        for (char *tok = copy ? strtok_r(copy, " ", &save) : NULL; tok != NULL;
             tok = strtok_r(NULL, " ", &save)) {
            char *eq = strchr(tok, '=');
            if (eq == NULL) {
                continue;
            }
            *eq = '\0';
            const char *v = eq + 1;
            if (strcmp(tok, "status") == 0) {
                json_object_set_new(o, tok, json_integer(strtoll(v, NULL, 10)));
            } else if (strcmp(tok, "ms") == 0) {
                json_object_set_new(o, tok, json_real(strtod(v, NULL)));
            } else if (json_object_get(o, tok) == NULL) {
                json_object_set_new(o, tok, json_string(v));
            }
        }
        free(copy);
    }
    char *s = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(o);
    if (s == NULL) {
        return NULL;
    }
    size_t len = strlen(s);
    char *out = realloc(s, len + 2);
    if (out == NULL) {
        free(s);
        return NULL;
    }
    out[len] = '\n';
    out[len + 1] = '\0';
    return out;
}

/* ---- the pipe and its thread ---------------------------------------------------------- */

static struct {
    bool started;
    bool json;
    enum logfmt_level min;
    unsigned node_id;
    int out_fd;  /* the real stderr */
    int read_fd; /* the pipe's reading end */
    pthread_t thread;
} g;

static void write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            return; /* the real stderr is gone: nobody to tell */
        }
        p += w;
        n -= (size_t)w;
    }
}

static void emit(const char *line)
{
    if (logfmt_level_of(line) < g.min) {
        return;
    }
    if (!g.json) {
        write_all(g.out_fd, line, strlen(line));
        write_all(g.out_fd, "\n", 1);
        return;
    }
    struct timeval tv;
    gettimeofday(&tv, NULL);
    char *j =
        logfmt_json(line, g.node_id, (double)tv.tv_sec * 1000.0 + (double)tv.tv_usec / 1000.0);
    if (j != NULL) {
        write_all(g.out_fd, j, strlen(j));
        free(j);
    }
}

/* Reads lines until the writing end is closed (logfmt_stop). A line longer than the buffer
 * is cut into pieces, each logged as a line of its own. */
static void *pump(void *arg)
{
    (void)arg;
    char buf[16384];
    size_t have = 0;
    for (;;) {
        ssize_t n = read(g.read_fd, buf + have, sizeof(buf) - 1 - have);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            break;
        }
        have += (size_t)n;
        buf[have] = '\0';
        char *start = buf;
        char *nl;
        while ((nl = memchr(start, '\n', have - (size_t)(start - buf))) != NULL) {
            *nl = '\0';
            emit(start);
            start = nl + 1;
        }
        have -= (size_t)(start - buf);
        memmove(buf, start, have);
        if (have == sizeof(buf) - 1) {
            buf[have] = '\0';
            emit(buf);
            have = 0;
        }
    }
    if (have > 0) {
        buf[have] = '\0';
        emit(buf);
    }
    return NULL;
}

int logfmt_start(bool json, enum logfmt_level min_level, unsigned node_id, char *errmsg,
                 size_t errlen)
{
    int fds[2];
    if (g.started) {
        return 0;
    }
    if (pipe(fds) != 0) {
        snprintf(errmsg, errlen, "log pipe: %s", strerror(errno));
        return -1;
    }
    int out = dup(STDERR_FILENO);
    if (out < 0) {
        snprintf(errmsg, errlen, "log: dup of stderr: %s", strerror(errno));
        goto err_pipe;
    }
    g.json = json;
    g.min = min_level;
    g.node_id = node_id;
    g.out_fd = out;
    g.read_fd = fds[0];
    fflush(stderr);
    if (dup2(fds[1], STDERR_FILENO) < 0) {
        snprintf(errmsg, errlen, "log: dup2 onto stderr: %s", strerror(errno));
        goto err_out;
    }
    close(fds[1]);
    setvbuf(stderr, NULL, _IOLBF, 0); /* one write per line: lines never interleave */
    if (pthread_create(&g.thread, NULL, pump, NULL) != 0) {
        dup2(out, STDERR_FILENO);
        snprintf(errmsg, errlen, "log: cannot start its thread");
        close(out);
        close(fds[0]);
        return -1;
    }
    g.started = true;
    return 0;

err_out:
    close(out);
err_pipe:
    close(fds[0]);
    close(fds[1]);
    return -1;
}

void logfmt_stop(void)
{
    if (!g.started) {
        return;
    }
    fflush(stderr);
    /* The real stderr back onto fd 2 closes the pipe's last writing end: the thread reads
     * what is left, then end of file. */
    dup2(g.out_fd, STDERR_FILENO);
    pthread_join(g.thread, NULL);
    close(g.read_fd);
    close(g.out_fd);
    g.started = false;
}
