/*
 * Login, logout and the caller's own account.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sodium.h>

#include "server/api_internal.h"
#include "server/auth.h"
#include "storage/db.h"
#include "storage/db_auth.h"
#include "storage/db_users.h"
#include "server/node.h"
#include "server/websession.h"

/* What the login job needs besides the call. The password is wiped when the call ends. */
struct login {
    char email[256];
    char ip[64]; /* the TCP peer, for the throttle */
    char password[AUTH_PASSWORD_MAX + 1];
    bool cookie; /* "session": "cookie": the token goes into an HttpOnly cookie only */
};

static int login_work(PGconn *conn, struct api_call *call, char *errmsg, size_t errlen)
{
    struct login *l = call->data;
    const struct config *conf = call->node->conf;
    json_t *user = NULL;
    int rc = db_auth_user_for_login(conn, l->email, &user, errmsg, errlen);
    if (rc != DB_OK && rc != DB_NOT_FOUND) {
        return rc;
    }
    const char *hash = user ? json_string_value(json_object_get(user, "password_hash")) : NULL;
    bool ok = auth_password_verify(hash, l->password, conf->password_ops, conf->password_mem_kib);
    sodium_memzero(l->password, sizeof(l->password));
    if (!ok) {
        json_decref(user);
        snprintf(errmsg, errlen, "wrong email or password");
        return APIH_UNAUTHORIZED;
    }
    char token[AUTH_SESSION_CHARS + 1];
    unsigned char th[AUTH_HASH_BYTES];
    auth_new_session_token(token);
    auth_hmac(call->node->secret, call->node->secret_len, token, th);
    const char *user_id = json_string_value(json_object_get(user, "id"));
    json_t *session = NULL;
    rc = db_auth_session_create(conn, th, user_id, conf->session_ttl_s, &session, errmsg, errlen);
    if (rc == DB_OK && l->cookie) {
        /* The console's script never sees the token: only the cookie holds it, and the
         * script gets the CSRF token that proves its requests come from this origin. */
        char csrf[WEBSESSION_CSRF_CHARS + 1];
        websession_csrf(call->node->secret, call->node->secret_len, th, csrf);
        if (websession_set_cookie(call->set_cookie, sizeof(call->set_cookie), token,
                                  conf->session_ttl_s, conf->http_cert_file != NULL) != 0) {
            snprintf(errmsg, errlen, "session cookie does not fit its buffer");
            rc = DB_ERROR;
        } else {
            call->result = json_pack("{s:s,s:O,s:s}", "user_id", user_id, "expires_at",
                                     json_object_get(session, "expires_at"), "csrf_token", csrf);
        }
    } else if (rc == DB_OK) {
        call->result = json_pack("{s:s,s:s,s:O}", "token", token, "user_id", user_id, "expires_at",
                                 json_object_get(session, "expires_at"));
    }
    sodium_memzero(token, sizeof(token));
    json_decref(session);
    json_decref(user);
    return rc;
}

static void login_done(int status, const char *errmsg, void *arg)
{
    struct api_call *call = arg;
    struct login *l = call->data;
    struct node *node = call->node;
    if (status == APIH_UNAUTHORIZED) {
        throttle_failed(node->throttle, l->email, l->ip, node_now_ms(node));
    } else if (status == DB_OK) {
        throttle_succeeded(node->throttle, l->email);
    }
    api_finish(call, status, errmsg);
}

void api_auth_login(struct api_call *call)
{
    static const char *const known[] = {"email", "password", "session", NULL};
    const char *email, *password, *session;
    if (api_input_body_object(call) != 0 || api_input_fields_known(call, known) != 0 ||
        api_input_field_string(call, "email", true, 1, 254, &email) != 0 ||
        api_input_field_string(call, "password", true, 1, AUTH_PASSWORD_MAX, &password) != 0 ||
        api_input_field_string(call, "session", false, 1, 16, &session) != 0) {
        return;
    }
    bool cookie = session != NULL && strcmp(session, "cookie") == 0;
    if (session != NULL && !cookie && strcmp(session, "token") != 0) {
        api_field_error(call, "session", "session must be \"token\" (the default) or \"cookie\"");
        return;
    }
    /* A page of another site can post a form to this origin, but not with this content type
     * without a CORS preflight, which conclave never grants: so nobody can log a browser
     * into a session of their choosing (login CSRF). */
    const char *type = http_request_header(call->req, "Content-Type");
    if (cookie && (type == NULL || strncasecmp(type, "application/json", 16) != 0)) {
        api_error(call, 415, "unsupported_media_type",
                  "a cookie login must be sent with Content-Type: application/json");
        return;
    }
    struct login *l = calloc(1, sizeof(*l));
    if (l == NULL) {
        api_error(call, 500, "internal", "out of memory");
        return;
    }
    snprintf(l->email, sizeof(l->email), "%s", email);
    snprintf(l->password, sizeof(l->password), "%s", password);
    l->cookie = cookie;
    http_request_peer_ip(call->req, l->ip, sizeof(l->ip));
    call->data = l;
    /* Refused before any password work while the account or the address is locked, the same
     * for unknown emails (throttle.h). */
    uint64_t wait =
        throttle_wait_ms(call->node->throttle, l->email, l->ip, node_now_ms(call->node));
    if (wait > 0) {
        char secs[24];
        snprintf(secs, sizeof(secs), "%llu", (unsigned long long)((wait + 999) / 1000));
        const struct http_header h[] = {{"Retry-After", secs}, {NULL, NULL}};
        http_respond_error_ex(call->req, 429, h, NULL, "too_many_requests",
                              "too many failed logins for this account or from this address; "
                              "try again in %s s",
                              secs);
        api_reply_done(call);
        return;
    }
    call->ok_status = 200;
    api_submit(call, login_work, login_done);
}

static int logout_work(PGconn *conn, struct api_call *call, char *errmsg, size_t errlen)
{
    return db_auth_session_revoke(conn, call->who.token_hash, errmsg, errlen);
}

void api_auth_logout(struct api_call *call)
{
    call->invalidates_auth = true;
    if (call->via_cookie &&
        websession_set_cookie(call->set_cookie, sizeof(call->set_cookie), NULL, 0,
                              call->node->conf->http_cert_file != NULL) != 0) {
        call->set_cookie[0] = '\0'; /* cannot happen: the deleting cookie is short */
    }
    api_run(call, logout_work, 204);
}

static int me_work(PGconn *conn, struct api_call *call, char *errmsg, size_t errlen)
{
    int rc = db_users_get(conn, call->who.user_id, &call->result, errmsg, errlen);
    if (rc == DB_OK && call->via_cookie) {
        /* A reloaded console page gets its CSRF token back here. Another site's page cannot
         * read this answer: conclave sends no CORS header. */
        char csrf[WEBSESSION_CSRF_CHARS + 1];
        websession_csrf(call->node->secret, call->node->secret_len, call->who.token_hash, csrf);
        json_object_set_new(call->result, "csrf_token", json_string(csrf));
    }
    return rc;
}

void api_auth_me(struct api_call *call)
{
    api_run(call, me_work, 200);
}
