# The node under a service manager (src/server/sdnotify.h; docs/operations.md, "Running under
# systemd"), with the notify socket played by a small datagram listener as systemd would:
#   - node 1 of three, started alone, has no quorum: it reports STATUS "waiting for a raft
#     leader" and never READY=1, and pings WATCHDOG=1 about twice per WATCHDOG_USEC;
#   - once the two others start and a leader is elected, node 1 sends READY=1 (exactly once),
#     with a STATUS that names its role, at a time when /health agrees it has a leader;
#   - SIGTERM: STOPPING=1 before it exits 0;
#   - a node without NOTIFY_SOCKET sends nothing anywhere (nodes 2 and 3; the other tests).
source "$(dirname "$0")/../lib/lib.sh"
source "$(dirname "$0")/../lib/node_lib.sh"
source "$(dirname "$0")/../lib/raft_lib.sh"
make_test_db serve_sdnotify
"$BIN" migrate up >/dev/null

SOCK=$TMP/notify.sock
LOG=$TMP/notify.log
: >"$LOG"
# The listener: every line of every datagram, with its arrival time, for at most 90 s.
python3 - "$SOCK" "$LOG" 90 <<'PY' &
import socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
s.settimeout(0.5)
end = time.monotonic() + float(sys.argv[3])
with open(sys.argv[2], "a", buffering=1) as f:
    while time.monotonic() < end:
        try:
            data = s.recv(65536)
        except socket.timeout:
            continue
        for line in data.decode().split("\n"):
            f.write("%.3f %s\n" % (time.monotonic(), line))
PY
LISTENER=$!
stop_listener() { kill "$LISTENER" 2>/dev/null || true; wait "$LISTENER" 2>/dev/null || true; }
at_exit stop_listener
for ((i = 0; i < 50; i++)); do
  [[ -S $SOCK ]] && break
  sleep 0.1
done
[[ -S $SOCK ]] || fail "the notify listener did not bind $SOCK"

# count TEXT: lines of the notify log that are exactly TEXT.
count() { grep -c -x -F "$1" <(cut -d' ' -f2- "$LOG") || true; }

raft_ports 3
for i in 1 2 3; do
  raft_config "$i" "1 2 3"
done
NOTIFY_SOCKET=$SOCK WATCHDOG_USEC=1000000 raft_start 1
sleep 2
expect_eq "$(count READY=1)" 0 "READY=1 from a node without quorum"
grep -q 'STATUS=waiting for a raft leader' "$LOG" || fail "no STATUS saying what node 1 waits for: $(cat "$LOG")"
pings=$(count WATCHDOG=1)
((pings >= 2 && pings <= 6)) || fail "node 1 should ping the watchdog about every 0.5 s, got $pings in 2 s"

raft_start 2
raft_start 3
L=$(wait_leader 20) || fail "no leader"
for ((i = 0; i < 100; i++)); do
  [[ $(count READY=1) == 1 ]] && break
  sleep 0.1
done
expect_eq "$(count READY=1)" 1 "READY=1 once a leader is known"
[[ -n $(health 1 leader_id) && $(health 1 leader_id) != 0 ]] || fail "READY=1 while /health names no leader"
status=$(grep -A1 -x -F "READY=1" <(cut -d' ' -f2- "$LOG") | sed -n 's/^STATUS=//p' | head -n 1)
if [[ $L == 1 ]]; then
  [[ $status == "ready: leader, term "* ]] || fail "node 1 leads; its ready STATUS: <$status>"
else
  [[ $status == "ready: follower of node $L, term "* ]] || fail "node 1 follows $L; its ready STATUS: <$status>"
fi
pings=$(count WATCHDOG=1)
sleep 1.2
(($(count WATCHDOG=1) > pings)) || fail "the watchdog pings stopped once node 1 was ready"

raft_stop 1 20
expect_eq "$(count STOPPING=1)" 1 "STOPPING=1 at SIGTERM"
expect_eq "$(count READY=1)" 1 "READY=1 is sent once"
test_done serve_sdnotify
