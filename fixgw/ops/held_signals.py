"""The daemon's signals held while it starts: blocked from the program's first lines, so
that one sent while it imports, replays its journal and builds its parts does not take its
default action (SIGUSR1 and SIGHUP would kill it, SIGTERM stop it uncleanly), and handed over
once the event loop's handlers are in.

Blocking, not a handler that notes the signal: nothing runs in the middle of the start and
the kernel keeps what came (one of each). A thread started while holding keeps the signals
blocked for good (they go to the main thread, where Python runs its handlers); a process
started while holding would too, so none is started before `take` or `let_through`."""

from __future__ import annotations

import signal

HELD = frozenset({signal.SIGHUP, signal.SIGINT, signal.SIGUSR1, signal.SIGTERM})


class _Hold:
    blocked: frozenset[signal.Signals] = frozenset()
    """What `hold` blocked (not those the thread had blocked already); empty while not holding."""


def hold() -> None:
    """Block the held signals in this thread; again while holding is nothing."""
    if not _Hold.blocked:
        before = signal.pthread_sigmask(signal.SIG_BLOCK, HELD)
        _Hold.blocked = HELD - before


def take() -> list[signal.Signals]:
    """Stop holding: the signals that came meanwhile (in signal number order), taken off the
    process so that the caller acts on them; a later one meets the handler now in place."""
    came = []
    while _Hold.blocked:
        info = signal.sigtimedwait(_Hold.blocked, 0)
        if info is None:
            break
        came.append(signal.Signals(info.si_signo))
    let_through()
    return came


def let_through() -> None:
    """Stop holding: a signal that came meanwhile takes its course now, as if never held."""
    if _Hold.blocked:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _Hold.blocked)
        _Hold.blocked = frozenset()
