"""Order round trip, one order at a time: a socket client through the gateway, against a
bare QuickFIX-Python initiator talking to the same simulator (the floor)."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.md_throughput import BARE, FUNDS, bare_command, cpu_seconds, rss_mb, run_json
from fixgw.testing import LocalStack, free_port


class CpuMeter:
    """CPU per order of each process in a run: the client's (which it reports itself, from
    its first order to its last answer, leaving its start-up out), the simulator's and the
    gateway's (from /proc, over the client's whole run).

    On two cores shared by all three, their sum against the rate says how near the machine
    is to full, and the gateway's how busy its one thread is."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self._before: dict[str, float] = {}
        self.seconds: dict[str, float] = {}

    def _now(self) -> dict[str, float]:
        return {name: cpu_seconds(pid) for name, pid in self.pids.items()}

    def __enter__(self) -> CpuMeter:
        self._before = self._now()
        return self

    def __exit__(self, *_: object) -> None:
        self.seconds = {k: v - self._before[k] for k, v in self._now().items()}

    def per_order_us(self, client_result: dict[str, Any], orders: int) -> dict[str, float]:
        seconds = {"client": float(client_result["cpu_s"])} | self.seconds
        return {k: v / orders * 1e6 for k, v in seconds.items()}


def achieved_rate(result: dict[str, Any]) -> float:
    """Orders per second the run kept; one at a time, one per round trip."""
    if result.get("orders_per_s"):
        return float(result["orders_per_s"])
    rtts: list[float] = result["rtt_us"]
    return len(rtts) / (sum(rtts) / 1e6)


def cores_busy(cpu_us_per_order: dict[str, float], orders_per_s: float) -> dict[str, float]:
    """At the rate the run kept: how many cores each process used, and all of them."""
    busy = {k: v * orders_per_s / 1e6 for k, v in cpu_us_per_order.items()}
    return busy | {"all": sum(busy.values())}


def percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    return {
        "p50": statistics.median(ordered),
        "p99": at(0.99),
        "p999": at(0.999),
        "max": ordered[-1],
    }


MODES = {"one at a time": None, "1,000/s": 1000.0, "2,000/s": 2000.0, "flat out": 0.0}
"""How orders are sent: one waiting for the other, at a fixed rate, or as fast as a window
of unanswered orders allows (see pacing.py)."""


RELAYS = {"relay": "bench.relay", "promise relay": "bench.promise_relay"}
"""The thinnest out-of-process gateway (relay.py), and the same keeping the gateway's promises
the cheapest way (promise_relay.py): each run beside the gateway."""


@contextmanager
def relay(sim_port: int, root: Path, module: str = "bench.relay") -> Iterator[tuple[str, int]]:
    """A relay (`RELAYS`), logged on; yields its socket and pid."""
    path = str(root / "relay.sock")
    popen = subprocess.Popen(
        [sys.executable, "-m", *bare_command(module, sim_port), "--socket", path],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert popen.stdout is not None
        if popen.stdout.readline().strip() != "ready":
            raise SystemExit(f"{module} did not start")
        yield path, popen.pid
    finally:
        try:
            popen.wait(30)  # it stops once its client has gone
        finally:
            popen.kill()


def order_stack(root: Path, env: dict[str, str] | None = None) -> LocalStack:
    """The simulator (with the bare initiator's account) and the gateway the order benches
    run: orders rest on LTC/USD, no account or market-data requests of the gateway's own."""
    return LocalStack(
        root=root,
        sim_port=free_port(),
        books={"LTC/USD": {}},
        symbols=["LTC/USD"],
        log_level="info",  # as shipped: every order event is logged
        sim_overrides={"accounts": [{**BARE, "balances": FUNDS}]},
        balances=FUNDS,
        gateway_overrides={
            "account": {"refresh_s": 0, "after_fill": False},
            "market_data": {"stale_after_s": 0},
        },
        env=env or {},
    )


def measure(orders: int) -> dict[str, Any]:
    """Each mode runs the floor, then the gateway, back to back: this VM's speed drifts over
    minutes, and a ratio should compare runs made under the same conditions."""
    stack = order_stack(Path(tempfile.mkdtemp(prefix="fixgw-bench-orders-")))
    runs: dict[str, Any] = {}
    try:
        stack.start_sim()
        bare = [
            *bare_command("bench.bare_orders", stack.sim_port),
            "--orders",
            str(orders),
        ]
        stack.start_gateway()
        assert stack.sim is not None and stack.sim.popen is not None
        assert stack.gateway is not None and stack.gateway.popen is not None
        sim_pid, pid = stack.sim.popen.pid, stack.gateway.popen.pid
        gateway = ["bench.gw_orders", "--socket", stack.socket_path, "--orders", str(orders)]
        for n, (mode, rate) in enumerate(MODES.items()):
            rate_arg = "one" if rate is None else str(rate)
            with CpuMeter({"simulator": sim_pid}) as meter:
                floor = run_json([*bare, "--rate", rate_arg, "--prefix", f"bare{n}"])
            floor_cpu = meter.per_order_us(floor, orders)
            paced = [] if rate is None else ["--rate", str(rate)]
            relayed, relay_cpu = {}, {}
            for name, module in RELAYS.items():
                with relay(stack.sim_port, stack.root, module) as (relay_socket, relay_pid):
                    with CpuMeter({"simulator": sim_pid, name: relay_pid}) as meter:
                        relayed[name] = run_json(
                            [
                                "bench.gw_orders",
                                "--socket",
                                relay_socket,
                                "--orders",
                                str(orders),
                                "--prefix",
                                f"{module.rpartition('.')[2]}{n}",
                                *paced,
                            ]
                        )
                    relay_cpu[name] = meter.per_order_us(relayed[name], orders)
            with CpuMeter({"simulator": sim_pid, "gateway": pid}) as meter:
                ours = run_json([*gateway, *paced, "--prefix", f"gw{n}"])
            cpu = meter.per_order_us(ours, orders)
            f, r, pr, g = (
                percentiles(run.get("rtt_us") or run["latency_us"])
                for run in (floor, relayed["relay"], relayed["promise relay"], ours)
            )
            runs[mode] = {
                "bare_us": f,
                "relay_us": r,
                "promise_relay_us": pr,
                "gateway_us": g,
                "ratio": {k: g[k] / f[k] for k in ("p50", "p99")},
                "relay_ratio": {k: r[k] / f[k] for k in ("p50", "p99")},
                "to_relay": {
                    **{k: g[k] / r[k] for k in ("p50", "p99")},
                    "cpu": cpu["gateway"] / relay_cpu["relay"]["relay"],
                },
                "promise_to_relay": {
                    **{k: pr[k] / r[k] for k in ("p50", "p99")},
                    "cpu": relay_cpu["promise relay"]["promise relay"]
                    / relay_cpu["relay"]["relay"],
                },
                "cpu_us_per_order": {"bare": floor_cpu, **relay_cpu, "gateway": cpu},
                "cores_busy": {
                    "bare": cores_busy(floor_cpu, achieved_rate(floor)),
                    **{
                        name: cores_busy(relay_cpu[name], achieved_rate(relayed[name]))
                        for name in RELAYS
                    },
                    "gateway": cores_busy(cpu, achieved_rate(ours)),
                },
                "orders_per_s": {
                    "bare": floor.get("orders_per_s"),
                    **{name: relayed[name].get("orders_per_s") for name in RELAYS},
                    "gateway": ours.get("orders_per_s"),
                },
            }
        gateway_rss_mb = rss_mb(pid)
    finally:
        stack.stop()
    return {
        "orders": orders,
        "runs": runs,
        "gateway_rss_mb": gateway_rss_mb,
        "orders_total": orders * len(MODES),
    }


def _cpu_line(run: dict[str, Any], side: str) -> str:
    cpu, busy = run["cpu_us_per_order"][side], run["cores_busy"][side]
    line = ", ".join(f"{name} {us:.0f} us" for name, us in cpu.items())
    line += f"; cores busy: {busy['all']:.2f} of {os.cpu_count()}"
    if side in busy and side != "bare":
        line += f", the {side}'s {busy[side]:.2f}"
    return line


def _latency_line(name: str, us: dict[str, float], orders_per_s: float | None) -> str:
    return (
        f"    {name:<21} p50 {us['p50']:7.0f} us  p99 {us['p99']:7.0f} us"
        f"  p99.9 {us['p999']:7.0f} us  max {us['max']:8.0f} us"
        + (f"  {orders_per_s:,.0f} orders/s" if orders_per_s else "")
    )


def report(results: dict[str, Any]) -> str:
    lines = [
        f"order round trip: new_order -> order.accepted (floor: NewOrderSingle -> "
        f"ExecutionReport), {results['orders']:,} orders per run; fixed rates count from "
        "when each order was due (coordinated omission corrected); the relay is the "
        "thinnest out-of-process gateway (bench/relay.py): the floor behind a Unix socket; "
        "the promise relay (bench/promise_relay.py) is the relay journaling, reading and "
        "keeping state the least a gateway keeping fixgw's promises must"
    ]
    for mode, run in results["runs"].items():
        rate, r, rr, tr = run["orders_per_s"], run["ratio"], run["relay_ratio"], run["to_relay"]
        pr = run["promise_to_relay"]
        lines += [
            f"  {mode}:",
            _latency_line("bare QuickFIX-Python", run["bare_us"], rate["bare"]),
            _latency_line("relay", run["relay_us"], rate["relay"]),
            _latency_line("promise relay", run["promise_relay_us"], rate["promise relay"]),
            _latency_line("gateway", run["gateway_us"], rate["gateway"]),
            f"    ratio to the floor    relay p50 {rr['p50']:.2f}  p99 {rr['p99']:.2f};"
            f"  gateway p50 {r['p50']:.2f}  p99 {r['p99']:.2f}",
            f"    gateway / relay       p50 {tr['p50']:.2f}  p99 {tr['p99']:.2f}"
            f"  CPU per order {tr['cpu']:.2f}",
            f"    promise relay / relay p50 {pr['p50']:.2f}  p99 {pr['p99']:.2f}"
            f"  CPU per order {pr['cpu']:.2f}",
            f"    CPU per order         floor: {_cpu_line(run, 'bare')}",
            f"                          relay: {_cpu_line(run, 'relay')}",
            f"                          promise relay: {_cpu_line(run, 'promise relay')}",
            f"                          gateway: {_cpu_line(run, 'gateway')}",
        ]
    lines.append(
        "  targets (issue 23): one at a time, gateway / relay p50 <= 1.15, p99 <= 1.3; CPU per "
        "order at 2,000/s and flat out <= 1.3 x the relay's; 2,000/s p99 <= 2.0 x the floor's; "
        "flat out, orders/s >= the relay's; gateway RSS after "
        f"{results['orders_total']:,} orders: {results['gateway_rss_mb']:.0f} MB"
    )
    return "\n".join(lines)


if __name__ == "__main__":
    print(report(measure(int(os.environ.get("FIXGW_BENCH_ORDERS", "2000")))))
