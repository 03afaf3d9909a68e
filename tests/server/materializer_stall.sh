# A deposed leader frozen while its batch holds the materializer's cursor row lock must not
# block the new leader for more than a few seconds (issue 14, item 2).
#
# Node 1 runs with CONCLAVE_FAILPOINT_MATERIALIZER_PAUSE_MS (docs/hacking.md): each of its
# batches sleeps inside its transaction, right after locking the cursor row. Leadership is
# moved to node 1, a write is sent, and once its batch holds the lock ("idle in transaction"
# in pg_stat_activity) node 1 is frozen with SIGSTOP. Nodes 2 and 3 elect a new leader; writes
# through them must be acknowledged within BOUND_S seconds of that leader being ready. What
# frees the lock is the pooled session's idle_in_transaction_session_timeout (5 s by default,
# database.idle_in_transaction_timeout_ms); before it existed, nothing was acknowledged until
# node 1 was resumed. Then node 1 is resumed: its old transaction is gone, it writes nothing
# after the new leader (every revision exactly once, versions without gap), and the first
# write's request id gets a definitive answer.
source "$(dirname "$0")/../lib/lib.sh"
source "$(dirname "$0")/../lib/node_lib.sh"
source "$(dirname "$0")/../lib/raft_lib.sh"

BOUND_S=10 # generous: 5 s idle timeout + election + one backoff of at most 2 s
make_test_db materializer_stall
"$BIN" migrate up >/dev/null
at_exit '[[ -n ${NODE_1_PID:-} ]] && kill -CONT "$NODE_1_PID" 2>/dev/null; stop_nodes'
raft_ports 3
for i in 1 2 3; do
  raft_config "$i" "1 2 3"
done
export CONCLAVE_FAILPOINT_MATERIALIZER_PAUSE_MS=30000
raft_start 1
unset CONCLAVE_FAILPOINT_MATERIALIZER_PAUSE_MS
raft_start 2
raft_start 3
leader=$(wait_leader 20) || fail "no leader"
create_user admin@example.com "admin-password-1" --admin >/dev/null
token=$(login admin@example.com "admin-password-1" 2)
api POST /v1/projects '{"id": "stall", "name": "Stall"}' "$token" 2
expect_code 201
# Leadership to node 1 (bounded attempts).
for ((i = 0; i < 10; i++)); do
  [[ $(wait_leader 10) == 1 ]] && break
  l=$(wait_leader 10)
  api POST /v1/cluster/transfer '{"id": 1}' "$token" "$l"
  sleep 1
done
[[ $(wait_leader 10) == 1 ]] || fail "could not move leadership to node 1"

# The write whose batch will hold the lock.
curl -s -o "$TMP/first.body" -w '%{http_code}' --max-time 15 -X PUT \
  -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
  -d '{"content": {"n": 0}, "expected_version": 0, "request_id": "stall-first"}' \
  "$NODE_2_URL/v1/projects/stall/configs/k0" >"$TMP/first.code" 2>/dev/null &
first=$!
held=
for ((i = 0; i < 100; i++)); do
  n=$(sql "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND state = 'idle in transaction' AND query LIKE '%materializer_cursor%FOR UPDATE%'")
  if [[ $n == 1 ]]; then held=1; break; fi
  sleep 0.1
done
[[ -n $held ]] || fail "node 1's batch never held the cursor lock"
kill -STOP "$NODE_1_PID"
t0=$EPOCHREALTIME
wait_ready_leader "$t0" 20 2 3 || fail "no new leader among nodes 2 and 3 within 20 s"
new=$RL_ID
t_ready=$EPOCHREALTIME
echo "new leader $new ready $RL_MS ms after SIGSTOP"

# Writes through nodes 2 and 3 until one is acknowledged, bounded by BOUND_S + 5 s.
acked=
for ((n = 1; n <= 200; n++)); do
  node=$((2 + n % 2))
  url_var="NODE_${node}_URL"
  c=$(curl -s -o "$TMP/w.body" -w '%{http_code}' --max-time 5 -X PUT \
    -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
    -d "{\"content\": {\"n\": $n}, \"expected_version\": 0, \"request_id\": \"stall-$n\"}" \
    "${!url_var}/v1/projects/stall/configs/k$n" 2>/dev/null) || true
  if [[ $c == 201 ]]; then
    acked=$(ms_since "$t_ready" "$EPOCHREALTIME")
    break
  fi
  (($(ms_since "$t_ready" "$EPOCHREALTIME") < (BOUND_S + 5) * 1000)) || break
  sleep 0.2
done
[[ -n $acked ]] || fail "no write acknowledged within $((BOUND_S + 5)) s of the new leader; log of node $new: $(tail -n 5 "$TMP/node$new.log")"
echo "first write acknowledged $acked ms after the new leader was ready"
((acked <= BOUND_S * 1000)) || fail "first acknowledged write took $acked ms, more than $BOUND_S s"

# Resume node 1: its session was ended by PostgreSQL, so its batch fails and it writes nothing
# after the new leader.
kill -CONT "$NODE_1_PID"
wait "$first" || true
for ((i = 0; i < 30; i++)); do
  api PUT /v1/projects/stall/configs/k0 '{"content": {"n": 0}, "expected_version": 0, "request_id": "stall-first"}' "$token" 3
  [[ $code == 201 || $code == 200 ]] && break
  sleep 0.5
done
[[ $code == 201 || $code == 200 ]] || fail "the first write's request id never got a definitive answer: $code $body"
expect_eq "$(sql "SELECT count(*) FROM config_revisions WHERE request_id = 'stall-first'")" 1 \
  "the frozen leader's write is stored exactly once"
expect_eq "$(sql "SELECT count(*) = count(DISTINCT revision) AND max(revision) = count(*) FROM config_revisions")" \
  t "revisions 1..N, no gap, no duplicate"
expect_eq "$(sql "SELECT revision = (SELECT max(revision) FROM config_revisions) FROM materializer_cursor")" \
  t "the cursor is at the last revision"
expect_eq "$(sql "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND state LIKE 'idle in transaction%'")" \
  0 "no session is left idle in a transaction"
test_done materializer_stall
