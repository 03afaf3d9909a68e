# Rotating the raft peers' certificates to a new CA, one node at a time (issue 15,
# docs/operations.md "Rotating raft certificates"): on a three-node TLS cluster,
#   step 1, every node's ca_file becomes the bundle old CA + new CA;
#   step 2, every node gets a certificate of the new CA;
#   step 3, every node's ca_file becomes the new CA alone;
# each step a rolling restart (SIGTERM, which hands leadership over when the node leads). A
# node reads its files at start only. While a node is down a write through another node is
# acknowledged (the two others are a quorum); after its restart a leader exists that every
# node names, a write through each node is acknowledged, every node's applied index reaches
# the last write's raft index (the restarted node can only have that entry from the leader,
# over TLS with its new files), and the node serves the certificate it was given. Then a
# renewal under the same CA (one node's certificate re-issued, restart). At the end node 3
# restarted with its old-CA certificate and the new CA file refuses to start (its own
# certificate does not verify), with the bundle it starts but stays out of the cluster (its
# peers log why, it never applies the next write), and it rejoins with its new one; a peer presenting an old-CA
# certificate is refused (it was accepted before step 3), a new-CA one is not. Throughout, a background writer puts a new key every 50 ms through the nodes in turn:
# the longest time without an acknowledged write stays under GAP_MS, and every key it saw
# acknowledged is in the store at the end.
source "$(dirname "$0")/../lib/lib.sh"
source "$(dirname "$0")/../lib/node_lib.sh"
source "$(dirname "$0")/../lib/raft_lib.sh"
make_test_db raft_rotate
"$BIN" migrate up >/dev/null

SPOOF=$(dirname "$BIN")/tests/raft_spoof_peer
[[ -x $SPOOF ]] || fail "the spoofing tool $SPOOF is not built"

raft_up 3
echo "leader: node $L"
OLD=$TMP/pki     # raft_config's CA and certificates
NEW=$TMP/pki-new # the CA rotated to
pki_ca "$NEW" || fail "cannot make the new ca"
for i in 1 2 3; do
  pki_node "$NEW" "$i" || fail "cannot make node $i's new-ca certificate"
done
cat "$OLD/ca.pem" "$NEW/ca.pem" >"$TMP/bundle.pem"
cmp -s "$OLD/ca.pem" "$NEW/ca.pem" && fail "the new ca is the old one"

create_user admin@example.com "admin-password-1" --admin >/dev/null
token=$(login admin@example.com "admin-password-1" "$L")
api POST /v1/projects '{"id": "rot", "name": "Rotation test"}' "$token" "$L"
expect_code 201

LAST_INDEX=0 # the raft index of the last acknowledged write
WRITES=0
# write NODE: a new key through NODE (a follower forwards it); it must be created with a raft
# index past the previous write's.
write() {
  local idx
  WRITES=$((WRITES + 1))
  api PUT "/v1/projects/rot/configs/k$WRITES" "{\"content\": {\"n\": $WRITES}, \"expected_version\": 0}" "$token" "$1"
  expect_code 201
  idx=$(jq -r .raft_index <<<"$body" 2>/dev/null) || fail "$last_req: body is not JSON: $body"
  [[ $idx =~ ^[0-9]+$ ]] && ((idx > LAST_INDEX)) ||
    fail "$last_req: raft_index should be an integer past $LAST_INDEX: $body"
  LAST_INDEX=$idx
}

# caught_up: waits (20 s) until every node's /health shows an applied index of at least
# LAST_INDEX.
caught_up() {
  local n i ok deadline=$((SECONDS + 20)) where
  for ((n = 0; n < 200 && SECONDS <= deadline; n++)); do
    ok=1
    where=
    for i in 1 2 3; do
      raft_health "$i" || RH_APPLIED=none
      where+=" node $i: $RH_APPLIED;"
      [[ $RH_APPLIED =~ ^[0-9]+$ ]] && ((RH_APPLIED >= LAST_INDEX)) || ok=0
    done
    ((ok)) && return 0
    sleep 0.1
  done
  fail "not every node applied index $LAST_INDEX within 20 s:$where"
}

# fp FILE: the SHA-256 fingerprint of the certificate in FILE.
fp() {
  openssl x509 -in "$1" -noout -fingerprint -sha256 || fail "cannot read the certificate $1"
}

# served I: the fingerprint of the certificate node I's raft port presents (openssl s_client,
# no client certificate: the node closes the connection after sending its own).
served() {
  local rp="RPORT_$1" pem
  pem=$(timeout 10 openssl s_client -connect "127.0.0.1:${!rp}" -tls1_3 </dev/null 2>/dev/null |
    sed -n '/-----BEGIN CERTIFICATE-----/,/-----END CERTIFICATE-----/p') || true
  [[ -n $pem ]] || fail "node $1's raft port presented no certificate"
  openssl x509 -noout -fingerprint -sha256 <<<"$pem" || fail "node $1: cannot read its certificate"
}

# rotate I CA CERT KEY: node I restarted with these files; the checks above.
rotate() {
  local i=$1 other
  raft_tls "$i" "$2" "$3" "$4"
  raft_stop "$i" 20
  other=$((i % 3 + 1))
  write "$other" # two of three: still a quorum
  raft_start "$i"
  rejoined "$i" "$2" "$3"
}

# rejoined I CA CERT: the checks after node I's restart with CA and CERT.
rejoined() {
  local i=$1 j
  L=$(wait_leader 20) || fail "after node $i's restart: no leader agreed by all three within 20 s"
  for j in 1 2 3; do
    write "$j"
  done
  caught_up
  expect_eq "$(served "$i")" "$(fp "$3")" "the certificate node $i serves after its restart"
  echo "node $i restarted with ca $(basename "$2"), certificate $3: leader node $L, applied $LAST_INDEX"
}

# spoof NODE EXPECT CERT KEY: a peer presenting CERT as node 2 to NODE's raft port, which must
# close the connection (closed) or keep it (open). See raft_spoof.sh.
spoof() {
  local rp="RPORT_$1" got
  got=$("$SPOOF" "127.0.0.1:${!rp}" 2 0 tls "$3" "$4" --quiet) ||
    fail "spoof tool failed against node $1 ($3)"
  [[ $got == "$2" ]] || fail "node $1, a peer with $3: the connection was $got, expected $2"
}

refused() {
  grep -cF "certificate: unable to get local issuer certificate" "$TMP/node1.log" || true
}

# The background writer: its own curl and files (api() shares $TMP/api.*). One line per
# attempt in $TMP/bg.log: "EPOCHREALTIME NODE HTTP_CODE KEY". It stops when $TMP/bg.stop
# exists, after 20000 attempts, or after 600 s.
GAP_MS=5000
bg_writer() {
  local n hp code deadline=$((SECONDS + 600))
  for ((n = 1; n <= 20000 && SECONDS <= deadline; n++)); do
    [[ ! -e $TMP/bg.stop ]] || break
    hp="HPORT_$((n % 3 + 1))"
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 -X PUT \
      -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
      --data-binary "{\"content\": $n, \"expected_version\": 0}" \
      "http://127.0.0.1:${!hp}/v1/projects/rot/configs/bg$n" 2>/dev/null) || true
    [[ $code =~ ^[0-9]{3}$ ]] || code=000
    echo "$EPOCHREALTIME $((n % 3 + 1)) $code bg$n" >>"$TMP/bg.log"
    sleep 0.05
  done
}
stop_bg() {
  [[ -n ${BG_PID:-} ]] || return 0
  touch "$TMP/bg.stop"
  local n
  for ((n = 0; n < 100; n++)); do
    kill -0 "$BG_PID" 2>/dev/null || break
    sleep 0.1
  done
  # Gone by now unless it hung (curl's --max-time 5): then it is ended here.
  kill "$BG_PID" 2>/dev/null || true
  wait "$BG_PID" 2>/dev/null || true
  BG_PID=
}
at_exit stop_bg
bg_writer &
BG_PID=$!

for i in 1 2 3; do
  write "$i"
done
caught_up
# The controls: before the rotation node 1 accepts the old CA's certificate of node 2 and
# refuses the new CA's.
spoof 1 open "$OLD/node2.pem" "$OLD/node2.key"
spoof 1 closed "$NEW/node2.pem" "$NEW/node2.key"

echo "step 1: trust both CAs"
for i in 1 2 3; do
  rotate "$i" "$TMP/bundle.pem" "$OLD/node$i.pem" "$OLD/node$i.key"
done
spoof 1 open "$NEW/node2.pem" "$NEW/node2.key"

echo "step 2: certificates of the new CA"
for i in 1 2 3; do
  rotate "$i" "$TMP/bundle.pem" "$NEW/node$i.pem" "$NEW/node$i.key"
done
spoof 1 open "$OLD/node2.pem" "$OLD/node2.key"

echo "step 3: trust the new CA alone"
for i in 1 2 3; do
  rotate "$i" "$NEW/ca.pem" "$NEW/node$i.pem" "$NEW/node$i.key"
done

echo "renewal under the same CA"
before=$(fp "$NEW/node2.pem")
pki_renew "$NEW" 2 || fail "cannot renew node 2's certificate"
[[ $(fp "$NEW/node2.pem") != "$before" ]] || fail "pki_renew left node 2's certificate as it was"
expect_eq "$(served 2)" "$before" "node 2 serves its old certificate until it restarts"
rotate 2 "$NEW/ca.pem" "$NEW/node2.pem" "$NEW/node2.key"

# A node restarted with its old-CA certificate and the new CA file refuses to start: its own
# certificate does not verify against its own ca file, which is what its peers would find.
echo "node 3 with its old certificate"
# Its peers refuse the old CA's certificate: as "unable to get local issuer certificate", or,
# since node 3 (holding the old CA in its ca file) sends that CA along as its chain, as
# "self-signed certificate in certificate chain".
refusals() {
  cat "$TMP/node1.log" "$TMP/node2.log" |
    grep -cE "tls handshake failed: certificate: (unable to get local issuer certificate|self-signed certificate in certificate chain)" || true
}
r0=$(refusals)
raft_stop 3 20
raft_tls 3 "$NEW/ca.pem" "$OLD/node3.pem" "$OLD/node3.key"
raft_refuses_start "$TMP/rnode3.json" "$TMP/node3-refused.log" \
  "raft tls: $OLD/node3.pem does not verify against the ca file $NEW/ca.pem: unable to get local issuer certificate"
# With both CAs in its ca file it starts (as during step 1), but its peers, which trust only the
# new CA, refuse its handshakes: the other two keep a quorum and acknowledge a write, node 3
# never applies it (3 s, six election timeouts), and nodes 1 and 2 log why.
raft_tls 3 "$TMP/bundle.pem" "$OLD/node3.pem" "$OLD/node3.key"
raft_start 3
wait_ready_leader "$EPOCHREALTIME" 20 1 2 || fail "nodes 1 and 2 have no ready leader"
write "$RL_ID"
for ((n = 0; n < 30; n++)); do
  raft_health 3 || fail "node 3: no raft fields in /health"
  ((RH_APPLIED < LAST_INDEX)) ||
    fail "node 3 with an old-ca certificate applied index $RH_APPLIED (the write at $LAST_INDEX): it joined"
  sleep 0.1
done
for ((n = 0; n < 50; n++)); do
  (($(refusals) > r0)) && break
  sleep 0.1
done
(($(refusals) > r0)) || fail "nodes 1 and 2 should log that node 3's certificate did not verify:
$(grep -hF peer_tls "$TMP/node1.log" "$TMP/node2.log" | tail -n 5)"
expect_eq "$(served 3)" "$(fp "$OLD/node3.pem")" "the certificate node 3 serves"
echo "node 3 stayed out at applied $RH_APPLIED (cluster at $LAST_INDEX); back with its new certificate"
# Not rotate: raft_stop wants a leader all three agree on, and node 3 names none.
raft_kill 3 TERM
raft_tls 3 "$NEW/ca.pem" "$NEW/node3.pem" "$NEW/node3.key"
raft_start 3
rejoined 3 "$NEW/ca.pem" "$NEW/node3.pem"

# The old CA is no longer trusted: its certificate of node 2 is refused during the handshake
# (node 1 logs why), the new one is not.
n0=$(refused)
spoof 1 closed "$OLD/node2.pem" "$OLD/node2.key"
(($(refused) > n0)) || fail "node 1 should log that the old-ca certificate did not verify:
$(grep -F peer_tls "$TMP/node1.log" | tail -n 5)"
spoof 1 open "$NEW/node2.pem" "$NEW/node2.key"
L=$(wait_leader 10) || fail "no leader after the spoofing"
write "$L"
caught_up
echo "$WRITES writes acknowledged, last raft index $LAST_INDEX"

stop_bg
[[ -s $TMP/bg.log ]] || fail "the background writer made no attempt"
echo "background writer, answers: $(awk '{print $3}' "$TMP/bg.log" | sort | uniq -c | tr -s ' \n' ' ')"
# The longest time between two acknowledged writes (and from the first attempt to the first
# one, from the last one to the last attempt).
gap=$(awk 'NR == 1 {prev = $1} $3 == 201 {if ($1 - prev > max) max = $1 - prev; prev = $1; ok++}
  END {if ($1 - prev > max) max = $1 - prev; printf "%d %d\n", max * 1000, ok}' "$TMP/bg.log")
read -r gap_ms acked <<<"$gap"
echo "background writer: $acked writes acknowledged, longest gap $gap_ms ms"
((acked >= 100)) || fail "the background writer had only $acked writes acknowledged"
((gap_ms < GAP_MS)) || fail "no write was acknowledged for $gap_ms ms (bound $GAP_MS ms):
$(awk '$3 != 201' "$TMP/bg.log" | tail -n 20)"
# Every acknowledged key is in the store (a linearizable list through the leader).
L=$(wait_leader 10) || fail "no leader at the end"
: >"$TMP/bg.keys"
after=
for ((p = 0; p < 30; p++)); do
  api GET "/v1/projects/rot/configs?prefix=bg&limit=1000&consistency=linearizable${after:+&after=$after}" "" "$token" "$L"
  expect_code 200
  jq -r '.items[].key' <<<"$body" >>"$TMP/bg.keys" || fail "$last_req: not a list: $body"
  after=$(jq -r '.next_after // empty' <<<"$body")
  [[ -n $after ]] || break
done
[[ -z $after ]] || fail "more than 30 pages of bg keys"
lost=$(awk '$3 == 201 {print $4}' "$TMP/bg.log" | sort | comm -23 - <(sort "$TMP/bg.keys"))
[[ -z $lost ]] || fail "acknowledged writes missing from the store: $(head -n 10 <<<"$lost")"
echo "the store holds $(wc -l <"$TMP/bg.keys") bg keys, every acknowledged one among them"

test_done raft_rotate
