/*
 * ui: the console's static files (ui.h).
 */
#include "server/ui.h"

#include <string.h>

#include "server/ui_assets.h"

bool ui_path(const char *path)
{
    return strncmp(path, "/ui", 3) == 0 && (path[3] == '\0' || path[3] == '/');
}

/* The media type of NAME, by its extension; scripts must be a JavaScript type or the
 * browser refuses to run a module. */
static const char *media_type(const char *name)
{
    static const struct {
        const char *ext;
        const char *type;
    } types[] = {
        {".html", "text/html; charset=utf-8"},
        {".js", "text/javascript; charset=utf-8"},
        {".css", "text/css; charset=utf-8"},
        {".svg", "image/svg+xml"},
        {".png", "image/png"},
        {".ico", "image/x-icon"},
        {".json", "application/json"},
    };
    const char *dot = strrchr(name, '.');
    for (size_t i = 0; dot != NULL && i < sizeof(types) / sizeof(types[0]); i++) {
        if (strcmp(dot, types[i].ext) == 0) {
            return types[i].type;
        }
    }
    return "application/octet-stream";
}

static const struct ui_asset *find(const char *name)
{
    for (const struct ui_asset *a = ui_assets; a->name != NULL; a++) {
        if (strcmp(a->name, name) == 0) {
            return a;
        }
    }
    return NULL;
}

/* Whether an If-None-Match value (a list of ETags, or "*") names ETAG. */
static bool etag_matches(const char *inm, const char *etag)
{
    if (inm == NULL) {
        return false;
    }
    if (strcmp(inm, "*") == 0) {
        return true;
    }
    size_t n = strlen(etag);
    for (const char *p = strstr(inm, etag); p != NULL; p = strstr(p + 1, etag)) {
        bool starts = p == inm || p[-1] == ' ' || p[-1] == ',' || p[-1] == '/';
        bool ends = p[n] == '\0' || p[n] == ',' || p[n] == ' ';
        if (starts && ends) {
            return true;
        }
    }
    return false;
}

void ui_serve(struct http_request *req)
{
    const char *path = http_request_path(req);
    if (strcmp(http_request_method(req), "GET") != 0) {
        const struct http_header allow[] = {{"Allow", "GET"}, {NULL, NULL}};
        http_respond_error_ex(req, 405, allow, NULL, "method_not_allowed",
                              "%s is not allowed on %s; the console's files are only read (GET)",
                              http_request_method(req), path);
        return;
    }
    if (strcmp(path, "/ui") == 0) {
        const struct http_header to[] = {{"Location", "/ui/"}, {NULL, NULL}};
        http_respond(req, 301, to, NULL, 0);
        return;
    }
    const char *name = path[4] == '\0' ? "index.html" : path + 4;
    const struct ui_asset *a = find(name);
    if (a == NULL) {
        http_respond_error(req, 404, "not_found", "the console has no file %s", path);
        return;
    }
    /* no-cache: the browser may keep a copy but asks (If-None-Match) before each use, so a
     * node upgraded to a new console never serves a mix of old and new modules. */
    const struct http_header h[] = {
        {"Content-Type", media_type(a->name)}, {"ETag", a->etag},
        {"Cache-Control", "no-cache"},         {"Content-Security-Policy", UI_CSP},
        {"X-Content-Type-Options", "nosniff"}, {"X-Frame-Options", "DENY"},
        {"Referrer-Policy", "no-referrer"},    {NULL, NULL},
    };
    if (etag_matches(http_request_header(req, "If-None-Match"), a->etag)) {
        http_respond(req, 304, h + 1, NULL, 0);
        return;
    }
    http_respond(req, 200, h, a->data, a->len);
}
