-- Whether a schema's "format" keywords assert (docs/jsonschema.md, "format"). The JSON Schema
-- specification makes format an annotation, and so does a new upload unless it asks for
-- assertion; every schema stored before this migration was validated with asserting formats,
-- so each keeps that behaviour: its configs are judged as they always were.
ALTER TABLE config_schemas ADD COLUMN format_assertion boolean NOT NULL DEFAULT false;
UPDATE config_schemas SET format_assertion = true;
