"""TLS to the exchange: the simulator serves a test certificate; the gateway verifies it
(CA and host name), trades over it, and refuses a wrong certificate or name, saying why."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme
import yaml

from fixgw.fix.tls import server_context
from fixgw.testing import LocalStack, wait_until
from tests.integration.conftest import EventLog, StackFactory

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("certs")
    ca, stranger, clients_ca = trustme.CA(), trustme.CA(), trustme.CA()
    server = ca.issue_cert("exchange.test")
    ours, strangers = clients_ca.issue_cert("fixgw.test"), stranger.issue_cert("fixgw.test")
    paths = {
        "ca": root / "ca.pem",
        "stranger_ca": root / "stranger.pem",
        "cert": root / "server.pem",
        "key": root / "server.key",
        "clients_ca": root / "clients-ca.pem",
        "client_cert": root / "client.pem",
        "client_key": root / "client.key",
        "stranger_client_cert": root / "stranger-client.pem",
        "stranger_client_key": root / "stranger-client.key",
    }
    ca.cert_pem.write_to_path(str(paths["ca"]))
    stranger.cert_pem.write_to_path(str(paths["stranger_ca"]))
    clients_ca.cert_pem.write_to_path(str(paths["clients_ca"]))
    for name, issued in (("", server), ("client_", ours), ("stranger_client_", strangers)):
        issued.cert_chain_pems[0].write_to_path(str(paths[f"{name}cert"]))
        issued.private_key_pem.write_to_path(str(paths[f"{name}key"]))
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


def test_a_server_name_written_absolute_with_a_trailing_dot_is_checked_without_it(
    make_stack: StackFactory, certs: dict[str, str]
) -> None:
    """`exchange.test.` is the same name in DNS; the certificate says `exchange.test`, and
    SNI never carries the dot: kept, each connection failed with "Hostname mismatch"."""
    stack = tls_stack(make_stack, certs, ca_file=certs["ca"], server_name="exchange.test.")
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


@contextlib.contextmanager
def serving(handle: Callable[[socket.socket], None]) -> Iterator[int]:
    """A loopback server that hands each connection to `handle`, on a thread. Yields its
    port."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    stopping = threading.Event()

    def serve() -> None:
        while not stopping.is_set():
            with contextlib.suppress(TimeoutError):
                connection, _ = server.accept()
                connection.settimeout(5)
                with connection:
                    handle(connection)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield int(server.getsockname()[1])
    finally:
        stopping.set()
        thread.join(10)
        server.close()


def refusing_client_certificates(
    certs: dict[str, str], abruptly: bool
) -> Callable[[socket.socket], None]:
    """The exchange's TLS front, requiring a client certificate its clients' CA signed
    (mutual TLS), which ours is not. Under TLS 1.3 it refuses after our side of the
    handshake is done, with an alert. Then it closes as a careful server does (reading what
    came before it closes), or `abruptly`: what we sent after the handshake, unread, makes
    the close a reset, which may overtake the alert."""
    context = server_context(certs["cert"], certs["key"])
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_verify_locations(certs["clients_ca"])

    def handle(connection: socket.socket) -> None:
        with contextlib.suppress(OSError):
            context.wrap_socket(connection, server_side=True)
        if abruptly:
            return
        with contextlib.suppress(OSError):
            connection.shutdown(socket.SHUT_WR)
            while connection.recv(4096):
                pass

    return handle


@pytest.mark.parametrize(
    ("client", "abruptly", "said"),
    [
        (None, False, "failed: TLSV13_ALERT_CERTIFICATE_REQUIRED (the server refused our client "),
        (
            "stranger_client_",
            False,
            "failed: TLSV1_ALERT_UNKNOWN_CA (the server refused our client ",
        ),
        (None, True, "client certificate"),
    ],
    ids=["no certificate", "a certificate of a CA it does not trust", "closing with a reset"],
)
def test_an_exchange_refusing_our_client_certificate_is_said_in_status_and_the_log(
    make_stack: StackFactory,
    certs: dict[str, str],
    client: str | None,
    abruptly: bool,
    said: str,
) -> None:
    """Under TLS 1.3 our side of the handshake is done before the exchange checks our
    certificate: its refusal comes on the first read, after the connection looked made.
    It was dropped without a word: `last_error` null, the log saying only "disconnected"."""
    ours = {}
    if client is not None:
        ours = {"client_cert": certs[f"{client}cert"], "client_key": certs[f"{client}key"]}
    with serving(refusing_client_certificates(certs, abruptly)) as port:
        stack = make_stack(start=False)
        stack.gateway_overrides["session"] = {
            "port": port,
            "tls": {
                "enabled": True,
                "ca_file": certs["ca"],
                "server_name": "exchange.test",
                **ours,
            },
        }
        stack.start_gateway(wait_for_logon=False)
        wait_until(lambda: session_tls(stack)["last_error"] is not None, 15, "the refusal")
        state = session_tls(stack)
        assert state["session"] != "up"
        assert state["last_error"].startswith(f"TLS with 127.0.0.1:{port} failed: ")
        assert said in state["last_error"]
        assert stack.gateway is not None
        logged = [json.loads(x) for x in stack.gateway.log().splitlines() if x.startswith("{")]
        assert any(
            x["event"] == "the other end ended the connection" and said in x["error"]
            for x in logged
        )


def closing_on_the_client_hello(connection: socket.socket) -> None:
    """A server that takes the TCP connection, reads the ClientHello and closes (a load
    balancer with no TLS backend, a port of the wrong kind)."""
    with contextlib.suppress(OSError):
        connection.recv(4096)


def test_a_server_closing_during_the_handshake_is_said_so(
    make_stack: StackFactory, certs: dict[str, str]
) -> None:
    """It was "cannot connect to host:port: ", with no reason, when the TCP connection had
    been made."""
    with serving(closing_on_the_client_hello) as port:
        stack = make_stack(start=False)
        stack.gateway_overrides["session"] = {
            "port": port,
            "tls": {"enabled": True, "ca_file": certs["ca"], "server_name": "exchange.test"},
        }
        stack.start_gateway(wait_for_logon=False)
        wait_until(lambda: session_tls(stack)["last_error"] is not None, 15, "the failure")
        assert session_tls(stack)["last_error"] == (
            f"TLS with 127.0.0.1:{port} failed: the server closed the connection during the "
            "handshake"
        )


def tls_to(port: int, certs: dict[str, str]) -> dict[str, Any]:
    """The gateway's `session` toward a TLS server of the test's own on `port`."""
    return {
        "port": port,
        "tls": {"enabled": True, "ca_file": certs["ca"], "server_name": "exchange.test"},
    }


def test_a_venue_slower_to_shake_hands_than_the_logon_timeout_gets_no_logon_and_is_said(
    make_stack: StackFactory, certs: dict[str, str]
) -> None:
    """The venue takes the TCP connection and starts the TLS handshake only when the test
    lets it. QuickFIX sends its Logon into the pipe at once and gives up on it at its 10 s
    LogonTimeout; the pipe (15 s then) shook hands after that and delivered the Logon (its
    MsgSeqNum, the secret key) on a connection the gateway had closed, and status blamed the
    Logon with `tls.last_error` null. The pipe now gives up first (8 s) and says why."""
    context = server_context(certs["cert"], certs["key"])
    release = threading.Event()
    received: list[bytes | str] = []

    def shaking_hands_when_released(connection: socket.socket) -> None:
        if received:
            return  # the attempts after the first: closed
        release.wait(30)
        try:
            tls = context.wrap_socket(connection, server_side=True)
            got = b""
            with contextlib.suppress(OSError):
                while chunk := tls.recv(4096):
                    got += chunk
            received.append(got)
        except OSError as exc:
            received.append(f"handshake failed: {exc}")

    with serving(shaking_hands_when_released) as port:
        stack = make_stack(start=False)
        stack.gateway_overrides["session"] = tls_to(port, certs)
        stack.start_gateway(wait_for_logon=False)
        wait_until(
            lambda: stack.status()["connection"]["last_down_reason"] is not None,
            20,
            "the first attempt's end",
        )
        release.set()  # the venue shakes hands with the first connection now
        wait_until(lambda: bool(received), 15, "the venue's handshake")
        [outcome] = received
        assert outcome == b"" or str(outcome).startswith("handshake failed: ")
        status = stack.status()
        assert status["tls"]["last_error"] == (
            f"no answer from 127.0.0.1:{port}: the TCP connection and TLS handshake took over 8 s"
        )
        assert "Logon" not in status["connection"]["last_down_reason"]


def test_an_earlier_tls_error_stays_in_status_until_the_exchange_answers(
    make_stack: StackFactory, certs: dict[str, str]
) -> None:
    """The venue closes the first connection during the handshake; then it shakes hands,
    reads the Logon and never answers, so QuickFIX gives up on it. That end, ours and no
    news of the exchange's TLS, erased the error said before."""
    context = server_context(certs["cert"], certs["key"])
    connections: list[bytes] = []

    def closing_then_silent(connection: socket.socket) -> None:
        connections.append(b"")
        if len(connections) == 1:
            closing_on_the_client_hello(connection)
            return
        connection.settimeout(30)  # past QuickFIX's LogonTimeout
        tls = context.wrap_socket(connection, server_side=True)
        with contextlib.suppress(OSError):
            while chunk := tls.recv(4096):
                connections[-1] += chunk

    with serving(closing_then_silent) as port:
        stack = make_stack(start=False)
        stack.gateway_overrides["session"] = tls_to(port, certs)
        stack.start_gateway(wait_for_logon=False)
        said = (
            f"TLS with 127.0.0.1:{port} failed: the server closed the connection during the "
            "handshake"
        )
        wait_until(lambda: session_tls(stack)["last_error"] == said, 15, "the first failure")
        wait_until(lambda: len(connections) >= 3, 40, "the attempt after the unanswered Logon")
        assert b"\x0135=A\x01" in connections[1]
        status = stack.status()
        assert status["connection"]["last_down_reason"] == (
            "no answer to the Logon: Timed out waiting for logon response"
        )
        assert status["tls"]["last_error"] == said


def reloaded(stack: LocalStack, event: str) -> dict[str, Any]:
    """The last `event` of the gateway's log, once there is one."""
    assert stack.gateway is not None and stack.gateway.popen is not None
    stack.gateway.popen.send_signal(signal.SIGHUP)

    def found() -> list[dict[str, Any]]:
        assert stack.gateway is not None
        lines = stack.gateway.log().splitlines()
        return [json.loads(x) for x in lines if x.startswith("{") and f'"{event}"' in x]

    wait_until(lambda: bool(found()), 10, event)
    return found()[-1]


def test_a_ca_file_renewed_in_place_is_taken_at_sighup(
    make_stack: StackFactory, certs: dict[str, str], tmp_path: Path
) -> None:
    """The exchange moved to a new CA; the operator writes it into the file `ca_file` names
    (the same path) and sends SIGHUP. The context built at start was kept, and the reload
    said nothing needed a restart."""
    ca_file = tmp_path / "exchange-ca.pem"
    shutil.copy(certs["stranger_ca"], ca_file)  # the exchange's CA before it moved
    stack = tls_stack(make_stack, certs, ca_file=str(ca_file), server_name="exchange.test")
    stack.start_gateway(wait_for_logon=False)
    wait_until(lambda: session_tls(stack)["last_error"] is not None, 15, "the refusal")
    assert "unable to get local issuer" in session_tls(stack)["last_error"]

    shutil.copy(certs["ca"], ca_file)
    assert reloaded(stack, "config reloaded")["applied"] == ["session.tls.ca_file"]
    wait_until(lambda: stack.status()["ready"], 20, "the logon with the new CA")
    assert_up_and_trading(stack)


def test_a_renewed_tls_file_that_cannot_be_used_is_refused_and_the_session_trades_on(
    make_stack: StackFactory, certs: dict[str, str], tmp_path: Path
) -> None:
    ca_file = tmp_path / "exchange-ca.pem"
    shutil.copy(certs["ca"], ca_file)
    stack = tls_stack(make_stack, certs, ca_file=str(ca_file), server_name="exchange.test")
    stack.start_gateway()
    ca_file.write_text("half a certificate, written by a renewal that failed\n")
    refusal = reloaded(stack, "reload refused; running on as before")
    assert refusal["error"] == (
        "session.tls.ca_file changed and cannot be used; the TLS files in force are kept: "
        f"session.tls.ca_file: {ca_file} is not a PEM certificate"
    )
    assert_up_and_trading(stack)


def check_config(path: Path, stack: LocalStack) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fixgw", "check-config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        env={
            **os.environ,
            "FIXGW_TEST_API_KEY": stack.api_key,
            "FIXGW_TEST_SECRET": stack.secret,
        },
        check=False,
    )


@pytest.mark.parametrize(
    ("tls", "warning"),
    [
        ({"enabled": False}, "session.tls.enabled: false toward {host}, not loopback"),
        (
            {"enabled": True, "verify": False},
            "session.tls.verify: false toward {host}, not loopback",
        ),
    ],
    ids=["in clear", "unverified"],
)
def test_an_unprotected_connection_beyond_loopback_is_warned_of_by_check_config_and_run(
    make_stack: StackFactory, tls: dict[str, Any], warning: str
) -> None:
    """Allowed (the docs advise against it), but no longer in silence: the Logon's secret
    key would cross the network in clear, or to a server nobody verified. The host is a
    name (this machine's), and names are not resolved: only loopback addresses and
    `localhost` are taken for this machine."""
    host = socket.gethostname()
    stack = make_stack(start=False)
    stack.gateway_overrides["session"] = {"host": host, "tls": tls}
    path = stack.root / "gateway.yaml"
    path.write_text(yaml.safe_dump(stack.gateway_config()))
    done = check_config(path, stack)
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"{path}: ok\n"
    [line] = done.stderr.splitlines()
    assert line.startswith(f"fixgw: warning: {path}: {warning.format(host=host)}: ")

    stack.start_gateway(wait_for_logon=False)
    assert stack.gateway is not None
    logged = [json.loads(x) for x in stack.gateway.log().splitlines() if x.startswith("{")]
    [said] = [x for x in logged if x["event"] == "allowed, but unsafe"]
    assert said["level"] == "warning" and said["warning"] == line.split(f"{path}: ", 1)[1]


def test_cleartext_to_an_exchange_on_loopback_is_not_warned_of(make_stack: StackFactory) -> None:
    stack = make_stack(start=False)
    path = stack.root / "gateway.yaml"
    path.write_text(yaml.safe_dump(stack.gateway_config()))  # tls off, 127.0.0.1
    done = check_config(path, stack)
    assert (done.returncode, done.stdout, done.stderr) == (0, f"{path}: ok\n", "")
