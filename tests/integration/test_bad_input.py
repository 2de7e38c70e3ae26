"""Bad input on the socket gets an error reply with a stable code; the connection and the
gateway keep working. Lines are written raw, as a buggy or hostile client would."""

from __future__ import annotations

import json
import os
import socket
import stat
from pathlib import Path
from typing import Any

import pytest

from fixgw.api.client import ApiError, Client
from fixgw.testing import LocalStack, free_port
from tests.integration.conftest import DEFAULT_BOOKS, EventLog, StackFactory

pytestmark = pytest.mark.integration

STRONG_TOKEN = "tcp-token-for-tests-" + "0b5c1f7e9a2d4c68"  # 146 bits as base64

ORDER = '"op":"new_order","symbol":"BTC/USD","side":"buy","type":"limit"'

CASES = [
    ("not json", b"this is not json\n", "invalid_json", None),
    ("not an object", b"[1, 2]\n", "invalid_request", None),
    ("no op", b'{"id": 1}\n', "invalid_request", 1),
    ("unknown op", b'{"id": 2, "op": "launch_rocket"}\n', "unknown_op", 2),
    (
        "missing field",
        b'{"id": 3, "op": "new_order", "side": "buy", "type": "limit", "qty": "1", "price": "1"}\n',
        "missing_field",
        3,
    ),
    (
        "unknown field",
        b'{"id": 4, %s, "qty": "1", "price": "1", "prcie": "2"}\n' % ORDER.encode(),
        "unknown_field",
        4,
    ),
    (
        "wrong-typed side",
        b'{"id": 5, "op": "new_order", "symbol": "BTC/USD", "side": 7, '
        b'"type": "limit", "qty": "1", "price": "1"}\n',
        "invalid_field",
        5,
    ),
    (
        "qty as a float",
        b'{"id": 6, %s, "qty": 0.5, "price": "1"}\n' % ORDER.encode(),
        "invalid_qty",
        6,
    ),
    ("zero qty", b'{"id": 7, %s, "qty": "0", "price": "1"}\n' % ORDER.encode(), "invalid_qty", 7),
    (
        "negative qty",
        b'{"id": 8, %s, "qty": "-1", "price": "1"}\n' % ORDER.encode(),
        "invalid_qty",
        8,
    ),
    (
        "qty not a number",
        b'{"id": 9, %s, "qty": "lots", "price": "1"}\n' % ORDER.encode(),
        "invalid_qty",
        9,
    ),
    (
        "infinite qty",
        b'{"id": 10, %s, "qty": "Infinity", "price": "1"}\n' % ORDER.encode(),
        "invalid_qty",
        10,
    ),
    (
        "negative price",
        b'{"id": 11, %s, "qty": "1", "price": "-5"}\n' % ORDER.encode(),
        "invalid_price",
        11,
    ),
    ("limit without price", b'{"id": 12, %s, "qty": "1"}\n' % ORDER.encode(), "invalid_price", 12),
    (
        "price on a market order",
        b'{"id": 13, "op": "new_order", "symbol": "BTC/USD", '
        b'"side": "buy", "type": "market", "qty": "1", "price": "30000"}\n',
        "invalid_price",
        13,
    ),
    (
        "unknown symbol",
        b'{"id": 14, "op": "new_order", "symbol": "XYZ/USD", "side": "buy", '
        b'"type": "limit", "qty": "1", "price": "1"}\n',
        "unknown_symbol",
        14,
    ),
    (
        "cl_ord_id with a FIX delimiter",
        b'{"id": 15, %s, "qty": "1", "price": "1", "cl_ord_id": "a\\u0001b"}\n' % ORDER.encode(),
        "invalid_field",
        15,
    ),
    ("unknown topic", b'{"id": 16, "op": "subscribe", "topics": ["nope"]}\n', "unknown_topic", 16),
    ("a field named twice", b'{"id": 19, "op": "trades", "op": "book"}\n', "invalid_request", 19),
    ("an id that is a bool", b'{"id": true, "op": "status"}\n', "invalid_request", None),
    ("invalid utf-8", b'{"id": 17, "op": "\xff\xfe"}\n', "invalid_json", None),
    # was internal_error: msgspec's RecursionError, with a traceback logged per line
    ("nested 1,000 deep", b"[" * 1000 + b"]" * 1000 + b"\n", "invalid_json", None),
    ("nested 2,000 deep", b"[" * 2000 + b"]" * 2000 + b"\n", "invalid_json", None),
    (
        "a field nested 1,500 deep",
        b'{"id": 18, "op": "status", "x": ' + b"[" * 1500 + b"]" * 1500 + b"}\n",
        "invalid_json",
        None,
    ),
]


@pytest.fixture(scope="module")
def shared_stack(tmp_path_factory: pytest.TempPathFactory) -> LocalStack:
    root = tmp_path_factory.mktemp("bad-input")
    stack = LocalStack(
        root=root, sim_port=free_port(), books=DEFAULT_BOOKS, symbols=["BTC/USD", "LTC/USD"]
    )
    stack.start_sim()
    stack.start_gateway()
    yield stack  # type: ignore[misc]
    stack.stop()


@pytest.mark.parametrize(
    ("line", "code", "request_id"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_bad_request_gets_an_error_reply_and_the_connection_keeps_working(
    shared_stack: LocalStack, line: bytes, code: str, request_id: int | None
) -> None:
    with shared_stack.client() as gw:
        gw.send_raw(line)
        reply = gw.read_message(5)
        assert reply["ok"] is False
        assert reply["error"]["code"] == code, reply
        assert reply["error"]["message"]
        assert reply["id"] == request_id
        assert gw.status()["session"] == "up"


def test_oversized_line_is_refused_and_the_next_line_is_served(shared_stack: LocalStack) -> None:
    with shared_stack.client() as gw:
        gw.send_raw(b'{"id": 1, "op": "status", "pad": "' + b"x" * 100_000 + b'"}\n')
        reply = gw.read_message(5)
        assert reply["error"]["code"] == "line_too_long"
        assert gw.status()["session"] == "up"


def test_an_oversized_line_behind_a_request_waiting_on_the_exchange_is_refused_after_it(
    shared_stack: LocalStack,
) -> None:
    with shared_stack.client() as gw:
        gw.subscribe(["orders"])
        order = gw.new_order(symbol="LTC/USD", side="buy", type="limit", qty="1", price="5")
        EventLog(gw).find(order["cl_ord_id"], "order.accepted")
        gw.send_raw(
            b'{"id": 1, "op": "order_status", "cl_ord_id": "%s"}\n' % order["cl_ord_id"].encode()
            + b'{"id": 2, "op": "status", "pad": "'
            + b"x" * 100_000
            + b'"}\n'
        )
        replies: list[dict[str, Any]] = []
        while len(replies) < 2:  # events (order.status) may come between
            message = gw.read_message(5)
            if "seq" not in message:
                replies.append(message)
        assert replies[0]["id"] == 1 and replies[0]["result"]["source"] == "exchange"
        assert (replies[1]["id"], replies[1]["error"]["code"]) == (None, "line_too_long")


def test_requests_waiting_on_the_exchange_back_to_back_leave_nothing_outside_the_structured_log(
    shared_stack: LocalStack,
) -> None:
    """Two `order_status` lines in one write: the second is taken up by the task answering
    the first. Compiled, that task raised TypeError ('None object expected; got
    _asyncio.Task') after replying, and asyncio printed 'Task exception was never
    retrieved' on raw stderr, once per pair."""
    gateway = shared_stack.gateway
    assert gateway is not None
    with shared_stack.client() as gw:
        gw.subscribe(["orders"])
        order = gw.new_order(symbol="LTC/USD", side="buy", type="limit", qty="1", price="6")
        EventLog(gw).find(order["cl_ord_id"], "order.accepted")
        log_before = len(gateway.log())
        status = b'{"id": %d, "op": "order_status", "cl_ord_id": "%s"}\n'
        for n in range(0, 30, 3):
            gw.send_raw(b"".join(status % (n + i, order["cl_ord_id"].encode()) for i in range(3)))
            replies = []
            while len(replies) < 3:  # order.status events may come between
                message = gw.read_message(5)
                if "seq" not in message:
                    replies.append(message)
            assert [(r["id"], r["ok"]) for r in replies] == [
                (n, True),
                (n + 1, True),
                (n + 2, True),
            ]
        assert gw.status()["session"] == "up"
    written = gateway.log()[log_before:]
    assert "never retrieved" not in written and "Traceback" not in written
    for line in written.splitlines():
        assert isinstance(json.loads(line), dict), line  # every line the structured log's


def test_the_client_gets_the_error_for_a_line_the_gateway_could_not_read(
    shared_stack: LocalStack,
) -> None:
    with shared_stack.client() as gw:
        with pytest.raises(ApiError) as refused:
            gw.request("status", pad="x" * 100_000)
        assert refused.value.code == "line_too_long"
        assert gw.status()["session"] == "up"


def test_many_bad_lines_in_one_write_each_get_a_reply(shared_stack: LocalStack) -> None:
    with shared_stack.client() as gw:
        gw.send_raw(b"".join(c[1] for c in CASES))
        codes = [gw.read_message(5)["error"]["code"] for _ in CASES]
        assert codes == [c[2] for c in CASES]


def test_an_id_with_a_fraction_is_echoed_as_the_client_wrote_it(shared_stack: LocalStack) -> None:
    """It went through a binary float: `0.1` and `0.10000000000000001` both came back as
    `0.1`, and `1E2` as `100.0`, so a client reading numbers as decimals could not tell
    which of its pipelined requests a reply answers."""
    sent = [b"0.1", b"0.10000000000000001", b"9007199254740993.5", b"1E2", b"9007199254740993"]
    lines = [b'{"id":%s,"op":"status"}\n' % request_id for request_id in sent]
    lines.append(b'{"id":-1.50,%s,"qty":"0","price":"1"}\n' % ORDER.encode())  # refused
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(5)
        sock.connect(str(shared_stack.socket_path))
        sock.sendall(b"".join(lines))
        received = b""
        while received.count(b"\n") < len(lines):
            chunk = sock.recv(65536)
            assert chunk, received
            received += chunk
    echoed = [line[: line.index(b',"ok":')] for line in received.splitlines()]
    assert echoed == [b'{"id":%s' % request_id for request_id in [*sent, b"-1.50"]]


def test_deep_nesting_is_invalid_json_in_one_line_of_reply_and_no_error_in_the_log(
    shared_stack: LocalStack,
) -> None:
    gateway = shared_stack.gateway
    assert gateway is not None
    log_before = len(gateway.log())
    with shared_stack.client() as gw:
        for depth in (1000, 1001, 2040):
            gw.send_raw(b"[" * depth + b"]" * depth + b"\n")
            reply = gw.read_message(5)
            assert reply["error"]["code"] == "invalid_json", reply
            assert "nested" in reply["error"]["message"]
        assert gw.status()["session"] == "up"
    written = gateway.log()[log_before:]
    assert "Traceback" not in written and "RecursionError" not in written
    assert '"level":"error"' not in written


def test_a_request_that_names_a_field_twice_is_refused_and_nothing_is_done(
    make_stack: StackFactory,
) -> None:
    """The JSON decoder keeps a repeated key's last value: a `status` with a second `op`
    halted trading, an order with two prices was sent at the second."""
    stack = make_stack()
    order = b'"op": "new_order", "symbol": "BTC/USD", "side": "buy", "type": "limit", "qty": "1"'
    with stack.client() as gw:
        gw.send_raw(b'{"id": 1, "op": "status", "op": "halt"}\n')
        gw.send_raw(b'{"id": 2, %s, "price": "1", "price": "2", "cl_ord_id": "twice"}\n' % order)
        replies = [gw.read_message(5) for _ in range(2)]
        assert [(r["id"], r["ok"], r["error"]["code"]) for r in replies] == [
            (1, False, "invalid_request"),
            (2, False, "invalid_request"),
        ]
        assert "`op` is given more than once" in replies[0]["error"]["message"]
        assert "`price` is given more than once" in replies[1]["error"]["message"]
        assert gw.status()["halted"] is None
        assert gw.orders(all=True) == []
    assert "twice" not in (stack.root / "journal.jsonl").read_text()


def test_unsubscribe_from_a_topic_there_is_not_is_refused_and_leaves_the_subscriptions(
    shared_stack: LocalStack,
) -> None:
    """`unsubscribe` from a misspelt `order` answered ok and left the client subscribed to
    `orders`; `subscribe` refused it."""
    with shared_stack.client() as gw:
        gw.subscribe(["orders", "session"])
        for topics in (["order"], ["orders", "md:NOPE/USD"]):
            with pytest.raises(ApiError) as refused:
                gw.request("unsubscribe", topics=topics)
            assert refused.value.code == "unknown_topic"
            assert topics[-1] in refused.value.message
        assert gw.request("unsubscribe", topics=["session"])["topics"] == ["orders"]
        assert gw.request("unsubscribe", topics=["account"])["topics"] == ["orders"]
        assert gw.request("unsubscribe")["topics"] == []


def test_a_client_that_disconnects_mid_line_does_not_disturb_others(
    shared_stack: LocalStack,
) -> None:
    with shared_stack.client() as rude:
        rude.send_raw(b'{"id": 1, "op": "new_or')
    with shared_stack.client() as polite:
        assert polite.status()["session"] == "up"


@pytest.mark.parametrize(
    ("symbol", "field", "value", "code", "says"),
    [
        # was sent: 100,000 digits of OrderQty; an exponent is no plain decimal now
        ("LTC/USD", "qty", "1e99999", "invalid_qty", "ASCII digits with at most one '.'"),
        ("LTC/USD", "price", "1e99999", "invalid_price", "ASCII digits with at most one '.'"),
        # was an overflow in the notional check
        ("BTC/USD", "qty", "1e999999", "invalid_qty", "ASCII digits with at most one '.'"),
        ("BTC/USD", "qty", "1" * 3000, "invalid_qty", "below 1e15 with at most 18 decimal"),
        ("LTC/USD", "price", "0." + "0" * 30 + "1", "invalid_price", "at most 18 decimal places"),
    ],
)
def test_a_quantity_or_price_with_a_huge_exponent_is_refused_and_neither_journaled_nor_sent(
    make_stack: StackFactory, symbol: str, field: str, value: str, code: str, says: str
) -> None:
    stack = make_stack(risk={"symbols": {"BTC/USD": {"max_notional": "1000000"}}})
    order = {"symbol": symbol, "side": "buy", "type": "limit", "qty": "1", "price": "10"}
    with stack.client() as gw:
        gw.subscribe(["orders"])
        with pytest.raises(ApiError) as refused:
            gw.new_order(cl_ord_id="huge", **{**order, field: value})
        assert refused.value.code == code
        assert says in refused.value.message
        gw.new_order(cl_ord_id="after", **order)
        EventLog(gw).find("after", "order.accepted")
        assert [o["cl_ord_id"] for o in gw.orders(all=True)] == ["after"]
    assert "huge" not in (stack.root / "journal.jsonl").read_text()
    assert "huge" not in (stack.root / "sim-store" / "orders.jsonl").read_text()


def test_unix_socket_is_created_with_mode_0660(shared_stack: LocalStack) -> None:
    mode = stat.S_IMODE(os.stat(shared_stack.socket_path).st_mode)
    assert mode == 0o660


def test_tcp_listener_requires_the_token(make_stack: StackFactory, tmp_path: Path) -> None:
    port = free_port()
    os.environ["FIXGW_TEST_TOKEN"] = STRONG_TOKEN
    stack = make_stack(
        api={"tcp": {"host": "127.0.0.1", "port": port, "token": {"env": "FIXGW_TEST_TOKEN"}}}
    )
    open_before = set(os.listdir("/proc/self/fd"))
    with pytest.raises(ApiError) as refused:
        Client.connect(host="127.0.0.1", port=port, token="wrong")
    assert refused.value.code == "unauthorized"
    assert set(os.listdir("/proc/self/fd")) == open_before, "the refused socket was left open"
    import socket

    with socket.create_connection(("127.0.0.1", port), 5) as raw:
        raw.sendall(b'{"id": 1, "op": "status"}\n')
        assert b'"unauthorized"' in raw.recv(4096)
    with Client.connect(host="127.0.0.1", port=port, token=STRONG_TOKEN) as gw:
        assert gw.status()["session"] == "up"
    assert STRONG_TOKEN not in stack.gateway.log()  # type: ignore[union-attr]
