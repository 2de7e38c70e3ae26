"""Hostile and careless clients: fuzzed lines on the live socket and fuzzed connections on
the TCP listener (the corpus is tests/fuzz.py; `make fuzz` runs every fuzz test at length),
and a client that stops reading."""

from __future__ import annotations

import json
import re
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from fixgw.api.client import Client
from fixgw.testing import LocalStack, free_port, wait_until
from tests.fuzz import FUZZ_EXAMPLES, connection_acts, hostile_json
from tests.integration.conftest import DEFAULT_BOOKS, EventLog, StackFactory, metric

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def fuzz_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    stack = LocalStack(
        root=tmp_path_factory.mktemp("fuzz"),
        sim_port=free_port(),
        books=DEFAULT_BOOKS,
        symbols=["BTC/USD", "LTC/USD"],
        log_level="info",
        gateway_overrides={"api": {"request_timeout_s": 0.5}},
    )
    stack.start_sim()
    stack.start_gateway()
    yield stack
    stack.stop()


@pytest.fixture(scope="module")
def fuzz_client(fuzz_stack: LocalStack) -> Iterator[Client]:
    with fuzz_stack.client("fuzzer") as client:
        yield client


@pytest.mark.fuzz
@settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(line=hostile_json)
def test_every_fuzzed_line_gets_exactly_one_reply_and_the_gateway_lives(
    fuzz_stack: LocalStack, fuzz_client: Client, line: bytes
) -> None:
    """Deep nesting, huge numbers, odd decimals, unknown fields, bytes that are not JSON:
    one reply each, never internal_error, and no error in the log."""
    fuzz_client.send_raw(line + b"\n")
    reply: dict[str, Any] = {}
    while "ok" not in reply:  # events (from orders the fuzzer placed) may come first
        reply = fuzz_client.read_message(5)
    if not reply["ok"]:
        assert reply["error"]["code"] and reply["error"]["message"]
        assert reply["error"]["code"] != "internal_error", reply
    else:
        order = json.loads(line) if line.startswith(b'{"id": ') else None
        if isinstance(order, dict) and order.get("op") == "new_order":
            for field in ("qty", "price"):  # a placed order's numbers are plain decimals
                assert order.get(field) is None or PLAIN.fullmatch(order[field]), order
    assert fuzz_stack.gateway is not None and fuzz_stack.gateway.running
    assert NEW_LOG_LINES.errors(fuzz_stack) == []


PLAIN = re.compile(r"[0-9]+(\.[0-9]+)?")


class _NewLogLines:
    """The gateway's log lines since the last look: each must be JSON, none an error."""

    def __init__(self) -> None:
        self.read = 0

    def errors(self, stack: LocalStack) -> list[str]:
        assert stack.gateway is not None
        with stack.gateway.log_path.open("rb") as f:
            f.seek(self.read)
            new = f.read()
        complete = new[: new.rfind(b"\n") + 1]
        self.read += len(complete)
        lines = complete.decode().splitlines()
        return [line for line in lines if json.loads(line)["level"] in ("error", "critical")]


NEW_LOG_LINES = _NewLogLines()


TOKEN = secrets.token_urlsafe(32)


@pytest.fixture(scope="module")
def tcp_fuzz_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalStack, int]]:
    port = free_port()
    stack = LocalStack(
        root=tmp_path_factory.mktemp("tcp-fuzz"),
        sim_port=free_port(),
        books=DEFAULT_BOOKS,
        symbols=["BTC/USD", "LTC/USD"],
        log_level="info",
        gateway_overrides={
            "api": {
                "tcp": {"port": port, "token": {"env": "FIXGW_TEST_TOKEN"}, "hello_timeout_s": 1}
            }
        },
        env={"FIXGW_TEST_TOKEN": TOKEN},
    )
    stack.start_sim()
    stack.start_gateway()
    yield stack, port
    stack.stop()
    assert TOKEN not in (stack.gateway.log() if stack.gateway else "")


def _drain(sock: socket.socket) -> bytes:
    """What the gateway has sent so far (no waiting for more than a moment)."""
    data = b""
    sock.settimeout(0.05)
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except OSError:
        pass
    return data


@pytest.mark.fuzz
@settings(
    max_examples=max(10, FUZZ_EXAMPLES // 5),
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(acts=connection_acts)
def test_a_fuzzed_tcp_connection_never_hurts_the_gateway_or_its_clients(
    tcp_fuzz_stack: tuple[LocalStack, int], acts: list[tuple[str, Any]]
) -> None:
    """Partial lines, lines past every bound, wrong tokens, requests before hello, in any
    order: whatever the gateway answers is JSON lines, and a client with the token and a
    Unix socket client are served right after."""
    stack, port = tcp_fuzz_stack
    received = b""
    with socket.create_connection(("127.0.0.1", port), 5) as sock:
        for kind, payload in acts:
            try:
                if kind == "send":
                    sock.sendall(payload + b"\n")
                elif kind == "partial":
                    sock.sendall(payload)
                elif kind == "hello":
                    sock.sendall(
                        json.dumps({"id": 1, "op": "hello", "token": payload}).encode() + b"\n"
                    )
                elif kind == "status":
                    sock.sendall(b'{"id": 2, "op": "status"}\n')
                else:
                    break
            except OSError:
                break  # the gateway closed it: one of the outcomes allowed
            received += _drain(sock)
    for line in received.splitlines()[: -1 if received and not received.endswith(b"\n") else None]:
        message = json.loads(line)
        assert message["ok"] is False and message["error"]["code"] != "internal_error", message
    with Client.connect(host="127.0.0.1", port=port, token=TOKEN) as good:
        assert good.status()["session"] == "up"
    with stack.client("unix") as local:
        assert local.status()["session"] == "up"
    assert stack.gateway is not None and stack.gateway.running


def test_a_client_that_stops_reading_is_dropped_and_others_carry_on(
    make_stack: StackFactory,
) -> None:
    stack = make_stack(api={"client_buffer_bytes": 65536}, start=False)
    stack.metrics_port = free_port()
    stack.start_sim()
    stack.start_gateway()
    stalled = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stalled.connect(stack.socket_path)
    stalled.sendall(b'{"id": 1, "op": "subscribe", "topics": ["orders"]}\n')
    with stack.client("reader") as reader:
        reader.subscribe(["orders"])
        log = EventLog(reader)
        gateway = stack.gateway
        assert gateway is not None
        last = ""
        # each order makes two events; the stalled client reads none, and how many fit in
        # its socket's buffers before the gateway's bound is passed is the kernel's business
        for i in range(5000):
            last = reader.new_order(
                symbol="LTC/USD", side="buy", type="limit", qty="1", price=f"{10 + i % 50}"
            )["cl_ord_id"]
            if i % 50 == 49 and "client is not reading" in gateway.log():
                break
        log.find(last, "order.accepted", timeout=20)
        wait_until(
            lambda: "client is not reading" in gateway.log(), 10, "the stalled client to be dropped"
        )
        assert reader.status()["session"] == "up"
    assert metric(stack, 'fixgw_api_refused_total{reason="not_reading"}') == 1
    stalled.settimeout(5)
    deadline = time.monotonic() + 5
    received = b""
    while time.monotonic() < deadline:
        chunk = stalled.recv(1 << 20)
        if not chunk:
            break
        received += chunk
    stalled.close()
    assert not chunk, "the gateway should have closed the stalled client's connection"


def test_a_replay_bigger_than_the_client_buffer_reaches_a_reader_and_still_drops_a_stalled_client(
    make_stack: StackFactory,
) -> None:
    """`since` over a journal many times `api.client_buffer_bytes`: a client reading
    normally gets every event once, in order, the reply, then what happened meanwhile; one
    that never reads is dropped once the live events waiting for it pass the bound."""
    bound = 65536
    stack = make_stack(api={"client_buffer_bytes": bound})
    journal = stack.root / "journal.jsonl"
    gateway = stack.gateway
    assert gateway is not None
    with stack.client("trader") as trader:

        def rest(cl_ord_id: str | None = None) -> str:
            return str(
                trader.new_order(
                    symbol="LTC/USD",
                    side="buy",
                    type="limit",
                    qty="1",
                    price="10",
                    cl_ord_id=cl_ord_id,
                )["cl_ord_id"]
            )

        while journal.stat().st_size < 12 * bound:  # beyond the kernel's socket buffers too
            rest()
        stalled = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        stalled.connect(stack.socket_path)
        stalled.sendall(b'{"id": 1, "op": "subscribe", "topics": ["orders"], "since": 0}\n')
        received: list[dict[str, Any]] = []
        failed: list[BaseException] = []

        def read(reader: Client) -> None:
            try:
                while not (
                    received
                    and received[-1].get("cl_ord_id") == "last"
                    and received[-1]["type"] == "order.accepted"
                ):
                    received.append(reader.read_message(30))
            except BaseException as exc:
                failed.append(exc)

        with stack.client("reader") as reader:
            reader.send_raw(b'{"id": 7, "op": "subscribe", "topics": ["orders"], "since": 0}\n')
            thread = threading.Thread(target=read, args=(reader,))
            thread.start()
            for i in range(2000):  # live events meanwhile, until the stalled client is dropped
                rest()
                if i % 10 == 9 and "client is not reading" in gateway.log():
                    break
            rest("last")
            thread.join(60)
    assert not failed, failed
    assert "client is not reading" in gateway.log()
    [at] = [i for i, m in enumerate(received) if "seq" not in m]
    reply = received[at]
    assert reply["id"] == 7 and reply["ok"], reply
    before = [m["seq"] for m in received[:at]]
    after = [m["seq"] for m in received[at + 1 :]]
    journaled = [
        json.loads(line)["seq"]
        for line in journal.read_bytes().splitlines()
        if json.loads(line)["type"].startswith("order.")
    ]
    assert before == [s for s in journaled if s <= reply["result"]["seq"]]
    assert len(before) == reply["result"]["replayed"]
    assert after == [s for s in journaled if s > reply["result"]["seq"]][: len(after)]
    assert after[-1] == max(journaled)
    stalled.settimeout(10)
    while stalled.recv(1 << 20):
        pass  # the replay's first chunks, then the end: the gateway closed it
    stalled.close()
