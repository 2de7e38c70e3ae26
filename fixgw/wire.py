"""JSON for the local wire (client lines, the journal and so NATS, replies, the command
line): msgspec's encoding, with what it writes otherwise than docs/protocol.md says put right.

- Money: msgspec writes a Decimal as `str()` does, which turns to exponent form below 10^-6
  and for a positive exponent (`1E-8`, `0E-8`, `1E+2`), text the gateway itself refuses
  as a decimal. The wire has plain decimals with the value's digits, none cut or added
  (`0.00000001`, `0.00000000`, `100`), as FIX has them (`format(d, "f")`).
- Times: msgspec leaves the fraction out on a whole second (`10:00:00Z`); the wire always
  has six digits (`10:00:00.000000Z`).

msgspec has a hook for decimals, but calling it for each one would double the cost of an
order event, and it has none for datetimes. Both cases are rare, so a line is encoded the
fast way first and looked at: a decimal in exponent form writes an `E` and a sign, a whole
second `:SSZ"`. Only a line that may hold one is encoded again, the exact way.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import msgspec

from fixgw.decimals import plain_decimal_text
from fixgw.domain import Event

_fast = msgspec.json.Encoder(decimal_format="string")


def time_text(value: datetime) -> str:
    """A time as the wire has it: UTC, ISO-8601, microseconds, `Z`."""
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    return "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ" % (  # noqa: UP031 - as fix.message says
        value.year,
        value.month,
        value.day,
        value.hour,
        value.minute,
        value.second,
        value.microsecond,
    )


_plain = msgspec.json.Encoder(decimal_format=plain_decimal_text)

_WHOLE_SECOND = re.compile(rb':[0-9][0-9]Z"')
"""How msgspec ends a UTC time without a fraction."""
_E = ord("E")
_PLUS = ord("+")
"""A decimal in exponent form has `E-` or `E+` (the default context's capital `E`). A line
is looked at for an `E` first (one memchr, where most lines stop); an `E` or a `+` of
something else (a client's id, a venue's text) costs only the second encoding."""
_Z = ord("Z")
_TS_END = len(b'"ts":"2026-12-06T10:00:00')
"""From the start of an event's `"ts":"` to where a time with a fraction has its point."""


def may_hold_exponent_form(out: bytes) -> bool:
    """Whether JSON msgspec wrote may hold a decimal in exponent form: false for most."""
    return _E in out and (out.find(b"E-") >= 0 or _PLUS in out)


def encode(obj: Any) -> bytes:
    """`obj` (results, replies, requests, anything msgspec encodes) as one JSON object."""
    out = _fast.encode(obj)
    if may_hold_exponent_form(out):
        out = _plain.encode(obj)
    if _Z in out and _WHOLE_SECOND.search(out) is not None:
        out = _plain.encode(_wire_times(msgspec.to_builtins(obj, builtin_types=_KEPT)))
    return out


def encode_event(event: Event) -> bytes:
    """An event as one JSON object: `encode`, for the order path. An event's one time is
    its `ts`, its first field after `type` (tests/unit/test_wire.py checks both)."""
    out = _fast.encode(event)
    if may_hold_exponent_form(out):
        out = _plain.encode(event)
    if event.ts.microsecond == 0:
        at = out.find(b'"ts":"') + _TS_END
        out = b"%s.000000%s" % (out[:at], out[at:])
    return out


_KEPT = (datetime, Decimal, msgspec.Raw)
"""What `msgspec.to_builtins` leaves as it is for the exact way: times for `_wire_times`,
decimals for `_plain`, JSON text (a request's id as sent) as it is."""


def _wire_times(value: Any) -> Any:
    if isinstance(value, datetime):
        return time_text(value)
    if isinstance(value, dict):
        return {k: _wire_times(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_wire_times(v) for v in value]
    return value
