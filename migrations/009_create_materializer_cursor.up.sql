-- The materializer's progress: the highest Raft index whose revisions are in
-- config_revisions and configs. It is advanced in the same transaction as the rows it
-- covers, so after any crash a new leader resumes exactly after it. One row only.
CREATE TABLE materializer_cursor (
    id         boolean     PRIMARY KEY DEFAULT true,
    raft_index bigint      NOT NULL DEFAULT 0,
    revision   bigint      NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT materializer_cursor_single_row CHECK (id),
    CONSTRAINT materializer_cursor_non_negative CHECK (raft_index >= 0 AND revision >= 0)
);

INSERT INTO materializer_cursor DEFAULT VALUES;
