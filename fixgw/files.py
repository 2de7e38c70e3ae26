"""File modes: what fixgw writes is its own.

The daemons (`fixgw run`, `fixgw sim`) run with umask 077, whatever they were started with:
every file they or QuickFIX create is 0600 and every directory 0700, unless fixgw says
otherwise (the API socket takes `api.socket_mode`; a directory made for it lets through
those the mode lets in, and has the socket's group). QuickFIX's stores hold what was sent
as sent, Account (1) = `apiKey,secretKey` among it: `private_directory` also tightens a
store an older version or another umask left open.
"""

from __future__ import annotations

import os
from pathlib import Path

DAEMON_UMASK = 0o077


def private_umask() -> None:
    """From now on, new files are 0600 and new directories 0700 (at most)."""
    os.umask(os.umask(DAEMON_UMASK) | DAEMON_UMASK)


def private_directory(path: Path) -> None:
    """`path` made (with its parents) or tightened to 0700, and each file in it to 0600."""
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o700)
    for entry in path.iterdir():
        if entry.is_file() and not entry.is_symlink():
            entry.chmod(0o600)


def directories_for(path: Path, mode: int, gid: int | None = None) -> None:
    """Make `path`'s missing directories with `mode` (not the umask's), and group `gid` if
    given (not the process's); those there stay."""
    missing = []
    for parent in (path, *path.parents):
        if parent.exists():
            break
        missing.append(parent)
    for directory in reversed(missing):
        directory.mkdir(exist_ok=True)
        if gid is not None:
            os.chown(directory, -1, gid)
        directory.chmod(mode)
