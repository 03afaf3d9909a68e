-- Deleting a schema keeps its row (deleted_at), as deleting a project does. Why: a revision
-- validated against a schema can still wait in the raft queue when the schema is deleted;
-- configs.schema_id references config_schemas, so a hard DELETE left the materializer unable
-- to write that committed revision, for good (issue 14). With the row kept the revision is
-- written as committed; the API treats a deleted schema as missing (404 to read it, 400 to
-- bind a config to it) and refuses to delete one still bound in configs (409).
ALTER TABLE config_schemas ADD COLUMN deleted_at timestamptz;
