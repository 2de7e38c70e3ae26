"""The systemd notify protocol (READY, WATCHDOG, STOPPING, STATUS), without a dependency.

Datagrams go to $NOTIFY_SOCKET (a path, or an abstract name starting with '@'); without it
every call does nothing. A failed send is logged, never raised.
"""

from __future__ import annotations

import os
import socket

import structlog

log = structlog.get_logger("fixgw.ops.notify")


def notify(*states: str) -> bool:
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    target = "\0" + address[1:] if address.startswith("@") else address
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.sendto("\n".join(states).encode(), target)
    except OSError as exc:
        log.warning("systemd notify failed", socket=address, error=str(exc))
        return False
    return True


def ready(status: str | None = None) -> bool:
    return notify("READY=1", *([f"STATUS={status}"] if status else []))


def status(text: str) -> bool:
    """What `systemctl status` shows."""
    return notify(f"STATUS={text}")


def watchdog() -> bool:
    return notify("WATCHDOG=1")


def stopping() -> bool:
    return notify("STOPPING=1")


def watchdog_period_s() -> float | None:
    """How often to ping: half of WatchdogSec, when the watchdog is on for this process."""
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec or not usec.isdigit() or (pid and pid != str(os.getpid())):
        return None
    return int(usec) / 2e6
