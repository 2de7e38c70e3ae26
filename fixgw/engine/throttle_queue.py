"""The throttle's queue: messages held back to keep under the venue's rate limits, each
sent when its turn comes, or withdrawn (never sent) when what it was for is cancelled."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from fixgw.api.protocol import ErrorCode
from fixgw.config import ThrottleConfig, ThrottleKind
from fixgw.engine.risk import Throttle
from fixgw.errors import RequestError
from fixgw.ops.prometheus import Metrics

NOT_SENT = "not sent: the session went down"
NOT_SENT_STOPPING = "not sent: the gateway stopped before the rate limit let it out"


class ThrottleQueue:
    def __init__(
        self, config: ThrottleConfig, metrics: Metrics, loop: asyncio.AbstractEventLoop
    ) -> None:
        self.throttle = Throttle(config)
        self._metrics = metrics
        self._loop = loop
        self._queued: dict[
            str, tuple[ThrottleKind, asyncio.TimerHandle, Callable[[str], None]]
        ] = {}
        """Messages held back, by the request's ClOrdID (an order's, or a cancel's), with
        what to do if one is never sent (given why)."""
        self._closed = False
        self._emptied: asyncio.Event | None = None
        """Set once nothing is held, while a stop waits for the cancels to go out."""

    def reconfigure(self, config: ThrottleConfig) -> None:
        """New rates apply to the running buckets at once; what is queued keeps its turn."""
        self.throttle.reconfigure(config, self._loop.time())

    def pace(self, kind: ThrottleKind) -> float:
        """Seconds the throttle holds this message back; raises if it refuses it."""
        delay = self.throttle.admit(kind, self._loop.time())
        if delay is None:
            self._metrics.throttled.labels(kind, "rejected").inc()
            raise RequestError(
                f"over the {kind} rate limit; try again shortly", code=ErrorCode.THROTTLED
            )
        if delay and self._closed and kind != "cancel":
            self.throttle.release(kind)
            self._metrics.throttled.labels(kind, "rejected").inc()
            raise RequestError(
                f"over the {kind} rate limit, and the gateway is stopping: not held",
                code=ErrorCode.THROTTLED,
            )
        if delay:
            self._metrics.throttled.labels(kind, "queued").inc()
        return delay

    def later(
        self,
        kind: ThrottleKind,
        request: str,
        delay: float,
        send: Callable[[], object],
        unsent: Callable[[str], None],
    ) -> None:
        """`send` when the turn of `request` comes, unless withdrawn first; `unsent`, with
        why, if it is given up before then (the gateway stopping, the session down)."""

        def due() -> None:
            del self._queued[request]
            self.throttle.sent_queued(kind)
            send()
            self._tell_if_emptied()

        self._queued[request] = (kind, self._loop.call_later(delay, due), unsent)

    def own(self, kind: ThrottleKind, request: str, send: Callable[[], bool]) -> float | None:
        """A message the gateway sends on its own (a status request of reconciliation, or
        of a check): under the same limit as clients' (the venue counts them all), never
        refused for the policy or a full queue. Seconds until it goes (0: it went), or
        None: not sent (the session is down, or the gateway is stopping). One `request` is
        held once."""
        held = self._queued.get(request)
        if held is not None:
            return max(0.0, held[1].when() - self._loop.time())
        delay = self.throttle.admit(kind, self._loop.time(), must=True)
        assert delay is not None
        if not delay:
            return 0.0 if send() else None
        if self._closed:
            self.throttle.release(kind)
            return None
        self._metrics.throttled.labels(kind, "queued").inc()
        self.later(kind, request, delay, send, lambda _: None)
        return delay

    def close(self) -> None:
        """The gateway is stopping: the new orders held are never sent (each `unsent` tells
        its client), and no more are held; what the rate allows now still goes out. Cancels
        are still held, to go out as the rate allows until `drain` ends."""
        self._closed = True
        self._give_up(lambda kind: kind != "cancel", NOT_SENT_STOPPING)

    def session_down(self) -> None:
        """The new orders held are never sent (each `unsent` tells its client): after the
        next logon, one would go out while reconciliation still holds new orders back,
        checked against a price from before the outage. Cancels still go at their turn."""
        self._give_up(lambda kind: kind == "new_order", NOT_SENT)

    async def drain(self, timeout_s: float) -> None:
        """The last step before the session logs out: the cancels held (a client's, or
        cancel on disconnect's as clients left) go out as the rate allows, for at most
        `timeout_s`; what is left then is never sent, each `unsent` telling why."""
        self.close()
        if self._queued:
            self._emptied = asyncio.Event()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._emptied.wait(), timeout_s)
        self._give_up(lambda kind: True, NOT_SENT_STOPPING)

    def _give_up(self, which: Callable[[ThrottleKind], bool], why: str) -> None:
        for request, (kind, _, unsent) in list(self._queued.items()):
            if which(kind):
                self.withdraw(request)
                unsent(why)

    def _tell_if_emptied(self) -> None:
        if self._emptied is not None and not self._queued:
            self._emptied.set()

    def withdraw(self, request: str) -> bool:
        """Take a message out of the queue before it is sent; False if it is not (or no
        longer) there."""
        entry = self._queued.pop(request, None)
        if entry is None:
            return False
        kind, timer, _ = entry
        timer.cancel()
        self.throttle.release(kind)
        self._tell_if_emptied()
        return True

    def holds(self, request: str) -> bool:
        return request in self._queued

    async def wait_turn(self, kind: ThrottleKind) -> None:
        """For a request that waits on its answer anyway (a status request): pace it here."""
        delay = self.pace(kind)
        if not delay:
            return
        try:
            await asyncio.sleep(delay)
        except BaseException:  # the client went away: the request is never sent
            self.throttle.release(kind)
            raise
        self.throttle.sent_queued(kind)

    def queued(self) -> int:
        return self.throttle.queued()
