/*
 * Users, for instance admins.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "server/api_internal.h"
#include "server/auth.h"
#include "storage/db.h"
#include "storage/db_users.h"
#include "server/node.h"

struct new_user {
    char email[256];
    char password[AUTH_PASSWORD_MAX + 1];
    bool is_admin;
};

static int create_work(PGconn *conn, struct api_call *call, char *errmsg, size_t errlen)
{
    struct new_user *u = call->data;
    const struct config *conf = call->node->conf;
    char hash[AUTH_PASSWORD_HASH_MAX];
    int rc = auth_password_hash(u->password, conf->password_ops, conf->password_mem_kib, hash,
                                errmsg, errlen);
    sodium_memzero(u->password, sizeof(u->password));
    if (rc != 0) {
        return DB_ERROR;
    }
    rc = db_users_create(conn, u->email, hash, u->is_admin, &call->result, errmsg, errlen);
    if (rc == DB_CONFLICT) {
        snprintf(errmsg, errlen, "email %s is already registered", u->email);
    } else if (rc == DB_INVALID) {
        call->err_field = "email";
        snprintf(errmsg, errlen, "field \"email\" is not a valid email address");
    }
    return rc;
}

void api_users_user_create(struct api_call *call)
{
    static const char *const known[] = {"email", "password", "is_admin", NULL};
    const char *email, *password;
    bool is_admin;
    char why[128];
    if (api_input_body_object(call) != 0 || api_input_fields_known(call, known) != 0 ||
        api_input_field_string(call, "email", true, 3, 254, &email) != 0 ||
        api_input_field_string(call, "password", true, 0, AUTH_PASSWORD_MAX, &password) != 0 ||
        api_input_field_bool(call, "is_admin", false, &is_admin) != 0) {
        return;
    }
    const char *at = strchr(email, '@');
    if (at == NULL || at == email || at[1] == '\0' || strchr(at + 1, '@') != NULL ||
        strpbrk(email, " \t\r\n") != NULL) {
        api_field_error(call, "email", "field \"email\" is not a valid email address");
        return;
    }
    if (auth_password_acceptable(password, why, sizeof(why)) != 0) {
        api_field_error(call, "password", "field \"password\": %s", why);
        return;
    }
    struct new_user *u = calloc(1, sizeof(*u));
    if (u == NULL) {
        api_error(call, 500, "internal", "out of memory");
        return;
    }
    snprintf(u->email, sizeof(u->email), "%s", email);
    snprintf(u->password, sizeof(u->password), "%s", password);
    u->is_admin = is_admin;
    call->data = u;
    api_run(call, create_work, 201);
}

static int list_work(PGconn *conn, struct api_call *call, char *errmsg, size_t errlen)
{
    json_t *rows = NULL;
    int rc = db_users_list(conn, call->page_after, call->page_limit + 1, &rows, errmsg, errlen);
    if (rc == DB_OK) {
        call->result = api_input_page_result(rows, call->page_limit, "id");
    }
    return rc;
}

void api_users_user_list(struct api_call *call)
{
    if (api_input_page_start(call, true) == 0) {
        api_run(call, list_work, 200);
    }
}

static int get_work(PGconn *conn, struct api_call *call, char *errmsg, size_t errlen)
{
    int rc = db_users_get(conn, call->params[0], &call->result, errmsg, errlen);
    if (rc == DB_NOT_FOUND) {
        snprintf(errmsg, errlen, "user %s not found", call->params[0]);
    }
    return rc;
}

void api_users_user_get(struct api_call *call)
{
    api_run(call, get_work, 200);
}

static int delete_work(PGconn *conn, struct api_call *call, char *errmsg, size_t errlen)
{
    return db_users_delete(conn, call->params[0], errmsg, errlen);
}

void api_users_user_delete(struct api_call *call)
{
    if (strcmp(call->params[0], call->who.user_id) == 0) {
        api_error(call, 409, "conflict", "you cannot delete your own account");
        return;
    }
    call->invalidates_auth = true;
    api_run(call, delete_work, 204);
}
