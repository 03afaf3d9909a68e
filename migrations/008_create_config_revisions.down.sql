DROP TABLE config_revisions;
DROP FUNCTION config_revisions_append_only();
DROP TYPE revision_op;
