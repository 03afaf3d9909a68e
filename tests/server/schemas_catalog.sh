# JSON Schema in the server (issue 19; docs/jsonschema.md), on a real node and PostgreSQL:
#  - dialects by $schema: a draft-07 schema with "definitions" and a $ref uploads and judges
#    configs by draft-07's rules (keywords beside $ref ignored); draft-04's "id" and boolean
#    exclusiveMaximum; 2020-12 by default, whose array "items" is refused with a message that
#    names prefixItems;
#  - vendor keywords (x-..., markdownDescription) are ignored, and reported only in strict mode;
#  - format: an annotation by default; "format_assertion": true (at upload or by PUT) makes a
#    bad email a 422 schema_violation at its pointer; migration 017 keeps formats asserting for
#    every schema stored before it;
#  - references between schemas of the catalog, by urn:conclave:schema:<id> and by a stored
#    schema's $id: a config is judged through them; an unknown reference is refused at upload
#    naming it; two schemas with one $id make the reference ambiguous (422); a referenced
#    schema deleted later makes the next write 422 invalid_schema naming schema_id, and
#    nothing is written.
source "$(dirname "$0")/../lib/lib.sh"
source "$(dirname "$0")/../lib/node_lib.sh"
source "$(dirname "$0")/../lib/raft_lib.sh"
make_test_db schemas_catalog

# Migration 017 on a schema stored before it: its formats keep asserting.
"$BIN" migrate up 16 >/dev/null
sql "INSERT INTO users (email, password_hash) VALUES ('old@example.com',
     '\$argon2id\$v=19\$m=65536,t=2,p=1\$c29tZXNhbHQ\$RdescudvJCsgt3ub+b+dWRWJTmaaJObGAAAAAAAAAAA')" >/dev/null
sql "INSERT INTO config_schemas (name, schema_content, schema_hash, created_by_user_id)
     SELECT 'old', '{\"format\": \"email\"}'::jsonb, sha256('{\"format\":\"email\"}'::bytea), id
     FROM users WHERE email = 'old@example.com'" >/dev/null
"$BIN" migrate up >/dev/null
expect_eq "$(sql "SELECT format_assertion FROM config_schemas WHERE name = 'old'")" t "format_assertion of a schema stored before migration 017"

raft_up 3
PW=schemas-catalog-password-1
create_user root@example.com "$PW" --admin >/dev/null
T=$(login root@example.com "$PW" "$L")
api POST /v1/projects '{"id": "sc", "name": "schemas"}' "$T" "$L"
expect_code 201
S=/v1/schemas
C=/v1/projects/sc/configs

# schema NAME CONTENT [EXTRA_FIELDS]: uploads; sets SID.
schema() {
  api POST $S "{\"name\": \"$1\", \"schema_content\": $2${3:+, $3}}" "$T" "$L"
  expect_code 201
  SID=$(json_get id)
}
# write KEY CONTENT SCHEMA_ID: writes the next version of KEY bound to SCHEMA_ID (its current
# version read first; 0 creates it), setting code and body.
write() {
  api GET "$C/$1" "" "$T" "$L"
  local v=0
  [[ $code != 200 ]] || v=$(json_get version)
  api PUT "$C/$1" "{\"content\": $2, \"schema_id\": \"$3\", \"expected_version\": $v}" "$T" "$L"
}

# ---- dialects ---------------------------------------------------------------------------------
schema d7 '{"$schema": "http://json-schema.org/draft-07/schema#", "definitions": {"port": {"type": "integer", "maximum": 65535}}, "properties": {"port": {"$ref": "#/definitions/port", "minimum": 1000}}}'
D7=$SID
write d7.ok '{"port": 80}' "$D7"
expect_code 201 # draft-07: "minimum" beside "$ref" is ignored
write d7.bad '{"port": 70000}' "$D7"
expect_error schema_violation 422
expect_json '.errors[0].path' /port
schema d4 '{"$schema": "http://json-schema.org/draft-04/schema#", "id": "http://example.com/d4", "type": "number", "maximum": 10, "exclusiveMaximum": true}'
write d4.edge 10 "$SID"
expect_error schema_violation 422
write d4.ok 9.5 "$SID"
expect_code 201
api POST $S '{"name": "items", "schema_content": {"items": [{"type": "string"}]}}' "$T" "$L"
expect_error invalid_schema 422
expect_match .message 'prefixItems'

# ---- vendor keywords and strict mode ------------------------------------------------------------
schema vendor '{"type": "object", "x-owner": "team-a", "markdownDescription": "**x**", "properties": {"a": {"type": "string", "x-ui": {"widget": "text"}}}}'
write v.ok '{"a": "s"}' "$SID"
expect_code 201
api POST $S '{"name": "vendor-strict", "strict": true, "schema_content": {"type": "object", "x-owner": "team-a"}}' "$T" "$L"
expect_error invalid_schema 422
expect_match .message 'x-owner'

# ---- format: annotation by default, assertion by choice ---------------------------------------
schema mail '{"properties": {"email": {"type": "string", "format": "email"}}}'
MAIL=$SID
expect_json .format_assertion false
write m.1 '{"email": "not an email"}' "$MAIL"
expect_code 201
api PUT "$S/$MAIL" '{"format_assertion": true}' "$T" "$L"
expect_code 200
expect_json .format_assertion true
write m.2 '{"email": "not an email"}' "$MAIL"
expect_error schema_violation 422
expect_json '.errors[0].path' /email
expect_json '.errors[0].keyword' format
write m.3 '{"email": "ops@example.com"}' "$MAIL"
expect_code 201
schema mail2 '{"format": "date"}' '"format_assertion": true'
write m.4 '"2026-02-30"' "$SID"
expect_error schema_violation 422

# ---- references between schemas of the catalog ----------------------------------------------------
schema port '{"$id": "https://schemas.example.com/port", "type": "integer", "minimum": 1, "maximum": 65535}'
PORT=$SID
schema service '{"type": "object", "properties": {"port": {"$ref": "https://schemas.example.com/port"}, "admin_port": {"$ref": "urn:conclave:schema:'"$PORT"'"}}}'
SVC=$SID
write svc.a '{"port": 8080, "admin_port": 9090}' "$SVC"
expect_code 201
write svc.b '{"port": 70000}' "$SVC"
expect_error schema_violation 422
expect_json '.errors[0].path' /port
write svc.c '{"admin_port": 0}' "$SVC"
expect_error schema_violation 422
expect_json '.errors[0].path' /admin_port
api POST $S '{"name": "dangling", "schema_content": {"$ref": "https://schemas.example.com/nothing"}}' "$T" "$L"
expect_error invalid_schema 422
expect_match .message 'no schema of the catalog has the \$id https://schemas.example.com/nothing'
api POST $S '{"name": "bad-urn", "schema_content": {"$ref": "urn:conclave:schema:00000000-0000-0000-0000-000000000000"}}' "$T" "$L"
expect_error invalid_schema 422
expect_match .message 'the catalog has no schema 00000000-0000-0000-0000-000000000000'
# A second schema with the same $id makes the reference ambiguous.
schema port-copy '{"$id": "https://schemas.example.com/port", "type": "integer"}'
COPY=$SID
api POST $S '{"name": "ambiguous", "schema_content": {"$ref": "https://schemas.example.com/port"}}' "$T" "$L"
expect_error invalid_schema 422
expect_match .message 'several schemas of the catalog have the \$id'
api DELETE "$S/$COPY" "" "$T" "$L"
expect_code 204
# The referenced schema deleted (no config binds it directly): the next write through the
# schema that refers to it is refused, naming schema_id, and nothing is written.
api DELETE "$S/$PORT" "" "$T" "$L"
expect_code 204
before=$(sql "SELECT count(*) FROM config_revisions")
write svc.a '{"port": 8081, "admin_port": 9091}' "$SVC"
expect_error invalid_schema 422 schema_id
expect_match .message 'cannot be used now'
expect_eq "$(sql "SELECT count(*) FROM config_revisions")" "$before" "revisions after the refused write"
test_done schemas_catalog
