"""OKCoin's FIX code <-> domain enum mappings, as data: its own where the dialect differs
from FIX 4.4 (ExecType 1 and 2 for fills, the OrdStatus values it lists, LogoutReason), and
FIX 4.4's (`fixgw.fix.codes`) for the rest.

Each table is written once, FIX code to enum; the reverse is derived. `decode` of a code
with no entry raises `UnknownCode`; nothing passes through unmapped.
"""

from __future__ import annotations

from typing import Any

from fixgw.codetable import CodeTable
from fixgw.domain import ExecKind, LogoutReason, OrderStatus
from fixgw.fix.codes import (
    BOOK_SIDE_OF,
    CXL_REJ_REASON,
    MD_ENTRY_TYPE,
    MD_REQ_REJ_REASON,
    MD_UPDATE_ACTION,
    ORD_REJ_REASON,
    ORD_TYPE,
    SIDE,
    SUBSCRIPTION_REQUEST_TYPE,
)

__all__ = [
    "ALL_TABLES",
    "BOOK_SIDE_OF",
    "CXL_REJ_REASON",
    "EXEC_KINDS_NOT_SENT",
    "EXEC_TYPE",
    "LOGOUT_REASON",
    "MD_ENTRY_TYPE",
    "MD_REQ_REJ_REASON",
    "MD_UPDATE_ACTION",
    "ORD_REJ_REASON",
    "ORD_STATUS",
    "ORD_TYPE",
    "SIDE",
    "SUBSCRIPTION_REQUEST_TYPE",
]

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
EXEC_KINDS_NOT_SENT = frozenset({ExecKind.RESTATED})
"""What the dialect has no ExecType for: a restatement (FIX 4.4's D) from an OKCoin session
is unreadable, as any code it lacks."""

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

ALL_TABLES: tuple[CodeTable[Any], ...] = (ORD_STATUS, EXEC_TYPE, LOGOUT_REASON)
"""The dialect's own; the rest are FIX 4.4's (`fixgw.fix.codes.ALL_TABLES`)."""
