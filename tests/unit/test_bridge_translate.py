"""What an incremental subscriber of the bridge is sent (X): the change from the book it was
last sent to the book now, in the levels it sees."""

from __future__ import annotations

from decimal import Decimal as D

from fixgw.bridge.translate import book_changes

SENT = ({D("100"): D("1"), D("99"): D("2")}, {D("101"): D("3")})


def entries(bids: dict[D, D], asks: dict[D, D]) -> list[dict[int, str]]:
    message = book_changes("md-1", "BTC/USD", SENT, (bids, asks))
    assert message is not None and message.msg_type == "X"
    assert message.fields == {262: "md-1"}
    return [dict(e) for e in message.groups[268]]


def test_an_unchanged_book_sends_nothing() -> None:
    assert book_changes("md-1", "BTC/USD", SENT, (dict(SENT[0]), dict(SENT[1]))) is None


def test_a_new_level_a_changed_size_and_a_gone_level_each_make_one_entry() -> None:
    got = entries({D("100"): D("1.5"), D("98.5"): D("4")}, {D("101"): D("3"), D("102"): D("1")})
    assert got == [
        {279: "2", 269: "0", 55: "BTC/USD", 270: "99"},
        {279: "1", 269: "0", 55: "BTC/USD", 270: "100", 271: "1.5"},
        {279: "0", 269: "0", 55: "BTC/USD", 270: "98.5", 271: "4"},
        {279: "0", 269: "1", 55: "BTC/USD", 270: "102", 271: "1"},
    ]


def test_deletes_come_before_the_levels_that_take_their_place() -> None:
    """At depth 1 a new best ask replaces the old: the OMS never holds two."""
    got = entries(dict(SENT[0]), {D("100.5"): D("1")})
    assert [(e[279], e[270]) for e in got] == [("2", "101"), ("0", "100.5")]


def test_sizes_and_prices_go_as_plain_decimals() -> None:
    got = entries({D("100"): D("1E+1"), D("99"): D("2")}, dict(SENT[1]))
    assert got == [{279: "1", 269: "0", 55: "BTC/USD", 270: "100", 271: "10"}]
