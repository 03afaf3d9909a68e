DROP TRIGGER roles_notify_auth ON roles;
DROP TRIGGER api_keys_notify_auth ON api_keys;
DROP TRIGGER sessions_notify_auth ON sessions;
DROP TRIGGER projects_notify_auth ON projects;
DROP TRIGGER users_notify_auth ON users;
DROP FUNCTION conclave_notify_auth();
