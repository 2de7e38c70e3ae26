"""Hostile and careless clients: a fuzz of the live socket, and a client that stops reading."""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fixgw.api.client import Client
from fixgw.api.protocol import OPS
from fixgw.testing import LocalStack, free_port, wait_until
from tests.integration.conftest import DEFAULT_BOOKS, EventLog, StackFactory

pytestmark = pytest.mark.integration

FUZZ_EXAMPLES = int(os.environ.get("FIXGW_FUZZ_EXAMPLES", "1500"))

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False),
    st.text(max_size=30),
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=8,
)
field_names = st.sampled_from(
    [
        "symbol",
        "side",
        "type",
        "qty",
        "price",
        "cl_ord_id",
        "order_id",
        "topics",
        "since",
        "depth",
        "what",
        "all",
        "from_exchange",
        "limit",
        "token",
        "name",
        "x",
    ]
)
requests = st.fixed_dictionaries(
    {"id": st.integers(0, 10**6), "op": st.sampled_from([*OPS, "nope", ""])},
    optional={k: values for k in ["symbol", "qty", "price", "side", "type", "topics"]},
).flatmap(
    lambda base: st.dictionaries(field_names, values, max_size=4).map(
        lambda extra: {**extra, **base}
    )
)
lines = st.one_of(
    requests.map(lambda r: json.dumps(r).encode()),
    st.binary(max_size=200).filter(lambda b: b"\n" not in b and b.strip()),
)


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


@settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(line=lines)
def test_every_fuzzed_line_gets_exactly_one_reply_and_the_gateway_lives(
    fuzz_stack: LocalStack, fuzz_client: Client, line: bytes
) -> None:
    fuzz_client.send_raw(line + b"\n")
    reply: dict[str, Any] = {}
    while "ok" not in reply:  # events (from orders the fuzzer placed) may come first
        reply = fuzz_client.read_message(5)
    if not reply["ok"]:
        assert reply["error"]["code"] and reply["error"]["message"]
        assert reply["error"]["code"] != "internal_error", reply
    assert fuzz_stack.gateway is not None and fuzz_stack.gateway.running


def test_a_client_that_stops_reading_is_dropped_and_others_carry_on(
    make_stack: StackFactory,
) -> None:
    stack = make_stack(api={"client_buffer_bytes": 65536})
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
