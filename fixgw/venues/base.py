"""What the core needs of a venue's FIX dialect: the `Venue` interface.

A venue turns each command into its FIX message and each message it sends into a venue
report of the domain (`fixgw.domain`), says what goes in the Logon and where credentials
go, which fields of our own messages name a request (a Reject names only its RefSeqNum),
and what it offers. Nothing outside a venue's package knows its tags or message types.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import NamedTuple, Protocol

from fixgw.domain import (
    AccountInfoReport,
    BookSnapshotReport,
    BookUpdateReport,
    CancelOrder,
    CancelRejectReport,
    ExchangeErrorReport,
    ExecutionReport,
    LogoutReason,
    MarketDataRejectReport,
    QueryOrder,
    RequestAccountInfo,
    RequestMarketData,
    RequestOrderMassStatus,
    SubmitOrder,
    TimeInForce,
)
from fixgw.errors import DialectError, RequestError
from fixgw.fix.message import FixMessage, GroupSpec


class Capability(StrEnum):
    """What a venue may or may not offer beyond orders, cancels and status requests."""

    ACCOUNT = "account"
    """Balances on request (OKCoin's AccountInfoRequest)."""
    MASS_STATUS = "mass_status"
    """The open orders on request (OrderMassStatusRequest)."""
    MARKET_DATA = "market_data"
    """Books and trades (MarketDataRequest)."""


class NotOffered(RequestError):
    """A request the venue has no message for: refused locally, nothing is sent."""

    code = "not_offered"


@dataclass(frozen=True, slots=True, repr=False)
class Credentials:
    """What the venue's Logon (and, for some, each message) carries. Never logged."""

    username: str | None = None
    password: str | None = None

    def __repr__(self) -> str:
        return f"Credentials(username={'set' if self.username else None}, password=***)"


VenueReport = (
    ExecutionReport
    | CancelRejectReport
    | BookSnapshotReport
    | BookUpdateReport
    | MarketDataRejectReport
    | AccountInfoReport
    | ExchangeErrorReport
)
"""What a venue's message means to the core."""


class MessageIds(NamedTuple):
    """The ids a message names, read leniently: of a message the venue's reader cannot
    otherwise read, or of one of ours the venue never got."""

    msg_type: str
    cl_ord_id: str | None
    orig_cl_ord_id: str | None
    order_id: str | None
    exec_id: str | None
    md_req_id: str | None
    acc_req_id: str | None
    mass_status_req_id: str | None

    @property
    def names_an_order(self) -> bool:
        return any((self.cl_ord_id, self.orig_cl_ord_id, self.order_id, self.exec_id))


class Venue(Protocol):
    name: str
    dictionary: Path
    """Its QuickFIX data dictionary (read inbound with standard FIX 4.4 around it)."""
    default_target_comp_id: str | None
    """TargetCompID when the config names none (None: the config must)."""
    offers: frozenset[Capability]
    time_in_force: frozenset[TimeInForce]
    """The TimeInForce values an order may carry; none: orders carry none (the venue's own
    rule holds: resting until cancelled, a market order's rest cancelled)."""
    answers_take_back_fills: bool
    """Whether its answer to a status request, asked after a report the gateway could not
    read, is its word after that report, so that one showing fewer fills than were told
    took them back (a trade bust). False for a venue whose answers may lag its own reports
    and whose dialect has no busts: such an answer changes nothing (`stale_status`)."""
    request_id_tags: tuple[int, ...]
    """The fields of our own messages that name a request, for a Reject that names only
    its RefSeqNum."""
    groups: Mapping[str, tuple[GroupSpec, ...]]
    """The repeating groups of what it sends, by MsgType, for `fixgw.fix.message.parse`."""

    def set_credentials(self, credentials: Credentials) -> None: ...
    def logon_fields(self, reset_seq_num: bool) -> dict[int, str]: ...

    def new_order(self, cmd: SubmitOrder) -> FixMessage: ...
    def cancel(self, cmd: CancelOrder) -> FixMessage: ...
    def order_status(self, cmd: QueryOrder) -> FixMessage: ...
    def mass_status(self, cmd: RequestOrderMassStatus) -> FixMessage: ...
    def account(self, cmd: RequestAccountInfo) -> FixMessage: ...
    def market_data(self, cmd: RequestMarketData) -> FixMessage: ...

    def read(self, msg: FixMessage, received: datetime) -> VenueReport:
        """Raises `DialectError` for a message it cannot read, or of a type it does not send."""
        ...

    def session_reject(self, msg: FixMessage, received: datetime) -> ExchangeErrorReport: ...
    def logout_reason(self, msg: FixMessage) -> LogoutReason | None: ...
    def ids_named(self, msg: FixMessage) -> MessageIds: ...


def not_taken(msg: FixMessage) -> DialectError:
    """A message of a type the venue should not send: read as unreadable."""
    return DialectError(
        "a message type the gateway does not take", msg_type=msg.msg_type, tag=None, raw=msg.raw
    )


def not_offered(venue: Venue, what: Capability) -> NotOffered:
    return NotOffered(f"the venue ({venue.name}) does not offer {what}", code="not_offered")
