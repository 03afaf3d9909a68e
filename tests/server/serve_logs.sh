# The node's log as JSON lines and by level (src/server/logfmt.h; docs/operations.md, "Logs"),
# through a real node's stderr:
#   - log.format json (CONCLAVE_LOG_FORMAT=json): every line the node writes, from start to a
#     clean stop, is one JSON object with time, level, node, component and msg; requests show
#     as access lines with method, path, status (a number) and rid; the plaintext warning is
#     level warn;
#   - log.level warn (CONCLAVE_LOG_LEVEL=warn), in text: no info line (no access log, no
#     "serving" line), the warning still there;
#   - a bad value is refused at start, naming the variable.
source "$(dirname "$0")/../lib/lib.sh"
source "$(dirname "$0")/../lib/node_lib.sh"
make_test_db serve_logs
"$BIN" migrate up >/dev/null

CONCLAVE_LOG_FORMAT=json start_node 1
api GET /health
expect_code 200
api GET /v1/projects
expect_code 401
stop_node 1
LOG=$TMP/node1.log
# The harness writes its own "--- start_node" lines into the log: the node's are the rest.
grep -v '^--- ' "$LOG" >"$TMP/node.lines"
[[ -s $TMP/node.lines ]] || fail "the node wrote no log"
n=0
while IFS= read -r line; do
  jq -e 'type == "object" and (.time | test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z$")) and
    (.level | IN("info", "warn", "error")) and .node == 1 and (.component | type == "string") and
    (.msg | type == "string")' <<<"$line" >/dev/null || fail "not a JSON log line: $line"
  n=$((n + 1))
done <"$TMP/node.lines"
((n >= 4)) || fail "expected the start, requests and stop in the log, got $n lines"
jq -se 'any(.[]; .component == "access" and .method == "GET" and .path == "/health" and
  .status == 200 and (.rid | length > 0))' "$TMP/node.lines" >/dev/null ||
  fail "no access line for GET /health: $(head -c 2000 "$TMP/node.lines")"
jq -se 'any(.[]; .component == "access" and .status == 401)' "$TMP/node.lines" >/dev/null ||
  fail "no access line for the 401"
jq -se 'any(.[]; .level == "warn" and (.msg | test("insecure_plaintext")))' "$TMP/node.lines" >/dev/null ||
  fail "the plaintext warning should be a warn line"
jq -se 'any(.[]; .component == "node" and (.msg | test("^serving http")))' "$TMP/node.lines" >/dev/null ||
  fail "no serving line from the node"

: >"$LOG"
CONCLAVE_LOG_LEVEL=warn start_node 1
api GET /health
expect_code 200
stop_node 1
grep -v '^--- ' "$LOG" >"$TMP/warn.lines"
grep -q 'warning: http.insecure_plaintext' "$TMP/warn.lines" || fail "the warning is missing at level warn"
if grep -E 'http method=|serving http' "$TMP/warn.lines"; then
  fail "info lines at level warn (above)"
fi

# Bad values stop the node before it serves, naming what to fix.
write_config 9 "$(free_port)" "$TMP/bad.json"
run env CONCLAVE_LOG_FORMAT=xml "$BIN" serve --config "$TMP/bad.json"
expect_status 1
expect_out 'environment variable CONCLAVE_LOG_FORMAT: log.format must be "text" or "json"'
run env CONCLAVE_LOG_LEVEL=debug "$BIN" serve --config "$TMP/bad.json"
expect_status 1
expect_out 'log.level must be "info", "warn" or "error"'
test_done serve_logs
