# Secrets stay secret: after logins, key creations, failed requests carrying secrets and a
# user creation, neither a data-only dump of the database nor any node log holds a
# password, a session token or an API key (nor their raw bytes in hex, nor an unkeyed
# SHA-256 of them: tokens are stored as HMAC-SHA256 under the node secret), and the access
# log never holds a query string value.
source "$(dirname "$0")/../lib/lib.sh"
source "$(dirname "$0")/../lib/node_lib.sh"
make_test_db api_secrets
run "$BIN" migrate up
expect_status 0

secrets=() # every value that must appear nowhere
keep() { secrets+=("$@"); }

PW_ROOT="Root-$(rand_b64url 24)"
PW_ALICE="Alice-$(rand_b64url 24)"
PW_WRONG="Wrong-$(rand_b64url 24)"
PW_DUP="Dup-$(rand_b64url 24)"
PW_MALFORMED="Malformed-$(rand_b64url 24)"
PW_SHORT="S$(rand_b64url 7)"
keep "$PW_ROOT" "$PW_ALICE" "$PW_WRONG" "$PW_DUP" "$PW_MALFORMED" "$PW_SHORT"

create_user root@example.com "$PW_ROOT" --admin >"$TMP/cli.out"
[[ $(<"$TMP/cli.out") != *"$PW_ROOT"* ]] || fail "admin create-user printed the password"
start_node 1
start_node 2

T_ROOT=$(login root@example.com "$PW_ROOT")
api POST /v1/users "{\"email\": \"alice@example.com\", \"password\": \"$PW_ALICE\"}" "$T_ROOT"
expect_code 201
T_ALICE=$(login alice@example.com "$PW_ALICE" 2)
T_ALICE2=$(login alice@example.com "$PW_ALICE")
keep "$T_ROOT" "$T_ALICE" "$T_ALICE2"

# Keys: the first key of a project, a second one, a third one that is revoked.
api POST /v1/projects '{"id": "p-secret", "name": "secret"}' "$T_ALICE" 2
expect_code 201
K1=$(jq -r .api_key.key <<<"$body")
api POST /v1/projects/p-secret/api-keys '{"name": "second"}' "$T_ALICE"
expect_code 201
K2=$(json_get key)
api POST /v1/projects/p-secret/api-keys '{"name": "third"}' "$T_ALICE"
expect_code 201
K3=$(json_get key)
K3_ID=$(json_get id)
keep "$K1" "$K2" "$K3"
for k in "$K1" "$K2" "$K3"; do
  [[ $k =~ ^ck_[0-9a-f]{12}_[A-Za-z0-9_-]{43}$ ]] || fail "API key with an unexpected format: <$k>"
  api GET /v1/projects/p-secret "" "$k" 2
  expect_code 200
done
api DELETE "/v1/projects/p-secret/api-keys/$K3_ID" "" "$T_ALICE" 2
expect_code 204
api GET /v1/projects/p-secret "" "$K3"
expect_error unauthorized 401

# Requests that fail while carrying secrets.
api POST /v1/auth/login "{\"email\": \"alice@example.com\", \"password\": \"$PW_WRONG\"}"
expect_error unauthorized 401
api POST /v1/auth/login "{\"email\": \"nobody@example.com\", \"password\": \"$PW_WRONG\"}" "" 2
expect_error unauthorized 401
api POST /v1/auth/login "{\"email\": \"alice@example.com\", \"password\": \"$PW_MALFORMED\""
expect_error bad_request 400
api POST /v1/users "{\"email\": \"alice@example.com\", \"password\": \"$PW_DUP\"}" "$T_ROOT"
expect_error conflict 409
api POST /v1/users "{\"email\": \"short@example.com\", \"password\": \"$PW_SHORT\"}" "$T_ROOT"
expect_error bad_request 400
UNKNOWN_SESSION="cs_$(rand_b64url 43)"
UNKNOWN_KEY="ck_$(rand_hex 12)_$(rand_b64url 43)"
TAMPERED_KEY="${K1:0:16}$(rand_b64url 43)" # a real prefix, a wrong secret
keep "$UNKNOWN_SESSION" "$UNKNOWN_KEY" "$TAMPERED_KEY"
for t in "$UNKNOWN_SESSION" "$UNKNOWN_KEY" "$TAMPERED_KEY"; do
  for node in 1 2; do
    api GET /v1/projects/p-secret "" "$t" "$node"
    expect_error unauthorized 401
  done
done
# An API key where it may not go, and a logout.
api GET /v1/users "" "$K2" 2
expect_error forbidden 403
api POST /v1/auth/logout "" "$T_ALICE2"
expect_code 204
api GET /v1/users/me "" "$T_ALICE2" 2
expect_error unauthorized 401

# Query strings: never in the access log (values may hold secrets).
Q1="q1$(rand_hex 24)"
Q2="q2$(rand_hex 24)"
Q3="q3$(rand_hex 24)"
Q4="q4$(rand_hex 24)"
keep "$Q1" "$Q2" "$Q3" "$Q4"
api GET "/v1/users?after=$Q1" "" "$T_ROOT"
api GET "/v1/users?limit=5&after=$Q2" "" "$T_ROOT" 2
api GET "/v1/users/me?token=$Q3" "" "$T_ALICE"
api GET "/v1/projects?access_token=$Q4" "" "$T_ALICE" 2
api GET "/v1/users/me?access_token=$T_ALICE"
expect_error unauthorized 401

# The logs are complete only once the nodes stopped.
stop_node 1
stop_node 2

# The checks below must be able to fail: what should be there is there.
# pg_dump 15.14 and later wrap the dump in \restrict lines with a random key; drop them.
"$PG_BIN/pg_dump" --data-only --no-owner "$DATABASE_URL" | sed '/^\\\(un\)\{0,1\}restrict /d' >"$TMP/dump.sql"
for s in alice@example.com root@example.com p-secret 'COPY public.sessions' 'COPY public.api_keys' '$argon2id$'; do
  grep -qF -- "$s" "$TMP/dump.sql" || fail "the dump should hold <$s>; is it the right database?"
done
(($(sql "SELECT count(*) FROM sessions") >= 2)) || fail "the sessions of root and alice should be in the database"
cat "$TMP"/node1.log "$TMP"/node2.log >"$TMP/logs"
for s in 'http method=POST path=/v1/auth/login status=200' 'path=/v1/auth/login status=401' \
  'http method=GET path=/v1/users status=' 'http method=GET path=/v1/users/me status=' \
  'http method=GET path=/v1/projects status=' 'path=/v1/projects/p-secret/api-keys status=201'; do
  grep -qF -- "$s" "$TMP/logs" || fail "the node logs should hold <$s>"
done

# random_part TOKEN: the 43 base64url characters of a session token or an API key.
random_part() {
  case $1 in
  cs_*) echo "${1:3}" ;;
  ck_*) echo "${1:16}" ;;
  esac
}

# hexes VALUE: the forms a careless store could leave of VALUE: its bytes in hex, the
# 32 random bytes behind its base64url part in hex, and unkeyed SHA-256 digests of both.
hexes() {
  local v=$1 tail b64 raw
  printf '%s' "$v" | od -An -tx1 -v | tr -d ' \n'
  echo
  printf '%s' "$v" | sha256sum | cut -c1-64
  tail=$(random_part "$v")
  if [[ ${#tail} -eq 43 ]]; then
    b64=$(tr -- '-_' '+/' <<<"$tail")=
    raw=$(base64 -d <<<"$b64" 2>/dev/null | od -An -tx1 -v | tr -d ' \n')
    [[ -n $raw ]] && echo "$raw"
    base64 -d <<<"$b64" 2>/dev/null | sha256sum | cut -c1-64
    printf '%s' "$tail" | sha256sum | cut -c1-64
  fi
}

leaks=0
check_absent() { # FILE WHAT VALUE
  if grep -qF -- "$3" "$1"; then
    echo "FAIL: $2 holds a secret: <$3> in $(grep -F -- "$3" "$1" | head -n 1 | cut -c1-300)" >&2
    leaks=$((leaks + 1))
  fi
}
for s in "${secrets[@]}"; do
  [[ ${#s} -ge 8 ]] || fail "secret too short to search for: <$s>"
  check_absent "$TMP/dump.sql" "pg_dump --data-only" "$s"
  check_absent "$TMP/logs" "the node logs" "$s"
  # The random part of a token or key on its own.
  if [[ $s == c[sk]_* ]]; then
    [[ $(random_part "$s") =~ ^[A-Za-z0-9_-]{43}$ ]] || fail "unexpected token format: <$s>"
    check_absent "$TMP/dump.sql" "pg_dump --data-only" "$(random_part "$s")"
    check_absent "$TMP/logs" "the node logs" "$(random_part "$s")"
  fi
  while read -r h; do
    [[ -n $h ]] || continue
    check_absent "$TMP/dump.sql" "pg_dump --data-only (hex form)" "$h"
    check_absent "$TMP/logs" "the node logs (hex form)" "$h"
  done < <(hexes "$s")
done
# The node secret itself.
check_absent "$TMP/dump.sql" "pg_dump --data-only" "$(<"$TMP/secret")"
check_absent "$TMP/logs" "the node logs" "$(<"$TMP/secret")"
# No access line carries a query string or an Authorization header.
# One grep per check: `grep | grep -q` under pipefail reads a match as a failure once the
# first grep is killed by SIGPIPE (a log over the pipe's 64 KiB), and a leak goes unseen.
if grep -qE '^http method=.* path=[^ ]*\?' "$TMP/logs"; then
  echo "FAIL: an access-log path holds a query string: $(grep -m1 -E '^http method=.* path=[^ ]*\?' "$TMP/logs")" >&2
  leaks=$((leaks + 1))
fi
if grep -qiE 'bearer +c[sk]_' "$TMP/logs"; then
  echo "FAIL: a node log holds an Authorization header: $(grep -iE 'bearer +c[sk]_' "$TMP/logs" | head -n 1)" >&2
  leaks=$((leaks + 1))
fi
((leaks == 0)) || fail "$leaks secret(s) found in the dump or the logs"
echo "api secrets: checked ${#secrets[@]} secrets, $(wc -l <"$TMP/logs") log lines, $(wc -c <"$TMP/dump.sql") dump bytes"
test_done "api secrets"
