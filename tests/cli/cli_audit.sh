# `conclave audit verify | replay | export` against a real three-node cluster and its
# PostgreSQL: verify through the API and directly from the database, replay at several past
# points compared with what the API answered at those points, an export verified offline (no
# server, no database), and every kind of damage (a tampered row, a deleted row, a re-ordered
# chain; in an export file: an edited, a missing, a swapped line and a cut-off tail) found and
# named. Also the error paths and their exit statuses (docs/cli.md).
source "$(dirname "$0")/../lib/lib.sh"
source "$(dirname "$0")/../lib/node_lib.sh"
source "$(dirname "$0")/../lib/raft_lib.sh"
make_test_db cli_audit
"$BIN" migrate up >/dev/null
T_START=$(date +%s)
PW=cli-audit-password-1

raft_up 3
create_user auditor@example.com "$PW" --admin >/dev/null
TOKEN=$(login auditor@example.com "$PW" "$L")
api POST /v1/projects '{"id": "aud", "name": "audited"}' "$TOKEN" "$L"
expect_code 201
api POST /v1/projects '{"id": "quiet", "name": "no revisions"}' "$TOKEN" "$L"
expect_code 201

# The CLI finds the cluster and the session in the environment; DATABASE_URL stays set only
# where a test wants the database as the source.
export CONCLAVE_ENDPOINTS="$NODE_1_URL,$NODE_2_URL,$NODE_3_URL"
export CONCLAVE_TOKEN=$TOKEN
DB_URL=$DATABASE_URL
unset DATABASE_URL
audit() { run env "$BIN" audit "$@"; }
dbsql() { DATABASE_URL=$DB_URL sql "$1"; }

# --- a history, with the state the API shows after each write -------------------------------
declare -a POINT_REV POINT_STATE
write() { # METHOD PATH BODY
  api "$1" "/v1/projects/aud/configs$2" "$3" "$TOKEN" "$L"
  [[ $code == 200 || $code == 201 ]] || fail "$last_req: HTTP $code: $body"
  local rev
  rev=$(jq -r .revision <<<"$body")
  api GET "/v1/projects/aud/configs?limit=1000" "" "$TOKEN" "$L"
  expect_code 200
  POINT_REV+=("$rev")
  POINT_STATE+=("$(jq -cS '[.items[] | {key, version, content}]' <<<"$body")")
}
write PUT /app.db '{"content": {"host": "db1", "port": 5432}, "expected_version": 0}'
write PUT /app.cache '{"content": ["a", 1, 2.5, null], "expected_version": 0}'
write PUT /app.db '{"content": {"host": "db2", "port": 5432}, "expected_version": 1}'
write PUT /flags '{"content": "on", "expected_version": 0}'
# Revision numbers are cluster-wide: a write to another project leaves a gap in aud's, which
# the "between revisions" replay below lands in.
api POST /v1/projects '{"id": "other", "name": "gap maker"}' "$TOKEN" "$L"
expect_code 201
api PUT /v1/projects/other/configs/x '{"content": 1, "expected_version": 0}' "$TOKEN" "$L"
expect_code 201
write DELETE '/app.cache?expected_version=1' ''
write PUT /app.db '{"content": {"host": "db3", "nested": {"z": 1, "a": [true]}}, "expected_version": 2}'
write POST /app.db/rollback '{"target_version": 1, "expected_version": 3}'
write PUT /app.cache '{"content": {"again": true}, "expected_version": 2}'
N=${#POINT_REV[@]}
NREV=$(dbsql "SELECT count(*) FROM config_revisions WHERE project_id = 'aud'")
expect_eq "$NREV" "$N" "revisions in PostgreSQL"

# --- verify: through the API, and from PostgreSQL -------------------------------------------
audit verify --project aud
expect_status 0
expect_out "project aud: ok: $N revisions, 3 keys, chain head"
audit verify --project aud -o json
expect_status 0
jq -e ".ok and .source == \"api\" and .projects[0].revisions_checked == $N and
  .projects[0].configs_compared and .projects[0].problem == null" <<<"$out" >/dev/null ||
  fail "verify -o json: $out"
HEAD=$(dbsql "SELECT encode(hash, 'hex') FROM config_revisions WHERE project_id = 'aud' ORDER BY revision DESC LIMIT 1")
expect_eq "$(jq -r '.projects[0].chain_head' <<<"$out")" "$HEAD" "chain head"
# Without --project: every project the caller sees, the empty one included.
audit verify -o json
expect_status 0
expect_eq "$(jq -c '[.projects[] | [.project, .revisions_checked]]' <<<"$out")" "[[\"aud\",$N],[\"other\",1],[\"quiet\",0]]" "all projects"
DATABASE_URL=$DB_URL audit verify --project aud -o json
expect_status 0
jq -e ".ok and .source == \"db\" and .projects[0].revisions_checked == $N" <<<"$out" >/dev/null ||
  fail "verify from the database: $out"
audit verify --project aud --source db --database-url "$DB_URL"
expect_status 0

# --- replay at every past point equals what the API said then -------------------------------
for ((k = 0; k < N; k++)); do
  audit replay --project aud --as-of-revision "${POINT_REV[k]}" -o json
  expect_status 0
  got=$(jq -cS '[.configs[] | {key, version, content}] | sort_by(.key)' <<<"$out")
  want=$(jq -cS 'sort_by(.key)' <<<"${POINT_STATE[k]}")
  expect_eq "$got" "$want" "replay as of revision ${POINT_REV[k]} (write $((k + 1)))"
  expect_eq "$(jq -r .as_of_revision <<<"$out")" "${POINT_REV[k]}" "as_of_revision"
done
# Between two revisions: the state after the earlier one.
((POINT_REV[4] > POINT_REV[3] + 1)) || fail "no gap between revisions ${POINT_REV[3]} and ${POINT_REV[4]}"
audit replay --project aud --as-of-revision $((POINT_REV[3] + 1)) -o json
expect_eq "$(jq -cS '[.configs[] | {key, version, content}] | sort_by(.key)' <<<"$out")" \
  "$(jq -cS 'sort_by(.key)' <<<"${POINT_STATE[3]}")" "replay between revisions"
# Before the first revision: nothing.
audit replay --project aud --as-of-revision 0 -o json
expect_status 0
expect_eq "$(jq -c .configs <<<"$out")" "[]" "replay before the first revision"
# As of a time: the created_at of the fifth revision.
T5=$(dbsql "SELECT to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') FROM config_revisions WHERE revision = ${POINT_REV[4]}")
audit replay --project aud --as-of-time "$T5" -o json
expect_status 0
expect_eq "$(jq -cS '[.configs[] | {key, version, content}] | sort_by(.key)' <<<"$out")" \
  "$(jq -cS 'sort_by(.key)' <<<"${POINT_STATE[4]}")" "replay as of $T5"
# --out DIR: one file per key holding the content; --key: one key.
audit replay --project aud --as-of-revision "${POINT_REV[5]}" --out "$TMP/at6"
expect_status 0
expect_out "wrote 2 configs of project aud as of revision ${POINT_REV[5]}"
expect_eq "$(ls "$TMP/at6" | tr '\n' ' ')" "app.db.json flags.json " "replayed files"
expect_eq "$(jq -cS . "$TMP/at6/app.db.json")" \
  "$(jq -cS '.[] | select(.key == "app.db") | .content' <<<"${POINT_STATE[5]}")" "app.db.json"
audit replay --project aud --key app.cache --as-of-revision "${POINT_REV[2]}" -o json
expect_status 0
expect_eq "$(jq -c '[.configs[] | [.key, .version]]' <<<"$out")" '[["app.cache",1]]' "--key"
audit replay --project aud --key app.cache --as-of-revision "${POINT_REV[4]}"
expect_status 3
expect_out "key app.cache did not exist in project aud as of revision ${POINT_REV[4]}"
audit replay --project aud
expect_status 0
expect_out "project aud as of revision ${POINT_REV[N - 1]}: 3 live configs"
expect_out '"host": "db1"'

# --- export, and verify it offline ----------------------------------------------------------
audit export --project aud --out "$TMP/aud.jsonl"
expect_status 0
expect_eq "$(wc -l <"$TMP/aud.jsonl")" $((N + 2)) "export lines (header, revisions, trailer)"
expect_eq "$(head -1 "$TMP/aud.jsonl" | jq -r '[.format, .format_version, .project] | join(" ")')" \
  "conclave-audit-export 1 aud" "export header"
expect_eq "$(tail -1 "$TMP/aud.jsonl" | jq -r '[.end, .revisions, .chain_head] | join(" ")')" \
  "true $N $HEAD" "export trailer"
DATABASE_URL=$DB_URL run "$BIN" audit export --project aud
expect_status 0
expect_eq "$(sed 1d <<<"$out")" "$(sed 1d "$TMP/aud.jsonl")" "export from the database equals the API's"
# The progress bar: drawn on a terminal (a pseudo-terminal made by script(1)), never into a
# pipe; the file written is the same either way.
set +e
tty_out=$(script -qec "$(printf '%q ' "$BIN" audit export --project aud --out "$TMP/tty.jsonl")" /dev/null 2>&1)
tty_status=$?
set -e
expect_eq "$tty_status" 0 "export on a terminal"
[[ $tty_out =~ \[[#.]{30}\]\ +[0-9]+%\ [0-9]+/$N\ revisions ]] || fail "no progress bar on a terminal: $tty_out"
expect_eq "$(sed 1d "$TMP/tty.jsonl")" "$(sed 1d "$TMP/aud.jsonl")" "export written on a terminal"
run "$BIN" audit export --project aud --out "$TMP/pipe.jsonl"
[[ $out == "exported $N revisions of project aud to $TMP/pipe.jsonl (chain head $HEAD)" ]] || fail "export into a pipe should print only its summary: $out"
offline() { # FILE: verify with no reachable server and no database
  run env -u DATABASE_URL CONCLAVE_ENDPOINTS=http://127.0.0.1:9 CONCLAVE_TOKEN= \
    "$BIN" audit verify --file "$1"
}
offline "$TMP/aud.jsonl"
expect_status 0
expect_out "project aud: ok: $N revisions, 3 keys, chain head $HEAD (configs not compared"
run env -u DATABASE_URL CONCLAVE_ENDPOINTS=http://127.0.0.1:9 "$BIN" audit replay \
  --file "$TMP/aud.jsonl" --as-of-revision "${POINT_REV[1]}" -o json
expect_status 0
expect_eq "$(jq -cS '[.configs[] | {key, version, content}] | sort_by(.key)' <<<"$out")" \
  "$(jq -cS 'sort_by(.key)' <<<"${POINT_STATE[1]}")" "replay from the export"

damage() { # NAME SED_OR_CMD: a damaged copy of the export
  local f="$TMP/$1.jsonl"
  eval "$2" <"$TMP/aud.jsonl" >"$f"
  echo "$f"
}
R3=${POINT_REV[2]}
f=$(damage edited "jq -c 'if .revision == $R3 then .content.host = \"evil\" else . end'")
offline "$f"
expect_status 8
expect_out "project aud: FAILED at revision $R3 (key app.db): hash mismatch"
f=$(damage missing "sed '4d'")
offline "$f"
expect_status 8
expect_out "FAILED at revision ${POINT_REV[3]} (key flags): prev_hash mismatch"
f=$(damage swapped "awk 'NR == 3 { held = \$0; next } { print } NR == 4 { print held }'")
cmp -s "$f" "$TMP/aud.jsonl" && fail "the swapped copy equals the export"
offline "$f"
expect_status 8
expect_out "FAILED at revision ${POINT_REV[2]}"
f=$(damage cut "head -n -1")
offline "$f"
expect_status 8
expect_out "without its trailer line: it is truncated"
f=$(damage cut2 "head -n -2")
offline "$f"
expect_status 8
expect_out "truncated"
f=$(damage notjson "sed '3s/^/garbage/'")
offline "$f"
expect_status 8
expect_out "line 3: not a JSON object"
echo '{"hello": 1}' >"$TMP/other.json"
offline "$TMP/other.json"
expect_status 8
expect_out "is not a conclave audit export"
offline "$TMP/none.jsonl"
expect_status 3
expect_out "cannot open export file $TMP/none.jsonl"

# --- damage in PostgreSQL, found through the API and from the database ----------------------
tamper() { dbsql "ALTER TABLE config_revisions DISABLE TRIGGER USER; $1; ALTER TABLE config_revisions ENABLE TRIGGER USER" >/dev/null; }
both_fail() { # EXPECTED_TEXT
  audit verify --project aud
  expect_status 8
  expect_out "$1"
  DATABASE_URL=$DB_URL audit verify --project aud
  expect_status 8
  expect_out "project aud: FAILED at revision"
}
# A tampered row.
tamper "UPDATE config_revisions SET content = '{\"host\":\"evil\",\"port\":5432}' WHERE revision = $R3"
both_fail "FAILED at revision $R3 (key app.db): hash mismatch"
audit replay --project aud --as-of-revision "${POINT_REV[5]}"
expect_status 8
expect_out "does not verify up to that point"
tamper "UPDATE config_revisions SET content = '{\"host\":\"db2\",\"port\":5432}' WHERE revision = $R3"
audit verify --project aud
expect_status 0
# A deleted row (kept aside and put back).
R4=${POINT_REV[3]}
tamper "CREATE TABLE kept AS SELECT * FROM config_revisions WHERE revision = $R4; DELETE FROM config_revisions WHERE revision = $R4"
both_fail "FAILED at revision ${POINT_REV[4]}"
expect_out "prev_hash mismatch"
tamper "INSERT INTO config_revisions SELECT * FROM kept; DROP TABLE kept"
audit verify --project aud
expect_status 0
# A re-ordered chain: two revisions trade places (their numbers swapped).
RA=${POINT_REV[5]} RB=${POINT_REV[6]}
tamper "UPDATE config_revisions SET revision = 999999999 WHERE revision = $RA;
  UPDATE config_revisions SET revision = $RA WHERE revision = $RB;
  UPDATE config_revisions SET revision = $RB WHERE revision = 999999999"
both_fail "FAILED at revision $RA"
tamper "UPDATE config_revisions SET revision = 999999999 WHERE revision = $RA;
  UPDATE config_revisions SET revision = $RA WHERE revision = $RB;
  UPDATE config_revisions SET revision = $RB WHERE revision = 999999999"
audit verify --project aud
expect_status 0
# A live config that no revision explains (the fold).
tamper "ALTER TABLE configs DISABLE TRIGGER USER; UPDATE configs SET version = 9 WHERE project_id = 'aud' AND key = 'flags'; ALTER TABLE configs ENABLE TRIGGER USER"
DATABASE_URL=$DB_URL audit verify --project aud
expect_status 8
expect_out "fold mismatch"

# --- errors ---------------------------------------------------------------------------------
audit verify --project nope
expect_status 3
expect_out "nope"
run env CONCLAVE_TOKEN= "$BIN" audit verify --project aud --endpoints "$NODE_1_URL"
expect_status 5
run env CONCLAVE_ENDPOINTS=http://127.0.0.1:9,http://127.0.0.1:11 "$BIN" audit verify --project aud
expect_status 6
audit replay --project aud --as-of-time yesterday
expect_status 2
expect_out "is not an RFC 3339 time such as 2026-11-22T10:00:00Z"
audit replay --project aud --as-of-time 2026-01-01T00:00:00Z --as-of-revision 3
expect_status 2
audit rewrite --project aud
expect_status 2
expect_out 'unknown subcommand "rewrite"'
audit verify --project aud --bogus
expect_status 2
audit export
expect_status 2
expect_out "export needs --project"
audit export --project aud --out "$TMP/no/such/dir/x.jsonl"
expect_status 1
expect_out "cannot create"
[[ ! -e $TMP/no ]] || fail "a failed export left files behind"
audit verify --help
expect_status 0
expect_out "example"

# --- the progress bar: only on a terminal ---------------------------------------------------
script -qec "env CONCLAVE_ENDPOINTS=$CONCLAVE_ENDPOINTS CONCLAVE_TOKEN=$TOKEN $BIN audit export --project aud --out $TMP/tty.jsonl" /dev/null >"$TMP/tty.out" 2>&1 ||
  fail "export on a terminal failed: $(cat "$TMP/tty.out")"
grep -q "revisions" "$TMP/tty.out" || fail "no progress on a terminal: $(cat "$TMP/tty.out")"
grep -q '\[#*\.*\]' "$TMP/tty.out" || fail "no progress bar on a terminal: $(cat "$TMP/tty.out")"
audit export --project aud --out "$TMP/notty.jsonl"
[[ $out != *"["*"]"* ]] || fail "a progress bar without a terminal: $out"

echo "cli_audit: $(($(date +%s) - T_START)) s"
test_done "cli_audit"
