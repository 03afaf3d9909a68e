-- Project API keys. The key itself is shown once and never stored: only its
-- HMAC-SHA256 under the node secret (32 bytes) and a short public prefix used to find the
-- row before the constant-time comparison. Revoked keys stay for the audit trail.
CREATE TABLE api_keys (
    id            uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    project_id    text        NOT NULL REFERENCES projects (id),
    prefix        text        NOT NULL,
    key_hash      bytea       NOT NULL,
    name          text        NOT NULL DEFAULT '',
    created_by    uuid        REFERENCES users (id),
    created_at    timestamptz NOT NULL DEFAULT now(),
    revoked_at    timestamptz,
    CONSTRAINT api_keys_prefix_key UNIQUE (prefix),
    CONSTRAINT api_keys_prefix_format CHECK (prefix ~ '^[A-Za-z0-9_]{8,32}$'),
    CONSTRAINT api_keys_hash_length CHECK (octet_length(key_hash) = 32),
    CONSTRAINT api_keys_name_length CHECK (length(name) <= 200),
    CONSTRAINT api_keys_revoked_after_created CHECK (revoked_at IS NULL OR revoked_at >= created_at)
);

CREATE INDEX api_keys_project_idx ON api_keys (project_id);
