-- Least privilege for the nodes (docs/security.md "Database roles").
--
-- Migrations run as the owner role, which owns every table. The nodes connect as a login
-- role of their own that owns nothing and is a member of the NOLOGIN group role
-- conclave_node; every right a node has is granted here, to that group, so the login role's
-- name is the operator's choice (GRANT conclave_node TO <login role>).
--
-- On config_revisions, the audit log, a node may only INSERT and SELECT: no UPDATE, DELETE,
-- TRUNCATE, REFERENCES or TRIGGER, and since it owns nothing it cannot ALTER the table, drop
-- it or disable its append-only triggers. On the other tables it gets what the SQL of
-- storage/db_*.c needs: SELECT, INSERT, UPDATE, DELETE (UPDATE also for SELECT ... FOR
-- UPDATE of the cursor row and the project row), never TRUNCATE, REFERENCES or TRIGGER.
-- schema_migrations stays the owner's alone: a node never migrates.
--
-- Roles are shared by every database of a PostgreSQL server, so the group role may already
-- exist (created by an earlier database's migration, or by an administrator beforehand when
-- the owner may not create roles); creating it twice, even concurrently, is not an error.
-- A table added by a later migration gets its grants to conclave_node in that migration.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'conclave_node') THEN
        BEGIN
            CREATE ROLE conclave_node NOLOGIN;
        EXCEPTION
            WHEN duplicate_object OR unique_violation THEN
                NULL; -- created meanwhile by a migration of another database
            WHEN insufficient_privilege THEN
                RAISE EXCEPTION 'the migrating role % may not create roles: create the node group role first as a superuser (CREATE ROLE conclave_node NOLOGIN), then migrate again', current_user
                    USING ERRCODE = 'insufficient_privilege';
        END;
    END IF;
END;
$$;

GRANT SELECT, INSERT ON config_revisions TO conclave_node;
GRANT SELECT, INSERT, UPDATE, DELETE ON users, projects, api_keys, roles, sessions,
    config_schemas, configs, materializer_cursor TO conclave_node;
