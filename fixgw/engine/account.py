"""The balances the gateway asks the exchange for on its own: every `account.refresh_s`, and
shortly after each burst of fills.

Nobody waits on these answers, so a venue that refuses them (it does not serve the account
request, or not to this key) must not flood clients with an error per request: after the
first refusal the account is reported unavailable once, the periodic request backs off
(doubling up to `MAX_BACKOFF_S`), the after-fill requests stop, and `status` shows it, until
an answer comes again. A request left unanswered for `api.request_timeout_s` counts as a
refusal: a venue that takes the request and never answers does not serve balances either.
A request a client makes (`account`) always goes out, and its refusal is that client's
answer.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import structlog

from fixgw.domain import utc_now
from fixgw.results import AccountState

log = structlog.get_logger("fixgw.engine.account")

AFTER_FILL_DELAY_S = 0.2
MAX_BACKOFF_S = 3600.0


@dataclass(slots=True)
class _Unavailable:
    since: datetime
    reason: str
    wait_s: float


class AccountRefresh:
    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        send: Callable[[str], bool],
        new_id: Callable[[], str],
        refresh_s: float,
        after_fill: bool,
        answer_within_s: Callable[[], float],
    ) -> None:
        """`send(acc_req_id)`: the request, if the session is up (False: not sent).
        `answer_within_s()`: how long a request waits for its answer (read at each request,
        so that a reload's `api.request_timeout_s` applies)."""
        self._loop = loop
        self._send = send
        self._new_id = new_id
        self.refresh_s = refresh_s
        self.after_fill = after_fill
        self._own: deque[str] = deque(maxlen=64)
        self._answer_within_s = answer_within_s
        self._waiting: dict[str, asyncio.TimerHandle] = {}
        self._task: asyncio.Task[None] | None = None
        self._after_fill_due = False
        self.unavailable: _Unavailable | None = None
        self._next_at: float | None = None
        self._asked_at = time.monotonic()

    def start(self) -> None:
        self.stop()
        if self.refresh_s > 0:
            self._task = self._loop.create_task(self._run())

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None
        self._next_at = None

    def reconfigure(self, refresh_s: float, after_fill: bool) -> None:
        self.refresh_s, self.after_fill = refresh_s, after_fill
        if self._task is not None or refresh_s > 0:
            self.start()

    def _wait_s(self) -> float:
        return self.unavailable.wait_s if self.unavailable else self.refresh_s

    async def _run(self) -> None:
        """Due `_wait_s` after the last request; looked at again after every sleep, since a
        refusal that came in meanwhile puts it further off."""
        while True:
            due = self._asked_at + self._wait_s()
            now = time.monotonic()
            if now < due:
                self._next_at = due
                await asyncio.sleep(due - now)
                continue
            self._ask()

    def _ask(self) -> None:
        self._asked_at = time.monotonic()
        acc_req_id = self._new_id()
        if self._send(acc_req_id):
            self._own.append(acc_req_id)
            self._waiting[acc_req_id] = self._loop.call_later(
                self._answer_within_s(), self._unanswered, acc_req_id
            )

    def _unanswered(self, acc_req_id: str) -> None:
        del self._waiting[acc_req_id]
        within_s = self._answer_within_s()
        self.refused(
            acc_req_id,
            f"the exchange did not answer an account request within {within_s:g} s",
            utc_now(),
        )

    def _stop_waiting(self, acc_req_id: str) -> None:
        handle = self._waiting.pop(acc_req_id, None)
        if handle is not None:
            handle.cancel()

    def not_delivered(self, acc_req_id: str) -> None:
        """A request the exchange never got (gap filled, not resent): its silence says
        nothing about the exchange."""
        self._stop_waiting(acc_req_id)

    def session_down(self) -> None:
        """Requests out when the session ended may never be answered: their silence says
        nothing about the exchange."""
        for acc_req_id in list(self._waiting):
            self._stop_waiting(acc_req_id)

    def fills_seen(self) -> None:
        """One request per burst of fills, a moment after the first; none while unavailable."""
        if not self.after_fill or self._after_fill_due or self.unavailable is not None:
            return
        self._after_fill_due = True

        def ask() -> None:
            self._after_fill_due = False
            self._ask()

        self._loop.call_later(AFTER_FILL_DELAY_S, ask)

    def is_own(self, acc_req_id: str | None) -> bool:
        return acc_req_id is not None and acc_req_id in self._own

    def refused(self, acc_req_id: str, reason: str, ts: datetime) -> bool:
        """The exchange refused one of ours, or left it unanswered; True the first time (say
        so), False after."""
        self._stop_waiting(acc_req_id)
        if self.unavailable is not None:
            self.unavailable.wait_s = min(MAX_BACKOFF_S, 2 * self.unavailable.wait_s)
            log.debug("account request refused again", retry_in_s=self.unavailable.wait_s)
            return False
        self.unavailable = _Unavailable(ts, reason, max(self.refresh_s, 1.0) * 2)
        log.error(
            "account data unavailable: the exchange does not serve the account request; "
            "asking again less often",
            reason=reason,
            retry_in_s=self.unavailable.wait_s,
        )
        return True

    def answered(self, acc_req_id: str) -> None:
        """An answer, to one of ours or to a client's: the exchange serves balances."""
        self._stop_waiting(acc_req_id)
        if self.unavailable is not None:
            log.warning("account data available again", unavailable_since=self.unavailable.since)
            self.unavailable = None
            if self._task is not None:  # asleep for the back-off: due `refresh_s` after the last
                self.start()

    def status(self) -> AccountState:
        next_in = None if self._next_at is None else max(0.0, self._next_at - time.monotonic())
        u = self.unavailable
        return AccountState(
            available=u is None,
            unavailable_since=u.since if u else None,
            reason=u.reason if u else None,
            next_request_in_s=None if next_in is None else round(next_in, 1),
        )
