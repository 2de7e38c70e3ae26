"""OKCoin's FIX dialect behind the `Venue` interface."""

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
from fixgw.errors import ConfigError
from fixgw.fix.message import FixMessage, GroupSpec
from fixgw.fix.tags import MsgType, Tag
from fixgw.venues.base import Capability, Credentials, MessageIds, VenueReport, not_taken
from fixgw.venues.okcoin import inbound, outbound
from fixgw.venues.okcoin.tags import OkMsgType, OkTag

DEFAULT_TARGET_COMP_ID = "OKSERVER"
TIME_IN_FORCE: frozenset[TimeInForce] = frozenset()
"""OKCoin's orders carry none: limit orders rest until cancelled, a market order's rest is
cancelled."""

_READERS: dict[str, Callable[[FixMessage, datetime], VenueReport]] = {
    MsgType.EXECUTION_REPORT: inbound.execution_report,
    MsgType.ORDER_CANCEL_REJECT: inbound.order_cancel_reject,
    MsgType.MARKET_DATA_SNAPSHOT: inbound.market_data_snapshot,
    MsgType.MARKET_DATA_INCREMENTAL: inbound.market_data_incremental,
    MsgType.MARKET_DATA_REQUEST_REJECT: inbound.market_data_request_reject,
    MsgType.BUSINESS_MESSAGE_REJECT: inbound.business_message_reject,
    OkMsgType.ACCOUNT_INFO_RESPONSE: inbound.account_info_response,
    OkMsgType.EXCEPTION_RESPONSE: inbound.exception_response,
}
"""What OKCoin sends, by MsgType."""


class OkcoinVenue:
    name: str = "okcoin"
    default_target_comp_id: str | None = DEFAULT_TARGET_COMP_ID
    offers: frozenset[Capability] = frozenset(
        {Capability.ACCOUNT, Capability.MASS_STATUS, Capability.MARKET_DATA}
    )
    time_in_force: frozenset[TimeInForce] = TIME_IN_FORCE
    answers_take_back_fills: bool = False  # its answers may lag its reports; no busts
    request_id_tags: tuple[int, ...] = (
        Tag.CL_ORD_ID,
        OkTag.ACC_REQ_ID,
        Tag.MD_REQ_ID,
        Tag.MASS_STATUS_REQ_ID,
    )
    groups: Mapping[str, tuple[GroupSpec, ...]]

    def __init__(
        self, credentials: Credentials, account_on: frozenset[str], dictionary: Path | None = None
    ) -> None:
        from fixgw.venues import groups_read, venue_dictionary

        self.dictionary = dictionary or venue_dictionary(self.name)
        self.groups = groups_read(self.dictionary)
        self._account_on = account_on
        self._options = self._options_for(credentials)

    def _options_for(self, credentials: Credentials) -> outbound.DialectOptions:
        if not credentials.username or not credentials.password:
            raise ConfigError("OKCoin needs the API key and the secret key (credentials)")
        return outbound.DialectOptions(
            api_key=credentials.username,
            secret_key=credentials.password,
            account_on=self._account_on,
        )

    def set_credentials(self, credentials: Credentials) -> None:
        self._options = self._options_for(credentials)

    def logon_fields(self, reset_seq_num: bool) -> dict[int, str]:
        return outbound.logon_fields(self._options, reset_seq_num)

    def new_order(self, cmd: SubmitOrder) -> FixMessage:
        return outbound.new_order_single(cmd, self._options)

    def cancel(self, cmd: CancelOrder) -> FixMessage:
        return outbound.order_cancel_request(cmd, self._options)

    def order_status(self, cmd: QueryOrder) -> FixMessage:
        return outbound.order_status_request(cmd, self._options)

    def mass_status(self, cmd: RequestOrderMassStatus) -> FixMessage:
        return outbound.order_mass_status_request(cmd, self._options)

    def account(self, cmd: RequestAccountInfo) -> FixMessage:
        return outbound.account_info_request(cmd, self._options)

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
        return inbound.logout_reason(msg)

    def ids_named(self, msg: FixMessage) -> MessageIds:
        return inbound.ids_named(msg)
