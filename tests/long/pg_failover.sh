# PostgreSQL high availability with the real engine: a primary and a synchronous standby
# (streaming replication), the primary killed under write load and the standby promoted.
#
#  1. Two private PostgreSQL 15 servers on 127.0.0.1: a primary (wal_level=replica,
#     synchronous_commit=on, synchronous_standby_names='standby1') and a standby made with
#     pg_basebackup -R (primary_conninfo with application_name=standby1), confirmed streaming
#     with pg_stat_replication.sync_state = 'sync' before anything is written.
#  2. The conclave database on the primary, migrated as its owner; a three-node cluster whose
#     nodes connect as a login role of conclave_node through the multi-host URL
#     postgresql://ROLE@127.0.0.1:P1,127.0.0.1:P2/DB?target_session_attrs=read-write.
#  3. Two writers (CAS puts, a request id per write, retried with the same id on 503/504/no
#     answer, as docs/write-path.md tells a client) record every acknowledged write. After a few
#     seconds the primary is killed hard (SIGSTOP then SIGKILL of every process of it), and
#     after a detection delay the standby is promoted (pg_ctl promote). Nothing is changed on
#     the nodes: they find the new primary by themselves.
#  4. Checks: writes are acknowledged again within RECOVER_S of the promotion and /ready answers
#     200 on every node; every acknowledged write is in the new primary's config_revisions with
#     its version, revision, request id and content; versions gapless, no request id twice,
#     configs agree with the revisions and with the cluster; the queues drain; the nodes
#     converge; audit verify is clean (through the API, and with the CLI from the database).
#     Printed: acknowledged writes, failed attempts during the switch (by status), how long no
#     write was acknowledged, the promotion-to-first-write time.
#  5. Asynchronous replication, to show what it does not keep (deterministic): the old
#     primary's port gets a new, asynchronous standby of the new primary (the usual rebuild
#     after a failover, so the nodes' URL covers it unchanged); the standby is stopped (an
#     asynchronous standby that lags, taken to the extreme), writes are acknowledged and
#     trimmed from the queues (the primary does not wait for it), the primary is killed and the
#     stale standby promoted. Its config_revisions lacks those acknowledged writes, and the
#     leader refuses writes with 503 postgresql_behind ("PostgreSQL behind the cluster",
#     docs/operations.md) instead of answering on a history with a hole.
#
# PG_FAILOVER_DETECT_S (default 2) sets the kill-to-promotion delay; above 10 s the writes in
# flight get 504 outcome_unknown and their retries with the same request id the first outcome.
# Runs in about 70-90 s on 2 cores.
#
# To see the test fail: PG_FAILOVER_BREAK=primary_only gives the nodes the primary's address
# alone; they then never reach the promoted standby, and the test fails at step 4 ("no write
# was acknowledged within RECOVER_S s of the promotion").
source "$(dirname "$0")/../lib/lib.sh"
source "$(dirname "$0")/../lib/node_lib.sh"
source "$(dirname "$0")/../lib/raft_lib.sh"

LOAD_BEFORE_S=${PG_FAILOVER_LOAD_BEFORE_S:-6} # writes before the kill
DETECT_S=${PG_FAILOVER_DETECT_S:-2}           # kill -> promote (a failover manager's detection)
LOAD_AFTER_S=${PG_FAILOVER_LOAD_AFTER_S:-6}   # writes after the first acknowledgement again
RECOVER_S=30                                  # promote -> a write acknowledged again, at most

pgdir="$TMP/pg"
mkdir -p "$pgdir"
chmod 755 "$TMP" "$pgdir"
PRIMARY="$pgdir/primary"
STANDBY="$pgdir/standby"
REBUILT="$pgdir/rebuilt"
DB=conclave_ha
NODE_ROLE=ha_node

psql_at() { # PORT DB QUERY: as the owner (superuser conclave), on that server only
  "$PG_BIN/psql" "host=127.0.0.1 port=$1 user=conclave dbname=$2" -XAtq -v ON_ERROR_STOP=1 -c "$3"
}
# pg_start_on DATA OPTS LOG PORT_VAR: starts DATA on a free port (4 attempts: another test may
# take the port between the probe and the bind); sets PORT_VAR.
pg_start_on() {
  local data=$1 opts=$2 log=$3 var=$4 p attempt
  for attempt in 1 2 3 4; do
    p=$(free_port)
    if pg_start "$data" "$p" "$log" "$opts"; then
      printf -v "$var" '%s' "$p"
      return 0
    fi
  done
  fail "could not start PostgreSQL in $data: $(tail -n 5 "$log")"
}
# pg_crash DATA: every process of that server stopped first (so that none writes anything out
# while the others die), then killed; bounded wait until they are reaped.
pg_crash() {
  local pm kids n
  pm=$(pg_pid "$1")
  [[ -n $pm ]] || fail "the PostgreSQL of $1 is not running"
  kids=$(pgrep -P "$pm" | tr '\n' ' ')
  # shellcheck disable=SC2086
  kill -STOP "$pm" $kids
  # shellcheck disable=SC2086
  kill -KILL "$pm" $kids
  for ((n = 0; n < 100; n++)); do
    # shellcheck disable=SC2086
    [[ -z $(ps -o stat= -p "$pm" $kids) ]] && return 0
    sleep 0.1
  done
  fail "PostgreSQL (pid $pm) is still there 10 s after SIGKILL"
}
# make_standby FROM_PORT DATA APPNAME: pg_basebackup -R of the server on FROM_PORT into DATA,
# with primary_conninfo naming APPNAME (which synchronous_standby_names refers to).
make_standby() {
  local from=$1 data=$2 app=$3
  mkdir -p "$data"
  [[ $(id -u) -ne 0 ]] || chown postgres: "$data"
  chmod 700 "$data"
  pg_as_owner "$PG_BIN/pg_basebackup" -D "$data" -R -X stream -c fast \
    -d "host=127.0.0.1 port=$from user=replicator application_name=$app" \
    >"$data.basebackup.log" 2>&1 || fail "pg_basebackup from port $from: $(cat "$data.basebackup.log")"
  grep -q "application_name=$app" "$data/postgresql.auto.conf" ||
    fail "pg_basebackup -R wrote no application_name=$app: $(cat "$data/postgresql.auto.conf")"
  [[ -f $data/standby.signal ]] || fail "pg_basebackup -R made no standby.signal in $data"
}
# wait_replication PORT APPNAME STATE: pg_stat_replication on PORT shows APPNAME streaming with
# sync_state STATE, within 20 s.
wait_replication() {
  local n got=
  for ((n = 0; n < 200; n++)); do
    got=$(psql_at "$1" postgres "SELECT state || ' ' || sync_state FROM pg_stat_replication
      WHERE application_name = '$2'" 2>/dev/null) || got=
    [[ $got == "streaming $3" ]] && return 0
    sleep 0.1
  done
  fail "standby $2 is not 'streaming $3' on port $1 after 20 s (got <$got>)"
}

WRITERS=()
writers_stop() {
  local p n k
  touch "$TMP/stop"
  # Each writer ends after its current request (curl --max-time 15): 20 s, then by pid.
  for ((n = 0; n < 200; n++)); do
    k=0
    for p in "${WRITERS[@]}"; do
      ! alive "$p" || k=1
    done
    ((k)) || break
    sleep 0.1
  done
  for p in "${WRITERS[@]}"; do
    if alive "$p"; then
      for k in $(pgrep -P "$p"); do kill -KILL "$k" 2>/dev/null || true; done
      kill -KILL "$p" 2>/dev/null || true
    fi
    wait "$p" 2>/dev/null || true
  done
  WRITERS=()
}
pg_logs_on_failure() {
  local f
  [[ $TEST_STATUS -ne 0 ]] || return 0
  for f in "$pgdir"/*.log; do
    [[ -f $f ]] || continue
    echo "--- last lines of $(basename "$f"):" >&2
    tail -n 15 "$f" >&2
  done
}
at_exit 'writers_stop; stop_nodes; pg_logs_on_failure; pg_stop "$PRIMARY"; pg_stop "$STANDBY"; pg_stop "$REBUILT"'

# --- 1. the primary and its synchronous standby ---------------------------------------------
pg_init "$PRIMARY"
# Replication connections of the replicator role from loopback only (trust: a private test
# server; a real one uses scram-sha-256 and a password file).
{ echo "host replication replicator 127.0.0.1/32 trust"; cat "$PRIMARY/pg_hba.conf"; } >"$pgdir/hba"
cat "$pgdir/hba" >"$PRIMARY/pg_hba.conf"
# max_connections 50 on both: a hot standby needs at least the primary's.
COMMON="-c max_connections=50 -c wal_level=replica -c max_wal_senders=5 -c wal_keep_size=128MB"
COMMON+=" -c synchronous_commit=on -c hot_standby=on"
pg_start_on "$PRIMARY" "$COMMON" "$pgdir/primary.log" P1
psql_at "$P1" postgres "CREATE ROLE replicator REPLICATION LOGIN" >/dev/null
make_standby "$P1" "$STANDBY" standby1
pg_start_on "$STANDBY" "$COMMON" "$pgdir/standby.log" P2
wait_replication "$P1" standby1 async
# Synchronous only now: with synchronous_standby_names set and no standby connected every
# commit waits. ALTER SYSTEM writes the primary's postgresql.auto.conf, after the base backup
# copied it, so the standby does not inherit the setting (promoted, it must not wait for a
# standby it does not have).
psql_at "$P1" postgres "ALTER SYSTEM SET synchronous_standby_names = 'standby1'" >/dev/null
psql_at "$P1" postgres "SELECT pg_reload_conf()" >/dev/null
wait_replication "$P1" standby1 sync
expect_eq "$(psql_at "$P1" postgres "SHOW synchronous_commit")" on "the primary's synchronous_commit"
expect_eq "$(psql_at "$P2" postgres "SELECT pg_is_in_recovery()")" t "the standby is in recovery"
echo "primary on 127.0.0.1:$P1, synchronous standby standby1 on 127.0.0.1:$P2"

# --- 2. the database, the roles, the cluster --------------------------------------------------
psql_at "$P1" postgres "CREATE DATABASE $DB" >/dev/null
psql_at "$P1" postgres "CREATE ROLE conclave_node NOLOGIN" >/dev/null
psql_at "$P1" postgres "CREATE ROLE $NODE_ROLE LOGIN IN ROLE conclave_node" >/dev/null
HOSTS="127.0.0.1:$P1,127.0.0.1:$P2"
# The owner's URL (migrate, admin, the checks) is multi-host too: it follows the primary.
export DATABASE_URL="postgresql://conclave@$HOSTS/$DB?target_session_attrs=read-write"
TEST_DB_OWNER_URL=$DATABASE_URL
if [[ ${PG_FAILOVER_BREAK:-} == primary_only ]]; then
  echo "PG_FAILOVER_BREAK=primary_only: the nodes get the primary's address alone (this run must fail)"
  export NODE_DATABASE_URL="postgresql://$NODE_ROLE@127.0.0.1:$P1/$DB"
else
  export NODE_DATABASE_URL="postgresql://$NODE_ROLE@$HOSTS/$DB?target_session_attrs=read-write"
fi
"$BIN" migrate up >/dev/null
raft_ports 3
for i in 1 2 3; do
  raft_config "$i" "1 2 3"
  expect_eq "$(jq -r .database.url "$TMP/rnode$i.json")" "$NODE_DATABASE_URL" "node $i's database.url"
  raft_start "$i"
done
leader=$(wait_leader 20) || fail "no leader within 20 s"
create_user admin@example.com "admin-password-1" --admin >/dev/null
token=$(login admin@example.com "admin-password-1" "$leader")
api POST /v1/projects '{"id": "ha", "name": "HA"}' "$token" "$leader"
expect_code 201

# --- 3. write load, kill the primary, promote the standby -------------------------------------
ms() { local t=${EPOCHREALTIME//[.,]/}; echo $((10#$t / 1000)); }
# writer W: keys wW-0..wW-3, CAS puts with content {"w": W, "n": N} and request id wW-N. An
# answer that is not definitive (503, 504, none) is retried with the same request id, at most
# 40 times (backoff 0.1 s doubling to 1 s). Appends "key version revision request_id" per
# acknowledged write to acked.W, "start_ms end_ms status" per attempt to attempts.W, and
# anything else to bad.W. Bounded: 150 s whatever happens.
writer() {
  local w=$1 n=0 key v rid out code attempt pause node url_var t0 deadline=$((SECONDS + 150))
  declare -A ver=()
  while [[ ! -f $TMP/stop ]] && ((SECONDS < deadline)); do
    key="w$w-$((n % 4))"
    v=${ver[$key]:-0}
    rid="w$w-$n"
    pause=0.1
    code=
    for ((attempt = 1; attempt <= 40 && SECONDS < deadline; attempt++)); do
      [[ -f $TMP/stop ]] && break
      node=$((RANDOM % 3 + 1))
      url_var="NODE_${node}_URL"
      t0=$(ms)
      out=$(curl -s --max-time 15 -w '\n%{http_code}' -X PUT -H "Authorization: Bearer $token" \
        -H 'Content-Type: application/json' \
        -d "{\"content\": {\"w\": $w, \"n\": $n}, \"expected_version\": $v, \"request_id\": \"$rid\"}" \
        "${!url_var}/v1/projects/ha/configs/$key" 2>/dev/null) || true
      code=${out##*$'\n'}
      echo "$t0 $(ms) $code" >>"$TMP/attempts.$w"
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
      echo "$key $rid: no definitive answer after $attempt attempts (last $code)" >>"$TMP/bad.$w"
      return 0
    fi
    n=$((n + 1))
  done
}
# ready_poller: every node's /ready every 100 ms, "ms node status" lines to ready.log, until the
# stop file (bounded: 150 s).
ready_poller() {
  local i url_var deadline=$((SECONDS + 150))
  while [[ ! -f $TMP/stop ]] && ((SECONDS < deadline)); do
    for i in 1 2 3; do
      url_var="NODE_${i}_URL"
      echo "$(ms) $i $(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "${!url_var}/ready" 2>/dev/null)"
    done >>"$TMP/ready.log"
    sleep 0.1
  done
}
acked_count() { cat "$TMP"/acked.* 2>/dev/null | wc -l; }
# last_ack_ms: the end time of the newest acknowledged attempt, 0 when none.
last_ack_ms() {
  cat "$TMP"/attempts.* 2>/dev/null | awk '$3 == 200 || $3 == 201 { if ($2 > m) m = $2 } END { printf "%.0f\n", m }'
}

rm -f "$TMP/stop"
writer 1 &
WRITERS+=($!)
writer 2 &
WRITERS+=($!)
ready_poller &
WRITERS+=($!)
sleep "$LOAD_BEFORE_S"
before=$(acked_count)
((before >= 10)) || fail "only $before writes acknowledged in $LOAD_BEFORE_S s before the kill"
! compgen -G "$TMP/bad.*" >/dev/null || fail "a write failed before the kill: $(cat "$TMP"/bad.*)"
expect_eq "$(psql_at "$P1" postgres "SELECT sync_state FROM pg_stat_replication
  WHERE application_name = 'standby1'")" sync "standby1's sync_state under load"

T_KILL=$(ms)
pg_crash "$PRIMARY"
T_KILLED=$(ms)
echo "primary killed (SIGSTOP + SIGKILL of every process) after $before acknowledged writes"
# The failover manager's detection delay, counted from the kill.
wait_ms=$((T_KILL + DETECT_S * 1000 - T_KILLED))
((wait_ms <= 0)) || sleep "$((wait_ms / 1000)).$(printf '%03d' $((wait_ms % 1000)))"
T_PROMOTE=$(ms)
pg_as_owner "$PG_BIN/pg_ctl" -D "$STANDBY" promote -w -t 30 >/dev/null ||
  fail "pg_ctl promote of the standby failed: $(tail -n 5 "$pgdir/standby.log")"
T_PROMOTED=$(ms)
expect_eq "$(psql_at "$P2" postgres "SELECT pg_is_in_recovery()")" f "the promoted standby is in recovery"
echo "standby promoted in $((T_PROMOTED - T_PROMOTE)) ms, $((T_PROMOTE - T_KILL)) ms after the kill" \
  "(the kill itself, until every process was reaped: $((T_KILLED - T_KILL)) ms)"

# The nodes must find the new primary by themselves: a write acknowledged after the promotion.
T_BACK=
for ((n = 0; n < RECOVER_S * 10; n++)); do
  t=$(last_ack_ms)
  if ((t > T_PROMOTED)); then
    T_BACK=$t
    break
  fi
  # A writer that gave up (bad.*) or ended will not acknowledge anything any more.
  if compgen -G "$TMP/bad.*" >/dev/null || ! alive "${WRITERS[0]}"; then
    break
  fi
  sleep 0.1
done
[[ -n $T_BACK ]] || fail "no write was acknowledged within $RECOVER_S s of the promotion" \
  "(the nodes did not reach the new primary on 127.0.0.1:$P2)$(cat "$TMP"/bad.* 2>/dev/null | sed 's/^/; /')"
echo "first write acknowledged $((T_BACK - T_PROMOTED)) ms after the promotion finished"
sleep "$LOAD_AFTER_S"
writers_stop
! compgen -G "$TMP/bad.*" >/dev/null || fail "a write failed: $(cat "$TMP"/bad.*)"

# /ready on every node, within 20 s.
for i in 1 2 3; do
  url_var="NODE_${i}_URL"
  for ((n = 0; n < 200; n++)); do
    [[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "${!url_var}/ready") == 200 ]] && break
    sleep 0.1
  done
  ((n < 200)) || fail "node $i: /ready is not 200 20 s after the writes stopped: $(curl -s --max-time 2 "${!url_var}/ready")"
done

# --- 4. nothing acknowledged is lost ----------------------------------------------------------
cat "$TMP"/acked.* >"$TMP/acked"
n_acked=$(wc -l <"$TMP/acked")
after=$((n_acked - before))
((after >= 10)) || fail "only $after writes acknowledged after the kill"
# The checks read the new primary only (the old one is dead; the URL could not pick it anyway).
export DATABASE_URL="postgresql://conclave@127.0.0.1:$P2/$DB"
acked_writes_in_postgresql ha "$TMP/acked"
expect_eq "$(sql "SELECT count(*) FROM config_revisions")" \
  "$(sql "SELECT max(revision) FROM config_revisions")" "revision rows vs the highest revision"
# The content of each acknowledged write (one psql: the list goes in through COPY).
awk '{ split($4, a, "-"); sub(/^w/, "", a[1]); print $1 "\t" $2 "\t" a[1] "\t" a[2] }' "$TMP/acked" >"$TMP/acked.tsv"
bad_content=$("$PG_BIN/psql" "$DATABASE_URL" -XAtq -v ON_ERROR_STOP=1 <<SQL
CREATE TEMP TABLE acked (key text, version bigint, w int, n int);
\copy acked FROM '$TMP/acked.tsv'
SELECT count(*) FROM acked a LEFT JOIN config_revisions r
  ON r.project_id = 'ha' AND r.key = a.key AND r.version = a.version
  WHERE r.content IS NULL OR r.content::jsonb <> jsonb_build_object('w', a.w, 'n', a.n);
SQL
)
expect_eq "$bad_content" 0 "acknowledged writes whose content differs in config_revisions"
# configs: at least the last acknowledged version of each key (a write cut off by the stop may
# have committed unacknowledged), and the content of its revision.
expect_eq "$(sql "SELECT count(*) FROM configs c JOIN config_revisions r
  ON r.project_id = c.project_id AND r.key = c.key AND r.version = c.version
  WHERE c.project_id = 'ha' AND c.content::jsonb = r.content::jsonb AND c.last_revision = r.revision")" \
  "$(sql "SELECT count(*) FROM configs WHERE project_id = 'ha'")" "configs rows matching their revision"
while read -r key maxv; do
  got=$(sql "SELECT version FROM configs WHERE project_id = 'ha' AND key = '$key'")
  ((got >= maxv)) || fail "configs holds $key at version $got, below the acknowledged $maxv"
  api GET "/v1/projects/ha/configs/$key" "" "$token" 1
  expect_code 200
  expect_json .version "$got"
done < <(awk '{ if ($2 > m[$1]) m[$1] = $2 } END { for (k in m) print k, m[k] }' "$TMP/acked")
# The queues drain on every node: PostgreSQL holds everything durably.
for i in 1 2 3; do
  url_var="NODE_${i}_URL"
  for ((n = 0; n < 100; n++)); do
    pending=$(curl -s --max-time 2 "${!url_var}/metrics" | awk '$1 == "conclave_fsm_pending_revisions" {print $2}')
    [[ $pending == 0 ]] && break
    sleep 0.1
  done
  expect_eq "$pending" 0 "node $i: revisions still queued 10 s after the writes stopped"
done
nodes_converge "$token"
leader=$(wait_leader 10) || fail "no leader at the end"
api GET /v1/projects/ha/audit/verify "" "$token" "$leader"
expect_code 200
expect_json .ok true
run "$BIN" audit verify --project ha --source db --database-url "$DATABASE_URL" -o json
expect_status 0
jq -e '.ok and .projects[0].revisions_checked > 0 and .projects[0].problem == null' <<<"$out" >/dev/null ||
  fail "audit verify from the new primary: $out"
run env -u DATABASE_URL CONCLAVE_ENDPOINTS="$NODE_1_URL,$NODE_2_URL,$NODE_3_URL" \
  CONCLAVE_TOKEN="$token" "$BIN" audit verify --project ha --source api
expect_status 0
expect_out "project ha: ok"

# The numbers of the switch.
cat "$TMP"/attempts.* | sort -n >"$TMP/attempts"
failed=$(awk '$3 != 200 && $3 != 201' "$TMP/attempts" | wc -l)
by_status=$(awk '$3 != 200 && $3 != 201 { c[$3]++ } END { for (s in c) printf "%s %s: %d", sep, s, c[s]; sep = "," }' "$TMP/attempts")
# The longest time without an acknowledgement: between consecutive acknowledged attempts' ends.
gap=$(awk '$3 == 200 || $3 == 201 { print $2 }' "$TMP/attempts" | sort -n |
  awk 'NR > 1 && $1 - p > g { g = $1 - p } { p = $1 } END { print g + 0 }')
slowest=$(awk '($3 == 200 || $3 == 201) && $2 - $1 > m { m = $2 - $1 } END { print m + 0 }' "$TMP/attempts")
rewrote=$(cat "$TMP"/node*.log | grep -c 'it lost commits' || true)
echo "acknowledged writes: $n_acked ($before before the kill, $after after), lost: 0"
echo "failed attempts (retried with the same request id): $failed${by_status:+ (}${by_status# }${by_status:+)}"
echo "no write acknowledged for $gap ms (kill -> promote: $((T_PROMOTE - T_KILL)) ms;" \
  "promotion done -> first acknowledgement: $((T_BACK - T_PROMOTED)) ms); slowest acknowledged attempt: $slowest ms"
for i in 1 2 3; do
  # From the first answer other than 200 after the kill to the next 200.
  w=$(awk -v n="$i" -v t0="$T_KILL" '$2 == n && $1 >= t0 {
      if ($3 != 200 && !s) s = $1; else if ($3 == 200 && s && !e) e = $1 }
    END { if (!s) print "always 200"; else if (!e) print "never 200 again"; else printf "%.0f ms\n", e - s }' \
    "$TMP/ready.log")
  echo "node $i: /ready not 200 for $w"
done
for i in 1 2 3; do
  url_var="NODE_${i}_URL"
  echo "node $i: conclave_pg_pool_connect_failures_total $(curl -s --max-time 2 "${!url_var}/metrics" |
    awk '$1 == "conclave_pg_pool_connect_failures_total" { print $2 }')"
done
echo "leader rewrote commits the promoted standby lacked ('it lost commits' logged): $rewrote time(s)"
echo "what the nodes logged (other than requests and start-up; numbers as N, count first):"
# awk, not head: a reader that stops early would end the writers of the pipe with SIGPIPE.
cat "$TMP"/node*.log | awk '!/^http |^--- start|^conclave serve: warning|serving http on/ {
  gsub(/[0-9]+/, "N"); print substr($0, 1, 200) }' | sort | uniq -c | sort -rn | awk 'n < 15 { print; n++ }'

# --- 5. asynchronous replication can lose acknowledged writes --------------------------------
# The old primary's port gets a new standby of the new primary, asynchronous (the new primary
# has no synchronous_standby_names), so the nodes' URL covers it as it is.
make_standby "$P2" "$REBUILT" standby2
pg_start "$REBUILT" "$P1" "$pgdir/rebuilt.log" "$COMMON" ||
  fail "could not start the rebuilt standby on the old primary's port $P1"
wait_replication "$P2" standby2 async
# The extreme of a lagging asynchronous standby: it receives nothing more.
pg_stop "$REBUILT"
[[ -z $(pg_pid "$REBUILT") ]] || fail "the rebuilt standby did not stop"
leader=$(wait_leader 10) || fail "no leader before the asynchronous part"
rm -f "$TMP"/acked.* "$TMP"/attempts.* "$TMP/stop"
for ((n = 0; n < 20; n++)); do
  api PUT "/v1/projects/ha/configs/async-$n" "{\"content\": {\"async\": $n}, \"expected_version\": 0}" "$token" "$leader"
  expect_code 201
  echo "async-$n $(jq -r '.version, .revision, .request_id' <<<"$body" | tr '\n' ' ')" >>"$TMP/acked.async"
done
# Acknowledged and trimmed from every queue: PostgreSQL (the primary alone) holds them durably.
for ((n = 0; n < 100; n++)); do
  pending=$(curl -s --max-time 2 "${NODE_1_URL}/metrics" | awk '$1 == "conclave_fsm_pending_revisions" {print $2}')
  [[ $pending == 0 ]] && break
  sleep 0.1
done
expect_eq "$pending" 0 "revisions still queued 10 s after the asynchronous writes"
pg_crash "$STANDBY" # the current primary
pg_start "$REBUILT" "$P1" "$pgdir/rebuilt.log" "$COMMON" || fail "could not restart the rebuilt standby"
pg_as_owner "$PG_BIN/pg_ctl" -D "$REBUILT" promote -w -t 30 >/dev/null ||
  fail "pg_ctl promote of the rebuilt standby failed: $(tail -n 5 "$pgdir/rebuilt.log")"
export DATABASE_URL="postgresql://conclave@127.0.0.1:$P1/$DB"
missing=$(sql "SELECT count(*) FROM config_revisions WHERE project_id = 'ha' AND key LIKE 'async-%'")
expect_eq "$missing" 0 "acknowledged asynchronous writes on the promoted stale standby"
# The leader finds PostgreSQL behind the cluster and refuses writes, naming the lost revisions.
for ((n = 0; n < 150; n++)); do
  leader=$(raft_leader)
  if [[ -n $leader ]]; then
    api GET /ready "" "" "$leader"
    [[ $code == 503 && $(json_get error) == postgresql_behind ]] && break
  fi
  sleep 0.1
done
[[ $code == 503 ]] || fail "the leader's /ready is not 503 postgresql_behind 15 s after the stale promotion: $code $body"
expect_json .error postgresql_behind
api PUT /v1/projects/ha/configs/after-loss '{"content": 1, "expected_version": 0}' "$token" "$leader"
expect_error postgresql_behind 503
lost=$(curl -s --max-time 2 "$(eval echo "\$NODE_${leader}_URL")/metrics" |
  awk '$1 == "conclave_materializer_postgresql_missing_revisions" {print $2}')
((lost >= 20)) || fail "the leader reports $lost missing revisions, expected the 20 asynchronous writes at least"
echo "asynchronous standby promoted: 20 acknowledged writes missing from PostgreSQL; the leader reports $lost missing revisions and refuses writes (503 postgresql_behind)"

test_done "pg failover"
