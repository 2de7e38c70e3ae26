"""A QuickFIX SocketInitiator run by the asyncio loop instead of by a thread of its own.

QuickFIX's `start()` runs the initiator's sockets on a C++ thread: every message received
is handed to the loop's thread, and every message sent wakes QuickFIX's thread through its
socket pair. Here the loop watches QuickFIX's sockets and calls `poll()` when one is ready,
so what the exchange sends is read and handled on the thread that handles everything else.
A tick drives QuickFIX's timers: connecting, heartbeats, logon and logout timeouts.

The sockets are QuickFIX's own: the loop watches duplicates of them (`os.dup`), so that
QuickFIX closing one never leaves the loop watching a number the system hands out again.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import socket
import stat
from collections.abc import Callable
from typing import Any

import structlog

from fixgw.fix.own_sockets import open_fds, peek

log = structlog.get_logger("fixgw.fix.qfpoll")

TICK_S = 0.05
"""QuickFIX's own thread wakes every second; a finer tick makes a connect complete sooner."""


def _is_wakeup(fd: int) -> bool:
    """QuickFIX's self-signalling pair: an unnamed Unix socket pair."""
    about = peek(fd)
    return about is not None and about[0] == socket.AF_UNIX and not about[1]


class LoopDrivenInitiator:
    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        make_initiator: Callable[[], Any],
        host: str,
        port: int,
    ) -> None:
        self._loop = loop
        self._host, self._port = host, port
        before = open_fds(stat.S_ISSOCK)
        self.initiator = make_initiator()
        self._wakeups = [
            os.dup(fd) for fd in sorted(open_fds(stat.S_ISSOCK) - before) if _is_wakeup(fd)
        ]
        if not self._wakeups:
            raise RuntimeError("QuickFIX's wake-up socket pair not found: cannot poll it")
        self._watched: list[int] = []
        self._tick: asyncio.TimerHandle | None = None

    def start(self) -> None:
        for fd in self._wakeups:
            self._loop.add_reader(fd, self._after_send)
        self.poll()
        self._tick = self._loop.call_later(TICK_S, self._on_tick)

    def poll(self) -> None:
        try:
            self.initiator.poll()
        except Exception:
            log.exception("QuickFIX poll failed")

    def _on_tick(self) -> None:
        self.poll()
        self._tick = self._loop.call_later(TICK_S, self._on_tick)

    def _after_send(self) -> None:
        """The first poll takes the signal (QuickFIX then watches the socket for writing),
        the second flushes what the send left queued and stops watching."""
        self.poll()
        self.poll()

    def watch_connection(self) -> None:
        """On the Logon sent: the connection QuickFIX opened to the exchange is up."""
        self.unwatch_connection()
        addresses = self._addresses()
        for fd in sorted(open_fds(stat.S_ISSOCK)):
            about = peek(fd)
            if (
                about is not None
                and about[0] in (socket.AF_INET, socket.AF_INET6)
                and about[2] is not None
                and about[2][1] == self._port
                and (addresses is None or about[2][0] in addresses)
            ):
                copy = os.dup(fd)
                self._watched.append(copy)
                self._loop.add_reader(copy, self.poll)
        if not self._watched:
            log.warning("QuickFIX's connection to the exchange not found; polling on the tick")

    def _addresses(self) -> set[str] | None:
        """The exchange's address if the config names one, else None (any address): a name
        is not looked up again on the loop, and no other socket here leads to its port."""
        try:
            return {str(ipaddress.ip_address(self._host))}
        except ValueError:
            return None

    @property
    def watched_peers(self) -> list[Any]:
        """Where the connections the loop watches lead (the exchange, once logged on)."""
        peers = []
        for fd in self._watched:
            about = peek(fd)
            peers.append(about[2] if about is not None else None)
        return peers

    def unwatch_connection(self) -> None:
        for fd in self._watched:
            self._loop.remove_reader(fd)
            os.close(fd)
        self._watched.clear()

    def stop(self) -> None:
        """After the Logout (see ExchangeSession.stop): no waiting left for QuickFIX to do."""
        if self._tick is not None:
            self._tick.cancel()
        self.unwatch_connection()
        for fd in self._wakeups:
            self._loop.remove_reader(fd)
            os.close(fd)
        self._wakeups.clear()
        self.initiator.stop(True)
