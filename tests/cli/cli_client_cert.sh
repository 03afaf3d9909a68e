# The CLI's client certificate (--client-cert/--client-key, CONCLAVE_CLIENT_CERT/CONCLAVE_CLIENT_KEY), against a TLS server
# that requires one: `openssl s_server` on 127.0.0.1 with -Verify (it stands for a proxy in
# front of the nodes that requires mutual TLS; the nodes themselves never ask). The server
# answers any GET with its HTML status page, so a command that got through TLS fails later,
# on the body, never with a TLS error:
#  - with a certificate of the CA the server trusts: the handshake succeeds (the server saw
#    the client certificate's subject);
#  - without one: the handshake fails, exit 6 (unavailable) with libcurl's reason;
#  - a key that does not match the certificate: exit 6 with the hint to check --client-cert/--client-key;
#  - --client-cert without --client-key (and the reverse), an unreadable file, an empty name: exit 2 naming
#    the option, before anything is sent.
source "$(dirname "$0")/../lib/lib.sh"
source "$(dirname "$0")/../lib/node_lib.sh"
source "$(dirname "$0")/../lib/raft_lib.sh"

pki_ca "$TMP/pki" || fail "cannot make the test ca"
pki_node "$TMP/pki" 1 || fail "cannot make the server's certificate"
pki_node "$TMP/pki" 2 || fail "cannot make the client's certificate"
pki_node "$TMP/pki" 3 || fail "cannot make a second certificate"
CA=$TMP/pki/ca.pem

export HOME=$TMP/home XDG_CONFIG_HOME=
mkdir -p "$HOME"
unset CONCLAVE_TOKEN CONCLAVE_API_KEY CONCLAVE_CONFIG CONCLAVE_CACERT CONCLAVE_CLIENT_CERT CONCLAVE_CLIENT_KEY
export CONCLAVE_PROJECT=p CONCLAVE_API_KEY=ck_not_checked_by_this_server

# The server; the port is probed free, and another program may take it first: try a few.
SPID=
at_exit '[[ -z $SPID ]] || stop_pid "$SPID"'
for attempt in 1 2 3 4; do
  port=$(free_port)
  openssl s_server -accept "127.0.0.1:$port" -cert "$TMP/pki/node1.pem" \
    -key "$TMP/pki/node1.key" -CAfile "$CA" -Verify 1 -verify_return_error -www \
    >"$TMP/server.log" 2>&1 </dev/null &
  SPID=$!
  for ((i = 0; i < 50; i++)); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    alive "$SPID" || break
    sleep 0.1
  done
  alive "$SPID" && break
  [[ $attempt -lt 4 ]] || fail "openssl s_server did not start: $(cat "$TMP/server.log")"
done
EP=https://127.0.0.1:$port

# With the client certificate: TLS succeeds; the HTML answer is no JSON (a failure, but not
# one of TLS), and the server logged the client's subject.
run "$BIN" get k --endpoints "$EP" --cacert "$CA" --client-cert "$TMP/pki/node2.pem" \
  --client-key "$TMP/pki/node2.key"
[[ $status != 0 && $status != 6 && $status != 2 ]] ||
  fail "with a client certificate the command should pass TLS and fail on the body: $status $out"
[[ $out != *SSL* && $out != *certificate* ]] || fail "a TLS error with a client certificate: $out"
# The same from the environment.
run env CONCLAVE_CLIENT_CERT="$TMP/pki/node2.pem" CONCLAVE_CLIENT_KEY="$TMP/pki/node2.key" \
  "$BIN" get k --endpoints "$EP" --cacert "$CA"
[[ $status != 0 && $status != 6 && $status != 2 ]] || fail "CONCLAVE_CLIENT_CERT/KEY: $status $out"
[[ $out != *SSL* ]] || fail "a TLS error with CONCLAVE_CLIENT_CERT/KEY: $out"

# Without one the server ends the handshake.
run "$BIN" get k --endpoints "$EP" --cacert "$CA"
expect_status 6
expect_out "$EP"

# A key that does not belong to the certificate: libcurl refuses it before the handshake.
run "$BIN" get k --endpoints "$EP" --cacert "$CA" --client-cert "$TMP/pki/node2.pem" \
  --client-key "$TMP/pki/node3.key"
expect_status 6
expect_out "check --client-cert and --client-key"

# Usage errors, before any connection.
run "$BIN" get k --endpoints "$EP" --cacert "$CA" --client-cert "$TMP/pki/node2.pem"
expect_status 2
expect_out "--client-cert needs --client-key too"
run env CONCLAVE_CLIENT_KEY="$TMP/pki/node2.key" "$BIN" get k --endpoints "$EP" --cacert "$CA"
expect_status 2
expect_out "--client-key needs --client-cert too"
run "$BIN" get k --endpoints "$EP" --cacert "$CA" --client-cert "$TMP/nope.pem" --client-key "$TMP/pki/node2.key"
expect_status 2
expect_out "cannot read the client certificate $TMP/nope.pem (--client-cert or CONCLAVE_CLIENT_CERT)"
run "$BIN" get k --endpoints "$EP" --cacert "$CA" --client-cert "" --client-key "$TMP/pki/node2.key"
expect_status 2
expect_out "--client-cert needs a file name"

# The server saw the client's certificate in the first two commands (its log names the
# subject of the certificate it verified).
grep -q "conclave-node-2" "$TMP/server.log" ||
  fail "the server never saw the client certificate: $(cat "$TMP/server.log")"
test_done "cli_client_cert"
