"""Gateway memory: RSS holding 10 books of depth 200 (a client subscribed to each); after
100,000 orders sent flat out, each filled at once against a deep ask (the gateway remembers
the last `orders.keep_closed` closed ones); then after 10,000 more left open, which gives
what one open order costs."""

from __future__ import annotations

import os
import tempfile
from decimal import Decimal
from pathlib import Path
from typing import Any

from bench.md_throughput import FUNDS, rss_mb, run_json
from fixgw.api.client import Client
from fixgw.testing import LocalStack, free_port

BOOKS = 10
DEPTH = 200
FILLED = "LTC/USD"
RESTING = "REST/USD"
OPEN_ORDERS = 10_000


def book(n: int) -> dict[str, list[list[str]]]:
    mid = Decimal(100 * (n + 1))
    tick = Decimal("0.01")
    return {
        "bids": [[str(mid - tick * (i + 1)), "1.5"] for i in range(DEPTH)],
        "asks": [[str(mid + tick * (i + 1)), "2.5"] for i in range(DEPTH)],
    }


def measure(orders: int) -> dict[str, Any]:
    symbols = [f"B{n}/USD" for n in range(BOOKS)]
    stack = LocalStack(
        root=Path(tempfile.mkdtemp(prefix="fixgw-bench-memory-")),
        sim_port=free_port(),
        books={
            **{s: book(n) for n, s in enumerate(symbols)},
            FILLED: {"asks": [["1", "1000000000"]]},
            RESTING: {},
        },
        symbols=[*symbols, FILLED, RESTING],
        log_level="warning",
        balances=FUNDS,
        gateway_overrides={
            "account": {"refresh_s": 0, "after_fill": False},
            "market_data": {"stale_after_s": 0},
        },
    )
    try:
        stack.start_sim()
        stack.start_gateway()
        assert stack.gateway is not None and stack.gateway.popen is not None
        pid = stack.gateway.popen.pid
        logged_on = rss_mb(pid)
        with Client.connect(stack.socket_path, name="bench-books", timeout=30) as watcher:
            for symbol in symbols:
                reply = watcher.request("md_subscribe", symbol=symbol, depth=0, what=["book"])
                held = len(reply["bids"]) + len(reply["asks"])
                if held != 2 * DEPTH:
                    raise SystemExit(f"{symbol}: {held} levels held, not {2 * DEPTH}")
            with_books = rss_mb(pid)
            filled = _flat_out(stack, orders, FILLED)
            after_orders = rss_mb(pid)
            _flat_out(stack, OPEN_ORDERS, RESTING)
            with_open = rss_mb(pid)
        peak = rss_mb(pid, "VmHWM")
    finally:
        stack.stop()
    return {
        "books": BOOKS,
        "depth": DEPTH,
        "orders": orders,
        "orders_per_s": filled["orders_per_s"],
        "open_orders": OPEN_ORDERS,
        "rss_mb": {
            "logged_on": logged_on,
            "with_books": with_books,
            "after_orders": after_orders,
            "with_open_orders": with_open,
            "peak": peak,
        },
        "bytes_per_open_order": (with_open - after_orders) * 1024 * 1024 / OPEN_ORDERS,
    }


def _flat_out(stack: LocalStack, orders: int, symbol: str) -> dict[str, Any]:
    return run_json(
        [
            "bench.gw_orders",
            *("--socket", stack.socket_path, "--orders", str(orders), "--rate", "0"),
            *("--prefix", symbol.partition("/")[0].lower(), "--symbol", symbol),
        ]
    )


def report(results: dict[str, Any]) -> str:
    rss = results["rss_mb"]
    return (
        f"gateway memory: {results['books']} books of depth {results['depth']} held, then "
        f"{results['orders']:,} orders filled ({results['orders_per_s']:,.0f} orders/s), then "
        f"{results['open_orders']:,} left open\n"
        f"  RSS logged on {rss['logged_on']:.0f} MB, with the books {rss['with_books']:.0f} MB,"
        f" after the filled orders {rss['after_orders']:.0f} MB (target < 150), with the open"
        f" ones {rss['with_open_orders']:.0f} MB, peak {rss['peak']:.0f} MB;"
        f" {results['bytes_per_open_order']:,.0f} bytes per open order"
    )


if __name__ == "__main__":
    print(report(measure(int(os.environ.get("FIXGW_BENCH_MEMORY_ORDERS", "100000")))))
