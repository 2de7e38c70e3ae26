"""A signal sent while the gateway starts (importing, replaying its journal, building its
parts: under systemd the unit is still "activating") is held and acted on once the gateway
can, never left to its default action (docs/operations.md, Signals)."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest
import yaml

from fixgw.api.client import ApiError
from fixgw.testing import LocalStack, Process, wait_until
from tests.integration.conftest import StackFactory

pytestmark = pytest.mark.integration


def signalled_while_starting(stack: LocalStack, sig: signal.Signals) -> Process:
    """The gateway started, and `sig` sent to it while it imports what it runs on: after
    QuickFIX's library is loaded, before its socket exists."""
    path = stack.root / "gateway.yaml"
    path.write_text(yaml.safe_dump(stack.gateway_config()))
    gateway = Process("gateway", ["run", "-c", str(path)], stack.root / "gateway.log", stack._env())
    stack.gateway = gateway
    gateway.start()
    assert gateway.popen is not None
    maps = Path(f"/proc/{gateway.popen.pid}/maps")
    wait_until(lambda: "_quickfix" in maps.read_text(), 20, "the gateway to import QuickFIX")
    assert not Path(stack.socket_path).exists(), "too late: the gateway has started"
    gateway.popen.send_signal(sig)
    return gateway


def comes_up(stack: LocalStack, gateway: Process) -> None:
    popen = gateway.popen
    assert popen is not None
    wait_until(
        lambda: Path(stack.socket_path).exists() or popen.poll() is not None,
        20,
        "the gateway's socket",
    )
    assert popen.poll() is None, f"the signal killed it: exit {popen.returncode}"
    wait_until(lambda: stack.status()["ready"], 20, "the gateway to log on")


def journaled(stack: LocalStack) -> list[str]:
    lines = (stack.root / "journal.jsonl").read_text().splitlines()
    return [json.loads(line)["type"] for line in lines]


def test_sigusr1_while_starting_starts_the_gateway_halted_and_the_halt_holds(
    make_stack: StackFactory,
) -> None:
    stack = make_stack(start=False)
    stack.start_sim()
    gateway = signalled_while_starting(stack, signal.SIGUSR1)
    comes_up(stack, gateway)
    halted = stack.status()["halted"]
    assert halted["by"] == "SIGUSR1"
    assert halted["reason"] == "kill switch signal, received while starting"
    with stack.client() as gw, pytest.raises(ApiError) as refused:
        gw.new_order(symbol="BTC/USD", side="buy", type="limit", qty="0.1", price="100")
    assert refused.value.code == "halted"
    assert gateway.stop() == 0
    assert journaled(stack)[:2] == ["session.halted", "session.up"]  # halted before logon
    # what Restart= brings back: still halted, from the journal
    stack.start_gateway()
    assert stack.status()["halted"]["by"] == "SIGUSR1"


def test_sighup_while_starting_reads_the_config_again_once_started(
    make_stack: StackFactory,
) -> None:
    stack = make_stack(start=False)
    stack.start_sim()
    gateway = signalled_while_starting(stack, signal.SIGHUP)
    comes_up(stack, gateway)
    log = gateway.log()
    assert '"signal received while starting: acted on now"' in log
    assert '"config reloaded"' in log


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_sigterm_while_starting_stops_cleanly_before_logging_on(
    make_stack: StackFactory, sig: signal.Signals
) -> None:
    stack = make_stack(start=False)
    stack.start_sim()
    gateway = signalled_while_starting(stack, sig)
    assert gateway.popen is not None
    assert gateway.popen.wait(20) == 0
    log = gateway.log()
    assert '"gateway stopped before it started"' in log
    assert '"gateway started"' not in log and "Traceback" not in log
    assert not Path(stack.socket_path).exists()
    stack.start_gateway()  # the journal's lock was let go
    assert stack.status()["halted"] is None
