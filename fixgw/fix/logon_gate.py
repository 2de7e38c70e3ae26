"""The gate in front of a QuickFIX acceptor: QuickFIX is handed a connection only once its
first message has arrived whole.

QuickFIX C++'s SocketAcceptor serves all of its connections on one thread, and reads a new
connection's first message whole before it serves anything else, waiting up to 1 s for each
next byte. A peer that sends its Logon a byte at a time would hold every other session's
orders and heartbeats for as long as it kept sending. So the public socket is the gate's.
It takes each connection, looks at what has arrived without reading it (`MSG_PEEK`), and
closes the connection if it is not FIX, if its first message is larger than a Logon can be,
or if that message is not whole within the deadline. Once it is whole, the connection goes
to QuickFIX, with its bytes still unread in the kernel:

1. The gate connects to QuickFIX's listening socket. That socket is a Unix socket, in a
   directory only the gateway's user can reach (`qflisten.GatedAcceptor` put it under
   QuickFIX's descriptor).
2. QuickFIX accepts the connection, which has sent nothing. The gate finds QuickFIX's end
   among the process's descriptors: the one accepted on that path, and opened by this
   process (`SO_PEERCRED`).
3. The gate puts the OMS's own socket under that descriptor (`os.dup2`). QuickFIX knows its
   connections by descriptor only: from then on it reads and writes the OMS's socket, and
   it finds the first message whole at its first read.

Nothing is copied or relayed: after the handover the gate is out of the way. It waits
for more bytes with `SO_RCVLOWAT` rather than by reading, which is why it needs Linux (as
`qflisten` already does).
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import select
import socket
import stat
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from fixgw.fix.own_sockets import open_fds
from fixgw.ops.log_budget import LogBudget

log = structlog.get_logger("fixgw.fix.logon_gate")

MAX_FIRST_MESSAGE_BYTES = 16_384
"""A Logon is a few hundred bytes; larger is not a Logon."""
MAX_WAITING = 64
"""Connections waiting at once for their first message to be whole; past it, refused."""
HANDOVER_SOCKET = "handover.sock"
"""The Unix socket QuickFIX listens on, in the directory given (the bridge's store)."""
HANDOVER_WAIT_S = 10.0
"""How long QuickFIX may take to accept the gate's connection: its thread may be waiting on a
stalled loop (`acceptor.HANDOVER_TIMEOUT_S` per OMS message)."""

_HEADER = re.compile(rb"8=[^\x01=]{1,32}\x019=(\d{1,9})\x01")
_CHECKSUM_BYTES = len(b"10=000\x01")
_END = re.compile(rb"\x0110=\d{3}\x01")
"""The last field's end and the CheckSum field: where BodyLength says the message ends."""
_PEERCRED = struct.Struct("3i")
"""`struct ucred`: pid, uid, gid."""
REFUSALS_LOGGED = ("timeout", "not_fix", "too_many_waiting", "not_logged_on")
"""The refusals logged as warnings, each kind with a `LogBudget` of its own."""


class NotFix(ValueError):
    """The bytes cannot start a FIX message, or start one larger than a Logon can be."""


def first_message_length(data: bytes) -> int | None:
    """The length of the FIX message `data` starts with, from its BodyLength; None while
    its first two fields have not all arrived. NotFix if they cannot start a FIX message."""
    header = _HEADER.match(data)
    if header is None:
        if len(data) > 48 or not _could_start_header(data):
            raise NotFix("its first bytes are not a FIX message")
        return None
    length = header.end() + int(header[1]) + _CHECKSUM_BYTES
    if length > MAX_FIRST_MESSAGE_BYTES:
        raise NotFix(f"its first message is longer than {MAX_FIRST_MESSAGE_BYTES} bytes")
    return length


def check_ends_where_said(data: bytes, length: int) -> None:
    """NotFix unless the message of `length` bytes `data` starts with ends there with its
    CheckSum. QuickFIX looks for the CheckSum from where BodyLength says it is onwards: one
    further on would have it wait, reading this connection alone, for bytes still to come."""
    if _END.fullmatch(data, length - len(b"\x0110=000\x01"), length) is None:
        raise NotFix("its first message does not end where its BodyLength says")


def _could_start_header(data: bytes) -> bool:
    """Whether more bytes could still make `data` the start of `8=...<SOH>9=<digits><SOH>`."""
    if not b"8=".startswith(data[:2]):
        return False
    begin, soh, rest = data[2:].partition(b"\x01")
    if b"=" in begin or len(begin) > 32 or (soh and not begin):
        return False
    if not soh:
        return True
    if not b"9=".startswith(rest[:2]):
        return False
    digits = rest[2:]
    return digits.isdigit() or not digits


def peer_of(sock: socket.socket) -> str:
    try:
        return str(sock.getpeername()[0])
    except OSError:
        return "unknown"


@dataclass(frozen=True, slots=True)
class _Handed:
    """A connection QuickFIX was handed: under descriptor `fd`, the socket `identity` (device,
    inode) names, so that a descriptor number taken again by another is not mistaken for it."""

    fd: int
    identity: tuple[int, int]
    peer: str
    first: bytes
    deadline: float


@dataclass(slots=True)
class _Waiting:
    sock: socket.socket
    peer: str
    deadline: float
    received: int = field(default=0)


class LogonGate:
    """Takes connections on `listener` and hands each to QuickFIX through `handover_path`
    once its first message is whole; closes it if that is not within `timeout_s`.

    QuickFIX answers a Logon it refuses by closing the connection, but one it cannot read (a
    HeartBtInt missing, say) it neither answers nor closes, and the connection holds its
    session: the OMS's own Logon is then dropped. So a connection handed over whose session
    `logged_on(first)` does not say is logged on `timeout_s` later is shut down.

    `screen(first, peer)` looks at a whole first message before QuickFIX gets it: a reason
    (the metric's) closes the connection instead (`screen` logs why).

    `on_handover(peer, first)` is called just before QuickFIX is handed a connection from
    `peer` whose first message is `first`,
    `on_refused(reason)` for each connection closed here (`timeout`, `not_fix`,
    `too_many_waiting`, `closed`, `handover_failed`, `not_logged_on`), all on the gate's
    thread."""

    def __init__(
        self,
        listener: socket.socket,
        handover_path: str,
        timeout_s: float,
        on_handover: Callable[[str, bytes], None] = lambda peer, first: None,
        on_refused: Callable[[str], None] = lambda reason: None,
        logged_on: Callable[[bytes], bool] = lambda first: True,
        screen: Callable[[bytes, str], str | None] = lambda first, peer: None,
    ) -> None:
        self._listener = listener
        self._screen = screen
        self._logged_on = logged_on
        self._handed: list[_Handed] = []
        self._handover_path = handover_path
        self._timeout_s = timeout_s
        self._on_handover = on_handover
        self._on_refused = on_refused
        self._waiting: dict[int, _Waiting] = {}
        self._wake_read, self._wake_write = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._stopping = False
        self._strangers_suspected = False
        self._thread = threading.Thread(target=self._run, name="fixgw-logon-gate", daemon=True)
        self._refusal_logs = {reason: LogBudget(log) for reason in REFUSALS_LOGGED}
        self._closed_by_peer_log = LogBudget(log, "info")
        self._not_taken_log = LogBudget(log)
        self._stranger_log = LogBudget(log)

    def start(self) -> None:
        self._listener.setblocking(False)
        self._thread.start()

    def look_for_strangers(self) -> None:
        """QuickFIX has accepted a connection: if it is not one of the gate's, it is shut
        down (`_shut_down_strangers`), on the gate's thread, soon."""
        self._strangers_suspected = True
        with contextlib.suppress(OSError):  # full: a wake-up is pending already
            os.write(self._wake_write, b"s")

    def stop(self) -> None:
        """No connection is taken or handed over from now on; those waiting are closed."""
        if self._stopping:
            return
        self._stopping = True
        with contextlib.suppress(BlockingIOError):  # full: a wake-up is pending already
            os.write(self._wake_write, b"x")
        if self._thread.is_alive():
            self._thread.join(HANDOVER_WAIT_S + 1)
        os.close(self._wake_write)

    def _run(self) -> None:
        poller = select.poll()
        poller.register(self._listener, select.POLLIN)
        poller.register(self._wake_read, select.POLLIN)
        try:
            while not self._stopping:
                try:
                    for fd, events in poller.poll(self._poll_timeout_ms()):
                        if self._stopping:
                            break
                        self._serve(poller, fd, events)
                    self._expire(poller)
                except Exception:
                    log.exception("the bridge's logon gate failed; it goes on")
                    time.sleep(0.1)
        finally:
            for waiting in list(self._waiting.values()):
                self._close(poller, waiting)
            self._listener.close()
            os.close(self._wake_read)

    def _serve(self, poller: select.poll, fd: int, events: int) -> None:
        if fd == self._listener.fileno():
            self._accept(poller)
            return
        if fd == self._wake_read:
            with contextlib.suppress(BlockingIOError):
                os.read(self._wake_read, 4096)
            if self._strangers_suspected:
                self._strangers_suspected = False
                self._shut_down_strangers()
            return
        waiting = self._waiting.get(fd)
        if waiting is None:
            return
        try:
            self._examine(poller, waiting, events)
        except Exception:
            log.exception(
                "bridge connection closed: the logon gate failed on it", peer=waiting.peer
            )
            self._close(poller, waiting)
            self._on_refused("handover_failed")

    def _shut_down_strangers(self) -> list[int]:
        """Shuts down the connections QuickFIX accepted on the handover socket that another
        process opened (a process of the gateway's user, around the gate); returns those the
        gate opened."""
        ours, strangers = _accepted_on(self._handover_path)
        for fd in strangers:
            _shut_down(fd)
            self._stranger_log.line(
                "a connection to the bridge's handover socket from another process was shut "
                "down: connections reach QuickFIX through the gate only",
                descriptor=fd,
            )
        return ours

    def _poll_timeout_ms(self) -> int | None:
        deadlines = [w.deadline for w in self._waiting.values()]
        deadlines += [h.deadline for h in self._handed]
        if not deadlines:
            return None
        soonest = min(deadlines)
        return max(0, int((soonest - time.monotonic()) * 1000) + 1)

    def _accept(self, poller: select.poll) -> None:
        while True:
            try:
                sock, _ = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno in (errno.ECONNABORTED, errno.EPROTO):
                    continue  # gone before it was taken
                # out of descriptors or memory: the connection waits in the backlog
                self._not_taken_log.line("bridge connection not taken yet", why=exc.strerror)
                time.sleep(0.1)
                return
            peer = peer_of(sock)
            if len(self._waiting) >= MAX_WAITING:
                self._refuse(
                    sock,
                    peer,
                    "too_many_waiting",
                    f"{MAX_WAITING} connections are already waiting for their Logon",
                )
                continue
            sock.setblocking(False)
            waiting = _Waiting(sock, peer, time.monotonic() + self._timeout_s)
            self._waiting[sock.fileno()] = waiting
            poller.register(sock, select.POLLIN | select.POLLRDHUP)

    def _examine(self, poller: select.poll, waiting: _Waiting, events: int) -> None:
        try:
            data = waiting.sock.recv(MAX_FIRST_MESSAGE_BYTES + 1, socket.MSG_PEEK)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        waiting.received = len(data)
        if not data:
            self._close(poller, waiting)
            self._on_refused("closed")
            return
        try:
            length = first_message_length(data)
            first = None
            if length is not None and len(data) >= length:
                check_ends_where_said(data, length)
                first = data[:length]
        except NotFix as exc:
            self._close(poller, waiting, keep=True)
            self._refuse(waiting.sock, waiting.peer, "not_fix", str(exc))
            return
        if first is not None:
            self._close(poller, waiting, keep=True)
            refused = self._screen(first, waiting.peer)
            if refused is not None:
                self._on_refused(refused)
                waiting.sock.close()  # last: the peer sees its end once it is counted
                return
            self._hand_over(waiting, first)
            return
        if events & (select.POLLRDHUP | select.POLLHUP | select.POLLERR):
            self._close(poller, waiting)
            self._closed_by_peer_log.line(
                "bridge connection closed by its peer before its first message was whole",
                peer=waiting.peer,
                bytes_received=len(data),
            )
            self._on_refused("closed")
            return
        # woken again only once more bytes than these are there, or the peer is gone
        waiting.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT, length or len(data) + 1)

    def _expire(self, poller: select.poll) -> None:
        now = time.monotonic()
        due = [h for h in self._handed if h.deadline <= now]
        self._handed = [h for h in self._handed if h.deadline > now]
        for handed in due:
            self._check_logged_on(handed)
        for waiting in [w for w in self._waiting.values() if w.deadline <= now]:
            self._close(poller, waiting, keep=True)
            self._refuse(
                waiting.sock,
                waiting.peer,
                "timeout",
                f"no whole Logon within {self._timeout_s:g} s (bridge.logon_timeout_s)",
                bytes_received=waiting.received,
            )

    def _close(self, poller: select.poll, waiting: _Waiting, keep: bool = False) -> None:
        fd = waiting.sock.fileno()
        if self._waiting.pop(fd, None) is not None:
            poller.unregister(fd)
        if not keep:
            waiting.sock.close()

    def _check_logged_on(self, handed: _Handed) -> None:
        """Shuts the connection down if QuickFIX still holds it and its session is not
        logged on: a Logon QuickFIX neither took nor refused."""
        try:
            now = os.fstat(handed.fd)
        except OSError:
            return  # closed by QuickFIX
        if (now.st_dev, now.st_ino) != handed.identity or self._logged_on(handed.first):
            return
        self._refusal_logs["not_logged_on"].line(
            "bridge connection closed: its Logon was neither taken nor refused within "
            f"{self._timeout_s:g} s (bridge.logon_timeout_s); it held its session",
            peer=handed.peer,
        )
        self._on_refused("not_logged_on")
        _shut_down(handed.fd)

    def _refuse(self, sock: socket.socket, peer: str, reason: str, why: str, **more: int) -> None:
        """Logged and counted, then closed: the peer sees its end once it is said."""
        self._refusal_logs[reason].line("bridge connection closed: " + why, peer=peer, **more)
        self._on_refused(reason)
        sock.close()

    def _hand_over(self, waiting: _Waiting, first: bytes) -> None:
        sock = waiting.sock
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT, 1)
            self._on_handover(waiting.peer, first)
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as ours:
                ours.settimeout(HANDOVER_WAIT_S)
                ours.connect(self._handover_path)
                theirs = self._quickfix_end()
                os.dup2(sock.fileno(), theirs, inheritable=False)
                handed = os.fstat(theirs)
            self._handed.append(
                _Handed(
                    theirs,
                    (handed.st_dev, handed.st_ino),
                    waiting.peer,
                    first,
                    time.monotonic() + self._timeout_s,
                )
            )
        except Exception as exc:
            log.error(
                "bridge connection closed: it could not be handed to QuickFIX",
                peer=waiting.peer,
                why=str(exc),
            )
            self._on_refused("handover_failed")
        finally:
            sock.close()  # the OMS's socket lives on under QuickFIX's descriptor

    def _quickfix_end(self) -> int:
        """QuickFIX's end of the gate's connection, once it has accepted it. Any other
        connection to the handover socket (another process of the gateway's user) is shut
        down: it would reach QuickFIX without the gate."""
        deadline = time.monotonic() + HANDOVER_WAIT_S
        pause = 0.001
        while True:
            ours = self._shut_down_strangers()
            if len(ours) == 1:
                return ours[0]
            if len(ours) > 1:
                for fd in ours:
                    _shut_down(fd)
                raise RuntimeError(f"{len(ours)} connections of the gate's waited in QuickFIX")
            if time.monotonic() > deadline:
                raise RuntimeError(f"QuickFIX did not take the connection in {HANDOVER_WAIT_S} s")
            time.sleep(pause)
            pause = min(pause * 2, 0.05)  # each look goes through every descriptor


def _accepted_on(path: str) -> tuple[list[int], list[int]]:
    """The connected Unix sockets of this process accepted on `path`: those opened by this
    process, and those opened by another."""
    ours: list[int] = []
    strangers: list[int] = []
    pid = os.getpid()
    for fd in open_fds(stat.S_ISSOCK):
        try:
            sock = socket.socket(fileno=os.dup(fd))
        except OSError:
            continue
        with sock:
            try:
                if sock.family != socket.AF_UNIX or sock.getsockname() != path:
                    continue
                if sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN):
                    continue
                cred = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _PEERCRED.size)
            except OSError:
                continue
        (ours if _PEERCRED.unpack(cred)[0] == pid else strangers).append(fd)
    return ours, strangers


def _shut_down(fd: int) -> None:
    with contextlib.suppress(OSError), socket.socket(fileno=os.dup(fd)) as sock:
        sock.shutdown(socket.SHUT_RDWR)


def handover_listener(directory: Path) -> tuple[socket.socket, str, int]:
    """A Unix socket listening in `directory` (which only the gateway's user can reach), its
    address, and a descriptor of `directory` to keep open while the socket is in use.

    The address goes through that descriptor (`/proc/self/fd/<n>/handover.sock`): a Unix
    socket's path may be at most 107 bytes, and `directory` may be longer. A socket left
    there by a gateway that did not stop cleanly is replaced."""
    dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    path = f"/proc/self/fd/{dir_fd}/{HANDOVER_SOCKET}"
    try:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)  # left by a gateway that did not stop cleanly
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            listener.bind(path)
            listener.listen(socket.SOMAXCONN)
            listener.setblocking(False)  # as QuickFIX's SocketMonitor sets its own
        except OSError:
            listener.close()
            raise
    except OSError:
        os.close(dir_fd)
        raise
    return listener, path, dir_fd
