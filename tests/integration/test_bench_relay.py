"""The relays the order bench compares the gateway with (`bench/relay.py`, and
`bench/promise_relay.py`, which also journals) really relay: every order of the bench's own
client goes through them to the simulator, which takes it, and is answered (the client waits
for each order's id in an acknowledgement only the exchange's ExecutionReport makes the relay
write), one at a time and paced."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.md_throughput import run_json
from bench.order_latency import RELAYS, order_stack, relay

ORDERS = 40


@pytest.fixture
def simulator(tmp_path: Path):  # type: ignore[no-untyped-def]
    stack = order_stack(tmp_path)
    stack.start_sim()
    yield stack
    stack.stop()


@pytest.mark.parametrize("module", RELAYS.values())
@pytest.mark.parametrize("pace", [[], ["--rate", "400"]], ids=["one at a time", "paced"])
def test_every_order_through_the_relay_reaches_the_simulator_and_is_answered(
    simulator, tmp_path: Path, pace: list[str], module: str
) -> None:
    with relay(simulator.sim_port, tmp_path, module) as (socket_path, _pid):
        result = run_json(
            ["bench.gw_orders", "--socket", socket_path, "--orders", str(ORDERS), *pace]
        )
    latencies = result.get("rtt_us") or result["latency_us"]
    assert len(latencies) == ORDERS
    assert all(us > 0 for us in latencies)
    logged = (tmp_path / "sim-store" / "orders.jsonl").read_text().splitlines()
    assert sum('"taken"' in line for line in logged) == ORDERS
    if module == "bench.promise_relay":  # each order journaled pending, then accepted
        journal = (tmp_path / "promise-relay" / "journal").read_text().splitlines()
        assert sum('"order.pending_new"' in line for line in journal) == ORDERS
        assert sum('"order.accepted"' in line for line in journal) == ORDERS
