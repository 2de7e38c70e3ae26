"""The order round trip one at a time with NATS off and on, by where the publishing runs
(issue 22's target: p50 within 5% of NATS off).

Gateways side by side, each with its own simulator, one nats-server; round trips one at a
time, each side in turn, ROUNDS turns:
- off: NATS off, and a second gateway just like it ("off, again": how far two gateways
  that do the same differ here, the noise any other ratio sits in);
- inline: the gateway's loop publishes (`nats.publisher: inline`);
- process: the publisher process (the default), every 10 ms, and every 50 ms;
- one more client: NATS off, with a process beside it that reads every event from the
  gateway's socket (what one more socket client costs).

    python -m bench.nats_apart [orders per turn]
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.jetstream import gateway, gw_orders
from bench.order_latency import percentiles
from fixgw.testing import LocalStack, NatsServer, wait_until

ROUNDS = 3
CLIENT = "one more client"
"""The side with NATS off and one more socket client reading every event. (The prototype
that also published what it read, each event or every 10 ms, and showed that a process of
its own would pay, is in this file at 3d88746; its figures in bench/HISTORY.md.)"""


async def read_events(socket_path: str) -> None:
    """One more socket client: subscribes to every journaled topic and reads every event."""
    reader, writer = await asyncio.open_unix_connection(socket_path, limit=1 << 20)
    writer.write(b'{"id":0,"op":"subscribe","topics":["orders","session","account","errors"]}\n')
    await writer.drain()
    await reader.readline()
    print("ready", flush=True)
    while await reader.readline():
        pass


SIDES: dict[str, dict[str, Any] | None] = {
    "off": None,
    "off, again": None,
    "inline": {"publisher": "inline"},
    "process": {"publisher": "process"},
    "process, 50 ms": {"publisher": "process", "batch_ms": 50},
    CLIENT: None,
}
"""Each side's `nats` section beyond the servers (None: NATS off)."""


def wait_connected(stack: LocalStack, side: str) -> None:
    wait_until(lambda: stack.status()["nats"]["connected"], 20, f"{side} to reach NATS")


def measure(orders: int) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix="fixgw-bench-apart-"))
    broker = NatsServer(root / "nats")
    broker.start()
    rtts: dict[str, list[float]] = {side: [] for side in SIDES}
    clients: list[subprocess.Popen[str]] = []
    try:
        with contextlib.ExitStack() as stacks:
            started = {
                side: stacks.enter_context(
                    gateway(
                        root / side.replace(", ", "-").replace(" ", ""),
                        None if nats is None else broker.url,
                        **(nats or {}),
                    )
                )
                for side, nats in SIDES.items()
            }
            for side, nats in SIDES.items():
                if nats is not None:
                    wait_connected(started[side], side)
            client = subprocess.Popen(
                [sys.executable, "-m", "bench.nats_apart", "--read", started[CLIENT].socket_path],
                stdout=subprocess.PIPE,
                text=True,
            )
            clients.append(client)
            assert client.stdout is not None
            if client.stdout.readline().strip() != "ready":
                raise SystemExit("the extra client did not start")
            for n in range(ROUNDS):
                for side in SIDES:
                    rtts[side] += gw_orders(started[side], orders, f"rt{n}")["rtt_us"]
            for publisher in clients:
                publisher.terminate()
                publisher.wait(10)
    finally:
        for publisher in clients:
            publisher.kill()
        broker.stop()
    result = {side: percentiles(values) for side, values in rtts.items()}
    off = result["off"]
    return {
        "orders": orders * ROUNDS,
        "sides": {
            side: {**us, "ratio_p50": us["p50"] / off["p50"], "ratio_p99": us["p99"] / off["p99"]}
            for side, us in result.items()
        },
    }


def report(r: dict[str, Any]) -> str:
    rows = [
        f"  {side:16} p50 {us['p50']:6.0f} us  p99 {us['p99']:6.0f} us  ratio to off: p50 "
        f"{us['ratio_p50']:.3f}  p99 {us['ratio_p99']:.3f}"
        for side, us in r["sides"].items()
    ]
    return "\n".join(
        [
            f"order round trip one at a time, {r['orders']:,} orders per side in {ROUNDS} turns "
            "(target for NATS on: p50 <= 1.05 x off)",
            *rows,
        ]
    )


if __name__ == "__main__":
    if sys.argv[1:2] == ["--read"]:
        asyncio.run(read_events(sys.argv[2]))
    else:
        print(report(measure(int(sys.argv[1]) if len(sys.argv) > 1 else 2000)))
