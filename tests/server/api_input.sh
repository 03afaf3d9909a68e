# Bad input for every endpoint of docs/api.md that takes a body, a path id or a query
# parameter: the exact status, the error code, and (for 400) a "field" that names the field
# at fault and a message that names it too. Also the limits (413, 431), 405 with Allow,
# X-Request-Id, and the boundaries that must still be accepted.
source "$(dirname "$0")/../lib/lib.sh"
source "$(dirname "$0")/../lib/node_lib.sh"
make_test_db api_input
run "$BIN" migrate up
expect_status 0

PW=input-test-password
create_user root@example.com "$PW" --admin >/dev/null
start_node 1
T_ROOT=$(login root@example.com "$PW")
api POST /v1/users "{\"email\": \"alice@example.com\", \"password\": \"$PW\"}" "$T_ROOT"
expect_code 201
ALICE_ID=$(json_get id)
api POST /v1/users "{\"email\": \"bob@example.com\", \"password\": \"$PW\"}" "$T_ROOT"
expect_code 201
BOB_ID=$(json_get id)
T_ALICE=$(login alice@example.com "$PW")
api POST /v1/projects '{"id": "p-one", "name": "one"}' "$T_ALICE"
expect_code 201
api POST /v1/schemas '{"name": "s", "schema_content": {"type": "object"}}' "$T_ALICE"
expect_code 201
S_ID=$(json_get id)
api POST /v1/projects/p-one/api-keys '{"name": "k"}' "$T_ALICE"
expect_code 201
KEY_ID=$(json_get id)

# check STATUS ERROR FIELD METHOD PATH [BODY] [TOKEN]: FIELD "-" when the error names no
# single field (malformed JSON, a body that is not an object).
n_checks=0
check() {
  local st=$1 err=$2 field=$3
  shift 3
  [[ $field != - ]] || field=
  api "$@"
  n_checks=$((n_checks + 1))
  soft expect_error "$err" "$st" "$field"
}

# accept STATUS METHOD PATH [BODY] [TOKEN]: a boundary value that must be accepted.
accept() {
  local st=$1
  shift
  api "$@"
  n_checks=$((n_checks + 1))
  soft expect_code "$st"
}

BAD_UUIDS=(not-a-uuid 12345 "$(cat /proc/sys/kernel/random/uuid)0"
  zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz "%27%3B--")
BAD_LIMITS=(0 abc 5000 1001 -1 "" 1.5 "10%20")
long() { # long N [CHAR]: CHAR (default a) repeated N times
  head -c "$1" /dev/zero | tr '\0' "${2:-a}"
}

# --- POST /v1/auth/login ------------------------------------------------------------------
L=/v1/auth/login
check 400 bad_request - POST $L '{"email": "alice@example.com", "password": '
check 400 bad_request - POST $L '{"email": "alice@example.com" "password": "x"}'
check 400 bad_request - POST $L "[{\"email\": \"alice@example.com\", \"password\": \"$PW\"}]"
check 400 bad_request - POST $L '[]'
check 400 bad_request - POST $L '"alice@example.com"'
check 400 bad_request - POST $L 'null'
check 400 bad_request - POST $L ''
check 400 bad_request email POST $L "{\"email\": 5, \"password\": \"$PW\"}"
check 400 bad_request email POST $L "{\"email\": [\"alice@example.com\"], \"password\": \"$PW\"}"
check 400 bad_request email POST $L "{\"password\": \"$PW\"}"
check 400 bad_request password POST $L '{"email": "alice@example.com"}'
check 400 bad_request password POST $L '{"email": "alice@example.com", "password": null}'
check 400 bad_request password POST $L '{"email": "alice@example.com", "password": 1234567890}'
accept 200 POST $L "{\"email\": \"alice@example.com\", \"password\": \"$PW\"}"

# --- POST /v1/users -----------------------------------------------------------------------
U=/v1/users
check 400 bad_request - POST $U '{"email": "x@example.com", ' "$T_ROOT"
check 400 bad_request - POST $U '[]' "$T_ROOT"
check 400 bad_request - POST $U "[{\"email\": \"x@example.com\", \"password\": \"$PW\"}]" "$T_ROOT"
check 400 bad_request - POST $U '' "$T_ROOT"
check 400 bad_request email POST $U "{\"email\": 5, \"password\": \"$PW\"}" "$T_ROOT"
check 400 bad_request email POST $U "{\"email\": null, \"password\": \"$PW\"}" "$T_ROOT"
check 400 bad_request email POST $U "{\"email\": {}, \"password\": \"$PW\"}" "$T_ROOT"
check 400 bad_request email POST $U "{\"password\": \"$PW\"}" "$T_ROOT"
check 400 bad_request email POST $U "{\"email\": \"x.example.com\", \"password\": \"$PW\"}" "$T_ROOT"
check 400 bad_request email POST $U "{\"email\": \"\", \"password\": \"$PW\"}" "$T_ROOT"
check 400 bad_request email POST $U "{\"email\": \"$(long 250)@x.com\", \"password\": \"$PW\"}" "$T_ROOT"
check 400 bad_request password POST $U '{"email": "x@example.com"}' "$T_ROOT"
check 400 bad_request password POST $U '{"email": "x@example.com", "password": 1234567890}' "$T_ROOT"
check 400 bad_request password POST $U '{"email": "x@example.com", "password": true}' "$T_ROOT"
check 400 bad_request password POST $U '{"email": "x@example.com", "password": "123456789"}' "$T_ROOT"
check 400 bad_request password POST $U '{"email": "x@example.com", "password": ""}' "$T_ROOT"
check 400 bad_request password POST $U "{\"email\": \"x@example.com\", \"password\": \"$(long 1025)\"}" "$T_ROOT"
check 400 bad_request is_admin POST $U "{\"email\": \"x@example.com\", \"password\": \"$PW\", \"is_admin\": \"yes\"}" "$T_ROOT"
check 400 bad_request is_admin POST $U "{\"email\": \"x@example.com\", \"password\": \"$PW\", \"is_admin\": 1}" "$T_ROOT"
check 400 bad_request is_admin POST $U "{\"email\": \"x@example.com\", \"password\": \"$PW\", \"is_admin\": null}" "$T_ROOT"
# None of the refused bodies made a user.
soft expect_eq "$(sql "SELECT count(*) FROM users WHERE email LIKE 'x%'")" 0 "users made by refused bodies"
# Boundaries: a 10- and a 1024-character password are fine.
accept 201 POST $U '{"email": "ten@example.com", "password": "1234567890"}' "$T_ROOT"
accept 201 POST $U "{\"email\": \"long@example.com\", \"password\": \"$(long 1024)\"}" "$T_ROOT"
accept 200 POST /v1/auth/login "{\"email\": \"long@example.com\", \"password\": \"$(long 1024)\"}"
# Duplicates: the same address, in any case, is taken while its user lives.
check 409 conflict - POST $U "{\"email\": \"alice@example.com\", \"password\": \"$PW\"}" "$T_ROOT"
check 409 conflict - POST $U "{\"email\": \"ALICE@Example.com\", \"password\": \"$PW\"}" "$T_ROOT"
accept 201 POST $U "{\"email\": \"gone@example.com\", \"password\": \"$PW\"}" "$T_ROOT"
GONE_ID=$(json_get id)
accept 204 DELETE "$U/$GONE_ID" "" "$T_ROOT"
accept 201 POST $U "{\"email\": \"gone@example.com\", \"password\": \"$PW\"}" "$T_ROOT"

# --- GET/DELETE /v1/users/{id}, lists -------------------------------------------------------
for id in "${BAD_UUIDS[@]}"; do
  check 400 bad_request "id|user" GET "$U/$id" "" "$T_ROOT"
  check 400 bad_request "id|user" DELETE "$U/$id" "" "$T_ROOT"
done
check 404 not_found - GET "$U/$(cat /proc/sys/kernel/random/uuid)" "" "$T_ROOT"
check 404 not_found - DELETE "$U/$(cat /proc/sys/kernel/random/uuid)" "" "$T_ROOT"

# list_checks PATH TOKEN: the pagination parameters of one list endpoint.
list_checks() {
  local lim
  for lim in "${BAD_LIMITS[@]}"; do
    check 400 bad_request limit GET "$1?limit=$lim" "" "$2"
  done
  check 400 bad_request after GET "$1?after=%21%21%21" "" "$2"
  accept 200 GET "$1?limit=1" "" "$2"
  soft expect_json '.items | length' 1
  accept 200 GET "$1?limit=1000" "" "$2"
  soft expect_json '.next_after' null
  accept 200 GET "$1" "" "$2"
  soft expect_json '(.items | type) + " " + (.next_after | type)' "array null"
}
list_checks /v1/users "$T_ROOT"
list_checks /v1/projects "$T_ALICE"
list_checks /v1/projects/p-one/api-keys "$T_ALICE"
list_checks /v1/projects/p-one/roles "$T_ALICE"
list_checks /v1/schemas "$T_ALICE"

# --- POST /v1/projects --------------------------------------------------------------------
P=/v1/projects
check 400 bad_request - POST $P '{"id": "p-x", "name": "x"' "$T_ALICE"
check 400 bad_request - POST $P '[]' "$T_ALICE"
check 400 bad_request - POST $P '[{"id": "p-x", "name": "x"}]' "$T_ALICE"
check 400 bad_request - POST $P '' "$T_ALICE"
check 400 bad_request id POST $P '{"id": 5, "name": "x"}' "$T_ALICE"
check 400 bad_request id POST $P '{"id": null, "name": "x"}' "$T_ALICE"
check 400 bad_request id POST $P '{"name": "x"}' "$T_ALICE"
check 400 bad_request name POST $P '{"id": "p-x", "name": 5}' "$T_ALICE"
check 400 bad_request name POST $P '{"id": "p-x", "name": ["x"]}' "$T_ALICE"
check 400 bad_request name POST $P '{"id": "p-x"}' "$T_ALICE"
# The name column holds 1 to 200 characters.
check 400 bad_request name POST $P '{"id": "p-x", "name": ""}' "$T_ALICE"
check 400 bad_request name POST $P "{\"id\": \"p-x\", \"name\": \"$(long 201)\"}" "$T_ALICE"
for slug in P-Upper pUpper -lead trail- a_b "" "$(long 64)" "a b" p.one "p/one" "é" "a--b-" "-"; do
  check 400 bad_request id POST $P "{\"id\": \"$slug\", \"name\": \"x\"}" "$T_ALICE"
done
soft expect_eq "$(sql "SELECT count(*) FROM projects WHERE id <> 'p-one'")" 0 "projects made by refused bodies"
for slug in a 0 "$(long 63)" a-b-1 a--b 9-lives; do
  accept 201 POST $P "{\"id\": \"$slug\", \"name\": \"ok\"}" "$T_ALICE"
done
accept 201 POST $P "{\"id\": \"p-name200\", \"name\": \"$(long 200)\"}" "$T_ALICE"
check 409 conflict - POST $P '{"id": "p-one", "name": "again"}' "$T_ALICE"
check 409 conflict - POST $P '{"id": "p-one", "name": "again"}' "$T_ROOT"
accept 201 POST $P '{"id": "p-gone", "name": "gone"}' "$T_ALICE"
accept 204 DELETE $P/p-gone "" "$T_ALICE"
check 409 conflict - POST $P '{"id": "p-gone", "name": "reused"}' "$T_ALICE"
check 409 conflict - POST $P '{"id": "p-gone", "name": "reused"}' "$T_ROOT"

# Invalid project ids in paths.
PID="id|project"
for slug in P-ONE -abc abc- a_b "$(long 64)" "p%20one"; do
  check 400 bad_request "$PID" GET "$P/$slug" "" "$T_ALICE"
  check 400 bad_request "$PID" DELETE "$P/$slug" "" "$T_ALICE"
  check 400 bad_request "$PID" GET "$P/$slug/api-keys" "" "$T_ALICE"
  check 400 bad_request "$PID" POST "$P/$slug/api-keys" '{"name": "k"}' "$T_ALICE"
  check 400 bad_request "$PID" GET "$P/$slug/roles" "" "$T_ALICE"
  check 400 bad_request "$PID" POST "$P/$slug/roles" "{\"user_id\": \"$BOB_ID\", \"role_level\": \"viewer\"}" "$T_ALICE"
done

# --- API keys -----------------------------------------------------------------------------
K=/v1/projects/p-one/api-keys
check 400 bad_request - POST $K '{"name": ' "$T_ALICE"
check 400 bad_request - POST $K '[]' "$T_ALICE"
check 400 bad_request - POST $K '"k"' "$T_ALICE"
check 400 bad_request name POST $K '{"name": 5}' "$T_ALICE"
check 400 bad_request name POST $K '{"name": ["k"]}' "$T_ALICE"
check 400 bad_request name POST $K "{\"name\": \"$(long 201)\"}" "$T_ALICE"
accept 201 POST $K "{\"name\": \"$(long 200)\"}" "$T_ALICE"
accept 201 POST $K '{}' "$T_ALICE"
accept 201 POST $K '{"name": ""}' "$T_ALICE"
for id in "${BAD_UUIDS[@]}"; do
  check 400 bad_request "key_id|key" DELETE "$K/$id" "" "$T_ALICE"
done
check 404 not_found - DELETE "$K/$(cat /proc/sys/kernel/random/uuid)" "" "$T_ALICE"

# --- roles --------------------------------------------------------------------------------
R=/v1/projects/p-one/roles
check 400 bad_request - POST $R "{\"user_id\": \"$BOB_ID\", " "$T_ALICE"
check 400 bad_request - POST $R '[]' "$T_ALICE"
check 400 bad_request - POST $R "[{\"user_id\": \"$BOB_ID\", \"role_level\": \"viewer\"}]" "$T_ALICE"
check 400 bad_request - POST $R '' "$T_ALICE"
check 400 bad_request user_id POST $R '{"user_id": 5, "role_level": "viewer"}' "$T_ALICE"
check 400 bad_request user_id POST $R '{"user_id": null, "role_level": "viewer"}' "$T_ALICE"
check 400 bad_request user_id POST $R '{"role_level": "viewer"}' "$T_ALICE"
for id in "${BAD_UUIDS[@]}"; do
  check 400 bad_request user_id POST $R "{\"user_id\": \"$id\", \"role_level\": \"viewer\"}" "$T_ALICE"
done
for level in owner Admin VIEWER "" " viewer" superuser; do
  check 400 bad_request role_level POST $R "{\"user_id\": \"$BOB_ID\", \"role_level\": \"$level\"}" "$T_ALICE"
done
check 400 bad_request role_level POST $R "{\"user_id\": \"$BOB_ID\", \"role_level\": 1}" "$T_ALICE"
check 400 bad_request role_level POST $R "{\"user_id\": \"$BOB_ID\", \"role_level\": null}" "$T_ALICE"
check 400 bad_request role_level POST $R "{\"user_id\": \"$BOB_ID\", \"role_level\": [\"viewer\"]}" "$T_ALICE"
check 400 bad_request role_level POST $R "{\"user_id\": \"$BOB_ID\"}" "$T_ALICE"
soft expect_eq "$(sql "SELECT count(*) FROM roles WHERE user_id = '$BOB_ID'")" 0 "roles made by refused bodies"
check 404 not_found - POST $R "{\"user_id\": \"$(cat /proc/sys/kernel/random/uuid)\", \"role_level\": \"viewer\"}" "$T_ALICE"
for id in "${BAD_UUIDS[@]}"; do
  check 400 bad_request "user_id|user" DELETE "$R/$id" "" "$T_ALICE"
done
check 404 not_found - DELETE "$R/$BOB_ID" "" "$T_ALICE"
check 409 conflict - POST $R "{\"user_id\": \"$ALICE_ID\", \"role_level\": \"editor\"}" "$T_ALICE"
check 409 conflict - DELETE "$R/$ALICE_ID" "" "$T_ALICE"
for level in admin editor viewer; do
  accept 200 POST $R "{\"user_id\": \"$BOB_ID\", \"role_level\": \"$level\"}" "$T_ALICE"
  soft expect_json .role_level "$level"
done

# --- schemas ------------------------------------------------------------------------------
S=/v1/schemas
check 400 bad_request - POST $S '{"name": "s", "schema_content": {' "$T_ALICE"
check 400 bad_request - POST $S '[]' "$T_ALICE"
check 400 bad_request - POST $S '[{"name": "s", "schema_content": true}]' "$T_ALICE"
check 400 bad_request - POST $S '' "$T_ALICE"
check 400 bad_request name POST $S '{"name": 5, "schema_content": true}' "$T_ALICE"
check 400 bad_request name POST $S '{"name": null, "schema_content": true}' "$T_ALICE"
check 400 bad_request name POST $S '{"schema_content": true}' "$T_ALICE"
check 400 bad_request name POST $S '{"name": "", "schema_content": true}' "$T_ALICE"
check 400 bad_request name POST $S "{\"name\": \"$(long 201)\", \"schema_content\": true}" "$T_ALICE"
check 400 bad_request schema_content POST $S '{"name": "s"}' "$T_ALICE"
check 400 bad_request schema_content POST $S '{"name": "s", "schema_content": null}' "$T_ALICE"
check 400 bad_request schema_content POST $S '{"name": "s", "schema_content": 5}' "$T_ALICE"
check 400 bad_request schema_content POST $S '{"name": "s", "schema_content": [{"type": "object"}]}' "$T_ALICE"
check 400 bad_request schema_content POST $S '{"name": "s", "schema_content": "not json"}' "$T_ALICE"
check 400 bad_request schema_content POST $S '{"name": "s", "schema_content": "5"}' "$T_ALICE"
check 400 bad_request schema_content POST $S '{"name": "s", "schema_content": "[1]"}' "$T_ALICE"
check 400 bad_request schema_content POST $S '{"name": "s", "schema_content": "{\"type\": "}' "$T_ALICE"
# Schemas that do not compile: 422 with the JSON Pointer of the fault.
check_schema() { # POINTER CONTENT
  api POST $S "{\"name\": \"bad\", \"schema_content\": $2}" "$T_ALICE"
  n_checks=$((n_checks + 1))
  soft expect_error invalid_schema 422
  [[ $(jq -r .message <<<"$body" 2>/dev/null) == *"$1"* ]] ||
    soft fail "$last_req: the message should hold the JSON Pointer $1: ${body:0:300}"
}
check_schema /type '{"type": 5}'
check_schema /type '{"type": "strng"}'
check_schema /properties/a/minimum '{"type": "object", "properties": {"a": {"minimum": "x"}}}'
check_schema /properties/a/pattern '{"properties": {"a": {"pattern": "(unclosed"}}}'
check_schema /items/required '{"items": {"required": "a"}}'
check_schema /type '"{\"type\": 5}"'
# An unknown keyword is ignored as the specification says, unless the upload asks for strict
# mode, which reports it where it is.
check_schema_strict() { # POINTER CONTENT
  api POST $S "{\"name\": \"bad\", \"strict\": true, \"schema_content\": $2}" "$T_ALICE"
  n_checks=$((n_checks + 1))
  soft expect_error invalid_schema 422
  [[ $(jq -r .message <<<"$body" 2>/dev/null) == *"$1"* ]] ||
    soft fail "$last_req: the message should hold the JSON Pointer $1: ${body:0:300}"
}
check_schema_strict /properties/a/typo_keyword '{"properties": {"a": {"typo_keyword": 1}}}'
check_schema_strict /format '{"type": "string", "format": "no-such-format"}'
check 400 bad_request strict POST $S '{"name": "s", "strict": "yes", "schema_content": {}}' "$T_ALICE"
check 400 bad_request format_assertion POST $S '{"name": "s", "format_assertion": 1, "schema_content": {}}' "$T_ALICE"
soft expect_eq "$(sql "SELECT count(*) FROM config_schemas WHERE name <> 's'")" 0 "schemas made by refused bodies"
accept 201 POST $S '{"name": "lenient", "schema_content": {"properties": {"a": {"typo_keyword": 1}}}}' "$T_ALICE"
soft expect_json .format_assertion false
api DELETE "$S/$(json_get id)" "" "$T_ALICE"
# Accepted forms: an object, a boolean, and either as a string holding the JSON.
sha() { printf '%s' "$1" | sha256sum | cut -c1-64; }
accept 201 POST $S '{"name": "obj", "schema_content": {"type": "object"}}' "$T_ALICE"
soft expect_json .schema_hash "$(sha '{"type":"object"}')"
accept 201 POST $S '{"name": "str", "schema_content": "{\"type\": \"object\"}"}' "$T_ALICE"
soft expect_json '.schema_content == {"type": "object"}' true
soft expect_json .schema_hash "$(sha '{"type":"object"}')"
STR_ID=$(json_get id)
accept 200 GET "$S/$STR_ID" "" "$T_ALICE"
soft expect_json '.schema_content == {"type": "object"}' true
accept 201 POST $S '{"name": "bool", "schema_content": true}' "$T_ALICE"
soft expect_json .schema_hash "$(sha true)"
accept 201 POST $S '{"name": "boolstr", "schema_content": "false"}' "$T_ALICE"
soft expect_json .schema_content false
soft expect_json .schema_hash "$(sha false)"
accept 201 POST $S "{\"name\": \"$(long 200)\", \"schema_content\": {}}" "$T_ALICE"
accept 201 POST $S '{"name": "order", "schema_content": {"required": ["b"], "type": "object", "properties": {"b": {"type": "integer", "minimum": 1.5}}}}' "$T_ALICE"
soft expect_json .schema_hash "$(sha '{"properties":{"b":{"minimum":1.5,"type":"integer"}},"required":["b"],"type":"object"}')"

# PUT /v1/schemas/{id}
check 400 bad_request - PUT "$S/$S_ID" '{"name": ' "$T_ALICE"
check 400 bad_request - PUT "$S/$S_ID" '[]' "$T_ALICE"
check 400 bad_request - PUT "$S/$S_ID" '' "$T_ALICE"
check 400 bad_request - PUT "$S/$S_ID" '{}' "$T_ALICE"
check 400 bad_request name PUT "$S/$S_ID" '{"name": 5}' "$T_ALICE"
check 400 bad_request name PUT "$S/$S_ID" '{"name": ""}' "$T_ALICE"
check 400 bad_request name PUT "$S/$S_ID" "{\"name\": \"$(long 201)\"}" "$T_ALICE"
check 400 bad_request schema_content PUT "$S/$S_ID" '{"schema_content": 5}' "$T_ALICE"
check 400 bad_request schema_content PUT "$S/$S_ID" '{"schema_content": null}' "$T_ALICE"
check 400 bad_request schema_content PUT "$S/$S_ID" '{"schema_content": "nope"}' "$T_ALICE"
api PUT "$S/$S_ID" '{"schema_content": {"type": 5}}' "$T_ALICE"
soft expect_error invalid_schema 422
[[ $(jq -r .message <<<"$body" 2>/dev/null) == *"/type"* ]] ||
  soft fail "$last_req: the message should hold the JSON Pointer /type: ${body:0:300}"
accept 200 GET "$S/$S_ID" "" "$T_ALICE"
soft expect_json '[.name, (.schema_content | tojson)] | join(" ")' 's {"type":"object"}'
for id in "${BAD_UUIDS[@]}"; do
  check 400 bad_request "id|schema" GET "$S/$id" "" "$T_ALICE"
  check 400 bad_request "id|schema" PUT "$S/$id" '{"name": "x"}' "$T_ALICE"
  check 400 bad_request "id|schema" DELETE "$S/$id" "" "$T_ALICE"
done
U404=$(cat /proc/sys/kernel/random/uuid)
check 404 not_found - GET "$S/$U404" "" "$T_ALICE"
check 404 not_found - PUT "$S/$U404" '{"name": "x"}' "$T_ALICE"
check 404 not_found - DELETE "$S/$U404" "" "$T_ALICE"
accept 200 PUT "$S/$S_ID" '{"name": "renamed"}' "$T_ALICE"
soft expect_json .name renamed
soft expect_json .schema_hash "$(sha '{"type":"object"}')"
accept 200 PUT "$S/$S_ID" '{"schema_content": "{\"type\": \"string\"}"}' "$T_ALICE"
soft expect_json .name renamed
soft expect_json .schema_hash "$(sha '{"type":"string"}')"

# A schema still bound to a config cannot be deleted. The config endpoints do not exist yet,
# so the config row is written directly.
sql "INSERT INTO configs (project_id, key, version, content, schema_id, schema_hash,
       last_revision, updated_by, updated_at)
     SELECT 'p-one', 'bound', 1, '{}', id, schema_hash, 1, 'test', now()
     FROM config_schemas WHERE id = '$S_ID'" >/dev/null
check 409 conflict - DELETE "$S/$S_ID" "" "$T_ALICE"
check 409 conflict - DELETE "$S/$S_ID" "" "$T_ROOT"
accept 200 GET "$S/$S_ID" "" "$T_ALICE"
sql "DELETE FROM configs WHERE key = 'bound'" >/dev/null
accept 204 DELETE "$S/$S_ID" "" "$T_ALICE"
check 404 not_found - GET "$S/$S_ID" "" "$T_ALICE"

# --- limits and protocol --------------------------------------------------------------------
# A body over 1 MiB: 413, before any handler looks at it (with or without a token).
{
  printf '{"name": "big", "schema_content": {"description": "'
  long 1100000 x
  printf '"}}'
} >"$TMP/big.json"
check 413 payload_too_large - POST $S "@$TMP/big.json" "$T_ALICE"
check 413 payload_too_large - POST /v1/auth/login "@$TMP/big.json"
check 413 payload_too_large - POST $U "@$TMP/big.json" "$T_ROOT"
{
  printf '{"name": "big", "schema_content": {"description": "'
  long $((1048576 - 60)) x
  printf '"}}'
} >"$TMP/under.json"
api POST /v1/auth/login "@$TMP/under.json"
n_checks=$((n_checks + 1))
[[ $code != 413 && $code != 000 ]] ||
  soft fail "a body of $(stat -c %s "$TMP/under.json") bytes (under 1 MiB) should not be refused as too large, got $code"
api GET /v1/users/me "" "$T_ALICE"
soft expect_code 200

# Request line and headers over 8 KiB: 431.
API_HEADERS=("X-Padding: $(long 9000)")
check 431 headers_too_large - GET /v1/users/me "" "$T_ALICE"
API_HEADERS=()

# 405 with Allow; 404 for paths that do not exist.
check_405() { # METHOD PATH ALLOWED...
  local m=$1 p=$2 a
  shift 2
  check 405 method_not_allowed - "$m" "$p" "" "$T_ALICE"
  for a in "$@"; do
    [[ $(header_value Allow) =~ (^|[ ,])$a($|[ ,]) ]] ||
      soft fail "$last_req: Allow should list $a, got <$(header_value Allow)>"
  done
}
check_405 PUT /v1/projects/p-one GET DELETE
check_405 PATCH /v1/projects/p-one GET DELETE
check_405 DELETE /v1/auth/login POST
check_405 GET /v1/auth/logout POST
check_405 PATCH /v1/users/me GET
check_405 PUT /v1/users GET POST
check_405 PUT /v1/projects/p-one/roles GET POST
check_405 POST "/v1/schemas/$STR_ID" GET PUT DELETE
for p in /v1/nothing /v2/users /v1/projects/p-one/nothing /v1/users/me/x /; do
  check 404 not_found - GET "$p" "" "$T_ALICE"
done

# X-Request-Id: a sane one is echoed, an insane one replaced.
API_HEADERS=("X-Request-Id: test.rid-42:a+b/c=d_e")
api GET /v1/users/me "" "$T_ALICE"
soft expect_header X-Request-Id '^test\.rid-42:a\+b/c=d_e$'
# An id the server does not take is replaced by one of its own (docs/http.md:
# <8 hex digits>-<counter>), never truncated or passed on in part.
GEN_RID_RE='^[0-9a-f]{8}-[0-9]+$'
API_HEADERS=("X-Request-Id: $(long 64 r)")
api GET /v1/users/me "" "$T_ALICE"
soft expect_header X-Request-Id "^$(long 64 r)\$"
API_HEADERS=("X-Request-Id: $(long 65 r)")
api GET /v1/users/me "" "$T_ALICE"
soft expect_header X-Request-Id "$GEN_RID_RE"
API_HEADERS=("X-Request-Id: bad id{}")
api GET /v1/users/me "" "$T_ALICE"
soft expect_header X-Request-Id "$GEN_RID_RE"
API_HEADERS=("X-Request-Id: ")
api GET /v1/users/me "" "$T_ALICE"
soft expect_header X-Request-Id "$GEN_RID_RE"
API_HEADERS=()
api GET /v1/nothing "" "$T_ALICE"
soft expect_header X-Request-Id "$GEN_RID_RE"

echo "$n_checks input checks run"
finish "api input"
