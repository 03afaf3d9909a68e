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

struct schema_req {
    const char *name;     /* points into call->body */
    json_t *content;      /* borrowed from call->body; NULL when absent */
    bool strict;          /* "strict": refuse unknown keywords and formats (not stored) */
    int format_assertion; /* "format_assertion": 0 or 1, -1 when absent */
};

json_t *api_schemas_resolve(const char *uri, void *data)
{
    struct api_schema_resolver *r = data;
    PGconn *conn = r->conn;
    json_t *row = NULL;
    char why[256];
    static const char urn[] = "urn:conclave:schema:";
    int rc;
    if (strncmp(uri, urn, sizeof(urn) - 1) == 0) {
        const char *id = uri + sizeof(urn) - 1;
        rc =
            api_input_is_uuid(id) ? db_schemas_get(conn, id, &row, why, sizeof(why)) : DB_NOT_FOUND;
        if (rc == DB_OK) {
            json_t *content = json_incref(json_object_get(row, "schema_content"));
            json_decref(row);
            return content;
        }
        snprintf(why, sizeof(why), "the catalog has no schema %s", id);
    } else {
        rc = db_schemas_by_id_uri(conn, uri, &row, why, sizeof(why));
        if (rc == DB_OK) {
            return row;
        }
    }
    if (r->err[0] == '\0') {
        snprintf(r->err, sizeof(r->err), "%s", why);
    }
    return NULL;
}

/* Turns the body's schema_content (an object or boolean, or a string holding one) into
 * canonical text, after checking it compiles with OPTS (whose resolver data is an
 * api_schema_resolver on CONN). Returns DB_OK, APIH_UNPROCESSABLE or DB_INVALID with
 * ERRMSG. */
static int prepare(PGconn *conn, json_t *content, const struct schema_req *req,
                   struct prepared *out, char *errmsg, size_t errlen)
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
    struct api_schema_resolver res = {.conn = conn};
    struct jsonschema_options opts = {.strict = req->strict,
                                      .format_assertion = req->format_assertion == 1,
                                      .resolver = api_schemas_resolve,
                                      .resolver_data = &res};
    if (jsonschema_compile_ex(schema, &opts, &compiled, why, sizeof(why)) != 0) {
        json_decref(schema);
        snprintf(errmsg, errlen, "schema_content is not a usable schema: %s%s%s", why,
                 res.err[0] ? "; " : "", res.err);
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

static int create_work(PGconn *conn, struct api_call *call, char *errmsg, size_t errlen)
{
    struct schema_req *r = call->data;
    struct prepared p;
    call->err_field = "schema_content";
    int rc = prepare(conn, r->content, r, &p, errmsg, errlen);
    if (rc != DB_OK) {
        return rc;
    }
    rc = db_schemas_create(conn, r->name, p.text, p.hash, r->format_assertion == 1,
                           call->who.user_id, &call->result, errmsg, errlen);
    free(p.text);
    return rc;
}

/* Reads name and schema_content; both required when REQUIRED. */
static struct schema_req *read_request(struct api_call *call, bool required)
{
    static const char *const known[] = {"name", "schema_content", "strict", "format_assertion",
                                        NULL};
    const char *name;
    bool strict, fa;
    if (api_input_body_object(call) != 0 || api_input_fields_known(call, known) != 0 ||
        api_input_field_string(call, "name", required, 1, 200, &name) != 0 ||
        api_input_field_bool(call, "strict", false, &strict) != 0 ||
        api_input_field_bool(call, "format_assertion", false, &fa) != 0) {
        return NULL;
    }
    bool has_fa = json_object_get(call->body, "format_assertion") != NULL;
    json_t *content = json_object_get(call->body, "schema_content");
    if (content == NULL && required) {
        api_field_error(call, "schema_content", "field \"schema_content\" is required");
        return NULL;
    }
    if (!required && content == NULL && name == NULL && !has_fa) {
        api_field_error(call, "schema_content",
                        "nothing to change: send field \"name\", \"schema_content\" and/or "
                        "\"format_assertion\"");
        return NULL;
    }
    if (strict && content == NULL) {
        api_field_error(call, "strict",
                        "\"strict\" checks the schema_content sent with it; send schema_content");
        return NULL;
    }
    struct schema_req *r = calloc(1, sizeof(*r));
    if (r == NULL) {
        api_error(call, 500, "internal", "out of memory");
        return NULL;
    }
    r->name = name;
    r->content = content;
    r->strict = strict;
    r->format_assertion = has_fa ? fa : (required ? 0 : -1);
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
    if (r->content != NULL && (rc = prepare(conn, r->content, r, &p, errmsg, errlen)) != DB_OK) {
        return rc;
    }
    rc = db_schemas_update(conn, call->params[0], r->name, p.text, p.text ? p.hash : NULL,
                           r->format_assertion, &call->result, errmsg, errlen);
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
