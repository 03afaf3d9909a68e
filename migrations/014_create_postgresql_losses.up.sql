-- Revisions the cluster committed (and the state machines already trimmed from their queues)
-- that PostgreSQL lost, for instance by a restore of an older backup or a failover to an
-- asynchronous replica, and that an operator accepted as lost with
-- `conclave admin accept-postgresql-loss` (docs/operations.md). One row per lost range.
--
-- Why a table and not only a moved cursor: the leader's materializer is still the only writer
-- of materializer_cursor; it moves the cursor past a gap only when a row here names exactly
-- the gap it detected (so a mistyped range changes nothing). The row stays as the record of
-- what was accepted, when and by whom, and lets the batch writer accept a config's version
-- jump over the lost range (a key changed inside it). audit verify still reports the
-- missing revisions: their rows are absent, so the hash chain and the version sequence break.
CREATE TABLE postgresql_losses (
    revision_from   bigint      PRIMARY KEY,
    revision_to     bigint      NOT NULL,
    raft_index_from bigint      NOT NULL,
    raft_index_to   bigint      NOT NULL,
    accepted_at     timestamptz NOT NULL DEFAULT now(),
    accepted_by     text        NOT NULL,
    reason          text        NOT NULL DEFAULT '',
    CONSTRAINT postgresql_losses_ranges CHECK (
        revision_from >= 1 AND revision_to >= revision_from AND
        raft_index_from >= 1 AND raft_index_to >= raft_index_from)
);

-- The nodes only read it (the materializer); the owner writes it.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'conclave_node') THEN
        GRANT SELECT ON postgresql_losses TO conclave_node;
    END IF;
END
$$;
