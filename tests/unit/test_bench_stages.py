"""The arithmetic behind `bench/stages.py` (the figures the README quotes come from it), and
the code it times."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench.stages import STEPS, order_marks, stage_times, step_times

ROOT = Path(__file__).resolve().parents[2]


def marks_of(start: int) -> list[tuple[str, int]]:
    """One order's marks, every stage 10 us long (times in ns)."""
    marks = ("T0", "T1", "T2", "T3", "T4", "T5")
    return [(mark, start + i * 10_000) for i, mark in enumerate(marks)]


def test_only_orders_that_went_through_every_mark_in_order_are_counted() -> None:
    broken = [("T0", 0), ("T1", 5_000), ("T3", 9_000)]  # no T2: QuickFIX refused it, say
    orders = order_marks([*broken, *marks_of(1_000_000), ("T4", 1_500_000)])
    assert len(orders) == 1
    assert stage_times(orders) == {
        "request": [10.0],
        "send": [10.0],
        "exchange": [10.0],
        "hand-off": [10.0],
        "report": [10.0],
    }


def test_a_step_counts_in_the_stage_it_started_in_and_twice_in_one_stage_adds_up() -> None:
    orders = order_marks([*marks_of(0), *marks_of(1_000_000)])
    steps = [
        ("parse_line", 1_000, 4_000),  # request, first order: 3 us
        ("flush", 2_000, 3_000),  # request: 1 us
        ("flush", 5_000, 7_000),  # request again: 2 us more
        ("flush", 41_000, 46_000),  # report: 5 us
        ("flush", 500_000, 501_000),  # between the orders: not counted
        ("parse_line", 1_001_000, 1_006_000),  # request, second order: 5 us
    ]
    assert step_times(orders, steps) == {
        "request": {"parse_line": [3.0, 5.0], "flush": [3.0]},
        "report": {"flush": [5.0]},
    }


def test_the_stages_bench_runs_the_gateway_from_its_python_sources() -> None:
    """Its marks wrap module attributes, which mypyc-compiled code would call past."""
    code = (
        "import bench.stages as s; s.import_python_sources(); "
        "import fixgw.gateway as g; print(g.__file__)"
    )
    where = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert where.stdout.strip() == str(ROOT / "fixgw" / "gateway.py")


def test_every_step_the_bench_times_is_a_function_the_gateway_has() -> None:
    """A step renamed in the code would leave the bench's gateway unable to start."""
    for where, name, _ in STEPS:
        owner: Any = importlib.import_module("fixgw")
        path = "fixgw"
        for part in where.split("."):
            path = f"{path}.{part}"
            try:
                owner = importlib.import_module(path)
            except ModuleNotFoundError:
                owner = getattr(owner, part)
        assert callable(getattr(owner, name, None)), f"{where}.{name}"
