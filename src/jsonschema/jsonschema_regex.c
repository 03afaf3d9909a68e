/* ECMA-262 regular expressions on PCRE2: a one-pass rewrite of the few constructs whose
 * meaning differs, then pcre2_compile(). */
#include "jsonschema/jsonschema_regex.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonschema/jsonschema_buf.h"

/* ECMA-262 is the regex dialect JSON Schema names: "$" matches only at the very end and
 * "\uXXXX" is a code point (PCRE2_ALT_BSUX; "\u{...}" and surrogate pairs are rewritten). Without
 * PCRE2_UCP, "\d" and "\w" stay ASCII as ECMA says. Invalid UTF-8 subjects, which jansson never
 * produces, fail to match instead of being undefined behaviour. */
#define REGEX_OPTIONS                                                                              \
    (PCRE2_UTF | PCRE2_DOLLAR_ENDONLY | PCRE2_ALT_BSUX | PCRE2_NEVER_BACKSLASH_C |                 \
     PCRE2_MATCH_INVALID_UTF)

/* The white space ECMA-262 "\s" adds to PCRE2's ASCII one (WhiteSpace and LineTerminator). */
#define ECMA_SPACES "\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000\\ufeff"

/* ECMA-262 long General_Category names and the short ones PCRE2 knows. */
static const struct {
    const char *ecma, *pcre;
} categories[] = {
    {"Letter", "L"},
    {"Cased_Letter", "L&"},
    {"Uppercase_Letter", "Lu"},
    {"Lowercase_Letter", "Ll"},
    {"Titlecase_Letter", "Lt"},
    {"Modifier_Letter", "Lm"},
    {"Other_Letter", "Lo"},
    {"Mark", "M"},
    {"Nonspacing_Mark", "Mn"},
    {"Spacing_Mark", "Mc"},
    {"Enclosing_Mark", "Me"},
    {"Number", "N"},
    {"Decimal_Number", "Nd"},
    {"digit", "Nd"},
    {"Letter_Number", "Nl"},
    {"Other_Number", "No"},
    {"Punctuation", "P"},
    {"punct", "P"},
    {"Connector_Punctuation", "Pc"},
    {"Dash_Punctuation", "Pd"},
    {"Open_Punctuation", "Ps"},
    {"Close_Punctuation", "Pe"},
    {"Initial_Punctuation", "Pi"},
    {"Final_Punctuation", "Pf"},
    {"Other_Punctuation", "Po"},
    {"Symbol", "S"},
    {"Math_Symbol", "Sm"},
    {"Currency_Symbol", "Sc"},
    {"Modifier_Symbol", "Sk"},
    {"Other_Symbol", "So"},
    {"Separator", "Z"},
    {"Space_Separator", "Zs"},
    {"Line_Separator", "Zl"},
    {"Paragraph_Separator", "Zp"},
    {"Other", "C"},
    {"Control", "Cc"},
    {"cntrl", "Cc"},
    {"Format", "Cf"},
    {"Surrogate", "Cs"},
    {"Private_Use", "Co"},
    {"Unassigned", "Cn"},
};

/* Appends the property name of LEN bytes at NAME ("Letter", "General_Category=Letter",
 * "Script=Greek", "sc=Greek") in PCRE2's spelling. */
static void put_property(struct jsbuf *b, const char *name, size_t len)
{
    const char *eq = memchr(name, '=', len);
    if (eq) {
        len -= (size_t)(eq + 1 - name);
        name = eq + 1;
    }
    for (size_t i = 0; i < sizeof categories / sizeof *categories; i++) {
        if (strlen(categories[i].ecma) == len && memcmp(categories[i].ecma, name, len) == 0) {
            jsonschema_buf_puts(b, categories[i].pcre);
            return;
        }
    }
    jsonschema_buf_putn(b, name, len);
}

/* The value of the N hex digits at S, or -1. */
static long hex_value(const char *s, size_t n)
{
    long v = 0;
    for (size_t i = 0; i < n; i++) {
        int d = jsonschema_hex_digit(s[i]);
        if (d < 0)
            return -1;
        v = v * 16 + d;
    }
    return v;
}

/* Appends the code point CP so that PCRE2 (with PCRE2_ALT_BSUX, where "\x" takes exactly
 * two hex digits) reads it as that literal character: "\xhh" below 0x80, UTF-8 above. */
static void put_code_point(struct jsbuf *b, unsigned long cp)
{
    char u[4];
    size_t n;
    if (cp < 0x80) {
        jsonschema_buf_printf(b, "\\x%02lx", cp);
        return;
    }
    if (cp < 0x800) {
        u[0] = (char)(0xC0 | cp >> 6);
        u[1] = (char)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        u[0] = (char)(0xE0 | cp >> 12);
        u[1] = (char)(0x80 | (cp >> 6 & 0x3F));
        u[2] = (char)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        u[0] = (char)(0xF0 | cp >> 18);
        u[1] = (char)(0x80 | (cp >> 12 & 0x3F));
        u[2] = (char)(0x80 | (cp >> 6 & 0x3F));
        u[3] = (char)(0x80 | (cp & 0x3F));
        n = 4;
    }
    jsonschema_buf_putn(b, u, n);
}

/* The letters ECMA-262 (with the u flag) allows after a backslash. Any other letter is a
 * syntax error there, while PCRE2 would give it a meaning of its own ("\a" is BEL, "\z"
 * an anchor), so it is refused rather than silently matched differently. */
static bool ecma_letter_escape(char e)
{
    return strchr("bBcdDfknpPrsStuvwWx", e) != NULL;
}

/* Rewrites the ECMA-262 pattern SRC (LEN bytes) into B for PCRE2. Tracks only whether it is
 * inside a character class and skips escaped characters; every other byte is copied, so
 * PCRE2 still reports syntax errors. MAP receives, for each output byte, the offset of the
 * input byte it came from, so PCRE2's error offsets can be reported in SRC. Returns the
 * input offset of an escape ECMA-262 refuses, or LEN when there is none. */
static size_t translate(const char *src, size_t len, struct jsbuf *b, size_t **map)
{
    bool in_class = false;
    size_t *m = NULL, cap = 0, bad = len;
    for (size_t i = 0; i < len && bad == len;) {
        size_t before = b->len;
        char ch = src[i];
        size_t used = 1;
        if (ch == '\\' && i + 1 < len) {
            char e = src[i + 1];
            used = 2;
            long cp;
            if (((e >= 'a' && e <= 'z') || (e >= 'A' && e <= 'Z')) && !ecma_letter_escape(e)) {
                bad = i;
            } else if (e == 's') {
                jsonschema_buf_puts(b, in_class ? "\\s" ECMA_SPACES : "[\\s" ECMA_SPACES "]");
            } else if (e == 'S' && !in_class) {
                jsonschema_buf_puts(b, "[^\\s" ECMA_SPACES "]");
            } else if (e == 'u' && i + 2 < len && src[i + 2] == '{') {
                /* \u{X...}: a code point of any size. */
                const char *close = memchr(src + i + 3, '}', len - i - 3);
                size_t digits = close ? (size_t)(close - (src + i + 3)) : 0;
                cp = digits > 0 && digits <= 6 ? hex_value(src + i + 3, digits) : -1;
                if (cp < 0 || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
                    bad = i;
                } else {
                    put_code_point(b, (unsigned long)cp);
                    used = 3 + digits + 1;
                }
            } else if (e == 'u' && len - i >= 12 && (cp = hex_value(src + i + 2, 4)) >= 0xD800 &&
                       cp <= 0xDBFF && src[i + 6] == '\\' && src[i + 7] == 'u') {
                /* A surrogate pair \uD83D\uDE00 is one code point; PCRE2 refuses lone
                 * surrogates in UTF mode. */
                long lo = hex_value(src + i + 8, 4);
                if (lo < 0xDC00 || lo > 0xDFFF) {
                    bad = i;
                } else {
                    put_code_point(
                        b, (unsigned long)(0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00)));
                    used = 12;
                }
            } else if ((e == 'p' || e == 'P') && i + 2 < len && src[i + 2] == '{') {
                const char *close = memchr(src + i + 3, '}', len - i - 3);
                if (close) {
                    jsonschema_buf_putn(b, src + i, 3);
                    put_property(b, src + i + 3, (size_t)(close - (src + i + 3)));
                    jsonschema_buf_putn(b, "}", 1);
                    used = (size_t)(close + 1 - (src + i));
                } else {
                    jsonschema_buf_putn(b, src + i, 2);
                }
            } else {
                jsonschema_buf_putn(b, src + i, 2);
            }
        } else {
            if (ch == '[' && !in_class)
                in_class = true;
            else if (ch == ']' && in_class)
                in_class = false;
            jsonschema_buf_putn(b, &ch, 1);
        }
        if (b->len + 1 > cap) {
            size_t ncap = (b->len + 1) * 2;
            size_t *nm = realloc(m, ncap * sizeof *nm);
            if (!nm) {
                b->oom = true;
                break;
            }
            m = nm;
            cap = ncap;
        }
        for (size_t k = before; k < b->len; k++)
            m[k] = i;
        m[b->len] = i + used;
        i += used;
    }
    *map = m;
    return bad;
}

int jsonschema_regex_compile(const char *src, size_t len, pcre2_code **out, char *why,
                             size_t whylen, size_t *offset)
{
    struct jsbuf b = {0};
    size_t *map = NULL;
    size_t bad = translate(src, len, &b, &map);
    *out = NULL;
    if (b.oom) {
        free(b.p);
        free(map);
        return JSONSCHEMA_REGEX_ENOMEM;
    }
    if (bad < len) {
        snprintf(why, whylen, "\"\\%c\" is not an ECMA-262 escape", src[bad + 1]);
        *offset = bad;
        free(b.p);
        free(map);
        return JSONSCHEMA_REGEX_EBAD;
    }
    int code;
    PCRE2_SIZE at;
    *out =
        pcre2_compile((PCRE2_SPTR)jsonschema_buf_str(&b), b.len, REGEX_OPTIONS, &code, &at, NULL);
    int rc = 0;
    if (!*out) {
        pcre2_get_error_message(code, (PCRE2_UCHAR *)why, whylen);
        *offset = map && at <= b.len ? map[at] : at;
        rc = code == PCRE2_ERROR_NOMEMORY ? JSONSCHEMA_REGEX_ENOMEM : JSONSCHEMA_REGEX_EBAD;
    }
    free(b.p);
    free(map);
    return rc;
}
