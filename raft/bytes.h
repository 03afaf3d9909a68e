/*
 * bytes: the byte-level helpers every part of raft/ writes and reads its formats with.
 *
 * Integers are little-endian unless the name says otherwise: the entry codec, the snapshot
 * and the request fingerprint are little-endian; only the canonical revision bytes are
 * big-endian (revision.h explains why), through the explicit bytes_sink_be* writers.
 *
 * The sink is one writer for three uses, so that the bytes a format writes, the bytes it
 * hashes and the size it measures come from the same code: with BUF set it copies to BUF at
 * OFF (the caller sized BUF, usually by a counting pass first); with only SHA set it feeds
 * SHA-256; with neither it only counts. OFF always advances by the bytes written.
 */
#ifndef CONCLAVE_BYTES_H
#define CONCLAVE_BYTES_H

#include <stddef.h>
#include <stdint.h>

#include <sodium.h>

/* Writes V little-endian at P (which must have room) and returns P past the bytes. */
uint8_t *bytes_put_le32(uint8_t *p, uint32_t v);
uint8_t *bytes_put_le64(uint8_t *p, uint64_t v);

/* Copies LEN bytes of DATA to P (DATA may be NULL when LEN is 0) and returns P + LEN. */
uint8_t *bytes_put(uint8_t *p, const void *data, size_t len);

/* Reads a little-endian integer at P (which must hold the bytes). */
uint32_t bytes_get_le32(const uint8_t *p);
uint64_t bytes_get_le64(const uint8_t *p);

/* A NUL-terminated copy of LEN bytes of SRC (SRC may be NULL when LEN is 0), from malloc;
 * the caller frees it. Returns NULL when out of memory. */
char *bytes_dup(const void *src, size_t len);

/* Formats a message into ERRMSG (ERRLEN bytes, truncated to fit); does nothing when ERRMSG
 * is NULL or ERRLEN is 0. The raft/ functions that fail report through it. */
void bytes_errmsg(char *errmsg, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

struct bytes_sink {
    uint8_t *buf;                  /* not owned; NULL unless copying */
    size_t off;                    /* bytes written so far */
    crypto_hash_sha256_state *sha; /* not owned; used only when BUF is NULL */
};

void bytes_sink_put(struct bytes_sink *s, const void *data, size_t len);
void bytes_sink_u8(struct bytes_sink *s, uint8_t v);
void bytes_sink_le32(struct bytes_sink *s, uint32_t v);
void bytes_sink_le64(struct bytes_sink *s, uint64_t v);
void bytes_sink_be32(struct bytes_sink *s, uint32_t v);
void bytes_sink_be64(struct bytes_sink *s, uint64_t v);

#endif /* CONCLAVE_BYTES_H */
