"""Paces connection attempts to the exchange: exponential backoff with jitter.

QuickFIX retries a disconnected initiator every ReconnectInterval, fixed. It only tries
sessions that are enabled, so the `Reconnector` keeps the session disabled between attempts
and enables it when the next one is due; QuickFIX then connects on its next one-second
tick. An attempt has failed when no Logon went out within `CONNECT_WINDOW_S` (the TCP or
TLS connection failed), the session ended before the exchange answered the Logon, or it
ended within `stable_s` of the Logon (an exchange that takes the Logon and then logs the
session out at once must not be knocked on every second).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol

import structlog

from fixgw.domain import SessionState

log = structlog.get_logger("fixgw.fix.reconnect")

CONNECT_WINDOW_S = 3.0
"""QuickFIX's reconnect tick (1 s) plus time to connect."""
LOGON_WINDOW_S = 15.0
"""QuickFIX's LogonTimeout (10 s) ends an unanswered Logon first; this is the fallback."""
STABLE_S = 30.0
"""A session that ends sooner after its Logon counts as a failed attempt."""


@dataclass(frozen=True)
class Backoff:
    floor_s: float
    ceiling_s: float
    factor: float
    jitter: float
    """Each delay is drawn from [d * (1 - jitter), d], so gateways that lost the exchange
    together do not all knock again in the same second."""

    def delay(self, failures: int, draw: Callable[[], float] = random.random) -> float:
        """Before the next attempt, after `failures` failed attempts in a row."""
        nominal = min(self.ceiling_s, self.floor_s * self.factor ** min(failures, 64))
        return nominal * (1 - self.jitter * draw())


class _Switch(Protocol):
    @property
    def logged_on(self) -> bool: ...
    def enable(self) -> None: ...
    def disable(self) -> None: ...


class _Happening(StrEnum):
    LOGON_SENT = "logon_sent"
    UP = "up"
    DOWN = "down"


class Reconnector:
    def __init__(
        self,
        session: _Switch,
        backoff: Backoff,
        connect_window_s: float = CONNECT_WINDOW_S,
        logon_window_s: float = LOGON_WINDOW_S,
        stable_s: float = STABLE_S,
    ) -> None:
        self.session = session
        self.backoff = backoff
        self.connect_window_s = connect_window_s
        self.logon_window_s = logon_window_s
        self.stable_s = stable_s
        self.phase = SessionState.CONNECTING
        self.failures = 0
        self.attempts = 0
        self.next_attempt_at: datetime | None = None
        self._happenings: asyncio.Queue[_Happening] = asyncio.Queue()
        self.held: str | None = None
        """Why attempts are held (`hold`), or None."""
        self.held_back = asyncio.Event()
        """Set while attempts are held."""
        self._released = asyncio.Event()
        self._begun = False
        """The attempt a `release` began is counted and shown already."""

    def hold(self, reason: str) -> None:
        """Make no further attempt once the current session or attempt is over."""
        self.held = reason
        self.held_back.set()
        self._released.clear()

    def release(self) -> bool:
        """The next attempt is made at once; False if nothing was held."""
        if self.held is None:
            return False
        self.held = None
        self.held_back.clear()
        self.failures = 0
        self._released.set()
        if self.phase is SessionState.HELD:  # the waiting round begins it at once
            self._begin_attempt()
            self._begun = True
        return True

    def _begin_attempt(self) -> None:
        self.attempts += 1
        self.phase = SessionState.CONNECTING
        self.next_attempt_at = None

    @property
    def state(self) -> SessionState:
        """The session's state: set here as QuickFIX reports it, and by the attempts."""
        return self.phase

    def logon_sent(self) -> None:
        if self.phase is not SessionState.STOPPED:
            self.phase = SessionState.LOGGING_ON
        self._happenings.put_nowait(_Happening.LOGON_SENT)

    def up(self) -> None:
        if self.phase is not SessionState.STOPPED:
            self.phase = SessionState.UP
        self._happenings.put_nowait(_Happening.UP)

    def down(self) -> None:
        if self.phase in (SessionState.UP, SessionState.LOGGING_ON, SessionState.CONNECTING):
            self.phase = SessionState.DOWN
        self._happenings.put_nowait(_Happening.DOWN)

    def status(self) -> dict[str, Any]:
        return {
            "phase": self.phase.value,
            "attempts": self.attempts,
            "failures_in_a_row": self.failures,
            "next_attempt_at": self.next_attempt_at,
            "held": self.held,
        }

    async def run(self) -> None:
        """Attempts for as long as the gateway runs. An unexpected error in one (a bug, an OS
        error nobody foresaw) is logged and counted as a failed attempt: the loop that
        brings the session back must never end while the process looks alive."""
        try:
            while True:
                try:
                    held = await self._round()
                except Exception:
                    log.exception("reconnect attempt failed unexpectedly; trying again")
                    self.failures += 1
                    held = False
                    with contextlib.suppress(Exception):
                        self.session.disable()
                if held:
                    continue
                delay = self.backoff.delay(self.failures)
                self.phase = SessionState.DOWN
                self.next_attempt_at = datetime.now(UTC) + timedelta(seconds=delay)
                log.warning(
                    "exchange not connected; next attempt scheduled",
                    failures_in_a_row=self.failures,
                    delay_s=round(delay, 3),
                )
                await asyncio.sleep(delay)
                self._drain()
        finally:
            self.phase = SessionState.STOPPED

    async def _round(self) -> bool:
        """One attempt and the session it brings, until it ends; True if attempts were held
        meanwhile and have been released (the next one is due at once)."""
        if not self._begun:
            self._begin_attempt()
        self._begun = False
        self.session.enable()
        if self.session.logged_on or await self._attempt():
            self.phase = SessionState.UP
            before, self.failures = self.failures, 0
            if not await self._stayed_up():
                self.failures = before + 1
        else:
            self.failures += 1
        self.session.disable()
        if self.held is None:
            return False
        self.phase = SessionState.HELD
        self.next_attempt_at = None
        await self._released.wait()
        self._drain()
        return True

    async def _attempt(self) -> bool:
        if await self._next(self.connect_window_s) is not _Happening.LOGON_SENT:
            return False
        self.phase = SessionState.LOGGING_ON
        while (happening := await self._next(self.logon_window_s)) is _Happening.LOGON_SENT:
            pass
        return happening is _Happening.UP

    async def _stayed_up(self) -> bool:
        """Waits for the session to end; whether it lasted `stable_s` (0: any session that
        logged on did)."""
        if self.stable_s > 0:
            try:
                async with asyncio.timeout(self.stable_s):
                    await self._ended()
                    return False
            except TimeoutError:
                pass
        await self._ended()
        return True

    async def _ended(self) -> None:
        while await self._happenings.get() is not _Happening.DOWN:
            pass

    async def _next(self, within_s: float) -> _Happening | None:
        try:
            async with asyncio.timeout(within_s):
                return await self._happenings.get()
        except TimeoutError:
            return None

    def _drain(self) -> None:
        """What QuickFIX reported while disabled belongs to no attempt of ours."""
        while not self._happenings.empty():
            self._happenings.get_nowait()
