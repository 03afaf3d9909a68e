# Several `migrate up` processes started at once on an empty database: all succeed and each
# migration is applied exactly once (the advisory lock serialises them).
source "$(dirname "$0")/../lib/lib.sh"
make_test_db concurrent
count=$(ls "$SRC"/migrations/*.up.sql | wc -l)

pids=()
for i in 1 2 3 4; do
  "$BIN" migrate up >"$TMP/out$i" 2>&1 &
  pids+=($!)
done
for i in "${!pids[@]}"; do
  wait "${pids[$i]}" || fail "migrate up #$((i + 1)) failed: $(cat "$TMP/out$((i + 1))")"
done

cat "$TMP"/out* >"$TMP/all"
expect_eq "$(grep -c '^applied ' "$TMP/all")" "$count" "applications across all processes"
for f in "$SRC"/migrations/*.up.sql; do
  n=$(grep -c "^applied $(basename "$f") " "$TMP/all" || true)
  expect_eq "$n" 1 "times $(basename "$f") was applied"
done
expect_eq "$(sql "SELECT version || ':' || dirty FROM schema_migrations")" \
  "$(basename "$(ls "$SRC"/migrations/*.up.sql | tail -n 1)" | sed 's/_.*//; s/^0*//'):false" \
  "final version row"
test_done "concurrent migrate"
