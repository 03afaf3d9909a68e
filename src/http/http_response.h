/*
 * http_response: the bytes of an HTTP/1.1 response and the JSON error body of the API.
 *
 * Pure functions without I/O, used by http_server.c. The server decides framing (whether the
 * connection closes, whether the request was HEAD); this module only serialises.
 */
#ifndef CONCLAVE_HTTP_RESPONSE_H
#define CONCLAVE_HTTP_RESPONSE_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include <jansson.h>

/* One header field. Arrays of them end with an entry whose name is NULL. Defined here, below
 * the server, so that the serialiser includes nothing of the server that uses it. */
struct http_header {
    const char *name;
    const char *value;
};

/* What the server itself contributes to a response. */
struct http_response_head {
    int status;               /* 200..599 */
    const char *request_id;   /* sent as X-Request-Id unless NULL; not kept */
    const char *content_type; /* used when the caller's headers carry no Content-Type */
    bool close;               /* send Connection: close */
    bool keep_alive;          /* send Connection: keep-alive (kept-alive HTTP/1.0 clients) */
    bool omit_body;           /* HEAD: announce the length but send no body bytes */
};

/* The reason phrase of status, a static string ("Unknown" for codes without one). */
const char *http_response_reason(int status);

/*
 * Checks caller-supplied headers (NULL-name terminated, may be NULL): names must be tokens,
 * values must not hold CR or LF, and the framing headers the server sets itself
 * (Content-Length, Transfer-Encoding, Connection, X-Request-Id) are refused. Nothing is kept.
 */
int http_response_check_headers(const struct http_header *headers, char *errmsg, size_t errlen);

/* The HTTP Date of T, IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT"), into OUT. */
#define HTTP_DATE_SIZE 80 /* the 29 characters, with room the compiler can prove */
void http_response_date(time_t t, char out[HTTP_DATE_SIZE]);

/*
 * Serialises status line, headers and body into one buffer. Adds Date (now) after the status
 * line. On success *out is a malloc'ed
 * buffer of *outlen bytes that the caller frees with free(). On failure (bad status or
 * headers, out of memory) *out is NULL and errmsg says why. head, headers and body are not
 * kept.
 */
int http_response_build(const struct http_response_head *head, const struct http_header *headers,
                        const void *body, size_t len, char **out, size_t *outlen, char *errmsg,
                        size_t errlen);

/*
 * Returns a new object {"error": code, "message": message, ...extra}: the fields of extra
 * follow, except "error" and "message". Steals the reference to extra (may be NULL), also on
 * failure. Returns NULL when out of memory or when code/message are not valid UTF-8; the
 * caller releases the result with json_decref().
 */
json_t *http_response_error_body(const char *code, const char *message, json_t *extra);

/* Compact JSON text of json, or NULL if it cannot be encoded. The caller frees it with free();
 * json is not kept. */
char *http_response_dump(const json_t *json, size_t *len);

#endif
