# No sequence of API calls stops the materializer (issue 14, item 2), and a batch that still
# fails is reported rather than retried silently.
#
# One single-voter node runs with the failpoint CONCLAVE_FAILPOINT_MATERIALIZER_PAUSE_MS
# (docs/hacking.md): every batch pauses inside its transaction, so a write's revision is
# committed in raft but not yet in PostgreSQL for that long. Each race is played inside that
# window: the write goes out in the background, the racing call is made, and the write must
# still be acknowledged and materialized, and a later write too.
#   1. the schema the write is bound to is deleted (before migration 013 the hard DELETE
#      removed the row configs.schema_id needs: the batch failed for good);
#   2. the schema is updated (the config keeps the hash it was validated against);
#   3. the project is deleted;
#   4. content PostgreSQL's jsonb would refuse (\u0000, lone surrogates) or that no double
#      holds (1e400, integers beyond 64 bits) is refused by the API with 400 before anything is
#      proposed (the body parser refuses it, naming line and column), and tiny or huge doubles
#      that jsonb stores fine are accepted and materialized;
#   5. a batch PostgreSQL refuses (the schema row removed behind the API's back, by SQL) is
#      reported: a log line with the revision and PostgreSQL's error, /ready 503
#      materializer_stalled naming the revision, /metrics conclave_materializer_stalled 1 and
#      failures counted; restoring the row lets it resume, and /ready is 200 again.
source "$(dirname "$0")/../lib/lib.sh"
source "$(dirname "$0")/../lib/node_lib.sh"
source "$(dirname "$0")/../lib/raft_lib.sh"

PAUSE_MS=2500
make_test_db materializer_races
"$BIN" migrate up >/dev/null
at_exit 'stop_nodes'
raft_ports 1
raft_config 1 "1"
export CONCLAVE_FAILPOINT_MATERIALIZER_PAUSE_MS=$PAUSE_MS
raft_start 1
unset CONCLAVE_FAILPOINT_MATERIALIZER_PAUSE_MS
leader=$(wait_leader 20) || fail "no leader"
create_user admin@example.com "admin-password-1" --admin >/dev/null
token=$(login admin@example.com "admin-password-1" 1)
for p in races gone; do
  api POST /v1/projects "{\"id\": \"$p\", \"name\": \"Races\"}" "$token" 1
  expect_code 201
done
schema='{"type": "object", "properties": {"n": {"type": "integer"}}}'

# bg_write N PROJECT KEY BODY: PUT in the background; the status lands in $TMP/bg.N.
bg_write() {
  curl -s -o "$TMP/bg.$1.body" -w '%{http_code}' --max-time 20 -X PUT \
    -H "Authorization: Bearer $token" -H 'Content-Type: application/json' -d "$4" \
    "$NODE_1_URL/v1/projects/$2/configs/$3" >"$TMP/bg.$1" 2>/dev/null &
  BG=$!
}

# wait_materialized RAFT_INDEX: the cursor reaches it within 15 s (bounded poll).
wait_materialized() {
  local i
  for ((i = 0; i < 150; i++)); do
    [[ $(sql "SELECT raft_index >= $1 FROM materializer_cursor") == t ]] && return 0
    sleep 0.1
  done
  fail "the materializer did not reach raft index $1 within 15 s; cursor $(sql \
    'SELECT raft_index FROM materializer_cursor'); log: $(tail -n 5 "$TMP/node1.log")"
}

# new_schema NAME: creates a schema; prints its id.
new_schema() {
  api POST /v1/schemas "{\"name\": \"$1\", \"schema_content\": $schema}" "$token" 1
  expect_code 201
  json_get id
}

# --- 1. schema deleted while a write bound to it is queued -----------------------------------
s1=$(new_schema race-delete)
bg_write 1 races k1 "{\"content\": {\"n\": 1}, \"expected_version\": 0, \"schema_id\": \"$s1\", \"request_id\": \"race-1\"}"
sleep 1 # the write is committed and its batch is paused inside the transaction
api DELETE "/v1/schemas/$s1" "" "$token" 1
expect_code 204
wait "$BG" || true
expect_eq "$(<"$TMP/bg.1")" 201 "write bound to a schema deleted before it was materialized"
idx1=$(jq -r .raft_index "$TMP/bg.1.body")
wait_materialized "$idx1"
expect_eq "$(sql "SELECT version, schema_id FROM configs WHERE project_id = 'races' AND key = 'k1'")" \
  "1|$s1" "configs row of the write bound to the deleted schema"
api GET "/v1/schemas/$s1" "" "$token" 1
expect_code 404
# The deleted schema cannot be bound again, and the next write to k1 says so (inherited).
api PUT /v1/projects/races/configs/k1 '{"content": {"n": 2}, "expected_version": 1}' "$token" 1
expect_error bad_request 400 schema_id
api PUT /v1/projects/races/configs/k1 '{"content": {"n": 2}, "expected_version": 1, "schema_id": null}' "$token" 1
expect_code 200
wait_materialized "$(jq -r .raft_index <<<"$body")"

# --- 2. schema updated while a write bound to it is queued -----------------------------------
s2=$(new_schema race-update)
old_hash=$(sql "SELECT encode(schema_hash, 'hex') FROM config_schemas WHERE id = '$s2'")
bg_write 2 races k2 "{\"content\": {\"n\": 1}, \"expected_version\": 0, \"schema_id\": \"$s2\"}"
sleep 1
api PUT "/v1/schemas/$s2" '{"schema_content": {"type": "object", "required": ["m"]}}' "$token" 1
expect_code 200
wait "$BG" || true
expect_eq "$(<"$TMP/bg.2")" 201 "write bound to a schema updated before it was materialized"
wait_materialized "$(jq -r .raft_index "$TMP/bg.2.body")"
expect_eq "$(sql "SELECT encode(schema_hash, 'hex') FROM configs WHERE project_id = 'races' AND key = 'k2'")" \
  "$old_hash" "configs keeps the hash the write was validated against"

# --- 3. project deleted while its write is queued ---------------------------------------------
bg_write 3 gone k3 '{"content": {"n": 1}, "expected_version": 0}'
sleep 1
api DELETE /v1/projects/gone "" "$token" 1
expect_code 204
wait "$BG" || true
expect_eq "$(<"$TMP/bg.3")" 201 "write to a project deleted before it was materialized"
wait_materialized "$(jq -r .raft_index "$TMP/bg.3.body")"
expect_eq "$(sql "SELECT count(*) FROM config_revisions WHERE project_id = 'gone'")" 1 \
  "revision of the deleted project"

# --- 4. content json/jsonb refuse --------------------------------------------------------------
n=0
for bad in '"a\u0000b"' '{"\u0000": 1}' '"\ud800"' '"x\udc00"' '1e400' '-1e400' \
  '123456789012345678901234567890'; do
  n=$((n + 1))
  api PUT "/v1/projects/races/configs/bad$n" "{\"content\": $bad, \"expected_version\": 0}" "$token" 1
  expect_error bad_request 400
  [[ $(jq -r .message <<<"$body") == "request body is not valid json: line 1, column "* ]] ||
    fail "content $bad: the message should say where the body is wrong: $body"
done
api PUT /v1/projects/races/configs/bad0 '{"content": "a\u0000b", "expected_version": 0}' "$token" 1
[[ $(jq -r .message <<<"$body") == *'\u0000 (U+0000) is not allowed in strings'* ]] ||
  fail "\\u0000: the message should say what to change: $body"
expect_eq "$(sql "SELECT count(*) FROM config_revisions WHERE key LIKE 'bad%'")" 0 \
  "nothing of a refused body is written"
api PUT /v1/projects/races/configs/tiny '{"content": [1e-400, 5e-324, 1.7976931348623157e308, -0.0], "expected_version": 0}' "$token" 1
expect_code 201
wait_materialized "$(jq -r .raft_index <<<"$body")"
expect_eq "$(sql "SELECT jsonb_array_length(content) FROM configs WHERE project_id = 'races' AND key = 'tiny'")" \
  4 "tiny and huge doubles stored in configs.content (jsonb)"

# --- 5. a batch PostgreSQL refuses is reported, then resumes ----------------------------------
api GET /ready "" "" 1
expect_code 200
s5=$(new_schema race-sql)
row5=$(sql "SELECT name, schema_content::text, encode(schema_hash, 'hex') FROM config_schemas WHERE id = '$s5'")
bg_write 5 races k5 "{\"content\": {\"n\": 5}, \"expected_version\": 0, \"schema_id\": \"$s5\"}"
sleep 1
sql "DELETE FROM config_schemas WHERE id = '$s5'" >/dev/null
wait "$BG" || true
expect_eq "$(<"$TMP/bg.5")" 504 "write whose batch PostgreSQL refuses (not acknowledged)"
rev5=$(sql "SELECT revision FROM materializer_cursor")
rev5=$((rev5 + 1))
api GET /ready "" "" 1
expect_error materializer_stalled 503
[[ $(jq -r .message <<<"$body") == *"revision $rev5 "* ]] || fail "/ready should name revision $rev5: $body"
[[ $(jq -r .message <<<"$body") == *"no longer exists"* ]] || fail "/ready should carry PostgreSQL's reason: $body"
metrics=$(curl -s --max-time 5 "$NODE_1_URL/metrics")
grep -qx 'conclave_materializer_stalled 1' <<<"$metrics" || fail "metrics: stalled should be 1"
fails=$(awk '$1 == "conclave_materializer_failures_total" {print $2}' <<<"$metrics")
[[ $fails =~ ^[0-9]+$ && $fails -ge 1 ]] || fail "metrics: failures_total should be >= 1, got <$fails>"
grep -q "materializer: writing revisions $rev5\.\.$rev5 .*failed.*no longer exists" "$TMP/node1.log" ||
  fail "the node log should name revision $rev5 and the reason"
# Bounded retry rate: over 4 s, at most one attempt per 100 ms doubling to 2 s.
f0=$fails
sleep 4
f1=$(curl -s --max-time 5 "$NODE_1_URL/metrics" | awk '$1 == "conclave_materializer_failures_total" {print $2}')
[[ $((f1 - f0)) -le 6 ]] || fail "retries are not rate-bounded: $((f1 - f0)) failures in 4 s"
# The operator restores the row: the materializer resumes by itself.
IFS='|' read -r name5 content5 hash5 <<<"$row5"
sql "INSERT INTO config_schemas (id, name, schema_content, schema_hash) VALUES ('$s5', '$name5', '$content5', decode('$hash5', 'hex'))" >/dev/null
for ((i = 0; i < 100; i++)); do
  [[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$NODE_1_URL/ready") == 200 ]] && break
  sleep 0.1
done
api GET /ready "" "" 1
expect_code 200
expect_eq "$(sql "SELECT count(*) FROM configs WHERE project_id = 'races' AND key = 'k5'")" 1 \
  "the refused revision is written once the row is back"
grep -qx 'conclave_materializer_stalled 0' <<<"$(curl -s --max-time 5 "$NODE_1_URL/metrics")" ||
  fail "metrics: stalled should be 0 again"
test_done materializer_races
