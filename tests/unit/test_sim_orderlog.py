"""The simulator's order log: what it keeps, masks and gives back after a crash."""

from __future__ import annotations

from pathlib import Path

from fixgw.sim.orderlog import REFUSED, TAKEN, LoggedRequest, OrderLog

NEW_ORDER = "8=FIX.4.4\x0135=D\x011=key,secret\x0111=c1\x0155=BTC/USD\x01"


def test_requests_come_back_in_order_with_the_stem_and_secrets_masked(tmp_path: Path) -> None:
    path = tmp_path / "orders.jsonl"
    log = OrderLog(path)
    assert log.read() == (None, [])
    log.open("stem1")
    log.append("client-a", NEW_ORDER, TAKEN, "stem1-1")
    log.append("client-b", NEW_ORDER.replace("c1", "c2"), REFUSED)
    with path.open("a") as f:
        f.write('{"client": "client-a", "raw": "8=FIX')  # killed mid-write
    stem, requests = OrderLog(path).read()
    assert stem == "stem1"
    assert [(r.client, r.raw.split("\x0111=")[1][:2], r.outcome, r.order_id) for r in requests] == [
        ("client-a", "c1", TAKEN, "stem1-1"),
        ("client-b", "c2", REFUSED, None),
    ]
    assert "secret" not in path.read_text() and "\x011=***\x01" in requests[0].raw
    restarted = OrderLog(path)
    restarted.open("stem1")
    restarted.append("client-a", NEW_ORDER.replace("c1", "c3"), TAKEN, "stem1-2")
    assert len(OrderLog(path).read()[1]) == 3


def test_reopening_keeps_the_first_stem(tmp_path: Path) -> None:
    path = tmp_path / "orders.jsonl"
    OrderLog(path).open("first")
    OrderLog(path).open("second")
    assert OrderLog(path).read()[0] == "first"


def test_a_log_written_before_outcomes_were_recorded_still_reads(tmp_path: Path) -> None:
    path = tmp_path / "orders.jsonl"
    path.write_text('{"stem": "old"}\n{"client": "client-a", "raw": "8=FIX.4.4"}\n')
    assert OrderLog(path).read() == ("old", [LoggedRequest("client-a", "8=FIX.4.4", None)])
