/* The "format" checks of the JSON Schema validator. Every check reads only the bytes it is
 * given (strings may hold NUL bytes), and treats any byte outside ASCII as invalid. */
#include "jsonschema/jsonschema_format.h"

#include <string.h>

static const char *const format_names[] = {
    [JSFORMAT_NONE] = "",     [JSFORMAT_DATE_TIME] = "date-time", [JSFORMAT_DATE] = "date",
    [JSFORMAT_TIME] = "time", [JSFORMAT_EMAIL] = "email",         [JSFORMAT_HOSTNAME] = "hostname",
    [JSFORMAT_IPV4] = "ipv4", [JSFORMAT_IPV6] = "ipv6",           [JSFORMAT_URI] = "uri",
    [JSFORMAT_UUID] = "uuid",
};

enum jsformat jsonschema_format_lookup(const char *name)
{
    for (int f = JSFORMAT_DATE_TIME; f <= JSFORMAT_UUID; f++) {
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
static bool check_hostname(const char *s, size_t len)
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
 * one of EXTRA: the building block of every RFC 3986 component rule. */
static bool uri_chars(const char *s, size_t n, const char *extra)
{
    for (size_t i = 0; i < n;) {
        if (s[i] == '%') {
            if (n - i < 3 || !is_hex(s[i + 1]) || !is_hex(s[i + 2]))
                return false;
            i += 3;
            continue;
        }
        if (!is_unreserved(s[i]) && !is_subdelim(s[i]) && !in_set(extra, s[i]))
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
static bool check_authority(const char *s, size_t n)
{
    size_t at = n;
    while (at > 0 && s[at - 1] != '@')
        at--;
    if (at > 0) {
        if (!uri_chars(s, at - 1, ":"))
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
        if (!uri_chars(s, host, ""))
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

/* URI = scheme ":" hier-part ["?" query] ["#" fragment] (RFC 3986 section 3). Relative
 * references are not URIs; "uri-reference" would be a different format. */
static bool check_uri(const char *s, size_t len)
{
    if (len == 0 || !is_alpha(s[0]))
        return false;
    size_t i = 1;
    while (i < len && (is_alnum(s[i]) || in_set("+-.", s[i])))
        i++;
    if (i == len || s[i] != ':')
        return false;
    i++;
    size_t end = i;
    while (end < len && s[end] != '?' && s[end] != '#')
        end++;
    if (end - i >= 2 && s[i] == '/' && s[i + 1] == '/') {
        size_t a = i + 2, a_end = a;
        while (a_end < end && s[a_end] != '/')
            a_end++;
        if (!check_authority(s + a, a_end - a))
            return false;
        i = a_end;
    }
    if (!uri_chars(s + i, end - i, ":@/"))
        return false;
    i = end;
    if (i < len && s[i] == '?') {
        size_t q_end = i + 1;
        while (q_end < len && s[q_end] != '#')
            q_end++;
        if (!uri_chars(s + i + 1, q_end - i - 1, ":@/?"))
            return false;
        i = q_end;
    }
    if (i < len && !uri_chars(s + i + 1, len - i - 1, ":@/?"))
        return false;
    return true;
}

/* A quoted string ("...", with backslash escapes) or a dot-atom. */
static bool check_local_part(const char *s, size_t n)
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
            if (c < 32 || c > 126)
                return false;
        }
        return true;
    }
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '.') {
            if (i == 0 || i == n - 1 || s[i - 1] == '.')
                return false;
        } else if (!is_alnum(s[i]) && !in_set("!#$%&'*+-/=?^_`{|}~", s[i])) {
            return false;
        }
    }
    return true;
}

/* local-part "@" domain, where the domain is a host name or an address literal
 * ("[192.0.2.1]", "[IPv6:2001:db8::1]"). */
static bool check_email(const char *s, size_t len)
{
    if (len > 254)
        return false;
    /* The domain follows the last "@": a quoted local part may contain "@" itself. */
    size_t at = len;
    while (at > 0 && s[at - 1] != '@')
        at--;
    if (at < 2 || at > 65 || at == len)
        return false;
    if (!check_local_part(s, at - 1))
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
    return check_hostname(dom, dlen);
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
        return check_email(s, len);
    case JSFORMAT_HOSTNAME:
        return check_hostname(s, len);
    case JSFORMAT_IPV4:
        return check_ipv4(s, len);
    case JSFORMAT_IPV6:
        return check_ipv6(s, len);
    case JSFORMAT_URI:
        return check_uri(s, len);
    case JSFORMAT_UUID:
        return check_uuid(s, len);
    }
    return false;
}
