"""The normalized model: enums, commands, venue reports and events.

Knows nothing of FIX or of any venue. Money and quantities are `Decimal`; times are
timezone-aware UTC. Events are msgspec Structs tagged by `type`, so the JSON a client
sees is `{"type": "order.filled", ...}` with decimals as strings.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import ClassVar

import msgspec


def utc_now() -> datetime:
    return datetime.now(UTC)


class Side(StrEnum):
    BUY = "buy"
    SELL = "sell"


class OrderType(StrEnum):
    LIMIT = "limit"
    MARKET = "market"


class SessionState(StrEnum):
    """The exchange session, in one place: what `status` shows, what readiness and order
    entry ask, what the reconnector drives."""

    CONNECTING = "connecting"
    """An attempt under way: QuickFIX connecting (TCP, TLS)."""
    LOGGING_ON = "logging_on"
    """Our Logon is out; the exchange has not answered."""
    UP = "up"
    DOWN = "down"
    """Not logged on; the next attempt is due (`connection.next_attempt_at`)."""
    HELD = "held"
    """Not logged on, and no attempt until the operator says so (credentials refused)."""
    STOPPED = "stopped"


class TimeInForce(StrEnum):
    """How long an order may work. None on an order: the venue's own rule (OKCoin's limit
    orders rest until cancelled; its market orders' rest is cancelled)."""

    DAY = "day"
    GTC = "gtc"
    IOC = "ioc"
    FOK = "fok"


class OrderStatus(StrEnum):
    PENDING_NEW = "pending_new"
    NEW = "new"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    PENDING_CANCEL = "pending_cancel"
    CANCELED = "canceled"
    REJECTED = "rejected"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_STATUSES


TERMINAL_STATUSES = frozenset({OrderStatus.FILLED, OrderStatus.CANCELED, OrderStatus.REJECTED})


class ExecKind(StrEnum):
    """What an execution report says happened (the venue's ExecType, normalized)."""

    NEW = "new"
    PARTIAL_FILL = "partial_fill"
    FILL = "fill"
    TRADE = "trade"
    PENDING_CANCEL = "pending_cancel"
    CANCELED = "canceled"
    REJECTED = "rejected"
    ORDER_STATUS = "order_status"
    RESTATED = "restated"
    """The venue changed the order on its own (FIX 4.4's ExecType D): its quantity, price
    or status, never its fills."""

    @property
    def is_fill(self) -> bool:
        return self in FILL_KINDS


FILL_KINDS = frozenset({ExecKind.PARTIAL_FILL, ExecKind.FILL, ExecKind.TRADE})


class RejectReason(StrEnum):
    """Why the exchange refused an order: FIX 4.4's OrdRejReason values that a venue's
    client can act on, the rest read as OTHER (the exchange's Text says which)."""

    BROKER_OPTION = "broker_option"
    UNKNOWN_SYMBOL = "unknown_symbol"
    EXCHANGE_CLOSED = "exchange_closed"
    EXCEEDS_LIMIT = "exceeds_limit"
    TOO_LATE_TO_ENTER = "too_late_to_enter"
    UNKNOWN_ORDER = "unknown_order"
    DUPLICATE_ORDER = "duplicate_order"
    STALE_ORDER = "stale_order"
    UNSUPPORTED_ORDER = "unsupported_order"
    INCORRECT_QUANTITY = "incorrect_quantity"
    UNKNOWN_ACCOUNT = "unknown_account"
    INVALID_PRICE_INCREMENT = "invalid_price_increment"
    OTHER = "other"
    NOT_DELIVERED = "not_delivered"
    """The gateway's own, no venue's code: the order never reached the exchange (the session
    went down before it went out, or the exchange asked for it again after losing it, and a
    stale order is never resent)."""
    UNKNOWN_AT_EXCHANGE = "unknown_at_exchange"
    """The gateway's own, no venue's code: asked about an order it had not acknowledged, the
    exchange answered it has no such order (it may yet take it: its order entry lagging its
    session)."""


class RestatementReason(StrEnum):
    """Why the venue restated an order: FIX 4.4's ExecRestatementReason (378)."""

    GT_CORPORATE_ACTION = "gt_corporate_action"
    GT_RENEWAL = "gt_renewal"
    VERBAL_CHANGE = "verbal_change"
    REPRICING = "repricing"
    BROKER_OPTION = "broker_option"
    PARTIAL_DECLINE = "partial_decline"
    """Of the order's quantity."""
    CANCEL_ON_TRADING_HALT = "cancel_on_trading_halt"
    CANCEL_ON_SYSTEM_FAILURE = "cancel_on_system_failure"
    MARKET_OPTION = "market_option"
    CANCELED_NOT_BEST = "canceled_not_best"
    WAREHOUSE_RECAP = "warehouse_recap"
    OTHER = "other"


class CancelRejectReason(StrEnum):
    TOO_LATE_TO_CANCEL = "too_late_to_cancel"
    UNKNOWN_ORDER = "unknown_order"
    BROKER_OPTION = "broker_option"
    ALREADY_PENDING = "already_pending"
    DUPLICATE_CL_ORD_ID = "duplicate_cl_ord_id"
    OTHER = "other"
    NOT_DELIVERED = "not_delivered"
    """The gateway's own: the cancel never reached the exchange."""


GATEWAY_REJECT_REASONS: frozenset[StrEnum] = frozenset(
    {
        RejectReason.NOT_DELIVERED,
        RejectReason.UNKNOWN_AT_EXCHANGE,
        CancelRejectReason.NOT_DELIVERED,
    }
)
"""Reasons no venue sends: translation tables leave them out. Each is the gateway's
inference, not the exchange's word."""


class LogoutReason(StrEnum):
    CLIENT_LOGOUT = "client_logout"
    INVALID_CREDENTIALS = "invalid_credentials"
    TIMEOUT = "timeout"
    SERVER_ERROR = "server_error"


class BookSide(StrEnum):
    BID = "bid"
    ASK = "ask"


class LevelAction(StrEnum):
    NEW = "new"
    CHANGE = "change"
    """Of a level the book holds."""
    DELETE = "delete"
    """Of a level the book holds."""
    DELETE_IF_HELD = "delete_if_held"
    """The level is gone, and was perhaps never there: a venue's reader makes it of a new
    level of size 0 (`fixgw.venues.fix44.inbound`), and a book passes it on as the delete
    it was, or not at all."""


LEVEL_ACTIONS_NOT_SENT: frozenset[LevelAction] = frozenset({LevelAction.DELETE_IF_HELD})
"""Actions no FIX message names: translation tables leave them out, and no event carries
them."""


class MdEntryKind(StrEnum):
    BID = "bid"
    ASK = "ask"
    TRADE = "trade"


class MdSubscription(StrEnum):
    SNAPSHOT = "snapshot"
    SUBSCRIBE = "subscribe"
    UNSUBSCRIBE = "unsubscribe"


class MdRejectReason(StrEnum):
    """Why the venue refused market data: FIX 4.4's MDReqRejReason (281)."""

    UNKNOWN_SYMBOL = "unknown_symbol"
    DUPLICATE_MD_REQ_ID = "duplicate_md_req_id"
    INSUFFICIENT_BANDWIDTH = "insufficient_bandwidth"
    INSUFFICIENT_PERMISSIONS = "insufficient_permissions"
    UNSUPPORTED_SUBSCRIPTION = "unsupported_subscription"
    UNSUPPORTED_DEPTH = "unsupported_depth"
    UNSUPPORTED_UPDATE_TYPE = "unsupported_update_type"
    UNSUPPORTED_AGGREGATED_BOOK = "unsupported_aggregated_book"
    UNSUPPORTED_ENTRY_TYPE = "unsupported_entry_type"
    UNSUPPORTED_TRADING_SESSION = "unsupported_trading_session"
    UNSUPPORTED_SCOPE = "unsupported_scope"
    UNSUPPORTED_OPEN_CLOSE_SETTLE_FLAG = "unsupported_open_close_settle_flag"
    UNSUPPORTED_IMPLICIT_DELETE = "unsupported_implicit_delete"
    OTHER = "other"
    """The gateway's own: a refusal whose reason it could not read (FIX 4.4 has no code
    for "other" here)."""


Level = tuple[Decimal, Decimal]
"""(price, size) of one book level."""


# ---------------------------------------------------------------- commands (imperative)


class Command(msgspec.Struct, frozen=True, kw_only=True):
    ts: datetime


class SubmitOrder(Command, frozen=True, kw_only=True):
    cl_ord_id: str
    symbol: str
    side: Side
    order_type: OrderType
    qty: Decimal
    price: Decimal | None = None
    time_in_force: TimeInForce | None = None


class CancelOrder(Command, frozen=True, kw_only=True):
    cl_ord_id: str
    """The id of this cancel request."""
    orig_cl_ord_id: str | None
    """The order's ClOrdID; None for an order this gateway did not send, known by the
    exchange's `order_id` only (the dialect says what a cancel then carries)."""
    order_id: str | None
    symbol: str
    side: Side


class QueryOrder(Command, frozen=True, kw_only=True):
    order_id: str
    cl_ord_id: str | None
    symbol: str
    side: Side


class RequestMarketData(Command, frozen=True, kw_only=True):
    md_req_id: str
    symbol: str
    subscription: MdSubscription
    depth: int
    """0 = the whole book."""
    kinds: tuple[MdEntryKind, ...]


class RequestAccountInfo(Command, frozen=True, kw_only=True):
    acc_req_id: str


class RequestOrderMassStatus(Command, frozen=True, kw_only=True):
    mass_status_req_id: str
    symbol: str | None = None


# ---------------------------------------------------------------- venue reports


class ExecutionReport(msgspec.Struct, frozen=True, kw_only=True):
    """One execution report from the venue, normalized; the order tracker turns it into events."""

    exec_id: str
    kind: ExecKind
    status: OrderStatus
    cl_ord_id: str | None
    orig_cl_ord_id: str | None = None
    order_id: str | None
    symbol: str
    side: Side
    order_type: OrderType | None = None
    qty: Decimal | None = None
    price: Decimal | None = None
    cum_qty: Decimal
    leaves_qty: Decimal
    avg_px: Decimal
    last_qty: Decimal | None = None
    last_px: Decimal | None = None
    reject_reason: RejectReason | None = None
    restatement_reason: RestatementReason | None = None
    text: str | None = None
    ts: datetime
    poss_dup: bool = False
    mass_status_req_id: str | None = None
    last_report: bool = False
    """LastRptRequested (912): the last answer to a mass status request."""
    done_for_day: bool = False
    """ExecType Done for Day (3), read as a cancel: no more executions today, which ends a
    Day order but not a GTC one (FIX 4.4)."""


class CurrencyBalance(msgspec.Struct, frozen=True, kw_only=True):
    free: Decimal | None
    frozen: Decimal | None


class AccountInfoReport(msgspec.Struct, frozen=True, kw_only=True):
    acc_req_id: str
    currency: str | None
    """The account's quote currency (USD, or CNY on the China site)."""
    balance: list[Decimal]
    """Available funds, frozen excluded; OKCoin sometimes sent several joined with '/'."""
    balances: dict[str, CurrencyBalance]
    ts: datetime


class ErrorSource(StrEnum):
    EXCEPTION = "exception"
    """ExceptionResponseMessage (E1000): OKCoin could not serve a request."""
    SESSION_REJECT = "session_reject"
    """Reject (3): a message we sent broke the session rules."""
    BUSINESS_REJECT = "business_reject"
    """BusinessMessageReject (j): a message type or content the venue does not serve."""
    UNREADABLE = "unreadable"
    """A message from the venue the gateway could not read (`raw` holds it, secrets masked):
    whatever it said, the gateway asks the venue about what it may have been about."""


class ExchangeErrorReport(msgspec.Struct, frozen=True, kw_only=True):
    source: ErrorSource
    text: str | None
    reason: str | None = None
    ref_msg_type: str | None = None
    ref_seq_num: int | None = None
    cl_ord_id: str | None = None
    acc_req_id: str | None = None
    md_req_id: str | None = None
    mass_status_req_id: str | None = None
    ts: datetime


class CancelRejectReport(msgspec.Struct, frozen=True, kw_only=True):
    cl_ord_id: str
    """The id of the cancel request that failed."""
    orig_cl_ord_id: str | None
    order_id: str | None
    status: OrderStatus | None
    reason: CancelRejectReason
    text: str | None = None
    ts: datetime
    poss_dup: bool = False


class LevelUpdate(msgspec.Struct, frozen=True, array_like=True):
    """One changed book level; `size` is the level's size afterwards (0 for a delete)."""

    action: LevelAction
    side: BookSide
    price: Decimal
    size: Decimal


class Trade(msgspec.Struct, frozen=True, kw_only=True):
    price: Decimal
    size: Decimal
    aggressor: Side | None


class BookSnapshotReport(msgspec.Struct, frozen=True, kw_only=True):
    md_req_id: str | None
    symbol: str
    bids: list[Level]
    asks: list[Level]
    trades: list[Trade]
    ts: datetime
    passed_over: tuple[str, ...] = ()
    """The entries the venue sent that the gateway has no use for, one line each naming its
    kind (`MDEntryType 4 (opening price)`): a name from a fixed list, never a value, so
    that it can label a metric."""


class BookUpdateReport(msgspec.Struct, frozen=True, kw_only=True):
    """One incremental refresh, grouped by symbol in the order the venue sent its entries."""

    md_req_id: str | None
    levels: dict[str, list[LevelUpdate]]
    trades: dict[str, list[Trade]]
    ts: datetime
    passed_over: tuple[str, ...] = ()
    """As on `BookSnapshotReport`."""


class MarketDataRejectReport(msgspec.Struct, frozen=True, kw_only=True):
    md_req_id: str
    reason: MdRejectReason
    text: str | None
    ts: datetime


# ---------------------------------------------------------------- events (past tense)


class Event(msgspec.Struct, frozen=True, kw_only=True, tag_field="type"):
    topic: ClassVar[str] = "errors"
    ts: datetime

    def route(self) -> str:
        """The topic subscribers of this event listen on."""
        return self.topic


class OrderEvent(Event, frozen=True, kw_only=True):
    """The state of one order right after something happened to it."""

    topic: ClassVar[str] = "orders"
    cl_ord_id: str
    order_id: str | None
    symbol: str
    side: Side
    order_type: OrderType
    qty: Decimal
    price: Decimal | None
    status: OrderStatus
    cum_qty: Decimal
    leaves_qty: Decimal
    avg_px: Decimal


class OrderPendingNew(
    OrderEvent, frozen=True, kw_only=True, tag="order.pending_new", omit_defaults=True
):
    cancel_on_disconnect: bool = False
    """Placed by an API client that asked for cancel on disconnect (written only when true):
    after a restart, which ended every connection, the order is cancelled."""
    time_in_force: TimeInForce | None = None
    """The order's TimeInForce, where it has one (written only then): a GTC order outlives
    the venue's Done for Day, also after a restart."""
    oms: str | msgspec.UnsetType | None = msgspec.UNSET
    """The bridge session (its CompID) that placed the order; None (written as null) for
    an API client's. It says whose the order is, after a restart too, whatever prefixes the
    config has by then. Absent (UNSET) only from lines written before it was recorded
    (0.1.0): such an order is the OMS's whose prefix its ClOrdID starts with."""


class OrderAccepted(OrderEvent, frozen=True, kw_only=True, tag="order.accepted"):
    exec_id: str | None = None
    """The ExecID of the exchange's ack: journaled, so that a restart knows it again."""


class OrderRejected(OrderEvent, frozen=True, kw_only=True, tag="order.rejected"):
    reason: RejectReason
    text: str | None


class OrderPartiallyFilled(
    OrderEvent, frozen=True, kw_only=True, tag="order.partially_filled", omit_defaults=True
):
    exec_id: str
    last_qty: Decimal
    last_px: Decimal
    report_cum_qty: Decimal | None = None
    """The CumQty of the fill's own report, where it is of quantity a report showed filled
    at no price (written only then): the event's `cum_qty` is the order's, as it was, and
    the fill's quantity lay from this less `last_qty` up to it, so that a restart knows
    which quantity is still unpriced. Absent on lines written before it was recorded."""


class OrderFilled(OrderEvent, frozen=True, kw_only=True, tag="order.filled", omit_defaults=True):
    exec_id: str
    last_qty: Decimal
    last_px: Decimal
    report_cum_qty: Decimal | None = None
    """As `OrderPartiallyFilled.report_cum_qty`."""


class OrderPendingCancel(OrderEvent, frozen=True, kw_only=True, tag="order.pending_cancel"):
    cancel_cl_ord_id: str | None
    exec_id: str | None = None
    """The ExecID of the exchange's report (ExecType 6); None for the gateway's own cancel."""


class OrderCanceled(
    OrderEvent, frozen=True, kw_only=True, tag="order.canceled", omit_defaults=True
):
    text: str | None
    cancel_cl_ord_id: str | None = None
    """The cancel this answers. Of an order this gateway keeps: the one pending when it was
    canceled (None if none was, or on a line written before this was), under which an OMS's
    report is sent again from the journal after its order is forgotten. Of an order this
    gateway did not send: the cancel that canceled it, whose id is the event's `cl_ord_id`
    too, as on its `order.cancel_rejected`."""

    @property
    def of_untracked_order(self) -> bool:
        """No order of this gateway's: a cancel's id is never an order's."""
        return self.cancel_cl_ord_id == self.cl_ord_id


class OrderStatusReported(OrderEvent, frozen=True, kw_only=True, tag="order.status"):
    """The venue's answer to a status request (its view, which the tracker adopts)."""

    text: str | None


class OrderRestated(OrderEvent, frozen=True, kw_only=True, tag="order.restated"):
    """The venue changed the order on its own (its quantity, price or status): by a
    restatement, or as a status answer showed. It adds no fills (those are fill events
    first); it takes fills back only as the answer to a question asked after a report the
    gateway could not read (a trade bust), which an `order.anomaly` `fills_taken_back`
    tells first."""

    reason: RestatementReason | None
    text: str | None


class OrderCancelRejected(Event, frozen=True, kw_only=True, tag="order.cancel_rejected"):
    """A cancel failed. Of an order the gateway tracks it carries the whole order, as every
    order event does; of one it does not (a cancel by the exchange's id), what the answer
    tells: `order_id` and `status`, the rest None. Journals written before the order's
    fields were added lack them: they decode as None."""

    topic: ClassVar[str] = "orders"
    cl_ord_id: str
    """The order the cancel was for (the cancel request's own id where the order is unknown)."""
    cancel_cl_ord_id: str
    order_id: str | None
    symbol: str | None
    side: Side | None = None
    order_type: OrderType | None = None
    qty: Decimal | None = None
    price: Decimal | None = None
    status: OrderStatus | None
    cum_qty: Decimal | None = None
    leaves_qty: Decimal | None = None
    avg_px: Decimal | None = None
    reason: CancelRejectReason
    text: str | None


class OrderAnomaly(Event, frozen=True, kw_only=True, tag="order.anomaly"):
    """A report the tracker could not apply as a normal transition (late, out of order, gap).

    Surfaced rather than dropped: the order's state is left as it was unless `detail` says
    otherwise, and operators see exactly what arrived.
    """

    topic: ClassVar[str] = "orders"
    cl_ord_id: str | None
    order_id: str | None
    exec_id: str | None
    problem: str
    detail: str


class SessionUp(Event, frozen=True, kw_only=True, tag="session.up"):
    topic: ClassVar[str] = "session"
    session_id: str


class SessionDown(Event, frozen=True, kw_only=True, tag="session.down"):
    topic: ClassVar[str] = "session"
    session_id: str
    reason: str
    logout_reason: LogoutReason | None = None


class NotCancelled(msgspec.Struct, frozen=True, kw_only=True):
    """An open order no cancel could be sent for: the refusal's code, and why."""

    cl_ord_id: str
    code: str
    reason: str


class TradingHalted(Event, frozen=True, kw_only=True, tag="session.halted"):
    """The kill switch: no new orders; every open order was sent a cancel."""

    topic: ClassVar[str] = "session"
    by: str
    reason: str | None
    cancelling: list[str]
    """ClOrdIDs of the open orders a cancel was sent for."""
    waiting: list[NotCancelled | str] = msgspec.field(default_factory=list)
    """The open orders no cancel could be sent for yet (the session down, the cancel rate
    limit), as the halt's reply has them: they are cancelled as soon as the gateway can. A
    bare ClOrdID on a line journaled before the event carried the code and reason."""
    withdrawn: list[str] = msgspec.field(default_factory=list)
    """ClOrdIDs of the orders taken out of the throttle's queue: never sent, canceled at
    once, no cancel sent for them."""


class TradingResumed(Event, frozen=True, kw_only=True, tag="session.resumed"):
    topic: ClassVar[str] = "session"
    by: str


class AccountBalance(Event, frozen=True, kw_only=True, tag="account.balance"):
    topic: ClassVar[str] = "account"
    currency: str | None
    balance: list[Decimal]
    balances: dict[str, CurrencyBalance]


class ExchangeError(Event, frozen=True, kw_only=True, tag="exchange.error"):
    """The exchange refused or could not serve something we sent; names the request."""

    topic: ClassVar[str] = "errors"
    source: ErrorSource
    text: str | None
    reason: str | None
    ref_msg_type: str | None
    cl_ord_id: str | None
    acc_req_id: str | None
    md_req_id: str | None
    raw: str | None = None
    """The message as received, `|`-separated and secrets masked (source `unreadable`)."""
    mass_status_req_id: str | None = None


class MarketDataEvent(Event, frozen=True, kw_only=True):
    symbol: str

    def route(self) -> str:
        return f"md:{self.symbol}"


class BookSnapshot(MarketDataEvent, frozen=True, kw_only=True, tag="md.snapshot"):
    bids: list[Level]
    asks: list[Level]


class BookDelta(MarketDataEvent, frozen=True, kw_only=True, tag="md.delta"):
    """The levels one incremental refresh changed: `[action, side, price, size]` each."""

    changes: list[LevelUpdate]


class TradeReported(MarketDataEvent, frozen=True, kw_only=True, tag="md.trade"):
    price: Decimal
    size: Decimal
    aggressor: Side | None

    def route(self) -> str:
        return f"md:{self.symbol}:trades"


class MarketDataRejected(MarketDataEvent, frozen=True, kw_only=True, tag="md.rejected"):
    what: str
    """The stream refused: `book` (bids and offers) or `trades`."""
    reason: MdRejectReason
    text: str | None

    def route(self) -> str:
        """The refused stream's own topic: a client of the trades alone is told too."""
        return f"md:{self.symbol}:trades" if self.what == "trades" else f"md:{self.symbol}"


class BookStale(MarketDataEvent, frozen=True, kw_only=True, tag="md.stale"):
    """The stream can no longer be trusted (the book), or may have missed trades (the
    trades); it has been asked for afresh."""

    reason: str
    what: str = "book"
    """The stream: `book` (bids and offers) or `trades`."""

    def route(self) -> str:
        return f"md:{self.symbol}:trades" if self.what == "trades" else f"md:{self.symbol}"


AnyEvent = (
    OrderPendingNew
    | OrderAccepted
    | OrderRejected
    | OrderPartiallyFilled
    | OrderFilled
    | OrderPendingCancel
    | OrderCanceled
    | OrderStatusReported
    | OrderRestated
    | OrderCancelRejected
    | OrderAnomaly
    | SessionUp
    | SessionDown
    | TradingHalted
    | TradingResumed
    | AccountBalance
    | ExchangeError
    | BookSnapshot
    | BookDelta
    | TradeReported
    | MarketDataRejected
    | BookStale
)
