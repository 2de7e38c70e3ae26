"""What the gateway's place in the path costs before it does any work: one round trip over a
Unix socket between two Python processes, with lines the size of a `new_order` request and
an `order.accepted` event. A client of the gateway pays this on top of everything the bare
initiator pays (the floor has no such hop), so floor + this hop is the best one-at-a-time
round trip any out-of-process gateway can show on the machine.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from typing import Any

from bench.order_latency import percentiles

REQUEST = b"r" * 150 + b"\n"
EVENT = b"e" * 330 + b"\n"

_ECHO = """
import socket, sys
sock = socket.socket(fileno=int(sys.argv[1]))
answer = b"e" * 330 + b"\\n"
while True:
    data = sock.recv(65536)
    if not data:
        break
    sock.sendall(answer)
"""


def measure(round_trips: int) -> dict[str, Any]:
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    echo = subprocess.Popen(
        [sys.executable, "-c", _ECHO, str(theirs.fileno())], pass_fds=[theirs.fileno()]
    )
    theirs.close()
    try:
        rtts: list[float] = []
        for _ in range(200 + round_trips):
            start = time.perf_counter()
            ours.sendall(REQUEST)
            got = 0
            while got < len(EVENT):
                got += len(ours.recv(65536))
            rtts.append((time.perf_counter() - start) * 1e6)
        return {"round_trips": round_trips, "unix_socket_round_trip_us": percentiles(rtts[200:])}
    finally:
        ours.close()
        echo.wait(10)


def report(results: dict[str, Any], floor_us: dict[str, float]) -> str:
    hop = results["unix_socket_round_trip_us"]
    best = {k: (floor_us[k] + hop[k]) / floor_us[k] for k in ("p50", "p99")}
    return "\n".join(
        [
            f"the gateway's extra hop: a Unix-socket round trip between two Python processes, "
            f"{results['round_trips']:,} times",
            f"  p50 {hop['p50']:5.0f} us  p99 {hop['p99']:5.0f} us  p99.9 {hop['p999']:5.0f} us",
            f"  floor one at a time + this hop, over the floor: p50 {best['p50']:.2f}"
            f"  p99 {best['p99']:.2f} (the best ratio an out-of-process gateway can show here)",
        ]
    )


if __name__ == "__main__":
    hops = measure(int(os.environ.get("FIXGW_BENCH_HOPS", "10000")))
    print(hops["unix_socket_round_trip_us"])
