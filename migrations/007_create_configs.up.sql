-- The current value of every config: the fold of its revisions, written only by the
-- materializer after Raft commits a change. A delete leaves a tombstone row (deleted,
-- content NULL) so the version keeps counting if the key is written again.
CREATE TABLE configs (
    project_id    text        NOT NULL REFERENCES projects (id),
    key           text        NOT NULL,
    version       bigint      NOT NULL,
    content       jsonb,
    deleted       boolean     NOT NULL DEFAULT false,
    -- RESTRICT: a schema in use cannot be deleted (the API answers 409).
    schema_id     uuid        REFERENCES config_schemas (id) ON DELETE RESTRICT,
    schema_hash   bytea,
    last_revision bigint      NOT NULL,
    updated_by    text        NOT NULL,
    updated_at    timestamptz NOT NULL,
    PRIMARY KEY (project_id, key),
    CONSTRAINT configs_key_format CHECK (key ~ '^[A-Za-z0-9_][A-Za-z0-9._:-]{0,255}$'),
    CONSTRAINT configs_version_positive CHECK (version >= 1),
    CONSTRAINT configs_revision_positive CHECK (last_revision >= 1),
    CONSTRAINT configs_tombstone_has_no_content CHECK (deleted = (content IS NULL)),
    CONSTRAINT configs_schema_hash_with_id CHECK ((schema_id IS NULL) = (schema_hash IS NULL)),
    CONSTRAINT configs_schema_hash_length CHECK (schema_hash IS NULL OR octet_length(schema_hash) = 32)
);

-- Containment queries on content (content @> '{"region": "eu"}').
CREATE INDEX configs_content_gin ON configs USING gin (content jsonb_path_ops);
CREATE INDEX configs_schema_idx ON configs (schema_id) WHERE schema_id IS NOT NULL;
