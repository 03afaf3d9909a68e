# Shared by the command-line tests. Sourced with the binary's path as $1.
set -euo pipefail

BIN=${1:?usage: test.sh PATH_TO_CONCLAVE}
SRC=${CONCLAVE_SOURCE_DIR:?run through ctest}
source "$SRC/scripts/lib/pg.sh"
PG_BIN=$(pg_bindir)
TMP=$(mktemp -d /tmp/conclave-cli-test.XXXXXX)
trap 'rm -rf "$TMP"' EXIT

fail() {
  echo "FAIL: $*" >&2
  exit 1
}

[[ -n ${CONCLAVE_TEST_PG:-} ]] || fail "CONCLAVE_TEST_PG is not set; run the tests with scripts/test"

# make_test_db NAME: a fresh database; exports DATABASE_URL pointing at it.
make_test_db() {
  local name="t_$1_$$"
  "$PG_BIN/psql" "$CONCLAVE_TEST_PG" -XAtq -v ON_ERROR_STOP=1 \
    -c "DROP DATABASE IF EXISTS $name" -c "CREATE DATABASE $name" >/dev/null
  export DATABASE_URL="$CONCLAVE_TEST_PG dbname=$name"
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
