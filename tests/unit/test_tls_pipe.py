"""The TLS pipe (`fixgw.fix.tls.Pipe`) between a plain client and a real TLS server on
loopback: what reaches the server, and what `last_error` says."""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
from collections.abc import Callable, Iterator

import pytest
import trustme

from fixgw.fix.tls import HELD_MAX, Endpoint, Pipe, client_context, server_context
from fixgw.testing import wait_until

LOGON = b"8=FIX.4.4\x019=5\x0135=A\x0110=000\x01"


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("certs")
    ca = trustme.CA()
    server = ca.issue_cert("exchange.test")
    ca.cert_pem.write_to_path(str(root / "ca.pem"))
    server.cert_chain_pems[0].write_to_path(str(root / "server.pem"))
    server.private_key_pem.write_to_path(str(root / "server.key"))
    names = {"ca": "ca.pem", "cert": "server.pem", "key": "server.key"}
    return {key: str(root / name) for key, name in names.items()}


@pytest.fixture
def server_tls(certs: dict[str, str]) -> ssl.SSLContext:
    return server_context(certs["cert"], certs["key"])


@contextlib.contextmanager
def serving(handle: Callable[[socket.socket], None]) -> Iterator[int]:
    """A loopback server handing each connection to `handle` on a thread of its own. Yields
    its port."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    stopping = threading.Event()

    def one(connection: socket.socket) -> None:
        with connection, contextlib.suppress(OSError):
            connection.settimeout(10)
            handle(connection)

    def serve() -> None:
        while not stopping.is_set():
            with contextlib.suppress(TimeoutError):
                connection, _ = server.accept()
                threading.Thread(target=one, args=(connection,), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield int(server.getsockname()[1])
    finally:
        stopping.set()
        thread.join(10)
        server.close()


@contextlib.contextmanager
def pipe_to(port: int, certs: dict[str, str]) -> Iterator[Pipe]:
    context = client_context(certs["ca"], None, None)
    pipe = Pipe(
        Endpoint("127.0.0.1", 0), Endpoint("127.0.0.1", port, context, "exchange.test"), "test"
    )
    pipe.start()
    try:
        yield pipe
    finally:
        pipe.stop()


def read_to_the_end(connection: ssl.SSLSocket) -> bytes:
    got = b""
    with contextlib.suppress(OSError):
        while chunk := connection.recv(4096):
            got += chunk
    return got


class HeldHandshake:
    """A TLS server that takes the connection, then waits for `release` to shake hands and
    read to the end: what it read, or why the handshake failed, goes into `received`."""

    def __init__(self, server_tls: ssl.SSLContext) -> None:
        self.server_tls = server_tls
        self.accepted, self.release = threading.Event(), threading.Event()
        self.received: list[bytes | str] = []

    def shake_hands_when_released(self, connection: socket.socket) -> None:
        self.accepted.set()
        self.release.wait(20)
        try:
            tls = self.server_tls.wrap_socket(connection, server_side=True)
            self.received.append(read_to_the_end(tls))
        except OSError as exc:
            self.received.append(f"handshake failed: {exc}")


def test_a_client_that_leaves_during_the_handshake_sends_nothing_to_the_server(
    certs: dict[str, str], server_tls: ssl.SSLContext
) -> None:
    """QuickFIX sends its Logon into the pipe at once and gives up on a handshake slower
    than its LogonTimeout: the pipe went on shaking hands and then delivered that Logon (its
    MsgSeqNum, the secret key) on a connection the gateway had closed."""
    server = HeldHandshake(server_tls)
    accepted, release, received = server.accepted, server.release, server.received
    with serving(server.shake_hands_when_released) as port, pipe_to(port, certs) as pipe:
        with socket.create_connection(("127.0.0.1", pipe.port), 5) as client:
            client.sendall(LOGON)
            wait_until(accepted.is_set, 5, "the server to take the connection")
        wait_until(lambda: pipe.last_error is not None, 5, "the pipe to see the client leave")
        release.set()
        wait_until(lambda: bool(received), 15, "the server's handshake")
        [outcome] = received
        assert outcome == b"" or str(outcome).startswith("handshake failed: ")
        assert pipe.last_error is not None
        assert pipe.last_error.startswith(
            f"the TLS handshake with 127.0.0.1:{port} was not done when the client "
            "(QuickFIX) gave up on it, "
        )
        assert pipe.last_error.endswith(" s in: nothing it sent was passed on")


def test_a_client_that_sends_more_than_a_logon_before_the_handshake_is_dropped_unsent(
    certs: dict[str, str], server_tls: ssl.SSLContext
) -> None:
    """Past `HELD_MAX` the pipe stopped watching the client: one that sent 70,000 bytes and
    left had them all delivered once the handshake was done."""
    server = HeldHandshake(server_tls)
    accepted, release, received = server.accepted, server.release, server.received
    with serving(server.shake_hands_when_released) as port, pipe_to(port, certs) as pipe:
        with socket.create_connection(("127.0.0.1", pipe.port), 5) as client:
            client.sendall(LOGON + b"x" * (HELD_MAX + 10_000))
            wait_until(accepted.is_set, 5, "the server to take the connection")
            wait_until(lambda: pipe.last_error is not None, 5, "the pipe to drop the client")
        release.set()
        wait_until(lambda: bool(received), 15, "the server's handshake")
        [outcome] = received
        assert outcome == b"" or str(outcome).startswith("handshake failed: ")
        assert pipe.last_error is not None
        assert pipe.last_error.startswith(f"the client sent {HELD_MAX} bytes or more before ")


@pytest.mark.parametrize(
    ("reads_first", "close_notify"),
    [(False, True), (True, True), (True, False)],
    ids=["unread, close_notify", "read, close_notify", "read, no close_notify"],
)
def test_a_server_ending_the_connection_without_a_word_after_the_handshake_is_said(
    certs: dict[str, str], server_tls: ssl.SSLContext, reads_first: bool, close_notify: bool
) -> None:
    """A clean end before any answer (a source address not on the venue's list, a refused
    certificate whose alert was lost) left `last_error` null: only a reset was said."""

    def ending_without_a_word(connection: socket.socket) -> None:
        tls = server_tls.wrap_socket(connection, server_side=True)
        if reads_first:
            tls.recv(4096)
        if close_notify:
            tls.unwrap()

    with serving(ending_without_a_word) as port, pipe_to(port, certs) as pipe:
        with socket.create_connection(("127.0.0.1", pipe.port), 5) as client:
            client.sendall(LOGON)
            client.settimeout(10)
            assert client.recv(4096) == b""
        said = (
            f"TLS with 127.0.0.1:{port} failed: the server ended the connection before "
            "answering, just after the handshake (as a server refusing our client certificate "
            "under TLS 1.3 does, if its alert is lost)"
        )
        wait_until(lambda: pipe.last_error == said, 5, "the silent end said")
