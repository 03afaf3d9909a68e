/*
 * The JSON Schema catalog. Compiling a schema is CPU work proportional to its size, so it
 * runs in the PostgreSQL job on a worker thread, never on the loop.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "server/api_internal.h"
#include "jsonschema/canonjson.h"
#include "storage/db.h"
#include "storage/db_schemas.h"
#include "jsonschema/jsonschema.h"
#include "server/node.h"

/* A schema ready to store: its canonical text and hash. */
struct prepared {
    char *text;
    unsigned char hash[crypto_hash_sha256_BYTES];
};

/* Turns the body's schema_content (an object or boolean, or a string holding one) into
 * canonical text, after checking it compiles. Returns DB_OK, APIH_UNPROCESSABLE or DB_INVALID
 * with ERRMSG. */
static int prepare(json_t *content, struct prepared *out, char *errmsg, size_t errlen)
{
    json_t *schema = NULL;
    char why[512];
    out->text = NULL;
    if (json_is_string(content)) {
        if (canonjson_parse(json_string_value(content), json_string_length(content), &schema, why,
                            sizeof(why)) != 0) {
            snprintf(errmsg, errlen,
                     "field \"schema_content\" holds a string that is not "
                     "json: %s",
                     why);
            return DB_INVALID;
        }
    } else {
        schema = json_incref(content);
    }
    if (!json_is_object(schema) && !json_is_boolean(schema)) {
        json_decref(schema);
        snprintf(errmsg, errlen,
                 "field \"schema_content\" must be a json schema: an object or a boolean");
        return DB_INVALID;
    }
    struct jsonschema *compiled = NULL;
    if (jsonschema_compile(schema, &compiled, why, sizeof(why)) != 0) {
        json_decref(schema);
        snprintf(errmsg, errlen, "schema_content is not a usable schema: %s", why);
        return APIH_UNPROCESSABLE;
    }
    jsonschema_free(compiled);
    size_t len = 0;
    int rc = canonjson_dump(schema, &out->text, &len, why, sizeof(why));
    json_decref(schema);
    if (rc != 0) {
        snprintf(errmsg, errlen, "schema_content: %s", why);
        return APIH_UNPROCESSABLE;
    }
    crypto_hash_sha256(out->hash, (const unsigned char *)out->text, len);
    return DB_OK;
}

struct schema_req {
    const char *name; /* points into call->body */
    json_t *content;  /* borrowed from call->body; NULL when absent */
};

static int create_work(PGconn *conn, struct api_call *call, char *errmsg, size_t errlen)
{
    struct schema_req *r = call->data;
    struct prepared p;
    call->err_field = "schema_content";
    int rc = prepare(r->content, &p, errmsg, errlen);
    if (rc != DB_OK) {
        return rc;
    }
    rc = db_schemas_create(conn, r->name, p.text, p.hash, call->who.user_id, &call->result, errmsg,
                           errlen);
    free(p.text);
    return rc;
}

/* Reads name and schema_content; both required when REQUIRED. */
static struct schema_req *read_request(struct api_call *call, bool required)
{
    static const char *const known[] = {"name", "schema_content", NULL};
    const char *name;
    if (api_input_body_object(call) != 0 || api_input_fields_known(call, known) != 0 ||
        api_input_field_string(call, "name", required, 1, 200, &name) != 0) {
        return NULL;
    }
    json_t *content = json_object_get(call->body, "schema_content");
    if (content == NULL && required) {
        api_field_error(call, "schema_content", "field \"schema_content\" is required");
        return NULL;
    }
    if (!required && content == NULL && name == NULL) {
        api_field_error(call, "schema_content",
                        "nothing to change: send field \"name\" and/or \"schema_content\"");
        return NULL;
    }
    struct schema_req *r = calloc(1, sizeof(*r));
    if (r == NULL) {
        api_error(call, 500, "internal", "out of memory");
        return NULL;
    }
    r->name = name;
    r->content = content;
    call->data = r;
    return r;
}

void api_schemas_schema_create(struct api_call *call)
{
    if (read_request(call, true) != NULL) {
        api_run(call, create_work, 201);
    }
}

static int list_work(PGconn *conn, struct api_call *call, char *errmsg, size_t errlen)
{
    json_t *rows = NULL;
    int rc = db_schemas_list(conn, call->page_after, call->page_limit + 1, &rows, errmsg, errlen);
    if (rc == DB_OK) {
        call->result = api_input_page_result(rows, call->page_limit, "id");
    }
    return rc;
}

void api_schemas_schema_list(struct api_call *call)
{
    if (api_input_page_start(call, true) == 0) {
        api_run(call, list_work, 200);
    }
}

static int get_work(PGconn *conn, struct api_call *call, char *errmsg, size_t errlen)
{
    int rc = db_schemas_get(conn, call->params[0], &call->result, errmsg, errlen);
    if (rc == DB_NOT_FOUND) {
        snprintf(errmsg, errlen, "schema %s not found", call->params[0]);
    }
    return rc;
}

void api_schemas_schema_get(struct api_call *call)
{
    api_run(call, get_work, 200);
}

/* DB_OK when the caller may change schema ID: its creator or an instance admin. */
static int check_owner(PGconn *conn, struct api_call *call, char *errmsg, size_t errlen)
{
    json_t *s = NULL;
    int rc = get_work(conn, call, errmsg, errlen);
    s = call->result;
    call->result = NULL;
    if (rc != DB_OK) {
        return rc;
    }
    const char *owner = json_string_value(json_object_get(s, "created_by_user_id"));
    bool mine = owner != NULL && strcmp(owner, call->who.user_id) == 0;
    json_decref(s);
    if (!mine && !call->who.is_admin) {
        snprintf(errmsg, errlen,
                 "only the schema's creator or an instance admin may change or delete it");
        return APIH_FORBIDDEN;
    }
    return DB_OK;
}

static int update_work(PGconn *conn, struct api_call *call, char *errmsg, size_t errlen)
{
    struct schema_req *r = call->data;
    struct prepared p = {0};
    int rc = check_owner(conn, call, errmsg, errlen);
    if (rc != DB_OK) {
        return rc;
    }
    call->err_field = "schema_content";
    if (r->content != NULL && (rc = prepare(r->content, &p, errmsg, errlen)) != DB_OK) {
        return rc;
    }
    rc = db_schemas_update(conn, call->params[0], r->name, p.text, p.text ? p.hash : NULL,
                           &call->result, errmsg, errlen);
    free(p.text);
    return rc;
}

void api_schemas_schema_update(struct api_call *call)
{
    if (read_request(call, false) != NULL) {
        api_run(call, update_work, 200);
    }
}

static int delete_work(PGconn *conn, struct api_call *call, char *errmsg, size_t errlen)
{
    int rc = check_owner(conn, call, errmsg, errlen);
    if (rc != DB_OK) {
        return rc;
    }
    return db_schemas_delete(conn, call->params[0], errmsg, errlen);
}

void api_schemas_schema_delete(struct api_call *call)
{
    api_run(call, delete_work, 204);
}
