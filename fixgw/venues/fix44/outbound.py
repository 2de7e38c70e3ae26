"""Commands -> standard FIX 4.4 messages. Pure functions; a dialect adds its own fields
(OKCoin's Account) to what these build."""

from __future__ import annotations

from decimal import Decimal

from fixgw.domain import (
    CancelOrder,
    MdSubscription,
    OrderType,
    QueryOrder,
    RequestMarketData,
    RequestOrderMassStatus,
    SubmitOrder,
)
from fixgw.fix.codes import MD_ENTRY_TYPE, ORD_TYPE, SIDE, SUBSCRIPTION_REQUEST_TYPE, TIME_IN_FORCE
from fixgw.fix.message import FixMessage, format_utc_timestamp
from fixgw.fix.tags import MsgType, Tag


def fix_decimal(value: Decimal) -> str:
    return format(value, "f")


def new_order_single(cmd: SubmitOrder) -> FixMessage:
    fields: dict[int, str] = {
        Tag.CL_ORD_ID: cmd.cl_ord_id,
        Tag.ORDER_QTY: fix_decimal(cmd.qty),
        Tag.ORD_TYPE: ORD_TYPE.encode(cmd.order_type),
        Tag.SIDE: SIDE.encode(cmd.side),
        Tag.SYMBOL: cmd.symbol,
        Tag.TRANSACT_TIME: format_utc_timestamp(cmd.ts),
    }
    if cmd.order_type is OrderType.LIMIT:
        if cmd.price is None:
            raise ValueError("a limit order needs a price")
        fields[Tag.PRICE] = fix_decimal(cmd.price)
    if cmd.time_in_force is not None:
        fields[Tag.TIME_IN_FORCE] = TIME_IN_FORCE.encode(cmd.time_in_force)
    return FixMessage(msg_type=MsgType.NEW_ORDER_SINGLE, fields=fields)


def order_cancel_request(cmd: CancelOrder) -> FixMessage:
    """OrigClOrdID carries the order's ClOrdID and OrderID the venue's id, as FIX does. For an
    order with no ClOrdID of ours, OrigClOrdID (required) carries the venue's id."""
    orig = cmd.orig_cl_ord_id or cmd.order_id
    if orig is None:
        raise ValueError("a cancel needs the order's ClOrdID or the exchange's order id")
    fields: dict[int, str] = {
        Tag.CL_ORD_ID: cmd.cl_ord_id,
        Tag.ORIG_CL_ORD_ID: orig,
        Tag.SIDE: SIDE.encode(cmd.side),
        Tag.SYMBOL: cmd.symbol,
        Tag.TRANSACT_TIME: format_utc_timestamp(cmd.ts),
    }
    if cmd.order_id is not None:
        fields[Tag.ORDER_ID] = cmd.order_id
    return FixMessage(msg_type=MsgType.ORDER_CANCEL_REQUEST, fields=fields)


def order_status_request(cmd: QueryOrder, cl_ord_id_required: bool = True) -> FixMessage:
    """ClOrdID (required in FIX 4.4) carries, for an order with no ClOrdID of ours, the
    venue's id, as a cancel's OrigClOrdID does; `cl_ord_id_required` False leaves it out
    then (a dialect that names such an order by OrderID alone)."""
    fields: dict[int, str] = {
        Tag.ORDER_ID: cmd.order_id,
        Tag.SIDE: SIDE.encode(cmd.side),
        Tag.SYMBOL: cmd.symbol,
    }
    if cmd.cl_ord_id is not None or cl_ord_id_required:
        fields[Tag.CL_ORD_ID] = cmd.cl_ord_id or cmd.order_id
    return FixMessage(msg_type=MsgType.ORDER_STATUS_REQUEST, fields=fields)


def market_data_request(cmd: RequestMarketData) -> FixMessage:
    """Incremental updates (265=1) for a subscription; one symbol per request."""
    fields: dict[int, str] = {
        Tag.MD_REQ_ID: cmd.md_req_id,
        Tag.SUBSCRIPTION_REQUEST_TYPE: SUBSCRIPTION_REQUEST_TYPE.encode(cmd.subscription),
        Tag.MARKET_DEPTH: str(cmd.depth),
    }
    if cmd.subscription is MdSubscription.SUBSCRIBE:
        fields[Tag.MD_UPDATE_TYPE] = "1"
    return FixMessage(
        msg_type=MsgType.MARKET_DATA_REQUEST,
        fields=fields,
        groups={
            Tag.NO_MD_ENTRY_TYPES: tuple(
                {Tag.MD_ENTRY_TYPE: MD_ENTRY_TYPE.encode(k)} for k in cmd.kinds
            ),
            Tag.NO_RELATED_SYM: ({Tag.SYMBOL: cmd.symbol},),
        },
    )


def order_mass_status_request(cmd: RequestOrderMassStatus) -> FixMessage:
    """585=7 (all orders), or 1 (orders for a security) with a symbol."""
    fields: dict[int, str] = {
        Tag.MASS_STATUS_REQ_ID: cmd.mass_status_req_id,
        Tag.MASS_STATUS_REQ_TYPE: "1" if cmd.symbol else "7",
    }
    if cmd.symbol:
        fields[Tag.SYMBOL] = cmd.symbol
    return FixMessage(msg_type=MsgType.ORDER_MASS_STATUS_REQUEST, fields=fields)


def logon_fields(username: str | None, password: str | None, reset_seq_num: bool) -> dict[int, str]:
    """Username (553) and Password (554) where given, and 141 when the operator asks."""
    fields: dict[int, str] = {}
    if username:
        fields[Tag.USERNAME] = username
    if password:
        fields[Tag.PASSWORD] = password
    if reset_seq_num:
        fields[Tag.RESET_SEQ_NUM_FLAG] = "Y"
    return fields
