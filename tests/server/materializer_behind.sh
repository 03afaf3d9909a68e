# PostgreSQL restored to an older state, below what every state machine already trimmed
# (issue 14, item 4; docs/operations.md, "PostgreSQL behind the cluster").
#
# One raft node (a single voter trims exactly as a cluster does: materialized(N) entries).
# Revisions 1..2 are written and trimmed, the database is dumped (OLD); revisions 3..4 are
# written and trimmed, dumped again (NEW). Then, with the node running:
#   1. OLD is restored (DROP DATABASE ... WITH (FORCE), CREATE, pg_restore): the leader finds
#      PostgreSQL behind: /ready 503 postgresql_behind naming revisions 3..4, the /metrics
#      gauges, a new write and a retry of a lost write (same request id) refused with 503
#      postgresql_behind; nothing proposed. History reads keep answering from PostgreSQL.
#   2. NEW is restored (the first choice of the procedure): the detection clears by itself,
#      the retry of the write of revision 3 gets its first outcome, writes resume (revision 5).
#   3. OLD is restored again (the newer backup lost too): revisions 3..5 are missing, also after
#      a restart of the node (detection on gaining leadership). The admin
#      action refuses a range that does not start after PostgreSQL's cursor, then accepts the
#      right one; the leader moves its cursor past the loss, writes resume, a retry of a lost
#      write gets 410 write_lost (never 200), and audit verify (API and CLI) reports the
#      missing revisions instead of a clean chain.
source "$(dirname "$0")/../lib/lib.sh"
source "$(dirname "$0")/../lib/node_lib.sh"
source "$(dirname "$0")/../lib/raft_lib.sh"

make_test_db materializer_behind
DB=${DATABASE_URL##*dbname=}
"$BIN" migrate up >/dev/null
at_exit stop_nodes
raft_ports 1
raft_config 1 "1"
raft_start 1
[[ $(wait_leader 20) == 1 ]] || fail "node 1 did not become the leader"
create_user admin@example.com "admin-password-1" --admin >/dev/null
token=$(login admin@example.com "admin-password-1")
api POST /v1/projects '{"id": "behind", "name": "Behind"}' "$token"
expect_code 201

# metric NAME: the value of an unlabelled series of node 1's /metrics.
metric() {
  curl -s --max-time 5 "$NODE_1_URL/metrics" | awk -v n="$1" '$1 == n { print $2 }'
}

# put KEY CONTENT EXPECTED REQUEST_ID
put() {
  api PUT "/v1/projects/behind/configs/$1" \
    "{\"content\": $2, \"expected_version\": $3, \"request_id\": \"$4\"}" "$token"
}

put_ok() {
  put "$@"
  [[ $code == 200 || $code == 201 ]] || fail "$last_req: expected 200 or 201, got $code: $body"
}

# Waits (bounded) until every revision left the queue: materialized(N) trimmed them.
wait_trimmed() {
  local i
  for ((i = 0; i < 100; i++)); do
    [[ $(metric conclave_fsm_pending_revisions) == 0 ]] && return 0
    sleep 0.1
  done
  fail "revisions still queued after 10 s: $(metric conclave_fsm_pending_revisions)"
}

# restore FILE: replaces the database by the dump FILE while the node runs, as an operator
# restoring a backup does.
restore() {
  "$PG_BIN/psql" "$CONCLAVE_TEST_PG" -XAtq -v ON_ERROR_STOP=1 \
    -c "DROP DATABASE $DB WITH (FORCE)" -c "CREATE DATABASE $DB" >/dev/null
  "$PG_BIN/pg_restore" --exit-on-error -d "$DATABASE_URL" "$1" ||
    fail "pg_restore $1 failed"
}

# wait_ready CODE [ERROR]: polls /ready (bounded, 15 s) until it answers CODE (with error
# code ERROR); leaves that answer in code/body. While the database is being replaced /ready
# answers other 503s (a stall: the cursor cannot be read), which do not count.
wait_ready() {
  local i
  for ((i = 0; i < 75; i++)); do
    api GET /ready
    if [[ $code == "$1" && ( -z ${2-} || $(jq -r .error <<<"$body") == "$2" ) ]]; then
      return 0
    fi
    sleep 0.2
  done
  fail "/ready should answer $1 ${2-} within 15 s, got $code: $body; log: $(tail -n 5 "$TMP/node1.log")"
}

put_ok k1 '{"v": 1}' 0 w1 # revision 1
put_ok k2 '{"v": 1}' 0 w2 # revision 2
wait_trimmed
"$PG_BIN/pg_dump" -Fc -d "$DATABASE_URL" -f "$TMP/old.dump" || fail "pg_dump (old) failed"
put_ok k1 '{"v": 2}' 1 w3 # revision 3
put_ok k3 '{"v": 1}' 0 w4 # revision 4
wait_trimmed
"$PG_BIN/pg_dump" -Fc -d "$DATABASE_URL" -f "$TMP/new.dump" || fail "pg_dump (new) failed"
expect_eq "$(metric conclave_fsm_revision)" 4 "revisions written before the restores"

# --- 1. The older backup restored: detected, writes refused, nothing proposed.
restore "$TMP/old.dump"
wait_ready 503 postgresql_behind
expect_error postgresql_behind 503
expect_match .message 'lacks revisions 3\.\.4 \(raft indexes [0-9]+\.\.[0-9]+\)'
expect_match .message 'accept-postgresql-loss --revisions 3\.\.4'
expect_eq "$(metric conclave_materializer_postgresql_behind)" 1 "behind gauge"
expect_eq "$(metric conclave_materializer_postgresql_missing_revisions)" 2 "missing revisions"
expect_eq "$(metric conclave_materializer_postgresql_missing_from_revision)" 3 "first missing"
expect_eq "$(metric conclave_materializer_postgresql_missing_to_revision)" 4 "last missing"
put k9 '{"v": 1}' 0 w9
expect_error postgresql_behind 503
expect_match .message 'lacks revisions 3\.\.4.*this request wrote nothing'
put k1 '{"v": 2}' 1 w3 # the lost write of revision 3, retried with its request id
expect_error postgresql_behind 503
expect_match .message 'lacks revisions 3\.\.4'
put k2 '{"v": 1}' 0 w2 # a write PostgreSQL still holds: refused too while the gap is open
expect_error postgresql_behind 503
expect_eq "$(metric conclave_fsm_revision)" 4 "nothing was proposed while behind"
api GET /v1/projects/behind/configs/k1/revisions "" "$token"
expect_code 200
expect_eq "$(jq -c '[.items[].version]' <<<"$body")" "[1]" "history served from postgresql"
grep -q 'postgresql is behind the cluster: it lacks revisions 3..4' "$TMP/node1.log" ||
  fail "the detection is not in the node's log"

# --- 2. First choice: restore the newer backup. The detection clears by itself.
restore "$TMP/new.dump"
wait_ready 200
expect_eq "$(metric conclave_materializer_postgresql_behind)" 0 "behind gauge after the restore"
put k1 '{"v": 2}' 1 w3
[[ $code == 200 || $code == 201 ]] || fail "$last_req: the retry of a held write should get its first outcome, got $code: $body"
expect_json .revision 3
put_ok k1 '{"v": 3}' 2 w5 # revision 5
expect_json .revision 5
wait_trimmed

# --- 3. The older backup again, no newer one left: accept the loss of 3..5.
restore "$TMP/old.dump"
wait_ready 503 postgresql_behind
expect_error postgresql_behind 503
expect_match .message 'lacks revisions 3\.\.5'
# Detected on gaining leadership too: restart the node (its state machine comes back from its
# raft log and snapshot, PostgreSQL stays behind).
raft_kill 1 TERM
raft_start 1
[[ $(wait_leader 20) == 1 ]] || fail "node 1 did not lead again after its restart"
wait_ready 503 postgresql_behind
expect_match .message 'lacks revisions 3\.\.5'
from_idx=$(metric conclave_materializer_postgresql_missing_from_raft_index)
to_idx=$(metric conclave_materializer_postgresql_missing_to_raft_index)
[[ $from_idx =~ ^[0-9]+$ && $to_idx =~ ^[0-9]+$ && $from_idx -le $to_idx && $from_idx -gt 0 ]] ||
  fail "missing raft index range from /metrics: <$from_idx>..<$to_idx>"
run "$BIN" admin accept-postgresql-loss --config "$TMP/rnode1.json" --revisions 4..5 \
  --raft-indexes "$from_idx..$to_idx"
expect_status 1
expect_out "cursor is at revision 2"
run "$BIN" admin accept-postgresql-loss --config "$TMP/rnode1.json" --revisions 5..3 \
  --raft-indexes "$from_idx..$to_idx"
expect_status 2
expect_out "--revisions \"5..3\" must be A..B"
expect_eq "$(sql "SELECT count(*) FROM postgresql_losses")" 0 "refused acceptances record nothing"
api GET /ready
expect_error postgresql_behind 503
run "$BIN" admin accept-postgresql-loss --config "$TMP/rnode1.json" --revisions 3..5 \
  --raft-indexes "$from_idx..$to_idx" --reason "test: the newer backup is gone"
expect_status 0
expect_out "accepted the loss of revisions 3..5"
wait_ready 200
grep -q 'the loss of revisions 3..5 .* was accepted' "$TMP/node1.log" ||
  fail "the leader did not log the accepted loss"
expect_eq "$(metric conclave_materializer_postgresql_behind)" 0 "behind gauge after the acceptance"
put k1 '{"v": 2}' 1 w3
expect_error write_lost 410
expect_match .message 'postgresql lost it'
put k2 '{"v": 1}' 0 w2
[[ $code == 200 || $code == 201 ]] || fail "$last_req: a held write's retry should get its first outcome, got $code: $body"
put_ok k1 '{"v": 4}' 3 w6 # revision 6: the state machine's k1 is at version 3
expect_json .revision 6
put_ok k4 '{"v": 1}' 0 w7 # revision 7
put_ok k3 '{"v": 2}' 1 w8 # revision 8: k3 was created inside the lost range, configs has no row
expect_json .revision 8
wait_trimmed
expect_eq "$(sql "SELECT string_agg(revision::text, ',' ORDER BY revision) FROM config_revisions")" \
  "1,2,6,7,8" "postgresql holds the revisions before and after the accepted loss"
expect_eq "$(sql "SELECT string_agg(key || '@' || version, ',' ORDER BY key) FROM configs")" \
  "k1@4,k2@1,k3@2,k4@1" "configs continue the state machine's versions"
expect_eq "$(sql "SELECT revision_from || '..' || revision_to || ' ' || reason FROM postgresql_losses")" \
  "3..5 test: the newer backup is gone" "the accepted loss is recorded"
expect_eq "$(sql "SELECT revision FROM materializer_cursor")" 8 "the cursor continues the chain"

# audit verify tells the truth: not a clean chain.
api GET /v1/projects/behind/audit/verify "" "$token"
expect_code 200
expect_json .ok false
[[ $(jq '[.problems[] | select(.revision == 6)] | length' <<<"$body") -ge 1 ]] ||
  fail "audit verify should report the break at revision 6, the first after the loss: $body"
echo "audit verify (api): $(jq -c '.problems' <<<"$body")"
run "$BIN" audit verify --project behind --source db --database-url "$DATABASE_URL"
[[ $status -ne 0 ]] || fail "conclave audit verify should fail after an accepted loss: $out"
echo "audit verify (cli, exit $status): ${out:0:400}"
test_done materializer_behind
