"""The loopback TCP listener against clients that do not know the token, or do not care:
a wrong token closes the connection, repeated ones are answered later and later, silence
and long lines before `hello` are cut short, and a flood of connections cannot keep out
the clients the gateway serves."""

from __future__ import annotations

import json
import math
import os
import secrets
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest

from fixgw.api.client import ApiError, Client
from fixgw.ops.log_budget import BURST, PER_S
from fixgw.testing import LocalStack, free_port, wait_until
from tests.integration.conftest import StackFactory, metric

pytestmark = pytest.mark.integration

TOKEN = secrets.token_urlsafe(32)


def start_tcp_stack(make_stack: StackFactory, hello_timeout_s: float) -> tuple[LocalStack, int]:
    port = free_port()
    os.environ["FIXGW_TEST_TOKEN"] = TOKEN
    stack = make_stack(
        start=False,
        api={
            "tcp": {
                "port": port,
                "token": {"env": "FIXGW_TEST_TOKEN"},
                "hello_timeout_s": hello_timeout_s,
            },
            "max_clients": 8,
        },
    )
    stack.metrics_port = free_port()
    stack.start_sim()
    stack.start_gateway()
    return stack, port


@pytest.fixture
def tcp_stack(make_stack: StackFactory) -> Iterator[tuple[LocalStack, int]]:
    stack, port = start_tcp_stack(make_stack, hello_timeout_s=1)
    yield stack, port
    assert TOKEN not in (stack.gateway.log() if stack.gateway else "")


def connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), 5)
    sock.settimeout(10)
    return sock


def until_closed(sock: socket.socket) -> list[dict[str, Any]]:
    """Every line the gateway sends until it closes the connection."""
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    sock.close()
    return [json.loads(line) for line in data.splitlines()]


def hello(token: str, id_: int = 1) -> bytes:
    return json.dumps({"id": id_, "op": "hello", "name": "t", "token": token}).encode() + b"\n"


def log_lines(stack: LocalStack, event: str) -> list[dict[str, Any]]:
    assert stack.gateway is not None
    lines = [json.loads(line) for line in stack.gateway.log().splitlines() if line.startswith("{")]
    return [line for line in lines if line.get("event") == event]


WRONG = "wrong-token"


def test_a_wrong_token_is_answered_once_and_the_connection_closed(
    tcp_stack: tuple[LocalStack, int],
) -> None:
    """5,000 wrong hellos on one connection were each answered, the connection left open."""
    _, port = tcp_stack
    sock = connect(port)
    sock.sendall(b"".join(hello(f"{WRONG}-{n}", n) for n in range(1, 5001)))
    replies = until_closed(sock)
    assert [(r["id"], r["error"]["code"]) for r in replies] == [(1, "unauthorized")]
    assert "closed" in replies[0]["error"]["message"]
    with Client.connect(host="127.0.0.1", port=port, token=TOKEN) as gw:
        assert gw.status()["session"] == "up"


def test_repeated_wrong_tokens_wait_longer_each_time_and_are_counted_and_logged(
    tcp_stack: tuple[LocalStack, int],
) -> None:
    stack, port = tcp_stack
    for n in range(5):
        sock = connect(port)
        sock.sendall(hello(f"{WRONG}-{n}"))
        [refusal] = until_closed(sock)
        assert refusal["error"]["code"] == "unauthorized"
    failures = log_lines(stack, "api hello with a wrong or missing token; closing the connection")
    assert [f["failures_in_a_row"] for f in failures] == [1, 2, 3, 4, 5]
    assert [f["delay_s"] for f in failures] == [0.0, 0.1, 0.2, 0.4, 0.8]
    assert all(f["level"] == "warning" and f["peer"] == "127.0.0.1" for f in failures)
    assert metric(stack, "fixgw_api_auth_failures_total") == 5
    assert metric(stack, 'fixgw_api_refused_total{reason="bad_token"}') == 5
    with Client.connect(host="127.0.0.1", port=port, token=TOKEN) as gw:  # not delayed
        assert gw.status()["session"] == "up"
    for line in stack.gateway.log().splitlines() if stack.gateway else []:
        assert WRONG not in line  # a token, right or wrong, never reaches the log


def test_a_request_before_hello_or_a_line_that_is_not_one_closes_the_connection(
    tcp_stack: tuple[LocalStack, int],
) -> None:
    _, port = tcp_stack
    for first in (b'{"id": 3, "op": "status"}\n', b"not json\n", b'{"id": 4, "op": "new_order"}\n'):
        sock = connect(port)
        sock.sendall(first + b'{"id": 5, "op": "status"}\n')
        [refusal] = until_closed(sock)
        assert refusal["error"]["code"] == "unauthorized", refusal
        assert refusal["id"] in (3, 4, None)


def test_silence_and_a_partial_line_are_closed_after_the_hello_timeout(
    tcp_stack: tuple[LocalStack, int],
) -> None:
    """Unauthenticated connections were never closed."""
    stack, port = tcp_stack
    silent = connect(port)
    partial = connect(port)
    partial.sendall(b'{"id": 1, "op": "hello", "token": "' + b"x" * 3000)
    for sock in (silent, partial):
        [refusal] = until_closed(sock)
        assert refusal["error"]["code"] == "unauthorized"
        assert "within 1 s (api.tcp.hello_timeout_s)" in refusal["error"]["message"]
    assert metric(stack, 'fixgw_api_refused_total{reason="hello_timeout"}') == 2


def test_before_hello_a_line_may_not_pass_4_kb(tcp_stack: tuple[LocalStack, int]) -> None:
    """1,000 connections each holding a 60 KB partial line held 60 MB."""
    _, port = tcp_stack
    sock = connect(port)
    sock.sendall(b'{"id": 1, "op": "hello", "token": "' + b"x" * 5000)
    [refusal] = until_closed(sock)
    assert refusal["error"]["code"] == "line_too_long"
    assert "at most 4096 bytes" in refusal["error"]["message"]
    with Client.connect(host="127.0.0.1", port=port, token=TOKEN) as gw:
        assert gw.request("hello", name="x" * 3000)["server"] == "fixgw"  # the configured bound


def test_a_flood_of_connections_is_capped_and_does_not_keep_out_served_clients(
    make_stack: StackFactory,
) -> None:
    """At most 64 connections wait for `hello`, apart from api.max_clients (8 here); past
    either bound, one `too_many_clients` line and the connection is closed."""
    stack, port = start_tcp_stack(make_stack, hello_timeout_s=60)
    flood = [connect(port) for _ in range(70)]
    for sock in flood:
        sock.sendall(b"x" * 3000)  # under the 4 KB bound: it would wait for the timeout
    turned_away = [until_closed(sock) for sock in flood[64:]]
    assert all(r[0]["error"]["code"] == "too_many_clients" for r in turned_away), turned_away
    served = [stack.client(f"unix-{n}") for n in range(8)]  # the flood keeps none out
    ninth = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    ninth.settimeout(10)
    ninth.connect(stack.socket_path)
    [refusal] = until_closed(ninth)
    assert refusal["error"]["code"] == "too_many_clients"
    assert "at most 8 clients at once (api.max_clients)" in refusal["error"]["message"]
    for sock in flood[:64]:
        sock.close()

    def tcp_refused_for_max_clients() -> bool:
        with pytest.raises(ApiError) as tcp_ninth:
            Client.connect(host="127.0.0.1", port=port, token=TOKEN)
        assert tcp_ninth.value.code == "too_many_clients"
        return "api.max_clients" in tcp_ninth.value.message  # not the flood's bound

    wait_until(tcp_refused_for_max_clients, 10, "the flood's connections to be gone")
    served.pop().close()
    for client in served:
        assert client.status()["session"] == "up"
    with Client.connect(host="127.0.0.1", port=port, token=TOKEN) as again:  # room again
        assert again.status()["session"] == "up"
    for client in served:
        client.close()
    assert metric(stack, 'fixgw_api_refused_total{reason="too_many_clients"}') >= 8


def test_a_flood_of_strangers_is_counted_in_full_and_logged_within_bounds(
    tcp_stack: tuple[LocalStack, int],
) -> None:
    """200 connections in a row, each sending a request before `hello`: every one is counted,
    and each kind of line a stranger causes (`client connected`, `api connection refused`,
    `client gone`) writes its first 10 and then about one a second, the later ones saying how
    many they left out, adding up to the 200. A client with the token is served throughout."""
    stack, port = tcp_stack
    kinds = ("client connected", "api connection refused", "client gone")
    # the clients before the flood's are the stack's own (its readiness probe)
    first = 1 + max(line["client"] for line in log_lines(stack, "client connected"))

    def flood_lines(event: str) -> list[dict[str, Any]]:
        return [line for line in log_lines(stack, event) if line["client"] >= first]

    started = time.monotonic()
    for n in range(200):
        sock = connect(port)
        sock.sendall(b'{"id": %d, "op": "status"}\n' % n)
        [refusal] = until_closed(sock)
        assert refusal["error"]["code"] == "unauthorized"

    def events_said(event: str) -> int:
        return sum(1 + int(line.get("left_out", 0)) for line in flood_lines(event))

    wait_until(
        lambda: all(events_said(event) == 200 for event in kinds),
        10,
        "the flood's last lines, with what they left out",
    )
    elapsed_s = time.monotonic() - started
    for event in kinds:
        lines = flood_lines(event)
        assert len(lines) <= BURST + math.ceil(elapsed_s * PER_S) + 1, event
        assert all("left_out" not in line for line in lines[:BURST]), event
    refused = flood_lines("api connection refused")
    assert all(line["reason"] == "no_hello" for line in refused)
    assert metric(stack, 'fixgw_api_refused_total{reason="no_hello"}') == 200
    with Client.connect(host="127.0.0.1", port=port, token=TOKEN) as gw:
        assert gw.status()["session"] == "up"
