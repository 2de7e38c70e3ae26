"""Standard FIX 4.4 codes <-> the domain's enums: the tables a plain FIX 4.4 venue and the
FIX bridge's OMS sessions share. Each is written once, code to enum; the reverse is derived,
and the first code listed for a member is the one sent. A code with no entry raises
`UnknownCode`; lossy entries (several codes for one member) say why."""

from __future__ import annotations

from typing import Any

from fixgw.codetable import CodeTable
from fixgw.domain import (
    BookSide,
    CancelRejectReason,
    ExecKind,
    LevelAction,
    MdEntryKind,
    MdRejectReason,
    MdSubscription,
    OrderStatus,
    OrderType,
    RejectReason,
    RestatementReason,
    Side,
    TimeInForce,
)

SIDE = CodeTable(54, "Side", {"1": Side.BUY, "2": Side.SELL})

ORD_TYPE = CodeTable(40, "OrdType", {"1": OrderType.MARKET, "2": OrderType.LIMIT})

TIME_IN_FORCE = CodeTable(
    59,
    "TimeInForce",
    {"0": TimeInForce.DAY, "1": TimeInForce.GTC, "3": TimeInForce.IOC, "4": TimeInForce.FOK},
)

ORD_STATUS = CodeTable(
    39,
    "OrdStatus",
    {
        "A": OrderStatus.PENDING_NEW,
        "0": OrderStatus.NEW,
        "1": OrderStatus.PARTIALLY_FILLED,
        "2": OrderStatus.FILLED,
        "6": OrderStatus.PENDING_CANCEL,
        "4": OrderStatus.CANCELED,
        # Lossy: an order expired (an IOC's rest, a Day order at the close) or done for the
        # day is over, as a cancelled one is; the report's Text says which.
        "C": OrderStatus.CANCELED,
        "3": OrderStatus.CANCELED,
        "8": OrderStatus.REJECTED,
    },
)

EXEC_TYPE = CodeTable(
    150,
    "ExecType",
    {
        "0": ExecKind.NEW,
        # Lossy: Pending New is an acknowledgement too; its OrdStatus (A) says pending.
        "A": ExecKind.NEW,
        "F": ExecKind.TRADE,
        # FIX 4.2's fill codes, which many FIX 4.4 venues still send.
        "1": ExecKind.PARTIAL_FILL,
        "2": ExecKind.FILL,
        "4": ExecKind.CANCELED,
        # Lossy: expired and done for the day end the order as a cancel does.
        "C": ExecKind.CANCELED,
        "3": ExecKind.CANCELED,
        "6": ExecKind.PENDING_CANCEL,
        "8": ExecKind.REJECTED,
        "I": ExecKind.ORDER_STATUS,
        "D": ExecKind.RESTATED,
    },
)

ORD_REJ_REASON = CodeTable(
    103,
    "OrdRejReason",
    {
        "0": RejectReason.BROKER_OPTION,
        "1": RejectReason.UNKNOWN_SYMBOL,
        "2": RejectReason.EXCHANGE_CLOSED,
        "3": RejectReason.EXCEEDS_LIMIT,
        "4": RejectReason.TOO_LATE_TO_ENTER,
        "5": RejectReason.UNKNOWN_ORDER,
        "6": RejectReason.DUPLICATE_ORDER,
        "8": RejectReason.STALE_ORDER,
        "11": RejectReason.UNSUPPORTED_ORDER,
        "13": RejectReason.INCORRECT_QUANTITY,
        "15": RejectReason.UNKNOWN_ACCOUNT,
        "18": RejectReason.INVALID_PRICE_INCREMENT,
        "99": RejectReason.OTHER,
    },
)
"""FIX 4.4's other reasons (7, 9, 10, 12, 14) read as OTHER where a report is read
(`lenient_code`)."""

EXEC_RESTATEMENT_REASON = CodeTable(
    378,
    "ExecRestatementReason",
    {
        "0": RestatementReason.GT_CORPORATE_ACTION,
        "1": RestatementReason.GT_RENEWAL,
        "2": RestatementReason.VERBAL_CHANGE,
        "3": RestatementReason.REPRICING,
        "4": RestatementReason.BROKER_OPTION,
        "5": RestatementReason.PARTIAL_DECLINE,
        "6": RestatementReason.CANCEL_ON_TRADING_HALT,
        "7": RestatementReason.CANCEL_ON_SYSTEM_FAILURE,
        "8": RestatementReason.MARKET_OPTION,
        "9": RestatementReason.CANCELED_NOT_BEST,
        "10": RestatementReason.WAREHOUSE_RECAP,
        "99": RestatementReason.OTHER,
    },
)
"""Reasons later versions of FIX added read as OTHER where a report is read."""

CXL_REJ_REASON = CodeTable(
    102,
    "CxlRejReason",
    {
        "0": CancelRejectReason.TOO_LATE_TO_CANCEL,
        "1": CancelRejectReason.UNKNOWN_ORDER,
        "2": CancelRejectReason.BROKER_OPTION,
        "3": CancelRejectReason.ALREADY_PENDING,
        "6": CancelRejectReason.DUPLICATE_CL_ORD_ID,
        "99": CancelRejectReason.OTHER,
    },
)
"""FIX 4.4's other reasons (4, 5) read as OTHER where a report is read."""

MD_ENTRY_TYPE = CodeTable(
    269, "MDEntryType", {"0": MdEntryKind.BID, "1": MdEntryKind.ASK, "2": MdEntryKind.TRADE}
)

MD_ENTRY_TYPES_PASSED_OVER = {
    "3": "index value",
    "4": "opening price",
    "5": "closing price",
    "6": "settlement price",
    "7": "session high",
    "8": "session low",
    "9": "session VWAP",
    "A": "imbalance",
    "B": "trade volume",
    "C": "open interest",
    "D": "composite underlying price",
    "E": "simulated sell price",
    "F": "simulated buy price",
    "G": "margin rate",
    "H": "mid price",
    "J": "empty book",
    "K": "settle high",
    "L": "settle low",
    "M": "prior settle",
    "N": "session high bid",
    "O": "session low offer",
    "P": "early prices",
    "Q": "auction clearing price",
}
"""The standard MDEntryType values the gateway has no use for, by name: a venue may add
such entries to its market data, and they are passed over, not fatal to the message
(3-C are FIX 4.4's, D-Q came later and FIX 4.4 venues send them too). A value no version
of FIX defines is still unknown: it could be a venue's own kind of bid or offer."""

MD_UPDATE_ACTION = CodeTable(
    279,
    "MDUpdateAction",
    {"0": LevelAction.NEW, "1": LevelAction.CHANGE, "2": LevelAction.DELETE},
)

SUBSCRIPTION_REQUEST_TYPE = CodeTable(
    263,
    "SubscriptionRequestType",
    {
        "0": MdSubscription.SNAPSHOT,
        "1": MdSubscription.SUBSCRIBE,
        "2": MdSubscription.UNSUBSCRIBE,
    },
)

MD_REQ_REJ_REASON = CodeTable(
    281,
    "MDReqRejReason",
    {
        "0": MdRejectReason.UNKNOWN_SYMBOL,
        "1": MdRejectReason.DUPLICATE_MD_REQ_ID,
        "2": MdRejectReason.INSUFFICIENT_BANDWIDTH,
        "3": MdRejectReason.INSUFFICIENT_PERMISSIONS,
        "4": MdRejectReason.UNSUPPORTED_SUBSCRIPTION,
        "5": MdRejectReason.UNSUPPORTED_DEPTH,
        "6": MdRejectReason.UNSUPPORTED_UPDATE_TYPE,
        "7": MdRejectReason.UNSUPPORTED_AGGREGATED_BOOK,
        "8": MdRejectReason.UNSUPPORTED_ENTRY_TYPE,
        "9": MdRejectReason.UNSUPPORTED_TRADING_SESSION,
        "A": MdRejectReason.UNSUPPORTED_SCOPE,
        "B": MdRejectReason.UNSUPPORTED_OPEN_CLOSE_SETTLE_FLAG,
        "C": MdRejectReason.UNSUPPORTED_IMPLICIT_DELETE,
    },
)
"""Every FIX 4.4 reason (OKCoin's dictionary lists them all). A code no version has reads as
`MdRejectReason.OTHER` where a reject is read (`lenient_code`); OTHER has no code to send."""
MD_REJECT_REASONS_NOT_SENT = frozenset({MdRejectReason.OTHER})

BOOK_SIDE_OF = {MdEntryKind.BID: BookSide.BID, MdEntryKind.ASK: BookSide.ASK}
"""Which side of the book a bid or offer entry is on (trade entries have none)."""
ENTRY_KIND_OF = {side: kind for kind, side in BOOK_SIDE_OF.items()}

ALL_TABLES: tuple[CodeTable[Any], ...] = (
    SIDE,
    ORD_TYPE,
    TIME_IN_FORCE,
    ORD_STATUS,
    EXEC_TYPE,
    ORD_REJ_REASON,
    EXEC_RESTATEMENT_REASON,
    CXL_REJ_REASON,
    MD_ENTRY_TYPE,
    MD_UPDATE_ACTION,
    SUBSCRIPTION_REQUEST_TYPE,
    MD_REQ_REJ_REASON,
)
