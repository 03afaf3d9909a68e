-- Tenants. The id is a slug chosen by the creator and is never reused: revisions and hash
-- chains are keyed by it, so a deleted project keeps its row (deleted_at) and its history.
CREATE TABLE projects (
    id            text        PRIMARY KEY,
    name          text        NOT NULL,
    owner_user_id uuid        NOT NULL REFERENCES users (id),
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    deleted_at    timestamptz,
    CONSTRAINT projects_id_slug CHECK (id ~ '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$'),
    CONSTRAINT projects_name_length CHECK (length(name) BETWEEN 1 AND 200)
);

CREATE INDEX projects_owner_idx ON projects (owner_user_id) WHERE deleted_at IS NULL;
