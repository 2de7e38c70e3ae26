"""`fixgw top`: a live full-screen view of the gateway, refreshed from its event stream.

What it shows comes from the events it subscribes to (orders, session, errors, and the
books of the symbols it watches). The session's numbers that no event carries (sequence
numbers, the throttle's queue, halted or not) come from one `status` request at start and
another after session and order events, at most twice a second: never on a timer, so an
idle gateway is not asked anything. Quitting (`q`, Ctrl-C) leaves the terminal as it was:
rich's screen mode restores the screen and the cursor, and the keyboard's mode is put back.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import select
import sys
import termios
import time
import tty
from collections import deque
from dataclasses import dataclass, field
from decimal import Decimal
from types import TracebackType
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.panel import Panel
from rich.text import Text

from fixgw.api.client import ApiError, Client, apply_market_data
from fixgw.cli.gateway_commands import client
from fixgw.cli.lines import event_line
from fixgw.cli.output import Clock
from fixgw.cli.render import (
    FILL_COLUMNS,
    ORDER_COLUMNS,
    Col,
    Kind,
    halted_text,
    label_grid,
    order_rows,
    seq_text,
    session_text,
    table_or,
)
from fixgw.domain import OrderStatus
from fixgw.marketdata.book import BookIntegrityError, OrderBook

EXIT_NO_TERMINAL = 2
STATUS_AT_MOST_EVERY_S = 0.5
KEY_WAIT_S = 0.1
"""How long one turn waits for an event before it looks at the keyboard."""

ORDERS_SHOWN = tuple(c for c in ORDER_COLUMNS if c.field != "order_id")
FILLS_SHOWN = tuple(c for c in FILL_COLUMNS if c.field not in ("order_id", "exec_id"))
"""The screen's tables leave out the exchange's ids, to fit a terminal's width."""
BOOK_COLUMNS = (
    Col("SYMBOL", "symbol"),
    Col("BID_SIZE", "bid_size", Kind.DECIMAL),
    Col("BID", "bid", Kind.DECIMAL),
    Col("ASK", "ask", Kind.DECIMAL),
    Col("ASK_SIZE", "ask_size", Kind.DECIMAL),
    Col("LAST_TRADE", "last_trade"),
    Col("NOTE", "note"),
)


@dataclass
class Board:
    """What the screen shows, kept up to date by the events."""

    status: dict[str, Any]
    fills_shown: int
    open_orders: dict[str, dict[str, Any]] = field(default_factory=dict)
    fills: deque[dict[str, Any]] = field(default_factory=deque)
    fill_ids: set[str] = field(default_factory=set)
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
        if fill["exec_id"] not in self.fill_ids:
            self.fill_ids.add(fill["exec_id"])
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
                self.take_fill(
                    {
                        **event,
                        "qty": event["last_qty"],
                        "price": event["last_px"],
                    }
                )
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


def load(gw: Client, fills_shown: int) -> Board:
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


def watch_books(gw: Client, board: Board, wanted: set[str]) -> bool:
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
        apply_market_data(book, {**reply, "type": "md.snapshot"})
        board.book_seq[symbol] = reply["seq"]
    return bool(new)


def render(board: Board, clock: Clock) -> RenderableType:
    status = board.status
    summary = [
        ("session", session_text(status)),
        ("seq nums", seq_text(status)),
        ("heartbeat rtt", Text("not reported by the gateway's status", style="dim")),
        ("throttle", Text(f"{status['throttle_queued']} queued")),
        ("halted", halted_text(status["halted"], clock)),
    ]
    if board.last_error is not None:
        summary.append(("last error", event_line(board.last_error, clock)))
    fills = list(reversed(board.fills))
    orders = order_rows(list(board.open_orders.values()))
    return Group(
        Text.assemble(
            ("fixgw top", "bold"), f"  venue {status['venue']['name']}  updated {clock.now()}"
        ),
        label_grid(summary),
        Panel(
            table_or("none", ORDERS_SHOWN, orders, clock),
            title=f"open orders ({len(orders)})",
            title_align="left",
        ),
        Panel(table_or("none", FILLS_SHOWN, fills, clock), title="last fills", title_align="left"),
        Panel(
            table_or("no symbols watched", BOOK_COLUMNS, board.book_rows(), clock),
            title="top of book",
            title_align="left",
        ),
        Text(f"q quits  ·  times {clock.zone}", style="dim"),
    )


class Keys:
    """The keyboard in cbreak mode (a key at a time, Ctrl-C still a signal) while the view
    runs; its mode restored on the way out."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.saved: list[Any] | None = None

    def __enter__(self) -> Keys:
        if os.isatty(self.fd):
            self.saved = termios.tcgetattr(self.fd)
            tty.setcbreak(self.fd)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.saved is not None:
            termios.tcsetattr(self.fd, termios.TCSADRAIN, self.saved)

    def quit_pressed(self) -> bool:
        if self.saved is None or not select.select([self.fd], [], [], 0)[0]:
            return False
        return b"q" in os.read(self.fd, 64).lower()


def _events_now(gw: Client, wait_s: float) -> list[dict[str, Any]]:
    """The events that have come, waiting at most `wait_s` for the first."""
    events: list[dict[str, Any]] = []
    with contextlib.suppress(TimeoutError):
        events.append(gw.next_event(wait_s))
        while True:  # what is already read, without waiting
            events.append(gw.next_event(0))
    return events


def cmd_top(args: argparse.Namespace) -> int:
    if not sys.stdout.isatty():
        print("fixgw top: needs a terminal; scripts read `fixgw events`", file=sys.stderr)
        return EXIT_NO_TERMINAL
    console = Console(highlight=False)
    clock = Clock(utc=args.utc)
    with (
        contextlib.suppress(KeyboardInterrupt),
        client(args) as gw,
        Keys(sys.stdin.fileno()) as keys,
    ):
        board = load(gw, args.fills)
        watch_books(gw, board, set(args.symbol or ()) or board.symbols())
        last_status = time.monotonic()
        with Live(
            render(board, clock),
            console=console,
            screen=True,
            auto_refresh=False,
            redirect_stdout=False,
            redirect_stderr=False,
        ) as live:
            size = console.size
            while not keys.quit_pressed():
                changed = False
                for event in _events_now(gw, KEY_WAIT_S):
                    board.apply(event)
                    changed = True
                due = time.monotonic() - last_status >= STATUS_AT_MOST_EVERY_S
                if board.status_due and due:
                    board.status, board.status_due = gw.status(), False
                    last_status = time.monotonic()
                    changed = True
                if not args.symbol and watch_books(gw, board, board.symbols()):
                    changed = True
                if changed or console.size != size:
                    size = console.size
                    live.update(render(board, clock), refresh=True)
    return 0
