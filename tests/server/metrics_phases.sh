# The write phase histograms of /metrics (docs/operations.md, "Where a write's time goes") on a
# three-node cluster: after N config writes sent to the leader and M sent to a follower (which
# forwards them), each conclave_write_*_seconds histogram moved by exactly the number of writes
# that went through its phase on that node (the leader times every write; the follower times
# "HTTP in", "forward" and "answer out" of its M; the third node times nothing), each _sum that
# moved is positive and below the wall time of the writes, the phases a node times for one write
# do not add up to more than that wall time, the materializer wrote one batch per write with its
# transaction inside the batch's time and the batch inside "apply to PostgreSQL commit", and the
# buckets are cumulative and end in +Inf = _count.
source "$(dirname "$0")/../lib/lib.sh"
source "$(dirname "$0")/../lib/node_lib.sh"
source "$(dirname "$0")/../lib/raft_lib.sh"
make_test_db phases
"$BIN" migrate up >/dev/null

N=5 # writes sent to the leader
M=3 # writes sent to a follower
PHASES=(http_in forward prepare propose_to_commit commit_to_apply apply_to_postgresql_commit
  answer_out)

raft_up 3
follower=$(((L % 3) + 1))
other=$(((follower % 3) + 1))
[[ $other != "$L" && $other != "$follower" ]] || fail "nodes: leader $L, follower $follower, other $other"
echo "leader: node $L; writes through node $follower too; node $other gets none"

create_user admin@example.com "admin-password-1" --admin >/dev/null
token=$(login admin@example.com "admin-password-1" "$L")
api POST /v1/projects '{"id": "phases", "name": "Phases"}' "$token" "$L"
expect_code 201

# scrape I TAG: node I's /metrics into $TMP/TAG.I.
scrape() {
  local url_var="NODE_${1}_URL"
  curl -fsS --max-time 10 "${!url_var}/metrics" >"$TMP/$2.$1" ||
    fail "GET /metrics of node $1 failed"
}

# sample TAG I NAME: the value of the unlabelled sample NAME in scrape TAG of node I; fails
# unless exactly one line holds it.
sample() {
  local lines
  lines=$(grep -E "^$3 " "$TMP/$1.$2" || true)
  [[ -n $lines && $lines != *$'\n'* ]] ||
    fail "node $2 ($1): expected exactly one sample $3, got: <$lines>"
  echo "${lines#* }"
}

# delta I NAME: how much sample NAME of node I moved between the scrapes before and after.
delta() {
  local a b
  a=$(sample before "$1" "$2")
  b=$(sample after "$1" "$2")
  awk -v a="$a" -v b="$b" 'BEGIN { printf "%.9f\n", b - a }'
}

# cumulative I FAMILY: in node I's last scrape, FAMILY's buckets never decrease, the last is
# le="+Inf" and equals _count.
cumulative() {
  local out
  out=$(awk -v f="$2" '
    index($0, f "_bucket{le=\"") == 1 {
      v = $2 + 0
      if (n > 0 && v < last) { print "bucket " $1 " is below the one before it"; bad = 1 }
      last = v; n++; lastle = $1
    }
    $1 == f "_count" { count = $2 + 0; seen = 1 }
    END {
      if (n < 10) { print "only " n " buckets"; bad = 1 }
      if (lastle != f "_bucket{le=\"+Inf\"}") { print "the last bucket is " lastle ", not +Inf"; bad = 1 }
      if (!seen || last != count) { print "+Inf bucket " last " differs from _count " count; bad = 1 }
      exit bad
    }' "$TMP/after.$1") || fail "node $1: $2 is not a cumulative histogram: $out"
}

for i in 1 2 3; do
  scrape "$i" before
done
t0=$EPOCHREALTIME
for ((k = 1; k <= N + M; k++)); do
  node=$L
  ((k <= N)) || node=$follower
  api PUT "/v1/projects/phases/configs/key$k" "{\"content\": {\"k\": $k}, \"expected_version\": 0}" \
    "$token" "$node"
  expect_code 201
done
t1=$EPOCHREALTIME
wall=$(awk -v a="${t0/,/.}" -v b="${t1/,/.}" 'BEGIN { printf "%.6f\n", b - a }')
for i in 1 2 3; do
  scrape "$i" after
done
echo "wall time of the $((N + M)) writes: $wall s"

# What each node must have counted, phase by phase.
declare -A want
for p in "${PHASES[@]}"; do
  want[$L.$p]=$((N + M))
  want[$follower.$p]=0
  want[$other.$p]=0
done
want[$L.forward]=0
want[$follower.http_in]=$M
want[$follower.forward]=$M
want[$follower.answer_out]=$M

for i in 1 2 3; do
  total=0
  for p in "${PHASES[@]}"; do
    f=conclave_write_${p}_seconds
    cumulative "$i" "$f"
    c=$(delta "$i" "${f}_count")
    s=$(delta "$i" "${f}_sum")
    [[ $c == "${want[$i.$p]}.000000000" ]] ||
      fail "node $i: ${f}_count moved by $c, expected ${want[$i.$p]}"
    if ((${want[$i.$p]} > 0)); then
      awk -v s="$s" -v w="$wall" 'BEGIN { exit !(s > 0 && s < w) }' ||
        fail "node $i: ${f}_sum moved by $s s, expected above 0 and below the wall time $wall s"
    else
      [[ $s == 0.000000000 ]] || fail "node $i: ${f}_sum moved by $s s without a write to count"
    fi
    total=$(awk -v a="$total" -v b="$s" 'BEGIN { printf "%.9f\n", a + b }')
    echo "node $i: $f +$c, sum +$s s"
  done
  # One client, one write at a time: the phases one node times for a write follow each other,
  # so together they fit in the wall time.
  awk -v s="$total" -v w="$wall" 'BEGIN { exit !(s < w) }' ||
    fail "node $i: its write phases add up to $total s, more than the wall time $wall s"
done

# The leader's materializer: one batch per write (each write waited for its own before the
# next was sent); the transaction inside the batch's time, the batch inside "apply to
# PostgreSQL commit". Followers write no batch.
for f in conclave_materializer_batch_seconds conclave_materializer_transaction_seconds; do
  cumulative "$L" "$f"
  c=$(delta "$L" "${f}_count")
  [[ $c == "$((N + M)).000000000" ]] || fail "node $L: ${f}_count moved by $c, expected $((N + M))"
  for i in "$follower" "$other"; do
    c=$(delta "$i" "${f}_count")
    [[ $c == 0.000000000 ]] || fail "node $i (a follower): ${f}_count moved by $c, expected 0"
  done
done
batch=$(delta "$L" conclave_materializer_batch_seconds_sum)
txn=$(delta "$L" conclave_materializer_transaction_seconds_sum)
topg=$(delta "$L" conclave_write_apply_to_postgresql_commit_seconds_sum)
echo "leader: batches $batch s, of which transactions $txn s; apply to postgresql commit $topg s"
awk -v t="$txn" -v b="$batch" -v p="$topg" 'BEGIN { exit !(t > 0 && t < b && b < p) }' ||
  fail "node $L: expected 0 < transactions ($txn s) < batches ($batch s) < apply to postgresql commit ($topg s)"

test_done metrics_phases
