"""What the local wire writes of money and times: plain decimals with the value's digits,
times with microseconds, read back to equal values; anything else byte for byte as msgspec
writes it."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import pytest

from fixgw.api.protocol import reply_ok
from fixgw.bus import EventBus
from fixgw.domain import (
    AccountBalance,
    AnyEvent,
    BookSnapshot,
    CurrencyBalance,
    Event,
    OrderFilled,
    OrderStatus,
    OrderType,
    Side,
)
from fixgw.journal import Journal
from fixgw.results import Fill, Trades
from fixgw.wire import encode, encode_event

PLAIN = re.compile(r"[0-9]+(?:\.[0-9]+)?")
TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")
WHOLE_SECOND = datetime(2026, 12, 6, 10, 0, 0, tzinfo=UTC)
WITH_MICROS = datetime(2026, 12, 6, 10, 0, 0, 622000, tzinfo=UTC)

AMOUNTS = [
    # as a venue or a client writes them: every digit kept
    ("0.00000001", Decimal("0.00000001")),
    ("0.00000000", Decimal("0.00000000")),
    ("0.00000010", Decimal("0.00000010")),
    ("0.000001", Decimal("0.000001")),
    ("0.5", Decimal("0.5")),
    ("30000.10", Decimal("30000.10")),
    ("0", Decimal("0")),
    ("999999999999999.999999999999999999", Decimal("999999999999999.999999999999999999")),
    # as arithmetic leaves them: the value's digits, none in exponent form
    ("100", Decimal("1E+2")),
    ("0.0000000", Decimal("0E-7")),
    ("0.00000001", Decimal("0.5") - Decimal("0.49999999")),
]


def filled(**changes: Any) -> OrderFilled:
    fields: dict[str, Any] = {
        "ts": WITH_MICROS,
        "cl_ord_id": "fx1-1",
        "order_id": "V-1",
        "symbol": "BTC/USD",
        "side": Side.BUY,
        "order_type": OrderType.LIMIT,
        "qty": Decimal("0.5"),
        "price": Decimal("30010"),
        "status": OrderStatus.FILLED,
        "cum_qty": Decimal("0.5"),
        "leaves_qty": Decimal("0"),
        "avg_px": Decimal("30010"),
        "exec_id": "E-1",
        "last_qty": Decimal("0.5"),
        "last_px": Decimal("30010"),
    }
    return OrderFilled(**(fields | changes))


@pytest.mark.parametrize(("text", "value"), AMOUNTS)
def test_an_amount_is_a_plain_decimal_with_its_digits_and_reads_back_equal(
    text: str, value: Decimal
) -> None:
    event = filled(last_qty=value, cum_qty=value)
    line = encode_event(event)
    written = msgspec.json.decode(line)
    assert (written["last_qty"], written["cum_qty"]) == (text, text)
    assert PLAIN.fullmatch(written["last_qty"])
    again = msgspec.json.decode(line, type=AnyEvent)
    assert again == event and again.last_qty == value  # type: ignore[union-attr]
    assert reply_ok(1, {"amount": value}) == b'{"id":1,"ok":true,"result":{"amount":"%s"}}\n' % (
        text.encode()
    )


@pytest.mark.parametrize(
    ("ts", "text"),
    [
        (WHOLE_SECOND, "2026-12-06T10:00:00.000000Z"),
        (datetime(2026, 12, 6, 10, 0, 0, 1000, tzinfo=UTC), "2026-12-06T10:00:00.001000Z"),
        (WITH_MICROS, "2026-12-06T10:00:00.622000Z"),
    ],
)
def test_an_event_time_has_microseconds_and_reads_back_equal(ts: datetime, text: str) -> None:
    event = filled(ts=ts, last_qty=Decimal("0.00000001"))
    line = encode_event(event)
    assert msgspec.json.decode(line)["ts"] == text
    assert msgspec.json.decode(line, type=AnyEvent) == event


def test_every_event_has_one_time_its_ts_first_after_its_type() -> None:
    """What `encode_event` relies on: it mends `ts` where msgspec put it, and no other."""

    def concrete(cls: type[Event]) -> list[type[Event]]:
        below = [c for sub in cls.__subclasses__() for c in concrete(sub)]
        return below + ([cls] if cls.__struct_config__.tag is not None else [])

    kinds = concrete(Event)
    assert len(kinds) > 20
    for kind in kinds:
        fields = msgspec.structs.fields(kind)
        assert fields[0].name == "ts", kind
        assert not [f.name for f in fields[1:] if "datetime" in repr(f.type)], kind


def test_the_journal_reads_back_what_it_was_given(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    written: list[Event] = [
        filled(ts=WHOLE_SECOND, last_qty=Decimal("0.00000001"), leaves_qty=Decimal("0E-8")),
        AccountBalance(
            ts=WHOLE_SECOND,
            currency="USD",
            balance=[Decimal("0.00000010"), Decimal("5")],
            balances={"BTC": CurrencyBalance(free=Decimal("1E-8"), frozen=Decimal("0E-8"))},
        ),
    ]
    with Journal(path, fsync=False) as journal:
        EventBus(journal).publish_all(written)
    lines = path.read_bytes().splitlines()
    assert b'"ts":"2026-12-06T10:00:00.000000Z"' in lines[0]
    assert b'"last_qty":"0.00000001"' in lines[0] and b'"leaves_qty":"0.00000000"' in lines[0]
    assert b'"balance":["0.00000010","5"]' in lines[1]
    assert b'"free":"0.00000001","frozen":"0.00000000"' in lines[1]
    with Journal(path, fsync=False) as journal:
        assert list(journal.events()) == written


def test_market_data_levels_are_plain_decimals() -> None:
    book = BookSnapshot(
        ts=WHOLE_SECOND,
        symbol="BTC/USD",
        bids=[(Decimal("30000"), Decimal("1E-8"))],
        asks=[(Decimal("1E+2"), Decimal("0.5"))],
    )
    written = msgspec.json.decode(encode_event(book))
    assert (written["ts"], written["bids"], written["asks"]) == (
        "2026-12-06T10:00:00.000000Z",
        [["30000", "0.00000001"]],
        [["100", "0.5"]],
    )


def test_a_reply_s_times_have_microseconds_and_its_lookalike_text_is_left_alone() -> None:
    """A client's id may look like a time or an exponent: only the gateway's own decimals and
    times change."""
    fill = Fill(
        ts=WHOLE_SECOND,
        exec_id="1E-8",
        cl_ord_id="2026-12-06T10:00:00Z",
        order_id=None,
        symbol="BTC/USD",
        side=Side.SELL,
        qty=Decimal("1E-8"),
        price=Decimal("30000"),
    )
    reply = reply_ok(msgspec.Raw(b"3.0E+0"), Trades(trades=[fill]))
    assert reply.startswith(b'{"id":3.0E+0,')  # an id with a fraction, as the client sent it
    written = msgspec.json.decode(reply)["result"]["trades"][0]
    assert written["ts"] == "2026-12-06T10:00:00.000000Z" and TIME.fullmatch(written["ts"])
    assert (written["exec_id"], written["cl_ord_id"]) == ("1E-8", "2026-12-06T10:00:00Z")
    assert (written["qty"], written["price"]) == ("0.00000001", "30000")
    assert msgspec.convert(written, Fill) == fill


@pytest.mark.parametrize(
    "obj",
    [
        filled(),
        filled(cl_ord_id="ORDER-E-1", exec_id="T10:00:00Z"),  # looks like either: encoded again
        {"id": 1, "ok": True, "result": {"seq_nums": {"in": 3, "out": 4}}},
        Trades(trades=[]),
    ],
)
def test_anything_else_is_as_msgspec_writes_it(obj: Any) -> None:
    plain = msgspec.json.encode(obj)
    assert encode(obj) == plain
    if isinstance(obj, Event):
        assert encode_event(obj) == plain
