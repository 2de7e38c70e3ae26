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
from bench.pacing import Pacer
from fixgw.domain import OrderType, Side, SubmitOrder, utc_now
from fixgw.fix.qf import to_quickfix
from fixgw.venues.okcoin.outbound import DialectOptions, new_order_single


class Acks(BareApplication):
    def __init__(self, options: DialectOptions) -> None:
        super().__init__(options)
        self.acked = threading.Event()
        self.pacer: Pacer | None = None

    def fromApp(self, message: Any, sessionID: Any) -> None:
        if self.pacer is not None:
            self.pacer.answered(int(message.getField(11).rpartition("-")[2]))
        else:
            self.acked.set()


def order(i: int, options: DialectOptions, prefix: str) -> Any:
    return to_quickfix(
        new_order_single(
            SubmitOrder(
                ts=utc_now(),
                cl_ord_id=f"{prefix}-{i}",
                symbol="LTC/USD",
                side=Side.BUY,
                order_type=OrderType.LIMIT,
                qty=Decimal(1),
                price=Decimal(1),
            ),
            options,
        )
    )


def main() -> None:
    args = arguments("--orders", "--rate", "--prefix")
    options = options_of(args)
    app = Acks(options)
    rtts: list[float] = []
    with logged_on(app, args.port, args.comp_id) as sid:
        if args.rate != "one":
            app.pacer = Pacer(int(args.orders), float(args.rate) or None)
            app.pacer.send_all(
                lambda i: fix.Session.sendToTarget(order(i, options, args.prefix), sid)
            )
            app.pacer.wait(120)
            print(json.dumps(app.pacer.result()), flush=True)
            return
        cpu_start = time.process_time()
        for i in range(int(args.orders)):
            message = order(i, options, args.prefix)
            app.acked.clear()
            start = time.perf_counter()
            fix.Session.sendToTarget(message, sid)
            if not app.acked.wait(10):
                raise SystemExit(f"bare initiator: no acknowledgement for order {i}")
            rtts.append((time.perf_counter() - start) * 1e6)
        cpu_s = time.process_time() - cpu_start
    print(json.dumps({"rtt_us": rtts, "cpu_s": cpu_s}), flush=True)


if __name__ == "__main__":
    main()
