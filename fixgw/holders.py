"""Which process holds a file's lock, a TCP port or a Unix socket, as Linux tells it (its
/proc, and the peer of a connection): what `check-config --running` needs to tell what the
running gateway holds itself from what another process holds."""

from __future__ import annotations

import os
import socket
import struct
from pathlib import Path

_PEERCRED = struct.Struct("3i")
"""struct ucred: pid, uid, gid."""

_TIME_WAIT = "06"
"""A connection closed a moment ago: it does not keep a server from binding (SO_REUSEADDR)."""


def lock_holders(path: Path) -> set[int]:
    """The processes holding a `flock` on `path` (/proc/locks); none if it has none, or
    cannot be told."""
    try:
        st = path.stat()
        locks = Path("/proc/locks").read_text(encoding="ascii").splitlines()
    except OSError:
        return set()
    file = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    holders = set()
    for line in locks:
        # "1: FLOCK  ADVISORY  WRITE 1234 fe:00:5678 0 EOF"; one waiting has "->" after "1:"
        fields = line.split()
        if len(fields) >= 6 and fields[1] == "FLOCK" and fields[5] == file:
            holders.add(int(fields[4]))
    return holders


def port_sockets(port: int) -> set[int]:
    """The inodes of the TCP sockets on this machine whose own port is `port`, on any
    address (listening, or a connection accepted on it), but those in TIME_WAIT."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text(encoding="ascii").splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            # sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid
            # timeout inode ...
            fields = row.split()
            local, state, inode = fields[1], fields[3], int(fields[9])
            if int(local.rsplit(":", 1)[1], 16) == port and state != _TIME_WAIT and inode:
                inodes.add(inode)
    return inodes


def socket_inodes(pid: int) -> set[int]:
    """The inodes of the sockets process `pid` has open. PermissionError if this user may
    not look (another user's process, and this user is not root)."""
    inodes = set()
    for fd in os.scandir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(fd.path)
        except OSError:
            continue  # closed since listed
        if target.startswith("socket:[") and target.endswith("]"):
            inodes.add(int(target[len("socket:[") : -1]))
    return inodes


def socket_server(path: Path) -> int | None:
    """The process serving the Unix socket at `path` (the one that listens on it), or None
    if nobody does or it cannot be told."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(str(path))
            pid, _, _ = _PEERCRED.unpack(
                probe.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _PEERCRED.size)
            )
        except OSError:
            return None
    return int(pid) if pid > 0 else None
