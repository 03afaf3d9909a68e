# `conclave serve`: refuses bad configs at start naming the field, refuses a missing secret
# and a port in use, answers 503 with Retry-After while PostgreSQL is down (and keeps serving
# /health), reconnects by itself when it is back, survives SIGHUP without https (nothing to
# reload), and exits 0 on SIGTERM.
source "$(dirname "$0")/../lib/lib.sh"
source "$(dirname "$0")/../lib/node_lib.sh"
make_test_db lifecycle
"$BIN" migrate up >/dev/null

# Bad configurations never start a node.
printf '{"http": {"listn": "127.0.0.1:1"}}' >"$TMP/bad.json"
run "$BIN" serve --config "$TMP/bad.json"
expect_status 1
expect_out "http.listn is not a known field"
printf '{"http": {"listen": "127.0.0.1:%s", "insecure_plaintext": true}}' "$(free_port)" \
  >"$TMP/nosecret.json"
run "$BIN" serve --config "$TMP/nosecret.json"
expect_status 1
expect_out "auth.secret_file is not set"
# HTTPS is the default: without a certificate, plain http must be asked for by name; it is
# never both. A complete config (write_config) minus the choice is refused before any port
# is opened, naming the fields and the way out.
write_config 1 "$(free_port)" "$TMP/nochoice.json"
jq 'del(.http.insecure_plaintext)' "$TMP/nochoice.json" >"$TMP/nochoice2.json"
run timeout 10 "$BIN" serve --config "$TMP/nochoice2.json"
expect_status 1
expect_out "http.cert_file and http.key_file are required"
expect_out '"insecure_plaintext": true'
jq '.http += {cert_file: "/c.pem", key_file: "/k.pem"}' "$TMP/nochoice.json" >"$TMP/both.json"
run timeout 10 "$BIN" serve --config "$TMP/both.json"
expect_status 1
expect_out "http.insecure_plaintext is true, but http.cert_file and http.key_file turn https on"
jq '.http.insecure_plaintext = "yes"' "$TMP/nochoice.json" >"$TMP/notbool.json"
run timeout 10 "$BIN" serve --config "$TMP/notbool.json"
expect_status 1
expect_out "http.insecure_plaintext must be true or false"
run "$BIN" serve
expect_status 2
expect_out "--config FILE is required"

# A second node on a taken port says so and exits.
start_node 1
port=${NODE_1_URL##*:}
write_config 2 "$port" "$TMP/clash.json"
run timeout 10 "$BIN" serve --config "$TMP/clash.json"
expect_status 1
expect_out "127.0.0.1:$port"
expect_out "address already in use"
stop_node 1

# PostgreSQL outage, on a private server this test can stop and start.
pgdir="$TMP/pg"
mkdir -p "$pgdir"
chmod 755 "$TMP" "$pgdir"
pg_init "$pgdir/data"
# Another test may take the port between the probe and the start: try a few.
for attempt in 1 2 3 4; do
  pgport=$(free_port)
  pg_start "$pgdir/data" "$pgport" "$pgdir/log" && break
  [[ $attempt -lt 4 ]] || fail "could not start the private PostgreSQL"
done
at_exit 'stop_nodes; pg_stop "$pgdir/data"'
export DATABASE_URL="host=127.0.0.1 port=$pgport user=conclave dbname=postgres"
"$BIN" migrate up >/dev/null
create_user admin@example.com "admin-password-1" --admin >/dev/null
# A short acquire timeout, so that requests during the outage fail within curl's patience.
export DB_ACQUIRE_TIMEOUT_SECONDS=2
start_node 3
unset DB_ACQUIRE_TIMEOUT_SECONDS
token=$(login admin@example.com "admin-password-1" 3)

pg_stop "$pgdir/data"
api GET /v1/users/me "" "$token" 3
# The session may still be cached; a lookup that needs PostgreSQL must fail cleanly.
api POST /v1/auth/login '{"email": "admin@example.com", "password": "admin-password-1"}' "" 3
expect_error unavailable 503
expect_header Retry-After '^[0-9]+$'
api GET /health "" "" 3
expect_code 200
api GET /ready "" "" 3
expect_code 503

pg_start "$pgdir/data" "$pgport" "$pgdir/log"
for i in $(seq 1 150); do
  api POST /v1/auth/login '{"email": "admin@example.com", "password": "admin-password-1"}' "" 3
  [[ $code == 200 ]] && break
  sleep 0.1
done
expect_code 200
api GET /ready "" "" 3
expect_code 200

# SIGHUP on a plain-http node (systemctl reload sends it): nothing to reload, and the node
# keeps running. Its default action would end the process, an exit systemd counts as clean.
kill -HUP "$NODE_3_PID"
for i in $(seq 1 50); do
  grep -q "SIGHUP: nothing to reload" "$TMP/node3.log" && break
  sleep 0.1
done
grep -q "node 3: SIGHUP: nothing to reload: this node serves plain http" "$TMP/node3.log" ||
  fail "no SIGHUP message in the log: $(tail -n 5 "$TMP/node3.log")"
alive "$NODE_3_PID" || fail "node 3 died of SIGHUP"
api GET /ready "" "" 3
expect_code 200

# SIGTERM: a clean stop with exit 0 (stop_node fails otherwise).
stop_node 3
grep -q "SIGTERM received, stopping" "$TMP/node3.log" || fail "no stop message in the log"
test_done "serve lifecycle"
