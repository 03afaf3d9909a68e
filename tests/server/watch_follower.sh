# The watch hub on a follower (src/server/watch_hub.c: wants_query(), guard_page()) on a
# cluster of three real nodes. A follower learns that PostgreSQL holds a revision from the
# leader's materialized(N) entry, known committed to it only with the leader's next message;
# its hub does not wait for that but queries PostgreSQL as soon as the follower applies a
# change. Checked here:
#   - the follower's hub queries PostgreSQL for a write it applied before its materialized
#     index moved (the materializer is held back by a SHARE lock on config_revisions, which
#     blocks its INSERT and no SELECT), and yet its watcher is not answered while PostgreSQL
#     does not have the revision; released, the watcher gets exactly that revision;
#   - a watcher on a follower that follows next_after_revision through a run of writes gets
#     every revision of the project once, in order, none skipped;
#   - the follower's hub runs about one query per write (fewer than 1.5 per write over ten
#     writes) with 20 more watchers waiting all along.
source "$(dirname "$0")/../lib/lib.sh"
source "$(dirname "$0")/../lib/node_lib.sh"
source "$(dirname "$0")/../lib/raft_lib.sh"
make_test_db watch_follower
"$BIN" migrate up >/dev/null

PW=watch-follower-password-1
raft_up 3
F1=$(((L % 3) + 1))
echo "leader: node $L, follower watched: $F1"
create_user root@example.com "$PW" --admin >/dev/null
T=$(login root@example.com "$PW" "$L")
api POST /v1/projects '{"id": "w", "name": "watched"}' "$T" "$L"
expect_code 201
P=/v1/projects/w
HP_F1="HPORT_$F1"
HP_L="HPORT_$L"

PIDS=()
stop_pids() {
  local p
  for p in "${PIDS[@]}"; do
    kill "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
  PIDS=()
}
at_exit stop_pids

# metric NODE NAME: sets MV to the value of the unlabelled sample NAME of NODE's /metrics.
metric() {
  local hp="HPORT_$1"
  curl -s --max-time 5 -o "$TMP/metrics.txt" "http://127.0.0.1:${!hp}/metrics" || true
  MV=$(awk -v n="$2" '$1 == n {print $2}' "$TMP/metrics.txt")
  [[ $MV =~ ^[0-9]+$ ]] || fail "node $1: no sample $2 in /metrics"
}

# wait_waiting NODE N: waits (up to 10 s) until NODE has N watchers waiting.
wait_waiting() {
  local i
  for ((i = 0; i < 100; i++)); do
    metric "$1" conclave_watch_waiting
    [[ $MV == "$2" ]] && return 0
    sleep 0.1
  done
  fail "node $1: $MV watchers waiting, expected $2"
}

# put KEY: writes KEY (create or update) through the leader; sets REV to its revision.
put() {
  api GET "$P/configs/$1" "" "$T" "$L"
  local v=0
  [[ $code != 200 ]] || v=$(jq -r .version <<<"$body")
  api PUT "$P/configs/$1" "{\"content\": {\"v\": $((v + 1))}, \"expected_version\": $v}" "$T" "$L"
  [[ $code == 200 || $code == 201 ]] || fail "put $1: $code $body"
  REV=$(jq -r .revision <<<"$body")
}

put seed
HEAD=$REV

# --- a write the follower applied and PostgreSQL does not hold yet -----------------------
curl -s --max-time 30 -H "Authorization: Bearer $T" -o "$TMP/blk.body" -w '%{http_code}' \
  "http://127.0.0.1:${!HP_F1}$P/watch?after_revision=$HEAD&timeout=25" >"$TMP/blk.code" 2>/dev/null &
WATCHER=$!
PIDS+=($WATCHER)
wait_waiting "$F1" 1
# A SHARE lock on config_revisions for 8 s (released by its own COMMIT): the materializer's
# INSERT waits for it, the hub's SELECT does not.
"$PG_BIN/psql" "$DATABASE_URL" -XAtq -v ON_ERROR_STOP=1 -c "BEGIN" \
  -c "LOCK TABLE config_revisions IN SHARE MODE" -c "SELECT pg_sleep(8)" -c "COMMIT" \
  >/dev/null 2>"$TMP/lock.err" &
LOCKER=$!
PIDS+=($LOCKER)
for ((i = 0; i < 50; i++)); do
  n=$(sql "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
           WHERE c.relname = 'config_revisions' AND l.mode = 'ShareLock' AND l.granted")
  [[ $n == 1 ]] && break
  sleep 0.1
done
[[ $n == 1 ]] || fail "the SHARE lock on config_revisions was not granted within 5 s: $(cat "$TMP/lock.err")"
metric "$F1" conclave_watch_queries_total
q0=$MV
# The write, through the leader in the background: its answer waits for PostgreSQL.
curl -s --max-time 30 -X PUT -H "Authorization: Bearer $T" -H 'Content-Type: application/json' \
  -d '{"content": {"v": 1}, "expected_version": 0}' -o "$TMP/put.body" -w '%{http_code}' \
  "http://127.0.0.1:${!HP_L}$P/configs/blocked" >"$TMP/put.code" 2>/dev/null &
PUTTER=$!
PIDS+=($PUTTER)
# The follower applies it (the leader's heartbeat says it committed): its state machine has the
# revision, still queued (not known to be in PostgreSQL).
for ((i = 0; i < 30; i++)); do
  api GET "$P/head" "" "$T" "$F1"
  [[ $code == 200 && $(jq -r '.revision // 0' <<<"$body") -gt $HEAD ]] && break
  sleep 0.1
done
expect_code 200
REV_B=$(jq -r '.revision // 0' <<<"$body")
[[ $REV_B -gt $HEAD ]] || fail "the follower did not apply the write within 3 s: $body; the write: $(cat "$TMP/put.code" "$TMP/put.body")"
[[ $(jq -r .queued <<<"$body") -ge 1 ]] || fail "revision $REV_B is not queued on the follower: $body"
# Its hub asked PostgreSQL at once (its materialized index cannot have moved: nothing was
# materialized), ...
for ((i = 0; i < 20; i++)); do
  metric "$F1" conclave_watch_queries_total
  [[ $MV -gt $q0 ]] && break
  sleep 0.1
done
[[ $MV -gt $q0 ]] || fail "the follower's hub did not query PostgreSQL for a revision it applied"
# ... and answered nothing: PostgreSQL does not have the revision, the watcher still waits.
sleep 0.3
expect_eq "$(sql "SELECT count(*) FROM config_revisions WHERE project_id = 'w' AND revision = $REV_B")" 0 \
  "revision $REV_B in PostgreSQL while the lock is held"
alive "$WATCHER" || fail "the follower answered before PostgreSQL had revision $REV_B: $(cat "$TMP/blk.body")"
alive "$LOCKER" || fail "the lock was released too early for the check (the machine is slow?)"
# Released: the write is acknowledged and the watcher gets exactly that revision.
wait "$LOCKER" || fail "the lock holder failed: $(cat "$TMP/lock.err")"
wait "$PUTTER" || true
code=$(<"$TMP/put.code")
[[ $code == 201 || $code == 200 ]] || fail "the blocked write: $code $(cat "$TMP/put.body")"
expect_eq "$(jq -r .revision "$TMP/put.body")" "$REV_B" "the blocked write's revision"
wait "$WATCHER" || true
PIDS=()
expect_eq "$(<"$TMP/blk.code")" 200 "the follower's watcher: status"
expect_eq "$(jq -c '[.changes[] | [.key, .revision]], .next_after_revision' "$TMP/blk.body" | tr '\n' ' ')" \
  "[[\"blocked\",$REV_B]] $REV_B " "the follower's watcher: the change once PostgreSQL has it"
HEAD=$REV_B

# --- every revision once, in order; about one query per write --------------------------------
# 20 watchers of a key never written wait on the follower all along.
for ((i = 1; i <= 20; i++)); do
  curl -s --max-time 60 -H "Authorization: Bearer $T" -o /dev/null \
    "http://127.0.0.1:${!HP_F1}$P/watch?after_revision=$HEAD&key=never.written&timeout=50" 2>/dev/null &
  PIDS+=($!)
done
wait_waiting "$F1" 20
# A chained watcher on the follower: polls from HEAD, appends every revision it gets to
# chain.revs, and polls again from next_after_revision, until chain.stop exists (at most 200
# polls of at most 5 s).
(
  cur=$HEAD
  for ((k = 0; k < 200; k++)); do
    [[ -e $TMP/chain.stop ]] && break
    b=$(curl -s --max-time 10 -H "Authorization: Bearer $T" \
      "http://127.0.0.1:${!HP_F1}$P/watch?after_revision=$cur&timeout=1") || continue
    jq -r '.changes[].revision' <<<"$b" >>"$TMP/chain.revs" || exit 1
    n=$(jq -r .next_after_revision <<<"$b") || exit 1
    [[ $n =~ ^[0-9]+$ ]] && cur=$n
    echo "$cur" >"$TMP/chain.cur"
  done
) &
CHAIN=$!
PIDS+=($CHAIN)
sleep 0.5
metric "$F1" conclave_watch_queries_total
q0=$MV
for ((i = 1; i <= 10; i++)); do
  put "c$((i % 3))"
  sleep 0.2
done
LAST=$REV
for ((i = 0; i < 100; i++)); do
  [[ $(cat "$TMP/chain.cur" 2>/dev/null) == "$LAST" ]] && break
  sleep 0.1
done
metric "$F1" conclave_watch_queries_total
q1=$MV
touch "$TMP/chain.stop"
wait "$CHAIN" || fail "the chained watcher failed"
stop_pids
expect_eq "$(tr '\n' ' ' <"$TMP/chain.revs")" \
  "$(sql "SELECT revision FROM config_revisions WHERE project_id = 'w' AND revision > $HEAD ORDER BY revision" | tr '\n' ' ')" \
  "the revisions the chained watcher got, against PostgreSQL's"
echo "follower: $((q1 - q0)) hub queries for 10 writes with 21 watchers"
[[ $((q1 - q0)) -ge 1 && $((q1 - q0)) -lt 15 ]] ||
  fail "follower: $((q1 - q0)) hub queries for 10 writes, expected 1 to 14"

test_done watch_follower
