# Out of memory while applying an entry stops the node before it applies any later entry
# (issue 14 item 5; docs/architecture.md, the raft defects table). Three real nodes; node 3
# runs with the failpoint CONCLAVE_FAILPOINT_FSM_OOM=N (docs/hacking.md), so its Nth apply
# fails to allocate while several writes are committed around it. Node 3 must exit with status
# 1 and a log line naming the entry, its state machine must have stopped below that entry
# although raft went on, and once restarted without the failpoint it must catch up to the same
# applied index and state hash as the leader, holding every write.
source "$(dirname "$0")/../lib/lib.sh"
source "$(dirname "$0")/../lib/node_lib.sh"
source "$(dirname "$0")/../lib/raft_lib.sh"
make_test_db fsm_oom
"$BIN" migrate up >/dev/null
PW=fsm-oom-password-1
OOM_AT=4
WRITES=12

raft_ports 3
for i in 1 2 3; do
  raft_config "$i" "1 2 3"
done
# Nodes 1 and 2 are a quorum: the leader is one of them, so the failing node is a follower
# and every write still commits.
raft_start 1
raft_start 2
L=$(wait_leader 20) || fail "no leader among nodes 1 and 2 within 20 s"
[[ $L == 1 || $L == 2 ]] || fail "leader $L is not node 1 or 2"
export CONCLAVE_FAILPOINT_FSM_OOM=$OOM_AT
raft_start 3
unset CONCLAVE_FAILPOINT_FSM_OOM
OOM_PID=$NODE_3_PID

create_user root@example.com "$PW" --admin >/dev/null
T=$(login root@example.com "$PW" "$L")
api POST /v1/projects '{"id": "oom", "name": "oom"}' "$T" "$L"
expect_code 201

# Writes in parallel (one curl, --parallel), so that raft commits several entries in one go
# and hands node 3 entries after the one it cannot apply.
url_var="NODE_${L}_URL"
: >"$TMP/w.cfg"
for ((i = 1; i <= WRITES; i++)); do
  printf 'url = "%s/v1/projects/oom/configs"\nrequest = "POST"\nheader = "Authorization: Bearer %s"\nheader = "Content-Type: application/json"\ndata = "{\\"key\\": \\"k%d\\", \\"content\\": %d, \\"request_id\\": \\"w-%d\\"}"\noutput = "/dev/null"\nwrite-out = "%%{http_code}\\n"\nmax-time = 15\n' \
    "${!url_var}" "$T" "$i" "$i" "$i" >>"$TMP/w.cfg"
  ((i == WRITES)) || echo next >>"$TMP/w.cfg"
done
curl -s --no-progress-meter --parallel --parallel-max 6 -K "$TMP/w.cfg" >"$TMP/w.out" || true
expect_eq "$(grep -c '^201$' "$TMP/w.out")" "$WRITES" "201 answers of $WRITES writes (node 3 is not needed)"

# Node 3 exits with status 1 on its own (bounded: 10 s).
for ((n = 0; n < 100; n++)); do
  alive "$OOM_PID" || break
  sleep 0.1
done
alive "$OOM_PID" && fail "node 3 still runs 10 s after the writes; log: $(tail -n 20 "$TMP/node3.log")"
rc=0
wait "$OOM_PID" 2>/dev/null || rc=$?
forget_pid "$OOM_PID"
unset NODE_3_PID
expect_eq "$rc" 1 "exit status of node 3 after the failed apply"

# The log names the entry it could not apply, and the state machine's index stayed below it.
line=$(grep -m1 'out of memory applying the entry at index' "$TMP/node3.log") ||
  fail "node 3 logged no out-of-memory line: $(tail -n 20 "$TMP/node3.log")"
[[ $line =~ index\ ([0-9]+)\ \(failpoint\ CONCLAVE_FAILPOINT_FSM_OOM\) ]] ||
  fail "out-of-memory line without the entry's index and failpoint: $line"
missed=${BASH_REMATCH[1]}
fatal=$(grep -m1 'state machine applied index' "$TMP/node3.log") ||
  fail "node 3 did not report where its state machine stopped: $(tail -n 20 "$TMP/node3.log")"
[[ $fatal =~ state\ machine\ applied\ index\ ([0-9]+),\ raft\ applied\ index\ ([0-9]+) ]] ||
  fail "fatal line without the indexes: $fatal"
fsm_at=${BASH_REMATCH[1]} raft_at=${BASH_REMATCH[2]}
echo "node 3 missed entry $missed; its state machine stopped at $fsm_at, raft had applied $raft_at"
((fsm_at < missed)) || fail "node 3's state machine is at $fsm_at, not below the missed entry $missed"
((raft_at >= missed)) || fail "raft applied index $raft_at is below the missed entry $missed"

# Restarted without the failpoint it applies the entry from its log and catches up.
raft_start 3
cluster_of() {
  api GET /v1/cluster "" "$T" "$1"
  [[ $code == 200 ]] || return 1
  jq -r '"\(.applied_index) \(.state_hash)"' <<<"$body"
}
same=
for ((n = 0; n < 100; n++)); do
  a=$(cluster_of "$L") || a=
  b=$(cluster_of 3) || b=
  if [[ -n $a && $a == "$b" ]]; then
    same=$a
    break
  fi
  sleep 0.2
done
[[ -n $same ]] || fail "node 3 did not reach the leader's applied index and state hash within 20 s: leader <$a>, node 3 <$b>"
echo "node 3 caught up: applied index and state hash $same"
for ((i = 1; i <= WRITES; i++)); do
  api GET "/v1/projects/oom/configs/k$i?consistency=stale" "" "$T" 3
  expect_code 200
  expect_json .content "$i"
done
test_done fsm_oom
