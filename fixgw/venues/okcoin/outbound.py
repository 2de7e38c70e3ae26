"""Commands -> OKCoin FIX messages."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from fixgw.domain import (
    CancelOrder,
    MdSubscription,
    OrderType,
    QueryOrder,
    RequestAccountInfo,
    RequestMarketData,
    RequestOrderMassStatus,
    SubmitOrder,
)
from fixgw.fix.message import FixMessage, format_utc_timestamp
from fixgw.venues.okcoin.enums import MD_ENTRY_TYPE, ORD_TYPE, SIDE, SUBSCRIPTION_REQUEST_TYPE
from fixgw.venues.okcoin.tags import MsgType, Tag

DEFAULT_ACCOUNT_ON = frozenset({MsgType.NEW_ORDER_SINGLE, MsgType.ACCOUNT_INFO_REQUEST})


@dataclass(frozen=True, slots=True, repr=False)
class DialectOptions:
    """What the dialect needs from config. `account` holds the secret: never logged."""

    api_key: str
    secret_key: str
    account_on: frozenset[str] = DEFAULT_ACCOUNT_ON

    @property
    def account(self) -> str:
        return f"{self.api_key},{self.secret_key}"

    def __repr__(self) -> str:
        return f"DialectOptions(api_key={self.api_key!r}, account_on={sorted(self.account_on)})"


def fix_decimal(value: Decimal) -> str:
    return format(value, "f")


def _with_account(options: DialectOptions, msg_type: MsgType, fields: dict[int, str]) -> FixMessage:
    if msg_type in options.account_on:
        fields = {Tag.ACCOUNT: options.account, **fields}
    return FixMessage(msg_type=msg_type, fields=fields)


def new_order_single(cmd: SubmitOrder, options: DialectOptions) -> FixMessage:
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
    return _with_account(options, MsgType.NEW_ORDER_SINGLE, fields)


def order_cancel_request(cmd: CancelOrder, options: DialectOptions) -> FixMessage:
    """OrigClOrdID carries the order's ClOrdID and OrderID the venue's id, as FIX does. For an
    order with no ClOrdID of ours, OrigClOrdID carries the venue's id: OKCoin's public clients
    put it there (the dialect's open points), and the field is required."""
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
    return _with_account(options, MsgType.ORDER_CANCEL_REQUEST, fields)


def order_status_request(cmd: QueryOrder, options: DialectOptions) -> FixMessage:
    fields: dict[int, str] = {
        Tag.ORDER_ID: cmd.order_id,
        Tag.SIDE: SIDE.encode(cmd.side),
        Tag.SYMBOL: cmd.symbol,
    }
    if cmd.cl_ord_id is not None:
        fields[Tag.CL_ORD_ID] = cmd.cl_ord_id
    return _with_account(options, MsgType.ORDER_STATUS_REQUEST, fields)


def market_data_request(cmd: RequestMarketData) -> FixMessage:
    """Incremental updates (265=1) for a subscription; one symbol per request, as OKCoin wants."""
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


def account_info_request(cmd: RequestAccountInfo, options: DialectOptions) -> FixMessage:
    """Account (1) is required on Z1000 whatever `account_on` says."""
    return FixMessage(
        msg_type=MsgType.ACCOUNT_INFO_REQUEST,
        fields={Tag.ACC_REQ_ID: cmd.acc_req_id, Tag.ACCOUNT: options.account},
    )


def order_mass_status_request(cmd: RequestOrderMassStatus, options: DialectOptions) -> FixMessage:
    """585=7 (all orders), or 1 (orders for a security) with a symbol."""
    fields: dict[int, str] = {
        Tag.MASS_STATUS_REQ_ID: cmd.mass_status_req_id,
        Tag.MASS_STATUS_REQ_TYPE: "1" if cmd.symbol else "7",
    }
    if cmd.symbol:
        fields[Tag.SYMBOL] = cmd.symbol
    return _with_account(options, MsgType.ORDER_MASS_STATUS_REQUEST, fields)


def logon_fields(options: DialectOptions, reset_seq_num: bool) -> dict[int, str]:
    """What OKCoin wants added to our Logon: credentials, and 141 when the operator asks."""
    fields: dict[int, str] = {Tag.USERNAME: options.api_key, Tag.PASSWORD: options.secret_key}
    if reset_seq_num:
        fields[Tag.RESET_SEQ_NUM_FLAG] = "Y"
    return fields
