"""Order round trip, one order at a time: a socket client through the gateway, against a
bare QuickFIX-Python initiator talking to the same simulator (the floor)."""

from __future__ import annotations

import os
import statistics
import tempfile
from pathlib import Path
from typing import Any

from bench.md_throughput import BARE, run_json
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


def measure(orders: int) -> dict[str, Any]:
    stack = LocalStack(
        root=Path(tempfile.mkdtemp(prefix="fixgw-bench-orders-")),
        sim_port=free_port(),
        books={"LTC/USD": {}},
        symbols=["LTC/USD"],
        log_level="warning",
        sim_overrides={"accounts": [BARE]},
        gateway_overrides={
            "account": {"refresh_s": 0, "after_fill": False},
            "market_data": {"stale_after_s": 0},
        },
    )
    try:
        stack.start_sim()
        bare = run_json(
            [
                "bench.bare_orders",
                "--port",
                str(stack.sim_port),
                "--comp-id",
                BARE["comp_id"],
                "--api-key",
                BARE["api_key"],
                "--secret-key",
                BARE["secret_key"],
                "--orders",
                str(orders),
            ]
        )
        stack.start_gateway()
        gateway = run_json(
            ["bench.gw_orders", "--socket", stack.socket_path, "--orders", str(orders)]
        )
    finally:
        stack.stop()
    floor, ours = percentiles(bare["rtt_us"]), percentiles(gateway["rtt_us"])
    return {
        "orders": orders,
        "bare_us": floor,
        "gateway_us": ours,
        "ratio": {k: ours[k] / floor[k] for k in ("p50", "p99")},
    }


def report(results: dict[str, Any]) -> str:
    b, g, r = results["bare_us"], results["gateway_us"], results["ratio"]
    return "\n".join(
        [
            f"order round trip, one at a time: {results['orders']:,} orders "
            "(new_order -> order.accepted; floor: NewOrderSingle -> ExecutionReport)",
            f"  bare QuickFIX-Python  p50 {b['p50']:6.0f} us  p99 {b['p99']:6.0f} us"
            f"  p99.9 {b['p999']:6.0f} us  max {b['max']:7.0f} us",
            f"  gateway               p50 {g['p50']:6.0f} us  p99 {g['p99']:6.0f} us"
            f"  p99.9 {g['p999']:6.0f} us  max {g['max']:7.0f} us",
            f"  ratio                 p50 {r['p50']:.2f} (target <= 1.25)  p99 {r['p99']:.2f}"
            " (target <= 1.5)",
        ]
    )


if __name__ == "__main__":
    print(report(measure(int(os.environ.get("FIXGW_BENCH_ORDERS", "2000")))))
