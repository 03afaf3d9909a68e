# A failing migration is rolled back, leaves the version dirty with a message naming the file,
# line and PostgreSQL's error; up and down refuse until `force`; a file that commits on its own
# is refused.
source "$(dirname "$0")/../lib/lib.sh"
make_test_db dirty
dir="$TMP/migrations"
cp -r "$SRC/migrations" "$dir"
last=$(basename "$(ls "$dir"/*.up.sql | tail -n 1)" | sed 's/_.*//; s/^0*//')
next=$(printf '%03d' $((last + 1)))
broken="${next}_broken.up.sql"
printf 'CREATE TABLE half_done (x int);\nSELECT * FROM no_such_table;\n' >"$dir/$broken"
printf 'DROP TABLE half_done;\n' >"$dir/${next}_broken.down.sql"

run "$BIN" migrate --dir "$dir" up
expect_status 1
expect_out "migration $broken failed at line 2: relation \"no_such_table\" does not exist"
run "$BIN" migrate --dir "$dir" version
expect_eq "$out" "$((last + 1)) (dirty)" "version after a failed migration"
expect_eq "$(sql "SELECT count(*) FROM pg_tables WHERE tablename = 'half_done'")" 0 \
  "the failed migration's first statement was rolled back"

run "$BIN" migrate --dir "$dir" up
expect_status 1
expect_out "database is dirty at version $((last + 1))"
run "$BIN" migrate --dir "$dir" down
expect_status 1
expect_out "dirty"

run "$BIN" migrate --dir "$dir" force "$last"
expect_status 0
run "$BIN" migrate --dir "$dir" version
expect_eq "$out" "$last" "version after force"

# Repaired, it applies.
printf 'CREATE TABLE half_done (x int);\n' >"$dir/$broken"
run "$BIN" migrate --dir "$dir" up
expect_status 0
expect_out "applied $broken"
run "$BIN" migrate --dir "$dir" down
expect_status 0
expect_out "reverted ${next}_broken.down.sql"

# A migration with its own COMMIT would escape the transaction: refused and marked dirty.
printf 'CREATE TABLE escaped (x int);\nCOMMIT;\n' >"$dir/$broken"
run "$BIN" migrate --dir "$dir" up
expect_status 1
expect_out "ended the transaction itself"
run "$BIN" migrate --dir "$dir" version
expect_eq "$out" "$((last + 1)) (dirty)" "version after a self-committing migration"
test_done "dirty migrate"
