"""Order round trip, one order at a time: a socket client through the gateway, against a
bare QuickFIX-Python initiator talking to the same simulator (the floor)."""

from __future__ import annotations

import os
import statistics
import tempfile
from pathlib import Path
from typing import Any

from bench.md_throughput import BARE, bare_command, cpu_seconds, rss_mb, run_json
from fixgw.testing import LocalStack, free_port


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


def order_stack(root: Path, env: dict[str, str] | None = None) -> LocalStack:
    """The simulator (with the bare initiator's account) and the gateway the order benches
    run: orders rest on LTC/USD, no account or market-data requests of the gateway's own."""
    return LocalStack(
        root=root,
        sim_port=free_port(),
        books={"LTC/USD": {}},
        symbols=["LTC/USD"],
        log_level="info",  # as shipped: every order event is logged
        sim_overrides={"accounts": [BARE]},
        gateway_overrides={
            "account": {"refresh_s": 0, "after_fill": False},
            "market_data": {"stale_after_s": 0},
        },
        env=env or {},
    )


def measure(orders: int) -> dict[str, Any]:
    stack = order_stack(Path(tempfile.mkdtemp(prefix="fixgw-bench-orders-")))
    runs: dict[str, Any] = {}
    try:
        stack.start_sim()
        bare = [
            *bare_command("bench.bare_orders", stack.sim_port),
            "--orders",
            str(orders),
        ]
        floors = {}
        for n, (mode, rate) in enumerate(MODES.items()):
            rate_arg = "one" if rate is None else str(rate)
            floors[mode] = run_json([*bare, "--rate", rate_arg, "--prefix", f"bare{n}"])
        stack.start_gateway()
        assert stack.gateway is not None and stack.gateway.popen is not None
        pid = stack.gateway.popen.pid
        gateway = ["bench.gw_orders", "--socket", stack.socket_path, "--orders", str(orders)]
        for n, (mode, rate) in enumerate(MODES.items()):
            paced = [] if rate is None else ["--rate", str(rate), "--prefix", f"gw{n}"]
            cpu_before = cpu_seconds(pid)
            ours = run_json([*gateway, *paced])
            cpu_us = (cpu_seconds(pid) - cpu_before) / orders * 1e6
            floor = floors[mode]
            f = percentiles(floor.get("rtt_us") or floor["latency_us"])
            g = percentiles(ours.get("rtt_us") or ours["latency_us"])
            runs[mode] = {
                "bare_us": f,
                "gateway_us": g,
                "ratio": {k: g[k] / f[k] for k in ("p50", "p99")},
                "gateway_cpu_us_per_order": cpu_us,
                "orders_per_s": {
                    "bare": floor.get("orders_per_s"),
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


def report(results: dict[str, Any]) -> str:
    lines = [
        f"order round trip: new_order -> order.accepted (floor: NewOrderSingle -> "
        f"ExecutionReport), {results['orders']:,} orders per run; fixed rates count from "
        "when each order was due (coordinated omission corrected)"
    ]
    for mode, run in results["runs"].items():
        b, g, r, rate = run["bare_us"], run["gateway_us"], run["ratio"], run["orders_per_s"]
        lines += [
            f"  {mode}:",
            f"    bare QuickFIX-Python  p50 {b['p50']:7.0f} us  p99 {b['p99']:7.0f} us"
            f"  p99.9 {b['p999']:7.0f} us  max {b['max']:8.0f} us"
            + (f"  {rate['bare']:,.0f} orders/s" if rate["bare"] else ""),
            f"    gateway               p50 {g['p50']:7.0f} us  p99 {g['p99']:7.0f} us"
            f"  p99.9 {g['p999']:7.0f} us  max {g['max']:8.0f} us"
            + (f"  {rate['gateway']:,.0f} orders/s" if rate["gateway"] else "")
            + f"  CPU {run['gateway_cpu_us_per_order']:.0f} us/order (the whole process)",
            f"    ratio                 p50 {r['p50']:.2f}  p99 {r['p99']:.2f}",
        ]
    lines.append(
        f"  targets: one at a time p50 <= 1.25, p99 <= 1.5; 2,000/s p99 <= 2.0; gateway RSS "
        f"after {results['orders_total']:,} orders: {results['gateway_rss_mb']:.0f} MB (< 150)"
    )
    return "\n".join(lines)


if __name__ == "__main__":
    print(report(measure(int(os.environ.get("FIXGW_BENCH_ORDERS", "2000")))))
