-- The audit log: one immutable row per committed change, in Raft order. revision is the
-- cluster-wide counter; raft_index is unique so that replaying a materializer batch after a
-- crash is a no-op (ON CONFLICT DO NOTHING). Each project's rows form a hash chain:
-- hash = SHA-256(prev_hash || canonical revision bytes).
CREATE TYPE revision_op AS ENUM ('put', 'delete', 'rollback');

CREATE TABLE config_revisions (
    revision       bigint      PRIMARY KEY,
    project_id     text        NOT NULL REFERENCES projects (id),
    key            text        NOT NULL,
    version        bigint      NOT NULL,
    op             revision_op NOT NULL,
    -- json, not jsonb: json keeps the exact canonical text that was hashed into the chain,
    -- so an auditor re-hashes the stored bytes instead of a re-serialisation of them.
    content        json,
    -- For a rollback: the version whose content was restored.
    source_version bigint,
    -- No foreign key: history must outlive the schema; schema_hash pins the exact text.
    schema_id      uuid,
    schema_hash    bytea,
    actor          text        NOT NULL,
    request_id     text,
    -- The leader's timestamp from the Raft entry, identical on every node.
    created_at     timestamptz NOT NULL,
    raft_index     bigint      NOT NULL,
    raft_term      bigint      NOT NULL,
    prev_hash      bytea       NOT NULL,
    hash           bytea       NOT NULL,
    CONSTRAINT config_revisions_raft_index_key UNIQUE (raft_index),
    CONSTRAINT config_revisions_version_key UNIQUE (project_id, key, version),
    CONSTRAINT config_revisions_revision_positive CHECK (revision >= 1),
    CONSTRAINT config_revisions_version_positive CHECK (version >= 1),
    CONSTRAINT config_revisions_raft_positive CHECK (raft_index >= 1 AND raft_term >= 1),
    CONSTRAINT config_revisions_delete_has_no_content CHECK ((op = 'delete') = (content IS NULL)),
    CONSTRAINT config_revisions_rollback_source
        CHECK ((op = 'rollback') = (source_version IS NOT NULL)),
    CONSTRAINT config_revisions_source_before CHECK (source_version IS NULL OR
                                                     (source_version >= 1 AND source_version < version)),
    CONSTRAINT config_revisions_hash_lengths
        CHECK (octet_length(prev_hash) = 32 AND octet_length(hash) = 32),
    CONSTRAINT config_revisions_schema_hash_length
        CHECK (schema_hash IS NULL OR octet_length(schema_hash) = 32),
    CONSTRAINT config_revisions_actor_length CHECK (length(actor) BETWEEN 1 AND 200),
    CONSTRAINT config_revisions_request_id_length CHECK (request_id IS NULL OR length(request_id) BETWEEN 1 AND 128)
);

-- Watch and audit read a project's changes in revision order.
CREATE INDEX config_revisions_project_revision_idx ON config_revisions (project_id, revision);
CREATE INDEX config_revisions_project_time_idx ON config_revisions (project_id, created_at);
-- Containment queries over history (content::jsonb @> '{"region": "eu"}').
CREATE INDEX config_revisions_content_gin ON config_revisions USING gin ((content::jsonb) jsonb_path_ops);

-- Append-only. Statement-level triggers fire even when no row matches, so an UPDATE,
-- DELETE or TRUNCATE is refused whatever it targets. Only DROP TABLE (the down migration)
-- removes rows.
CREATE FUNCTION config_revisions_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'config_revisions is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'restrict_violation',
              HINT = 'revisions are the audit log; write a new revision instead';
END;
$$;

CREATE TRIGGER config_revisions_no_update_delete
    BEFORE UPDATE OR DELETE ON config_revisions
    FOR EACH STATEMENT EXECUTE FUNCTION config_revisions_append_only();

CREATE TRIGGER config_revisions_no_truncate
    BEFORE TRUNCATE ON config_revisions
    FOR EACH STATEMENT EXECUTE FUNCTION config_revisions_append_only();
