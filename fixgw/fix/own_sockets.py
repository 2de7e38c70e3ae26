"""This process's own sockets, found through its descriptors: QuickFIX's, which the binding
does not expose (qfpoll), and whether a loopback connection comes from one of them (the TLS
pipe)."""

from __future__ import annotations

import contextlib
import os
import socket
import stat
from collections.abc import Callable
from typing import Any


def open_fds(kind: Callable[[int], bool]) -> set[int]:
    fds = set()
    for name in os.listdir("/proc/self/fd" if os.path.isdir("/proc/self/fd") else "/dev/fd"):
        with contextlib.suppress(OSError):
            if kind(os.fstat(int(name)).st_mode):
                fds.add(int(name))
    return fds


def peek(fd: int) -> tuple[int, Any, Any] | None:
    """Family, local and peer address of socket `fd`, without taking it over."""
    try:
        s = socket.socket(fileno=os.dup(fd))
    except OSError:
        return None
    try:
        try:
            peer = s.getpeername()
        except OSError:
            peer = None
        return s.family, s.getsockname(), peer
    finally:
        s.close()


def from_this_process(peer: Any, local: Any) -> bool:
    """Whether the connection accepted on `local` from `peer` (each host, port) was opened
    by this process: one of its sockets leads from `peer` to `local`."""
    for fd in open_fds(stat.S_ISSOCK):
        about = peek(fd)
        if about is not None and about[1] == peer and about[2] == local:
            return True
    return False
