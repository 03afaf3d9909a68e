# HTTPS on the API port and forwarding with the cluster's trust (issue 17 item 1, issue 15
# "forwarding between nodes uses the same trust"), on a three-node cluster whose nodes all
# serve https with their node certificate (raft_config with RAFT_HTTPS=1):
#   - curl --cacert the cluster's CA gets /health from each node over https, naming that node;
#     without the CA curl refuses the certificate; keep-alive works over TLS; TLS 1.2 works,
#     but not with a CBC suite; plain http to the port gets a plain 400
#     that says "https only", and the node logs it with the client's address;
#   - a write through a follower is forwarded to the leader (whose port speaks only https)
#     and acknowledged; the follower logged no forwarding error; the console's session
#     cookie is Secure, and a cookie write through the follower is forwarded too;
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
mkdir -p "$TMP/https"
for i in 1 2 3; do
  RAFT_HTTPS=1 raft_config "$i" "1 2 3"
  # The API's files are copies of the node certificate, so that section 5 can swap them
  # without touching raft's. The handshake must finish within http.request_timeout_ms (short
  # here, for the stall of section 4); a short idle timeout makes the forwarder's kept-alive
  # connections end soon after a certificate swap.
  cp "$TMP/pki/node$i.pem" "$TMP/pki/node$i.key" "$TMP/https/" || fail "cannot copy node $i's files"
  jq --arg c "$TMP/https/node$i.pem" --arg k "$TMP/https/node$i.key" \
    '.http.cert_file = $c | .http.key_file = $k |
     .http.request_timeout_ms = 1500 | .http.idle_timeout_ms = 1000' \
    "$TMP/rnode$i.json" >"$TMP/rnode$i.json.new" &&
    mv "$TMP/rnode$i.json.new" "$TMP/rnode$i.json" || fail "cannot rewrite node $i's config"
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

# Keep-alive over TLS: three requests, one connection (curl's num_connects: 1, then 0, 0).
u="https://127.0.0.1:${HPORT_1}/health"
got=$(curl -s --max-time 5 -w '%{http_code}:%{num_connects} ' \
  -o /dev/null "$u" -o /dev/null "$u" -o /dev/null "$u") || true
expect_eq "$got" "200:1 200:0 200:0 " "three requests on one https connection"

# TLS 1.2 works, with the AEAD suites only: a CBC suite the library would accept is refused.
hp1="HPORT_1"
got=$(curl -s --max-time 5 --tlsv1.2 --tls-max 1.2 "https://127.0.0.1:${!hp1}/health" |
  jq -r .node_id) || true
expect_eq "$got" 1 "node 1's /health over tls 1.2"
rc=0
curl -s --max-time 5 --tlsv1.2 --tls-max 1.2 --ciphers ECDHE-ECDSA-AES128-SHA256 \
  "https://127.0.0.1:${!hp1}/health" >/dev/null 2>&1 || rc=$?
# 35: the handshake failed (no shared cipher).
[[ $rc == 35 ]] || fail "tls 1.2 with a cbc suite should fail its handshake (curl 35), got $rc"

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

# A body of many TLS records (300 KiB: the node decrypts 16 KiB at a time, and reads the socket
# again only once the parser took them), through the follower and forwarded, read back whole.
big=$(head -c 230000 /dev/urandom | base64 -w0)
printf '{"content": {"blob": "%s"}, "expected_version": 0}' "$big" >"$TMP/big.json"
api PUT /v1/projects/tls/configs/big @"$TMP/big.json" "$token" "$F"
expect_code 201
api GET /v1/projects/tls/configs/big "" "$token" "$F"
expect_code 200
[[ $(jq -r .content.blob <<<"$body") == "$big" ]] ||
  fail "the big config read back over https differs (${#body} bytes of body)"

# The console's cookie on an https node is Secure as well; its write through the follower is
# forwarded over https as the session's bearer token.
api POST /v1/auth/login '{"email": "admin@example.com", "password": "admin-password-1", "session": "cookie"}' "" "$F"
expect_code 200
expect_header Set-Cookie '^conclave_session=cs_[A-Za-z0-9_-]{43}; Path=/; Max-Age=[0-9]+; HttpOnly; SameSite=Strict; Secure$'
SC=$(header_value Set-Cookie)
API_HEADERS=("Cookie: ${SC%%;*}" "X-CSRF-Token: $(json_get csrf_token)")
api PUT /v1/projects/tls/configs/kc '{"content": {"n": 1}, "expected_version": 0}' "" "$F"
expect_code 201
API_HEADERS=()

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
run env CONCLAVE_TOKEN="$token" "$BIN" get k1 -p tls "${cli[@]}" --cacert "$TMP/no-such-ca.pem"
expect_status 2
expect_out "cannot read the ca file $TMP/no-such-ca.pem (--cacert or CONCLAVE_CACERT)"

# 4. Bad bytes on node F's API port close that connection only: a watch (long poll) opened
# before them on another connection still gets its answer, and the node keeps answering.
furl_var="NODE_${F}_URL"
FURL=${!furl_var}
rev=$(sql "SELECT max(revision) FROM config_revisions WHERE project_id = 'tls'")
[[ $rev =~ ^[0-9]+$ ]] || fail "no revision of project tls in postgresql: <$rev>"
curl -s --max-time 20 -H "Authorization: Bearer $token" -o "$TMP/watch.body" \
  "$FURL/v1/projects/tls/watch?after_revision=$rev&timeout=15" &
watch_pid=$!
at_exit 'kill $watch_pid 2>/dev/null || true'

# bad NAME BYTES: sends BYTES (printf format) on a new connection to node F's API port, then
# waits (5 s) for the node to close it. BYTES empty: sends nothing (the stalled handshake).
bad() {
  local fd rc=0 hp="HPORT_$F"
  exec {fd}<>"/dev/tcp/127.0.0.1/${!hp}" || fail "bad $1: cannot connect to node $F"
  [[ -z $2 ]] || printf "$2" >&"$fd" || fail "bad $1: cannot send"
  # The node answers on the others meanwhile: its loop is not stuck on this one.
  got=$(curl -s --max-time 5 "$FURL/health" | jq -r .node_id) || true
  [[ $got == "$F" ]] || fail "bad $1: node $F did not answer /health meanwhile: <$got>"
  timeout 5 cat <&"$fd" >/dev/null 2>&1 || rc=$?
  exec {fd}>&-
  [[ $rc == 0 ]] || fail "bad $1: node $F did not close the connection within 5 s (rc $rc)"
}
n=$(log_count "$F" "closed: tls handshake failed")
# A handshake record holding no valid handshake message.
bad garbage-record '\x16\x03\x01\x00\x05hello'
wait_log "$F" "closed: tls handshake failed" $((n + 1))
# Bytes that are not TLS at all (and not plain HTTP).
bad binary '\x00\xff\x13\x37\x00\x00\x00\x10garbage-garbage-garbage'
wait_log "$F" "closed: tls handshake failed" $((n + 2))
# A truncated handshake: the record header promises 512 bytes, 6 arrive, then the client
# closes its side. bad() waits for the node's close, which here answers ours.
n=$(log_count "$F" "end of file during the tls handshake")
exec {tfd}<>"/dev/tcp/127.0.0.1/$(eval echo "\$HPORT_$F")" || fail "cannot connect to node $F"
printf '\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03' >&"$tfd"
exec {tfd}>&-
wait_log "$F" "end of file during the tls handshake" $((n + 1))
# A handshake that never starts: closed after http.request_timeout_ms.
n=$(log_count "$F" "no tls handshake within 1500 ms")
bad stalled ''
wait_log "$F" "no tls handshake within 1500 ms" $((n + 1))
grep -F "closed: tls handshake failed" "$TMP/node$F.log" | tail -n 2
# The watch saw the next write, through its connection that stayed open.
api PUT /v1/projects/tls/configs/k2 '{"content": {"n": 2}, "expected_version": 0}' "$token" "$L"
expect_code 201
wait "$watch_pid" || fail "the watch opened before the bad inputs failed (curl exit $?)"
expect_eq "$(jq -r '[.changes[].key] | join(",")' "$TMP/watch.body")" k2 \
  "the watch's changes after the bad inputs"

# 5. The leader's https certificate swapped without a restart (SIGHUP): followers must refuse
# one of another CA, and one of the cluster's CA naming another node.
lpid_var="NODE_${L}_PID"
LPID=${!lpid_var}
lhp="HPORT_$L"
K=$((F % 3 + 1))
[[ $K != "$L" ]] || K=$((K % 3 + 1))
pki_ca "$TMP/evil" || fail "cannot make the other ca"
pki_node "$TMP/evil" "$L" || fail "cannot make the other ca's node $L certificate"

# swap FROM: node L's https files become FROM.pem/FROM.key, then SIGHUP; waits for the log
# line the reload writes (WANT: "reloaded" or "not reloaded"), then for the idle timeout
# (1 s) to end the forwarder's kept-alive connections made with the previous certificate.
swap() {
  local n
  n=$(log_count "$L" "SIGHUP: $2")
  cp "$1.pem" "$TMP/https/node$L.pem" && cp "$1.key" "$TMP/https/node$L.key" ||
    fail "cannot copy $1 into node $L's https files"
  kill -HUP "$LPID" || fail "cannot send SIGHUP to node $L"
  wait_log "$L" "SIGHUP: $2" $((n + 1))
  sleep 1.5
}

# write_f KEY: PUT KEY (new) through the follower F.
write_f() {
  api PUT "/v1/projects/tls/configs/$1" '{"content": {"n": 3}, "expected_version": 0}' "$token" "$F"
}

swap "$TMP/evil/node$L" "reloaded the https certificate"
rc=0
env -u CURL_CA_BUNDLE curl -s --max-time 5 --cacert "$CA" "https://127.0.0.1:${!lhp}/health" \
  >/dev/null 2>&1 || rc=$?
[[ $rc == 60 ]] || fail "after the swap node $L should serve the other ca's certificate (curl 60), got $rc"
write_f k3
expect_error leader_untrusted 502
expect_match .message "certificate.*refused.*SSL certificate problem: unable to get local issuer certificate"
[[ -z $(header_value Retry-After) ]] || fail "$last_req: a refused certificate needs no Retry-After"
wait_log "$F" "SSL certificate problem: unable to get local issuer certificate" 1

swap "$TMP/pki/node$K" "reloaded the https certificate"
write_f k3
expect_error leader_untrusted 502
expect_match .message "no alternative certificate subject name matches target host name 'conclave-node-$L'"

# A reload that fails keeps the certificate in use (node K's, which curl accepts for
# 127.0.0.1).
n=$(log_count "$L" "SIGHUP: the https certificate was not reloaded")
echo "not a certificate" >"$TMP/https/node$L.pem"
kill -HUP "$LPID" || fail "cannot send SIGHUP to node $L"
wait_log "$L" "SIGHUP: the https certificate was not reloaded" $((n + 1))
got=$(env -u CURL_CA_BUNDLE curl -s --max-time 5 --cacert "$CA" "https://127.0.0.1:${!lhp}/health" |
  jq -r .node_id) || true
expect_eq "$got" "$L" "node $L's /health after a failed reload"

swap "$TMP/pki/node$L" "reloaded the https certificate"
write_f k3
expect_code 201
expect_json .version 1
expect_eq "$(sql "SELECT count(*) FROM config_revisions WHERE project_id = 'tls' AND key = 'k3'")" \
  1 "k3's revisions: the refused forwards wrote nothing"
alive "$LPID" || fail "node $L exited"

# Every node stops cleanly (exit 0: in the ASan build also no leak of a TLS session or
# context), and no sanitizer wrote a report.
for i in 1 2 3; do
  raft_kill "$i" TERM
done
for i in 1 2 3; do
  if grep -E "AddressSanitizer|LeakSanitizer|runtime error" "$TMP/node$i.log"; then
    fail "node $i's log holds a sanitizer report"
  fi
done

test_done https_cluster
