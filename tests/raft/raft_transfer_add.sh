# `conclave cluster add` right after `conclave cluster transfer` (issue 15 item 4). Three
# rounds hand the leadership to the next node, so that each of nodes 1, 2 and 3 leads once,
# then at once add a fresh node through the CLI (it must become a voter) and remove it again.
# The client's endpoints are nodes 1, 2, 3 in that order and a follower refuses a membership
# change with 503 not_leader: the round where node 3, the last endpoint, leads is the one the
# client used to lose (it asked node 1, node 2, then node 1 again, never node 3; see the
# "Changing the membership" section of docs/operations.md).
source "$(dirname "$0")/../lib/lib.sh"
source "$(dirname "$0")/../lib/node_lib.sh"
source "$(dirname "$0")/../lib/raft_lib.sh"
make_test_db raft_transfer_add
"$BIN" migrate up >/dev/null

raft_up 6
create_user admin@example.com "admin-password-1" --admin >/dev/null
token=$(login admin@example.com "admin-password-1" "$L")
export CONCLAVE_ENDPOINTS="$NODE_1_URL,$NODE_2_URL,$NODE_3_URL" CONCLAVE_TOKEN=$token
unset CONCLAVE_CONFIG CONCLAVE_API_KEY CONCLAVE_PROJECT CONCLAVE_OUTPUT

leader=$L
led=" "
for new in 4 5 6; do
  target=$(((leader % 3) + 1))
  run "$BIN" cluster transfer "$target"
  expect_status 0
  leader=$(wait_leader 20) || fail "no ready leader after the transfer to node $target"
  expect_eq "$leader" "$target" "leader after cluster transfer $target"
  # Started only now: wait_leader wants every live node to name the leader, and a node that
  # is not a member yet names none.
  raft_config "$new" ""
  raft_start "$new"
  led+="$leader "
  rport="RPORT_$new"
  run "$BIN" cluster add "$new" "127.0.0.1:${!rport}"
  expect_status 0
  expect_out "node $new (127.0.0.1:${!rport}) is now a voter"
  run "$BIN" cluster status -o json
  expect_status 0
  expect_eq "$(jq -c '[.members[] | "\(.id):\(.role)"] | sort' <<<"$out")" \
    "[\"1:voter\",\"2:voter\",\"3:voter\",\"$new:voter\"]" "members after adding node $new"
  run "$BIN" cluster remove "$new"
  expect_status 0
  expect_out "node $new is no longer a member"
  raft_kill "$new" KILL
done
# Every node led one round, the last endpoint (node 3) among them.
expect_eq "$led" " $(((L % 3) + 1)) $((((L + 1) % 3) + 1)) $L " "the leaders of the three rounds"
[[ $led == *" 3 "* ]] || fail "node 3 never led a round: $led"
test_done raft_transfer_add
