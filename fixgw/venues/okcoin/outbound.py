"""Commands -> OKCoin FIX messages: FIX 4.4's (`fixgw.venues.fix44.outbound`) with
Account (1) = `apiKey,secretKey` on the messages `account_on` names, and OKCoin's own
AccountInfoRequest (Z1000)."""

from __future__ import annotations

from dataclasses import dataclass

from fixgw.domain import (
    CancelOrder,
    QueryOrder,
    RequestAccountInfo,
    RequestMarketData,
    RequestOrderMassStatus,
    SubmitOrder,
)
from fixgw.fix.message import FixMessage
from fixgw.fix.tags import MsgType, Tag
from fixgw.venues.fix44 import outbound as fix44
from fixgw.venues.fix44.outbound import fix_decimal
from fixgw.venues.okcoin.tags import OkMsgType, OkTag

__all__ = [
    "DEFAULT_ACCOUNT_ON",
    "DialectOptions",
    "account_info_request",
    "fix_decimal",
    "logon_fields",
    "market_data_request",
    "new_order_single",
    "order_cancel_request",
    "order_mass_status_request",
    "order_status_request",
]

DEFAULT_ACCOUNT_ON = frozenset({MsgType.NEW_ORDER_SINGLE, OkMsgType.ACCOUNT_INFO_REQUEST})


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


def _with_account(options: DialectOptions, msg: FixMessage) -> FixMessage:
    if msg.msg_type not in options.account_on:
        return msg
    return FixMessage(msg_type=msg.msg_type, fields={Tag.ACCOUNT: options.account, **msg.fields})


def new_order_single(cmd: SubmitOrder, options: DialectOptions) -> FixMessage:
    if cmd.time_in_force is not None:
        raise ValueError("OKCoin's orders carry no TimeInForce")
    return _with_account(options, fix44.new_order_single(cmd))


def order_cancel_request(cmd: CancelOrder, options: DialectOptions) -> FixMessage:
    """For an order with no ClOrdID of ours, OrigClOrdID carries the venue's id: OKCoin's
    public clients put it there (the dialect's open points)."""
    return _with_account(options, fix44.order_cancel_request(cmd))


def order_status_request(cmd: QueryOrder, options: DialectOptions) -> FixMessage:
    """An order with no ClOrdID of ours is named by OrderID alone."""
    return _with_account(options, fix44.order_status_request(cmd, cl_ord_id_required=False))


def market_data_request(cmd: RequestMarketData) -> FixMessage:
    """One symbol per request, as OKCoin wants."""
    return fix44.market_data_request(cmd)


def account_info_request(cmd: RequestAccountInfo, options: DialectOptions) -> FixMessage:
    """Account (1) is required on Z1000 whatever `account_on` says."""
    return FixMessage(
        msg_type=OkMsgType.ACCOUNT_INFO_REQUEST,
        fields={OkTag.ACC_REQ_ID: cmd.acc_req_id, Tag.ACCOUNT: options.account},
    )


def order_mass_status_request(cmd: RequestOrderMassStatus, options: DialectOptions) -> FixMessage:
    return _with_account(options, fix44.order_mass_status_request(cmd))


def logon_fields(options: DialectOptions, reset_seq_num: bool) -> dict[int, str]:
    """Username (553) the API key, Password (554) the secret key, and 141 when asked."""
    return fix44.logon_fields(options.api_key, options.secret_key, reset_seq_num)
