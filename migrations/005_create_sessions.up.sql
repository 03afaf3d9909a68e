-- Login sessions. The token (256 random bits) is returned to the client once; the table
-- holds only its HMAC-SHA256 under the node secret, so a database dump yields no usable
-- token.
CREATE TABLE sessions (
    token_hash bytea       PRIMARY KEY,
    user_id    uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    revoked_at timestamptz,
    CONSTRAINT sessions_hash_length CHECK (octet_length(token_hash) = 32),
    CONSTRAINT sessions_expiry_after_creation CHECK (expires_at > created_at)
);

CREATE INDEX sessions_user_idx ON sessions (user_id);
-- Lets a sweeper delete expired sessions without a full scan.
CREATE INDEX sessions_expires_idx ON sessions (expires_at);
