/*
 * codec: the binary format of conclave's Raft entries.
 *
 * Every command the leader proposes is one entry in this format, and every node's state
 * machine decodes it again, possibly years later after a restart, so the format is versioned
 * and checked end to end. It is little-endian and byte-oriented (no struct layouts, no
 * alignment assumptions):
 *
 *   offset size  field
 *   0      4     magic "CNCL"
 *   4      1     format version: 2 (what codec_encode() writes); 1 is still decoded
 *   5      1     op: 1 put, 2 delete, 3 rollback, 4 materialized
 *   6      1     flags: bit 0 (CODEC_FLAG_SCHEMA) = schema id and hash present; other bits 0
 *   7      1     reserved, 0
 *   8      4     payload length P (u32): the real length, without header and padding
 *   12     4     CRC-32C (Castagnoli) of bytes [0, 16 + P) computed with this field as 0
 *   16     P     payload
 *   16+P   0..7  zero padding up to a multiple of 8
 *
 * raft 0.15 cannot reload an entry whose length is not a multiple of 8 (canonical/raft #189,
 * #304), so every encoded entry is padded and the header carries the real length.
 *
 * Payload of put, delete and rollback (strings are u32 length + bytes, no terminator):
 *
 *   u64 expected_version   0 = create (put only); the CAS check of the state machine
 *   u64 source_version     rollback: the version whose content is restored; otherwise 0
 *   u64 term               the proposing leader's term (raft 0.15's apply does not tell it)
 *   i64 timestamp_us       the leader's clock, microseconds since the Unix epoch
 *   str project            1..63 bytes, a slug: ^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$
 *   str key                1..256 bytes: ^[A-Za-z0-9_][A-Za-z0-9._:-]{0,255}$
 *   str actor              1..200 bytes of UTF-8 without NUL
 *   str request_id         0..128 bytes of UTF-8 without NUL; empty = no request id
 *   [version 2] u8[32] fingerprint   what the client asked (fsm_request_fingerprint()); the
 *                          state machine stores and compares it for the request id
 *   [flag SCHEMA] u8[16] schema id (UUID, RFC 4122 byte order), u8[32] schema hash
 *   [put, rollback] str content   1..CODEC_MAX_CONTENT bytes, canonical JSON (opaque here)
 *
 * Version 1 (the format before issue 14) has no fingerprint field; it is still decoded,
 * because a raft log written by an older build must still apply, and the state machine
 * derives the fingerprint of a version-1 entry with the old rule (fsm.c). Any other version
 * is refused.
 *
 * Payload of materialized: u64 index (>= 1): revisions with raft_index <= index are in
 * PostgreSQL.
 *
 * The field rules mirror the PostgreSQL constraints of `configs` and `config_revisions`, so
 * an entry that decodes can always be materialized: a row the database would refuse would
 * otherwise stop the materializer forever. docs/state-machine.md has the full rules.
 */
#ifndef CONCLAVE_CODEC_H
#define CONCLAVE_CODEC_H

#include <stddef.h>
#include <stdint.h>

#define CODEC_MAGIC   "CNCL"
#define CODEC_VERSION 2
/* The oldest format version codec_decode() still reads. */
#define CODEC_VERSION_MIN 1
#define CODEC_HEADER_SIZE 16

#define CODEC_MAX_PROJECT    63
#define CODEC_MAX_KEY        256
#define CODEC_MAX_ACTOR      200
#define CODEC_MAX_REQUEST_ID 128
/* The HTTP body limit is 1 MiB; canonical JSON of an accepted body can be slightly longer
 * than the body (escapes), so the entry allows 64 KiB more. */
#define CODEC_MAX_CONTENT ((size_t)(1u << 20) + (size_t)(1u << 16))
/* Versions, terms and indexes end up in PostgreSQL bigint columns. */
#define CODEC_MAX_INT64 ((uint64_t)INT64_MAX)
/* 9999-12-31T23:59:59.999999Z: timestamps stay in the range every client can format. */
#define CODEC_MAX_TIMESTAMP_US 253402300799999999LL

#define CODEC_FLAG_SCHEMA 0x01u

/* Error codes. */
#define CODEC_EINVAL (-1) /* malformed input (decode) or an entry breaking the rules (encode) */
#define CODEC_ENOMEM (-2)

enum codec_op {
    CODEC_OP_PUT = 1,
    CODEC_OP_DELETE = 2,
    CODEC_OP_ROLLBACK = 3,
    CODEC_OP_MATERIALIZED = 4,
};

/*
 * One entry, decoded or to be encoded. Strings are (pointer, length) pairs without a NUL
 * terminator. The struct never owns anything: for codec_encode() the caller's pointers are
 * only read, and codec_decode() points them INTO the input buffer (zero-copy), so they are
 * valid only while that buffer is. For materialized, only op and materialized_index are
 * read (encode) or set (decode).
 */
struct codec_entry {
    enum codec_op op;
    /* put, delete, rollback */
    uint64_t expected_version;
    uint64_t source_version; /* rollback: 1..expected_version; otherwise 0 */
    uint64_t term;           /* 1..INT64_MAX */
    int64_t timestamp_us;    /* 0..CODEC_MAX_TIMESTAMP_US */
    const char *project;
    size_t project_len;
    const char *key;
    size_t key_len;
    const char *actor;
    size_t actor_len;
    const char *request_id; /* may be NULL when request_id_len is 0 */
    size_t request_id_len;
    /* BLAKE2b-256 of what the client asked (fsm_request_fingerprint()), computed by the API
     * before the schema is resolved or a rollback's content is loaded, so that a retry of
     * the same request carries the same bytes. Encoded as is; decoded from version 2 and
     * zero for version 1. */
    uint8_t fingerprint[32];
    /* decode: the format version read (1 or CODEC_VERSION). Encode ignores it and always
     * writes CODEC_VERSION. */
    unsigned format;
    int has_schema; /* delete: must be 0 (a tombstone is bound to no schema) */
    uint8_t schema_id[16];
    uint8_t schema_hash[32];
    const uint8_t *content; /* put, rollback: required; delete: NULL and 0 */
    size_t content_len;
    /* materialized */
    uint64_t materialized_index;
};

/* Encodes E. On success returns 0, *BUF is a new zero-padded buffer the caller frees with
 * free(), and *LEN (a multiple of 8) its length. Refuses (CODEC_EINVAL) an entry that
 * codec_decode() would refuse, naming the field; CODEC_ENOMEM when out of memory. On failure
 * *BUF is NULL and *LEN 0. */
int codec_encode(const struct codec_entry *e, uint8_t **buf, size_t *len, char *errmsg,
                 size_t errlen);

/* Decodes the LEN bytes at BUF into *OUT. Reads nothing outside [BUF, BUF + LEN). On success
 * returns 0 and OUT's pointers point into BUF (nothing is allocated). On failure returns
 * CODEC_EINVAL, ERRMSG says what is wrong, and *OUT is zeroed. Refuses a bad magic, version,
 * op, flag or reserved byte, a length that is not a multiple of 8 or disagrees with the header,
 * non-zero padding, a checksum mismatch, a length field past the end or above its maximum,
 * trailing payload bytes, and any field that breaks the rules in the comment above. */
int codec_decode(const uint8_t *buf, size_t len, struct codec_entry *out, char *errmsg,
                 size_t errlen);

/* Returns the CRC-32C (Castagnoli, reflected, init and final xor 0xFFFFFFFF) of LEN bytes at
 * DATA, continuing from CRC (pass 0 to start). CRC-32C("123456789") is 0xE3069283. */
uint32_t codec_crc32c(uint32_t crc, const void *data, size_t len);

/* Field checks shared with the snapshot reader. Each returns non-zero when the bytes are
 * acceptable. */
int codec_project_ok(const char *s, size_t len);    /* the project slug rule */
int codec_key_ok(const char *s, size_t len);        /* the config key rule */
int codec_text_ok(const char *s, size_t len);       /* UTF-8 (no overlongs or surrogates), no NUL */
int codec_actor_ok(const char *s, size_t len);      /* 1..200 bytes of text */
int codec_request_id_ok(const char *s, size_t len); /* 0..128 bytes of text */

/* Returns "put", "delete", "rollback", "materialized" or "unknown". */
const char *codec_op_name(enum codec_op op);

#endif /* CONCLAVE_CODEC_H */
