-- Takes back every right 012 granted. The role conclave_node itself stays: roles belong to
-- the whole PostgreSQL server, and another database's conclave may still use it.
REVOKE ALL ON config_revisions, users, projects, api_keys, roles, sessions, config_schemas,
    configs, materializer_cursor FROM conclave_node;
