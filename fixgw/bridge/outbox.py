"""How the bridge's parts answer an OMS: through the acceptor, and, for work that waits on
the exchange, with a BusinessMessageReject if that work fails."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, Protocol

import structlog

from fixgw.bridge import translate
from fixgw.bridge.tables import BUSINESS_REJECT_OTHER
from fixgw.fix.message import FixMessage, redact

log = structlog.get_logger("fixgw.bridge")


class OmsSender(Protocol):
    """The acceptor, as far as the bridge's parts send (`BridgeAcceptor.send`)."""

    def send(self, oms: str, message: FixMessage) -> None: ...


class Outbox:
    def __init__(self, sender: OmsSender, loop: asyncio.AbstractEventLoop) -> None:
        self._sender = sender
        self._loop = loop
        self._tasks: set[asyncio.Task[None]] = set()

    def send(self, oms: str, message: FixMessage) -> None:
        """Sent now, or kept in the store and resent when the OMS logs on again."""
        self._sender.send(oms, message)

    @staticmethod
    def failed(msg: FixMessage) -> FixMessage:
        """The answer to an OMS message the bridge failed on."""
        return translate.business_reject(
            msg,
            BUSINESS_REJECT_OTHER,
            "the gateway failed on this message and may not have acted on it; "
            "ask the order's status",
        )

    def spawn(
        self,
        oms: str,
        msg: FixMessage,
        work: Coroutine[Any, Any, None],
        answered: Callable[[], None] | None = None,
    ) -> asyncio.Task[None]:
        """Runs `work` (which waits on the exchange); if it fails, `msg` is answered as a
        message the bridge fails on is (`failed`). `answered` is called once `msg` has had
        its answer either way; not if the task is cancelled (the gateway stopping)."""

        async def guarded() -> None:
            try:
                await work
            except Exception:
                log.exception("OMS message failed", oms=oms, msg=redact(msg.raw))
                self.send(oms, self.failed(msg))
            if answered is not None:
                answered()

        task = self._loop.create_task(guarded())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task
