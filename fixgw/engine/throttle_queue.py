"""The throttle's queue: messages held back to keep under the venue's rate limits, each
sent when its turn comes, or withdrawn (never sent) when what it was for is cancelled."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from fixgw.api.protocol import ErrorCode
from fixgw.config import ThrottleConfig, ThrottleKind
from fixgw.engine.risk import Throttle
from fixgw.errors import RequestError
from fixgw.ops.prometheus import Metrics


class ThrottleQueue:
    def __init__(
        self, config: ThrottleConfig, metrics: Metrics, loop: asyncio.AbstractEventLoop
    ) -> None:
        self.throttle = Throttle(config)
        self._metrics = metrics
        self._loop = loop
        self._queued: dict[str, tuple[ThrottleKind, asyncio.TimerHandle, Callable[[], None]]] = {}
        """Messages held back, by the request's ClOrdID (an order's, or a cancel's), with
        what to do if one is never sent."""
        self._closed = False

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
        if delay and self._closed:
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
        send: Callable[[], None],
        unsent: Callable[[], None],
    ) -> None:
        """`send` when the turn of `request` comes, unless withdrawn first; `unsent` if the
        queue is closed before then."""

        def due() -> None:
            del self._queued[request]
            self.throttle.sent_queued(kind)
            send()

        self._queued[request] = (kind, self._loop.call_later(delay, due), unsent)

    def close(self) -> None:
        """The gateway is stopping: what is held is never sent (each `unsent` tells its
        client), and nothing more is held; what the rate allows now still goes out."""
        self._closed = True
        for request in list(self._queued):
            unsent = self._queued[request][2]
            self.withdraw(request)
            unsent()

    def withdraw(self, request: str) -> bool:
        """Take a message out of the queue before it is sent; False if it is not (or no
        longer) there."""
        entry = self._queued.pop(request, None)
        if entry is None:
            return False
        kind, timer, _ = entry
        timer.cancel()
        self.throttle.release(kind)
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
