"""Two checkouts' gateways, paired: one at a time and flat out, in alternating rounds.

A single `make bench` cannot tell a change of a few percent from the VM's drift between runs;
rounds that alternate the two gateways within minutes can. Each checkout runs its own code
(its venv, compiled as its `make install` left it, its simulator and its bench helpers), so
an older commit can be measured against a newer one:

    git worktree add /tmp/old <commit> && make -C /tmp/old install
    python -m bench.paired /tmp/old . --rounds 6 --orders 5000

Prints each round and the medians: CPU per order and orders/s flat out, p50 and CPU per
order one at a time.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any


def side(orders: int) -> dict[str, Any]:
    """One round of the checkout in the working directory (run there, with its bench)."""
    from bench.md_throughput import run_json
    from bench.order_latency import CpuMeter, order_stack, percentiles

    stack = order_stack(Path(tempfile.mkdtemp(prefix="fixgw-bench-paired-")))
    result: dict[str, Any] = {}
    try:
        stack.start_sim()
        stack.start_gateway()
        assert stack.gateway is not None and stack.gateway.popen is not None
        pid = stack.gateway.popen.pid
        for n, (mode, paced) in enumerate({"one": [], "flat": ["--rate", "0"]}.items()):
            command = ["bench.gw_orders", "--socket", stack.socket_path, "--orders", str(orders)]
            with CpuMeter({"gateway": pid}) as meter:
                run = run_json([*command, *paced, "--prefix", f"pair{n}"])
            result[mode] = {
                "p50": percentiles(run.get("rtt_us") or run["latency_us"])["p50"],
                "cpu": meter.per_order_us(run, orders)["gateway"],
                "orders_per_s": run.get("orders_per_s"),
            }
    finally:
        stack.stop()
    return result


def round_of(checkout: Path, orders: int) -> dict[str, Any]:
    python = checkout / ".venv" / "bin" / "python"
    done = subprocess.run(
        [str(python), str(Path(__file__).resolve()), "--side", str(orders)],
        cwd=checkout,
        env={**os.environ, "PYTHONPATH": str(checkout)},
        capture_output=True,
        text=True,
        check=True,
    )
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def medians(rounds: list[dict[str, Any]]) -> dict[str, float]:
    def of(mode: str, key: str) -> float:
        return statistics.median(float(r[mode][key]) for r in rounds)

    return {
        "flat_cpu_us": of("flat", "cpu"),
        "flat_orders_per_s": of("flat", "orders_per_s"),
        "one_p50_us": of("one", "p50"),
        "one_cpu_us": of("one", "cpu"),
    }


def main() -> None:
    if sys.argv[1:2] == ["--side"]:
        print(json.dumps(side(int(sys.argv[2]))))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkouts", nargs=2, type=Path)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--orders", type=int, default=5000)
    args = parser.parse_args()
    rounds: dict[Path, list[dict[str, Any]]] = {c: [] for c in args.checkouts}
    for n in range(args.rounds):
        for checkout in args.checkouts:
            result = round_of(checkout.resolve(), args.orders)
            rounds[checkout].append(result)
            print(f"round {n + 1} {checkout}: {json.dumps(result)}", flush=True)
    for checkout, results in rounds.items():
        m = medians(results)
        print(
            f"{checkout}: flat out {m['flat_cpu_us']:.0f} us per order, "
            f"{m['flat_orders_per_s']:,.0f} orders/s; one at a time p50 {m['one_p50_us']:.0f} us, "
            f"{m['one_cpu_us']:.0f} us per order (medians of {args.rounds} rounds)"
        )


if __name__ == "__main__":
    main()
