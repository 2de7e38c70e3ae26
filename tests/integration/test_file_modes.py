"""What the gateway writes, it writes for itself: every file 0640 or tighter, QuickFIX's stores
(the exchange's and the bridge's: by the dialect's design they hold Account (1) =
`apiKey,secretKey` as sent) 0700 with files 0600, whatever the umask it was started with.
The journal was 0644 under the default umask, readable by every local user."""

from __future__ import annotations

import grp
import os
import stat
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from fixgw.testing import LocalStack, free_port, wait_until
from tests.integration.conftest import SERVICE_USER, EventLog, StackFactory, as_service_user
from tests.integration.oms import Oms

pytestmark = pytest.mark.integration


@pytest.fixture
def default_umask() -> Iterator[None]:
    """As a shell leaves it (the processes the stack starts inherit it)."""
    before = os.umask(0o022)
    yield
    os.umask(before)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def test_every_file_the_gateway_writes_is_its_own(
    make_stack: StackFactory, tmp_path: Path, default_umask: None
) -> None:
    comp_id = f"OMS-{uuid.uuid4().hex[:8]}"
    port = free_port()
    stack = make_stack(start=False)
    old_store = stack.root / "store"
    old_store.mkdir(mode=0o755)
    (old_store / "left-by-an-older-version.body").write_text("")
    os.chmod(old_store / "left-by-an-older-version.body", 0o644)
    stack.gateway_overrides["bridge"] = {
        "port": port,
        "store_dir": str(stack.root / "bridge-store"),
        "sessions": [{"comp_id": comp_id}],
    }
    stack.start_sim()
    stack.start_gateway()
    oms = Oms(tmp_path / comp_id, port, comp_id)
    oms.start()
    try:
        oms.wait_logged_on()
        with stack.client() as gw:
            gw.subscribe(["orders"])
            order = gw.new_order(symbol="LTC/USD", side="buy", type="limit", qty="1", price="5")
            EventLog(gw).find(order["cl_ord_id"], "order.accepted")
    finally:
        oms.stop()
    assert stack.gateway is not None
    stack.gateway.stop()

    written = [
        p
        for p in stack.root.rglob("*")
        if p.is_file()
        and not p.is_relative_to(stack.root / "sim-store")
        and p.name not in ("gateway.yaml", "sim.yaml", "gateway.log", "sim.log")
    ]
    assert {p.name for p in written} >= {
        "journal.jsonl",
        "journal.jsonl.fixseq",
        "journal.jsonl.seqmark",
        "journal.jsonl.lock",
    }
    assert {str(p): oct(mode(p)) for p in written if mode(p) & 0o137} == {}  # 0640 at most
    for store in (stack.root / "store", stack.root / "bridge-store"):
        assert mode(store) == 0o700, store
        inside = list(store.iterdir())
        assert len(inside) > 1, store
        private = {p.name: oct(mode(p)) for p in inside}
        assert private == {p.name: oct(0o700 if p.is_dir() else 0o600) for p in inside}


def test_a_directory_made_for_the_socket_lets_in_only_whom_the_socket_mode_does(
    tmp_path: Path, default_umask: None
) -> None:
    """Under the daemon's umask 077 a directory made for the socket would keep out the
    group the socket is for; it gets search permission for exactly those."""
    stack = LocalStack(root=tmp_path, sim_port=free_port(), books={}, symbols=["BTC/USD"])
    config = stack.gateway_config()
    socket_path = tmp_path / "run" / "fixgw" / "gw.sock"
    config["api"]["socket_path"] = str(socket_path)
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump(config))
    gateway = subprocess.Popen(
        [sys.executable, "-m", "fixgw", "run", "-c", str(path)],
        env=stack._env(),
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(socket_path.exists, 20, "the socket")
        assert mode(socket_path) == 0o660
        assert mode(socket_path.parent) == mode(socket_path.parent.parent) == 0o710
    finally:
        gateway.terminate()
        assert gateway.wait(30) == 0


CLIENT_UID = SERVICE_USER - 1
"""A user other than the service's, let in by the socket's group alone."""


def test_a_member_of_the_socket_group_reaches_the_socket_through_a_directory_made_for_it(
    service_root: Path,
) -> None:
    """The directory had the process's group, so the group the socket was given could not
    search it: its members got EACCES though the socket's own mode let them in."""
    group = next(g for g in grp.getgrall() if g.gr_gid not in (0, SERVICE_USER))
    stack = LocalStack(root=service_root, sim_port=free_port(), books={}, symbols=["BTC/USD"])
    config = stack.gateway_config()
    socket_path = service_root / "run" / "fixgw" / "gw.sock"
    config["api"].update(socket_path=str(socket_path), socket_group=group.gr_name)
    path = service_root / "gateway.yaml"
    path.write_text(yaml.safe_dump(config))
    gateway = subprocess.Popen(
        [
            as_service_user(service_root, groups=[group.gr_gid]),
            "-m",
            "fixgw",
            "run",
            "-c",
            str(path),
        ],
        env=stack._env(),
        cwd=service_root,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(socket_path.exists, 20, "the socket")
        member = subprocess.run(
            [
                *("setpriv", "--reuid", str(CLIENT_UID), "--regid", str(CLIENT_UID)),
                *("--groups", str(group.gr_gid), sys.executable, "-c"),
                "import sys; from fixgw.api.client import Client; "
                "print(Client.connect(sys.argv[1], name='member').status()['session'])",
                str(socket_path),
            ],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert member.returncode == 0, member.stderr[-2000:]
        for directory in (socket_path.parent, socket_path.parent.parent):
            assert (directory.stat().st_gid, mode(directory)) == (group.gr_gid, 0o710), directory
        assert socket_path.stat().st_gid == group.gr_gid
    finally:
        gateway.terminate()
        assert gateway.wait(30) == 0
