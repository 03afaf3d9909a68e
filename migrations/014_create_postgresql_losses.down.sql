-- Drops the record of accepted losses. The cursor stays past them, so the materializer keeps
-- writing; only the batch writer's allowance for a version jump over a lost range goes.
DROP TABLE postgresql_losses;
