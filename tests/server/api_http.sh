# HTTP by the book (issue 17 item 4), on a real three-node cluster:
#  - every answer has a Date in IMF-fixdate, close to now;
#  - every 401 says how to authenticate: WWW-Authenticate: Bearer realm="conclave", with
#    error="invalid_token" when a token was sent and refused;
#  - If-Match: "N" (the ETag a read answers) is a compare-and-swap on PUT, DELETE and rollback,
#    If-None-Match: * creates only when the key has no current version; a failed precondition is
#    412 precondition_failed with current_version and the current ETag, never a write; through
#    a follower (forwarded) the same; header and body disagreeing, lists, weak tags and
#    If-Match: * are 400 naming the header; the body's expected_version alone still answers 409;
#  - content larger than a config may hold (the raft entry's cap) is 413 with field content,
#    even when http.max_body_bytes lets the body in.
source "$(dirname "$0")/../lib/lib.sh"
source "$(dirname "$0")/../lib/node_lib.sh"
source "$(dirname "$0")/../lib/raft_lib.sh"
make_test_db api_http
"$BIN" migrate up >/dev/null

raft_ports 3
for i in 1 2 3; do
  raft_config "$i" "1 2 3"
  jq '.http.max_body_bytes = 4194304' "$TMP/rnode$i.json" >"$TMP/rnode$i.json.new"
  mv "$TMP/rnode$i.json.new" "$TMP/rnode$i.json"
  raft_start "$i"
done
L=$(wait_leader 20) || fail "no leader"
F=$(((L % 3) + 1))
PW=api-http-password-1
create_user root@example.com "$PW" --admin >/dev/null
T=$(login root@example.com "$PW" "$L")
api POST /v1/projects '{"id": "hb", "name": "by the book"}' "$T" "$L"
expect_code 201
P=/v1/projects/hb/configs

# --- Date --------------------------------------------------------------------------------
check_date() {
  local d now then
  d=$(header_value Date)
  [[ $d =~ ^(Mon|Tue|Wed|Thu|Fri|Sat|Sun),\ [0-9]{2}\ (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)\ [0-9]{4}\ [0-9]{2}:[0-9]{2}:[0-9]{2}\ GMT$ ]] ||
    fail "$last_req: Date <$d> is not an IMF-fixdate"
  now=$(date +%s)
  then=$(date -d "$d" +%s) || fail "$last_req: Date <$d> does not parse"
  ((then >= now - 60 && then <= now + 60)) || fail "$last_req: Date <$d> is not now ($(date -u))"
}
api GET /v1/projects/hb "" "$T" "$L"
expect_code 200
check_date
api GET /v1/projects/no-such "" "$T" "$F"
expect_code 404
check_date
api GET /health "" "" "$F"
check_date

# --- 401 names the scheme ------------------------------------------------------------------
api GET /v1/projects/hb ""
expect_code 401
expect_header WWW-Authenticate '^Bearer realm="conclave"$'
check_date
api GET /v1/projects/hb "" "cs_not-a-real-token-0000000000000000000000000"
expect_code 401
expect_header WWW-Authenticate '^Bearer realm="conclave", error="invalid_token"$'
api GET /v1/projects/hb "" "hdr:Basic cm9vdDpwdw=="
expect_code 401
expect_header WWW-Authenticate '^Bearer realm="conclave", error="invalid_token"$'
api POST /v1/auth/login '{"email": "root@example.com", "password": "wrong-password-1"}'
expect_code 401
expect_header WWW-Authenticate '^Bearer realm="conclave"'

# --- If-None-Match: * creates only ---------------------------------------------------------
with_headers() {
  API_HEADERS=("$@")
}
with_headers 'If-None-Match: *'
api PUT "$P/k1" '{"content": {"n": 1}}' "$T" "$L"
expect_code 201
expect_json .version 1
api PUT "$P/k1" '{"content": {"n": 2}}' "$T" "$L"
expect_code 412
expect_json .error precondition_failed
expect_json .current_version 1
expect_header ETag '^"1"$'
with_headers
api GET "$P/k1" "" "$T" "$L"
expect_code 200
expect_json .content.n 1
expect_header ETag '^"1"$'

# --- If-Match: "N" is the expected version -------------------------------------------------
with_headers 'If-Match: "1"'
api PUT "$P/k1" '{"content": {"n": 2}}' "$T" "$L"
expect_code 200
expect_json .version 2
# The same precondition again: the key moved on, 412 with the current ETag, nothing written.
api PUT "$P/k1" '{"content": {"n": 3}}' "$T" "$F"
expect_code 412
expect_json .current_version 2
expect_header ETag '^"2"$'
with_headers 'If-Match: "2"'
api PUT "$P/k1" '{"content": {"n": 3}}' "$T" "$F"
expect_code 200
expect_json .version 3
# Header and body agreeing is fine; disagreeing is 400 and writes nothing.
with_headers 'If-Match: "3"'
api PUT "$P/k1" '{"content": {"n": 4}, "expected_version": 3}' "$T" "$L"
expect_code 200
expect_json .version 4
api PUT "$P/k1" '{"content": {"n": 5}, "expected_version": 4}' "$T" "$L"
expect_code 400
expect_json .field expected_version
# Without a header the body alone still answers 409, as before.
with_headers
api PUT "$P/k1" '{"content": {"n": 5}, "expected_version": 1}' "$T" "$L"
expect_code 409
expect_json .error conflict
expect_json .current_version 4
# A key that does not exist: If-Match cannot match.
with_headers 'If-Match: "1"'
api PUT "$P/absent" '{"content": 1}' "$T" "$L"
expect_code 412
expect_json .current_version 0
# Malformed preconditions, each 400 naming the header; none writes.
for h in 'If-Match: *' 'If-Match: W/"4"' 'If-Match: "4", "5"' 'If-Match: 4' 'If-Match: "0"' \
  'If-Match: "x"' 'If-None-Match: "4"'; do
  with_headers "$h"
  api PUT "$P/k1" '{"content": {"n": 9}}' "$T" "$L"
  expect_code 400
  expect_json .field "${h%%:*}"
done
with_headers 'If-Match: "4"' 'If-None-Match: *'
api PUT "$P/k1" '{"content": {"n": 9}}' "$T" "$L"
expect_code 400
with_headers
api GET "$P/k1" "" "$T" "$L"
expect_json .version 4

# --- rollback and delete take If-Match too ---------------------------------------------------
with_headers 'If-Match: "3"'
api POST "$P/k1/rollback" '{"target_version": 1}' "$T" "$L"
expect_code 412
expect_json .current_version 4
with_headers 'If-Match: "4"'
api POST "$P/k1/rollback" '{"target_version": 1}' "$T" "$F"
expect_code 200
expect_json .version 5
with_headers 'If-Match: "4"'
api DELETE "$P/k1" "" "$T" "$L"
expect_code 412
expect_json .current_version 5
with_headers 'If-None-Match: *'
api DELETE "$P/k1" "" "$T" "$L"
expect_code 400
expect_json .field If-None-Match
with_headers 'If-Match: "5"'
api DELETE "$P/k1?expected_version=4" "" "$T" "$L"
expect_code 400
expect_json .field expected_version
api DELETE "$P/k1" "" "$T" "$F"
expect_code 200
expect_json .version 6
with_headers
expect_eq "$(sql "SELECT string_agg(version::text || op::text, ',' ORDER BY version) FROM config_revisions \
  WHERE project_id = 'hb' AND key = 'k1'")" "1put,2put,3put,4put,5rollback,6delete" "k1's history"

# --- 413 for content a config cannot hold ---------------------------------------------------
# 1.2 MiB of content: within http.max_body_bytes (4 MiB here), above the entry's cap.
python3 -c 'import json; print(json.dumps({"content": {"blob": "x" * (1200 * 1024)}, "expected_version": 0}))' >"$TMP/big.json"
api PUT "$P/big" "@$TMP/big.json" "$T" "$L"
expect_code 413
expect_json .error payload_too_large
expect_json .field content
api PUT "$P/big" "@$TMP/big.json" "$T" "$F"
expect_code 413
expect_eq "$(sql "SELECT count(*) FROM config_revisions WHERE key = 'big'")" 0 "revisions of big"

test_done "api http"
