# A rollback to a version that is committed but not yet in PostgreSQL (found by the chaos
# checker: a client read version N+1 and rolled back to N before the materializer had written
# N, and got 404). Every node runs with CONCLAVE_FAILPOINT_MATERIALIZER_PAUSE_MS (each batch
# sleeps inside its transaction), so versions 2 and 3 stay queued for a while after raft
# applied them:
#  - reads show version 3 while config_revisions holds only version 1;
#  - a rollback to version 2 (expected 3) is acknowledged as version 4 with version 2's
#    content (a bare JSON string), taken from the leader's queue; a rollback to a queued delete (version 5, the key
#    recreated as 6) is refused with 400 naming target_version;
#  - afterwards config_revisions holds versions 1 to 6 once each, and the audit chain is clean.
source "$(dirname "$0")/../lib/lib.sh"
source "$(dirname "$0")/../lib/node_lib.sh"
source "$(dirname "$0")/../lib/raft_lib.sh"
make_test_db configs_rollback_queued
"$BIN" migrate up >/dev/null

export CONCLAVE_FAILPOINT_MATERIALIZER_PAUSE_MS=1500
raft_up 3
unset CONCLAVE_FAILPOINT_MATERIALIZER_PAUSE_MS
create_user root@example.com root-password-1 --admin >/dev/null
T=$(login root@example.com root-password-1 "$L")
api POST /v1/projects '{"id": "rq", "name": "rollback queued"}' "$T" "$L"
expect_code 201
P=/v1/projects/rq/configs
LURL_VAR="NODE_${L}_URL"
LURL=${!LURL_VAR}

api PUT "$P/k" '{"content": {"n": 1}, "expected_version": 0}' "$T" "$L"
expect_code 201

# bg_put N EXPECTED CONTENT: a write of version N, in the background (acknowledged only once
# PostgreSQL holds it).
BG=()
bg_put() {
  curl -s -o "$TMP/bg$1.body" -w '%{http_code}' --max-time 20 -X PUT \
    -H "Authorization: Bearer $T" -H 'Content-Type: application/json' \
    --data-binary "{\"content\": $3, \"expected_version\": $2}" "$LURL$P/k" \
    >"$TMP/bg$1.code" 2>/dev/null &
  BG+=($!)
}
# wait_version V: until a read shows version V (applied by raft; bounded).
wait_version() {
  local i
  for ((i = 0; i < 100; i++)); do
    api GET "$P/k" "" "$T" "$L"
    [[ $code == 200 && $(jq -r .version <<<"$body") -ge $1 ]] && return 0
    sleep 0.05
  done
  fail "version $1 was never readable: $code $body"
}
bg_put 2 1 '"two"'
wait_version 2
bg_put 3 2 '{"n": 3}'
wait_version 3
queued=$(sql "SELECT count(*) FROM config_revisions WHERE project_id = 'rq' AND key = 'k' AND version >= 2")
[[ $queued == 0 ]] || fail "the pause should keep versions 2 and 3 out of PostgreSQL, found $queued"

api POST "$P/k/rollback" '{"target_version": 2, "expected_version": 3}' "$T" "$L"
expect_code 200
expect_json .version 4
api GET "$P/k" "" "$T" "$L"
expect_json .content two
# A queued delete is no rollback target: delete (version 5) and recreate (6) in the background,
# then roll back to 5 while both are queued.
curl -s -o /dev/null -w '%{http_code}' --max-time 20 -X DELETE -H "Authorization: Bearer $T" \
  "$LURL$P/k?expected_version=4" >"$TMP/bg5.code" 2>/dev/null &
BG+=($!)
for ((i = 0; i < 100; i++)); do
  api GET "$P/k" "" "$T" "$L"
  [[ $code == 404 ]] && break
  sleep 0.05
done
expect_code 404
bg_put 6 5 '{"n": 6}'
wait_version 6
api POST "$P/k/rollback" '{"target_version": 5, "expected_version": 6}' "$T" "$L"
expect_error bad_request 400 target_version
expect_match .message 'version 5 of k is a delete'
for pid in "${BG[@]}"; do
  wait "$pid" || true
done
expect_eq "$(cat "$TMP/bg2.code") $(cat "$TMP/bg3.code") $(cat "$TMP/bg5.code") $(cat "$TMP/bg6.code")" \
  "200 200 200 200" "the background writes"

expect_eq "$(sql "SELECT string_agg(version::text, ',' ORDER BY version) FROM config_revisions \
  WHERE project_id = 'rq' AND key = 'k'")" "1,2,3,4,5,6" "versions of k in config_revisions"
expect_eq "$(sql "SELECT content #>> '{}' FROM config_revisions WHERE project_id = 'rq' AND key = 'k' \
  AND version = 4")" two "the rollback's content (a JSON string, as version 2)"
api GET /v1/projects/rq/audit/verify "" "$T" "$L"
expect_code 200
expect_json .ok true
run "$BIN" audit verify --project rq --source db --database-url "$DATABASE_URL"
expect_status 0
test_done "configs_rollback_queued"
