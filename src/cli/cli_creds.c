#include "cli/cli_creds.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

int cli_config_dir(char *buf, size_t len, char *err, size_t errlen)
{
    const char *xdg = getenv("XDG_CONFIG_HOME");
    const char *home = getenv("HOME");
    int n;
    /* The XDG base directory rules ignore a relative XDG_CONFIG_HOME. */
    if (xdg != NULL && xdg[0] == '/') {
        n = snprintf(buf, len, "%s/conclave", xdg);
    } else if (home != NULL && home[0] != '\0') {
        n = snprintf(buf, len, "%s/.config/conclave", home);
    } else {
        snprintf(err, errlen,
                 "neither XDG_CONFIG_HOME nor HOME is set, so there is no place "
                 "for the client's files; set HOME");
        return -1;
    }
    if (n < 0 || (size_t)n >= len) {
        snprintf(err, errlen, "the client's directory path is too long");
        return -1;
    }
    return 0;
}

int cli_config_file(const char *name, char *buf, size_t len, char *err, size_t errlen)
{
    char dir[4096];
    if (cli_config_dir(dir, sizeof(dir), err, errlen) != 0) {
        return -1;
    }
    int n = snprintf(buf, len, "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= len) {
        snprintf(err, errlen, "the path of %s is too long", name);
        return -1;
    }
    return 0;
}

int cli_read_json_file(const char *path, json_t **out, char *err, size_t errlen)
{
    *out = NULL;
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        if (errno == ENOENT) {
            return 1;
        }
        snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    json_error_t jerr;
    json_t *v = json_loadf(f, 0, &jerr);
    fclose(f);
    if (v == NULL) {
        snprintf(err, errlen, "%s is not valid JSON (line %d: %s); fix or remove it", path,
                 jerr.line, jerr.text);
        return -1;
    }
    if (!json_is_object(v)) {
        json_decref(v);
        snprintf(err, errlen, "%s should hold a JSON object; fix or remove it", path);
        return -1;
    }
    *out = v;
    return 0;
}

/* Creates DIR and its parent with mode 0700 when missing; tightens DIR itself to 0700. */
static int make_private_dir(const char *dir, char *err, size_t errlen)
{
    char parent[4096];
    snprintf(parent, sizeof(parent), "%s", dir);
    char *slash = strrchr(parent, '/');
    if (slash != NULL && slash != parent) {
        *slash = '\0';
        if (mkdir(parent, 0700) != 0 && errno != EEXIST) {
            snprintf(err, errlen, "cannot create %s: %s", parent, strerror(errno));
            return -1;
        }
    }
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "cannot create %s: %s", dir, strerror(errno));
        return -1;
    }
    if (chmod(dir, 0700) != 0) {
        snprintf(err, errlen, "cannot make %s private (chmod 0700): %s", dir, strerror(errno));
        return -1;
    }
    return 0;
}

int cli_creds_save(const json_t *creds, char *path, size_t len, char *err, size_t errlen)
{
    char dir[4096], tmp[4200];
    char *text = NULL;
    int fd = -1, rc = -1;
    if (cli_config_dir(dir, sizeof(dir), err, errlen) != 0 ||
        cli_config_file("credentials", path, len, err, errlen) != 0 ||
        make_private_dir(dir, err, errlen) != 0) {
        return -1;
    }
    snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid());
    text = json_dumps(creds, JSON_INDENT(2));
    if (text == NULL) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(err, errlen, "cannot create %s: %s", tmp, strerror(errno));
        goto out;
    }
    size_t n = strlen(text), done = 0;
    while (done < n) {
        ssize_t w = write(fd, text + done, n - done);
        if (w < 0) {
            if (errno == EINTR) {
                continue;
            }
            snprintf(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
            goto out;
        }
        done += (size_t)w;
    }
    if (write(fd, "\n", 1) != 1 || fsync(fd) != 0) {
        snprintf(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
        goto out;
    }
    if (close(fd) != 0) {
        fd = -1;
        snprintf(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
        goto out;
    }
    fd = -1;
    if (rename(tmp, path) != 0) {
        snprintf(err, errlen, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
        goto out;
    }
    rc = 0;
out:
    if (fd >= 0) {
        close(fd);
    }
    if (rc != 0) {
        unlink(tmp);
    }
    if (text != NULL) {
        explicit_bzero(text, strlen(text));
        free(text);
    }
    return rc;
}

int cli_creds_remove(bool *existed, char *err, size_t errlen)
{
    char path[4200];
    *existed = false;
    if (cli_config_file("credentials", path, sizeof(path), err, errlen) != 0) {
        return -1;
    }
    if (unlink(path) != 0) {
        if (errno == ENOENT) {
            return 0;
        }
        snprintf(err, errlen, "cannot remove %s: %s", path, strerror(errno));
        return -1;
    }
    *existed = true;
    return 0;
}

int cli_read_password(const char *prompt, char *buf, size_t len, char *err, size_t errlen)
{
    bool tty = isatty(STDIN_FILENO) != 0;
    struct termios old, quiet;
    bool restore = false;
    if (tty) {
        fputs(prompt, stderr);
        fflush(stderr);
        if (tcgetattr(STDIN_FILENO, &old) == 0) {
            quiet = old;
            quiet.c_lflag &= ~(tcflag_t)ECHO;
            restore = tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet) == 0;
        }
    }
    char *got = fgets(buf, (int)len, stdin);
    if (restore) {
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
    }
    if (tty) {
        fputs("\n", stderr);
    }
    if (got == NULL) {
        snprintf(err, errlen,
                 "no password: standard input ended; type it at the prompt or "
                 "pipe it in as one line");
        return -1;
    }
    size_t n = strlen(buf);
    if (n > 0 && buf[n - 1] == '\n') {
        buf[--n] = '\0';
    } else if (n == len - 1) {
        explicit_bzero(buf, len);
        snprintf(err, errlen, "the password is longer than %zu characters", len - 2);
        return -1;
    }
    if (n > 0 && buf[n - 1] == '\r') {
        buf[--n] = '\0';
    }
    if (n == 0) {
        snprintf(err, errlen, "the password is empty");
        return -1;
    }
    return 0;
}
