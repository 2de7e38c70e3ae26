"""QuickFIX glue shared by every engine fixgw runs (initiator, simulator, bridge).

Settings are built in code rather than from an .ini file, so the YAML config is the only
thing an operator edits. Inbound messages leave QuickFIX as raw strings (`toString`);
outbound ones enter it here.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import re
import threading
from collections import deque
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Generic, TypeVar

import _quickfix  # type: ignore[import-not-found]
import quickfix as fix

from fixgw.fix.message import SOH, FixMessage
from fixgw.fix.tags import Tag

BEGIN_STRING = "FIX.4.4"

VALIDATION = {
    "UseDataDictionary": "Y",
    # A venue that adds a tag must not get its execution reports rejected and lost.
    "ValidateUserDefinedFields": "N",
    "AllowUnknownMsgFields": "Y",
    # The dialect enforces header and group order, not body order.
    "ValidateFieldsOutOfOrder": "N",
}

ALWAYS_ON = {"StartTime": "00:00:00", "EndTime": "00:00:00", "NonStopSession": "Y"}
"""QuickFIX runs a session by a schedule, and StartTime == EndTime alone makes it a daily
one: at UTC midnight it logs out and sets both sequence numbers back to 1. NonStopSession
stops that while running; `keep_store_across_days` stops it at a start on a later day."""

_CREATION_TIME = re.compile(r"^\d{8}-\d{2}:\d{2}:\d{2}(\.\d+)?$")


def keep_store_across_days(store_dir: Path) -> None:
    """Call before QuickFIX opens the FileStore in `store_dir`.

    A Session checks its schedule in its constructor, before NonStopSession is applied: a
    store created on an earlier UTC day is reset there (sequence numbers back to 1, sent
    messages gone). The store's creation time serves only that check, so it is set to now."""
    for path in store_dir.glob("*.session"):
        if _CREATION_TIME.match(path.read_text().strip()):
            path.write_text(datetime.now(UTC).strftime("%Y%m%d-%H:%M:%S") + "\n")


def make_settings(
    defaults: Mapping[str, str | int], sessions: Mapping[fix.SessionID, Mapping[str, str | int]]
) -> fix.SessionSettings:
    settings = fix.SessionSettings()
    settings.set(_dictionary(defaults))
    for session_id, values in sessions.items():
        settings.set(session_id, _dictionary(values))
    return settings


def _dictionary(values: Mapping[str, str | int]) -> fix.Dictionary:
    d = fix.Dictionary()
    for key, value in values.items():
        d.setString(key, str(value))
    return d


def session_id(sender: str, target: str) -> fix.SessionID:
    return fix.SessionID(BEGIN_STRING, sender, target)


HEADER_FIELDS_SENT = frozenset(
    {Tag.DELIVER_TO_COMP_ID, Tag.DELIVER_TO_SUB_ID, Tag.DELIVER_TO_LOCATION_ID}
)
"""The header fields a message fixgw sends may carry (the rest QuickFIX fills in): set on
the header when a message is built field by field. In a message's text, QuickFIX puts
every header field in the header itself."""

_FIELD_PREFIXES: dict[int, str] = {}
"""`tag=` by tag, written once: every order's fields are the same few tags."""


def to_quickfix(msg: FixMessage) -> fix.Message:
    """Groups' first tag is their delimiter (entries are ordered mappings). A message without
    groups is handed over as one string, a third of the cost of a call per field; QuickFIX
    fills in the header and recomputes BodyLength and CheckSum when it sends."""
    text = message_text(msg)
    return fix.Message(text, False) if text is not None else _to_quickfix_by_field(msg)


def message_text(msg: FixMessage) -> str | None:
    """The message as one string for QuickFIX, written in one pass; None for one that must be
    set field by field (groups, an empty value) or refused (SOH in a value)."""
    if msg.groups:
        return None
    prefixes = _FIELD_PREFIXES
    parts = [f"8={BEGIN_STRING}{SOH}9=0{SOH}35={msg.msg_type}{SOH}"]
    for tag, value in msg.fields.items():
        if not value or SOH in value:
            return None
        prefix = prefixes.get(tag)
        if prefix is None:
            prefix = prefixes[tag] = f"{int(tag)}="
        parts.append(prefix)
        parts.append(value)
        parts.append(SOH)
    parts.append(f"10=000{SOH}")
    return "".join(parts)


def send_message(session: Any, msg: FixMessage) -> bool:
    """QuickFIX's `Session.send` of `msg`, through the binding's C functions: once per order,
    where SWIG's Python wrappers (the Message's constructor, `sendToTarget`'s overloads and
    its lookup of the session) cost more than a tenth of it. False when not logged on."""
    if not _quickfix.Session_isLoggedOn(session):
        return False
    text = message_text(msg)
    message = _quickfix.new_Message(text, False) if text is not None else _to_quickfix_by_field(msg)
    return bool(_quickfix.Session_send(session, message))


def _to_quickfix_by_field(msg: FixMessage) -> fix.Message:
    values = [
        *msg.fields.values(),
        *(v for entries in msg.groups.values() for e in entries for v in e.values()),
    ]
    if any(SOH in value for value in values):
        raise ValueError(f"a field value holds SOH: {msg.msg_type} {list(msg.fields)}")
    message = fix.Message()
    header = message.getHeader()
    header.setField(fix.MsgType(msg.msg_type))
    for tag, value in msg.fields.items():
        (header if tag in HEADER_FIELDS_SENT else message).setField(tag, value)
    for count_tag, entries in msg.groups.items():
        if not entries:
            message.setField(count_tag, "0")
        for entry in entries:
            group = fix.Group(count_tag, next(iter(entry)))
            for tag, value in entry.items():
                group.setField(tag, value)
            message.addGroup(group)
    return message


_ESCAPED_BYTES: dict[int, int] = {0xDC00 + byte: byte for byte in range(0x80, 0x100)}
"""The lone surrogate Python's `surrogateescape` makes of a byte that is not UTF-8, to the
Latin-1 character of that byte."""


def latin1_where_not_utf8(raw: str) -> str:
    """A message from a counterparty as QuickFIX's binding hands it over, with the bytes that
    are not UTF-8 read as Latin-1.

    FIX 4.4 leaves a String field's character set to the counterparties, and many venues
    write ISO-8859-1 (`refusé` with é as the one byte 0xE9). The binding decodes every
    message as UTF-8 with `surrogateescape`, so such a byte arrives as a lone surrogate
    (U+DCE9), which no JSON encoder, journal or log line takes. As the Latin-1 character
    every byte is kept and the text reads as the venue meant it. Valid UTF-8 is left as it
    is. Every message received passes here: an ASCII one costs one `isascii`."""
    if raw.isascii():
        return raw
    try:
        raw.encode()
    except UnicodeEncodeError:
        return raw.translate(_ESCAPED_BYTES)
    return raw


def msg_type_of(message: fix.Message) -> str:
    return str(message.getHeader().getField(35))


def raw_field(raw: str, tag: int) -> str | None:
    """The first value of `tag` (not BeginString) in a raw message: on QuickFIX's threads, for
    every message, far cheaper than calls into the binding."""
    key = f"\x01{tag}="
    start = raw.find(key)
    if start < 0:
        return None
    start += len(key)
    return raw[start : raw.index("\x01", start)]


def header_of(raw: str) -> tuple[str, int]:
    """MsgType and MsgSeqNum."""
    msg_type, msg_seq_num = raw_field(raw, 35), raw_field(raw, 34)
    if msg_type is None or msg_seq_num is None:
        raise ValueError(f"no MsgType or MsgSeqNum in {raw!r}")
    return msg_type, int(msg_seq_num)


def msg_seq_num(message: fix.Message) -> str | None:
    """The message's MsgSeqNum, straight from the binding's C functions: `fromApp` asks it of
    every message received, and the Python wrappers cost more than the lookup."""
    try:
        return str(_quickfix.FieldMap_getField(_quickfix.Message_getHeader(message), 34))
    except fix.FieldNotFound:
        return None


def expected_target_num(session: Any) -> int:
    """QuickFIX's Session.getExpectedTargetNum, by the binding's C function: asked per
    message received (a twentieth of the cost of reading MsgSeqNum from the message)."""
    return int(_quickfix.Session_getExpectedTargetNum(session))


def expected_sender_num(session: Any) -> int:
    """QuickFIX's Session.getExpectedSenderNum, by the binding's C function: per message sent."""
    return int(_quickfix.Session_getExpectedSenderNum(session))


def header_field(message: fix.Message, tag: int) -> str | None:
    header = message.getHeader()
    return str(header.getField(tag)) if header.isSetField(tag) else None


T = TypeVar("T")

_threads_kept: set[int] = set()


def keep_thread_state() -> None:
    """Call at the top of the callbacks QuickFIX makes for every message received
    (`fromAdmin`, `fromApp`): the calling thread keeps its Python thread state from then on.

    QuickFIX calls into Python from its own C++ threads, and the binding wraps each callback
    in PyGILState_Ensure/Release. On a thread Python did not start, that creates a thread
    state and frees it again on every call: an mmap, a munmap and the TLB shootdown across
    cores that goes with it, for every message. One Ensure that is never released makes
    the binding's own pair reuse that state (pybind11 keeps foreign thread states alive for
    the same reason). A thread state per QuickFIX thread is all it costs."""
    ident = threading.get_ident()
    if ident not in _threads_kept:
        ctypes.pythonapi.PyGILState_Ensure()
        _threads_kept.add(ident)


class Inbox(Generic[T]):
    """Hands items from QuickFIX's threads to the asyncio loop.

    One wake-up of the loop per burst rather than per message: `put` schedules a drain only
    when none is pending. Unbounded on purpose: what the exchange sends must not be dropped,
    and the loop drains it in order; slow consumers are bounded further on, per client.
    """

    batch = 500

    def __init__(self, loop: asyncio.AbstractEventLoop, handler: Callable[[T], Any]) -> None:
        self._loop = loop
        self._handler = handler
        self._items: deque[tuple[T, threading.Event | None]] = deque()
        self._lock = threading.Lock()
        self._scheduled = False

    def put(self, item: T) -> None:
        """Without waiting for the loop."""
        self._put(item, None)

    def put_and_wait(self, item: T, timeout: float) -> bool:
        """Returns once the loop has handled `item`, or False after `timeout` (the loop
        handles it later). For a callback whose return tells QuickFIX a message is taken:
        it then stores the message's MsgSeqNum as received, and a crash before the handling
        would lose a message the counterparty will never send again."""
        handled = threading.Event()
        self._put(item, handled)
        return handled.wait(timeout)

    def _put(self, item: T, handled: threading.Event | None) -> None:
        self._items.append((item, handled))
        with self._lock:
            if self._scheduled:
                return
            self._scheduled = True
        # A loop closed during shutdown raises RuntimeError: nothing is listening any more.
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(self._drain)

    def __len__(self) -> int:
        return len(self._items)

    def _drain(self) -> None:
        """At most `batch` items per turn of the loop, so a flood cannot starve its other work."""
        with self._lock:
            self._scheduled = False
        items = self._items
        handler = self._handler
        for _ in range(min(len(items), self.batch)):
            item, handled = items.popleft()
            try:
                handler(item)
            finally:
                if handled is not None:
                    handled.set()
        if items:
            with self._lock:
                if self._scheduled:
                    return
                self._scheduled = True
            self._loop.call_soon(self._drain)


class InlineInbox(Generic[T]):
    """For the callbacks QuickFIX makes on the loop's own thread (qfpoll).

    `put` hands an item to the handler at once, inside the callback: a report thus
    reaches the gateway before QuickFIX's own work after `fromApp` (storing the sequence
    number, reading on), not after it and a turn of the loop. Only from `fromApp`, where
    QuickFIX lets the application send in turn, or for an item whose handling sends nothing.

    `put_later` hands it over right after the poll, on the loop: for every other callback,
    and for bursts. In `toAdmin` a message is half sent, and one the handler sent from
    there would take the same MsgSeqNum (the exchange then logs out). A burst of market
    data costs less handled in one go after QuickFIX has read it all.

    Items are handled one at a time and in order: one put while another is being handled
    (the handler sent, and QuickFIX called back) or while one waits for the loop, waits
    behind it."""

    def __init__(self, loop: asyncio.AbstractEventLoop, handler: Callable[[T], Any]) -> None:
        self._loop = loop
        self._handler = handler
        self._items: deque[T] = deque()
        self._handling = False
        self._scheduled = False

    def put(self, item: T) -> None:
        self._items.append(item)
        if not (self._handling or self._scheduled):
            self._drain()

    @property
    def idle(self) -> bool:
        """Every item put has been handled."""
        return not self._items and not self._handling

    def put_later(self, item: T) -> None:
        self._items.append(item)
        self._schedule()

    def _schedule(self) -> None:
        if not self._scheduled:
            self._scheduled = True
            # A loop closed during shutdown raises RuntimeError: nothing is listening any more.
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon(self._drain_scheduled)

    def _drain_scheduled(self) -> None:
        self._scheduled = False
        self._drain()

    def _drain(self) -> None:
        self._handling = True
        try:
            while self._items:
                self._handler(self._items.popleft())
        finally:
            self._handling = False
            if self._items:  # the handler raised: what waited behind it goes next turn
                self._schedule()
