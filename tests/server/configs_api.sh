# The configs API of docs/api.md ("Configs", "Errors", request ids), black-box, on a cluster of
# three real `conclave serve` processes: every status code of the config endpoints and their
# bad input; schema binding (422 with JSON Pointer paths); tombstones and re-creation;
# rollback; history and revisions; list pagination; watch (long poll); audit verification,
# also of a tampered revision row; request-id deduplication (checked in PostgreSQL); writes
# through followers and the forwarding loop guard.
#
# Assertions are soft (`soft ...`, then `finish`) wherever the next steps do not depend on
# them, so one run lists every difference from the contract.
source "$(dirname "$0")/../lib/lib.sh"
source "$(dirname "$0")/../lib/node_lib.sh"
source "$(dirname "$0")/../lib/raft_lib.sh"
make_test_db configs_api
"$BIN" migrate up >/dev/null

T_START=$(date +%s)
PW=configs-api-password-1

raft_ports 3
for i in 1 2 3; do
  raft_config "$i" "1 2 3"
  raft_start "$i"
done
L=$(wait_leader 20) || fail "no leader agreed by all three nodes within 20 s"
F1=$(((L % 3) + 1))
F2=$((((L + 1) % 3) + 1))
echo "leader: node $L, followers: $F1 $F2"

# --- the cast -----------------------------------------------------------------------------
create_user root@example.com "$PW" --admin >/dev/null
T_ROOT=$(login root@example.com "$PW" "$L")
new_user() {
  api POST /v1/users "{\"email\": \"$1\", \"password\": \"$PW\"}" "$T_ROOT" "$L"
  expect_code 201
  expect_match .id "$UUID_RE" # the ids are expected values below
  json_get id
}
ALICE_ID=$(new_user alice@example.com) # admin of cfg and cfg-two
BOB_ID=$(new_user bob@example.com)     # viewer of cfg
CAROL_ID=$(new_user carol@example.com) # editor of cfg
new_user dave@example.com >/dev/null   # another tenant: admin of other
T_ALICE=$(login alice@example.com "$PW" "$L")
T_BOB=$(login bob@example.com "$PW" "$L")
T_CAROL=$(login carol@example.com "$PW" "$L")
T_DAVE=$(login dave@example.com "$PW" "$L")
: "$ALICE_ID"

new_project() { # TOKEN ID: prints the project's first API key
  api POST /v1/projects "{\"id\": \"$2\", \"name\": \"project $2\"}" "$1" "$L"
  expect_code 201
  jq -r .api_key.key <<<"$body"
}
K_CFG=$(new_project "$T_ALICE" cfg)
K_TWO=$(new_project "$T_ALICE" cfg-two)
new_project "$T_DAVE" other >/dev/null
for grant in "$BOB_ID viewer" "$CAROL_ID editor"; do
  read -r uid level <<<"$grant"
  api POST /v1/projects/cfg/roles "{\"user_id\": \"$uid\", \"role_level\": \"$level\"}" "$T_ALICE" "$L"
  expect_code 200
done

P=/v1/projects/cfg/configs
jqb() { jq -r "$1" <<<"$body"; }
# put KEY EXPECTED_VERSION CONTENT [TOKEN] [NODE] [EXTRA_MEMBERS]
put() {
  api PUT "$P/$1" "{\"content\": $3, \"expected_version\": $2${6:+, $6}}" "${4-$T_CAROL}" "${5:-$L}"
}
# ok_write STATUS VERSION: a write answer with every member of docs/api.md.
ok_write() {
  expect_code "$1"
  expect_json .version "$2"
  expect_json '[.project, .key, (.revision | type), (.raft_index | type), (.request_id | type)] | join(" ")' \
    "cfg $(jqb .key) number number string"
  expect_match .revision '^[1-9][0-9]*$'
  expect_match .raft_index '^[1-9][0-9]*$'
  [[ -n $(jqb .request_id) ]] || fail "$last_req: empty request_id: $body"
}

# --- create, CAS, conflicts ---------------------------------------------------------------
api POST "$P" '{"key": "app.db", "content": {"host": "a", "port": 5432}}' "$T_CAROL" "$L"
ok_write 201 1
soft expect_json .key app.db
api POST "$P" '{"key": "app.db", "content": {"host": "b"}}' "$T_CAROL" "$L"
soft expect_error conflict 409
soft expect_json .current_version 1
put app.db 1 '{"host": "b", "port": 5433}'
ok_write 200 2
put app.db 1 '{"host": "c"}'
soft expect_error conflict 409
soft expect_json .current_version 2
put app.db 5 '{"host": "c"}'
soft expect_error conflict 409
soft expect_json .current_version 2
put app.new 0 '[1, "two", null]'
ok_write 201 1
put never.written 3 '"x"'
soft expect_error conflict 409
soft expect_json .current_version 0
api GET "$P/never.written" "" "$T_CAROL" "$L"
soft expect_error not_found 404

api GET "$P/app.db" "" "$T_BOB" "$L"
expect_code 200
soft expect_json '[.project, .key, .version, (.content | tojson), .schema_id] | map(tostring) | join(" ")' \
  'cfg app.db 2 {"host":"b","port":5433} null'
soft expect_match .revision '^[1-9][0-9]*$'
soft expect_match .updated_by "$CAROL_ID" # carol wrote version 2
soft expect_match .updated_at "$TIME_RE"
soft expect_header ETag '^"2"$'
soft expect_header X-Conclave-Index '^[1-9][0-9]*$'
# Any JSON value is content: a bare string, a number, an array, null.
for c in '"just a string"' 42 '[]' null '{"nested": {"deep": [1, {"x": true}]}}'; do
  put "scalar.$RANDOM$RANDOM" 0 "$c"
  soft expect_code 201
  k=$(jqb .key)
  api GET "$P/$k" "" "$T_CAROL" "$F1"
  soft expect_code 200
  soft expect_json '.content | tojson' "$(jq -c . <<<"$c")"
done

# --- who may: 401, 404 for other tenants, 403 for viewers, API keys -----------------------
put app.db 2 '{"host": "x"}' ""
soft expect_error unauthorized 401
api GET "$P/app.db" "" "" "$L"
soft expect_error unauthorized 401
for path in /v1/projects/nope/configs/app.db /v1/projects/other/configs/app.db; do
  api PUT "$path" '{"content": 1, "expected_version": 0}' "$T_ALICE" "$L"
  soft expect_error not_found 404
  api GET "$path" "" "$T_ALICE" "$F1"
  soft expect_error not_found 404
  api POST "${path%/app.db}" '{"key": "app.db", "content": 1}' "$T_ALICE" "$L"
  soft expect_error not_found 404
done
api GET /v1/projects/other/configs "" "$T_CAROL" "$L"
soft expect_error not_found 404
api GET "/v1/projects/other/watch?after_revision=0&timeout=1" "" "$T_CAROL" "$L"
soft expect_error not_found 404
api GET /v1/projects/other/audit/verify "" "$T_CAROL" "$L"
soft expect_error not_found 404

put app.db 2 '{"host": "viewer"}' "$T_BOB"
soft expect_error forbidden 403
api POST "$P" '{"key": "by.viewer", "content": 1}' "$T_BOB" "$L"
soft expect_error forbidden 403
api DELETE "$P/app.db?expected_version=2" "" "$T_BOB" "$L"
soft expect_error forbidden 403
api POST "$P/app.db/rollback" '{"target_version": 1, "expected_version": 2}' "$T_BOB" "$L"
soft expect_error forbidden 403
put app.db 2 '{"host": "viewer"}' "$T_BOB" "$F1"
soft expect_error forbidden 403
for path in "$P" "$P/app.db" "$P/app.db/revisions" "$P/app.db?version=1" \
  "/v1/projects/cfg/audit/verify"; do
  api GET "$path" "" "$T_BOB" "$F2"
  soft expect_code 200
done
expect_eq "$(sql "SELECT version FROM configs WHERE project_id = 'cfg' AND key = 'app.db'")" 2 \
  "app.db after the refused writes"

put app.db 2 '{"host": "by-key"}' "$K_CFG"
ok_write 200 3
api POST "$P" '{"key": "by.key", "content": {"k": 1}}' "$K_CFG" "$F1"
ok_write 201 1
api GET "$P/by.key" "" "$K_CFG" "$F2"
soft expect_code 200
api PUT /v1/projects/cfg-two/configs/app.db '{"content": 1, "expected_version": 0}' "$K_CFG" "$L"
soft expect_error not_found 404
api POST /v1/projects/cfg-two/configs '{"key": "x", "content": 1}' "$K_CFG" "$L"
soft expect_error not_found 404
api GET /v1/projects/cfg-two/configs "" "$K_CFG" "$L"
soft expect_error not_found 404
api PUT "$P/app.db" '{"content": 1, "expected_version": 3}' "$K_TWO" "$F1"
soft expect_error not_found 404
expect_eq "$(sql "SELECT count(*) FROM configs WHERE project_id = 'cfg-two'")" 0 \
  "configs of cfg-two written by cfg's key"

# --- API key scopes: a read key reads every config endpoint and writes none ----------------
api POST /v1/projects/cfg/api-keys '{"name": "readers", "scope": "read"}' "$T_ALICE" "$L"
soft expect_code 201
soft expect_json .scope read
K_READ=$(jqb .key)
api POST /v1/projects/cfg/api-keys '{"name": "writers", "scope": "read-write"}' "$T_ALICE" "$L"
soft expect_json .scope read-write
K_RW=$(jqb .key)
for bad in '"write"' '"READ"' '""' '1' 'null'; do
  api POST /v1/projects/cfg/api-keys "{\"name\": \"bad\", \"scope\": $bad}" "$T_ALICE" "$L"
  soft expect_code 400
  soft expect_json .field scope
done
api GET /v1/projects/cfg/api-keys "" "$T_ALICE" "$L"
soft expect_json '[.items[] | select(.name == "readers") | .scope] | join(",")' read
soft expect_json '[.items[] | select(.name == "default") | .scope] | join(",")' read-write
v_before=$(sql "SELECT version FROM configs WHERE project_id = 'cfg' AND key = 'app.db'")
for node in "$L" "$F1"; do
  api PUT "$P/app.db" "{\"content\": 1, \"expected_version\": $v_before}" "$K_READ" "$node"
  soft expect_error forbidden 403
  api POST "$P" '{"key": "by.reader", "content": 1}' "$K_READ" "$node"
  soft expect_error forbidden 403
  api DELETE "$P/app.db?expected_version=$v_before" "" "$K_READ" "$node"
  soft expect_error forbidden 403
  api POST "$P/app.db/rollback" "{\"target_version\": 1, \"expected_version\": $v_before}" "$K_READ" "$node"
  soft expect_error forbidden 403
done
for path in "$P" "$P/app.db" "$P/app.db/revisions" "$P/app.db?version=1" "$P/app.db?consistency=stale" \
  /v1/projects/cfg/revisions /v1/projects/cfg/audit/verify /v1/projects/cfg/head \
  "/v1/projects/cfg/watch?after_revision=0&timeout=1" /v1/projects/cfg; do
  api GET "$path" "" "$K_READ" "$F2"
  soft expect_code 200
done
# Still a key: no other project, no admin endpoint.
api GET /v1/projects/cfg-two/configs "" "$K_READ" "$L"
soft expect_error not_found 404
api GET /v1/projects/cfg/api-keys "" "$K_READ" "$L"
soft expect_error forbidden 403
expect_eq "$(sql "SELECT version FROM configs WHERE project_id = 'cfg' AND key = 'app.db'")" \
  "$v_before" "app.db after the read key's refused writes"
expect_eq "$(sql "SELECT count(*) FROM configs WHERE project_id = 'cfg' AND key = 'by.reader'")" 0 \
  "configs the read key tried to create"
api POST "$P" '{"key": "by.rw", "content": {"k": 1}}' "$K_RW" "$F1"
ok_write 201 1

# --- API keys limited to a config prefix (docs/api.md, "API keys") -------------------------
# KP reaches the keys that start with "app." (read-write), KPR the same reading only. Every
# config endpoint is called inside and outside the prefix, through the leader and a follower.
put zz.other 0 1
soft expect_code 201
api POST /v1/projects/cfg/api-keys '{"name": "app-writers", "config_prefix": "app."}' "$T_ALICE" "$L"
soft expect_code 201
soft expect_json .config_prefix app.
soft expect_json .scope read-write
K_P=$(jqb .key)
api POST /v1/projects/cfg/api-keys '{"name": "app-readers", "scope": "read", "config_prefix": "app."}' \
  "$T_ALICE" "$L"
soft expect_code 201
K_PR=$(jqb .key)
for bad in '""' '".app"' '"a b"' '"a/b"' 1 null "\"$(printf 'k%.0s' $(seq 257))\""; do
  api POST /v1/projects/cfg/api-keys "{\"name\": \"bad\", \"config_prefix\": $bad}" "$T_ALICE" "$L"
  soft expect_error bad_request 400 config_prefix
done
api GET /v1/projects/cfg/api-keys "" "$T_ALICE" "$L"
soft expect_json '[.items[] | select(.name == "app-readers") | .config_prefix] | join(",")' app.
soft expect_json '[.items[] | select(.name == "readers") | .config_prefix | tostring] | join(",")' null
v_other=$(sql "SELECT version FROM configs WHERE project_id = 'cfg' AND key = 'zz.other'")
for node in "$L" "$F1"; do
  # Inside the prefix: as any key of its scope.
  for path in "$P/app.db" "$P/app.db/revisions" "$P?prefix=app." "$P?prefix=app.d" \
    "/v1/projects/cfg/watch?after_revision=0&timeout=1&prefix=app." \
    "/v1/projects/cfg/watch?after_revision=0&timeout=1&key=app.db" /v1/projects/cfg; do
    for k in "$K_P" "$K_PR"; do
      api GET "$path" "" "$k" "$node"
      soft expect_code 200
    done
  done
  api GET "$P?prefix=app." "" "$K_P" "$node"
  soft expect_json '[.items[].key | startswith("app.")] | all' true
  soft expect_json '.items | length > 0' true
  # Outside it, or the whole project: 403 naming the prefix.
  for path in "$P" "$P?prefix=ap" "$P?prefix=zz" "$P/zz.other" "$P/zz.other/revisions" \
    /v1/projects/cfg/revisions /v1/projects/cfg/audit/verify /v1/projects/cfg/head \
    "/v1/projects/cfg/watch?after_revision=0&timeout=1" \
    "/v1/projects/cfg/watch?after_revision=0&timeout=1&prefix=zz" \
    "/v1/projects/cfg/watch?after_revision=0&timeout=1&key=zz.other"; do
    for k in "$K_P" "$K_PR"; do
      api GET "$path" "" "$k" "$node"
      soft expect_error forbidden 403
      soft expect_match .message 'start with "app\."'
    done
  done
  put zz.other "$v_other" 2 "$K_P" "$node"
  soft expect_error forbidden 403
  api POST "$P" '{"key": "zz.new", "content": 1}' "$K_P" "$node"
  soft expect_error forbidden 403
  soft expect_match .message '"zz\.new"'
  api DELETE "$P/zz.other?expected_version=$v_other" "" "$K_P" "$node"
  soft expect_error forbidden 403
  api POST "$P/zz.other/rollback" "{\"target_version\": 1, \"expected_version\": $v_other}" "$K_P" "$node"
  soft expect_error forbidden 403
  # The read one may not write inside its prefix either (its scope).
  api POST "$P" '{"key": "app.by.reader", "content": 1}' "$K_PR" "$node"
  soft expect_error forbidden 403
  soft expect_match .message 'scope is read'
done
expect_eq "$(sql "SELECT version FROM configs WHERE project_id = 'cfg' AND key = 'zz.other'")" \
  "$v_other" "zz.other after the prefix key's refused writes"
expect_eq "$(sql "SELECT count(*) FROM configs WHERE project_id = 'cfg' AND key IN ('zz.new', 'app.by.reader')")" \
  0 "configs the prefix keys could not create"
# Inside the prefix the read-write one writes, creates, rolls back and deletes.
api POST "$P" '{"key": "app.by.prefix", "content": {"k": 1}}' "$K_P" "$F1"
ok_write 201 1
put app.by.prefix 1 2 "$K_P" "$L"
ok_write 200 2
api POST "$P/app.by.prefix/rollback" '{"target_version": 1, "expected_version": 2}' "$K_P" "$F1"
ok_write 200 3
api DELETE "$P/app.by.prefix?expected_version=3" "" "$K_P" "$L"
soft expect_code 200

# 405: the path exists, not with this method.
api PATCH "$P/app.db" '{"content": 1}' "$T_CAROL" "$L"
soft expect_error method_not_allowed 405
soft expect_header Allow 'PUT'

# --- bad input ----------------------------------------------------------------------------
K256=$(printf 'k%.0s' $(seq 256))
K257=${K256}k
for bad in .hidden -dash :colon 'a%20b' 'a%24b' 'a%2Fb' "$K257" 'a%C3%A9'; do
  put "$bad" 0 1
  soft expect_error bad_request 400 key
  api GET "$P/$bad" "" "$T_CAROL" "$F1"
  soft expect_error bad_request 400 key
  api DELETE "$P/$bad?expected_version=1" "" "$T_CAROL" "$L"
  soft expect_error bad_request 400 key
done
for bad in '".hidden"' '"-dash"' '":colon"' '"a b"' '"a/b"' '""' "\"$K257\"" '"é"' 12 null '["k"]'; do
  api POST "$P" "{\"key\": $bad, \"content\": 1}" "$T_CAROL" "$L"
  soft expect_error bad_request 400 key
done
api POST "$P" '{"content": 1}' "$T_CAROL" "$L"
soft expect_error bad_request 400 key
# Valid keys of every kind and length up to 256: created in the body (POST) and in the path
# (PUT expected_version 0), then read (GET) and written (PUT) by path. One line sums up the
# statuses per key, "LENGTH:POST/GET/PUT PUT0/GET", against what the contract gives.
got='' want='' keys=('Az09._:-x' _under 9lives)
for n in 64 100 130 160 200 230 255 256; do
  keys+=("$(printf "%${n}s" '' | tr ' ' "$(echo {a..z} | tr -d ' ' | cut -c$((n % 26 + 1)))")")
done
for k in "${keys[@]}"; do
  api POST "$P" "{\"key\": \"$k\", \"content\": \"ok\"}" "$T_CAROL" "$L"
  c1=$code
  api GET "$P/$k" "" "$T_CAROL" "$F2"
  c2=$code
  [[ $(jqb '.key // empty' 2>/dev/null) == "$k" ]] || c2+=!key
  put "$k" 1 '"ok2"'
  c3=$code
  put "P$k" 0 '"path"' # one more character: at most 257, refused only then
  c4=$code
  api GET "$P/P$k" "" "$T_CAROL" "$F1"
  c5=$code
  got+="${#k}:$c1/$c2/$c3 $c4/$c5  "
  if ((${#k} < 256)); then
    want+="${#k}:201/200/200 201/200  "
  else
    want+="${#k}:201/200/200 400/400  "
  fi
done
soft expect_eq "$got" "$want" "statuses of valid keys by length (LENGTH:POST/GET/PUT, then PUT/GET of one character more)"

api PUT "$P/app.db" '{"expected_version": 3}' "$T_CAROL" "$L"
soft expect_error bad_request 400 content
api POST "$P" '{"key": "no.content"}' "$T_CAROL" "$L"
soft expect_error bad_request 400 content
api PUT "$P/app.db" '{"content": 1}' "$T_CAROL" "$L"
soft expect_error bad_request 400 expected_version
for ev in '"3"' -1 1.5 true null '[3]' '{}'; do
  put app.db "$ev" '{"host": "typed"}'
  soft expect_error bad_request 400 expected_version
done
put app.db 9223372036854775808 '{"host": "huge"}'
soft expect_error bad_request 400
api PUT "$P/app.db" '{"content": 1, "expected_version": 3, "schema_id": "not-a-uuid"}' "$T_CAROL" "$L"
soft expect_error bad_request 400 schema_id
api PUT "$P/app.db" '{"content": 1, "expected_version": 3, "schema_id": 7}' "$T_CAROL" "$L"
soft expect_error bad_request 400 schema_id
for body_text in '{"content": ' '{"content": 1, "expected_version": 3' 'not json' '' \
  '[1]' '"x"' '{"content": 1 "expected_version": 3}'; do
  if [[ -z $body_text ]]; then
    api PUT "$P/app.db" "" "$T_CAROL" "$L"
  else
    api PUT "$P/app.db" "$body_text" "$T_CAROL" "$L"
  fi
  soft expect_error bad_request 400
  api POST "$P" "${body_text:-x}" "$T_CAROL" "$F1"
  soft expect_error bad_request 400
done
expect_eq "$(sql "SELECT version FROM configs WHERE project_id = 'cfg' AND key = 'app.db'")" 3 \
  "app.db after the refused bodies"

# 413: a body over 1 MiB; just under it is a fine config.
{
  printf '{"expected_version": 0, "content": "'
  head -c 1100000 /dev/zero | tr '\0' a
  printf '"}'
} >"$TMP/big.json"
api PUT "$P/too.big" "@$TMP/big.json" "$T_CAROL" "$L"
soft expect_error payload_too_large 413
api PUT "$P/too.big" "@$TMP/big.json" "$T_CAROL" "$F1"
soft expect_error payload_too_large 413
{
  printf '{"expected_version": 0, "content": "'
  head -c 1000000 /dev/zero | tr '\0' b
  printf '"}'
} >"$TMP/large.json"
api PUT "$P/large.ok" "@$TMP/large.json" "$T_CAROL" "$F1"
soft expect_code 201
api GET "$P/large.ok?consistency=stale&min_index=$(jqb '.raft_index // 0')" "" "$T_CAROL" "$F2"
soft expect_code 200
soft expect_json '.content | length' 1000000
expect_eq "$(sql "SELECT count(*) FROM configs WHERE key = 'too.big'")" 0 "configs written by a 413"

# --- schema binding -----------------------------------------------------------------------
api POST /v1/schemas '{"name": "db", "schema_content": {"type": "object", "required": ["host", "port"],
  "properties": {"host": {"type": "string"}, "port": {"type": "integer", "minimum": 1},
  "replicas": {"type": "array", "items": {"type": "object", "properties": {"weight": {"type": "number", "maximum": 10}}}}}}}' \
  "$T_CAROL" "$L"
expect_code 201
SID=$(jqb .id)
SHASH=$(jqb .schema_hash)
api POST "$P" "{\"key\": \"svc.db\", \"content\": {\"host\": \"h\", \"port\": 1}, \"schema_id\": \"$SID\"}" "$T_CAROL" "$L"
ok_write 201 1
api GET "$P/svc.db" "" "$T_CAROL" "$F1"
soft expect_json .schema_id "$SID"
api POST "$P" "{\"key\": \"svc.bad\", \"content\": {\"host\": 1}, \"schema_id\": \"$SID\"}" "$T_CAROL" "$L"
soft expect_error schema_violation 422
# expect_violation POINTER KEYWORD: a 422 whose errors name POINTER.
expect_violation() {
  expect_error schema_violation 422
  expect_json '.errors | type' array
  expect_json "[.errors[] | select(.path == \"$1\")] | length > 0" true
  expect_json "[.errors[] | select(.path == \"$1\") | .keyword] | index(\"$2\") != null" true
  expect_json '[.errors[] | (.path | type), (.keyword | type), (.schema_path | type), (.message | type)] | unique | join(",")' string
}
put svc.db 1 '{"host": "h", "port": "5432"}' "$T_CAROL" "$F1"
soft expect_violation /port type
put svc.db 1 '{"host": "h", "port": 1, "replicas": [{"weight": 1}, {"weight": 11}]}'
soft expect_violation /replicas/1/weight maximum
put svc.db 1 '{"host": "h"}'
soft expect_violation "" required
put svc.db 1 '{"host": "h2", "port": 2}' "$T_CAROL" "$F2"
ok_write 200 2
# Without schema_id the binding stays; null unbinds.
put svc.db 2 '{"port": 0}'
soft expect_violation /port minimum
put svc.db 2 '{"free": "form"}' "$T_CAROL" "$L" '"schema_id": null'
ok_write 200 3
api GET "$P/svc.db" "" "$T_CAROL" "$L"
soft expect_json .schema_id null
put svc.db 3 '{"host": "h", "port": 3}' "$T_CAROL" "$L" "\"schema_id\": \"$SID\""
ok_write 200 4
expect_eq "$(sql "SELECT count(*) FROM config_revisions WHERE key = 'svc.db'")" 4 "svc.db revisions"
expect_eq "$(sql "SELECT coalesce(encode(schema_hash, 'hex'), '-') FROM config_revisions WHERE key = 'svc.db' ORDER BY version" | tr '\n' ' ')" \
  "$SHASH $SHASH - $SHASH " "schema hashes of svc.db's revisions"
api DELETE "/v1/schemas/$SID" "" "$T_CAROL" "$L"
soft expect_error conflict 409

# --- delete, tombstones, re-creation ------------------------------------------------------
put del.me 0 '{"v": 1}'
ok_write 201 1
put del.me 1 '{"v": 2}'
ok_write 200 2
api DELETE "$P/del.me" "" "$T_CAROL" "$L"
soft expect_error bad_request 400 expected_version
for q in 'expected_version=' 'expected_version=abc' 'expected_version=-2' 'expected_version=1.5'; do
  api DELETE "$P/del.me?$q" "" "$T_CAROL" "$L"
  soft expect_error bad_request 400 expected_version
done
api DELETE "$P/del.me?expected_version=1" "" "$T_CAROL" "$F1"
soft expect_error conflict 409
soft expect_json .current_version 2
api DELETE "$P/del.me?expected_version=2" "" "$T_CAROL" "$F1"
ok_write 200 3
DEL_INDEX=$(jqb .raft_index)
api DELETE "$P/del.me?expected_version=3" "" "$T_CAROL" "$L"
soft expect_error not_found 404
api DELETE "$P/never.there?expected_version=1" "" "$T_CAROL" "$L"
soft expect_error not_found 404
api GET "$P/del.me" "" "$T_CAROL" "$L"
soft expect_error not_found 404
for n in "$F1" "$F2"; do
  api GET "$P/del.me?consistency=stale&min_index=$DEL_INDEX" "" "$T_CAROL" "$n"
  soft expect_error not_found 404
done
api GET "$P/del.me?version=3" "" "$T_CAROL" "$L"
soft expect_code 200
soft expect_json '[.version, .op, (.content | tojson)] | map(tostring) | join(" ")' "3 delete null"
api GET "$P/del.me/rollback" "" "$T_CAROL" "$L"
soft expect_error method_not_allowed 405
put del.me 0 '{"v": "again"}'
soft expect_error conflict 409
soft expect_json .current_version 3
api POST "$P" '{"key": "del.me", "content": {"v": "again"}}' "$T_CAROL" "$L"
soft expect_error conflict 409
soft expect_json .current_version 3
put del.me 2 '{"v": "again"}'
soft expect_error conflict 409
soft expect_json .current_version 3
put del.me 3 '{"v": "again"}' "$T_CAROL" "$F2"
ok_write 200 4
api GET "$P/del.me" "" "$T_CAROL" "$F1"
soft expect_code 200
soft expect_json '[.version, .content.v] | map(tostring) | join(" ")' "4 again"
api GET "$P/del.me/revisions" "" "$T_CAROL" "$L"
soft expect_json '[.items[] | "\(.version):\(.op)"] | join(" ")' "1:put 2:put 3:delete 4:put"
soft expect_json .next_after_version null

# --- rollback -----------------------------------------------------------------------------
put rb 0 '{"a": 1}'
ok_write 201 1
put rb 1 '{"a": 2}'
ok_write 200 2
api POST "$P/rb/rollback" '{"target_version": 1}' "$T_CAROL" "$L"
soft expect_error bad_request 400 expected_version
api POST "$P/rb/rollback" '{"expected_version": 2}' "$T_CAROL" "$L"
soft expect_error bad_request 400 target_version
api POST "$P/rb/rollback" '{"target_version": "1", "expected_version": 2}' "$T_CAROL" "$L"
soft expect_error bad_request 400 target_version
api POST "$P/rb/rollback" '{"target_version": 0, "expected_version": 2}' "$T_CAROL" "$L"
soft expect_error bad_request 400 target_version
api POST "$P/rb/rollback" '{"target_version": 1, "expected_version": 3}' "$T_CAROL" "$L"
soft expect_error conflict 409
soft expect_json .current_version 2
api POST "$P/never.there/rollback" '{"target_version": 1, "expected_version": 2}' "$T_CAROL" "$L"
soft expect_error not_found 404
api POST "$P/rb/rollback" '{"target_version": 1, "expected_version": 2}' "$T_CAROL" "$F1"
ok_write 200 3
api GET "$P/rb" "" "$T_CAROL" "$F2"
soft expect_json '[.version, (.content | tojson)] | map(tostring) | join(" ")' '3 {"a":1}'
soft expect_header ETag '^"3"$'
api GET "$P/rb/revisions" "" "$T_CAROL" "$L"
soft expect_json '[.items[] | "\(.version):\(.op):\(.content | tojson)"] | join(" ")' \
  '1:put:{"a":1} 2:put:{"a":2} 3:rollback:{"a":1}'
# A rollback to a delete is refused.
put rbd 0 '{"b": 1}'
ok_write 201 1
api DELETE "$P/rbd?expected_version=1" "" "$T_CAROL" "$L"
ok_write 200 2
put rbd 2 '{"b": 3}'
ok_write 200 3
api POST "$P/rbd/rollback" '{"target_version": 2, "expected_version": 3}' "$T_CAROL" "$L"
soft expect_error bad_request 400 target_version
api POST "$P/rbd/rollback" '{"target_version": 1, "expected_version": 3}' "$T_CAROL" "$F1"
ok_write 200 4
api GET "$P/rbd" "" "$T_CAROL" "$L"
soft expect_json '[.version, .content.b] | map(tostring) | join(" ")' "4 1"
# A rollback of a deleted key: it is missing.
api DELETE "$P/rbd?expected_version=4" "" "$T_CAROL" "$L"
ok_write 200 5
api POST "$P/rbd/rollback" '{"target_version": 4, "expected_version": 5}' "$T_CAROL" "$L"
soft expect_error not_found 404

# --- history: ?version=N and revisions pagination -----------------------------------------
api GET "$P/rb?version=2" "" "$T_BOB" "$F1"
soft expect_code 200
soft expect_json '[.version, .op, (.content | tojson)] | map(tostring) | join(" ")' '2 put {"a":2}'
soft expect_match .created_at "$TIME_RE"
soft expect_match .hash '^[0-9a-f]{64}$'
soft expect_match .actor "$CAROL_ID" # carol wrote version 2
api GET "$P/rb?version=1" "" "$T_BOB" "$L"
soft expect_json '.content.a' 1
api GET "$P/rb?version=4" "" "$T_BOB" "$L"
soft expect_error not_found 404
api GET "$P/never.there?version=1" "" "$T_BOB" "$L"
soft expect_error not_found 404
for v in 0 -1 abc 1.5; do
  api GET "$P/rb?version=$v" "" "$T_BOB" "$L"
  soft expect_error bad_request 400 version
done

for v in 1 2 3 4 5; do
  put pg $((v - 1)) "{\"v\": $v}"
  expect_code $((v == 1 ? 201 : 200))
done
api GET "$P/pg/revisions?limit=2" "" "$T_BOB" "$F2"
soft expect_code 200
soft expect_json '[.items[].version] | map(tostring) | join(",")' 1,2
soft expect_json .next_after_version 2
api GET "$P/pg/revisions?after_version=2&limit=2" "" "$T_BOB" "$F2"
soft expect_json '[.items[].version] | map(tostring) | join(",")' 3,4
soft expect_json .next_after_version 4
api GET "$P/pg/revisions?after_version=4&limit=2" "" "$T_BOB" "$F2"
soft expect_json '[.items[].version] | map(tostring) | join(",")' 5
soft expect_json .next_after_version null
api GET "$P/pg/revisions?after_version=5" "" "$T_BOB" "$F2"
soft expect_json '[(.items | length), .next_after_version] | map(tostring) | join(",")' 0,null
api GET "$P/pg/revisions" "" "$T_BOB" "$F2"
soft expect_json '[.items[] | "\(.version):\(.op):\(.content.v)"] | join(" ")' \
  "1:put:1 2:put:2 3:put:3 4:put:4 5:put:5"
soft expect_json '[.items[] | (.hash | test("^[0-9a-f]{64}$")), (.created_at | type == "string")] | all' true
for q in limit=0 limit=1001 limit=x after_version=-1 after_version=x; do
  api GET "$P/pg/revisions?$q" "" "$T_BOB" "$L"
  soft expect_error bad_request 400 "${q%%=*}"
done

# --- list: prefix, limit, after, next_after -----------------------------------------------
for k in list.b list.a list.e list.Z list.d list.c; do
  put "$k" 0 "{\"k\": \"$k\"}" "$T_CAROL" "$F1"
  expect_code 201
done
put listx 0 1
expect_code 201
api DELETE "$P/list.c?expected_version=1" "" "$T_CAROL" "$L"
expect_code 200
LIST_INDEX=$(jqb .raft_index)
# page QUERY NODE: prints "KEY KEY ... | NEXT_AFTER".
page() {
  api GET "$P?$1" "" "$T_BOB" "$2"
  expect_code 200
  jq -r '([.items[].key] | join(" ")) + " | " + (.next_after | tostring)' <<<"$body"
}
soft expect_eq "$(page 'prefix=list.' "$L")" "list.Z list.a list.b list.d list.e | null" "list prefix=list."
soft expect_eq "$(page 'prefix=list.&limit=2' "$L")" "list.Z list.a | list.a" "list page 1"
soft expect_eq "$(page 'prefix=list.&limit=2&after=list.a' "$F1")" "list.b list.d | list.d" "list page 2"
soft expect_eq "$(page 'prefix=list.&limit=2&after=list.d' "$F2")" "list.e | null" "list page 3"
soft expect_eq "$(page 'prefix=list.&limit=4&after=list.a' "$L")" "list.b list.d list.e | null" "list exact end"
soft expect_eq "$(page "prefix=list.&consistency=stale&min_index=$LIST_INDEX" "$F2")" \
  "list.Z list.a list.b list.d list.e | null" "stale list on a follower"
soft expect_eq "$(page 'prefix=nothing.here' "$L")" " | null" "list of an empty prefix"
api GET "$P?prefix=list.&limit=1" "" "$T_BOB" "$L"
soft expect_json '.items[0] | [.project, .key, .version, .content.k, (.revision | type), .schema_id] | map(tostring) | join(" ")' \
  "cfg list.Z 1 list.Z number null"
soft expect_header X-Conclave-Index '^[1-9][0-9]*$'
# Unfiltered: every live key of cfg once, in byte order, across pages.
all_keys=$(sql "SELECT key FROM configs WHERE project_id = 'cfg' AND NOT deleted ORDER BY key COLLATE \"C\"" | tr '\n' ' ')
got_keys='' after=''
while :; do
  api GET "$P?limit=7${after:+&after=$after}" "" "$T_BOB" "$F1"
  expect_code 200
  got_keys+="$(jq -r '.items[].key' <<<"$body" | tr '\n' ' ')"
  after=$(jqb '.next_after // empty')
  [[ -n $after ]] || break
done
soft expect_eq "$got_keys" "$all_keys" "every live key through pages of 7"
for q in limit=0 limit=1001 limit=x; do
  api GET "$P?$q" "" "$T_BOB" "$L"
  soft expect_error bad_request 400 limit
done
api GET "$P?consistency=eventual" "" "$T_BOB" "$L"
soft expect_error bad_request 400 consistency

# --- watch --------------------------------------------------------------------------------
put w.head 0 1
expect_code 201
HEAD=$(jqb .revision)
hp="HPORT_$F1"
t0=$(now_ms)
curl -s --max-time 15 -H "Authorization: Bearer $T_BOB" -o "$TMP/watch.body" \
  -w '%{http_code}' "http://127.0.0.1:${!hp}/v1/projects/cfg/watch?after_revision=$HEAD&timeout=10" \
  >"$TMP/watch.code" 2>/dev/null &
watch_pid=$!
sleep 0.5
put watched 0 '{"w": 1}' "$T_CAROL" "$F2"
ok_write 201 1
W_REV=$(jqb .revision)
t_write=$(now_ms)
wait "$watch_pid" || true
t_done=$(now_ms)
body=$(<"$TMP/watch.body")
code=$(<"$TMP/watch.code")
last_req="GET /v1/projects/cfg/watch?after_revision=$HEAD&timeout=10 (node $F1)"
echo "watch: answered $((t_done - t_write)) ms after the write was acknowledged ($((t_done - t0)) ms after it started)"
soft expect_eq "$code" 200 "watch status"
# "As soon as" (docs/api.md): within 1 s of the write's acknowledgement (it is in PostgreSQL
# by then), not merely before the poll's timeout.
soft expect_eq "$((t_done - t_write < 1000))" 1 "watch answered $((t_done - t_write)) ms after the write was acknowledged"
soft expect_eq "$((t_done - t0 >= 400))" 1 "watch waited for the write ($((t_done - t0)) ms)"
soft expect_json '.changes | length' 1
soft expect_json '.changes[0] | [.key, .version, .op, .revision, (.content | tojson)] | map(tostring) | join(" ")' \
  "watched 1 put $W_REV {\"w\":1}"
soft expect_match '.changes[0].hash' '^[0-9a-f]{64}$'
soft expect_json .next_after_revision "$W_REV"
t0=$(now_ms)
api GET "/v1/projects/cfg/watch?after_revision=$W_REV&timeout=1" "" "$T_BOB" "$L"
el=$(($(now_ms) - t0))
soft expect_code 200
soft expect_json '[(.changes | length), .next_after_revision] | map(tostring) | join(" ")' "0 $W_REV"
soft expect_eq "$((el >= 900 && el < 2000))" 1 "a 1 s watch at the head took ${el} ms"
# Another project's watch sees none of cfg's changes.
api GET "/v1/projects/cfg-two/watch?after_revision=0&timeout=1" "" "$T_ALICE" "$F1"
soft expect_code 200
soft expect_json '.changes | length' 0
# From the start: every change of cfg, in revision order, with keys.
api GET "/v1/projects/cfg/watch?after_revision=0&timeout=1" "" "$T_BOB" "$F2"
soft expect_code 200
soft expect_json '[.changes[].revision] | . == sort and length == (unique | length)' true
soft expect_json '.changes | length' "$(sql "SELECT least(count(*), 1000) FROM config_revisions WHERE project_id = 'cfg'")"
for q in after_revision=-1 after_revision=x timeout=301 timeout=x; do
  api GET "/v1/projects/cfg/watch?$q" "" "$T_BOB" "$L"
  soft expect_error bad_request 400 "${q%%=*}"
done

# --- request ids --------------------------------------------------------------------------
# api_t SECONDS METHOD PATH BODY TOKEN NODE: like api, with a client timeout of SECONDS.
api_t() {
  local url_var="NODE_${6}_URL" h
  local args=(-s -o "$TMP/apit.body" -D "$TMP/apit.headers" -w '%{http_code}' --max-time "$1" -X "$2")
  [[ -z $5 ]] || args+=(-H "Authorization: Bearer $5")
  [[ -z $4 ]] || args+=(-H 'Content-Type: application/json' --data-binary "$4")
  for h in "${API_HEADERS[@]}"; do
    args+=(-H "$h")
  done
  : >"$TMP/apit.body"
  : >"$TMP/apit.headers"
  code=$(curl "${args[@]}" "${!url_var}$3" 2>/dev/null) || true
  [[ $code =~ ^[0-9]{3}$ ]] || code=000
  body=$(<"$TMP/apit.body")
  headers=$(<"$TMP/apit.headers")
  headers=${headers//$'\r'/}
  last_req="$2 $3 (node $6${4:+, body ${4:0:200}}, client timeout $1 s)"
}
# A retry answers the first outcome: same version, revision and raft index, no new row. The
# first retry may take up to 12 s (to see the server's own answer); later ones 3 s.
RID_BODY='{"content": {"r": 1}, "expected_version": 0, "request_id": "rid-one"}'
api PUT "$P/rid" "$RID_BODY" "$T_CAROL" "$L"
ok_write 201 1
first=$(jq -c '{version, revision, raft_index, request_id}' <<<"$body")
soft expect_json .request_id rid-one
t0=$(now_ms)
api_t 12 PUT "$P/rid" "$RID_BODY" "$T_CAROL" "$L"
echo "retry of a request id answered $code in $(($(now_ms) - t0)) ms"
soft expect_code 201
soft expect_eq "$(jq -c '{version, revision, raft_index, request_id}' <<<"$body" 2>/dev/null)" "$first" \
  "retry of rid-one through the leader"
api_t 3 PUT "$P/rid" "$RID_BODY" "$T_CAROL" "$F1"
soft expect_code 201
soft expect_eq "$(jq -c '{version, revision, raft_index, request_id}' <<<"$body" 2>/dev/null)" "$first" \
  "retry of rid-one through a follower"
expect_eq "$(sql "SELECT count(*) FROM config_revisions WHERE project_id = 'cfg' AND key = 'rid'")" 1 \
  "revision rows after three sends of one request id"
expect_eq "$(sql "SELECT request_id FROM config_revisions WHERE project_id = 'cfg' AND key = 'rid'")" \
  rid-one "request_id stored with the revision"
put rid 0 '{"r": 2}' "$T_CAROL" "$L" '"request_id": "rid-one"'
soft expect_error bad_request 400 request_id
put other.key 0 '{"r": 1}' "$T_CAROL" "$F2" '"request_id": "rid-one"'
soft expect_error bad_request 400 request_id
put rid 1 '{"r": 2}' "$T_CAROL" "$L" "\"request_id\": \"$(printf 'r%.0s' $(seq 129))\""
soft expect_error bad_request 400 request_id
put rid 1 '{"r": 2}' "$T_CAROL" "$L" '"request_id": ""'
soft expect_error bad_request 400 request_id
put rid 1 '{"r": 2}' "$T_CAROL" "$L" '"request_id": 5'
soft expect_error bad_request 400 request_id
# Without a body request_id, X-Request-Id is the request id.
API_HEADERS=("X-Request-Id: hdr-rid-$$")
put rid 1 '{"r": 2}' "$T_CAROL" "$F1"
ok_write 200 2
soft expect_json .request_id "hdr-rid-$$"
first=$(jq -c '{version, revision, raft_index}' <<<"$body")
api_t 3 PUT "$P/rid" '{"content": {"r": 2}, "expected_version": 1}' "$T_CAROL" "$F2"
soft expect_code 200
soft expect_eq "$(jq -c '{version, revision, raft_index}' <<<"$body" 2>/dev/null)" "$first" "retry by X-Request-Id"
API_HEADERS=()
expect_eq "$(sql "SELECT count(*) || ' ' || max(version) FROM config_revisions WHERE project_id = 'cfg' AND key = 'rid'")" \
  "2 2" "revision rows after a retried X-Request-Id write"
# A delete retried with its request_id gets its first answer, not a 404.
api DELETE "$P/rid?expected_version=2&request_id=rid-del" "" "$T_CAROL" "$L"
ok_write 200 3
first=$(jq -c '{version, revision, raft_index}' <<<"$body")
api_t 3 DELETE "$P/rid?expected_version=2&request_id=rid-del" "" "$T_CAROL" "$F1"
soft expect_code 200
soft expect_eq "$(jq -c '{version, revision, raft_index}' <<<"$body" 2>/dev/null)" "$first" "retry of a delete"
expect_eq "$(sql "SELECT count(*) FROM config_revisions WHERE project_id = 'cfg' AND key = 'rid'")" 3 \
  "revision rows after a retried delete"

# --- forwarding and its loop guard --------------------------------------------------------
put fwd 0 '{"via": "follower"}' "$T_CAROL" "$F1"
ok_write 201 1
api GET "$P/fwd" "" "$T_CAROL" "$F2"
soft expect_code 200
soft expect_json .content.via follower
API_HEADERS=("X-Conclave-Forwarded-By: $L")
put fwd 1 '{"via": "loop"}' "$T_CAROL" "$F1"
soft expect_error unavailable 503
soft expect_header Retry-After '^[0-9]+$'
api DELETE "$P/fwd?expected_version=1" "" "$T_CAROL" "$F2"
soft expect_error unavailable 503
api GET "$P/fwd?consistency=linearizable" "" "$T_CAROL" "$F2"
soft expect_error unavailable 503
# The leader serves it: nothing needs forwarding; a stale read is local anywhere.
api GET "$P/fwd?consistency=stale" "" "$T_CAROL" "$F1"
soft expect_code 200
put fwd 1 '{"via": "leader"}' "$T_CAROL" "$L"
soft expect_code 200
API_HEADERS=()
expect_eq "$(sql "SELECT string_agg(content->>'via', ',' ORDER BY version) FROM config_revisions WHERE key = 'fwd'")" \
  follower,leader "fwd's revisions (the 503s wrote nothing)"

# --- audit --------------------------------------------------------------------------------
api GET /v1/projects/cfg/audit/verify "" "$T_BOB" "$F1"
expect_code 200
n_rev=$(sql "SELECT count(*) FROM config_revisions WHERE project_id = 'cfg'")
n_keys=$(sql "SELECT count(DISTINCT key) FROM config_revisions WHERE project_id = 'cfg'")
soft expect_json '[.ok, .revisions_checked, .keys_checked, .problems_total, (.problems | length)] | map(tostring) | join(" ")' \
  "true $n_rev $n_keys 0 0"
soft expect_match .chain_head '^[0-9a-f]{64}$'
soft expect_json .chain_head "$(sql "SELECT encode(hash, 'hex') FROM config_revisions WHERE project_id = 'cfg' ORDER BY revision DESC LIMIT 1")"
api GET /v1/projects/cfg-two/audit/verify "" "$T_ALICE" "$L"
soft expect_json '[.ok, .revisions_checked, .problems_total] | map(tostring) | join(" ")' "true 0 0"

# --- a project's revisions (for auditors) ---------------------------------------------------
N_REV=$(sql "SELECT count(*) FROM config_revisions WHERE project_id = 'cfg'")
HEAD_REV=$(sql "SELECT max(revision) FROM config_revisions WHERE project_id = 'cfg'")
api GET "/v1/projects/cfg/revisions?limit=1000" "" "$T_BOB" "$F1"
expect_code 200
soft expect_json '.items | length' "$N_REV"
soft expect_json .revisions "$N_REV"
soft expect_json .head_revision "$HEAD_REV"
soft expect_json .next_after_revision null
soft expect_json '[.items[].revision] == ([.items[].revision] | sort)' true
soft expect_json '.items[0] | [has("key"), has("prev_hash"), has("hash"), has("raft_term")] | all' true
soft expect_json ".items[-1].hash" "$(sql "SELECT encode(hash, 'hex') FROM config_revisions WHERE revision = $HEAD_REV")"
# Paging by two walks the same rows in the same order.
after=0
walked=()
while :; do
  api GET "/v1/projects/cfg/revisions?after_revision=$after&limit=2" "" "$T_BOB" "$F2"
  expect_code 200
  mapfile -t -O "${#walked[@]}" walked < <(jq -r '.items[].revision' <<<"$body")
  next=$(jq -r .next_after_revision <<<"$body")
  [[ $next == null ]] && break
  after=$next
done
soft expect_eq "${walked[*]}" "$(sql "SELECT string_agg(revision::text, ' ' ORDER BY revision) FROM config_revisions WHERE project_id = 'cfg'")" "revisions walked two at a time"
api GET "/v1/projects/cfg-two/revisions" "" "$T_ALICE" "$L"
soft expect_json '[(.items | length), .revisions, .head_revision] | map(tostring) | join(" ")' "0 0 null"
for q in limit=0 limit=1001 limit=x after_revision=-1 after_revision=1.5; do
  api GET "/v1/projects/cfg/revisions?$q" "" "$T_BOB" "$L"
  soft expect_error bad_request 400 "${q%%=*}"
done
# Another tenant is told what a missing project would tell (no existence leak).
api GET "/v1/projects/cfg/revisions" "" "$T_DAVE" "$L"
soft expect_code 404
api GET "/v1/projects/cfg/revisions" "" "" "$L"
soft expect_code 401
api GET "/v1/projects/nope/revisions" "" "$T_ALICE" "$L"
soft expect_code 404

# Tamper with one revision row (rb version 1) as the table's owner, past the trigger.
T_REV=$(sql "SELECT revision FROM config_revisions WHERE project_id = 'cfg' AND key = 'rb' AND version = 1")
sql "ALTER TABLE config_revisions DISABLE TRIGGER USER;
  UPDATE config_revisions SET content = '{\"a\":100}' WHERE revision = $T_REV;
  ALTER TABLE config_revisions ENABLE TRIGGER USER" >/dev/null
api GET /v1/projects/cfg/audit/verify "" "$T_BOB" "$L"
expect_code 200
soft expect_json .ok false
soft expect_json '.problems_total >= 1' true
soft expect_json "[.problems[] | select(.revision == $T_REV and .key == \"rb\")] | length >= 1" true
soft expect_json '[.problems[] | (.problem | type)] | unique | join(",")' string
api GET /v1/projects/cfg-two/audit/verify "" "$T_ALICE" "$F2"
soft expect_json .ok true

echo "configs_api: $(($(date +%s) - T_START)) s"
finish configs_api
