-- Brings every soft-deleted schema back as a live one: removing those rows instead could
-- break configs that reference them.
ALTER TABLE config_schemas DROP COLUMN deleted_at;
