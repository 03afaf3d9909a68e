# A history that cannot be shortened unseen (issue 14 item 3, docs/security.md "Database
# roles"): the nodes connect as the node role, which may not UPDATE, DELETE, TRUNCATE or ALTER
# config_revisions nor disable its triggers; the owner still can, and when it deletes a
# project's newest revisions and rewinds `configs` to match, `audit verify` through the API
# (any node) and the CLI through the API report the missing tail against the head the cluster
# committed, and offline `verify --checkpoint` (database and export sources) reports it against
# a checkpoint taken before. A checkpoint whose hash was changed is a head mismatch.
source "$(dirname "$0")/../lib/lib.sh"
source "$(dirname "$0")/../lib/node_lib.sh"
source "$(dirname "$0")/../lib/raft_lib.sh"
make_test_db cli_audit_head
"$BIN" migrate up >/dev/null
PW=cli-audit-head-password-1

raft_up 3
create_user head@example.com "$PW" --admin >/dev/null
TOKEN=$(login head@example.com "$PW" "$L")
api POST /v1/projects '{"id": "hd", "name": "head"}' "$TOKEN" "$L"
expect_code 201

export CONCLAVE_ENDPOINTS="$NODE_1_URL,$NODE_2_URL,$NODE_3_URL"
export CONCLAVE_TOKEN=$TOKEN
DB_URL=$DATABASE_URL
unset DATABASE_URL
audit() { run env "$BIN" audit "$@"; }
dbsql() { DATABASE_URL=$DB_URL sql "$1"; }

# --- the nodes run as the node role, which cannot shorten the history --------------------
# Whatever role the nodes' sessions use is the one checked (a node always has its pool open).
NODE_ROLE=$(dbsql "SELECT string_agg(DISTINCT usename, ',') FROM pg_stat_activity
                   WHERE datname = current_database() AND application_name LIKE 'conclave%'")
expect_eq "$NODE_ROLE" "n_cli_audit_head_$$" "the role the nodes connect as"
as_node() { # SQL: run as the nodes' role; status and stderr in $status/$out
  run "$PG_BIN/psql" "$DB_URL user=$NODE_ROLE" -XAtq -v ON_ERROR_STOP=1 -c "$1"
}
for stmt in "UPDATE config_revisions SET actor = 'x'" "DELETE FROM config_revisions" \
  "TRUNCATE config_revisions"; do
  as_node "$stmt"
  [[ $status -ne 0 ]] || fail "the node role could run: $stmt"
  expect_out "permission denied for table config_revisions"
done
for stmt in "ALTER TABLE config_revisions DISABLE TRIGGER USER" \
  "ALTER TABLE config_revisions DISABLE TRIGGER config_revisions_no_update_delete" \
  "ALTER TABLE config_revisions ADD COLUMN x int" "DROP TABLE config_revisions"; do
  as_node "$stmt"
  [[ $status -ne 0 ]] || fail "the node role could run: $stmt"
  expect_out "must be owner of table config_revisions"
done
# ... and it owns nothing.
expect_eq "$(dbsql "SELECT count(*) FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner
                    WHERE r.rolname = '$NODE_ROLE'")" 0 "relations the node role owns"

# --- a history: five revisions, the last two creating keys (so deleting them and their
# configs rows leaves a consistent, shorter history) ----------------------------------------
for kv in "a 0 1" "b 0 1" "a 1 2" "c 0 1" "d 0 1"; do
  read -r k ev val <<<"$kv"
  api PUT "/v1/projects/hd/configs/$k" "{\"content\": $val, \"expected_version\": $ev}" \
    "$TOKEN" "$L"
  [[ $code == 200 || $code == 201 ]] || fail "$last_req: HTTP $code: $body"
done
mapfile -t REVS < <(dbsql "SELECT revision FROM config_revisions WHERE project_id = 'hd'
                           ORDER BY revision")
mapfile -t HASHES < <(dbsql "SELECT encode(hash, 'hex') FROM config_revisions
                             WHERE project_id = 'hd' ORDER BY revision")
expect_eq "${#REVS[@]}" 5 "revisions of hd"
R3=${REVS[2]} H3=${HASHES[2]} R5=${REVS[4]} H5=${HASHES[4]}

# The committed head through the API, on every node.
for n in 1 2 3; do
  api GET /v1/projects/hd/head "" "$TOKEN" "$n"
  expect_code 200
  expect_json '[.project, .revision, .hash, .materialized.revision, .materialized.hash] | tojson' \
    "[\"hd\",$R5,\"$H5\",$R5,\"$H5\"]"
done
api GET /v1/projects/hd/audit/verify "" "$TOKEN" "$L"
expect_code 200
expect_json '[.ok, .problems_total, .expected.found, .committed.revision] | tojson' \
  "[true,0,true,$R5]"

# Checkpoints before the damage, from the API and from the database.
audit checkpoint hd --out "$TMP/ck-api.json"
expect_status 0
expect_eq "$(jq -c '[.format, .project, .revision, .hash, .source]' "$TMP/ck-api.json")" \
  "[\"conclave-audit-checkpoint\",\"hd\",$R5,\"$H5\",\"api\"]" "checkpoint from the API"
run env DATABASE_URL="$DB_URL" "$BIN" audit checkpoint hd
expect_status 0
expect_eq "$(jq -c '[.project, .revision, .hash, .source]' <<<"$out")" \
  "[\"hd\",$R5,\"$H5\",\"db\"]" "checkpoint from the database"
echo "$out" >"$TMP/ck-db.json"
run env DATABASE_URL="$DB_URL" "$BIN" audit verify --checkpoint "$TMP/ck-db.json"
expect_status 0
expect_out "project hd: ok: 5 revisions"

# --- the owner deletes the newest two revisions and rewinds configs to match ----------------
dbsql "BEGIN;
  ALTER TABLE config_revisions DISABLE TRIGGER USER;
  DELETE FROM config_revisions WHERE project_id = 'hd' AND revision > $R3;
  ALTER TABLE config_revisions ENABLE TRIGGER USER;
  DELETE FROM configs WHERE project_id = 'hd' AND key IN ('c', 'd');
  COMMIT" >/dev/null
expect_eq "$(dbsql "SELECT count(*) FROM config_revisions WHERE project_id = 'hd'")" 3 \
  "revisions left"
# Link by link the shortened chain still verifies: only a comparison with a head kept outside
# PostgreSQL can tell.
TAIL="the cluster committed revision $R5 with hash $H5, but PostgreSQL's chain ends at revision $R3 with hash $H3"
for n in 1 2 3; do
  api GET /v1/projects/hd/audit/verify "" "$TOKEN" "$n"
  expect_code 200
  expect_json '[.ok, .expected.found] | tojson' '[false,false]'
  expect_json "[.problems[] | select(.revision == $R5) | .problem] | tojson" \
    "[\"missing tail: $TAIL\"]"
done
audit verify --project hd
expect_status 8
expect_out "project hd: FAILED at revision $R5: missing tail: the cluster committed revision $R5 with hash $H5, but the history ends at revision $R3 with hash $H3"

CK="the checkpoint names revision $R5 with hash $H5"
run env DATABASE_URL="$DB_URL" "$BIN" audit verify --checkpoint "$TMP/ck-api.json"
expect_status 8
expect_out "project hd: FAILED at revision $R5: missing tail: $CK, but PostgreSQL's chain ends at revision $R3 with hash $H3"
run env DATABASE_URL="$DB_URL" "$BIN" audit export --project hd --out "$TMP/short.jsonl"
expect_status 0
run env -u DATABASE_URL CONCLAVE_ENDPOINTS=http://127.0.0.1:9 "$BIN" audit verify \
  --file "$TMP/short.jsonl" --checkpoint "$TMP/ck-db.json"
expect_status 8
expect_out "project hd: FAILED at revision $R5: missing tail: $CK, but the history ends at revision $R3 with hash $H3"

# A checkpoint of revision 3 still holds; the same revision with another hash does not.
jq -c --argjson r "$R3" --arg h "$H3" '.revision = $r | .hash = $h' "$TMP/ck-db.json" \
  >"$TMP/ck3.json"
run env DATABASE_URL="$DB_URL" "$BIN" audit verify --checkpoint "$TMP/ck3.json"
expect_status 0
BAD=${HASHES[0]}
jq -c --arg h "$BAD" '.hash = $h' "$TMP/ck3.json" >"$TMP/ck3bad.json"
run env DATABASE_URL="$DB_URL" "$BIN" audit verify --checkpoint "$TMP/ck3bad.json"
expect_status 8
expect_out "head mismatch: the checkpoint names revision $R3 with hash $BAD, but PostgreSQL holds revision $R3 with hash $H3"
run env -u DATABASE_URL CONCLAVE_ENDPOINTS=http://127.0.0.1:9 "$BIN" audit verify \
  --file "$TMP/short.jsonl" --checkpoint "$TMP/ck3bad.json"
expect_status 8
expect_out "head mismatch: the checkpoint names revision $R3 with hash $BAD, but the history holds revision $R3 with hash $H3"

# Bad input: a file that is not a checkpoint, a missing one, a checkpoint of another project.
echo '{"format": "something-else"}' >"$TMP/notck.json"
run env DATABASE_URL="$DB_URL" "$BIN" audit verify --checkpoint "$TMP/notck.json"
expect_status 2
expect_out "is not a checkpoint: its \"format\" is not conclave-audit-checkpoint"
run env DATABASE_URL="$DB_URL" "$BIN" audit verify --checkpoint "$TMP/none.json"
expect_status 3
run env DATABASE_URL="$DB_URL" "$BIN" audit verify --project other --checkpoint "$TMP/ck3.json"
expect_status 2
expect_out "is a checkpoint of project hd, not other"

test_done cli_audit_head
