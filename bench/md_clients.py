"""Socket clients of the gateway that count `md.delta` events, several connections in one
process. They listen before the first subscription starts the upstream stream, so every
client sees it from its first message. Prints one JSON object with each client's rate."""

from __future__ import annotations

import argparse
import json
import selectors
import socket
import time

from fixgw.api.client import Client


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--socket", required=True)
    parser.add_argument("--symbol", required=True)
    parser.add_argument("--clients", type=int, required=True)
    parser.add_argument("--messages", type=int, required=True)
    args = parser.parse_args()

    clients = [Client.connect(args.socket, name=f"bench-{i}") for i in range(args.clients)]
    for c in clients:
        c.subscribe([f"md:{args.symbol}"])
    needle = b'"md.delta"'
    counts = [0] * len(clients)
    first = [0.0] * len(clients)
    last = [0.0] * len(clients)
    sel = selectors.DefaultSelector()
    socks: list[socket.socket] = []
    for i, c in enumerate(clients):
        sock = c._sock  # the counters read raw bytes; no JSON decoding on this side
        sock.setblocking(False)
        sel.register(sock, selectors.EVENT_READ, i)
        socks.append(sock)
    # The first counter starts the upstream stream; its reply is read as bytes like the rest.
    # Depth 0 (the whole book): every client counts the same shared line of every delta (a
    # client at a depth gets only the deltas that change its top levels).
    socks[0].sendall(
        json.dumps(
            {"id": 1, "op": "md_subscribe", "symbol": args.symbol, "what": ["book"], "depth": 0}
        ).encode()
        + b"\n"
    )
    deadline = time.monotonic() + 120
    remaining = len(clients)
    while remaining and time.monotonic() < deadline:
        for key, _ in sel.select(1.0):
            i = key.data
            try:
                data = socks[i].recv(1 << 20)
            except BlockingIOError:
                continue
            if not data:
                raise SystemExit(f"client {i} was disconnected after {counts[i]} deltas")
            n = data.count(needle)
            if n:
                now = time.perf_counter()
                if counts[i] == 0:
                    first[i] = now
                counts[i] += n
                last[i] = now
                if counts[i] >= args.messages:
                    sel.unregister(socks[i])
                    remaining -= 1
    if remaining:
        raise SystemExit(f"timed out: counts {counts}")
    rates = [(args.messages - 1) / (last[i] - first[i]) for i in range(len(clients))]
    print(
        json.dumps(
            {
                "messages": args.messages,
                "clients": len(clients),
                "rates": rates,
                "slowest": min(rates),
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
