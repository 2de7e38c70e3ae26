"""Where one order's round trip goes: the gateway runs with a timestamp taken at each stage
of the path (the request read, the NewOrderSingle handed to QuickFIX and back, the
ExecutionReport in `fromApp` and in the gateway, and the event written to the client),
and orders are sent one at a time. Prints the median of each stage beside the floor.

The timestamps come from wrappers put around the gateway's own functions in its process
(`run_gateway`), so this bench knows those functions' names; each mark costs about a
microsecond, which the stages include.
"""

from __future__ import annotations

import atexit
import json
import os
import runpy
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from itertools import pairwise
from pathlib import Path
from typing import Any

from bench.md_throughput import bare_command, run_json
from bench.order_latency import order_stack

ROOT = Path(__file__).resolve().parent.parent
STAGES = [
    ("request", "request read -> NewOrderSingle handed to QuickFIX (checks, journal, encoding)"),
    ("send", "QuickFIX sends it (toApp, store, socket write)"),
    ("exchange", "on the wire, in the simulator and QuickFIX reading it, until fromApp"),
    ("hand-off", "fromApp -> the gateway handles the report, inside the callback"),
    ("report", "report read, order tracked, journaled -> event written to the client"),
]
_MARKS = ("T0", "T1", "T2", "T3", "T4", "T5")


def run_gateway() -> None:
    """The gateway's `fixgw run`, with marks; they are written out when it exits."""
    from fixgw import gateway, session
    from fixgw.api import server

    marks: list[tuple[str, int]] = []
    clock = time.perf_counter_ns

    def replace(owner: Any, name: str, wrap: Callable[[Any], Any]) -> None:
        setattr(owner, name, wrap(getattr(owner, name)))

    def before(owner: Any, name: str, mark: str, when: Callable[..., bool]) -> None:
        def wrap(original: Callable[..., Any]) -> Callable[..., Any]:
            def wrapped(*args: Any) -> Any:
                if when(*args):
                    marks.append((mark, clock()))
                return original(*args)

            return wrapped

        replace(owner, name, wrap)

    def around_send(original: Callable[..., bool]) -> Callable[..., bool]:
        def wrapped(*args: Any) -> bool:
            marks.append(("T1", clock()))
            sent = original(*args)
            marks.append(("T2", clock()))
            return sent

        return wrapped

    def after_flush(original: Callable[[Any], None]) -> Callable[[Any], None]:
        def wrapped(conn: Any) -> None:
            accepted = any(b'"order.accepted"' in line for line in conn._pending)
            original(conn)
            if accepted:
                marks.append(("T5", clock()))

        return wrapped

    before(server.ClientConnection, "handle", "T0", lambda _, line: b"new_order" in line)
    replace(session.ExchangeSession, "send", around_send)
    before(session._Application, "fromApp", "T3", lambda *_: True)
    app = session.Happening.APP
    before(gateway.Gateway, "on_inbound", "T4", lambda _, item: item.what is app)
    replace(server.ClientConnection, "_flush", after_flush)

    def write() -> None:
        Path(os.environ["FIXGW_BENCH_STAGES_OUT"]).write_text(json.dumps(marks))

    atexit.register(write)
    runpy.run_module("fixgw", run_name="__main__", alter_sys=True)


def stage_times(marks: list[tuple[str, int]]) -> dict[str, list[float]]:
    """Microseconds per stage, one entry per order that went through every mark in order."""
    times: dict[str, list[float]] = {name: [] for name, _ in STAGES}
    order: dict[str, int] = {}
    for mark, t in marks:
        if mark == "T0":
            order = {"T0": t}
        elif order and mark not in order and len(order) == _MARKS.index(mark):
            order[mark] = t
            if mark == "T5":
                for (name, _), (a, b) in zip(STAGES, pairwise(_MARKS), strict=True):
                    times[name].append((order[b] - order[a]) / 1000)
                order = {}
    return times


def measure(orders: int) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix="fixgw-bench-stages-"))
    out = root / "stages.json"
    stack = order_stack(root, env={"PYTHONPATH": str(ROOT), "FIXGW_BENCH_STAGES_OUT": str(out)})
    launcher = root / "python-with-stages"
    launcher.write_text(
        f'#!/bin/sh\nshift 2\nexec "{sys.executable}" -c '
        '"import bench.stages; bench.stages.run_gateway()" "$@"\n'
    )
    launcher.chmod(0o755)
    try:
        stack.start_sim()
        bare = bare_command("bench.bare_orders", stack.sim_port)
        floor = run_json([*bare, "--orders", str(orders), "--rate", "one", "--prefix", "stages"])
        stack.python = str(launcher)  # `-m fixgw` becomes run_gateway()
        stack.start_gateway()
        gateway = ["bench.gw_orders", "--socket", stack.socket_path, "--orders", str(orders)]
        client = run_json([*gateway, "--prefix", "stages"])
    finally:
        stack.stop()
    times = stage_times(json.loads(out.read_text()))
    stages = {name: statistics.median(values) for name, values in times.items()}
    return {
        "orders": orders,
        "orders_marked": len(times["report"]),
        "floor_p50_us": statistics.median(floor["rtt_us"]),
        "client_p50_us": statistics.median(client["rtt_us"]),
        "stages_p50_us": stages,
    }


def report(results: dict[str, Any]) -> str:
    stages = results["stages_p50_us"]
    inside = sum(stages.values())
    lines = [
        f"where the round trip goes (p50 of each stage, {results['orders_marked']:,} orders "
        "one at a time, the gateway with a timestamp at each stage):"
    ]
    lines += [f"  {stages[name]:6.0f} us  {what}" for name, what in STAGES]
    lines += [
        f"  {results['client_p50_us'] - inside:6.0f} us  the client's two socket hops and its "
        "own reading (round trip p50 minus the stages)",
        f"  round trip p50 {results['client_p50_us']:.0f} us; the floor's "
        f"{results['floor_p50_us']:.0f} us spans what 'send' and 'exchange' span here",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    print(report(measure(int(os.environ.get("FIXGW_BENCH_ORDERS", "2000")))))
