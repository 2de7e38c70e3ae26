"""Standard FIX 4.4 messages -> venue reports of the domain model. Pure functions.

A dialect reads these messages the same way with its own code tables (`Codes`): OKCoin's
ExecType has 1 and 2 for fills, say.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from fixgw.codetable import CodeTable
from fixgw.decimals import canonical_decimal
from fixgw.domain import (
    FILL_KINDS,
    BookSnapshotReport,
    BookUpdateReport,
    CancelRejectReason,
    CancelRejectReport,
    ErrorSource,
    ExchangeErrorReport,
    ExecKind,
    ExecutionReport,
    Level,
    LevelAction,
    LevelUpdate,
    MarketDataRejectReport,
    MdEntryKind,
    MdRejectReason,
    OrderStatus,
    RejectReason,
    RestatementReason,
    Trade,
)
from fixgw.errors import DialectError
from fixgw.fix import codes
from fixgw.fix.message import FixMessage, GroupSpec
from fixgw.fix.reader import FieldReader
from fixgw.fix.tags import MsgType, Tag
from fixgw.venues.base import MessageIds

REQUEST_GROUPS: dict[str, tuple[GroupSpec, ...]] = {
    MsgType.MARKET_DATA_REQUEST: (
        GroupSpec(Tag.NO_MD_ENTRY_TYPES, Tag.MD_ENTRY_TYPE, frozenset({Tag.MD_ENTRY_TYPE})),
        GroupSpec(Tag.NO_RELATED_SYM, Tag.SYMBOL, frozenset({Tag.SYMBOL})),
    ),
}
"""The groups of our own MarketDataRequest, as `outbound` writes it (the ids of a message
sent are read back from it)."""


def groups(trees: Mapping[str, Mapping[int, GroupSpec]]) -> dict[str, tuple[GroupSpec, ...]]:
    """The groups to cut out (`fixgw.fix.message.parse`): every group of every message, as
    the dictionary the session reads the venue with defines it
    (`fixgw.fix.dictionary.inbound_group_trees`), each with every member it allows and
    counted, so that an entry ends only where the group does, whatever field a venue adds
    to it (Currency between MDEntryPx and MDEntrySize, a venue's own tag, say), and a
    message whose group does not add up is not read. The readers read MDEntries (W, X);
    the other groups are cut out of the body, counted, and passed over."""
    read = {msg_type: tuple(trees_of.values()) for msg_type, trees_of in trees.items()}
    return {**read, **REQUEST_GROUPS}


NO_ORDER_ID: tuple[str | None, ...] = (None, "", "NONE")
"""OrderID values that name no order (FIX's NONE)."""


@dataclass(frozen=True, slots=True)
class Codes:
    """The code tables a venue reads with."""

    exec_type: CodeTable[ExecKind] = codes.EXEC_TYPE
    ord_status: CodeTable[OrderStatus] = codes.ORD_STATUS
    side: CodeTable[Any] = codes.SIDE
    ord_type: CodeTable[Any] = codes.ORD_TYPE
    ord_rej_reason: CodeTable[RejectReason] = codes.ORD_REJ_REASON
    cxl_rej_reason: CodeTable[CancelRejectReason] = codes.CXL_REJ_REASON
    restatement_reason: CodeTable[RestatementReason] = codes.EXEC_RESTATEMENT_REASON
    no_order_id: tuple[str | None, ...] = NO_ORDER_ID


FIX44 = Codes()


def ids_named(msg: FixMessage, extra: Mapping[str, int] | None = None) -> MessageIds:
    """`extra`: a dialect's own id tags, by MessageIds field (`acc_req_id`, say)."""
    f = msg.fields
    order_id = f.get(Tag.ORDER_ID)
    more = {name: f.get(tag) or None for name, tag in (extra or {}).items()}
    return MessageIds(
        msg_type=msg.msg_type,
        cl_ord_id=f.get(Tag.CL_ORD_ID) or None,
        orig_cl_ord_id=f.get(Tag.ORIG_CL_ORD_ID) or None,
        order_id=None if order_id in NO_ORDER_ID else order_id,
        exec_id=f.get(Tag.EXEC_ID) or None,
        md_req_id=f.get(Tag.MD_REQ_ID) or None,
        acc_req_id=more.get("acc_req_id"),
        mass_status_req_id=f.get(Tag.MASS_STATUS_REQ_ID) or None,
    )


def execution_report(msg: FixMessage, received: datetime, c: Codes = FIX44) -> ExecutionReport:
    r = FieldReader(msg)
    kind = r.code(c.exec_type)
    status = r.code(c.ord_status)
    fill = kind in FILL_KINDS
    last_px = _fill_price(r) if fill else None
    last_qty = _fill_qty(r) if fill else None
    qty = r.opt_decimal(Tag.ORDER_QTY)
    if qty is not None and qty < 0:
        raise _below_0(r, Tag.ORDER_QTY, qty)
    leaves_qty = _not_below_0(r, Tag.LEAVES_QTY)
    if status is OrderStatus.FILLED and leaves_qty > 0:
        raise r.fail(f"OrdStatus filled with LeavesQty {leaves_qty:f}, not 0", Tag.LEAVES_QTY)
    return ExecutionReport(
        exec_id=r.text(Tag.EXEC_ID),
        kind=kind,
        status=status,
        cl_ord_id=r.opt_str(Tag.CL_ORD_ID),
        orig_cl_ord_id=r.opt_str(Tag.ORIG_CL_ORD_ID),
        order_id=None if r.opt_str(Tag.ORDER_ID) in c.no_order_id else r.text(Tag.ORDER_ID),
        symbol=r.text(Tag.SYMBOL),
        side=r.code(c.side),
        order_type=r.opt_code(c.ord_type),
        qty=qty,
        price=r.opt_decimal(Tag.PRICE),
        cum_qty=_not_below_0(r, Tag.CUM_QTY),
        leaves_qty=leaves_qty,
        avg_px=_not_below_0(r, Tag.AVG_PX),
        last_qty=last_qty,
        last_px=last_px,
        reject_reason=r.lenient_code(c.ord_rej_reason, RejectReason.OTHER),
        restatement_reason=r.lenient_code(c.restatement_reason, RestatementReason.OTHER)
        if kind is ExecKind.RESTATED
        else None,
        text=r.opt_str(Tag.TEXT),
        ts=r.time(Tag.TRANSACT_TIME) or received,
        poss_dup=msg.fields.get(Tag.POSS_DUP_FLAG) == "Y",
        mass_status_req_id=r.opt_str(Tag.MASS_STATUS_REQ_ID),
        last_report=r.opt_str(Tag.LAST_RPT_REQUESTED) == "Y",
        done_for_day=kind is ExecKind.CANCELED and msg.fields.get(Tag.EXEC_TYPE) == "3",
    )


def _fill_price(r: FieldReader) -> Decimal:
    """A fill's LastPx (31), which FIX 4.4 requires on a fill: without one above 0 the fill
    cannot be valued, so the report is unreadable (its order asked about), never a trade at
    a price made up (AvgPx 0, say)."""
    last_px = r.opt_decimal(Tag.LAST_PX)
    if last_px is None:
        raise r.fail("a fill without LastPx", Tag.LAST_PX)
    if last_px <= 0:
        raise r.fail(f"a fill at LastPx {last_px:f}, not above 0", Tag.LAST_PX)
    return last_px


def _fill_qty(r: FieldReader) -> Decimal | None:
    """A fill's LastQty (32): one not above 0 is no fill (a negative one would be told as a
    fill taken back, and the gap to CumQty as a fill beyond it), so the report is unreadable,
    as for LastPx. None when the venue leaves it out: CumQty then tells what was filled."""
    last_qty = r.opt_decimal(Tag.LAST_QTY)
    if last_qty is not None and last_qty <= 0:
        raise r.fail(f"a fill of LastQty {last_qty:f}, not above 0", Tag.LAST_QTY)
    return last_qty


def _not_below_0(r: FieldReader, tag: Tag) -> Decimal:
    """A quantity or average price, which no order has below 0: one that is makes the
    report unreadable, never passed on."""
    value = r.decimal(tag)
    if value < 0:
        raise _below_0(r, tag, value)
    return value


def _below_0(r: FieldReader, tag: Tag, value: Decimal) -> DialectError:
    return r.fail(f"{_NAMES[tag]} {value:f}, below 0", tag)


_NAMES = {
    Tag.ORDER_QTY: "OrderQty",
    Tag.CUM_QTY: "CumQty",
    Tag.LEAVES_QTY: "LeavesQty",
    Tag.AVG_PX: "AvgPx",
}


def order_cancel_reject(
    msg: FixMessage, received: datetime, c: Codes = FIX44
) -> CancelRejectReport:
    r = FieldReader(msg)
    order_id = r.opt_str(Tag.ORDER_ID)
    reason = r.lenient_code(c.cxl_rej_reason, CancelRejectReason.OTHER)
    return CancelRejectReport(
        cl_ord_id=r.text(Tag.CL_ORD_ID),
        orig_cl_ord_id=r.opt_str(Tag.ORIG_CL_ORD_ID),
        order_id=None if order_id in c.no_order_id else order_id,
        status=r.opt_code(c.ord_status),
        reason=reason or CancelRejectReason.OTHER,
        text=r.opt_str(Tag.TEXT),
        ts=r.time(Tag.TRANSACT_TIME) or received,
        poss_dup=msg.fields.get(Tag.POSS_DUP_FLAG) == "Y",
    )


def market_data_snapshot(msg: FixMessage, received: datetime) -> BookSnapshotReport:
    """A level of size 0 is no level. What the gateway has no use for is passed over and
    named in `passed_over`."""
    r = FieldReader(msg)
    bids: list[Level] = []
    asks: list[Level] = []
    trades: list[Trade] = []
    passed_over: list[str] = []
    for entry in msg.group(Tag.NO_MD_ENTRIES):
        e = FieldReader(msg, entry)
        kind = _entry_kind(e, passed_over)
        if kind is None:
            continue
        if kind is MdEntryKind.TRADE:
            trade = _trade(e, passed_over)
            if trade is not None:
                trades.append(trade)
            continue
        price, size = _md_decimal(e, Tag.MD_ENTRY_PX), _md_decimal(e, Tag.MD_ENTRY_SIZE)
        if size == 0:
            passed_over.append(f"{_A_LEVEL[kind]} of size 0 (no level)")
            continue
        (bids if kind is MdEntryKind.BID else asks).append((price, size))
    return BookSnapshotReport(
        md_req_id=r.opt_str(Tag.MD_REQ_ID),
        symbol=r.text(Tag.SYMBOL),
        bids=bids,
        asks=asks,
        trades=trades,
        ts=received,
        passed_over=tuple(passed_over),
    )


def market_data_incremental(msg: FixMessage, received: datetime) -> BookUpdateReport:
    """Entries without a Symbol (55) belong to the symbol of the entry before them. A new
    or change of size 0 is a delete (`ACTION_AT_SIZE_0`). What the gateway has no use for
    (a trade corrected or withdrawn among it: `TRADE_ACTIONS_PASSED_OVER`) is passed over
    and named in `passed_over`."""
    r = FieldReader(msg)
    levels: dict[str, list[LevelUpdate]] = {}
    trades: dict[str, list[Trade]] = {}
    passed_over: list[str] = []
    symbol = r.opt_str(Tag.SYMBOL)
    for entry in msg.group(Tag.NO_MD_ENTRIES):
        e = FieldReader(msg, entry)
        symbol = e.opt_str(Tag.SYMBOL) or symbol
        if symbol is None:
            raise e.fail("entry without a Symbol", Tag.SYMBOL)
        kind = _entry_kind(e, passed_over)
        if kind is None:
            continue
        action = e.code(codes.MD_UPDATE_ACTION)
        if kind is MdEntryKind.TRADE:
            if action in TRADE_ACTIONS_PASSED_OVER:
                passed_over.append(TRADE_ACTIONS_PASSED_OVER[action])
                continue
            trade = _trade(e, passed_over)
            if trade is not None:
                trades.setdefault(symbol, []).append(trade)
            continue
        size = Decimal(0) if action is LevelAction.DELETE else _md_decimal(e, Tag.MD_ENTRY_SIZE)
        if size == 0:
            action = ACTION_AT_SIZE_0.get(action, action)
        levels.setdefault(symbol, []).append(
            LevelUpdate(action, codes.BOOK_SIDE_OF[kind], _md_decimal(e, Tag.MD_ENTRY_PX), size)
        )
    return BookUpdateReport(
        md_req_id=r.opt_str(Tag.MD_REQ_ID),
        levels=levels,
        trades=trades,
        ts=received,
        passed_over=tuple(passed_over),
    )


ACTION_AT_SIZE_0 = {
    LevelAction.NEW: LevelAction.DELETE_IF_HELD,
    LevelAction.CHANGE: LevelAction.DELETE,
}
"""What a new or change (279=0, 1) that leaves a level at size 0 is: the level is gone, as
several FIX 4.4 venues send it, and as OKCoin's absolute sizes say. A new of size 0 of a
level the book does not hold is nothing; a change of one is still a change of a missing
level (the book is broken)."""

TRADE_ACTIONS_PASSED_OVER = {
    LevelAction.CHANGE: "a trade entry with MDUpdateAction 1 (change): a trade corrected",
    LevelAction.DELETE: "a trade entry with MDUpdateAction 2 (delete): a trade withdrawn",
}
"""A trade entry that is not new (279=1, 2) corrects or withdraws a trade told before (FIX
4.4): it is no trade, and the gateway tells trades only."""

_A_LEVEL = {MdEntryKind.BID: "a bid", MdEntryKind.ASK: "an ask"}


def _entry_kind(e: FieldReader, passed_over: list[str]) -> MdEntryKind | None:
    """None for a standard entry the gateway has no use for (an opening price, say),
    named in `passed_over`; a code no FIX version defines raises."""
    code = e.text(Tag.MD_ENTRY_TYPE)
    name = codes.MD_ENTRY_TYPES_PASSED_OVER.get(code)
    if name is None:
        return e.code(codes.MD_ENTRY_TYPE)
    passed_over.append(f"MDEntryType {code} ({name})")
    return None


def _trade(e: FieldReader, passed_over: list[str]) -> Trade | None:
    """None for a trade without a size: a trade event always has one (`md.trade`). Side
    (54) is read only for the aggressor, which may be unknown: any other Side (7,
    Undisclosed, say) is no aggressor, not an unreadable trade."""
    price = _md_decimal(e, Tag.MD_ENTRY_PX)
    if e.opt_str(Tag.MD_ENTRY_SIZE) is None:
        passed_over.append("a trade without MDEntrySize (271)")
        return None
    size = _md_decimal(e, Tag.MD_ENTRY_SIZE)
    side = e.opt_str(Tag.SIDE)
    aggressor = codes.SIDE.forward.get(side) if side is not None else None
    if side is not None and aggressor is None:
        passed_over.append("a trade's Side other than buy or sell (no aggressor)")
    return Trade(price=price, size=size, aggressor=aggressor)


def _md_decimal(e: FieldReader, tag: Tag) -> Decimal:
    """A price or size of market data in its one form (`canonical_decimal`): a level the
    venue names `29990.0` in a snapshot and `29990.00` in its delete is one level, keyed and
    written `29990` in the book and in every `md.*` event, whatever the client's depth."""
    return canonical_decimal(e.decimal(tag))


def market_data_request_reject(msg: FixMessage, received: datetime) -> MarketDataRejectReport:
    r = FieldReader(msg)
    reason = r.lenient_code(codes.MD_REQ_REJ_REASON, MdRejectReason.OTHER)
    return MarketDataRejectReport(
        md_req_id=r.text(Tag.MD_REQ_ID),
        reason=reason or MdRejectReason.OTHER,
        text=r.opt_str(Tag.TEXT),
        ts=received,
    )


def session_reject(msg: FixMessage, received: datetime) -> ExchangeErrorReport:
    """Names the rejected message by its sequence number only; the gateway knows the rest."""
    r = FieldReader(msg)
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


ID_OF_REJECTED: dict[str, str] = {
    MsgType.NEW_ORDER_SINGLE: "cl_ord_id",
    MsgType.ORDER_CANCEL_REQUEST: "cl_ord_id",
    MsgType.ORDER_STATUS_REQUEST: "cl_ord_id",
    MsgType.MARKET_DATA_REQUEST: "md_req_id",
    MsgType.ORDER_MASS_STATUS_REQUEST: "mass_status_req_id",
}
"""What BusinessRejectRefID (379) holds, by the rejected message's type: its business id
(FIX 4.4; RefSeqNum is optional in a BusinessMessageReject). One that names neither the type
(required) nor RefSeqNum leaves only the id: taken for a ClOrdID, the id the engine can
place on its own (an order of the gateway's, or a cancel, or nothing)."""


def business_message_reject(
    msg: FixMessage, received: datetime, id_of_rejected: Mapping[str, str] = ID_OF_REJECTED
) -> ExchangeErrorReport:
    r = FieldReader(msg)
    ref_msg_type = r.opt_str(Tag.REF_MSG_TYPE)
    ref_id = r.opt_str(Tag.BUSINESS_REJECT_REF_ID)
    ref = r.opt_str(Tag.REF_SEQ_NUM)
    named = id_of_rejected.get(ref_msg_type or "")
    if ref_msg_type is None and ref is None:
        named = "cl_ord_id"  # read as an ExceptionResponse naming one
    ids = {named: ref_id} if ref_id and named else {}
    return ExchangeErrorReport(
        source=ErrorSource.BUSINESS_REJECT,
        text=r.opt_str(Tag.TEXT),
        reason=r.opt_str(Tag.BUSINESS_REJECT_REASON),
        ref_msg_type=ref_msg_type,
        ref_seq_num=int(ref) if ref and ref.isdigit() else None,
        ts=received,
        **ids,
    )
