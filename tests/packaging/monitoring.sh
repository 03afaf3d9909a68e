# The monitoring kit (packaging/prometheus, packaging/grafana; docs/operations.md, "Metrics"):
#   - the alert rules load (promtool check rules) and their unit tests pass (promtool test
#     rules: each alert fires on the series meant to trigger it, after its `for:`, and a
#     healthy cluster fires none);
#   - a real three-node cluster's /metrics, from the leader and a follower after writes
#     through both, passes `promtool check metrics` without a single warning, and has
#     conclave_build_info, the process_* families and the `code` label;
#   - every metric the rules and the dashboard use is one the nodes export, and every
#     dashboard expression parses as PromQL.
source "$(dirname "$0")/../lib/lib.sh"
source "$(dirname "$0")/../lib/node_lib.sh"
source "$(dirname "$0")/../lib/raft_lib.sh"
command -v promtool >/dev/null || fail "promtool is missing: run scripts/deps (Debian's prometheus)"
KIT=$SRC/packaging
RULES=$KIT/prometheus/conclave-alerts.yml
DASH=$KIT/grafana/conclave-dashboard.json

promtool check rules "$RULES" >"$TMP/rules.out" 2>&1 || fail "promtool check rules: $(cat "$TMP/rules.out")"
(cd "$KIT/prometheus" && promtool test rules conclave-alerts.test.yml) >"$TMP/test.out" 2>&1 ||
  fail "promtool test rules: $(cat "$TMP/test.out")"

# ---- real metrics --------------------------------------------------------------------------
make_test_db monitoring
"$BIN" migrate up >/dev/null
raft_up 3
F=$(((L % 3) + 1))
create_user root@example.com monitoring-password-1 --admin >/dev/null
T=$(login root@example.com monitoring-password-1 "$L")
api POST /v1/projects '{"id": "mon", "name": "monitoring"}' "$T" "$L"
expect_code 201
api PUT /v1/projects/mon/configs/a '{"content": 1, "expected_version": 0}' "$T" "$L"
expect_code 201
api PUT /v1/projects/mon/configs/b '{"content": 2, "expected_version": 0}' "$T" "$F"
expect_code 201
: >"$TMP/all.txt"
for n in "$L" "$F"; do
  url="NODE_${n}_URL"
  curl -fs --max-time 10 "${!url}/metrics" >"$TMP/metrics$n.txt" || fail "GET /metrics of node $n"
  promtool check metrics <"$TMP/metrics$n.txt" >"$TMP/check$n.out" 2>&1 ||
    fail "promtool check metrics refuses node $n's /metrics: $(head -n 20 "$TMP/check$n.out")"
  [[ ! -s $TMP/check$n.out ]] || fail "promtool check metrics warns on node $n: $(head -n 20 "$TMP/check$n.out")"
  cat "$TMP/metrics$n.txt" >>"$TMP/all.txt"
done
grep -Eq '^conclave_build_info\{version="[0-9]+\.[0-9]+\.[0-9]+",raft="[0-9.]+"\} 1$' "$TMP/all.txt" ||
  fail "no conclave_build_info sample"
for f in process_cpu_seconds_total process_resident_memory_bytes process_virtual_memory_bytes \
  process_open_fds process_max_fds process_start_time_seconds; do
  grep -Eq "^$f [0-9.e+]+$" "$TMP/all.txt" || fail "no $f sample"
done
grep -q '^conclave_http_requests_total{route="/v1/projects/{project}/configs/{ckey}",method="PUT",code="201"} ' \
  "$TMP/all.txt" || fail "conclave_http_requests_total has no code label for the writes"

# ---- every metric used exists; every dashboard expression parses ----------------------------
jq -e '.uid and (.panels | length > 0) and all(.panels[]; (.targets | length > 0) and
  .datasource.uid == "${datasource}")' "$DASH" >/dev/null || fail "the dashboard's shape: $DASH"
jq -r '.panels[].targets[].expr' "$DASH" >"$TMP/dash.exprs"
{
  echo "groups: [{name: dashboard, rules: ["
  n=0
  while IFS= read -r e; do
    e=${e//\$job/conclave}
    printf '  {record: dashboard:expr%d, expr: %s},\n' "$n" "$(jq -Rn --arg e "$e" '$e')"
    n=$((n + 1))
  done <"$TMP/dash.exprs"
  echo "]}]"
} >"$TMP/dash-rules.yml"
promtool check rules "$TMP/dash-rules.yml" >"$TMP/dash.out" 2>&1 ||
  fail "a dashboard expression does not parse: $(cat "$TMP/dash.out")"
used=$( (grep -oE '\b(conclave|process)_[a-z_]+' "$RULES" "$TMP/dash.exprs" | sed 's/^[^:]*://') | sort -u)
[[ $(wc -l <<<"$used") -ge 20 ]] || fail "found too few metric names in the kit: $used"
for name in $used; do
  grep -Eq "^${name}[{ ]" "$TMP/all.txt" || fail "the kit uses $name, which no node exports"
done
test_done monitoring
