"""Quantities and prices from clients: only plain decimal text passes `positive_decimal`, and
what does can be sent in FIX and checked against the risk limits without blowing up."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fixgw.api.protocol import (
    ErrorCode,
    MdSubscribe,
    MdUnsubscribe,
    Request,
    _checked_decimal,
    _parse_any,
    md_stream_of,
    md_topics,
    parse_line,
    positive_decimal,
    reply_error,
    reply_ok,
)
from fixgw.decimals import plain_decimal
from fixgw.errors import RequestError
from fixgw.venues.okcoin.outbound import fix_decimal
from tests.fuzz import (
    FUZZ_EXAMPLES,
    hostile_json,
    new_order_lines,
    odd_decimals,
    repeated_keys,
)


@pytest.mark.parametrize(
    "value",
    [
        "0.5",
        "30000.10",
        "100000000000000",
        "999999999999999.999999999999999999",
        "0.000000000000000001",
        "007",
    ],
)
def test_quantities_and_prices_within_the_bounds_are_taken_as_given(value: str) -> None:
    assert positive_decimal(value, "qty", ErrorCode.INVALID_QTY) == Decimal(value)


@pytest.mark.parametrize(
    "value",
    [
        "1000000000000000",
        "0.0000000000000000001",
        "1.0000000000000000000",  # 19 decimal places, if only zeros
        "1" * 3000,
    ],
)
def test_a_value_out_of_bounds_is_refused_naming_the_limit(value: str) -> None:
    with pytest.raises(RequestError) as refused:
        positive_decimal(value, "price", ErrorCode.INVALID_PRICE)
    assert refused.value.code == ErrorCode.INVALID_PRICE
    assert "below 1e15 with at most 18 decimal places" in refused.value.message
    assert len(refused.value.message) < 200  # the value is not echoed whole


def test_the_largest_and_finest_values_fit_in_fix_and_in_a_notional() -> None:
    largest = positive_decimal("999999999999999.999999999999999999", "qty", ErrorCode.INVALID_QTY)
    finest = positive_decimal("0.000000000000000001", "qty", ErrorCode.INVALID_QTY)
    assert len(fix_decimal(largest)) == 34 and fix_decimal(finest) == "0.000000000000000001"
    # the default context traps Overflow: 1e999999 times a price raised it in the risk check
    assert largest * largest <= Decimal("1e30")
    assert finest * finest > 0


NOT_PLAIN = [
    "1_000",  # was sent as 38=1000
    "\u0661\u0662\u0663\u0664\u0665",  # Arabic-Indic digits: was sent as 38=12345
    "\uff11\uff12",  # fullwidth digits
    "\u09e7",  # Bengali one
    " 1 ",
    "1 ",
    "\t1",
    "1\n",
    "+1",
    "-1",
    "1.",
    ".5",
    "1..5",
    "1.2.3",
    "1e14",
    "1E-18",
    "1e999999",
    "Infinity",
    "NaN",
    "sNaN",
    "0x10",
    "",
    "1,5",
    "\u00bd",
]


@pytest.mark.parametrize("value", NOT_PLAIN)
def test_only_plain_decimal_text_is_a_quantity_or_price(value: str) -> None:
    with pytest.raises(RequestError) as refused:
        positive_decimal(value, "qty", ErrorCode.INVALID_QTY)
    assert refused.value.code == ErrorCode.INVALID_QTY
    assert "ASCII digits with at most one '.'" in refused.value.message


@pytest.mark.fuzz
@settings(max_examples=FUZZ_EXAMPLES, deadline=None, derandomize=True)
@given(text=odd_decimals)
def test_whatever_the_text_a_decimal_is_refused_or_exactly_the_digits_written(text: str) -> None:
    """The fuzz corpus of odd decimals: nothing passes but ASCII digits and one '.'."""
    try:
        value = plain_decimal(text)
    except ValueError:
        assert not re.fullmatch(r"[0-9]+(\.[0-9]+)?", text, re.ASCII)
        return
    assert re.fullmatch(r"[0-9]+(\.[0-9]+)?", text, re.ASCII)
    assert str(value) == text or value == Decimal(text)


@pytest.mark.fuzz
@settings(max_examples=FUZZ_EXAMPLES, deadline=None, derandomize=True)
@given(text=odd_decimals)
def test_the_quick_reading_of_a_quantity_agrees_with_the_long_one(text: str) -> None:
    """`positive_decimal` reads text that passes without the long way's checks: what it
    takes, the long way takes as the same value; what it refuses, with the same words."""

    def outcome(read: Callable[[str, str, ErrorCode], Decimal]) -> Decimal | str:
        try:
            return read(text, "qty", ErrorCode.INVALID_QTY)
        except RequestError as refused:
            return refused.message

    quick, checked = outcome(positive_decimal), outcome(_checked_decimal)
    assert quick == checked
    if isinstance(quick, Decimal):
        assert quick.as_tuple() == checked.as_tuple()  # type: ignore[union-attr]


@pytest.mark.fuzz
@settings(max_examples=FUZZ_EXAMPLES, deadline=None, derandomize=True)
@given(line=st.one_of(hostile_json, new_order_lines, repeated_keys))
def test_a_new_order_read_in_one_pass_is_what_the_long_way_reads(line: bytes) -> None:
    """`parse_line` reads a `new_order` line straight into the request; whatever the line, it
    answers what the long way does: the same id and request, or the same refusal."""

    def outcome(parse: Callable[[bytes], tuple[Any, Request]]) -> tuple[Any, ...]:
        try:
            request_id, request = parse(line)
        except RequestError as refused:
            return ("refused", refused.code, refused.message)
        fields = msgspec.structs.asdict(request)
        fields.pop("op", None), fields.pop("id", None)
        return (request_id, type(request).__mro__[-3], fields)

    assert outcome(parse_line) == outcome(_parse_any)


@pytest.mark.parametrize("field", ["cl_ord_id", "cancel_cl_ord_id"])
def test_none_is_not_an_id_a_client_may_choose(field: str) -> None:
    """A venue's report about an order it does not know says ClOrdID NONE: an order of that
    name would take it for its own."""
    line = json.dumps({"id": 1, "op": "cancel_order", "cl_ord_id": "A-1", field: "NONE"}).encode()
    with pytest.raises(RequestError) as refused:
        parse_line(line)
    assert refused.value.code == ErrorCode.INVALID_FIELD and field in refused.value.message
    _, request = parse_line(line.replace(b'"NONE"', b'"NONE-1"'))
    assert getattr(request, field) == "NONE-1"


ORDER_FIELDS = b'"symbol": "LTC/USD", "side": "buy", "type": "limit", "qty": "1"'


@pytest.mark.parametrize(
    ("line", "key", "request_id"),
    [
        (b'{"id": 1, "op": "status", "op": "halt"}', "op", 1),  # was run as `halt`
        (b'{"id": 2, "op": "halt", "op": "status"}', "op", 2),
        (
            b'{"id": 3, "op": "new_order", %s, "price": "1", "price": "2"}' % ORDER_FIELDS,
            "price",
            3,
        ),
        (
            b'{"id": 4, "op": "new_order", "op": "new_order", %s, "price": "1"}' % ORDER_FIELDS,
            "op",
            4,
        ),
        (b'{"id": 5, "op": "halt", "op": "new_order", %s, "price": "1"}' % ORDER_FIELDS, "op", 5),
        (
            b'{"id": 6, "op": "new_order", %s, "price": "1", "pr\\u0069ce": "2"}' % ORDER_FIELDS,
            "price",
            6,
        ),
        (b'{"id": 7, "id": 8, "op": "status"}', "id", None),
        (b'{"id": 9, "op": "trades", "x": {"a": 1, "a": 2}}', "a", 9),
        (
            b'{"id": 10, "op": "cancel_order", "cl_ord_id": "a:b", "cl_ord_id": "c"}',
            "cl_ord_id",
            10,
        ),
    ],
)
def test_a_request_that_names_a_field_twice_is_refused_naming_it(
    line: bytes, key: str, request_id: Any
) -> None:
    """msgspec keeps a repeated key's last value: `status` with a second `op` ran `halt`."""
    for parse in (parse_line, _parse_any):
        with pytest.raises(RequestError) as refused:
            parse(line)
        assert refused.value.code == ErrorCode.INVALID_REQUEST
        assert f"`{key}` is given more than once" in refused.value.message
        assert getattr(refused.value, "request_id", None) == request_id


@pytest.mark.parametrize(
    "line",
    [
        b'{"id": 1, "op": "new_order", %s, "price": "1", "cl_ord_id": "a:b:c"}' % ORDER_FIELDS,
        b'{"id": "x:1", "op": "new_order", %s, "price": null}' % ORDER_FIELDS,
        b'{"id": 2, "op": "subscribe", "topics": ["md:BTC/USD", "md:BTC/USD:trades"]}',
        b'{"id": 3, "op": "new_order", "symbol": "LTC/USD", "side": "buy", "type": "market", '
        b'"qty": "1"}',
    ],
)
def test_a_colon_in_a_string_or_a_null_field_is_no_repeat(line: bytes) -> None:
    """Lines with more `:` than fields are read again, key by key, and pass when no key
    is named twice."""
    fields = json.loads(line)
    request_id, request = parse_line(line)
    assert request_id == fields.pop("id")
    assert {k: getattr(request, k) for k in fields if k != "op"} == {
        k: v for k, v in fields.items() if k != "op"
    }


@pytest.mark.fuzz
@settings(max_examples=FUZZ_EXAMPLES, deadline=None, derandomize=True)
@given(line=repeated_keys)
def test_whatever_the_request_a_field_named_twice_is_refused(line: bytes) -> None:
    with pytest.raises(RequestError) as refused:
        parse_line(line)
    if refused.value.code != ErrorCode.INVALID_JSON:  # a huge number, an infinity
        assert refused.value.code == ErrorCode.INVALID_REQUEST, refused.value.message
        assert "is given more than once" in refused.value.message


REQUESTS = [b'"op": "status"', b'"op": "new_order", %s, "price": "1"' % ORDER_FIELDS]


@pytest.mark.parametrize("request_id", [-2, "7", "", 12345678901234567890123])
@pytest.mark.parametrize("fields", REQUESTS)
def test_an_id_that_is_a_whole_number_or_a_string_is_taken_as_given(
    request_id: Any, fields: bytes
) -> None:
    line = b'{"id": %s, %s}' % (json.dumps(request_id).encode(), fields)
    for parse in (parse_line, _parse_any):
        taken, _ = parse(line)
        assert taken == request_id and type(taken) is type(request_id)


@pytest.mark.parametrize(
    "request_id",
    [
        *(b"1.5", b"0.0", b"1e300", b"0.1", b"0.10000000000000001", b"9007199254740993.5"),
        *(b"1E2", b"-0", b"0", b"-0.0"),
    ],
)
@pytest.mark.parametrize("fields", REQUESTS)
def test_an_id_with_a_fraction_or_an_exponent_is_echoed_as_sent(
    request_id: bytes, fields: bytes
) -> None:
    """It went through a binary float: `0.10000000000000001` came back as `0.1`, the id of
    another request, and `1E2` as `100.0`; a client reading numbers as decimals could not
    tell which request a reply answers. `-0` came back `0`."""
    line = b'{"id": %s, %s}' % (request_id, fields)
    for parse in (parse_line, _parse_any):
        taken, _ = parse(line)
        assert reply_ok(taken, {}).startswith(b'{"id":%s,"ok":true' % request_id)
        with pytest.raises(RequestError) as refused:
            parse(line.replace(b'"op": "', b'"op": "no_'))
        refusal = reply_error(getattr(refused.value, "request_id", None), "unknown_op", "no")
        assert refusal.startswith(b'{"id":%s,"ok":false' % request_id)


@pytest.mark.parametrize("request_id", [b"true", b"false", b"null", b"{}", b'{"a": 1}', b"[1]"])
@pytest.mark.parametrize("fields", REQUESTS)
def test_an_id_that_is_neither_a_number_nor_a_string_is_refused(
    request_id: bytes, fields: bytes
) -> None:
    """`true` was taken (Python's bool is an int) and 1.5 refused."""
    line = b'{"id": %s, %s}' % (request_id, fields)
    for parse in (parse_line, _parse_any):
        with pytest.raises(RequestError) as refused:
            parse(line)
        assert refused.value.code == ErrorCode.INVALID_REQUEST
        assert "`id` must be a number or a string" in refused.value.message
        assert getattr(refused.value, "request_id", "none given") is None


def test_a_request_without_an_id_is_answered_with_none() -> None:
    for fields in REQUESTS:
        assert parse_line(b"{%s}" % fields)[0] is None


@pytest.mark.parametrize("op", ["md_subscribe", "md_unsubscribe"])
@pytest.mark.parametrize(
    ("what", "kinds"),
    [('"book"', ["book"]), ('"trades"', ["trades"]), ('["book", "trades"]', ["book", "trades"])],
)
def test_what_market_data_is_one_kind_or_a_list_of_them(
    op: str, what: str, kinds: list[str]
) -> None:
    """protocol.md gives `what` as `book` or `trades`; a single kind was refused ("Expected
    `array`, got `str`"), only a list was taken."""
    request_id, request = parse_line(
        f'{{"id": 1, "op": "{op}", "symbol": "BTC/USD", "what": {what}}}'.encode()
    )
    assert isinstance(request, MdSubscribe | MdUnsubscribe)
    assert (request_id, request.what) == (1, kinds)


def test_a_kind_of_market_data_there_is_not_is_refused_naming_the_field() -> None:
    for what in ('"bids"', '["bids"]'):
        with pytest.raises(RequestError) as refused:
            parse_line(f'{{"op": "md_subscribe", "symbol": "BTC/USD", "what": {what}}}'.encode())
        assert refused.value.code == ErrorCode.INVALID_FIELD
        assert "'bids'" in refused.value.message
    assert refused.value.message.startswith("`what[0]`: ")
    with pytest.raises(RequestError) as refused:
        parse_line(b'{"op": "md_subscribe", "symbol": "BTC/USD", "what": "bids"}')
    assert refused.value.message.startswith("`what`: ")


@pytest.mark.parametrize("symbol", ["BTC/USD", "A:B", "trades"])
@pytest.mark.parametrize("kind", ["book", "trades"])
def test_a_market_data_topic_names_its_symbol_and_stream(symbol: str, kind: str) -> None:
    (topic,) = md_topics(symbol, [kind])
    assert md_stream_of(topic) == (symbol, kind)


@pytest.mark.parametrize("topic", ["orders", "session", "errors", "account"])
def test_another_topic_names_no_market_data_stream(topic: str) -> None:
    assert md_stream_of(topic) is None
