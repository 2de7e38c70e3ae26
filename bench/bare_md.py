"""The floor: a bare QuickFIX-Python initiator that subscribes to a symbol and counts.

Same engine settings as the gateway's session (FileStore, the OKCoin dictionary with
validation on, no logging); its `fromApp` does nothing but count and take the time.
Prints one JSON object: messages, seconds (first to last incremental refresh), rate.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import threading
import time
from typing import Any

import quickfix as fix

from fixgw.config import bundled_dictionary
from fixgw.domain import MdEntryKind, MdSubscription, RequestMarketData, utc_now
from fixgw.okcoin.outbound import DialectOptions, logon_fields, market_data_request
from fixgw.qf import ALWAYS_ON, VALIDATION, make_settings, session_id, to_quickfix


class Counter(fix.Application):  # type: ignore[misc]
    def __init__(self, expected: int, logon: dict[int, str]) -> None:
        super().__init__()
        self.expected = expected
        self.logon = logon
        self.count = 0
        self.first = 0.0
        self.last = 0.0
        self.cpu_first = 0.0
        self.cpu_last = 0.0
        self.done = threading.Event()

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
        # The first application message is the snapshot; the clock starts at the first refresh.
        now = time.perf_counter()
        self.count += 1
        if self.count == 2:
            self.first = now
            self.cpu_first = time.process_time()
        self.last = now
        self.cpu_last = time.process_time()
        if self.count == self.expected + 1:
            self.done.set()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--comp-id", required=True)
    parser.add_argument("--api-key", required=True)
    parser.add_argument("--secret-key", required=True)
    parser.add_argument("--symbol", required=True)
    parser.add_argument("--messages", type=int, required=True)
    args = parser.parse_args()

    options = DialectOptions(api_key=args.api_key, secret_key=args.secret_key)
    app = Counter(args.messages, logon_fields(options, reset_seq_num=False))
    sid = session_id(args.comp_id, "OKSERVER")
    store = tempfile.mkdtemp(prefix="bench-bare-")
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
    request = market_data_request(
        RequestMarketData(
            ts=utc_now(),
            md_req_id="bench-bare-1",
            symbol=args.symbol,
            subscription=MdSubscription.SUBSCRIBE,
            depth=0,
            kinds=(MdEntryKind.BID, MdEntryKind.ASK),
        )
    )
    fix.Session.sendToTarget(to_quickfix(request), sid)
    if not app.done.wait(120):
        raise SystemExit(f"bare initiator: only {app.count - 1} of {args.messages} refreshes")
    seconds = app.last - app.first
    cpu_us = (app.cpu_last - app.cpu_first) / (args.messages - 1) * 1e6
    result = {
        "messages": args.messages,
        "seconds": seconds,
        "rate": (args.messages - 1) / seconds,
        "cpu_us_per_msg": cpu_us,
    }
    print(json.dumps(result), flush=True)
    initiator.stop()
    shutil.rmtree(store, ignore_errors=True)


if __name__ == "__main__":
    main()
