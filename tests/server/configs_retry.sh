# Retries get the first outcome (issue 14 item 1, docs/write-path.md "Retries"), black-box on a
# cluster of three real `conclave serve` processes and a real PostgreSQL:
#  - every kind of write (create, put, delete, rollback; schema bound in the body, inherited
#    from the key, or unbound with "schema_id": null) is sent once, then sent again, identical,
#    to the leader and to both followers (which forward): each answer has the first status and
#    the identical JSON body, and PostgreSQL holds exactly one revision for the request id;
#  - the same request id with a different write is refused with 400 (field request_id);
#  - another project writing past its own bound of remembered ids (1024) does not make the
#    first project's retries lose their first outcome;
#  - the project itself writing past its bound, so that the state machine forgets the ids,
#    still answers each retry with its first outcome (looked up in PostgreSQL), and a
#    different write under a forgotten id is still refused with 400.
source "$(dirname "$0")/../lib/lib.sh"
source "$(dirname "$0")/../lib/node_lib.sh"
source "$(dirname "$0")/../lib/raft_lib.sh"
make_test_db configs_retry
"$BIN" migrate up >/dev/null

T_START=$(date +%s)
PW=configs-retry-password-1
# The state machine's per-project bound (raft/fsm.h FSM_PROJECT_REQUESTS), and how many
# writes go past it.
BOUND=1024
PAST=$((BOUND + 76))

raft_up 3
F1=$(((L % 3) + 1))
F2=$((((L + 1) % 3) + 1))
echo "leader: node $L, followers: $F1 $F2"

create_user root@example.com "$PW" --admin >/dev/null
T_ROOT=$(login root@example.com "$PW" "$L")
api POST /v1/users "{\"email\": \"ed@example.com\", \"password\": \"$PW\"}" "$T_ROOT" "$L"
expect_code 201
T=$(login ed@example.com "$PW" "$L")
for p in rty noisy; do
  api POST /v1/projects "{\"id\": \"$p\", \"name\": \"project $p\"}" "$T" "$L"
  expect_code 201
done
api POST /v1/schemas '{"name": "retry-obj", "schema_content": {"type": "object"}}' "$T" "$L"
expect_code 201
SID=$(json_get id)
[[ $SID =~ $UUID_RE ]] || fail "schema id: <$SID>"
P=/v1/projects/rty/configs

# once LABEL STATUS METHOD PATH BODY: sends the write once to the leader, requires STATUS and
# keeps the answer (sorted, compact) in FIRST[LABEL] for same_again.
declare -A FIRST FIRST_CODE REQ_METHOD REQ_PATH REQ_BODY
LABELS=()
once() {
  local label=$1 status=$2
  api "$3" "$4" "$5" "$T" "$L"
  expect_code "$status"
  expect_match .raft_index '^[1-9][0-9]*$'
  FIRST[$label]=$(jq -S -c . <<<"$body")
  FIRST_CODE[$label]=$code
  REQ_METHOD[$label]=$3 REQ_PATH[$label]=$4 REQ_BODY[$label]=$5
  LABELS+=("$label")
}

# same_again LABEL: the identical request again, to the leader and to each follower: the first
# status and the identical body every time.
same_again() {
  local label=$1 n got
  for n in "$L" "$F1" "$F2"; do
    api "${REQ_METHOD[$label]}" "${REQ_PATH[$label]}" "${REQ_BODY[$label]}" "$T" "$n"
    got=$(jq -S -c . <<<"$body" 2>/dev/null) || got="not JSON: $body"
    [[ $code == "${FIRST_CODE[$label]}" && $got == "${FIRST[$label]}" ]] ||
      fail "$label: retry through node $n answered $code $got; the first answer was" \
        "${FIRST_CODE[$label]} ${FIRST[$label]}"
  done
}

# one_row RID: PostgreSQL holds exactly one revision for request id RID of project rty.
one_row() {
  expect_eq "$(sql "SELECT count(*) FROM config_revisions WHERE project_id = 'rty' AND request_id = '$1'")" \
    1 "revisions written for request id $1"
}

# --- every kind of write, retried -------------------------------------------------------
once create 201 POST "$P" '{"key": "plain", "content": {"a": 1}, "request_id": "rq-create"}'
once create-bound 201 POST "$P" \
  "{\"key\": \"bound\", \"content\": {\"a\": 1}, \"schema_id\": \"$SID\", \"request_id\": \"rq-create-bound\"}"
# Inherits the key's binding (no schema_id in the body).
once put-inherited 200 PUT "$P/bound" '{"content": {"a": 2}, "expected_version": 1, "request_id": "rq-put-inh"}'
# Bound in the body.
once put-bound 200 PUT "$P/plain" \
  "{\"content\": {\"a\": 2}, \"expected_version\": 1, \"schema_id\": \"$SID\", \"request_id\": \"rq-put-bound\"}"
# Rollback of a bound key: the binding is inherited and the content loaded from PostgreSQL.
once rollback-bound 200 POST "$P/plain/rollback" \
  '{"target_version": 1, "expected_version": 2, "request_id": "rq-rb-bound"}'
# Unbound with null, then a rollback of the unbound key.
once put-null 200 PUT "$P/bound" \
  '{"content": {"a": 3}, "expected_version": 2, "schema_id": null, "request_id": "rq-put-null"}'
once rollback 200 POST "$P/bound/rollback" \
  '{"target_version": 1, "expected_version": 3, "request_id": "rq-rb"}'
once delete 200 DELETE "$P/bound?expected_version=4&request_id=rq-del" ""
# Create by PUT with expected_version 0, bound in the body.
once put-create 201 PUT "$P/third" \
  "{\"content\": [1, 2], \"expected_version\": 0, \"schema_id\": null, \"request_id\": \"rq-put-create\"}"

for label in "${LABELS[@]}"; do
  same_again "$label"
done
for rid in rq-create rq-create-bound rq-put-inh rq-put-bound rq-rb-bound rq-put-null rq-rb rq-del \
  rq-put-create; do
  one_row "$rid"
done
echo "every kind of write answered its first outcome on retry (leader and followers)"

# different_write LABEL METHOD PATH BODY: a request id reused for another write: 400 naming
# request_id, on the leader and through a follower; nothing written.
different_write() {
  local n
  for n in "$L" "$F1"; do
    api "$2" "$3" "$4" "$T" "$n"
    expect_error bad_request 400 request_id
  done
}
# reused_ids_refused [remembered]: the reuses below are refused whether the state machine
# still remembers the ids or they are looked up in PostgreSQL. With "remembered", also a put
# that omits the schema_id the first one gave: only the state machine's fingerprint knows
# what the body said; a revision row records the binding, not whether it was named
# (docs/write-path.md, "Retries").
reused_ids_refused() {
  different_write "put, other content" PUT "$P/plain" \
    "{\"content\": {\"a\": 9}, \"expected_version\": 1, \"schema_id\": \"$SID\", \"request_id\": \"rq-put-bound\"}"
  if [[ ${1-} == remembered ]]; then
    different_write "put, schema absent instead of given" PUT "$P/plain" \
      '{"content": {"a": 2}, "expected_version": 1, "request_id": "rq-put-bound"}'
  fi
  different_write "put, null instead of absent" PUT "$P/bound" \
    '{"content": {"a": 2}, "expected_version": 1, "schema_id": null, "request_id": "rq-put-inh"}'
  different_write "rollback, other target" POST "$P/plain/rollback" \
    '{"target_version": 2, "expected_version": 3, "request_id": "rq-rb-bound"}'
  different_write "create, other key" POST "$P" '{"key": "other", "content": {"a": 1}, "request_id": "rq-create"}'
  different_write "delete, other version" DELETE "$P/bound?expected_version=5&request_id=rq-del" ""
}
reused_ids_refused remembered
expect_eq "$(sql "SELECT count(*) FROM config_revisions WHERE project_id = 'rty'")" 9 \
  "revisions of rty after the refused reuses"

# bulk PROJECT PREFIX N: N creates in PROJECT through the leader, request ids PREFIX-1..N, over
# one kept-alive connection (one curl); each must answer 201.
bulk() {
  local project=$1 prefix=$2 n=$3 i url_var="NODE_${L}_URL"
  : >"$TMP/bulk.cfg"
  for ((i = 1; i <= n; i++)); do
    printf 'url = "%s/v1/projects/%s/configs"\nrequest = "POST"\nheader = "Authorization: Bearer %s"\nheader = "Content-Type: application/json"\ndata = "{\\"key\\": \\"%s.%d\\", \\"content\\": %d, \\"request_id\\": \\"%s-%d\\"}"\noutput = "/dev/null"\nwrite-out = "%%{http_code}\\n"\nmax-time = 15\n' \
      "${!url_var}" "$project" "$T" "$prefix" "$i" "$i" "$prefix" "$i" >>"$TMP/bulk.cfg"
    ((i == n)) || echo next >>"$TMP/bulk.cfg"
  done
  curl -s -K "$TMP/bulk.cfg" >"$TMP/bulk.out" || true
  expect_eq "$(grep -c '^201$' "$TMP/bulk.out")" "$n" "201 answers of $n creates in $project"
}

# --- another project past its bound -------------------------------------------------------
t0=$(date +%s)
bulk noisy n "$PAST"
echo "$PAST writes to project noisy took $(($(date +%s) - t0)) s"
for label in "${LABELS[@]}"; do
  same_again "$label"
done
echo "retries still answered their first outcome after another project's $PAST writes"

# --- the project itself past its bound: its first ids are forgotten by the state machine ---
bulk rty own "$PAST"
for label in "${LABELS[@]}"; do
  same_again "$label"
done
for rid in rq-create rq-create-bound rq-put-inh rq-put-bound rq-rb-bound rq-put-null rq-rb rq-del \
  rq-put-create; do
  one_row "$rid"
done
reused_ids_refused
expect_eq "$(sql "SELECT count(*) FROM config_revisions WHERE project_id = 'rty'")" $((9 + PAST)) \
  "revisions of rty after its own writes and the retries"
# The new ids past the bound were proved new by the leader's request-id filter, without a
# PostgreSQL lookup, while every retry of a forgotten id was looked up (and got its first
# outcome above): at least the 76 writes of each project past its bound, and the retries.
metric() {
  local url_var="NODE_${L}_URL"
  curl -s "${!url_var}/metrics" | awk -v n="$1" '$1 == n {print $2}'
}
filter_new=$(metric conclave_request_id_filter_new_total)
filter_lookups=$(metric conclave_request_id_filter_lookups_total)
echo "request-id filter on the leader: $filter_new proved new, $filter_lookups looked up"
((filter_new >= 2 * (PAST - BOUND))) ||
  fail "the request-id filter proved only $filter_new ids new, expected at least $((2 * (PAST - BOUND)))"
((filter_lookups >= ${#LABELS[@]})) ||
  fail "only $filter_lookups request ids were looked up, fewer than the ${#LABELS[@]} retried"
echo "retries answered their first outcome after the project's own $PAST writes"

echo "configs_retry: $(($(date +%s) - T_START)) s"
test_done configs_retry
