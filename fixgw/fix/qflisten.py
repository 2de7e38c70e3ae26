"""A QuickFIX acceptor that listens on its configured address only.

QuickFIX C++ 1.16's SocketAcceptor has no accept-address setting: `socket_createAcceptor`
(Utility.cpp) binds its port on INADDR_ANY, whatever SocketAcceptHost says. On a machine
with a network interface a bridge or simulator configured for 127.0.0.1 would take
connections from the network, and an OMS session without a password could place orders.

So QuickFIX is let listen on a free port of its own, and once it has started, its
listening socket is replaced, under the same descriptor, by ours: bound to the configured
(host, port), listening, non-blocking (`os.dup2`). QuickFIX knows its sockets by
descriptor, and its SocketMonitor polls them with a 1 s timeout, so the accepts after that
come from our socket; its own is closed when its last poll returns. QuickFIX maps the
connections it accepts to sessions by the port it was configured with, which it keeps as
data, so sessions are unaffected.

The few microseconds between QuickFIX's start and the swap are closed too: a connection
accepted through QuickFIX's own socket has the internal port as its local port, which no
connection through ours can have, and each such is shut down.

`GatedAcceptor` puts a Unix socket under QuickFIX's descriptor instead, and leaves
(host, port) to a `LogonGate` (the bridge's): QuickFIX is handed each connection there once
its first message is whole.

`check_listen_host` says before anything starts whether a host can be held to.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import quickfix as fix
import structlog

from fixgw.errors import ConfigError
from fixgw.fix.logon_gate import HANDOVER_SOCKET, LogonGate, handover_listener
from fixgw.fix.qf import make_settings

log = structlog.get_logger("fixgw.fix.qflisten")

START_ATTEMPTS = 5
"""Free ports tried for QuickFIX's own socket: another process may take one in between."""
RACING_ACCEPT_S = 0.1
"""How long after the swap an accept QuickFIX began on its own socket may still finish."""

_DESCRIPTOR_DIRS = (Path("/proc/self/fd"), Path("/dev/fd"))


def _descriptor_dir() -> Path | None:
    return next((d for d in _DESCRIPTOR_DIRS if d.is_dir()), None)


def _address(host: str, port: int, key: str) -> tuple[socket.AddressFamily, Any]:
    try:
        found = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE | socket.AI_NUMERICSERV
        )
    except socket.gaierror as exc:
        raise ConfigError(f"{key}: {host!r} does not resolve: {exc.strerror}") from None
    family, _, _, _, address = found[0]
    return family, address


def check_listen_host(host: str, key: str) -> None:
    """Raises ConfigError (naming the config `key`) unless an acceptor can listen on `host`
    and on nothing else: the host must resolve to an address of this machine (or be a
    wildcard such as 0.0.0.0, which means every address), and the platform must let the
    process find QuickFIX's socket among its descriptors."""
    family, address = _address(host, 0, key)
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRNOTAVAIL:
                raise ConfigError(
                    f"{key}: {host} is not an address of this machine, so nothing could "
                    "listen on it: name one of its addresses (0.0.0.0 for all of them)"
                ) from None
            raise ConfigError(f"{key}: cannot listen on {host}: {exc.strerror}") from None
    if _descriptor_dir() is None:
        raise ConfigError(
            f"{key}: QuickFIX listens on every address, and on this platform its socket "
            "cannot be found to hold it to one (no /proc/self/fd or /dev/fd)"
        )


class BoundAcceptor:
    """A `quickfix.SocketAcceptor` for `sessions`, listening on (`host`, `port`) only."""

    def __init__(
        self,
        application: Any,
        defaults: Mapping[str, str | int],
        sessions: Mapping[Any, Mapping[str, str | int]],
        host: str,
        port: int,
        key: str,
        log_factory: Any = None,
    ) -> None:
        self.application = application
        self.log_factory = log_factory
        """QuickFIX's `LogFactory`, if any: kept here, as QuickFIX holds a bare pointer."""
        self.defaults = defaults
        self.sessions = sessions
        self.host, self.port = host, port
        self.key = key
        """The config key of the host, for errors."""
        self.internal_port: int | None = None
        """The port QuickFIX bound itself, on every address, until the swap."""
        self.acceptor: Any = None
        self._keep: tuple[Any, ...] = ()
        """Settings and store factory: QuickFIX holds references to them, not copies."""

    def start(self) -> None:
        check_listen_host(self.host, self.key)
        listener = self._listen()
        try:
            self._put_under_quickfix(listener)
        finally:
            listener.close()  # ours lives on under QuickFIX's descriptor
        self._shut_down_racing()

    def _put_under_quickfix(self, listener: socket.socket) -> None:
        """QuickFIX started, and `listener` in place of its listening socket."""
        self._start_quickfix()
        assert self.internal_port is not None
        descriptor = _listening_descriptor(self.internal_port)
        os.dup2(listener.fileno(), descriptor, inheritable=False)

    def _shut_down_racing(self) -> None:
        assert self.internal_port is not None
        _shut_down_accepted(self.internal_port)
        time.sleep(RACING_ACCEPT_S)
        _shut_down_accepted(self.internal_port)

    def _listen(self) -> socket.socket:
        family, address = _address(self.host, self.port, self.key)
        listener = socket.socket(family, socket.SOCK_STREAM)
        try:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind(address)
            listener.listen(socket.SOMAXCONN)
            listener.setblocking(False)  # as QuickFIX's SocketMonitor sets its own
        except OSError as exc:
            listener.close()
            raise ConfigError(
                f"{self.key}: cannot listen on {self.host}:{self.port}: {exc.strerror}"
            ) from None
        return listener

    def _start_quickfix(self) -> None:
        for attempt in range(1, START_ATTEMPTS + 1):
            port = _free_port()
            settings = make_settings({**self.defaults, "SocketAcceptPort": port}, self.sessions)
            store = fix.FileStoreFactory(settings)
            acceptor = (
                fix.SocketAcceptor(self.application, store, settings)
                if self.log_factory is None
                else fix.SocketAcceptor(self.application, store, settings, self.log_factory)
            )
            try:
                acceptor.start()
            except fix.RuntimeError:
                if attempt == START_ATTEMPTS:
                    raise
                del acceptor  # its sessions go with it, for the next one to take
                continue
            self.acceptor, self.internal_port = acceptor, port
            self._keep = (settings, store)
            return


class GatedAcceptor(BoundAcceptor):
    """A `BoundAcceptor` whose (`host`, `port`) is a `LogonGate`'s: QuickFIX listens on a Unix
    socket in `handover_dir` and is handed each connection once its first message is whole,
    so a peer that sends its Logon slowly cannot hold QuickFIX's one thread."""

    def __init__(
        self,
        *args: Any,
        handover_dir: Path,
        logon_timeout_s: float,
        on_handover: Callable[[str, bytes], None],
        on_refused: Callable[[str], None],
        logged_on: Callable[[bytes], bool],
        screen: Callable[[bytes, str], str | None],
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self._logged_on = logged_on
        self._screen = screen
        self.handover_dir = handover_dir
        self.logon_timeout_s = logon_timeout_s
        self._on_handover = on_handover
        self._on_refused = on_refused
        self.gate: LogonGate | None = None
        self._dir_fd: int | None = None

    def start(self) -> None:
        check_listen_host(self.host, self.key)
        public = self._listen()
        try:
            handover, path, self._dir_fd = handover_listener(self.handover_dir)
            try:
                self._put_under_quickfix(handover)
            finally:
                handover.close()  # lives on under QuickFIX's descriptor
        except BaseException:
            public.close()
            self._forget_handover()
            raise
        self._shut_down_racing()
        self.gate = LogonGate(
            public,
            path,
            self.logon_timeout_s,
            self._on_handover,
            self._on_refused,
            self._logged_on,
            self._screen,
        )
        self.gate.start()

    def look_for_strangers(self) -> None:
        """QuickFIX accepted a connection (its acceptor log says so): the gate shuts it down
        unless it is one of its own."""
        if self.gate is not None:
            self.gate.look_for_strangers()

    def stop_taking(self) -> None:
        """No new connection reaches QuickFIX from now on."""
        if self.gate is not None:
            self.gate.stop()
        self._forget_handover()

    def _forget_handover(self) -> None:
        if self._dir_fd is not None:
            with contextlib.suppress(OSError):
                os.unlink(HANDOVER_SOCKET, dir_fd=self._dir_fd)
            os.close(self._dir_fd)
            self._dir_fd = None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("0.0.0.0", 0))  # noqa: S104 (QuickFIX binds every address; the port must be free there)
        return int(s.getsockname()[1])


def _sockets() -> Iterator[tuple[int, socket.socket]]:
    """Every TCP socket of this process: its descriptor and a duplicate to look at (closed
    by the caller)."""
    directory = _descriptor_dir()
    assert directory is not None
    for name in os.listdir(directory):
        fd = int(name)
        try:
            duplicate = os.dup(fd)
        except OSError:
            continue  # the directory's own descriptor, gone already
        try:
            sock = socket.socket(fileno=duplicate)
        except OSError:
            os.close(duplicate)  # not a socket
            continue
        if sock.family in (socket.AF_INET, socket.AF_INET6) and sock.type == socket.SOCK_STREAM:
            yield fd, sock
        else:
            sock.close()


def _listening(sock: socket.socket) -> bool:
    return bool(sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN))


def _listening_descriptor(port: int) -> int:
    """QuickFIX's listening socket: the one on `port` on every address."""
    found = []
    for fd, sock in _sockets():
        with sock:
            if _listening(sock) and sock.getsockname()[1] == port:
                found.append(fd)
    if len(found) != 1:
        raise RuntimeError(f"QuickFIX's listening socket on port {port}: found {found}")
    return found[0]


def _shut_down_accepted(internal_port: int) -> None:
    """Connections accepted through QuickFIX's own socket before the swap (any address)."""
    for fd, sock in _sockets():
        with sock:
            try:
                if _listening(sock) or sock.getsockname()[1] != internal_port:
                    continue
                peer = sock.getpeername()
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                continue
            log.warning(
                "connection taken before the acceptor was held to its address; closed",
                descriptor=fd,
                peer=str(peer[0]),
            )
