# Backup and restore of a whole cluster (operations issue, item 7; docs/backup.md), end to end
# on three real nodes:
#
#   1. History: a project, keys with several versions, a delete, an API key.
#   2. Backup, in the order of docs/backup.md: an audit checkpoint (kept outside the
#      database), pg_dump -Fc of the database and pg_dumpall --roles-only, then one follower
#      stopped (SIGTERM), its data directory copied with the node files (config, secret, PKI),
#      and restarted.
#   3. More writes after the backup, and a second checkpoint that names them.
#   4. Disaster: every node stopped, the database dropped, every node's data directory, config,
#      secret and PKI files deleted.
#   5. Restore onto a second, empty PostgreSQL server: the roles, then the dump into a new
#      database; the node files back, the nodes pointed at the new database, the one data
#      directory copied to every node, the nodes started. Proof: the cluster serves exactly
#      the state of the backup (API and PostgreSQL), /ready 200, audit verify clean (API, CLI
#      through the API and from the database), `verify --checkpoint` of the backup's
#      checkpoint exits 0 and the later checkpoint reports the missing tail (exit 8), the
#      session token and API key of the backup still work, new writes are acknowledged and
#      land in PostgreSQL, the nodes converge.
#   6. A backup with a write between the dump and the copy of the data directory (the window
#      of step 2), restored into a new database: the restored cluster refuses writes with 503
#      postgresql_behind naming that write's revision, `conclave admin accept-postgresql-loss`
#      with the range /ready names resolves it, writes resume, a retry of the lost write gets
#      410 write_lost, and audit verify (also with --checkpoint) reports the accepted loss
#      (exit 8).
#
# Every node this test starts is stopped by its pid (node_lib.sh's exit hook); all traffic is
# on 127.0.0.1.
source "$(dirname "$0")/../lib/lib.sh"
source "$(dirname "$0")/../lib/node_lib.sh"
source "$(dirname "$0")/../lib/raft_lib.sh"

make_test_db backup_restore
DB=${DATABASE_URL##*dbname=}
NODE_ROLE=${NODE_DATABASE_URL##*user=}
"$BIN" migrate up >/dev/null
PW=backup-restore-password-1
T0=$SECONDS
PGSERVER=$CONCLAVE_TEST_PG

# The restore target of the first disaster: a second, empty PostgreSQL server of this test
# (its own port and data directory, stopped by its pid at exit, after the nodes).
PG2=$(mktemp -d /tmp/conclave-backup-pg.XXXXXX)
chmod 755 "$PG2"
at_exit 'stop_nodes; pg_stop "$PG2/data"; rm -rf "$PG2"'
pg_init "$PG2/data" || fail "initdb of the second server failed"
PG2_PORT=
for ((i = 0; i < 8; i++)); do
  p=$((10000 + RANDOM % 22000))
  pg_port_free "$p" || continue
  if pg_start "$PG2/data" "$p" "$PG2/postgres.log" "-c fsync=off -c max_connections=100"; then
    PG2_PORT=$p
    break
  fi
done
[[ -n $PG2_PORT ]] || fail "could not start the second PostgreSQL server"
PG2_URL="host=127.0.0.1 port=$PG2_PORT user=conclave dbname=postgres"
expect_eq "$("$PG_BIN/psql" "$PG2_URL" -XAtq -c "SELECT count(*) FROM pg_roles
  WHERE rolname = 'conclave_node'")" 0 "conclave_node on the new server before the restore"

raft_up 3
create_user ops@example.com "$PW" --admin >/dev/null
TOKEN=$(login ops@example.com "$PW" "$L")
api POST /v1/projects '{"id": "bk", "name": "Backup"}' "$TOKEN" "$L"
expect_code 201
APIKEY=$(jq -r .api_key.key <<<"$body")

export CONCLAVE_TOKEN=$TOKEN
endpoints() { export CONCLAVE_ENDPOINTS="$NODE_1_URL,$NODE_2_URL,$NODE_3_URL"; }
endpoints

# put KEY CONTENT EXPECTED [REQUEST_ID]: a write through the leader, which must succeed.
put_ok() {
  local rid=${4:-$(rand_hex 16)}
  api PUT "/v1/projects/bk/configs/$1" \
    "{\"content\": $2, \"expected_version\": $3, \"request_id\": \"$rid\"}" "$TOKEN" "$L"
  [[ $code == 200 || $code == 201 ]] || fail "$last_req: expected 200 or 201, got $code: $body"
}

# state NODE: the project's live configs as NODE serves them (linearizable), one compact line.
state() {
  api GET /v1/projects/bk/configs "" "$TOKEN" "${1:-$L}"
  expect_code 200
  jq -c '[.items[] | {key, version, revision, content}]' <<<"$body"
}
# pg_state: the same from PostgreSQL's configs table (live keys only).
pg_state() {
  sql "SELECT coalesce(json_agg(json_build_object('key', key, 'version', version,
         'revision', last_revision, 'content', content) ORDER BY key), '[]')
       FROM configs WHERE project_id = 'bk' AND NOT deleted"
}

# metric NODE NAME: the value of an unlabelled series of NODE's /metrics.
metric() {
  local url_var="NODE_${1}_URL"
  curl -s --max-time 5 "${!url_var}/metrics" | awk -v n="$2" '$1 == n { print $2 }'
}

# wait_trimmed NODE: every revision left NODE's queue (materialized(N) trimmed them), bounded.
wait_trimmed() {
  local i
  for ((i = 0; i < 100; i++)); do
    [[ $(metric "$1" conclave_fsm_pending_revisions) == 0 ]] && return 0
    sleep 0.1
  done
  fail "node $1: revisions still queued after 10 s"
}

# wait_ready NODE CODE [ERROR]: polls NODE's /ready (bounded, 20 s) until it answers CODE
# (with error code ERROR); leaves that answer in code/body.
wait_ready() {
  local i
  for ((i = 0; i < 100; i++)); do
    api GET /ready "" "" "$1"
    if [[ $code == "$2" && ( -z ${3-} || $(jq -r .error <<<"$body" 2>/dev/null) == "$3" ) ]]; then
      return 0
    fi
    sleep 0.2
  done
  fail "node $1: /ready should answer $2 ${3-} within 20 s, got $code: $body"
}

# stop_cluster: SIGTERM to every node, followers first (each must exit 0).
stop_cluster() {
  local i l
  l=$(wait_leader 10) || l=
  for i in $(live_nodes); do
    [[ $i == "$l" ]] || raft_kill "$i" TERM
  done
  [[ -z $l ]] || raft_kill "$l" TERM
  [[ -z $(live_nodes) ]] || fail "nodes still running after stop_cluster: $(live_nodes)"
}

# backup SET: steps 2 and 3 of docs/backup.md into $TMP/backup-SET: the database (dump and
# roles), then a follower's data directory (stopped, copied, restarted) and the node files.
# BETWEEN, when set, is run between the dump and the copy (the window of the procedure).
backup() {
  local dir=$TMP/backup-$1 f n cursor applied=0
  mkdir -p "$dir"
  "$PG_BIN/pg_dump" -Fc -d "$DATABASE_URL" -f "$dir/conclave.dump" || fail "pg_dump failed"
  "$PG_BIN/pg_dumpall" -d "$PGSERVER" --roles-only -f "$dir/roles.sql" ||
    fail "pg_dumpall --roles-only failed"
  grep -q 'CREATE ROLE conclave_node;' "$dir/roles.sql" || fail "roles.sql lacks conclave_node"
  # The raft index the copied node must have applied: the cursor read after the dump is at
  # or above the dump's.
  cursor=$(sql "SELECT raft_index FROM materializer_cursor")
  if [[ -n ${BETWEEN:-} ]]; then
    eval "$BETWEEN"
  fi
  L=$(wait_leader 20) || fail "no leader before the node copy"
  f=$((L % 3 + 1)) # a follower
  for ((n = 0; n < 100; n++)); do
    applied=$(health "$f" applied_index)
    [[ $applied =~ ^[0-9]+$ ]] && ((applied >= cursor)) && break
    sleep 0.1
  done
  ((applied >= cursor)) || fail "node $f applied $applied, below the dump's cursor $cursor"
  raft_kill "$f" TERM
  tar -C "$TMP" -cf "$dir/node-data.tar" "rnode$f" || fail "tar of node $f's data failed"
  echo "$f" >"$dir/node-data.from"
  tar -C "$TMP" -cf "$dir/node-files.tar" secret pki rnode1.json rnode2.json rnode3.json ||
    fail "tar of the node files failed"
  raft_start "$f"
  L=$(wait_leader 20) || fail "no leader after node $f came back"
}

# restore SET SERVER NEWDB [roles]: steps 4 and 5 of docs/backup.md: with "roles", the roles
# of the backup applied to SERVER (a new PostgreSQL server has none of them); the dump into a
# new database NEWDB there, the nodes' database.url pointed at it, the node files back, the
# backed-up data directory on every node, start.
restore() {
  local dir=$TMP/backup-$1 server=$2 newdb=$3 i from url
  [[ -z $(live_nodes) ]] || fail "restore with nodes running"
  if [[ ${4-} == roles ]]; then
    # Without ON_ERROR_STOP: the role psql connects as exists already and is reported so.
    "$PG_BIN/psql" "$server" -Xq -f "$dir/roles.sql" >"$TMP/roles.log" 2>&1 || true
    expect_eq "$("$PG_BIN/psql" "$server" -XAtq -c "SELECT count(*) FROM pg_roles
      WHERE rolname IN ('conclave_node', '$NODE_ROLE')")" 2 "roles restored on the new server"
  fi
  "$PG_BIN/psql" "$server" -XAtq -v ON_ERROR_STOP=1 -c "CREATE DATABASE $newdb" \
    >/dev/null || fail "create database $newdb"
  PGSERVER=$server
  export DATABASE_URL="$server dbname=$newdb"
  export NODE_DATABASE_URL="$server dbname=$newdb user=$NODE_ROLE"
  TEST_DB_OWNER_URL=$DATABASE_URL
  "$PG_BIN/pg_restore" --exit-on-error -d "$DATABASE_URL" "$dir/conclave.dump" ||
    fail "pg_restore into $newdb failed"
  # The node files come back as they were (secret, PKI, configs), then the database URL moves.
  tar -C "$TMP" -xf "$dir/node-files.tar" || fail "untar of the node files failed"
  for i in 1 2 3; do
    url=$(node_db_url)
    jq --arg u "$url" '.database.url = $u' "$TMP/rnode$i.json" >"$TMP/rnode$i.json.new"
    mv "$TMP/rnode$i.json.new" "$TMP/rnode$i.json"
  done
  # One node's data directory, copied to every node.
  from=$(<"$dir/node-data.from")
  rm -rf "$TMP/restore-data"
  mkdir -p "$TMP/restore-data"
  tar -C "$TMP/restore-data" -xf "$dir/node-data.tar" || fail "untar of the node data failed"
  for i in 1 2 3; do
    rm -rf "$TMP/rnode$i"
    cp -a "$TMP/restore-data/rnode$from" "$TMP/rnode$i"
  done
  for i in 1 2 3; do
    raft_start "$i"
  done
  L=$(wait_leader 30) || fail "no leader after the restore"
  endpoints
}

# --- 1. history ------------------------------------------------------------------------
put_ok app.db '{"pool": 10}' 0
put_ok app.db '{"pool": 20}' 1
put_ok app.cache '{"ttl": 60}' 0
put_ok feature.x 'true' 0
api DELETE "/v1/projects/bk/configs/feature.x?expected_version=1" "" "$TOKEN" "$L"
[[ $code == 200 || $code == 204 ]] || fail "$last_req: delete: $code: $body"
put_ok app.db '{"pool": 30}' 2
api GET /v1/projects/bk/configs/app.db "" "hdr:Bearer $APIKEY" "$L"
expect_code 200

# --- 2. backup ---------------------------------------------------------------------------
wait_ready "$L" 200
run "$BIN" audit checkpoint bk --out "$TMP/ck-backup.json"
expect_status 0
R1=$(jq -r .revision "$TMP/ck-backup.json")
H1=$(jq -r .hash "$TMP/ck-backup.json")
STATE1=$(state)
PGSTATE1=$(pg_state)
backup 1
expect_eq "$(state)" "$STATE1" "state after the backup (no write during it)"
echo "backup 1 taken at revision $R1 (node $(<"$TMP/backup-1/node-data.from")'s data)," \
  "$((SECONDS - T0)) s"

# --- 3. more writes, and a later checkpoint ---------------------------------------------
put_ok app.db '{"pool": 40}' 3
put_ok app.new '{"added": "after the backup"}' 0
run "$BIN" audit checkpoint bk --out "$TMP/ck-late.json"
expect_status 0
R2=$(jq -r .revision "$TMP/ck-late.json")
H2=$(jq -r .hash "$TMP/ck-late.json")
((R2 == R1 + 2)) || fail "late checkpoint at revision $R2, expected $((R1 + 2))"

# --- 4. disaster: every node and the database gone ---------------------------------------
stop_cluster
"$PG_BIN/psql" "$CONCLAVE_TEST_PG" -XAtq -v ON_ERROR_STOP=1 -c "DROP DATABASE $DB WITH (FORCE)" \
  >/dev/null || fail "drop database $DB"
rm -rf "$TMP/rnode1" "$TMP/rnode2" "$TMP/rnode3" "$TMP/secret" "$TMP/pki" "$TMP"/rnode?.json

# --- 5. restore, and the proof -------------------------------------------------------------
restore 1 "$PG2_URL" conclave roles
wait_ready "$L" 200
for i in 1 2 3; do
  expect_eq "$(state "$i")" "$STATE1" "node $i serves the backed-up state"
done
expect_eq "$(pg_state)" "$PGSTATE1" "postgresql's configs after the restore"
expect_eq "$(metric "$L" conclave_fsm_revision)" "$R1" "the state machine's last revision"
api GET /v1/projects/bk/audit/verify "" "$TOKEN" "$L"
expect_code 200
expect_json '[.ok, .problems_total, .revisions_checked] | tojson' "[true,0,$R1]"
run "$BIN" audit verify --project bk
expect_status 0
run env DATABASE_URL="$DATABASE_URL" "$BIN" audit verify
expect_status 0
run env DATABASE_URL="$DATABASE_URL" "$BIN" audit verify --checkpoint "$TMP/ck-backup.json"
expect_status 0
expect_out "project bk: ok: $R1 revisions"
run env DATABASE_URL="$DATABASE_URL" "$BIN" audit verify --checkpoint "$TMP/ck-late.json"
expect_status 8
expect_out "project bk: FAILED at revision $R2: missing tail: the checkpoint names revision $R2 \
with hash $H2, but PostgreSQL's chain ends at revision $R1 with hash $H1"
# The credentials of the backup still work: sessions and API keys are HMACs under the
# restored secret.
api GET /v1/projects/bk/configs/app.db "" "hdr:Bearer $APIKEY" "$L"
expect_code 200
expect_json .version 3
# New writes: they continue the backed-up history.
put_ok app.db '{"pool": 50}' 3
expect_json .revision $((R1 + 1))
put_ok app.after '{"restored": true}' 0
expect_json .revision $((R1 + 2))
wait_trimmed "$L"
expect_eq "$(sql "SELECT max(revision) FROM config_revisions WHERE project_id = 'bk'")" \
  $((R1 + 2)) "postgresql holds the writes after the restore"
run "$BIN" audit verify --project bk
expect_status 0
run env DATABASE_URL="$DATABASE_URL" "$BIN" audit verify --checkpoint "$TMP/ck-backup.json"
expect_status 0
nodes_converge "$TOKEN" 30
echo "restore 1 proven (revision $R1 served, writes continue at $((R1 + 1))), $((SECONDS - T0)) s"

# --- 6. a write in the window between the dump and the node copy -------------------------
R3=$((R1 + 2))
# The write is trimmed on every node before the copy (materialized(N) applied), as it soon
# is on a running cluster: otherwise the restored nodes would still queue it and write it.
BETWEEN='put_ok app.window "{\"lost\": true}" 0 window-write-1
  WIN_REV=$(jq -r .revision <<<"$body")
  for n in 1 2 3; do wait_trimmed "$n"; done'
backup 2
expect_eq "$WIN_REV" $((R3 + 1)) "revision of the write in the window"
stop_cluster
restore 2 "$PG2_URL" conclave_r2
wait_ready "$L" 503 postgresql_behind
expect_match .message "lacks revisions $WIN_REV\\.\\.$WIN_REV "
CMD=$(jq -r .message <<<"$body" |
  grep -o 'accept-postgresql-loss .*--raft-indexes [0-9]*\.\.[0-9]*' || true)
[[ -n $CMD ]] || fail "/ready does not name the accept-postgresql-loss command: $body"
REVS=$(grep -o -- '--revisions [0-9.]*' <<<"$CMD" | cut -d' ' -f2)
IDXS=$(grep -o -- '--raft-indexes [0-9.]*' <<<"$CMD" | cut -d' ' -f2)
expect_eq "$REVS" "$WIN_REV..$WIN_REV" "the range /ready names"
api PUT /v1/projects/bk/configs/app.db '{"content": {"pool": 60}, "expected_version": 4}' \
  "$TOKEN" "$L"
expect_error postgresql_behind 503
# Reads keep working: the state machine holds the window's write, PostgreSQL does not.
api GET /v1/projects/bk/configs/app.window "" "$TOKEN" "$L"
expect_code 200
expect_eq "$(sql "SELECT count(*) FROM config_revisions WHERE key = 'app.window'")" 0 \
  "the window's write in the restored database"
run "$BIN" admin accept-postgresql-loss --config "$TMP/rnode1.json" --revisions "$REVS" \
  --raft-indexes "$IDXS" --reason "backup 2: write between the dump and the node copy"
expect_status 0
expect_out "accepted the loss of revisions $REVS"
wait_ready "$L" 200
put_ok app.db '{"pool": 60}' 4
expect_json .revision $((WIN_REV + 1))
api PUT /v1/projects/bk/configs/app.window \
  '{"content": {"lost": true}, "expected_version": 0, "request_id": "window-write-1"}' \
  "$TOKEN" "$L"
expect_error write_lost 410
wait_trimmed "$L"
run "$BIN" audit verify --project bk
expect_status 8
expect_out "project bk: FAILED at revision $((WIN_REV + 1)) (key app.db): prev_hash mismatch"
# verify --checkpoint checks the whole chain, not only up to the checkpoint: the break after
# the accepted loss fails it too, although the checkpoint's revision is there with its hash.
run env DATABASE_URL="$DATABASE_URL" "$BIN" audit verify --checkpoint "$TMP/ck-backup.json"
expect_status 8
expect_out "project bk: FAILED at revision $((WIN_REV + 1)) (key app.db): prev_hash mismatch"
expect_eq "$(sql "SELECT revision_from || '..' || revision_to FROM postgresql_losses")" "$REVS" \
  "the accepted loss is recorded"
nodes_converge "$TOKEN" 30
echo "total $((SECONDS - T0)) s"
test_done backup_restore
