"""The OMS side of the bridge: FIX 4.4 as an OMS expects it (ExecType F for fills, A for
pending new), whatever the exchange speaks. The code tables are FIX 4.4's own
(`fixgw.fix.codes`); here is what the bridge adds: which ExecType each order event is sent
as, and which reason codes answer a request the gateway refused."""

from __future__ import annotations

from collections.abc import Mapping

from fixgw.api.protocol import ErrorCode
from fixgw.domain import (
    MdRejectReason,
    OrderAccepted,
    OrderCanceled,
    OrderEvent,
    OrderFilled,
    OrderPartiallyFilled,
    OrderPendingCancel,
    OrderPendingNew,
    OrderRejected,
    OrderRestated,
    OrderStatusReported,
)

EXEC_TYPE_OF_EVENT: Mapping[type[OrderEvent], str] = {
    OrderPendingNew: "A",
    OrderAccepted: "0",
    OrderPartiallyFilled: "F",
    OrderFilled: "F",
    OrderPendingCancel: "6",
    OrderCanceled: "4",
    OrderRejected: "8",
    OrderStatusReported: "I",  # and the answer to an OMS's OrderStatusRequest
    OrderRestated: "D",
}
"""ExecType (150) of the ExecutionReport each kind of order event becomes."""

OTHER = "99"
UNSUPPORTED_ORDER = "11"
"""OrdRejReason 11, unsupported order characteristic: a side or type the exchange lacks."""

ORD_REJ_REASON_OF_ERROR: Mapping[str, str] = {
    ErrorCode.HALTED: "0",  # broker option
    ErrorCode.UNKNOWN_SYMBOL: "1",
    ErrorCode.RISK: "3",  # order exceeds limit
    ErrorCode.UNKNOWN_ORDER: "5",
    ErrorCode.DUPLICATE_CL_ORD_ID: "6",
    ErrorCode.INVALID_QTY: "13",
}
"""OrdRejReason (103) of a request the gateway refused, by the gateway's error code; the
rest are 99 (other). The code and the reason are in Text either way."""

CXL_REJ_REASON_OF_ERROR: Mapping[str, str] = {
    ErrorCode.ORDER_CLOSED: "0",  # too late to cancel: filled, canceled or rejected already
    ErrorCode.UNKNOWN_ORDER: "1",
    ErrorCode.CANCEL_PENDING: "3",
    ErrorCode.DUPLICATE_CL_ORD_ID: "6",  # the cancel's own ClOrdID is in use
}
"""CxlRejReason (102) of a cancel the gateway refused, by its error code; the rest are 99
(other). The code and the reason are in Text either way."""

CXL_REJ_UNKNOWN_ORDER = "1"
CXL_REJ_BROKER_OPTION = "2"
"""A replace: the exchange has none (CxlRejReason 2, broker or exchange option)."""
BUSINESS_REJECT_OTHER = "0"
BUSINESS_REJECT_UNSUPPORTED = "3"
BUSINESS_REJECT_NOT_AVAILABLE = "4"
"""BusinessRejectReason (380): 0 other, 3 unsupported message type, 4 application not
available."""

INCORRECT_DATA_FORMAT = "6"
"""SessionRejectReason (373) 6, incorrect data format for value: one that is not UTF-8."""
INCORRECT_NUM_IN_GROUP = "16"
"""SessionRejectReason (373) 16: a repeating group's NumInGroup is not its number of entries."""

MD_REQ_REJ_REASON_OF_ERROR: Mapping[str, str] = {ErrorCode.UNKNOWN_SYMBOL: "0"}
"""MDReqRejReason (281) of a MarketDataRequest the gateway refused, by its error code. The
rest (no snapshot in time, the session down) have none of FIX 4.4's: no 281, Text says why."""

MD_REJECT_REASONS_PASSED_ON = frozenset(
    {
        MdRejectReason.UNKNOWN_SYMBOL,
        MdRejectReason.INSUFFICIENT_BANDWIDTH,
        MdRejectReason.INSUFFICIENT_PERMISSIONS,
        MdRejectReason.UNSUPPORTED_ENTRY_TYPE,
    }
)
"""The exchange's reasons for refusing a stream that hold for the OMS's request as well: the
symbol, the firm's entitlement, an entry type the OMS asked for. They reach the OMS as the
exchange's 281. The others are about the gateway's own request upstream (its MDReqID,
depth, subscription or update type, ...), not the OMS's: no 281, Text gives the exchange's."""

INCREMENTAL = "1"
"""MDUpdateType (265) 1: the OMS asks for incremental refreshes (X); 0 or none, full (W)."""
