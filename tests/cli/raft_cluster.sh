# A three-node cluster of real processes on loopback: exactly one leader; writes through any
# node (followers forward) reach every state machine and PostgreSQL; kill -9 of the leader
# gives a new leader (the time it took is logged); the killed node restarts from its data
# directory and catches up to the same state hash through a snapshot install; a fourth node
# is added and removed; SIGTERM of the leader hands leadership over.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/node_lib.sh"
source "$(dirname "$0")/raft_lib.sh"
make_test_db raft
"$BIN" migrate up >/dev/null

raft_ports 4
for i in 1 2 3; do
  raft_config "$i" "1 2 3"
  raft_start "$i"
done
leader=$(wait_leader 20) || fail "no leader agreed by all three nodes within 20 s"
echo "leader: node $leader"
n_leaders=0
for i in 1 2 3; do
  [[ $(health "$i" state) == leader ]] && n_leaders=$((n_leaders + 1))
done
expect_eq "$n_leaders" 1 "nodes that think they lead"

create_user admin@example.com "admin-password-1" --admin >/dev/null
token=$(login admin@example.com "admin-password-1" "$leader")
api POST /v1/projects '{"id": "raft", "name": "Raft test"}' "$token" "$leader"
expect_code 201

# jqb FILTER: FILTER applied to the last response body.
jqb() {
  jq -r "$1" <<<"$body"
}

follower=$(((leader % 3) + 1))
written=0
# write KEY VERSION NODE: a CAS write; expect success.
write() {
  local ev=$(($2 - 1))
  api PUT "/v1/projects/raft/configs/$1" "{\"content\": {\"n\": $2, \"key\": \"$1\"}, \"expected_version\": $ev}" "$token" "$3"
  [[ $code == 200 || $code == 201 ]] || fail "$last_req: expected 200/201, got $code: $body"
  expect_json .version "$2"
  written=$((written + 1))
}
for k in 1 2 3 4 5 6 7 8 9 10; do
  write "key$k" 1 "$follower" # through a follower: forwarded to the leader
done
for k in 1 2 3 4 5; do
  write "key$k" 2 "$leader"
done
# A stale expected_version is refused with the current version.
api PUT /v1/projects/raft/configs/key1 '{"content": 1, "expected_version": 1}' "$token" "$follower"
expect_error conflict 409
expect_json .current_version 2

# same_state: waits until every live node has applied the same index, then compares hashes.
same_state() {
  local deadline=$(($(date +%s) + 20)) i a hashes first
  while (($(date +%s) < deadline)); do
    local applied=() hs=()
    for i in "$@"; do
      api GET /v1/cluster "" "$token" "$i"
      [[ $code == 200 ]] || continue 2
      applied+=("$(jqb .applied_index)")
      hs+=("$(jqb .state_hash)")
    done
    first=${applied[0]}
    a=1
    for i in "${!applied[@]}"; do
      [[ ${applied[$i]} == "$first" && ${hs[$i]} == "${hs[0]}" ]] || a=0
    done
    if [[ $a == 1 ]]; then
      echo "nodes $* agree at index $first, state hash ${hs[0]:0:16}..."
      return 0
    fi
    sleep 0.1
  done
  fail "nodes $* did not converge: applied ${applied[*]}, hashes ${hs[*]}"
}
same_state 1 2 3

# kill -9 the leader: a new one is elected.
old=$leader
t0=$(date +%s%N)
raft_kill "$old" KILL
leader=$(wait_leader 20) || fail "no new leader within 20 s after killing node $old"
echo "failover: node $leader leads $((($(date +%s%N) - t0) / 1000000)) ms after kill -9 of node $old"
[[ $leader != "$old" ]] || fail "the killed node cannot lead"

# Enough writes while it is down that it must catch up through a snapshot (threshold 32,
# trailing 8).
for k in $(seq 11 60); do
  write "key$k" 1 "$leader"
done
raft_start "$old"
live=(1 2 3)
same_state "${live[@]}"
grep -q "restored a snapshot" "$TMP/node$old.log" ||
  fail "node $old caught up without installing a snapshot; its log: $(tail -n 20 "$TMP/node$old.log")"

# PostgreSQL holds every acknowledged write, with contiguous versions.
expect_eq "$(sql "SELECT count(*) FROM config_revisions WHERE project_id = 'raft'")" "$written" \
  "revisions in postgresql"
expect_eq "$(sql "SELECT count(*) FROM configs c WHERE project_id = 'raft' AND version <> \
  (SELECT max(version) FROM config_revisions r WHERE r.project_id = c.project_id AND r.key = c.key)")" \
  0 "configs rows that are not the latest revision"

# A fourth node joins as a spare, is promoted to voter, catches up, and is removed.
raft_config 4 ""
raft_start 4
api POST /v1/cluster/members "{\"id\": 4, \"address\": \"127.0.0.1:$RPORT_4\"}" "$token" "$leader"
expect_code 200
[[ $(jqb '.members | map(select(.id == 4)) | .[0].role') == voter ]] ||
  fail "node 4 should be a voter: $body"
same_state 1 2 3 4
api DELETE /v1/cluster/members/4 "" "$token" "$leader"
expect_code 200
[[ $(jqb '.members | length') == 3 ]] || fail "node 4 should be gone: $body"
raft_kill 4 TERM

# SIGTERM of the leader hands leadership to another node and exits 0.
old=$leader
raft_kill "$old" TERM
grep -q "hands leadership over" "$TMP/node$old.log" || fail "node $old did not hand over"
leader=$(wait_leader 20) || fail "no leader after SIGTERM of node $old"
[[ $leader != "$old" ]] || fail "the stopped node cannot lead"
test_done "raft cluster"
