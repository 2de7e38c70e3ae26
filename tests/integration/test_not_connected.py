"""What `not_connected` says is true. QuickFIX leaves a session inside a poll (the exchange's
Logout, the connection's end, the gateway's own disconnect) and the gateway hears of it
right after: a request in between was told "the exchange session is up; nothing was
sent". Now it is told the session is not logged on."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
import yaml

from fixgw.api.protocol import NewOrder
from fixgw.app import build_gateway
from fixgw.config import load_gateway_config, resolve_secrets
from fixgw.errors import RequestError
from tests.integration.conftest import StackFactory, in_own_process

pytestmark = pytest.mark.integration


def between_quickfix_leaving_and_the_gateway_hearing_of_it(config_path: str) -> None:
    """A gateway in this process, logged on to the simulator: QuickFIX drops the session
    (`disconnect`, as the gateway's watchdog does for a silent exchange), and in the same
    turn of the loop, before the news is handled, an order comes in."""

    async def scenario() -> dict[str, Any]:
        config = load_gateway_config(config_path)
        gateway = build_gateway(config, resolve_secrets(config), asyncio.get_running_loop())
        gateway.start()
        await asyncio.wait_for(gateway.became_ready.wait(), 20)
        before = gateway.session_state
        gateway.parts.session.disconnect()
        order = NewOrder(symbol="LTC/USD", side="buy", type="limit", qty="1", price="5")
        try:
            gateway.new_order(order)
            refusal = None
        except RequestError as exc:
            refusal = {"code": str(exc.code), "message": exc.message}
        await asyncio.sleep(0.2)  # the end of the session is handled now
        after = gateway.session_state
        await gateway.stop()
        return {"before": before, "refusal": refusal, "after": after}

    print(json.dumps(asyncio.run(scenario())))


def test_a_request_between_quickfix_leaving_and_the_gateway_hearing_is_told_the_truth(
    make_stack: StackFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack = make_stack(start=False)
    stack.start_sim()
    path = stack.root / "gateway.yaml"
    path.write_text(yaml.safe_dump(stack.gateway_config()))
    monkeypatch.setenv("FIXGW_TEST_API_KEY", stack.api_key)
    monkeypatch.setenv("FIXGW_TEST_SECRET", stack.secret)
    seen = in_own_process(
        __name__, "between_quickfix_leaving_and_the_gateway_hearing_of_it", str(path)
    )
    assert seen["before"] == "up" and seen["after"] == "down"
    refusal = seen["refusal"]
    assert refusal is not None and refusal["code"] == "not_connected", seen
    assert "is up" not in refusal["message"], refusal
    assert "not logged on" in refusal["message"] and "nothing was sent" in refusal["message"]
