-- A retry whose request id the state machine no longer remembers (it keeps a bounded number
-- per project) is answered from the revision its first attempt wrote: the leader looks up
-- (project_id, request_id) before proposing (storage/db_configs.c, db_configs_request()).
-- Not unique: rows written before this lookup existed may hold one request id twice (a retry
-- after the id was forgotten wrote again); the lookup takes the first.
CREATE INDEX config_revisions_project_request_idx ON config_revisions (project_id, request_id)
    WHERE request_id IS NOT NULL;
