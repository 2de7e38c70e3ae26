"""`fixgw top` in a pseudo-terminal: it starts on the full screen, a fill shows up as the
exchange makes it, and `q` or Ctrl-C leaves the terminal as it was (the normal screen back,
the cursor shown, the keyboard's mode restored)."""

from __future__ import annotations

import re
import subprocess
import sys
import termios
from collections.abc import Iterator

import pytest

from fixgw.testing import LocalStack
from tests.integration.conftest import EventLog
from tests.integration.terminal import Terminal, terminal_env

ALTERNATE_SCREEN_ON = b"\x1b[?1049h"
ALTERNATE_SCREEN_OFF = b"\x1b[?1049l"
CURSOR_SHOWN = b"\x1b[?25h"


@pytest.fixture
def top(stack: LocalStack) -> Iterator[Terminal]:
    terminal = Terminal(["top", "--utc", "--socket", stack.socket_path], terminal_env())
    try:
        terminal.wait_for("top of book")
        yield terminal
    finally:
        terminal.close()


def assert_left_as_it_was(terminal: Terminal) -> None:
    output = bytes(terminal.output)
    assert output.count(ALTERNATE_SCREEN_ON) == 1
    assert output.rindex(ALTERNATE_SCREEN_OFF) > output.rindex(ALTERNATE_SCREEN_ON)
    assert output.rindex(CURSOR_SHOWN) > output.rindex(ALTERNATE_SCREEN_ON)
    assert terminal.modes() == terminal.modes_at_start  # echo and line editing back


def test_top_shows_the_session_and_a_fill_as_it_happens_and_q_quits(
    stack: LocalStack, top: Terminal
) -> None:
    text = top.text()
    assert re.search(r"session +up +FIX\.4\.4:\S+ +\(ready\)", text)
    assert re.search(r"seq nums +next out \d+, next in \d+", text)
    assert re.search(r"halted +no", text)
    assert re.search(r"throttle +0 queued", text)
    assert "open orders (0)" in text
    # while it runs, the keyboard is read a key at a time, without echo
    assert not termios.tcgetattr(top.far_end)[3] & termios.ICANON

    with stack.client() as gw:
        gw.subscribe(["orders"])
        gw.new_order(  # crosses the seeded ask of 1.2 @ 30010
            symbol="BTC/USD", side="buy", type="limit", qty="0.5", price="30010", cl_ord_id="top-f"
        )
        gw.new_order(
            symbol="BTC/USD", side="sell", type="limit", qty="1", price="31000", cl_ord_id="top-r"
        )
        EventLog(gw).find("top-r", "order.accepted")
    for shown in (
        r"open orders \(1\)",
        r"top-r +BTC/USD +sell +limit +1 +31000 ",  # resting
        r"\d\d:\d\d:\d\d\.\d{3} +BTC/USD +buy +0\.5 +30010 +top-f",  # the fill
        r"BTC/USD +1\.5 +29990 +30010 +0\.7 ",  # the book's top after it
        r"heartbeat rtt +\d+\.\d ms",  # a TestRequest answered since the logon
    ):
        top.wait_for_match(shown)

    top.type(b"q")
    assert top.wait(20) == 0
    assert_left_as_it_was(top)


def test_ctrl_c_quits_top_cleanly_too(top: Terminal) -> None:
    top.type(b"\x03")
    assert top.wait(20) == 0
    assert_left_as_it_was(top)
    assert "Traceback" not in top.text()


def test_top_wants_a_terminal(stack: LocalStack) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "fixgw", "top", "--socket", stack.socket_path],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "needs a terminal" in done.stderr
