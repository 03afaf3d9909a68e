DROP TABLE config_schemas;
