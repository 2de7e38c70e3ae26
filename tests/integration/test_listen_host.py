"""The bridge's `host` and the simulator's `host` hold: QuickFIX binds every address, so
fixgw holds its acceptors to the one configured (`fixgw.fix.qflisten`). The machine has only
loopback, but every 127.x address is an address of the machine: a bridge on 127.0.0.1 must
refuse a connection to 127.0.0.2, which QuickFIX alone would take."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import trustme
import yaml

from fixgw.testing import LocalStack, free_port, wait_until
from tests.counterparties.raw_oms import RawOms
from tests.integration.conftest import StackFactory
from tests.integration.test_bridge_raw_oms import order, report

pytestmark = pytest.mark.integration

NOT_HERE = "192.0.2.1"
"""TEST-NET-1 (RFC 5737): an address no machine has."""


def refused(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=2).close()
    except ConnectionRefusedError:
        return True
    return False


def listening(pid: int) -> set[tuple[str, int]]:
    """The TCP addresses a process listens on, from /proc."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = fd.readlink().name
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    found = set()
    for table, size in (("tcp", 4), ("tcp6", 16)):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            columns = line.split()
            local, state, inode = columns[1], columns[3], columns[9]
            if state != "0A" or inode not in inodes:  # 0A: LISTEN
                continue
            address, port = local.split(":")
            raw = bytes.fromhex(address)
            if size == 4:
                ip = socket.inet_ntop(socket.AF_INET, raw[::-1])
            else:
                words = b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4))
                ip = socket.inet_ntop(socket.AF_INET6, words)
            found.add((ip, int(port, 16)))
    return found


def bridged_stack(make_stack: StackFactory, host: str) -> tuple[LocalStack, int, str]:
    comp_id = f"RAW-{uuid.uuid4().hex[:8]}"
    port = free_port()
    stack = make_stack(start=False)
    stack.gateway_overrides["bridge"] = {
        "host": host,
        "port": port,
        "store_dir": str(stack.root / "bridge-store"),
        "sessions": [{"comp_id": comp_id}],  # no password: the address is all that guards it
    }
    stack.start_sim()
    stack.start_gateway()
    return stack, port, comp_id


def test_a_bridge_on_127_0_0_1_refuses_a_connection_to_another_address_of_the_machine(
    make_stack: StackFactory,
) -> None:
    stack, port, comp_id = bridged_stack(make_stack, "127.0.0.1")
    assert stack.gateway is not None and stack.gateway.popen is not None
    assert refused("127.0.0.2", port)
    assert listening(stack.gateway.popen.pid) == {("127.0.0.1", port)}
    oms = RawOms(port, comp_id, host="127.0.0.1")
    oms.start()
    oms.send("D", order("HERE-1", "1", "0.1", "29000"))
    assert report(oms, "HERE-1", "0")[39] == "0"
    assert refused("127.0.0.2", port)  # not only before the first session
    oms.logout()
    oms.check_valid()


def test_a_bridge_on_127_0_0_2_alone_takes_orders_there_and_refuses_127_0_0_1(
    make_stack: StackFactory,
) -> None:
    stack, port, comp_id = bridged_stack(make_stack, "127.0.0.2")
    assert stack.gateway is not None and stack.gateway.popen is not None
    assert refused("127.0.0.1", port)
    assert listening(stack.gateway.popen.pid) == {("127.0.0.2", port)}
    oms = RawOms(port, comp_id, host="127.0.0.2")
    oms.start()
    oms.send("D", order("THERE-1", "1", "0.1", "29000"))
    assert report(oms, "THERE-1", "0")[39] == "0"
    oms.logout()
    oms.check_valid()


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2"])
def test_the_simulator_listens_on_its_host_only(make_stack: StackFactory, host: str) -> None:
    stack = make_stack(start=False, sim={"host": host}, session={"host": host})
    stack.start_sim()
    stack.start_gateway()  # logged on through `host`
    other = "127.0.0.2" if host == "127.0.0.1" else "127.0.0.1"
    assert refused(other, stack.sim_port)
    assert stack.sim is not None and stack.sim.popen is not None
    assert listening(stack.sim.popen.pid) == {(host, stack.sim_port)}


def test_a_tls_simulator_keeps_quickfix_on_loopback(
    make_stack: StackFactory, tmp_path: Path
) -> None:
    """Behind TLS the simulator's QuickFIX listens on a loopback port of its own: that one
    must not take connections from elsewhere either."""
    authority = trustme.CA()
    cert = authority.issue_cert("127.0.0.2")
    cert_file, key_file = tmp_path / "sim.pem", tmp_path / "sim.key"
    cert.cert_chain_pems[0].write_to_path(cert_file)
    cert.private_key_pem.write_to_path(key_file)
    tls = {"cert_file": str(cert_file), "key_file": str(key_file)}
    stack = make_stack(start=False, sim={"host": "127.0.0.2", "tls": tls})
    stack.start_sim()
    assert stack.sim is not None and stack.sim.popen is not None
    pid = stack.sim.popen.pid
    wait_until(lambda: len(listening(pid)) == 2, 10, "both listeners")
    addresses = listening(pid)
    assert ("127.0.0.2", stack.sim_port) in addresses
    (internal,) = addresses - {("127.0.0.2", stack.sim_port)}
    assert internal[0] == "127.0.0.1"
    assert refused("127.0.0.2", internal[1])


def _check_config(
    tmp_path: Path, config: dict[str, object], *args: str
) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return subprocess.run(
        [sys.executable, "-m", "fixgw", "check-config", *args, str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "FIXGW_TEST_API_KEY": "k", "FIXGW_TEST_SECRET": "s"},
    )


@pytest.mark.parametrize(
    ("host", "problem"),
    [
        ("127.0.0.2", None),
        ("0.0.0.0", None),  # noqa: S104 (every address, said outright)
        (NOT_HERE, "bridge.host: 192.0.2.1 is not an address of this machine"),
        ("no-such-host.invalid", "bridge.host: 'no-such-host.invalid' does not resolve"),
    ],
)
def test_check_config_refuses_a_bridge_host_the_gateway_cannot_listen_on(
    make_stack: StackFactory, tmp_path: Path, host: str, problem: str | None
) -> None:
    stack = make_stack(start=False)
    config = stack.gateway_config()
    config["bridge"] = {"host": host, "port": free_port(), "sessions": [{"comp_id": "OMS"}]}
    done = _check_config(tmp_path, config)
    if problem is None:
        assert done.returncode == 0, done.stderr
    else:
        assert done.returncode == 2 and problem in done.stderr, done.stderr


def test_check_config_refuses_a_simulator_host_that_is_not_here(tmp_path: Path) -> None:
    config = {
        "host": NOT_HERE,
        "port": free_port(),
        "accounts": [{"comp_id": "C", "api_key": "k", "secret_key": "s"}],
        "symbols": {"BTC/USD": {}},
    }
    done = _check_config(tmp_path, config, "--sim")
    assert done.returncode == 2 and "host: 192.0.2.1 is not an address" in done.stderr


def test_the_gateway_and_the_simulator_refuse_to_start_on_a_host_that_is_not_here(
    make_stack: StackFactory, tmp_path: Path
) -> None:
    stack = make_stack(start=False)
    config = tmp_path / "sim.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "host": NOT_HERE,
                "port": free_port(),
                "store_dir": str(tmp_path / "sim-store"),
                "accounts": [{"comp_id": "C", "api_key": "k", "secret_key": "s"}],
                "symbols": {"BTC/USD": {}},
            }
        )
    )
    sim = subprocess.run(
        [sys.executable, "-m", "fixgw", "sim", "-c", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert sim.returncode == 2 and "is not an address of this machine" in sim.stderr
    gateway_config = stack.gateway_config()
    gateway_config["bridge"] = {
        "host": NOT_HERE,
        "port": free_port(),
        "store_dir": str(tmp_path / "bridge-store"),
        "sessions": [{"comp_id": "OMS"}],
    }
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump(gateway_config))
    gateway = subprocess.run(
        [sys.executable, "-m", "fixgw", "run", "-c", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "FIXGW_TEST_API_KEY": "k", "FIXGW_TEST_SECRET": "s"},
    )
    assert gateway.returncode == 2, gateway.stderr
    assert "bridge.host: 192.0.2.1 is not an address of this machine" in gateway.stderr
    assert not Path(stack.socket_path).exists()  # it stopped before it served anything
