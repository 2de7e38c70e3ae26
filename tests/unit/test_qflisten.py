"""The parts of `fixgw.fix.qflisten` that need no QuickFIX: finding a listening socket among the
process's descriptors, shutting down what came in through QuickFIX's own socket before the
swap, and saying which hosts can be held to. The swap itself is proven end to end in
tests/integration/test_listen_host.py."""

from __future__ import annotations

import socket

import pytest

from fixgw.errors import ConfigError
from fixgw.fix.qflisten import _listening_descriptor, _shut_down_accepted, check_listen_host


def test_quickfixs_listening_socket_is_found_by_its_port() -> None:
    with socket.socket() as listener, socket.socket() as other:
        listener.bind(("0.0.0.0", 0))  # noqa: S104 (as QuickFIX binds)
        listener.listen()
        other.bind(("127.0.0.1", 0))  # bound, not listening: not it
        assert _listening_descriptor(listener.getsockname()[1]) == listener.fileno()
        with pytest.raises(RuntimeError):
            _listening_descriptor(other.getsockname()[1])


def test_a_connection_taken_through_the_internal_port_is_shut_down_and_no_other() -> None:
    with socket.socket() as internal, socket.socket() as ours:
        for listener in (internal, ours):
            listener.bind(("127.0.0.1", 0))
            listener.listen()
        early = socket.create_connection(internal.getsockname(), timeout=2)
        later = socket.create_connection(ours.getsockname(), timeout=2)
        taken_early, _ = internal.accept()
        taken_later, _ = ours.accept()
        with early, later, taken_early, taken_later:
            _shut_down_accepted(internal.getsockname()[1])
            assert early.recv(1) == b""  # shut down: the peer reads the end
            later.settimeout(0.2)
            with pytest.raises(TimeoutError):
                later.recv(1)  # still open


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "localhost", "0.0.0.0"])  # noqa: S104
def test_an_address_of_this_machine_can_be_held_to(host: str) -> None:
    check_listen_host(host, "bridge.host")


@pytest.mark.parametrize(
    ("host", "says"),
    [
        ("192.0.2.1", "bridge.host: 192.0.2.1 is not an address of this machine"),
        ("no-such-host.invalid", "bridge.host: 'no-such-host.invalid' does not resolve"),
    ],
)
def test_a_host_that_is_not_here_is_refused(host: str, says: str) -> None:
    with pytest.raises(ConfigError) as refused:
        check_listen_host(host, "bridge.host")
    assert says in refused.value.message
