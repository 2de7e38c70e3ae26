"""The market-data floor: a bare QuickFIX-Python initiator subscribes to a symbol and counts.
Its `fromApp` does nothing but count and take the time. Prints one JSON object: messages,
seconds (first to last incremental refresh), rate, CPU per message."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import quickfix as fix

from bench.bare import BareApplication, arguments, logged_on, options_of
from fixgw.domain import MdEntryKind, MdSubscription, RequestMarketData, utc_now
from fixgw.fix.qf import to_quickfix
from fixgw.venues.okcoin.outbound import DialectOptions, market_data_request


class Counter(BareApplication):
    def __init__(self, options: DialectOptions, expected: int) -> None:
        super().__init__(options)
        self.expected = expected
        self.count = 0
        self.first = self.last = self.cpu_first = self.cpu_last = 0.0
        self.done = threading.Event()

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
    args = arguments("--symbol", "--messages")
    messages = int(args.messages)
    app = Counter(options_of(args), messages)
    with logged_on(app, args.port, args.comp_id) as sid:
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
            raise SystemExit(f"bare initiator: only {app.count - 1} of {messages} refreshes")
    seconds = app.last - app.first
    print(
        json.dumps(
            {
                "messages": messages,
                "seconds": seconds,
                "rate": (messages - 1) / seconds,
                "cpu_us_per_msg": (app.cpu_last - app.cpu_first) / (messages - 1) * 1e6,
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
