"""The daemon as systemd and Prometheus see it: notify messages on a real NOTIFY_SOCKET,
and the metrics endpoint of a live gateway."""

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
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from fixgw.api.client import ApiError
from fixgw.cli import DEMO_SIM
from fixgw.config import load_sim_config
from fixgw.testing import free_port, wait_until
from tests.integration.conftest import EventLog, StackFactory

pytestmark = pytest.mark.integration


def test_ready_after_logon_watchdog_while_healthy_stopping_on_sigterm(
    make_stack: StackFactory, tmp_path: Path
) -> None:
    address = str(tmp_path / "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(address)
    sock.settimeout(15)
    stack = make_stack(start=False)
    stack.env = {"NOTIFY_SOCKET": address, "WATCHDOG_USEC": "400000"}
    stack.start_sim()
    stack.start_gateway()
    assert stack.gateway is not None and stack.gateway.popen is not None
    first = sock.recv(512)
    assert first.startswith(b"READY=1\nSTATUS=logged on as FIX.4.4:")
    assert stack.status()["ready"]
    assert sock.recv(512) == b"WATCHDOG=1"
    assert sock.recv(512) == b"WATCHDOG=1"  # every 0.2 s, half of WatchdogSec
    stack.gateway.popen.send_signal(signal.SIGTERM)
    messages = []
    while (message := sock.recv(512)) != b"STOPPING=1":
        messages.append(message)
    assert set(messages) <= {b"WATCHDOG=1"}
    assert stack.gateway.stop() == 0
    sock.close()


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        return str(r.read().decode())


def heartbeats_timed(text: str) -> int:
    found = re.search(r"^fixgw_heartbeat_round_trip_seconds_count (\S+)$", text, re.M)
    return int(float(found.group(1))) if found else 0


def test_a_live_gateway_serves_its_metrics(make_stack: StackFactory) -> None:
    port = free_port()
    stack = make_stack(start=False)
    stack.metrics_port = port
    stack.start_sim()
    stack.start_gateway()
    with stack.client() as gw:
        gw.subscribe(["orders"])
        cl_ord_id = gw.new_order(symbol="BTC/USD", side="buy", type="market", qty="0.1")[
            "cl_ord_id"
        ]
        EventLog(gw).find(cl_ord_id, "order.filled")
        gw.request("md_subscribe", symbol="BTC/USD", what=["book"])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as r:
            assert r.status == 200
        # the first TestRequest goes out within a second of logon
        wait_until(lambda: heartbeats_timed(scrape(port)) > 0, 15, "a timed heartbeat")
        text = scrape(port)
    assert heartbeats_timed(text)
    for expected in (
        "fixgw_logon_attempts_total 1.0",
        "fixgw_session_up 1.0",
        "fixgw_logons_total 1.0",
        "fixgw_order_round_trip_seconds_count 1.0",
        'fixgw_fix_messages_total{direction="out",msg_type="D"} 1.0',
        'fixgw_fix_messages_total{direction="in",msg_type="8"}',
        'fixgw_book_stale{symbol="BTC/USD"} 0.0',
        "fixgw_api_clients 1.0",
        "fixgw_seconds_since_last_inbound",
    ):
        assert expected in text, expected


def metric(port: int, name: str) -> float:
    found = re.search(rf"^{name} (\S+)$", scrape(port), re.M)
    assert found, name
    return float(found.group(1))


class LogShipper:
    """Reads the gateway's stderr from a FIFO, as journald or a container runtime reads a
    pipe, until it dies (`stop`): from then on the gateway's writes fail with EPIPE, until
    another shipper opens the FIFO."""

    def __init__(self, fifo: Path) -> None:
        self._fd = os.open(fifo, os.O_RDWR)  # neither waits for a writer nor reads an end
        self.received = bytearray()
        self._dead = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._dead.is_set():
            if select.select([self._fd], [], [], 0.05)[0]:
                self.received += os.read(self._fd, 65536)

    def stop(self) -> None:
        if not self._dead.is_set():
            self._dead.set()
            self._thread.join(5)
            os.close(self._fd)

    def records(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in bytes(self.received).splitlines()]


def test_a_log_nobody_reads_drops_its_lines_while_the_gateway_answers_trades_and_reconnects(
    make_stack: StackFactory,
) -> None:
    """Every log call raised once stderr could not be written (EPIPE here; ENOSPC on a full
    log disk alike): a refused order closed its client's connection, a new client was never
    answered (nor `fixgw halt`), and the reconnector died with the session, while status
    still said up. Lines are dropped and counted instead, and the next reader is told."""
    stack = make_stack(start=False, risk={"default": {"max_qty": "5"}})
    stack.log_level = "info"
    stack.metrics_port = port = free_port()
    log_path = stack.root / "gateway.log"
    os.mkfifo(log_path)
    shipper = LogShipper(log_path)
    received = b""
    try:
        stack.start_sim()
        stack.start_gateway()
        with stack.client() as gw:
            gw.subscribe(["orders", "session"])
            events = EventLog(gw)
            shipper.stop()
            received += shipper.received
            filled = gw.new_order(symbol="BTC/USD", side="buy", type="market", qty="0.1")
            events.find(filled["cl_ord_id"], "order.filled")
            with pytest.raises(ApiError) as over_the_limit:
                gw.new_order(symbol="BTC/USD", side="buy", type="market", qty="50")
            assert over_the_limit.value.code == "risk_rejected"
            with stack.client("a new client") as another:
                assert another.status()["session"] == "up"
            assert stack.sim is not None
            stack.sim.stop(signal.SIGKILL)
            events.first(lambda e: e["type"] == "session.down")
            stack.start_sim()
            events.first(lambda e: e["type"] == "session.up", timeout=30)
            dropped = gw.status()["log_lines_dropped"]
        assert dropped > 0
        assert metric(port, "fixgw_log_lines_dropped_total") >= dropped
        assert metric(port, "fixgw_logons_total") == 2

        shipper = LogShipper(log_path)
        with stack.client() as gw:
            gw.new_order(symbol="BTC/USD", side="buy", type="market", qty="0.1")
        wait_until(lambda: any(r["event"] == "order.filled" for r in shipper.records()), 10, "log")
        notice, *_ = (r for r in shipper.records() if r["event"] == "log lines dropped")
        assert notice["level"] == "warning" and notice["dropped"] >= dropped
        assert "Broken pipe" in notice["error"]
        shipper.stop()
        assert stack.gateway is not None and stack.gateway.stop() == 0  # nobody reading
    finally:
        shipper.stop()
        stack.stop()
        log_path.unlink()
        log_path.write_bytes(received + shipper.received)  # for the fixture's checks


def test_the_demo_refuses_to_start_beside_a_simulator_port_already_in_use(tmp_path: Path) -> None:
    """A leftover demo holds the port: the new simulator would die on bind while the gateway
    traded with the old one. Exit status 2, as for any port in use (it was 1, the status of
    a gateway that could not be reached)."""
    sim = load_sim_config(DEMO_SIM)
    leftover = None
    with contextlib.suppress(OSError):  # held by something else already: in use all the same
        leftover = socket.create_server((sim.host, sim.port))
    try:
        demo = subprocess.run(
            [sys.executable, "-m", "fixgw", "demo"],
            cwd=tmp_path,
            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    finally:
        if leftover is not None:
            leftover.close()
    assert demo.returncode == 2  # a port in use, as operations.md's exit statuses give it
    assert f"{sim.host}:{sim.port}, the simulator's port, is in use" in demo.stderr
    assert not (tmp_path / "var").exists()  # neither the simulator nor the gateway started


def test_the_demo_banner_names_the_fixgw_that_runs_so_its_commands_work_as_pasted(
    tmp_path: Path,
) -> None:
    """An installed fixgw (a venv elsewhere, the Docker image) run in a directory of the
    user's: the banner said `.venv/bin/fixgw orders`, which exists only in a checkout (exit
    127). It names the fixgw running, and the command it prints works in that directory."""
    installed = Path(sys.executable).parent / "fixgw"
    path = os.pathsep.join(
        d for d in os.environ.get("PATH", "").split(os.pathsep) if Path(d) != installed.parent
    )
    env = {
        **os.environ,
        "PATH": path,
        "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
    }
    banner = tmp_path / "demo.out"
    with banner.open("wb") as out:
        demo = subprocess.Popen(
            [str(installed), "demo"], cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        wait_until(lambda: "Ctrl-C stops both" in banner.read_text(), 30, "the demo's banner")
        wait_until(lambda: (tmp_path / "var/demo/fixgw.sock").exists(), 20, "the demo's socket")
        [orders] = [
            line.strip() for line in banner.read_text().splitlines() if line.endswith(" orders")
        ]
        assert orders == f"{installed} orders"
        typed = subprocess.run(
            ["bash", "-c", orders],
            cwd=tmp_path,
            env={**env, "FIXGW_SOCKET": "var/demo/fixgw.sock"},
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert typed.returncode == 0, typed.stderr
    finally:
        demo.send_signal(signal.SIGINT)
        demo.wait(30)


def test_the_socket_named_on_the_command_line_beats_fixgw_nats_in_the_environment(
    make_stack: StackFactory,
) -> None:
    """In a shell set up for NATS as docs/nats.md shows (FIXGW_NATS, FIXGW_GATEWAY), an order
    placed with `--socket` went over NATS to that other gateway (here: a broker nobody runs)."""
    stack = make_stack()
    path = str(stack.socket_path)
    shell = {**os.environ, "FIXGW_NATS": f"nats://127.0.0.1:{free_port()}"}
    shell["FIXGW_GATEWAY"] = "acct-1"
    order = ["order", "new", "LTC/USD", "buy", "1", "--price", "20", "--follow", "0", "--json"]
    placed = []
    for args in (["--socket", path, *order], [*order, "--socket", path]):
        done = subprocess.run(
            [sys.executable, "-m", "fixgw", *args],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env=shell,
        )
        assert done.returncode == 0, (args, done.stderr)
        placed.append(json.loads(done.stdout.splitlines()[0])["cl_ord_id"])
    with stack.client() as gw:
        assert {o["cl_ord_id"] for o in gw.orders()} == set(placed)


def test_the_cli_finds_the_gateway_with_its_options_before_the_command_or_after_it(
    make_stack: StackFactory,
) -> None:
    """`fixgw --socket PATH status` was argparse's "invalid choice: 'PATH'"."""
    stack = make_stack()
    path = str(stack.socket_path)
    for args in (
        ["--socket", path, "status", "--json"],
        ["status", "--json", "--socket", path],
        ["--socket", "/nonexistent/fixgw.sock", "status", "--json", "--socket", path],
    ):
        done = subprocess.run(
            [sys.executable, "-m", "fixgw", *args],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, (args, done.stderr)
        assert json.loads(done.stdout)["session"] == "up"
