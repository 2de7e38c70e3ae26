"""Every FIX code <-> domain enum mapping of the dialect, as data.

Each table is written once, FIX code to enum; the reverse is derived. `decode` of a code
with no entry raises `UnknownCode`; nothing passes through unmapped.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum
from typing import Any, Generic, TypeVar

from fixgw.domain import (
    CancelRejectReason,
    ExecKind,
    LogoutReason,
    OrderStatus,
    OrderType,
    RejectReason,
    Side,
)
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


SIDE = CodeTable(54, "Side", {"1": Side.BUY, "2": Side.SELL})

ORD_TYPE = CodeTable(40, "OrdType", {"1": OrderType.MARKET, "2": OrderType.LIMIT})

ORD_STATUS = CodeTable(
    39,
    "OrdStatus",
    {
        "0": OrderStatus.NEW,
        "1": OrderStatus.PARTIALLY_FILLED,
        "2": OrderStatus.FILLED,
        "4": OrderStatus.CANCELED,
        "6": OrderStatus.PENDING_CANCEL,
        "8": OrderStatus.REJECTED,
        "A": OrderStatus.PENDING_NEW,
    },
)

EXEC_TYPE = CodeTable(
    150,
    "ExecType",
    {
        "0": ExecKind.NEW,
        "1": ExecKind.PARTIAL_FILL,
        "2": ExecKind.FILL,
        # FIX 4.4 venues report every fill as F (Trade); OKCoin used 1 and 2.
        "F": ExecKind.TRADE,
        "4": ExecKind.CANCELED,
        "6": ExecKind.PENDING_CANCEL,
        "8": ExecKind.REJECTED,
        "I": ExecKind.ORDER_STATUS,
    },
)

ORD_REJ_REASON = CodeTable(
    103,
    "OrdRejReason",
    {
        "1": RejectReason.UNKNOWN_SYMBOL,
        "3": RejectReason.EXCEEDS_LIMIT,
        "6": RejectReason.DUPLICATE_ORDER,
        "13": RejectReason.INCORRECT_QUANTITY,
        "99": RejectReason.OTHER,
    },
)

CXL_REJ_REASON = CodeTable(
    102,
    "CxlRejReason",
    {
        "0": CancelRejectReason.TOO_LATE_TO_CANCEL,
        "1": CancelRejectReason.UNKNOWN_ORDER,
        "3": CancelRejectReason.ALREADY_PENDING,
        "99": CancelRejectReason.OTHER,
    },
)

LOGOUT_REASON = CodeTable(
    8500,
    "LogoutReason",
    {
        "0": LogoutReason.CLIENT_LOGOUT,
        "1": LogoutReason.INVALID_CREDENTIALS,
        "2": LogoutReason.TIMEOUT,
        "3": LogoutReason.SERVER_ERROR,
    },
)

ALL_TABLES: tuple[CodeTable[Any], ...] = (
    SIDE,
    ORD_TYPE,
    ORD_STATUS,
    EXEC_TYPE,
    ORD_REJ_REASON,
    CXL_REJ_REASON,
    LOGOUT_REASON,
)
