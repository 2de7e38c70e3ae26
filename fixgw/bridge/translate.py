"""Standard FIX 4.4 from an OMS <-> the gateway's requests, events and results. Pure
functions.

An OMS's ClOrdIDs reach the exchange as `prefix + ClOrdID`, so every order event names
the OMS session that owns it and the OMS's own id, across restarts, with no table kept.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal

import msgspec

from fixgw.api.protocol import (
    CLIENT_ID_CHARACTERS,
    CLIENT_ID_MAX_LENGTH,
    CancelOrderRequest,
    NewOrder,
    OrderStatusRequest,
)
from fixgw.bridge import fields as field_rules
from fixgw.bridge.tables import (
    CXL_REJ_UNKNOWN_ORDER,
    EXEC_TYPE_OF_EVENT,
    OTHER,
    UNSUPPORTED_ORDER,
)
from fixgw.domain import (
    GATEWAY_REJECT_REASONS,
    Level,
    LevelAction,
    MdEntryKind,
    OrderCanceled,
    OrderEvent,
    OrderFilled,
    OrderPartiallyFilled,
    OrderRejected,
    OrderRestated,
    OrderStatus,
    OrderStatusReported,
    OrderType,
    RestatementReason,
    TimeInForce,
)
from fixgw.errors import UnknownCode
from fixgw.fix.codes import (
    ENTRY_KIND_OF,
    EXEC_RESTATEMENT_REASON,
    MD_ENTRY_TYPE,
    MD_UPDATE_ACTION,
    ORD_REJ_REASON,
    ORD_STATUS,
    ORD_TYPE,
    SIDE,
)
from fixgw.fix.message import (
    SOH,
    FixMessage,
    GroupSpec,
    format_utc_timestamp,
    pairs_of,
    parse,
    utf8,
)
from fixgw.fix.tags import Tag
from fixgw.marketdata.book import changes_between
from fixgw.results import OrderStatusAnswer, OrderView

OMS_GROUPS = {
    "V": (
        GroupSpec(Tag.NO_MD_ENTRY_TYPES, Tag.MD_ENTRY_TYPE, frozenset({Tag.MD_ENTRY_TYPE})),
        GroupSpec(Tag.NO_RELATED_SYM, Tag.SYMBOL, frozenset({Tag.SYMBOL})),
    )
}


def parse_oms(raw: str) -> FixMessage:
    return parse(raw, OMS_GROUPS)


class Refused(Exception):
    """An OMS message the bridge cannot take; `text` goes back to the OMS, with `reason`
    as the OrdRejReason (103) when it was an order."""

    def __init__(self, text: str, reason: str = OTHER) -> None:
        super().__init__(text)
        self.text = text
        self.reason = reason


_CONTROL_ESCAPES = {c: f"\\x{c:02x}" for c in (*range(0x20), *range(0x7F, 0xA0))}
"""Each control character (C0, DEL, C1) -> its visible escape, `\\x01` for SOH."""


def fix_text(text: str) -> str:
    """`text` as Text (58) can carry it: each control character written as a visible
    `\\xNN` (an SOH would end the field and the message could not be sent; the others are
    no FIX String's). Free text reaches Text from API clients (a halt's reason, a client's
    name), the exchange and the OMS's own fields; the rest goes as it is."""
    return text if text.isprintable() else text.translate(_CONTROL_ESCAPES)


def possibly_resent(msg: FixMessage) -> bool:
    """Sent before, by the session's resend (PossDupFlag) or by the OMS itself (PossResend):
    the receiver must not act on it twice."""
    f = msg.fields
    return f.get(Tag.POSS_DUP_FLAG) == "Y" or f.get(Tag.POSS_RESEND) == "Y"


def _fix_decimal(value: Decimal) -> str:
    text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def screen(
    msg: FixMessage, time_in_force: frozenset[TimeInForce] = frozenset()
) -> list[field_rules.Refusal]:
    """The fields of an OMS message that the bridge's field table refuses, with a venue that
    carries the TimeInForce values `time_in_force` (`fields.tables`; only a NewOrderSingle's
    TimeInForce depends on them)."""
    table = field_rules.tables(time_in_force).get(msg.msg_type)
    if table is None:
        return []
    pairs = pairs_of(msg.raw) if msg.raw else list(msg.fields.items())
    return field_rules.screen(table, pairs)


def _refuse_fields(
    msg: FixMessage,
    default_reason: str = OTHER,
    time_in_force: frozenset[TimeInForce] = frozenset(),
) -> None:
    refusals = screen(msg, time_in_force)
    if refusals:
        raise Refused("; ".join(r.text for r in refusals), refusals[0].reason or default_reason)


def _required(msg: FixMessage, tag: int, name: str) -> str:
    value = msg.fields.get(tag)
    if not value:
        raise Refused(f"{name} ({tag}) is required")
    return value


_ID_CHARACTER = re.compile(f"[{CLIENT_ID_CHARACTERS}]")
_ID_CHARACTERS_TEXT = "letters A-Z and a-z, digits and . _ : / + -"
"""`CLIENT_ID_CHARACTERS` as an OMS is told them."""


def _oms_id(msg: FixMessage, tag: int, name: str, prefix: str, reason: str = OTHER) -> str:
    """`prefix` + the OMS's id in `tag`. Raises Refused, with `reason` and Text stating what
    the OMS's own id may be, for one the gateway cannot take: the prefix, which the OMS never
    sees, counts against `CLIENT_ID_MAX_LENGTH` (a prefix is never empty, so the id is never
    `NONE`)."""
    value = _required(msg, tag, name)
    limit = CLIENT_ID_MAX_LENGTH - len(prefix)
    wrong = next((c for c in value if not _ID_CHARACTER.fullmatch(c)), None)
    if wrong is not None:
        what = f"holds {wrong!r} (U+{ord(wrong):04X})"
    elif len(value) > limit:
        what = f"is {len(value)} characters long"
    else:
        return prefix + value
    raise Refused(
        f"{name} ({tag}) {what}: this session's may be 1 to {limit} characters, "
        f"of {_ID_CHARACTERS_TEXT}",
        reason,
    )


def new_order(msg: FixMessage, prefix: str, time_in_force: frozenset[TimeInForce]) -> NewOrder:
    """The order for a venue that carries the TimeInForce values `time_in_force` (its
    `Venue.time_in_force`): a TimeInForce (59) it carries goes on as the order's. Raises
    Refused for a field the venue cannot carry (`fields.tables`), with OrdRejReason 11 and
    Text naming each such field and value."""
    f = msg.fields
    _refuse_fields(msg, UNSUPPORTED_ORDER, time_in_force)
    try:
        side = SIDE.decode(_required(msg, Tag.SIDE, "Side"))
        order_type = ORD_TYPE.decode(_required(msg, Tag.ORD_TYPE, "OrdType"))
    except UnknownCode as exc:
        raise Refused(
            f"{exc}: the exchange takes buy/sell, market/limit", UNSUPPORTED_ORDER
        ) from None
    request = {
        "cl_ord_id": _oms_id(msg, Tag.CL_ORD_ID, "ClOrdID", prefix),
        "symbol": _required(msg, Tag.SYMBOL, "Symbol"),
        "side": side,
        "type": order_type,
        "qty": _required(msg, Tag.ORDER_QTY, "OrderQty"),
        "price": f.get(Tag.PRICE) if order_type is OrderType.LIMIT else None,
        "time_in_force": field_rules.carried_time_in_force(
            f.get(Tag.TIME_IN_FORCE, ""), time_in_force
        ),
    }
    try:
        return msgspec.convert(request, NewOrder)
    except msgspec.ValidationError as exc:
        raise Refused(str(exc)) from None


def cancel_request(msg: FixMessage, prefix: str) -> CancelOrderRequest:
    """Raises Refused: with CxlRejReason 1 (unknown order) for an OrigClOrdID no order can
    have, 99 for a ClOrdID the gateway cannot take for the cancel."""
    _refuse_fields(msg)
    order = {
        "cl_ord_id": _oms_id(msg, Tag.ORIG_CL_ORD_ID, "OrigClOrdID", prefix, CXL_REJ_UNKNOWN_ORDER)
    }
    try:
        msgspec.convert(order, CancelOrderRequest)
    except msgspec.ValidationError as exc:
        raise Refused(f"OrigClOrdID (41): {exc}", CXL_REJ_UNKNOWN_ORDER) from None
    try:
        return msgspec.convert(
            {**order, "cancel_cl_ord_id": _oms_id(msg, Tag.CL_ORD_ID, "ClOrdID", prefix)},
            CancelOrderRequest,
        )
    except msgspec.ValidationError as exc:
        raise Refused(f"ClOrdID (11): {exc}") from None


def status_request(msg: FixMessage, prefix: str) -> OrderStatusRequest:
    _refuse_fields(msg)
    return OrderStatusRequest(cl_ord_id=prefix + _required(msg, Tag.CL_ORD_ID, "ClOrdID"))


def status_request_by_order_id(msg: FixMessage) -> OrderStatusRequest | None:
    """The request as the exchange is asked about an order the gateway no longer keeps: by
    its OrderID (37), Symbol (55) and Side (54), as the socket API's `order_status` by
    `order_id`. None if the message lacks one of them (OrderID NONE is none) or they are
    not values the gateway can ask with."""
    f = msg.fields
    order_id, symbol, side = f.get(Tag.ORDER_ID), f.get(Tag.SYMBOL), f.get(Tag.SIDE)
    if not order_id or order_id == "NONE" or not symbol or not side:
        return None
    try:
        return msgspec.convert(
            {"order_id": order_id, "symbol": symbol, "side": SIDE.decode(side)},
            OrderStatusRequest,
        )
    except (UnknownCode, msgspec.ValidationError):
        return None


def another_order(msg: FixMessage, order: OrderView) -> str | None:
    """What an OMS's cancel, replace or status request says of the order its OrigClOrdID (H:
    ClOrdID) names that is not so, as Text: a Symbol (55), Side (54) or OrderID (37) not the
    order's. None when all it says is so. OrderID NONE is the order's while the OMS may
    not have heard the exchange's yet (its cancel crossing the ack). Venues refuse a cancel
    that names two orders: an OMS that sent the wrong OrigClOrdID with the Symbol, Side or
    OrderID of the order it meant would otherwise get another order cancelled."""
    f = msg.fields
    named = f.get(Tag.CL_ORD_ID if msg.msg_type == "H" else Tag.ORIG_CL_ORD_ID, "")
    wrong = [
        f"{name} ({tag}) {f[tag]} is not that of order {named} ({its})"
        for tag, name, its in (
            (Tag.SYMBOL, "Symbol", order.symbol),
            (Tag.SIDE, "Side", SIDE.encode(order.side)),
            (Tag.ORDER_ID, "OrderID", order.order_id or "NONE"),
        )
        if tag in f and f[tag] != its and not (tag == Tag.ORDER_ID and f[tag] == "NONE")
    ]
    return "; ".join(wrong) or None


def execution_report(
    event: OrderEvent, seq: int, cl_ord_id: str, orig_cl_ord_id: str | None = None
) -> FixMessage:
    """An order event (published as `seq`) as the OMS's ExecutionReport, under its own ids."""
    fill = event if isinstance(event, OrderPartiallyFilled | OrderFilled) else None
    texted = OrderRejected | OrderCanceled | OrderStatusReported | OrderRestated
    text = event.text if isinstance(event, texted) else None
    restated: dict[int, str] | None = (
        {Tag.EXEC_RESTATEMENT_REASON: restatement_reason(event)}
        if isinstance(event, OrderRestated)
        else None
    )
    return _order_report(
        event,
        cl_ord_id,
        (fill.exec_id if fill else None) or event_exec_id(seq),
        EXEC_TYPE_OF_EVENT[type(event)],
        event.ts,
        orig_cl_ord_id,
        fill,
        ord_rej_reason(event) if isinstance(event, OrderRejected) else None,
        text,
        restated,
    )


def event_exec_id(seq: int) -> str:
    """The ExecID of a report of the event published as `seq` (but a fill, whose is the
    exchange's): never reused, and marked so that no exchange's (a bare number, say) can be
    the same."""
    return f"seq-{seq}"


def restatement_reason(event: OrderRestated) -> str:
    """ExecRestatementReason (378), which FIX 4.4 requires of a restatement: 99 (other)
    where the venue gave none (a status answer that changed the order; Text says so)."""
    return EXEC_RESTATEMENT_REASON.encode(event.reason or RestatementReason.OTHER)


def ord_rej_reason(event: OrderRejected) -> str:
    """The exchange's reason as FIX 4.4's OrdRejReason; 99 for the gateway's own (Text says
    why)."""
    return OTHER if event.reason in GATEWAY_REJECT_REASONS else ORD_REJ_REASON.encode(event.reason)


def status_report(
    order: OrderView,
    cl_ord_id: str,
    exec_id: str,
    echo: Mapping[int, str] | None = None,
    text: str | None = None,
) -> FixMessage:
    """Where an order stands (ExecType I, as an `OrderStatusReported`), under the OMS's
    ClOrdID; `echo`: fields of the request it answers (OrdStatusReqID); `text`: Text, else
    the exchange's answer's."""
    if order.order_type is None or order.qty is None:
        raise ValueError(f"order {order.cl_ord_id}: its type and quantity are not known")
    if text is None and isinstance(order, OrderStatusAnswer):
        text = order.text
    return _order_report(
        order,
        cl_ord_id,
        exec_id,
        EXEC_TYPE_OF_EVENT[OrderStatusReported],
        datetime.now(UTC),
        text=text,
        more=echo,
    )


def restated(order: OrderView, cl_ord_id: str, exec_id: str, text: str) -> FixMessage:
    """Where an order stands, told unsolicited (ExecType D) under the OMS's ClOrdID: a change
    the OMS did not ask for and no exchange report tells it, ExecRestatementReason 99
    (other) and `text` saying what changed."""
    if order.order_type is None or order.qty is None:
        raise ValueError(f"order {order.cl_ord_id}: its type and quantity are not known")
    return _order_report(
        order,
        cl_ord_id,
        exec_id,
        EXEC_TYPE_OF_EVENT[OrderRestated],
        datetime.now(UTC),
        text=text,
        more={Tag.EXEC_RESTATEMENT_REASON: EXEC_RESTATEMENT_REASON.encode(RestatementReason.OTHER)},
    )


def _order_report(
    order: OrderEvent | OrderView,
    cl_ord_id: str,
    exec_id: str,
    exec_type: str,
    when: datetime,
    orig_cl_ord_id: str | None = None,
    fill: OrderPartiallyFilled | OrderFilled | None = None,
    ord_rej_reason: str | None = None,
    text: str | None = None,
    more: Mapping[int, str] | None = None,
) -> FixMessage:
    """`more`: fields beyond the order's (a status request's echo, a restatement's reason)."""
    assert order.order_type is not None and order.qty is not None  # an OrderView's: checked
    fields: dict[int, str] = {
        Tag.ORDER_ID: order.order_id or "NONE",
        Tag.CL_ORD_ID: cl_ord_id,
        Tag.EXEC_ID: exec_id,
        Tag.EXEC_TYPE: exec_type,
        Tag.ORD_STATUS: ORD_STATUS.encode(order.status),
        Tag.SYMBOL: order.symbol,
        Tag.SIDE: SIDE.encode(order.side),
        Tag.ORDER_QTY: _fix_decimal(order.qty),
        Tag.ORD_TYPE: ORD_TYPE.encode(order.order_type),
        Tag.CUM_QTY: _fix_decimal(order.cum_qty),
        Tag.LEAVES_QTY: _fix_decimal(order.leaves_qty),
        Tag.AVG_PX: _fix_decimal(order.avg_px),
        Tag.TRANSACT_TIME: format_utc_timestamp(when),
    }
    if order.price is not None:
        fields[Tag.PRICE] = _fix_decimal(order.price)
    if orig_cl_ord_id is not None:
        fields[Tag.ORIG_CL_ORD_ID] = orig_cl_ord_id
    if fill is not None:
        fields[Tag.LAST_QTY] = _fix_decimal(fill.last_qty)
        fields[Tag.LAST_PX] = _fix_decimal(fill.last_px)
    if ord_rej_reason is not None:
        fields[Tag.ORD_REJ_REASON] = ord_rej_reason
    if text:
        fields[Tag.TEXT] = fix_text(text)
    fields.update(more or {})
    return FixMessage(msg_type="8", fields=fields)


def refused_order(
    msg: FixMessage, exec_id: str, text: str, exec_type: str = "8", reason: str = OTHER
) -> FixMessage:
    """A NewOrderSingle the gateway refused before it became an order (ExecType 8), or a
    status request for an order it does not know (ExecType I); OrdStatus 8 both, and
    `reason` as OrdRejReason. `exec_id`: unique in the session (the same ClOrdID may be
    refused more than once)."""
    f = msg.fields
    fields = {
        Tag.ORDER_ID: "NONE",
        Tag.CL_ORD_ID: f.get(Tag.CL_ORD_ID, "NONE"),
        Tag.EXEC_ID: exec_id,
        Tag.EXEC_TYPE: exec_type,
        Tag.ORD_STATUS: "8",
        Tag.SYMBOL: f.get(Tag.SYMBOL, "NONE"),
        Tag.SIDE: f.get(Tag.SIDE, "1"),
        Tag.LEAVES_QTY: "0",
        Tag.CUM_QTY: "0",
        Tag.AVG_PX: "0",
        Tag.ORD_REJ_REASON: reason,
        Tag.TEXT: fix_text(text),
        Tag.TRANSACT_TIME: format_utc_timestamp(datetime.now(UTC)),
        **status_echo(msg),
    }
    return FixMessage(msg_type="8", fields=fields)


def status_echo(msg: FixMessage) -> dict[int, str]:
    """What an ExecutionReport answering an OrderStatusRequest repeats of it."""
    if msg.msg_type != "H" or not msg.fields.get(Tag.ORD_STATUS_REQ_ID):
        return {}
    return {Tag.ORD_STATUS_REQ_ID: msg.fields[Tag.ORD_STATUS_REQ_ID]}


def cancel_reject(
    msg: FixMessage,
    text: str,
    order_id: str | None = None,
    status: OrderStatus | None = None,
    response_to: str = "1",
    reason: str = OTHER,
) -> FixMessage:
    """OrderCancelReject (9) for an OMS's cancel (`response_to` 1) or replace (2), with
    `reason` as CxlRejReason (102)."""
    f = msg.fields
    return FixMessage(
        msg_type="9",
        fields={
            Tag.ORDER_ID: order_id or "NONE",
            Tag.CL_ORD_ID: f.get(Tag.CL_ORD_ID, "NONE"),
            Tag.ORIG_CL_ORD_ID: f.get(Tag.ORIG_CL_ORD_ID, "NONE"),
            Tag.ORD_STATUS: ORD_STATUS.encode(status) if status else "8",
            Tag.CXL_REJ_RESPONSE_TO: response_to,
            Tag.CXL_REJ_REASON: reason,
            Tag.TEXT: fix_text(text),
        },
    )


Levels = Mapping[Decimal, Decimal]
"""One side of a book as an OMS was sent it: price -> size."""


def book_snapshot(
    md_req_id: str,
    symbol: str,
    bids: list[Level],
    asks: list[Level],
    depth: int,
    trade: tuple[Decimal, Decimal] | None = None,
) -> FixMessage:
    """MarketDataSnapshotFullRefresh (W) of the gateway's book, `depth` levels (0: all), and
    the last `trade` (price, size) if there is one to give."""
    entries: list[dict[int, str]] = []
    for kind, levels in ((MdEntryKind.BID, bids), (MdEntryKind.ASK, asks)):
        for price, size in levels[: depth or None]:
            entries.append(
                {
                    Tag.MD_ENTRY_TYPE: MD_ENTRY_TYPE.encode(kind),
                    Tag.MD_ENTRY_PX: _fix_decimal(price),
                    Tag.MD_ENTRY_SIZE: _fix_decimal(size),
                }
            )
    if trade is not None:
        entries.append(
            {
                Tag.MD_ENTRY_TYPE: MD_ENTRY_TYPE.encode(MdEntryKind.TRADE),
                Tag.MD_ENTRY_PX: _fix_decimal(trade[0]),
                Tag.MD_ENTRY_SIZE: _fix_decimal(trade[1]),
            }
        )
    return FixMessage(
        msg_type="W",
        fields={Tag.MD_REQ_ID: md_req_id, Tag.SYMBOL: symbol},
        groups={Tag.NO_MD_ENTRIES: tuple(entries)},
    )


def trade_entry(md_req_id: str, symbol: str, price: Decimal, size: Decimal) -> FixMessage:
    """MarketDataIncrementalRefresh (X) with one trade: a new entry of type 2."""
    entry = _level_entry(LevelAction.NEW, MdEntryKind.TRADE, symbol, price, size)
    return FixMessage(
        msg_type="X", fields={Tag.MD_REQ_ID: md_req_id}, groups={Tag.NO_MD_ENTRIES: (entry,)}
    )


def book_changes(
    md_req_id: str, symbol: str, sent: tuple[Levels, Levels], now: tuple[Levels, Levels]
) -> FixMessage | None:
    """MarketDataIncrementalRefresh (X) that takes a book an OMS was sent (`sent`: bids,
    asks) to `now`; None if they are the same. Deletes come first, so an OMS that applies
    the entries in order never holds more levels than its depth."""
    changes = changes_between(sent, now)
    if not changes:
        return None
    entries = tuple(
        _level_entry(
            u.action,
            ENTRY_KIND_OF[u.side],
            symbol,
            u.price,
            None if u.action is LevelAction.DELETE else u.size,
        )
        for u in changes
    )
    return FixMessage(
        msg_type="X", fields={Tag.MD_REQ_ID: md_req_id}, groups={Tag.NO_MD_ENTRIES: entries}
    )


def _level_entry(
    action: LevelAction, kind: MdEntryKind, symbol: str, price: Decimal, size: Decimal | None
) -> dict[int, str]:
    entry: dict[int, str] = {
        Tag.MD_UPDATE_ACTION: MD_UPDATE_ACTION.encode(action),
        Tag.MD_ENTRY_TYPE: MD_ENTRY_TYPE.encode(kind),
        Tag.SYMBOL: symbol,
        Tag.MD_ENTRY_PX: _fix_decimal(price),
    }
    if size is not None:
        entry[Tag.MD_ENTRY_SIZE] = _fix_decimal(size)
    return entry


def market_data_reject(md_req_id: str, text: str, reason: str | None) -> FixMessage:
    """MarketDataRequestReject (Y); reason: MDReqRejReason (281), None where no standard
    reason fits (Text says why)."""
    fields: dict[int, str] = {Tag.MD_REQ_ID: md_req_id, Tag.TEXT: fix_text(text)}
    if reason is not None:
        fields[Tag.MD_REQ_REJ_REASON] = reason
    return FixMessage(msg_type="Y", fields=fields)


ROUTED_BACK = {
    Tag.ON_BEHALF_OF_COMP_ID: Tag.DELIVER_TO_COMP_ID,
    Tag.ON_BEHALF_OF_SUB_ID: Tag.DELIVER_TO_SUB_ID,
    Tag.ON_BEHALF_OF_LOCATION_ID: Tag.DELIVER_TO_LOCATION_ID,
}
"""FIX 4.4 third-party routing: the answer to a message sent on behalf of a third party goes
back to it, DeliverTo* naming whom the message's OnBehalfOf* named, so that the hub that
sent it can route it."""


def _routed_back(msg: FixMessage) -> dict[int, str]:
    """Header fields (QuickFIX sends a header field given in a message's text in its header):
    only in a reject, as the bridge takes no message sent on behalf of another (`router`).
    A value that is not UTF-8 could not be sent; its message's reject says so."""
    f = msg.fields
    return {
        deliver_to: f[on_behalf_of]
        for on_behalf_of, deliver_to in ROUTED_BACK.items()
        if f.get(on_behalf_of) and utf8(f[on_behalf_of])
    }


def unread(raw: str) -> FixMessage:
    """A message the bridge failed on, as far as its answer needs it: MsgType, MsgSeqNum,
    ClOrdID and who it was sent on behalf of, each the first found in the text (not read by
    `parse_oms`, which may be what failed)."""
    wanted = {Tag.MSG_TYPE, Tag.MSG_SEQ_NUM, Tag.CL_ORD_ID, *ROUTED_BACK}
    fields: dict[int, str] = {}
    for part in raw.split(SOH):
        tag_text, sep, value = part.partition("=")
        if sep and tag_text.isascii() and tag_text.isdigit() and value and utf8(value):
            tag = int(tag_text)
            if tag in wanted:
                fields.setdefault(tag, value)
    return FixMessage(fields.get(Tag.MSG_TYPE, ""), fields, raw=raw)


def business_reject(msg: FixMessage, reason: str, text: str) -> FixMessage:
    """BusinessMessageReject (j): the OMS's message was not acted on, so it is not left
    waiting for an answer that will not come. `reason` is BusinessRejectReason (380)."""
    fields: dict[int, str] = {
        **_routed_back(msg),
        Tag.REF_MSG_TYPE: msg.msg_type,
        Tag.BUSINESS_REJECT_REASON: reason,
        Tag.TEXT: fix_text(text),
    }
    if Tag.MSG_SEQ_NUM in msg.fields:
        fields[Tag.REF_SEQ_NUM] = msg.fields[Tag.MSG_SEQ_NUM]
    if msg.fields.get(Tag.CL_ORD_ID):
        fields[Tag.BUSINESS_REJECT_REF_ID] = msg.fields[Tag.CL_ORD_ID]
    return FixMessage(msg_type="j", fields=fields)


def session_reject(msg: FixMessage, ref_tag: int, reason: str, text: str) -> FixMessage:
    """Reject (3): the OMS's message broke the session's rules and is not acted on;
    `reason` is SessionRejectReason (373), `ref_tag` the tag at fault."""
    return FixMessage(
        msg_type="3",
        fields={
            **_routed_back(msg),
            Tag.REF_SEQ_NUM: msg.fields.get(Tag.MSG_SEQ_NUM, "0"),
            Tag.REF_TAG_ID: str(ref_tag),
            Tag.REF_MSG_TYPE: msg.msg_type,
            Tag.SESSION_REJECT_REASON: reason,
            Tag.TEXT: fix_text(text),
        },
    )
