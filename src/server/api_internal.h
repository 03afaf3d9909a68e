/*
 * api_internal: the API module's one private header: the endpoint handlers, one group per
 * file (api_status.c, api_auth.c, api_users.c, api_projects.c, api_schemas.c, api_configs.c,
 * api_reads.c, api_history.c, api_cluster.c), which api.c routes to, and the input helpers
 * of api_input.c they read requests with. Each handler takes over the call (see api.h) and must
 * end it with exactly one answer. It includes only the module's public api.h.
 */
#ifndef CONCLAVE_API_INTERNAL_H
#define CONCLAVE_API_INTERNAL_H

#include "server/api.h"

/* Work statuses beyond enum db_status that handlers use. */
#define APIH_UNPROCESSABLE 100 /* 422 invalid_schema; the message says where */
#define APIH_FORBIDDEN     101 /* 403 forbidden; the message says why */
#define APIH_UNAUTHORIZED  102 /* 401 unauthorized */

/* ---- input helpers, in api_input.c ---------------------------------------------------- */

/* Parses the body as a JSON object into call->body (owned by the call). On failure answers
 * 400 and returns -1: the handler must return at once. */
int api_input_body_object(struct api_call *call);

/* Reads string field NAME of call->body: missing (when REQUIRED) or mistyped or outside
 * [MIN, MAX] code points answers 400 naming the field and returns -1. *OUT is NULL when the
 * field is absent and not required; otherwise it points into call->body. */
int api_input_field_string(struct api_call *call, const char *name, bool required, size_t min,
                           size_t max, const char **out);

/* Reads optional boolean field NAME (default DEF); a mistyped one answers 400 and returns -1. */
int api_input_field_bool(struct api_call *call, const char *name, bool def, bool *out);

/* Refuses (400, returns -1) every field of call->body not in ALLOWED (NULL-terminated). */
int api_input_fields_known(struct api_call *call, const char *const *allowed);

/* Finds query parameter NAME, percent-decoded into OUT. 1 when present, 0 when absent, -1 when
 * malformed or longer than OUTLEN. Answers nothing: the caller decides what -1 means. */
int api_input_query(struct api_call *call, const char *name, char *out, size_t outlen);

/* Reads query parameter NAME as a whole number from 0 to MAX into *OUT (DEF when absent).
 * Returns 0, or -1 after answering 400 with the parameter named. */
int api_input_query_u64(struct api_call *call, const char *name, uint64_t def, uint64_t max,
                        uint64_t *out);

/* Reads ?limit= (1..1000, default 100) into call->page_limit and ?after= into
 * call->page_after (NULL when absent, else call->after), for list handlers; AFTER_IS_UUID
 * selects the cursor check. Returns 0, or -1 after answering 400. */
int api_input_page_start(struct api_call *call, bool after_is_uuid);

/* Wraps ITEMS (stolen; LIMIT + 1 rows were asked for) as a page {"items", "next_after"},
 * using field KEY of the last item as the cursor. */
json_t *api_input_page_result(json_t *items, int limit, const char *key);

/* Percent-decodes N bytes of IN into OUT (OUTLEN with the terminator); PLUS_SPACE turns '+'
 * into a space (query strings, not paths). -1 when malformed, too long, or decoding to a NUL. */
int api_input_pct_decode(const char *in, size_t n, char *out, size_t outlen, bool plus_space);

/* Syntax checks shared by routing and handlers. */
bool api_input_is_uuid(const char *s);
bool api_input_is_slug(const char *s);
/* Writes the 16-byte ID as canonical UUID text (8-4-4-4-12 lowercase hex) into OUT. */
void api_input_uuid_text(const uint8_t id[16], char out[37]);

/* The resolver of "$ref"s between schemas of the catalog (docs/jsonschema.md, "References
 * between schemas"): urn:conclave:schema:<id>, or the one live schema whose root "$id" is the
 * URI. A jsonschema_resolver_fn whose data is a struct api_schema_resolver; it queries
 * PostgreSQL on CONN, so it runs only inside a pool job. ERR keeps why the first URI that
 * could not be resolved was not, for the compile error. In api_schemas.c. */
struct api_schema_resolver {
    PGconn *conn; /* the job's connection */
    char err[256];
};
json_t *api_schemas_resolve(const char *uri, void *resolver);

/* True when this node may coordinate a write or a linearizable read (it is the ready
 * leader). Otherwise the call is taken over: forwarded to the leader once (a forwarded
 * request is never forwarded again), or answered 503 with Retry-After. In api_forward.c. */
bool api_lead_or_forward(struct api_call *call);
/* True unless CALL is an API key limited to a config prefix that KEY does not start with
 * (api.h, enum api_reach). */
bool api_key_reaches(const struct api_call *call, const char *key);
/* Answers 403 for KEY, which CALL's API key does not reach (api_key_reaches() was false). */
void api_key_beyond_reach(struct api_call *call, const char *key);

/* ---- a config write's phases, in api_phases.c -------------------------------------------
 * Each marks one point of call->phases and counts the phase that ends there in the node's
 * metrics (conclave_write_*_seconds). Called on the loop thread only; each phase is counted
 * at most once per call, and only when the point that starts it was marked. */

/* The write handler was called: counts "HTTP in" from the request's first byte, and marks the
 * call as a write. Every configs write handler calls it first. */
void api_phases_handler(struct api_call *call);
/* A write is being handed to the forwarding client (a follower). Nothing for other calls. */
void api_phases_forwarding(struct api_call *call);
/* The leader's answer to a forwarded write is back: counts "forward"; the answer starts. */
void api_phases_forwarded(struct api_call *call);
/* rnode_apply took the entry; AT_NS is uv_hrtime() from just before that call: counts
 * "prepare" from the handler call to AT_NS. */
void api_phases_proposed(struct api_call *call, uint64_t at_ns);
/* raft reported the entry applied with status 0 (from the rnode_apply callback): counts
 * "propose to commit" and "commit to apply" (rnode_commit_ns()). */
void api_phases_applied(struct api_call *call);
/* PostgreSQL holds the write's revision (the materializer's wait callback with status 0):
 * counts "apply to PostgreSQL commit"; the answer starts. */
void api_phases_materialized(struct api_call *call);
/* The answer was handed to the HTTP server (http_respond* returned): counts "answer out".
 * Call it before the call is freed (api_reply_done()). */
void api_phases_answered(struct api_call *call);

/* The status endpoints, in api_status.c. */
void api_status_health(struct api_call *call);
void api_status_ready(struct api_call *call);
void api_status_metrics(struct api_call *call);
void api_auth_login(struct api_call *call);
void api_auth_logout(struct api_call *call);
void api_auth_me(struct api_call *call);

void api_users_user_create(struct api_call *call);
void api_users_user_list(struct api_call *call);
void api_users_user_get(struct api_call *call);
void api_users_user_delete(struct api_call *call);

void api_projects_project_create(struct api_call *call);
void api_projects_project_list(struct api_call *call);
void api_projects_project_get(struct api_call *call);
void api_projects_project_delete(struct api_call *call);
void api_projects_key_create(struct api_call *call);
void api_projects_key_list(struct api_call *call);
void api_projects_key_revoke(struct api_call *call);
void api_projects_role_list(struct api_call *call);
void api_projects_role_set(struct api_call *call);
void api_projects_role_delete(struct api_call *call);

void api_schemas_schema_create(struct api_call *call);
void api_schemas_schema_list(struct api_call *call);
void api_schemas_schema_get(struct api_call *call);
void api_schemas_schema_update(struct api_call *call);
void api_schemas_schema_delete(struct api_call *call);

void api_configs_config_create(struct api_call *call);
void api_configs_config_put(struct api_call *call);
void api_configs_config_delete(struct api_call *call);
void api_reads_config_get(struct api_call *call);
void api_reads_config_list(struct api_call *call);
void api_configs_config_rollback(struct api_call *call);
/* api_history.c */
void api_history_config_revisions(struct api_call *call);
void api_history_project_revisions(struct api_call *call);
void api_history_watch(struct api_call *call);
void api_history_audit_verify(struct api_call *call);
void api_history_project_head(struct api_call *call);

void api_cluster_cluster_get(struct api_call *call);
void api_cluster_cluster_add(struct api_call *call);
void api_cluster_cluster_remove(struct api_call *call);
void api_cluster_cluster_transfer(struct api_call *call);

#endif /* CONCLAVE_API_INTERNAL_H */
