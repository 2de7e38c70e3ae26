"""Where one order's round trip goes: the gateway runs with a timestamp taken at each stage
of the path (the request read, the NewOrderSingle handed to QuickFIX and back, the
ExecutionReport in `fromApp` and in the gateway, and the event written to the client),
and orders are sent one at a time. Prints the median of each stage beside the floor.

The timestamps come from wrappers put around the gateway's own functions in its process
(`run_gateway`), so this bench knows those functions' names; each mark costs about a
microsecond, which the stages include. Within the stages, the steps that take most of the
gateway's part are timed the same way (`STEPS`), each by the stage it ran in.
"""

from __future__ import annotations

import atexit
import bisect
import json
import os
import runpy
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from importlib.machinery import SOURCE_SUFFIXES, FileFinder, SourceFileLoader
from itertools import pairwise
from pathlib import Path
from typing import Any

from bench.md_throughput import bare_command, run_json
from bench.order_latency import order_stack

ROOT = Path(__file__).resolve().parent.parent
STAGES = [
    ("request", "request read -> NewOrderSingle handed to QuickFIX (checks, journal, encoding)"),
    ("send", "handed to QuickFIX, which sends it (toApp, store, socket write)"),
    ("exchange", "on the wire, in the simulator and QuickFIX reading it, until fromApp"),
    ("hand-off", "fromApp -> the gateway handles the report, inside the callback"),
    ("report", "report read, order tracked, journaled -> event written to the client"),
]
_MARKS = ("T0", "T1", "T2", "T3", "T4", "T5")
STEPS = [
    ("api.server.p", "parse_line", "the JSON request parsed and checked"),
    ("venues.okcoin.outbound", "new_order_single", "the NewOrderSingle built (the dialect)"),
    ("fix.qf", "message_text", "written as one string for QuickFIX"),
    ("fix.initiator._Application", "toApp", "toApp (sent-message log, metrics)"),
    ("engine.inbound", "parse", "the ExecutionReport split into fields"),
    ("venues.okcoin.venue.OkcoinVenue", "read", "read into the domain's report (Decimals, enums)"),
    ("engine.tracker.OrderTracker", "apply_execution", "the order's state updated"),
    ("engine.order_events.OrderEvents", "publish", "events encoded, journaled, queued"),
    ("journal.Journal", "flush", "the journal written"),
    ("api.server.ClientConnection", "flush", "written to the client"),
]
"""(where, function, what it does): timed where the gateway calls it, by the stage it ran in."""


def import_python_sources() -> None:
    """Make every `fixgw` module load from its `.py` file, even where mypyc compiled it.

    The marks are wrappers put in place of module and class attributes, and compiled code
    calls its functions directly, past them; so this bench times the Python sources, which
    are what the compiled modules are built from."""
    package = ROOT / "fixgw"
    for directory in [package, *(d for d in package.rglob("*") if d.is_dir())]:
        finder = FileFinder(str(directory), (SourceFileLoader, SOURCE_SUFFIXES))
        sys.path_importer_cache[str(directory)] = finder


def run_gateway() -> None:
    """The gateway's `fixgw run`, with marks; they are written out when it exits."""
    import_python_sources()
    import fixgw
    import fixgw.venues.okcoin.venue
    from fixgw.api import server
    from fixgw.engine import inbound
    from fixgw.fix import initiator as session

    marks: list[tuple[str, int]] = []
    steps: list[tuple[str, int, int]] = []
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

    def timed(step: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        def wrap(original: Callable[..., Any]) -> Callable[..., Any]:
            def wrapped(*args: Any, **kwargs: Any) -> Any:
                start = clock()
                try:
                    return original(*args, **kwargs)
                finally:
                    steps.append((step, start, clock()))

            return wrapped

        return wrap

    for where, name, _ in STEPS:
        owner: Any = fixgw
        for part in where.split("."):
            owner = getattr(owner, part)
        replace(owner, name, timed(name))

    before(server.ClientConnection, "handle", "T0", lambda _, line: b"new_order" in line)
    replace(session.ExchangeSession, "send", around_send)
    before(session._Application, "fromApp", "T3", lambda *_: True)
    app = session.Happening.APP
    before(inbound.InboundRouter, "on_inbound", "T4", lambda _, item: item.what is app)
    replace(server.ClientConnection, "flush", after_flush)

    def write() -> None:
        Path(os.environ["FIXGW_BENCH_STAGES_OUT"]).write_text(json.dumps([marks, steps]))

    atexit.register(write)
    runpy.run_module("fixgw", run_name="__main__", alter_sys=True)


def order_marks(marks: list[tuple[str, int]]) -> list[dict[str, int]]:
    """The marks of each order that went through every one of them in order."""
    orders: list[dict[str, int]] = []
    order: dict[str, int] = {}
    for mark, t in marks:
        if mark == "T0":
            order = {"T0": t}
        elif order and mark not in order and len(order) == _MARKS.index(mark):
            order[mark] = t
            if mark == "T5":
                orders.append(order)
                order = {}
    return orders


def stage_times(orders: list[dict[str, int]]) -> dict[str, list[float]]:
    """Microseconds per stage, one entry per order."""
    times: dict[str, list[float]] = {name: [] for name, _ in STAGES}
    for order in orders:
        for (name, _), (a, b) in zip(STAGES, pairwise(_MARKS), strict=True):
            times[name].append((order[b] - order[a]) / 1000)
    return times


def step_times(
    orders: list[dict[str, int]], steps: list[tuple[str, int, int]]
) -> dict[str, dict[str, list[float]]]:
    """Microseconds per step, by the stage it started in: one entry per order that ran it
    there (a step run twice in one stage counts once, with both times)."""
    windows = sorted(
        (order[a], order[b], name)
        for order in orders
        for (name, _), (a, b) in zip(STAGES, pairwise(_MARKS), strict=True)
    )
    starts = [w[0] for w in windows]
    per_window: dict[tuple[int, str], float] = {}
    for step, start, end in steps:
        i = bisect.bisect_right(starts, start) - 1
        if i >= 0 and start < windows[i][1]:
            key = (i, step)
            per_window[key] = per_window.get(key, 0.0) + (end - start) / 1000
    times: dict[str, dict[str, list[float]]] = {}
    for (i, step), us in per_window.items():
        times.setdefault(windows[i][2], {}).setdefault(step, []).append(us)
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
    marks, steps = json.loads(out.read_text())
    marked = order_marks(marks)
    if not marked:
        raise RuntimeError(f"no order went through every mark; the gateway's log: {root}")
    times = stage_times(marked)
    return {
        "orders": orders,
        "orders_marked": len(marked),
        "floor_p50_us": statistics.median(floor["rtt_us"]),
        "client_p50_us": statistics.median(client["rtt_us"]),
        "stages_p50_us": {name: statistics.median(values) for name, values in times.items()},
        "steps_p50_us": {
            stage: {step: statistics.median(values) for step, values in by_step.items()}
            for stage, by_step in step_times(marked, steps).items()
        },
    }


def report(results: dict[str, Any]) -> str:
    stages = results["stages_p50_us"]
    inside = sum(stages.values())
    lines = [
        f"where the round trip goes (p50 of each stage, {results['orders_marked']:,} orders "
        "one at a time, the gateway from its Python sources with a timestamp at each stage):"
    ]
    steps = results.get("steps_p50_us", {})
    what_step = {name: what for _, name, what in STEPS}
    for name, what in STAGES:
        lines.append(f"  {stages[name]:6.0f} us  {what}")
        lines += [
            f"           {us:6.0f} us  {what_step[step]}"
            for step, us in steps.get(name, {}).items()
            if step in what_step
        ]
    lines += [
        f"  {results['client_p50_us'] - inside:6.0f} us  the client's two socket hops and its "
        "own reading (round trip p50 minus the stages)",
        f"  round trip p50 {results['client_p50_us']:.0f} us; the floor's "
        f"{results['floor_p50_us']:.0f} us spans what 'send' and 'exchange' span here, "
        "less the gateway's two steps in 'send'",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    print(report(measure(int(os.environ.get("FIXGW_BENCH_ORDERS", "2000")))))
