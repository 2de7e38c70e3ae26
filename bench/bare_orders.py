"""The floor for order round trips: a bare QuickFIX-Python initiator sends NewOrderSingle
one at a time and waits for the acknowledging ExecutionReport. Prints the round trips (us)."""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import threading
import time
from decimal import Decimal
from typing import Any

import quickfix as fix

from fixgw.config import bundled_dictionary
from fixgw.domain import OrderType, Side, SubmitOrder, utc_now
from fixgw.okcoin.outbound import DialectOptions, logon_fields, new_order_single
from fixgw.qf import ALWAYS_ON, VALIDATION, make_settings, session_id, to_quickfix


class Acks(fix.Application):  # type: ignore[misc]
    def __init__(self, logon: dict[int, str]) -> None:
        super().__init__()
        self.logon = logon
        self.acked = threading.Event()

    def onCreate(self, sessionID: Any) -> None:
        pass

    def onLogon(self, sessionID: Any) -> None:
        pass

    def onLogout(self, sessionID: Any) -> None:
        pass

    def toAdmin(self, message: Any, sessionID: Any) -> None:
        if message.getHeader().getField(35) == "A":
            for tag, value in self.logon.items():
                message.setField(tag, value)

    def fromAdmin(self, message: Any, sessionID: Any) -> None:
        pass

    def toApp(self, message: Any, sessionID: Any) -> None:
        pass

    def fromApp(self, message: Any, sessionID: Any) -> None:
        self.acked.set()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--comp-id", required=True)
    parser.add_argument("--api-key", required=True)
    parser.add_argument("--secret-key", required=True)
    parser.add_argument("--orders", type=int, required=True)
    args = parser.parse_args()
    options = DialectOptions(api_key=args.api_key, secret_key=args.secret_key)
    app = Acks(logon_fields(options, reset_seq_num=False))
    sid = session_id(args.comp_id, "OKSERVER")
    store = tempfile.mkdtemp(prefix="bench-bare-orders-")
    settings = make_settings(
        {
            "ConnectionType": "initiator",
            "FileStorePath": store,
            "DataDictionary": str(bundled_dictionary()),
            **VALIDATION,
            **ALWAYS_ON,
        },
        {
            sid: {
                "SocketConnectHost": "127.0.0.1",
                "SocketConnectPort": args.port,
                "HeartBtInt": 30,
                "ReconnectInterval": 1,
            }
        },
    )
    initiator = fix.SocketInitiator(app, fix.FileStoreFactory(settings), settings)
    initiator.start()
    deadline = time.monotonic() + 20
    while not (fix.Session.lookupSession(sid) and fix.Session.lookupSession(sid).isLoggedOn()):
        if time.monotonic() > deadline:
            raise SystemExit("bare initiator: no logon")
        time.sleep(0.05)
    rtts: list[float] = []
    for i in range(args.orders):
        order = new_order_single(
            SubmitOrder(
                ts=utc_now(),
                cl_ord_id=f"bare-{i}",
                symbol="LTC/USD",
                side=Side.BUY,
                order_type=OrderType.LIMIT,
                qty=Decimal(1),
                price=Decimal(1),
            ),
            options,
        )
        app.acked.clear()
        start = time.perf_counter()
        fix.Session.sendToTarget(to_quickfix(order), sid)
        if not app.acked.wait(10):
            raise SystemExit(f"bare initiator: no acknowledgement for order {i}")
        rtts.append((time.perf_counter() - start) * 1e6)
    print(json.dumps({"rtt_us": rtts}), flush=True)
    initiator.stop()
    shutil.rmtree(store, ignore_errors=True)


if __name__ == "__main__":
    main()
