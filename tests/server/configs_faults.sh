# Continuous CAS writes while the leader is killed (-9), then a follower, then both restart,
# then PostgreSQL restarts. Afterwards the invariants of the design must hold: every
# acknowledged write is a revision row, versions 1..N per key with no gap or duplicate,
# configs equals the fold of the revisions and every hash chain verifies (audit/verify), and
# all nodes reach the same applied index and state hash.
#
# The writers follow the contract a careful client follows: each write has a request id; an
# answer that is not definitive (503, 504, no answer) is retried with the same request id
# (bounded: 40 attempts, backoff 0.1 s doubling to 1 s) until it is, so an acknowledged write
# is never written twice. Every definitive answer must be 2xx or 409: any other (a 400 to a
# retry of an identical request, a 404, a 422, a 500) fails the test. Each writer has three
# keys: wW-0 plain writes; wW-1 bound to a schema in the body, then inheriting the binding,
# then unbinding with null, in turn; wW-2 bound in the body, and rolled back
# (POST .../rollback) to its previous version every other time once it has two versions.
source "$(dirname "$0")/../lib/lib.sh"
source "$(dirname "$0")/../lib/node_lib.sh"
source "$(dirname "$0")/../lib/raft_lib.sh"

# A private PostgreSQL this test may restart.
pgdir="$TMP/pg"
mkdir -p "$pgdir"
chmod 755 "$TMP" "$pgdir"
pg_init "$pgdir/data"
for attempt in 1 2 3 4; do
  pgport=$(free_port)
  pg_start "$pgdir/data" "$pgport" "$pgdir/log" && break
  [[ $attempt -lt 4 ]] || fail "could not start the private PostgreSQL"
done
WRITERS=()
# Only the writers: a bare `wait` would also wait for the nodes, which never exit by themselves.
writers_stop() {
  touch "$TMP/stop"
  local p
  for p in "${WRITERS[@]}"; do
    wait "$p" 2>/dev/null || true
  done
  WRITERS=()
}
# Writers first (they would retry against stopped nodes), then the nodes, then PostgreSQL.
at_exit 'writers_stop; stop_nodes; pg_stop "$pgdir/data"'
export DATABASE_URL="host=127.0.0.1 port=$pgport user=conclave dbname=postgres"
"$BIN" migrate up >/dev/null

raft_ports 3
for i in 1 2 3; do
  raft_config "$i" "1 2 3"
  raft_start "$i"
done
leader=$(wait_leader 20) || fail "no leader"
create_user admin@example.com "admin-password-1" --admin >/dev/null
token=$(login admin@example.com "admin-password-1" "$leader")
api POST /v1/projects '{"id": "chaos", "name": "Faults"}' "$token" "$leader"
expect_code 201
# Every content the writers send satisfies it (and so does every rollback of one).
api POST /v1/schemas '{"name": "faults", "schema_content": {"type": "object",
  "required": ["writer", "n"], "properties": {"n": {"type": "integer"}}}}' "$token" "$leader"
expect_code 201
schema_id=$(jq -r .id <<<"$body")

# writer W: owns keys wW-0..wW-2; appends "key version revision request_id" per ack, a line
# to bad.W per definitive answer that is not 2xx/409, to unresolved.W per write still not
# definitive after 40 attempts. After either the writer stops: it no longer knows its keys'
# versions (the write may have happened).
writer() {
  local w=$1 n=0 key v rid code out node kind method path data attempt pause content
  declare -A ver=()
  while [[ ! -f $TMP/stop ]]; do
    key="w$w-$((n % 3))"
    v=${ver[$key]:-0}
    rid="w$w-$n"
    content="{\"writer\": $w, \"n\": $n}"
    method=PUT path="/v1/projects/chaos/configs/$key"
    case $((n % 3)):$((n / 3 % 3)) in
      0:*) kind=plain data="{\"content\": $content, \"expected_version\": $v, \"request_id\": \"$rid\"}" ;;
      1:0 | 2:0 | 2:2) kind=bind ;;
      1:1) kind=inherit data="{\"content\": $content, \"expected_version\": $v, \"request_id\": \"$rid\"}" ;;
      1:2) kind=unbind data="{\"content\": $content, \"expected_version\": $v, \"schema_id\": null, \"request_id\": \"$rid\"}" ;;
      2:1) kind=rollback ;;
    esac
    [[ $kind == rollback && $v -lt 2 ]] && kind=bind
    if [[ $kind == bind ]]; then
      data="{\"content\": $content, \"expected_version\": $v, \"schema_id\": \"$schema_id\", \"request_id\": \"$rid\"}"
    elif [[ $kind == rollback ]]; then
      method=POST path="/v1/projects/chaos/configs/$key/rollback"
      data="{\"target_version\": $((v - 1)), \"expected_version\": $v, \"request_id\": \"$rid\"}"
    fi
    code=
    pause=0.1
    for ((attempt = 1; attempt <= 40; attempt++)); do
      [[ -f $TMP/stop ]] && break
      node=$((RANDOM % 3 + 1))
      local url_var="NODE_${node}_URL"
      out=$(curl -s --max-time 15 -w '\n%{http_code}' -X "$method" -H "Authorization: Bearer $token" \
        -H 'Content-Type: application/json' -d "$data" "${!url_var}$path" 2>/dev/null) || true
      code=${out##*$'\n'}
      case $code in
        200 | 201)
          echo "$key $(jq -r '.version, .revision' <<<"${out%$'\n'*}" | tr '\n' ' ')$rid" >>"$TMP/acked.$w"
          printf '%s\t%s\t%s\t%s\t%s\n' "$kind" "$method" "$path" "$data" \
            "$(jq -c '{version, revision}' <<<"${out%$'\n'*}")" >>"$TMP/replay.$w"
          ver[$key]=$((v + 1))
          break
          ;;
        409)
          # Only possible if our own earlier attempt under another request id won, or if a
          # retry of a write that happened is answered 409 (a forgotten request id): never
          # expected here; recorded for the check.
          echo "$key $v $rid $kind attempt $attempt: $(jq -c . <<<"${out%$'\n'*}")" >>"$TMP/conflicts.$w"
          ver[$key]=$(jq -r .current_version <<<"${out%$'\n'*}")
          break
          ;;
        503 | 504 | 000) # not definitive: the same request id again, after a backoff
          sleep "$pause"
          [[ $pause == 0.1 ]] && pause=0.2 || { [[ $pause == 0.2 ]] && pause=0.4 || pause=1; }
          ;;
        *)
          echo "$key $rid $kind $method attempt $attempt answered $code: ${out%$'\n'*}" >>"$TMP/bad.$w"
          return 0
          ;;
      esac
    done
    if [[ $code != 200 && $code != 201 && $code != 409 && ! -f $TMP/stop ]]; then
      echo "$key $rid $kind: no definitive answer after 40 attempts (last $code)" >>"$TMP/unresolved.$w"
      return 0
    fi
    n=$((n + 1))
  done
}
writer 1 &
WRITERS+=($!)
writer 2 &
WRITERS+=($!)

sleep 3
# kill -9 the leader, then a follower.
old=$leader
raft_kill "$old" KILL
leader=$(wait_leader 20) || fail "no new leader after killing node $old"
echo "killed leader $old; node $leader leads"
sleep 2
follower=1
while [[ $follower == "$leader" || $follower == "$old" ]]; do follower=$((follower + 1)); done
raft_kill "$follower" KILL
echo "killed follower $follower: no majority until one returns"
sleep 2
raft_start "$old"
raft_start "$follower"
leader=$(wait_leader 30) || fail "no leader after restarting nodes $old and $follower"
echo "restarted; node $leader leads"
sleep 3
# Restart PostgreSQL under the writers.
pg_stop "$pgdir/data"
sleep 2
pg_start "$pgdir/data" "$pgport" "$pgdir/log" || fail "postgresql did not restart"
echo "postgresql restarted"
sleep 5
writers_stop

cat "$TMP"/acked.* >"$TMP/acked" 2>/dev/null || true
n_acked=$(wc -l <"$TMP/acked")
echo "acknowledged writes: $n_acked"
[[ $n_acked -ge 20 ]] || fail "too few acknowledged writes ($n_acked) to prove anything"
if compgen -G "$TMP/bad.*" >/dev/null; then
  fail "a definitive answer other than 2xx or 409: $(cat "$TMP"/bad.*)"
fi
if compgen -G "$TMP/unresolved.*" >/dev/null; then
  fail "writes never answered definitively: $(cat "$TMP"/unresolved.*)"
fi
if compgen -G "$TMP/conflicts.*" >/dev/null; then
  fail "a writer got a conflict although it retried with request ids: $(cat "$TMP"/conflicts.*)"
fi

# Every acknowledged write is a revision row with its version and request id.
acked_writes_in_postgresql chaos "$TMP/acked"

# All nodes converge (raft_lib.sh); the audit log verifies.
nodes_converge "$token"
# Every revision PostgreSQL holds came from an entry that every node has applied.
max_rev_index=$(sql "SELECT max(raft_index) FROM config_revisions WHERE project_id = 'chaos'")
((${STATES[0]%% *} >= max_rev_index)) ||
  fail "the nodes agree on applied index ${STATES[0]%% *}, below revision raft index $max_rev_index"
echo "all nodes at ${STATES[0]:0:40}..."
# A retry gets the first outcome (docs/write-path.md), for every kind of write: the last
# acknowledged write of each kind, sent again identically (same request id) to every node
# (followers forward), must be answered 2xx with the same version and revision.
cat "$TMP"/replay.* >"$TMP/replay"
for kind in plain bind inherit unbind rollback; do
  line=$(grep -P "^$kind\t" "$TMP/replay" | tail -n 1) || fail "no acknowledged $kind write to retry"
  IFS=$'\t' read -r _ method path data first <<<"$line"
  for i in 1 2 3; do
    api "$method" "$path" "$data" "$token" "$i"
    [[ $code == 200 || $code == 201 ]] &&
      [[ $(jq -c '{version, revision}' <<<"$body") == "$first" ]] ||
      fail "a retry of an acknowledged $kind write ($first) on node $i got $code: $body ($data)"
  done
done
echo "retries of acknowledged plain, bound, inherited, unbound writes and rollbacks: first outcome"
api GET /v1/projects/chaos/audit/verify "" "$token" "$leader"
expect_code 200
expect_json .ok true
# The state machine's revisions all reached PostgreSQL.
expect_eq "$(sql "SELECT count(*) FROM config_revisions")" "$(sql "SELECT max(revision) FROM config_revisions")" \
  "revision rows vs the highest revision"
test_done "configs faults"
