"""The fuzz corpus: hypothesis strategies for each class of hostile or careless input.

Tests marked `fuzz` draw from these; they run `FIXGW_FUZZ_EXAMPLES` examples each (1,500
by default, as in CI; the connection fuzz a fifth of that), `make fuzz` 100,000:

- `odd_decimals`: quantities and prices that are not plain decimals (other scripts' digits,
  underscores, signs, exponents, spaces, `1.`), with plain ones among them;
- `hostile_json`: request lines nested deep, with huge numbers, odd decimals, unknown
  fields, fields named twice, wrong types, and bytes that are not JSON at all;
- `connection_acts`: what a TCP client does to its connection: partial lines, lines past
  the bounds, wrong tokens, requests before `hello`, hanging up (silence: the hello
  timeout's own test, tests/integration/test_tcp_listener.py).
"""

from __future__ import annotations

import json
import os
from typing import Any

from hypothesis import strategies as st

from fixgw.api.protocol import OPS

FUZZ_EXAMPLES = int(os.environ.get("FIXGW_FUZZ_EXAMPLES", "1500"))

# ---------------------------------------------------------------- odd decimals

plain_decimals = st.from_regex(r"[0-9]{1,20}(\.[0-9]{1,20})?", fullmatch=True)

_odd_characters = st.one_of(
    st.characters(categories=["Nd"]),  # every script's digits: Arabic-Indic, fullwidth, ...
    st.characters(categories=["Zs", "Cc"]),  # spaces, tabs, newlines, NUL
    st.characters(categories=["No", "Nl"]),  # fractions, superscripts, Roman numerals
    st.sampled_from(list("0123456789._+-eE,'xXnN")),
)
odd_decimals = st.one_of(
    plain_decimals,
    st.text(_odd_characters, min_size=0, max_size=24),
    st.builds(  # a plain decimal with one odd thing put in, taken out or added at an end
        lambda digits, at, odd: digits[:at] + odd + digits[at:],
        plain_decimals,
        st.integers(0, 40),
        st.sampled_from(["_", " ", "+", "-", ".", "e5", "E-3", "\u0660", "\uff10", "\n", ""]),
    ),
    st.sampled_from(["1.", ".5", "Infinity", "-Infinity", "NaN", "sNaN", "1e999999", "0", ""]),
)

# ---------------------------------------------------------------- hostile JSON

_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.integers().map(lambda n: n * 10**300),  # integers far past 64 bits
    st.floats(allow_nan=False),
    st.text(max_size=30),
    odd_decimals,
)
_values = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=8,
)
_field_names = st.sampled_from(
    [
        "symbol",
        "side",
        "type",
        "qty",
        "price",
        "cl_ord_id",
        "order_id",
        "cancel_cl_ord_id",
        "topics",
        "since",
        "depth",
        "what",
        "all",
        "from_exchange",
        "limit",
        "token",
        "name",
        "reason",
        "x",  # unknown fields
        "prcie",
        "",
    ]
)
requests = st.fixed_dictionaries(
    {"id": st.integers(0, 10**6), "op": st.sampled_from([*OPS, "nope", ""])},
    optional={k: _values for k in ["symbol", "qty", "price", "side", "type", "topics"]},
).flatmap(
    lambda base: st.dictionaries(_field_names, _values, max_size=4).map(
        lambda extra: {**extra, **base}
    )
)
orders_with_odd_decimals = st.fixed_dictionaries(
    {
        "id": st.integers(0, 10**6),
        "op": st.just("new_order"),
        "symbol": st.just("LTC/USD"),
        "side": st.sampled_from(["buy", "sell"]),
        "type": st.just("limit"),
        "qty": odd_decimals,
        "price": odd_decimals,
        "cl_ord_id": st.from_regex(r"fz[a-z0-9]{10}", fullmatch=True),
    }
)


def _nested(depth: int, inner: str) -> bytes:
    return ("[" * depth + inner + "]" * depth).encode()


deep_nesting = st.one_of(
    st.integers(900, 2000).map(lambda d: _nested(d, "")),
    st.integers(900, 1300).map(
        lambda d: b'{"id": 1, "op": "status", "x": ' + _nested(d, "1") + b"}"
    ),
    st.integers(600, 1000).map(lambda d: ('{"a":' * d + "1" + "}" * d).encode()),
)
huge_numbers = st.one_of(
    st.integers(300, 3000).map(lambda n: b'{"id": ' + b"9" * n + b', "op": "status"}'),
    st.integers(1, 400).map(lambda e: b'{"id": 1e%d, "op": "status"}' % (e * 10)),
    st.integers(20, 1000).map(
        lambda n: b'{"id": 1, "op": "subscribe", "topics": ["orders"], "since": ' + b"9" * n + b"}"
    ),
    st.integers(20, 1000).map(lambda n: b'{"id": 1, "op": "trades", "limit": ' + b"9" * n + b"}"),
)


def _line(obj: Any) -> bytes:
    return json.dumps(obj).encode()


new_orders = st.fixed_dictionaries(
    {
        "op": st.just("new_order"),
        "symbol": st.sampled_from(["LTC/USD", "XYZ/USD"]),
        "side": st.sampled_from(["buy", "sell", "hold"]),
        "type": st.sampled_from(["limit", "market"]),
        "qty": st.one_of(plain_decimals, _values),
    },
    optional={
        "id": st.one_of(st.integers(), st.text(max_size=4), st.booleans(), st.none(), _values),
        "price": st.one_of(plain_decimals, _values),
        "cl_ord_id": st.one_of(st.from_regex(r"[A-Za-z0-9.:-]{1,70}", fullmatch=True), _values),
        "time_in_force": st.sampled_from(["day", "gtc", "ioc", "fok", "GTC"]),
        "prcie": _values,
    },
)
new_order_lines = new_orders.map(_line)
"""`new_order` lines, most of them valid, each field now and then wrong (the order path's
one-pass reading, `api.protocol.parse_line`, against the long way)."""


def _named_twice(request: dict[str, Any], which: int, value: Any) -> bytes:
    key = list(request)[which % len(request)]
    again = b", %s: %s}" % (json.dumps(key).encode(), json.dumps(value).encode())
    return _line(request)[:-1] + again


repeated_keys = st.builds(
    _named_twice,
    st.one_of(requests, orders_with_odd_decimals, new_orders),
    st.integers(0, 20),
    st.one_of(_scalars, st.sampled_from(["new_order", "halt", "status", "1", "2"])),
)
"""Request lines that name one of their fields a second time (msgspec keeps the last)."""

hostile_json = st.one_of(
    requests.map(_line),
    repeated_keys,
    orders_with_odd_decimals.map(_line),
    deep_nesting,
    huge_numbers,
    st.binary(max_size=200).filter(lambda b: b"\n" not in b and b.strip()),
)
"""Single request lines (no newline; each within the test stacks' 4,096-byte line bound)."""

# ---------------------------------------------------------------- hostile connections

connection_acts = st.lists(
    st.one_of(
        st.tuples(st.just("send"), hostile_json),
        st.tuples(st.just("partial"), st.binary(min_size=1, max_size=6000)),
        st.tuples(st.just("hello"), st.text(max_size=60)),  # a token, most likely wrong
        st.tuples(st.just("status"), st.none()),  # a request before any hello
        st.tuples(st.just("close"), st.none()),
    ),
    min_size=1,
    max_size=6,
)
"""What one TCP client does to its connection, in order (see test_hostile_clients)."""
