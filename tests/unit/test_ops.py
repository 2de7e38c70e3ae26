"""systemd notify on a real datagram socket, the metrics endpoint over real HTTP, the log
and the bound on the lines a peer can cause (`LogBudget`)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from fixgw.ops import log_budget, notify
from fixgw.ops.log_budget import LogBudget
from fixgw.ops.prometheus import Metrics, MetricsServer
from fixgw.ops.pulse import LoopPulse
from fixgw.testing import wait_until


@pytest.fixture(params=["path", "abstract"])
def notify_socket(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    if request.param == "path":
        address = str(tmp_path / "notify")
        sock.bind(address)
    else:
        address = f"@fixgw-test-{os.getpid()}"
        sock.bind("\0" + address[1:])
    sock.settimeout(2)
    monkeypatch.setenv("NOTIFY_SOCKET", address)
    yield sock
    sock.close()


def test_ready_watchdog_and_stopping_reach_systemd(notify_socket: socket.socket) -> None:
    assert notify.ready("logged on")
    assert notify.watchdog()
    assert notify.stopping()
    assert [notify_socket.recv(256) for _ in range(3)] == [
        b"READY=1\nSTATUS=logged on",
        b"WATCHDOG=1",
        b"STOPPING=1",
    ]


def test_without_systemd_nothing_happens_and_nothing_raises(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert notify.ready() is False
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "nobody-listens"))
    assert notify.watchdog() is False


def test_watchdog_period_is_half_of_watchdog_sec_for_this_process(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", "30000000")
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    assert notify.watchdog_period_s() == 15
    monkeypatch.setenv("WATCHDOG_PID", "1")
    assert notify.watchdog_period_s() is None


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 (loopback)
            return response.status, response.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def test_metrics_health_and_readiness_over_http() -> None:
    metrics = Metrics()
    why_not: list[str | None] = ["reconciling 3 open orders"]
    server = MetricsServer(metrics, "127.0.0.1", 0, lambda: why_not[0])
    server.start()
    base = f"http://127.0.0.1:{server.port}"
    try:
        metrics.logons.inc()
        metrics.inbound("8")
        status, text = get(f"{base}/metrics")
        assert status == 200
        assert "fixgw_logons_total 1.0" in text
        assert 'fixgw_fix_messages_total{direction="in",msg_type="8"} 1.0' in text
        assert "fixgw_seconds_since_last_inbound" in text
        assert get(f"{base}/healthz") == (200, "ok\n")
        assert get(f"{base}/readyz") == (503, "not ready: reconciling 3 open orders\n")
        why_not[0] = None
        assert get(f"{base}/readyz") == (200, "ready\n")
        assert get(f"{base}/nope")[0] == 404
    finally:
        server.stop()


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.skipif(not _ipv6_loopback(), reason="no IPv6 loopback on this host")
@pytest.mark.parametrize(
    ("metric", "label"),
    [
        ("fixgw_api_refused_total", "reason"),
        ("fixgw_bridge_connections_closed_total", "reason"),
        ("fixgw_risk_rejects_total", "limit"),
        ("fixgw_resend_requests_total", "direction"),
        ("fixgw_gap_fills_total", "direction"),
    ],
)
def test_counters_of_a_known_few_labels_are_exported_at_0_from_the_start(
    metric: str, label: str
) -> None:
    """They appeared only at their first event, already at 1: `increase()` over 1, 1, 1
    is 0, so the first client dropped for not reading, the first wrong OMS password, the
    first gap fill could not be alerted on or graphed. Every value operations.md documents
    is there at 0 before anything happened."""
    page = (Path(__file__).resolve().parents[2] / "docs" / "operations.md").read_text()
    row = next(line for line in page.splitlines() if f"`{metric}{{{label}}}`" in line)
    documented = set(re.findall(r"`([a-z_]+)`", row.split(" | ", 1)[1])) - {label}
    if label == "direction":  # the page names none: a message comes in or goes out
        documented = {"in", "out"}
    text = Metrics().exposition().decode()
    exported = {
        match: float(value)
        for match, value in re.findall(rf'^{metric}{{{label}="([a-z_]+)"}} (\S+)$', text, re.M)
    }
    assert documented <= set(exported), documented - set(exported)
    assert set(exported.values()) == {0.0}


def test_metrics_are_served_on_an_ipv6_host() -> None:
    """check-config passed `ops.metrics_host: "::1"`, and `run` stopped: the endpoint could
    bind IPv4 only (`Address family for hostname not supported`)."""
    server = MetricsServer(Metrics(), "::1", 0, lambda: None)
    server.start()
    try:
        assert get(f"http://[::1]:{server.port}/healthz") == (200, "ok\n")
    finally:
        server.stop()


def test_health_fails_once_the_event_loop_stops_beating() -> None:
    """/healthz answers from its own thread: it must not say ok while the loop that does
    all the work is stuck (Docker's HEALTHCHECK has no watchdog to catch that)."""
    loop = asyncio.new_event_loop()
    pulse = LoopPulse(loop, every_s=0.01)
    server = MetricsServer(Metrics(), "127.0.0.1", 0, lambda: None, pulse.silent_s, 0.2)
    server.start()
    try:
        pulse.start()
        loop.run_until_complete(asyncio.sleep(0.05))
        assert get(f"http://127.0.0.1:{server.port}/healthz") == (200, "ok\n")
        wait_until(lambda: pulse.silent_s() > 0.2, 5, "the loop silent")  # it is not run
        status, text = get(f"http://127.0.0.1:{server.port}/healthz")
        assert (status, text.startswith("event loop stuck for")) == (503, True)
        loop.run_until_complete(asyncio.sleep(0.05))
        assert get(f"http://127.0.0.1:{server.port}/healthz") == (200, "ok\n")
    finally:
        server.stop()
        pulse.stop()
        loop.close()


_LOG_TWO_LINES = """
from decimal import Decimal
import structlog
from fixgw.domain import Side
from fixgw.ops.logging import configure
configure("info", "{fmt}")
log = structlog.get_logger("t")
log.debug("not shown")
log.info("order.accepted", price=Decimal("101.50"), side=Side.BUY, secret="s3cr3t", n=3)
log.warning("odd", what=object)
"""


def _logged_by(script: str) -> list[str]:
    """What a fresh interpreter running `script` writes to its (non-terminal) stderr."""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=30, check=True
    )
    return done.stderr.splitlines()


_LOG_TO_A_FULL_DISK = """
import structlog
from fixgw.ops.logging import configure, lines_dropped
configure("info", "{fmt}")
log = structlog.get_logger("t")
for n in range(3):
    log.info("order.accepted", n=n)
log.error("an error line too")
print(lines_dropped())
"""


@pytest.mark.parametrize("fmt", ["json", "console"])
def test_a_log_that_cannot_be_written_drops_and_counts_its_lines_and_never_raises(
    fmt: str,
) -> None:
    """stderr on a full disk (/dev/full: every write fails with ENOSPC)."""
    with open("/dev/full", "wb") as full:
        done = subprocess.run(
            [sys.executable, "-c", _LOG_TO_A_FULL_DISK.format(fmt=fmt)],
            stdout=subprocess.PIPE,
            stderr=full,
            text=True,
            timeout=30,
            check=False,
        )
    assert (done.returncode, done.stdout) == (0, "4\n")


@pytest.mark.parametrize("fmt", ["json", "auto"])
def test_log_lines_are_json_with_decimals_as_digits_and_secrets_masked(fmt: str) -> None:
    first, second = (json.loads(line) for line in _logged_by(_LOG_TWO_LINES.format(fmt=fmt)))
    assert first["event"] == "order.accepted" and first["level"] == "info"
    assert (first["price"], first["side"], first["secret"], first["n"]) == (
        "101.50",
        "buy",
        "***",
        3,
    )
    assert first["timestamp"].endswith("Z")
    assert second["what"] == "<class 'object'>"


_LOG_QUOTING_SECRETS = """
import structlog
from fixgw.config import Secrets
from fixgw.daemon import _mask_in_logs
from fixgw.ops.logging import configure, info_lines
configure("info", "{fmt}")
log = structlog.get_logger("t")
by_key = {{
    "credentials.api_key": "key-0123456789",
    "credentials.secret_key": 'sk-"quoted"-\\-9876',
    "bridge.sessions[0].password": "short7",
}}
_mask_in_logs(Secrets(None, None, None, by_key=by_key))
secret = by_key["credentials.secret_key"]
try:
    raise ValueError("not a tag=value pair: " + repr("554=" + secret))
except ValueError:
    log.exception("inbound handling failed", msg="58=bad " + secret)
info_lines(log, [("order.accepted", {{"text": secret, "key": "key-0123456789"}})])
log.info("logon", text="short7 at 1.5")
"""


@pytest.mark.parametrize("fmt", ["json", "console"])
def test_a_secret_read_from_the_config_is_masked_in_every_log_line_whatever_quotes_it(
    fmt: str,
) -> None:
    """An exception's text, its traceback, an excerpt of a message: none written as is.
    The API key names the account and stays; a secret under 8 characters is masked only
    by the keys and tags that name it, or it would hide prices and ids."""
    text = "\n".join(_logged_by(_LOG_QUOTING_SECRETS.format(fmt=fmt)))
    assert "9876" not in text and "quoted" not in text, text
    assert text.count("***") == 3, text
    assert "key-0123456789" in text and "short7 at 1.5" in text


_LOG_AMOUNTS = """
from decimal import Decimal
import structlog
from fixgw.ops.logging import configure, info_lines
configure("info", "{fmt}")
log = structlog.get_logger("t")
amounts = {{"qty": Decimal("0.00000001"), "px": Decimal("1E+2"), "fee": Decimal("0E-8")}}
log.info("fill", **amounts, text="E-mail +1", levels=[(Decimal("1E-7"), Decimal("2"))])
info_lines(log, [("balance", amounts)])
"""


@pytest.mark.parametrize("fmt", ["json", "console"])
def test_log_lines_write_amounts_as_plain_decimals_as_the_wire_does(fmt: str) -> None:
    """Not `str()`'s exponent form (`1E-8`, `1E+2`, `0E-8`), which the gateway itself refuses
    as a decimal: every digit of the value, as FIX and the local wire have it."""
    lines = _logged_by(_LOG_AMOUNTS.format(fmt=fmt))
    plain = {"qty": "0.00000001", "px": "100", "fee": "0.00000000"}
    if fmt == "console":
        for line in lines:
            assert "E-" not in line.replace("E-mail", "") and "E+" not in line, line
            assert all(f"{k}={v}" in line for k, v in plain.items()), line
        return
    fill, balance = (json.loads(line) for line in lines)
    assert {k: fill[k] for k in plain} == plain == {k: balance[k] for k in plain}
    assert (fill["text"], fill["levels"]) == ("E-mail +1", [["0.0000001", "2"]])


_LOG_A_BYTE_THAT_IS_NOT_UTF8 = """
import structlog
from fixgw.ops.logging import configure, info_lines
configure("info", "{fmt}")
log = structlog.get_logger("t")
latin1 = b"ORD-\\xe9".decode("utf-8", "surrogateescape")  # as QuickFIX's binding hands it over
try:
    raise TypeError("cannot send " + latin1)
except TypeError:
    log.exception("OMS message failed", msg="11=" + latin1, ids=[latin1], n=1)
info_lines(log, [("order.accepted", {{"cl_ord_id": latin1}})])
log.info("after", ok=True)
"""


@pytest.mark.parametrize("fmt", ["json", "console"])
def test_a_line_holding_a_byte_that_is_not_utf8_is_written_escaped_and_never_raises(
    fmt: str,
) -> None:
    """An OMS's Latin-1 byte reaches a log line as a lone surrogate, which no UTF-8 encoder
    takes: the line raised in the logger, from inside the handler of another error."""
    lines = _logged_by(_LOG_A_BYTE_THAT_IS_NOT_UTF8.format(fmt=fmt))
    assert not any("UnicodeEncodeError" in line for line in lines), lines
    if fmt == "console":
        assert "ORD-\\udce9" in "\n".join(lines) and "after" in lines[-1]
        return
    failed, accepted, after = (json.loads(line) for line in lines)
    assert (failed["msg"], failed["ids"], failed["n"]) == ("11=ORD-\\udce9", ["ORD-\\udce9"], 1)
    assert "cannot send ORD-\\udce9" in failed["exception"]
    assert (accepted["cl_ord_id"], after["event"]) == ("ORD-\\udce9", "after")


_LOG_ONE_THEN_A_BATCH = """
import structlog
from fixgw.ops.logging import configure, info_lines
configure("{level}", "{fmt}")
log = structlog.get_logger("t")
fields = {{"cl_ord_id": "c1", "order_id": None, "symbol": "LTC/USD", "token": "s3cr3t"}}
log.info("order.accepted", **fields)
info_lines(log, [("order.accepted", fields), ("order.filled", {{**fields, "order_id": "o1"}})])
"""


def _logged(level: str, fmt: str) -> list[str]:
    return _logged_by(_LOG_ONE_THEN_A_BATCH.format(level=level, fmt=fmt))


def test_a_batch_of_info_lines_reads_as_the_same_lines_logged_one_by_one() -> None:
    one, first, second = (json.loads(line) for line in _logged("info", "json"))
    assert list(first) == list(one)
    assert {k: v for k, v in first.items() if k != "timestamp"} == {
        k: v for k, v in one.items() if k != "timestamp"
    }
    assert first["token"] == "***" and first["level"] == "info"
    assert first["timestamp"].endswith("Z") and first["timestamp"] >= one["timestamp"]
    assert (second["event"], second["order_id"]) == ("order.filled", "o1")


def test_a_batch_of_info_lines_follows_the_level_and_the_console_format() -> None:
    assert _logged("warning", "json") == []
    console = _logged("info", "console")
    assert len(console) == 3 and all("order." in line for line in console)
    assert not any("s3cr3t" in line for line in console)


_HELD_LINES = """
import asyncio, os, sys
import structlog
from fixgw.ops.logging import HOLD_S, HeldInfoLines, configure
configure("{level}", "{fmt}")
log = structlog.get_logger("t")

def line(n):
    return ("order.pending_new", {{"cl_ord_id": f"c{{n}}", "status": "pending_new", "token": "s3"}})

async def main():
    held = HeldInfoLines(log, asyncio.get_running_loop())
    held.add([line(1), line(2)])
    {then}

asyncio.run(main())
{end}
"""


def _held(then: str, end: str = "", level: str = "info", fmt: str = "json") -> list[str]:
    script = _HELD_LINES.format(level=level, fmt=fmt, then=then, end=end)
    return _logged_by(script)


def _order_of(lines: list[str]) -> list[str]:
    records = [json.loads(line) for line in lines]
    assert all(r.get("token", "***") == "***" for r in records)
    return [r.get("cl_ord_id") or r["event"] for r in records]


def test_held_order_lines_go_out_after_the_hold_without_waiting_for_exit() -> None:
    lines = _held("await asyncio.sleep(HOLD_S * 5)", end="os._exit(0)")
    assert _order_of(lines) == ["c1", "c2"]
    first, second = (json.loads(line) for line in lines)
    assert first["level"] == "info" and first["timestamp"] == second["timestamp"]


def test_any_other_line_writes_the_held_lines_first_so_the_log_stays_in_order() -> None:
    then = 'log.warning("between"); held.add([line(3)]); await asyncio.sleep(HOLD_S * 5)'
    assert _order_of(_held(then, end="os._exit(0)")) == ["c1", "c2", "between", "c3"]


def test_held_lines_are_written_at_exit_and_a_killed_process_loses_only_them() -> None:
    assert _order_of(_held("pass")) == ["c1", "c2"]
    assert _held("pass", end="os._exit(0)") == []


def test_on_a_terminal_format_or_above_info_nothing_is_held() -> None:
    console = _held("pass", end="os._exit(0)", fmt="console")
    assert len(console) == 2 and all("c1" in a or "c2" in a for a in console)
    assert _held("pass", level="warning") == []


_LOG_ACROSS_RECONFIGURES = """
import logging
import structlog
from fixgw.ops.logging import configure, enabled_for
log = structlog.get_logger("t")
configure("warning", "json")
log.info("info at warning")
log.debug("debug at warning")
print(log.is_enabled_for(logging.INFO), enabled_for(logging.INFO), flush=True)
configure("debug", "json")
log.info("info at debug")
log.debug("debug at debug")
print(log.is_enabled_for(logging.DEBUG), enabled_for(logging.DEBUG), flush=True)
configure("warning", "console")
log.info("info at warning again")
log.warning("warning as a console line")
"""


def test_a_new_level_and_format_apply_to_loggers_already_in_use() -> None:
    """structlog caches a logger on first use; `configure` again (SIGHUP) still reaches it."""
    done = subprocess.run(
        [sys.executable, "-c", _LOG_ACROSS_RECONFIGURES],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert done.stdout.split() == ["False", "False", "True", "True"]
    *lines, console = done.stderr.splitlines()
    assert [json.loads(line)["event"] for line in lines] == ["info at debug", "debug at debug"]
    assert "warning as a console line" in console and not console.startswith("{")


_PYTHON_S_OWN_OUTPUT = """
import asyncio, gc, logging, threading, warnings
from fixgw.ops.logging import configure
from fixgw.ops.capture import capture, loop_exception_handler
configure("info", "json")
capture()

async def fails() -> None:
    raise TypeError("None object expected; got _asyncio.Task")

async def main() -> None:
    asyncio.get_running_loop().set_exception_handler(loop_exception_handler)
    asyncio.get_running_loop().create_task(fails())  # nobody retrieves its exception
    await asyncio.sleep(0.05)
    gc.collect()
    asyncio.get_running_loop().call_soon(lambda: 1 / 0)
    await asyncio.sleep(0.05)

asyncio.run(main())
gc.collect()
thread = threading.Thread(target=lambda: {}["missing"], name="worker")
thread.start()
thread.join()
warnings.warn("deprecated", DeprecationWarning, stacklevel=1)
logging.getLogger("some.library").warning("from the stdlib: %s", 42)
"""


def test_what_python_and_asyncio_would_print_raw_goes_through_the_structured_log() -> None:
    """asyncio's 'Task exception was never retrieved' reached stderr as plain text."""
    lines = [json.loads(line) for line in _logged_by(_PYTHON_S_OWN_OUTPUT)]
    assert all(isinstance(line, dict) for line in lines)
    events = [line["event"] for line in lines]
    assert events.count("asyncio reported an error") == 2, lines
    never = next(line for line in lines if "never retrieved" in line.get("message", ""))
    assert "None object expected" in never["exception"] and never["level"] == "error"
    assert "ZeroDivisionError" in json.dumps(lines)
    thread = next(line for line in lines if line["event"] == "uncaught exception in a thread")
    assert thread["thread"] == "worker" and "KeyError" in thread["exception"]
    assert any("deprecated" in line["event"] for line in lines)
    assert {"event": "from the stdlib: 42", "logger": "some.library"}.items() <= next(
        line for line in lines if line["event"].startswith("from the stdlib")
    ).items()


def test_the_per_message_counts_and_the_round_trip_histogram_read_as_prometheus_ones() -> None:
    """Kept as plain numbers on the order path (`ops.tally`), exported at scrape time."""
    metrics = Metrics()
    for _ in range(3):
        metrics.count_message("out", "D")
    metrics.md_message("LTC/USD")
    for seconds in (0.00005, 0.0004, 0.0004, 7.0):
        metrics.order_round_trip.observe(seconds)
    value = metrics.registry.get_sample_value
    assert value("fixgw_fix_messages_total", {"direction": "out", "msg_type": "D"}) == 3
    assert value("fixgw_md_messages_total", {"symbol": "LTC/USD"}) == 1
    histogram = "fixgw_order_round_trip_seconds"
    assert value(f"{histogram}_bucket", {"le": "5e-05"}) == 1  # a bound holds what equals it
    assert value(f"{histogram}_bucket", {"le": "0.0003"}) == 1
    assert value(f"{histogram}_bucket", {"le": "0.0005"}) == 3
    assert value(f"{histogram}_bucket", {"le": "1.0"}) == 3
    assert value(f"{histogram}_bucket", {"le": "+Inf"}) == 4
    assert value(f"{histogram}_count", {}) == 4
    assert value(f"{histogram}_sum", {}) == pytest.approx(7.00085)


class Logged:
    """A logger that keeps each line, and the catch-ups a budget asked for, run by hand."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, dict[str, object]]] = []
        self.catch_ups: list[tuple[float, Callable[[], None]]] = []

    def warning(self, event: str, **fields: object) -> None:
        self.lines.append((event, fields))

    def later(self, delay_s: float, then: Callable[[], None]) -> None:
        self.catch_ups.append((delay_s, then))

    def run_catch_ups(self) -> None:
        due, self.catch_ups = self.catch_ups, []
        for _, then in due:
            then()

    def events(self) -> int:
        """The events the lines stand for: each one, and those it says were left out."""
        return sum(1 + int(str(fields.get("left_out", 0))) for _, fields in self.lines)


class Now:
    def __init__(self) -> None:
        self.s = 1000.0

    def __call__(self) -> float:
        return self.s


def budget_for(logged: Logged, now: Now) -> LogBudget:
    return LogBudget(logged, clock=now, later=logged.later)


def test_a_flood_writes_its_first_lines_then_one_a_second_saying_how_many_were_left_out() -> None:
    logged, now = Logged(), Now()
    budget = budget_for(logged, now)
    for n in range(50):
        budget.line("bridge connection closed", peer=f"10.0.0.{n}")
    assert [fields["peer"] for _, fields in logged.lines] == [f"10.0.0.{n}" for n in range(10)]
    assert all("left_out" not in fields for _, fields in logged.lines)
    now.s += 1
    budget.line("bridge connection closed", peer="10.0.0.50")
    assert logged.lines[-1] == ("bridge connection closed", {"peer": "10.0.0.50", "left_out": 40})
    assert logged.events() == 51


def test_at_exit_what_a_flood_left_out_is_written_at_once_and_only_once() -> None:
    """A catch-up still waiting on its timer dies with the process: `write_left_out` at the
    gateway's stop says it first."""
    logged, now = Logged(), Now()
    budget = budget_for(logged, now)
    for n in range(15):
        budget.line("bridge connection closed", peer=f"10.0.0.{n}")
    log_budget.write_left_out()
    assert logged.lines[-1] == ("bridge connection closed", {"peer": "10.0.0.14", "left_out": 4})
    assert logged.events() == 15
    now.s += 1
    logged.run_catch_ups()
    assert logged.events() == 15


def test_when_a_flood_stops_its_last_event_is_written_once_a_line_is_allowed_again() -> None:
    logged, now = Logged(), Now()
    budget = budget_for(logged, now)
    for n in range(15):
        budget.line("OMS logon refused", oms=f"OMS-{n}")
    assert len(logged.lines) == 10
    assert [delay for delay, _ in logged.catch_ups] == [1.0]  # once per flood, not per event
    now.s += 1
    logged.run_catch_ups()
    assert logged.lines[-1] == ("OMS logon refused", {"oms": "OMS-14", "left_out": 4})
    assert logged.events() == 15
    logged.run_catch_ups()
    assert logged.catch_ups == []
    assert len(logged.lines) == 11


def test_a_catch_up_due_before_a_line_is_allowed_waits_and_one_after_a_line_writes_nothing() -> (
    None
):
    logged, now = Logged(), Now()
    budget = budget_for(logged, now)
    for _ in range(12):
        budget.line("refused")
    now.s += 0.5
    logged.run_catch_ups()  # early: the bucket holds half a line
    assert len(logged.lines) == 10
    assert [delay for delay, _ in logged.catch_ups] == [0.5]
    now.s += 0.5
    budget.line("refused")  # the next allowed line says it, and the catch-up has nothing left
    assert logged.lines[-1] == ("refused", {"left_out": 2})
    logged.run_catch_ups()
    assert len(logged.lines) == 11
    assert logged.events() == 13


def test_a_new_flood_after_a_quiet_spell_has_its_first_lines_written_in_full() -> None:
    logged, now = Logged(), Now()
    budget = budget_for(logged, now)
    for _ in range(30):
        budget.line("refused")
    now.s += 1
    logged.run_catch_ups()
    written = len(logged.lines)
    now.s += 60
    for n in range(10):
        budget.line("refused", n=n)
    assert [fields for _, fields in logged.lines[written:]] == [{"n": n} for n in range(10)]
    assert logged.events() == 40


def test_lines_logged_from_many_threads_at_once_are_all_accounted_for() -> None:
    logged, now = Logged(), Now()
    budget = budget_for(logged, now)
    threads = [
        threading.Thread(target=lambda: [budget.line("refused") for _ in range(500)])
        for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(logged.lines) == 10
    assert len(logged.catch_ups) == 1
    now.s += 1
    logged.run_catch_ups()
    assert logged.events() == 4000
