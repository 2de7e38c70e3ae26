"""`fixgw.fix.logon_gate` without QuickFIX: framing a first message from what has arrived,
and the handover itself, to a stand-in for QuickFIX that accepts on the handover socket and
reads by descriptor as QuickFIX does. Against QuickFIX and real OMS connections:
tests/integration/test_bridge_logon_gate.py."""

from __future__ import annotations

import os
import select
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from fixgw.fix.logon_gate import (
    MAX_FIRST_MESSAGE_BYTES,
    LogonGate,
    NotFix,
    check_ends_where_said,
    first_message_length,
    handover_listener,
)

LOGON = b"8=FIX.4.4\x019=5\x0135=A\x0110=123\x01"


@pytest.mark.parametrize("cut", range(1, len(LOGON)))
def test_a_first_message_arriving_in_pieces_is_waited_for_until_its_length_is_known(
    cut: int,
) -> None:
    known = first_message_length(LOGON[:cut])
    assert known is None or known == len(LOGON)
    assert (known is None) == (cut < len(b"8=FIX.4.4\x019=5\x01"))


def test_the_length_counts_the_header_the_body_and_the_checksum() -> None:
    assert first_message_length(LOGON) == len(LOGON)
    assert first_message_length(LOGON + b"8=FIX.4.4\x01") == len(LOGON)


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (b"GET / HTTP/1.1\r\n", "not a FIX message"),
        (b"9=5\x018=FIX.4.4\x01", "not a FIX message"),
        (b"8=\x019=5\x01", "not a FIX message"),
        (b"8=FIX.4.4\x0135=A\x01", "not a FIX message"),
        (b"8=FIX.4.4\x019=x\x01", "not a FIX message"),
        (b"8=FIX.4.4\x019=1234567890\x01", "not a FIX message"),
        (b"8=" + b"F" * 40, "not a FIX message"),
        (f"8=FIX.4.4\x019={MAX_FIRST_MESSAGE_BYTES}\x01".encode(), "longer than 16384 bytes"),
    ],
)
def test_bytes_that_cannot_start_a_logon_are_not_fix(data: bytes, says: str) -> None:
    with pytest.raises(NotFix, match=says):
        first_message_length(data)


def test_a_first_message_must_end_with_its_checksum_where_its_body_length_says() -> None:
    check_ends_where_said(LOGON, len(LOGON))
    short = b"8=FIX.4.4\x019=5\x0135=A\x0149=XXXX\x0110=123\x01"  # the body is 13 bytes
    length = first_message_length(short)
    assert length is not None
    with pytest.raises(NotFix, match="does not end where its BodyLength says"):
        check_ends_where_said(short, length)


class StandIn:
    """Accepts on the handover socket, then waits by descriptor and reads what comes, as
    QuickFIX's SocketMonitor does: what it reads is what the OMS sent."""

    def __init__(self, listener: socket.socket) -> None:
        self.listener = listener
        self.read: bytes = b""
        self.family: socket.AddressFamily | None = None
        self.fd: int | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        poller = select.poll()
        poller.register(self.listener, select.POLLIN)
        assert poller.poll(10_000)
        conn, _ = self.listener.accept()
        self.fd = conn.detach()
        poller = select.poll()
        poller.register(self.fd, select.POLLIN)
        assert poller.poll(10_000)
        self.read = os.read(self.fd, 4096)
        with socket.socket(fileno=os.dup(self.fd)) as now:
            self.family = now.family
        os.write(self.fd, b"answered")

    def close(self) -> None:
        self.thread.join(10)
        if self.fd is not None:
            os.close(self.fd)


@pytest.fixture
def gate(tmp_path: Path) -> Iterator[tuple[LogonGate, socket.socket, int, list[str]]]:
    """A gate on a free port, handing over through a directory whose path is longer than a
    Unix socket's may be."""
    directory = tmp_path / ("d" * 60) / ("e" * 60)
    directory.mkdir(parents=True)
    handover, path, dir_fd = handover_listener(directory)
    public = socket.socket()
    public.bind(("127.0.0.1", 0))
    public.listen()
    refused: list[str] = []
    gate = LogonGate(public, path, 1.0, on_refused=refused.append)
    gate.start()
    yield gate, handover, public.getsockname()[1], refused
    gate.stop()
    handover.close()
    os.close(dir_fd)


def test_a_whole_logon_is_handed_over_unread_and_the_answer_comes_back_on_the_same_socket(
    gate: tuple[LogonGate, socket.socket, int, list[str]],
) -> None:
    _, handover, port, refused = gate
    quickfix = StandIn(handover)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as oms:
        oms.sendall(LOGON[:12])
        time.sleep(0.2)
        oms.sendall(LOGON[12:])
        assert oms.recv(100) == b"answered"
    quickfix.close()
    assert quickfix.read == LOGON
    assert quickfix.family == socket.AF_INET  # the OMS's own socket, under QuickFIX's descriptor
    assert refused == []


def test_a_connection_to_the_handover_socket_from_another_process_is_shut_down(
    gate: tuple[LogonGate, socket.socket, int, list[str]], tmp_path: Path
) -> None:
    """Only the gateway's user can reach the socket's directory, but a process of that user
    must not reach QuickFIX around the gate either."""
    _, handover, port, _ = gate
    real_path = next(tmp_path.rglob("handover.sock"))
    stranger = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import socket, sys; s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); "
            "print('in', flush=True); s.settimeout(10); print(repr(s.recv(1)), flush=True)",
            real_path.name,  # relative: the path is longer than a Unix socket's may be
        ],
        cwd=real_path.parent,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert stranger.stdout is not None
        assert stranger.stdout.readline() == "in\n"
        taken, _ = handover.accept()  # as QuickFIX would
        quickfix = StandIn(handover)
        with socket.create_connection(("127.0.0.1", port), timeout=10) as oms:
            oms.sendall(LOGON)
            assert oms.recv(100) == b"answered"
        quickfix.close()
        assert stranger.stdout.readline() == "b''\n"  # shut down
        taken.close()
    finally:
        stranger.kill()
        stranger.wait(5)
