"""OKCoin FIX messages -> venue reports of the domain model. Pure functions.

The standard messages read as FIX 4.4 reads them (`fixgw.venues.fix44.inbound`), with
OKCoin's code tables; here are its own messages (AccountInfoResponse, ExceptionResponse)
and fields (LogoutReason, AccReqID).
"""

from __future__ import annotations

from datetime import datetime

from fixgw.domain import (
    AccountInfoReport,
    BookSnapshotReport,
    BookUpdateReport,
    CancelRejectReport,
    CurrencyBalance,
    ErrorSource,
    ExchangeErrorReport,
    ExecutionReport,
    LogoutReason,
    MarketDataRejectReport,
)
from fixgw.fix.message import FixMessage
from fixgw.fix.reader import FieldReader
from fixgw.fix.tags import Tag
from fixgw.venues.base import MessageIds
from fixgw.venues.fix44 import inbound as fix44
from fixgw.venues.okcoin.enums import EXEC_TYPE, LOGOUT_REASON, ORD_STATUS
from fixgw.venues.okcoin.tags import OkMsgType, OkTag

OKCOIN = fix44.Codes(
    exec_type=EXEC_TYPE,
    ord_status=ORD_STATUS,
    no_order_id=(*fix44.NO_ORDER_ID, "refused"),
)
"""OKCoin's ExecType (1 and 2 for fills) and OrdStatus; public clients saw the OrderID
`refused` on rejected orders."""

ID_OF_REJECTED = {**fix44.ID_OF_REJECTED, OkMsgType.ACCOUNT_INFO_REQUEST: "acc_req_id"}
_OWN_IDS = {"acc_req_id": OkTag.ACC_REQ_ID}


def ids_named(msg: FixMessage) -> MessageIds:
    return fix44.ids_named(msg, _OWN_IDS)


def execution_report(msg: FixMessage, received: datetime) -> ExecutionReport:
    return fix44.execution_report(msg, received, OKCOIN)


def order_cancel_reject(msg: FixMessage, received: datetime) -> CancelRejectReport:
    return fix44.order_cancel_reject(msg, received, OKCOIN)


def market_data_snapshot(msg: FixMessage, received: datetime) -> BookSnapshotReport:
    return fix44.market_data_snapshot(msg, received)


def market_data_incremental(msg: FixMessage, received: datetime) -> BookUpdateReport:
    return fix44.market_data_incremental(msg, received)


def market_data_request_reject(msg: FixMessage, received: datetime) -> MarketDataRejectReport:
    return fix44.market_data_request_reject(msg, received)


def session_reject(msg: FixMessage, received: datetime) -> ExchangeErrorReport:
    return fix44.session_reject(msg, received)


def business_message_reject(msg: FixMessage, received: datetime) -> ExchangeErrorReport:
    return fix44.business_message_reject(msg, received, ID_OF_REJECTED)


_FREE_FROZEN = (
    (OkTag.FREE_BTC, OkTag.FROZEN_BTC, "BTC"),
    (OkTag.FREE_LTC, OkTag.FROZEN_LTC, "LTC"),
    (OkTag.FREE_QUOTE, OkTag.FROZEN_QUOTE, None),
)
"""Per-currency tags of Z1001; the third pair is in the account's quote currency (15)."""
_QUOTE = "QUOTE"
"""The key of the quote pair where Currency (15) cannot name it: absent, or a coin that has
its own pair (FreeBTC, FreeLTC), whose figures it would overwrite."""
_OWN_PAIRS = frozenset(code for _, _, code in _FREE_FROZEN if code is not None)


def _quote_key(currency: str | None) -> str:
    return currency if currency is not None and currency not in _OWN_PAIRS else _QUOTE


def account_info_response(msg: FixMessage, received: datetime) -> AccountInfoReport:
    r = FieldReader(msg)
    currency = r.opt_str(Tag.CURRENCY)
    balances = {}
    for free_tag, frozen_tag, code in _FREE_FROZEN:
        free, frozen = r.opt_decimal(free_tag), r.opt_decimal(frozen_tag)
        if free is not None or frozen is not None:
            balances[code or _quote_key(currency)] = CurrencyBalance(free=free, frozen=frozen)
    balance_text = r.opt_str(OkTag.BALANCE)
    balance = (
        [r.to_decimal(OkTag.BALANCE, part) for part in balance_text.split("/")]
        if balance_text
        else []
    )
    return AccountInfoReport(
        acc_req_id=r.text(OkTag.ACC_REQ_ID),
        currency=currency,
        balance=balance,
        balances=balances,
        ts=received,
    )


def exception_response(msg: FixMessage, received: datetime) -> ExchangeErrorReport:
    r = FieldReader(msg)
    return ExchangeErrorReport(
        source=ErrorSource.EXCEPTION,
        text=r.opt_str(Tag.TEXT),
        cl_ord_id=r.opt_str(Tag.CL_ORD_ID),
        acc_req_id=r.opt_str(OkTag.ACC_REQ_ID),
        md_req_id=r.opt_str(Tag.MD_REQ_ID),
        ts=received,
    )


def logout_reason(msg: FixMessage) -> LogoutReason | None:
    return FieldReader(msg).lenient_code(LOGOUT_REASON, LogoutReason.SERVER_ERROR)
