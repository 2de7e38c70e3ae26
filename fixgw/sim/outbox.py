"""Where every message the simulator sends leaves it: the client's QuickFIX session, or
nowhere while muted (replaying its order log, or handling a message of an `unanswered`
type)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import quickfix as fix

from fixgw.fix.message import FixMessage
from fixgw.fix.qf import session_id, to_quickfix


class Outbox:
    def __init__(self, comp_id: str) -> None:
        self._comp_id = comp_id
        self._session_ids: dict[str, fix.SessionID] = {}
        """Per client, made once: one is needed for every message sent."""
        self._muted = False

    def send(self, client: str, msg_type: str, fields: dict[int, str]) -> None:
        self.send_message(client, FixMessage(msg_type=msg_type, fields=fields))

    def send_message(self, client: str, message: FixMessage) -> None:
        if self._muted:
            return
        sid = self._session_ids.get(client)
        if sid is None:
            sid = self._session_ids[client] = session_id(self._comp_id, client)
        fix.Session.sendToTarget(to_quickfix(message), sid)

    @contextmanager
    def muted(self) -> Iterator[None]:
        """Nothing is sent inside; what is built is dropped (ExecIDs it took stay taken)."""
        was, self._muted = self._muted, True
        try:
            yield
        finally:
            self._muted = was
