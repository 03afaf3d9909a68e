-- Drops the scopes: every key can write again, as before migration 015.
ALTER TABLE api_keys DROP COLUMN scope;
