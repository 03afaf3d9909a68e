# docs/openapi.yaml, the machine-readable description of the HTTP API, against the code and a
# real three-node cluster (tests/server/openapi_check.py does the checking):
#  - lint: an OpenAPI 3.1 validator from npm (@seriousme/openapi-schema-validator, installed by
#    scripts/deps from scripts/npm/package-lock.json) accepts the file, which must say 3.1.0;
#  - routes: every (method, pattern) of routes[] in src/server/api.c, and the console's /ui,
#    /ui/ and /ui/{file}, is an operation of the file, and every operation of the file is one
#    of them;
#  - responses: real requests, for every operation the happy path and the main errors (400,
#    401, 403, 404, 409, 412, 415, 422, 429 where the operation documents them), each answer
#    recorded; every answer's status must be documented for its operation, its required
#    headers present and every described header valid, its media type listed, and a JSON body
#    must validate against the schema given for that status (JSON Schema 2020-12, python's
#    jsonschema). Every documented 2xx and main error must be exercised, except the list in
#    $TMP/skipped below, which must be exactly what is not exercised. Every body is also
#    validated with conclave's own validator (`conclave schema check --at`), which must judge
#    it as python's jsonschema does.
# With OPENAPI_KEEP=DIR the recorded exchanges are copied to DIR, to run openapi_check.py on
# them again (`openapi_check.py responses docs/openapi.yaml DIR SKIPPED_FILE`).
source "$(dirname "$0")/../lib/lib.sh"
source "$(dirname "$0")/../lib/node_lib.sh"
source "$(dirname "$0")/../lib/raft_lib.sh"

YAML=$SRC/docs/openapi.yaml
CHECK=$SRC/tests/server/openapi_check.py
[[ -f $YAML ]] || fail "no $YAML"

# pyhas PY MODULE...: PY runs and imports every MODULE.
pyhas() {
  local py=$1 mods
  shift
  mods=$*
  command -v "$py" >/dev/null 2>&1 || return 1
  "$py" -c "import ${mods// /, }" >/dev/null 2>&1
}
# The checks (routes, responses) need PyYAML and jsonschema: Debian's python3-yaml and
# python3-jsonschema for /usr/bin/python3, else whatever python3 on PATH has them.
PY=
for p in /usr/bin/python3 python3; do
  if pyhas "$p" yaml jsonschema; then
    PY=$p
    break
  fi
done
[[ -n $PY ]] || fail "no python3 with the modules yaml and jsonschema (apt-get install python3-yaml python3-jsonschema)"
# Debian 12 packages no OpenAPI 3.1 linter; scripts/deps installs this one from npm.
LINT=$SRC/scripts/npm/node_modules/.bin/validate-api
[[ -x $LINT ]] || fail "no OpenAPI validator at $LINT: run scripts/deps (npm ci in scripts/npm)"

# ---- a. lint; b. routes ------------------------------------------------------------------------
VERSION=$(sed -n 's/^project(conclave VERSION \([0-9.]*\).*/\1/p' "$SRC/CMakeLists.txt")
[[ -n $VERSION ]] || fail "no project VERSION in CMakeLists.txt"
grep -qx "  version: $VERSION" "$YAML" ||
  fail "docs/openapi.yaml: info.version should be $VERSION, CMakeLists.txt's project VERSION"
grep -qx 'openapi: 3.1.0' "$YAML" || fail "docs/openapi.yaml should declare openapi: 3.1.0"
"$LINT" "$YAML" >"$TMP/lint.out" 2>&1 ||
  fail "the OpenAPI validator refuses docs/openapi.yaml: $(head -c 3000 "$TMP/lint.out")"
grep -q '"valid": true' "$TMP/lint.out" || fail "the OpenAPI validator's verdict: $(head -c 3000 "$TMP/lint.out")"
"$PY" "$CHECK" routes "$YAML" "$SRC/src/server/api.c" ||
  fail "docs/openapi.yaml and the routes served differ (above)"

# ---- c. real answers ---------------------------------------------------------------------------
# What is documented but not exercised here, with why ($TMP/skipped); openapi_check.py fails
# when anything else is missing, or when one of these is exercised after all.
cat >"$TMP/skipped" <<'EOF'
POST /v1/cluster/members 200  # adding a voter needs a fourth node started empty: tests/raft/raft_cluster.sh does it
POST /v1/cluster/members 409  # needs another membership change running at the same moment
DELETE /v1/cluster/members/{member} 200  # removing a voter would shrink the cluster under the rest of the test: tests/raft/raft_cluster.sh does it
DELETE /v1/cluster/members/{member} 409  # needs another membership change running at the same moment
POST /v1/cluster/transfer 409  # needs another membership change running at the same moment
EOF

make_test_db openapi
"$BIN" migrate up >/dev/null
raft_up 3
F=$(((L % 3) + 1))
REC=$TMP/rec
mkdir -p "$REC"
NREC=0

# rec METHOD TARGET [BODY] [TOKEN] [NODE]: what `api` does (same arguments, API_HEADERS, and
# $code, $body, $headers, $last_req for the expect_ helpers), with the exchange recorded as
# $REC/N.req, N.reqbody (the JSON body sent, if any), N.headers and N.body for
# openapi_check.py. Only curl is forked: a fork costs tens of milliseconds here, and the test
# makes some 300 requests.
rec() {
  local method=$1 target=$2 req=${3-} token=${4-} node=${5:-1} url_var="NODE_${5:-1}_URL" h
  [[ -n ${!url_var:-} ]] || fail "rec: node $node is not running"
  NREC=$((NREC + 1))
  local f=$REC/$NREC
  printf '%s %s\n' "$method" "$target" >"$f.req"
  local args=(-s -o "$f.body" -D "$f.headers" --max-time 10 -X "$method")
  if [[ $token == hdr:* ]]; then
    args+=(-H "Authorization: ${token#hdr:}")
  elif [[ -n $token ]]; then
    args+=(-H "Authorization: Bearer $token")
  fi
  if [[ -n $req ]]; then
    args+=(-H 'Content-Type: application/json' --data-binary "$req")
    [[ $req == @* ]] || printf '%s' "$req" >"$f.reqbody"
  fi
  for h in "${API_HEADERS[@]}"; do
    args+=(-H "$h")
  done
  : >"$f.body"
  : >"$f.headers"
  curl "${args[@]}" "${!url_var}$target" >/dev/null 2>&1 || true
  rec_read "$f"
  last_req="$method $target (node $node${req:+, body ${req:0:200}})"
  [[ $code != 000 ]] || fail "$last_req: no answer"
}

# rec_read FILE: $code, $headers and $body from FILE.headers and FILE.body, without a fork.
rec_read() {
  local line
  code=000 headers= body=
  while IFS= read -r line; do
    line=${line%$'\r'}
    if [[ $line =~ ^HTTP/[0-9.]+\ ([0-9]{3}) ]]; then
      code=${BASH_REMATCH[1]} headers=
    elif [[ -n $line ]]; then
      headers+=$line$'\n'
    fi
  done <"$1.headers"
  IFS= read -r -d '' body <"$1.body" || true
}

# raw METHOD TARGET NODE CURL_ARGS...: a request `rec` cannot make, recorded.
raw() {
  local method=$1 target=$2 url_var="NODE_${3}_URL"
  shift 3
  NREC=$((NREC + 1))
  local f=$REC/$NREC
  printf '%s %s\n' "$method" "$target" >"$f.req"
  : >"$f.body"
  : >"$f.headers"
  curl -s -o "$f.body" -D "$f.headers" --max-time 10 -X "$method" "$@" "${!url_var}$target" \
    >/dev/null 2>&1 || true
  rec_read "$f"
  last_req="$method $target (node ${url_var})"
  [[ $code != 000 ]] || fail "$last_req: no answer"
}

NOPE=00000000-0000-4000-8000-000000000000

# ---- operations ----
rec GET /health "" "" "$L"
rec GET /health "" "" "$F"
rec GET /ready "" "" "$F"
rec GET /metrics "" "" "$L"

# ---- login, the caller ----
PW=openapi-password-1
ROOT=$(create_user root@example.com "$PW" --admin)
rec POST /v1/auth/login "{\"email\": \"root@example.com\", \"password\": \"$PW\"}" "" "$L"
expect_code 200
T=$(json_get token)
rec POST /v1/auth/login "{\"email\": \"root@example.com\", \"password\": \"$PW\", \"session\": \"cookie\"}" "" "$F"
expect_code 200
CSRF=$(json_get csrf_token)
COOKIE="Cookie: $(header_value Set-Cookie | sed 's/;.*//')"
rec POST /v1/auth/login "{\"email\": \"root@example.com\", \"password\": \"$PW\", \"session\": \"jar\"}" "" "$F"
rec POST /v1/auth/login "{\"email\": \"root@example.com\", \"password\": \"wrong-password-1\"}" "" "$F"
rec POST /v1/auth/login '{"email": 1}' "" "$F"
raw POST /v1/auth/login "$F" -H 'Content-Type: text/plain' \
  --data-binary "{\"email\": \"root@example.com\", \"password\": \"$PW\", \"session\": \"cookie\"}"
# The account lock: the sixth failure in a row locks an account (throttle.h), here one nobody has.
for ((i = 0; i < 8; i++)); do
  rec POST /v1/auth/login '{"email": "ghost@example.com", "password": "not-the-password"}' "" "$L"
  [[ $code == 429 ]] && break
done
expect_code 429

rec GET /v1/users/me "" "$T" "$L"
API_HEADERS=("$COOKIE")
rec GET /v1/users/me "" "" "$F"
expect_json '.csrf_token | length' 64
API_HEADERS=()
rec GET /v1/users/me "" "" "$F"
rec GET /v1/users/me "" "hdr:Bearer cs_nonsense" "$F"

# ---- users ----
declare -A UID_OF
for who in alice bob carol dave; do
  rec POST /v1/users "{\"email\": \"$who@example.com\", \"password\": \"$who-password-1\"}" "$T" "$L"
  expect_code 201
  UID_OF[$who]=$(json_get id)
done
TA=$(login alice@example.com alice-password-1 "$F")
TB=$(login bob@example.com bob-password-1 "$L")
TC=$(login carol@example.com carol-password-1 "$F")
rec POST /v1/users '{"email": "alice@example.com", "password": "another-password-1"}' "$T" "$F"
rec POST /v1/users '{"email": "no-at-sign", "password": "another-password-1"}' "$T" "$F"
rec POST /v1/users '{"email": "eve@example.com", "password": "another-password-1"}' "$TA" "$F"
rec POST /v1/users '{"email": "eve@example.com", "password": "another-password-1"}' "" "$F"
rec GET /v1/users "" "$T" "$F"
rec GET "/v1/users?limit=2" "" "$T" "$F"
rec GET "/v1/users?limit=2&after=$(json_get next_after)" "" "$T" "$F"
rec GET "/v1/users?limit=0" "" "$T" "$F"
rec GET /v1/users "" "$TA" "$F"
rec GET /v1/users "" "" "$F"
rec GET "/v1/users/${UID_OF[alice]}" "" "$T" "$F"
rec GET "/v1/users/$NOPE" "" "$T" "$F"
rec GET /v1/users/not-a-uuid "" "$T" "$F"
rec GET "/v1/users/${UID_OF[alice]}" "" "$TA" "$F"
rec GET "/v1/users/${UID_OF[alice]}" "" "" "$F"
rec DELETE "/v1/users/${UID_OF[dave]}" "" "$T" "$L"
rec DELETE "/v1/users/${UID_OF[dave]}" "" "$T" "$L"
rec DELETE "/v1/users/$ROOT" "" "$T" "$L"
rec DELETE /v1/users/not-a-uuid "" "$T" "$L"
rec DELETE "/v1/users/${UID_OF[bob]}" "" "$TA" "$L"
rec DELETE "/v1/users/${UID_OF[bob]}" "" "" "$L"

# ---- projects ----
rec POST /v1/projects '{"id": "oa", "name": "openapi"}' "$T" "$L"
expect_code 201
KEY=$(json_get key)
rec POST /v1/projects '{"id": "gone", "name": "to delete"}' "$T" "$F"
rec POST /v1/projects '{"id": "oa", "name": "again"}' "$T" "$F"
rec POST /v1/projects '{"id": "Not_A_Slug", "name": "bad"}' "$T" "$F"
rec POST /v1/projects '{"id": "k", "name": "by key"}' "$KEY" "$F"
rec POST /v1/projects '{"id": "k", "name": "nobody"}' "" "$F"
rec GET /v1/projects "" "$T" "$F"
rec GET "/v1/projects?limit=1" "" "$T" "$F"
rec GET "/v1/projects?after=NOT!" "" "$T" "$F"
rec GET /v1/projects "" "$KEY" "$F"
rec GET /v1/projects "" "" "$F"
rec GET /v1/users/me "" "$KEY" "$F"
rec POST /v1/auth/logout "" "$KEY" "$L"
rec GET /v1/projects/oa "" "$T" "$F"
rec GET /v1/projects/oa "" "$KEY" "$L"
rec GET /v1/projects/oa "" "$TC" "$F"
rec GET /v1/projects/-bad- "" "$T" "$F"
rec GET /v1/projects/oa "" "" "$F"

# ---- roles ----
rec POST /v1/projects/oa/roles "{\"user_id\": \"${UID_OF[alice]}\", \"role_level\": \"editor\"}" "$T" "$L"
expect_code 200
rec POST /v1/projects/oa/roles '{"email": "BOB@example.com", "role_level": "viewer"}' "$T" "$F"
expect_code 200
rec POST /v1/projects/oa/roles "{\"user_id\": \"${UID_OF[carol]}\", \"role_level\": \"viewer\"}" "$T" "$F"
rec POST /v1/projects/oa/roles '{"role_level": "viewer"}' "$T" "$F"
rec POST /v1/projects/oa/roles "{\"user_id\": \"$NOPE\", \"role_level\": \"viewer\"}" "$T" "$F"
rec POST /v1/projects/oa/roles "{\"user_id\": \"$ROOT\", \"role_level\": \"editor\"}" "$T" "$F"
rec POST /v1/projects/oa/roles "{\"user_id\": \"${UID_OF[carol]}\", \"role_level\": \"admin\"}" "$TA" "$F"
rec POST /v1/projects/gone/roles "{\"user_id\": \"${UID_OF[carol]}\", \"role_level\": \"admin\"}" "$TC" "$F"
rec POST /v1/projects/oa/roles '{}' "" "$F"
rec POST /v1/projects/BAD/roles '{}' "$T" "$F"
rec GET /v1/projects/oa/roles "" "$T" "$F"
rec GET "/v1/projects/oa/roles?limit=1" "" "$T" "$F"
rec GET /v1/projects/oa/roles "" "$TA" "$F"
rec GET /v1/projects/gone/roles "" "$TC" "$F"
rec GET /v1/projects/oa/roles "" "" "$F"
rec GET /v1/projects/BAD/roles "" "$T" "$F"
rec DELETE "/v1/projects/oa/roles/${UID_OF[carol]}" "" "$T" "$L"
rec DELETE "/v1/projects/oa/roles/${UID_OF[carol]}" "" "$T" "$L"
rec DELETE "/v1/projects/oa/roles/$ROOT" "" "$T" "$L"
rec DELETE /v1/projects/oa/roles/not-a-uuid "" "$T" "$L"
rec DELETE "/v1/projects/oa/roles/${UID_OF[bob]}" "" "$TA" "$L"
rec DELETE "/v1/projects/gone/roles/${UID_OF[bob]}" "" "$TC" "$L"
rec DELETE "/v1/projects/oa/roles/${UID_OF[bob]}" "" "" "$L"

# ---- API keys ----
rec POST /v1/projects/oa/api-keys '{"name": "reader", "scope": "read"}' "$T" "$L"
expect_code 201
RKEY=$(json_get key)
rec POST /v1/projects/oa/api-keys '{"name": "app", "config_prefix": "app."}' "$T" "$F"
expect_code 201
PKEY=$(json_get key)
rec POST /v1/projects/oa/api-keys '' "$T" "$F"
expect_code 201
DROP=$(json_get id)
rec POST /v1/projects/oa/api-keys '{"scope": "admin"}' "$T" "$F"
rec POST /v1/projects/oa/api-keys '{"config_prefix": ".x"}' "$T" "$F"
rec POST /v1/projects/oa/api-keys '{}' "$TA" "$F"
rec POST /v1/projects/oa/api-keys '{}' "$KEY" "$F"
rec POST /v1/projects/oa/api-keys '{}' "$TC" "$F"
rec POST /v1/projects/oa/api-keys '{}' "" "$F"
rec POST /v1/projects/BAD/api-keys '{}' "$T" "$F"
rec GET /v1/projects/oa/api-keys "" "$T" "$F"
rec GET "/v1/projects/oa/api-keys?limit=1" "" "$T" "$F"
rec GET "/v1/projects/oa/api-keys?after=x" "" "$T" "$F"
rec GET /v1/projects/oa/api-keys "" "$TB" "$F"
rec GET /v1/projects/oa/api-keys "" "$TC" "$F"
rec GET /v1/projects/oa/api-keys "" "" "$F"
rec DELETE "/v1/projects/oa/api-keys/$DROP" "" "$T" "$L"
rec DELETE "/v1/projects/oa/api-keys/$NOPE" "" "$T" "$L"
rec DELETE /v1/projects/oa/api-keys/not-a-uuid "" "$T" "$L"
rec DELETE "/v1/projects/oa/api-keys/$DROP" "" "$TA" "$L"
rec DELETE "/v1/projects/oa/api-keys/$DROP" "" "$TC" "$L"
rec DELETE "/v1/projects/oa/api-keys/$DROP" "" "" "$L"
rec GET /v1/projects/oa "" "$RKEY" "$F"

# ---- schemas ----
PORT_SCHEMA='{"type": "object", "required": ["port"], "properties": {"port": {"type": "integer"}}}'
rec POST /v1/schemas "{\"name\": \"port\", \"schema_content\": $PORT_SCHEMA}" "$TA" "$L"
expect_code 201
SID=$(json_get id)
rec POST /v1/schemas '{"name": "spare", "schema_content": "{\"type\": \"string\"}"}' "$T" "$F"
expect_code 201
SID2=$(json_get id)
rec POST /v1/schemas '{"name": "broken", "schema_content": {"type": "nope"}}' "$T" "$F"
rec POST /v1/schemas '{"name": ""}' "$T" "$F"
rec POST /v1/schemas '{"name": "k", "schema_content": true}' "$KEY" "$F"
rec POST /v1/schemas '{"name": "k", "schema_content": true}' "" "$F"
rec GET /v1/schemas "" "$TB" "$F"
rec GET "/v1/schemas?limit=1" "" "$T" "$F"
rec GET "/v1/schemas?limit=x" "" "$T" "$F"
rec GET /v1/schemas "" "$KEY" "$F"
rec GET /v1/schemas "" "" "$F"
rec GET "/v1/schemas/$SID" "" "$TB" "$F"
rec GET "/v1/schemas/$NOPE" "" "$T" "$F"
rec GET /v1/schemas/not-a-uuid "" "$T" "$F"
rec GET "/v1/schemas/$SID" "" "$KEY" "$F"
rec GET "/v1/schemas/$SID" "" "" "$F"
rec PUT "/v1/schemas/$SID" '{"name": "port number"}' "$TA" "$L"
rec PUT "/v1/schemas/$SID" '{"schema_content": {"type": 12}}' "$TA" "$L"
rec PUT "/v1/schemas/$SID" '{"bogus": 1}' "$TA" "$L"
rec PUT "/v1/schemas/$SID" '{"name": "mine"}' "$TB" "$L"
rec PUT "/v1/schemas/$NOPE" '{"name": "x"}' "$T" "$L"
rec PUT /v1/schemas/not-a-uuid '{"name": "x"}' "$T" "$L"
rec PUT "/v1/schemas/$SID" '{"name": "x"}' "" "$L"

# ---- configs ----
C=/v1/projects/oa/configs
rec POST $C "{\"key\": \"app.db\", \"content\": {\"port\": 5432}, \"schema_id\": \"$SID\"}" "$TA" "$F"
expect_code 201
# A stale read waiting for an index never reached answers 504 after 5 s: in the background,
# recorded under its own number, while the rest goes on.
(NREC=100000 && rec GET "$C/app.db?consistency=stale&min_index=999999999" "" "$TB" "$F") &
SLOW_READ=$!
rec POST $C '{"key": "app.db", "content": {"port": 1}}' "$TA" "$L"
rec POST $C '{"content": 1}' "$TA" "$L"
rec POST $C "{\"key\": \"app.bad\", \"content\": {\"port\": \"x\"}, \"schema_id\": \"$SID\"}" "$TA" "$L"
rec POST $C '{"key": "other", "content": 1}' "$TB" "$L"
rec POST $C '{"key": "other", "content": 1}' "$PKEY" "$L"
rec POST $C '{"key": "other", "content": 1}' "$TC" "$L"
rec POST $C '{"key": "other", "content": 1}' "" "$L"
rec POST /v1/projects/BAD/configs '{"key": "other", "content": 1}' "$T" "$L"
head -c 1100000 /dev/zero | tr '\0' 'a' | sed 's/^/{"key": "big", "content": "/; s/$/"}/' >"$TMP/big.json"
rec POST $C "@$TMP/big.json" "$TA" "$L"
rec POST $C '{"key": "other", "content": [1, "two", null]}' "$KEY" "$F"
API_HEADERS=("$COOKIE")
rec POST $C '{"key": "cookie", "content": 1}' "" "$F"
API_HEADERS=("$COOKIE" "X-CSRF-Token: $CSRF")
rec POST $C '{"key": "cookie", "content": 1}' "" "$F"
API_HEADERS=()

rec GET $C "" "$TB" "$F"
rec GET "$C?prefix=app.&limit=1&consistency=stale" "" "$TB" "$F"
rec GET "$C?after=app.db&limit=10" "" "$T" "$L"
rec GET "$C?prefix=app." "" "$PKEY" "$L"
rec GET $C "" "$PKEY" "$L"
rec GET "$C?limit=0" "" "$TB" "$F"
rec GET $C "" "$TC" "$F"
rec GET $C "" "" "$F"
rec GET /v1/projects/BAD/configs "" "$T" "$F"

rec GET $C/app.db "" "$TB" "$F"
rec GET "$C/app.db?consistency=stale" "" "$RKEY" "$F"
rec GET "$C/app.db?consistency=stale&min_index=1" "" "$RKEY" "$L"
rec GET "$C/app.db?version=1" "" "$TB" "$F"
rec GET "$C/app.db?version=9" "" "$TB" "$F"
rec GET $C/missing "" "$TB" "$F"
rec GET "$C/app.db?consistency=eventually" "" "$TB" "$F"
rec GET $C/.bad "" "$TB" "$F"
rec GET $C/other "" "$PKEY" "$F"
rec GET $C/app.db "" "$TC" "$F"
rec GET $C/app.db "" "" "$F"
rec GET /v1/projects/BAD/configs/app.db "" "$T" "$F"

rec PUT $C/app.db '{"content": {"port": 5433}, "expected_version": 1}' "$TA" "$F"
expect_code 200
rec PUT $C/new.key '{"content": "fresh", "expected_version": 0}' "$TA" "$L"
expect_code 201
rec PUT $C/app.db '{"content": {"port": 1}, "expected_version": 1}' "$TA" "$L"
API_HEADERS=('If-Match: "1"')
rec PUT $C/app.db '{"content": {"port": 1}}' "$TA" "$F"
API_HEADERS=('If-Match: "2"')
rec PUT $C/app.db '{"content": {"port": 5434}, "request_id": "oa-put-3"}' "$TA" "$F"
expect_code 200
API_HEADERS=('If-Match: *')
rec PUT $C/app.db '{"content": {"port": 1}}' "$TA" "$F"
API_HEADERS=('If-None-Match: *')
rec PUT $C/created.by.inm '{"content": true}' "$TA" "$F"
rec PUT $C/app.db '{"content": true}' "$TA" "$F"
API_HEADERS=()
rec PUT $C/app.db '{"content": {"port": "x"}, "expected_version": 3}' "$TA" "$L"
rec PUT $C/app.db '{"content": 1, "expected_version": 3}' "$TB" "$L"
rec PUT $C/app.db '{"content": 1, "expected_version": 3}' "$RKEY" "$L"
rec PUT $C/app.db '{"content": 1, "expected_version": 3}' "$TC" "$L"
rec PUT $C/app.db '{"content": 1, "expected_version": 3}' "" "$L"
rec PUT /v1/projects/BAD/configs/app.db '{"content": 1, "expected_version": 3}' "$T" "$L"
rec PUT $C/app.db "@$TMP/big.json" "$TA" "$L"

rec DELETE "$C/new.key?expected_version=1" "" "$TA" "$F"
expect_code 200
rec DELETE "$C/new.key?expected_version=2" "" "$TA" "$F"
rec DELETE "$C/app.db?expected_version=1" "" "$TA" "$F"
API_HEADERS=('If-Match: "1"')
rec DELETE $C/app.db "" "$TA" "$F"
API_HEADERS=()
rec DELETE "$C/app.db?expected_version=x" "" "$TA" "$F"
rec DELETE "$C/app.db?expected_version=3" "" "$TB" "$F"
rec DELETE "$C/app.db?expected_version=3" "" "$TC" "$F"
rec DELETE "$C/app.db?expected_version=3" "" "" "$F"
rec DELETE "/v1/projects/BAD/configs/app.db?expected_version=3" "" "$T" "$F"

rec POST $C/app.db/rollback '{"target_version": 1, "expected_version": 3}' "$TA" "$F"
expect_code 200
# new.key: 1 put, 2 its delete (above), 3 written again; version 2 cannot be a rollback's target.
rec PUT $C/new.key '{"content": "again", "expected_version": 2}' "$TA" "$F"
expect_code 200
rec POST $C/new.key/rollback '{"target_version": 2, "expected_version": 3}' "$TA" "$F"
expect_error bad_request 400 target_version
expect_match .message delete
rec POST $C/app.db/rollback '{"target_version": 99, "expected_version": 4}' "$TA" "$F"
rec POST $C/app.db/rollback '{"target_version": 1, "expected_version": 3}' "$TA" "$F"
rec POST $C/never/rollback '{"target_version": 1, "expected_version": 2}' "$TA" "$F"
API_HEADERS=('If-Match: "3"')
rec POST $C/app.db/rollback '{"target_version": 1}' "$TA" "$F"
API_HEADERS=()
# A rollback to content the key's schema (bound since) refuses.
rec POST $C '{"key": "app.loose", "content": {"port": "any"}}' "$TA" "$F"
rec PUT $C/app.loose "{\"content\": {\"port\": 1}, \"expected_version\": 1, \"schema_id\": \"$SID\"}" "$TA" "$F"
rec POST $C/app.loose/rollback '{"target_version": 1, "expected_version": 2}' "$TA" "$F"
rec POST $C/app.db/rollback '{"target_version": 1, "expected_version": 4}' "$TB" "$F"
rec POST $C/app.db/rollback '{"target_version": 1, "expected_version": 4}' "$TC" "$F"
rec POST $C/app.db/rollback '{"target_version": 1, "expected_version": 4}' "" "$F"
rec POST /v1/projects/BAD/configs/app.db/rollback '{"target_version": 1}' "$T" "$F"

# ---- history ----
rec GET $C/app.db/revisions "" "$TB" "$F"
rec GET "$C/app.db/revisions?after_version=1&limit=2" "" "$PKEY" "$L"
rec GET "$C/app.db/revisions?limit=0" "" "$TB" "$F"
rec GET $C/other/revisions "" "$PKEY" "$F"
rec GET $C/app.db/revisions "" "$TC" "$F"
rec GET $C/app.db/revisions "" "" "$F"
rec GET /v1/projects/BAD/configs/app.db/revisions "" "$T" "$F"
P=/v1/projects/oa
rec GET $P/revisions "" "$TB" "$F"
rec GET "$P/revisions?after_revision=2&limit=2" "" "$RKEY" "$L"
rec GET "$P/revisions?limit=1001" "" "$TB" "$F"
rec GET $P/revisions "" "$PKEY" "$F"
rec GET $P/revisions "" "$TC" "$F"
rec GET $P/revisions "" "" "$F"
rec GET /v1/projects/BAD/revisions "" "$T" "$F"
rec GET "$P/watch?after_revision=0" "" "$TB" "$F"
HEADREV=$(jq -r .next_after_revision <<<"$body")
rec GET "$P/watch?after_revision=0&prefix=app." "" "$PKEY" "$L"
rec GET "$P/watch?after_revision=$HEADREV&timeout=1&key=app.db" "" "$TB" "$L"
rec GET "$P/watch?after_revision=0&key=a&prefix=b" "" "$TB" "$F"
rec GET "$P/watch?after_revision=0" "" "$PKEY" "$F"
rec GET "$P/watch?after_revision=0" "" "$TC" "$F"
rec GET "$P/watch?after_revision=0" "" "" "$F"
rec GET "/v1/projects/BAD/watch?after_revision=0" "" "$T" "$F"
rec GET $P/audit/verify "" "$TB" "$F"
rec GET /v1/projects/gone/audit/verify "" "$T" "$L"
rec GET $P/audit/verify "" "$PKEY" "$F"
rec GET $P/audit/verify "" "$TC" "$F"
rec GET $P/audit/verify "" "" "$F"
rec GET /v1/projects/BAD/audit/verify "" "$T" "$F"
rec GET $P/head "" "$TB" "$F"
rec GET /v1/projects/gone/head "" "$T" "$L"
rec GET $P/head "" "$PKEY" "$F"
rec GET $P/head "" "$TC" "$F"
rec GET $P/head "" "" "$F"
rec GET /v1/projects/BAD/head "" "$T" "$F"

# ---- deletes that need the rest done ----
rec DELETE "/v1/schemas/$SID" "" "$TA" "$L"
rec DELETE "/v1/schemas/$SID2" "" "$TB" "$L"
rec DELETE "/v1/schemas/$SID2" "" "$T" "$L"
rec DELETE "/v1/schemas/$SID2" "" "$T" "$L"
rec DELETE /v1/schemas/not-a-uuid "" "$T" "$L"
rec DELETE "/v1/schemas/$SID2" "" "" "$L"
rec DELETE /v1/projects/gone "" "$T" "$F"
rec DELETE /v1/projects/gone "" "$T" "$F"
rec DELETE /v1/projects/oa "" "$TA" "$F"
rec DELETE /v1/projects/oa "" "$KEY" "$F"
rec DELETE /v1/projects/BAD "" "$T" "$F"
rec DELETE /v1/projects/oa "" "" "$F"

# ---- cluster ----
# The membership requests go to a follower, and name what cannot change anything even on a
# leader (an existing id to add, an unknown one to remove), should leadership have moved.
L=$(wait_leader 10) || fail "no leader before the cluster requests"
F=$(((L % 3) + 1))
rec GET /v1/cluster "" "$T" "$F"
rec GET "/v1/cluster?health=true" "" "$T" "$L"
rec GET "/v1/cluster?health=maybe" "" "$T" "$L"
rec GET /v1/cluster "" "$TA" "$L"
rec GET /v1/cluster "" "" "$L"
rec POST /v1/cluster/members "{\"id\": $L, \"address\": \"127.0.0.1:9\"}" "$T" "$F"
rec POST /v1/cluster/members '{"id": 0, "address": "127.0.0.1:9"}' "$T" "$L"
rec POST /v1/cluster/members '{"id": 9, "address": "127.0.0.1:9"}' "$TA" "$L"
rec POST /v1/cluster/members '{"id": 9, "address": "127.0.0.1:9"}' "" "$L"
rec DELETE /v1/cluster/members/7 "" "$T" "$F"
rec DELETE /v1/cluster/members/x1 "" "$T" "$L"
rec DELETE /v1/cluster/members/"$F" "" "$TA" "$L"
rec DELETE /v1/cluster/members/"$F" "" "" "$L"
rec POST /v1/cluster/transfer '{}' "$T" "$F"
rec POST /v1/cluster/transfer '{"id": "two"}' "$T" "$L"
rec POST /v1/cluster/transfer '{}' "$TA" "$L"
rec POST /v1/cluster/transfer '{}' "" "$L"
rec POST /v1/cluster/transfer "{\"id\": $F}" "$T" "$L"
expect_code 200

# ---- the console ----
rec GET /ui "" "" "$F"
rec GET /ui/ "" "" "$L"
etag=$(header_value ETag)
API_HEADERS=("If-None-Match: $etag")
rec GET /ui/ "" "" "$L"
API_HEADERS=()
n=0
for f in "$SRC"/ui/*; do
  [[ -f $f ]] || continue
  rec GET "/ui/${f##*/}" "" "" "$F"
  if [[ $n == 0 ]]; then
    etag=$(header_value ETag)
    API_HEADERS=("If-None-Match: $etag")
    rec GET "/ui/${f##*/}" "" "" "$F"
    API_HEADERS=()
  fi
  n=$((n + 1))
done
rec GET /ui/no-such-file.js "" "" "$F"

# ---- logout: last, it ends the sessions ----
API_HEADERS=("$COOKIE")
rec POST /v1/auth/logout "" "" "$F"
API_HEADERS=("$COOKIE" "X-CSRF-Token: $CSRF")
rec POST /v1/auth/logout "" "" "$F"
API_HEADERS=()
rec POST /v1/auth/logout "" "$TC" "$L"
rec POST /v1/auth/logout "" "$TC" "$L"

wait "$SLOW_READ" || fail "the stale read with min_index did not get an answer"
[[ -z ${OPENAPI_KEEP:-} ]] || cp -r "$REC" "$OPENAPI_KEEP"
echo "openapi: $NREC answers recorded after $SECONDS s"
CONCLAVE_BIN=$BIN "$PY" "$CHECK" responses "$YAML" "$REC" "$TMP/skipped" ||
  fail "real answers disagree with docs/openapi.yaml (above)"
test_done openapi
