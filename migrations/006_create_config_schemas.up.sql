-- JSON Schemas that configs can be bound to. schema_hash is the SHA-256 of the schema's
-- canonical JSON; a Raft entry carries it so every revision names exactly the schema text
-- it was validated against, even after the schema is edited.
CREATE TABLE config_schemas (
    id                 uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    name               text        NOT NULL,
    schema_content     jsonb       NOT NULL,
    schema_hash        bytea       NOT NULL,
    created_by_user_id uuid        REFERENCES users (id),
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT config_schemas_name_length CHECK (length(name) BETWEEN 1 AND 200),
    CONSTRAINT config_schemas_content_is_schema
        CHECK (jsonb_typeof(schema_content) IN ('object', 'boolean')),
    CONSTRAINT config_schemas_hash_length CHECK (octet_length(schema_hash) = 32)
);

CREATE INDEX config_schemas_creator_idx ON config_schemas (created_by_user_id);
