# The administration commands of the client (project, role, apikey, schema, cluster), the
# config file, and every command's --help, run as the real binary against a real three-node
# cluster, with their failure paths and exit statuses (docs/cli.md).
source "$(dirname "$0")/../lib/lib.sh"
source "$(dirname "$0")/../lib/node_lib.sh"
source "$(dirname "$0")/../lib/raft_lib.sh"
make_test_db cli_admin
"$BIN" migrate up >/dev/null
PW=cli-admin-password-1

# --- help: every command has one, with an example, without a server --------------------------
for cmd in login logout put get list delete history rollback watch project role apikey schema \
  cluster audit; do
  run "$BIN" "$cmd" --help
  expect_status 0
  expect_out "usage: conclave $cmd"
  expect_out "example"
  run "$BIN" help "$cmd"
  expect_status 0
  expect_out "usage: conclave $cmd"
done
run "$BIN" help
expect_status 0
expect_out "client commands:"
run "$BIN" help nothing
expect_status 2
expect_out 'no command "nothing"'
run "$BIN"
expect_status 2

raft_up 4
ADMIN_ID=$(create_user root@example.com "$PW" --admin)
ED_ID=$(create_user ed@example.com "$PW")
create_user bo@example.com "$PW" >/dev/null

export HOME=$TMP/home XDG_CONFIG_HOME=
mkdir -p "$HOME"
unset CONCLAVE_TOKEN CONCLAVE_API_KEY CONCLAVE_PROJECT CONCLAVE_OUTPUT CONCLAVE_ENDPOINTS
# The endpoints and the project come from a config file this time.
jq -n --arg a "$NODE_1_URL" --arg b "$NODE_2_URL" --arg c "$NODE_3_URL" \
  '{endpoints: [$a, $b, $c], project: "shop"}' >"$TMP/client.json"
export CONCLAVE_CONFIG=$TMP/client.json
c() { run "$BIN" "$@"; }
ci() { run_in "$1" "$BIN" "${@:2}"; }
CONCLAVE_CONFIG=$TMP/none.json run "$BIN" get x
expect_status 2
expect_out "config file $TMP/none.json does not exist"
echo '{"endpoints": 5}' >"$TMP/bad-client.json"
CONCLAVE_CONFIG=$TMP/bad-client.json run "$BIN" get x
expect_status 2
expect_out '"endpoints" should be a string or a list of strings'
c get x -o yaml
expect_status 2
expect_out 'output format "yaml" is unknown'

ci "$PW" login --email ed@example.com
expect_status 0

# --- project --------------------------------------------------------------------------------
c project create shop
expect_status 0
c project create shop
expect_status 4
expect_out "project create shop"
c project create "Bad Id!"
expect_status 7
expect_out 'field "id" must be'
c project create other -o json
expect_status 0
expect_eq "$(jq -r '.role' <<<"$out")" admin "project create -o json role"
c project list
expect_status 0
expect_out "shop"
expect_out "admin"
c project list -o json
expect_eq "$(jq -c '[.items[].id]' <<<"$out")" '["other","shop"]' "project list"
c project
expect_status 2
expect_out "missing subcommand: one of create, list, delete"
c project rename shop
expect_status 2
expect_out 'unknown subcommand "rename"'
c project delete other
expect_status 0
c project delete other
expect_status 3

# --- role -----------------------------------------------------------------------------------
c role grant bo@example.com editor
expect_status 0
expect_out "bo@example.com is now editor of project shop"
c role list -o json
expect_eq "$(jq -c '[.items[] | [.email, .role_level]] | sort' <<<"$out")" \
  '[["bo@example.com","editor"],["ed@example.com","admin"]]' "roles"
c role list
expect_out "bo@example.com"
c role grant BO@example.com viewer
expect_status 0
c role grant nobody@example.com viewer
expect_status 3
expect_out "nobody@example.com"
c role grant bo@example.com owner
expect_status 2
expect_out "should be admin, editor or viewer"
c role revoke "$ED_ID"
expect_status 4
expect_out "admin"
c role revoke bo@example.com
expect_status 0
c role revoke bo@example.com
expect_status 3
expect_out "has no role in project shop"
c role list -o json
expect_eq "$(jq -c '[.items[].email]' <<<"$out")" '["ed@example.com"]' "roles after revoke"

# --- apikey ---------------------------------------------------------------------------------
c apikey create --name deployer
expect_status 0
KEY=$(tail -n 1 <<<"$out" | tr -d ' ')
c apikey list -o json
KID=$(jq -r '.items[] | select(.name == "deployer") | .id' <<<"$out")
[[ -n $KID ]] || fail "apikey list has no deployer key: $out"
jq -e '[.items[] | has("key")] | any | not' <<<"$out" >/dev/null || fail "apikey list shows a key"
ci '{"a": 1}' put k1 --create --api-key "$KEY"
expect_status 0
c apikey revoke "$KID"
expect_status 0
sleep 1.2
ci '{"a": 2}' put k1 --api-key "$KEY"
expect_status 5
c apikey revoke 00000000-0000-0000-0000-000000000000
expect_status 3
# A read-scope key reads and cannot write; a bad scope is a usage error, nothing created.
c apikey create --name readers --scope read
expect_status 0
expect_out "created read API key"
RKEY=$(tail -n 1 <<<"$out" | tr -d ' ')
ci '{"a": 3}' put k2 --create --api-key "$RKEY"
expect_status 5
expect_out "scope is read"
ci '' get k1 --api-key "$RKEY"
expect_status 0
c apikey create --name bad --scope write
expect_status 2
c apikey list -o json
expect_eq "$(jq -r '[.items[] | select(.name == "readers" or .name == "bad") | "\(.name):\(.scope)"] | join(",")' <<<"$out")" \
  "readers:read" "keys after the scoped creates"

# --- schema ---------------------------------------------------------------------------------
echo '{"type": "object", "required": ["pool"], "properties": {"pool": {"type": "integer"}}}' \
  >"$TMP/schema.json"
c schema create db-config "$TMP/schema.json"
expect_status 0
c schema list -o json
SID=$(jq -r '.items[] | select(.name == "db-config") | .id' <<<"$out")
[[ -n $SID ]] || fail "schema list: $out"
c schema get "$SID"
expect_status 0
expect_out '"required"'
ci '{"type": "object", "minProperties": "many"}' schema create broken
expect_status 7
ci '{"pool": 5}' put db --create --schema "$SID"
expect_status 0
ci '{"pool": "five"}' put db --schema "$SID"
expect_status 7
expect_out "pool"
c get db -o json
expect_eq "$(jq -c .content <<<"$out")" '{"pool":5}' "content after the refused write"
c schema delete "$SID"
expect_status 4
c schema update "$SID" --name db-config-v2
expect_status 0
c schema get "$SID" -o json
expect_eq "$(jq -r .name <<<"$out")" db-config-v2 "schema name after update"
c schema update "$SID"
expect_status 2
# format is an annotation unless asked: --format-assertion on create and update, and off again.
c schema get "$SID"
expect_out "format:   annotation"
ci '{"ip": "10.0.0.1", "pool": 7}' put db-fmt --create --schema "$SID"
expect_status 0
echo '{"type": "object", "properties": {"ip": {"type": "string", "format": "ipv4"}}}' >"$TMP/fmt.json"
c schema update "$SID" "$TMP/fmt.json" --format-assertion
expect_status 0
expect_out "format asserted"
c schema get "$SID" -o json
expect_eq "$(jq -c '[.format_assertion, .schema_content.properties.ip.format]' <<<"$out")" \
  '[true,"ipv4"]' "schema after update --format-assertion"
ci '{"ip": "999.0.0.1"}' put db-fmt --schema "$SID"
expect_status 7
expect_out "/ip"
c schema update "$SID" --no-format-assertion
expect_status 0
expect_out "format annotation"
ci '{"ip": "999.0.0.1"}' put db-fmt --schema "$SID"
expect_status 0
c schema update "$SID" --format-assertion --no-format-assertion
expect_status 2
expect_out "contradict"
c schema update "$SID" --strict
expect_status 2
expect_out "give a FILE"
c schema create fmt --no-format-assertion "$TMP/fmt.json"
expect_status 2
ci '{"pool": 1}' put db-fmt --schema none
expect_status 0
# --strict refuses a keyword the dialect does not know; without it the keyword is ignored.
echo '{"type": "object", "x-vendor": 1, "minProperties": 1}' >"$TMP/vendor.json"
c schema create vendor-strict "$TMP/vendor.json" --strict
expect_status 7
expect_out "x-vendor"
c schema create vendor-fmt "$TMP/vendor.json" --format-assertion -o json
expect_status 0
expect_eq "$(jq -c '[.name, .format_assertion]' <<<"$out")" '["vendor-fmt",true]' \
  "schema create --format-assertion"
c schema delete "$(jq -r .id <<<"$out")"
expect_status 0
c schema get 00000000-0000-0000-0000-000000000000
expect_status 3
# Unbind, then the schema can go.
ci '{"pool": 6}' put db --schema none
expect_status 0
c schema delete "$SID"
expect_status 0

# --- cluster (instance admins) --------------------------------------------------------------
c cluster status
expect_status 5
ROOT=$(login root@example.com "$PW" "$L")
CONCLAVE_TOKEN=$ROOT run "$BIN" cluster status
expect_status 0
expect_out "leader:"
expect_out "state hash:"
CONCLAVE_TOKEN=$ROOT run "$BIN" cluster status -o json
expect_eq "$(jq '.members | length' <<<"$out")" 3 "members"
T=$(((L % 3) + 1))
CONCLAVE_TOKEN=$ROOT run "$BIN" cluster transfer "$T"
expect_status 0
L2=$(wait_leader 20) || fail "no leader after the transfer"
expect_eq "$L2" "$T" "leader after cluster transfer"
# A fourth node joins through the CLI right after the transfer, then leaves.
raft_config 4 ""
raft_start 4
CONCLAVE_TOKEN=$ROOT run "$BIN" cluster add 4 "127.0.0.1:$RPORT_4"
expect_status 0
expect_out "node 4 (127.0.0.1:$RPORT_4) is now a voter"
CONCLAVE_TOKEN=$ROOT run "$BIN" cluster status -o json
expect_eq "$(jq -r '.members[] | select(.id == 4) | .role' <<<"$out")" voter "node 4's role"
CONCLAVE_TOKEN=$ROOT run "$BIN" cluster remove 4
expect_status 0
expect_out "node 4 is no longer a member"
CONCLAVE_TOKEN=$ROOT run "$BIN" cluster status -o json
expect_eq "$(jq '.members | length' <<<"$out")" 3 "members after the removal"
raft_kill 4 KILL
CONCLAVE_TOKEN=$ROOT run "$BIN" cluster remove abc
expect_status 2
CONCLAVE_TOKEN=$ROOT run "$BIN" cluster add 4
expect_status 2
test_done "cli_admin"
