"""The exchange session runs on the asyncio loop's thread: the loop watches QuickFIX's
connection and polls QuickFIX when it is readable, so what the exchange sends is handled
on the loop's thread and QuickFIX starts no thread of its own for the session. An order's
report is handled inside QuickFIX's `fromApp`; market data after the poll."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import threading
import traceback
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from fixgw.config import bundled_dictionary
from fixgw.domain import (
    MdEntryKind,
    MdSubscription,
    OrderType,
    RequestMarketData,
    Side,
    SubmitOrder,
    utc_now,
)
from fixgw.fix.initiator import ExchangeSession, Happening, Inbound, InitiatorSettings
from fixgw.fix.qf import raw_field
from fixgw.ops.prometheus import Metrics
from fixgw.testing import API_KEY, COMP_ID, SECRET
from fixgw.venues.okcoin.outbound import (
    DialectOptions,
    logon_fields,
    market_data_request,
    new_order_single,
)
from tests.integration.conftest import StackFactory, in_own_process

pytestmark = pytest.mark.integration


async def _session_against(port: int, store: Path) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    seen: asyncio.Queue[Inbound] = asyncio.Queue()
    handled_on: set[int] = set()

    inside_from_app: dict[str, bool] = {}

    def handler(item: Inbound) -> None:
        handled_on.add(threading.get_ident())
        if item.what is Happening.APP:
            inside_from_app.setdefault(raw_field(item.raw, 35) or "", in_from_app())
        seen.put_nowait(item)

    async def next_of(what: Happening) -> Inbound:
        while (item := await asyncio.wait_for(seen.get(), 10)).what is not what:
            pass
        return item

    options = DialectOptions(api_key=API_KEY, secret_key=SECRET)
    session = ExchangeSession(
        InitiatorSettings(
            host="127.0.0.1",
            port=port,
            sender_comp_id=COMP_ID,
            target_comp_id="OKSERVER",
            heartbeat_s=5,
            store_dir=store,
            dictionary=bundled_dictionary(),
            logout_timeout_s=2,
            logon_fields=logon_fields(options, reset_seq_num=False),
        ),
        Metrics(),
        loop,
        handler,
        lambda where, exc: print(f"callback {where} failed: {exc!r}", file=sys.stderr),
    )
    session.start()
    await next_of(Happening.LOGON)
    assert session.driver is not None
    watched_when_up = [list(peer) for peer in session.driver.watched_peers]
    order = SubmitOrder(
        ts=utc_now(),
        cl_ord_id="on-the-loop-1",
        symbol="LTC/USD",
        side=Side.BUY,
        order_type=OrderType.LIMIT,
        qty=Decimal("0.1"),
        price=Decimal(1),
    )
    assert session.send(new_order_single(order, options))
    report = await next_of(Happening.APP)
    assert session.send(
        market_data_request(
            RequestMarketData(
                ts=utc_now(),
                md_req_id="on-the-loop-md",
                symbol="LTC/USD",
                subscription=MdSubscription.SNAPSHOT,
                depth=0,
                kinds=(MdEntryKind.BID, MdEntryKind.ASK),
            )
        )
    )
    while "W" not in inside_from_app:
        await next_of(Happening.APP)
    session.disconnect()
    await next_of(Happening.DOWN)
    watched_when_down = list(session.driver.watched_peers)
    await session.stop()
    return {
        "watched_when_up": watched_when_up,
        "watched_when_down": watched_when_down,
        "report_names_the_order": "\x0111=on-the-loop-1\x01" in report.raw,
        "handled_only_on_the_loop_thread": handled_on == {threading.get_ident()},
        "handled_inside_from_app": inside_from_app,
        "threads": len(os.listdir("/proc/self/task")),
    }


def in_from_app() -> bool:
    return any(frame.f_code.co_name == "fromApp" for frame, _ in traceback.walk_stack(None))


def _run(port: int, store: str) -> None:
    """Run in a process of its own: QuickFIX's sessions are global to a process."""
    print(json.dumps(asyncio.run(_session_against(port, Path(store)))), flush=True)


def test_the_session_runs_on_the_loop_thread_and_watches_its_connection(
    make_stack: StackFactory,
) -> None:
    stack = make_stack(start=False)
    stack.start_sim()
    got = in_own_process(__name__, "_run", stack.sim_port, str(stack.root / "store"))
    assert got["watched_when_up"] == [["127.0.0.1", stack.sim_port]]
    assert got["watched_when_down"] == []
    assert got["report_names_the_order"]
    assert got["handled_only_on_the_loop_thread"]
    # the order's report at once, inside QuickFIX's callback; market data after the poll
    assert got["handled_inside_from_app"] == {"8": True, "W": False}
    assert got["threads"] == 1  # QuickFIX started none for the session
