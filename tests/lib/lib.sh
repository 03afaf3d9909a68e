# Shared by the bash tests (tests/*/*.sh). Sourced with the binary's path as $1.
set -euo pipefail

BIN=${1:?usage: test.sh PATH_TO_CONCLAVE}
SRC=${CONCLAVE_SOURCE_DIR:?run through ctest}
source "$SRC/scripts/lib/pg.sh"
source "$SRC/scripts/lib/pki.sh"
PG_BIN=$(pg_bindir)
TMP=$(mktemp -d /tmp/conclave-cli-test.XXXXXX)
# In the ThreadSanitizer run (scripts/test --tsan sets TSAN_OPTIONS) every process of the test
# writes its reports to $TMP/tsan.PID instead of its stderr, so that _test_exit below finds
# them whichever process raced, wherever its stderr went.
if [[ -n ${TSAN_OPTIONS:-} ]]; then
  export TSAN_OPTIONS="$TSAN_OPTIONS:log_path=$TMP/tsan"
fi

fail() {
  echo "FAIL: $*" >&2
  exit 1
}

# The one exit path of every test. The EXIT trap captures the test's status before anything
# else runs, then runs the hooks registered with at_exit (newest first) and exits with that
# status. A test must not install an EXIT trap of its own: a trap such as
# `trap 'stop_a; stop_b' EXIT` hands stop_b the status of stop_a, not the test's, and a
# failing test then exits 0. Hooks see the status in TEST_STATUS, must not call exit (or
# fail), and cannot change the status.
EXIT_HOOKS=()
TEST_STATUS=
at_exit() {
  EXIT_HOOKS=("$1" "${EXIT_HOOKS[@]}")
}
_test_exit() {
  TEST_STATUS=$?
  trap - EXIT
  set +e
  local hook
  for hook in "${EXIT_HOOKS[@]}"; do
    eval "$hook"
  done
  # A ThreadSanitizer report fails the test, also one from a node that the hooks above
  # stopped without looking at its exit status (halt_on_error=1 makes a report end the node
  # with exit 66, which stop_node alone catches only for the nodes it stops itself).
  local f
  for f in "$TMP"/tsan.*; do
    [[ -f $f ]] || continue
    echo "FAIL: ThreadSanitizer report of pid ${f##*.}:" >&2
    cat "$f" >&2
    TEST_STATUS=1
  done
  rm -rf "$TMP"
  exit "$TEST_STATUS"
}
trap _test_exit EXIT

# test_done NAME: the last line of every test. With CONCLAVE_TEST_CANARY=1 (scripts/test
# --canary) it plants a failure instead: the test must then exit non-zero through the same
# path as a real failure, which proves its status survives its cleanup. The marker file tells
# the canary run that the test got this far, so that it failed for the planted reason.
test_done() {
  if [[ ${CONCLAVE_TEST_CANARY:-} == 1 ]]; then
    if [[ -n ${CONCLAVE_CANARY_DIR:-} ]]; then
      echo "$1" >"$CONCLAVE_CANARY_DIR/${CONCLAVE_TEST_NAME:-$(basename "$0" .sh)}"
    fi
    fail "canary: planted failure at the end of $1 (CONCLAVE_TEST_CANARY=1)"
  fi
  echo "$1: ok"
}

[[ -n ${CONCLAVE_TEST_PG:-} ]] || fail "CONCLAVE_TEST_PG is not set; run the tests with scripts/test"

# make_test_db NAME: a fresh database; exports DATABASE_URL pointing at it, as the owner
# role (the harness's superuser: migrations, `conclave admin`, the test's own SQL). The nodes
# connect as the least-privileged node role instead (docs/security.md "Database roles"): a
# login role n_NAME_PID of this test, a member of the group role conclave_node that migration
# 012 grants the nodes' rights to. The group role is created here when missing (roles are
# shared by every database of the server, and parallel tests may race to create it), so the
# login role can join it before the test migrates. NODE_DATABASE_URL is the nodes' URL.
make_test_db() {
  local name="t_$1_$$" role="n_$1_$$"
  "$PG_BIN/psql" "$CONCLAVE_TEST_PG" -XAtq -v ON_ERROR_STOP=1 \
    -c "DROP DATABASE IF EXISTS $name" -c "CREATE DATABASE $name" \
    -c "DO \$\$ BEGIN
          CREATE ROLE conclave_node NOLOGIN;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
        END \$\$" \
    -c "DROP ROLE IF EXISTS $role" -c "CREATE ROLE $role LOGIN IN ROLE conclave_node" >/dev/null
  export DATABASE_URL="$CONCLAVE_TEST_PG dbname=$name"
  export NODE_DATABASE_URL="$CONCLAVE_TEST_PG dbname=$name user=$role"
  TEST_DB_OWNER_URL=$DATABASE_URL
}

# node_db_url: the connection string a node's config gets: the node role's for the database
# make_test_db made, or DATABASE_URL as it is when a test points it elsewhere (a private
# server of its own).
node_db_url() {
  if [[ -n ${NODE_DATABASE_URL:-} && ( -z ${DATABASE_URL:-} ||
        ${DATABASE_URL:-} == "${TEST_DB_OWNER_URL:-}" ) ]]; then
    echo "$NODE_DATABASE_URL"
  else
    echo "${DATABASE_URL:-}"
  fi
}

# as_node_env CMD...: runs CMD with DATABASE_URL set to node_db_url (a node takes
# DATABASE_URL from its environment over its config file, so the owner's URL a test exported
# must not reach it), or unset when there is none. Execs, so `as_node_env ... &` gives $! the
# pid of CMD itself.
as_node_env() {
  local u
  u=$(node_db_url)
  if [[ -n $u ]]; then
    DATABASE_URL=$u exec "$@"
  else
    unset DATABASE_URL
    exec "$@"
  fi
}

# sql QUERY: runs QUERY on $DATABASE_URL and prints the unaligned result.
sql() {
  "$PG_BIN/psql" "$DATABASE_URL" -XAtq -v ON_ERROR_STOP=1 -c "$1"
}

# run CMD...: runs CMD, keeping its status in $status and its stdout+stderr in $out.
run() {
  set +e
  out=$("$@" 2>&1)
  status=$?
  set -e
}

# run_in INPUT CMD...: run with INPUT (and a newline) as standard input.
run_in() {
  local input=$1
  shift
  set +e
  out=$("$@" 2>&1 <<<"$input")
  status=$?
  set -e
}

expect_status() {
  [[ $status -eq $1 ]] || fail "expected exit $1, got $status from: $out"
}

expect_out() {
  [[ $out == *"$1"* ]] || fail "expected output to contain <$1>, got: $out"
}

expect_eq() {
  [[ $1 == "$2" ]] || fail "$3: expected <$2>, got <$1>"
}
