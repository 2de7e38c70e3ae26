"""`make bench`: every benchmark, printed, and written as JSON for comparison across commits.

FIXGW_BENCH_MD_MESSAGES sets the market-data run's length (default 200,000),
FIXGW_BENCH_ORDERS the order round-trip runs' (default 10,000 each), and
FIXGW_BENCH_MEMORY_ORDERS the memory run's (default 100,000), FIXGW_BENCH_HOPS the
socket round trips' (default 10,000), and FIXGW_BENCH_NATS_ORDERS the NATS JetStream runs'
(default 10,000; bench/jetstream.py); the stage timings take FIXGW_BENCH_ORDERS orders.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from bench import hops, jetstream, md_throughput, memory, order_latency, stages
from fixgw.fix.message import parse
from fixgw.venues.okcoin.inbound import GROUPS, execution_report

_REPORT = (
    "8=FIX.4.4\x019=250\x0135=8\x0134=12\x0149=OKSERVER\x0152=20261125-22:00:00.123\x01"
    "56=fixgw\x0137=O123-45\x0111=c-123\x0117=E99-1\x01150=0\x0139=0\x0154=1\x0155=LTC/USD\x01"
    "38=1\x0140=2\x0144=60.5\x0114=0\x01151=1\x016=0\x0160=20261125-22:00:00.120\x0110=123\x01"
)


def interpreter_yardstick_us() -> float:
    """One ExecutionReport split and read into the domain's report, in a warm loop (best of
    twenty runs of 5,000: on a shared VM a single run can be half as fast again).

    Builds of the same Python differ by a quarter or more on one machine (pyenv's default
    build against Debian's, here: 27-29 us against 20), and the gateway's figures move with
    them: two results compare only with this beside them."""
    received = datetime.now(UTC)
    best = float("inf")
    for _ in range(20):
        start = time.perf_counter()
        for _ in range(5_000):
            execution_report(parse(_REPORT, GROUPS), received)
        best = min(best, time.perf_counter() - start)
    return round(best / 5_000 * 1e6, 1)


def machine() -> dict[str, object]:
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "interpreter": os.path.realpath(sys.executable),
        "execution_report_us": interpreter_yardstick_us(),
        "platform": platform.platform(),
        "commit": commit or None,
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def main() -> None:
    messages = int(os.environ.get("FIXGW_BENCH_MD_MESSAGES", "200000"))
    about = machine()
    orders = int(os.environ.get("FIXGW_BENCH_ORDERS", "10000"))
    memory_orders = int(os.environ.get("FIXGW_BENCH_MEMORY_ORDERS", "100000"))
    round_trips = int(os.environ.get("FIXGW_BENCH_HOPS", "10000"))
    nats_orders = int(os.environ.get("FIXGW_BENCH_NATS_ORDERS", "10000"))
    results = {
        "machine": about,
        "market_data": md_throughput.measure(messages),
        "order_round_trip": order_latency.measure(orders),
        "memory": memory.measure(memory_orders),
        "hops": hops.measure(round_trips),
        "stages": stages.measure(orders),
        "nats": jetstream.measure(nats_orders),
    }
    print(
        f"machine: {about['cpus']} CPUs, Python {about['python']} ({about['interpreter']}, "
        f"reads an ExecutionReport in {about['execution_report_us']} us), {about['platform']}"
    )
    print(md_throughput.report(results["market_data"]))
    print(order_latency.report(results["order_round_trip"]))
    print(memory.report(results["memory"]))
    floor = results["order_round_trip"]["runs"]["one at a time"]["bare_us"]
    print(hops.report(results["hops"], floor))
    print(stages.report(results["stages"]))
    print(jetstream.report(results["nats"]))
    out = Path("bench/results")
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{str(about['when']).replace(':', '')}.json"
    text = json.dumps(results, indent=2)
    path.write_text(text)
    (out / "latest.json").write_text(text)
    print(f"written: {path}")


if __name__ == "__main__":
    main()
