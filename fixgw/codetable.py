"""A FIX code <-> domain enum mapping, written once as data with its reverse derived."""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum
from typing import Generic, TypeVar

from fixgw.errors import UnknownCode

E = TypeVar("E", bound=Enum)


class CodeTable(Generic[E]):
    def __init__(self, tag: int, name: str, forward: Mapping[str, E]) -> None:
        self.tag = tag
        self.name = name
        self.forward = dict(forward)
        self.reverse: dict[E, str] = {}
        for code, member in forward.items():
            # The first code listed for a member is the one fixgw sends.
            self.reverse.setdefault(member, code)

    def decode(self, code: str) -> E:
        try:
            return self.forward[code]
        except KeyError:
            raise UnknownCode(f"{self.name} ({self.tag}) has no value {code!r}") from None

    def encode(self, member: E) -> str:
        try:
            return self.reverse[member]
        except KeyError:
            raise UnknownCode(f"{self.name} ({self.tag}) has no code for {member!r}") from None
