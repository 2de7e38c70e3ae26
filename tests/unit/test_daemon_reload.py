"""SIGHUP's handler: whatever goes wrong in a reload is said in the log as a refused reload,
never left to asyncio's handler (which would say only "asyncio reported an error")."""

from __future__ import annotations

from pathlib import Path

import pytest
from structlog.testing import capture_logs

from fixgw.config import GatewayConfig, Secrets
from fixgw.daemon import reload

CONFIG = """
session: {sender_comp_id: c, tls: {enabled: false}}
credentials: {api_key: {env: T_API_KEY}, secret_key: {env: T_API_KEY}}
symbols: [BTC/USD]
"""


class GatewayWhoseReloadFails:
    """Stands for the gateway: its reload raises what nobody foresaw."""

    def reload(self, new: GatewayConfig, secrets: Secrets) -> tuple[list[str], list[str]]:
        raise TypeError("a failure nobody foresaw")


def test_a_failure_nobody_foresaw_is_a_refused_reload_with_its_cause(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("T_API_KEY", "k")
    path = tmp_path / "fixgw.yaml"
    path.write_text(CONFIG)
    with capture_logs() as logged:
        reload(GatewayWhoseReloadFails(), path)  # type: ignore[arg-type]
    assert [(x["event"], x["log_level"]) for x in logged] == [
        ("reload refused; running on as before", "error")
    ]
    assert "a failure nobody foresaw" in logged[0]["error"]
    assert logged[0]["exc_info"] is True
