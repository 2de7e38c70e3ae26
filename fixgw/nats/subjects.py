"""The subject map: where each event, command and market-data update goes.

    <prefix>.<gateway>.ev.orders.<symbol>   order events (kept in the stream)
    <prefix>.<gateway>.ev.session           session.up, session.down, halts
    <prefix>.<gateway>.ev.account           account.balance
    <prefix>.<gateway>.ev.errors            exchange.error
    <prefix>.<gateway>.cmd                  requests (request/reply, never kept)
    <prefix>.<gateway>.md.<symbol>.book     md.snapshot, md.delta, md.stale, md.rejected
    <prefix>.<gateway>.md.<symbol>.trades   md.trade, md.stale, md.rejected (of the trades)

A stream the gateway creates takes `<prefix>.*.ev.>`: every gateway of a fleet, and neither
commands nor market data.
"""

from __future__ import annotations

import re

EVENT_TOPICS = {"order": "orders", "session": "session", "account": "account", "exchange": "errors"}
"""The subject token of an event, by the part of its type before the dot (the local
socket's topics)."""

CLIENT_HEADER = "Fixgw-Client"
"""The NATS message header in which a request names its sender (the CLI: `fixgw-cli:<user>`),
as `hello`'s name does on the socket: the sender's own claim, for the journal of a halt."""

_NOT_IN_A_TOKEN = re.compile(r"[.*>\s]")


def token(text: str) -> str:
    """`text` as one subject token: `.`, `*`, `>` and spaces become `_` (`BTC/USD` stays)."""
    return _NOT_IN_A_TOKEN.sub("_", text) or "_"


class Subjects:
    def __init__(self, prefix: str, gateway: str) -> None:
        self.prefix = prefix
        self.gateway = gateway
        self.root = f"{prefix}.{gateway}"
        self.events = f"{self.root}.ev.>"
        """Every event of this gateway."""
        self.commands = f"{self.root}.cmd"
        self.stream_subjects = f"{prefix}.*.ev.>"
        """What a stream the gateway creates takes: the events of every gateway."""
        self._message_id = f"{self.root}:"
        self._legacy_message_id = f"{gateway}:"
        self._orders = f"{self.root}.ev.orders."
        self._symbols: dict[str, str] = {}

    def event(self, type_: str, symbol: str | None) -> str:
        """The subject of a journaled event."""
        kind = type_.partition(".")[0]
        topic = EVENT_TOPICS.get(kind)
        if topic == "orders":
            return self._orders + self._symbol(symbol or "_")
        return f"{self.root}.ev.{topic or token(kind)}"

    def message_id(self, seq: int) -> str:
        """An event's `Nats-Msg-Id`, `<prefix>.<gateway>:<seq>`: the prefix keeps a gateway of
        the same name under another prefix from having its events dropped as duplicates."""
        return f"{self._message_id}{seq}"

    def legacy_message_id(self, seq: int) -> str:
        """The id fixgw gave events before it put the prefix in (`<gateway>:<seq>`): those
        the stream may hold already from before an upgrade are published again with it."""
        return f"{self._legacy_message_id}{seq}"

    def topic(self, topic: str) -> str:
        """The subjects of one of the socket's topics (`orders`, `session`, ...)."""
        return f"{self.root}.ev.orders.>" if topic == "orders" else f"{self.root}.ev.{topic}"

    def market_data(self, symbol: str, kind: str) -> str:
        """`kind`: book or trades."""
        return f"{self.root}.md.{self._symbol(symbol)}.{kind}"

    def _symbol(self, symbol: str) -> str:
        found = self._symbols.get(symbol)
        if found is None:
            found = self._symbols[symbol] = token(symbol)
        return found


def covers(pattern: str, subjects: str) -> bool:
    """Whether every subject `subjects` (a filter, wildcards allowed) names matches
    `pattern` (a stream's subject)."""
    want, have = subjects.split("."), pattern.split(".")
    for i, part in enumerate(have):
        if part == ">":
            return len(want) > i
        if i >= len(want) or want[i] == ">":
            return False
        if part != "*" and part != want[i]:
            return False
    return len(want) == len(have)


def overlaps(first: str, second: str) -> bool:
    """Whether some subject matches both patterns (the broker refuses such two in one
    stream)."""
    a, b = first.split("."), second.split(".")
    for i, (x, y) in enumerate(zip(a, b, strict=False)):
        if x == ">" or y == ">":
            return True
        if x != y and "*" not in (x, y):
            return False
        if i == len(a) - 1 or i == len(b) - 1:
            return len(a) == len(b)
    return False
