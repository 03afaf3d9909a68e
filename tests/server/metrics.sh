# GET /metrics on one node without raft: no token needed; requests are counted by route
# pattern (never by raw path, unknown paths as route="other"), method and status; the text is
# valid exposition format 0.0.4 (every sample's family has one TYPE line before it, families are
# contiguous, labels are well-formed, histogram buckets are cumulative and end in +Inf =
# _count); and without a raft section the raft, fsm and materializer families are absent (not
# 0: docs/operations.md, Metrics).
source "$(dirname "$0")/../lib/lib.sh"
source "$(dirname "$0")/../lib/node_lib.sh"
make_test_db metrics
run "$BIN" migrate up
expect_status 0

PW=metrics-test-password
create_user root@example.com "$PW" --admin >/dev/null
start_node 1
T_ROOT=$(login root@example.com "$PW")

api POST /v1/projects '{"id": "p-metrics", "name": "metrics"}' "$T_ROOT"
expect_code 201
api GET /v1/projects/p-metrics "" "$T_ROOT"
expect_code 200
api GET /v1/projects/p-metrics "" "$T_ROOT"
expect_code 200
api GET /v1/projects/no-such-project "" "$T_ROOT"
expect_code 404
api GET /v1/projects/p-metrics ""
expect_code 401
api GET /v1/users/0b7e4f2a-9c1d-4e8f-a6b5-3d2c1b0a9f8e "" "$T_ROOT"
expect_code 404
api GET /no/such/endpoint/p-metrics "" "$T_ROOT"
expect_code 404
api PATCH /v1/users "" "$T_ROOT"
expect_code 405

# scrape: GET /metrics without a token into $body, checking status and content type.
scrape() {
  api GET /metrics ""
  expect_code 200
  expect_header Content-Type '^text/plain; version=0\.0\.4; charset=utf-8$'
  printf '%s\n' "$body" >"$TMP/metrics.txt"
}

# has LINE: the scraped text holds LINE exactly.
has() {
  grep -qxF -- "$1" "$TMP/metrics.txt" || fail "/metrics should hold the line <$1>; got:
$(grep -F conclave_http_requests_total "$TMP/metrics.txt")"
}

scrape
R='conclave_http_requests_total{route='
has "${R}\"/v1/projects/{project}\",method=\"GET\",code=\"200\"} 2"
has "${R}\"/v1/projects/{project}\",method=\"GET\",code=\"404\"} 1"
has "${R}\"/v1/projects/{project}\",method=\"GET\",code=\"401\"} 1"
has "${R}\"/v1/projects\",method=\"POST\",code=\"201\"} 1"
has "${R}\"/v1/auth/login\",method=\"POST\",code=\"200\"} 1"
has "${R}\"/v1/users/{user}\",method=\"GET\",code=\"404\"} 1"
has "${R}\"/v1/users\",method=\"PATCH\",code=\"405\"} 1"
has "${R}\"other\",method=\"GET\",code=\"404\"} 1"
has 'conclave_http_request_duration_seconds_count{route="/v1/projects/{project}",method="GET"} 4'
has 'conclave_http_request_duration_seconds_bucket{route="/v1/projects/{project}",method="GET",le="+Inf"} 4'
# start_node polled /ready until it answered 200.
grep -qE '^conclave_http_requests_total\{route="/ready",method="GET",code="200"\} [1-9][0-9]*$' \
  "$TMP/metrics.txt" || fail "/metrics should count the /ready polls of start_node"
# Bounded cardinality: no raw path or id in any label.
if grep -E 'p-metrics|no-such-project|0b7e4f2a|/no/such' "$TMP/metrics.txt"; then
  fail "/metrics holds a raw path or id (above)"
fi
# No raft section: the raft, state machine and materializer families are left out.
if grep -E '^(# (HELP|TYPE) )?conclave_(raft|fsm|materializer)_' "$TMP/metrics.txt"; then
  fail "/metrics of a node without raft should have no raft, fsm or materializer family (above)"
fi
grep -qE '^conclave_pg_pool_jobs_total [1-9][0-9]*$' "$TMP/metrics.txt" ||
  fail "conclave_pg_pool_jobs_total should count the PostgreSQL jobs so far"
for m in connections_open busy queued jobs_failed_total connect_failures_total; do
  grep -qE "^conclave_pg_pool_${m} [0-9]+$" "$TMP/metrics.txt" || fail "no conclave_pg_pool_$m sample"
done
grep -qE '^conclave_auth_cache_entries [1-9][0-9]*$' "$TMP/metrics.txt" ||
  fail "conclave_auth_cache_entries should count the cached token and role"

# A scrape is counted once answered, so the next one shows it.
scrape
has "${R}\"/metrics\",method=\"GET\",code=\"200\"} 1"
# A token is not needed, and one that is invalid does not matter either.
api GET /metrics "" "cs_invalid"
expect_code 200

# The exposition format, checked line by line.
cat >"$TMP/check.awk" <<'EOF'
function bad(msg) {
  printf "line %d: %s: %s\n", NR, msg, $0
  errors++
}
BEGIN { BAD = "\001" }
# Parses the label set at the start of S ("{...}"); returns what follows it, or BAD after a
# complaint. Sets LABELS_NO_LE to the set without its le label (histogram series key) and LE.
function labels(s,    c, name, val, out) {
  s = substr(s, 2)
  out = ""
  LE = ""
  while (1) {
    if (substr(s, 1, 1) == "}") {
      LABELS_NO_LE = out
      return substr(s, 2)
    }
    if (!match(s, /^[a-zA-Z_][a-zA-Z0-9_]*="/)) {
      bad("malformed label name")
      return BAD
    }
    name = substr(s, 1, RLENGTH - 2)
    s = substr(s, RLENGTH + 1)
    val = ""
    while (1) {
      c = substr(s, 1, 1)
      if (c == "") {
        bad("unterminated label value")
        return BAD
      }
      s = substr(s, 2)
      if (c == "\"") break
      if (c == "\\") {
        c = substr(s, 1, 1)
        if (c != "\\" && c != "\"" && c != "n") {
          bad("bad escape in a label value")
          return BAD
        }
        s = substr(s, 2)
        val = val "\\" c
        continue
      }
      val = val c
    }
    if (name == "le") LE = val
    else out = out name "=" val ";"
    c = substr(s, 1, 1)
    if (c == ",") s = substr(s, 2)
    else if (c != "}") {
      bad("expected , or } after a label")
      return BAD
    }
  }
}
/^# TYPE / {
  if (NF != 4 || $4 !~ /^(counter|gauge|histogram|summary|untyped)$/) bad("malformed TYPE line")
  if ($3 in type) bad("second TYPE line for " $3)
  type[$3] = $4
  next
}
/^# HELP / { next }
/^#/ { next }
/^$/ { bad("empty line"); next }
{
  if (!match($0, /^[a-zA-Z_:][a-zA-Z0-9_:]*/)) { bad("no metric name"); next }
  name = substr($0, 1, RLENGTH)
  rest = substr($0, RLENGTH + 1)
  LABELS_NO_LE = ""
  LE = ""
  if (substr(rest, 1, 1) == "{") {
    # labels() returns BAD after reporting a malformed label set; an empty rest is a
    # labelled sample without a value, which the value check below refuses.
    rest = labels(rest)
    if (rest == BAD) next
  }
  if (rest !~ /^ (-?[0-9]+(\.[0-9]*)?([eE][-+]?[0-9]+)?|\+Inf|-Inf|NaN)$/) { bad("bad value"); next }
  value = substr(rest, 2)
  fam = name
  if (!(fam in type)) {
    fam = name
    sub(/_(bucket|sum|count)$/, "", fam)
    if (!(fam in type) || (type[fam] != "histogram" && type[fam] != "summary")) {
      bad("sample without a TYPE line for its family")
      next
    }
  }
  if (fam != cur) {
    if (fam in seen) bad("family " fam " is not contiguous")
    seen[fam] = 1
    cur = fam
  }
  if (type[fam] == "counter" && value + 0 < 0) bad("negative counter")
  key = fam "|" LABELS_NO_LE
  if (name == fam "_bucket") {
    if (LE == "") { bad("bucket without le"); next }
    if ((key in last) && value + 0 < last[key]) bad("buckets are not cumulative")
    last[key] = value + 0
    if (LE == "+Inf") inf[key] = value + 0
  } else if (name == fam "_count" && type[fam] == "histogram") {
    if (!(key in inf)) bad("histogram series without a +Inf bucket")
    else if (inf[key] != value + 0) bad("+Inf bucket differs from _count")
  }
  samples++
}
END {
  if (samples == 0) { print "no samples"; errors++ }
  exit errors > 0
}
EOF
# The raw bytes: $body has lost the final line feed to $(...).
curl -s --max-time 10 "$NODE_1_URL/metrics" >"$TMP/raw.txt"
[[ $(tail -c 1 "$TMP/raw.txt" | od -An -c | tr -d ' ') == '\n' ]] ||
  fail "/metrics must end with a line feed"
out=$(awk -f "$TMP/check.awk" "$TMP/raw.txt") ||
  fail "/metrics is not valid exposition format:
$out"

stop_node 1
echo "metrics: $(grep -c '^conclave_' "$TMP/raw.txt") samples"
test_done metrics
