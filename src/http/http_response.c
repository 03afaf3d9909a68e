#include "http/http_response.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <http_parser.h>

/* A growing byte buffer; every append keeps one spare byte so the text stays terminated. */
struct sbuf {
    char *data;
    size_t len;
    size_t cap;
    bool failed; /* an allocation failed; later appends are ignored */
};

static void sbuf_append(struct sbuf *b, const void *bytes, size_t n)
{
    if (b->failed)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *grown = realloc(b->data, cap);
        if (!grown) {
            b->failed = true;
            return;
        }
        b->data = grown;
        b->cap = cap;
    }
    memcpy(b->data + b->len, bytes, n);
    b->len += n;
    b->data[b->len] = '\0';
}

static void sbuf_str(struct sbuf *b, const char *s)
{
    sbuf_append(b, s, strlen(s));
}

static void sbuf_header(struct sbuf *b, const char *name, const char *value)
{
    sbuf_str(b, name);
    sbuf_append(b, ": ", 2);
    sbuf_str(b, value);
    sbuf_append(b, "\r\n", 2);
}

const char *http_response_reason(int status)
{
    if (status < 0 || status > 999)
        return "Unknown";
    const char *reason = http_status_str((enum http_status)status);
    /* http-parser answers "<unknown>" for codes it does not know. */
    return reason[0] == '<' ? "Unknown" : reason;
}

/* RFC 9110 token characters, the only ones a header name may use. */
static bool is_token_char(unsigned char ch)
{
    if (ch >= '0' && ch <= '9')
        return true;
    if ((ch | 0x20) >= 'a' && (ch | 0x20) <= 'z')
        return true;
    return ch != '\0' && strchr("!#$%&'*+-.^_`|~", ch) != NULL;
}

int http_response_check_headers(const struct http_header *headers, char *errmsg, size_t errlen)
{
    /* The server owns message framing and the request id: a handler overriding any of these
     * would desynchronise the connection or the logs. */
    static const char *const reserved[] = {"content-length", "transfer-encoding", "connection",
                                           "x-request-id"};
    for (size_t i = 0; headers && headers[i].name; i++) {
        const char *name = headers[i].name;
        const char *value = headers[i].value ? headers[i].value : "";
        if (!name[0]) {
            snprintf(errmsg, errlen, "response header %zu: empty name", i);
            return -1;
        }
        for (const char *p = name; *p; p++) {
            if (!is_token_char((unsigned char)*p)) {
                snprintf(errmsg, errlen, "response header \"%.64s\": invalid name character", name);
                return -1;
            }
        }
        if (strpbrk(value, "\r\n")) {
            snprintf(errmsg, errlen, "response header %.64s: value holds CR or LF", name);
            return -1;
        }
        for (size_t r = 0; r < sizeof reserved / sizeof reserved[0]; r++) {
            if (strcasecmp(name, reserved[r]) == 0) {
                snprintf(errmsg, errlen,
                         "response header %.64s: set by the server, not the handler", name);
                return -1;
            }
        }
    }
    return 0;
}

void http_response_date(time_t t, char out[HTTP_DATE_SIZE])
{
    /* IMF-fixdate (RFC 9110 5.6.7). Day and month names from tables, not strftime, which
     * would follow the locale. */
    static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    struct tm tm;
    if (gmtime_r(&t, &tm) == NULL || tm.tm_year + 1900 > 9999 || tm.tm_year + 1900 < 0) {
        snprintf(out, HTTP_DATE_SIZE, "Thu, 01 Jan 1970 00:00:00 GMT");
        return;
    }
    snprintf(out, HTTP_DATE_SIZE, "%s, %02d %s %04d %02d:%02d:%02d GMT", days[tm.tm_wday % 7],
             tm.tm_mday, months[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
             tm.tm_sec);
}

int http_response_build(const struct http_response_head *head, const struct http_header *headers,
                        const void *body, size_t len, char **out, size_t *outlen, char *errmsg,
                        size_t errlen)
{
    struct sbuf b = {0};
    char line[96];
    *out = NULL;
    *outlen = 0;

    /* 1xx answers are interim and owned by the server (100 Continue); they cannot end a
     * request. */
    if (head->status < 200 || head->status > 599) {
        snprintf(errmsg, errlen, "response status %d: outside 200..599", head->status);
        return -1;
    }
    if (len > 0 && !body) {
        snprintf(errmsg, errlen, "response body is NULL but its length is %zu", len);
        return -1;
    }
    if (http_response_check_headers(headers, errmsg, errlen) != 0)
        return -1;

    /* 204 and 304 never carry a body nor, for 204, a Content-Length (RFC 9110 8.6). */
    bool bodiless = head->status == 204 || head->status == 304;
    if (bodiless)
        len = 0;

    snprintf(line, sizeof line, "HTTP/1.1 %d %s\r\n", head->status,
             http_response_reason(head->status));
    sbuf_str(&b, line);
    /* Every answer carries Date (RFC 9110 6.6.1: an origin server with a clock must send it). */
    char date[HTTP_DATE_SIZE];
    http_response_date(time(NULL), date);
    sbuf_header(&b, "Date", date);
    bool has_type = false;
    for (size_t i = 0; headers && headers[i].name; i++) {
        sbuf_header(&b, headers[i].name, headers[i].value ? headers[i].value : "");
        if (strcasecmp(headers[i].name, "content-type") == 0)
            has_type = true;
    }
    if (!has_type && !bodiless && head->content_type)
        sbuf_header(&b, "Content-Type", head->content_type);
    if (!bodiless) {
        snprintf(line, sizeof line, "%zu", len);
        sbuf_header(&b, "Content-Length", line);
    }
    if (head->request_id)
        sbuf_header(&b, "X-Request-Id", head->request_id);
    if (head->close)
        sbuf_header(&b, "Connection", "close");
    else if (head->keep_alive)
        sbuf_header(&b, "Connection", "keep-alive");
    sbuf_append(&b, "\r\n", 2);
    if (!head->omit_body && len > 0)
        sbuf_append(&b, body, len);

    if (b.failed) {
        free(b.data);
        snprintf(errmsg, errlen, "response of %zu body bytes: out of memory", len);
        return -1;
    }
    *out = b.data;
    *outlen = b.len;
    return 0;
}

json_t *http_response_error_body(const char *code, const char *message, json_t *extra)
{
    json_t *body = json_object();
    json_t *code_json = json_string(code);
    json_t *message_json = json_string(message);
    if (!body || !code_json || !message_json)
        goto err;
    /* error and message come first so that a reader of raw responses sees them first. */
    if (json_object_set_new(body, "error", code_json) != 0) {
        code_json = NULL;
        goto err;
    }
    code_json = NULL;
    if (json_object_set_new(body, "message", message_json) != 0) {
        message_json = NULL;
        goto err;
    }
    message_json = NULL;
    if (extra && json_is_object(extra) && json_object_update_missing(body, extra) != 0)
        goto err;
    json_decref(extra);
    return body;

err:
    json_decref(message_json);
    json_decref(code_json);
    json_decref(body);
    json_decref(extra);
    return NULL;
}

char *http_response_dump(const json_t *json, size_t *len)
{
    char *text = json_dumps(json, JSON_COMPACT | JSON_ENCODE_ANY);
    if (text && len)
        *len = strlen(text);
    return text;
}
