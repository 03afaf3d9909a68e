-- Drops the per-schema choice: every schema's formats assert again, as before migration 017.
ALTER TABLE config_schemas DROP COLUMN format_assertion;
