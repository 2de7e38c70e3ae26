"""Where in an order's cum_qty the quantity filled at no price lies (`Order.unpriced_ranges`).

A venue's execution fills the span of cum_qty from its report's CumQty less its LastQty up
to its CumQty; spans of one order never overlap. A report that showed cum_qty rise at no
price leaves that span unpriced, no fill told for it. A late fill report is of that
quantity only if its own span lies in it: a span the gateway told a fill for (a gap fill it
inferred, say) is counted already, however much is still unpriced elsewhere.

Spans are (low, high] pairs, lowest first, never touching.

Of those spans, the ones the order's avg_px leaves out (`Order.unvalued_ranges`) are kept the
same way: the quantity whose price, and value, nothing the venue said gives.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Final

from fixgw.decimals import EXACT

Ranges = tuple[tuple[Decimal, Decimal], ...]

NONE: Final[Ranges] = ()


def total(ranges: Ranges) -> Decimal:
    return sum((EXACT.subtract(high, low) for low, high in ranges), Decimal(0))


def added(ranges: Ranges, low: Decimal, high: Decimal) -> Ranges:
    """`ranges` with (low, high] unpriced too."""
    if high <= low:
        return ranges
    merged: list[tuple[Decimal, Decimal]] = []
    for lo, hi in sorted((*ranges, (low, high))):
        if merged and lo <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(hi, merged[-1][1]))
        else:
            merged.append((lo, hi))
    return tuple(merged)


def holds(ranges: Ranges, low: Decimal, high: Decimal) -> bool:
    """(low, high] lies wholly in one unpriced span."""
    return low < high and any(lo <= low and high <= hi for lo, hi in ranges)


def removed(ranges: Ranges, low: Decimal, high: Decimal) -> Ranges:
    """`ranges` without (low, high]: its fill told."""
    kept: list[tuple[Decimal, Decimal]] = []
    for lo, hi in ranges:
        if high <= lo or hi <= low:
            kept.append((lo, hi))
            continue
        if lo < low:
            kept.append((lo, low))
        if high < hi:
            kept.append((high, hi))
    return tuple(kept)


def below(ranges: Ranges, top: Decimal) -> Ranges:
    """`ranges` cut at `top`: cum_qty fell to it (quantity taken back by a status answer)."""
    return removed(ranges, top, max((hi for _, hi in ranges), default=top))


def removed_lowest(ranges: Ranges, qty: Decimal) -> Ranges:
    """`ranges` without `qty` taken from the lowest spans up: a fill told for unpriced
    quantity, where where it lay is not known (read back from a journal line written before
    fill events carried their report's CumQty, `report_cum_qty`)."""
    kept: list[tuple[Decimal, Decimal]] = []
    for lo, hi in ranges:
        if qty <= 0:
            kept.append((lo, hi))
            continue
        taken = min(qty, EXACT.subtract(hi, lo))
        qty = EXACT.subtract(qty, taken)
        if EXACT.add(lo, taken) < hi:
            kept.append((EXACT.add(lo, taken), hi))
    return tuple(kept)


def within(ranges: Ranges, bounds: Ranges) -> Ranges:
    """What of `ranges` lies in `bounds`."""
    kept: list[tuple[Decimal, Decimal]] = []
    for lo, hi in ranges:
        for low, high in bounds:
            if max(lo, low) < min(hi, high):
                kept.append((max(lo, low), min(hi, high)))
    return tuple(kept)


def averaged(avg_px: Decimal, qty: Decimal, px: Decimal, more: Decimal) -> Decimal:
    """The average of `qty` at `avg_px` and `more` at `px`, from their exact values: only
    the quotient is rounded. `avg_px` where there is no quantity."""
    total_qty = EXACT.add(qty, more)
    if total_qty <= 0:
        return avg_px
    return EXACT.add(EXACT.multiply(avg_px, qty), EXACT.multiply(px, more)) / total_qty
