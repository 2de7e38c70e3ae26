"""`fixgw top`: a live full-screen view of the gateway, redrawn as its events come (board.py
keeps what it shows), never on a timer: an idle gateway is asked nothing.

rich (the `tui` extra: `pip install 'fixgw[tui]'`) draws it on the terminal's alternate
screen; the lines inside are the plain commands' own (styled.py), handed to rich by style
name. Quitting (`q`, Ctrl-C) leaves the terminal as it was: rich puts back the screen and the
cursor, the keyboard's mode is restored, and Ctrl-C is caught as a request to quit rather
than raised wherever the code happens to be, so it cannot cut the restoring short."""

from __future__ import annotations

import argparse
import contextlib
import os
import select
import signal
import sys
import termios
import time
import tty
from types import FrameType, TracebackType
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.panel import Panel
from rich.text import Text as RichText

from fixgw.api.client import GatewayClient
from fixgw.cli.board import BOOK_COLUMNS, Board, load, watch_books
from fixgw.cli.connect import connect
from fixgw.cli.lines import event_line
from fixgw.cli.output import Clock
from fixgw.cli.render import (
    FILL_COLUMNS,
    ORDER_COLUMNS,
    halted_text,
    heartbeat_text,
    order_rows,
    seq_text,
    session_text,
    table_or,
)
from fixgw.cli.styled import Shown, Text, label_grid, lines_of

STATUS_AT_MOST_EVERY_S = 0.5
KEY_WAIT_S = 0.1
"""How long one turn waits for an event before it looks at the keyboard."""

ORDERS_SHOWN = tuple(c for c in ORDER_COLUMNS if c.field != "order_id")
FILLS_SHOWN = tuple(c for c in FILL_COLUMNS if c.field not in ("order_id", "exec_id"))
"""The screen's tables leave out the exchange's ids, to fit a terminal's width."""


def rich_text(shown: Shown) -> RichText:
    """The plain commands' lines as rich draws them: the same text, the same style names;
    cut at the panel's edge, never wrapped."""
    out = RichText(no_wrap=True, overflow="crop")
    for n, line in enumerate(lines_of(shown)):
        if n:
            out.append("\n")
        for span in line.spans:
            out.append(span.text, style=span.style or None)
    return out


def render(board: Board, clock: Clock) -> RenderableType:
    status = board.status
    summary = [
        ("session", session_text(status)),
        ("seq nums", seq_text(status)),
        ("heartbeat rtt", heartbeat_text(status)),
        ("throttle", Text(f"{status['throttle_queued']} queued")),
        ("halted", halted_text(status["halted"], clock)),
    ]
    if board.last_error is not None:
        summary.append(("last error", event_line(board.last_error, clock)))
    fills = list(reversed(board.fills))
    orders = order_rows(list(board.open_orders.values()))

    def panel(title: str, shown: Shown) -> Panel:
        return Panel(rich_text(shown), title=title, title_align="left")

    return Group(
        rich_text(
            Text.assemble(
                ("fixgw top", "bold"), f"  venue {status['venue']['name']}  updated {clock.now()}"
            )
        ),
        rich_text(label_grid(summary)),
        panel(f"open orders ({len(orders)})", table_or("none", ORDERS_SHOWN, orders, clock)),
        panel("last fills", table_or("none", FILLS_SHOWN, fills, clock)),
        panel(
            "top of book",
            table_or("no symbols watched", BOOK_COLUMNS, board.book_rows(), clock),
        ),
        rich_text(Text(f"q quits  ·  times {clock.zone}", style="dim")),
    )


class Keyboard:
    """The keyboard while the view runs: a key at a time without echo (cbreak), `q` or
    Ctrl-C asking to quit; its mode and the SIGINT handler put back on the way out."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.saved_modes: list[Any] | None = None
        self.saved_handler: Any = None
        self.interrupted = False

    def __enter__(self) -> Keyboard:
        self.saved_handler = signal.signal(signal.SIGINT, self._interrupt)
        if os.isatty(self.fd):
            self.saved_modes = termios.tcgetattr(self.fd)
            tty.setcbreak(self.fd)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.saved_modes is not None:
            termios.tcsetattr(self.fd, termios.TCSADRAIN, self.saved_modes)
        signal.signal(signal.SIGINT, self.saved_handler)

    def _interrupt(self, signum: int, frame: FrameType | None) -> None:
        self.interrupted = True

    def quit_asked(self) -> bool:
        if self.interrupted:
            return True
        if self.saved_modes is None or not select.select([self.fd], [], [], 0)[0]:
            return False
        return b"q" in os.read(self.fd, 64).lower()


def _events_now(gw: GatewayClient, wait_s: float) -> list[dict[str, Any]]:
    """The events that have come, waiting at most `wait_s` for the first."""
    events: list[dict[str, Any]] = []
    with contextlib.suppress(TimeoutError):
        events.append(gw.next_event(wait_s))
        while True:  # what is already read, without waiting
            events.append(gw.next_event(0))
    return events


def show(gw: GatewayClient, board: Board, args: argparse.Namespace, keyboard: Keyboard) -> None:
    """Until asked to quit: each turn takes the events that came, asks the status again if
    they changed it (at most every STATUS_AT_MOST_EVERY_S), and redraws if anything
    changed, or the terminal's size did."""
    console = Console(highlight=False)
    clock = Clock(utc=args.utc)
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
        while not keyboard.quit_asked():
            changed = False
            for event in _events_now(gw, KEY_WAIT_S):
                board.apply(event)
                changed = True
            if board.status_due and time.monotonic() - last_status >= STATUS_AT_MOST_EVERY_S:
                board.status, board.status_due = gw.status(), False
                last_status = time.monotonic()
                changed = True
            if not args.symbol and watch_books(gw, board, board.symbols()):
                changed = True
            if changed or console.size != size:
                size = console.size
                live.update(render(board, clock), refresh=True)


def cmd_top(args: argparse.Namespace) -> int:
    with contextlib.suppress(KeyboardInterrupt), connect(args) as gw:
        board = load(gw, args.fills)
        watch_books(gw, board, set(args.symbol or ()) or board.symbols())
        with Keyboard(sys.stdin.fileno()) as keyboard:
            show(gw, board, args, keyboard)
    return 0
