# The config commands of the client (login, put, get, list, history, rollback, delete, watch)
# run as the real binary against a real three-node cluster: each command's success and failure
# paths with their exit statuses (docs/cli.md), -o json (errors as JSON too), -o value, table
# columns with wide characters, endpoint failover with a node down and the unavailable status
# with every node down.
source "$(dirname "$0")/../lib/lib.sh"
source "$(dirname "$0")/../lib/node_lib.sh"
source "$(dirname "$0")/../lib/raft_lib.sh"
make_test_db cli_configs
"$BIN" migrate up >/dev/null
PW=cli-configs-password-1

raft_up 3
create_user ed@example.com "$PW" >/dev/null
create_user vi@example.com "$PW" >/dev/null

# The client's files go to a private HOME; nothing comes from the environment but the
# endpoints, which list a dead port first (the client must skip it).
DEAD=$(free_port)
export HOME=$TMP/home XDG_CONFIG_HOME=
mkdir -p "$HOME"
export CONCLAVE_ENDPOINTS="http://127.0.0.1:$DEAD,$NODE_1_URL,$NODE_2_URL,$NODE_3_URL"
unset CONCLAVE_TOKEN CONCLAVE_API_KEY CONCLAVE_PROJECT CONCLAVE_OUTPUT CONCLAVE_CONFIG DATABASE_URL
c() { run "$BIN" "$@"; }
ci() { run_in "$1" "$BIN" "${@:2}"; }

# --- login ---------------------------------------------------------------------------------
ci "wrong-password" login --email ed@example.com
expect_status 5
expect_out "login as ed@example.com"
[[ ! -e $HOME/.config/conclave/credentials ]] || fail "a failed login saved credentials"
ci "$PW" login --email ed@example.com
expect_status 0
expect_out "logged in as ed@example.com"
CREDS=$HOME/.config/conclave/credentials
[[ $(stat -c %a "$CREDS") == 600 ]] || fail "credentials mode should be 600, is $(stat -c %a "$CREDS")"
c login
expect_status 2
expect_out "--email EMAIL is required"

# --- project and usage errors --------------------------------------------------------------
c project create shop --name "Shop backend"
expect_status 0
expect_out "created project shop"
expect_out "its first API key"
KEY=$(tail -n 1 <<<"$out" | tr -d ' ')
# Tables count columns as a terminal draws them: CJK characters take two.
c project create wide --name "配置中心 ok"
expect_status 0
c project list
expect_status 0
python3 - "$out" <<'PY' || fail "project list columns do not line up: $out"
import sys, unicodedata
def width(s):
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in s)
lines = [l for l in sys.argv[1].splitlines() if l.strip()]
header = lines[0]
col = width(header[:header.index("ROLE")])
for line in lines[1:]:
    role = line.index("admin")
    assert width(line[:role]) == col, (line, width(line[:role]), col)
PY
[[ $KEY == ck_* ]] || fail "the API key line should hold the key, got <$KEY>"
c get app.db
expect_status 2
expect_out "no project: pass --project P or set CONCLAVE_PROJECT"
export CONCLAVE_PROJECT=shop
c get
expect_status 2
expect_out "expected exactly one KEY"
c get app.db --bogus
expect_status 2
expect_out "option --bogus is unknown"
c get app.db --consistency sometimes
expect_status 2
expect_out "should be linearizable or stale"
c frobnicate
expect_status 2
expect_out 'unknown command "frobnicate"'

# --- put / get ------------------------------------------------------------------------------
echo '{"host": "db1", "pool": 5, "tags": ["a", "b"]}' >"$TMP/v1.json"
c put app.db "$TMP/v1.json" --create
expect_status 0
expect_out "created app.db: version 1"
c put app.db "$TMP/v1.json" --create
expect_status 4
expect_out "app.db"
c get app.db
expect_status 0
expect_out "version:   1"
expect_out '"host": "db1"'
c get app.db -o json
expect_status 0
expect_eq "$(jq -c .content <<<"$out")" '{"host":"db1","pool":5,"tags":["a","b"]}' "get -o json content"
REV1=$(jq -r .revision <<<"$out")
# From standard input, with the expected version given.
ci '{"host": "db2", "pool": 5}' put app.db - --expected-version 1
expect_status 0
expect_out "version 2"
# A stale version: conflict, nothing written.
ci '{"host": "stale"}' put app.db - --expected-version 1
expect_status 4
expect_out "version"
c get app.db -o json --consistency stale
expect_eq "$(jq -r .content.host <<<"$out")" db2 "content after the stale put"
# Without --expected-version: read-then-CAS.
ci '{"host": "db3", "pool": 8}' put app.db
expect_status 0
expect_out "version 3"
# Bad input: not JSON, missing file; nothing is sent.
echo '{"host": ' >"$TMP/bad.json"
c put app.db "$TMP/bad.json"
expect_status 7
expect_out "is not valid JSON (line"
c put app.db "$TMP/missing.json"
expect_status 3
expect_out "cannot open $TMP/missing.json"
c get app.db -o json
expect_eq "$(jq -r .version <<<"$out")" 3 "version after the refused puts"
c get nope
expect_status 3
expect_out "get nope"
c get app.db --version 1 -o json
expect_status 0
expect_eq "$(jq -r .content.host <<<"$out")" db1 "get --version 1"

# -o value prints the content alone: JSON for a document, the raw text of a string; only get
# takes it, though a default from CONCLAVE_OUTPUT leaves the other commands their table.
c get app.db -o value
expect_status 0
expect_eq "$(jq -c . <<<"$out")" '{"host":"db3","pool":8}' "get -o value"
c get app.db --version 1 -o value
expect_eq "$(jq -c .host <<<"$out")" '"db1"' "get --version 1 -o value"

# Under -o json an error is one JSON object on standard error, with the server's code and
# fields when the server refused; standard output stays empty.
json_err() {
  set +e
  "$BIN" "$@" -o json >"$TMP/je.out" 2>"$TMP/je.err"
  status=$?
  set -e
  [[ ! -s $TMP/je.out ]] || fail "$*: -o json printed to stdout on failure: $(cat "$TMP/je.out")"
  [[ $(wc -l <"$TMP/je.err") == 1 ]] || fail "$*: the error should be one line: $(cat "$TMP/je.err")"
}
json_err put app.db "$TMP/v1.json" --expected-version 1
expect_eq "$status" 4 "put with a stale version under -o json"
jq -e '.error == "conflict" and .http_status == 409 and .exit_code == 4 and
  .current_version == 3 and (.message | test("app.db"))' "$TMP/je.err" >/dev/null ||
  fail "the conflict as JSON: $(cat "$TMP/je.err")"
json_err get app.db --bogus
expect_eq "$status" 2 "a bad option under -o json"
jq -e '.error == "usage" and .exit_code == 2 and (.message | test("--bogus")) and
  (has("http_status") | not)' "$TMP/je.err" >/dev/null || fail "the usage error as JSON: $(cat "$TMP/je.err")"
json_err get nope
expect_eq "$status" 3 "a missing key under -o json"
jq -e '.error == "not_found" and .http_status == 404' "$TMP/je.err" >/dev/null ||
  fail "the 404 as JSON: $(cat "$TMP/je.err")"

# --- list, history, rollback, delete --------------------------------------------------------
ci '"on"' put flags --create
expect_status 0
c get flags -o value
expect_status 0
expect_eq "$out" "on" "a string content under -o value"
c list -o value
expect_status 2
expect_out "only get shows"
CONCLAVE_OUTPUT=value run "$BIN" list
expect_status 0
expect_out "flags"
ci '{"ttl": 30}' put app.cache --create
expect_status 0
c list
expect_status 0
expect_out "app.cache"
expect_out "flags"
c list app. -o json
expect_status 0
expect_eq "$(jq -c '[.items[].key]' <<<"$out")" '["app.cache","app.db"]' "list app. keys"
c history app.db
expect_status 0
[[ $(grep -c "^ *[0-9]" <<<"$out") -ge 3 ]] || fail "history should list 3 versions: $out"
c history app.db -o json
expect_eq "$(jq -c '[.items[].version]' <<<"$out")" '[1,2,3]' "history versions"
c history nope
expect_status 3
c rollback app.db --to 1
expect_status 0
expect_out "rolled back app.db to the content of version 1: now version 4"
c get app.db -o json
expect_eq "$(jq -r .content.host <<<"$out")" db1 "content after rollback"
c rollback app.db --to 99
expect_status 7
expect_out "must be below the current version"
c rollback app.db
expect_status 2
c rollback nope --to 1
expect_status 3
expect_out "nope has no live version in project shop"
c delete flags --expected-version 7
expect_status 4
c delete flags
expect_status 0
c get flags
expect_status 3
c delete flags
expect_status 3
expect_out "no such key"

# --- permissions ----------------------------------------------------------------------------
c role grant vi@example.com viewer
expect_status 0
VI_TOKEN=$(login vi@example.com "$PW" "$L")
CONCLAVE_TOKEN=$VI_TOKEN run "$BIN" get app.db
expect_status 0
CONCLAVE_TOKEN=$VI_TOKEN ci '{"x": 1}' put app.db -
expect_status 5
expect_out "put app.db"
CONCLAVE_TOKEN=not-a-token run "$BIN" get app.db
expect_status 5
# An API key writes and reads its own project.
ci '{"k": 1}' put by-key --create --api-key "$KEY"
expect_status 0
CONCLAVE_API_KEY=$KEY run "$BIN" get by-key -o json
expect_eq "$(jq -c .content <<<"$out")" '{"k":1}' "read with the API key"

# --- watch ----------------------------------------------------------------------------------
"$BIN" watch app. --poll-timeout 2 >"$TMP/watch.out" 2>"$TMP/watch.err" &
WPID=$!
NODE_PIDS+=("$WPID")
# The banner comes once the watch knows where "now" is; every write after it must show.
for ((n = 0; n < 100; n++)); do
  grep -q "^watching project shop" "$TMP/watch.err" && break
  sleep 0.1
done
grep -q "^watching project shop" "$TMP/watch.err" || fail "watch did not start: $(cat "$TMP/watch.err")"
ci '{"ttl": 60}' put app.cache
expect_status 0
ci '"ignored"' put other.key --create
expect_status 0
c delete app.cache
expect_status 0
for ((n = 0; n < 50; n++)); do
  grep -q "delete  app.cache" "$TMP/watch.out" && break
  sleep 0.1
done
kill -INT "$WPID"
set +e
wait "$WPID"
wstatus=$?
set -e
forget_pid "$WPID"
expect_eq "$wstatus" 0 "watch exit status after SIGINT"
WOUT=$(<"$TMP/watch.out")
grep -q "put  app.cache  version 2" <<<"$WOUT" || fail "watch missed the put: $WOUT $(cat "$TMP/watch.err")"
grep -q "delete  app.cache  version 3" <<<"$WOUT" || fail "watch missed the delete: $WOUT"
grep -q "other.key" <<<"$WOUT" && fail "watch printed a key outside its prefix: $WOUT"
expect_eq "$(wc -l <<<"$WOUT")" 2 "watch lines"

# --- logout ---------------------------------------------------------------------------------
c logout
expect_status 0
[[ ! -e $CREDS ]] || fail "logout left the credentials file"
c get app.db
expect_status 5
expect_out "conclave login"
# The failover below runs with a token from the environment.
# (Assigned, then exported: `export X=$(...)` would hide a failed login behind export's 0.)
CONCLAVE_TOKEN=$(login ed@example.com "$PW" "$L")
export CONCLAVE_TOKEN

# --- a node that takes requests but never answers (SIGSTOP) -------------------------------
L=$(wait_leader 20) || fail "no leader"
c get app.db -o json
V=$(jq -r .version <<<"$out")
S=$(((L % 3) + 1))
S_PID_VAR="NODE_${S}_PID"
S_URL_VAR="NODE_${S}_URL"
kill -STOP "${!S_PID_VAR}"
SAVED_ENDPOINTS=$CONCLAVE_ENDPOINTS
export CONCLAVE_ENDPOINTS="${!S_URL_VAR},$NODE_1_URL,$NODE_2_URL,$NODE_3_URL"
# A read moves on to the next node.
c get app.db --timeout 2
expect_status 0
# A config write is retried elsewhere with the same request id, and happens once.
ci '{"host": "while-stopped"}' put app.db --timeout 2 --request-id cli-stop-1 --expected-version "$V"
expect_status 0
expect_out "outcome unknown"
expect_out "retrying with request id cli-stop-1"
# Any other change is not sent twice: the client says the outcome is unknown.
c project create limbo --timeout 2
expect_status 6
expect_out "may or may not have been carried out"
kill -CONT "${!S_PID_VAR}"
export CONCLAVE_ENDPOINTS=$SAVED_ENDPOINTS
# The stopped node had taken it, and did it once it ran again.
for ((n = 0; n < 50; n++)); do
  run "$BIN" project list -o json
  jq -e '[.items[].id] | index("limbo")' <<<"$out" >/dev/null && break
  sleep 0.1
done
jq -e '[.items[].id] | index("limbo")' <<<"$out" >/dev/null || fail "the project made while its node was stopped is missing: $out"
c history app.db -o json
expect_eq "$(jq '[.items[] | select(.request_id == "cli-stop-1")] | length' <<<"$out")" 1 "versions written by the retried put"

# --- failover: a node down, then all of them ------------------------------------------------
F=$(((L % 3) + 1))
raft_kill "$F" KILL
export CONCLAVE_ENDPOINTS="http://127.0.0.1:$DEAD,$(eval echo "\$NODE_${F}_URL"),$NODE_1_URL,$NODE_2_URL,$NODE_3_URL"
ci '{"host": "after-kill"}' put app.db
expect_status 0
c get app.db -o json
expect_status 0
expect_eq "$(jq -r .content.host <<<"$out")" after-kill "read with a node down"
for i in 1 2 3; do
  pid_var="NODE_${i}_PID"
  [[ -n ${!pid_var:-} ]] && raft_kill "$i" KILL
done
c get app.db --timeout 2
expect_status 6
expect_out "get app.db"
expect_out "127.0.0.1:$DEAD"

test_done "cli_configs"
