#!/usr/bin/env python3
"""A userspace Ethernet switch that delays every frame, for tests/long/three_hosts.sh.

    three_hosts_switch.py DELAY_FILE IFACE...

Stands in for `tc qdisc ... netem delay D` where the kernel has no sch_netem (and modules
cannot be loaded). Run in the "switch" namespace in place of a bridge: it reads every frame
that arrives on one of the IFACEs (the switch ends of the hosts' veth pairs, AF_PACKET raw
sockets), learns the source MAC, and sends the frame out of the port that has the destination
MAC (all other ports for broadcast, multicast and unknown MACs) D ms after it arrived. Every
frame between two hosts crosses the switch once, so every packet from one host to another is
delayed by D: D each way, like netem delay D on every host's interface. Frames keep their
order and none is dropped (no loss, no reordering, no jitter beyond the scheduling of this
process: a fraction of a millisecond). Frames go through with their virtio-net header
(PACKET_VNET_HDR), so checksum and segmentation offload of the veths work unchanged; a TSO
segment of up to 64 KiB is therefore delayed as one frame (netem would also see it as one,
before segmentation on a veth).

D is the whole number of milliseconds in DELAY_FILE, read again every 100 ms. Prints "switch
ready" on stdout once every port is open; stops on SIGTERM.
"""
import heapq
import selectors
import signal
import socket
import sys
import time

ETH_P_ALL = 0x0003
SOL_PACKET = 263
PACKET_VNET_HDR = 15
PACKET_OUTGOING = 4
VNET_HDR_LEN = 10

running = True


def stop(*_):
    global running
    running = False


def main():
    delay_file = sys.argv[1]
    ifaces = sys.argv[2:]
    socks = []
    sel = selectors.DefaultSelector()
    for i, name in enumerate(ifaces):
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        s.setsockopt(SOL_PACKET, PACKET_VNET_HDR, 1)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        s.bind((name, 0))
        s.setblocking(False)
        socks.append(s)
        sel.register(s, selectors.EVENT_READ, i)
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    macs = {}  # MAC -> port
    queue = []  # (due, seq, port, frame)
    seq = 0
    delay = 0.0
    next_read = 0.0
    print("switch ready", flush=True)
    while running:
        now = time.monotonic()
        if now >= next_read:
            try:
                with open(delay_file) as f:
                    delay = int(f.read().strip() or "0") / 1000.0
            except (OSError, ValueError):
                pass
            next_read = now + 0.1
        # Send what is due.
        while queue and queue[0][0] <= now:
            _, _, port, frame = heapq.heappop(queue)
            try:
                socks[port].send(frame)
            except OSError:
                pass  # a port going down at the end
        timeout = next_read - now
        if queue:
            timeout = min(timeout, queue[0][0] - now)
        for key, _ in sel.select(max(timeout, 0)):
            src = key.data
            s = socks[src]
            while True:
                try:
                    frame, addr = s.recvfrom(70000)
                except BlockingIOError:
                    break
                except OSError:
                    break
                if addr[2] == PACKET_OUTGOING or len(frame) < VNET_HDR_LEN + 14:
                    continue  # our own sends, seen on the port they left by
                eth = frame[VNET_HDR_LEN:]
                dst, smac = eth[0:6], eth[6:12]
                macs[smac] = src
                due = time.monotonic() + delay
                if dst[0] & 1 or dst not in macs:
                    outs = [p for p in range(len(socks)) if p != src]
                else:
                    outs = [macs[dst]] if macs[dst] != src else []
                for p in outs:
                    seq += 1
                    heapq.heappush(queue, (due, seq, p, frame))


if __name__ == "__main__":
    if len(sys.argv) < 4:
        sys.exit("usage: three_hosts_switch.py DELAY_FILE IFACE IFACE...")
    main()
