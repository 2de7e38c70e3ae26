"""Plain FIX 4.4 order entry behind the `Venue` interface: the stock FIX44.xml, credentials
in the Logon only (Username and Password, or none), TimeInForce carried, no custom messages
(account requests and mass status are refused locally as not offered)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path

from fixgw.domain import (
    CancelOrder,
    ExchangeErrorReport,
    LogoutReason,
    QueryOrder,
    RequestAccountInfo,
    RequestMarketData,
    RequestOrderMassStatus,
    SubmitOrder,
    TimeInForce,
)
from fixgw.fix.message import FixMessage, GroupSpec
from fixgw.fix.tags import MsgType, Tag
from fixgw.venues.base import (
    Capability,
    Credentials,
    MessageIds,
    VenueReport,
    not_offered,
    not_taken,
)
from fixgw.venues.fix44 import inbound, outbound

TIME_IN_FORCE: frozenset[TimeInForce] = frozenset(TimeInForce)

_READERS: dict[str, Callable[[FixMessage, datetime], VenueReport]] = {
    MsgType.EXECUTION_REPORT: inbound.execution_report,
    MsgType.ORDER_CANCEL_REJECT: inbound.order_cancel_reject,
    MsgType.MARKET_DATA_SNAPSHOT: inbound.market_data_snapshot,
    MsgType.MARKET_DATA_INCREMENTAL: inbound.market_data_incremental,
    MsgType.MARKET_DATA_REQUEST_REJECT: inbound.market_data_request_reject,
    MsgType.BUSINESS_MESSAGE_REJECT: inbound.business_message_reject,
}


class Fix44Venue:
    name: str = "fix44"
    default_target_comp_id: str | None = None
    offers: frozenset[Capability] = frozenset({Capability.MARKET_DATA})
    time_in_force: frozenset[TimeInForce] = TIME_IN_FORCE
    answers_take_back_fills: bool = True  # a trade bust (ExecType H) is unreadable
    request_id_tags: tuple[int, ...] = (Tag.CL_ORD_ID, Tag.MD_REQ_ID, Tag.MASS_STATUS_REQ_ID)
    groups: Mapping[str, tuple[GroupSpec, ...]]

    def __init__(self, credentials: Credentials, dictionary: Path | None = None) -> None:
        from fixgw.venues import groups_read, venue_dictionary

        self.dictionary = dictionary or venue_dictionary(self.name)
        self.groups = groups_read(self.dictionary)
        self._credentials = credentials

    def set_credentials(self, credentials: Credentials) -> None:
        self._credentials = credentials

    def logon_fields(self, reset_seq_num: bool) -> dict[int, str]:
        c = self._credentials
        return outbound.logon_fields(c.username, c.password, reset_seq_num)

    def new_order(self, cmd: SubmitOrder) -> FixMessage:
        return outbound.new_order_single(cmd)

    def cancel(self, cmd: CancelOrder) -> FixMessage:
        return outbound.order_cancel_request(cmd)

    def order_status(self, cmd: QueryOrder) -> FixMessage:
        return outbound.order_status_request(cmd)

    def mass_status(self, cmd: RequestOrderMassStatus) -> FixMessage:
        raise not_offered(self, Capability.MASS_STATUS)

    def account(self, cmd: RequestAccountInfo) -> FixMessage:
        raise not_offered(self, Capability.ACCOUNT)

    def market_data(self, cmd: RequestMarketData) -> FixMessage:
        return outbound.market_data_request(cmd)

    def read(self, msg: FixMessage, received: datetime) -> VenueReport:
        reader = _READERS.get(msg.msg_type)
        if reader is None:
            raise not_taken(msg)
        return reader(msg, received)

    def session_reject(self, msg: FixMessage, received: datetime) -> ExchangeErrorReport:
        return inbound.session_reject(msg, received)

    def logout_reason(self, msg: FixMessage) -> LogoutReason | None:
        """FIX 4.4's Logout says why in Text only."""
        return None

    def ids_named(self, msg: FixMessage) -> MessageIds:
        return inbound.ids_named(msg)
