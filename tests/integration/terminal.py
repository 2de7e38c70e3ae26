"""The real `fixgw` command in a pseudo-terminal, as a person at a terminal runs it.

The child's stdin, stdout and stderr are the pty's far end, sized by TIOCSWINSZ, with
TERM=xterm-256color; the test reads what the terminal would show (escape codes and all) from
the near end, and types into it. Every wait is bounded.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Callable
from pathlib import Path

ESCAPES = re.compile(rb"\x1b\[[0-?]*[ -/]*[@-~]|\x1b[()][0-9A-B]|\x1b[=>]")
COLOUR = re.compile(rb"\x1b\[(?:[0-9;]*;)?(?:3[0-7]|9[0-7]|38;5;\d+|38;2;[\d;]+)(?:;[0-9;]*)?m")
"""An SGR sequence that sets a foreground colour (not bold, dim or a reset alone)."""

PASSED_ON = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "PYTHONPATH", "VIRTUAL_ENV")


def terminal_env(**extra: str) -> dict[str, str]:
    """A person's terminal: TERM set, no colour settings or sizes inherited from the test's
    environment (COLUMNS would override the window size)."""
    env = {key: os.environ[key] for key in PASSED_ON if key in os.environ}
    env.update(TERM="xterm-256color", **extra)
    return env


def plain_text(output: bytes) -> str:
    """What the terminal shows, without the escape codes."""
    return ESCAPES.sub(b"", output).decode(errors="replace").replace("\r\n", "\n")


def _take_as_controlling_terminal() -> None:
    """In the child, a session leader: the pty becomes its terminal, so Ctrl-C typed into it
    is SIGINT, as at a person's terminal."""
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


class Terminal:
    def __init__(
        self, args: list[str], env: dict[str, str], cols: int = 160, rows: int = 48
    ) -> None:
        self.master, self.far_end = pty.openpty()
        fcntl.ioctl(self.far_end, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        self.modes_at_start = termios.tcgetattr(self.far_end)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "fixgw", *args],
            stdin=self.far_end,
            stdout=self.far_end,
            stderr=self.far_end,
            env=env,
            cwd=Path(__file__).resolve().parents[2],
            start_new_session=True,
            preexec_fn=_take_as_controlling_terminal,
        )
        self.output = bytearray()

    def modes(self) -> list[object]:
        """The terminal's modes now (termios), as the command left them."""
        return list(termios.tcgetattr(self.far_end))

    def _read(self, timeout: float) -> bool:
        """What the command wrote within `timeout`; False if nothing came."""
        if not select.select([self.master], [], [], timeout)[0]:
            return False
        self.output += os.read(self.master, 65536)
        return True

    def wait_for(self, text: str | bytes, timeout: float = 20) -> None:
        """Until `text` shows (in the escape-free text, for a str)."""
        self.wait_until(
            lambda: text in self.output if isinstance(text, bytes) else text in self.text(),
            f"{text!r} to show",
            timeout,
        )

    def wait_for_match(self, pattern: str, timeout: float = 20) -> None:
        """Until the escape-free text has a match of `pattern`."""
        self.wait_until(lambda: re.search(pattern, self.text()) is not None, pattern, timeout)

    def wait_until(self, check: Callable[[], bool], what: str, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while not check():
            if time.monotonic() > deadline or (
                self.process.poll() is not None and not self._read(0.1)
            ):
                raise TimeoutError(f"no {what}; the terminal has: {self.text()!r}")
            self._read(0.1)

    def type(self, keys: bytes) -> None:
        os.write(self.master, keys)

    def wait(self, timeout: float = 30) -> int:
        """The exit status, once the command has ended and its output is all read."""
        deadline = time.monotonic() + timeout
        while self.process.poll() is None and time.monotonic() < deadline:
            self._read(0.1)
        while self._read(0.2):
            pass
        return self.process.wait(max(0.1, deadline - time.monotonic()))

    def text(self) -> str:
        return plain_text(bytes(self.output))

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        for fd in (self.master, self.far_end):
            with contextlib.suppress(OSError):
                os.close(fd)


def run_in_terminal(
    args: list[str], timeout: float = 30, cols: int = 160, **env: str
) -> tuple[int, bytes]:
    """Run a command to its end in a terminal: its exit status and what it wrote."""
    terminal = Terminal(args, terminal_env(**env), cols=cols)
    try:
        return terminal.wait(timeout), bytes(terminal.output)
    finally:
        terminal.close()
