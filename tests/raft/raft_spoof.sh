# The raft port against a process without the cluster's certificates (issue 15): on a
# three-node TLS cluster, (a) raft 0.15's plaintext handshake followed by a RequestVote of a
# much higher term, an AppendEntries and a TimeoutNow over plain TCP, (b) the same over TLS
# with a certificate of another CA, an expired certificate of the cluster's CA, and no
# certificate, (c) node 2's valid certificate claiming to be node 3 in raft's handshake: every
# connection is closed with a log line naming the peer and why, and no node's term, leader or
# commit index moves. A valid certificate claiming its own id stays open (the tool can tell
# the difference). (d) With raft.insecure_plaintext the same spoofed messages DO move the term,
# so the spoofing is real.
source "$(dirname "$0")/../lib/lib.sh"
source "$(dirname "$0")/../lib/node_lib.sh"
source "$(dirname "$0")/../lib/raft_lib.sh"
make_test_db raft_spoof
"$BIN" migrate up >/dev/null

SPOOF=$(dirname "$BIN")/tests/raft_spoof_peer
[[ -x $SPOOF ]] || fail "the spoofing tool $SPOOF is not built"

raft_up 3
echo "leader: node $L"

# state: one line per node, "id term leader commit", from /health.
state() {
  local i
  for i in 1 2 3; do
    raft_health "$i" || fail "node $i: no raft fields in /health"
    echo "$i $RH_TERM $RH_LEADER $RH_COMMIT"
  done
}

# spoof NODE EXPECT ARGS...: runs the tool against NODE's raft port; it must print EXPECT.
spoof() {
  local n=$1 want=$2 rp="RPORT_$1" got
  shift 2
  got=$("$SPOOF" "127.0.0.1:${!rp}" "$@") || fail "spoof tool failed against node $n ($*)"
  [[ $got == "$want" ]] || fail "node $n, spoof $*: the connection was $got, expected $want"
}

# log_has NODE TEXT: node NODE's log holds TEXT (a fixed string) at least COUNT times ($3, 1).
log_has() {
  local c
  c=$(grep -cF -- "$2" "$TMP/node$1.log" || true)
  ((c >= ${3:-1})) || fail "node $1's log should hold \"$2\" at least ${3:-1} times, has $c:
$(grep -F peer_tls "$TMP/node$1.log" | tail -n 10)"
}

before=$(state)
term=$(awk -v l="$L" '$1 == l {print $2}' <<<"$before")
high=$((term + 1000))
echo "before: $(tr '\n' ';' <<<"$before")"

# (a) plain TCP, the attack of issue 15: each node, claiming to be another member.
for i in 1 2 3; do
  spoof "$i" closed $((i % 3 + 1)) "$high" plain
  log_has "$i" "peer_tls: incoming connection from 127.0.0.1:"
  log_has "$i" "closed: tls handshake failed"
done

# (b) TLS without the cluster's trust.
pki_ca "$TMP/evil" || fail "cannot make the other ca"
pki_node "$TMP/evil" 2 || fail "cannot make the other ca's node 2"
mkdir -p "$TMP/expired"
cp "$TMP/pki/ca.pem" "$TMP/pki/ca.key" "$TMP/expired/"
pki_node "$TMP/expired" 2 -1 || fail "cannot make an expired certificate"
spoof 1 closed 2 "$high" tls "$TMP/evil/node2.pem" "$TMP/evil/node2.key"
log_has 1 "certificate: unable to get local issuer certificate"
spoof 1 closed 2 "$high" tls "$TMP/expired/node2.pem" "$TMP/expired/node2.key"
log_has 1 "certificate: certificate has expired"
spoof 1 closed 2 "$high" tls-nocert
log_has 1 "peer did not return a certificate"
# A node does not even start with those certificates: it checks its own at start and says
# why, instead of running outside the cluster with the reason only in its peers' logs.
for bad in evil expired; do
  jq --arg c "$TMP/$bad/node2.pem" --arg k "$TMP/$bad/node2.key" \
    '.raft.cert_file = $c | .raft.key_file = $k' "$TMP/rnode2.json" >"$TMP/rnode2-$bad.json" ||
    fail "cannot write the $bad config"
done
raft_refuses_start "$TMP/rnode2-evil.json" "$TMP/node2-evil.log" \
  "raft tls: $TMP/evil/node2.pem does not verify against the ca file $TMP/pki/ca.pem: unable to get local issuer certificate"
raft_refuses_start "$TMP/rnode2-expired.json" "$TMP/node2-expired.log" \
  "raft tls: $TMP/expired/node2.pem does not verify against the ca file $TMP/pki/ca.pem: certificate has expired"

# (c) a valid certificate of node 2 claiming node 3 inside the tunnel.
spoof 1 closed 3 "$high" tls "$TMP/pki/node2.pem" "$TMP/pki/node2.key"
log_has 1 "raft handshake claims node 3 but the certificate names node 2"
# The control: the same certificate claiming its own id, sending nothing after raft's
# handshake, is accepted and kept.
spoof 1 open 2 0 tls "$TMP/pki/node2.pem" "$TMP/pki/node2.key" --quiet

# Three election timeouts (500 ms): time for a moved term to show.
sleep 1.5
after=$(state)
echo "after:  $(tr '\n' ';' <<<"$after")"
[[ $after == "$before" ]] || fail "a spoofed peer moved the cluster: before
$before
after
$after"
expect_eq "$(wait_leader 5)" "$L" "the leader after the spoofing"

# (d) the same cluster in the explicit plaintext mode: a spoofed RequestVote moves the term.
for i in 1 2 3; do
  raft_kill "$i" TERM
done
for i in 1 2 3; do
  RAFT_PLAINTEXT=1 raft_config "$i" "1 2 3"
  raft_start "$i"
done
L=$(wait_leader 20) || fail "no leader in plaintext mode within 20 s"
log_has "$L" "warning: raft.insecure_plaintext is true"
raft_health "$L" || fail "node $L: no raft fields in /health"
high=$((RH_TERM + 1000))
target=$((L % 3 + 1))
# The RequestVote alone: in this mode the spoofed AppendEntries makes raft 0.15 give up on
# the node ("raft stopped working"), which would hide whether the term moved.
spoof "$target" open "$L" "$high" plain --vote-only
moved=
for ((k = 0; k < 50; k++)); do
  raft_health "$target" || fail "node $target: no raft fields in /health"
  if ((RH_TERM >= high)); then
    moved=$RH_TERM
    break
  fi
  sleep 0.1
done
[[ -n $moved ]] || fail "in plaintext mode the spoofed RequestVote of term $high did not move node $target (term $RH_TERM): the spoofing tool does not work"
echo "plaintext: node $target moved to term $moved"

test_done raft_spoof
