DROP TABLE roles;
DROP TYPE role_level;
