"""`fixgw.ops.held_signals` in this process: what came while holding is kept, handed over
once, and the mask is as it was."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator

import pytest

from fixgw.ops import held_signals


@pytest.fixture
def handled() -> Iterator[list[int]]:
    called: list[int] = []
    before = {sig: signal.signal(sig, lambda n, _: called.append(n)) for sig in held_signals.HELD}
    yield called
    held_signals.let_through()
    for sig, handler in before.items():
        signal.signal(sig, handler)


def blocked() -> set[signal.Signals]:
    return set(signal.pthread_sigmask(signal.SIG_BLOCK, [])) & held_signals.HELD


def test_what_came_while_holding_is_taken_once_and_never_runs_a_handler(
    handled: list[int],
) -> None:
    held_signals.hold()
    held_signals.hold()
    assert blocked() == held_signals.HELD
    for sig in (signal.SIGUSR1, signal.SIGHUP, signal.SIGUSR1):
        os.kill(os.getpid(), sig)
    assert held_signals.take() == [signal.SIGHUP, signal.SIGUSR1]
    assert blocked() == set() and handled == []
    assert held_signals.take() == []
    os.kill(os.getpid(), signal.SIGUSR1)
    assert handled == [signal.SIGUSR1]


def test_let_through_delivers_what_came_to_the_handlers_in_place(handled: list[int]) -> None:
    held_signals.hold()
    os.kill(os.getpid(), signal.SIGUSR1)
    assert handled == []
    held_signals.let_through()
    assert handled == [signal.SIGUSR1]
    assert blocked() == set()


def test_a_signal_blocked_before_holding_stays_blocked_and_pending(handled: list[int]) -> None:
    signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGHUP])
    try:
        held_signals.hold()
        os.kill(os.getpid(), signal.SIGHUP)
        assert held_signals.take() == []
        assert blocked() == {signal.SIGHUP}
        assert signal.SIGHUP in signal.sigpending()
        assert signal.sigtimedwait([signal.SIGHUP], 0) is not None
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGHUP])
