"""OKCoin FIX messages -> venue reports of the domain model."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal, InvalidOperation
from enum import Enum
from typing import NamedTuple, TypeVar

from fixgw.codetable import CodeTable
from fixgw.domain import (
    AccountInfoReport,
    BookSnapshotReport,
    BookUpdateReport,
    CancelRejectReason,
    CancelRejectReport,
    CurrencyBalance,
    ErrorSource,
    ExchangeErrorReport,
    ExecutionReport,
    Level,
    LevelAction,
    LevelUpdate,
    LogoutReason,
    MarketDataRejectReport,
    MdEntryKind,
    MdRejectReason,
    RejectReason,
    Trade,
)
from fixgw.errors import DialectError, UnknownCode
from fixgw.fix.message import FixMessage, GroupSpec, parse_utc_timestamp
from fixgw.venues.okcoin.enums import (
    BOOK_SIDE_OF,
    CXL_REJ_REASON,
    EXEC_TYPE,
    LOGOUT_REASON,
    MD_ENTRY_TYPE,
    MD_REQ_REJ_REASON,
    MD_UPDATE_ACTION,
    ORD_REJ_REASON,
    ORD_STATUS,
    ORD_TYPE,
    SIDE,
)
from fixgw.venues.okcoin.tags import MsgType, Tag

E = TypeVar("E", bound=Enum)

GROUPS: dict[str, tuple[GroupSpec, ...]] = {
    MsgType.MARKET_DATA_SNAPSHOT: (
        GroupSpec(Tag.NO_MD_ENTRIES, Tag.MD_ENTRY_TYPE, frozenset({269, 270, 271, 272, 273, 54})),
    ),
    MsgType.MARKET_DATA_INCREMENTAL: (
        GroupSpec(
            Tag.NO_MD_ENTRIES,
            Tag.MD_UPDATE_ACTION,
            frozenset({279, 269, 270, 271, 55, 272, 273, 54}),
        ),
    ),
    MsgType.MARKET_DATA_REQUEST: (
        GroupSpec(Tag.NO_MD_ENTRY_TYPES, Tag.MD_ENTRY_TYPE, frozenset({269})),
        GroupSpec(Tag.NO_RELATED_SYM, Tag.SYMBOL, frozenset({55})),
    ),
}
"""Repeating groups of the dialect, for `fixmsg.parse`."""


_NO_ORDER_ID = (None, "", "NONE", "refused")
"""OrderID values that name no order: FIX's NONE, and the `refused` OKCoin sent on rejects."""


class MessageIds(NamedTuple):
    """The ids a message names, read leniently: of a message the dialect cannot otherwise
    read, or of one of ours the exchange never got."""

    msg_type: str
    cl_ord_id: str | None
    orig_cl_ord_id: str | None
    order_id: str | None
    exec_id: str | None
    md_req_id: str | None
    acc_req_id: str | None
    mass_status_req_id: str | None


def ids_named(msg: FixMessage) -> MessageIds:
    f = msg.fields
    order_id = f.get(Tag.ORDER_ID)
    return MessageIds(
        msg_type=msg.msg_type,
        cl_ord_id=f.get(Tag.CL_ORD_ID) or None,
        orig_cl_ord_id=f.get(Tag.ORIG_CL_ORD_ID) or None,
        order_id=None if order_id in _NO_ORDER_ID else order_id,
        exec_id=f.get(Tag.EXEC_ID) or None,
        md_req_id=f.get(Tag.MD_REQ_ID) or None,
        acc_req_id=f.get(Tag.ACC_REQ_ID) or None,
        mass_status_req_id=f.get(Tag.MASS_STATUS_REQ_ID) or None,
    )


class _Reader:
    """Typed access to one message's fields; every failure names the tag."""

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
        try:
            result = Decimal(value)
        except InvalidOperation:
            raise self.fail(f"not a decimal: {value!r}", tag) from None
        if not result.is_finite():
            raise self.fail(f"not a finite decimal: {value!r}", tag)
        return result

    def code(self, table: CodeTable[E]) -> E:
        try:
            return table.decode(self.text(table.tag))
        except UnknownCode as exc:
            raise self.fail(str(exc), table.tag) from None

    def opt_code(self, table: CodeTable[E]) -> E | None:
        return None if self.opt_str(table.tag) is None else self.code(table)

    def lenient_code(self, table: CodeTable[E], fallback: E) -> E | None:
        """For reason codes only: a code outside the table reads as `fallback` (lossy, on purpose:
        an order must not be left unreadable because a venue added a reject reason)."""
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


def execution_report(msg: FixMessage, received: datetime) -> ExecutionReport:
    r = _Reader(msg)
    kind = r.code(EXEC_TYPE)
    return ExecutionReport(
        exec_id=r.text(Tag.EXEC_ID),
        kind=kind,
        status=r.code(ORD_STATUS),
        cl_ord_id=r.opt_str(Tag.CL_ORD_ID),
        orig_cl_ord_id=r.opt_str(Tag.ORIG_CL_ORD_ID),
        order_id=None if r.opt_str(Tag.ORDER_ID) in _NO_ORDER_ID else r.text(Tag.ORDER_ID),
        symbol=r.text(Tag.SYMBOL),
        side=r.code(SIDE),
        order_type=r.opt_code(ORD_TYPE),
        qty=r.opt_decimal(Tag.ORDER_QTY),
        price=r.opt_decimal(Tag.PRICE),
        cum_qty=r.decimal(Tag.CUM_QTY),
        leaves_qty=r.decimal(Tag.LEAVES_QTY),
        avg_px=r.decimal(Tag.AVG_PX),
        last_qty=r.opt_decimal(Tag.LAST_QTY) if kind.is_fill else None,
        last_px=r.opt_decimal(Tag.LAST_PX) if kind.is_fill else None,
        reject_reason=r.lenient_code(ORD_REJ_REASON, RejectReason.OTHER),
        text=r.opt_str(Tag.TEXT),
        ts=r.time(Tag.TRANSACT_TIME) or received,
        poss_dup=msg.fields.get(Tag.POSS_DUP_FLAG) == "Y",
        mass_status_req_id=r.opt_str(Tag.MASS_STATUS_REQ_ID),
        last_report=r.opt_str(Tag.LAST_RPT_REQUESTED) == "Y",
    )


def order_cancel_reject(msg: FixMessage, received: datetime) -> CancelRejectReport:
    r = _Reader(msg)
    order_id = r.opt_str(Tag.ORDER_ID)
    return CancelRejectReport(
        cl_ord_id=r.text(Tag.CL_ORD_ID),
        orig_cl_ord_id=r.opt_str(Tag.ORIG_CL_ORD_ID),
        order_id=None if order_id in _NO_ORDER_ID else order_id,
        status=r.opt_code(ORD_STATUS),
        reason=r.lenient_code(CXL_REJ_REASON, CancelRejectReason.OTHER) or CancelRejectReason.OTHER,
        text=r.opt_str(Tag.TEXT),
        ts=r.time(Tag.TRANSACT_TIME) or received,
    )


def market_data_snapshot(msg: FixMessage, received: datetime) -> BookSnapshotReport:
    r = _Reader(msg)
    bids: list[Level] = []
    asks: list[Level] = []
    trades: list[Trade] = []
    for entry in msg.group(Tag.NO_MD_ENTRIES):
        e = _Reader(msg, entry)
        kind = e.code(MD_ENTRY_TYPE)
        if kind is MdEntryKind.TRADE:
            trades.append(_trade(e))
        else:
            level = (e.decimal(Tag.MD_ENTRY_PX), e.decimal(Tag.MD_ENTRY_SIZE))
            (bids if kind is MdEntryKind.BID else asks).append(level)
    return BookSnapshotReport(
        md_req_id=r.opt_str(Tag.MD_REQ_ID),
        symbol=r.text(Tag.SYMBOL),
        bids=bids,
        asks=asks,
        trades=trades,
        ts=received,
    )


def market_data_incremental(msg: FixMessage, received: datetime) -> BookUpdateReport:
    """Entries without a Symbol (55) belong to the symbol of the entry before them."""
    r = _Reader(msg)
    levels: dict[str, list[LevelUpdate]] = {}
    trades: dict[str, list[Trade]] = {}
    symbol = r.opt_str(Tag.SYMBOL)
    for entry in msg.group(Tag.NO_MD_ENTRIES):
        e = _Reader(msg, entry)
        symbol = e.opt_str(Tag.SYMBOL) or symbol
        if symbol is None:
            raise e.fail("entry without a Symbol", Tag.SYMBOL)
        kind = e.code(MD_ENTRY_TYPE)
        action = e.code(MD_UPDATE_ACTION)
        if kind is MdEntryKind.TRADE:
            trades.setdefault(symbol, []).append(_trade(e))
            continue
        size = Decimal(0) if action is LevelAction.DELETE else e.decimal(Tag.MD_ENTRY_SIZE)
        levels.setdefault(symbol, []).append(
            LevelUpdate(action, BOOK_SIDE_OF[kind], e.decimal(Tag.MD_ENTRY_PX), size)
        )
    return BookUpdateReport(
        md_req_id=r.opt_str(Tag.MD_REQ_ID), levels=levels, trades=trades, ts=received
    )


def _trade(e: _Reader) -> Trade:
    return Trade(
        price=e.decimal(Tag.MD_ENTRY_PX),
        size=e.decimal(Tag.MD_ENTRY_SIZE),
        aggressor=e.opt_code(SIDE),
    )


def market_data_request_reject(msg: FixMessage, received: datetime) -> MarketDataRejectReport:
    r = _Reader(msg)
    return MarketDataRejectReport(
        md_req_id=r.text(Tag.MD_REQ_ID),
        reason=r.lenient_code(MD_REQ_REJ_REASON, MdRejectReason.OTHER) or MdRejectReason.OTHER,
        text=r.opt_str(Tag.TEXT),
        ts=received,
    )


_FREE_FROZEN = (
    (Tag.FREE_BTC, Tag.FROZEN_BTC, "BTC"),
    (Tag.FREE_LTC, Tag.FROZEN_LTC, "LTC"),
    (Tag.FREE_QUOTE, Tag.FROZEN_QUOTE, None),
)
"""Per-currency tags of Z1001; the third pair is in the account's quote currency (15)."""


def account_info_response(msg: FixMessage, received: datetime) -> AccountInfoReport:
    r = _Reader(msg)
    currency = r.opt_str(Tag.CURRENCY)
    balances = {}
    for free_tag, frozen_tag, code in _FREE_FROZEN:
        free, frozen = r.opt_decimal(free_tag), r.opt_decimal(frozen_tag)
        if free is not None or frozen is not None:
            balances[code or currency or "QUOTE"] = CurrencyBalance(free=free, frozen=frozen)
    balance_text = r.opt_str(Tag.BALANCE)
    balance = (
        [r.to_decimal(Tag.BALANCE, part) for part in balance_text.split("/")]
        if (balance_text)
        else []
    )
    return AccountInfoReport(
        acc_req_id=r.text(Tag.ACC_REQ_ID),
        currency=currency,
        balance=balance,
        balances=balances,
        ts=received,
    )


def exception_response(msg: FixMessage, received: datetime) -> ExchangeErrorReport:
    r = _Reader(msg)
    return ExchangeErrorReport(
        source=ErrorSource.EXCEPTION,
        text=r.opt_str(Tag.TEXT),
        cl_ord_id=r.opt_str(Tag.CL_ORD_ID),
        acc_req_id=r.opt_str(Tag.ACC_REQ_ID),
        md_req_id=r.opt_str(Tag.MD_REQ_ID),
        ts=received,
    )


def session_reject(msg: FixMessage, received: datetime) -> ExchangeErrorReport:
    """Names the rejected message by its sequence number only; the gateway knows the rest."""
    r = _Reader(msg)
    ref = r.opt_str(Tag.REF_SEQ_NUM)
    tag = r.opt_str(Tag.REF_TAG_ID)
    reason = r.opt_str(Tag.SESSION_REJECT_REASON)
    return ExchangeErrorReport(
        source=ErrorSource.SESSION_REJECT,
        text=r.opt_str(Tag.TEXT),
        reason=f"{reason}" + (f" (tag {tag})" if tag else "") if reason else None,
        ref_msg_type=r.opt_str(Tag.REF_MSG_TYPE),
        ref_seq_num=int(ref) if ref and ref.isdigit() else None,
        ts=received,
    )


_ID_OF_REJECTED: dict[str, str] = {
    MsgType.NEW_ORDER_SINGLE: "cl_ord_id",
    MsgType.ORDER_CANCEL_REQUEST: "cl_ord_id",
    MsgType.ORDER_STATUS_REQUEST: "cl_ord_id",
    MsgType.ACCOUNT_INFO_REQUEST: "acc_req_id",
    MsgType.MARKET_DATA_REQUEST: "md_req_id",
}
"""What BusinessRejectRefID (379) holds, by the rejected message's type."""


def business_message_reject(msg: FixMessage, received: datetime) -> ExchangeErrorReport:
    r = _Reader(msg)
    ref_msg_type = r.opt_str(Tag.REF_MSG_TYPE)
    ref_id = r.opt_str(Tag.BUSINESS_REJECT_REF_ID)
    ref = r.opt_str(Tag.REF_SEQ_NUM)
    ids = (
        {_ID_OF_REJECTED[ref_msg_type]: ref_id}
        if ref_id and ref_msg_type in _ID_OF_REJECTED
        else {}
    )
    return ExchangeErrorReport(
        source=ErrorSource.BUSINESS_REJECT,
        text=r.opt_str(Tag.TEXT),
        reason=r.opt_str(Tag.BUSINESS_REJECT_REASON),
        ref_msg_type=ref_msg_type,
        ref_seq_num=int(ref) if ref and ref.isdigit() else None,
        ts=received,
        **ids,
    )


def logout_reason(msg: FixMessage) -> LogoutReason | None:
    return _Reader(msg).lenient_code(LOGOUT_REASON, LogoutReason.SERVER_ERROR)
