-- Role-based access inside a project: viewer reads, editor also writes configs, admin also
-- manages roles, keys and the project. The enum makes an unknown role name impossible.
CREATE TYPE role_level AS ENUM ('admin', 'editor', 'viewer');

CREATE TABLE roles (
    user_id    uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    project_id text        NOT NULL REFERENCES projects (id),
    role_level role_level  NOT NULL,
    granted_by uuid        REFERENCES users (id),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, project_id)
);

-- "Who has access to this project" (the primary key serves "which projects can I see").
CREATE INDEX roles_project_idx ON roles (project_id);
