# PostgreSQL ahead of the cluster (src/server/materializer.c, check_gap(); docs/backup.md): the
# nodes' raft data is older than the database, here emptied after writes reached PostgreSQL.
# Before the fix the new cluster took its low raft indexes as already written (PostgreSQL's
# cursor is past them) and acknowledged a write that never reached PostgreSQL. Checked:
#   - the restarted, emptied cluster's leader answers /ready 503 postgresql_ahead naming
#     PostgreSQL's revision and its own, and /metrics says so;
#   - a write is refused with 503 postgresql_ahead (also through a follower), and nothing
#     reaches PostgreSQL: its revisions and cursor are unchanged;
#   - the nodes' raft data put back (the copies taken before), the cluster is ready again, a
#     write is acknowledged and lands in PostgreSQL, and audit verify is clean.
source "$(dirname "$0")/../lib/lib.sh"
source "$(dirname "$0")/../lib/node_lib.sh"
source "$(dirname "$0")/../lib/raft_lib.sh"
make_test_db postgresql_ahead
"$BIN" migrate up >/dev/null

PW=postgresql-ahead-password-1
raft_up 3
create_user root@example.com "$PW" --admin >/dev/null
T=$(login root@example.com "$PW" "$L")
api POST /v1/projects '{"id": "p", "name": "ahead"}' "$T" "$L"
expect_code 201
for k in a b c; do
  api PUT "/v1/projects/p/configs/$k" '{"content": {"v": 1}, "expected_version": 0}' "$T" "$L"
  expect_code 201
done
revs=$(sql "SELECT count(*) FROM config_revisions")
cursor=$(sql "SELECT raft_index FROM materializer_cursor")

# Every node stopped; their raft data kept aside, then emptied; started again.
for i in 1 2 3; do
  raft_kill "$i" TERM
done
for i in 1 2 3; do
  mv "$TMP/rnode$i" "$TMP/rnode$i.kept"
done
for i in 1 2 3; do
  raft_start "$i"
done
L=$(wait_leader 20) || fail "no leader after the restart"
F=$(((L % 3) + 1))

# ready_code NODE: the status of NODE's /ready (body in $body).
ready_code() {
  api GET /ready "" "" "$1"
  echo "$code"
}
for ((n = 0; n < 100; n++)); do
  [[ $(ready_code "$L") == 503 ]] && break
  sleep 0.1
done
api GET /ready "" "" "$L"
expect_error postgresql_ahead 503
expect_match .message "holds revisions up to $revs"
url="NODE_${L}_URL"
curl -fs --max-time 5 "${!url}/metrics" | grep -qx 'conclave_materializer_postgresql_ahead 1' ||
  fail "/metrics of the leader should say conclave_materializer_postgresql_ahead 1"

api PUT /v1/projects/p/configs/a '{"content": {"v": 2}, "expected_version": 0}' "$T" "$L"
expect_error postgresql_ahead 503
expect_match .message 'wrote nothing'
api PUT /v1/projects/p/configs/d '{"content": {"v": 1}, "expected_version": 0}' "$T" "$F"
expect_error postgresql_ahead 503
sleep 1
expect_eq "$(sql "SELECT count(*) FROM config_revisions")" "$revs" "revisions in postgresql after the refused writes"
expect_eq "$(sql "SELECT raft_index FROM materializer_cursor")" "$cursor" "postgresql's cursor after the refused writes"

# The raft data put back: ready, writes acknowledged and in PostgreSQL, audit clean.
for i in 1 2 3; do
  raft_kill "$i" TERM
done
for i in 1 2 3; do
  rm -rf "$TMP/rnode$i"
  mv "$TMP/rnode$i.kept" "$TMP/rnode$i"
done
for i in 1 2 3; do
  raft_start "$i"
done
L=$(wait_leader 20) || fail "no leader after the raft data was put back"
for ((n = 0; n < 100; n++)); do
  [[ $(ready_code "$L") == 200 ]] && break
  sleep 0.1
done
api GET /ready "" "" "$L"
expect_code 200
api PUT /v1/projects/p/configs/a '{"content": {"v": 2}, "expected_version": 1}' "$T" "$L"
expect_code 200
expect_eq "$(sql "SELECT content->>'v' FROM configs WHERE project_id = 'p' AND key = 'a'")" 2 "a in postgresql"
api GET /v1/projects/p/audit/verify "" "$T" "$L"
expect_code 200
expect_json .ok true
test_done postgresql_ahead
