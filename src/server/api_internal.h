/*
 * api_internal: the API module's one private header: the endpoint handlers, one group per
 * file (api_status.c, api_auth.c, api_users.c, api_projects.c, api_schemas.c, api_configs.c,
 * api_reads.c, api_history.c, api_cluster.c), which api.c routes to. Each takes over the call
 * (see api.h) and must end it with exactly one answer. It includes only the module's public
 * api.h.
 */
#ifndef CONCLAVE_API_INTERNAL_H
#define CONCLAVE_API_INTERNAL_H

#include "server/api.h"

/* Work statuses beyond enum db_status that handlers use. */
#define APIH_UNPROCESSABLE 100 /* 422 invalid_schema; the message says where */
#define APIH_FORBIDDEN     101 /* 403 forbidden; the message says why */
#define APIH_UNAUTHORIZED  102 /* 401 unauthorized */

/* True when this node may coordinate a write or a linearizable read (it is the ready
 * leader). Otherwise the call is taken over: forwarded to the leader once (a forwarded
 * request is never forwarded again), or answered 503 with Retry-After. In api_forward.c. */
bool api_lead_or_forward(struct api_call *call);

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

void api_cluster_cluster_get(struct api_call *call);
void api_cluster_cluster_add(struct api_call *call);
void api_cluster_cluster_remove(struct api_call *call);
void api_cluster_cluster_transfer(struct api_call *call);

#endif /* CONCLAVE_API_INTERNAL_H */
