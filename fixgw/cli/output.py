"""Who reads decides the form: a person at a terminal gets tables and short summaries, a
script (a pipe, a file, `--json`, `-o json`) gets the JSON lines fixgw has always printed,
byte for byte."""

from __future__ import annotations

import argparse
import os
import select
import signal
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any

from fixgw.cli.styled import Shown, shows_colour, write
from fixgw.wire import encode


def print_json(obj: Any) -> None:
    """One JSON line, as every command printed before there were tables."""
    sys.stdout.write(encode(obj).decode() + "\n")
    sys.stdout.flush()


def stdout_closed() -> bool:
    """Whether whoever read the output has gone (`fixgw orders | head -1`): a pipe whose
    reader closed it reports an error to its writer. A broken pipe to the gateway is not
    this."""
    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(ready & (select.POLLERR | select.POLLHUP) for _, ready in poller.poll(0))
    except (OSError, ValueError):  # no file descriptor behind sys.stdout
        return False


def end_as_a_closed_pipe_ends_a_unix_tool() -> int:
    """End without a word, killed by SIGPIPE as `cat` or `grep` is when its reader goes:
    the shell shows status 141, and nothing claims the gateway failed."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())  # what is left unwritten goes nowhere at exit
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGPIPE)
    return 128 + signal.SIGPIPE  # where a signal cannot end the process


class Form(StrEnum):
    TEXT = "text"
    """Tables, summaries and one line per event, for a person; colour where the terminal has
    it and `NO_COLOR` is not set."""
    JSON = "json"
    """The gateway's answers as JSON lines, for scripts."""


@dataclass(frozen=True)
class Clock:
    """How times are shown: the wire's UTC, or the machine's local time."""

    utc: bool
    today: date | None = None
    """The day whose events are shown without their date; None: the day it is now."""

    def moment(self, ts: str | datetime) -> datetime:
        at = ts if isinstance(ts, datetime) else datetime.fromisoformat(ts)
        return at.astimezone(UTC) if self.utc else at.astimezone()

    def now(self) -> str:
        return self.time(datetime.now(UTC))

    def time(self, ts: str | datetime) -> str:
        """`HH:MM:SS.mmm`: events, which a person reads as they come; one of another day
        (`events --since` reaching back) with its date before it."""
        at = self.moment(ts)
        if at.date() != (self.today or self.moment(datetime.now(UTC)).date()):
            return at.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
        return at.strftime("%H:%M:%S.%f")[:-3]

    def stamp(self, ts: str, zone: bool = False) -> str:
        """`YYYY-MM-DD HH:MM:SS.mmm`: fills and other records read later; `zone`: followed by
        the zone's name at that time (`zone_at`)."""
        shown = self.moment(ts).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
        return f"{shown} {self.zone_at(ts)}" if zone else shown

    @property
    def zone(self) -> str:
        """The zone's name now: a time of another date may be in another (`zone_at`)."""
        return "UTC" if self.utc else datetime.now().astimezone().strftime("%Z")

    def zone_at(self, ts: str) -> str:
        """The zone's name at `ts`, as `stamp` shows it: `CEST` for a July time in Paris,
        `CET` for a January one."""
        return self.moment(ts).strftime("%Z")


@dataclass(frozen=True)
class View:
    """How one command shows its answer."""

    render: Callable[[Any, Clock], Shown]
    """The answer as a person reads it."""
    items: str | None = None
    """The answer's field holding a list that is shown, and printed a JSON line per item
    (`orders`, `trades`); None: the answer is shown whole, as one JSON line."""


class Out:
    """Where a client command writes: JSON lines or text, as `form` says."""

    def __init__(self, form: Form, clock: Clock, colour: bool) -> None:
        self.form = form
        self.clock = clock
        self.colour = colour

    @classmethod
    def for_args(cls, args: argparse.Namespace) -> Out:
        chosen = getattr(args, "output", None)
        if chosen is None:
            chosen = Form.TEXT if sys.stdout.isatty() else Form.JSON
        return cls(Form(chosen), Clock(utc=getattr(args, "utc", False)), shows_colour(sys.stdout))

    @property
    def json(self) -> bool:
        return self.form is Form.JSON

    def show(self, answer: Any, view: View) -> None:
        if self.json:
            for item in answer if view.items else [answer]:
                print_json(item)
        else:
            self.print(view.render(answer, self.clock))

    def print(self, shown: Shown) -> None:
        """Lines as long as they are, never cut to the terminal's width: an amount elided to
        `289…` would be wrong, and a line the terminal wraps is still one line when copied."""
        write(sys.stdout, shown, self.colour)

    def records(self, items: Iterable[Any], render: Callable[[Any, Clock], Shown]) -> None:
        """A stream (events): a JSON line or a rendered line per item, as each comes."""
        for item in items:
            if self.json:
                print_json(item)
            else:
                self.print(render(item, self.clock))


def output_options(parser: argparse.ArgumentParser, times: bool = False) -> None:
    """`-o/--output`, `--json` and, where the command shows times, `--utc`."""
    parser.add_argument(
        "-o",
        "--output",
        choices=[form.value for form in Form],
        help="text: tables and summaries for a person; json: JSON lines for scripts "
        "(default: text on a terminal, json otherwise)",
    )
    parser.add_argument(
        "--json", dest="output", action="store_const", const=Form.JSON.value, help="-o json"
    )
    if times:
        parser.add_argument(
            "--utc", action="store_true", help="show times in UTC (default: local time)"
        )
