"""The CPU accounting of `bench/order_latency.py`: what each process used per order, and how
many of the machine's cores that keeps busy at the rate a run kept; which other interpreter
`bench/interpreters.py` runs the gateway on."""

from __future__ import annotations

import os
import sys
import time

import pytest

from bench import interpreters
from bench.order_latency import CpuMeter, achieved_rate, cores_busy


def test_a_paced_run_keeps_the_rate_it_reports() -> None:
    assert achieved_rate({"latency_us": [900.0] * 4, "orders_per_s": 1980.5}) == 1980.5


def test_one_at_a_time_the_rate_is_one_order_per_round_trip() -> None:
    assert achieved_rate({"rtt_us": [1000.0, 3000.0]}) == pytest.approx(500.0)


def test_cores_busy_are_cpu_per_order_times_the_rate_and_add_up() -> None:
    busy = cores_busy({"client": 100.0, "simulator": 300.0, "gateway": 450.0}, 2000.0)
    assert busy == pytest.approx({"client": 0.2, "simulator": 0.6, "gateway": 0.9, "all": 1.7})


def test_the_meter_reads_each_process_and_takes_the_clients_own_figure() -> None:
    with CpuMeter({"gateway": os.getpid()}) as meter:
        busy_until = time.process_time() + 0.05  # /proc counts in ticks of 10 ms
        while time.process_time() < busy_until:
            pass
    per_order = meter.per_order_us({"cpu_s": 0.25}, orders=1000)
    assert per_order["client"] == pytest.approx(250.0)
    assert per_order["gateway"] > 0
    assert set(per_order) == {"client", "gateway"}


def test_the_other_interpreter_is_never_the_venvs_own_nor_one_that_is_not_there(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FIXGW_BENCH_PYTHON", sys.executable)
    assert interpreters.optimized_python() is None
    monkeypatch.setenv("FIXGW_BENCH_PYTHON", "/nonexistent/python3")
    assert interpreters.optimized_python() is None
