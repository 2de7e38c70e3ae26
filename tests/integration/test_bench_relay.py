"""The relay the order bench compares the gateway with (`bench/relay.py`) really relays:
every order of the bench's own client goes through it to the simulator, which takes it, and
is answered (the client waits for each order's id in an acknowledgement only the exchange's
ExecutionReport makes the relay write), one at a time and paced."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.md_throughput import run_json
from bench.order_latency import order_stack, relay

ORDERS = 40


@pytest.fixture
def simulator(tmp_path: Path):  # type: ignore[no-untyped-def]
    stack = order_stack(tmp_path)
    stack.start_sim()
    yield stack
    stack.stop()


@pytest.mark.parametrize("pace", [[], ["--rate", "400"]], ids=["one at a time", "paced"])
def test_every_order_through_the_relay_reaches_the_simulator_and_is_answered(
    simulator, tmp_path: Path, pace: list[str]
) -> None:
    with relay(simulator.sim_port, tmp_path) as (socket_path, _pid):
        result = run_json(
            ["bench.gw_orders", "--socket", socket_path, "--orders", str(ORDERS), *pace]
        )
    latencies = result.get("rtt_us") or result["latency_us"]
    assert len(latencies) == ORDERS
    assert all(us > 0 for us in latencies)
    logged = (tmp_path / "sim-store" / "orders.jsonl").read_text().splitlines()
    assert sum('"taken"' in line for line in logged) == ORDERS
