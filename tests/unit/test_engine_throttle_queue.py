"""The throttle's queue, built alone on a clock of its own: a message under the rate goes at
once, one over it waits its turn (or is refused, by policy or a full queue), and one
withdrawn before its turn is never sent and gives its place back."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from fixgw.api.protocol import ErrorCode
from fixgw.config import ThrottleConfig, ThrottleKind, ThrottleLimit
from fixgw.engine.throttle_queue import NOT_SENT, NOT_SENT_STOPPING, ThrottleQueue
from fixgw.errors import RequestError
from fixgw.ops.prometheus import Metrics
from tests.unit.engine_kit import Clock, refused, sample


def never(why: str) -> None:
    raise AssertionError(f"a held message was taken for never sent: {why}")


def queue(
    clock: Clock,
    kind: ThrottleKind = "new_order",
    per_s: float = 2,
    policy: str = "queue",
    queue_max: int = 1000,
) -> tuple[ThrottleQueue, Metrics]:
    metrics = Metrics()
    config = ThrottleConfig(
        limits={kind: ThrottleLimit(per_s=per_s, burst=1)},
        policy="queue" if policy == "queue" else "reject",
        queue_max=queue_max,
    )
    return ThrottleQueue(config, metrics, clock), metrics


def test_under_the_rate_a_message_goes_at_once_and_over_it_waits_its_turn(clock: Clock) -> None:
    throttle, metrics = queue(clock, per_s=2)
    assert throttle.pace("new_order") == 0
    assert throttle.pace("new_order") == 0.5
    assert throttle.pace("new_order") == 1.0
    assert throttle.pace("cancel") == 0  # no limit on cancels
    queued = sample(metrics, "fixgw_throttled_total", kind="new_order", outcome="queued")
    assert queued == 2


def test_a_queued_message_is_sent_when_its_turn_comes(clock: Clock) -> None:
    throttle, _ = queue(clock, per_s=2)
    sent: list[str] = []
    throttle.pace("new_order")
    throttle.later("new_order", "b", throttle.pace("new_order"), lambda: sent.append("b"), never)
    assert throttle.holds("b") and throttle.queued() == 1
    clock.advance(0.499)
    assert sent == []
    clock.advance(0.001)
    assert sent == ["b"]
    assert not throttle.holds("b") and throttle.queued() == 0
    assert not throttle.withdraw("b")  # gone: nothing to withdraw


def test_a_withdrawn_message_is_never_sent_and_gives_its_place_back(clock: Clock) -> None:
    throttle, _ = queue(clock, per_s=2)
    sent: list[str] = []
    throttle.pace("new_order")
    throttle.later("new_order", "b", throttle.pace("new_order"), lambda: sent.append("b"), never)

    assert throttle.withdraw("b")

    assert not throttle.holds("b") and throttle.queued() == 0
    assert throttle.pace("new_order") == 0.5  # b's place, not the one after it
    clock.advance(10)
    assert sent == []
    assert not throttle.withdraw("b")


def test_those_queued_behind_a_withdrawn_message_move_up_and_the_rate_holds(
    clock: Clock,
) -> None:
    """One new order every 2 s: a goes now, b at +2, c at +4; b is withdrawn, then d comes.
    c takes b's turn and d the one after: two at once would break the rate (b's token went
    back while c kept +4, so d's wait ended at +4 too)."""
    throttle, _ = queue(clock, per_s=0.5)
    sent: dict[str, float] = {}
    start = clock.now

    def place(request: str) -> None:
        delay = throttle.pace("new_order")
        if not delay:
            sent[request] = clock.now - start
            return
        throttle.later(
            "new_order", request, delay, lambda: sent.update({request: clock.now - start}), never
        )

    for request in ("a", "b", "c"):
        place(request)
    assert throttle.withdraw("b")
    place("d")
    clock.advance(10)

    assert sent == {"a": 0, "c": 2, "d": 4}
    assert throttle.queued() == 0


def test_closing_refuses_what_is_held_and_holds_nothing_more(clock: Clock) -> None:
    """A stopping gateway: each held message is told it will never be sent, at once; what
    the rate allows still goes out, and what it does not is refused rather than held."""
    throttle, metrics = queue(clock, per_s=2)
    sent: list[str] = []
    unsent: list[tuple[str, str]] = []
    throttle.pace("new_order")
    for request in ("b", "c"):
        delay = throttle.pace("new_order")
        throttle.later(
            "new_order",
            request,
            delay,
            lambda r=request: sent.append(r),
            lambda why, r=request: unsent.append((r, why)),
        )

    throttle.close()

    assert unsent == [("b", NOT_SENT_STOPPING), ("c", NOT_SENT_STOPPING)]
    assert throttle.queued() == 0
    clock.advance(0.5)
    assert throttle.pace("new_order") == 0  # the rate allows it: it goes now
    error = refused(lambda: throttle.pace("new_order"))
    assert error.code == ErrorCode.THROTTLED and "stopping" in error.message
    assert throttle.queued() == 0
    assert sample(metrics, "fixgw_throttled_total", kind="new_order", outcome="rejected") == 1
    clock.advance(10)
    assert sent == []


def test_a_session_going_down_gives_up_the_new_orders_held_and_keeps_the_cancels(
    clock: Clock,
) -> None:
    """A new order held when the session goes down is never sent: its turn could come after
    the next logon, while reconciliation holds new orders back. A cancel held still goes at
    its turn (sent if the session is back by then)."""
    throttle, _ = queue(clock, per_s=1)
    throttle.reconfigure(
        ThrottleConfig(
            limits={"new_order": ThrottleLimit(per_s=1), "cancel": ThrottleLimit(per_s=1)}
        )
    )
    sent: list[str] = []
    unsent: list[tuple[str, str]] = []
    for kind, request in (("new_order", "order"), ("cancel", "cancel")):
        throttle.pace(kind)
        throttle.later(
            kind,
            request,
            throttle.pace(kind),
            lambda r=request: sent.append(r),
            lambda why, r=request: unsent.append((r, why)),
        )

    throttle.session_down()

    assert unsent == [("order", NOT_SENT)]
    assert not throttle.holds("order") and throttle.holds("cancel")
    assert throttle.queued() == 1
    clock.advance(1)
    assert sent == ["cancel"]


def test_a_stop_drains_the_cancels_held_as_the_rate_allows_and_gives_up_the_rest(
    clock: Clock,
) -> None:
    """Closed, the queue still holds cancels (cancel on disconnect's, as clients leave);
    `drain` lets them go out at their turn for as long as it is given, and gives up on
    what is left then."""
    throttle, _ = queue(clock, kind="cancel", per_s=1)
    sent: list[str] = []
    unsent: list[str] = []

    def hold(request: str) -> None:
        delay = throttle.pace("cancel")
        throttle.later(
            "cancel",
            request,
            delay,
            lambda: sent.append(request),
            lambda _: unsent.append(request),
        )

    throttle.pace("cancel")
    hold("x1")
    throttle.close()
    hold("x2")  # held after the close: a cancel is not refused
    hold("x3")
    assert unsent == [] and throttle.queued() == 3
    draining = clock.start(throttle.drain(2.5))
    clock.advance(2.5)
    assert draining.done()
    assert (sent, unsent) == (["x1", "x2"], ["x3"])
    assert throttle.queued() == 0


def test_the_gateways_own_messages_are_spaced_out_and_never_refused(clock: Clock) -> None:
    """Reconciliation's status requests: under the `status` limit as a client's are, but
    the reject policy and a full queue do not refuse them; one held is not held twice."""
    throttle, _ = queue(clock, kind="status", per_s=2, policy="reject", queue_max=1)
    sent: list[str] = []

    def ask(request: str) -> float | None:
        return throttle.own("status", request, lambda: sent.append(request) is None)

    assert [ask(r) for r in ("a", "b", "c")] == [0, 0.5, 1.0]
    assert ask("b") == 0.5  # asked again before its turn: still the one question
    assert refused(lambda: throttle.pace("status")).code == ErrorCode.THROTTLED  # a client's
    clock.advance(1.0)
    assert sent == ["a", "b", "c"]
    assert throttle.queued() == 0


def test_the_reject_policy_refuses_over_the_rate_with_the_throttled_code(clock: Clock) -> None:
    throttle, metrics = queue(clock, kind="cancel", per_s=4, policy="reject")
    assert throttle.pace("cancel") == 0
    error = refused(lambda: throttle.pace("cancel"))
    assert error.code == ErrorCode.THROTTLED
    assert error.message == "over the cancel rate limit; try again shortly"
    assert sample(metrics, "fixgw_throttled_total", kind="cancel", outcome="rejected") == 1
    clock.advance(0.25)
    assert throttle.pace("cancel") == 0


def test_a_full_queue_refuses_saying_so(clock: Clock) -> None:
    """Not the reject policy's words: the operator tells a full queue from a rate refused."""
    throttle, _ = queue(clock, per_s=1, queue_max=2)
    assert [throttle.pace("new_order") for _ in range(3)] == [0, 1, 2]
    error = refused(lambda: throttle.pace("new_order"))
    assert error.code == ErrorCode.THROTTLED
    assert error.message == (
        "over the new_order rate limit, and its throttle queue is full (queue_max 2); "
        "try again shortly"
    )


def orders_placed(
    throttle: ThrottleQueue, clock: Clock
) -> tuple[Callable[[str], None], list[tuple[str, float]]]:
    """`place(name)` puts a new order through the throttle; the list says which went out
    when (seconds from now), in the order they went."""
    start = clock.now
    sent: list[tuple[str, float]] = []

    def place(name: str) -> None:
        delay = throttle.pace("new_order")
        if not delay:
            sent.append((name, clock.now - start))
            return
        throttle.later(
            "new_order", name, delay, lambda: sent.append((name, clock.now - start)), never
        )

    return place, sent


def new_order_limit(per_s: float | None) -> ThrottleConfig:
    limits = {} if per_s is None else {"new_order": ThrottleLimit(per_s=per_s, burst=1)}
    return ThrottleConfig(limits=limits)


def test_a_raised_rate_sends_what_is_queued_sooner_in_its_order_ahead_of_what_comes_after(
    clock: Clock,
) -> None:
    """One new order every 4 s: a goes now, b waits for +4, c for +8. At +2 the rate goes up
    to 2/s: the debt left (1.5 tokens) is paid at 2/s, b goes at +2.25 and c at +2.75, and d,
    placed after the reload, at +3.25: behind them, not before."""
    throttle, _ = queue(clock, per_s=0.25)
    place, sent = orders_placed(throttle, clock)
    for name in ("a", "b", "c"):
        place(name)
    clock.advance(2)

    throttle.reconfigure(new_order_limit(per_s=2))
    place("d")
    clock.advance(10)

    assert sent == [("a", 0), ("b", 2.25), ("c", 2.75), ("d", 3.25)]
    assert throttle.queued() == 0


def test_a_lowered_rate_holds_what_is_queued_to_it(clock: Clock) -> None:
    """Ten a second, then one: b and c, queued for +0.1 and +0.2, go at +1 and +2, under
    the new limit; d after them."""
    throttle, _ = queue(clock, per_s=10)
    place, sent = orders_placed(throttle, clock)
    for name in ("a", "b", "c"):
        place(name)

    throttle.reconfigure(new_order_limit(per_s=1))
    place("d")
    clock.advance(10)

    assert sent == [("a", 0), ("b", 1), ("c", 2), ("d", 3)]


def test_a_removed_limit_sends_what_is_queued_at_once_in_its_order(clock: Clock) -> None:
    throttle, _ = queue(clock, per_s=0.25)
    place, sent = orders_placed(throttle, clock)
    for name in ("a", "b", "c"):
        place(name)
    clock.advance(2)

    throttle.reconfigure(new_order_limit(per_s=None))
    place("d")

    assert sent == [("a", 0), ("b", 2), ("c", 2), ("d", 2)]
    assert throttle.queued() == 0
    clock.advance(10)
    assert len(sent) == 4


def test_a_status_request_waits_its_turn_and_one_abandoned_gives_its_place_back(
    clock: Clock,
) -> None:
    throttle, _ = queue(clock, kind="status", per_s=1)
    assert clock.start(throttle.wait_turn("status", within_s=60)).done()  # under the rate: at once

    abandoned = clock.start(throttle.wait_turn("status", within_s=60))
    assert not abandoned.done() and throttle.queued() == 1
    abandoned.cancel()  # the client went away
    clock.settle()
    assert throttle.queued() == 0

    start = clock.now
    waiting = clock.start(throttle.wait_turn("status", within_s=60))
    assert clock.run_until(waiting.done, limit_s=5) == 1.0  # not 2: the place was given back
    assert throttle.queued() == 0
    with pytest.raises(asyncio.CancelledError):
        abandoned.result()
    assert clock.now - start == 1.0


def test_status_requests_behind_an_abandoned_one_move_up_and_the_rate_holds(
    clock: Clock,
) -> None:
    """As with a withdrawn message: the request abandoned gives its turn to the one behind
    it, and the next one queued takes the last turn, not one a waiting request has."""
    throttle, _ = queue(clock, kind="status", per_s=1)
    start = clock.now
    went: dict[str, float] = {}

    async def ask(name: str) -> None:
        await throttle.wait_turn("status", within_s=60)
        went[name] = clock.now - start

    first = clock.start(ask("first"))
    abandoned = clock.start(ask("abandoned"))
    behind = clock.start(ask("behind"))
    clock.settle()
    abandoned.cancel()  # the client went away
    clock.settle()
    latest = clock.start(ask("latest"))
    clock.run_until(lambda: first.done() and behind.done() and latest.done(), limit_s=5)

    assert went == {"first": 0, "behind": 1, "latest": 2}
    assert throttle.queued() == 0


def test_a_status_request_whose_turn_comes_after_its_time_out_is_refused_at_once(
    clock: Clock,
) -> None:
    """Its answer could not come within api.request_timeout_s: refused now, not held (nor
    the client's requests behind it), and it takes no place or token."""
    throttle, metrics = queue(clock, kind="status", per_s=0.05)  # one per 20 s
    assert clock.start(throttle.wait_turn("status", within_s=5)).done()

    too_late = clock.start(throttle.wait_turn("status", within_s=5))

    assert too_late.done() and throttle.queued() == 0
    error = too_late.exception()
    assert isinstance(error, RequestError) and error.code == ErrorCode.THROTTLED
    assert error.message == (
        "over the status rate limit: its turn would come in 20.0s, after "
        "api.request_timeout_s (5s); not sent, try again then"
    )
    assert sample(metrics, "fixgw_throttled_total", kind="status", outcome="rejected") == 1
    clock.advance(20)
    assert clock.start(throttle.wait_turn("status", within_s=5)).done()  # no turn was kept


def test_a_status_request_a_reload_holds_past_its_time_out_is_withdrawn_and_refused(
    clock: Clock,
) -> None:
    throttle, _ = queue(clock, kind="status", per_s=1)
    clock.start(throttle.wait_turn("status", within_s=5))
    waiting = clock.start(throttle.wait_turn("status", within_s=5))
    throttle.reconfigure(
        ThrottleConfig(limits={"status": ThrottleLimit(per_s=0.05, burst=1)}, policy="queue")
    )

    assert clock.run_until(waiting.done, limit_s=10) == 5
    error = waiting.exception()
    assert isinstance(error, RequestError) and error.code == ErrorCode.THROTTLED
    assert "waited 5s (api.request_timeout_s) in the status rate limit's queue" in error.message
    assert throttle.queued() == 0
