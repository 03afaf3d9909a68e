-- Nodes cache sessions, API keys and roles. Every change that can take access away (or
-- grant it to someone whose absence of access was cached) is announced on the channel
-- conclave_auth, with the table name as payload; NOTIFY is delivered at commit, so a node
-- never drops its cache before the change is visible. New sessions and keys need no
-- announcement: nothing about them can be cached yet.
CREATE FUNCTION conclave_notify_auth() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('conclave_auth', TG_TABLE_NAME);
    RETURN NULL;
END;
$$;

CREATE TRIGGER users_notify_auth AFTER UPDATE OR DELETE ON users
    FOR EACH STATEMENT EXECUTE FUNCTION conclave_notify_auth();
CREATE TRIGGER projects_notify_auth AFTER UPDATE OR DELETE ON projects
    FOR EACH STATEMENT EXECUTE FUNCTION conclave_notify_auth();
CREATE TRIGGER sessions_notify_auth AFTER UPDATE OR DELETE ON sessions
    FOR EACH STATEMENT EXECUTE FUNCTION conclave_notify_auth();
CREATE TRIGGER api_keys_notify_auth AFTER UPDATE OR DELETE ON api_keys
    FOR EACH STATEMENT EXECUTE FUNCTION conclave_notify_auth();
CREATE TRIGGER roles_notify_auth AFTER INSERT OR UPDATE OR DELETE ON roles
    FOR EACH STATEMENT EXECUTE FUNCTION conclave_notify_auth();
