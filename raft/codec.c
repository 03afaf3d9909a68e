#include "raft/codec.h"

#include <stdlib.h>
#include <string.h>

#include "raft/bytes.h"

/* The config-op payload before its strings: expected, source, term, timestamp. */
#define FIXED_FIELDS_SIZE 32

/* CRC-32C lookup table for the reflected polynomial 0x82F63B78: entry i is the CRC of the
 * byte i (8 shift-and-xor rounds). A literal rather than a lazily filled table so that
 * codec_crc32c() is safe to call from any thread without initialisation; the known-answer
 * test in tests/raft/test_codec.c checks it. */
static const uint32_t crc32c_table[256] = {
    0x00000000u, 0xf26b8303u, 0xe13b70f7u, 0x1350f3f4u, 0xc79a971fu, 0x35f1141cu, 0x26a1e7e8u,
    0xd4ca64ebu, 0x8ad958cfu, 0x78b2dbccu, 0x6be22838u, 0x9989ab3bu, 0x4d43cfd0u, 0xbf284cd3u,
    0xac78bf27u, 0x5e133c24u, 0x105ec76fu, 0xe235446cu, 0xf165b798u, 0x030e349bu, 0xd7c45070u,
    0x25afd373u, 0x36ff2087u, 0xc494a384u, 0x9a879fa0u, 0x68ec1ca3u, 0x7bbcef57u, 0x89d76c54u,
    0x5d1d08bfu, 0xaf768bbcu, 0xbc267848u, 0x4e4dfb4bu, 0x20bd8edeu, 0xd2d60dddu, 0xc186fe29u,
    0x33ed7d2au, 0xe72719c1u, 0x154c9ac2u, 0x061c6936u, 0xf477ea35u, 0xaa64d611u, 0x580f5512u,
    0x4b5fa6e6u, 0xb93425e5u, 0x6dfe410eu, 0x9f95c20du, 0x8cc531f9u, 0x7eaeb2fau, 0x30e349b1u,
    0xc288cab2u, 0xd1d83946u, 0x23b3ba45u, 0xf779deaeu, 0x05125dadu, 0x1642ae59u, 0xe4292d5au,
    0xba3a117eu, 0x4851927du, 0x5b016189u, 0xa96ae28au, 0x7da08661u, 0x8fcb0562u, 0x9c9bf696u,
    0x6ef07595u, 0x417b1dbcu, 0xb3109ebfu, 0xa0406d4bu, 0x522bee48u, 0x86e18aa3u, 0x748a09a0u,
    0x67dafa54u, 0x95b17957u, 0xcba24573u, 0x39c9c670u, 0x2a993584u, 0xd8f2b687u, 0x0c38d26cu,
    0xfe53516fu, 0xed03a29bu, 0x1f682198u, 0x5125dad3u, 0xa34e59d0u, 0xb01eaa24u, 0x42752927u,
    0x96bf4dccu, 0x64d4cecfu, 0x77843d3bu, 0x85efbe38u, 0xdbfc821cu, 0x2997011fu, 0x3ac7f2ebu,
    0xc8ac71e8u, 0x1c661503u, 0xee0d9600u, 0xfd5d65f4u, 0x0f36e6f7u, 0x61c69362u, 0x93ad1061u,
    0x80fde395u, 0x72966096u, 0xa65c047du, 0x5437877eu, 0x4767748au, 0xb50cf789u, 0xeb1fcbadu,
    0x197448aeu, 0x0a24bb5au, 0xf84f3859u, 0x2c855cb2u, 0xdeeedfb1u, 0xcdbe2c45u, 0x3fd5af46u,
    0x7198540du, 0x83f3d70eu, 0x90a324fau, 0x62c8a7f9u, 0xb602c312u, 0x44694011u, 0x5739b3e5u,
    0xa55230e6u, 0xfb410cc2u, 0x092a8fc1u, 0x1a7a7c35u, 0xe811ff36u, 0x3cdb9bddu, 0xceb018deu,
    0xdde0eb2au, 0x2f8b6829u, 0x82f63b78u, 0x709db87bu, 0x63cd4b8fu, 0x91a6c88cu, 0x456cac67u,
    0xb7072f64u, 0xa457dc90u, 0x563c5f93u, 0x082f63b7u, 0xfa44e0b4u, 0xe9141340u, 0x1b7f9043u,
    0xcfb5f4a8u, 0x3dde77abu, 0x2e8e845fu, 0xdce5075cu, 0x92a8fc17u, 0x60c37f14u, 0x73938ce0u,
    0x81f80fe3u, 0x55326b08u, 0xa759e80bu, 0xb4091bffu, 0x466298fcu, 0x1871a4d8u, 0xea1a27dbu,
    0xf94ad42fu, 0x0b21572cu, 0xdfeb33c7u, 0x2d80b0c4u, 0x3ed04330u, 0xccbbc033u, 0xa24bb5a6u,
    0x502036a5u, 0x4370c551u, 0xb11b4652u, 0x65d122b9u, 0x97baa1bau, 0x84ea524eu, 0x7681d14du,
    0x2892ed69u, 0xdaf96e6au, 0xc9a99d9eu, 0x3bc21e9du, 0xef087a76u, 0x1d63f975u, 0x0e330a81u,
    0xfc588982u, 0xb21572c9u, 0x407ef1cau, 0x532e023eu, 0xa145813du, 0x758fe5d6u, 0x87e466d5u,
    0x94b49521u, 0x66df1622u, 0x38cc2a06u, 0xcaa7a905u, 0xd9f75af1u, 0x2b9cd9f2u, 0xff56bd19u,
    0x0d3d3e1au, 0x1e6dcdeeu, 0xec064eedu, 0xc38d26c4u, 0x31e6a5c7u, 0x22b65633u, 0xd0ddd530u,
    0x0417b1dbu, 0xf67c32d8u, 0xe52cc12cu, 0x1747422fu, 0x49547e0bu, 0xbb3ffd08u, 0xa86f0efcu,
    0x5a048dffu, 0x8ecee914u, 0x7ca56a17u, 0x6ff599e3u, 0x9d9e1ae0u, 0xd3d3e1abu, 0x21b862a8u,
    0x32e8915cu, 0xc083125fu, 0x144976b4u, 0xe622f5b7u, 0xf5720643u, 0x07198540u, 0x590ab964u,
    0xab613a67u, 0xb831c993u, 0x4a5a4a90u, 0x9e902e7bu, 0x6cfbad78u, 0x7fab5e8cu, 0x8dc0dd8fu,
    0xe330a81au, 0x115b2b19u, 0x020bd8edu, 0xf0605beeu, 0x24aa3f05u, 0xd6c1bc06u, 0xc5914ff2u,
    0x37faccf1u, 0x69e9f0d5u, 0x9b8273d6u, 0x88d28022u, 0x7ab90321u, 0xae7367cau, 0x5c18e4c9u,
    0x4f48173du, 0xbd23943eu, 0xf36e6f75u, 0x0105ec76u, 0x12551f82u, 0xe03e9c81u, 0x34f4f86au,
    0xc69f7b69u, 0xd5cf889du, 0x27a40b9eu, 0x79b737bau, 0x8bdcb4b9u, 0x988c474du, 0x6ae7c44eu,
    0xbe2da0a5u, 0x4c4623a6u, 0x5f16d052u, 0xad7d5351u,
};

uint32_t codec_crc32c(uint32_t crc, const void *data, size_t len)
{
    const uint8_t *p = data;
    crc = ~crc;
    for (size_t i = 0; i < len; i++) {
        crc = crc32c_table[(crc ^ p[i]) & 0xffu] ^ (crc >> 8);
    }
    return ~crc;
}

const char *codec_op_name(enum codec_op op)
{
    switch (op) {
    case CODEC_OP_PUT:
        return "put";
    case CODEC_OP_DELETE:
        return "delete";
    case CODEC_OP_ROLLBACK:
        return "rollback";
    case CODEC_OP_MATERIALIZED:
        return "materialized";
    }
    return "unknown";
}

/* ---- field rules ---- */

static int is_lower_alnum(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static int is_alnum(unsigned char c)
{
    return is_lower_alnum(c) || (c >= 'A' && c <= 'Z');
}

int codec_project_ok(const char *s, size_t len)
{
    if (len < 1 || len > CODEC_MAX_PROJECT) {
        return 0;
    }
    if (!is_lower_alnum((unsigned char)s[0]) || !is_lower_alnum((unsigned char)s[len - 1])) {
        return 0;
    }
    for (size_t i = 1; i + 1 < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!is_lower_alnum(c) && c != '-') {
            return 0;
        }
    }
    return 1;
}

int codec_key_ok(const char *s, size_t len)
{
    if (len < 1 || len > CODEC_MAX_KEY) {
        return 0;
    }
    if (!is_alnum((unsigned char)s[0]) && s[0] != '_') {
        return 0;
    }
    for (size_t i = 1; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!is_alnum(c) && c != '_' && c != '.' && c != ':' && c != '-') {
            return 0;
        }
    }
    return 1;
}

/* PostgreSQL text must be valid UTF-8 and cannot hold NUL; anything else would make the
 * materializer's INSERT fail forever. */
int codec_text_ok(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        unsigned char c = p[i];
        if (c == 0) {
            return 0;
        }
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t n;
        uint32_t cp;
        uint32_t min;
        if (c >= 0xc2 && c <= 0xdf) {
            n = 2;
            cp = c & 0x1fu;
            min = 0x80;
        } else if (c >= 0xe0 && c <= 0xef) {
            n = 3;
            cp = c & 0x0fu;
            min = 0x800;
        } else if (c >= 0xf0 && c <= 0xf4) {
            n = 4;
            cp = c & 0x07u;
            min = 0x10000;
        } else {
            return 0;
        }
        if (len - i < n) {
            return 0;
        }
        for (size_t k = 1; k < n; k++) {
            if ((p[i + k] & 0xc0u) != 0x80u) {
                return 0;
            }
            cp = (cp << 6) | (p[i + k] & 0x3fu);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
            return 0;
        }
        i += n;
    }
    return 1;
}

int codec_actor_ok(const char *s, size_t len)
{
    return len >= 1 && len <= CODEC_MAX_ACTOR && codec_text_ok(s, len);
}

int codec_request_id_ok(const char *s, size_t len)
{
    return len <= CODEC_MAX_REQUEST_ID && (len == 0 || codec_text_ok(s, len));
}

/* Checks everything about E that is not framing. Shared by encode and decode, so that an
 * entry can be encoded exactly when it would decode. */
static int check_entry(const struct codec_entry *e, char *errmsg, size_t errlen)
{
    if (e->op == CODEC_OP_MATERIALIZED) {
        if (e->materialized_index < 1 || e->materialized_index > CODEC_MAX_INT64) {
            bytes_errmsg(errmsg, errlen, "entry: materialized index %llu is out of range",
                         (unsigned long long)e->materialized_index);
            return CODEC_EINVAL;
        }
        return 0;
    }
    if (e->op != CODEC_OP_PUT && e->op != CODEC_OP_DELETE && e->op != CODEC_OP_ROLLBACK) {
        bytes_errmsg(errmsg, errlen, "entry: unknown op %d", (int)e->op);
        return CODEC_EINVAL;
    }
    const char *op = codec_op_name(e->op);
    /* The new version, expected + 1, must fit in a bigint. */
    if (e->expected_version >= CODEC_MAX_INT64) {
        bytes_errmsg(errmsg, errlen, "entry: %s: expected version %llu is out of range", op,
                     (unsigned long long)e->expected_version);
        return CODEC_EINVAL;
    }
    if (e->op == CODEC_OP_ROLLBACK) {
        if (e->source_version < 1 || e->source_version > e->expected_version) {
            bytes_errmsg(errmsg, errlen,
                         "entry: rollback: source version %llu is not between 1 and the expected "
                         "version %llu",
                         (unsigned long long)e->source_version,
                         (unsigned long long)e->expected_version);
            return CODEC_EINVAL;
        }
    } else if (e->source_version != 0) {
        bytes_errmsg(errmsg, errlen, "entry: %s: source version %llu given outside a rollback", op,
                     (unsigned long long)e->source_version);
        return CODEC_EINVAL;
    }
    if (e->term < 1 || e->term > CODEC_MAX_INT64) {
        bytes_errmsg(errmsg, errlen, "entry: %s: term %llu is out of range", op,
                     (unsigned long long)e->term);
        return CODEC_EINVAL;
    }
    if (e->timestamp_us < 0 || e->timestamp_us > CODEC_MAX_TIMESTAMP_US) {
        bytes_errmsg(errmsg, errlen, "entry: %s: leader timestamp %lld is out of range", op,
                     (long long)e->timestamp_us);
        return CODEC_EINVAL;
    }
    if (e->project == NULL || !codec_project_ok(e->project, e->project_len)) {
        bytes_errmsg(errmsg, errlen, "entry: %s: project id is not a slug of 1 to %d characters",
                     op, CODEC_MAX_PROJECT);
        return CODEC_EINVAL;
    }
    if (e->key == NULL || !codec_key_ok(e->key, e->key_len)) {
        bytes_errmsg(errmsg, errlen, "entry: %s: key is not 1 to %d characters of [A-Za-z0-9._:-]",
                     op, CODEC_MAX_KEY);
        return CODEC_EINVAL;
    }
    if (e->actor == NULL || !codec_actor_ok(e->actor, e->actor_len)) {
        bytes_errmsg(errmsg, errlen, "entry: %s: actor is not 1 to %d bytes of UTF-8 without NUL",
                     op, CODEC_MAX_ACTOR);
        return CODEC_EINVAL;
    }
    if ((e->request_id == NULL && e->request_id_len != 0) ||
        !codec_request_id_ok(e->request_id, e->request_id_len)) {
        bytes_errmsg(errmsg, errlen,
                     "entry: %s: request id is not 0 to %d bytes of UTF-8 without NUL", op,
                     CODEC_MAX_REQUEST_ID);
        return CODEC_EINVAL;
    }
    if (e->has_schema != 0 && e->has_schema != 1) {
        bytes_errmsg(errmsg, errlen, "entry: %s: has_schema is %d, not 0 or 1", op, e->has_schema);
        return CODEC_EINVAL;
    }
    if (e->op == CODEC_OP_DELETE) {
        if (e->has_schema) {
            bytes_errmsg(errmsg, errlen, "entry: delete: carries a schema (a tombstone has none)");
            return CODEC_EINVAL;
        }
        if (e->content != NULL || e->content_len != 0) {
            bytes_errmsg(errmsg, errlen, "entry: delete: carries content");
            return CODEC_EINVAL;
        }
    } else if (e->content == NULL || e->content_len < 1 || e->content_len > CODEC_MAX_CONTENT) {
        bytes_errmsg(errmsg, errlen, "entry: %s: content is not 1 to %zu bytes", op,
                     CODEC_MAX_CONTENT);
        return CODEC_EINVAL;
    }
    return 0;
}

/* ---- writing ---- */

/* A string: u32 length, then the bytes. LEN is at most CODEC_MAX_CONTENT, checked before. */
static uint8_t *put_str(uint8_t *p, const void *data, size_t len)
{
    return bytes_put(bytes_put_le32(p, (uint32_t)len), data, len);
}

static size_t payload_size(const struct codec_entry *e)
{
    if (e->op == CODEC_OP_MATERIALIZED) {
        return 8;
    }
    size_t n = FIXED_FIELDS_SIZE + 4 + e->project_len + 4 + e->key_len + 4 + e->actor_len + 4 +
               e->request_id_len + sizeof(e->fingerprint);
    if (e->has_schema) {
        n += 16 + 32;
    }
    if (e->op != CODEC_OP_DELETE) {
        n += 4 + e->content_len;
    }
    return n;
}

int codec_encode(const struct codec_entry *e, uint8_t **buf, size_t *len, char *errmsg,
                 size_t errlen)
{
    *buf = NULL;
    *len = 0;
    int rc = check_entry(e, errmsg, errlen);
    if (rc != 0) {
        return rc;
    }
    /* check_entry() bounded every length, so this cannot overflow or exceed a u32. */
    size_t payload = payload_size(e);
    size_t total = (CODEC_HEADER_SIZE + payload + 7) & ~(size_t)7;
    /* calloc: the padding must be zero. */
    uint8_t *b = calloc(1, total);
    if (b == NULL) {
        bytes_errmsg(errmsg, errlen, "entry: out of memory encoding %zu bytes", total);
        return CODEC_ENOMEM;
    }
    memcpy(b, CODEC_MAGIC, 4);
    b[4] = CODEC_VERSION;
    b[5] = (uint8_t)e->op;
    b[6] = (uint8_t)(e->op != CODEC_OP_MATERIALIZED && e->has_schema ? CODEC_FLAG_SCHEMA : 0);
    b[7] = 0;
    bytes_put_le32(b + 8, (uint32_t)payload);
    uint8_t *p = b + CODEC_HEADER_SIZE;
    if (e->op == CODEC_OP_MATERIALIZED) {
        p = bytes_put_le64(p, e->materialized_index);
    } else {
        p = bytes_put_le64(p, e->expected_version);
        p = bytes_put_le64(p, e->source_version);
        p = bytes_put_le64(p, e->term);
        p = bytes_put_le64(p, (uint64_t)e->timestamp_us);
        p = put_str(p, e->project, e->project_len);
        p = put_str(p, e->key, e->key_len);
        p = put_str(p, e->actor, e->actor_len);
        p = put_str(p, e->request_id, e->request_id_len);
        p = bytes_put(p, e->fingerprint, sizeof(e->fingerprint));
        if (e->has_schema) {
            p = bytes_put(p, e->schema_id, 16);
            p = bytes_put(p, e->schema_hash, 32);
        }
        if (e->op != CODEC_OP_DELETE) {
            p = put_str(p, e->content, e->content_len);
        }
    }
    bytes_put_le32(b + 12, codec_crc32c(0, b, CODEC_HEADER_SIZE + payload));
    *buf = b;
    *len = total;
    return 0;
}

/* ---- reading ---- */

/* A bounds-checked cursor. Invariant: off <= len, so len - off never underflows, and every
 * read first checks that the bytes it wants lie before len. */
struct reader {
    const uint8_t *p;
    size_t len;
    size_t off;
};

static int rd_u64(struct reader *r, uint64_t *v, const char *what, char *errmsg, size_t errlen)
{
    if (r->len - r->off < 8) {
        bytes_errmsg(errmsg, errlen, "entry: payload ends inside the %s field", what);
        return CODEC_EINVAL;
    }
    *v = bytes_get_le64(r->p + r->off);
    r->off += 8;
    return 0;
}

static int rd_fixed(struct reader *r, uint8_t *out, size_t n, const char *what, char *errmsg,
                    size_t errlen)
{
    if (r->len - r->off < n) {
        bytes_errmsg(errmsg, errlen, "entry: payload ends inside the %s field", what);
        return CODEC_EINVAL;
    }
    memcpy(out, r->p + r->off, n);
    r->off += n;
    return 0;
}

/* A u32 length and that many bytes, refused when the length exceeds MAX or the payload. */
static int rd_str(struct reader *r, const uint8_t **out, size_t *out_len, size_t max,
                  const char *what, char *errmsg, size_t errlen)
{
    if (r->len - r->off < 4) {
        bytes_errmsg(errmsg, errlen, "entry: payload ends inside the length of the %s", what);
        return CODEC_EINVAL;
    }
    size_t n = bytes_get_le32(r->p + r->off);
    r->off += 4;
    if (n > max) {
        bytes_errmsg(errmsg, errlen, "entry: %s length %zu is above the maximum %zu", what, n, max);
        return CODEC_EINVAL;
    }
    if (n > r->len - r->off) {
        bytes_errmsg(errmsg, errlen,
                     "entry: %s length %zu runs past the payload end (%zu bytes left)", what, n,
                     r->len - r->off);
        return CODEC_EINVAL;
    }
    *out = r->p + r->off;
    *out_len = n;
    r->off += n;
    return 0;
}

static int decode_payload(struct reader *r, unsigned flags, struct codec_entry *e, char *errmsg,
                          size_t errlen)
{
    int rc;
    if (e->op == CODEC_OP_MATERIALIZED) {
        return rd_u64(r, &e->materialized_index, "materialized index", errmsg, errlen);
    }
    uint64_t ts;
    if ((rc = rd_u64(r, &e->expected_version, "expected version", errmsg, errlen)) != 0 ||
        (rc = rd_u64(r, &e->source_version, "source version", errmsg, errlen)) != 0 ||
        (rc = rd_u64(r, &e->term, "term", errmsg, errlen)) != 0 ||
        (rc = rd_u64(r, &ts, "timestamp", errmsg, errlen)) != 0) {
        return rc;
    }
    /* A negative timestamp is refused whatever its value, so there is no need for a
     * two's complement conversion (implementation-defined for values above INT64_MAX). */
    if (ts > (uint64_t)INT64_MAX) {
        bytes_errmsg(errmsg, errlen, "entry: %s: leader timestamp is negative",
                     codec_op_name(e->op));
        return CODEC_EINVAL;
    }
    e->timestamp_us = (int64_t)ts;
    const uint8_t *s;
    if ((rc = rd_str(r, &s, &e->project_len, CODEC_MAX_PROJECT, "project id", errmsg, errlen)) !=
        0) {
        return rc;
    }
    e->project = (const char *)s;
    if ((rc = rd_str(r, &s, &e->key_len, CODEC_MAX_KEY, "key", errmsg, errlen)) != 0) {
        return rc;
    }
    e->key = (const char *)s;
    if ((rc = rd_str(r, &s, &e->actor_len, CODEC_MAX_ACTOR, "actor", errmsg, errlen)) != 0) {
        return rc;
    }
    e->actor = (const char *)s;
    if ((rc = rd_str(r, &s, &e->request_id_len, CODEC_MAX_REQUEST_ID, "request id", errmsg,
                     errlen)) != 0) {
        return rc;
    }
    e->request_id = e->request_id_len > 0 ? (const char *)s : NULL;
    if (e->format >= 2 && (rc = rd_fixed(r, e->fingerprint, sizeof(e->fingerprint), "fingerprint",
                                         errmsg, errlen)) != 0) {
        return rc;
    }
    if (flags & CODEC_FLAG_SCHEMA) {
        e->has_schema = 1;
        if ((rc = rd_fixed(r, e->schema_id, 16, "schema id", errmsg, errlen)) != 0 ||
            (rc = rd_fixed(r, e->schema_hash, 32, "schema hash", errmsg, errlen)) != 0) {
            return rc;
        }
    }
    if (e->op != CODEC_OP_DELETE) {
        if ((rc = rd_str(r, &e->content, &e->content_len, CODEC_MAX_CONTENT, "content", errmsg,
                         errlen)) != 0) {
            return rc;
        }
    }
    return 0;
}

int codec_decode(const uint8_t *buf, size_t len, struct codec_entry *out, char *errmsg,
                 size_t errlen)
{
    memset(out, 0, sizeof(*out));
    if (buf == NULL || len < CODEC_HEADER_SIZE) {
        bytes_errmsg(errmsg, errlen, "entry: truncated: %zu bytes, the header alone needs %d", len,
                     CODEC_HEADER_SIZE);
        return CODEC_EINVAL;
    }
    if (memcmp(buf, CODEC_MAGIC, 4) != 0) {
        bytes_errmsg(errmsg, errlen, "entry: bad magic (not a conclave entry)");
        return CODEC_EINVAL;
    }
    if (buf[4] < CODEC_VERSION_MIN || buf[4] > CODEC_VERSION) {
        bytes_errmsg(errmsg, errlen,
                     "entry: unsupported format version %u (this build reads %d to %d)", buf[4],
                     CODEC_VERSION_MIN, CODEC_VERSION);
        return CODEC_EINVAL;
    }
    unsigned op = buf[5];
    unsigned flags = buf[6];
    if (op < CODEC_OP_PUT || op > CODEC_OP_MATERIALIZED) {
        bytes_errmsg(errmsg, errlen, "entry: unknown op %u", op);
        return CODEC_EINVAL;
    }
    unsigned allowed = (op == CODEC_OP_PUT || op == CODEC_OP_ROLLBACK) ? CODEC_FLAG_SCHEMA : 0u;
    if ((flags & ~allowed) != 0) {
        bytes_errmsg(errmsg, errlen, "entry: flags 0x%02x are not valid for %s", flags,
                     codec_op_name((enum codec_op)op));
        return CODEC_EINVAL;
    }
    if (buf[7] != 0) {
        bytes_errmsg(errmsg, errlen, "entry: reserved header byte is 0x%02x, not 0", buf[7]);
        return CODEC_EINVAL;
    }
    if (len % 8 != 0) {
        bytes_errmsg(errmsg, errlen, "entry: length %zu is not a multiple of 8", len);
        return CODEC_EINVAL;
    }
    /* Compared against what is there before any addition, so nothing can overflow. From
     * here on real <= len, and total <= len because len is a multiple of 8. */
    size_t payload = bytes_get_le32(buf + 8);
    if (payload > len - CODEC_HEADER_SIZE) {
        bytes_errmsg(errmsg, errlen,
                     "entry: truncated: payload length %zu, have %zu bytes after the header",
                     payload, len - CODEC_HEADER_SIZE);
        return CODEC_EINVAL;
    }
    size_t real = CODEC_HEADER_SIZE + payload;
    size_t total = (real + 7) & ~(size_t)7;
    if (len > total) {
        bytes_errmsg(errmsg, errlen, "entry: %zu trailing bytes after the padded payload",
                     len - total);
        return CODEC_EINVAL;
    }
    for (size_t i = real; i < total; i++) {
        if (buf[i] != 0) {
            bytes_errmsg(errmsg, errlen, "entry: padding byte %zu is not zero", i - real);
            return CODEC_EINVAL;
        }
    }
    uint8_t header[CODEC_HEADER_SIZE];
    memcpy(header, buf, sizeof(header));
    memset(header + 12, 0, 4);
    uint32_t crc = codec_crc32c(0, header, sizeof(header));
    crc = codec_crc32c(crc, buf + CODEC_HEADER_SIZE, payload);
    uint32_t stored = bytes_get_le32(buf + 12);
    if (crc != stored) {
        bytes_errmsg(errmsg, errlen, "entry: checksum mismatch (stored 0x%08x, computed 0x%08x)",
                     stored, crc);
        return CODEC_EINVAL;
    }

    struct codec_entry e;
    memset(&e, 0, sizeof(e));
    e.op = (enum codec_op)op;
    e.format = buf[4];
    struct reader r = {.p = buf + CODEC_HEADER_SIZE, .len = payload, .off = 0};
    int rc = decode_payload(&r, flags, &e, errmsg, errlen);
    if (rc == 0 && r.off != r.len) {
        bytes_errmsg(errmsg, errlen, "entry: %zu unread bytes at the end of the %s payload",
                     r.len - r.off, codec_op_name(e.op));
        rc = CODEC_EINVAL;
    }
    if (rc == 0) {
        rc = check_entry(&e, errmsg, errlen);
    }
    if (rc == 0) {
        *out = e;
    }
    return rc;
}
