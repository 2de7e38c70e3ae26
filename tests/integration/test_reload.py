"""SIGHUP: what can change live is applied without dropping the session; the rest is named."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from secrets import token_urlsafe
from typing import Any

import pytest
import yaml

from fixgw.api.client import ApiError, Client
from fixgw.testing import LocalStack, free_port, wait_until
from tests.integration.conftest import EventLog, StackFactory
from tests.integration.faultproxy import between
from tests.integration.test_controls import (
    dropped_and_logged_on_again,
    rest_accepted,
    sent_to_exchange,
)

pytestmark = pytest.mark.integration


def test_sighup_applies_symbols_and_names_what_needs_a_restart(make_stack: StackFactory) -> None:
    stack = make_stack()
    assert stack.gateway is not None and stack.gateway.popen is not None
    with stack.client() as gw:
        with pytest.raises(ApiError) as err:
            gw.new_order(symbol="DOGE/USD", side="buy", type="limit", qty="1", price="1")
        assert err.value.code == "unknown_symbol"

        path = stack.root / "gateway.yaml"
        config = yaml.safe_load(path.read_text())
        config["symbols"].append("DOGE/USD")
        config["session"]["heartbeat_s"] = 7
        path.write_text(yaml.safe_dump(config))
        stack.gateway.popen.send_signal(signal.SIGHUP)
        wait_until(lambda: "config reloaded" in stack.gateway.log(), 10, "the reload")  # type: ignore[union-attr]

        assert (
            gw.new_order(symbol="DOGE/USD", side="buy", type="limit", qty="1", price="1")["status"]
            == "pending_new"
        )
        assert gw.status()["session"] == "up"
        logged = [json.loads(x) for x in stack.gateway.log().splitlines() if x.startswith("{")]
        assert [x["event"] for x in logged].count("session up") == 1  # never dropped
    reloaded = next(
        json.loads(line) for line in stack.gateway.log().splitlines() if "config reloaded" in line
    )
    assert reloaded["applied"] == ["symbols"]
    assert reloaded["needs_restart"] == ["session.heartbeat_s"]


def test_a_reload_to_log_level_warning_still_says_it_was_applied(
    make_stack: StackFactory,
) -> None:
    """The confirmation is the operator's only answer to a SIGHUP: a reload that quiets the
    log to warnings says so at warning, not at info, which the new level hides."""
    stack = make_stack()
    assert stack.gateway is not None and stack.gateway.popen is not None
    path = stack.root / "gateway.yaml"
    config = yaml.safe_load(path.read_text())
    config.setdefault("log", {})["level"] = "warning"
    path.write_text(yaml.safe_dump(config))
    stack.gateway.popen.send_signal(signal.SIGHUP)
    wait_until(lambda: "config reloaded" in stack.gateway.log(), 10, "the reload")  # type: ignore[union-attr]
    reloaded = next(
        json.loads(line) for line in stack.gateway.log().splitlines() if "config reloaded" in line
    )
    assert (reloaded["level"], reloaded["applied"]) == ("warning", ["log.level"])


def test_a_client_on_the_stream_of_a_symbol_a_reload_dropped_may_still_leave_it(
    make_stack: StackFactory,
) -> None:
    """A dropped symbol's stream keeps serving the clients on it; `md_unsubscribe` refuses
    a symbol not in the config, but not one the client holds a stream of."""
    stack = make_stack()
    assert stack.gateway is not None and stack.gateway.popen is not None
    with stack.client() as gw:
        gw.request("md_subscribe", symbol="LTC/USD", what=["trades"])
        path = stack.root / "gateway.yaml"
        config = yaml.safe_load(path.read_text())
        config["symbols"].remove("LTC/USD")
        path.write_text(yaml.safe_dump(config))
        stack.gateway.popen.send_signal(signal.SIGHUP)
        wait_until(lambda: "config reloaded" in stack.gateway.log(), 10, "the reload")  # type: ignore[union-attr]
        assert gw.request("md_unsubscribe", symbol="LTC/USD")["topics"] == []
        with pytest.raises(ApiError) as left_already:
            gw.request("md_unsubscribe", symbol="LTC/USD")
        assert left_already.value.code == "unknown_symbol"


def test_sighup_names_a_token_and_a_password_rewritten_in_their_files_as_needing_a_restart(
    make_stack: StackFactory, tmp_path: Path
) -> None:
    """The operator rotates the API token and an OMS password in the files the config names:
    the references are the same, the values are not. Both wait for a restart, and the
    reload says so, naming the keys, never the values."""
    token_file, password_file = tmp_path / "token", tmp_path / "oms-password"
    old_token, new_token = token_urlsafe(32), token_urlsafe(32)
    token_file.write_text(f"{old_token}\n")
    password_file.write_text("the-first-oms-password\n")
    api_port = free_port()
    stack = make_stack(
        api={"tcp": {"port": api_port, "token": {"file": str(token_file)}}},
        bridge={
            "port": free_port(),
            "store_dir": str(tmp_path / "bridge-store"),
            "sessions": [{"comp_id": "OMS-PW", "password": {"file": str(password_file)}}],
        },
    )
    assert stack.gateway is not None and stack.gateway.popen is not None
    token_file.write_text(f"{new_token}\n")
    password_file.write_text("the-second-oms-password\n")
    stack.gateway.popen.send_signal(signal.SIGHUP)
    wait_until(lambda: "config reloaded" in stack.gateway.log(), 10, "the reload")  # type: ignore[union-attr]

    reloaded = next(
        json.loads(line) for line in stack.gateway.log().splitlines() if "config reloaded" in line
    )
    assert (reloaded["applied"], reloaded["needs_restart"]) == (
        None,
        ["api.tcp.token", "bridge.sessions[0].password"],
    )
    with Client.connect(host="127.0.0.1", port=api_port, token=old_token) as until_restarted:
        assert until_restarted.status()["session"] == "up"
    log = stack.gateway.log()
    assert [s for s in (old_token, new_token, "oms-password") if s in log] == []


def test_sighup_with_a_broken_file_keeps_the_running_config(make_stack: StackFactory) -> None:
    stack = make_stack()
    assert stack.gateway is not None and stack.gateway.popen is not None
    (stack.root / "gateway.yaml").write_text("session: [broken\n")
    stack.gateway.popen.send_signal(signal.SIGHUP)
    wait_until(lambda: "reload refused" in stack.gateway.log(), 10, "the refusal")  # type: ignore[union-attr]
    with stack.client() as gw:
        assert gw.status()["session"] == "up"
        assert (
            gw.new_order(symbol="LTC/USD", side="buy", type="limit", qty="1", price="1")["status"]
            == "pending_new"
        )


def test_sighup_applies_new_throttle_rates_to_the_running_buckets(
    make_stack: StackFactory,
) -> None:
    stack = make_stack(
        throttle={"limits": {"new_order": {"per_s": 0.01, "burst": 1}}, "policy": "reject"}
    )
    assert stack.gateway is not None and stack.gateway.popen is not None

    def order(cl_ord_id: str) -> str:
        fields = {"symbol": "LTC/USD", "side": "buy", "type": "limit", "qty": "1", "price": "1"}
        return str(gw.new_order(cl_ord_id=cl_ord_id, **fields)["status"])

    with stack.client() as gw:
        assert order("before") == "pending_new"
        with pytest.raises(ApiError) as refused:
            order("over-the-old-rate")
        assert refused.value.code == "throttled"

        path = stack.root / "gateway.yaml"
        config = yaml.safe_load(path.read_text())
        config["throttle"]["limits"]["new_order"] = {"per_s": 2, "burst": 3}
        path.write_text(yaml.safe_dump(config))
        stack.gateway.popen.send_signal(signal.SIGHUP)
        wait_until(lambda: "config reloaded" in stack.gateway.log(), 10, "the reload")  # type: ignore[union-attr]
        time.sleep(1.6)  # the new rate refills the burst; the old one would take 100 s a token
        assert [order(f"after-{n}") for n in range(3)] == ["pending_new"] * 3
        with pytest.raises(ApiError, match="rate limit"):
            order("over-the-new-burst")
    reloaded = next(
        json.loads(line) for line in stack.gateway.log().splitlines() if "config reloaded" in line
    )
    assert "throttle.limits.new_order.per_s" in reloaded["applied"]


@pytest.mark.parametrize(
    "new_limit", [{"per_s": 50, "burst": 1}, None], ids=["rate raised", "limit removed"]
)
def test_orders_queued_before_a_throttle_reload_reach_the_exchange_before_those_after_it(
    make_stack: StackFactory, new_limit: dict[str, Any] | None
) -> None:
    """One new order every 100 s: two wait their turn when a SIGHUP raises the rate (or
    removes the limit). They go out at the new rate, not at the turns the old one gave
    them, and still ahead of the order placed next."""
    stack = make_stack(
        throttle={"limits": {"new_order": {"per_s": 0.01, "burst": 1}}, "policy": "queue"}
    )
    fields = {"symbol": "LTC/USD", "side": "buy", "type": "limit", "qty": "1", "price": "1"}
    with stack.client() as gw:
        for cl_ord_id in ("first", "queued-1", "queued-2"):
            gw.new_order(cl_ord_id=cl_ord_id, **fields)
        assert gw.status()["throttle_queued"] == 2

        def new_rate(config: dict[str, Any]) -> None:
            limits = config["throttle"]["limits"]
            if new_limit is None:
                del limits["new_order"]
            else:
                limits["new_order"] = new_limit

        assert reload_with(stack, new_rate)["event"] == "config reloaded"
        gw.new_order(cl_ord_id="after-the-reload", **fields)
        placed = ["first", "queued-1", "queued-2", "after-the-reload"]
        assert sent_to_exchange(stack, last="after-the-reload") == placed
        assert gw.status()["throttle_queued"] == 0


def test_a_reload_slowing_the_status_rate_while_reconciling_waits_for_every_answer(
    make_stack: StackFactory,
) -> None:
    """Three open orders, one question a second, half a second's time-out: reconciliation
    was to give up 2.5 s after the logon. Right after it a SIGHUP slows the rate to 0.4 a
    second: the questions still held go out later, and the time-out counts from the last
    of them. The gateway is ready only once the exchange has answered about every order;
    it gave up before r2 was even asked, and took orders against an unconfirmed state."""
    stack = make_stack(
        start=False,
        throttle={"limits": {"status": {"per_s": 1, "burst": 1}}},
        session={"reconcile_timeout_s": 0.5},
    )
    proxy = between(stack)
    asked: list[str] = []

    def recorded(fields: list[tuple[int, bytes]]) -> list[tuple[int, bytes]]:
        if dict(fields).get(35) == b"H":
            asked.append(dict(fields)[11].decode())
        return fields

    proxy.rewrite_outbound = recorded
    try:
        stack.start_sim()
        stack.start_gateway()
        with stack.client() as gw:
            gw.subscribe(["orders", "session"])
            log = EventLog(gw)
            rest_accepted(gw, log, "r", 3)
            dropped_and_logged_on_again(proxy, log, timeout=15)

            def slower(config: dict[str, Any]) -> None:
                config["throttle"]["limits"]["status"] = {"per_s": 0.4, "burst": 1}

            reload_with(stack, slower)
            wait_until(lambda: gw.status()["ready"], 15, "reconciled")
            asked_when_ready = list(asked)
        assert asked_when_ready == ["r0", "r1", "r2"]
        assert stack.gateway is not None and "taking orders anyway" not in stack.gateway.log()
    finally:
        proxy.close()


def reload_log_level(stack: LocalStack, gw: Client, level: str, new_symbol: str) -> None:
    """SIGHUP with `log.level` changed; a symbol added with it tells when the reload ran
    (the log line that says so may be below the new level)."""
    assert stack.gateway is not None and stack.gateway.popen is not None
    path = stack.root / "gateway.yaml"
    config = yaml.safe_load(path.read_text())
    config["log"]["level"] = level
    config["symbols"].append(new_symbol)
    path.write_text(yaml.safe_dump(config))
    stack.gateway.popen.send_signal(signal.SIGHUP)

    def reloaded() -> bool:
        gw.new_order(symbol=new_symbol, side="buy", type="limit", qty="1", price="1")
        return True

    wait_until(reloaded, 10, f"the reload to {level}")


def test_sighup_applies_a_new_log_level_to_every_logger(make_stack: StackFactory) -> None:
    """Every order event is logged at info; a refused order at warning."""
    stack = make_stack(log={"level": "info"}, risk={"symbols": {"LTC/USD": {"sides": ["sell"]}}})
    assert stack.gateway is not None

    def logged(cl_ord_id: str) -> list[str]:
        lines = [json.loads(x) for x in stack.gateway.log().splitlines() if x.startswith("{")]  # type: ignore[union-attr]
        return [x["level"] for x in lines if x.get("cl_ord_id") == cl_ord_id]

    def accepted_then_refused(gw: Client, log: EventLog, name: str) -> None:
        """An order, then (once its events are out) one a risk limit refuses: the refusal's
        warning is logged after any line of the first order's."""
        gw.new_order(
            cl_ord_id=name, symbol="BTC/USD", side="buy", type="limit", qty="1", price="29000"
        )
        log.find(name, "order.accepted")
        with pytest.raises(ApiError, match="side"):
            gw.new_order(
                cl_ord_id=f"{name}-refused", symbol="LTC/USD", side="buy", type="market", qty="1"
            )
        wait_until(lambda: logged(f"{name}-refused") == ["warning"], 10, f"{name}'s warning")

    with stack.client() as gw:
        gw.subscribe(["orders"])
        log = EventLog(gw)
        accepted_then_refused(gw, log, "at-info")
        assert logged("at-info") == ["info", "info"]  # pending_new, accepted
        reload_log_level(stack, gw, "warning", "DOGE/USD")
        accepted_then_refused(gw, log, "at-warning")
        assert logged("at-warning") == []
        reload_log_level(stack, gw, "info", "ETH/USD")
        accepted_then_refused(gw, log, "at-info-again")
        assert logged("at-info-again") == ["info", "info"]


def test_sighup_to_debug_logs_every_fix_message_and_back_to_info_stops(
    make_stack: StackFactory,
) -> None:
    stack = make_stack(log={"level": "info"})
    assert stack.gateway is not None

    def fix_lines() -> list[dict[str, str]]:
        lines = [json.loads(x) for x in stack.gateway.log().splitlines() if x.startswith("{")]  # type: ignore[union-attr]
        return [x for x in lines if x["event"] in ("fix in", "fix out")]

    def place(name: str) -> None:
        gw.new_order(
            cl_ord_id=name, symbol="BTC/USD", side="buy", type="limit", qty="1", price="29000"
        )
        log.find(name, "order.accepted")

    with stack.client() as gw:
        gw.subscribe(["orders"])
        log = EventLog(gw)
        place("at-info")
        reload_log_level(stack, gw, "debug", "DOGE/USD")
        place("at-debug")
        wait_until(lambda: any("at-debug" in x["msg"] for x in fix_lines()), 10, "fix lines")
        shown = next(x["msg"] for x in fix_lines() if "at-debug" in x["msg"])
        assert "Account(1)=***" in shown and stack.secret not in shown
        reload_log_level(stack, gw, "info", "ETH/USD")
        place("at-info-again")
    assert not [x for x in fix_lines() if "at-info" in x["msg"]]


def reload_said(stack: LocalStack) -> list[dict[str, Any]]:
    """The gateway's log lines about a reload: `config reloaded` or `reload refused...`."""
    assert stack.gateway is not None
    said = [json.loads(x) for x in stack.gateway.log().splitlines() if x.startswith("{")]
    return [x for x in said if x["event"].startswith(("config reloaded", "reload refused"))]


def reload_with(stack: LocalStack, edit: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    """SIGHUP with the config file changed by `edit`; the reload's own log line."""
    assert stack.gateway is not None and stack.gateway.popen is not None
    path = stack.root / "gateway.yaml"
    config = yaml.safe_load(path.read_text())
    edit(config)
    path.write_text(yaml.safe_dump(config))
    before = len(reload_said(stack))
    stack.gateway.popen.send_signal(signal.SIGHUP)
    wait_until(lambda: len(reload_said(stack)) > before, 10, "the reload")
    return reload_said(stack)[-1]


def test_sighup_adds_changes_and_removes_decimal_risk_limits(make_stack: StackFactory) -> None:
    """A decimal limit in the old or the new config: the reload is applied, not a crash."""
    stack = make_stack()

    def max_qty(limit: str | None) -> Callable[[dict[str, Any]], None]:
        def edit(config: dict[str, Any]) -> None:
            config["risk"] = {} if limit is None else {"symbols": {"LTC/USD": {"max_qty": limit}}}

        return edit

    def order(qty: str) -> str:
        fields = {"symbol": "LTC/USD", "side": "buy", "type": "limit", "price": "1"}
        try:
            return str(gw.new_order(qty=qty, **fields)["status"])
        except ApiError as exc:
            return exc.code

    with stack.client() as gw:
        assert reload_with(stack, max_qty("5"))["event"] == "config reloaded"
        assert (order("5"), order("6")) == ("pending_new", "risk_rejected")
        reloaded = reload_with(stack, max_qty("2.5"))
        assert reloaded["applied"] == ["risk.symbols.LTC/USD.max_qty"]
        assert (order("2.5"), order("3")) == ("pending_new", "risk_rejected")
        assert reload_with(stack, max_qty(None))["event"] == "config reloaded"
        assert order("6") == "pending_new"


def test_sighup_with_a_file_that_is_not_utf8_is_refused_naming_it(make_stack: StackFactory) -> None:
    stack = make_stack()
    assert stack.gateway is not None and stack.gateway.popen is not None
    path = stack.root / "gateway.yaml"
    path.write_bytes(path.read_bytes() + b"# caf\xe9\n")
    stack.gateway.popen.send_signal(signal.SIGHUP)
    wait_until(lambda: reload_said(stack), 10, "the refusal")
    (refused,) = reload_said(stack)
    assert refused["event"] == "reload refused; running on as before"
    assert refused["error"].startswith(f"{path}: not UTF-8 text (line ")
    assert "exception" not in refused
    with stack.client() as gw:
        assert gw.status()["session"] == "up"


def test_a_restart_only_key_stays_named_until_the_restart(make_stack: StackFactory) -> None:
    """`market_data.depth` was taken into the running config by the first reload: the same
    file again named nothing waiting for it, and going back named it."""
    stack = make_stack()

    def deeper_and_slower(config: dict[str, Any]) -> None:
        config.setdefault("market_data", {})["depth"] = 5
        config["session"]["heartbeat_s"] = 7

    def as_it_runs(config: dict[str, Any]) -> None:
        config["market_data"]["depth"] = 0
        config["session"]["heartbeat_s"] = 5

    waiting = ["market_data.depth", "session.heartbeat_s"]
    assert reload_with(stack, deeper_and_slower)["needs_restart"] == waiting
    assert reload_with(stack, lambda config: None)["needs_restart"] == waiting
    assert reload_with(stack, as_it_runs)["needs_restart"] is None


def test_the_orders_of_a_symbol_a_reload_removed_can_still_be_listed(
    make_stack: StackFactory,
) -> None:
    """`orders --symbol LTC/USD` answered unknown_symbol once LTC/USD left `symbols`, while
    its order stayed open at the exchange; a misspelt symbol is still refused."""
    stack = make_stack()
    with stack.client() as gw:
        gw.new_order(
            symbol="LTC/USD", side="buy", type="limit", qty="1", price="50", cl_ord_id="ltc-1"
        )
        wait_until(lambda: gw.orders()[0]["status"] == "new", 10, "the order to rest")

        def without_ltc(config: dict[str, Any]) -> None:
            config["symbols"] = ["BTC/USD"]

        assert reload_with(stack, without_ltc)["applied"] == ["symbols"]
        assert stack.gateway is not None
        logged = [json.loads(x) for x in stack.gateway.log().splitlines() if x.startswith("{")]
        (warned,) = [x for x in logged if x["event"].startswith("symbols removed while orders")]
        assert (warned["level"], warned["symbols"]) == ("warning", ["LTC/USD"])
        listed = gw.request("orders", symbol="LTC/USD")["orders"]
        assert [o["cl_ord_id"] for o in listed] == ["ltc-1"]
        assert gw.request("trades", symbol="LTC/USD")["trades"] == []
        with pytest.raises(ApiError) as misspelt:
            gw.request("orders", symbol="LTC/USDT")
        assert misspelt.value.code == "unknown_symbol"
        with pytest.raises(ApiError) as withdrawn:
            gw.new_order(symbol="LTC/USD", side="buy", type="limit", qty="1", price="50")
        assert withdrawn.value.code == "unknown_symbol"


def check_config(stack: LocalStack, *flags: str) -> subprocess.CompletedProcess[str]:
    """The real `fixgw check-config` on the stack's gateway config."""
    return subprocess.run(
        [sys.executable, "-m", "fixgw", "check-config", *flags, str(stack.root / "gateway.yaml")],
        capture_output=True,
        text=True,
        env=stack._env(),
        timeout=60,
        check=False,
    )


def edited(stack: LocalStack, edit: Callable[[dict[str, Any]], None]) -> None:
    path = stack.root / "gateway.yaml"
    config = yaml.safe_load(path.read_text())
    edit(config)
    path.write_text(yaml.safe_dump(config))


def test_check_config_running_passes_what_the_gateway_holds_not_what_another_process_does(
    make_stack: StackFactory, tmp_path: Path
) -> None:
    """Before a SIGHUP, `--running` said ok to a metrics port moved onto another process's
    listener; the restart the reload waits for then failed on it (Address already in use)."""
    token_file = tmp_path / "token"
    token_file.write_text(f"{token_urlsafe(32)}\n")
    stack = make_stack(
        api={"tcp": {"port": free_port(), "token": {"file": str(token_file)}}},
        ops={"metrics_port": free_port()},
        bridge={
            "port": free_port(),
            "store_dir": str(tmp_path / "bridge-store"),
            "sessions": [{"comp_id": "OMS"}],
        },
    )
    taken = check_config(stack)
    assert taken.returncode == 2
    for key in ("journal.path", "api.socket_path", "api.tcp.port", "ops.metrics_port"):
        assert f": {key}: " in taken.stderr, taken.stderr
    assert ": bridge.port: " in taken.stderr
    own = check_config(stack, "--running")
    assert (own.returncode, own.stderr) == (0, ""), own.stderr

    with socket.socket() as another_process:  # this test's process, not the gateway
        another_process.bind(("127.0.0.1", 0))
        another_process.listen()
        elsewhere = another_process.getsockname()[1]
        edited(stack, lambda config: config["ops"].update(metrics_port=elsewhere))
        running = check_config(stack, "--running")
    assert running.returncode == 2
    (problem,) = running.stderr.splitlines()
    assert problem.endswith(f": ops.metrics_port: 127.0.0.1:{elsewhere}: Address already in use"), (
        problem
    )


def test_check_config_running_reports_a_new_socket_path_where_a_file_stands(
    make_stack: StackFactory,
) -> None:
    stack = make_stack()
    assert check_config(stack, "--running").returncode == 0
    squatter = stack.root / "not-a-socket"
    squatter.write_text("x")
    edited(stack, lambda config: config["api"].update(socket_path=str(squatter)))
    running = check_config(stack, "--running")
    assert running.returncode == 2
    assert f"api.socket_path: {squatter} exists and is a file" in running.stderr


@pytest.mark.parametrize("pasted", ["9f8A7b6C5d4E3f2A1b0C7d6E", "OLTmUuRNp/I3DZ4mDicTZQ=="])
def test_a_key_pasted_in_braces_is_refused_without_repeating_it(
    make_stack: StackFactory, pasted: str
) -> None:
    """`secret_key: {<key>}` is YAML's one-key mapping: msgspec named the key as an unknown
    field, and the refusal's log line quoted it (a base64 key whose `+` or `/` cut it into
    runs too short to read as a key, still after that)."""
    stack = make_stack()
    refused = reload_with(
        stack, lambda config: config["credentials"].update(secret_key={pasted: None})
    )
    assert refused["event"] == "reload refused; running on as before"
    assert refused["error"].endswith(
        "credentials.secret_key: Object contains unknown field (not shown: it may be a secret "
        "pasted in the wrong place; a key's name is lower-case letters, digits and `_`)"
    )
    checked = check_config(stack)
    assert checked.returncode == 2 and "credentials.secret_key: " in checked.stderr
    assert stack.gateway is not None
    assert pasted not in stack.gateway.log() + checked.stderr + checked.stdout
