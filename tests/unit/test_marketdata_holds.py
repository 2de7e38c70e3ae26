"""The gateway's own holds on market data: the back-off after a refusal, and its end."""

from __future__ import annotations

from fixgw.marketdata.backoff import RETRY_CEILING_S, RETRY_FLOOR_S
from fixgw.marketdata.holds import Holds

BOOK = ("BTC/USD", "book")


def test_each_refusal_doubles_the_wait_up_to_the_ceiling_and_a_grant_starts_it_over() -> None:
    holds = Holds()
    holds.add("risk", BOOK)
    waits = [holds.refused(BOOK, now=0) for _ in range(8)]
    assert waits[:3] == [RETRY_FLOOR_S, 2 * RETRY_FLOOR_S, 4 * RETRY_FLOOR_S]
    assert waits[-1] == RETRY_CEILING_S
    holds.granted(BOOK)
    assert holds.refused(BOOK, now=0) == RETRY_FLOOR_S


def test_a_refused_stream_is_due_once_its_wait_is_over_and_only_once() -> None:
    holds = Holds()
    holds.add("risk", BOOK)
    holds.refused(BOOK, now=100)
    assert holds.due(now=100.5) == []
    assert holds.due(now=101) == [BOOK]
    assert holds.due(now=200) == []  # asked again: not due until refused again


def test_a_logon_makes_every_waiting_stream_due_at_once() -> None:
    holds = Holds()
    trades = ("BTC/USD", "trades")
    for key in (BOOK, trades):
        holds.add("risk", key)
        holds.refused(key, now=0)
    assert sorted(holds.due()) == sorted([BOOK, trades])


def test_the_last_holder_to_let_go_ends_the_hold_and_its_back_off() -> None:
    holds = Holds()
    holds.add("risk", BOOK)
    holds.add("bridge", BOOK)
    holds.refused(BOOK, now=0)
    holds.remove("risk", BOOK)
    assert BOOK in holds and holds.holders(BOOK) == frozenset({"bridge"})
    holds.remove("bridge", BOOK)
    assert BOOK not in holds
    assert holds.due() == []
