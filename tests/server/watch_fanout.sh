# The watch hub (src/server/watch_hub.c, docs/api.md "watch") on a cluster of three real nodes:
# N long-poll watchers of one project on a follower and one write: every watcher gets exactly
# that change, and the hub's PostgreSQL queries for the change (conclave_watch_queries_total)
# are as few with 50 watchers as with 5; ?key= and ?prefix= filter on the server (a watcher
# does not wake for another key and still gets its own change later; next_after_revision lets
# a filtered watcher resume without missing or repeating a revision); the timeout answers
# empty with the advanced cursor; bad parameters are refused naming them; a failed query
# answers every watcher waiting for it with the error; a node stopped with
# watchers waiting answers each of them and exits 0.
source "$(dirname "$0")/../lib/lib.sh"
source "$(dirname "$0")/../lib/node_lib.sh"
source "$(dirname "$0")/../lib/raft_lib.sh"
make_test_db watch_fanout
"$BIN" migrate up >/dev/null

PW=watch-fanout-password-1
raft_up 3
F1=$(((L % 3) + 1))
F2=$((((L + 1) % 3) + 1))
echo "leader: node $L, followers: $F1 $F2"
create_user root@example.com "$PW" --admin >/dev/null
T=$(login root@example.com "$PW" "$L")
api POST /v1/projects '{"id": "w", "name": "watched"}' "$T" "$L"
expect_code 201
P=/v1/projects/w

# Watchers are curl processes in the background; each writes $TMP/TAG.I.{body,code}.
WPIDS=()
kill_watchers() {
  local p
  for p in "${WPIDS[@]}"; do
    kill "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
  WPIDS=()
}
at_exit kill_watchers

# watchers N NODE TAG QUERY: starts N watchers of project w on NODE.
watchers() {
  local i hp="HPORT_$2"
  for ((i = 1; i <= $1; i++)); do
    curl -s --max-time 30 -H "Authorization: Bearer $T" -o "$TMP/$3.$i.body" -w '%{http_code}' \
      "http://127.0.0.1:${!hp}$P/watch?$4" >"$TMP/$3.$i.code" 2>/dev/null &
    WPIDS+=($!)
  done
}

# wait_watchers: waits (up to 30 s) for every watcher started so far to end.
wait_watchers() {
  local p
  for p in "${WPIDS[@]}"; do
    wait "$p" 2>/dev/null || true
  done
  WPIDS=()
}

# metric NODE NAME: sets MV to the value of the unlabelled sample NAME of NODE's /metrics.
metric() {
  local hp="HPORT_$1"
  curl -s --max-time 5 -o "$TMP/metrics.txt" "http://127.0.0.1:${!hp}/metrics" || true
  MV=$(awk -v n="$2" '$1 == n {print $2}' "$TMP/metrics.txt")
  [[ $MV =~ ^[0-9]+$ ]] || fail "node $1: no sample $2 in /metrics: $(grep -c . "$TMP/metrics.txt") lines"
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

# --- fan-out: N watchers, one write -------------------------------------------------------
# fanout N: N watchers after HEAD on follower F1, then one write; sets FANQ to the hub's
# queries for the write (registration queries excluded: the counter is read once all N wait).
fanout() {
  local n=$1 q0 q1 i
  watchers "$n" "$F1" "f$n" "after_revision=$HEAD&timeout=20"
  wait_waiting "$F1" "$n"
  metric "$F1" conclave_watch_queries_total
  q0=$MV
  put "fan$n"
  local rev=$REV
  wait_watchers
  metric "$F1" conclave_watch_queries_total
  q1=$MV
  for ((i = 1; i <= n; i++)); do
    expect_eq "$(<"$TMP/f$n.$i.code")" 200 "watcher $i of $n: status"
    expect_eq "$(jq -c '[.changes[] | [.key, .revision]], .next_after_revision' "$TMP/f$n.$i.body" | tr '\n' ' ')" \
      "[[\"fan$n\",$rev]] $rev " "watcher $i of $n: the change and next_after_revision"
  done
  HEAD=$rev
  echo "$n watchers: $((q1 - q0)) hub queries for the write"
  FANQ=$((q1 - q0))
}
fanout 5
Q5=$FANQ
fanout 50
Q50=$FANQ
# About one query per write, whatever the number of watchers: the follower asks as soon as it
# applies the write, and again (at most twice more, then once its materialized index moves)
# only if PostgreSQL did not have it yet (tests/server/watch_follower.sh checks that path);
# before the hub each watcher ran its own query (50 and more for 50 watchers).
[[ $Q5 -ge 1 && $Q5 -le 4 ]] || fail "5 watchers: $Q5 hub queries for one write, expected 1 to 4"
[[ $Q50 -ge 1 && $Q50 -le 4 ]] || fail "50 watchers: $Q50 hub queries for one write, expected 1 to 4"
metric "$F1" conclave_watch_waiting
expect_eq "$MV" 0 "watchers waiting after the fan-out"

# --- filters ------------------------------------------------------------------------------
watchers 1 "$F1" ka "after_revision=$HEAD&key=fa&timeout=20"
watchers 1 "$F1" pf "after_revision=$HEAD&prefix=fp.&timeout=20"
wait_waiting "$F1" 2
metric "$F1" conclave_watch_queries_total
q0=$MV
put fb
REV_FB=$REV
# The hub looked at the write (its query counter moved) and both watchers still wait.
for ((i = 0; i < 100; i++)); do
  metric "$F1" conclave_watch_queries_total
  [[ $MV -gt $q0 ]] && break
  sleep 0.1
done
[[ $MV -gt $q0 ]] || fail "the hub never queried for fb"
sleep 0.3
metric "$F1" conclave_watch_waiting
expect_eq "$MV" 2 "filtered watchers waiting after a write of fb"
alive "${WPIDS[0]}" || fail "the watcher of key fa was answered by a write of fb: $(cat "$TMP/ka.1.body")"
alive "${WPIDS[1]}" || fail "the watcher of prefix fp. was answered by a write of fb: $(cat "$TMP/pf.1.body")"
put fa
REV_FA=$REV
wait "${WPIDS[0]}" || true
expect_eq "$(<"$TMP/ka.1.code")" 200 "key watcher status"
expect_eq "$(jq -c '[.changes[] | [.key, .revision]], .next_after_revision' "$TMP/ka.1.body" | tr '\n' ' ')" \
  "[[\"fa\",$REV_FA]] $REV_FA " "key watcher: only fa, and the cursor past fb"
metric "$F1" conclave_watch_waiting
expect_eq "$MV" 1 "the prefix watcher still waits after fa"
put fp.x
REV_FPX=$REV
wait "${WPIDS[1]}" || true
WPIDS=()
expect_eq "$(jq -c '[.changes[] | [.key, .revision]], .next_after_revision' "$TMP/pf.1.body" | tr '\n' ' ')" \
  "[[\"fp.x\",$REV_FPX]] $REV_FPX " "prefix watcher: only fp.x"
[[ $REV_FB -lt $REV_FA && $REV_FA -lt $REV_FPX ]] || fail "revisions out of order: $REV_FB $REV_FA $REV_FPX"

# Resuming: the key watcher comes back with its next_after_revision after fb and fa were
# written again while it was away: it gets fa's new revision, nothing older, nothing of fb.
put fb
put fa
REV_FA2=$REV
api GET "$P/watch?after_revision=$REV_FA&key=fa&timeout=5" "" "$T" "$F2"
expect_code 200
expect_json '[.changes[] | [.key, .revision]] | tojson' "[[\"fa\",$REV_FA2]]"
expect_json .next_after_revision "$REV_FA2"
# A filter that matches nothing: the timeout answers no change, with the cursor advanced to
# the project's last revision (every revision up to it was examined).
put other
REV_LAST=$REV
t0=$(now_ms)
api GET "$P/watch?after_revision=$HEAD&key=never.written&timeout=1" "" "$T" "$F2"
el=$(($(now_ms) - t0))
expect_code 200
expect_json '[(.changes | length), .next_after_revision] | map(tostring) | join(" ")' "0 $REV_LAST"
[[ $el -ge 900 && $el -lt 5000 ]] || fail "a 1 s filtered watch took $el ms"
# The same at the head without a filter: empty, the cursor unchanged.
api GET "$P/watch?after_revision=$REV_LAST&timeout=1" "" "$T" "$L"
expect_code 200
expect_json '[(.changes | length), .next_after_revision] | map(tostring) | join(" ")' "0 $REV_LAST"
# From the start with a prefix: every revision of those keys and no other, in order.
api GET "$P/watch?after_revision=0&prefix=f&timeout=1" "" "$T" "$F1"
expect_code 200
expect_json '[.changes[].revision] | tojson' \
  "$(sql "SELECT json_agg(revision ORDER BY revision) FROM config_revisions WHERE project_id = 'w' AND key LIKE 'f%'" | tr -d ' ')"
expect_json .next_after_revision "$REV_LAST"

# --- bad parameters -----------------------------------------------------------------------
long=$(printf 'k%.0s' {1..257})
for q in "key=" "key=a%20b" "key=.a" "key=$long" "prefix=" "prefix=a/b" "prefix=$long" \
  "key=a&prefix=a"; do
  api GET "$P/watch?after_revision=0&$q" "" "$T" "$F1"
  field=${q%%=*}
  [[ $q == *"&prefix="* ]] && field=prefix
  expect_error bad_request 400 "$field"
done
api GET "$P/watch?after_revision=0&key=a&prefix=a" "" "$T" "$F1"
expect_match .message 'key and prefix cannot be combined'

# --- a failed query ------------------------------------------------------------------------
# With config_revisions renamed away (as the owner), the hub's first query for a new project
# fails: every watcher waiting for it gets the error a failed query gave before the hub (500
# internal, naming the request id under which the node logged the cause); once the table is
# back, the next watcher is served.
api POST /v1/projects '{"id": "w2", "name": "failing"}' "$T" "$L"
expect_code 201
sql "ALTER TABLE config_revisions RENAME TO config_revisions_away" >/dev/null
at_exit 'sql "ALTER TABLE IF EXISTS config_revisions_away RENAME TO config_revisions" >/dev/null 2>&1'
hp="HPORT_$F1"
for ((i = 1; i <= 5; i++)); do
  curl -s --max-time 20 -H "Authorization: Bearer $T" -o "$TMP/err.$i.body" -w '%{http_code}' \
    "http://127.0.0.1:${!hp}/v1/projects/w2/watch?after_revision=0&timeout=10" >"$TMP/err.$i.code" 2>/dev/null &
  WPIDS+=($!)
done
wait_watchers
for ((i = 1; i <= 5; i++)); do
  expect_eq "$(<"$TMP/err.$i.code")" 500 "watcher $i during a failed query: status"
  expect_eq "$(jq -r .error "$TMP/err.$i.body")" internal "watcher $i during a failed query: error"
done
metric "$F1" conclave_watch_waiting
expect_eq "$MV" 0 "watchers waiting after the failed query"
sql "ALTER TABLE config_revisions_away RENAME TO config_revisions" >/dev/null
api GET "/v1/projects/w2/watch?after_revision=0&timeout=1" "" "$T" "$F1"
expect_code 200
expect_json '[(.changes | length), .next_after_revision] | map(tostring) | join(" ")' "0 0"

# --- stopping with watchers waiting ---------------------------------------------------------
watchers 10 "$F2" stop "after_revision=$REV_LAST&timeout=60"
wait_waiting "$F2" 10
raft_kill "$F2" TERM
wait_watchers
# The hub answers every waiting watcher (no changes, its cursor) before the HTTP server closes
# the connections, so each gets its answer rather than a dropped connection.
for ((i = 1; i <= 10; i++)); do
  expect_eq "$(<"$TMP/stop.$i.code")" 200 "watcher $i of a stopping node: status"
  expect_eq "$(jq -c '[(.changes | length), .next_after_revision]' "$TMP/stop.$i.body")" \
    "[0,$REV_LAST]" "watcher $i of a stopping node: the answer"
done

test_done watch_fanout
