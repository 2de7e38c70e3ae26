"""The local wire protocol: JSON lines, requests with an `id`, replies that echo it.

Parsing turns one line into a typed request or a `RequestError` with a stable code.
Quantities and prices travel as decimal strings and are refused as JSON numbers, so no
float ever stands for money.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Iterable
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, Literal

import msgspec

from fixgw.decimals import RULE, plain_decimal
from fixgw.domain import OrderType, Side, TimeInForce
from fixgw.errors import RequestError
from fixgw.wire import encode

TOPICS_FIXED = frozenset({"orders", "session", "account", "errors"})


def md_topics(symbol: str, what: Iterable[str]) -> set[str]:
    """`md:<symbol>` carries the book's events, `md:<symbol>:trades` its trades."""
    return {f"md:{symbol}" if kind == "book" else f"md:{symbol}:trades" for kind in what}


def md_stream_of(topic: str) -> tuple[str, str] | None:
    """The symbol and stream (`book`, `trades`) a market-data topic carries (`md_topics`
    inverted); None for another topic."""
    if not topic.startswith("md:"):
        return None
    symbol = topic.removeprefix("md:")
    if symbol.endswith(":trades"):
        return symbol.removesuffix(":trades"), "trades"
    return symbol, "book"


class ErrorCode(StrEnum):
    INVALID_JSON = "invalid_json"
    INVALID_REQUEST = "invalid_request"
    UNKNOWN_OP = "unknown_op"
    MISSING_FIELD = "missing_field"
    UNKNOWN_FIELD = "unknown_field"
    INVALID_FIELD = "invalid_field"
    INVALID_QTY = "invalid_qty"
    INVALID_PRICE = "invalid_price"
    UNKNOWN_SYMBOL = "unknown_symbol"
    UNKNOWN_TOPIC = "unknown_topic"
    INVALID_DEPTH = "invalid_depth"
    NOT_SUBSCRIBED = "not_subscribed"
    MD_REJECTED = "md_rejected"
    LINE_TOO_LONG = "line_too_long"
    DUPLICATE_CL_ORD_ID = "duplicate_cl_ord_id"
    UNKNOWN_ORDER = "unknown_order"
    ORDER_CLOSED = "order_closed"
    CANCEL_PENDING = "cancel_pending"
    NOT_CONNECTED = "not_connected"
    NOT_READY = "not_ready"
    SESSION_UP = "session_up"
    HALTED = "halted"
    RISK = "risk_rejected"
    THROTTLED = "throttled"
    EXCHANGE_ERROR = "exchange_error"
    NOT_OFFERED = "not_offered"
    """The venue has no message for it (an account request, a TimeInForce it cannot carry)."""
    UNAUTHORIZED = "unauthorized"
    TOO_MANY_CLIENTS = "too_many_clients"
    TIMEOUT = "timeout"
    INTERNAL_ERROR = "internal_error"


CLIENT_ID_MAX_LENGTH = 64
CLIENT_ID_CHARACTERS = "A-Za-z0-9._:/+-"
"""The characters of a client's id, as a regex character class holds them."""
ClientId = Annotated[
    str,
    msgspec.Meta(pattern=f"^(?!NONE$)[{CLIENT_ID_CHARACTERS}]{{1,{CLIENT_ID_MAX_LENGTH}}}$"),
]
"""Ids a client may choose: printable, no FIX delimiter or `=`, at most 64 characters; not
`NONE`, which venues send in a report about no order of ours (an order they do not know)."""


class Request(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    pass


class Hello(Request, frozen=True, kw_only=True):
    name: str = ""
    token: str | None = None
    cancel_on_disconnect: bool = False
    """Cancel this connection's open orders when it goes away."""


class Subscribe(Request, frozen=True, kw_only=True):
    topics: Annotated[list[str], msgspec.Meta(min_length=1)]
    since: Annotated[int, msgspec.Meta(ge=0)] | None = None


class Unsubscribe(Request, frozen=True, kw_only=True):
    topics: list[str] | None = None


class NewOrder(Request, frozen=True, kw_only=True):
    symbol: str
    side: Side
    type: OrderType
    qty: str
    price: str | None = None
    cl_ord_id: ClientId | None = None
    time_in_force: TimeInForce | None = None
    """`day`, `gtc`, `ioc`, `fok`, where the venue carries it (`status.venue`); none: the
    venue's own rule."""


class OrderRef(Request, frozen=True, kw_only=True):
    """An order by our ClOrdID, or by the exchange's id with its symbol and side."""

    cl_ord_id: ClientId | None = None
    order_id: ClientId | None = None
    symbol: str | None = None
    side: Side | None = None


class CancelOrderRequest(OrderRef, frozen=True, kw_only=True):
    cancel_cl_ord_id: ClientId | None = None
    """The cancel request's own ClOrdID; default: one the gateway makes up."""


class OrderStatusRequest(OrderRef, frozen=True, kw_only=True):
    pass


class ListOrders(Request, frozen=True, kw_only=True):
    all: bool = False
    """Also orders that are closed."""
    from_exchange: bool = False
    """The exchange's open orders (OrderMassStatusRequest) instead of the gateway's view."""
    symbol: str | None = None


class AccountRequest(Request, frozen=True, kw_only=True):
    pass


class TradesRequest(Request, frozen=True, kw_only=True):
    symbol: str | None = None
    limit: Annotated[int, msgspec.Meta(ge=1, le=10_000)] = 100


class Status(Request, frozen=True, kw_only=True):
    pass


class Halt(Request, frozen=True, kw_only=True):
    """The kill switch: no new orders, and a cancel for every open order."""

    reason: str | None = None


class Resume(Request, frozen=True, kw_only=True):
    pass


class CancelAll(Request, frozen=True, kw_only=True):
    pass


class ResetSeqNums(Request, frozen=True, kw_only=True):
    """Both FIX sequence numbers back to 1; refused while the session is up."""


class LogonAgain(Request, frozen=True, kw_only=True):
    """Try to log on again after the exchange refused the credentials."""


MdKind = Literal["book", "trades"]


class MdSubscribe(Request, frozen=True, kw_only=True):
    symbol: str
    depth: int = 10
    """Levels of the book in the reply, and of the book events after it; 0 = all (the
    events then cover every level the gateway holds)."""
    what: Annotated[list[MdKind], msgspec.Meta(min_length=1)] = msgspec.field(
        default_factory=lambda: ["book", "trades"]
    )


class MdUnsubscribe(Request, frozen=True, kw_only=True):
    symbol: str
    what: list[MdKind] = msgspec.field(default_factory=lambda: ["book", "trades"])


class BookRequest(Request, frozen=True, kw_only=True):
    symbol: str
    depth: int = 10


OPS: dict[str, type[Request]] = {
    "hello": Hello,
    "subscribe": Subscribe,
    "unsubscribe": Unsubscribe,
    "new_order": NewOrder,
    "cancel_order": CancelOrderRequest,
    "order_status": OrderStatusRequest,
    "orders": ListOrders,
    "status": Status,
    "session_reset_seq": ResetSeqNums,
    "session_logon": LogonAgain,
    "halt": Halt,
    "resume": Resume,
    "cancel_all": CancelAll,
    "md_subscribe": MdSubscribe,
    "md_unsubscribe": MdUnsubscribe,
    "book": BookRequest,
    "account": AccountRequest,
    "trades": TradesRequest,
}

_decoder = msgspec.json.Decoder()
_MISSING = re.compile(r"missing required field `([^`]+)`")
_UNKNOWN = re.compile(r"unknown field `([^`]+)`")
_AT = re.compile(r" - at `\$\.?([^`]*)`")


class _NewOrderLine(NewOrder, frozen=True, kw_only=True):
    """A `new_order` line read in one pass: a NewOrder with the line's `op` and `id`."""

    op: Literal["new_order"]
    id: int | str | msgspec.UnsetType = msgspec.UNSET
    """Not a number with a fraction or an exponent: that one goes the long way, which keeps
    its text (`_id_as_sent`)."""


_new_order_decoder = msgspec.json.Decoder(_NewOrderLine)
_NEW_ORDER_FIELDS = len(_NewOrderLine.__struct_fields__)


def parse_line(line: bytes, ops_served: Collection[str] = ()) -> tuple[Any, Request]:
    """(request id, request). Raises RequestError carrying the id when one was readable;
    an unknown op's names the ops `ops_served` (default: every op).

    A line that names `new_order` is first read straight into the request (the order path's
    one request); any line that does not read so, or might name a field twice, goes the long
    way, which says what is wrong with it."""
    if b'"new_order"' in line:
        try:
            order = _new_order_decoder.decode(line)
        except Exception:  # noqa: S110 - the long way below reports it
            pass
        else:
            # Each field named is followed by a `:` of its own: with as many `:` as fields
            # read (one given as null aside), none is named twice; else the long way decides.
            absent = (order.price, order.cl_ord_id, order.time_in_force).count(None)
            if order.id is msgspec.UNSET:
                if line.count(b":") == _NEW_ORDER_FIELDS - absent - 1:
                    return None, order
            elif line.count(b":") == _NEW_ORDER_FIELDS - absent:
                return (_id_as_sent(line) if order.id == 0 else order.id), order
    return _parse_any(line, ops_served)


def _parse_any(line: bytes, ops_served: Collection[str] = ()) -> tuple[Any, Request]:
    try:
        obj = _decoder.decode(line)
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise _error(None, ErrorCode.INVALID_JSON, f"not JSON: {exc}") from None
    except RecursionError:  # msgspec gives up where Python's recursion limit would be
        raise _too_deep() from None
    if not isinstance(obj, dict):
        raise _error(None, ErrorCode.INVALID_REQUEST, "a request is a JSON object")
    repeated = _repeated_key(line, obj)
    id_given = "id" in obj
    request_id = obj.pop("id", None)
    good_id = not id_given or type(request_id) in _ID_TYPES
    if (type(request_id) is float or (type(request_id) is int and request_id == 0)) and (
        repeated != "id"
    ):
        request_id = _id_as_sent(line)
    if repeated is not None:
        raise _error(
            request_id if good_id and repeated != "id" else None,
            ErrorCode.INVALID_REQUEST,
            f"`{_shown(repeated)}` is given more than once: a request names each field once",
        )
    if not good_id:
        raise _error(None, ErrorCode.INVALID_REQUEST, "`id` must be a number or a string")
    op = obj.pop("op", None)
    if not isinstance(op, str):
        raise _error(request_id, ErrorCode.INVALID_REQUEST, "`op` (a string) is required")
    kind = OPS.get(op)
    if kind is None:
        raise _error(
            request_id,
            ErrorCode.UNKNOWN_OP,
            f"unknown op {op!r}; ops: {', '.join(sorted(ops_served or OPS))}",
        )
    listed = _ONE_OR_A_LIST.get(kind, "")
    alone = bool(listed) and isinstance(obj.get(listed), str)
    if alone:
        obj[listed] = [obj[listed]]
    try:
        return request_id, msgspec.convert(obj, kind)
    except msgspec.ValidationError as exc:
        text = str(exc)
        if alone:  # the error names the field the client gave, not the list made of it
            text = text.replace(f"`$.{listed}[0]`", f"`$.{listed}`")
        raise _validation_error(request_id, text) from None


_ONE_OR_A_LIST: dict[type[Request], str] = {MdSubscribe: "what", MdUnsubscribe: "what"}
"""Each request's field that takes a list of kinds or one kind alone (`"what": "book"`),
which reads as a list of that one."""

_ID_TYPES = (int, float, str)
"""What a request's `id` may be (a JSON number or string; not a bool, null, object or array)."""


class _IdText(msgspec.Struct):
    id: msgspec.Raw


_id_text_decoder = msgspec.json.Decoder(_IdText)


def _id_as_sent(line: bytes) -> msgspec.Raw:
    """A number id with a fraction or an exponent, or a zero (`-0`), as its JSON text:
    echoed so, not as a binary float's (`0.10000000000000001` would come back `0.1`, `1E2`
    as `100.0`) or an int's (`-0` as `0`)."""
    return _id_text_decoder.decode(line).id


def _too_deep() -> RequestError:
    return _error(None, ErrorCode.INVALID_JSON, "not JSON a request can be: nested too deeply")


class _Repeated(Exception):
    def __init__(self, key: str) -> None:
        self.key = key


def _refuse_repeats(pairs: list[tuple[str, Any]]) -> None:
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            raise _Repeated(key)
        seen.add(key)


def _repeated_key(line: bytes, obj: dict[str, Any]) -> str | None:
    """A key the line names twice in one object, at any level (msgspec keeps the last).

    Each key the line names is followed by a `:` of its own, so a line with no more `:`
    than the object has keys names none twice, and holds no object within; only a line
    with more (a `:` inside a string, an object within, or a repeat) is read again, by a
    reader that sees every key."""
    if line.count(b":") == len(obj):
        return None
    try:
        json.loads(
            line.decode(),
            object_pairs_hook=_refuse_repeats,
            parse_int=len,
            parse_float=len,
            parse_constant=len,
            strict=False,
        )
    except _Repeated as repeat:
        return repeat.key
    except RecursionError:
        raise _too_deep() from None
    except ValueError as exc:  # what msgspec read, json should: refused rather than unread
        raise _error(None, ErrorCode.INVALID_JSON, f"not JSON: {exc}") from None
    return None


def _shown(text: str) -> str:
    return text if len(text) <= 40 else f"{text[:40]}..."


def _validation_error(request_id: Any, text: str) -> RequestError:
    if m := _MISSING.search(text):
        return _error(request_id, ErrorCode.MISSING_FIELD, f"`{m.group(1)}` is required")
    if m := _UNKNOWN.search(text):
        return _error(request_id, ErrorCode.UNKNOWN_FIELD, f"unknown field `{m.group(1)}`")
    where = _AT.search(text)
    field = where.group(1) if where else "request"
    code = _FIELD_CODES.get(field, ErrorCode.INVALID_FIELD)
    return _error(request_id, code, f"`{field}`: {_AT.sub('', text)}")


_FIELD_CODES = {"qty": ErrorCode.INVALID_QTY, "price": ErrorCode.INVALID_PRICE}


def _error(request_id: Any, code: ErrorCode, message: str) -> RequestError:
    err = RequestError(message, code=code)
    err.request_id = request_id  # type: ignore[attr-defined]
    return err


MAX_INTEGER_DIGITS = 15
"""A quantity or a price is below 10**15 ..."""
MAX_DECIMAL_PLACES = 18
"""... with at most 18 decimal places: at most 34 characters in FIX, and a notional (qty
times price, below 10**30) Decimal's default context computes without overflow."""


def positive_decimal(value: str, field: str, code: ErrorCode) -> Decimal:
    """A quantity or a price from a client or an OMS: plain decimal text (`fixgw.decimals`),
    above 0, within the bounds above.

    Every order has two: text that passes is read at once (string tests, one Decimal); the
    rest goes the long way, which says what is wrong with it."""
    whole, dot, fraction = value.partition(".")
    if (
        value.isascii()
        and whole.isdigit()
        and (fraction.isdigit() if dot else True)
        and len(whole.lstrip("0")) <= MAX_INTEGER_DIGITS
        and len(fraction) <= MAX_DECIMAL_PLACES
    ):
        result = Decimal(value)
        if result:
            return result
    return _checked_decimal(value, field, code)


def _checked_decimal(value: str, field: str, code: ErrorCode) -> Decimal:
    shown = _shown(value)
    try:
        result = plain_decimal(value)
    except ValueError:
        raise RequestError(f"{field} must be {RULE}; got {shown!r}", code=code) from None
    if result <= 0:
        raise RequestError(f"{field} must be > 0, got {shown!r}", code=code)
    exponent = result.as_tuple().exponent
    assert isinstance(exponent, int)  # finite
    if result.adjusted() >= MAX_INTEGER_DIGITS or exponent < -MAX_DECIMAL_PLACES:
        raise RequestError(
            f"{field} must be below 1e{MAX_INTEGER_DIGITS} with at most {MAX_DECIMAL_PLACES} "
            f"decimal places, got {shown!r}",
            code=code,
        )
    return result


def reply_ok(request_id: Any, result: Any) -> bytes:
    return encode({"id": request_id, "ok": True, "result": result}) + b"\n"


def reply_error(request_id: Any, code: str, message: str) -> bytes:
    return (
        encode({"id": request_id, "ok": False, "error": {"code": code, "message": message}}) + b"\n"
    )
