"""TLS to the exchange: the simulator serves a test certificate; the gateway verifies it
(CA and host name), trades over it, and refuses a wrong certificate or name, saying why."""

from __future__ import annotations

import contextlib
import os
import socket
from pathlib import Path
from typing import Any

import pytest
import trustme

from fixgw.testing import LocalStack, wait_until
from tests.integration.conftest import EventLog, StackFactory

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("certs")
    ca, stranger = trustme.CA(), trustme.CA()
    server = ca.issue_cert("exchange.test")
    paths = {
        "ca": root / "ca.pem",
        "stranger_ca": root / "stranger.pem",
        "cert": root / "server.pem",
        "key": root / "server.key",
    }
    ca.cert_pem.write_to_path(str(paths["ca"]))
    stranger.cert_pem.write_to_path(str(paths["stranger_ca"]))
    server.cert_chain_pems[0].write_to_path(str(paths["cert"]))
    server.private_key_pem.write_to_path(str(paths["key"]))
    return {k: str(v) for k, v in paths.items()}


def tls_stack(make_stack: StackFactory, certs: dict[str, str], **tls: Any) -> LocalStack:
    stack = make_stack(
        start=False, sim={"tls": {"cert_file": certs["cert"], "key_file": certs["key"]}}
    )
    stack.gateway_overrides["session"] = {"tls": {"enabled": True, **tls}}
    stack.start_sim()
    return stack


def session_tls(stack: LocalStack) -> dict[str, Any]:
    status = stack.status()
    return {"session": status["session"], **status["tls"]}


def assert_up_and_trading(stack: LocalStack) -> None:
    assert session_tls(stack) == {"session": "up", "enabled": True, "last_error": None}
    with stack.client() as gw:
        gw.subscribe(["orders"])
        cl_ord_id = gw.new_order(symbol="BTC/USD", side="buy", type="market", qty="0.1")[
            "cl_ord_id"
        ]
        assert EventLog(gw).find(cl_ord_id, "order.filled")["last_px"] == "30010"


def test_a_verified_tls_session_trades(make_stack: StackFactory, certs: dict[str, str]) -> None:
    stack = tls_stack(make_stack, certs, ca_file=certs["ca"], server_name="exchange.test")
    stack.start_gateway()
    assert_up_and_trading(stack)


@pytest.mark.parametrize(
    ("tls", "error"),
    [
        ({"ca_file": "stranger_ca", "server_name": "exchange.test"}, "unable to get local issuer"),
        ({"ca_file": "ca", "server_name": "other.test"}, "Hostname mismatch"),
        ({"server_name": "exchange.test"}, "unable to get local issuer"),  # system store
    ],
)
def test_a_wrong_certificate_or_name_is_refused_with_a_clear_error(
    make_stack: StackFactory, certs: dict[str, str], tls: dict[str, str], error: str
) -> None:
    if "ca_file" in tls:
        tls = {**tls, "ca_file": certs[tls["ca_file"]]}
    stack = tls_stack(make_stack, certs, **tls)
    stack.start_gateway(wait_for_logon=False)
    wait_until(lambda: session_tls(stack)["last_error"] is not None, 15, "the TLS refusal")
    state = session_tls(stack)
    assert state["session"] != "up"
    assert "TLS certificate" in state["last_error"] and error in state["last_error"]
    assert stack.gateway is not None and error in stack.gateway.log()


def test_the_simulator_refuses_plain_fix_on_its_tls_port(
    make_stack: StackFactory, certs: dict[str, str]
) -> None:
    stack = tls_stack(make_stack, certs)
    stack.gateway_overrides["session"] = {"tls": {"enabled": False}}
    stack.start_gateway(wait_for_logon=False)
    assert stack.sim is not None
    wait_until(lambda: stack.status()["session"] == "down", 10, "the cut-off logon")
    assert "client logged on" not in stack.sim.log()


def _sockets(pid: int, state: str) -> list[tuple[int, int]]:
    """(local port, remote port) of process `pid`'s TCP sockets on 127.0.0.1 in `state`
    (0A listening, 01 established), from /proc."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    found = []
    for line in Path(f"/proc/{pid}/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        address, port = fields[1].split(":")
        if address == "0100007F" and fields[3] == state and fields[9] in inodes:
            found.append((int(port, 16), int(fields[2].split(":")[1], 16)))
    return found


def test_the_pipe_to_the_exchange_carries_only_the_gateway_s_own_connection(
    make_stack: StackFactory, certs: dict[str, str]
) -> None:
    """The pipe would carry a local stranger to the exchange authenticated as fixgw (its
    client certificate): it closes any connection no socket of the gateway's opened."""
    stack = tls_stack(make_stack, certs, ca_file=certs["ca"], server_name="exchange.test")
    stack.start_gateway()
    assert stack.gateway is not None and stack.gateway.popen is not None
    assert stack.sim is not None and stack.sim.popen is not None
    ((pipe_port, _),) = _sockets(stack.gateway.popen.pid, "0A")

    def exchange_connections() -> int:
        assert stack.sim is not None and stack.sim.popen is not None
        return sum(local == stack.sim_port for local, _ in _sockets(stack.sim.popen.pid, "01"))

    assert exchange_connections() == 1
    with socket.create_connection(("127.0.0.1", pipe_port), timeout=5) as stranger:
        assert stranger.recv(4096) == b""  # closed at once (carried, it would wait for a logon)
        assert exchange_connections() == 1
    wait_until(
        lambda: "connection refused: not this process's own" in stack.gateway.log(),  # type: ignore[union-attr]
        10,
        "the refusal in the log",
    )
    assert_up_and_trading(stack)
