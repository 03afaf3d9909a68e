# The role matrix of docs/api.md: every endpoint, called by every kind of caller, answers
# exactly the status the contract gives (401 bad credentials, 403 role too low or an API key
# outside its project's editor rights, 404 a project the caller has no role in), followed by
# the semantics around roles (last admin, logout, deletion) and the shape of the answers.
source "$(dirname "$0")/../lib/lib.sh"
source "$(dirname "$0")/../lib/node_lib.sh"
make_test_db api_roles
run "$BIN" migrate up
expect_status 0

PW=roles-test-password-1

# --- the cast -----------------------------------------------------------------------------
ROOT_ID=$(create_user root@example.com "$PW" --admin)
start_node 1
T_ROOT=$(login root@example.com "$PW")

# new_user EMAIL: created by the instance admin through the API; prints the id.
new_user() {
  api POST /v1/users "{\"email\": \"$1\", \"password\": \"$PW\"}" "$T_ROOT"
  expect_code 201
  expect_match .id "$UUID_RE"
  json_get id
}

ALICE_ID=$(new_user alice@example.com)
BOB_ID=$(new_user bob@example.com)
CAROL_ID=$(new_user carol@example.com)
DAVE_ID=$(new_user dave@example.com)
ERIN_ID=$(new_user erin@example.com) # a bystander: the target of user and role rows
T_ALICE=$(login alice@example.com "$PW")
T_BOB=$(login bob@example.com "$PW")
T_CAROL=$(login carol@example.com "$PW")
T_DAVE=$(login dave@example.com "$PW")

# new_project TOKEN ID: prints the project's first API key.
new_project() {
  api POST /v1/projects "{\"id\": \"$2\", \"name\": \"project $2\"}" "$1"
  expect_code 201
  jq -r .api_key.key <<<"$body"
}

# grant TOKEN PROJECT USER_ID LEVEL
grant() {
  api POST "/v1/projects/$2/roles" \
    "{\"user_id\": \"$3\", \"role_level\": \"$4\"}" "$1"
  expect_code 200
}

K_ONE=$(new_project "$T_ALICE" p-one)
# A read-scope key of p-one (the rkey column of the matrix).
api POST /v1/projects/p-one/api-keys '{"name": "readers", "scope": "read"}' "$T_ALICE"
expect_code 201
K_READ=$(json_get key)
api POST /v1/projects/p-one/api-keys '{"name": "app-writers", "config_prefix": "app."}' "$T_ALICE"
expect_code 201
K_PREFIX=$(json_get key)
new_project "$T_ALICE" p-two >/dev/null
new_project "$T_DAVE" p-dave >/dev/null
grant "$T_ALICE" p-one "$BOB_ID" viewer
grant "$T_ALICE" p-one "$CAROL_ID" editor

# A revoked key of p-one: it works, is revoked, and stops working on this node within 1 s.
api POST /v1/projects/p-one/api-keys '{"name": "to be revoked"}' "$T_ALICE"
expect_code 201
K_REV=$(jq -r .key <<<"$body")
K_REV_ID=$(jq -r .id <<<"$body")
api GET /v1/projects/p-one "" "$K_REV"
expect_code 200
api DELETE "/v1/projects/p-one/api-keys/$K_REV_ID" "" "$T_ALICE"
expect_code 204
t0=$(now_ms)
while :; do
  api GET /v1/projects/p-one "" "$K_REV"
  [[ $code == 401 ]] && break
  (($(now_ms) - t0 < 1000)) || fail "a revoked key still answers $code on the revoking node after 1 s"
  sleep 0.05
done

# A schema of alice's, read by the GET rows.
api POST /v1/schemas '{"name": "alice schema", "schema_content": {"type": "object"}}' "$T_ALICE"
expect_code 201
S_ALICE=$(jq -r .id <<<"$body")

# An expired session of alice's. The node may cache sessions, so the row is aged while the
# node is stopped; the restarted node can only learn about the session from PostgreSQL.
session_hashes() {
  sql "SELECT encode(token_hash, 'hex') FROM sessions WHERE user_id = '$ALICE_ID' ORDER BY 1"
}
session_hashes >"$TMP/sessions.before"
T_EXP=$(login alice@example.com "$PW")
api GET /v1/users/me "" "$T_EXP"
expect_code 200
session_hashes >"$TMP/sessions.after"
exp_hash=$(comm -13 "$TMP/sessions.before" "$TMP/sessions.after")
[[ $exp_hash =~ ^[0-9a-f]{64}$ ]] || fail "expected exactly one new session row for alice, got <$exp_hash>"
stop_node 1
expect_eq "$(sql "UPDATE sessions SET created_at = created_at - interval '1 hour',
  expires_at = created_at - interval '1 hour' + interval '1 second'
  WHERE token_hash = decode('$exp_hash', 'hex') RETURNING 1")" 1 "sessions aged"
expect_eq "$(sql "SELECT expires_at > created_at AND expires_at < now() - interval '10 minutes'
  FROM sessions WHERE token_hash = decode('$exp_hash', 'hex')")" t "the aged session is expired"
start_node 1

# --- the matrix ---------------------------------------------------------------------------
CALLERS=(none malformed unknown expired revoked key rkey pkey viewer editor admin other iadmin)
# none       no Authorization header
# malformed  "Bearer cs_not*a*token"
# unknown    a well-formed session token nobody was given
# expired    alice's session, past expires_at
# revoked    a revoked API key of p-one
# key        a live API key of the target project (p-one's, or the fresh project's own)
# rkey       a live read-scope API key of p-one (docs/api.md, "API keys")
# pkey       a live read-write API key of p-one limited to the config prefix "app." (none of
#            these endpoints is a config: it reaches what rkey reaches; configs_api.sh covers
#            the config endpoints inside and outside its prefix)
# viewer     bob: viewer of p-one (and of every {fresh-project})
# editor     carol: editor of p-one (and of every {fresh-project})
# admin      alice: admin of p-one, p-two (and of every {fresh-project})
# other      dave: admin of p-dave only
# iadmin     root: the instance admin, no project role
declare -A EMAIL=([viewer]=bob [editor]=carol [admin]=alice [other]=dave [iadmin]=root)
declare -A SESSION=([viewer]=$T_BOB [editor]=$T_CAROL [admin]=$T_ALICE [other]=$T_DAVE
  [iadmin]=$T_ROOT)
UNKNOWN_TOKEN="cs_$(rand_b64url 43)"

# Fresh targets, so that the rows may run in any order. Each sets FRESH (and FRESH_KEY).
n_fresh=0
fresh_user() {
  n_fresh=$((n_fresh + 1))
  api POST /v1/users "{\"email\": \"fresh$n_fresh@example.com\", \"password\": \"$PW\"}" \
    "$T_ROOT"
  expect_code 201
  FRESH=$(json_get id)
}
fresh_project() {
  n_fresh=$((n_fresh + 1))
  FRESH="p-fresh-$n_fresh"
  FRESH_KEY=$(new_project "$T_ALICE" "$FRESH")
  grant "$T_ALICE" "$FRESH" "$BOB_ID" viewer
  grant "$T_ALICE" "$FRESH" "$CAROL_ID" editor
}
fresh_key() {
  api POST /v1/projects/p-one/api-keys '{"name": "fresh"}' "$T_ALICE"
  expect_code 201
  FRESH=$(json_get id)
}
fresh_role() {
  fresh_user
  grant "$T_ALICE" p-one "$FRESH" viewer
}
fresh_schema() {
  api POST /v1/schemas '{"name": "fresh", "schema_content": {"type": "object"}}' "$T_ALICE"
  expect_code 201
  FRESH=$(json_get id)
}

# do_row METHOD PATH CALLER: prepares the targets, then makes the request.
do_row() {
  local m=$1 p=$2 c=$3 req= key=$K_ONE tok
  case $p in
  *'{fresh-project}'*) fresh_project && key=$FRESH_KEY && p=${p//'{fresh-project}'/$FRESH} ;;
  *'{fresh-user}'*) fresh_user && p=${p//'{fresh-user}'/$FRESH} ;;
  *'{fresh-key}'*) fresh_key && p=${p//'{fresh-key}'/$FRESH} ;;
  *'{fresh-role}'*) fresh_role && p=${p//'{fresh-role}'/$FRESH} ;;
  *'{fresh-schema}'*) fresh_schema && p=${p//'{fresh-schema}'/$FRESH} ;;
  *'{erin}'*) p=${p//'{erin}'/$ERIN_ID} ;;
  *'{schema}'*) p=${p//'{schema}'/$S_ALICE} ;;
  esac
  case "$m $2" in
  "POST /v1/auth/login") req="{\"email\": \"alice@example.com\", \"password\": \"$PW\"}" ;;
  "POST /v1/users")
    n_fresh=$((n_fresh + 1))
    req="{\"email\": \"row$n_fresh@example.com\", \"password\": \"$PW\"}"
    ;;
  "POST /v1/projects")
    n_fresh=$((n_fresh + 1))
    req="{\"id\": \"p-row-$n_fresh\", \"name\": \"row\"}"
    ;;
  "POST /v1/projects/"*/api-keys) req='{"name": "row"}' ;;
  "POST /v1/projects/"*/roles)
    fresh_user
    req="{\"user_id\": \"$FRESH\", \"role_level\": \"viewer\"}"
    ;;
  "POST /v1/schemas") req='{"name": "row", "schema_content": {"type": "object"}}' ;;
  "PUT /v1/schemas/"*) req='{"name": "renamed"}' ;;
  esac
  case $c in
  none) tok= ;;
  malformed) tok='cs_not*a*token' ;;
  unknown) tok=$UNKNOWN_TOKEN ;;
  expired) tok=$T_EXP ;;
  revoked) tok=$K_REV ;;
  key) tok=$key ;;
  rkey) tok=$K_READ ;;
  pkey) tok=$K_PREFIX ;;
  *)
    tok=${SESSION[$c]}
    # Logging out kills the session: use a fresh one.
    [[ "$m $p" != "POST /v1/auth/logout" ]] || tok=$(login "${EMAIL[$c]}@example.com" "$PW")
    ;;
  esac
  api "$m" "$p" "$req" "$tok"
}

declare -A ERROR_OF=([400]=bad_request [401]=unauthorized [403]=forbidden [404]=not_found
  [409]=conflict)

# One line per endpoint, one column per caller (see CALLERS above). "-" skips a cell.
# METHOD PATH                             none mal unk exp rev key rkey pkey view edit admn othr iadm
MATRIX=$(
  cat <<'EOF'
POST   /v1/auth/login                     200  -    -    -    -    -    -    -    -    -    -    -    -
POST   /v1/auth/logout                    401  401  401  401  401  403  403  403  204  204  204  204  204
GET    /v1/users/me                       401  401  401  401  401  403  403  403  200  200  200  200  200
POST   /v1/users                          401  401  401  401  401  403  403  403  403  403  403  403  201
GET    /v1/users                          401  401  401  401  401  403  403  403  403  403  403  403  200
GET    /v1/users/{erin}                   401  401  401  401  401  403  403  403  403  403  403  403  200
DELETE /v1/users/{fresh-user}             401  401  401  401  401  403  403  403  403  403  403  403  204
POST   /v1/projects                       401  401  401  401  401  403  403  403  201  201  201  201  201
GET    /v1/projects                       401  401  401  401  401  403  403  403  200  200  200  200  200
GET    /v1/projects/p-one                 401  401  401  401  401  200  200  200  200  200  200  404  200
GET    /v1/projects/p-two                 401  401  401  401  401  404  404  404  404  404  200  404  200
GET    /v1/projects/p-dave                401  401  401  401  401  404  404  404  404  404  404  200  200
GET    /v1/projects/p-missing             401  401  401  401  401  404  404  404  404  404  404  404  404
DELETE /v1/projects/{fresh-project}       401  401  401  401  401  403  404  404  403  403  204  404  204
POST   /v1/projects/p-one/api-keys        401  401  401  401  401  403  403  403  403  403  201  404  201
GET    /v1/projects/p-one/api-keys        401  401  401  401  401  403  403  403  403  403  200  404  200
DELETE /v1/projects/p-one/api-keys/{fresh-key} 401  401  401  401  401  403  403  403  403  403  204  404  204
GET    /v1/projects/p-two/api-keys        401  401  401  401  401  404  404  404  404  404  200  404  200
POST   /v1/projects/p-two/api-keys        401  401  401  401  401  404  404  404  404  404  201  404  201
GET    /v1/projects/p-one/roles           401  401  401  401  401  403  403  403  403  403  200  404  200
POST   /v1/projects/p-one/roles           401  401  401  401  401  403  403  403  403  403  200  404  200
DELETE /v1/projects/p-one/roles/{fresh-role} 401  401  401  401  401  403  403  403  403  403  204  404  204
GET    /v1/projects/p-two/roles           401  401  401  401  401  404  404  404  404  404  200  404  200
POST   /v1/projects/p-two/roles           401  401  401  401  401  404  404  404  404  404  200  404  200
POST   /v1/schemas                        401  401  401  401  401  403  403  403  201  201  201  201  201
GET    /v1/schemas                        401  401  401  401  401  403  403  403  200  200  200  200  200
GET    /v1/schemas/{schema}               401  401  401  401  401  403  403  403  200  200  200  200  200
PUT    /v1/schemas/{fresh-schema}         401  401  401  401  401  403  403  403  403  403  200  403  200
DELETE /v1/schemas/{fresh-schema}         401  401  401  401  401  403  403  403  403  403  204  403  204
EOF
)

# Run every cell. Error bodies are checked afterwards in one jq run (jq starts slowly).
declare -A CELL=()
ROWS=()
: >"$TMP/grid.why"
: >"$TMP/grid.errors"
while read -r -a f; do
  [[ ${#f[@]} -eq $((2 + ${#CALLERS[@]})) ]] || fail "matrix line has ${#f[@]} fields: ${f[*]}"
  r=${#ROWS[@]}
  ROWS+=("${f[0]} ${f[1]}")
  for i in "${!CALLERS[@]}"; do
    want=${f[$((i + 2))]}
    CELL[$r,$i]=-
    [[ $want != - ]] || continue
    do_row "${f[0]}" "${f[1]}" "${CALLERS[$i]}"
    CELL[$r,$i]=$code
    if [[ $code != "$want" ]]; then
      CELL[$r,$i]="$code!$want"
      echo "${f[0]} ${f[1]} as ${CALLERS[$i]}: expected $want, got $code ($last_req): ${body:0:300}" >>"$TMP/grid.why"
    elif [[ -n ${ERROR_OF[$want]:-} ]]; then
      if [[ $(header_value Content-Type) != application/json* ]]; then
        CELL[$r,$i]="${code}e"
        echo "${f[0]} ${f[1]} as ${CALLERS[$i]}: Content-Type should be application/json, got <$(header_value Content-Type)>" >>"$TMP/grid.why"
      fi
      printf '%s\t%s\t%s\n' "$r,$i" "${ERROR_OF[$want]}" "${body//$'\n'/ }" >>"$TMP/grid.errors"
    fi
  done
done <<<"$MATRIX"

# {"error": CODE, "message": lowercase text} for every 4xx cell.
jq -R -r 'split("\t") as [$cell, $want, $b]
  | ($b | try fromjson catch null) as $j
  | if ($j | type) == "object" and $j.error == $want and ($j.message | type) == "string"
       and ($j.message | length) > 0 and ($j.message | test("^[A-Z][a-z]") | not)
    then empty else "\($cell)\t\($want)\t\($b)" end' "$TMP/grid.errors" >"$TMP/grid.bad"
while IFS=$'\t' read -r cell want b; do
  CELL[$cell]="${CELL[$cell]}e"
  r=${cell%,*}
  i=${cell#*,}
  echo "${ROWS[$r]} as ${CALLERS[$i]}: expected {\"error\": \"$want\", \"message\": lowercase text}, got: ${b:0:300}" >>"$TMP/grid.why"
done <"$TMP/grid.bad"

echo "Role matrix (cell = status; GOT!WANT marks a wrong status, CODEe a wrong error body):"
printf '%-47s' "METHOD PATH"
printf ' %-9s' "${CALLERS[@]}"
printf '\n'
matrix_fails=0
for r in "${!ROWS[@]}"; do
  printf '%-47s' "${ROWS[$r]}"
  for i in "${!CALLERS[@]}"; do
    printf ' %-9s' "${CELL[$r,$i]}"
    [[ ${CELL[$r,$i]} =~ ^[0-9-]+$ ]] || matrix_fails=$((matrix_fails + 1))
  done
  printf '\n'
done
if ((matrix_fails > 0)); then
  echo "FAIL: $matrix_fails matrix cell(s) differ from docs/api.md:" >&2
  cat "$TMP/grid.why" >&2
  SOFT_FAILS=$((SOFT_FAILS + matrix_fails))
fi

# --- semantics around the matrix ----------------------------------------------------------

# Logout kills exactly the calling session.
T=$(login bob@example.com "$PW")
api POST /v1/auth/logout "" "$T"
soft expect_code 204
soft expect_empty
api GET /v1/users/me "" "$T"
soft expect_error unauthorized 401
api POST /v1/auth/logout "" "$T"
soft expect_error unauthorized 401
api GET /v1/users/me "" "$T_BOB"
soft expect_code 200

# Login: wrong password and unknown email get the same 401.
api POST /v1/auth/login "$(j '{email: "alice@example.com", password: "wrong-password-1"}')"
soft expect_error unauthorized 401
wrong_pw_body=$(jq -c . <<<"$body" 2>/dev/null || echo "$body")
api POST /v1/auth/login "$(j --arg p "$PW" '{email: "nobody@example.com", password: $p}')"
soft expect_error unauthorized 401
[[ $(jq -c . <<<"$body" 2>/dev/null || echo "$body") == "$wrong_pw_body" ]] ||
  soft fail "login: unknown email and wrong password should answer the same, got <$wrong_pw_body> and <$body>"

# Tokens in the query string are ignored; only the Authorization header counts.
for q in "access_token=$T_ALICE" "token=$T_ALICE" "api_key=$K_ONE"; do
  api GET "/v1/users/me?$q"
  soft expect_error unauthorized 401
done
api GET "/v1/projects/p-one?api_key=$K_ONE"
soft expect_error unauthorized 401

# Malformed Authorization headers.
K_ONE_TAMPERED="${K_ONE:0:${#K_ONE}-1}$([[ ${K_ONE: -1} == A ]] && echo B || echo A)"
for t in "hdr:Basic $(printf 'alice@example.com:%s' "$PW" | base64 -w0)" "hdr:Bearer" \
  "hdr:Bearer " "hdr:$T_ALICE" "hdr:Token $T_ALICE" "cs_" "cs_$(rand_b64url 42)" \
  "${T_ALICE}x" "ck_0123456789ab_$(rand_b64url 43)" "ck_$(rand_b64url 43)" \
  "$K_ONE_TAMPERED" "${K_ONE}x" "xx${T_ALICE:2}"; do
  api GET /v1/projects/p-one "" "$t"
  soft expect_error unauthorized 401
done

# An instance admin cannot delete himself.
api DELETE "/v1/users/$ROOT_ID" "" "$T_ROOT"
soft expect_error conflict 409
api GET /v1/users/me "" "$T_ROOT"
soft expect_code 200

# Deleting a user revokes their sessions; the user is gone for the API.
fresh_user
F_ID=$FRESH
F_EMAIL="fresh$n_fresh@example.com"
T_F=$(login "$F_EMAIL" "$PW")
api DELETE "/v1/users/$F_ID" "" "$T_ROOT"
soft expect_code 204
api GET /v1/users/me "" "$T_F"
soft expect_error unauthorized 401
api POST /v1/auth/login "$(j --arg e "$F_EMAIL" --arg p "$PW" '{email: $e, password: $p}')"
soft expect_error unauthorized 401
api GET "/v1/users/$F_ID" "" "$T_ROOT"
soft expect_error not_found 404
api DELETE "/v1/users/$F_ID" "" "$T_ROOT"
soft expect_error not_found 404
api GET "/v1/users/$(cat /proc/sys/kernel/random/uuid)" "" "$T_ROOT"
soft expect_error not_found 404

# The last admin of a project can be neither demoted nor removed.
fresh_project
P=$FRESH
api DELETE "/v1/projects/$P/roles/$ALICE_ID" "" "$T_ALICE"
soft expect_error conflict 409
api POST "/v1/projects/$P/roles" "$(j --arg u "$ALICE_ID" '{user_id: $u, role_level: "viewer"}')" "$T_ALICE"
soft expect_error conflict 409
api DELETE "/v1/projects/$P/roles/$ALICE_ID" "" "$T_ROOT"
soft expect_error conflict 409
api GET "/v1/projects/$P" "" "$T_ALICE"
soft expect_json .role admin
# With a second admin, alice may step down; her new role applies at once.
grant "$T_ALICE" "$P" "$ERIN_ID" admin
api POST "/v1/projects/$P/roles" "$(j --arg u "$ALICE_ID" '{user_id: $u, role_level: "viewer"}')" "$T_ALICE"
soft expect_code 200
soft expect_json .role_level viewer
api GET "/v1/projects/$P" "" "$T_ALICE"
soft expect_code 200
soft expect_json .role viewer
api GET "/v1/projects/$P/roles" "" "$T_ALICE"
soft expect_error forbidden 403
api DELETE "/v1/projects/$P" "" "$T_ALICE"
soft expect_error forbidden 403
T_ERIN=$(login erin@example.com "$PW")
api DELETE "/v1/projects/$P/roles/$ALICE_ID" "" "$T_ERIN"
soft expect_code 204
api GET "/v1/projects/$P" "" "$T_ALICE"
soft expect_error not_found 404
api DELETE "/v1/projects/$P/roles/$ALICE_ID" "" "$T_ERIN"
soft expect_error not_found 404
# Promotion applies at once too: carol (editor) becomes admin and may list the roles.
api GET "/v1/projects/$P/roles" "" "$T_CAROL"
soft expect_error forbidden 403
grant "$T_ERIN" "$P" "$CAROL_ID" admin
api GET "/v1/projects/$P/roles" "" "$T_CAROL"
soft expect_code 200

# Granting to an unknown or deleted user: 404. Removing a role nobody has: 404.
api POST /v1/projects/p-one/roles "$(j --arg u "$(cat /proc/sys/kernel/random/uuid)" \
  '{user_id: $u, role_level: "viewer"}')" "$T_ALICE"
soft expect_error not_found 404
api POST /v1/projects/p-one/roles "$(j --arg u "$F_ID" '{user_id: $u, role_level: "viewer"}')" "$T_ALICE"
soft expect_error not_found 404
api DELETE "/v1/projects/p-one/roles/$ERIN_ID" "" "$T_ALICE"
soft expect_error not_found 404

# A deleted project: its keys stop working, it is 404 for everyone and leaves the lists.
fresh_project
P=$FRESH
api GET "/v1/projects/$P" "" "$FRESH_KEY"
soft expect_code 200
api DELETE "/v1/projects/$P" "" "$T_ALICE"
soft expect_code 204
api GET "/v1/projects/$P" "" "$FRESH_KEY"
soft expect_error unauthorized 401
for t in "$T_ALICE" "$T_BOB" "$T_ROOT"; do
  api GET "/v1/projects/$P" "" "$t"
  soft expect_error not_found 404
done
api DELETE "/v1/projects/$P" "" "$T_ALICE"
soft expect_error not_found 404
api GET "/v1/projects?limit=1000" "" "$T_ROOT"
soft expect_json "[.items[].id | select(. == \"$P\")] | length" 0

# Other keys of p-one keep working after one was revoked; a key reaches only its project.
api GET /v1/projects/p-one "" "$K_ONE"
soft expect_code 200
api GET /v1/projects/p-one/api-keys/"$K_REV_ID" "" "$T_ALICE"
soft expect_error method_not_allowed 405
api DELETE "/v1/projects/p-one/api-keys/$K_REV_ID" "" "$T_ALICE"
[[ $code == 204 || $code == 404 ]] ||
  soft fail "$last_req: revoking a revoked key again should be 204 or 404, got $code"
api DELETE "/v1/projects/p-one/api-keys/$(cat /proc/sys/kernel/random/uuid)" "" "$T_ALICE"
soft expect_error not_found 404
# A key id of p-two cannot be revoked through p-one.
api POST /v1/projects/p-two/api-keys '{}' "$T_ALICE"
expect_code 201
K_TWO=$(jq -r .key <<<"$body")
K_TWO_ID=$(jq -r .id <<<"$body")
api DELETE "/v1/projects/p-one/api-keys/$K_TWO_ID" "" "$T_ALICE"
soft expect_error not_found 404
api GET /v1/projects/p-two "" "$K_TWO"
soft expect_code 200
api GET /v1/projects/p-one "" "$K_TWO"
soft expect_error not_found 404

# Schemas: only the creator or an instance admin changes or deletes one.
api POST /v1/schemas '{"name": "bob schema", "schema_content": true}' "$T_BOB"
expect_code 201
S_BOB=$(jq -r .id <<<"$body")
api PUT "/v1/schemas/$S_BOB" '{"name": "by alice"}' "$T_ALICE"
soft expect_error forbidden 403
api DELETE "/v1/schemas/$S_BOB" "" "$T_DAVE"
soft expect_error forbidden 403
api PUT "/v1/schemas/$S_BOB" '{"name": "bob renamed"}' "$T_BOB"
soft expect_code 200
soft expect_json .name "bob renamed"
api GET "/v1/schemas/$S_BOB" "" "$T_CAROL"
soft expect_json .name "bob renamed"
api DELETE "/v1/schemas/$S_BOB" "" "$T_BOB"
soft expect_code 204
api GET "/v1/schemas/$S_BOB" "" "$T_BOB"
soft expect_error not_found 404

# --- the shape of the answers -------------------------------------------------------------
api GET /health
soft expect_code 200
soft expect_json .status ok
api GET /ready
soft expect_code 200
soft expect_json .status ready

api POST /v1/auth/login "$(j --arg p "$PW" '{email: "carol@example.com", password: $p}')"
soft expect_code 200
soft expect_json .user_id "$CAROL_ID"
soft expect_match .expires_at "$TIME_RE"
exp=$(date -d "$(jq -r .expires_at <<<"$body")" +%s 2>/dev/null || echo 0)
(((exp - $(date +%s)) > 86400 - 300 && (exp - $(date +%s)) < 86400 + 300)) ||
  soft fail "login: expires_at should be about 24 h from now (default session_ttl_s), got $(jq -r .expires_at <<<"$body")"
soft expect_header X-Request-Id '.'

api GET /v1/users/me "" "$T_BOB"
soft expect_json .id "$BOB_ID"
soft expect_json .email bob@example.com
soft expect_json .is_admin false
soft expect_match .created_at "$TIME_RE"
soft expect_json '[keys[] | select(test("password|hash"))] | length' 0
api GET /v1/users/me "" "$T_ROOT"
soft expect_json .is_admin true

api POST /v1/users "$(j --arg p "$PW" '{email: "shape@example.com", password: $p}')" "$T_ROOT"
soft expect_code 201
soft expect_match .id "$UUID_RE"
soft expect_json .email shape@example.com
soft expect_json .is_admin false
soft expect_match .created_at "$TIME_RE"
soft expect_json '[keys[] | select(test("password|hash"))] | length' 0
api POST /v1/users "$(j --arg p "$PW" '{email: "shape-admin@example.com", password: $p, is_admin: true}')" "$T_ROOT"
soft expect_code 201
soft expect_json .is_admin true
api GET "/v1/users/$ERIN_ID" "" "$T_ROOT"
soft expect_json .id "$ERIN_ID"
soft expect_json .email erin@example.com
soft expect_json .is_admin false
soft expect_json '[keys[] | select(test("password|hash"))] | length' 0

# Users page by page, ordered by id: every user exactly once, then next_after null.
api GET "/v1/users?limit=1000" "" "$T_ROOT"
soft expect_code 200
soft expect_json '.next_after' null
jq -r '.items[].id' <<<"$body" >"$TMP/users.all"
soft expect_eq "$(wc -l <"$TMP/users.all")" "$(sql "SELECT count(*) FROM users WHERE deleted_at IS NULL")" "users listed"
after=
: >"$TMP/users.paged"
for ((page = 0; page < 100; page++)); do
  api GET "/v1/users?limit=3${after:+&after=$(jq -rn --arg a "$after" '$a | @uri')}" "" "$T_ROOT"
  expect_code 200
  [[ $(jq '.items | length' <<<"$body") -le 3 ]] || soft fail "$last_req: more than 3 items"
  jq -r '.items[].id' <<<"$body" >>"$TMP/users.paged"
  after=$(jq -r '.next_after // empty' <<<"$body")
  [[ -n $after ]] || break
done
soft expect_eq "$(cat "$TMP/users.paged")" "$(cat "$TMP/users.all")" "users paged with limit=3"
soft expect_eq "$(cat "$TMP/users.all")" "$(sort "$TMP/users.all")" "users ordered by id"

api POST /v1/projects '{"id": "p-shape", "name": "Shape"}' "$T_CAROL"
soft expect_code 201
soft expect_json .id p-shape
soft expect_json .name Shape
soft expect_json .owner_user_id "$CAROL_ID"
soft expect_match .created_at "$TIME_RE"
soft expect_json .role admin
soft expect_match .api_key.id "$UUID_RE"
soft expect_match .api_key.key '^ck_[0-9a-f]{12}_[A-Za-z0-9_-]{43}$'
soft expect_match .api_key.created_at "$TIME_RE"
soft expect_json '.api_key | has("name") and has("prefix")' true
key=$(jq -r .api_key.key <<<"$body")
prefix=$(jq -r .api_key.prefix <<<"$body")
[[ -n $prefix && $key == *"$prefix"* && $key != "$prefix" ]] ||
  soft fail "POST /v1/projects: api_key.prefix <$prefix> should be the public part of api_key.key <$key>"

for who in "$T_BOB:viewer" "$T_CAROL:editor" "$T_ALICE:admin" "$T_ROOT:admin"; do
  api GET /v1/projects/p-one "" "${who%%:*}"
  soft expect_json .id p-one
  soft expect_json .name "project p-one"
  soft expect_json .owner_user_id "$ALICE_ID"
  soft expect_json .role "${who#*:}"
done

api GET "/v1/projects?limit=1000" "" "$T_BOB"
soft expect_json '[.items[] | select(.id == "p-one") | .role] | join(",")' viewer
soft expect_json '[.items[] | select(.id == "p-two" or .id == "p-dave")] | length' 0
soft expect_json '.next_after' null
api GET "/v1/projects?limit=1000" "" "$T_CAROL"
soft expect_json '[.items[] | select(.id == "p-one") | .role] | join(",")' editor
api GET "/v1/projects?limit=1000" "" "$T_DAVE"
soft expect_json '[.items[].id | select(startswith("p-row-") | not)] | sort | join(",")' p-dave
api GET "/v1/projects?limit=1000" "" "$T_ROOT"
soft expect_json '[.items[].id | select(. == "p-one" or . == "p-two" or . == "p-dave")] | sort | join(",")' p-dave,p-one,p-two
soft expect_eq "$(jq '.items | length' <<<"$body")" \
  "$(sql "SELECT count(*) FROM projects WHERE deleted_at IS NULL")" "projects an instance admin sees"
api GET "/v1/projects?limit=1" "" "$T_ALICE"
soft expect_json '.items | length' 1
soft expect_json '.next_after != null' true # alice has more projects than one

api GET "/v1/projects/p-one/api-keys?limit=1000" "" "$T_ALICE"
soft expect_code 200
soft expect_json '[.items[] | select(has("key"))] | length' 0
soft expect_json "[.items[] | select(.id == \"$K_REV_ID\") | .revoked_at | type] | join(\",\")" string
soft expect_match "[.items[] | select(.id == \"$K_REV_ID\") | .revoked_at][0]" "$TIME_RE"
soft expect_json "[.items[] | select(.prefix as \$p | \$p != null and (\"$K_ONE\" | contains(\$p))) | .revoked_at == null] | map(tostring) | join(\",\")" true
[[ $body != *"${K_ONE: -20}"* && $body != *"${K_REV: -20}"* ]] ||
  soft fail "$last_req: the key list must never hold a key: $body"

api GET "/v1/projects/p-one/roles?limit=1000" "" "$T_ALICE"
soft expect_code 200
soft expect_json "[.items[] | select(.user_id == \"$BOB_ID\") | .email + \"=\" + .role_level] | join(\",\")" bob@example.com=viewer
soft expect_json "[.items[] | select(.user_id == \"$CAROL_ID\") | .role_level] | join(\",\")" editor
soft expect_json "[.items[] | select(.user_id == \"$ALICE_ID\") | .role_level] | join(\",\")" admin
soft expect_match "[.items[] | select(.user_id == \"$BOB_ID\") | .created_at][0]" "$TIME_RE"
api POST /v1/projects/p-one/roles "$(j --arg u "$ERIN_ID" '{user_id: $u, role_level: "editor"}')" "$T_ALICE"
soft expect_code 200
soft expect_json '[.user_id, .project_id, .role_level] | join(",")' "$ERIN_ID,p-one,editor"
api POST /v1/projects/p-one/roles "$(j --arg u "$ERIN_ID" '{user_id: $u, role_level: "viewer"}')" "$T_ALICE"
soft expect_code 200
api GET "/v1/projects/p-one/roles?limit=1000" "" "$T_ALICE"
soft expect_json "[.items[] | select(.user_id == \"$ERIN_ID\") | .role_level] | join(\",\")" viewer

api POST /v1/schemas '{"name": "shape", "schema_content": {"type": "object", "required": ["a"]}}' "$T_DAVE"
soft expect_code 201
soft expect_match .id "$UUID_RE"
soft expect_json .name shape
soft expect_json '.schema_content == {"type": "object", "required": ["a"]}' true
soft expect_json .schema_hash "$(printf '%s' '{"required":["a"],"type":"object"}' | sha256sum | cut -c1-64)"
soft expect_json .created_by_user_id "$DAVE_ID"
soft expect_match .created_at "$TIME_RE"
soft expect_match .updated_at "$TIME_RE"
S_SHAPE=$(jq -r .id <<<"$body")
hash1=$(jq -r .schema_hash <<<"$body")
api GET "/v1/schemas/$S_SHAPE" "" "$T_BOB"
soft expect_json .schema_hash "$hash1"
soft expect_json '.schema_content.type' object
api GET "/v1/schemas?limit=1000" "" "$T_BOB"
soft expect_json "[.items[] | select(.id == \"$S_SHAPE\") | .name] | join(\",\")" shape
soft expect_json '[.items[] | select(has("schema_content"))] | length' 0
api PUT "/v1/schemas/$S_SHAPE" '{"schema_content": {"type": "array"}}' "$T_DAVE"
soft expect_code 200
soft expect_json .name shape
soft expect_json .schema_hash "$(printf '%s' '{"type":"array"}' | sha256sum | cut -c1-64)"
soft expect_json '.schema_content == {"type": "array"}' true

finish "api roles"
