"""Real processes: `fixgw sim` and `fixgw run`, on free loopback ports, in a temp directory.

Each `Stack` is a simulator and a gateway speaking FIX over loopback TCP; tests talk to
the gateway through its real Unix socket with the real client.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from fixgw.api.client import Client

API_KEY = "it-api-key"
SECRET = "it-secret-key"
COMP_ID = "fixgw-it-0f4c6b1e"

DEFAULT_BOOKS: dict[str, dict[str, list[list[str]]]] = {
    "BTC/USD": {"bids": [["29990", "1.5"], ["29980", "0.3"]], "asks": [["30010", "1.2"]]},
    "LTC/USD": {},
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if check():
                return
        time.sleep(0.05)
    raise TimeoutError(f"timed out waiting for {what}")


@dataclass
class Process:
    name: str
    args: list[str]
    log_path: Path
    env: dict[str, str]
    popen: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = self.log_path.open("ab")
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "fixgw", *self.args],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=self.env,
        )

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> int:
        if self.popen is None:
            return 0
        if self.popen.poll() is None:
            self.popen.send_signal(sig)
        try:
            code = self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            code = self.popen.wait()
        self.popen = None
        return code

    @property
    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@dataclass
class Stack:
    root: Path
    sim_port: int
    books: dict[str, Any]
    symbols: list[str]
    gateway_overrides: dict[str, Any] = field(default_factory=dict)
    secret: str = SECRET
    sim: Process | None = None
    gateway: Process | None = None

    @property
    def socket_path(self) -> str:
        return str(self.root / "gw.sock")

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update({"FIXGW_TEST_API_KEY": API_KEY, "FIXGW_TEST_SECRET": self.secret})
        return env

    def start_sim(self) -> None:
        config = {
            "host": "127.0.0.1",
            "port": self.sim_port,
            "comp_id": "OKSERVER",
            "store_dir": str(self.root / "sim-store"),
            "accounts": [{"comp_id": COMP_ID, "api_key": API_KEY, "secret_key": SECRET}],
            "symbols": self.books,
        }
        path = self.root / "sim.yaml"
        path.write_text(yaml.safe_dump(config))
        self.sim = Process("sim", ["sim", "-c", str(path)], self.root / "sim.log", self._env())
        self.sim.start()
        wait_until(
            lambda: socket.create_connection(("127.0.0.1", self.sim_port), 0.2).close() is None,
            20,
            "the simulator to listen",
        )

    def gateway_config(self) -> dict[str, Any]:
        config: dict[str, Any] = {
            "session": {
                "host": "127.0.0.1",
                "port": self.sim_port,
                "sender_comp_id": COMP_ID,
                "heartbeat_s": 5,
                "reconnect_interval_s": 1,
                "store_dir": str(self.root / "store"),
            },
            "credentials": {
                "api_key": {"env": "FIXGW_TEST_API_KEY"},
                "secret_key": {"env": "FIXGW_TEST_SECRET"},
            },
            "symbols": self.symbols,
            "api": {"socket_path": self.socket_path, "max_line_bytes": 4096},
            "log": {"level": "debug", "format": "json"},
        }
        for section, values in self.gateway_overrides.items():
            config.setdefault(section, {}).update(values)
        return config

    def start_gateway(self, wait_for_logon: bool = True) -> None:
        path = self.root / "gateway.yaml"
        path.write_text(yaml.safe_dump(self.gateway_config()))
        self.gateway = Process(
            "gateway", ["run", "-c", str(path)], self.root / "gateway.log", self._env()
        )
        self.gateway.start()
        wait_until(lambda: Path(self.socket_path).exists(), 20, "the gateway's socket")
        if wait_for_logon:
            wait_until(lambda: self.status()["session"] == "up", 20, "the gateway to log on")

    def client(self, name: str = "test") -> Client:
        return Client.connect(self.socket_path, name=name)

    def status(self) -> dict[str, Any]:
        with self.client("probe") as c:
            return c.status()

    def stop(self) -> None:
        for process in (self.gateway, self.sim):
            if process is not None:
                process.stop()

    def logs(self) -> str:
        return "\n".join(
            f"----- {p.name} log -----\n{p.log()[-20000:]}"
            for p in (self.sim, self.gateway)
            if p is not None
        )


StackFactory = Callable[..., Stack]


class EventLog:
    """Every event a client has received; `find` looks back before it reads on, so the order
    in which the gateway sends events of different orders does not matter to a test."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.seen: list[dict[str, Any]] = []

    def find(self, cl_ord_id: str, type_: str, timeout: float = 10) -> dict[str, Any]:
        return self.first(lambda e: e.get("cl_ord_id") == cl_ord_id and e["type"] == type_, timeout)

    def first(self, match: Callable[[dict[str, Any]], bool], timeout: float = 10) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        checked = 0
        while True:
            for event in self.seen[checked:]:
                if match(event):
                    return event
            checked = len(self.seen)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no matching event among {self.seen}")
            self.seen.append(self.client.next_event(remaining))


@pytest.fixture
def make_stack(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[StackFactory]:
    stacks: list[Stack] = []

    def factory(
        books: dict[str, Any] | None = None,
        symbols: list[str] | None = None,
        start: bool = True,
        **overrides: Any,
    ) -> Stack:
        stack = Stack(
            root=tmp_path / f"stack{len(stacks)}",
            sim_port=free_port(),
            books=books if books is not None else DEFAULT_BOOKS,
            symbols=symbols or ["BTC/USD", "LTC/USD"],
            gateway_overrides=overrides,
        )
        stack.root.mkdir()
        stacks.append(stack)
        if start:
            stack.start_sim()
            stack.start_gateway()
        return stack

    yield factory
    failed = getattr(request.node, "rep_call", None)
    for stack in stacks:
        stack.stop()
        if failed is not None and failed.failed:
            print(stack.logs())


@pytest.fixture
def stack(make_stack: StackFactory) -> Stack:
    return make_stack()


@pytest.fixture
def gw(stack: Stack) -> Iterator[Client]:
    with stack.client() as client:
        client.subscribe(["orders", "session", "errors"])
        yield client


@pytest.fixture
def events(gw: Client) -> EventLog:
    return EventLog(gw)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if report.when == "call":
        item.rep_call = report  # type: ignore[attr-defined]
