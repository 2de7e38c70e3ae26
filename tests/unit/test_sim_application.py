"""The simulator's QuickFIX side and the parts it hands messages to, run without a socket:
every message it would send is caught at `Session.sendToTarget`."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal as D
from pathlib import Path

import pytest
import quickfix as fix

from fixgw.config import SimAccount, SimBook, SimConfig
from fixgw.fix.message import SOH, FixMessage, encode, parse
from fixgw.sim.exchange import SimApplication
from fixgw.sim.faults import Faults
from fixgw.sim.outbox import Outbox

Sent = list[tuple[str, FixMessage]]


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> Iterator[Sent]:
    caught: Sent = []

    def send_to_target(message: fix.Message, sid: fix.SessionID) -> bool:
        caught.append((sid.getTargetCompID().getValue(), parse(message.toString())))
        return True

    monkeypatch.setattr(fix.Session, "sendToTarget", staticmethod(send_to_target))
    yield caught


def config(store: Path, **faults: list[str]) -> SimConfig:
    return SimConfig(
        store_dir=str(store),
        accounts=[SimAccount(comp_id="A", api_key="k", secret_key="s")],
        symbols={"BTC/USD": SimBook(asks=[(D(101), D(1))])},
        **faults,
    )


_seq = iter(range(1, 10_000))


def inbound(msg_type: str, *body: tuple[int, str], client: str = "A") -> fix.Message:
    header = [(35, msg_type), (34, str(next(_seq))), (49, client), (56, "OKSERVER")]
    return fix.Message(encode("FIX.4.4", header, body), False)


def new_order(cl_ord_id: str, qty: str, price: str, account: str = "k,s") -> fix.Message:
    return inbound(
        "D", (1, account), (11, cl_ord_id), (38, qty), (40, "2"), (44, price), (54, "1"),
        (55, "BTC/USD"),
    )  # fmt: skip


def session(client: str = "A") -> fix.SessionID:
    return fix.SessionID("FIX.4.4", "OKSERVER", client)


def kinds(sent: Sent) -> list[tuple[str, str, str]]:
    """(MsgType, ClOrdID, ExecType) of each message sent."""
    return [(m.msg_type, m.fields.get(11, ""), m.fields.get(150, "")) for _, m in sent]


def test_bad_credentials_are_refused_and_the_logout_says_why(tmp_path: Path, sent: Sent) -> None:
    app = SimApplication(config(tmp_path))
    with pytest.raises(fix.RejectLogon):
        app.fromAdmin(inbound("A", (98, "0"), (108, "30"), (553, "k"), (554, "bad")), session())
    logout = inbound("5")
    app.toAdmin(logout, session())
    assert f"{SOH}8500=1{SOH}" in logout.toString()
    app.fromAdmin(inbound("A", (98, "0"), (108, "30"), (553, "k"), (554, "s")), session())
    again = inbound("5")
    app.toAdmin(again, session())
    assert "8500=" not in again.toString() and app.errors == 0


@pytest.mark.parametrize(
    ("faults", "answer"),
    [
        ({"unavailable": ["H"]}, ("E1000", {11: "c1", 58: "H cannot be served at the moment"})),
        ({"unsupported": ["H"]}, ("j", {45: "1", 372: "H", 379: "c1", 380: "3"})),
        ({}, ("handled", {})),
    ],
)
def test_a_fault_answers_in_place_of_the_handler(
    tmp_path: Path, sent: Sent, faults: dict[str, list[str]], answer: tuple[str, dict[int, str]]
) -> None:
    handled: list[str] = []
    msg = FixMessage("H", {34: "1", 11: "c1"})
    Faults(config(tmp_path, **faults), Outbox("OKSERVER")).run(
        msg, "A", lambda m, client: handled.append(client)
    )
    if answer[0] == "handled":
        assert handled == ["A"] and sent == []
        return
    assert handled == [] and [(c, m.msg_type) for c, m in sent] == [("A", answer[0])]
    assert answer[1].items() <= sent[0][1].fields.items()


def test_a_type_without_a_handler_gets_a_business_reject(tmp_path: Path, sent: Sent) -> None:
    Faults(config(tmp_path), Outbox("OKSERVER")).run(FixMessage("AE", {34: "7"}), "A", None)
    assert [(m.msg_type, m.fields[45], m.fields[372]) for _, m in sent] == [("j", "7", "AE")]


def test_an_unanswered_type_is_acted_on_in_silence(tmp_path: Path, sent: Sent) -> None:
    app = SimApplication(config(tmp_path, unanswered=["D"]))
    app.fromApp(new_order("quiet", "1", "100"), session())
    assert sent == []
    app.fromApp(inbound("H", (11, "quiet"), (54, "1"), (55, "BTC/USD")), session())
    assert kinds(sent) == [("8", "quiet", "I")] and sent[0][1].fields[39] == "0"


def test_a_restart_replays_the_order_log_in_silence(tmp_path: Path, sent: Sent) -> None:
    first = SimApplication(config(tmp_path))
    for msg in (
        new_order("wrong-account", "1", "100", account="k,WRONG"),
        new_order("rests", "2", "99"),
        new_order("fills", "0.5", "101"),
        new_order("canceled", "1", "98"),
        inbound("F", (11, "c"), (41, "canceled"), (54, "1"), (55, "BTC/USD")),
    ):
        first.fromApp(msg, session())
    assert kinds(sent) == [
        ("8", "wrong-account", "8"),
        ("8", "rests", "0"),
        ("8", "fills", "0"),
        ("8", "fills", "2"),  # OKCoin reports a fill as ExecType 2
        ("8", "canceled", "0"),
        ("8", "c", "4"),
    ]
    log_before = (tmp_path / "orders.jsonl").read_text()
    sent.clear()

    second = SimApplication(config(tmp_path))

    assert sent == [] and second.errors == 0
    assert (tmp_path / "orders.jsonl").read_text() == log_before
    view = [(o.order_id, o.cl_ord_id, o.status, o.cum_qty) for o in second.engine.orders.values()]
    assert view == [
        (o.order_id, o.cl_ord_id, o.status, o.cum_qty) for o in first.engine.orders.values()
    ]
    assert second.ledger.balances("A") == first.ledger.balances("A")
    second.fromApp(new_order("rests", "1", "97"), session())
    assert kinds(sent) == [("8", "rests", "8")]  # its ClOrdIDs came back too
