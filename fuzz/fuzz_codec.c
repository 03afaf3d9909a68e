/*
 * fuzz_codec: the raft entry codec (raft/codec.c) on arbitrary bytes.
 *
 * Properties: codec_decode() never reads outside its input (ASan); a refused input leaves a
 * message; an accepted input re-encodes (codec_encode()) to exactly the same bytes when it is
 * of the current format version, and the re-encoded bytes decode again to the same fields.
 * A version-1 entry is re-encoded as version 2, which must decode with the same fields.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "raft/codec.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            abort();                                                                               \
    } while (0)

/* Returns 1 when A and B describe the same entry. */
static int same_entry(const struct codec_entry *a, const struct codec_entry *b)
{
    if (a->op != b->op)
        return 0;
    if (a->op == CODEC_OP_MATERIALIZED)
        return a->materialized_index == b->materialized_index;
    return a->expected_version == b->expected_version && a->source_version == b->source_version &&
           a->term == b->term && a->timestamp_us == b->timestamp_us &&
           a->project_len == b->project_len &&
           memcmp(a->project, b->project, a->project_len) == 0 && a->key_len == b->key_len &&
           memcmp(a->key, b->key, a->key_len) == 0 && a->actor_len == b->actor_len &&
           memcmp(a->actor, b->actor, a->actor_len) == 0 &&
           a->request_id_len == b->request_id_len &&
           (a->request_id_len == 0 ||
            memcmp(a->request_id, b->request_id, a->request_id_len) == 0) &&
           a->has_schema == b->has_schema &&
           (!a->has_schema || (memcmp(a->schema_id, b->schema_id, 16) == 0 &&
                               memcmp(a->schema_hash, b->schema_hash, 32) == 0)) &&
           a->content_len == b->content_len &&
           (a->content_len == 0 || memcmp(a->content, b->content, a->content_len) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* A private copy of exactly SIZE bytes, so that ASan sees any read past the end. */
    uint8_t *in = malloc(size ? size : 1);
    CHECK(in != NULL);
    memcpy(in, data, size);
    struct codec_entry e;
    char errmsg[256] = "";
    int rc = codec_decode(in, size, &e, errmsg, sizeof errmsg);
    if (rc != 0) {
        CHECK(rc == CODEC_EINVAL);
        CHECK(errmsg[0] != '\0');
        free(in);
        return 0;
    }
    uint8_t *out = NULL;
    size_t out_len = 0;
    rc = codec_encode(&e, &out, &out_len, errmsg, sizeof errmsg);
    CHECK(rc == 0); /* what decodes must encode: the rules are the same both ways */
    CHECK(out_len % 8 == 0);
    if (e.format == CODEC_VERSION) {
        CHECK(out_len == size && memcmp(out, in, size) == 0);
    }
    struct codec_entry again;
    rc = codec_decode(out, out_len, &again, errmsg, sizeof errmsg);
    CHECK(rc == 0);
    CHECK(again.format == CODEC_VERSION);
    CHECK(same_entry(&e, &again));
    free(out);
    free(in);
    return 0;
}
