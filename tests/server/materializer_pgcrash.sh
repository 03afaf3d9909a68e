# kill -9 of PostgreSQL under acknowledged writes whose commits were not flushed yet.
#
# The leader's materializer commits batches with the flush deferred and makes them durable
# with a synchronous commit at least every 20 ms (docs/write-path.md, "Deferred flushes"); the
# trim entry materialized(N) follows only durable commits. Here the nodes run with
# CONCLAVE_FAILPOINT_MATERIALIZER_FLUSH_MS=3000 and PostgreSQL with wal_writer_delay=10s, so
# the acknowledged writes of the last seconds are in PostgreSQL's WAL buffers only, and every
# process of PostgreSQL is killed at once (SIGSTOP, then SIGKILL: no process gets to write
# them out). fsync=off does not weaken the test: a process crash loses only what was never
# handed to the kernel, which is exactly what a deferred commit risks.
#
# The test requires evidence that the crash lost acknowledged commits (PostgreSQL's cursor
# went back, which the leader logs), up to three crashes; then that every acknowledged write
# is in config_revisions with its version, versions are gapless, no request id is written
# twice, audit verify is clean, and all nodes converge. With the trim following the cursor
# instead of the durable commits, the queues drop what PostgreSQL then loses, and the test
# fails (the leader refuses writes: PostgreSQL is behind the cluster).
source "$(dirname "$0")/../lib/lib.sh"
source "$(dirname "$0")/../lib/node_lib.sh"
source "$(dirname "$0")/../lib/raft_lib.sh"

pgdir="$TMP/pg"
mkdir -p "$pgdir"
chmod 755 "$TMP" "$pgdir"
pg_init "$pgdir/data"
PGOPTS="-c fsync=off -c synchronous_commit=on -c wal_writer_delay=10s -c wal_writer_flush_after=0"
for attempt in 1 2 3 4; do
  pgport=$(free_port)
  pg_start "$pgdir/data" "$pgport" "$pgdir/log" "$PGOPTS" && break
  [[ $attempt -lt 4 ]] || fail "could not start the private PostgreSQL"
done
WRITERS=()
writers_stop() {
  touch "$TMP/stop"
  local p
  for p in "${WRITERS[@]}"; do
    wait "$p" 2>/dev/null || true
  done
  WRITERS=()
}
# Every process of the private PostgreSQL, stopped first so that none writes anything out
# while the others die, then killed. Bounded wait until they are gone.
pg_crash() {
  local pm kids n
  # shellcheck disable=SC2086
  pm=$(pg_pid "$pgdir/data")
  [[ -n $pm ]] || fail "the private PostgreSQL is not running"
  kids=$(pgrep -P "$pm" | tr '\n' ' ')
  # shellcheck disable=SC2086
  kill -STOP "$pm" $kids
  # shellcheck disable=SC2086
  kill -KILL "$pm" $kids
  # Gone means reaped, not a zombie: PostgreSQL refuses to start while its old pid exists.
  for ((n = 0; n < 100; n++)); do
    [[ -z $(ps -o stat= -p "$pm" $kids) ]] && return 0
    sleep 0.1
  done
  fail "PostgreSQL (pid $pm) is still there 10 s after SIGKILL: $(ps -o pid,stat,cmd -p "$pm" $kids)"
}
at_exit 'writers_stop; stop_nodes; pg_stop "$pgdir/data"'
export DATABASE_URL="host=127.0.0.1 port=$pgport user=conclave dbname=postgres"
"$BIN" migrate up >/dev/null

export CONCLAVE_FAILPOINT_MATERIALIZER_FLUSH_MS=3000
raft_ports 3
for i in 1 2 3; do
  raft_config "$i" "1 2 3"
  raft_start "$i"
done
leader=$(wait_leader 20) || fail "no leader"
grep -q 'batch commits are flushed every 3000 ms' "$TMP/node$leader.log" ||
  fail "the flush failpoint is not in effect: $(tail -n 5 "$TMP/node$leader.log")"
create_user admin@example.com "admin-password-1" --admin >/dev/null
token=$(login admin@example.com "admin-password-1" "$leader")
api POST /v1/projects '{"id": "crash", "name": "Crash"}' "$token" "$leader"
expect_code 201

# writer W: keys wW-0..wW-3, a request id per write; an answer that is not definitive (503,
# 504, none) is retried with the same request id, at most 40 times with backoff. Appends
# "key version revision request_id" per acknowledged write; anything else goes to bad.W.
writer() {
  local w=$1 n=0 key v rid out code attempt pause node url_var
  declare -A ver=()
  while [[ ! -f $TMP/stop ]]; do
    key="w$w-$((n % 4))"
    v=${ver[$key]:-0}
    rid="w$w-$n"
    pause=0.1
    code=
    for ((attempt = 1; attempt <= 40; attempt++)); do
      [[ -f $TMP/stop ]] && break
      node=$((RANDOM % 3 + 1))
      url_var="NODE_${node}_URL"
      out=$(curl -s --max-time 15 -w '\n%{http_code}' -X PUT -H "Authorization: Bearer $token" \
        -H 'Content-Type: application/json' \
        -d "{\"content\": {\"w\": $w, \"n\": $n}, \"expected_version\": $v, \"request_id\": \"$rid\"}" \
        "${!url_var}/v1/projects/crash/configs/$key" 2>/dev/null) || true
      code=${out##*$'\n'}
      case $code in
        200 | 201)
          echo "$key $(jq -r '.version, .revision' <<<"${out%$'\n'*}" | tr '\n' ' ')$rid" >>"$TMP/acked.$w"
          ver[$key]=$((v + 1))
          break
          ;;
        503 | 504 | 000)
          sleep "$pause"
          [[ $pause == 0.1 ]] && pause=0.2 || { [[ $pause == 0.2 ]] && pause=0.4 || pause=1; }
          ;;
        *)
          echo "$key $rid attempt $attempt answered $code: ${out%$'\n'*}" >>"$TMP/bad.$w"
          return 0
          ;;
      esac
    done
    if [[ $code != 200 && $code != 201 && ! -f $TMP/stop ]]; then
      echo "$key $rid: no definitive answer after 40 attempts (last $code)" >>"$TMP/bad.$w"
      return 0
    fi
    n=$((n + 1))
  done
}
writer 1 &
WRITERS+=($!)
writer 2 &
WRITERS+=($!)

lost=0
for round in 1 2 3; do
  sleep 2
  before=$(cat "$TMP"/acked.* 2>/dev/null | wc -l)
  pg_crash
  echo "round $round: PostgreSQL killed after $before acknowledged writes"
  sleep 1
  pg_start "$pgdir/data" "$pgport" "$pgdir/log" "$PGOPTS" || fail "postgresql did not restart"
  # The leader notices at its next batch or flush; bounded wait for either outcome.
  for ((n = 0; n < 80; n++)); do
    grep -q 'it lost commits\|postgresql is behind the cluster' "$TMP"/node*.log && break
    sleep 0.1
  done
  if grep -q 'postgresql is behind the cluster' "$TMP"/node*.log; then
    fail "the crash lost revisions the queues had already trimmed: $(grep -h 'behind the cluster' "$TMP"/node*.log | head -n 1)"
  fi
  if grep -q 'it lost commits' "$TMP"/node*.log; then
    lost=1
    grep -h 'it lost commits' "$TMP"/node*.log | head -n 1
    break
  fi
done
((lost)) || fail "three crashes of PostgreSQL lost no acknowledged commit: the test proves nothing"
sleep 3
writers_stop

if compgen -G "$TMP/bad.*" >/dev/null; then
  fail "a write failed: $(cat "$TMP"/bad.*)"
fi
cat "$TMP"/acked.* >"$TMP/acked"
n_acked=$(wc -l <"$TMP/acked")
echo "acknowledged writes: $n_acked"
[[ $n_acked -ge 20 ]] || fail "too few acknowledged writes ($n_acked) to prove anything"
acked_writes_in_postgresql crash "$TMP/acked"
expect_eq "$(sql "SELECT count(*) FROM config_revisions")" \
  "$(sql "SELECT max(revision) FROM config_revisions")" "revision rows vs the highest revision"

nodes_converge "$token"
leader=$(wait_leader 10) || fail "no leader at the end"
api GET /v1/projects/crash/audit/verify "" "$token" "$leader"
expect_code 200
expect_json .ok true
# The queues drain: the leader's flush makes the rewritten commits durable and trims them.
for ((n = 0; n < 100; n++)); do
  pending=$(curl -s "${NODE_1_URL}/metrics" | awk '$1 == "conclave_fsm_pending_revisions" {print $2}')
  [[ $pending == 0 ]] && break
  sleep 0.1
done
expect_eq "$pending" 0 "revisions still queued 10 s after the writes stopped (failpoint: 3 s)"
test_done "materializer pgcrash"
