/* "idn-hostname" for the JSON Schema validator: RFC 5890/5891 host names whose labels are
 * ASCII, A-labels ("xn--" + RFC 3492 Punycode) or U-labels (Unicode). Checked: the label and
 * name lengths (a U-label by the length of its A-label), hyphen placement, Punycode that
 * decodes to a non-ASCII U-label, no combining mark first, no control, space, punctuation or
 * symbol characters, and the RFC 5892 contextual rules (middle dot, Greek keraia, Hebrew
 * punctuation, katakana middle dot, Arabic-Indic digits, joiners after a virama), and no
 * uppercase in a U-label. Not checked: the rest of the IDNA 2008 code point table (a
 * compatibility character such as a fullwidth letter passes), NFC normalization, and the
 * RFC 5893 bidi rule for right-to-left labels. */
#include "jsonschema/jsonschema_format.h"

#include <stdint.h>
#include <string.h>

#include "jsonschema/jsonschema_regex.h"

/* Most code points of one label considered: an A-label has at most 59 characters after
 * "xn--", which never decode to more than 59 code points. */
#define MAX_LABEL_CPS 64

enum { BASE = 36, TMIN = 1, TMAX = 26, SKEW = 38, DAMP = 700, INITIAL_BIAS = 72, INITIAL_N = 128 };

static uint32_t adapt(uint32_t delta, uint32_t numpoints, bool first)
{
    delta = first ? delta / DAMP : delta / 2;
    delta += delta / numpoints;
    uint32_t k = 0;
    /* Bounded: delta shrinks by a factor of 35 each round. */
    while (delta > ((BASE - TMIN) * TMAX) / 2) {
        delta /= BASE - TMIN;
        k += BASE;
    }
    return k + (BASE - TMIN + 1) * delta / (delta + SKEW);
}

static int digit_value(char c)
{
    if (c >= 'a' && c <= 'z')
        return c - 'a';
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= '0' && c <= '9')
        return c - '0' + 26;
    return -1;
}

/* RFC 3492 section 6.2: decodes the N bytes at IN into OUT (room for MAX_LABEL_CPS code
 * points); returns the count, or -1 when IN is not valid Punycode. */
static int punycode_decode(const char *in, size_t n, uint32_t *out)
{
    size_t basic = 0;
    for (size_t j = 0; j < n; j++) {
        if (in[j] == '-')
            basic = j;
    }
    size_t count = 0;
    for (size_t j = 0; j < basic; j++) {
        if ((unsigned char)in[j] >= 0x80 || count == MAX_LABEL_CPS)
            return -1;
        out[count++] = (unsigned char)in[j];
    }
    uint32_t nn = INITIAL_N, i = 0, bias = INITIAL_BIAS;
    for (size_t p = basic > 0 ? basic + 1 : 0; p < n;) {
        uint32_t oldi = i, w = 1;
        for (uint32_t k = BASE;; k += BASE) {
            if (p >= n)
                return -1;
            int d = digit_value(in[p++]);
            if (d < 0 || (uint32_t)d > (UINT32_MAX - i) / w)
                return -1;
            i += (uint32_t)d * w;
            uint32_t t = k <= bias ? TMIN : k >= bias + TMAX ? TMAX : k - bias;
            if ((uint32_t)d < t)
                break;
            if (w > UINT32_MAX / (BASE - t))
                return -1;
            w *= BASE - t;
        }
        if (count == MAX_LABEL_CPS)
            return -1;
        bias = adapt(i - oldi, (uint32_t)count + 1, oldi == 0);
        if (i / ((uint32_t)count + 1) > UINT32_MAX - nn)
            return -1;
        nn += i / ((uint32_t)count + 1);
        i %= (uint32_t)count + 1;
        if (nn > 0x10FFFF || (nn >= 0xD800 && nn <= 0xDFFF))
            return -1;
        memmove(out + i + 1, out + i, (count - i) * sizeof *out);
        out[i++] = nn;
        count++;
    }
    return (int)count;
}

/* RFC 3492 section 6.3, length only: the bytes the Punycode of the N code points at CP
 * takes, or SIZE_MAX on overflow. */
static size_t punycode_length(const uint32_t *cp, size_t n)
{
    size_t len = 0, handled = 0;
    for (size_t j = 0; j < n; j++) {
        if (cp[j] < 0x80) {
            len++;
            handled++;
        }
    }
    size_t basic = handled;
    if (basic > 0)
        len++;
    uint32_t nn = INITIAL_N, delta = 0, bias = INITIAL_BIAS;
    /* Each round handles at least one more code point. */
    while (handled < n) {
        uint32_t m = UINT32_MAX;
        for (size_t j = 0; j < n; j++) {
            if (cp[j] >= nn && cp[j] < m)
                m = cp[j];
        }
        if ((uint64_t)(m - nn) * (handled + 1) + delta > UINT32_MAX)
            return SIZE_MAX;
        delta += (m - nn) * (uint32_t)(handled + 1);
        nn = m;
        for (size_t j = 0; j < n; j++) {
            if (cp[j] < nn && ++delta == 0)
                return SIZE_MAX;
            if (cp[j] == nn) {
                uint32_t q = delta;
                for (uint32_t k = BASE;; k += BASE) {
                    uint32_t t = k <= bias ? TMIN : k >= bias + TMAX ? TMAX : k - bias;
                    if (q < t)
                        break;
                    len++;
                    q = (q - t) / (BASE - t);
                }
                len++;
                bias = adapt(delta, (uint32_t)handled + 1, handled == basic);
                delta = 0;
                handled++;
            }
        }
        delta++;
        nn++;
    }
    return len;
}

/* Decodes one UTF-8 character at S (N bytes left) into *CP; returns its length, 0 if
 * invalid. */
static size_t utf8_decode(const unsigned char *s, size_t n, uint32_t *cp)
{
    if (s[0] < 0x80) {
        *cp = s[0];
        return 1;
    }
    size_t len = s[0] >= 0xF0 ? 4 : s[0] >= 0xE0 ? 3 : s[0] >= 0xC0 ? 2 : 0;
    if (len == 0 || len > n || s[0] > 0xF4)
        return 0;
    uint32_t v = s[0] & (0x3F >> (len - 1));
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        v = v << 6 | (s[i] & 0x3F);
    }
    static const uint32_t min[] = {0, 0, 0x80, 0x800, 0x10000};
    if (v < min[len] || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
        return 0;
    *cp = v;
    return len;
}

static size_t utf8_encode(uint32_t cp, char *out)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | cp >> 6);
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | cp >> 12);
        out[1] = (char)(0x80 | (cp >> 6 & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | cp >> 18);
    out[1] = (char)(0x80 | (cp >> 12 & 0x3F));
    out[2] = (char)(0x80 | (cp >> 6 & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

#define VIRAMAS                                                                                    \
    "\\x{94d}\\x{9cd}\\x{a4d}\\x{acd}\\x{b4d}\\x{bcd}\\x{c4d}\\x{ccd}\\x{d4d}\\x{dca}\\x{e3a}"     \
    "\\x{f84}\\x{1039}\\x{103a}\\x{1714}\\x{1734}\\x{17d2}\\x{1a60}\\x{1b44}\\x{1baa}\\x{1bab}"    \
    "\\x{a806}\\x{a8c4}\\x{a953}\\x{a9c0}\\x{aaf6}\\x{abed}"

/* What makes a U-label invalid, as one PCRE2 pattern (PCRE2 syntax, not ECMA-262, so
 * \x{...} and Unicode scripts are available); a match means invalid. */
static const char invalid_ulabel[] =
    "^\\p{M}" /* a combining mark first */
    "|(?![-\\x{b7}\\x{375}\\x{5f3}\\x{5f4}\\x{30fb}\\x{200c}\\x{200d}])"
    "[\\p{C}\\p{Z}\\p{P}\\p{S}]" /* control, space, punctuation, symbol */
    "|[\\x{640}\\x{7fa}\\x{302e}\\x{302f}\\x{3031}-\\x{3035}\\x{303b}]" /* RFC 5892 DISALLOWED */
    "|(?<!l)\\x{b7}|\\x{b7}(?!l)"         /* middle dot only in l·l */
    "|\\x{375}(?!\\p{Greek})"             /* keraia before Greek */
    "|(?<!\\p{Hebrew})[\\x{5f3}\\x{5f4}]" /* geresh after Hebrew */
    "|^(?=.*\\x{30fb})(?!.*(?!\\x{30fb})[\\p{Hiragana}\\p{Katakana}\\p{Han}])" /* katakana dot */
    "|[\\p{Lu}\\p{Lt}]" /* IDNA 2008 has lowercase only */
    "|[\\x{660}-\\x{669}].*[\\x{6f0}-\\x{6f9}]|[\\x{6f0}-\\x{6f9}].*[\\x{660}-\\x{669}]"
    "|(?<![" VIRAMAS "])\\x{200d}"             /* zero width joiner after virama */
    "|(?<![" VIRAMAS "\\p{Arabic}])\\x{200c}"; /* non-joiner: virama or joining */

/* True when the N bytes at S (UTF-8) match invalid_ulabel. A pattern that fails to compile
 * or match counts as a match: refuse rather than accept unchecked. */
static bool ulabel_rules_fail(const char *s, size_t n)
{
    int code;
    PCRE2_SIZE off;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)invalid_ulabel, PCRE2_ZERO_TERMINATED,
                                   PCRE2_UTF | PCRE2_UCP, &code, &off, NULL);
    if (!re)
        return true;
    pcre2_match_data *md = pcre2_match_data_create(1, NULL);
    int rc = md ? pcre2_match(re, (PCRE2_SPTR)s, n, 0, 0, md, NULL) : -1;
    pcre2_match_data_free(md);
    pcre2_code_free(re);
    return rc != PCRE2_ERROR_NOMATCH;
}

/* The checks every label shares: 1 to 63 bytes in its ASCII form, no hyphen first or last,
 * no "--" in the third and fourth positions (reserved for "xn--"). CP holds N code points;
 * ALEN is the length of the ASCII form. */
static bool label_shape_ok(const uint32_t *cp, size_t n, size_t alen)
{
    if (n == 0 || alen == 0 || alen > 63 || cp[0] == '-' || cp[n - 1] == '-')
        return false;
    return !(n >= 4 && cp[2] == '-' && cp[3] == '-');
}

/* A U-label (code points CP, N of them, at least one not ASCII). */
static bool check_ulabel(const uint32_t *cp, size_t n)
{
    size_t plen = punycode_length(cp, n);
    if (plen == SIZE_MAX || !label_shape_ok(cp, n, plen + 4))
        return false;
    char utf8[MAX_LABEL_CPS * 4];
    size_t len = 0;
    for (size_t i = 0; i < n; i++)
        len += utf8_encode(cp[i], utf8 + len);
    return !ulabel_rules_fail(utf8, len);
}

/* One label of N code points: ASCII (an LDH label or an A-label) or a U-label. *ALEN
 * receives the length of its ASCII form. */
static bool check_label(const uint32_t *cp, size_t n, size_t *alen)
{
    bool ascii = true;
    for (size_t i = 0; i < n; i++)
        ascii = ascii && cp[i] < 0x80;
    if (!ascii) {
        size_t plen = punycode_length(cp, n);
        *alen = plen == SIZE_MAX ? SIZE_MAX : plen + 4;
        return plen != SIZE_MAX && check_ulabel(cp, n);
    }
    *alen = n;
    if (n >= 4 && (cp[0] | 0x20) == 'x' && (cp[1] | 0x20) == 'n' && cp[2] == '-' && cp[3] == '-') {
        char a[MAX_LABEL_CPS];
        uint32_t u[MAX_LABEL_CPS];
        if (n > 63)
            return false;
        /* A-labels compare case-insensitively: decode the lowercase form. */
        for (size_t i = 4; i < n; i++)
            a[i - 4] = (char)(cp[i] >= 'A' && cp[i] <= 'Z' ? cp[i] | 0x20 : cp[i]);
        int un = punycode_decode(a, n - 4, u);
        if (un <= 0)
            return false;
        bool has_non_ascii = false;
        for (int i = 0; i < un; i++)
            has_non_ascii = has_non_ascii || u[i] >= 0x80;
        return has_non_ascii && check_ulabel(u, (size_t)un);
    }
    for (size_t i = 0; i < n; i++) {
        uint32_t c = cp[i] | 0x20;
        if (!((c >= 'a' && c <= 'z') || (cp[i] >= '0' && cp[i] <= '9') || cp[i] == '-'))
            return false;
    }
    return label_shape_ok(cp, n, n);
}

bool jsonschema_format_idn_hostname(const char *s, size_t len)
{
    if (len == 0 || len > 1024)
        return false;
    uint32_t label[MAX_LABEL_CPS];
    size_t n = 0, total = 0;
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i <= len;) {
        uint32_t cp = '.';
        size_t used = 1;
        if (i < len) {
            used = utf8_decode(p + i, len - i, &cp);
            if (used == 0)
                return false;
        }
        i += used;
        /* Full stops: ASCII and the ideographic and fullwidth forms (RFC 3490 3.1). */
        if (cp == '.' || cp == 0x3002 || cp == 0xFF0E || cp == 0xFF61) {
            size_t alen;
            if (!check_label(label, n, &alen))
                return false;
            total += alen + (total > 0);
            if (total > 253)
                return false;
            n = 0;
            if (i > len)
                break;
            continue;
        }
        if (n == MAX_LABEL_CPS)
            return false;
        label[n++] = cp;
    }
    return true;
}
