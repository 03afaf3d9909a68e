-- Drops the key prefixes: every key reaches its whole project again, as before migration 016.
ALTER TABLE api_keys DROP COLUMN config_prefix;
