"""This gateway's fills, for `trades`: the last `TRADES_KEPT`, overall and per symbol, kept
as they happen and read back from the journal at start, so that asking costs nothing
however long the journal grows (the dialect has no trade history message)."""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Iterable, Iterator

from fixgw.domain import AnyEvent, OrderFilled, OrderPartiallyFilled
from fixgw.results import Fill

TRADES_KEPT = 10_000
"""The most a request may ask for."""


class Fills:
    def __init__(self, kept: int = TRADES_KEPT) -> None:
        self._kept = kept
        self._all: deque[Fill] = deque(maxlen=kept)
        self._of: dict[str, deque[Fill]] = {}

    def note(self, e: OrderPartiallyFilled | OrderFilled) -> None:
        fill = Fill(
            ts=e.ts,
            exec_id=e.exec_id,
            cl_ord_id=e.cl_ord_id,
            order_id=e.order_id,
            symbol=e.symbol,
            side=e.side,
            qty=e.last_qty,
            price=e.last_px,
        )
        self._all.append(fill)
        of_symbol = self._of.get(e.symbol)
        if of_symbol is None:
            of_symbol = self._of[e.symbol] = deque(maxlen=self._kept)
        of_symbol.append(fill)

    def noting(self, events: Iterable[AnyEvent]) -> Iterator[AnyEvent]:
        """`events`, passed through, each fill among them noted (a journal read at start)."""
        for event in events:
            if isinstance(event, OrderPartiallyFilled | OrderFilled):
                self.note(event)
            yield event

    def last(self, symbol: str | None, limit: int) -> list[Fill]:
        """Newest last."""
        fills = self._all if symbol is None else self._of.get(symbol, deque())
        return list(itertools.islice(fills, max(0, len(fills) - limit), None))
