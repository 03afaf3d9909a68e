# The systemd unit (packaging/systemd/conclave@.service) under a real systemd as PID 1: a
# container booted with systemd-nspawn (the host's /usr under a writable overlay, a copy of the
# host's /etc, the host's network, so 127.0.0.1 inside is the host's loopback), the .deb of the
# build under test installed in it with dpkg, and a three-node cluster run as conclave@1..3
# (docs/operations.md, "Running under systemd"):
#
#  1. cpack builds the .deb (into this test's TMP); the test database is migrated.
#  2. The container boots to "running" (or "degraded"); `dpkg -i` installs the .deb, whose
#     postinst makes the conclave user and /etc/conclave.
#  3. /etc/conclave/conclave.json (shared: peers, database with the node role, secret) and
#     node-N.env (each node's addresses and certificates: HTTPS on the API port, mutual TLS
#     between the raft peers, a CA from scripts/lib/pki.sh), all readable by the conclave user
#     only. A drop-in for every instance sets WatchdogSec=3 and an ExecStopPost that logs
#     $SERVICE_RESULT and $EXIT_CODE/$EXIT_STATUS of each run (systemd unloads an inactive
#     unit, its Result with it, as soon as nothing references it).
#  4. a. Readiness waits for quorum: conclave@1 alone stays "activating" for 5 s (never
#        "active") with a status that says it waits for a leader, while its MainPID runs as the
#        user conclave; once conclave@2 and @3 are started, all three become "active".
#     b. The cluster works: a user logs in over HTTPS, a config written through a follower is
#        read back (linearizable) through the third node.
#     c. Watchdog: a SIGSTOPped follower is killed by systemd for the watchdog ("Watchdog
#        timeout" in the journal, "Failed with result 'watchdog'"), restarted (NRestarts 0 -> 1)
#        with a new MainPID, and becomes active again.
#     d. Reload: a renewed certificate is put in place, `systemctl reload conclave@N` keeps the
#        MainPID, the unit stays active, the journal has the node's "SIGHUP: reloaded the https
#        certificate" line and the node serves the new certificate.
#     e. Graceful stop: `systemctl stop` of the leader ends the unit "inactive" with
#        result success and exit status 0 (ExecStopPost's line), another node becomes the
#        ready leader, and a write through a remaining node succeeds.
#  5. Packaging hygiene: dpkg -i printed no warning, and systemd never warned about the
#     configuration directory's mode.
#
# Root only (the container), skipped with the reason printed otherwise. Runs in 35-60 s on 2
# cores (cpack takes a third of it). To see it fail:
# SYSTEMD_PID1_BREAK=type_simple adds Type=simple to the drop-in, and check a fails
# ("conclave@1 became active without quorum").
source "$(dirname "$0")/../lib/lib.sh"
T_START=$SECONDS

if [[ $(id -u) -ne 0 ]] || ! command -v systemd-nspawn >/dev/null || ! command -v nsenter >/dev/null; then
  echo "systemd pid1: skipped: needs root, systemd-nspawn (apt-get install systemd-container) and nsenter"
  exit 0
fi

CT=$TMP/ct
ROOT=$CT/root
CT_TIMEOUT_PID= # the `timeout` around systemd-nspawn
CT_NSPAWN_PID=  # systemd-nspawn
CT_PID=         # the container's systemd (PID 1 inside), the child of systemd-nspawn

# in_ct CMD...: runs CMD in the booted container (every namespace of its PID 1), with a clean
# environment.
in_ct() {
  nsenter --target "$CT_PID" --all env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 "$@"
}

# Stops the container by its pid: SIGTERM to systemd-nspawn, which shuts the container down
# (every unit stopped), up to 40 s; then SIGKILL to the container's PID 1 (which ends every
# process of its PID namespace) and to nspawn. On failure first shows the nodes' journal.
ct_cleanup() {
  local i t=$SECONDS
  if [[ -n $CT_NSPAWN_PID ]] && alive "$CT_NSPAWN_PID"; then
    if [[ $TEST_STATUS -ne 0 && -n $CT_PID ]] && alive "$CT_PID"; then
      echo "--- the journal of conclave@1..3 in the container:" >&2
      timeout 10 nsenter --target "$CT_PID" --all journalctl --no-pager -n 80 \
        -u conclave@1 -u conclave@2 -u conclave@3 >&2
    fi
    kill -TERM "$CT_NSPAWN_PID" 2>/dev/null
    for ((i = 0; i < 400; i++)); do
      alive "$CT_NSPAWN_PID" || break
      sleep 0.1
    done
    if alive "$CT_NSPAWN_PID"; then
      echo "systemd pid1: WARNING: the container did not stop within 40 s of SIGTERM; SIGKILL" >&2
      [[ -z $CT_PID ]] || kill -KILL "$CT_PID" 2>/dev/null
      kill -KILL "$CT_NSPAWN_PID" 2>/dev/null
    fi
    echo "systemd pid1: the container stopped $((SECONDS - t)) s after SIGTERM to systemd-nspawn"
  fi
  if [[ -n $CT_TIMEOUT_PID ]]; then
    for ((i = 0; i < 100; i++)); do
      alive "$CT_TIMEOUT_PID" || break
      sleep 0.1
    done
    alive "$CT_TIMEOUT_PID" && kill -KILL "$CT_TIMEOUT_PID" 2>/dev/null
    wait "$CT_TIMEOUT_PID" 2>/dev/null
  fi
  if [[ $TEST_STATUS -ne 0 && -s $CT/nspawn.log ]]; then
    echo "--- last lines of the container's console:" >&2
    tail -n 15 "$CT/nspawn.log" >&2
  fi
  rm -rf "$CT"
  echo "systemd pid1: cleanup took $((SECONDS - t)) s"
}
at_exit ct_cleanup
trap 'exit 130' INT
trap 'exit 143' TERM
source "$(dirname "$0")/../lib/node_lib.sh"
source "$(dirname "$0")/../lib/raft_lib.sh"

# unit N PROP: the value of property PROP of conclave@N.
unit() {
  in_ct systemctl show -p "$2" --value "conclave@$1.service"
}

# wait_active SECONDS N...: every conclave@N is active, else fails naming the first that is not.
wait_active() {
  local secs=$1 deadline=$((SECONDS + $1)) n i all
  shift
  for ((n = 0; n < secs * 10 + 10 && SECONDS <= deadline; n++)); do
    all=1
    for i in "$@"; do
      [[ $(unit "$i" ActiveState) == active ]] || { all=; break; }
    done
    [[ -z $all ]] || return 0
    sleep 0.2
  done
  for i in "$@"; do
    [[ $(unit "$i" ActiveState) == active ]] ||
      fail "conclave@$i is not active after $secs s: $(unit "$i" ActiveState)/$(unit "$i" SubState)," \
        "status <$(unit "$i" StatusText)>"
  done
}

# journal_has N TEXT SECONDS: the journal of conclave@N has a line containing TEXT within SECONDS.
journal_has() {
  local deadline=$((SECONDS + $3)) n
  for ((n = 0; n < $3 * 5 + 5 && SECONDS <= deadline; n++)); do
    # Not a pipe into grep -q: with pipefail, journalctl's SIGPIPE would fail the match.
    in_ct journalctl --no-pager -q -o cat -u "conclave@$1" >"$TMP/journal" || true
    grep -qF -- "$2" "$TMP/journal" && return 0
    sleep 0.2
  done
  return 1
}

# ready_leader N...: the id of the ready leader among nodes N..., all of which name it in one
# term, or nothing.
ready_leader() {
  local i leader='' term='' named_id=''
  for i in "$@"; do
    raft_health "$i" || return 0
    [[ -z $term || $term == "$RH_TERM" ]] || return 0
    term=$RH_TERM
    [[ -z $named_id || $named_id == "$RH_LEADER" ]] || return 0
    named_id=$RH_LEADER
    [[ $RH_STATE == leader && $RH_READY == true ]] && leader=$i
  done
  [[ -n $leader && $leader == "$named_id" ]] && echo "$leader"
  return 0
}

wait_leader_of() {
  local secs=$1 deadline=$((SECONDS + $1)) n l
  shift
  for ((n = 0; n < secs * 10 + 10 && SECONDS <= deadline; n++)); do
    l=$(ready_leader "$@")
    [[ -z $l ]] || { echo "$l"; return 0; }
    sleep 0.1
  done
  return 1
}

# --- 1. the .deb and the database --------------------------------------------------------------
t0=$SECONDS
BUILD=$(dirname "$(readlink -f "$BIN")")
[[ -f $BUILD/CPackConfig.cmake ]] || fail "no CPackConfig.cmake in $BUILD"
command -v cpack >/dev/null || fail "cpack is missing: run scripts/deps"
# Into TMP, not $BUILD/packages: tests/packaging/package.sh empties that one.
mkdir -p "$TMP/deb"
(cd "$BUILD" && cpack -G DEB -B "$TMP/deb" -D CPACK_OUTPUT_FILE_PREFIX="$TMP/deb") \
  >"$TMP/cpack.log" 2>&1 || fail "cpack failed: $(tail -n 20 "$TMP/cpack.log")"
DEB=$(ls "$TMP"/deb/conclave_*.deb 2>/dev/null | head -n 1)
[[ -f $DEB ]] || fail "cpack made no .deb: $(tail -n 5 "$TMP/cpack.log")"
make_test_db systemd_pid1
"$BIN" migrate up >/dev/null
T_DEB=$((SECONDS - t0))

# --- 2. boot the container, install the .deb ----------------------------------------------------
t0=$SECONDS
mkdir -p "$ROOT"/{usr,var/lib,var/tmp,tmp,root,run,proc,sys,dev,home,srv,opt} "$CT/usr.upper"
for l in bin lib lib64 sbin; do
  ln -s "usr/$l" "$ROOT/$l"
done
cp -a /etc "$ROOT/etc"
: >"$ROOT/etc/machine-id"
rm -f "$ROOT/etc/os-release"
cp /usr/lib/os-release "$ROOT/etc/os-release"
# A quick and quiet boot: none of the host's enabled services (PostgreSQL, etcd, prometheus
# would start on the shared network), timers or gettys; conclave neither, should the host have it.
find "$ROOT/etc/systemd/system" -mindepth 2 -path '*.wants/*' -delete
rm -rf "$ROOT/etc/systemd/system/"conclave* "$ROOT/etc/conclave"
# dpkg's database, so that dpkg -i works inside (the writes go to the copy).
cp -a /var/lib/dpkg "$ROOT/var/lib/dpkg"
cp "$DEB" "$ROOT/root/conclave.deb"

# `timeout` bounds the container's life should this shell be killed without its cleanup.
timeout -k 30 250 systemd-nspawn -D "$ROOT" --overlay="/usr:$CT/usr.upper:/usr" --register=no \
  --keep-unit -q -b --machine="cvtest$$" >"$CT/nspawn.log" 2>&1 </dev/null &
CT_TIMEOUT_PID=$!
for ((i = 0; i < 100; i++)); do
  [[ -n $CT_NSPAWN_PID ]] || CT_NSPAWN_PID=$(pgrep -P "$CT_TIMEOUT_PID" -x systemd-nspawn || true)
  [[ -z $CT_NSPAWN_PID ]] || CT_PID=$(pgrep -P "$CT_NSPAWN_PID" | head -n 1 || true)
  [[ -z $CT_PID ]] || [[ $(cat "/proc/$CT_PID/comm" 2>/dev/null) != systemd ]] || break
  CT_PID=
  alive "$CT_TIMEOUT_PID" || fail "systemd-nspawn exited: $(tail -n 20 "$CT/nspawn.log")"
  sleep 0.1
done
[[ -n $CT_PID ]] || fail "no systemd inside the container within 10 s: $(tail -n 20 "$CT/nspawn.log")"
state=
deadline=$((SECONDS + 60))
for ((i = 0; i < 120 && SECONDS <= deadline; i++)); do
  state=$(in_ct systemctl is-system-running 2>/dev/null || true)
  [[ $state != running && $state != degraded ]] || break
  alive "$CT_NSPAWN_PID" || fail "the container stopped while booting: $(tail -n 20 "$CT/nspawn.log")"
  sleep 0.5
done
[[ $state == running || $state == degraded ]] ||
  fail "the container's systemd is \"$state\" after 60 s: $(in_ct systemctl --failed --no-pager 2>&1)"
expect_eq "$(in_ct cat /proc/1/comm)" systemd "PID 1 in the container"
T_BOOT=$((SECONDS - t0))
t0=$SECONDS
# No conclave user before the .deb (a host that has one passed it on with its /etc).
if in_ct id conclave >/dev/null 2>&1; then
  in_ct sh -c 'userdel conclave; groupdel conclave 2>/dev/null; true'
  in_ct id conclave >/dev/null 2>&1 && fail "cannot remove the host's conclave user from the container"
fi
run in_ct dpkg -i /root/conclave.deb
expect_status 0
# The postinst makes the home directory before the user: adduser has nothing to warn about.
[[ $out != *"Warning"* ]] || fail "dpkg -i printed a warning: $out"
run in_ct id -un conclave
expect_status 0
expect_eq "$out" conclave "the conclave user the postinst makes"
expect_eq "$(in_ct stat -c '%U:%G %a' /etc/conclave)" "root:conclave 750" "/etc/conclave"
in_ct systemctl cat conclave@1.service >/dev/null || fail "systemd does not know conclave@1.service after dpkg -i"
T_INSTALL=$((SECONDS - t0))

# --- 3. configuration ------------------------------------------------------------------------------
raft_ports 3
pki_ca "$TMP/pki" || fail "cannot make the test ca"
E=$ROOT/etc/conclave
mkdir -p "$E/pki"
cp "$TMP/pki/ca.pem" "$E/pki/"
peers="[]"
for i in 1 2 3; do
  pki_node "$TMP/pki" "$i" || fail "cannot make node $i's certificate"
  cp "$TMP/pki/node$i.pem" "$TMP/pki/node$i.key" "$E/pki/"
  rp="RPORT_$i" hp="HPORT_$i"
  peers=$(jq -c --argjson id "$i" --arg a "127.0.0.1:${!rp}" --arg h "127.0.0.1:${!hp}" \
    '. + [{id: $id, address: $a, http: $h}]' <<<"$peers")
  cat >"$E/node-$i.env" <<EOF
CONCLAVE_HTTP_LISTEN=127.0.0.1:${!hp}
CONCLAVE_RAFT_ADDRESS=127.0.0.1:${!rp}
CONCLAVE_HTTP_CERT_FILE=/etc/conclave/pki/node$i.pem
CONCLAVE_HTTP_KEY_FILE=/etc/conclave/pki/node$i.key
CONCLAVE_RAFT_CERT_FILE=/etc/conclave/pki/node$i.pem
CONCLAVE_RAFT_KEY_FILE=/etc/conclave/pki/node$i.key
EOF
  export "NODE_${i}_URL=https://127.0.0.1:${!hp}"
done
export CURL_CA_BUNDLE=$TMP/pki/ca.pem
rand_hex 64 >"$E/secret"
cp "$E/secret" "$(node_secret_file)"
jq -n --argjson peers "$peers" --arg url "$(node_db_url)" \
  '{raft: {ca_file: "/etc/conclave/pki/ca.pem", peers: $peers, election_timeout_ms: 500,
           heartbeat_timeout_ms: 50},
    database: {url: $url, max_connections: 4},
    auth: {secret_file: "/etc/conclave/secret", password_ops: 1, password_mem_kib: 64}}' \
  >"$E/conclave.json"
# Readable by the conclave user only (the secret must be 0600: its owner is the node's user).
in_ct sh -ec 'chown -R root:conclave /etc/conclave; chmod 0750 /etc/conclave /etc/conclave/pki
  chmod 0640 /etc/conclave/*.json /etc/conclave/*.env /etc/conclave/pki/*
  chown conclave:conclave /etc/conclave/secret; chmod 0600 /etc/conclave/secret' ||
  fail "cannot set the owners of /etc/conclave"
mkdir -p "$ROOT/etc/systemd/system/conclave@.service.d"
{
  echo "[Service]"
  echo "WatchdogSec=3"
  # How each run of the node ended, in the journal: systemd forgets an inactive unit (its
  # Result and exit status) as soon as nothing references it.
  echo "ExecStopPost=/bin/sh -c 'echo \"stop-post: result=\$\$SERVICE_RESULT exit=\$\$EXIT_CODE/\$\$EXIT_STATUS\"'"
  [[ ${SYSTEMD_PID1_BREAK:-} != type_simple ]] || echo "Type=simple"
} >"$ROOT/etc/systemd/system/conclave@.service.d/test.conf"
in_ct systemctl daemon-reload
[[ $(unit 1 DropInPaths) == */conclave@.service.d/test.conf ]] ||
  fail "conclave@1 does not have the drop-in: DropInPaths <$(unit 1 DropInPaths)>"

# --- 4a. readiness waits for quorum ---------------------------------------------------------
t0=$SECONDS
in_ct systemctl start --no-block conclave@1
seen_activating='' user='' status_text=''
t_alone=$EPOCHREALTIME
for ((n = 0; n < 100 && $(ms_since "$t_alone") < 5000; n++)); do
  st=$(unit 1 ActiveState)
  [[ $st != active ]] ||
    fail "conclave@1 became active without quorum (one node of three, no leader): status <$(unit 1 StatusText)>"
  [[ $st != failed ]] || fail "conclave@1 failed alone: $(unit 1 Result)"
  [[ $st != activating ]] || seen_activating=1
  pid=$(unit 1 MainPID)
  if [[ -z $user && $pid != 0 ]]; then
    user=$(in_ct ps -o user= -p "$pid" || true)
  fi
  status_text=$(unit 1 StatusText)
  sleep 0.2
done
[[ -n $seen_activating ]] || fail "conclave@1 was never seen activating"
expect_eq "$(unit 1 ActiveState)" activating "conclave@1 alone after 5 s"
expect_eq "$user" conclave "the user of conclave@1's MainPID"
[[ $status_text == "waiting for a raft leader"* ]] ||
  fail "conclave@1 alone should say it waits for a leader, its status is <$status_text>"
raft_health 1 || fail "node 1 does not answer /health over https while activating"
expect_eq "$RH_READY" false "node 1 alone: raft ready"
echo "conclave@1 alone: activating for 5 s, status <$status_text>"
t_q=$EPOCHREALTIME
in_ct systemctl start --no-block conclave@2 conclave@3
wait_active 30 1 2 3
T_QUORUM_MS=$(ms_since "$t_q")
for i in 1 2 3; do
  pid=$(unit "$i" MainPID)
  expect_eq "$(in_ct ps -o user= -p "$pid")" conclave "the user of conclave@$i's MainPID $pid"
  [[ $(unit "$i" StatusText) == ready:* ]] || fail "conclave@$i is active with status <$(unit "$i" StatusText)>"
done
expect_eq "$(unit 1 WatchdogUSec)" 3s "WatchdogUSec of conclave@1 (the drop-in)"
L=$(wait_leader_of 10 1 2 3) || fail "no ready leader all three nodes agree on within 10 s"
echo "all three active ${T_QUORUM_MS} ms after starting conclave@2 and @3; leader: node $L"
T_READY=$((SECONDS - t0))

# --- 4b. the cluster works --------------------------------------------------------------------
create_user admin@example.com "admin-password-1" --admin >/dev/null
F=$((L % 3 + 1))       # a follower
G=$(((L + 1) % 3 + 1)) # the other follower
token=$(login admin@example.com "admin-password-1" "$L")
api POST /v1/projects '{"id": "sd", "name": "systemd"}' "$token" "$L"
expect_code 201
api PUT /v1/projects/sd/configs/app.db '{"content": {"pool": 1}, "expected_version": 0}' "$token" "$F"
expect_code 201
api GET '/v1/projects/sd/configs/app.db?consistency=linearizable' "" "$token" "$G"
expect_code 200
expect_json '.content.pool' 1
expect_json '.version' 1

# --- 4c. the watchdog -------------------------------------------------------------------------
t0=$SECONDS
expect_eq "$(unit "$F" NRestarts)" 0 "NRestarts of conclave@$F before the watchdog"
old_pid=$(unit "$F" MainPID)
in_ct kill -STOP "$old_pid"
deadline=$((SECONDS + 20))
for ((i = 0; i < 100 && SECONDS <= deadline; i++)); do
  [[ $(unit "$F" NRestarts) == 0 ]] || break
  sleep 0.2
done
expect_eq "$(unit "$F" NRestarts)" 1 "NRestarts of conclave@$F within 20 s of SIGSTOP (WatchdogSec=3)"
journal_has "$F" "Watchdog timeout" 5 || fail "the journal of conclave@$F has no \"Watchdog timeout\""
journal_has "$F" "Failed with result 'watchdog'" 5 ||
  fail "the journal of conclave@$F has no \"Failed with result 'watchdog'\""
journal_has "$F" "stop-post: result=watchdog exit=killed/ABRT" 5 ||
  fail "conclave@$F was not ended by the watchdog's SIGABRT: $(grep 'stop-post:' "$TMP/journal")"
wait_active 30 "$F"
new_pid=$(unit "$F" MainPID)
[[ $new_pid != "$old_pid" && $new_pid != 0 ]] || fail "conclave@$F: MainPID $new_pid after the restart, $old_pid before"
in_ct kill -0 "$old_pid" 2>/dev/null && fail "the stopped process $old_pid of conclave@$F still exists"
T_WATCHDOG=$((SECONDS - t0))
echo "watchdog: conclave@$F killed and restarted in ${T_WATCHDOG} s (MainPID $old_pid -> $new_pid)"

# --- 4d. reload: a renewed https certificate, same process ----------------------------------
fingerprint() { # the sha256 fingerprint of the certificate node $1 serves
  local hp="HPORT_$1"
  openssl s_client -connect "127.0.0.1:${!hp}" -CAfile "$TMP/pki/ca.pem" </dev/null 2>/dev/null |
    openssl x509 -noout -fingerprint -sha256 2>/dev/null
}
old_fp=$(fingerprint "$G")
[[ $old_fp == *Fingerprint=* ]] || fail "node $G serves no certificate: <$old_fp>"
pki_renew "$TMP/pki" "$G" || fail "cannot renew node $G's certificate"
new_fp=$(openssl x509 -noout -fingerprint -sha256 -in "$TMP/pki/node$G.pem")
[[ $new_fp != "$old_fp" ]] || fail "the renewed certificate has the old fingerprint"
install -m 0640 "$TMP/pki/node$G.key" "$E/pki/node$G.key.new"
install -m 0640 "$TMP/pki/node$G.pem" "$E/pki/node$G.pem.new"
in_ct sh -ec "chgrp conclave /etc/conclave/pki/node$G.*.new
  mv /etc/conclave/pki/node$G.key.new /etc/conclave/pki/node$G.key
  mv /etc/conclave/pki/node$G.pem.new /etc/conclave/pki/node$G.pem"
pid=$(unit "$G" MainPID)
timeout 30 nsenter --target "$CT_PID" --all systemctl reload "conclave@$G" ||
  fail "systemctl reload conclave@$G failed"
journal_has "$G" "node $G: SIGHUP: reloaded the https certificate /etc/conclave/pki/node$G.pem" 10 ||
  fail "conclave@$G did not log the reload: $(in_ct journalctl --no-pager -q -o cat -n 5 -u "conclave@$G")"
sleep 1
expect_eq "$(unit "$G" MainPID)" "$pid" "conclave@$G's MainPID after the reload"
expect_eq "$(unit "$G" ActiveState)" active "conclave@$G after the reload"
expect_eq "$(unit "$G" NRestarts)" 0 "NRestarts of conclave@$G after the reload"
expect_eq "$(fingerprint "$G")" "$new_fp" "the certificate node $G serves after the reload"
echo "reload: conclave@$G serves the renewed certificate, MainPID $pid kept"

# --- 4e. graceful stop of the leader ----------------------------------------------------------
t0=$SECONDS
L=$(wait_leader_of 10 1 2 3) || fail "no ready leader all three nodes agree on within 10 s"
others=()
for i in 1 2 3; do
  [[ $i == "$L" ]] || others+=("$i")
done
t_stop=$EPOCHREALTIME
timeout 70 nsenter --target "$CT_PID" --all systemctl stop "conclave@$L" ||
  fail "systemctl stop conclave@$L failed or took over 70 s"
T_STOP_MS=$(ms_since "$t_stop")
expect_eq "$(unit "$L" ActiveState)" inactive "conclave@$L after systemctl stop"
# Exited 0 by itself: not killed by the SIGTERM (which systemd would also count a success) nor
# by the SIGKILL of TimeoutStopSec.
journal_has "$L" "stop-post: result=success exit=exited/0" 5 ||
  fail "conclave@$L did not exit 0 with result success: $(grep 'stop-post:' "$TMP/journal")"
unset "NODE_${L}_URL"
L2=$(wait_leader_of 10 "${others[@]}") || fail "no new ready leader among nodes ${others[*]} within 10 s"
[[ $L2 != "$L" ]] || fail "node $L is still the leader"
W=${others[0]}
[[ $W != "$L2" ]] || W=${others[1]}
api PUT /v1/projects/sd/configs/app.db '{"content": {"pool": 2}, "expected_version": 1}' "$token" "$W"
expect_code 200
expect_json '.version' 2
api GET '/v1/projects/sd/configs/app.db?consistency=linearizable' "" "$token" "$L2"
expect_code 200
expect_json '.content.pool' 2
T_HANDOVER=$((SECONDS - t0))
echo "stop: conclave@$L stopped in ${T_STOP_MS} ms (Result=success), node $L2 leads, write through node $W"

# The unit's ConfigurationDirectoryMode matches the mode the postinst gives /etc/conclave:
# systemd had nothing to warn about at any start, reload or stop.
in_ct journalctl --no-pager -q -o cat >"$TMP/journal.all" || true
if grep -q "ConfigurationDirectory" "$TMP/journal.all"; then
  fail "systemd warned about the configuration directory: $(grep -m 2 ConfigurationDirectory "$TMP/journal.all")"
fi

echo "timings: .deb+db ${T_DEB} s, boot ${T_BOOT} s, dpkg -i ${T_INSTALL} s, quorum ${T_READY} s" \
  "(5 s alone + ${T_QUORUM_MS} ms), watchdog ${T_WATCHDOG} s, stop+write ${T_HANDOVER} s," \
  "total $((SECONDS - T_START)) s"
test_done systemd_pid1
