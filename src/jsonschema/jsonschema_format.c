/* The "format" checks of the JSON Schema validator. Every check reads only the bytes it is
 * given (strings may hold NUL bytes), and, but for the IRI forms, treats any byte outside
 * ASCII as invalid. */
#include "jsonschema/jsonschema_format.h"

#include <string.h>

#include "jsonschema/jsonschema_regex.h"

static const char *const format_names[] = {
    [JSFORMAT_NONE] = "",
    [JSFORMAT_DATE_TIME] = "date-time",
    [JSFORMAT_DATE] = "date",
    [JSFORMAT_TIME] = "time",
    [JSFORMAT_EMAIL] = "email",
    [JSFORMAT_HOSTNAME] = "hostname",
    [JSFORMAT_IPV4] = "ipv4",
    [JSFORMAT_IPV6] = "ipv6",
    [JSFORMAT_URI] = "uri",
    [JSFORMAT_UUID] = "uuid",
    [JSFORMAT_DURATION] = "duration",
    [JSFORMAT_IDN_EMAIL] = "idn-email",
    [JSFORMAT_IDN_HOSTNAME] = "idn-hostname",
    [JSFORMAT_URI_REFERENCE] = "uri-reference",
    [JSFORMAT_IRI] = "iri",
    [JSFORMAT_IRI_REFERENCE] = "iri-reference",
    [JSFORMAT_URI_TEMPLATE] = "uri-template",
    [JSFORMAT_JSON_POINTER] = "json-pointer",
    [JSFORMAT_RELATIVE_JSON_POINTER] = "relative-json-pointer",
    [JSFORMAT_REGEX] = "regex",
};

enum jsformat jsonschema_format_lookup(const char *name)
{
    for (int f = JSFORMAT_DATE_TIME; f <= JSFORMAT_LAST; f++) {
        if (strcmp(name, format_names[f]) == 0)
            return (enum jsformat)f;
    }
    return JSFORMAT_NONE;
}

const char *jsonschema_format_name(enum jsformat f)
{
    return format_names[f];
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_alnum(char c)
{
    return is_digit(c) || is_alpha(c);
}

static bool is_hex(char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* A NUL byte is never in SET; strchr() alone would find the terminator. */
static bool in_set(const char *set, char c)
{
    return c != '\0' && strchr(set, c) != NULL;
}

/* Returns the value of the N decimal digits at S, or -1 when one of them is not a digit. */
static int digits(const char *s, size_t n)
{
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        if (!is_digit(s[i]))
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

static int days_in_month(int year, int month)
{
    static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    return month == 2 && leap ? 29 : days[month - 1];
}

/* full-date = YYYY-MM-DD with a day that exists in that month of that year. */
static bool check_date(const char *s, size_t len)
{
    if (len != 10 || s[4] != '-' || s[7] != '-')
        return false;
    int year = digits(s, 4), month = digits(s + 5, 2), day = digits(s + 8, 2);
    return year >= 0 && month >= 1 && month <= 12 && day >= 1 && day <= days_in_month(year, month);
}

/* full-time = HH:MM:SS[.frac](Z|+HH:MM|-HH:MM). RFC 3339 allows a lowercase "z". */
static bool check_time(const char *s, size_t len)
{
    if (len < 9 || s[2] != ':' || s[5] != ':')
        return false;
    int hour = digits(s, 2), minute = digits(s + 3, 2), second = digits(s + 6, 2);
    if (hour < 0 || hour > 23 || minute < 0 || minute > 59 || second < 0 || second > 60)
        return false;
    size_t i = 8;
    if (s[i] == '.') {
        size_t start = ++i;
        while (i < len && is_digit(s[i]))
            i++;
        if (i == start)
            return false;
    }
    if (i >= len)
        return false;
    int offset; /* minutes east of UTC */
    if ((s[i] == 'Z' || s[i] == 'z') && i + 1 == len) {
        offset = 0;
    } else if ((s[i] == '+' || s[i] == '-') && len - i == 6 && s[i + 3] == ':') {
        int oh = digits(s + i + 1, 2), om = digits(s + i + 4, 2);
        if (oh < 0 || oh > 23 || om < 0 || om > 59)
            return false;
        offset = (oh * 60 + om) * (s[i] == '-' ? -1 : 1);
    } else {
        return false;
    }
    if (second == 60) {
        /* Leap seconds are inserted only at 23:59:60 UTC, whatever the local offset. */
        int utc = ((hour * 60 + minute - offset) % 1440 + 1440) % 1440;
        return utc == 23 * 60 + 59;
    }
    return true;
}

static bool check_date_time(const char *s, size_t len)
{
    return len > 11 && check_date(s, 10) && (s[10] == 'T' || s[10] == 't') &&
           check_time(s + 11, len - 11);
}

/* RFC 1123: dot-separated labels of 1 to 63 letters, digits and hyphens, not starting or
 * ending with a hyphen, 253 bytes at most. A trailing dot is not accepted. */
bool jsonschema_format_hostname(const char *s, size_t len)
{
    if (len == 0 || len > 253)
        return false;
    size_t label = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i == len || s[i] == '.') {
            if (label == 0 || label > 63 || s[i - label] == '-' || s[i - 1] == '-')
                return false;
            label = 0;
        } else if (is_alnum(s[i]) || s[i] == '-') {
            label++;
        } else {
            return false;
        }
    }
    return true;
}

/* Four decimal octets of at most 255. Leading zeros are refused because some parsers read
 * them as octal ("010" would be 8). */
static bool check_ipv4(const char *s, size_t len)
{
    size_t i = 0;
    for (int part = 0; part < 4; part++) {
        if (part > 0) {
            if (i >= len || s[i] != '.')
                return false;
            i++;
        }
        size_t start = i;
        int v = 0;
        while (i < len && is_digit(s[i]) && i - start < 3)
            v = v * 10 + (s[i++] - '0');
        if (i == start || v > 255 || (s[start] == '0' && i - start > 1))
            return false;
    }
    return i == len;
}

/* RFC 4291 section 2.2: eight groups of 1 to 4 hex digits, at most one "::" standing for one
 * or more zero groups, and optionally a dotted quad as the last 32 bits. */
static bool check_ipv6(const char *s, size_t len)
{
    if (len < 2 || len > 45)
        return false;
    size_t i = 0;
    int groups = 0;
    bool compressed = false;
    if (s[0] == ':') {
        if (s[1] != ':')
            return false;
        compressed = true;
        i = 2;
    }
    while (i < len) {
        size_t end = i;
        bool dotted = false;
        while (end < len && s[end] != ':') {
            dotted = dotted || s[end] == '.';
            end++;
        }
        if (dotted) {
            /* The dotted quad can only be the last piece. */
            if (end != len || !check_ipv4(s + i, end - i))
                return false;
            groups += 2;
            break;
        }
        if (end == i || end - i > 4)
            return false;
        for (size_t k = i; k < end; k++) {
            if (!is_hex(s[k]))
                return false;
        }
        groups++;
        if (end == len)
            break;
        if (end + 1 < len && s[end + 1] == ':') {
            if (compressed)
                return false;
            compressed = true;
            i = end + 2;
        } else {
            i = end + 1;
            if (i == len)
                return false; /* a single trailing colon */
        }
    }
    return compressed ? groups <= 7 : groups == 8;
}

static bool is_unreserved(char c)
{
    return is_alnum(c) || in_set("-._~", c);
}

static bool is_subdelim(char c)
{
    return in_set("!$&'()*+,;=", c);
}

/* True when every byte of the N at S is unreserved, a sub-delim, part of a %XX triplet, or
 * one of EXTRA: the building block of every RFC 3986 component rule. With IRI, bytes of
 * non-ASCII UTF-8 characters are allowed too (RFC 3987 ucschar and iprivate, which jansson
 * strings hold only as valid UTF-8). */
static bool uri_chars(const char *s, size_t n, const char *extra, bool iri)
{
    for (size_t i = 0; i < n;) {
        if (s[i] == '%') {
            if (n - i < 3 || !is_hex(s[i + 1]) || !is_hex(s[i + 2]))
                return false;
            i += 3;
            continue;
        }
        if (!is_unreserved(s[i]) && !is_subdelim(s[i]) && !in_set(extra, s[i]) &&
            !(iri && (unsigned char)s[i] >= 0x80))
            return false;
        i++;
    }
    return true;
}

/* IP-literal without its brackets: an IPv6 address or IPvFuture ("v" HEX+ "." chars+). */
static bool check_ip_literal(const char *s, size_t n)
{
    if (n > 0 && (s[0] == 'v' || s[0] == 'V')) {
        size_t i = 1;
        while (i < n && is_hex(s[i]))
            i++;
        if (i == 1 || i >= n - 1 || s[i] != '.')
            return false;
        for (i++; i < n; i++) {
            if (!is_unreserved(s[i]) && !is_subdelim(s[i]) && s[i] != ':')
                return false;
        }
        return true;
    }
    return check_ipv6(s, n);
}

/* authority = [userinfo "@"] host [":" port] */
static bool check_authority(const char *s, size_t n, bool iri)
{
    size_t at = n;
    while (at > 0 && s[at - 1] != '@')
        at--;
    if (at > 0) {
        if (!uri_chars(s, at - 1, ":", iri))
            return false;
        s += at;
        n -= at;
    }
    size_t host;
    if (n > 0 && s[0] == '[') {
        size_t close = 1;
        while (close < n && s[close] != ']')
            close++;
        if (close == n || !check_ip_literal(s + 1, close - 1))
            return false;
        host = close + 1;
    } else {
        host = 0;
        while (host < n && s[host] != ':')
            host++;
        if (!uri_chars(s, host, "", iri))
            return false;
    }
    if (host < n) {
        if (s[host] != ':')
            return false;
        for (size_t i = host + 1; i < n; i++) {
            if (!is_digit(s[i]))
                return false;
        }
    }
    return true;
}

/* The length of the scheme of S followed by ":", or 0 when S does not start with one. */
static size_t scheme_len(const char *s, size_t len)
{
    if (len == 0 || !is_alpha(s[0]))
        return 0;
    size_t i = 1;
    while (i < len && (is_alnum(s[i]) || in_set("+-.", s[i])))
        i++;
    return i < len && s[i] == ':' ? i : 0;
}

/* URI = scheme ":" hier-part ["?" query] ["#" fragment] (RFC 3986 section 3), or, unless
 * ABSOLUTE, a relative-ref, whose first path segment may not hold ":" (it would read as a
 * scheme). */
bool jsonschema_format_uri(const char *s, size_t len, bool absolute, bool iri)
{
    size_t i = scheme_len(s, len);
    bool relative = i == 0;
    if (!relative)
        i++;
    else if (absolute)
        return false;
    size_t end = i;
    while (end < len && s[end] != '?' && s[end] != '#')
        end++;
    if (end - i >= 2 && s[i] == '/' && s[i + 1] == '/') {
        size_t a = i + 2, a_end = a;
        while (a_end < end && s[a_end] != '/')
            a_end++;
        if (!check_authority(s + a, a_end - a, iri))
            return false;
        i = a_end;
    } else if (relative) {
        /* path-noscheme: no ":" before the first "/". */
        for (size_t k = i; k < end && s[k] != '/'; k++) {
            if (s[k] == ':')
                return false;
        }
    }
    if (!uri_chars(s + i, end - i, ":@/", iri))
        return false;
    i = end;
    if (i < len && s[i] == '?') {
        size_t q_end = i + 1;
        while (q_end < len && s[q_end] != '#')
            q_end++;
        if (!uri_chars(s + i + 1, q_end - i - 1, ":@/?", iri))
            return false;
        i = q_end;
    }
    if (i < len && !uri_chars(s + i + 1, len - i - 1, ":@/?", iri))
        return false;
    return true;
}

/* RFC 3339 appendix A: "P" and either weeks alone ("P2W") or date elements (Y, M, D, each
 * run contiguous and in that order) and/or "T" with time elements (H, M, S, likewise); at
 * least one element, and at least one after a "T". */
static bool check_duration(const char *s, size_t len)
{
    if (len < 3 || s[0] != 'P')
        return false;
    static const char date_units[] = "YMD", time_units[] = "HMS";
    const char *units = date_units;
    int last = -1; /* index in UNITS of the previous element, -1 before the first */
    bool in_time = false, any = false, weeks = false;
    size_t i = 1;
    while (i < len) {
        if (s[i] == 'T') {
            if (in_time || weeks)
                return false;
            in_time = true;
            units = time_units;
            last = -1;
            i++;
            if (i == len)
                return false; /* "T" needs an element */
            continue;
        }
        size_t start = i;
        while (i < len && is_digit(s[i]))
            i++;
        if (i == start || i == len)
            return false;
        char unit = s[i++];
        if (unit == 'W' && !in_time) {
            if (any)
                return false;
            weeks = true;
            any = true;
            continue;
        }
        if (weeks)
            return false;
        const char *u = strchr(units, unit);
        if (unit == '\0' || !u)
            return false;
        int idx = (int)(u - units);
        /* Elements follow each other without gaps: Y then M then D. */
        if (last >= 0 && idx != last + 1)
            return false;
        last = idx;
        any = true;
    }
    return any && !(in_time && last < 0);
}

/* RFC 6901: "" or "/"-prefixed reference tokens in which "~" is followed by 0 or 1. */
static bool check_json_pointer(const char *s, size_t len)
{
    if (len > 0 && s[0] != '/')
        return false;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '~' && (i + 1 == len || (s[i + 1] != '0' && s[i + 1] != '1')))
            return false;
    }
    return true;
}

/* The length of the non-negative integer without leading zeros at S, 0 if there is none. */
static size_t integer_len(const char *s, size_t len)
{
    size_t i = 0;
    while (i < len && is_digit(s[i]))
        i++;
    return i > 1 && s[0] == '0' ? 0 : i;
}

/* A non-negative integer, optionally an index manipulation ("+" or "-" and another), then
 * "#" or a JSON Pointer. */
static bool check_relative_json_pointer(const char *s, size_t len)
{
    size_t i = integer_len(s, len);
    if (i == 0)
        return false;
    if (i < len && (s[i] == '+' || s[i] == '-')) {
        size_t n = integer_len(s + i + 1, len - i - 1);
        if (n == 0)
            return false;
        i += 1 + n;
    }
    if (i < len && s[i] == '#')
        return i + 1 == len;
    return check_json_pointer(s + i, len - i);
}

/* RFC 6570 section 2: literals, and expressions "{" [operator] varspec *("," varspec) "}"
 * with varspec = varname [":" 1-9999 | "*"]. */
static bool check_uri_template(const char *s, size_t len)
{
    for (size_t i = 0; i < len;) {
        unsigned char c = (unsigned char)s[i];
        if (c == '%') {
            if (len - i < 3 || !is_hex(s[i + 1]) || !is_hex(s[i + 2]))
                return false;
            i += 3;
            continue;
        }
        if (c != '{') {
            /* RFC 6570 excludes "'" too; the JSON Schema test suite and its errata allow it. */
            if (c <= 0x20 || c == 0x7F || in_set("\"<>\\^`|}", (char)c))
                return false;
            i++;
            continue;
        }
        i++;
        if (i < len && in_set("+#./;?&=,!@|", s[i]))
            i++;
        for (;;) {
            /* varname = varchar *( ["."] varchar ) */
            size_t start = i;
            bool dot_ok = false;
            while (i < len) {
                if (s[i] == '%' && len - i >= 3 && is_hex(s[i + 1]) && is_hex(s[i + 2])) {
                    i += 3;
                } else if (is_alnum(s[i]) || s[i] == '_') {
                    i++;
                } else if (s[i] == '.' && dot_ok && i + 1 < len && s[i + 1] != '.') {
                    i++;
                    dot_ok = false;
                    continue;
                } else {
                    break;
                }
                dot_ok = true;
            }
            if (i == start || s[i - 1] == '.')
                return false;
            if (i < len && s[i] == ':') {
                size_t d = ++i;
                while (i < len && is_digit(s[i]) && i - d < 4)
                    i++;
                if (i == d || s[d] == '0')
                    return false;
            } else if (i < len && s[i] == '*') {
                i++;
            }
            if (i < len && s[i] == ',') {
                i++;
                continue;
            }
            if (i < len && s[i] == '}') {
                i++;
                break;
            }
            return false;
        }
    }
    return true;
}

static bool check_regex(const char *s, size_t len)
{
    pcre2_code *re = NULL;
    char why[8];
    size_t offset;
    if (jsonschema_regex_compile(s, len, &re, why, sizeof why, &offset) != 0)
        return false;
    pcre2_code_free(re);
    return true;
}

/* A quoted string ("...", with backslash escapes) or a dot-atom; with IDN (RFC 6531) both
 * may also hold non-ASCII UTF-8 characters. */
static bool check_local_part(const char *s, size_t n, bool idn)
{
    if (s[0] == '"') {
        if (n < 2 || s[n - 1] != '"')
            return false;
        for (size_t i = 1; i < n - 1; i++) {
            unsigned char c = (unsigned char)s[i];
            if (c == '\\') {
                i++;
                if (i >= n - 1)
                    return false;
                c = (unsigned char)s[i];
            } else if (c == '"') {
                return false;
            }
            if (c < 32 || (c > 126 && !(idn && c >= 0x80)))
                return false;
        }
        return true;
    }
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '.') {
            if (i == 0 || i == n - 1 || s[i - 1] == '.')
                return false;
        } else if (!is_alnum(s[i]) && !in_set("!#$%&'*+-/=?^_`{|}~", s[i]) &&
                   !(idn && (unsigned char)s[i] >= 0x80)) {
            return false;
        }
    }
    return true;
}

/* local-part "@" domain, where the domain is a host name or an address literal
 * ("[192.0.2.1]", "[IPv6:2001:db8::1]"). */
static bool check_email(const char *s, size_t len, bool idn)
{
    if (len > 254)
        return false;
    /* The domain follows the last "@": a quoted local part may contain "@" itself. */
    size_t at = len;
    while (at > 0 && s[at - 1] != '@')
        at--;
    if (at < 2 || at > 65 || at == len)
        return false;
    if (!check_local_part(s, at - 1, idn))
        return false;
    const char *dom = s + at;
    size_t dlen = len - at;
    if (dom[0] == '[') {
        if (dlen < 3 || dom[dlen - 1] != ']')
            return false;
        if (dlen > 7 && memcmp(dom + 1, "IPv6:", 5) == 0)
            return check_ipv6(dom + 6, dlen - 7);
        return check_ipv4(dom + 1, dlen - 2);
    }
    return idn ? jsonschema_format_idn_hostname(dom, dlen) : jsonschema_format_hostname(dom, dlen);
}

static bool check_uuid(const char *s, size_t len)
{
    if (len != 36)
        return false;
    for (size_t i = 0; i < len; i++) {
        bool hyphen = i == 8 || i == 13 || i == 18 || i == 23;
        if (hyphen ? s[i] != '-' : !is_hex(s[i]))
            return false;
    }
    return true;
}

bool jsonschema_format_check(enum jsformat f, const char *s, size_t len)
{
    switch (f) {
    case JSFORMAT_NONE:
        return true;
    case JSFORMAT_DATE_TIME:
        return check_date_time(s, len);
    case JSFORMAT_DATE:
        return check_date(s, len);
    case JSFORMAT_TIME:
        return check_time(s, len);
    case JSFORMAT_EMAIL:
        return check_email(s, len, false);
    case JSFORMAT_HOSTNAME:
        return jsonschema_format_hostname(s, len);
    case JSFORMAT_IPV4:
        return check_ipv4(s, len);
    case JSFORMAT_IPV6:
        return check_ipv6(s, len);
    case JSFORMAT_URI:
        return jsonschema_format_uri(s, len, true, false);
    case JSFORMAT_UUID:
        return check_uuid(s, len);
    case JSFORMAT_DURATION:
        return check_duration(s, len);
    case JSFORMAT_IDN_EMAIL:
        return check_email(s, len, true);
    case JSFORMAT_IDN_HOSTNAME:
        return jsonschema_format_idn_hostname(s, len);
    case JSFORMAT_URI_REFERENCE:
        return jsonschema_format_uri(s, len, false, false);
    case JSFORMAT_IRI:
        return jsonschema_format_uri(s, len, true, true);
    case JSFORMAT_IRI_REFERENCE:
        return jsonschema_format_uri(s, len, false, true);
    case JSFORMAT_URI_TEMPLATE:
        return check_uri_template(s, len);
    case JSFORMAT_JSON_POINTER:
        return check_json_pointer(s, len);
    case JSFORMAT_RELATIVE_JSON_POINTER:
        return check_relative_json_pointer(s, len);
    case JSFORMAT_REGEX:
        return check_regex(s, len);
    }
    return false;
}

const char *jsonschema_format_list(void)
{
    return "date-time, date, time, duration, email, idn-email, hostname, idn-hostname, ipv4, "
           "ipv6, uri, uri-reference, iri, iri-reference, uuid, uri-template, json-pointer, "
           "relative-json-pointer, regex";
}
