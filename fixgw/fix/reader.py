"""Typed, checked access to the fields of a message a venue sent: every failure is one
`DialectError` naming the message type, the tag and the raw message."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from enum import Enum
from typing import TypeVar

from fixgw.codetable import CodeTable
from fixgw.errors import DialectError, UnknownCode
from fixgw.fix.message import FixMessage, parse_utc_timestamp

E = TypeVar("E", bound=Enum)

_FIX_FLOAT = re.compile(r"-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")
"""FIX's float: ASCII digits, an optional '.' and an optional leading '-'; no exponent, no
spaces, no other script's digits (which `Decimal()` would read)."""


def is_fix_float(value: str) -> bool:
    """`_FIX_FLOAT.fullmatch(value)`, by string tests: five of them per execution report."""
    digits = value[1:] if value.startswith("-") else value
    whole, dot, fraction = digits.partition(".")
    if not digits.isascii() or not (fraction == "" or fraction.isdigit()):
        return False
    return whole.isdigit() if whole else bool(dot and fraction)


class FieldReader:
    """One message's fields, or one entry of a repeating group in it."""

    __slots__ = ("fields", "msg")

    def __init__(self, msg: FixMessage, entry: Mapping[int, str] | None = None) -> None:
        self.msg = msg
        self.fields = msg.fields if entry is None else entry

    def fail(self, why: str, tag: int | None) -> DialectError:
        return DialectError(why, msg_type=self.msg.msg_type, tag=tag, raw=self.msg.raw)

    def text(self, tag: int) -> str:
        value = self.fields.get(tag)
        if value is None or value == "":
            raise self.fail("required tag missing", tag)
        return value

    def opt_str(self, tag: int) -> str | None:
        return self.fields.get(tag) or None

    def decimal(self, tag: int) -> Decimal:
        return self.to_decimal(tag, self.text(tag))

    def opt_decimal(self, tag: int) -> Decimal | None:
        value = self.fields.get(tag)
        return None if value is None or value == "" else self.to_decimal(tag, value)

    def to_decimal(self, tag: int, value: str) -> Decimal:
        if not is_fix_float(value):
            raise self.fail(f"not a FIX decimal: {value[:40]!r}", tag)
        return Decimal(value)

    def code(self, table: CodeTable[E]) -> E:
        try:
            return table.decode(self.text(table.tag))
        except UnknownCode as exc:
            raise self.fail(str(exc), table.tag) from None

    def opt_code(self, table: CodeTable[E]) -> E | None:
        return None if self.opt_str(table.tag) is None else self.code(table)

    def lenient_code(self, table: CodeTable[E], fallback: E) -> E | None:
        """For reason codes only: a code outside the table reads as `fallback` (lossy, on
        purpose: an order must not be left unreadable because a venue added a reason)."""
        code = self.opt_str(table.tag)
        if code is None:
            return None
        return table.forward.get(code, fallback)

    def time(self, tag: int) -> datetime | None:
        value = self.opt_str(tag)
        if value is None:
            return None
        try:
            return parse_utc_timestamp(value)
        except ValueError:
            raise self.fail(f"not a UTCTimestamp: {value!r}", tag) from None
