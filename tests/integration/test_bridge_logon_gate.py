"""The bridge's logon gate, against real connections: QuickFIX serves every OMS connection on
one thread and reads a new connection's first message whole before anything else, so a peer
that sent its Logon slowly held every other OMS session. QuickFIX now gets a connection only
once its first message is whole; one that is not whole in `bridge.logon_timeout_s`, or is
not FIX, is closed before it gets there (`fixgw/fix/logon_gate.py`)."""

from __future__ import annotations

import math
import socket
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from fixgw.ops.log_budget import BURST, PER_S
from fixgw.testing import LocalStack, wait_until
from tests.counterparties.raw_oms import RawOms
from tests.integration.conftest import StackFactory
from tests.integration.test_bridge_raw_oms import PASSWORD, bridged, logged, order, report

pytestmark = pytest.mark.integration

LOGON_TIMEOUT_S = 1.5


@dataclass
class Bridge:
    stack: LocalStack
    port: int
    trading: RawOms
    """Logged on: the session a stranger must not hold."""
    second: str
    """The CompID of a second session, not logged on."""
    open: str
    """The CompID of a session with no password, not logged on."""

    def oms(self, comp_id: str) -> RawOms:
        return RawOms(self.port, comp_id, password=PASSWORD)

    def closed_count(self, reason: str) -> float:
        url = f"http://127.0.0.1:{self.stack.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as r:
            text = r.read().decode()
        name = f'fixgw_bridge_connections_closed_total{{reason="{reason}"}} '
        found = [line for line in text.splitlines() if line.startswith(name)]
        return float(found[0].split()[-1]) if found else 0.0


@pytest.fixture
def bridge(make_stack: StackFactory) -> Iterator[Bridge]:
    first, second, open_ = (f"GATE-{uuid.uuid4().hex[:8]}" for _ in range(3))
    stack, port = bridged(
        make_stack, [first, second], without_password=[open_], logon_timeout_s=LOGON_TIMEOUT_S
    )
    trading = RawOms(port, first, password=PASSWORD)
    trading.start()
    yield Bridge(stack, port, trading, second, open_)
    trading.logout()
    trading.check_valid()
    assert stack.gateway is not None
    assert PASSWORD not in stack.gateway.log()


class Trickle:
    """A peer that sends `data` a byte at a time, every `every_s`, until it has sent it all
    or its connection is closed."""

    def __init__(self, port: int, data: bytes, every_s: float) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.data, self.every_s = data, every_s
        self.sent = 0
        self.closed_by_bridge = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            for i in range(len(self.data)):
                self.sock.sendall(self.data[i : i + 1])
                self.sent += 1
                time.sleep(self.every_s)
        except OSError:
            self.closed_by_bridge.set()

    def close(self) -> None:
        self.sock.close()
        self._thread.join(5)


def ends(sock: socket.socket, within: float) -> bool:
    """Whether the bridge closes `sock` within `within` seconds (what it sends first, a
    Logout say, read and dropped): the peer reads the end, or a reset when bytes it sent
    were still unread."""
    deadline = time.monotonic() + within
    try:
        while (left := deadline - time.monotonic()) > 0:
            sock.settimeout(left)
            if sock.recv(4096) == b"":
                return True
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True
    return False


def closed_lines(bridge: Bridge, why: str) -> list[dict[str, object]]:
    return logged(bridge.stack, "bridge connection closed: " + why)


def test_a_logon_sent_a_byte_at_a_time_holds_no_other_session_and_is_closed_in_time(
    bridge: Bridge,
) -> None:
    """The stranger would take about 40 s to send its Logon: meanwhile the session logged on
    places an order and is answered as if the stranger were not there."""
    stranger = bridge.oms(bridge.second).encode("A", [(98, 0), (108, 30), (554, "x")])
    trickle = Trickle(bridge.port, stranger, every_s=0.25)
    try:
        wait_until(lambda: trickle.sent >= 3, 5, "the stranger's first bytes sent")
        bridge.trading.send("D", order("GATE-1", "1", "0.1", "29000"))
        assert report(bridge.trading, "GATE-1", "0", timeout=LOGON_TIMEOUT_S + 2)[39] == "0"
        assert ends(trickle.sock, LOGON_TIMEOUT_S + 5), "the bridge kept the stranger"
        assert trickle.sent < len(stranger)
    finally:
        trickle.close()
    why = f"no whole Logon within {LOGON_TIMEOUT_S:g} s (bridge.logon_timeout_s)"
    wait_until(lambda: closed_lines(bridge, why), 5, "the stranger's closing logged")
    line = closed_lines(bridge, why)[0]
    assert line["peer"] == "127.0.0.1"
    assert 0 < int(str(line["bytes_received"])) < len(stranger)
    assert bridge.closed_count("timeout") == 1
    bridge.trading.send("D", order("GATE-2", "1", "0.1", "29000"))
    assert report(bridge.trading, "GATE-2", "0")[39] == "0"


def test_a_connection_that_sends_nothing_is_closed_after_the_logon_timeout(
    bridge: Bridge,
) -> None:
    """QuickFIX would keep it open for ever: a descriptor per idle connection."""
    with socket.create_connection(("127.0.0.1", bridge.port), timeout=5) as idle:
        assert ends(idle, LOGON_TIMEOUT_S + 5)
    assert bridge.closed_count("timeout") == 1


@pytest.mark.parametrize(
    ("first_bytes", "reason", "why"),
    [
        (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "not_fix", "its first bytes are not a FIX message"),
        (
            b"8=FIX.4.4\x019=999999\x0135=A\x01",
            "not_fix",
            "its first message is longer than 16384 bytes",
        ),
        (  # QuickFIX would look further on for the CheckSum, reading this connection alone
            b"8=FIX.4.4\x019=5\x0135=A\x0149=XXXX",
            "not_fix",
            "its first message does not end where its BodyLength says",
        ),
    ],
)
def test_bytes_that_cannot_be_a_logon_are_closed_at_once_and_said_why(
    bridge: Bridge, first_bytes: bytes, reason: str, why: str
) -> None:
    with socket.create_connection(("127.0.0.1", bridge.port), timeout=5) as peer:
        peer.sendall(first_bytes)
        assert ends(peer, LOGON_TIMEOUT_S / 2)  # at once, not at the logon timeout
    wait_until(lambda: closed_lines(bridge, why), 5, "the closing logged")
    assert bridge.closed_count(reason) == 1
    bridge.trading.send("D", order("GATE-3", "1", "0.1", "29000"))
    assert report(bridge.trading, "GATE-3", "0")[39] == "0"


def test_a_logon_in_pieces_is_waited_for_and_the_session_then_trades(bridge: Bridge) -> None:
    """An OMS whose Logon arrives in pieces, within the timeout, is logged on: the gate
    reads nothing, so QuickFIX gets the Logon whole from the OMS's own socket."""
    oms = bridge.oms(bridge.second)
    logon = oms.encode("A", [(98, 0), (108, 30), (554, PASSWORD)])
    oms.connect()
    try:
        oms.send_raw(logon[:7])  # not even BodyLength yet
        time.sleep(0.3)
        oms.send_raw(logon[7:40])
        time.sleep(0.3)
        oms.send_raw(logon[40:])
        oms.wait_for(lambda m: m.msg_type == "A", 10)
        oms.logged_on = True
        oms.send("D", order("PIECES-1", "2", "0.2", "31000"))
        assert report(oms, "PIECES-1", "0")[39] == "0"
    finally:
        oms.logout()
    oms.check_valid()
    assert bridge.closed_count("timeout") == 0


def test_a_flood_of_idle_connections_is_bounded_and_an_oms_logs_on_once_it_has_passed(
    bridge: Bridge,
) -> None:
    """At most 64 connections wait for their Logon at once; past that each is closed on
    arrival. The session logged on is served throughout."""
    flood = [socket.create_connection(("127.0.0.1", bridge.port), timeout=5) for _ in range(70)]
    try:
        refused = "64 connections are already waiting for their Logon"
        wait_until(lambda: len(closed_lines(bridge, refused)) == 6, 5, "six refused")
        bridge.trading.send("D", order("FLOOD-1", "1", "0.1", "29000"))
        assert report(bridge.trading, "FLOOD-1", "0")[39] == "0"
    finally:
        for sock in flood:
            sock.close()
    assert bridge.closed_count("too_many_waiting") == 6
    oms = bridge.oms(bridge.second)
    oms.start()
    oms.logout()
    oms.check_valid()


def test_logons_refused_at_once_are_each_logged_with_their_own_peer(bridge: Bridge) -> None:
    """QuickFIX names no peer; several connections' logons refused together must not take
    each other's (unknown CompIDs from eight addresses, and a wrong password)."""
    connections = []
    for n in range(2, 10):
        logon = RawOms(bridge.port, f"NOPE-{n}").encode("A", [(98, 0), (108, 30)])
        sock = socket.create_connection(
            ("127.0.0.1", bridge.port), timeout=5, source_address=(f"127.0.0.{n}", 0)
        )
        connections.append((sock, logon))
    guess = bridge.oms(bridge.second)
    guess.password = "guess"
    wrong = socket.create_connection(
        ("127.0.0.1", bridge.port), timeout=5, source_address=("127.0.0.11", 0)
    )
    connections.append((wrong, guess.encode("A", [(98, 0), (108, 30), (554, "guess")])))
    for sock, logon in connections:
        sock.sendall(logon)
    for sock, _ in connections:
        assert ends(sock, 10)
        sock.close()

    def refused() -> dict[str, object]:
        lines = logged(bridge.stack, "OMS logon refused")
        return {str(line.get("sender_comp_id", line.get("oms"))): line["peer"] for line in lines}

    wait_until(lambda: len(refused()) == 9, 10, "nine refusals logged")
    assert refused() == {
        **{f"NOPE-{n}": f"127.0.0.{n}" for n in range(2, 10)},
        bridge.second: "127.0.0.11",
    }


def test_a_connection_around_the_gate_to_quickfixs_own_socket_is_shut_down_at_once(
    bridge: Bridge,
) -> None:
    """The socket is in the store's directory, which only the gateway's user reaches; a
    process of that user (this test) still does not reach QuickFIX around the gate."""
    handover = bridge.stack.root / "bridge-store" / "handover.sock"
    with socket.socket(socket.AF_UNIX) as around:
        around.connect(str(handover))
        assert ends(around, 10)
    event = "a connection to the bridge's handover socket from another process was shut down"
    wait_until(lambda: logged(bridge.stack, event), 5, "the shutdown logged")
    bridge.trading.send("D", order("AROUND-1", "1", "0.1", "29000"))
    assert report(bridge.trading, "AROUND-1", "0")[39] == "0"


def test_a_flood_of_connections_that_are_not_fix_is_counted_in_full_and_logged_within_bounds(
    bridge: Bridge,
) -> None:
    """200 strangers in a row, each closed at once: the metric counts every one, the log
    writes its first 10 lines and then about one a second, each later one saying how many it
    left out (`left_out`), so that the lines and their `left_out` add up to the 200. A second
    OMS logs on once they are gone."""
    why = "its first bytes are not a FIX message"
    started = time.monotonic()
    for _ in range(200):
        with socket.create_connection(("127.0.0.1", bridge.port), timeout=5) as stranger:
            stranger.sendall(b"GET / HTTP/1.1\r\n\r\n")
            assert ends(stranger, 5)

    def events_said() -> int:
        return sum(1 + int(line.get("left_out", 0)) for line in closed_lines(bridge, why))

    wait_until(lambda: events_said() == 200, 10, "the flood's last lines, with what they left out")
    elapsed_s = time.monotonic() - started
    lines = closed_lines(bridge, why)
    assert len(lines) <= BURST + math.ceil(elapsed_s * PER_S) + 1
    assert all("left_out" not in line for line in lines[:BURST])
    assert any(int(line.get("left_out", 0)) > 0 for line in lines[BURST:])
    assert bridge.closed_count("not_fix") == 200
    oms = bridge.oms(bridge.second)
    oms.start()
    oms.logout()
    oms.check_valid()


def test_a_logon_quickfix_neither_takes_nor_refuses_is_closed_and_frees_its_session(
    bridge: Bridge,
) -> None:
    """A Logon without HeartBtInt for a session with no password: QuickFIX cannot read it,
    so it neither answers nor closes, and the connection held the session for ever: the
    OMS's own Logon was dropped as a second connection."""
    squatter = RawOms(bridge.port, bridge.open)
    with socket.create_connection(("127.0.0.1", bridge.port), timeout=5) as squat:
        squat.sendall(squatter.encode("A", [(98, 0)]))
        assert ends(squat, LOGON_TIMEOUT_S + 5), "the connection kept its session"
    why = "its Logon was neither taken nor refused within 1.5 s (bridge.logon_timeout_s)"
    wait_until(lambda: closed_lines(bridge, why), 5, "the closing logged")
    assert closed_lines(bridge, why)[0]["peer"] == "127.0.0.1"
    assert bridge.closed_count("not_logged_on") == 1
    oms = RawOms(bridge.port, bridge.open)
    oms.start()
    oms.send("D", order("FREED-1", "1", "0.1", "29000"))
    assert report(oms, "FREED-1", "0")[39] == "0"
    oms.logout()
    oms.check_valid()
    assert bridge.closed_count("not_logged_on") == 1  # the OMS logged on: left alone


@pytest.mark.parametrize(
    ("logon", "reason", "says"),
    [
        ([(98, 0)], "wrong_password", "OMS logon refused: wrong or missing password"),
        (  # QuickFIX reads 049 as 49, the gate read the 49 after it: a session logged on
            "049=SECOND|49=TRADING|56=FIXGW|34=1|52=NOW|98=0|108=30",
            "not_a_logon",
            "bridge connection closed: its first message writes tag 49 as '049'",
        ),
        (
            "49=SECOND|49=TRADING|56=FIXGW|34=1|52=NOW|98=0|108=30",
            "not_a_logon",
            "bridge connection closed: its first message has tag 49 twice",
        ),
        (
            "49=SECOND|56=FIXGW|34=1|52=20200101-00:00:00|98=0|108=30|554=PASSWORD",
            "sending_time",
            "OMS logon refused: its SendingTime is more than 120 s from this machine's clock",
        ),
    ],
    ids=["no password", "a tag written 049", "CompID twice", "clock ten minutes off"],
)
def test_a_logon_a_session_with_a_password_could_not_take_never_reaches_quickfix(
    bridge: Bridge, logon: list[tuple[int, object]] | str, reason: str, says: str
) -> None:
    """A stranger without the password, a Logon QuickFIX reads otherwise than the gate, or
    one QuickFIX drops without a word: each closed at once, said, counted; the session's
    own OMS then logs on at once."""
    if isinstance(logon, str):
        body = (
            logon.replace("SECOND", bridge.second)
            .replace("TRADING", bridge.trading.sender)
            .replace("NOW", "20261207-12:00:00")
            .replace("PASSWORD", PASSWORD)
            .replace("|", "\x01")
            + "\x01"
        )
        logon_bytes = _framed("A", body)
    else:
        logon_bytes = bridge.oms(bridge.second).encode("A", logon)
    with socket.create_connection(("127.0.0.1", bridge.port), timeout=5) as squat:
        squat.sendall(logon_bytes)
        assert ends(squat, LOGON_TIMEOUT_S / 2), "not closed at once"
    wait_until(lambda: logged(bridge.stack, says), 5, "the refusal logged")
    assert logged(bridge.stack, says)[0]["peer"] == "127.0.0.1"
    assert bridge.closed_count(reason) == 1
    oms = bridge.oms(bridge.second)
    oms.start()
    oms.logout()
    oms.check_valid()


def _framed(msg_type: str, rest: str) -> bytes:
    """A FIX 4.4 message of MsgType `msg_type` and the fields `rest` as written, framed."""
    body = f"35={msg_type}\x01{rest}".encode()
    head = b"8=FIX.4.4\x019=%d\x01" % len(body)
    return head + body + b"10=%03d\x01" % (sum(head + body) % 256)


def test_a_flood_cut_short_by_a_stop_still_adds_up_in_the_log(bridge: Bridge) -> None:
    """What the log bound left out and had not yet said is written at the stop."""
    why = "its first bytes are not a FIX message"
    for _ in range(30):
        with socket.create_connection(("127.0.0.1", bridge.port), timeout=5) as stranger:
            stranger.sendall(b"GET / HTTP/1.1\r\n\r\n")
            assert ends(stranger, 5)
    bridge.trading.logout()
    assert bridge.stack.gateway is not None
    assert bridge.stack.gateway.stop() == 0
    lines = closed_lines(bridge, why)
    assert sum(1 + int(line.get("left_out", 0)) for line in lines) == 30
