# Running a Raft cluster of real `conclave serve` processes on loopback, for the tests.
# Sourced after lib.sh and node_lib.sh (whose api/login/expect_* helpers and whose EXIT trap,
# which stops every pid in NODE_PIDS, are reused).
#
#   raft_ports N           picks HTTP and raft ports for nodes 1..N (RPORT_i, HPORT_i)
#   raft_config I PEERS    writes $TMP/rnodeI.json; PEERS is "1 2 3" (the bootstrap voters,
#                          empty for a node that joins later)
#                          Peers use mutual TLS: the CA and node I's certificate are made
#                          once per test in $TMP/pki (scripts/lib/pki.sh); with
#                          RAFT_PLAINTEXT=1 the node gets raft.insecure_plaintext instead.
#                          With RAFT_HTTPS=1 the API port serves https with the same node
#                          certificate (http.cert_file/key_file); the curl of the helpers
#                          must then trust $TMP/pki/ca.pem (export CURL_CA_BUNDLE)
#   raft_start I           starts node I in the background, waits for /health (over https
#                          when its config has http.cert_file)
#   raft_kill I TERM|KILL  sends the signal to node I, which must be running; for TERM waits
#                          for its exit and requires 0, for KILL requires that the signal
#                          ended it (wait status 137)
#   raft_leader            prints the id of the ready leader every live node agrees on (one
#                          leader, every node naming it, all in one term), or nothing
#   wait_leader SECONDS    waits for one; prints its id
#   health I FIELD         prints .raft.FIELD of node I's /health
#   raft_health I          one /health of node I parsed in bash: sets RH_STATE RH_READY RH_TERM
#                          RH_LEADER RH_COMMIT RH_APPLIED; returns 1 when node I does not
#                          answer with the raft fields of docs/api.md
#   leader_term L I...     nodes I... all name L in one term and L is the ready leader of it;
#                          prints that term (fails otherwise)
#   wait_ready_leader T0 SECONDS I...
#                          polls nodes I... until one is the ready leader; sets RL_ID and
#                          RL_MS (ms from T0, an EPOCHREALTIME value, to that answer)
#   raft_handover I SECONDS J...
#                          SIGTERM to node I; waits until one of J... is the ready leader
#                          (RL_ID, RL_MS from the signal), then for node I's exit 0
#   raft_up N              raft_ports N, then nodes 1..3 bootstrapped together and started;
#                          sets L to the leader's id (nodes 4..N are left for joining)
#   raft_tls I CA CERT KEY rewrites raft.ca_file, cert_file and key_file in $TMP/rnodeI.json;
#                          a node reads these files at start only, so it takes a restart
#   raft_stop I SECONDS    waits for a leader every live node agrees on, then SIGTERM to node
#                          I, which must be running: raft_handover to one of the other live
#                          nodes when node I is that leader, raft_kill TERM otherwise

raft_ports() {
  local i k p v taken=" "
  for ((i = 1; i <= $1; i++)); do
    for v in RPORT HPORT; do
      # free_port binds nothing, so two picks may be one port: a node then fails to start
      # on the port another node already listens on.
      for ((k = 0; k < 20; k++)); do
        p=$(free_port)
        [[ $taken == *" $p "* ]] || break
      done
      [[ $taken != *" $p "* ]] || fail "raft_ports: no distinct free port"
      taken+="$p "
      eval "${v}_$i=$p"
    done
  done
}

raft_config() {
  local i=$1 peers=$2 secret p list="[]"
  secret=$(node_secret_file)
  for p in $peers; do
    local rp="RPORT_$p" hp="HPORT_$p"
    list=$(jq -c --argjson id "$p" --arg a "127.0.0.1:${!rp}" --arg h "127.0.0.1:${!hp}" \
      '. + [{id: $id, address: $a, http: $h}]' <<<"$list")
  done
  local rp="RPORT_$i" hp="HPORT_$i" tls https='{"insecure_plaintext": true}'
  if [[ ${RAFT_HTTPS:-0} == 1 ]]; then
    https=$(jq -n --arg d "$TMP/pki" --arg i "$i" \
      '{cert_file: "\($d)/node\($i).pem", key_file: "\($d)/node\($i).key"}')
  fi
  if [[ ${RAFT_PLAINTEXT:-0} == 1 ]]; then
    tls='{"insecure_plaintext": true}'
  else
    pki_ca "$TMP/pki" || fail "raft_config: cannot make the test ca"
    pki_node "$TMP/pki" "$i" || fail "raft_config: cannot make node $i's certificate"
    tls=$(jq -n --arg d "$TMP/pki" --arg i "$i" \
      '{ca_file: "\($d)/ca.pem", cert_file: "\($d)/node\($i).pem", key_file: "\($d)/node\($i).key"}')
  fi
  jq -n --argjson id "$i" --arg dir "$TMP/rnode$i" --arg listen "127.0.0.1:${!hp}" \
    --arg raft "127.0.0.1:${!rp}" --argjson peers "$list" --arg url "$(node_db_url)" \
    --arg secret "$secret" --argjson tls "$tls" --argjson https "$https" \
    '{node_id: $id, data_dir: $dir, http: ({listen: $listen} + $https),
      raft: ({address: $raft, peers: $peers, election_timeout_ms: 500, heartbeat_timeout_ms: 50,
             snapshot_threshold: 32, snapshot_trailing: 8} + $tls),
      database: {url: $url, max_connections: 4},
      auth: {secret_file: $secret, password_ops: 1, password_mem_kib: 64}}' >"$TMP/rnode$i.json"
}

raft_start() {
  local i=$1 pid hp="HPORT_$1" n scheme=http
  [[ $(jq -r '.http.cert_file // empty' "$TMP/rnode$i.json") == "" ]] || scheme=https
  as_node_env "$BIN" serve --config "$TMP/rnode$i.json" >>"$TMP/node$i.log" 2>&1 </dev/null &
  pid=$!
  NODE_PIDS+=("$pid")
  export "NODE_${i}_URL=$scheme://127.0.0.1:${!hp}" "NODE_${i}_PID=$pid"
  local deadline=$((SECONDS + 10))
  for ((n = 0; n < 100 && SECONDS <= deadline; n++)); do
    curl -fs --max-time 1 "$scheme://127.0.0.1:${!hp}/health" >/dev/null 2>&1 && return 0
    alive "$pid" || fail "node $i exited at start: $(tail -n 20 "$TMP/node$i.log")"
    sleep 0.1
  done
  fail "node $i did not answer /health within 10 s"
}

# raft_refuses_start CONFIG LOG TEXT: a node started with CONFIG exits non-zero within 10 s
# and writes TEXT (fixed string) to LOG; a node that keeps running fails the test (and is
# stopped by the exit trap, like every node in NODE_PIDS).
raft_refuses_start() {
  local config=$1 log=$2 text=$3 pid n rc=0
  as_node_env "$BIN" serve --config "$config" >"$log" 2>&1 </dev/null &
  pid=$!
  NODE_PIDS+=("$pid")
  for ((n = 0; n < 100; n++)); do
    alive "$pid" || break
    sleep 0.1
  done
  alive "$pid" && fail "a node started with $config, which it should refuse: $(tail -n 5 "$log")"
  wait "$pid" || rc=$?
  ((rc != 0)) || fail "a node exited 0 with $config, which it should refuse"
  grep -qF -- "$text" "$log" || fail "a node refused $config without saying \"$text\": $(tail -n 5 "$log")"
}

raft_kill() {
  local i=$1 sig=$2 pid_var="NODE_${1}_PID" rc=0
  local pid=${!pid_var:-}
  [[ -n $pid ]] || fail "raft_kill $i: node $i is not running"
  # A node that already died (a crash) must not pass for one this signal stopped.
  alive "$pid" || fail "raft_kill $i $sig: node $i (pid $pid) had already exited; log:
$(tail -n 20 "$TMP/node$i.log")"
  if [[ $sig == TERM ]]; then
    stop_pid "$pid"
    [[ $STOP_RC == 0 ]] || fail "node $i: SIGTERM should stop it with exit 0, got $STOP_RC; log:
$(tail -n 20 "$TMP/node$i.log")"
  elif [[ $sig == KILL ]]; then
    kill -KILL "$pid" || fail "raft_kill $i: kill -KILL $pid failed"
    # SIGKILL cannot be caught or delayed: the wait returns at once, with 128 + 9.
    wait "$pid" 2>/dev/null || rc=$?
    [[ $rc == 137 ]] || fail "node $i: SIGKILL should have ended it (wait status 137), got $rc"
  else
    fail "raft_kill: signal $sig is neither TERM nor KILL"
  fi
  forget_pid "$pid"
  unset "NODE_${i}_PID"
}

health() {
  local url_var="NODE_${1}_URL"
  curl -fs --max-time 2 "${!url_var}/health" 2>/dev/null | jq -r ".raft.$2" 2>/dev/null
}

raft_health() {
  local url_var="NODE_${1}_URL" h=
  [[ -z ${!url_var:-} ]] || h=$(curl -fs --max-time 2 "${!url_var}/health" 2>/dev/null) || h=
  raft_parse "$1" "$h"
}

# raft_parse I BODY: sets the RH_ variables from BODY, node I's /health answer (in bash: jq
# takes 25 ms to start, and the hand-over is timed with this); returns 1 when BODY is not
# node I's answer with every raft field of docs/api.md.
raft_parse() {
  local h=$2 f re
  RH_STATE= RH_READY= RH_TERM= RH_LEADER= RH_COMMIT= RH_APPLIED=
  # The answer must be this node's (not another one's behind a reused port).
  re='"node_id"[[:space:]]*:[[:space:]]*([0-9]+)[,}[:space:]]'
  [[ $h =~ $re && ${BASH_REMATCH[1]} == "$1" ]] || return 1
  re='"state"[[:space:]]*:[[:space:]]*"(leader|follower|candidate|unavailable)"'
  [[ $h =~ $re ]] || return 1
  RH_STATE=${BASH_REMATCH[1]}
  re='"ready"[[:space:]]*:[[:space:]]*(true|false)[,}[:space:]]'
  [[ $h =~ $re ]] || return 1
  RH_READY=${BASH_REMATCH[1]}
  for f in term:RH_TERM leader_id:RH_LEADER commit_index:RH_COMMIT applied_index:RH_APPLIED; do
    re="\"${f%%:*}\"[[:space:]]*:[[:space:]]*([0-9]+)[,}[:space:]]"
    [[ $h =~ $re ]] || return 1
    printf -v "${f#*:}" '%s' "${BASH_REMATCH[1]}"
  done
  return 0
}

# The ids of the nodes this shell runs (NODE_i_PID set), in order.
live_nodes() {
  local i pid_var
  for i in $(seq 1 9); do
    pid_var="NODE_${i}_PID"
    [[ -z ${!pid_var:-} ]] || echo "$i"
  done
}

raft_leader() {
  local i leader="" term="" n=0 nodes
  local -A named=()
  nodes=$(live_nodes)
  # One /health per node: state, leader_id and term of one moment, not of three requests.
  for i in $nodes; do
    raft_health "$i" || return 0
    if [[ $RH_STATE == leader && $RH_READY == true ]]; then
      leader=$i
      n=$((n + 1))
    fi
    # Every live node must name the same leader in the same term.
    [[ -z $term || $term == "$RH_TERM" ]] || return 0
    term=$RH_TERM
    named[$i]=$RH_LEADER
  done
  [[ $n == 1 ]] || return 0
  for i in $nodes; do
    [[ ${named[$i]} == "$leader" ]] || return 0
  done
  echo "$leader"
}

wait_leader() {
  local deadline=$((SECONDS + $1)) l n
  for ((n = 0; n < $1 * 40 && SECONDS <= deadline; n++)); do
    l=$(raft_leader)
    if [[ -n $l ]]; then
      echo "$l"
      return 0
    fi
    sleep 0.05
  done
  return 1
}

leader_term() {
  local l=$1 i term=
  shift
  for i in "$@"; do
    raft_health "$i" || fail "node $i: no /health with raft fields"
    [[ $RH_LEADER == "$l" ]] || fail "node $i names node $RH_LEADER as leader, not node $l"
    [[ -z $term || $RH_TERM == "$term" ]] ||
      fail "node $i is in term $RH_TERM, another named node $l in term $term"
    term=$RH_TERM
    if [[ $i == "$l" ]]; then
      [[ $RH_STATE == leader && $RH_READY == true ]] ||
        fail "node $l should be the ready leader, it is $RH_STATE (ready $RH_READY)"
    else
      [[ $RH_STATE == follower ]] || fail "node $i should follow node $l, it is $RH_STATE"
    fi
  done
  echo "$term"
}

# health_tcp I: node I's /health body in RB (empty when it does not answer 200), through
# bash's /dev/tcp: no process is started, which under load costs more than the hand-over
# itself (2 cores, 4 busy loops: a curl took 300 ms to start and end, a sleep 0.01 90 ms).
health_tcp() {
  local url_var="NODE_${1}_URL" hp fd line len=0
  RB=
  hp=${!url_var:-}
  hp=${hp#http://}
  [[ $hp =~ ^127\.0\.0\.1:[0-9]+$ ]] || return 0
  { exec {fd}<>"/dev/tcp/127.0.0.1/${hp#*:}"; } 2>/dev/null || return 0
  if printf 'GET /health HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n' "$hp" >&"$fd" &&
    read -r -t 1 -u "$fd" line && [[ $line =~ ^HTTP/1\.[01]\ 200\  ]]; then
    while read -r -t 1 -u "$fd" line; do
      line=${line%$'\r'}
      [[ -n $line ]] || break
      [[ ${line,,} =~ ^content-length:[[:space:]]*([0-9]+)$ ]] && len=${BASH_REMATCH[1]}
    done
    ((len == 0)) || LC_ALL=C read -r -t 1 -N "$len" -u "$fd" RB || RB=
  fi 2>/dev/null
  exec {fd}>&-
}

wait_ready_leader() {
  local t0=$1 deadline=$((SECONDS + $2)) i n t= pause line
  shift 2
  RL_ID= RL_MS=
  # Tight, this measures how fast leadership moves: every node asked, then 10 ms (a read with
  # a timeout on a FIFO nobody writes: no process started).
  mkfifo "$TMP/raft_pause" 2>/dev/null || [[ -p $TMP/raft_pause ]] || fail "mkfifo $TMP/raft_pause"
  exec {pause}<>"$TMP/raft_pause"
  # A node that closes the connection before the request is written must not kill this shell.
  trap '' PIPE
  for ((n = 0; n < 2000 && SECONDS <= deadline; n++)); do
    for i in "$@"; do
      health_tcp "$i"
      if raft_parse "$i" "$RB" && [[ $RH_STATE == leader && $RH_READY == true ]]; then
        t=$EPOCHREALTIME
        break 2
      fi
    done
    read -r -t 0.01 -u "$pause" line || true
  done
  trap - PIPE
  exec {pause}>&-
  [[ -n $t ]] || return 1
  RL_ID=$i
  RL_MS=$(ms_since "$t0" "$t")
}

raft_handover() {
  local i=$1 secs=$2 pid_var="NODE_${1}_PID" t0
  shift 2
  local pid=${!pid_var:-}
  [[ -n $pid ]] && alive "$pid" || fail "raft_handover $i: node $i is not running"
  t0=$EPOCHREALTIME
  kill -TERM "$pid" || fail "raft_handover $i: kill -TERM $pid failed"
  wait_ready_leader "$t0" "$secs" "$@" ||
    fail "no ready leader among nodes $* within $secs s of SIGTERM to node $i"
  # Not stop_pid: a second SIGTERM kills a node that is stopping (it closes its signal
  # handlers), so wait for this one's exit (10 s; the EXIT trap stops it otherwise).
  local n rc=0
  for ((n = 0; n < 100; n++)); do
    alive "$pid" || break
    sleep 0.1
  done
  if alive "$pid"; then
    fail "node $i did not exit within 10 s of SIGTERM"
  fi
  wait "$pid" 2>/dev/null || rc=$?
  [[ $rc == 0 ]] || fail "node $i: SIGTERM should stop it with exit 0, got $rc; log:
$(tail -n 20 "$TMP/node$i.log")"
  forget_pid "$pid"
  unset "NODE_${i}_PID"
}

# ms_since T0 [T1]: whole milliseconds from T0 to T1 (EPOCHREALTIME values; T1 now by default).
ms_since() {
  local t0=$1 t1=${2:-$EPOCHREALTIME}
  # Six decimals always; the separator follows the locale.
  t0=${t0//[.,]/}
  t1=${t1//[.,]/}
  echo $(((10#$t1 - 10#$t0) / 1000))
}

raft_up() {
  local i
  raft_ports "$1"
  for i in 1 2 3; do
    raft_config "$i" "1 2 3"
    raft_start "$i"
  done
  L=$(wait_leader 20) || fail "no leader within 20 s"
}

raft_tls() {
  local f=$TMP/rnode$1.json
  [[ -f $f ]] || fail "raft_tls $1: no $f (raft_config first)"
  jq --arg ca "$2" --arg c "$3" --arg k "$4" \
    '.raft.ca_file = $ca | .raft.cert_file = $c | .raft.key_file = $k' "$f" >"$f.new" ||
    fail "raft_tls $1: cannot rewrite $f"
  mv "$f.new" "$f"
}

raft_stop() {
  local i=$1 secs=$2 l j others=()
  l=$(wait_leader "$secs") || fail "raft_stop $i: no leader agreed by the live nodes within $secs s"
  if [[ $l == "$i" ]]; then
    for j in $(live_nodes); do
      [[ $j == "$i" ]] || others+=("$j")
    done
    raft_handover "$i" "$secs" "${others[@]}"
  else
    raft_kill "$i" TERM
  fi
}

# acked_writes_in_postgresql PROJECT FILE: every line "key version revision request_id" of FILE
# (the writes a test's clients saw acknowledged) is a config_revisions row of PROJECT with that
# version and revision; PROJECT's keys hold versions 1..N without a gap; no request id was
# written twice.
acked_writes_in_postgresql() {
  local project=$1 file=$2 key version revision rid got
  while read -r key version revision rid; do
    got=$(sql "SELECT version || ' ' || revision FROM config_revisions WHERE project_id = '$project' \
      AND key = '$key' AND request_id = '$rid'")
    [[ $got == "$version $revision" ]] ||
      fail "acknowledged write $key v$version r$revision ($rid) is not in config_revisions (got <$got>)"
  done <"$file"
  expect_eq "$(sql "SELECT count(*) FROM (SELECT key FROM config_revisions WHERE project_id = '$project' \
    GROUP BY key HAVING count(*) <> max(version) OR min(version) <> 1) t")" 0 "keys with a version gap"
  expect_eq "$(sql "SELECT count(*) - count(DISTINCT request_id) FROM config_revisions \
    WHERE project_id = '$project'")" 0 "request ids written twice"
}

# nodes_converge TOKEN [SECONDS]: waits (default 30 s) until nodes 1-3 answer GET /v1/cluster
# with the same applied index and state hash, and sets STATES to their "index hash" answers.
# A node's state counts only when it answered 200 with an index and a 64-hex-digit hash: three
# failed answers are equal too.
nodes_converge() {
  local token=$1 deadline=$(($(date +%s) + ${2:-30})) i
  while :; do
    STATES=()
    for i in 1 2 3; do
      api GET /v1/cluster "" "$token" "$i"
      if [[ $code == 200 ]]; then
        STATES+=("$(jq -r '"\(.applied_index) \(.state_hash)"' <<<"$body")")
      else
        STATES+=("node$i:HTTP$code")
      fi
    done
    [[ ${STATES[0]} =~ ^[0-9]+\ [0-9a-f]{64}$ && ${STATES[0]} == "${STATES[1]}" &&
      ${STATES[1]} == "${STATES[2]}" ]] && return 0
    (($(date +%s) < deadline)) || fail "nodes did not converge: ${STATES[*]}"
    sleep 0.2
  done
}
