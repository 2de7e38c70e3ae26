"""`from_this_process`: the TLS pipe carries a loopback connection only when one of the
gateway's own sockets opened it."""

from __future__ import annotations

import socket
import subprocess
import sys

from fixgw.fix.own_sockets import from_this_process


def test_a_connection_this_process_opened_is_its_own_and_another_process_s_is_not() -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port)) as mine:
            accepted, peer = server.accept()
            with accepted:
                assert peer == mine.getsockname()
                assert from_this_process(peer, accepted.getsockname())
        stranger = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "import socket, sys; s = socket.create_connection(('127.0.0.1', int(sys.argv[1])));"
                " sys.stdin.read()",
                str(port),
            ],
            stdin=subprocess.PIPE,
        )
        try:
            accepted, peer = server.accept()
            with accepted:
                assert not from_this_process(peer, accepted.getsockname())
        finally:
            assert stranger.stdin is not None
            stranger.stdin.close()
            stranger.wait(10)
