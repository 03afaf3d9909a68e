# Running a Raft cluster of real `conclave serve` processes on loopback, for the tests.
# Sourced after lib.sh and node_lib.sh (whose api/login/expect_* helpers and whose EXIT trap,
# which stops every pid in NODE_PIDS, are reused).
#
#   raft_ports N           picks HTTP and raft ports for nodes 1..N (RPORT_i, HPORT_i)
#   raft_config I PEERS    writes $TMP/rnodeI.json; PEERS is "1 2 3" (the bootstrap voters,
#                          empty for a node that joins later)
#   raft_start I           starts node I in the background, waits for /health
#   raft_kill I SIGNAL     sends SIGNAL to node I; for TERM waits for its exit and requires 0
#   raft_leader            prints the id of the ready leader every live node agrees on, or
#                          nothing
#   wait_leader SECONDS    waits for one; prints its id
#   health I FIELD         prints .raft.FIELD of node I's /health
#   raft_up N              raft_ports N, then nodes 1..3 bootstrapped together and started;
#                          sets L to the leader's id (nodes 4..N are left for joining)

raft_ports() {
  local i
  for ((i = 1; i <= $1; i++)); do
    eval "RPORT_$i=$(free_port)"
    eval "HPORT_$i=$(free_port)"
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
  local rp="RPORT_$i" hp="HPORT_$i"
  jq -n --argjson id "$i" --arg dir "$TMP/rnode$i" --arg listen "127.0.0.1:${!hp}" \
    --arg raft "127.0.0.1:${!rp}" --argjson peers "$list" --arg url "$DATABASE_URL" \
    --arg secret "$secret" \
    '{node_id: $id, data_dir: $dir, http: {listen: $listen},
      raft: {address: $raft, peers: $peers, election_timeout_ms: 500, heartbeat_timeout_ms: 50,
             snapshot_threshold: 32, snapshot_trailing: 8},
      database: {url: $url, max_connections: 4},
      auth: {secret_file: $secret, password_ops: 1, password_mem_kib: 64}}' >"$TMP/rnode$i.json"
}

raft_start() {
  local i=$1 pid hp="HPORT_$1" n
  "$BIN" serve --config "$TMP/rnode$i.json" >>"$TMP/node$i.log" 2>&1 </dev/null &
  pid=$!
  NODE_PIDS+=("$pid")
  export "NODE_${i}_URL=http://127.0.0.1:${!hp}" "NODE_${i}_PID=$pid"
  for ((n = 0; n < 100; n++)); do
    curl -fs --max-time 1 "http://127.0.0.1:${!hp}/health" >/dev/null 2>&1 && return 0
    alive "$pid" || fail "node $i exited at start: $(tail -n 20 "$TMP/node$i.log")"
    sleep 0.1
  done
  fail "node $i did not answer /health within 10 s"
}

raft_kill() {
  local i=$1 sig=$2 pid_var="NODE_${1}_PID"
  local pid=${!pid_var}
  if [[ $sig == TERM ]]; then
    stop_pid "$pid"
    [[ $STOP_RC == 0 ]] || fail "node $i: SIGTERM should stop it with exit 0, got $STOP_RC; log:
$(tail -n 20 "$TMP/node$i.log")"
  else
    kill "-$sig" "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  forget_pid "$pid"
  unset "NODE_${i}_PID"
}

health() {
  local url_var="NODE_${1}_URL"
  curl -fs --max-time 2 "${!url_var}/health" 2>/dev/null | jq -r ".raft.$2" 2>/dev/null
}

raft_leader() {
  local i pid_var leader="" l
  for i in $(seq 1 9); do
    pid_var="NODE_${i}_PID"
    [[ -n ${!pid_var:-} ]] || continue
    if [[ $(health "$i" state) == leader && $(health "$i" ready) == true ]]; then
      leader=$i
    fi
  done
  [[ -n $leader ]] || return 0
  # Every live node must name it.
  for i in $(seq 1 9); do
    pid_var="NODE_${i}_PID"
    [[ -n ${!pid_var:-} ]] || continue
    l=$(health "$i" leader_id)
    [[ $l == "$leader" ]] || return 0
  done
  echo "$leader"
}

wait_leader() {
  local deadline=$(($(date +%s) + $1)) l
  while (($(date +%s) < deadline)); do
    l=$(raft_leader)
    if [[ -n $l ]]; then
      echo "$l"
      return 0
    fi
    sleep 0.05
  done
  return 1
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
