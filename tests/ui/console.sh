# The web console (ui/) in a real browser against a real three-node cluster: headless
# Chromium driven by tests/ui/console_test.py (python3-selenium, Debian's chromedriver).
# This script makes the cluster, the users (an instance admin, an editor and a viewer) and a
# project the three share, then runs the Python test with the nodes' ports in its environment;
# the harness's EXIT hooks stop the nodes, and the Python test quits its browsers itself
# (driver.quit() in a finally), with a last sweep here of any chromedriver it left behind.
#
# Screenshots of every page go to ${CONCLAVE_UI_SHOTS:-$TMP/shots} (TMP is deleted at the end:
# set CONCLAVE_UI_SHOTS to keep them).
source "$(dirname "$0")/../lib/lib.sh"
source "$(dirname "$0")/../lib/node_lib.sh"
source "$(dirname "$0")/../lib/raft_lib.sh"

PY=${CONCLAVE_UI_PYTHON:-/usr/bin/python3}
DRIVER=${CONCLAVE_CHROMEDRIVER:-/usr/bin/chromedriver}
[[ -x $DRIVER ]] || fail "no chromedriver at $DRIVER (apt-get install chromium-driver)"
"$PY" -c 'import selenium' 2>/dev/null || fail "$PY has no selenium (apt-get install python3-selenium)"

make_test_db console
"$BIN" migrate up >/dev/null
raft_up 3
echo "leader: node $L"

PW=console-password-1
create_user admin@example.com "$PW" --admin >/dev/null
create_user editor@example.com "$PW" >/dev/null
create_user viewer@example.com "$PW" >/dev/null
T=$(login admin@example.com "$PW" "$L")
api POST /v1/projects '{"id": "demo", "name": "Demo project"}' "$T" "$L"
expect_code 201
api POST /v1/projects/demo/roles '{"email": "editor@example.com", "role_level": "editor"}' "$T" "$L"
expect_code 200
api POST /v1/projects/demo/roles '{"email": "viewer@example.com", "role_level": "viewer"}' "$T" "$L"
expect_code 200

# The console must be served (embedded files) before a browser is worth starting.
api GET /ui/ "" "" "$L"
expect_code 200
expect_header Content-Security-Policy "script-src 'self'"

SHOTS=${CONCLAVE_UI_SHOTS:-$TMP/shots}
mkdir -p "$SHOTS"

# Any chromedriver (and its Chromium) the test leaves behind, by the pids it recorded.
sweep_browsers() {
  local pid
  [[ -f $TMP/browser.pids ]] || return 0
  while read -r pid; do
    [[ $pid =~ ^[0-9]+$ ]] || continue
    alive "$pid" || continue
    # Its Chromium first (children of this chromedriver, by parent pid), then itself.
    pkill -TERM -P "$pid" 2>/dev/null || true
    kill -TERM "$pid" 2>/dev/null || true
  done <"$TMP/browser.pids"
}
at_exit sweep_browsers

set +e
HPORT_1=$HPORT_1 HPORT_2=$HPORT_2 HPORT_3=$HPORT_3 L=$L UI_TOKEN=$T UI_PASSWORD=$PW \
  UI_SHOTS=$SHOTS UI_DOWNLOADS=$TMP/downloads UI_PIDS=$TMP/browser.pids UI_CHROMEDRIVER=$DRIVER \
  timeout -k 5 170 "$PY" "$(dirname "$0")/console_test.py"
rc=$?
set -e
[[ $rc == 0 ]] || fail "console_test.py exited $rc"
echo "screenshots: $SHOTS"
test_done console
