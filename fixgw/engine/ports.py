"""What the engine's services need of the world outside them, as small interfaces: the
exchange session to send on, somewhere to publish events. A unit test passes fakes; the
application passes the QuickFIX session and the event bus."""

from __future__ import annotations

from typing import Protocol

from fixgw.domain import Event
from fixgw.fix.message import FixMessage


class SessionPort(Protocol):
    @property
    def logged_on(self) -> bool: ...

    def send(self, message: FixMessage) -> bool:
        """False when the session is not logged on: the message was not sent."""
        ...


class Publisher(Protocol):
    def publish(self, event: Event) -> int:
        """The event's seq."""
        ...
