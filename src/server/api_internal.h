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
void apih_health(struct api_call *call);
void apih_ready(struct api_call *call);
void apih_metrics(struct api_call *call);
void apih_login(struct api_call *call);
void apih_logout(struct api_call *call);
void apih_me(struct api_call *call);

void apih_user_create(struct api_call *call);
void apih_user_list(struct api_call *call);
void apih_user_get(struct api_call *call);
void apih_user_delete(struct api_call *call);

void apih_project_create(struct api_call *call);
void apih_project_list(struct api_call *call);
void apih_project_get(struct api_call *call);
void apih_project_delete(struct api_call *call);
void apih_key_create(struct api_call *call);
void apih_key_list(struct api_call *call);
void apih_key_revoke(struct api_call *call);
void apih_role_list(struct api_call *call);
void apih_role_set(struct api_call *call);
void apih_role_delete(struct api_call *call);

void apih_schema_create(struct api_call *call);
void apih_schema_list(struct api_call *call);
void apih_schema_get(struct api_call *call);
void apih_schema_update(struct api_call *call);
void apih_schema_delete(struct api_call *call);

void apih_config_create(struct api_call *call);
void apih_config_put(struct api_call *call);
void apih_config_delete(struct api_call *call);
void apih_config_get(struct api_call *call);
void apih_config_list(struct api_call *call);
void apih_config_rollback(struct api_call *call);
/* api_history.c */
void apih_config_revisions(struct api_call *call);
void apih_project_revisions(struct api_call *call);
void apih_watch(struct api_call *call);
void apih_audit_verify(struct api_call *call);

void apih_cluster_get(struct api_call *call);
void apih_cluster_add(struct api_call *call);
void apih_cluster_remove(struct api_call *call);
void apih_cluster_transfer(struct api_call *call);

#endif /* CONCLAVE_API_INTERNAL_H */
