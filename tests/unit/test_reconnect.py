"""Backoff arithmetic, and the Reconnector's pacing against a switch that records what it
was told (QuickFIX's side is proven in tests/integration/test_session_resilience.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
import structlog.testing

from fixgw.domain import SessionState
from fixgw.fix.reconnect import Backoff, Reconnector


def test_delays_grow_by_the_factor_up_to_the_ceiling() -> None:
    backoff = Backoff(floor_s=1, ceiling_s=30, factor=2, jitter=0)
    assert [backoff.delay(n) for n in range(7)] == [1, 2, 4, 8, 16, 30, 30]
    assert backoff.delay(10_000) == 30


def test_jitter_takes_up_to_its_fraction_off() -> None:
    backoff = Backoff(floor_s=10, ceiling_s=60, factor=2, jitter=0.25)
    assert backoff.delay(1, draw=lambda: 0.0) == 20
    assert backoff.delay(1, draw=lambda: 1.0) == 15
    delays = {backoff.delay(1) for _ in range(200)}
    assert all(15 <= d <= 20 for d in delays) and len(delays) > 100


class Switch:
    def __init__(self) -> None:
        self.logged_on = False
        self.calls: list[str] = []

    def enable(self) -> None:
        self.calls.append("enable")

    def disable(self) -> None:
        self.calls.append("disable")


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def until(check: Callable[[], bool]) -> None:
    """Poll: the Reconnector has no event to wait on, by design (it only paces)."""
    for _ in range(2500):
        if check():
            return
        await asyncio.sleep(0.002)
    raise TimeoutError


def paced(
    switch: Switch, *, ceiling_s: float, connect_s: float, logon_s: float, stable_s: float
) -> Reconnector:
    """Backoff from 10 ms, doubling, no jitter."""
    return Reconnector(
        switch,
        Backoff(floor_s=0.01, ceiling_s=ceiling_s, factor=2, jitter=0),
        connect_window_s=connect_s,
        logon_window_s=logon_s,
        stable_s=stable_s,
    )


@pytest.mark.parametrize("what_fails", ["no logon sent", "logon refused"])
def test_failures_in_a_row_back_off_and_a_logon_resets_them(what_fails: str) -> None:
    async def scenario() -> None:
        switch = Switch()
        pacer = paced(switch, ceiling_s=0.04, connect_s=0.02, logon_s=0.05, stable_s=0.05)
        task = asyncio.create_task(pacer.run())
        for failures in (1, 2, 3):
            await until(lambda: pacer.phase is SessionState.CONNECTING)
            if what_fails == "logon refused":
                pacer.logon_sent()
                await settle()
                assert pacer.phase is SessionState.LOGGING_ON
                pacer.down()
            await until(lambda n=failures: pacer.failures == n)
            assert pacer.phase is SessionState.DOWN and pacer.next_attempt_at is not None
        assert switch.calls[:6] == ["enable", "disable"] * 3
        await until(lambda: pacer.phase is SessionState.CONNECTING)
        pacer.logon_sent()
        pacer.up()
        await settle()
        assert pacer.phase is SessionState.UP and pacer.failures == 0
        assert switch.calls[-1] == "enable"
        await asyncio.sleep(0.1)  # up for longer than stable_s
        pacer.down()
        await settle()
        assert pacer.phase is SessionState.DOWN and switch.calls[-1] == "disable"
        assert pacer.status()["attempts"] == 4
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert pacer.phase is SessionState.STOPPED

    asyncio.run(scenario())


def test_sessions_the_exchange_ends_right_after_logon_back_off_like_failed_attempts() -> None:
    async def scenario() -> None:
        pacer = paced(Switch(), ceiling_s=1, connect_s=0.5, logon_s=0.5, stable_s=5)
        task = asyncio.create_task(pacer.run())
        for failures in (1, 2, 3):
            await until(lambda: pacer.phase is SessionState.CONNECTING)
            pacer.logon_sent()
            pacer.up()
            await settle()
            assert pacer.phase is SessionState.UP and pacer.failures == 0
            pacer.down()  # logged out at once
            await until(lambda n=failures: pacer.failures == n)
            assert pacer.phase is SessionState.DOWN and pacer.next_attempt_at is not None
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())


def test_an_attempt_that_fails_unexpectedly_is_logged_and_the_next_one_still_comes() -> None:
    """A bug or an unforeseen OS error in one attempt must not end the loop that brings the
    session back: the process would look alive with nothing reconnecting, for ever."""

    class Breaking(Switch):
        def enable(self) -> None:
            super().enable()
            if self.calls.count("enable") == 1:
                raise OSError(28, "No space left on device")

    async def scenario() -> None:
        switch = Breaking()
        pacer = paced(switch, ceiling_s=0.04, connect_s=0.02, logon_s=0.05, stable_s=0.05)
        task = asyncio.create_task(pacer.run())
        with structlog.testing.capture_logs() as logs:
            await until(lambda: switch.calls.count("enable") == 2)
        assert not task.done()
        assert pacer.failures >= 1
        assert [e["event"] for e in logs if e["log_level"] == "error"] == [
            "reconnect attempt failed unexpectedly; trying again"
        ]
        await until(lambda: pacer.phase is SessionState.CONNECTING)
        pacer.logon_sent()
        pacer.up()
        await settle()
        assert pacer.phase is SessionState.UP and pacer.failures == 0
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())


def test_a_release_shows_the_attempt_it_begins_counted_once() -> None:
    """`session_logon` answers with the state it leads to: the attempt under way (`connecting`,
    nothing held, no failure in a row), counted once, as `status` shows it after."""

    async def scenario() -> None:
        switch = Switch()
        pacer = paced(switch, ceiling_s=0.04, connect_s=60, logon_s=60, stable_s=0.05)
        task = asyncio.create_task(pacer.run())
        await until(lambda: pacer.phase is SessionState.CONNECTING)
        pacer.hold("the exchange refused the credentials")
        pacer.logon_sent()
        pacer.down()
        await until(lambda: pacer.phase is SessionState.HELD)
        assert pacer.status()["failures_in_a_row"] == 1

        assert pacer.release()
        released = pacer.status()

        assert released == {
            "phase": "connecting",
            "attempts": 2,
            "failures_in_a_row": 0,
            "next_attempt_at": None,
            "held": None,
        }
        await until(lambda: switch.calls.count("enable") == 2)
        assert pacer.status() == released
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())
