# Running conclave nodes and talking to their HTTP API from the command-line tests. Sourced
# after lib.sh (which provides BIN, TMP, fail, run, sql, make_test_db).
#
#   start_node N            config under $TMP, a free 127.0.0.1 port, `serve` in the
#                           background (stdout and stderr to $TMP/nodeN.log), waits for
#                           /ready; exports NODE_N_URL and NODE_N_PID
#   stop_node N             SIGTERM, wait up to 10 s, SIGKILL by pid; fails unless the node
#                           exited 0 on its own
#   stop_nodes              stops every node still running (also run at exit)
#   create_user E P [--admin]  `conclave admin create-user`, password on stdin; prints the id
#   login E P [NODE]        prints a session token
#   api METHOD PATH [BODY] [TOKEN] [NODE]
#                           sets $code (HTTP status, 000 when there was no answer), $body and
#                           $headers. BODY "" sends none; "@FILE" sends FILE. TOKEN "" sends
#                           no Authorization; "hdr:VALUE" sends "Authorization: VALUE" as is.
#                           Extra request headers come from the array API_HEADERS.
#   expect_code N, expect_json FILTER EXPECTED, expect_error CODE STATUS [FIELD],
#   expect_header NAME PATTERN
#
# The database is the one make_test_db exported in DATABASE_URL. All traffic goes to
# 127.0.0.1; every process started here is stopped by its pid.

shopt -s inherit_errexit

NODE_PIDS=()
API_HEADERS=()
code=
body=
headers=
last_req=

# j ARGS...: a compact JSON value built by jq -n from ARGS.
j() {
  jq -cn "$@"
}

# rand_b64url N: N random base64url characters (N <= 64).
rand_b64url() {
  local s
  s=$(head -c 48 /dev/urandom | base64 -w0 | tr '+/' '-_')
  echo "${s:0:$1}"
}

# rand_hex N: N random lowercase hex digits (N even, <= 128).
rand_hex() {
  local s
  s=$(od -An -tx1 -v -N64 /dev/urandom | tr -d ' \n')
  echo "${s:0:$1}"
}

now_ms() {
  echo $(($(date +%s%N) / 1000000))
}

# The shared node secret: 64 hex characters, mode 0600.
node_secret_file() {
  if [[ ! -f $TMP/secret ]]; then
    (umask 077 && rand_hex 64 >"$TMP/secret")
    chmod 600 "$TMP/secret"
  fi
  echo "$TMP/secret"
}

# write_config N PORT FILE
write_config() {
  local secret
  secret=$(node_secret_file)
  jq -n --argjson id "$1" --arg dir "$TMP/node$1" --arg listen "127.0.0.1:$2" \
    --arg url "$(node_db_url)" --arg secret "$secret" \
    '{node_id: $id, data_dir: $dir, http: {listen: $listen, insecure_plaintext: true},
      database: {url: $url, max_connections: 4},
      auth: {secret_file: $secret, password_ops: 1, password_mem_kib: 64}}' >"$3"
}

# free_port: a 127.0.0.1 port nobody listens on (bash /dev/tcp probe).
free_port() {
  local p i
  for ((i = 0; i < 50; i++)); do
    # Below the kernel's ephemeral range (32768-60999), where outgoing connections of
    # the tests themselves would otherwise take a port between the probe and the bind.
    p=$((10000 + RANDOM % 22000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      echo "$p"
      return 0
    fi
  done
  fail "no free port on 127.0.0.1"
}

# alive PID: the process exists and is not a zombie.
alive() {
  local st
  [[ -r /proc/$1/stat ]] || return 1
  st=$(sed 's/^.*) \(.\).*$/\1/' "/proc/$1/stat" 2>/dev/null) || return 1
  [[ -n $st && $st != Z ]]
}

start_node() {
  local n=$1 port pid attempt i ready pid_var="NODE_$1_PID"
  [[ -z ${!pid_var:-} ]] || fail "start_node $n: node $n is already running"
  mkdir -p "$TMP/node$n"
  chmod 700 "$TMP/node$n"
  for ((attempt = 1; attempt <= 4; attempt++)); do
    port=$(free_port)
    write_config "$n" "$port" "$TMP/node$n.json"
    echo "--- start_node $n on port $port (attempt $attempt)" >>"$TMP/node$n.log"
    as_node_env "$BIN" serve --config "$TMP/node$n.json" >>"$TMP/node$n.log" 2>&1 </dev/null &
    pid=$!
    NODE_PIDS+=("$pid")
    ready=
    for ((i = 0; i < 100; i++)); do
      if [[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 1 \
        "http://127.0.0.1:$port/ready" 2>/dev/null) == 200 ]]; then
        ready=1
        break
      fi
      alive "$pid" || break
      sleep 0.1
    done
    if [[ -n $ready ]]; then
      export "NODE_${n}_URL=http://127.0.0.1:$port" "NODE_${n}_PID=$pid"
      return 0
    fi
    if alive "$pid"; then
      kill -KILL "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
      forget_pid "$pid"
      fail "node $n did not answer 200 on /ready within 10 s; log:
$(tail -n 30 "$TMP/node$n.log")"
    fi
    wait "$pid" 2>/dev/null || true
    forget_pid "$pid"
    # Lost a race for the port with another test: try another one.
    grep -qi 'in use' "$TMP/node$n.log" || break
  done
  fail "node $n exited before it was ready; log:
$(tail -n 30 "$TMP/node$n.log")"
}

# stop_pid PID: SIGTERM, up to 10 s, then SIGKILL. Sets STOP_RC to the exit status
# ("killed" after SIGKILL). Not in a subshell: only this shell can wait for its children.
stop_pid() {
  local pid=$1 i
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do
    alive "$pid" || break
    sleep 0.1
  done
  if alive "$pid"; then
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    STOP_RC=killed
    return 0
  fi
  STOP_RC=0
  wait "$pid" 2>/dev/null || STOP_RC=$?
}

forget_pid() {
  local p keep=()
  for p in "${NODE_PIDS[@]}"; do
    [[ $p == "$1" ]] || keep+=("$p")
  done
  NODE_PIDS=("${keep[@]}")
}

stop_node() {
  local n=$1 pid rc pid_var="NODE_$1_PID"
  pid=${!pid_var:-}
  [[ -n $pid ]] || fail "stop_node $n: node $n is not running"
  stop_pid "$pid"
  rc=$STOP_RC
  forget_pid "$pid"
  unset "NODE_${n}_PID" "NODE_${n}_URL"
  [[ $rc == 0 ]] || fail "node $n: SIGTERM should stop it with exit 0, got $rc; log:
$(tail -n 20 "$TMP/node$n.log")"
}

stop_nodes() {
  local pid
  for pid in "${NODE_PIDS[@]}"; do
    stop_pid "$pid"
  done
  NODE_PIDS=()
}

# Registered with at_exit: stops every node this test started and, when the test failed,
# shows the end of each node's log.
node_cleanup() {
  local f
  stop_nodes
  if [[ $TEST_STATUS -ne 0 ]]; then
    for f in "$TMP"/node*.log; do
      [[ -f $f ]] || continue
      echo "--- last lines of $(basename "$f"):" >&2
      tail -n 40 "$f" >&2
    done
  fi
}
at_exit node_cleanup

# create_user EMAIL PASSWORD [--admin]: prints the new user's id.
create_user() {
  local email=$1 pw=$2 cfg=$TMP/node1.json
  shift 2
  if [[ ! -f $cfg ]]; then
    cfg=$TMP/cli.json
    write_config 1 1 "$cfg"
  fi
  run "$BIN" admin create-user --config "$cfg" --email "$email" "$@" <<<"$pw"
  [[ $status -eq 0 ]] || fail "admin create-user $email exited $status: $out"
  [[ $out =~ ^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$ ]] ||
    fail "admin create-user $email should print only the user id, got: $out"
  echo "$out"
}

# api METHOD PATH [BODY] [TOKEN] [NODE]
api() {
  local method=$1 path=$2 req=${3-} token=${4-} node=${5:-1} url_var="NODE_${5:-1}_URL"
  local url=${!url_var:-}
  [[ -n $url ]] || fail "api: node $node is not running"
  local args=(-s -o "$TMP/api.body" -D "$TMP/api.headers" -w '%{http_code}' --max-time 10
    -X "$method")
  if [[ $token == hdr:* ]]; then
    args+=(-H "Authorization: ${token#hdr:}")
  elif [[ -n $token ]]; then
    args+=(-H "Authorization: Bearer $token")
  fi
  if [[ -n $req ]]; then
    args+=(-H 'Content-Type: application/json')
    if [[ $req == @* ]]; then
      args+=(--data-binary "$req")
    else
      printf '%s' "$req" >"$TMP/api.req"
      args+=(--data-binary "@$TMP/api.req")
    fi
  fi
  local h
  for h in "${API_HEADERS[@]}"; do
    args+=(-H "$h")
  done
  : >"$TMP/api.body"
  : >"$TMP/api.headers"
  code=$(curl "${args[@]}" "$url$path" 2>/dev/null) || true
  [[ $code =~ ^[0-9]{3}$ ]] || code=000
  body=$(<"$TMP/api.body")
  headers=$(<"$TMP/api.headers")
  headers=${headers//$'\r'/}
  if [[ $req == @* ]]; then
    last_req="$method $path (node $node, body ${req#@})"
  else
    last_req="$method $path (node $node${req:+, body ${req:0:200}})"
  fi
}

# header_value NAME: the value of response header NAME (case-insensitive), or nothing.
header_value() {
  local line name want=${1,,}
  while IFS= read -r line; do
    [[ $line == *:* ]] || continue
    name=${line%%:*}
    [[ ${name,,} == "$want" ]] || continue
    line=${line#*:}
    printf '%s\n' "${line#"${line%%[! ]*}"}"
    return 0
  done <<<"$headers"
}

expect_code() {
  [[ $code == "$1" ]] || fail "$last_req: expected HTTP $1, got $code: ${body:0:500}"
  [[ -n $(header_value X-Request-Id) ]] || fail "$last_req: the response has no X-Request-Id"
}

# expect_json FILTER EXPECTED: `jq -r FILTER` of the body prints exactly EXPECTED.
expect_json() {
  local got
  got=$(jq -r "$1" <<<"$body" 2>/dev/null) || fail "$last_req: body is not JSON: ${body:0:500}"
  [[ $got == "$2" ]] || fail "$last_req: $1 should be <$2>, got <$got>; body: ${body:0:500}"
}

expect_header() {
  local v
  v=$(header_value "$1")
  [[ $v =~ $2 ]] || fail "$last_req: header $1 should match /$2/, got <$v>"
}

# expect_error CODE STATUS [FIELD]: an error answer {"error": CODE, "message": TEXT}; with
# FIELD (a 400) also "field": FIELD and a message that names FIELD (docs/api.md, Errors).
expect_error() {
  local err=$1 st=$2 field=${3-} parsed got msg gotfield
  expect_code "$st"
  # One jq run: error, field and message, separated by US characters.
  parsed=$(jq -j 'if type == "object" then
      [(.error // "<none>" | tostring), (.field | tostring),
       (.message | if type == "string" then . else "" end)] | join("\u001f")
    else "<not an object>" end' <<<"$body" 2>/dev/null) ||
    fail "$last_req: error body is not JSON: ${body:0:500}"
  got=${parsed%%$'\x1f'*}
  [[ $got == "$err" ]] || fail "$last_req: expected error \"$err\", got \"$got\": ${body:0:500}"
  parsed=${parsed#*$'\x1f'}
  gotfield=${parsed%%$'\x1f'*}
  msg=${parsed#*$'\x1f'}
  [[ -n $msg ]] || fail "$last_req: error has no message string: ${body:0:500}"
  # Lowercase prose; a leading all-caps token (a method name such as GET) is fine.
  [[ ! $msg =~ ^[A-Z][a-z] ]] || fail "$last_req: error message should be lowercase: $msg"
  expect_header Content-Type '^application/json'
  if [[ -n $field ]]; then
    # FIELD may list accepted names, "id|user": a path id may be named after the placeholder
    # of docs/api.md or after the resource.
    local named= alt alts
    IFS='|' read -r -a alts <<<"$field"
    for alt in "${alts[@]}"; do
      [[ $msg != *"$alt"* ]] || named=1
    done
    [[ -n $named ]] || fail "$last_req: message should name \"$field\": $msg"
    [[ "|$field|" == *"|$gotfield|"* && $msg == *"$gotfield"* ]] ||
      fail "$last_req: \"field\" should be \"$field\", got \"$gotfield\": ${body:0:500}"
  fi
}

# login EMAIL PASSWORD [NODE]: prints the session token.
login() {
  api POST /v1/auth/login "{\"email\": $(jesc "$1"), \"password\": $(jesc "$2")}" "" "${3:-1}"
  expect_code 200
  local t
  t=$(json_get token)
  [[ $t =~ ^cs_[A-Za-z0-9_-]{43}$ ]] || fail "$last_req: token should be cs_ + 43 base64url characters, got <$t>"
  echo "$t"
}

# Soft checks: `soft expect_code 200` reports a failed expectation and counts it instead of
# ending the test, so that one run lists every difference from the contract. `finish NAME`
# ends the test: it fails when any soft check failed.
SOFT_FAILS=0
soft() {
  if ! ("$@") 2>"$TMP/soft.err"; then
    SOFT_FAILS=$((SOFT_FAILS + 1))
    cat "$TMP/soft.err" >&2
  fi
}

finish() {
  ((SOFT_FAILS == 0)) || fail "$1: $SOFT_FAILS check(s) failed, see the FAIL lines above"
  test_done "$1"
}

UUID_RE='^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
TIME_RE='^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|\+00:00)$'

# expect_match FILTER REGEX: `jq -r FILTER` of the body matches REGEX.
expect_match() {
  local got
  got=$(jq -r "$1" <<<"$body" 2>/dev/null) || fail "$last_req: body is not JSON: ${body:0:500}"
  [[ $got =~ $2 ]] || fail "$last_req: $1 should match /$2/, got <$got>; body: ${body:0:500}"
}

# expect_empty: the response has no body (204).
expect_empty() {
  [[ -z $body ]] || fail "$last_req: expected no body, got: ${body:0:500}"
}

# jesc STRING: STRING as a JSON string literal. Quick (no jq) for the plain test values.
jesc() {
  local s=${1//\\/\\\\}
  s=${s//\"/\\\"}
  printf '"%s"' "$s"
}

# json_get NAME: the string member NAME of the response body. A bash match when NAME occurs
# once as a key with a plain string value (jq takes 25 ms to start), else jq.
json_get() {
  local re="\"$1\"[[:space:]]*:[[:space:]]*\"([^\"\\\\]*)\"" whole val
  if [[ $body =~ $re ]]; then
    whole=${BASH_REMATCH[0]}
    val=${BASH_REMATCH[1]}
    if [[ ${body#*"$whole"} != *"\"$1\""* && ${body%%"$whole"*} != *"\"$1\""* ]]; then
      echo "$val"
      return 0
    fi
  fi
  jq -r --arg k "$1" '.[$k] // empty' <<<"$body"
}
