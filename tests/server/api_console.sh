# The console's server side (issue 18 items 1 and 3), on a real three-node cluster:
#  - /ui/ serves every file of ui/, byte for byte, with its media type, an ETag (304 on
#    If-None-Match), and the browser headers: the Content-Security-Policy without inline
#    scripts, nosniff, no framing, no referrer; /ui redirects to /ui/; a missing file is 404,
#    a POST 405; a follower serves the same;
#  - a cookie login ("session": "cookie") sets an HttpOnly, SameSite=Strict session cookie and
#    returns a CSRF token, never the token itself; it needs Content-Type: application/json
#    (415 otherwise); "session" takes only "token" or "cookie";
#  - with the cookie, reads work and GET /v1/users/me gives the CSRF token back; every write
#    needs X-CSRF-Token: missing, wrong or another session's is 403 csrf and writes nothing;
#    the right one writes, also through a follower (which forwards the session as a bearer
#    token); an Authorization header wins over the cookie; an API key or garbage in the cookie
#    is 401; logout deletes the cookie and ends the session;
#  - GET /v1/cluster?health=true (the cluster page) adds each member's own /health, asked by the
#    node served: all three reachable and naming one leader; a killed member is unreachable with
#    the reason; health takes only true or false.
source "$(dirname "$0")/../lib/lib.sh"
source "$(dirname "$0")/../lib/node_lib.sh"
source "$(dirname "$0")/../lib/raft_lib.sh"
make_test_db api_console
"$BIN" migrate up >/dev/null

raft_up 3
F=$(((L % 3) + 1))
PW=api-console-password-1
create_user root@example.com "$PW" --admin >/dev/null
T=$(login root@example.com "$PW" "$L")
api POST /v1/projects '{"id": "ui", "name": "console"}' "$T" "$L"
expect_code 201
KEY=$(json_get api_key.key)
UI_DIR=$CONCLAVE_SOURCE_DIR/ui
CSP="default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

# ---- the console's files ----------------------------------------------------------------
n=0
for f in "$UI_DIR"/*; do
  name=${f##*/}
  api GET "/ui/$name" "" "" "$F"
  expect_code 200
  case $name in
    *.html) type='text/html; charset=utf-8' ;;
    *.js) type='text/javascript; charset=utf-8' ;;
    *.css) type='text/css; charset=utf-8' ;;
    *.svg) type='image/svg+xml' ;;
    *.png) type='image/png' ;;
    *) type=$(header_value Content-Type) ;;
  esac
  expect_eq "$(header_value Content-Type)" "$type" "Content-Type of /ui/$name"
  expect_eq "$(header_value Content-Security-Policy)" "$CSP" "CSP of /ui/$name"
  expect_eq "$(header_value X-Content-Type-Options)" nosniff "nosniff on /ui/$name"
  expect_eq "$(header_value X-Frame-Options)" DENY "X-Frame-Options on /ui/$name"
  expect_eq "$(header_value Referrer-Policy)" no-referrer "Referrer-Policy on /ui/$name"
  cmp -s "$TMP/api.body" "$f" || fail "/ui/$name is not byte for byte ui/$name"
  n=$((n + 1))
done
((n >= 3)) || fail "ui/ should hold the console (index.html, scripts, styles); found $n files"
api GET /ui/ "" "" "$L"
expect_code 200
cmp -s "$TMP/api.body" "$UI_DIR/index.html" || fail "/ui/ is not ui/index.html"
etag=$(header_value ETag)
[[ $etag =~ ^\"[0-9a-f]{16}\"$ ]] || fail "/ui/: ETag should be 16 quoted hex digits, got <$etag>"
API_HEADERS=("If-None-Match: $etag")
api GET /ui/ "" "" "$L"
expect_code 304
[[ -z $body ]] || fail "a 304 has no body, got: ${body:0:100}"
API_HEADERS=('If-None-Match: "0000000000000000"')
api GET /ui/ "" "" "$L"
expect_code 200
API_HEADERS=()
api GET /ui "" "" "$F"
expect_code 301
expect_header Location '^/ui/$'
api GET /ui/no-such-file.js "" "" "$F"
expect_error not_found 404
# Dot segments are names like any other: nothing outside the embedded files is reachable.
np=NODE_${F}_URL
code=$(curl -s --path-as-is -o "$TMP/dots.body" -w '%{http_code}' --max-time 10 \
  "${!np}/ui/../v1/users/me")
[[ $code == 404 ]] || fail "GET /ui/../v1/users/me should be 404, got $code: $(cat "$TMP/dots.body")"
api POST /ui/ '{}' "" "$F"
expect_error method_not_allowed 405
expect_header Allow '^GET$'

# ---- cookie login -------------------------------------------------------------------------
api POST /v1/auth/login "{\"email\": \"root@example.com\", \"password\": \"$PW\", \"session\": \"cookie\"}" "" "$F"
expect_code 200
expect_json '.token' null
expect_json '.user_id | test("^[0-9a-f-]{36}$")' true
CSRF=$(json_get csrf_token)
[[ $CSRF =~ ^[0-9a-f]{64}$ ]] || fail "csrf_token should be 64 hex digits, got <$CSRF>"
SC=$(header_value Set-Cookie)
[[ $SC =~ ^conclave_session=(cs_[A-Za-z0-9_-]{43})\;\ Path=/\;\ Max-Age=[0-9]+\;\ HttpOnly\;\ SameSite=Strict$ ]] ||
  fail "Set-Cookie of a cookie login over plain http: got <$SC>"
COOKIE="Cookie: ${SC%%;*}"

code=$(curl -s -o "$TMP/ct.body" -w '%{http_code}' --max-time 10 -H 'Content-Type: text/plain' \
  --data-binary "{\"email\": \"root@example.com\", \"password\": \"$PW\", \"session\": \"cookie\"}" \
  "$NODE_1_URL/v1/auth/login")
[[ $code == 415 ]] || fail "a cookie login as text/plain should be 415, got $code: $(cat "$TMP/ct.body")"
grep -q 'Content-Type: application/json' "$TMP/ct.body" || fail "the 415 should name the type: $(cat "$TMP/ct.body")"
api POST /v1/auth/login "{\"email\": \"root@example.com\", \"password\": \"$PW\", \"session\": \"jar\"}" "" "$F"
expect_error bad_request 400 session

# ---- requests with the cookie ---------------------------------------------------------------
API_HEADERS=("$COOKIE")
api GET /v1/users/me "" "" "$F"
expect_code 200
expect_json .email root@example.com
expect_json .csrf_token "$CSRF"
api GET /v1/projects/ui "" "" "$F"
expect_code 200
API_HEADERS=()
api GET /v1/users/me "" "$T" "$F"
expect_code 200
expect_json .csrf_token null

writes_before=$(sql "SELECT count(*) FROM config_revisions")
API_HEADERS=("$COOKIE")
api POST /v1/projects/ui/configs '{"key": "c1", "content": {"a": 1}}' "" "$F"
expect_error csrf 403
expect_match .message 'X-CSRF-Token'
API_HEADERS=("$COOKIE" "X-CSRF-Token: ${CSRF:0:63}0")
[[ ${CSRF:63} != 0 ]] || API_HEADERS=("$COOKIE" "X-CSRF-Token: ${CSRF:0:63}1")
api POST /v1/projects/ui/configs '{"key": "c1", "content": {"a": 1}}' "" "$F"
expect_error csrf 403
# Another session's CSRF token does not fit this one.
api POST /v1/auth/login "{\"email\": \"root@example.com\", \"password\": \"$PW\", \"session\": \"cookie\"}" "" "$L"
expect_code 200
OTHER=$(json_get csrf_token)
[[ $OTHER != "$CSRF" ]] || fail "two sessions got one CSRF token"
API_HEADERS=("$COOKIE" "X-CSRF-Token: $OTHER")
api POST /v1/projects/ui/configs '{"key": "c1", "content": {"a": 1}}' "" "$F"
expect_error csrf 403
# The CSRF token alone, without the cookie, is no credential.
API_HEADERS=("X-CSRF-Token: $CSRF")
api POST /v1/projects/ui/configs '{"key": "c1", "content": {"a": 1}}' "" "$F"
expect_error unauthorized 401
expect_eq "$(sql "SELECT count(*) FROM config_revisions")" "$writes_before" "revisions after refused writes"

# The right token writes, through the follower (forwarded) and on the leader.
API_HEADERS=("$COOKIE" "X-CSRF-Token: $CSRF")
api POST /v1/projects/ui/configs '{"key": "c1", "content": {"a": 1}}' "" "$F"
expect_code 201
expect_json .version 1
api PUT /v1/projects/ui/configs/c1 '{"content": {"a": 2}, "expected_version": 1}' "" "$F"
expect_code 200
expect_json .version 2
api DELETE "/v1/projects/ui/configs/c1?expected_version=2" "" "" "$L"
expect_code 200
# GETs need no CSRF token; the cookie reads what was written.
API_HEADERS=("$COOKIE")
api GET "/v1/projects/ui/configs/c1?version=2" "" "" "$F"
expect_code 200
expect_json .content.a 2

# An Authorization header wins: the cookie is not even read.
API_HEADERS=("Cookie: conclave_session=garbage")
api POST /v1/projects/ui/configs '{"key": "c2", "content": 1}' "$T" "$F"
expect_code 201
api GET /v1/users/me "" "" "$F"
expect_error unauthorized 401
expect_match .message 'conclave_session cookie holds no session token'
API_HEADERS=("Cookie: conclave_session=$KEY")
api GET /v1/projects/ui "" "" "$F"
expect_error unauthorized 401
API_HEADERS=("Cookie: theme=dark")
api GET /v1/users/me "" "" "$F"
expect_error unauthorized 401
expect_match .message 'log in to the console'

# ---- logout ---------------------------------------------------------------------------------
API_HEADERS=("$COOKIE")
api POST /v1/auth/logout "" "" "$F"
expect_error csrf 403
API_HEADERS=("$COOKIE" "X-CSRF-Token: $CSRF")
api POST /v1/auth/logout "" "" "$F"
expect_code 204
expect_header Set-Cookie '^conclave_session=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict$'
API_HEADERS=("$COOKIE")
api GET /v1/users/me "" "" "$L"
expect_error unauthorized 401
API_HEADERS=()

# ---- the cluster page's view: every member's own /health, asked by the node served --------
api GET "/v1/cluster?health=true" "" "$T" "$F"
expect_code 200
expect_json '[.members[] | select(.health.reachable)] | length' 3
expect_json "[.members[] | select(.health.state == \"leader\") | .id] | @csv" "$L"
expect_json "[.members[] | .health.leader_id] | unique | @csv" "$L"
expect_json '[.members[] | .health.applied_index | type] | unique | @csv' '"number"'
api GET "/v1/cluster?health=maybe" "" "$T" "$F"
expect_error bad_request 400 health
api GET /v1/cluster "" "$T" "$F"
expect_code 200
expect_json '[.members[] | has("health")] | any' false
D=$(((F % 3) + 1))
[[ $D != "$L" ]] || D=$(((D % 3) + 1))
raft_kill "$D" KILL
api GET "/v1/cluster?health=true" "" "$T" "$F"
expect_code 200
expect_json "[.members[] | select(.id == $D) | .health.reachable] | @csv" false
expect_match ".members[] | select(.id == $D) | .health.error" '/health'
expect_json '[.members[] | select(.health.reachable)] | length' 2
test_done api_console
