"""The order round-trip floor: a bare QuickFIX-Python initiator sends NewOrderSingle one at a
time and waits for the acknowledging ExecutionReport. Prints the round trips (us)."""

from __future__ import annotations

import json
import threading
import time
from decimal import Decimal
from typing import Any

import quickfix as fix

from bench.bare import BareApplication, arguments, logged_on, options_of
from fixgw.domain import OrderType, Side, SubmitOrder, utc_now
from fixgw.okcoin.outbound import DialectOptions, new_order_single
from fixgw.qf import to_quickfix


class Acks(BareApplication):
    def __init__(self, options: DialectOptions) -> None:
        super().__init__(options)
        self.acked = threading.Event()

    def fromApp(self, message: Any, sessionID: Any) -> None:
        self.acked.set()


def main() -> None:
    args = arguments("--orders")
    options = options_of(args)
    app = Acks(options)
    rtts: list[float] = []
    with logged_on(app, args.port, args.comp_id) as sid:
        for i in range(int(args.orders)):
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


if __name__ == "__main__":
    main()
