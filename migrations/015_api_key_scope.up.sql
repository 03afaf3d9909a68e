-- API key scopes (docs/api.md, "API keys"): 'read' may read, list, see history and watch its
-- project's configs; 'read-write' may also write them (what every key could do before this
-- migration, so existing keys keep their rights through the default).
ALTER TABLE api_keys ADD COLUMN scope text NOT NULL DEFAULT 'read-write';
ALTER TABLE api_keys ADD CONSTRAINT api_keys_scope CHECK (scope IN ('read', 'read-write'));
