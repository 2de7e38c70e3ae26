"""The session to the exchange across its outages: backoff between attempts, visible in
`status` and the log, the operator's sequence-number reset, and no other reset: not at a
restart on a later day, not at UTC midnight."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import quickfix as fix

from fixgw.api.client import ApiError
from fixgw.config import standard_fix44_dictionary
from fixgw.fix.qf import ALWAYS_ON, make_settings
from fixgw.testing import LocalStack, wait_until
from tests.integration.conftest import EventLog, StackFactory, in_own_process
from tests.integration.qfapp import QuietApplication

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
    stack = make_stack(
        session={"reconnect": {"floor_s": 1, "ceiling_s": 4, "jitter": 0, "stable_s": 0}}
    )
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
        assert connection["phase"] in ("down", "connecting")

        stack.start_sim()
        up = gw.next_event(15)
        assert up["type"] == "session.up"
        wait_until(lambda: gw.status()["ready"], 15, "reconciliation")
        connection = gw.status()["connection"]
        assert connection["phase"] == "up" and connection["failures_in_a_row"] == 0


def test_a_session_that_ends_soon_after_its_logon_counts_as_a_failed_attempt(
    make_stack: StackFactory,
) -> None:
    """An exchange that takes the Logon and drops the session must not be knocked on at the
    floor's pace: the session is up for less than `stable_s`, so the wait grows."""
    stack = make_stack(
        session={"reconnect": {"floor_s": 1, "ceiling_s": 4, "jitter": 0, "stable_s": 30}}
    )
    with stack.client() as gw:
        assert gw.status()["connection"]["failures_in_a_row"] == 0
        assert stack.sim is not None and stack.gateway is not None
        at_kill = len(stack.gateway.log().splitlines())
        stack.sim.stop(signal.SIGKILL)
        wait_until(lambda: len(scheduled_delays(stack, at_kill)) >= 2, 30, "two scheduled attempts")
        assert scheduled_delays(stack, at_kill)[:2] == [2, 4]


def test_a_stop_ends_the_session_as_the_operators_doing_not_as_a_fault(
    make_stack: StackFactory,
) -> None:
    """SIGTERM logs the exchange out: the log says the gateway stopped, at info, not a
    warning of a connection lost, which an operator's alerting would page on."""
    stack = make_stack()
    with stack.client() as gw:
        assert gw.status()["ready"]
    assert stack.gateway is not None
    assert stack.gateway.stop() == 0
    downs = [
        entry
        for line in stack.gateway.log().splitlines()
        if line.startswith("{") and (entry := json.loads(line))["event"] == "session down"
    ]
    assert [(e["level"], e["reason"]) for e in downs] == [("info", "the gateway stopped")]


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A file system of 256 KB of its own (tmpfs). Needs root, as CI runs the tests."""
    disk = tmp_path / "small-disk"
    disk.mkdir()
    mount = ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(disk)]
    if os.geteuid() != 0 or subprocess.run(mount, check=False).returncode != 0:
        pytest.skip("a file system of its own needs root (mount)")
    yield disk
    subprocess.run(["umount", "-l", str(disk)], check=False)


def fill_up(disk: Path) -> Path:
    """A file that takes every block `disk` had left."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        while os.write(fd, bytes(4096)):
            pass
    except OSError:
        pass
    finally:
        os.close(fd)
    return filler


def test_a_store_that_cannot_be_written_ends_the_session_until_it_can_and_nothing_is_doubled(
    make_stack: StackFactory, small_disk: Path
) -> None:
    """QuickFIX sends nothing it cannot store (heartbeats neither), and said so only to its
    own log: the session looked up and ready while every order was refused as "not logged
    on (it is ending)", until the exchange dropped it; and the store's files stayed failed,
    so no Logon went out again before a restart."""
    store_dir = small_disk / "store"
    stack = make_stack(session={"store_dir": str(store_dir)})
    with stack.client() as gw:
        gw.subscribe(["orders", "session"])
        events = EventLog(gw)
        filler = fill_up(small_disk)
        placed: list[str] = []
        with pytest.raises(ApiError) as refused:  # the store's last block takes a few
            for _ in range(200):
                order = gw.new_order(symbol="BTC/USD", side="buy", type="market", qty="0.01")
                placed.append(order["cl_ord_id"])
        assert refused.value.code == "not_connected"
        assert "QuickFIX's store cannot be written" in str(refused.value)
        down = events.first(lambda e: e["type"] == "session.down")
        assert down["reason"].startswith("QuickFIX's store cannot be written")
        assert f"{store_dir}/" in down["reason"] and "No space left on device" in down["reason"]
        status = gw.status()
        assert status["session"] != "up" and not status["ready"]
        with pytest.raises(ApiError, match="QuickFIX's store cannot be written"):
            gw.new_order(symbol="BTC/USD", side="buy", type="market", qty="0.01")

        filler.unlink()
        events.first(lambda e: e["type"] == "session.up", timeout=30)
        wait_until(lambda: gw.status()["ready"], 15, "the gateway to reconcile")
        order = gw.new_order(symbol="BTC/USD", side="buy", type="market", qty="0.01")
        placed.append(order["cl_ord_id"])
        for cl_ord_id in placed:
            events.find(cl_ord_id, "order.filled")
        trades = gw.request("trades", limit=1000)["trades"]
    assert sorted(t["cl_ord_id"] for t in trades) == sorted(placed)
    assert stack.gateway is not None
    errors = [json.loads(line) for line in stack.gateway.log().splitlines() if '"error"' in line]
    assert any(str(store_dir) in e.get("why", "") for e in errors if e["level"] == "error")


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
        wait_until(lambda: gw.status()["connection"]["phase"] == "down", 15, "the session to wait")
        kept = gw.status()["seq_nums"]  # across the outage: gaps get resent, not reset
        assert kept["next_sender"] >= before["next_sender"] > 1
        reset = gw.request("session_reset_seq")
        assert reset["seq_nums"] == {"next_sender": 1, "next_target": 1}

        shutil.rmtree(stack.root / "sim-store")  # the exchange started its day afresh too
        stack.start_sim()
        assert gw.next_event(20)["type"] == "session.up"
        assert gw.status()["seq_nums"]["next_sender"] < before["next_sender"]


def _stored_on_an_earlier_day(store: Path) -> None:
    """What a store looks like to QuickFIX when its session began on an earlier UTC day."""
    (session_file,) = store.glob("*.session")
    session_file.write_text("20260101-12:00:00\n")


def test_sequence_numbers_survive_a_restart_on_a_later_utc_day(make_stack: StackFactory) -> None:
    """Sequence numbers go back to 1 only when the operator says so, not because the gateway
    (or the exchange) started again on another day than its session began."""
    stack = make_stack()
    with stack.client() as gw:
        for _ in range(3):
            gw.request("account")
        before = gw.status()["seq_nums"]
    assert stack.gateway is not None and stack.sim is not None
    stack.gateway.stop()
    stack.sim.stop()
    _stored_on_an_earlier_day(Path(stack.gateway_config()["session"]["store_dir"]))
    _stored_on_an_earlier_day(stack.root / "sim-store")
    stack.start_sim()
    stack.start_gateway()  # logs on: the exchange took our numbers as they were
    with stack.client() as gw:
        after = gw.status()["seq_nums"]
    assert after["next_sender"] > before["next_sender"] and after["next_target"] > 1


def _cross_midnight(root: str) -> None:
    """In a process of its own (QuickFIX's sessions are global to one): a session with
    fixgw's settings whose day ends while it runs: its store is made to look as if it
    began yesterday and read again, then QuickFIX's timer runs."""
    sid = fix.SessionID("FIX.4.4", "US", "THEM")
    settings = make_settings(
        {
            "ConnectionType": "initiator",
            "FileStorePath": root,
            "DataDictionary": str(standard_fix44_dictionary()),
            **ALWAYS_ON,
        },
        {sid: {"SocketConnectHost": "127.0.0.1", "SocketConnectPort": 1, "HeartBtInt": 30}},
    )
    initiator = fix.SocketInitiator(QuietApplication(), fix.FileStoreFactory(settings), settings)
    session = fix.Session.lookupSession(sid)
    session.setNextSenderMsgSeqNum(500)
    session.setNextTargetMsgSeqNum(700)
    _stored_on_an_earlier_day(Path(root))
    session.refresh()  # QuickFIX reads the store again: its day is over
    for _ in range(3):
        initiator.poll()
    print(json.dumps({"next_target": int(session.getExpectedTargetNum())}))
    os._exit(0)


def test_a_running_session_keeps_its_sequence_numbers_past_utc_midnight(tmp_path: Path) -> None:
    """QuickFIX's default daily schedule would log out and start again from 1 at midnight."""
    assert in_own_process(__name__, "_cross_midnight", str(tmp_path))["next_target"] == 700
