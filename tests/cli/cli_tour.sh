# The README's quick tour, run as written: the ```sh block under "## Quick tour" is executed
# line by line with bash in a directory that looks like a checkout after `scripts/cluster up`
# (build/conclave, .conclave/admin-password, .conclave/pki/ca.pem), against a real three-node
# cluster on free ports that serves HTTPS with certificates of that CA, as `scripts/cluster up`
# does: the tour's first line must make the CLI trust it.
# A line ending in "# exits N" must exit N; every other line must exit 0. Then the results are
# checked: the rollback, the watch's output, the replay.
source "$(dirname "$0")/../lib/lib.sh"
source "$(dirname "$0")/../lib/node_lib.sh"
source "$(dirname "$0")/../lib/raft_lib.sh"
make_test_db cli_tour
"$BIN" migrate up >/dev/null

# The helpers' curl (raft_up's health checks, login, api) trusts the test CA (raft_config
# makes it there); the CLI (libcurl) does not read this variable.
export CURL_CA_BUNDLE=$TMP/pki/ca.pem
RAFT_HTTPS=1 raft_up 3
PW=tour-admin-password-1
create_user admin@localhost "$PW" --admin >/dev/null

# The tour's world: a checkout-like directory and a private HOME.
W=$TMP/tour
mkdir -p "$W/build" "$W/.conclave/pki" "$TMP/home"
cp "$TMP/pki/ca.pem" "$W/.conclave/pki/ca.pem"
ln -s "$BIN" "$W/build/conclave"
printf '%s\n' "$PW" >"$W/.conclave/admin-password"
export HOME=$TMP/home XDG_CONFIG_HOME=
export CONCLAVE_ENDPOINTS="$NODE_1_URL,$NODE_2_URL,$NODE_3_URL"
unset CONCLAVE_TOKEN CONCLAVE_API_KEY CONCLAVE_PROJECT CONCLAVE_OUTPUT CONCLAVE_CONFIG DATABASE_URL \
  CONCLAVE_CACERT
[[ $NODE_1_URL == https://* ]] || fail "the tour's cluster should serve https: $NODE_1_URL"

# The block, turned into a script that checks each line's exit status.
awk '/^## Quick tour/ { intour = 1; next }
     intour && /^```sh/ { inblock = 1; next }
     inblock && /^```/ { exit }
     inblock { print }' "$SRC/README.md" >"$TMP/tour.lines"
(($(wc -l <"$TMP/tour.lines") >= 10)) || fail "README has no quick tour block: $(cat "$TMP/tour.lines")"
{
  echo 'set -u'
  n=0
  while IFS= read -r line; do
    n=$((n + 1))
    want=0
    if [[ $line =~ \#\ exits\ ([0-9]+) ]]; then
      want=${BASH_REMATCH[1]}
    fi
    if [[ $line =~ \&[[:space:]]*(#.*)?$ ]]; then
      printf '%s\n' "$line" # a background job: its status is the kill's business
      continue
    fi
    printf '%s\n' "$line"
    printf 's=$?; [[ $s == %d ]] || { echo "tour line %d exited $s, expected %d: %q" >&2; exit 1; }\n' \
      "$want" "$n" "$want" "$line"
  done <"$TMP/tour.lines"
} >"$TMP/tour.sh"
set +e
(cd "$W" && bash "$TMP/tour.sh") >"$TMP/tour.out" 2>&1
status=$?
set -e
out=$(<"$TMP/tour.out")
expect_status 0

# What the tour did, seen through the API.
TOKEN=$(login admin@localhost "$PW" 1)
api GET /v1/projects/demo/configs/app.db "" "$TOKEN" 1
expect_code 200
expect_json '.version' 4
expect_json '.content | tojson' '{"host":"db2","pool":10}'
grep -q "version conflict\|expected version" <<<"$out" || fail "the stale put printed no conflict: $out"
grep -q "revision [0-9]*  put  app.db  version 4" <<<"$out" || fail "the watch did not print the put: $out"
grep -q "project demo: ok: 4 revisions" <<<"$out" || fail "audit verify: $out"
tail -n 15 <<<"$out" | grep -q '"pool": 20' ||
  fail "the replay as of revision 2 should show pool 20: $out"
cat "$TMP/tour.out"
test_done "cli_tour"
