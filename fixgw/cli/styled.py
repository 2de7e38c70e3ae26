"""Text for a person's terminal, with no library: spans of text, each in a style, written
with ANSI colour codes where the terminal shows colour (and `NO_COLOR` is not set), as plain
text anywhere else; and tables, lines whose columns are padded to their widest cell.

Tables and colours are all the plain commands need, so they need nothing installed beyond
fixgw; `fixgw top`, which needs a full-screen terminal, hands these same lines to rich (an
optional extra) under the same style names."""

from __future__ import annotations

import os
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TextIO

SGR: dict[str, str] = {
    "bold": "1",
    "dim": "2",
    "red": "31",
    "green": "32",
    "yellow": "33",
    "magenta": "35",
    "cyan": "36",
    "bright_green": "92",
}
"""Every style the command line uses, by the name rich knows it by: its SGR code."""
RESET = "\x1b[0m"
GAP = "  "
"""Between the columns of a table, as kubectl and docker print."""


def printable(text: str) -> str:
    """`text` as a terminal shows it and acts on none of it: a character that is not
    printable (C0 and C1 controls, DEL, bidi overrides and other format characters, line and
    paragraph separators) written as Python escapes it (`\\n`, `\\x1b`, `\\u202e`), and a
    backslash as `\\\\`, so that an escape shown is never one the text spelled out. Spaces
    (no-break, ideographic) are kept: they move no cursor. Halt reasons, the exchange's
    Text(58), ids: free text from others, which could otherwise forge a line or drive the
    terminal. Escape each raw text once: escaping escaped text doubles its backslashes."""
    if text.isprintable() and "\\" not in text:
        return text
    return "".join(_escaped(c) for c in text)


def _escaped(c: str) -> str:
    if c != "\\" and (c.isprintable() or unicodedata.category(c) == "Zs"):
        return c
    return c.encode("unicode_escape").decode()


ZERO_WIDTH = frozenset({"Mn", "Me"})
"""Combining marks: drawn over the character before them."""


def display_width(text: str) -> int:
    """The terminal columns `text` takes: 2 for a wide or fullwidth East Asian character
    (`比`, a fullwidth `A`), 0 for a combining mark, 1 for any other (it is `printable` already)."""
    return len(text) if text.isascii() else sum(_columns(c) for c in text)


def _columns(c: str) -> int:
    if unicodedata.category(c) in ZERO_WIDTH:
        return 0
    return 2 if unicodedata.east_asian_width(c) in ("W", "F") else 1


@dataclass(frozen=True, slots=True)
class Span:
    text: str
    """As shown: `printable` already (Text escapes what it is given), never escaped again."""
    style: str = ""
    """Words of SGR, `bold red`; empty: the terminal's own."""

    def __post_init__(self) -> None:
        if unknown := [word for word in self.style.split() if word not in SGR]:
            raise ValueError(f"no such style: {unknown}")

    def ansi(self) -> str:
        if not self.style or not self.text:
            return self.text
        codes = ";".join(SGR[word] for word in self.style.split())
        return f"\x1b[{codes}m{self.text}{RESET}"


class Text:
    """One line of styled spans. A string given to it is raw text, shown `printable`; a
    Text given to it is shown as it is."""

    __slots__ = ("spans",)

    def __init__(self, text: str = "", style: str = "") -> None:
        self.spans: list[Span] = [Span(printable(text), style)] if text else []

    @classmethod
    def assemble(cls, *parts: str | tuple[str, str] | Text) -> Text:
        """Strings in the terminal's style, `(text, style)` pairs, and other lines, in order."""
        line = cls()
        for part in parts:
            if isinstance(part, tuple):
                line.append(*part)
            else:
                line.append(part)
        return line

    def append(self, part: str | Text, style: str = "") -> Text:
        if isinstance(part, Text):
            self.spans += part.spans
        elif part:
            self.spans.append(Span(printable(part), style))
        return self

    @property
    def plain(self) -> str:
        return "".join(span.text for span in self.spans)

    def __str__(self) -> str:
        raise TypeError("a styled Text in a string loses its styles: Text.assemble it")

    @property
    def width(self) -> int:
        """The terminal columns it takes, which a table pads to."""
        return display_width(self.plain)

    def in_style(self, style: str) -> Text:
        """The same text, all of it in `style`."""
        line = Text()
        line.spans = [Span(span.text, style) for span in self.spans]
        return line

    def padded(self, width: int, right: bool = False) -> Text:
        """Spaces to `width`: before the text (right-aligned) or after it."""
        fill = " " * (width - self.width)
        return Text.assemble(fill, self) if right else Text.assemble(self, fill)

    def ansi(self) -> str:
        return "".join(span.ansi() for span in self.spans)


Shown = Text | Sequence[Text]
"""What a command shows: a line, or lines."""


def lines_of(shown: Shown) -> list[Text]:
    return [shown] if isinstance(shown, Text) else list(shown)


def table(
    headers: Sequence[Text], rows: Sequence[Sequence[Text]], right: Sequence[bool]
) -> list[Text]:
    """The header (bold) and the rows, each column as wide as its widest cell; a column
    whose `right` is set is aligned to the right; a last column on the left is not padded."""
    widths = [max(cell.width for cell in column) for column in zip(headers, *rows, strict=True)]
    lines = []
    for cells in [[h.in_style("bold") for h in headers], *rows]:
        line = Text()
        for n, (cell, width, to_right) in enumerate(zip(cells, widths, right, strict=True)):
            last = n == len(cells) - 1
            line.append(cell.padded(width, to_right) if not last or to_right else cell)
            if not last:
                line.append(GAP)
        lines.append(line)
    return lines


def label_grid(lines: Sequence[tuple[str, Text]]) -> list[Text]:
    """`label  value` lines, the labels (bold) in a column: as `systemctl status` prints."""
    widest = max((display_width(label) for label, _ in lines), default=0)
    return [
        Text.assemble((label, "bold"), " " * (widest - display_width(label)), GAP, value)
        for label, value in lines
    ]


def shows_colour(stream: TextIO) -> bool:
    """A terminal, with `NO_COLOR` not set (https://no-color.org) and not a dumb one."""
    return (
        stream.isatty() and not os.environ.get("NO_COLOR") and os.environ.get("TERM", "") != "dumb"
    )


def write(stream: TextIO, shown: Shown, colour: bool) -> None:
    """Each line, coloured or plain; flushed, as a person or a pipe waits for it."""
    for line in lines_of(shown):
        stream.write((line.ansi() if colour else line.plain) + "\n")
    stream.flush()
