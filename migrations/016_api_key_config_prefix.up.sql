-- API keys limited to the configs under a key prefix (docs/api.md, "API keys"). NULL, the
-- default and the value of every existing key, reaches the whole project as before. The
-- length rule is the config key's (1 to 256 characters; the API checks the characters).
ALTER TABLE api_keys ADD COLUMN config_prefix text;
ALTER TABLE api_keys ADD CONSTRAINT api_keys_config_prefix
    CHECK (config_prefix IS NULL OR length(config_prefix) BETWEEN 1 AND 256);
