"""`bench/critical_path.py`: its marks land where it says in the sources as they are now, and
its arithmetic reads one order's path through marks met more than once."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from bench import relay
from bench.critical_path import (
    MARKS,
    PATH,
    REPORT,
    REQUEST,
    Mark,
    marked_source,
    order_paths,
    span_p50,
    step_p50s,
)

ROOT = Path(__file__).resolve().parents[2]


def _marks_by_function(tree: ast.Module) -> dict[int, str]:
    """Each `_bench_mark(n)` call's n, with the function (`Class.method`) it is in."""
    found: dict[int, str] = {}

    def visit(node: ast.AST, owner: str) -> None:
        for child in ast.iter_child_nodes(node):
            name = owner
            if isinstance(child, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
                name = f"{owner}.{child.name}" if owner else child.name
            if (
                isinstance(child, ast.Call)
                and isinstance(child.func, ast.Name)
                and child.func.id == "_bench_mark"
            ):
                n = child.args[0]
                assert isinstance(n, ast.Constant) and isinstance(n.value, int)
                assert n.value not in found, f"mark {n.value} twice"
                found[n.value] = owner
            visit(child, name)

    visit(tree, "")
    return found


@pytest.mark.parametrize("path", sorted({m.path for m in MARKS}))
def test_every_mark_lands_once_in_the_function_it_names(path: str) -> None:
    mine = [(n, m) for n, m in enumerate(MARKS) if m.path == path]
    source = marked_source((ROOT / path).read_text(), mine)
    found = _marks_by_function(ast.parse(source))
    assert found == {n: m.function for n, m in mine}


def test_a_mark_lands_before_its_anchor_or_after_it_and_after_a_docstring() -> None:
    source = '''from __future__ import annotations


class Thing:
    def work(self) -> None:
        """Does it."""
        first()
        second()
'''
    marks = [
        (0, Mark("start", "x.py", "Thing.work", None)),
        (1, Mark("before", "x.py", "Thing.work", "second()")),
        (2, Mark("after", "x.py", "Thing.work", "second()", after=True)),
    ]
    lines = marked_source(source, marks).split("\n")
    body = lines[lines.index('        """Does it."""') + 1 :]
    assert body[:5] == [
        "        _bench_mark(0)",
        "        first()",
        "        _bench_mark(1)",
        "        second()",
        "        _bench_mark(2)",
    ]
    assert lines[1] == "from fixgw._bench_marks import mark as _bench_mark"


def test_an_anchor_or_a_function_the_code_no_longer_has_stops_the_bench() -> None:
    source = (ROOT / "fixgw/engine/order_entry.py").read_text()
    moved = Mark("sending", "fixgw/engine/order_entry.py", "OrderEntry.new_order", "if later:")
    with pytest.raises(SystemExit, match="sending"):
        marked_source(source, [(0, moved)])
    for gone in ("OrderEntry.place", "OrderDesk.new_order"):
        with pytest.raises(SystemExit, match=gone):
            marked_source(source, [(0, Mark("order_taken", "x.py", gone, None))])


def _order(start_ns: int) -> list[tuple[int, int]]:
    """One order's marks, 1 us apart, with what else an order passes on the way: the
    journal's flush after the send and the reply written, before the report comes in."""
    number = {m.name: n for n, m in enumerate(MARKS)}
    names = [name for name, _ in PATH]
    sent = names.index("sent")
    extra = ["journal_flush", "journal_written", "client_write", "client_written"]
    walk = [*names[: sent + 1], *extra, *names[sent + 1 :]]
    return [(number[name], start_ns + i * 1_000) for i, name in enumerate(walk)]


def test_an_order_is_read_along_its_path_past_marks_met_again() -> None:
    orders = order_paths([*_order(0), *_order(1_000_000)])
    assert len(orders) == 2
    steps = step_p50s(orders)
    names = [name for name, _ in PATH]
    assert len(steps) == len(PATH) - 1
    sent = names.index("sent")
    # 1 us a step, but the report comes in 5 us after the send: 4 marks of the reply between
    assert steps[sent] == 5.0
    assert all(s == 1.0 for i, s in enumerate(steps) if i != sent)
    assert span_p50(orders, REQUEST) == float(sent)
    assert span_p50(orders, REPORT) == float(len(names) - 1 - names.index("from_app"))


def test_an_order_that_missed_a_mark_is_left_out() -> None:
    number = {m.name: n for n, m in enumerate(MARKS)}
    refused = [m for m in _order(0) if m[0] != number["from_app"]]
    assert order_paths([*refused, *_order(1_000_000)]) == order_paths(_order(1_000_000))


def test_the_relay_has_the_two_steps_the_bench_times() -> None:
    assert callable(relay.Relay.fromApp)
    assert callable(relay.relayed)
