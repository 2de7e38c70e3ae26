"""Where one order's round trip goes in the gateway as it ships (compiled), step by step,
beside the relay's own two steps: the gateway's own work on the critical path, measured.

`stages.py` times the Python sources: its marks are wrappers, and compiled code calls past
them. This bench times the compiled build. It copies the checkout's tracked files, puts a
mark (a timestamp appended to a list, about 0.2 us) at the start of each step in that copy
(`MARKS`: each by the function it is in and a line of it), compiles the copy as `make
install` does, and runs the gateway from it, one order at a time. The relay runs interpreted
and is timed by wrappers: its `new_order` line to the order sent, and its `fromApp` to the
line written. An anchor not found exactly once stops the bench (the code moved: move the
mark with it); the unit tests check every anchor against the sources.

    python -m bench.critical_path [--orders 3000] [--keep DIR]

About three minutes, two of them compiling.
"""

from __future__ import annotations

import argparse
import ast
import atexit
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from itertools import pairwise
from pathlib import Path
from typing import Any, NamedTuple

from bench.md_throughput import run_json
from bench.order_latency import order_stack, relay

ROOT = Path(__file__).resolve().parent.parent
MARKS_MODULE = "fixgw/_bench_marks.py"
_MARKS_SOURCE = '''"""Written by bench/critical_path.py into its copy of the checkout."""

import atexit
import os
from time import perf_counter_ns

_marks: list[tuple[int, int]] = []


def mark(n: int) -> None:
    _marks.append((n, perf_counter_ns()))


def _write() -> None:
    with open(f"{os.environ['FIXGW_BENCH_MARKS']}.{os.getpid()}", "w") as f:
        f.writelines(f"{n} {t}\\n" for n, t in _marks)


if "FIXGW_BENCH_MARKS" in os.environ:
    atexit.register(_write)
'''
_IMPORT = "from fixgw._bench_marks import mark as _bench_mark"


class Mark(NamedTuple):
    name: str
    path: str
    function: str
    """`Class.method` or `function`: the mark goes inside it."""
    anchor: str | None
    """A line of the function (stripped); None: at the start of its body."""
    after: bool = False


def _around(before: str, after: str, path: str, function: str, anchor: str) -> list[Mark]:
    """A mark on each side of one line: what the line costs lies between them."""
    return [Mark(before, path, function, anchor), Mark(after, path, function, anchor, True)]


_SERVER, _ENTRY, _QF = "fixgw/api/server.py", "fixgw/engine/order_entry.py", "fixgw/fix/qf.py"
_SESSION, _INBOUND, _JOURNAL = (
    "fixgw/fix/initiator.py",
    "fixgw/engine/inbound.py",
    "fixgw/journal.py",
)
_NEW_ORDER = "OrderEntry.new_order"

MARKS = [
    Mark("request_read", _SERVER, "ClientConnection.data_received", None),
    Mark("order_taken", _ENTRY, _NEW_ORDER, None),
    *_around(
        "checked",
        "built",
        _ENTRY,
        _NEW_ORDER,
        "message = venue.new_order(cmd)  # nothing is journaled if it fails",
    ),
    Mark(
        "tracked",
        _ENTRY,
        _NEW_ORDER,
        "self._journal.flush()  # on disk before the exchange can know of it",
    ),
    Mark("sending", _ENTRY, _NEW_ORDER, "if delay:"),
    *_around(
        "text_written",
        "quickfix_message",
        _QF,
        "send_message",
        "message = _quickfix.new_Message(text, False) if text is not None "
        "else _to_quickfix_by_field(msg)",
    ),
    Mark("to_app", _SESSION, "_Application.toApp", None),
    Mark("order_out", _SESSION, "RawInbound.onOutgoing", None),
    Mark(
        "sent", _ENTRY, _NEW_ORDER, "return OrderAccepted(cl_ord_id=cl_ord_id, status=event.status)"
    ),
    Mark("report_in", _SESSION, "RawInbound.onIncoming", None),
    Mark("from_app", _SESSION, "_Application.fromApp", None),
    Mark("report_taken", _INBOUND, "InboundRouter._take", None),
    Mark("report_read", _INBOUND, "InboundRouter._take", "self._reports.handle(report)"),
    Mark(
        "report_handled", _INBOUND, "InboundRouter._take", "self._journal.mark_inbound(msg_seq_num)"
    ),
    Mark("journal_flush", _JOURNAL, "Journal._flush", None),
    Mark(
        "journal_written",
        _JOURNAL,
        "Journal._flush",
        "if self._inbound_seq == self._written_inbound_seq or self._inbound_seq is None:",
    ),
    *_around(
        "client_write",
        "client_written",
        _SERVER,
        "ClientConnection.flush",
        "self.transport.write(data)",
    ),
]

PATH = [
    ("request_read", "the request line read into a NewOrder, dispatched"),
    ("order_taken", "checked (symbol, quantities, kill switch, session, risk), SubmitOrder made"),
    ("checked", "the NewOrderSingle built (the dialect)"),
    ("built", "paced, the order tracked, its pending_new encoded and queued"),
    ("tracked", "the journal's flush called"),
    ("journal_flush", "pending_new written: on disk before the exchange can know of the order"),
    ("journal_written", "the watchdog told"),
    ("sending", "the order written as one FIX string"),
    ("text_written", "QuickFIX reads the string into its Message"),
    ("quickfix_message", "QuickFIX's send, until toApp"),
    ("to_app", "toApp (sent-message log, counts), QuickFIX's store"),
    ("order_out", "the socket write to the exchange, back from QuickFIX"),
    ("sent", "on the wire, in the simulator, QuickFIX reading it"),
    ("report_in", "QuickFIX's checks, until fromApp"),
    ("from_app", "fromApp: the raw report handed to the gateway"),
    ("report_taken", "the ExecutionReport split and read into the domain's report"),
    ("report_read", "the order's state updated, its events encoded and queued"),
    ("report_handled", "QuickFIX's own work after fromApp, the loop's next turn"),
    ("journal_flush", "the journal written"),
    ("journal_written", "the inbound checkpoint written, the client's flush"),
    ("client_write", "the event written to the client"),
    ("client_written", ""),
]
"""One order's marks in the order its round trip passes them, each with what the step from it
to the next does. A mark met more than once (the journal's flush) counts where it comes in
this order."""

REQUEST = ("request_read", "sent")
EXCHANGE = ("sent", "from_app")
REPORT = ("from_app", "client_written")


def _function_node(tree: ast.Module, qualname: str) -> ast.FunctionDef:
    *owners, name = qualname.split(".")
    body: list[ast.stmt] = tree.body
    for owner in owners:
        classes = [n for n in body if isinstance(n, ast.ClassDef) and n.name == owner]
        body = classes[0].body if len(classes) == 1 else []
    found = [n for n in body if isinstance(n, ast.FunctionDef) and n.name == name]
    if len(found) != 1:
        raise SystemExit(f"critical_path: no one function {qualname}")
    return found[0]


def _insertion(lines: list[str], tree: ast.Module, mark: Mark) -> tuple[int, str]:
    """(index of the line the mark goes before, its indentation)."""
    fn = _function_node(tree, mark.function)
    if mark.anchor is None:
        body = fn.body
        first = body[1] if len(body) > 1 and _is_docstring(body[0]) else body[0]
        line = lines[first.lineno - 1]
        return first.lineno - 1, line[: len(line) - len(line.lstrip())]
    assert fn.end_lineno is not None
    hits = [
        i for i in range(fn.lineno - 1, fn.end_lineno) if lines[i].strip() == mark.anchor.strip()
    ]
    if len(hits) != 1:
        raise SystemExit(
            f"critical_path: {mark.name}: {mark.anchor!r} is in {mark.function} "
            f"{len(hits)} times, not once"
        )
    line = lines[hits[0]]
    return hits[0] + (1 if mark.after else 0), line[: len(line) - len(line.lstrip())]


def _is_docstring(node: ast.stmt) -> bool:
    return (
        isinstance(node, ast.Expr)
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
    )


def marked_source(source: str, marks: Iterable[tuple[int, Mark]]) -> str:
    """`source` with a mark call at each of `marks` (number, mark) and the import they need."""
    lines = source.split("\n")
    tree = ast.parse(source)
    inserts = sorted(
        ((*_insertion(lines, tree, mark), n) for n, mark in marks), key=lambda x: -x[0]
    )
    for index, indent, n in inserts:  # from the bottom up: the indexes above stay right
        lines.insert(index, f"{indent}_bench_mark({n})")
    future = lines.index("from __future__ import annotations")
    lines.insert(future + 1, _IMPORT)
    return "\n".join(lines)


def marked_copy(into: Path) -> None:
    """The checkout's tracked files, as they are now, marked, in `into`."""
    files = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout.split(b"\0")
    for name in filter(None, (f.decode() for f in files)):
        source, target = ROOT / name, into / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_symlink():  # fixgw/spec -> ../spec
            target.symlink_to(os.readlink(source))
        elif source.is_file():
            shutil.copy2(source, target)
    for path in sorted({m.path for m in MARKS}):
        mine = [(n, m) for n, m in enumerate(MARKS) if m.path == path]
        target = into / path
        target.write_text(marked_source(target.read_text(), mine))
    (into / MARKS_MODULE).write_text(_MARKS_SOURCE)


def compile_copy(copy: Path) -> None:
    subprocess.run(
        [sys.executable, "setup.py", "--quiet", "build_ext", "--inplace"],
        cwd=copy,
        check=True,
        stdout=subprocess.DEVNULL,
    )


def order_paths(marks: list[tuple[int, int]]) -> list[list[int]]:
    """Each order's times (ns) at the marks of `PATH`, in that order; an order that did not
    pass every one of them in that order (the first, or a refused one) is left out."""
    index = {m.name: n for n, m in enumerate(MARKS)}
    path = [index[name] for name, _ in PATH]
    starts = [i for i, (n, _) in enumerate(marks) if n == path[0]]
    orders = []
    for begin, end in zip(starts, [*starts[1:], len(marks)], strict=True):
        times: list[int] = []
        i = begin
        for wanted in path:
            while i < end and marks[i][0] != wanted:
                i += 1
            if i == end:
                break
            times.append(marks[i][1])
            i += 1
        if len(times) == len(path):
            orders.append(times)
    return orders


def step_p50s(orders: list[list[int]]) -> list[float]:
    """The p50 (us) of each step of `PATH`, from its mark to the next."""
    return [
        statistics.median((o[i + 1] - o[i]) / 1000 for o in orders) for i in range(len(PATH) - 1)
    ]


def span_p50(orders: list[list[int]], span: tuple[str, str]) -> float:
    names = [name for name, _ in PATH]
    start = names.index(span[0])
    end = len(names) - 1 - names[::-1].index(span[1])
    return statistics.median((o[end] - o[start]) / 1000 for o in orders)


# ---------------------------------------------------------------- the relay, timed


def run_timed_relay() -> None:
    """`bench.relay` with its two steps timed; written to $FIXGW_BENCH_RELAY at exit."""
    from bench import relay as r

    times: dict[str, list[float]] = {"order": [], "report": []}

    def timed(key: str, f: Callable[..., Any]) -> Callable[..., Any]:
        def run(*args: Any) -> Any:
            start = time.perf_counter_ns()
            try:
                return f(*args)
            finally:
                times[key].append((time.perf_counter_ns() - start) / 1000)

        return run

    relayed = r.relayed
    setattr(r.Relay, "fromApp", timed("report", r.Relay.fromApp))  # noqa: B010
    setattr(r, "relayed", lambda sid, options: timed("order", relayed(sid, options)))  # noqa: B010

    def write() -> None:
        Path(os.environ["FIXGW_BENCH_RELAY"]).write_text(json.dumps(times))

    atexit.register(write)
    r.main()


# ---------------------------------------------------------------- the run


def _run(
    orders: int, copy: Path, root: Path
) -> tuple[list[tuple[int, int]], dict[str, list[float]], dict[str, float]]:
    """The relay, then the marked gateway, on one simulator: the gateway's marks (number,
    ns), the relay's step times and both round trips' p50 (us)."""
    marks_file, relay_file = root / "marks", root / "relay.json"
    os.environ["FIXGW_BENCH_RELAY"] = str(relay_file)
    os.environ["PYTHONPATH"] = str(copy)  # the relay too builds its orders with compiled code
    stack = order_stack(root, env={"PYTHONPATH": str(copy), "FIXGW_BENCH_MARKS": str(marks_file)})
    try:
        stack.start_sim()
        with relay(stack.sim_port, root, "bench.critical_path") as (sock, _):
            relayed = run_json(
                ["bench.gw_orders", "--socket", sock, "--orders", str(orders), "--prefix", "r"]
            )
        stack.start_gateway()
        assert stack.gateway is not None and stack.gateway.popen is not None
        pid = stack.gateway.popen.pid
        gateway = run_json(
            [
                "bench.gw_orders",
                "--socket",
                stack.socket_path,
                "--orders",
                str(orders),
                "--prefix",
                "g",
            ]
        )
    finally:
        stack.stop()
    gateway_marks = Path(f"{marks_file}.{pid}")
    if not gateway_marks.exists():
        raise SystemExit("critical_path: the gateway did not run the marked copy")
    marks = [
        (int(n), int(t))
        for n, t in (line.split() for line in gateway_marks.read_text().split("\n") if line)
    ]
    relay_times = json.loads(relay_file.read_text())
    round_trips = {
        "relay": statistics.median(relayed["rtt_us"]),
        "gateway": statistics.median(gateway["rtt_us"]),
    }
    return marks, relay_times, round_trips


def measure(orders: int, copy: Path) -> dict[str, Any]:
    marked_copy(copy)
    compile_copy(copy)
    with tempfile.TemporaryDirectory(prefix="fixgw-critical-path-") as where:
        marks, relay_times, round_trips = _run(orders, copy, Path(where))
    paths = order_paths(marks)
    return {
        "orders": orders,
        "orders_marked": len(paths),
        "steps": [
            {"from": a, "to": b, "does": does, "p50_us": p50}
            for ((a, does), (b, _)), p50 in zip(pairwise(PATH), step_p50s(paths), strict=True)
        ],
        "request_p50_us": span_p50(paths, REQUEST),
        "exchange_p50_us": span_p50(paths, EXCHANGE),
        "report_p50_us": span_p50(paths, REPORT),
        "relay_order_p50_us": statistics.median(relay_times["order"]),
        "relay_report_p50_us": statistics.median(relay_times["report"]),
        "round_trip_p50_us": round_trips,
    }


def report(r: dict[str, Any]) -> str:
    steps = [step["p50_us"] for step in r["steps"]]
    text = [step["does"] for step in r["steps"]]
    out = [
        f"One order's round trip through the compiled gateway, step by step (p50, "
        f"{r['orders_marked']:,} orders one at a time), beside the relay's own steps:"
    ]

    def section(title: str, first: int, last: int) -> None:
        out.append(f"  {title}")
        out.extend(f"    {steps[i]:7.1f} us  {text[i]}" for i in range(first, last))

    names = [name for name, _ in PATH]
    sent, from_app = names.index("sent"), names.index("from_app")
    section("request read -> order sent", 0, sent)
    out.append(
        f"    {r['request_p50_us']:7.1f} us  in all; the relay's line to its order sent: "
        f"{r['relay_order_p50_us']:.1f} us"
    )
    section("the exchange", sent, from_app)
    section("fromApp -> the event written to the client", from_app, len(PATH) - 1)
    out.append(
        f"    {r['report_p50_us']:7.1f} us  in all; the relay's fromApp to its line written: "
        f"{r['relay_report_p50_us']:.1f} us"
    )
    own = (
        r["request_p50_us"]
        - r["relay_order_p50_us"]
        + r["report_p50_us"]
        - r["relay_report_p50_us"]
    )
    rt = r["round_trip_p50_us"]
    out.append(
        f"  the gateway's own work on the round trip: {own:.0f} us; round trip p50: gateway "
        f"{rt['gateway']:.0f} us, relay {rt['relay']:.0f} us ({rt['gateway'] / rt['relay']:.2f})"
    )
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=3000)
    parser.add_argument("--keep", type=Path, help="an empty directory: the marked copy, kept")
    args = parser.parse_args()
    if args.keep is not None:
        if args.keep.exists() and any(args.keep.iterdir()):
            raise SystemExit(f"critical_path: {args.keep} is not empty")
        args.keep.mkdir(parents=True, exist_ok=True)
        print(report(measure(args.orders, args.keep)))
        return
    with tempfile.TemporaryDirectory(prefix="fixgw-marked-") as copy:
        print(report(measure(args.orders, Path(copy))))


if __name__ == "__main__":
    if "--socket" in sys.argv:  # started by `relay()` as the relay
        run_timed_relay()
    else:
        main()
