"""TLS to the exchange: the simulator serves a test certificate; the gateway verifies it
(CA and host name), trades over it, and refuses a wrong certificate or name, saying why."""

from __future__ import annotations

from typing import Any

import pytest
import trustme

from fixgw.testing import LocalStack, wait_until
from tests.integration.conftest import EventLog, StackFactory

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("certs")
    ca, stranger = trustme.CA(), trustme.CA()
    server = ca.issue_cert("exchange.test")
    paths = {
        "ca": root / "ca.pem",
        "stranger_ca": root / "stranger.pem",
        "cert": root / "server.pem",
        "key": root / "server.key",
    }
    ca.cert_pem.write_to_path(str(paths["ca"]))
    stranger.cert_pem.write_to_path(str(paths["stranger_ca"]))
    server.cert_chain_pems[0].write_to_path(str(paths["cert"]))
    server.private_key_pem.write_to_path(str(paths["key"]))
    return {k: str(v) for k, v in paths.items()}


def tls_stack(make_stack: StackFactory, certs: dict[str, str], **tls: Any) -> LocalStack:
    stack = make_stack(
        start=False, sim={"tls": {"cert_file": certs["cert"], "key_file": certs["key"]}}
    )
    stack.gateway_overrides["session"] = {"tls": {"enabled": True, **tls}}
    stack.start_sim()
    return stack


def session_tls(stack: LocalStack) -> dict[str, Any]:
    status = stack.status()
    return {"session": status["session"], **status["tls"]}


def test_a_verified_tls_session_trades(make_stack: StackFactory, certs: dict[str, str]) -> None:
    stack = tls_stack(make_stack, certs, ca_file=certs["ca"], server_name="exchange.test")
    stack.start_gateway()
    assert session_tls(stack) == {"session": "up", "enabled": True, "last_error": None}
    with stack.client() as gw:
        gw.subscribe(["orders"])
        cl_ord_id = gw.new_order(symbol="BTC/USD", side="buy", type="market", qty="0.1")[
            "cl_ord_id"
        ]
        assert EventLog(gw).find(cl_ord_id, "order.filled")["last_px"] == "30010"


@pytest.mark.parametrize(
    ("tls", "error"),
    [
        ({"ca_file": "stranger_ca", "server_name": "exchange.test"}, "unable to get local issuer"),
        ({"ca_file": "ca", "server_name": "other.test"}, "Hostname mismatch"),
        ({"server_name": "exchange.test"}, "unable to get local issuer"),  # system store
    ],
)
def test_a_wrong_certificate_or_name_is_refused_with_a_clear_error(
    make_stack: StackFactory, certs: dict[str, str], tls: dict[str, str], error: str
) -> None:
    if "ca_file" in tls:
        tls = {**tls, "ca_file": certs[tls["ca_file"]]}
    stack = tls_stack(make_stack, certs, **tls)
    stack.start_gateway(wait_for_logon=False)
    wait_until(lambda: session_tls(stack)["last_error"] is not None, 15, "the TLS refusal")
    state = session_tls(stack)
    assert state["session"] != "up"
    assert "TLS certificate" in state["last_error"] and error in state["last_error"]
    assert stack.gateway is not None and error in stack.gateway.log()


def test_the_simulator_refuses_plain_fix_on_its_tls_port(
    make_stack: StackFactory, certs: dict[str, str]
) -> None:
    stack = tls_stack(make_stack, certs)
    stack.gateway_overrides["session"] = {"tls": {"enabled": False}}
    stack.start_gateway(wait_for_logon=False)
    assert stack.sim is not None
    wait_until(lambda: stack.status()["session"] == "down", 10, "the cut-off logon")
    assert "client logged on" not in stack.sim.log()
