"""What `fixgw top` shows, kept up to date by the gateway's events: the session's status, the
open orders, the last fills and the top of book of the symbols watched. No terminal here:
top.py draws it.

The state comes once from requests at start (orders, trades, status), then from events only:
events that came before an answer are in it already, and fills are told apart by their
ExecID. The numbers no event carries (sequence numbers, the heartbeat's round trip, the
throttle's queue) come from a `status` request the screen makes after session and order
events (`status_due`)."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from fixgw.api.client import ApiError, GatewayClient, apply_market_data
from fixgw.cli.render import Col, Kind
from fixgw.domain import OrderStatus
from fixgw.marketdata.book import BookIntegrityError, OrderBook

BOOK_COLUMNS = (
    Col("SYMBOL", "symbol"),
    Col("BID_SIZE", "bid_size", Kind.DECIMAL),
    Col("BID", "bid", Kind.DECIMAL),
    Col("ASK", "ask", Kind.DECIMAL),
    Col("ASK_SIZE", "ask_size", Kind.DECIMAL),
    Col("LAST_TRADE", "last_trade"),
    Col("NOTE", "note"),
)
"""The top of each book, as `Board.book_rows` gives it."""


@dataclass
class Board:
    """What the screen shows, kept up to date by the events."""

    status: dict[str, Any]
    fills_shown: int
    open_orders: dict[str, dict[str, Any]] = field(default_factory=dict)
    fills: deque[dict[str, Any]] = field(default_factory=deque)
    """The last `fills_shown`, oldest first."""
    books: dict[str, OrderBook] = field(default_factory=dict)
    book_seq: dict[str, int] = field(default_factory=dict)
    book_notes: dict[str, str] = field(default_factory=dict)
    last_trades: dict[str, str] = field(default_factory=dict)
    last_error: dict[str, Any] | None = None
    status_due: bool = False

    def __post_init__(self) -> None:
        self.fills = deque(self.fills, maxlen=self.fills_shown)

    def take_order(self, order: dict[str, Any]) -> None:
        if OrderStatus(order["status"]).is_terminal:
            self.open_orders.pop(order["cl_ord_id"], None)
        else:
            self.open_orders[order["cl_ord_id"]] = order

    def take_fill(self, fill: dict[str, Any]) -> None:
        """Once: a fill in the `trades` answer at start may come again as an event."""
        if all(shown["exec_id"] != fill["exec_id"] for shown in self.fills):
            self.fills.append(fill)

    def apply(self, event: dict[str, Any]) -> None:
        kind = event["type"]
        family = kind.partition(".")[0]
        if family == "md":
            self._market_data(event)
            return
        self.status_due = True
        if family == "order" and "qty" in event:
            self.take_order(event)
            if "last_qty" in event:
                self.take_fill({**event, "qty": event["last_qty"], "price": event["last_px"]})
        elif kind == "exchange.error":
            self.last_error = event

    def _market_data(self, event: dict[str, Any]) -> None:
        symbol = event["symbol"]
        book = self.books.get(symbol)
        if book is None or event["seq"] <= self.book_seq.get(symbol, 0):
            return
        if event["type"] == "md.trade":
            self.last_trades[symbol] = f"{event['size']} @ {event['price']}"
        elif event["type"] in ("md.stale", "md.rejected"):
            self.book_notes[symbol] = f"{event['type']}: {event.get('reason')}"
        else:
            try:
                if apply_market_data(book, event):
                    self.book_notes.pop(symbol, None)
            except BookIntegrityError as exc:
                self.book_notes[symbol] = f"not to be trusted: {exc}"

    def symbols(self) -> set[str]:
        """The symbols of the orders and fills shown, and the gateway's own streams."""
        streams = {name.rpartition(":")[0] for name in self.status.get("market_data", {})}
        return {
            *(o["symbol"] for o in self.open_orders.values()),
            *(f["symbol"] for f in self.fills),
            *streams,
        }

    def book_rows(self) -> list[dict[str, Any]]:
        rows = []
        for symbol in sorted(self.books):
            bids, asks = self.books[symbol].levels(1)
            bid: tuple[Decimal | None, Decimal | None] = bids[0] if bids else (None, None)
            ask: tuple[Decimal | None, Decimal | None] = asks[0] if asks else (None, None)
            rows.append(
                {
                    "symbol": symbol,
                    "bid": bid[0],
                    "bid_size": bid[1],
                    "ask": ask[0],
                    "ask_size": ask[1],
                    "last_trade": self.last_trades.get(symbol),
                    "note": self.book_notes.get(symbol),
                }
            )
        return rows


def load(gw: GatewayClient, fills_shown: int) -> Board:
    """The state as of now, then every event after it: events that came before the open
    orders' answer are in it already, and fills are told apart by their ExecID."""
    gw.subscribe(["orders", "session", "errors"])
    orders = gw.request("orders")["orders"]
    gw.take_events()
    trades = gw.request("trades", limit=fills_shown)["trades"]
    board = Board(status=gw.status(), fills_shown=fills_shown)
    for order in orders:
        board.take_order(order)
    for trade in trades:
        board.take_fill(trade)
    for event in gw.take_events():
        board.apply(event)
    board.status_due = False
    return board


def watch_books(gw: GatewayClient, board: Board, wanted: set[str]) -> bool:
    """Subscribe to the books of symbols not watched yet; True if there were any."""
    new = sorted(wanted - board.books.keys())
    offered = "market_data" in board.status.get("venue", {}).get("offers", [])
    for symbol in new:
        book = board.books[symbol] = OrderBook(symbol)
        if not offered:
            board.book_notes[symbol] = "the venue offers no market data"
            continue
        try:
            reply = gw.request("md_subscribe", symbol=symbol, depth=0)
        except (ApiError, TimeoutError) as exc:
            board.book_notes[symbol] = f"no book: {exc}"
            continue
        apply_market_data(book, reply)
        board.book_seq[symbol] = reply["seq"]
    return bool(new)
