"""Text for a person's terminal, with no library: spans of text, each in a style, written
with ANSI colour codes where the terminal shows colour (and `NO_COLOR` is not set), as plain
text anywhere else; and tables, lines whose columns are padded to their widest cell.

Tables and colours are all the plain commands need, so they need nothing installed beyond
fixgw; `fixgw top`, which needs a full-screen terminal, hands these same lines to rich (an
optional extra) under the same style names."""

from __future__ import annotations

import os
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
    printable (C0 and C1 controls, DEL, bidi overrides, line separators) written as Python
    escapes it (`\\n`, `\\x1b`, `\\u202e`). Halt reasons, the exchange's Text(58), ids: free
    text from others, which could otherwise forge a line or drive the terminal."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)


@dataclass(frozen=True, slots=True)
class Span:
    text: str
    """Shown `printable`: a line break or an escape code in it is escaped, never acted on."""
    style: str = ""
    """Words of SGR, `bold red`; empty: the terminal's own."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "text", printable(self.text))
        if unknown := [word for word in self.style.split() if word not in SGR]:
            raise ValueError(f"no such style: {unknown}")

    def ansi(self) -> str:
        if not self.style or not self.text:
            return self.text
        codes = ";".join(SGR[word] for word in self.style.split())
        return f"\x1b[{codes}m{self.text}{RESET}"


class Text:
    """One line of styled spans."""

    __slots__ = ("spans",)

    def __init__(self, text: str = "", style: str = "") -> None:
        self.spans: list[Span] = [Span(text, style)] if text else []

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
            self.spans.append(Span(part, style))
        return self

    @property
    def plain(self) -> str:
        return "".join(span.text for span in self.spans)

    def __str__(self) -> str:
        raise TypeError("a styled Text in a string loses its styles: Text.assemble it")

    def __len__(self) -> int:
        return len(self.plain)

    def padded(self, width: int, right: bool = False) -> Text:
        """Spaces to `width`: before the text (right-aligned) or after it."""
        fill = " " * (width - len(self))
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
    widths = [max(len(cell) for cell in column) for column in zip(headers, *rows, strict=True)]
    lines = []
    for cells in [[Text(h.plain, "bold") for h in headers], *rows]:
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
    width = max((len(label) for label, _ in lines), default=0)
    return [
        Text.assemble((label, "bold"), " " * (width - len(label)), GAP, value)
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
