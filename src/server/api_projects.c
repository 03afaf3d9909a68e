/*
 * Projects, their API keys and their roles.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "raft/codec.h"
#include "server/api_internal.h"
#include "server/auth.h"
#include "storage/db.h"
#include "storage/db_projects.h"
#include "server/node.h"

static void *alloc_or_500(struct api_call *call, size_t size)
{
    void *p = calloc(1, size);
    if (p == NULL) {
        api_error(call, 500, "internal", "out of memory");
    }
    call->data = p;
    return p;
}

/* A fresh API key: the text for the client, and what the database keeps. */
struct new_key {
    char id[64];
    char name[256];
    char scope[16];
    bool has_config_prefix;
    char config_prefix[CODEC_MAX_KEY + 1];
    char key[AUTH_KEY_CHARS + 1];
    char prefix[AUTH_KEY_PREFIX_CHARS + 1];
    unsigned char hash[AUTH_HASH_BYTES];
};

static void make_key(struct api_call *call, struct new_key *k, const char *name)
{
    auth_new_api_key(k->key, k->prefix);
    auth_hmac(call->node->secret, call->node->secret_len, k->key, k->hash);
    snprintf(k->name, sizeof(k->name), "%s", name ? name : "");
}

/* Adds the key text to the stored key's JSON, and wipes our copy. */
static void attach_key(json_t *key_json, struct new_key *k)
{
    json_object_set_new(key_json, "key", json_string(k->key));
    sodium_memzero(k->key, sizeof(k->key));
}

static int create_work(PGconn *conn, struct api_call *call, char *errmsg, size_t errlen)
{
    struct new_key *k = call->data;
    struct db_projects_key dk = {.prefix = k->prefix, .hash = k->hash, .name = "default"};
    int rc = db_projects_create(conn, k->id, k->name, call->who.user_id, &dk, &call->result, errmsg,
                                errlen);
    if (rc == DB_OK) {
        attach_key(json_object_get(call->result, "api_key"), k);
    } else if (rc == DB_CONFLICT) {
        snprintf(errmsg, errlen,
                 "project id %s is taken (ids of deleted projects are never "
                 "reused); choose another",
                 k->id);
    }
    return rc;
}

void api_projects_project_create(struct api_call *call)
{
    static const char *const known[] = {"id", "name", NULL};
    const char *id, *name;
    if (api_input_body_object(call) != 0 || api_input_fields_known(call, known) != 0 ||
        api_input_field_string(call, "id", true, 1, 63, &id) != 0 ||
        api_input_field_string(call, "name", true, 1, 200, &name) != 0) {
        return;
    }
    if (!api_input_is_slug(id)) {
        api_field_error(call, "id",
                        "field \"id\" must be 1 to 63 of a-z, 0-9 and inner -, e.g. "
                        "\"payments-eu\"");
        return;
    }
    struct new_key *k = alloc_or_500(call, sizeof(*k));
    if (k == NULL) {
        return;
    }
    make_key(call, k, NULL);
    snprintf(k->id, sizeof(k->id), "%s", id);
    snprintf(k->name, sizeof(k->name), "%s", name);
    call->invalidates_auth = true; /* a cached "no such project" must go */
    api_run(call, create_work, 201);
}

static int list_work(PGconn *conn, struct api_call *call, char *errmsg, size_t errlen)
{
    json_t *rows = NULL;
    int rc = db_projects_list(conn, call->who.user_id, call->who.is_admin, call->page_after,
                              call->page_limit + 1, &rows, errmsg, errlen);
    if (rc == DB_OK) {
        call->result = api_input_page_result(rows, call->page_limit, "id");
    }
    return rc;
}

void api_projects_project_list(struct api_call *call)
{
    if (api_input_page_start(call, false) == 0) {
        api_run(call, list_work, 200);
    }
}

static const char *role_name(enum role_level r)
{
    static const char *const names[] = {"none", "viewer", "editor", "admin"};
    return names[r];
}

static int get_work(PGconn *conn, struct api_call *call, char *errmsg, size_t errlen)
{
    int rc = db_projects_get(conn, call->params[0], &call->result, errmsg, errlen);
    if (rc == DB_OK) {
        json_object_set_new(call->result, "role", json_string(role_name(call->role)));
    } else if (rc == DB_NOT_FOUND) {
        snprintf(errmsg, errlen, "project %s not found", call->params[0]);
    }
    return rc;
}

void api_projects_project_get(struct api_call *call)
{
    api_run(call, get_work, 200);
}

static int delete_work(PGconn *conn, struct api_call *call, char *errmsg, size_t errlen)
{
    int rc = db_projects_delete(conn, call->params[0], errmsg, errlen);
    if (rc == DB_NOT_FOUND) {
        snprintf(errmsg, errlen, "project %s not found", call->params[0]);
    }
    return rc;
}

void api_projects_project_delete(struct api_call *call)
{
    call->invalidates_auth = true;
    api_run(call, delete_work, 204);
}

/* ---- API keys ----------------------------------------------------------------------- */

static int key_create_work(PGconn *conn, struct api_call *call, char *errmsg, size_t errlen)
{
    struct new_key *k = call->data;
    struct db_projects_key dk = {.prefix = k->prefix,
                                 .hash = k->hash,
                                 .name = k->name,
                                 .scope = k->scope,
                                 .config_prefix = k->has_config_prefix ? k->config_prefix : NULL};
    const char *by = call->who.kind == PRINCIPAL_USER ? call->who.user_id : NULL;
    int rc = db_projects_key_create(conn, call->params[0], &dk, by, &call->result, errmsg, errlen);
    if (rc == DB_OK) {
        attach_key(call->result, k);
    }
    return rc;
}

void api_projects_key_create(struct api_call *call)
{
    static const char *const known[] = {"name", "scope", "config_prefix", NULL};
    const char *name = NULL, *scope = NULL, *config_prefix = NULL;
    size_t len = 0;
    http_request_body(call->req, &len);
    if (len > 0 && (api_input_body_object(call) != 0 || api_input_fields_known(call, known) != 0 ||
                    api_input_field_string(call, "name", false, 0, 200, &name) != 0 ||
                    api_input_field_string(call, "scope", false, 1, 16, &scope) != 0 ||
                    api_input_field_string(call, "config_prefix", false, 1, CODEC_MAX_KEY,
                                           &config_prefix) != 0)) {
        return;
    }
    if (config_prefix != NULL && !codec_key_ok(config_prefix, strlen(config_prefix))) {
        api_field_error(call, "config_prefix",
                        "field \"config_prefix\" must be the start of a config key: 1 to %d "
                        "characters of [A-Za-z0-9._:-], starting with a letter, a digit or _",
                        CODEC_MAX_KEY);
        return;
    }
    if (scope != NULL && strcmp(scope, "read") != 0 && strcmp(scope, "read-write") != 0) {
        api_field_error(call, "scope",
                        "field \"scope\" must be \"read\" (read, list, history, watch) or "
                        "\"read-write\" (also write)");
        return;
    }
    struct new_key *k = alloc_or_500(call, sizeof(*k));
    if (k == NULL) {
        return;
    }
    make_key(call, k, name);
    snprintf(k->scope, sizeof(k->scope), "%s", scope != NULL ? scope : "read-write");
    k->has_config_prefix = config_prefix != NULL;
    snprintf(k->config_prefix, sizeof(k->config_prefix), "%s",
             config_prefix != NULL ? config_prefix : "");
    api_run(call, key_create_work, 201);
}

static int key_list_work(PGconn *conn, struct api_call *call, char *errmsg, size_t errlen)
{
    json_t *rows = NULL;
    int rc = db_projects_key_list(conn, call->params[0], call->page_after, call->page_limit + 1,
                                  &rows, errmsg, errlen);
    if (rc == DB_OK) {
        call->result = api_input_page_result(rows, call->page_limit, "id");
    }
    return rc;
}

void api_projects_key_list(struct api_call *call)
{
    if (api_input_page_start(call, true) == 0) {
        api_run(call, key_list_work, 200);
    }
}

static int key_revoke_work(PGconn *conn, struct api_call *call, char *errmsg, size_t errlen)
{
    int rc = db_projects_key_revoke(conn, call->params[0], call->params[1], errmsg, errlen);
    if (rc == DB_NOT_FOUND) {
        snprintf(errmsg, errlen, "api key %s not found in project %s (or already revoked)",
                 call->params[1], call->params[0]);
    }
    return rc;
}

void api_projects_key_revoke(struct api_call *call)
{
    call->invalidates_auth = true;
    api_run(call, key_revoke_work, 204);
}

/* ---- roles -------------------------------------------------------------------------- */

static int role_list_work(PGconn *conn, struct api_call *call, char *errmsg, size_t errlen)
{
    json_t *rows = NULL;
    int rc = db_projects_role_list(conn, call->params[0], call->page_after, call->page_limit + 1,
                                   &rows, errmsg, errlen);
    if (rc == DB_OK) {
        call->result = api_input_page_result(rows, call->page_limit, "user_id");
    }
    return rc;
}

void api_projects_role_list(struct api_call *call)
{
    if (api_input_page_start(call, true) == 0) {
        api_run(call, role_list_work, 200);
    }
}

struct role_change {
    char user[64];   /* the user's UUID, or "" to find the user by email */
    char email[256]; /* used when user is "" */
    char role[16];
};

static int role_set_work(PGconn *conn, struct api_call *call, char *errmsg, size_t errlen)
{
    struct role_change *rc_ = call->data;
    return db_projects_role_set(conn, call->params[0], rc_->user[0] ? rc_->user : NULL, rc_->email,
                                rc_->role, call->who.user_id, &call->result, errmsg, errlen);
}

void api_projects_role_set(struct api_call *call)
{
    static const char *const known[] = {"user_id", "email", "role_level", NULL};
    const char *user = NULL, *email = NULL, *role;
    if (api_input_body_object(call) != 0 || api_input_fields_known(call, known) != 0 ||
        api_input_field_string(call, "user_id", false, 36, 36, &user) != 0 ||
        api_input_field_string(call, "email", false, 3, 254, &email) != 0 ||
        api_input_field_string(call, "role_level", true, 1, 16, &role) != 0) {
        return;
    }
    if ((user == NULL) == (email == NULL)) {
        api_field_error(call, "user_id",
                        "give the user as exactly one of \"user_id\" or \"email\"");
        return;
    }
    if (user != NULL && !api_input_is_uuid(user)) {
        api_field_error(call, "user_id", "field \"user_id\" must be a user's UUID");
        return;
    }
    if (strcmp(role, "admin") != 0 && strcmp(role, "editor") != 0 && strcmp(role, "viewer") != 0) {
        api_field_error(call, "role_level",
                        "field \"role_level\" must be \"admin\", \"editor\" or \"viewer\"");
        return;
    }
    struct role_change *c = alloc_or_500(call, sizeof(*c));
    if (c == NULL) {
        return;
    }
    snprintf(c->user, sizeof(c->user), "%s", user ? user : "");
    snprintf(c->email, sizeof(c->email), "%s", email ? email : "");
    for (char *p = c->user; *p; p++) {
        *p = (char)(*p >= 'A' && *p <= 'F' ? *p - 'A' + 'a' : *p);
    }
    snprintf(c->role, sizeof(c->role), "%s", role);
    call->invalidates_auth = true;
    api_run(call, role_set_work, 200);
}

static int role_delete_work(PGconn *conn, struct api_call *call, char *errmsg, size_t errlen)
{
    int rc = db_projects_role_delete(conn, call->params[0], call->params[1], errmsg, errlen);
    if (rc == DB_NOT_FOUND) {
        snprintf(errmsg, errlen, "user %s has no role in project %s", call->params[1],
                 call->params[0]);
    }
    return rc;
}

void api_projects_role_delete(struct api_call *call)
{
    call->invalidates_auth = true;
    api_run(call, role_delete_work, 204);
}
