"""The gateway's CPU per upstream book message with 10 socket clients at one depth: 0 (the
bus's one shared line) against the default 10 (events cut to the depth through a view of
the book, `fixgw/api/book_views.py`). Runs each twice, alternating; prints one line each.

    python -m bench.md_depth [MESSAGES]
"""

from __future__ import annotations

import json
import socket
import sys
import time

from bench.md_throughput import SYMBOL, cpu_seconds, feed_stack

CLIENTS = 10


def gateway_cpu_us_per_message(depth: int, messages: int) -> float:
    stack = feed_stack(messages)
    try:
        stack.start_sim()
        stack.start_gateway()
        assert stack.gateway is not None and stack.gateway.popen is not None
        pid = stack.gateway.popen.pid
        clients = []
        for _ in range(CLIENTS):
            sock = socket.socket(socket.AF_UNIX)
            sock.connect(stack.socket_path)
            sock.setblocking(False)
            clients.append(sock)
        time.sleep(0.5)
        before = cpu_seconds(pid)
        request = {"id": 1, "op": "md_subscribe", "symbol": SYMBOL, "what": ["book"]}
        for sock in clients:
            sock.sendall(json.dumps({**request, "depth": depth}).encode() + b"\n")
        quiet, last = 0, before
        while quiet < 3:  # the feed is over once the gateway has been idle for 1.5 s
            time.sleep(0.5)
            for sock in clients:
                try:
                    while sock.recv(1 << 20):
                        pass
                except BlockingIOError:
                    pass
            now = cpu_seconds(pid)
            quiet = quiet + 1 if now - last < 0.01 else 0
            last = now
        return (last - before) / messages * 1e6
    finally:
        stack.stop()


if __name__ == "__main__":
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 50_000
    for depth in (0, 10, 0, 10):
        cpu = gateway_cpu_us_per_message(depth, count)
        print(f"{CLIENTS} clients at depth {depth:>2}: gateway CPU {cpu:.1f} us per message")
