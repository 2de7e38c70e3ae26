"""The real `fixgw` against a running gateway, as a person at a terminal and as a script see
it: in a pseudo-terminal, aligned tables, summaries and one line per event or order, coloured
unless NO_COLOR says not; through a pipe (or with --json), the JSON lines it always printed,
byte for byte."""

from __future__ import annotations

import contextlib
import json
import os
import re
import select
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Any

import msgspec
import pytest

from fixgw.testing import LocalStack, wait_until
from tests.integration.conftest import EventLog, StackFactory
from tests.integration.terminal import (
    COLOUR,
    Terminal,
    plain_text,
    run_in_terminal,
    terminal_env,
)

ORDERS = {
    # cl_ord_id: (side, qty, price); the book's best ask is 1.2 @ 30010, its best bid 29990
    "fill-a": ("buy", "0.5", "30010"),
    "rest-b": ("buy", "12", "29000.5"),
    "rest-c": ("buy", "0.125", "28999.75"),
}


@pytest.fixture
def traded(make_stack: StackFactory) -> Iterator[LocalStack]:
    """A gateway with one order filled and two resting, their numbers of unlike decimals."""
    stack = make_stack(symbols=["BTC/USD", "LTC/USD", "DOGE/USD"])  # the exchange lacks DOGE
    with stack.client() as gw:
        gw.subscribe(["orders"])
        log = EventLog(gw)
        for cl_ord_id, (side, qty, price) in ORDERS.items():
            gw.new_order(
                symbol="BTC/USD", side=side, type="limit", qty=qty, price=price, cl_ord_id=cl_ord_id
            )
        log.find("fill-a", "order.filled")
        log.find("rest-b", "order.accepted")
        log.find("rest-c", "order.accepted")
    yield stack


def in_terminal(stack: LocalStack, *args: str, **env: str) -> tuple[int, bytes]:
    return run_in_terminal([*args, "--socket", stack.socket_path], **env)


def piped(stack: LocalStack, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "fixgw", *args, "--socket", stack.socket_path],
        capture_output=True,
        timeout=60,
        check=False,
    )


def json_lines(*answers: Any) -> bytes:
    """What the CLI printed for these answers before it had tables: each as one compact line."""
    return b"".join(msgspec.json.encode(answer) + b"\n" for answer in answers)


def points(rows: list[str], values: list[str]) -> set[int]:
    """Where each row's value has its decimal point (or would have it): one place if the
    column lines up on the point."""
    found = set()
    for row, value in zip(rows, values, strict=True):
        match = re.search(rf"(?<=  ){re.escape(value)}(?=\s)", row)
        assert match, (value, row)
        found.add(match.start() + (value.index(".") if "." in value else len(value)))
    return found


def time_of(event: dict[str, Any]) -> str:
    """An event's time as a line shows it (with --utc)."""
    return datetime.fromisoformat(event["ts"]).strftime("%H:%M:%S.%f")[:-3]


def event_lines(text: str) -> list[str]:
    """The lines `fixgw events` printed, without what the terminal echoed (^C)."""
    return [line for line in text.splitlines() if re.match(r"\d\d:\d\d:\d\d\.\d{3}  ", line)]


def table_rows(text: str, header: str, keys: list[str]) -> tuple[str, list[str]]:
    lines = text.splitlines()
    (heading,) = (line for line in lines if line.startswith(header))
    return heading, [next(line for line in lines if line.startswith(key)) for key in keys]


# ---------------------------------------------------------------- tables and summaries


def test_orders_on_a_terminal_are_a_table_lined_up_on_the_point(traded: LocalStack) -> None:
    code, output = in_terminal(traded, "orders", "--all")
    assert code == 0
    text = plain_text(output)
    heading, rows = table_rows(text, "CL_ORD_ID", list(ORDERS))
    assert re.search(r"CL_ORD_ID +SYMBOL +SIDE +TYPE +QTY +PRICE +FILLED +AVG_PX +STATUS", heading)
    assert len(points(rows, [qty for _, qty, _ in ORDERS.values()])) == 1
    assert len(points(rows, [price for _, _, price in ORDERS.values()])) == 1
    assert "filled" in rows[0] and "new" in rows[1]
    assert COLOUR.search(output), "sides and statuses are coloured on a terminal"
    assert b"{" not in output


def test_no_color_keeps_the_table_and_drops_the_colours(traded: LocalStack) -> None:
    coloured = in_terminal(traded, "orders", "--all")[1]
    code, output = in_terminal(traded, "orders", "--all", NO_COLOR="1")
    assert code == 0
    assert not COLOUR.search(output)
    assert plain_text(output) == plain_text(coloured)


def test_trades_and_account_on_a_terminal(traded: LocalStack) -> None:
    code, output = in_terminal(traded, "trades", "--utc")
    assert code == 0
    text = plain_text(output)
    heading, (fill,) = table_rows(text, "TIME", ["20"])
    assert re.search(r"TIME \(UTC\) +SYMBOL +SIDE +QTY +PRICE +CL_ORD_ID", heading)
    assert re.search(r"BTC/USD +buy +0\.5 +30010 +fill-a", fill)

    code, output = in_terminal(traded, "account")
    assert code == 0
    with traded.client() as gw:
        balances = gw.request("account")["balances"]
    text = plain_text(output)
    heading, rows = table_rows(text, "CURRENCY", sorted(balances))
    assert re.search(r"CURRENCY +FREE +FROZEN +TOTAL", heading)
    assert len(points(rows, [balances[c]["free"] for c in sorted(balances)])) == 1


def test_times_are_local_on_a_terminal_unless_utc_is_asked_for(traded: LocalStack) -> None:
    with traded.client() as gw:
        (fill,) = gw.request("trades")["trades"]
    at = datetime.fromisoformat(fill["ts"])
    text = plain_text(in_terminal(traded, "trades", TZ="Asia/Tokyo")[1])
    assert "TIME (JST)" in text
    assert (at + timedelta(hours=9)).strftime("%Y-%m-%d %H:%M:%S") in text
    text = plain_text(in_terminal(traded, "trades", "--utc", TZ="Asia/Tokyo")[1])
    assert "TIME (UTC)" in text and at.strftime("%Y-%m-%d %H:%M:%S") in text


def test_status_on_a_terminal_is_a_short_summary(traded: LocalStack) -> None:
    code, output = in_terminal(traded, "status")
    assert code == 0
    text = plain_text(output)
    for label in ("session", "connection", "seq nums", "heartbeat rtt", "halted", "uptime"):
        assert re.search(rf"^{label} +\S", text, re.MULTILINE), label
    assert re.search(r"^session +up +FIX\.4\.4:\S+ +\(ready\)", text, re.MULTILINE)
    assert re.search(r"^seq nums +next out \d+, next in \d+", text, re.MULTILINE)
    assert re.search(r"^orders +2 open, 0 queued", text, re.MULTILINE)
    assert COLOUR.search(output)


def test_halt_and_resume_on_a_terminal_say_what_they_did(traded: LocalStack) -> None:
    code, output = in_terminal(traded, "halt", "--reason", "lunch")
    assert code == 0
    assert plain_text(output).strip() == "halted: new orders refused; cancelling 2 open orders"
    code, output = in_terminal(traded, "resume")
    assert code == 0
    assert plain_text(output).strip() == "resumed: the kill switch is off"


def test_a_halt_reason_from_another_client_is_shown_escaped_and_the_terminal_acts_on_none(
    traded: LocalStack,
) -> None:
    """Any API client may halt with a reason of its choosing: `status` and `events` show it
    escaped on the halted line, forging none and clearing no screen; the JSON keeps it."""
    reason = "oops\nresumed: the kill switch is off\x1b[2J"
    shown = r"oops\nresumed: the kill switch is off\x1b[2J"
    with traded.client("oms") as gw:
        gw.request("halt", reason=reason)
    code, output = in_terminal(traded, "status")
    assert code == 0
    assert b"\x1b[2J" not in output
    lines = plain_text(output).splitlines()
    (halted,) = (line for line in lines if line.startswith("halted "))
    assert halted.endswith(f": {shown}")
    assert not any(line.startswith("resumed") for line in lines)
    terminal = Terminal(["events", "--since", "0", "--socket", traded.socket_path], terminal_env())
    try:
        terminal.wait_for_match(r"session\.halted +by api client")
        terminal.wait_for(shown)
        terminal.type(b"\x03")  # Ctrl-C
        assert terminal.wait(20) == 0
    finally:
        terminal.close()
    assert b"\x1b[2J" not in terminal.output
    assert json.loads(piped(traded, "status").stdout)["halted"]["reason"] == reason


def test_session_commands_on_a_terminal_and_through_a_pipe(make_stack: StackFactory) -> None:
    stack = make_stack()
    assert stack.sim is not None
    code, output = in_terminal(stack, "session", "reset-seq")
    assert code == 1  # refused while the session is up, as before
    assert "session_up" in plain_text(output)
    stack.sim.stop()
    with stack.client() as gw:
        wait_until(lambda: gw.status()["connection"]["phase"] == "down", 15, "the session to wait")
    code, output = in_terminal(stack, "session", "reset-seq")
    assert code == 0
    assert plain_text(output).strip() == "sequence numbers reset: next out 1, next in 1"
    done = piped(stack, "session", "reset-seq")
    assert done.stdout == json_lines({"seq_nums": {"next_sender": 1, "next_target": 1}})


# ---------------------------------------------------------------- order new and events


def test_order_new_on_a_terminal_says_the_outcome_in_one_line(traded: LocalStack) -> None:
    code, output = in_terminal(traded, "order", "new", "BTC/USD", "buy", "0.5", "--price", "30010")
    assert code == 0
    assert re.fullmatch(
        r"filled 0\.5 @ 30010 \(order \S+, clOrdID \S+\)", plain_text(output).strip()
    )
    code, output = in_terminal(
        traded, "order", "new", "BTC/USD", "sell", "1", "--price", "31000", "--cl-ord-id", "s-1"
    )
    assert code == 0
    assert re.fullmatch(r"resting as s-1: sell 1 @ 31000 \(order \S+\)", plain_text(output).strip())
    code, output = in_terminal(traded, "order", "new", "DOGE/USD", "buy", "10", "--price", "0.1")
    assert code == 3  # rejected, as through a pipe
    (line,) = plain_text(output).strip().splitlines()
    assert line.startswith("rejected: ") and "clOrdID" in line
    assert COLOUR.search(output)


def test_order_new_follows_the_order_until_it_settles_however_long_follow_allows(
    make_stack: StackFactory,
) -> None:
    """`--follow inf`, or 1e10 s (past what a socket can wait), placed the order, then died
    of an OverflowError with exit 1, which says the gateway refused: a script that tries
    again on it placed the order twice. They follow it until it settles, as any S does."""
    stack = make_stack()
    for follow, side, price, settled in (
        ("inf", "buy", "30010", "order.filled"),
        ("1e10", "sell", "31000", "order.accepted"),
    ):
        done = piped(
            stack, "order", "new", "BTC/USD", side, "0.25", "--price", price,
            "--cl-ord-id", f"follow-{follow}", "--follow", follow,
        )  # fmt: skip
        assert (done.returncode, done.stderr) == (0, b""), follow
        first, *events = done.stdout.splitlines()
        assert json.loads(first)["cl_ord_id"] == f"follow-{follow}"
        assert [json.loads(e)["type"] for e in events][-1] == settled
    code, output = in_terminal(
        stack, "order", "new", "BTC/USD", "sell", "1", "--price", "31000", "--follow", "inf"
    )
    assert code == 0
    assert re.fullmatch(r"resting as \S+: sell 1 @ 31000 \(order \S+\)", plain_text(output).strip())
    with stack.client() as gw:
        placed = [o["cl_ord_id"] for o in gw.orders(all=True)]
    assert placed.count("follow-inf") == placed.count("follow-1e10") == 1


@contextlib.contextmanager
def exchange_silent(stack: LocalStack) -> Iterator[None]:
    """The simulator stopped where it stands (SIGSTOP): an order sent to it is answered by
    nothing, and stays pending_new, for as long as this lasts."""
    assert stack.sim is not None and stack.sim.popen is not None
    os.kill(stack.sim.popen.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(stack.sim.popen.pid, signal.SIGCONT)


def pending_order(stack: LocalStack) -> str:
    """The cl_ord_id of the one order the gateway holds, once it is pending_new."""
    with stack.client() as gw:
        wait_until(lambda: len(gw.orders()) == 1, 20, "the order to reach the gateway")
        (order,) = gw.orders()
    assert order["status"] == "pending_new"
    return str(order["cl_ord_id"])


def test_order_new_following_an_order_when_the_gateway_stops_says_it_was_sent(
    make_stack: StackFactory,
) -> None:
    """The gateway stopped (SIGTERM) while `order new --follow` waited on the exchange: it
    said only "cannot reach the gateway", exit 1, the order's cl_ord_id (the gateway's
    choice) untold, and a retry placed a second order. It says the order was sent, as
    which, that its outcome is unknown and how to ask; exit 6, "sent, outcome unknown"."""
    stack = make_stack(session={"logout_timeout_s": 1})
    assert stack.gateway is not None
    order = ["order", "new", "BTC/USD", "buy", "0.5", "--price", "29000", "--follow", "inf"]
    with exchange_silent(stack):
        terminal = Terminal([*order, "--socket", stack.socket_path], terminal_env())
        try:
            cl_ord_id = pending_order(stack)
            script = subprocess.Popen(
                [sys.executable, "-m", "fixgw", *order, "--cl-ord-id", "script-1",
                 "--socket", stack.socket_path],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )  # fmt: skip
            try:
                assert script.stdout is not None
                assert json.loads(line_within(script.stdout, 20))["cl_ord_id"] == "script-1"
                assert stack.gateway.stop(signal.SIGTERM) == 0
                assert terminal.wait(20) == 6
                said = plain_text(terminal.output).strip()
                _, err = script.communicate(timeout=20)
                assert script.returncode == 6
            finally:
                if script.poll() is None:
                    script.kill()
                    script.wait(10)
        finally:
            terminal.close()
    unknown = (
        "sent as {0}: pending_new, its outcome unknown: the connection to the gateway ended "
        "(the gateway closed the connection) before the exchange answered; ask (`fixgw order "
        "status {0}`) before sending it again"
    )
    assert said == unknown.format(cl_ord_id)
    assert err.decode() == f"fixgw: order {unknown.format('script-1')}\n"


def test_ctrl_c_while_order_new_follows_says_what_became_of_the_order_so_far(
    make_stack: StackFactory,
) -> None:
    """Ctrl-C is how `--follow inf` ends while the exchange is silent: it printed a
    KeyboardInterrupt traceback and nothing of the order. It ends the following as running
    out of time does: the outcome so far in one line, exit 0."""
    stack = make_stack()
    with exchange_silent(stack):
        terminal = Terminal(
            ["order", "new", "BTC/USD", "buy", "0.5", "--price", "29000", "--follow", "inf",
             "--socket", stack.socket_path],
            terminal_env(),
        )  # fmt: skip
        try:
            cl_ord_id = pending_order(stack)
            terminal.type(b"\x03")  # Ctrl-C
            assert terminal.wait(20) == 0
        finally:
            terminal.close()
    said = terminal.text().replace("^C", "").strip()  # less what the terminal echoed
    assert said == f"sent as {cl_ord_id}: pending_new, not followed to the end (interrupted)"


def test_events_on_a_terminal_are_a_readable_line_each(traded: LocalStack) -> None:
    journal = (traded.root / "journal.jsonl").read_text().splitlines()
    events = [json.loads(line) for line in journal]
    terminal = Terminal(
        ["events", "--since", "0", "--utc", "--socket", traded.socket_path], terminal_env()
    )
    try:
        terminal.wait_until(lambda: len(event_lines(terminal.text())) == len(events), "events")
        terminal.type(b"\x03")  # Ctrl-C
        assert terminal.wait(20) == 0
    finally:
        terminal.close()
    lines = event_lines(terminal.text())
    for line, event in zip(lines, events, strict=True):
        assert line.startswith(f"{time_of(event)}  {event['type']} "), (line, event)
        assert "{" not in line
    filled = next(line for line in lines if " order.filled " in line)
    assert (
        "buy 0.5 BTC/USD @ 30010  fill 0.5 @ 30010; 0.5 of 0.5 filled, avg 30010  fill-a" in filled
    )


def line_within(stream: IO[bytes], timeout: float) -> str:
    """The next line a command wrote to `stream`, waiting at most `timeout`."""
    if not select.select([stream], [], [], timeout)[0]:
        raise TimeoutError(f"no line within {timeout} s")
    return stream.readline().decode()


def test_events_since_above_the_journals_end_say_so_on_stderr_and_stream_on(
    traded: LocalStack,
) -> None:
    """A `since` above the gateway's latest seq: the journal it was counted in was replaced
    (docs/protocol.md, Replay with since; the reply's seq below it is the sign). `events`
    says so on stderr, and streams the events that come, as the gateway sends them."""
    with traded.client() as gw:
        latest = gw.status()["last_event_seq"]
    since = latest + 100_000
    events = subprocess.Popen(
        [sys.executable, "-m", "fixgw", "events", "--since", str(since), "--json",
         "--socket", traded.socket_path],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )  # fmt: skip
    assert events.stdout is not None and events.stderr is not None
    try:
        warning = line_within(events.stderr, 20)
        ends_at = re.fullmatch(
            rf"fixgw: the gateway's journal ends at seq (\d+), below --since {since}: it is "
            rf"not the journal {since} was counted in .*\n",
            warning,
        )
        assert ends_at and int(ends_at[1]) >= latest, warning
        with traded.client() as gw:
            gw.new_order(symbol="BTC/USD", side="buy", type="limit", qty="0.1", price="29000",
                         cl_ord_id="after-since")  # fmt: skip
        event = json.loads(line_within(events.stdout, 20))
        assert event["cl_ord_id"] == "after-since" and latest < event["seq"] < since
        events.send_signal(signal.SIGINT)
        assert events.wait(20) == 0
    finally:
        if events.poll() is None:
            events.kill()
            events.wait(10)
        events.stdout.close()
        events.stderr.close()


# ---------------------------------------------------------------- scripts: pipes and --json


def test_through_a_pipe_every_command_prints_the_json_lines_it_always_did(
    traded: LocalStack,
) -> None:
    with traded.client() as gw:
        orders = gw.request("orders", all=True)["orders"]
        open_orders = gw.request("orders")["orders"]
        trades = gw.request("trades")["trades"]
        account = gw.request("account")
        status_of = gw.request("order_status", cl_ord_id="rest-b")
        status = gw.status()
    expected: dict[tuple[str, ...], bytes] = {
        ("orders",): json_lines(*open_orders),
        ("orders", "--all"): json_lines(*orders),
        ("trades",): json_lines(*trades),
        ("account",): json_lines(account),
        ("order", "status", "rest-b"): json_lines(status_of),
    }
    for args, lines in expected.items():
        for form in ((), ("--json",), ("-o", "json")):
            done = piped(traded, *args, *form)
            assert done.returncode == 0, done.stderr
            assert done.stdout == lines, (args, form)

    done = piped(traded, "status")
    (line,) = done.stdout.splitlines()
    assert list(json.loads(line)) == list(status)  # the same fields in the same order
    assert b"\n" not in line and b": " not in line  # one compact line

    done = piped(traded, "order", "new", "BTC/USD", "buy", "0.25", "--price", "30010")
    first, *events = done.stdout.splitlines()
    assert list(json.loads(first)) == ["cl_ord_id", "status"]
    assert [json.loads(e)["type"] for e in events][-1] == "order.filled"
    assert done.returncode == 0

    cancel = piped(traded, "order", "cancel", "rest-c")
    assert list(json.loads(cancel.stdout)) == [
        "cl_ord_id",
        "order_id",
        "cancel_cl_ord_id",
        "status",
    ]


def test_through_a_pipe_events_are_the_journal_lines_themselves(traded: LocalStack) -> None:
    journal = (traded.root / "journal.jsonl").read_bytes().splitlines(keepends=True)
    with subprocess.Popen(
        [sys.executable, "-m", "fixgw", "events", "--since", "0", "--socket", traded.socket_path],
        stdout=subprocess.PIPE,
    ) as events:
        assert events.stdout is not None
        try:
            received = [events.stdout.readline() for _ in journal]
        finally:
            events.terminate()
    assert received == journal


def test_json_on_a_terminal_is_what_a_pipe_gets(traded: LocalStack) -> None:
    code, output = in_terminal(traded, "orders", "--all", "--json")
    assert code == 0
    assert output.replace(b"\r\n", b"\n") == piped(traded, "orders", "--all").stdout
    assert not COLOUR.search(output)


def test_text_through_a_pipe_has_no_colour(traded: LocalStack) -> None:
    done = piped(traded, "orders", "-o", "text")
    assert done.returncode == 0
    assert b"CL_ORD_ID" in done.stdout and b"rest-b" in done.stdout
    assert b"\x1b[" not in done.stdout


# ---------------------------------------------------------------- a reader that went away


def test_a_reader_gone_before_the_answer_ends_the_command_as_sigpipe_ends_a_unix_tool(
    traded: LocalStack,
) -> None:
    """`fixgw orders | head -1`: was "cannot reach the gateway ...: [Errno 32] Broken pipe"
    and exit 1, the gateway blamed for an answer it gave. Now the command ends as `cat`
    does, killed by SIGPIPE (the shell's 141), without a word."""
    for command in (["orders"], ["status"], ["orders", "-o", "text"]):
        read_end, write_end = os.pipe()
        os.close(read_end)  # the reader is gone before anything is written
        with os.fdopen(write_end, "wb") as closed_pipe:
            done = subprocess.run(
                [sys.executable, "-m", "fixgw", *command, "--socket", traded.socket_path],
                stdout=closed_pipe,
                stderr=subprocess.PIPE,
                timeout=60,
                check=False,
            )
        assert (done.returncode, done.stderr) == (-signal.SIGPIPE, b""), command


class GatewayThatNeverAnswers:
    """A socket where `hello` is answered as a gateway answers it and a `new_order` is read
    and never answered: the reply a person's Ctrl-C or the connection's end cuts short."""

    def __init__(self, path: str, then_close: bool) -> None:
        self.path = path
        self.then_close = then_close
        self.order_read = threading.Event()
        self._listener = socket.socket(socket.AF_UNIX)
        self._listener.bind(path)
        self._listener.listen(1)
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        conn, _ = self._listener.accept()
        with conn, conn.makefile("rb") as lines:
            for line in lines:
                request = json.loads(line)
                if request["op"] == "new_order":
                    self.order_read.set()
                    if self.then_close:
                        return
                    conn.recv(1)  # until the client goes
                    return
                result = {"server": "fixgw", "session": "logged_on", "seq": 0}
                conn.sendall(
                    json.dumps({"id": request["id"], "ok": True, "result": result}).encode() + b"\n"
                )

    def close(self) -> None:
        self._listener.close()
        self._thread.join(10)


def test_ctrl_c_before_the_gateway_answers_order_new_says_the_order_may_be_placed(
    tmp_path: Path,
) -> None:
    """Ctrl-C while `order new` waited for the gateway's reply printed a KeyboardInterrupt
    traceback: the request was written, so the order may have been placed, and a person
    who sends it again may have two."""
    gateway = GatewayThatNeverAnswers(str(tmp_path / "gw.sock"), then_close=False)
    terminal = Terminal(
        ["order", "new", "BTC/USD", "buy", "0.5", "--price", "29000", "--cl-ord-id", "mine-1",
         "--socket", gateway.path],
        terminal_env(),
    )  # fmt: skip
    try:
        assert gateway.order_read.wait(20)
        terminal.type(b"\x03")  # Ctrl-C
        assert terminal.wait(20) == 130
    finally:
        terminal.close()
        gateway.close()
    said = terminal.text().replace("^C", "").strip()
    assert said == (
        "fixgw: interrupted before the gateway answered: whether the order was placed is "
        "unknown; ask (`fixgw order status mine-1`) before sending it again"
    )
    assert "Traceback" not in said


def test_order_new_whose_connection_ends_before_the_reply_is_an_unknown_outcome_not_unreachable(
    tmp_path: Path,
) -> None:
    """The gateway went away after reading `new_order` and before answering: `order new`
    said "cannot reach the gateway" and exit 1, as for a gateway never reached, and a
    script that retries on that would place the order twice."""
    gateway = GatewayThatNeverAnswers(str(tmp_path / "gw.sock"), then_close=True)
    try:
        done = subprocess.run(
            [sys.executable, "-m", "fixgw", "order", "new", "BTC/USD", "buy", "0.5",
             "--price", "29000", "--socket", gateway.path],
            capture_output=True, timeout=60, check=False,
        )  # fmt: skip
    finally:
        gateway.close()
    err = done.stderr.decode()
    assert done.returncode == 6, err
    assert "cannot reach" not in err
    said = f"fixgw: {gateway.path}: no answer to new_order from the gateway before the connection"
    assert err.startswith(said + " ended"), err
    asks = "Whether the new_order reached the exchange is unknown: ask (`orders`) before sending"
    assert f"{asks} it again" in err
