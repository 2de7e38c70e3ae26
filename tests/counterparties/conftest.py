"""The gateway as a real process against a scripted venue in the test process."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from fixgw.api.client import Client
from fixgw.testing import API_KEY, SECRET, LocalStack, free_port
from tests.counterparties.raw_oms import RawOms
from tests.counterparties.venue import ScriptedVenue
from tests.integration.conftest import EventLog

VenueStackFactory = Callable[..., tuple[ScriptedVenue, LocalStack]]


@pytest.fixture
def make_venue_stack(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[VenueStackFactory]:
    made: list[tuple[ScriptedVenue, LocalStack]] = []

    def factory(
        configure: Callable[[ScriptedVenue], None] | None = None,
        *,
        venue_comp_id: str = "OKSERVER",
        venue_credentials: tuple[str, str] | None = (API_KEY, SECRET),
        venue_type: type[ScriptedVenue] = ScriptedVenue,
        wait_for_logon: bool = True,
        gateway_env: dict[str, str] | None = None,
        **overrides: Any,
    ) -> tuple[ScriptedVenue, LocalStack]:
        """`configure` scripts the venue before the gateway logs on; `venue_comp_id` is the
        venue's CompID (the gateway's TargetCompID: name it in `session` for a venue other
        than OKCoin's); `venue_credentials` the (Username, Password) its Logon must carry,
        None: any or none; `venue_type` a venue scripted further by a subclass;
        `wait_for_logon` False for a venue no logon succeeds with; `gateway_env` extra
        environment for the gateway (NOTIFY_SOCKET, say). The other keyword arguments are
        gateway config sections."""
        port = free_port()
        venue = venue_type(port, comp_id=venue_comp_id, credentials=venue_credentials)
        if configure is not None:
            configure(venue)
        overrides.setdefault("account", {}).setdefault("refresh_s", 0)
        stack = LocalStack(
            root=tmp_path / f"venue{len(made)}",
            sim_port=port,
            books={},
            symbols=["BTC/USD", "LTC/USD"],
            gateway_overrides=overrides,
        )
        stack.env = gateway_env or {}
        stack.root.mkdir()
        made.append((venue, stack))
        venue.start()
        stack.start_gateway(wait_for_logon=wait_for_logon)
        return venue, stack

    yield factory
    failed = getattr(request.node, "rep_call", None)
    for venue, stack in made:
        stack.stop()
        venue.stop()
        if failed is not None and failed.failed:
            print(stack.logs())
    leaked = [s.root.name for _, s in made if s.gateway is not None and SECRET in s.gateway.log()]
    assert not leaked, f"the secret key is in these logs: {leaked}"
    journaled = [s.root.name for _, s in made if SECRET in _journal_text(s)]
    assert not journaled, f"the secret key is in these journals: {journaled}"


def _journal_text(stack: LocalStack) -> str:
    path = Path(stack.gateway_config()["journal"]["path"])
    return path.read_text(errors="replace") if path.exists() else ""


@pytest.fixture
def venue_stack(make_venue_stack: VenueStackFactory) -> tuple[ScriptedVenue, LocalStack]:
    return make_venue_stack()


@pytest.fixture
def venue(venue_stack: tuple[ScriptedVenue, LocalStack]) -> ScriptedVenue:
    return venue_stack[0]


@pytest.fixture
def gw(venue_stack: tuple[ScriptedVenue, LocalStack]) -> Iterator[Client]:
    with venue_stack[1].client() as client:
        client.subscribe(["orders", "session", "errors", "account"])
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


Ends = tuple[ScriptedVenue, LocalStack, RawOms]


@contextlib.contextmanager
def raw_oms_through(
    make_venue_stack: VenueStackFactory,
    configure: Callable[[ScriptedVenue], None],
    oms_session: Mapping[str, Any] | None = None,
    **overrides: Any,
) -> Iterator[Ends]:
    """The scripted venue (`configure`d), the gateway, and a raw OMS logged on to its bridge;
    every message the OMS got is checked against FIX44.xml at the end. `oms_session`: more
    of the OMS's `bridge.sessions[]` config; `overrides`: keyword arguments of
    `make_venue_stack`."""
    comp_id = f"RAW-{uuid.uuid4().hex[:8]}"
    port = free_port()
    session = {"comp_id": comp_id, **(oms_session or {})}
    venue, stack = make_venue_stack(
        configure,
        bridge={"port": port, "store_dir": "bridge-store", "sessions": [session]},
        **overrides,
    )
    oms = RawOms(port, comp_id)
    oms.start()
    try:
        yield venue, stack, oms
    finally:
        oms.logout()
    oms.check_valid()
