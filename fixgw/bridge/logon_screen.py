"""The logon gate's look at an OMS connection's first message, before QuickFIX gets it.

QuickFIX binds a connection to the session its Logon names, and one it cannot read (a
HeartBtInt missing, a tag written `049`, a SendingTime off the clock) it neither answers nor
closes, or closes without a word: with no password asked, a stranger who knew the CompIDs
held the session, and the OMS's own Logon was dropped as a second connection. So the gate
refuses, before QuickFIX sees it, a first message that is not a plain Logon, one for a
session with a password that does not carry it, and one whose SendingTime QuickFIX would
refuse; each logged with its peer, never the password."""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from datetime import UTC, datetime

import structlog

from fixgw.fix.message import FixParseError, field_spans, parse_utc_timestamp
from fixgw.ops.log_budget import LogBudget

log = structlog.get_logger("fixgw.bridge")

PASSWORD = 554
ONCE_ONLY = frozenset({8, 9, 35, 49, 56, 34, 52, 43, 97, 98, 108, 141, 553, 554, 10})
"""The Logon's tags that name its session, its numbering and its password: each once."""
MAX_LATENCY_S = 120
"""How far a Logon's SendingTime may be from this machine's clock: QuickFIX's MaxLatency."""
COMP_ID_LOGGED = 64
"""How much of a CompID a stranger sent goes into a log line."""


class LogonScreen:
    """`refusal(first, peer)`: why the first message is not handed to QuickFIX (the metric's
    reason: `not_a_logon`, `wrong_password`, `sending_time`), logged; None to hand it over."""

    def __init__(self, passwords: Mapping[str, str]) -> None:
        self._passwords = {oms: p.encode() for oms, p in passwords.items()}
        self._logs = {
            reason: LogBudget(log) for reason in ("not_a_logon", "wrong_password", "sending_time")
        }

    def refusal(self, first: bytes, peer: str) -> str | None:
        raw = first.decode(errors="surrogateescape")
        fields, wrong = _read(raw)
        if wrong is not None:
            self._logs["not_a_logon"].line(f"bridge connection closed: {wrong}", peer=peer)
            return "not_a_logon"
        oms = fields.get(49, "")
        expected = self._passwords.get(oms)
        given = fields.get(PASSWORD)
        if expected is not None and (
            given is None
            or not hmac.compare_digest(given.encode(errors="surrogateescape"), expected)
        ):
            self._logs["wrong_password"].line(
                "OMS logon refused: wrong or missing password",
                oms=oms[:COMP_ID_LOGGED],
                peer=peer,
            )
            return "wrong_password"
        off_s = _clock_off_s(fields.get(52))
        if off_s is not None and abs(off_s) > MAX_LATENCY_S:
            self._logs["sending_time"].line(
                f"OMS logon refused: its SendingTime is more than {MAX_LATENCY_S} s from this "
                "machine's clock (QuickFIX would drop it without a word); set the OMS's clock",
                oms=oms[:COMP_ID_LOGGED],
                peer=peer,
                off_s=round(off_s),
            )
            return "sending_time"
        return None


def _read(raw: str) -> tuple[dict[int, str], str | None]:
    """The first message's fields (each tag's first), or why it is not a plain Logon: a tag
    written other than by its number (`049`), a session tag twice, not MsgType A."""
    try:
        spans = field_spans(raw)
    except FixParseError:
        return {}, "its first message is not FIX fields"
    fields: dict[int, str] = {}
    end = 0
    for tag, start, stop in spans:
        written = raw[end:start].lstrip("\x01")
        if written != f"{tag}=":
            return {}, f"its first message writes tag {tag} as {written[:-1][:16]!r}"
        if tag in fields and tag in ONCE_ONLY:
            return {}, f"its first message has tag {tag} twice"
        fields.setdefault(tag, raw[start:stop])
        end = stop
    if fields.get(35) != "A":
        return {}, "its first message is not a Logon (35=A)"
    return fields, None


def _clock_off_s(sending_time: str | None) -> float | None:
    if sending_time is None:
        return None
    try:
        sent = parse_utc_timestamp(sending_time)
    except ValueError:
        return None  # left to QuickFIX: the password, if any, is checked
    return (datetime.now(UTC) - sent).total_seconds()
