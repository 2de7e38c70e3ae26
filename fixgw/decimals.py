"""Decimal text, one way for every door money comes in by: the API, the FIX bridge, config.

Python's `Decimal()` reads far more than a price: `1_000`, digits of any script (Arabic-
Indic, fullwidth), surrounding spaces, a sign, an exponent, `1.` and `.5`, `NaN`. Each is a
way for a typo, or a hostile client, to reach the exchange as something nobody wrote. fixgw
takes only ASCII digits with at most one decimal point, with digits on both sides of it.
"""

from __future__ import annotations

import re
from decimal import MAX_EMAX, MAX_PREC, MIN_EMIN, Context, Decimal
from typing import Any

_PLAIN = re.compile(r"[0-9]+(?:\.[0-9]+)?")
"""`[0-9]`, not `\\d`: `\\d` matches every script's digits."""

RULE = "ASCII digits with at most one '.', digits on both sides of it (e.g. 0.5, 30000)"
"""The rule in words, for error messages."""


def plain_decimal(text: str) -> Decimal:
    """`text` as a Decimal if it is a plain decimal (`RULE`); else ValueError, which does
    not repeat a long `text` whole."""
    if not _PLAIN.fullmatch(text):
        shown = text if len(text) <= 40 else f"{text[:40]}..."
        raise ValueError(f"not a plain decimal ({RULE}): {shown!r}")
    return Decimal(text)


def plain_decimal_text(value: Decimal) -> str:
    """A decimal as ASCII digits and at most one point, every digit of the value kept (not
    `str()`'s exponent form: `1E-8`, `1E+2`)."""
    return format(value, "f")


def trimmed_decimal_text(value: Decimal) -> str:
    """`plain_decimal_text` without zeros after the last digit that counts: for a number the
    gateway computed (a mid, a band's edge, a notional), `30000` rather than `30000.0`, every
    digit that counts kept."""
    text = plain_decimal_text(value)
    return text.rstrip("0").rstrip(".") if "." in text else text


EXACT = Context(prec=MAX_PREC, Emax=MAX_EMAX, Emin=MIN_EMIN)
"""Where money is added, subtracted and multiplied in full. Python's operators round each
result to the default context's 28 significant digits, and a quantity or price may have 33
(a venue's, any number): `EXACT.add(a, b)` is `a + b` with every digit kept. Not for a
quotient that may not end (`1 / 3`): at this precision that is a MemoryError."""


_ZERO = Decimal(0)
_ONE = Decimal(1)


def canonical_decimal(value: Decimal) -> Decimal:
    """`value` in the one form of its number: no zeros after the last digit that counts,
    no exponent above 0, no sign on a zero; so `29990.0`, `29990` and `29990.00` are all
    written `29990`, by `str()` and on the wire alike (`trimmed_decimal_text`'s text).
    Every digit that counts is kept (`EXACT`)."""
    if not value:
        return _ZERO
    value = value.normalize(EXACT)
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent > 0:
        return value.quantize(_ONE, context=EXACT)
    return value


class PlainDecimal(Decimal):
    """A Decimal a config file gave as plain decimal text: the type of every decimal config
    field (see `decode_hook`). Arithmetic on it gives plain Decimals."""


def decode_hook(kind: type[Any], value: Any) -> Any:
    """msgspec's `dec_hook` for config: reads `PlainDecimal` fields from their text (the
    YAML loader keeps every number's text), or from an int built in code."""
    if kind is PlainDecimal:
        if isinstance(value, str):
            return PlainDecimal(plain_decimal(value))
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return PlainDecimal(value)
        if isinstance(value, Decimal) and value.is_finite() and value >= 0:
            return PlainDecimal(value)
        raise ValueError(f"expected a decimal string ({RULE}), got {type(value).__name__}")
    raise NotImplementedError(f"no decoder for {kind!r}")
