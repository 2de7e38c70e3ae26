"""SIGHUP: what can change live is applied without dropping the session; the rest is named."""

from __future__ import annotations

import json
import signal
import time

import pytest
import yaml

from fixgw.api.client import ApiError
from fixgw.testing import wait_until
from tests.integration.conftest import StackFactory

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
