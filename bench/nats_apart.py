"""The order round trip one at a time with NATS off and on, by where the publishing runs
(issue 22's target: p50 within 5% of NATS off).

Gateways side by side, each with its own simulator, one nats-server; round trips one at a
time, each side in turn, ROUNDS turns:
- off: NATS off, and a second gateway just like it ("off, again": how far two gateways
  that do the same differ here, the noise any other ratio sits in);
- inline: the gateway's loop publishes (`nats.publisher: inline`);
- process: the publisher process (the default), every 10 ms, and every 50 ms;
- apart: NATS off, with a process beside it that takes the events from the gateway's socket
  and publishes nothing (what one more socket client costs). The same prototype publishing
  each event, or every 10 ms (APART), measured before the publisher process was built that
  it would pay.

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

import nats

from bench.jetstream import WINDOW, gateway, gw_orders
from bench.order_latency import percentiles
from fixgw.testing import LocalStack, NatsServer, wait_until

ROUNDS = 3
APART = ("none",)
"""How a prototype publisher apart (a socket subscriber) publishes: "none", not at all (what
one more socket client that wakes for every event costs); also "each" event as it comes, or
"batch10", what came in 10 ms (the measures that said a process of its own would pay; see
bench/HISTORY.md)."""
STREAM = "APART"


async def publish_apart(socket_path: str, url: str, mode: str) -> None:
    """`mode`: one of APART."""
    nc = await nats.connect(url)
    js = nc.jetstream(publish_async_max_pending=WINDOW)
    stream = f"{STREAM}_{mode.upper()}"
    await js.add_stream(name=stream, subjects=[f"apart.{mode}.>"])
    reader, writer = await asyncio.open_unix_connection(socket_path, limit=1 << 20)
    writer.write(b'{"id":0,"op":"subscribe","topics":["orders","session","account","errors"]}\n')
    await writer.drain()
    await reader.readline()
    print("ready", flush=True)
    subject = f"apart.{mode}.orders"
    waiting: list[bytes] = []
    published = 0

    async def publish(lines: list[bytes]) -> None:
        nonlocal published
        for line in lines:
            published += 1
            await js.publish_async(subject, line, headers={"Nats-Msg-Id": str(published)})

    async def read() -> None:
        while line := await reader.readline():
            if mode == "each":
                await publish([line[:-1]])
            elif mode != "none":
                waiting.append(line[:-1])

    reading = asyncio.create_task(read())
    if mode.startswith("batch"):
        every_s = int(mode.removeprefix("batch")) / 1000
        while not reading.done():
            await asyncio.sleep(every_s)
            batch = waiting[:]
            waiting.clear()
            await publish(batch)
    await reading


SIDES: dict[str, dict[str, Any] | None] = {
    "off": None,
    "off, again": None,
    "inline": {"publisher": "inline"},
    "process": {"publisher": "process"},
    "process, 50 ms": {"publisher": "process", "batch_ms": 50},
    **{f"apart, {mode}": None for mode in APART},
}
"""Each side's `nats` section beyond the servers (None: NATS off)."""


def wait_connected(stack: LocalStack, side: str) -> None:
    wait_until(lambda: stack.status()["nats"]["connected"], 20, f"{side} to reach NATS")


def measure(orders: int) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix="fixgw-bench-apart-"))
    broker = NatsServer(root / "nats")
    broker.start()
    rtts: dict[str, list[float]] = {side: [] for side in SIDES}
    publishers: list[subprocess.Popen[str]] = []
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
            for mode in APART:
                command = [sys.executable, "-m", "bench.nats_apart", "--publish"]
                where = [started[f"apart, {mode}"].socket_path, broker.url, mode]
                publisher = subprocess.Popen([*command, *where], stdout=subprocess.PIPE, text=True)
                publishers.append(publisher)
                assert publisher.stdout is not None
                if publisher.stdout.readline().strip() != "ready":
                    raise SystemExit(f"the publisher apart ({mode}) did not start")
            for n in range(ROUNDS):
                for side in SIDES:
                    rtts[side] += gw_orders(started[side], orders, f"rt{n}")["rtt_us"]
            for publisher in publishers:
                publisher.terminate()
                publisher.wait(10)
    finally:
        for publisher in publishers:
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
    if sys.argv[1:2] == ["--publish"]:
        asyncio.run(publish_apart(sys.argv[2], sys.argv[3], sys.argv[4]))
    else:
        print(report(measure(int(sys.argv[1]) if len(sys.argv) > 1 else 2000)))
