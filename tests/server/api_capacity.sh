# A full state machine answers by its cause (issue 17 item 4, "no Retry-After where waiting
# cannot help"), on a real three-node cluster whose config limit is lowered to 4 on every node
# (CONCLAVE_FAILPOINT_FSM_MAX_CONFIGS, raft/fsm.h; the real limit is 1,000,000):
#  - a new key past the limit is 507 capacity_exceeded, without Retry-After, naming the limit
#    and saying that deleting makes no room; through a follower (forwarded) the same; nothing
#    of it reaches PostgreSQL or the state;
#  - existing keys can still be written; a deleted key keeps its tombstone, so deleting does
#    not free a place for a new key, but the deleted key itself can be written again;
#  - the nodes agree afterwards (same applied index and state hash).
source "$(dirname "$0")/../lib/lib.sh"
source "$(dirname "$0")/../lib/node_lib.sh"
source "$(dirname "$0")/../lib/raft_lib.sh"
make_test_db api_capacity
"$BIN" migrate up >/dev/null

export CONCLAVE_FAILPOINT_FSM_MAX_CONFIGS=4
raft_up 3
unset CONCLAVE_FAILPOINT_FSM_MAX_CONFIGS
F=$(((L % 3) + 1))
PW=api-capacity-password-1
create_user root@example.com "$PW" --admin >/dev/null
T=$(login root@example.com "$PW" "$L")
api POST /v1/projects '{"id": "cap", "name": "capacity"}' "$T" "$L"
expect_code 201
api POST /v1/projects '{"id": "cap2", "name": "another project shares the limit"}' "$T" "$L"
expect_code 201
P=/v1/projects/cap/configs

for k in a b c; do
  api PUT "$P/$k" '{"content": 1, "expected_version": 0}' "$T" "$L"
  expect_code 201
done
api PUT /v1/projects/cap2/configs/d '{"content": 1, "expected_version": 0}' "$T" "$L"
expect_code 201

# A fifth key, on the leader and through a follower: 507, no Retry-After, nothing written.
for n in "$L" "$F"; do
  api PUT "$P/e" '{"content": 1, "expected_version": 0, "request_id": "cap-e-'"$n"'"}' "$T" "$n"
  expect_error capacity_exceeded 507
  [[ -z $(header_value Retry-After) ]] || fail "$last_req: 507 must not say Retry-After"
  expect_match .message 'configs \(limit 4\)'
  expect_match .message 'write to an existing key'
done
api GET "$P/e" "" "$T" "$L"
expect_code 404
expect_eq "$(sql "SELECT count(*) FROM config_revisions WHERE project_id = 'cap' AND key = 'e'")" 0 \
  "revisions of the refused key"
# A retry with the same request id is refused again (a refusal is not recorded as an outcome),
# not answered as a duplicate.
api PUT "$P/e" '{"content": 1, "expected_version": 0, "request_id": "cap-e-'"$L"'"}' "$T" "$L"
expect_error capacity_exceeded 507

# Existing keys still take writes; deleting does not make room for a new key.
api PUT "$P/a" '{"content": 2, "expected_version": 1}' "$T" "$F"
expect_code 200
expect_json .version 2
api DELETE "$P/b?expected_version=1" "" "$T" "$L"
expect_code 200
api PUT "$P/e" '{"content": 1, "expected_version": 0}' "$T" "$L"
expect_error capacity_exceeded 507
# The deleted key itself can be written again (over its tombstone's version).
api PUT "$P/b" '{"content": 3, "expected_version": 2}' "$T" "$L"
expect_code 200
expect_json .version 3

nodes_converge "$T"
expect_eq "$(sql "SELECT count(DISTINCT (project_id, key)) FROM config_revisions")" 4 \
  "keys in config_revisions"
test_done "api_capacity"
