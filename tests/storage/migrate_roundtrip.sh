# migrate up, down step by step, down --all and up again: the schema after the second up is
# identical to the first (pg_dump --schema-only), and bad usage is refused.
source "$(dirname "$0")/../lib/lib.sh"
make_test_db roundtrip
count=$(ls "$SRC"/migrations/*.up.sql | wc -l)
last=$(basename "$(ls "$SRC"/migrations/*.up.sql | tail -n 1)" | sed 's/_.*//; s/^0*//')

run "$BIN" migrate version
expect_status 0
expect_eq "$out" "none" "version of an empty database"

run "$BIN" migrate up
expect_status 0
expect_eq "$(grep -c '^applied ' <<<"$out")" "$count" "migrations applied"
run "$BIN" migrate version
expect_eq "$out" "$last" "version after up"

# pg_dump 15.14 and later wrap the dump in \restrict lines with a random key; drop them.
dump_schema() {
  "$PG_BIN/pg_dump" --schema-only --no-owner "$DATABASE_URL" | sed '/^\\\(un\)\{0,1\}restrict /d' >"$1"
}
dump_schema "$TMP/first.sql"
grep -q 'CREATE TABLE public.config_revisions' "$TMP/first.sql" || fail "dump has no config_revisions"

# The audit log refuses changes, even with no matching row.
run "$PG_BIN/psql" "$DATABASE_URL" -Xq -v ON_ERROR_STOP=1 -c "UPDATE config_revisions SET actor='x'"
expect_status 1
expect_out "config_revisions is append-only: UPDATE is not allowed"

run "$BIN" migrate up
expect_status 0
expect_out "no change"

run "$BIN" migrate down
expect_status 0
expect_eq "$(grep -c '^reverted ' <<<"$out")" 1 "down reverts one by default"
run "$BIN" migrate version
expect_eq "$out" "$((last - 1))" "version after one down"
run "$BIN" migrate down 2
expect_eq "$(grep -c '^reverted ' <<<"$out")" 2 "down 2"
run "$BIN" migrate down --all
expect_status 0
run "$BIN" migrate version
expect_eq "$out" "none" "version after down --all"
expect_eq "$(sql "SELECT string_agg(tablename, ',') FROM pg_tables WHERE schemaname = 'public'")" \
  "schema_migrations" "tables left after down --all"
expect_eq "$(sql "SELECT count(*) FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace \
  WHERE n.nspname = 'public' AND t.typtype = 'e'")" "0" "enum types left after down --all"
expect_eq "$(sql "SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace \
  WHERE n.nspname = 'public'")" "0" "functions left after down --all"
run "$BIN" migrate down --all
expect_out "no change"

run "$BIN" migrate up 3
expect_eq "$(grep -c '^applied ' <<<"$out")" 3 "up 3"
run "$BIN" migrate up
expect_status 0
dump_schema "$TMP/second.sql"
diff -u "$TMP/first.sql" "$TMP/second.sql" || fail "schema after down --all and up differs"

# Usage errors exit 2 and say what to fix.
run "$BIN" migrate up abc
expect_status 2
expect_out 'up takes a number of migrations >= 1, got "abc"'
run "$BIN" migrate sideways
expect_status 2
expect_out 'unknown command "sideways"'
run "$BIN" migrate down 1 --all
expect_status 2
run "$BIN" migrate force
expect_status 2
# Failures exit 1 and name the cause.
run "$BIN" migrate force 999
expect_status 1
expect_out "version 999 is not a migration"
run env DATABASE_URL="postgresql://nobody@127.0.0.1:1/none" "$BIN" migrate version
expect_status 1
expect_out "cannot connect to postgresql"
run env DB_MAX_CONNECTIONS=zero "$BIN" migrate version
expect_status 1
expect_out 'DB_MAX_CONNECTIONS="zero" is not a whole number'
run "$BIN" migrate --dir /nonexistent up
expect_status 1
expect_out "cannot open migrations directory /nonexistent"
test_done "migrate round trip"
