# The systemd unit (packaging/systemd/conclave@.service; docs/operations.md, "Running under
# systemd"), checked offline with systemd's own tools, pointed at the binary under test:
#   - systemd-analyze verify of an instance (conclave@1.service) exits 0 and prints nothing
#     (an unknown key, a missing binary or a bad value would be printed);
#   - systemd-analyze security --offline rates its exposure at 2.0 or below ("OK");
#   - the unit's promises: Type=notify with a watchdog, the node id from the instance name,
#     SIGTERM for the hand-over, SIGHUP for reload.
# The unit under a real systemd as PID 1 (in a systemd-nspawn container: readiness after
# quorum, the watchdog, reload, the hand-over on stop) is the long test
# tests/long/systemd_pid1.sh; the notify protocol itself is tested in serve_sdnotify.
source "$(dirname "$0")/../lib/lib.sh"
command -v systemd-analyze >/dev/null || fail "systemd-analyze is missing (apt-get install systemd)"
UNIT=$CONCLAVE_SOURCE_DIR/packaging/systemd/conclave@.service
[[ -f $UNIT ]] || fail "no unit at $UNIT"
mkdir -p "$TMP/units"
ABS_BIN=$(readlink -f "$BIN")
sed "s|/usr/bin/conclave|$ABS_BIN|" "$UNIT" >"$TMP/units/conclave@1.service"
grep -q "^ExecStart=$ABS_BIN serve " "$TMP/units/conclave@1.service" || fail "the unit's ExecStart is not /usr/bin/conclave serve"

(cd "$TMP/units" && systemd-analyze verify --man=no ./conclave@1.service) >"$TMP/verify.out" 2>&1 ||
  fail "systemd-analyze verify refused the unit: $(cat "$TMP/verify.out")"
[[ ! -s $TMP/verify.out ]] || fail "systemd-analyze verify printed: $(cat "$TMP/verify.out")"

(cd "$TMP/units" && systemd-analyze security --offline=yes --no-pager --threshold=20 \
  ./conclave@1.service) >"$TMP/security.out" 2>&1 ||
  fail "exposure above 2.0: $(tail -n 3 "$TMP/security.out")"
grep -q 'Overall exposure level for conclave@1.service: [0-1]\.[0-9] OK\|Overall exposure level for conclave@1.service: 2\.0 OK' \
  "$TMP/security.out" || fail "no exposure verdict: $(tail -n 3 "$TMP/security.out")"

for want in '^Type=notify$' '^WatchdogSec=[0-9]+$' '^Environment=CONCLAVE_NODE_ID=%i$' \
  '^KillSignal=SIGTERM$' '^ExecReload=/bin/kill -HUP \$MAINPID$' '^NoNewPrivileges=yes$' \
  '^ProtectSystem=strict$' '^User=conclave$'; do
  grep -Eq "$want" "$UNIT" || fail "the unit lacks /$want/"
done

# The checks can fail: a misspelt key is reported.
sed 's/^Type=notify$/Tpye=notify/' "$TMP/units/conclave@1.service" >"$TMP/units/conclave@2.service"
(cd "$TMP/units" && systemd-analyze verify --man=no ./conclave@2.service) >"$TMP/verify2.out" 2>&1 || true
grep -q "Unknown key 'Tpye'" "$TMP/verify2.out" || fail "verify did not report a misspelt key: $(cat "$TMP/verify2.out")"
test_done systemd_unit
