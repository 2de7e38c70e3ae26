"""The throttle's queue: messages held back to keep under the venue's rate limits, each
sent when its turn comes, or withdrawn (never sent) when what it was for is cancelled.

The turns (the times the rate lets a message of a kind out) are kept apart from the
messages waiting for them: each turn sends the first message of its kind still waiting. A
message withdrawn gives back the last turn, so those behind it move up, in order, and the
next one queued takes the turn it frees: no two turns ever fall closer than the rate."""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import itertools
from collections.abc import Callable
from dataclasses import dataclass

from fixgw.api.protocol import ErrorCode
from fixgw.config import ThrottleConfig, ThrottleKind
from fixgw.engine.risk import Throttle
from fixgw.errors import RequestError
from fixgw.ops.prometheus import Metrics

NOT_SENT = "not sent: the session went down"
NOT_SENT_STOPPING = "not sent: the gateway stopped before the rate limit let it out"


@dataclass(frozen=True, slots=True)
class _Held:
    """A message waiting for its turn."""

    kind: ThrottleKind
    send: Callable[[], object]
    unsent: Callable[[str], None]
    """What to do if it is never sent (given why)."""


class ThrottleQueue:
    def __init__(
        self, config: ThrottleConfig, metrics: Metrics, loop: asyncio.AbstractEventLoop
    ) -> None:
        self.throttle = Throttle(config)
        self._metrics = metrics
        self._loop = loop
        self._queued: dict[str, _Held] = {}
        """Messages held back, by the request's ClOrdID (an order's, or a cancel's), in the
        order they came."""
        self._turns: dict[ThrottleKind, list[asyncio.TimerHandle]] = {}
        """Per kind, one turn per message held, earliest first."""
        self._waits = itertools.count(1)
        """Names the status requests that wait in `wait_turn`."""
        self._closed = False
        self._emptied: asyncio.Event | None = None
        """Set once nothing is held, while a stop waits for the cancels to go out."""
        self.on_turns_changed: list[Callable[[], object]] = []
        """Called once a reload has set the turns of what is queued again (`reconfigure`)."""

    def reconfigure(self, config: ThrottleConfig) -> None:
        """New rates apply to the running buckets at once, and to what is queued: the turns
        of a kind are set again at its new rate, so its messages waiting keep their order,
        ahead of any that come later. Those of a kind whose limit is gone go now, in order."""
        now = self._loop.time()
        self.throttle.reconfigure(config, now)
        for kind, turns in list(self._turns.items()):
            waiting = len(turns)
            for turn in turns:
                turn.cancel()
            turns.clear()
            if kind not in config.limits:
                for _ in range(waiting):
                    self._send_first(kind)
                continue
            for delay in self.throttle.turns(kind, now):
                turns.append(self._loop.call_later(delay, self._turn_comes, kind))
        for turns_changed in self.on_turns_changed:
            turns_changed()

    def pace(self, kind: ThrottleKind, longest_s: float | None = None) -> float:
        """Seconds the throttle holds this message back; raises if it refuses it, also if
        its turn would come only after `longest_s` (a request whose wait is bounded)."""
        delay = self.throttle.admit(kind, self._loop.time())
        if delay is None:
            self._metrics.throttled.labels(kind, "rejected").inc()
            config = self.throttle.config
            if config.policy == "queue":
                raise RequestError(
                    f"over the {kind} rate limit, and its throttle queue is full "
                    f"(queue_max {config.queue_max}); try again shortly",
                    code=ErrorCode.THROTTLED,
                )
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
        if longest_s is not None and delay >= longest_s:
            self.throttle.release(kind)
            self._metrics.throttled.labels(kind, "rejected").inc()
            raise RequestError(
                f"over the {kind} rate limit: its turn would come in {delay:.1f}s, after "
                f"api.request_timeout_s ({longest_s:g}s); not sent, try again then",
                code=ErrorCode.THROTTLED,
            )
        if delay:
            self._metrics.throttled.labels(kind, "queued").inc()
        return delay

    def unpace(self, kind: ThrottleKind, delay: float) -> None:
        """A message `pace` let through (`delay`: what it said) that is not sent after all,
        before it was handed to `later` (its request refused): its token back, and its place
        in the queue if it was to wait."""
        if delay:
            self.throttle.release(kind)
        else:
            self.throttle.give_back(kind)

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

        self._queued[request] = _Held(kind, send, unsent)
        turn = self._loop.call_later(delay, self._turn_comes, kind)
        bisect.insort(self._turns.setdefault(kind, []), turn, key=lambda timer: timer.when())

    def _turn_comes(self, kind: ThrottleKind) -> None:
        """The earliest turn of `kind` sends the first of its messages still waiting."""
        del self._turns[kind][0]
        self._send_first(kind)

    def _send_first(self, kind: ThrottleKind) -> None:
        request, held = next((r, h) for r, h in self._queued.items() if h.kind == kind)
        del self._queued[request]
        self.throttle.sent_queued(kind)
        held.send()
        self._tell_if_emptied()

    def own(self, kind: ThrottleKind, request: str, send: Callable[[], bool]) -> float | None:
        """A message the gateway sends on its own (a status request of reconciliation, or
        of a check): under the same limit as clients' (the venue counts them all), never
        refused for the policy or a full queue. Seconds until it goes (0: it went), or
        None: not sent (the session is down, or the gateway is stopping). One `request` is
        held once."""
        turn = self.turn(request)
        if turn is not None:
            return turn
        delay = self.throttle.admit(kind, self._loop.time(), must=True)
        assert delay is not None
        if not delay:
            if send():
                return 0.0
            self.throttle.give_back(kind)
            return None
        if self._closed:
            self.throttle.release(kind)
            return None
        self._metrics.throttled.labels(kind, "queued").inc()
        self.later(kind, request, delay, send, lambda _: None)
        return delay

    def turn(self, request: str) -> float | None:
        """Seconds until a held message goes; None if it is not held."""
        held = self._queued.get(request)
        if held is None:
            return None
        ahead = [r for r, h in self._queued.items() if h.kind == held.kind].index(request)
        return max(0.0, self._turns[held.kind][ahead].when() - self._loop.time())

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
        for request, held in list(self._queued.items()):
            if which(held.kind):
                self.withdraw(request)
                held.unsent(why)

    def _tell_if_emptied(self) -> None:
        if self._emptied is not None and not self._queued:
            self._emptied.set()

    def withdraw(self, request: str) -> bool:
        """Take a message out of the queue before it is sent; False if it is not (or no
        longer) there. The last turn of its kind goes with it (those behind it move up),
        with the token it stands for: the next message queued takes that turn, not one a
        message still waiting has (which sent two inside the rate)."""
        held = self._queued.pop(request, None)
        if held is None:
            return False
        self._turns[held.kind].pop().cancel()
        self.throttle.release(held.kind)
        self._tell_if_emptied()
        return True

    def holds(self, request: str) -> bool:
        return request in self._queued

    async def wait_turn(self, kind: ThrottleKind, within_s: float) -> float:
        """For a request that waits on its answer anyway (a status request): pace it here,
        held in the queue like the rest (so those behind it move up if it is given up).
        Its wait, queue and answer together, is bounded by `within_s`: one whose turn would
        come later is refused at once, and one still queued then (a reload slowed the
        rate) is withdrawn and refused; both `throttled`, never sent. Returns the seconds
        it waited."""
        delay = self.pace(kind, within_s)
        if not delay:
            return 0.0
        queued_at = self._loop.time()
        turn: asyncio.Future[None] = self._loop.create_future()

        def unsent(why: str) -> None:
            if not turn.done():
                turn.set_exception(RequestError(why, code=ErrorCode.THROTTLED))

        def comes() -> None:
            if not turn.done():
                turn.set_result(None)

        request = f"{kind} wait {next(self._waits)}"
        self.later(kind, request, delay, comes, unsent)
        try:
            await asyncio.wait_for(turn, within_s)
        except TimeoutError:
            self.withdraw(request)
            raise RequestError(
                f"waited {within_s:g}s (api.request_timeout_s) in the {kind} rate limit's "
                "queue; not sent, try again shortly",
                code=ErrorCode.THROTTLED,
            ) from None
        except BaseException:  # the client went away: the request is never sent
            self.withdraw(request)
            raise
        return self._loop.time() - queued_at

    def queued(self) -> int:
        return self.throttle.queued()
