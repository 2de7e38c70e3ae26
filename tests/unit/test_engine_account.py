"""The account refresh, built alone on a clock of its own, and among the engine's real
services fed captured answers: asked every `refresh_s`; refused or left unanswered, it is
said once, asked less and less often (doubling, up to an hour), and asked no more after
fills, until an answer comes again.

`AccountRefresh` reads `time.monotonic()` where every other service reads `loop.time()`;
the test clock stands in for both (`monotonic_is_the_clock`)."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import pytest

from fixgw.api.protocol import ErrorCode
from fixgw.domain import AccountBalance, ErrorSource, ExchangeError
from fixgw.engine import account
from fixgw.engine.account import AFTER_FILL_DELAY_S, MAX_BACKOFF_S, AccountRefresh
from fixgw.errors import RequestError
from fixgw.ids import ClOrdIdGenerator
from tests.unit.engine_kit import RECEIVED, Clock, Engine

REFRESH_S = 10.0
ANSWER_WITHIN_S = 5.0


@pytest.fixture(autouse=True)
def monotonic_is_the_clock(clock: Clock, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(account, "time", SimpleNamespace(monotonic=clock.time))


class Asked:
    """The `send` the refresh is given: when each request went out, and its AccReqID."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.at: list[float] = []
        self.ids: list[str] = []

    def __call__(self, acc_req_id: str) -> bool:
        self.at.append(self.clock.now)
        self.ids.append(acc_req_id)
        return True

    def more_than(self, n: int) -> Callable[[], bool]:
        return lambda: len(self.at) > n

    def gaps(self, start: float) -> list[float]:
        times = [start, *self.at]
        return [b - a for a, b in itertools.pairwise(times)]


def alone(
    clock: Clock, refresh_s: float = REFRESH_S, after_fill: bool = True
) -> tuple[AccountRefresh, Asked]:
    asked = Asked(clock)
    refresh = AccountRefresh(
        clock, asked, ClOrdIdGenerator("rq"), refresh_s, after_fill, lambda: ANSWER_WITHIN_S
    )
    return refresh, asked


def test_the_account_is_asked_for_every_refresh_s(clock: Clock) -> None:
    refresh, asked = alone(clock)
    start = clock.now
    refresh.start()
    for n in range(3):
        clock.run_until(asked.more_than(n), limit_s=REFRESH_S)
        refresh.answered(asked.ids[-1])
    clock.advance(1)
    assert asked.gaps(start) == [REFRESH_S] * 3
    assert refresh.status().available
    refresh.stop()
    clock.advance(10 * REFRESH_S)
    assert len(asked.at) == 3


def test_refusals_back_off_doubling_up_to_the_maximum(clock: Clock) -> None:
    refresh, asked = alone(clock)
    start = clock.now
    refresh.start()
    said: list[bool] = []
    for n in range(13):
        clock.run_until(asked.more_than(n), limit_s=MAX_BACKOFF_S)
        said.append(
            refresh.refused(asked.ids[-1], "the exchange answered with exception: no", RECEIVED)
        )
    assert asked.gaps(start) == [
        REFRESH_S,
        *(REFRESH_S * 2**n for n in range(1, 9)),  # 20 s ... 2560 s
        *[MAX_BACKOFF_S] * 4,
    ]
    assert said == [True] + [False] * 12  # said once
    status = refresh.status()
    assert (status.available, status.unavailable_since) == (False, RECEIVED)
    assert status.reason == "the exchange answered with exception: no"


def test_once_answered_again_the_account_is_asked_for_every_refresh_s_again(
    clock: Clock,
) -> None:
    """Refused, the request backs off "until an answer comes again": an answer to the
    request that went out after an hour's wait has the next one `refresh_s` after it, not
    another hour (the refresh's loop looked at its wait again only when a sleep ended)."""
    refresh, asked = alone(clock)
    refresh.start()
    for n in range(12):
        clock.run_until(asked.more_than(n), limit_s=MAX_BACKOFF_S)
        refresh.refused(asked.ids[-1], "refused", RECEIVED)
    clock.run_until(asked.more_than(12), limit_s=MAX_BACKOFF_S)
    answered_at = clock.now
    refresh.answered(asked.ids[-1])  # the exchange answers again
    assert refresh.status().available
    for n in range(13, 17):
        clock.run_until(asked.more_than(n), limit_s=MAX_BACKOFF_S)
        refresh.answered(asked.ids[-1])
    assert asked.gaps(answered_at)[-4:] == [REFRESH_S] * 4


def test_requests_left_unanswered_count_as_refused_until_an_answer_comes(clock: Clock) -> None:
    """A venue that takes the request and never answers does not serve balances: status said
    `available` for ever, and the refresh went on every `refresh_s`."""
    refresh, asked = alone(clock)
    start = clock.now
    refresh.start()
    clock.run_until(asked.more_than(0), limit_s=REFRESH_S)
    clock.advance(ANSWER_WITHIN_S - 1)
    assert refresh.status().available  # not yet late
    clock.advance(1)
    status = refresh.status()
    assert (status.available, status.reason) == (
        False,
        "the exchange did not answer an account request within 5 s",
    )
    for n in range(1, 4):
        clock.run_until(asked.more_than(n), limit_s=MAX_BACKOFF_S)
    assert asked.gaps(start) == [REFRESH_S, 2 * REFRESH_S, 4 * REFRESH_S, 8 * REFRESH_S]
    refresh.fills_seen()
    clock.advance(AFTER_FILL_DELAY_S)
    assert len(asked.at) == 4  # none after fills while unavailable
    refresh.answered(asked.ids[-1])  # a late answer: the exchange serves balances after all
    assert refresh.status().available


def test_a_request_out_when_the_session_went_down_is_not_counted_unanswered(
    clock: Clock,
) -> None:
    refresh, asked = alone(clock)
    refresh.start()
    clock.run_until(asked.more_than(0), limit_s=REFRESH_S)
    refresh.session_down()
    clock.advance(ANSWER_WITHIN_S)
    assert refresh.status().available


def test_no_next_request_once_the_periodic_refresh_is_turned_off(clock: Clock) -> None:
    """A reload to `refresh_s: 0` left `next_request_in_s` counting down to 0.0, and then
    showing 0.0 for ever, as if a periodic request were due."""
    refresh, asked = alone(clock)
    refresh.start()
    clock.advance(1)
    assert refresh.status().next_request_in_s == REFRESH_S - 1
    refresh.reconfigure(0, after_fill=True)
    assert refresh.status().next_request_in_s is None
    clock.advance(2 * REFRESH_S)
    assert refresh.status().next_request_in_s is None and asked.at == []


def test_after_fills_one_request_per_burst_and_none_while_unavailable(clock: Clock) -> None:
    refresh, asked = alone(clock, refresh_s=0)
    for _ in range(3):
        refresh.fills_seen()
    clock.advance(AFTER_FILL_DELAY_S)
    assert len(asked.at) == 1 and refresh.is_own(asked.ids[0])

    refresh.refused(asked.ids[0], "refused", RECEIVED)
    refresh.fills_seen()
    clock.advance(10)
    assert len(asked.at) == 1

    refresh.answered("a-clients-request")
    refresh.fills_seen()
    clock.advance(AFTER_FILL_DELAY_S)
    assert len(asked.at) == 2


def test_no_request_after_fills_when_turned_off(clock: Clock) -> None:
    refresh, asked = alone(clock, after_fill=False)
    refresh.fills_seen()
    clock.advance(1)
    assert asked.at == []


# ---------------------------------------------------------------- through the engine


@pytest.fixture
def engine(clock: Clock, tmp_path: Path) -> Engine:
    engine = Engine(clock, tmp_path, account_refresh_s=REFRESH_S, after_fill=True)
    engine.logon()
    engine.account_refresh.start()
    return engine


def next_request(engine: Engine, limit_s: float) -> str:
    """Waits for the refresh's next AccountInfoRequest; its AccReqID."""
    engine.clock.run_until(lambda: engine.session.sent, limit_s=limit_s)
    [request] = engine.session.take()
    assert request.msg_type == "Z1000"
    return str(request.get(8000))


def test_a_refused_refresh_is_said_once_and_a_clients_own_request_always(
    engine: Engine, clock: Clock
) -> None:
    first = next_request(engine, REFRESH_S)
    engine.feed("exception_response_account_request", {8000: first})
    [said] = engine.bus.of(ExchangeError)
    assert (said.source, said.acc_req_id) == (ErrorSource.EXCEPTION, first)
    assert not engine.account_refresh.status().available

    second = next_request(engine, 2 * REFRESH_S)
    engine.feed("exception_response_account_request", {8000: second})
    assert len(engine.bus.of(ExchangeError)) == 1  # not again

    clients = clock.start(engine.queries.account())
    [request] = engine.session.take()
    engine.feed("exception_response_account_request", {8000: str(request.get(8000))})
    error = clients.exception()
    assert isinstance(error, RequestError) and error.code == ErrorCode.EXCHANGE_ERROR
    assert len(engine.bus.of(ExchangeError)) == 2  # that client's refusal is news

    third = next_request(engine, 4 * REFRESH_S)
    engine.feed("account_info_response", {8000: third})
    [balance] = engine.bus.of(AccountBalance)
    assert balance.currency == "USD" and engine.account_refresh.status().available


def test_an_unreadable_answer_to_the_refresh_backs_it_off_and_holds_no_order_back(
    engine: Engine, clock: Clock
) -> None:
    engine.resting()
    engine.session.take()
    first = next_request(engine, REFRESH_S)
    engine.feed("account_info_response", {8000: first, 8001: "10/not-a-number"})
    [said] = engine.bus.of(ExchangeError)
    assert (said.source, said.acc_req_id) == (ErrorSource.UNREADABLE, first)
    assert said.raw is not None and "not-a-number" in said.raw  # nothing the venue sent is lost
    assert not engine.account_refresh.status().available
    assert engine.session.sent == [] and engine.ready()  # no order asked about, none held
    clock.advance(REFRESH_S)
    assert engine.session.sent == []  # backed off: asked again after twice refresh_s
    second = next_request(engine, REFRESH_S)
    engine.feed("account_info_response", {8000: second, 8001: "not-a-number"})
    assert len(engine.bus.of(ExchangeError)) == 1  # said once, as a refusal is
    assert not engine.account_refresh.status().available


def test_a_refresh_the_exchange_never_answers_leaves_the_account_unavailable(
    engine: Engine, clock: Clock
) -> None:
    """Silence tells no client an `exchange.error` (the exchange said nothing), only status;
    a request out when the session went down is not held against the exchange."""
    next_request(engine, REFRESH_S)
    clock.advance(engine.pending.timeout_s)
    status = engine.account_refresh.status()
    assert not status.available and status.reason is not None and "not answer" in status.reason
    assert engine.bus.of(ExchangeError) == []
    engine.feed("account_info_response", {8000: next_request(engine, 2 * REFRESH_S)})
    assert engine.account_refresh.status().available

    next_request(engine, REFRESH_S)
    engine.down()
    clock.advance(engine.pending.timeout_s)
    assert engine.account_refresh.status().available


def test_fills_have_the_account_asked_for_once_they_are_over(engine: Engine, clock: Clock) -> None:
    engine.place("market-1", symbol="BTC/USD", qty="2", price=None)
    engine.session.take()
    engine.feed("execution_report_partial_fill")
    engine.feed("execution_report_fill")
    clock.advance(AFTER_FILL_DELAY_S)
    assert [m.msg_type for m in engine.session.take()] == ["Z1000"]
