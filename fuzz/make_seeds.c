/*
 * make_seeds: writes the binary seeds of fuzz/corpus/codec/ and fuzz/corpus/snapshot/, which
 * cannot be typed by hand (checksums, hashes). Run once by hand after a format change:
 *   build-fuzz/fuzz/fuzz_make_seeds fuzz/corpus
 * The codec seeds are one entry of each op and format flag; the snapshot seeds are the
 * snapshots of a state machine after each of those entries was applied in turn.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "raft/codec.h"
#include "raft/fsm.h"

static int write_file(const char *dir, const char *sub, const char *name, const uint8_t *buf,
                      size_t len)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s/%s", dir, sub, name);
    FILE *f = fopen(path, "wb");
    if (f == NULL) {
        perror(path);
        return -1;
    }
    int rc = fwrite(buf, 1, len, f) == len ? 0 : -1;
    if (fclose(f) != 0)
        rc = -1;
    return rc;
}

static struct codec_entry entry(enum codec_op op, uint64_t expected, const char *key,
                                const char *content, int schema)
{
    struct codec_entry e;
    memset(&e, 0, sizeof e);
    e.op = op;
    e.expected_version = expected;
    e.source_version = op == CODEC_OP_ROLLBACK ? 1 : 0;
    e.term = 3;
    e.timestamp_us = 1700000000123456;
    e.project = "acme-prod";
    e.project_len = strlen(e.project);
    e.key = key;
    e.key_len = strlen(key);
    e.actor = "alice@example.com";
    e.actor_len = strlen(e.actor);
    e.request_id = "req-1";
    e.request_id_len = 5;
    for (int i = 0; i < 32; i++)
        e.fingerprint[i] = (uint8_t)(i + 1);
    e.has_schema = schema;
    for (int i = 0; schema && i < 16; i++)
        e.schema_id[i] = (uint8_t)(0x10 + i);
    for (int i = 0; schema && i < 32; i++)
        e.schema_hash[i] = (uint8_t)(0xa0 + i);
    if (content != NULL) {
        e.content = (const uint8_t *)content;
        e.content_len = strlen(content);
    }
    return e;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: fuzz_make_seeds CORPUS_DIR\n");
        return 2;
    }
    struct codec_entry entries[5];
    entries[0] = entry(CODEC_OP_PUT, 0, "db.url", "{\"a\":1}", 0);
    entries[1] = entry(CODEC_OP_PUT, 1, "db.url", "{\"a\":[true,null,\"x\"]}", 1);
    entries[2] = entry(CODEC_OP_ROLLBACK, 2, "db.url", "{\"a\":1}", 0);
    entries[3] = entry(CODEC_OP_DELETE, 3, "db.url", NULL, 0);
    memset(&entries[4], 0, sizeof entries[4]);
    entries[4].op = CODEC_OP_MATERIALIZED;
    entries[4].materialized_index = 2;
    static const char *const names[] = {"put", "put-schema", "rollback", "delete", "materialized"};
    char errmsg[256];
    struct fsm *f = NULL;
    if (fsm_new(&f, NULL, errmsg, sizeof errmsg) != 0) {
        fprintf(stderr, "make_seeds: %s\n", errmsg);
        return 1;
    }
    int rc = 0;
    uint8_t *snap = NULL;
    size_t snap_len = 0;
    if (fsm_snapshot(f, &snap, &snap_len, errmsg, sizeof errmsg) != 0 ||
        write_file(argv[1], "snapshot", "empty", snap, snap_len) != 0)
        rc = 1;
    free(snap);
    for (size_t i = 0; rc == 0 && i < 5; i++) {
        uint8_t *buf = NULL;
        size_t len = 0;
        if (codec_encode(&entries[i], &buf, &len, errmsg, sizeof errmsg) != 0) {
            fprintf(stderr, "make_seeds: %s: %s\n", names[i], errmsg);
            rc = 1;
            break;
        }
        struct fsm_result res;
        char name[64];
        snprintf(name, sizeof name, "after-%s", names[i]);
        if (write_file(argv[1], "codec", names[i], buf, len) != 0 ||
            fsm_apply(f, i + 1, buf, len, &res) != 0 ||
            fsm_snapshot(f, &snap, &snap_len, errmsg, sizeof errmsg) != 0 ||
            write_file(argv[1], "snapshot", name, snap, snap_len) != 0)
            rc = 1;
        free(snap);
        snap = NULL;
        free(buf);
    }
    fsm_free(f);
    return rc;
}
