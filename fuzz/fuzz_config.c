/*
 * fuzz_config: the node's configuration file parser (src/server/config.c) on arbitrary bytes.
 *
 * config_load() reads a path (and resolves it with realpath(), which an anonymous memory file
 * cannot pass), so the bytes are written to one file in a private temporary directory made
 * at start (mkdtemp under $TMPDIR or /tmp) and removed at exit. The environment
 * overrides (DATABASE_URL, DB_*, CONCLAVE_SECRET_FILE) are cleared once, so that only the
 * bytes decide. Properties: a refused file leaves a message naming the file; an accepted one
 * has every field within its documented range (node id 1..65535, absolute paths, a port,
 * positive limits, certificate and key given together) and loads again to the same values
 * (the parser is deterministic). Nothing leaks: config_free() releases all of it.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern char **environ;

#include "server/config.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            abort();                                                                               \
    } while (0)

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[256];
static char path[300];

static void remove_files(void)
{
    unlink(path);
    rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/conclave-fuzz-config.XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
    CHECK(mkdtemp(dir) != NULL);
    snprintf(path, sizeof path, "%s/node.json", dir);
    CHECK(atexit(remove_files) == 0);
    /* Every DB_* variable and the two others config.c and pgconf.c read. Bounded: each pass
     * removes one variable, or ends. */
    unsetenv("DATABASE_URL");
    unsetenv("CONCLAVE_SECRET_FILE");
    for (int guard = 0; guard < 1000; guard++) {
        char name[256] = "";
        for (char **e = environ; *e != NULL; e++) {
            if (strncmp(*e, "DB_", 3) == 0 && strchr(*e, '=') != NULL &&
                (size_t)(strchr(*e, '=') - *e) < sizeof name) {
                memcpy(name, *e, (size_t)(strchr(*e, '=') - *e));
                break;
            }
        }
        if (name[0] == '\0')
            break;
        unsetenv(name);
    }
    return 0;
}

static int same_str(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    CHECK(fwrite(data, 1, size, f) == size);
    CHECK(fclose(f) == 0);
    struct config a, b;
    char errmsg[512] = "";
    if (config_load(path, &a, errmsg, sizeof errmsg) != 0) {
        CHECK(errmsg[0] != '\0');
        return 0;
    }
    CHECK(a.node_id >= 1 && a.node_id <= 65535);
    CHECK(a.data_dir != NULL && a.data_dir[0] == '/');
    CHECK(a.http_host != NULL);
    CHECK(a.http_port >= 0 && a.http_port <= 65535);
    CHECK(a.http_max_body_bytes > 0 && a.http_max_header_bytes > 0);
    CHECK((a.http_cert_file == NULL) == (a.http_key_file == NULL));
    CHECK(a.http_cert_file == NULL || a.http_cert_file[0] == '/');
    CHECK(a.secret_file == NULL || a.secret_file[0] == '/');
    CHECK(config_load(path, &b, errmsg, sizeof errmsg) == 0);
    CHECK(a.node_id == b.node_id && a.http_port == b.http_port);
    CHECK(same_str(a.data_dir, b.data_dir) && same_str(a.http_host, b.http_host));
    CHECK(same_str(a.secret_file, b.secret_file) && a.has_raft == b.has_raft);
    config_free(&b);
    config_free(&a);
    return 0;
}
