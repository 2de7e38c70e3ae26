"""A NATS broker that cannot be reached, or refuses the credentials: the command line says why
in one line and exits 1 at once (docs/operations.md, The command line); the gateway tries
again at the pace `nats.reconnect` sets and counts each failed attempt, with its reason, in
`status.nats` (docs/nats.md). A real nats-server, or a loopback port nobody listens on."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fixgw.nats.client import NatsClient
from fixgw.testing import NatsServer, free_port, wait_until
from tests.integration.conftest import StackFactory
from tests.integration.test_crashes import BOOKS

pytestmark = [pytest.mark.integration, pytest.mark.nats]

GATEWAY = "acct-1"


def cli_status(url: str, **env: str) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "fixgw", "--nats", url, "--gateway", GATEWAY, "status"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, **env},
    )
    return done, time.monotonic() - started


def test_the_cli_with_no_broker_says_so_in_one_line_at_once() -> None:
    port = free_port()  # nobody listens there
    url = f"nats://127.0.0.1:{port}"
    done, took = cli_status(url)
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        f"fixgw: cannot reach the gateway at {url} (NATS, gateway {GATEWAY}): cannot reach the "
        f"NATS broker at {url}: [Errno 111] Connect call failed ('127.0.0.1', {port})"
    ]
    assert took < 5


def test_the_cli_with_a_wrong_password_says_so_in_one_line_at_once(tmp_path: Path) -> None:
    broker = NatsServer(tmp_path / "nats", config='authorization {user: s, password: "right-1"}\n')
    broker.start()
    try:
        done, took = cli_status(broker.url, FIXGW_NATS_USER="s", FIXGW_NATS_PASSWORD="wrong-2")
    finally:
        broker.stop()
    assert done.returncode == 1
    [line] = done.stderr.splitlines()
    assert line.endswith(
        f"cannot reach the NATS broker at {broker.url}: nats: 'Authorization Violation'"
    )
    assert "wrong-2" not in done.stderr
    assert took < 5


def test_a_connection_the_broker_ends_ends_the_clients_wait(tmp_path: Path) -> None:
    """As the socket's client does when the gateway closes it: ConnectionError, not a wait
    for events that will never come."""
    broker = NatsServer(tmp_path / "nats")
    broker.start()
    try:
        client = NatsClient.connect(broker.url, gateway=GATEWAY)
    finally:
        broker.stop()
    with client:
        with pytest.raises(ConnectionError, match="connection to the NATS broker ended"):
            client.next_event(10)
        with pytest.raises(ConnectionError, match="connection to the NATS broker ended"):
            client.status()


@pytest.mark.parametrize("publisher", ["process", "inline"])
def test_the_gateway_tries_an_unreachable_broker_at_its_backoff_and_says_why(
    make_stack: StackFactory, publisher: str
) -> None:
    stack = make_stack(
        books=BOOKS,
        symbols=["BTC/USD"],
        nats={
            "servers": [f"nats://127.0.0.1:{free_port()}"],  # nobody listens there
            "gateway": GATEWAY,
            "publisher": publisher,
            "reconnect": {"floor_s": 0.1, "ceiling_s": 0.2, "jitter": 0},
        },
    )
    wait_until(lambda: stack.status()["nats"]["failures"] >= 10, 20, "ten failed attempts counted")
    before = stack.status()["nats"]
    assert not before["connected"]
    assert "cannot connect to the NATS broker" in before["last_error"]
    assert "[Errno 111]" in before["last_error"]  # connection refused
    time.sleep(2)
    after = stack.status()["nats"]
    assert after["failures"] - before["failures"] <= 2 / 0.1 + 2, "faster than the backoff"
