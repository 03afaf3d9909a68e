# `migrate create` writes the next numbered pair, which `up` and `down` then accept.
source "$(dirname "$0")/../lib/lib.sh"
make_test_db create
dir="$TMP/migrations"
cp -r "$SRC/migrations" "$dir"
last=$(basename "$(ls "$dir"/*.up.sql | tail -n 1)" | sed 's/_.*//; s/^0*//')
next=$(printf '%03d' $((last + 1)))

run "$BIN" migrate --dir "$dir" create add_config_labels
expect_status 0
expect_out "created $dir/${next}_add_config_labels.up.sql"
[[ -f "$dir/${next}_add_config_labels.up.sql" && -f "$dir/${next}_add_config_labels.down.sql" ]] ||
  fail "the pair was not written"
run "$BIN" migrate --dir "$dir" create second_one
expect_out "$(printf '%03d' $((last + 2)))_second_one.up.sql"

run "$BIN" migrate --dir "$dir" create Bad-Name
expect_status 2
expect_out 'migration name "Bad-Name" is not valid'
[[ -z $(ls "$dir" | grep -i bad) ]] || fail "a refused name left files behind"

# The new (comment-only) migrations apply and revert.
run "$BIN" migrate --dir "$dir" up
expect_status 0
expect_out "applied ${next}_add_config_labels.up.sql"
run "$BIN" migrate --dir "$dir" version
expect_eq "$out" "$((last + 2))" "version after applying created migrations"
run "$BIN" migrate --dir "$dir" down 2
expect_status 0

# An up without its down is refused before touching the database.
printf 'SELECT 1;\n' >"$dir/900_lonely.up.sql"
run "$BIN" migrate --dir "$dir" up
expect_status 1
expect_out "migration 900_lonely has no down file"
test_done "migrate create"
