"""What the gateway answers its callers (the API server, the FIX bridge): typed, immutable.

The API server alone turns these into JSON (msgspec encodes them as they are: decimals as
strings, enums as their values); the bridge alone turns them into FIX for an OMS.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Literal

import msgspec

from fixgw.domain import CurrencyBalance, Level, NotCancelled, OrderStatus, OrderType, Side


class Result(msgspec.Struct, frozen=True, kw_only=True):
    pass


class OrderView(Result, frozen=True, kw_only=True):
    """An order as the gateway holds it (or as the exchange answered for it)."""

    cl_ord_id: str | None
    order_id: str | None
    symbol: str
    side: Side
    order_type: OrderType | None
    qty: Decimal | None
    price: Decimal | None
    status: OrderStatus
    cum_qty: Decimal
    leaves_qty: Decimal
    avg_px: Decimal
    cancel_cl_ord_id: str | None = None
    """A cancel sent for it and not yet answered."""


class OrderStatusAnswer(OrderView, frozen=True, kw_only=True):
    source: Literal["exchange", "local"]
    """`local`: the exchange has not acknowledged the order yet, so nothing was asked."""
    text: str | None = None


class OrderAccepted(Result, frozen=True, kw_only=True):
    """A `new_order` taken: journaled and sent (or queued by the throttle)."""

    cl_ord_id: str
    status: OrderStatus


class CancelAccepted(Result, frozen=True, kw_only=True):
    cl_ord_id: str | None
    """The order's; None for one this gateway did not send."""
    order_id: str | None
    cancel_cl_ord_id: str
    status: OrderStatus
    """`pending_cancel`, or `canceled` for an order taken out of the throttle's queue."""


class CancelAllResult(Result, frozen=True, kw_only=True):
    cancelling: list[str]
    """ClOrdIDs of the orders a cancel went out for (or waits its turn to)."""
    not_cancelled: list[NotCancelled]
    withdrawn: list[str]
    """ClOrdIDs of the orders taken out of the throttle's queue: never sent, so canceled at
    once, with no cancel sent."""


class HaltResult(Result, frozen=True, kw_only=True, omit_defaults=True):
    halted: bool
    cancelling: list[str]
    waiting: list[NotCancelled]
    withdrawn: list[str]
    """As `CancelAllResult.withdrawn`."""
    warning: str | None = None
    """Only when the halt, in force, could not be recorded: a restart would not know it."""


class ResumeResult(Result, frozen=True, kw_only=True, omit_defaults=True):
    halted: bool
    warning: str | None = None
    """Only when the resume could not be recorded: a restart would be halted again."""


class Fill(Result, frozen=True, kw_only=True):
    ts: datetime
    exec_id: str
    cl_ord_id: str
    order_id: str | None
    symbol: str
    side: Side
    qty: Decimal
    price: Decimal


class Trades(Result, frozen=True, kw_only=True):
    trades: list[Fill]


class Orders(Result, frozen=True, kw_only=True):
    orders: list[OrderView]


class Account(Result, frozen=True, kw_only=True):
    currency: str | None
    balance: list[Decimal]
    balances: dict[str, CurrencyBalance]


class SeqNums(Result, frozen=True, kw_only=True):
    seq_nums: dict[str, int]


class Connection(Result, frozen=True, kw_only=True):
    phase: str
    attempts: int
    failures_in_a_row: int
    next_attempt_at: datetime | None
    held: str | None
    last_down_reason: str | None = None
    """Why the session last ended or a logon last failed; None until one has."""


class LoggingOnAgain(Result, frozen=True, kw_only=True):
    connection: Connection


class VenueView(Result, frozen=True, kw_only=True):
    name: str
    offers: list[str]
    time_in_force: list[str]


class Halted(Result, frozen=True, kw_only=True):
    by: str
    reason: str | None
    since: datetime


class AccountState(Result, frozen=True, kw_only=True):
    available: bool
    unavailable_since: datetime | None
    reason: str | None
    next_request_in_s: float | None


class BookLevels(Result, frozen=True, kw_only=True):
    """A symbol's book from the gateway's cache: (price, size) levels, best first."""

    symbol: str
    bids: list[Level]
    asks: list[Level]


class StreamState(Result, frozen=True, kw_only=True):
    """One upstream market-data stream (`SYMBOL:book` or `SYMBOL:trades`)."""

    clients: int
    live: bool
    md_req_id: str | None
    state: str
    """`requested`, `live`, `backing_off` or `waiting_for_logon`
    (`fixgw.marketdata.streams`)."""
    next_request_at: datetime | None
    """While `backing_off`: when it is asked for again."""


class TlsState(Result, frozen=True, kw_only=True):
    enabled: bool
    last_error: str | None


class NatsState(Result, frozen=True, kw_only=True):
    """The NATS JetStream transport (docs/nats.md)."""

    connected: bool
    server: str | None
    """The broker connected to, while connected."""
    stream: str
    subjects: str
    """This gateway's subjects."""
    acked_seq: int
    """The last seq the stream acknowledged: every journaled event up to it is there."""
    journal_seq: int
    """The last seq written to the journal."""
    backlog: int
    """The journal's events after the cursor (events, not seqs)."""
    publish_lag_s: float | None
    """At the last acknowledgement: its time less its event's."""
    published: int
    duplicates: int
    """Published again (after a restart or a failure) and dropped by the stream."""
    failures: int
    commands: int
    commands_without_reply: int
    """Requests published with no reply subject: not taken."""
    last_error: str | None
    request_timeout_s: float
    """`api.request_timeout_s`: a request waiting on the exchange gets the gateway's timeout
    error by then. The socket's `hello` says it; over NATS, a client learns it here."""


class Status(Result, frozen=True, kw_only=True):
    version: str
    venue: VenueView
    session: str
    session_id: str
    connection: Connection
    seq_nums: dict[str, int]
    heartbeat_rtt_ms: float | None
    """The last TestRequest's round trip to its Heartbeat (one every `session.heartbeat_s`);
    None before the first of a session is answered."""
    uptime_s: float
    last_event_seq: int
    ready: bool
    reconciling: int
    open_orders: int
    halted: Halted | None
    throttle_queued: int
    account: AccountState
    inbound_refused: int
    callback_errors: int
    dialect_errors: int
    log_lines_dropped: int
    """Log lines the gateway could not write (a full disk, a log reader gone), dropped."""
    market_data: dict[str, StreamState]
    tls: TlsState
    nats: NatsState | None = None
    """When `nats` is configured."""
