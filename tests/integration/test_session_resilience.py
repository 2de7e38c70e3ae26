"""The session to the exchange across its outages: backoff between attempts, visible in
`status` and the log, and the operator's sequence-number reset."""

from __future__ import annotations

import json
import shutil
import signal

import pytest

from fixgw.api.client import ApiError
from fixgw.testing import LocalStack, wait_until
from tests.integration.conftest import StackFactory

pytestmark = pytest.mark.integration


def scheduled_delays(stack: LocalStack, after_line: int = 0) -> list[float]:
    """The reconnect delays the gateway logged, from line `after_line` of its log on."""
    assert stack.gateway is not None
    return [
        entry["delay_s"]
        for line in stack.gateway.log().splitlines()[after_line:]
        if line.startswith("{")
        and (entry := json.loads(line))["event"] == "exchange not connected; next attempt scheduled"
    ]


def test_attempts_back_off_while_the_exchange_is_away_then_the_session_comes_back(
    make_stack: StackFactory,
) -> None:
    stack = make_stack(session={"reconnect": {"floor_s": 1, "ceiling_s": 4, "jitter": 0}})
    with stack.client() as gw:
        gw.subscribe(["session"])
        assert stack.sim is not None and stack.gateway is not None
        at_kill = len(stack.gateway.log().splitlines())
        stack.sim.stop(signal.SIGKILL)
        down = gw.next_event(15)
        assert down["type"] == "session.down" and down["reason"] == "disconnected"
        wait_until(
            lambda: len(scheduled_delays(stack, at_kill)) >= 4, 40, "four scheduled attempts"
        )
        assert scheduled_delays(stack, at_kill)[:4] == [1, 2, 4, 4]
        connection = gw.status()["connection"]
        assert connection["failures_in_a_row"] >= 3
        assert connection["phase"] in ("waiting", "connecting")

        stack.start_sim()
        up = gw.next_event(15)
        assert up["type"] == "session.up"
        wait_until(lambda: gw.status()["ready"], 15, "reconciliation")
        connection = gw.status()["connection"]
        assert connection["phase"] == "up" and connection["failures_in_a_row"] == 0


def test_sequence_numbers_reset_only_on_request_and_only_while_the_session_is_down(
    make_stack: StackFactory,
) -> None:
    stack = make_stack()
    with stack.client() as gw:
        gw.subscribe(["session"])
        for _ in range(3):
            gw.request("account")
        before = gw.status()["seq_nums"]
        assert before["next_sender"] > 3
        with pytest.raises(ApiError) as refused:
            gw.request("session_reset_seq")
        assert refused.value.code == "session_up"

        assert stack.sim is not None
        stack.sim.stop()
        assert gw.next_event(15)["type"] == "session.down"
        wait_until(
            lambda: gw.status()["connection"]["phase"] == "waiting", 15, "the session to wait"
        )
        kept = gw.status()["seq_nums"]  # across the outage: gaps get resent, not reset
        assert kept["next_sender"] >= before["next_sender"] > 1
        reset = gw.request("session_reset_seq")
        assert reset["seq_nums"] == {"next_sender": 1, "next_target": 1}

        shutil.rmtree(stack.root / "sim-store")  # the exchange started its day afresh too
        stack.start_sim()
        assert gw.next_event(20)["type"] == "session.up"
        assert gw.status()["seq_nums"]["next_sender"] < before["next_sender"]
