#include "server/api.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sodium.h>

#include "server/api_internal.h"
#include "server/auth.h"
#include "server/ui.h"
#include "server/websession.h"
#include "raft/codec.h"
#include "storage/db.h"
#include "storage/db_auth.h"
#include "server/node.h"
#include "storage/pgpool.h"

/* The route table. Order matters only for readability: patterns never overlap. */
static const struct api_route routes[] = {
    {"GET", "/health", API_PUBLIC, ROLE_NONE, api_status_health, API_REACH_WHOLE},
    {"GET", "/ready", API_PUBLIC, ROLE_NONE, api_status_ready, API_REACH_WHOLE},
    {"GET", "/metrics", API_PUBLIC, ROLE_NONE, api_status_metrics, API_REACH_WHOLE},
    {"POST", "/v1/auth/login", API_PUBLIC, ROLE_NONE, api_auth_login, API_REACH_WHOLE},
    {"POST", "/v1/auth/logout", API_SESSION, ROLE_NONE, api_auth_logout, API_REACH_WHOLE},
    {"GET", "/v1/users/me", API_SESSION, ROLE_NONE, api_auth_me, API_REACH_WHOLE},
    {"POST", "/v1/users", API_INSTANCE_ADMIN, ROLE_NONE, api_users_user_create, API_REACH_WHOLE},
    {"GET", "/v1/users", API_INSTANCE_ADMIN, ROLE_NONE, api_users_user_list, API_REACH_WHOLE},
    {"GET", "/v1/users/{user}", API_INSTANCE_ADMIN, ROLE_NONE, api_users_user_get, API_REACH_WHOLE},
    {"DELETE", "/v1/users/{user}", API_INSTANCE_ADMIN, ROLE_NONE, api_users_user_delete,
     API_REACH_WHOLE},
    {"POST", "/v1/projects", API_SESSION, ROLE_NONE, api_projects_project_create, API_REACH_WHOLE},
    {"GET", "/v1/projects", API_SESSION, ROLE_NONE, api_projects_project_list, API_REACH_WHOLE},
    {"GET", "/v1/projects/{project}", API_PROJECT, ROLE_VIEWER, api_projects_project_get,
     API_REACH_PROJECT},
    {"DELETE", "/v1/projects/{project}", API_PROJECT, ROLE_ADMIN, api_projects_project_delete,
     API_REACH_WHOLE},
    {"POST", "/v1/projects/{project}/api-keys", API_PROJECT, ROLE_ADMIN, api_projects_key_create,
     API_REACH_WHOLE},
    {"GET", "/v1/projects/{project}/api-keys", API_PROJECT, ROLE_ADMIN, api_projects_key_list,
     API_REACH_WHOLE},
    {"DELETE", "/v1/projects/{project}/api-keys/{key}", API_PROJECT, ROLE_ADMIN,
     api_projects_key_revoke, API_REACH_WHOLE},
    {"GET", "/v1/projects/{project}/roles", API_PROJECT, ROLE_ADMIN, api_projects_role_list,
     API_REACH_WHOLE},
    {"POST", "/v1/projects/{project}/roles", API_PROJECT, ROLE_ADMIN, api_projects_role_set,
     API_REACH_WHOLE},
    {"DELETE", "/v1/projects/{project}/roles/{user}", API_PROJECT, ROLE_ADMIN,
     api_projects_role_delete, API_REACH_WHOLE},
    {"POST", "/v1/schemas", API_SESSION, ROLE_NONE, api_schemas_schema_create, API_REACH_WHOLE},
    {"GET", "/v1/schemas", API_SESSION, ROLE_NONE, api_schemas_schema_list, API_REACH_WHOLE},
    {"GET", "/v1/schemas/{schema}", API_SESSION, ROLE_NONE, api_schemas_schema_get,
     API_REACH_WHOLE},
    {"PUT", "/v1/schemas/{schema}", API_SESSION, ROLE_NONE, api_schemas_schema_update,
     API_REACH_WHOLE},
    {"DELETE", "/v1/schemas/{schema}", API_SESSION, ROLE_NONE, api_schemas_schema_delete,
     API_REACH_WHOLE},
    {"POST", "/v1/projects/{project}/configs", API_PROJECT, ROLE_EDITOR, api_configs_config_create,
     API_REACH_BODY},
    {"GET", "/v1/projects/{project}/configs", API_PROJECT, ROLE_VIEWER, api_reads_config_list,
     API_REACH_QUERY},
    {"GET", "/v1/projects/{project}/configs/{ckey}", API_PROJECT, ROLE_VIEWER, api_reads_config_get,
     API_REACH_CKEY},
    {"PUT", "/v1/projects/{project}/configs/{ckey}", API_PROJECT, ROLE_EDITOR,
     api_configs_config_put, API_REACH_CKEY},
    {"DELETE", "/v1/projects/{project}/configs/{ckey}", API_PROJECT, ROLE_EDITOR,
     api_configs_config_delete, API_REACH_CKEY},
    {"GET", "/v1/projects/{project}/configs/{ckey}/revisions", API_PROJECT, ROLE_VIEWER,
     api_history_config_revisions, API_REACH_CKEY},
    {"POST", "/v1/projects/{project}/configs/{ckey}/rollback", API_PROJECT, ROLE_EDITOR,
     api_configs_config_rollback, API_REACH_CKEY},
    {"GET", "/v1/projects/{project}/revisions", API_PROJECT, ROLE_VIEWER,
     api_history_project_revisions, API_REACH_WHOLE},
    {"GET", "/v1/projects/{project}/watch", API_PROJECT, ROLE_VIEWER, api_history_watch,
     API_REACH_QUERY},
    {"GET", "/v1/projects/{project}/audit/verify", API_PROJECT, ROLE_VIEWER,
     api_history_audit_verify, API_REACH_WHOLE},
    {"GET", "/v1/projects/{project}/head", API_PROJECT, ROLE_VIEWER, api_history_project_head,
     API_REACH_WHOLE},
    {"GET", "/v1/cluster", API_INSTANCE_ADMIN, ROLE_NONE, api_cluster_cluster_get, API_REACH_WHOLE},
    {"POST", "/v1/cluster/members", API_INSTANCE_ADMIN, ROLE_NONE, api_cluster_cluster_add,
     API_REACH_WHOLE},
    {"DELETE", "/v1/cluster/members/{member}", API_INSTANCE_ADMIN, ROLE_NONE,
     api_cluster_cluster_remove, API_REACH_WHOLE},
    {"POST", "/v1/cluster/transfer", API_INSTANCE_ADMIN, ROLE_NONE, api_cluster_cluster_transfer,
     API_REACH_WHOLE},
};

#define NROUTES (sizeof(routes) / sizeof(routes[0]))

/* ---- answering ---------------------------------------------------------------------- */

static void call_free(struct api_call *call)
{
    if (call->data_free != NULL && call->data != NULL) {
        call->data_free(call->data);
    }
    json_decref(call->result);
    json_decref(call->body);
    free(call->data);
    sodium_memzero(call->cookie_token, sizeof(call->cookie_token));
    free(call);
}

void api_reply_done(struct api_call *call)
{
    call_free(call);
}

void api_reply(struct api_call *call, int status, json_t *body)
{
    const struct http_header cookie[] = {{"Set-Cookie", call->set_cookie}, {NULL, NULL}};
    const struct http_header *h = call->set_cookie[0] != '\0' ? cookie : NULL;
    if (body == NULL) {
        http_respond(call->req, status, h, NULL, 0);
    } else {
        http_respond_json_ex(call->req, status, h, body);
    }
    call_free(call);
}

static void verror(struct api_call *call, int status, const struct http_header *headers,
                   json_t *extra, const char *code, const char *fmt, va_list ap)
{
    char msg[1024];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    http_respond_error_ex(call->req, status, headers, extra, code, "%s", msg);
    call_free(call);
}

void api_error(struct api_call *call, int status, const char *code, const char *fmt, ...)
{
    /* Every 401 names the scheme to use (RFC 9110 11.6.1, RFC 6750 3): Bearer, with
     * error="invalid_token" when a token was sent and refused. */
    static const struct http_header challenge[] = {
        {"WWW-Authenticate", "Bearer realm=\"conclave\""}, {NULL, NULL}};
    static const struct http_header refused[] = {
        {"WWW-Authenticate", "Bearer realm=\"conclave\", error=\"invalid_token\""}, {NULL, NULL}};
    const struct http_header *headers = NULL;
    if (status == 401) {
        headers = http_request_header(call->req, "Authorization") != NULL ? refused : challenge;
    }
    va_list ap;
    va_start(ap, fmt);
    verror(call, status, headers, NULL, code, fmt, ap);
    va_end(ap);
}

void api_field_error(struct api_call *call, const char *field, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    verror(call, 400, NULL, json_pack("{s:s}", "field", field), "bad_request", fmt, ap);
    va_end(ap);
}

static void unavailable(struct api_call *call, const char *why)
{
    static const struct http_header retry[] = {{"Retry-After", "2"}, {NULL, NULL}};
    fprintf(stderr, "api: rid=%s postgresql unavailable: %s\n", http_request_id(call->req), why);
    http_respond_error_ex(call->req, 503, retry, NULL, "unavailable",
                          "postgresql is unavailable; retry in a few seconds");
    call_free(call);
}

/* ---- pool plumbing ------------------------------------------------------------------ */

static int pool_work(PGconn *conn, void *arg, char *errmsg, size_t errlen)
{
    struct api_call *call = arg;
    /* Only the work function's own fields of CALL are touched here: the request belongs to
     * the loop thread until the done callback. */
    return call->work(conn, call, errmsg, errlen);
}

void api_submit(struct api_call *call, api_work_fn work,
                void (*done)(int status, const char *errmsg, void *call))
{
    call->work = work;
    int rc = pgpool_submit(call->node->pool, pool_work, done, call);
    if (rc != 0) {
        unavailable(call, rc == PGPOOL_ECLOSED ? "node is stopping" : "pool refused the job");
    }
}

void api_finish(struct api_call *call, int status, const char *errmsg)
{
    switch (status) {
    case DB_OK: {
        if (call->invalidates_auth) {
            /* Other nodes drop their caches on the NOTIFY; this one must not answer a
             * following request from its cache before that arrives. */
            authcache_flush(call->node->cache);
        }
        json_t *result = call->result;
        call->result = NULL;
        api_reply(call, call->ok_status, result);
        return;
    }
    case APIH_UNPROCESSABLE:
        http_respond_error_ex(call->req, 422, NULL,
                              call->err_field ? json_pack("{s:s}", "field", call->err_field) : NULL,
                              "invalid_schema", "%s", errmsg);
        call_free(call);
        return;
    case APIH_FORBIDDEN:
        api_error(call, 403, "forbidden", "%s", errmsg);
        return;
    case APIH_UNAUTHORIZED:
        api_error(call, 401, "unauthorized", "%s", errmsg);
        return;
    case DB_NOT_FOUND:
        api_error(call, 404, "not_found", "%s", errmsg);
        return;
    case DB_CONFLICT:
    case DB_IN_USE:
    case DB_REFUSED:
        api_error(call, 409, "conflict", "%s", errmsg);
        return;
    case DB_INVALID:
        if (call->err_field != NULL) {
            api_field_error(call, call->err_field, "%s", errmsg);
        } else {
            api_error(call, 400, "bad_request", "%s", errmsg);
        }
        return;
    case DB_UNAVAILABLE:
    case PGPOOL_EUNAVAILABLE:
    case PGPOOL_ECLOSED:
        unavailable(call, errmsg);
        return;
    default:
        fprintf(stderr, "api: rid=%s internal error: %s\n", http_request_id(call->req), errmsg);
        api_error(call, 500, "internal",
                  "internal error; the node log has the cause under "
                  "request id %s",
                  http_request_id(call->req));
    }
}

static void run_done(int status, const char *errmsg, void *arg)
{
    api_finish(arg, status, errmsg);
}

void api_run(struct api_call *call, api_work_fn work, int ok_status)
{
    call->ok_status = ok_status;
    api_submit(call, work, run_done);
}

/* ---- authorisation ------------------------------------------------------------------ */

static void decide_project(struct api_call *call, bool exists, enum role_level role)
{
    if (!exists || (role == ROLE_NONE && !call->who.is_admin)) {
        api_error(call, 404, "not_found", "project %s not found", call->params[0]);
        return;
    }
    call->role = call->who.is_admin ? ROLE_ADMIN : role;
    if (call->role < call->route->min_role) {
        static const char *const names[] = {"none", "viewer", "editor", "admin"};
        api_error(call, 403, "forbidden", "this needs the %s role in project %s; you have %s",
                  names[call->route->min_role], call->params[0], names[call->role]);
        return;
    }
    call->route->handler(call);
}

static enum role_level role_from_text(const char *s)
{
    if (s == NULL) {
        return ROLE_NONE;
    }
    if (strcmp(s, "admin") == 0) {
        return ROLE_ADMIN;
    }
    if (strcmp(s, "editor") == 0) {
        return ROLE_EDITOR;
    }
    return strcmp(s, "viewer") == 0 ? ROLE_VIEWER : ROLE_NONE;
}

static int role_work(PGconn *conn, struct api_call *call, char *errmsg, size_t errlen)
{
    return db_auth_role_lookup(conn, call->who.user_id, call->params[0], &call->result, errmsg,
                               errlen);
}

static void role_done(int status, const char *errmsg, void *arg)
{
    struct api_call *call = arg;
    struct node *node = call->node;
    if (status != DB_OK && status != DB_NOT_FOUND) {
        api_finish(call, status, errmsg);
        return;
    }
    bool exists = status == DB_OK;
    enum role_level role =
        exists ? role_from_text(json_string_value(json_object_get(call->result, "role")))
               : ROLE_NONE;
    json_decref(call->result);
    call->result = NULL;
    authcache_put_role(node->cache, call->cache_gen, call->who.user_id, call->params[0], exists,
                       role, node_now_ms(node));
    decide_project(call, exists, role);
}

bool api_key_reaches(const struct api_call *call, const char *key)
{
    const char *p = call->who.config_prefix;
    return call->who.kind != PRINCIPAL_APIKEY || p[0] == '\0' || strncmp(key, p, strlen(p)) == 0;
}

void api_key_beyond_reach(struct api_call *call, const char *key)
{
    api_error(call, 403, "forbidden",
              "this api key reaches only the configs whose keys start with \"%s\", not \"%s\"",
              call->who.config_prefix, key);
}

/* An API key limited to a config prefix, on a route of its project: applies the route's
 * reach (api.h). Returns true when the handler may run; otherwise it answered 403. The
 * message names the prefix: the key's holder knows it, and it says what to ask instead. */
static bool key_reach_ok(struct api_call *call)
{
    const char *p = call->who.config_prefix;
    switch (call->route->reach) {
    case API_REACH_PROJECT:
    case API_REACH_BODY:
        return true;
    case API_REACH_CKEY:
        if (api_key_reaches(call, call->params[1])) {
            return true;
        }
        api_key_beyond_reach(call, call->params[1]);
        return false;
    case API_REACH_QUERY: {
        /* Percent-decoded as the handler will read them; a value too long or badly encoded
         * is refused here like a missing one, and the handler never sees it. */
        char v[CODEC_MAX_KEY + 2];
        int q = api_input_query(call, "prefix", v, sizeof(v));
        if (q == 0) {
            q = api_input_query(call, "key", v, sizeof(v));
        }
        if (q > 0 && api_key_reaches(call, v)) {
            return true;
        }
        api_error(call, 403, "forbidden",
                  "this api key reaches only the configs whose keys start with \"%s\": ask "
                  "for them with ?prefix=%s (or a longer prefix)",
                  p, p);
        return false;
    }
    case API_REACH_WHOLE:
    default:
        api_error(call, 403, "forbidden",
                  "this api key reaches only the configs whose keys start with \"%s\", not "
                  "the whole project's history; use a key without a config prefix",
                  p);
        return false;
    }
}

static void authorize(struct api_call *call)
{
    const struct api_route *r = call->route;
    bool key = call->who.kind == PRINCIPAL_APIKEY;
    switch (r->access) {
    case API_PUBLIC:
        break;
    case API_SESSION:
        if (key) {
            api_error(call, 403, "forbidden",
                      "api keys may only work inside their own project; log in as a user");
            return;
        }
        break;
    case API_INSTANCE_ADMIN:
        if (key || !call->who.is_admin) {
            api_error(call, 403, "forbidden", "only instance admins may do this");
            return;
        }
        break;
    case API_PROJECT:
        if (key) {
            if (strcmp(call->who.project_id, call->params[0]) != 0) {
                api_error(call, 404, "not_found", "project %s not found", call->params[0]);
                return;
            }
            enum role_level key_role = call->who.read_only ? ROLE_VIEWER : ROLE_EDITOR;
            if (r->min_role > key_role) {
                api_error(call, 403, "forbidden",
                          call->who.read_only
                              ? "this api key's scope is read: it may read, list, see history "
                                "and watch project %s, not change it; use a read-write key"
                              : "api keys act as editor; this needs the admin role in project %s",
                          call->params[0]);
                return;
            }
            call->role = key_role;
            if (call->who.config_prefix[0] != '\0' && !key_reach_ok(call)) {
                return;
            }
            break;
        }
        {
            bool exists;
            enum role_level role;
            struct node *node = call->node;
            if (authcache_get_role(node->cache, call->who.user_id, call->params[0],
                                   node_now_ms(node), &exists, &role)) {
                decide_project(call, exists, role);
                return;
            }
            call->cache_gen = authcache_generation(node->cache);
            api_submit(call, role_work, role_done);
            return;
        }
    }
    r->handler(call);
}

/* ---- authentication ----------------------------------------------------------------- */

static int principal_work(PGconn *conn, struct api_call *call, char *errmsg, size_t errlen)
{
    if (call->who.kind == PRINCIPAL_USER) {
        return db_auth_session_lookup(conn, call->who.token_hash, &call->result, errmsg, errlen);
    }
    return db_auth_apikey_lookup(conn, call->who.key_id, &call->result, errmsg, errlen);
}

static void copy_str(char *dst, size_t n, json_t *obj, const char *key)
{
    const char *s = json_string_value(json_object_get(obj, key));
    snprintf(dst, n, "%s", s ? s : "");
}

static void principal_done(int status, const char *errmsg, void *arg)
{
    struct api_call *call = arg;
    struct node *node = call->node;
    if (status == DB_NOT_FOUND) {
        api_error(call, 401, "unauthorized", "unknown, expired or revoked token");
        return;
    }
    if (status != DB_OK) {
        api_finish(call, status, errmsg);
        return;
    }
    json_t *row = call->result;
    call->result = NULL;
    uint64_t valid_ms = AUTHCACHE_TTL_MS;
    if (call->who.kind == PRINCIPAL_USER) {
        copy_str(call->who.user_id, sizeof(call->who.user_id), row, "user_id");
        copy_str(call->who.email, sizeof(call->who.email), row, "email");
        call->who.is_admin = json_is_true(json_object_get(row, "is_admin"));
        json_int_t left = json_integer_value(json_object_get(row, "expires_in_s"));
        valid_ms = left > 0 ? (uint64_t)left * 1000 : 0;
    } else {
        const char *hex = json_string_value(json_object_get(row, "key_hash"));
        if (hex == NULL || !auth_hash_equals_hex(call->who.token_hash, hex)) {
            json_decref(row);
            api_error(call, 401, "unauthorized", "unknown, expired or revoked token");
            return;
        }
        copy_str(call->who.key_id, sizeof(call->who.key_id), row, "id");
        copy_str(call->who.project_id, sizeof(call->who.project_id), row, "project_id");
        const char *scope = json_string_value(json_object_get(row, "scope"));
        /* Anything but the write scope reads only: an unknown value grants the least. */
        call->who.read_only = scope == NULL || strcmp(scope, "read-write") != 0;
        /* NULL (the whole project) leaves it empty; a prefix always has a character. */
        copy_str(call->who.config_prefix, sizeof(call->who.config_prefix), row, "config_prefix");
    }
    json_decref(row);
    authcache_put_principal(node->cache, call->cache_gen, &call->who, node_now_ms(node), valid_ms);
    authorize(call);
}

#define NO_CREDENTIALS                                                                             \
    "missing Authorization header; send Authorization: Bearer TOKEN (or log in to the "            \
    "console at /ui/)"

/* Whether REQ carries credentials of either kind: a bearer token or the console's cookie. */
static bool has_credentials(struct http_request *req)
{
    const char *c = http_request_header(req, "Authorization");
    return c != NULL ||
           ((c = http_request_header(req, "Cookie")) != NULL && strstr(c, WEBSESSION_COOKIE));
}

/* The console's session cookie, for a request without an Authorization header (websession.h).
 * Returns the token (in call->cookie_token), or NULL after answering 401. */
static const char *cookie_token(struct api_call *call)
{
    const char *c = http_request_header(call->req, "Cookie");
    int found = c ? websession_cookie_token(c, call->cookie_token, sizeof(call->cookie_token)) : 0;
    if (found == 0) {
        api_error(call, 401, "unauthorized", NO_CREDENTIALS);
        return NULL;
    }
    char prefix[AUTH_KEY_PREFIX_CHARS + 1];
    if (found < 0 || auth_token_kind(call->cookie_token, prefix) != AUTH_TOKEN_SESSION) {
        api_error(call, 401, "unauthorized", "the %s cookie holds no session token; log in again",
                  WEBSESSION_COOKIE);
        return NULL;
    }
    call->via_cookie = true;
    return call->cookie_token;
}

/* A request the browser could have been made to send by another site: every method but the
 * safe ones (RFC 9110 9.2.1), which change nothing. */
static bool changes_state(const struct http_request *req)
{
    const char *m = http_request_method(req);
    return strcmp(m, "GET") != 0 && strcmp(m, "HEAD") != 0;
}

static void authenticate(struct api_call *call)
{
    struct node *node = call->node;
    const char *h = http_request_header(call->req, "Authorization");
    const char *token;
    if (h == NULL) {
        if ((token = cookie_token(call)) == NULL) {
            return;
        }
    } else if (strncasecmp(h, "Bearer ", 7) != 0) {
        api_error(call, 401, "unauthorized", "the Authorization header must be Bearer TOKEN");
        return;
    } else {
        token = h + 7;
        while (*token == ' ') {
            token++;
        }
    }
    char prefix[AUTH_KEY_PREFIX_CHARS + 1];
    enum auth_token_kind kind = auth_token_kind(token, prefix);
    if (kind == AUTH_TOKEN_BAD) {
        api_error(call, 401, "unauthorized",
                  "malformed token; expected a session token (cs_...) or an api key (ck_...)");
        return;
    }
    auth_hmac(node->secret, node->secret_len, token, call->who.token_hash);
    /* Checked before the session is looked up: a forged request learns nothing either way,
     * and a request that cannot pass costs no lookup. */
    if (call->via_cookie && changes_state(call->req) &&
        !websession_csrf_ok(node->secret, node->secret_len, call->who.token_hash,
                            http_request_header(call->req, WEBSESSION_CSRF_HEADER))) {
        api_error(call, 403, "csrf",
                  "missing or wrong %s header: a %s request authenticated by the session "
                  "cookie must carry the csrf_token of its login (GET /v1/users/me returns it)",
                  WEBSESSION_CSRF_HEADER, http_request_method(call->req));
        return;
    }
    if (authcache_get_principal(node->cache, call->who.token_hash, node_now_ms(node), &call->who)) {
        authorize(call);
        return;
    }
    call->who.kind = kind == AUTH_TOKEN_SESSION ? PRINCIPAL_USER : PRINCIPAL_APIKEY;
    if (kind == AUTH_TOKEN_APIKEY) {
        /* key_id carries the prefix for the lookup; principal_done() replaces it. */
        snprintf(call->who.key_id, sizeof(call->who.key_id), "%s", prefix);
    }
    call->cache_gen = authcache_generation(node->cache);
    api_submit(call, principal_work, principal_done);
}

/* ---- routing ------------------------------------------------------------------------ */

/* Matches PATH against PATTERN, filling CALL's params. */
static bool match(const char *pattern, const char *path, struct api_call *call, char *bad_param,
                  size_t bad_len)
{
    int np = 0;
    const char *p = pattern, *s = path;
    while (*p != '\0') {
        if (*s != '/' || *p != '/') {
            return false;
        }
        p++;
        s++;
        const char *pend = strchr(p, '/');
        const char *send = strchr(s, '/');
        size_t plen = pend ? (size_t)(pend - p) : strlen(p);
        size_t slen = send ? (size_t)(send - s) : strlen(s);
        if (p[0] == '{') {
            if (slen == 0 || np >= API_MAX_PARAMS) {
                return false;
            }
            char *dst = call->params[np++];
            if (api_input_pct_decode(s, slen, dst, sizeof(call->params[0]), false) != 0 ||
                strchr(dst, '/') != NULL) {
                snprintf(dst, sizeof(call->params[0]), "%s", "");
            }
            bool is_project = strncmp(p, "{project}", plen) == 0;
            bool is_member = strncmp(p, "{member}", plen) == 0;
            if (strncmp(p, "{ckey}", plen) == 0) {
                if (bad_param[0] == '\0' && !codec_key_ok(dst, strlen(dst))) {
                    snprintf(bad_param, bad_len, "key");
                }
                p += plen;
                s += slen;
                continue;
            }
            if (is_member) {
                bool digits = dst[0] != '\0' && strlen(dst) <= 5;
                for (const char *c = dst; *c; c++) {
                    digits = digits && isdigit((unsigned char)*c);
                }
                if (bad_param[0] == '\0' && !digits) {
                    snprintf(bad_param, bad_len, "member");
                }
                p += plen;
                s += slen;
                continue;
            }
            if (!is_project) {
                for (char *c = dst; *c; c++) {
                    *c = (char)tolower((unsigned char)*c); /* UUIDs compare in lowercase */
                }
            }
            if (bad_param[0] == '\0' &&
                !(is_project ? api_input_is_slug(dst) : api_input_is_uuid(dst))) {
                snprintf(bad_param, bad_len, "%.*s", (int)(plen - 2), p + 1);
            }
        } else if (plen != slen || strncmp(p, s, plen) != 0) {
            return false;
        }
        p += plen;
        s += slen;
    }
    return *s == '\0';
}

/* What a path parameter named by match()'s BAD must look like, for the 400 that refuses it. */
static const char *path_rule(const char *bad)
{
    if (strcmp(bad, "project") == 0) {
        return "a project id is 1 to 63 of a-z, 0-9 and inner -";
    }
    if (strcmp(bad, "key") == 0) {
        return "a config key is 1 to 256 of A-Z, a-z, 0-9, '.', '_', ':' and '-', not starting "
               "with '.', ':' or '-'";
    }
    if (strcmp(bad, "member") == 0) {
        return "a member is a node id, a whole number";
    }
    return "expected a UUID";
}

void api_handle(struct http_request *req, void *data)
{
    struct node *node = data;
    if (ui_path(http_request_path(req))) {
        http_request_set_tag(req, "/ui/");
        ui_serve(req);
        return;
    }
    struct api_call *call = calloc(1, sizeof(*call));
    if (call == NULL) {
        http_respond_error(req, 500, "internal", "out of memory");
        return;
    }
    call->req = req;
    call->node = node;
    const char *method = http_request_method(req);
    const char *path = http_request_path(req);
    char allow[64] = "";
    for (size_t i = 0; i < NROUTES; i++) {
        char bad[32] = "";
        memset(call->params, 0, sizeof(call->params));
        if (!match(routes[i].pattern, path, call, bad, sizeof(bad))) {
            continue;
        }
        /* Metrics count requests by pattern, never by raw path (bounded cardinality); a 405
         * counts under the pattern its path matched. */
        http_request_set_tag(req, routes[i].pattern);
        if (strcmp(routes[i].method, method) != 0) {
            size_t n = strlen(allow);
            snprintf(allow + n, sizeof(allow) - n, "%s%s", n ? ", " : "", routes[i].method);
            continue;
        }
        call->route = &routes[i];
        if (node->stopping) {
            unavailable(call, "node is stopping");
            return;
        }
        if (routes[i].access == API_PUBLIC) {
            routes[i].handler(call);
            return;
        }
        if (bad[0] != '\0') {
            /* Authenticate first would leak nothing more; answering 400 early saves a lookup
             * for a request that cannot succeed. A missing token still comes first. */
            if (!has_credentials(req)) {
                api_error(call, 401, "unauthorized", NO_CREDENTIALS);
                return;
            }
            api_field_error(call, bad, "%s in the path is not valid: %s", bad, path_rule(bad));
            return;
        }
        authenticate(call);
        return;
    }
    if (allow[0] != '\0') {
        struct http_header h[] = {{"Allow", allow}, {NULL, NULL}};
        http_respond_error_ex(req, 405, h, NULL, "method_not_allowed",
                              "%s is not allowed on %s; allowed: %s", method, path, allow);
        call_free(call);
        return;
    }
    api_error(call, 404, "not_found", "no such endpoint: %s %s", method, path);
}
