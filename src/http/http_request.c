/*
 * A request's storage: the arena its target and header fields are copied into as http-parser
 * delivers them, the body, the parser callbacks that fill them, and the public accessors.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <netinet/in.h>
#include <sys/socket.h>

#include "http/http_server_internal.h"
#include "http/http_response.h"

/* ---------------------------------------------------------------- requests */

struct http_request *http_request_new(struct http_conn *c)
{
    struct http_server *s = c->server;
    struct http_request *req = calloc(1, sizeof *req);
    if (!req)
        return NULL;
    req->server = s;
    req->conn = c;
    req->start_ns = uv_hrtime();
    req->part = PART_URL;
    snprintf(req->id, sizeof req->id, "%s-%" PRIu64, s->id_prefix, ++s->next_id);
    return req;
}

void http_request_free(struct http_request *req)
{
    free(req->out);
    free(req->body);
    free(req->headers);
    free(req->spans);
    free(req->arena);
    free(req);
}

/* The connection is going away with req unanswered: req stays with its handler. */
void http_request_detach(struct http_request *req)
{
    struct http_server *s = req->server;
    req->conn = NULL;
    req->next = req->prev = NULL;
    if (s->closing) {
        /* The server may be freed before the handler answers: forget it. */
        req->server = NULL;
        return;
    }
    req->next = s->detached;
    if (s->detached)
        s->detached->prev = req;
    s->detached = req;
}

void http_request_release_detached(struct http_request *req)
{
    struct http_server *s = req->server;
    if (s) {
        if (req->prev)
            req->prev->next = req->next;
        else
            s->detached = req->next;
        if (req->next)
            req->next->prev = req->prev;
    }
    http_request_free(req);
}

static int arena_append(struct http_request *req, const char *data, size_t len)
{
    /* DATA may point into the arena itself (the path and query are copied from the raw URL
     * stored there): keep it as an offset, because growing the arena moves it. */
    bool inside = req->arena != NULL && data >= req->arena && data < req->arena + req->arena_cap;
    size_t off = inside ? (size_t)(data - req->arena) : 0;
    if (req->arena_len + len + 1 > req->arena_cap) {
        size_t cap = req->arena_cap ? req->arena_cap : 512;
        while (cap < req->arena_len + len + 1)
            cap *= 2;
        char *grown = realloc(req->arena, cap);
        if (!grown)
            return -1;
        req->arena = grown;
        req->arena_cap = cap;
        if (inside) {
            data = req->arena + off;
        }
    }
    memcpy(req->arena + req->arena_len, data, len);
    req->arena_len += len;
    return 0;
}

static bool request_id_is_sane(const char *id)
{
    size_t len = strlen(id);
    if (len == 0 || len > HTTP_REQUEST_ID_MAX)
        return false;
    return strspn(id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._:+/=-") ==
           len;
}

/*
 * Turns the arena's offsets into the public pointers: splits the target into path and query,
 * trims header values, builds the header array. Returns 0, -1 when out of memory, or 1 when
 * the target is not a valid URL.
 */
int http_request_headers_finalize(struct http_request *req)
{
    struct http_parser_url u;
    size_t path_off, query_off;

    if (arena_append(req, "", 1) != 0) /* terminates the last part */
        return -1;
    http_parser_url_init(&u);
    if (req->url_len == 0 || http_parser_parse_url(req->arena, req->url_len, 0, &u) != 0)
        return 1;
    path_off = req->arena_len;
    if (u.field_set & (1 << UF_PATH)) {
        if (arena_append(req, req->arena + u.field_data[UF_PATH].off, u.field_data[UF_PATH].len) !=
            0)
            return -1;
    } else if (arena_append(req, "/", 1) != 0) {
        return -1;
    }
    if (arena_append(req, "", 1) != 0)
        return -1;
    query_off = req->arena_len;
    if ((u.field_set & (1 << UF_QUERY)) &&
        arena_append(req, req->arena + u.field_data[UF_QUERY].off, u.field_data[UF_QUERY].len) != 0)
        return -1;
    if (arena_append(req, "", 1) != 0)
        return -1;

    req->headers = calloc(req->nspans + 1, sizeof *req->headers);
    if (!req->headers)
        return -1;
    for (size_t i = 0; i < req->nspans; i++) {
        struct hdr_span *sp = &req->spans[i];
        req->headers[i].name = req->arena + sp->name_off;
        if (sp->value_off == SIZE_MAX) {
            req->headers[i].value = "";
            continue;
        }
        /* http-parser drops leading blanks of a value but keeps trailing ones. */
        char *value = req->arena + sp->value_off;
        size_t len = sp->value_len;
        while (len > 0 && (value[len - 1] == ' ' || value[len - 1] == '\t'))
            len--;
        value[len] = '\0';
        req->headers[i].value = value;
    }
    req->path = req->arena + path_off;
    req->query = req->arena + query_off;

    const char *given = http_request_header(req, "X-Request-Id");
    if (given && request_id_is_sane(given))
        snprintf(req->id, sizeof req->id, "%s", given);
    return 0;
}

/* ---------------------------------------------------------------- parser callbacks */

static int on_message_begin(http_parser *p)
{
    struct http_conn *c = p->data;
    c->cur = http_request_new(c);
    if (!c->cur) {
        http_server_conn_close(c);
        return -1;
    }
    c->served = true;
    c->timer_reset = true; /* each request gets a full request_timeout */
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
    struct http_conn *c = p->data;
    struct http_request *req = c->cur;
    size_t max = c->server->cfg.max_url_bytes;
    if (!req->method) {
        /* The method is parsed before the first byte of the target. */
        req->method = http_method_str((enum http_method)p->method);
        req->head = p->method == HTTP_HEAD;
    }
    if (req->url_len + len > max) {
        http_server_conn_fail(c, NULL, 414, "uri_too_long", "request target longer than %zu bytes",
                              max);
        return -1;
    }
    if (arena_append(req, at, len) != 0) {
        http_server_conn_close(c);
        return -1;
    }
    req->url_len += len;
    return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
    struct http_conn *c = p->data;
    struct http_request *req = c->cur;
    if (c->in_body)
        return 0; /* trailer fields of a chunked body: not kept */
    if (req->part != PART_FIELD) {
        size_t max = c->server->cfg.max_headers;
        if (req->nspans >= max) {
            http_server_conn_fail(c, NULL, 431, "headers_too_large", "more than %zu header fields",
                                  max);
            return -1;
        }
        if (req->nspans == req->spans_cap) {
            size_t cap = req->spans_cap ? req->spans_cap * 2 : 16;
            struct hdr_span *grown = realloc(req->spans, cap * sizeof *grown);
            if (!grown) {
                http_server_conn_close(c);
                return -1;
            }
            req->spans = grown;
            req->spans_cap = cap;
        }
        if (arena_append(req, "", 1) != 0) {
            http_server_conn_close(c);
            return -1;
        }
        req->spans[req->nspans++] =
            (struct hdr_span){.name_off = req->arena_len, .value_off = SIZE_MAX};
        req->part = PART_FIELD;
    }
    if (arena_append(req, at, len) != 0) {
        http_server_conn_close(c);
        return -1;
    }
    req->spans[req->nspans - 1].name_len += len;
    return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    struct http_conn *c = p->data;
    struct http_request *req = c->cur;
    if (c->in_body)
        return 0;
    struct hdr_span *sp = &req->spans[req->nspans - 1];
    if (req->part != PART_VALUE) {
        if (arena_append(req, "", 1) != 0) {
            http_server_conn_close(c);
            return -1;
        }
        sp->value_off = req->arena_len;
        req->part = PART_VALUE;
    }
    if (arena_append(req, at, len) != 0) {
        http_server_conn_close(c);
        return -1;
    }
    sp->value_len += len;
    return 0;
}

static int on_headers_complete(http_parser *p)
{
    struct http_conn *c = p->data;
    /* Pausing makes http_parser_execute() return right here: conn_drive() then knows exactly
     * how many bytes the head took and checks the request before reading its body. */
    c->event = EV_HEADERS;
    http_parser_pause(p, 1);
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    struct http_conn *c = p->data;
    struct http_request *req = c->cur;
    size_t max = c->server->cfg.max_body_bytes;
    /* A declared Content-Length was checked up front; this catches chunked bodies. */
    if (len > max - req->body_len) {
        http_server_conn_fail(c, NULL, 413, "payload_too_large", "request body exceeds %zu bytes",
                              max);
        return -1;
    }
    if (req->body_len + len + 1 > req->body_cap) {
        size_t cap = req->body_cap ? req->body_cap : 1024;
        while (cap < req->body_len + len + 1)
            cap *= 2;
        if (cap > max + 1)
            cap = max + 1;
        char *grown = realloc(req->body, cap);
        if (!grown) {
            http_server_conn_close(c);
            return -1;
        }
        req->body = grown;
        req->body_cap = cap;
    }
    memcpy(req->body + req->body_len, at, len);
    req->body_len += len;
    req->body[req->body_len] = '\0';
    c->continue_pending = false; /* the client stopped waiting for it */
    c->timer_reset = true;
    return 0;
}

static int on_message_complete(http_parser *p)
{
    struct http_conn *c = p->data;
    /* The handler runs from conn_drive(), outside of the parser, so that it may answer (and
     * thereby write, or even close the connection) without re-entering http-parser. */
    c->event = EV_MESSAGE;
    http_parser_pause(p, 1);
    return 0;
}

const http_parser_settings http_request_parser_settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* ---------------------------------------------------------------- request accessors */

const char *http_request_method(const struct http_request *req)
{
    return req->method ? req->method : "";
}

const char *http_request_path(const struct http_request *req)
{
    return req->path ? req->path : "/";
}

const char *http_request_query(const struct http_request *req)
{
    return req->query ? req->query : "";
}

const char *http_request_id(const struct http_request *req)
{
    return req->id;
}

void http_request_set_tag(struct http_request *req, const char *tag)
{
    req->tag = tag;
}

const char *http_request_tag(const struct http_request *req)
{
    return req->tag;
}

uint64_t http_request_start_ns(const struct http_request *req)
{
    return req->start_ns;
}

const char *http_request_header(const struct http_request *req, const char *name)
{
    for (size_t i = 0; req->headers && req->headers[i].name; i++)
        if (strcasecmp(req->headers[i].name, name) == 0)
            return req->headers[i].value;
    return NULL;
}

void http_request_peer_ip(const struct http_request *req, char *out, size_t len)
{
    struct sockaddr_storage addr;
    int alen = sizeof addr;
    if (len == 0)
        return;
    out[0] = '\0';
    if (req->conn == NULL ||
        uv_tcp_getpeername(&req->conn->tcp, (struct sockaddr *)&addr, &alen) != 0)
        return;
    if (addr.ss_family == AF_INET6)
        uv_ip6_name((const struct sockaddr_in6 *)&addr, out, len);
    else if (addr.ss_family == AF_INET)
        uv_ip4_name((const struct sockaddr_in *)&addr, out, len);
}

const struct http_header *http_request_headers(const struct http_request *req)
{
    static const struct http_header none[] = {{NULL, NULL}};
    return req->headers ? req->headers : none;
}

const char *http_request_body(const struct http_request *req, size_t *len)
{
    if (len)
        *len = req->body_len;
    return req->body ? req->body : "";
}

bool http_request_cancelled(const struct http_request *req)
{
    return req->conn == NULL;
}
