"""Credentials the exchange refuses are not tried again until the operator says so: a key
knocked on once a minute may be locked, an address banned."""

from __future__ import annotations

import json
import signal
import socket
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

from fixgw.api.client import ApiError
from fixgw.testing import SECRET, LocalStack, free_port, wait_until
from tests.integration.conftest import StackFactory, readyz

pytestmark = pytest.mark.integration


def held(stack: LocalStack) -> bool:
    return bool(stack.status()["connection"]["phase"] == "held")


def start_with_a_wrong_secret(make_stack: StackFactory, secret_file: Path) -> LocalStack:
    secret_file.write_text("not-the-secret\n")
    metrics_port = free_port()
    stack = make_stack(
        start=False,
        credentials={"secret_key": {"file": str(secret_file)}},
        ops={"metrics_port": metrics_port},
    )
    stack.metrics_port = metrics_port
    stack.start_sim()
    stack.start_gateway(wait_for_logon=False)
    wait_until(lambda: held(stack), 20, "the logon to be held back")
    return stack


def test_refused_credentials_stop_the_logons_and_say_why_everywhere(
    make_stack: StackFactory, tmp_path: Path
) -> None:
    stack = start_with_a_wrong_secret(make_stack, tmp_path / "secret")
    assert stack.gateway is not None and stack.metrics_port is not None
    connection = stack.status()["connection"]
    assert connection["attempts"] == 1 and connection["next_attempt_at"] is None
    assert "refused the credentials" in connection["held"]
    code, body = readyz(stack.metrics_port)
    assert code == 503 and "refused the credentials" in body
    with urllib.request.urlopen(f"http://127.0.0.1:{stack.metrics_port}/metrics") as m:
        assert "fixgw_credentials_refused 1.0" in m.read().decode()
    errors = [
        json.loads(line)
        for line in stack.gateway.log().splitlines()
        if line.startswith("{") and json.loads(line)["level"] == "error"
    ]
    assert [e["event"] for e in errors if "credentials" in e["event"]] == [
        "logon refused: the exchange says the credentials are wrong; no further logon until "
        "`fixgw session logon`, a reload with new credentials, or a restart"
    ]
    with stack.client() as gw:  # the operator tries again by hand: one more attempt, held again
        with pytest.raises(ApiError) as meanwhile:
            gw.new_order(symbol="BTC/USD", side="buy", type="limit", qty="1", price="1")
        assert meanwhile.value.message == (
            "the exchange session is not logged on (held); nothing was sent"
        )
        begun = gw.request("session_logon")["connection"]
        assert (begun["phase"], begun["held"]) == ("connecting", None)  # the attempt it begins
        assert (begun["attempts"], begun["failures_in_a_row"]) == (2, 0)
        wait_until(lambda: held(stack), 15, "the logon held back again")


def test_a_reload_with_the_right_secret_logs_on(make_stack: StackFactory, tmp_path: Path) -> None:
    secret_file = tmp_path / "secret"
    stack = start_with_a_wrong_secret(make_stack, secret_file)
    assert stack.gateway is not None and stack.gateway.popen is not None
    secret_file.write_text(SECRET + "\n")
    stack.gateway.popen.send_signal(signal.SIGHUP)
    wait_until(lambda: stack.status()["ready"], 20, "the logon with the new secret")
    reloaded = next(
        json.loads(line) for line in stack.gateway.log().splitlines() if "config reloaded" in line
    )
    assert "credentials" in reloaded["applied"]
    with stack.client() as gw, pytest.raises(ApiError) as nothing_held:
        gw.request("session_logon")
    assert nothing_held.value.code == "invalid_request"
    config = yaml.safe_load((stack.root / "gateway.yaml").read_text())
    assert config["credentials"]["secret_key"] == {"file": str(secret_file)}


def test_under_systemd_a_held_logon_is_a_started_service_that_says_why(
    make_stack: StackFactory, tmp_path: Path
) -> None:
    """Held back, the gateway will not log on until the operator acts: systemd must take it
    for started (READY=1, with the why in STATUS), else TimeoutStartSec fails the start and
    Restart=on-failure knocks again with the refused key, every two minutes. Once a reload
    brings the right secret, STATUS says it is logged on."""
    address = str(tmp_path / "notify")
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(address)
    notify.settimeout(20)
    secret_file = tmp_path / "secret"
    secret_file.write_text("not-the-secret\n")
    stack = make_stack(start=False, credentials={"secret_key": {"file": str(secret_file)}})
    stack.env = {"NOTIFY_SOCKET": address}
    stack.start_sim()
    stack.start_gateway(wait_for_logon=False)
    messages = [notify.recv(512)]
    while not messages[-1].startswith(b"READY=1"):
        messages.append(notify.recv(512))
    assert held(stack)
    assert messages[-1].startswith(b"READY=1\nSTATUS=not logged on: the exchange refused")
    assert stack.gateway is not None and stack.gateway.popen is not None
    secret_file.write_text(SECRET + "\n")
    stack.gateway.popen.send_signal(signal.SIGHUP)
    while not (message := notify.recv(512)).startswith(b"STATUS=logged on as FIX.4.4:"):
        assert not message.startswith(b"READY=1")
    assert stack.status()["ready"]
    notify.close()


def test_a_reload_while_the_exchange_is_away_shows_the_latest_failure_not_the_refusal(
    make_stack: StackFactory, tmp_path: Path
) -> None:
    """operations.md: `last_down_reason` (and systemd's STATUS) always has the latest. The
    credentials were refused, the exchange went away, the operator put the secret right and
    reloaded: every attempt since fails to connect, and saying the credentials were refused
    sends the operator after a cause already dealt with."""
    secret_file = tmp_path / "secret"
    stack = start_with_a_wrong_secret(make_stack, secret_file)
    assert stack.gateway is not None and stack.gateway.popen is not None
    assert stack.sim is not None
    assert "invalid credentials" in stack.status()["connection"]["last_down_reason"]
    stack.sim.stop()
    secret_file.write_text(SECRET + "\n")
    stack.gateway.popen.send_signal(signal.SIGHUP)
    wait_until(
        lambda: stack.status()["connection"]["failures_in_a_row"] >= 2,
        20,
        "two attempts to connect to the exchange that is away",
    )
    connection = stack.status()["connection"]
    assert (connection["held"], connection["last_down_reason"]) == (None, "disconnected")
