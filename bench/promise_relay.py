"""The relay (relay.py) doing the least a gateway must to keep fixgw's promises, each step the
cheapest way Python offers, and nothing else: no checks beyond reading the numbers, no
metrics, no logs, no reconciliation, no throttle, no risk limits.

- the `new_order` line read into a typed request (msgspec), quantity and price as Decimals;
- the order journaled (one write of its `pending_new` line, checksummed) before the exchange
  can know of it; after the send, `pending_new` and the reply written to the client;
- each ExecutionReport's fields an event carries read from QuickFIX (ids, status,
  quantities as Decimals); the order's state kept in a dict;
- the event encoded once, journaled with the MsgSeqNum checkpoint (two writes), and
  written to the client.

What it costs over the relay is the part of the gateway/relay ratios that no gateway in
Python, in a process of its own, keeping these promises, goes below on this machine. Prints
`ready` once logged on and listening; stops when its client disconnects. Journals in
`promise-relay/` beside its socket.
"""

from __future__ import annotations

import os
import zlib
from decimal import Decimal
from typing import Any

import msgspec

from bench.bare import arguments, logged_on, options_of
from bench.relay import Relay, serve
from fixgw.domain import OrderType, Side, SubmitOrder, utc_now
from fixgw.fix.qf import to_quickfix
from fixgw.venues.okcoin.outbound import DialectOptions, new_order_single

import quickfix as fix  # isort: skip


class Request(msgspec.Struct, frozen=True):
    op: str
    id: int | str | None = None
    symbol: str = ""
    side: Side = Side.BUY
    type: OrderType = OrderType.LIMIT
    qty: str = "0"
    price: str | None = None
    cl_ord_id: str = ""


_decode = msgspec.json.Decoder(Request).decode
_encode = msgspec.json.Encoder(decimal_format="string").encode
STATUS = {"0": "new", "1": "partially_filled", "2": "filled", "4": "canceled", "8": "rejected"}


class Ledger:
    """The journal (an append-only file of checksummed lines) and the inbound checkpoint."""

    def __init__(self, directory: str) -> None:
        self._lines = os.open(
            os.path.join(directory, "journal"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600
        )
        self._checkpoint = os.open(
            os.path.join(directory, "checkpoint"), os.O_WRONLY | os.O_CREAT, 0o600
        )
        self.seq = 0

    def line(self, event: dict[str, Any]) -> bytes:
        self.seq += 1
        body = _encode({"seq": self.seq, **event})
        line = b"%s,%08x\n" % (body, zlib.crc32(body))
        os.write(self._lines, line)
        return line

    def received(self, msg_seq_num: str) -> None:
        os.pwrite(self._checkpoint, b"%020d\n" % int(msg_seq_num), 0)


class PromiseRelay(Relay):
    def __init__(self, options: DialectOptions, ledger: Ledger) -> None:
        super().__init__(options)
        self.options = options
        self.ledger = ledger
        self.orders: dict[str, dict[str, Any]] = {}

    def new_order(self, line: bytes, sid: Any) -> bytes:
        request = _decode(line)
        order: dict[str, Any] = {
            "type": "order.pending_new",
            "ts": utc_now(),
            "cl_ord_id": request.cl_ord_id,
            "symbol": request.symbol,
            "side": request.side,
            "qty": Decimal(request.qty),
            "price": None if request.price is None else Decimal(request.price),
            "status": "pending_new",
        }
        self.orders[request.cl_ord_id] = order
        pending = self.ledger.line(order)
        command = SubmitOrder(
            ts=order["ts"],
            cl_ord_id=request.cl_ord_id,
            symbol=request.symbol,
            side=request.side,
            order_type=request.type,
            qty=order["qty"],
            price=order["price"],
        )
        fix.Session.sendToTarget(to_quickfix(new_order_single(command, self.options)), sid)
        reply = {"cl_ord_id": request.cl_ord_id, "status": "pending_new"}
        return pending + _encode({"id": request.id, "ok": True, "result": reply}) + b"\n"

    def fromApp(self, message: Any, sessionID: Any) -> None:
        get = message.getField
        order = self.orders.get(get(11))
        if order is None or self.client is None:
            return
        order.update(
            type="order.accepted",
            ts=utc_now(),
            order_id=get(37),
            status=STATUS.get(get(39), "new"),
            cum_qty=Decimal(get(14)),
            leaves_qty=Decimal(get(151)),
            avg_px=Decimal(get(6)),
        )
        line = self.ledger.line(order)
        self.ledger.received(message.getHeader().getField(34))
        self.client.sendall(line)


def main() -> None:
    """Journals beside its socket, in `promise-relay/`."""
    args = arguments("--socket")
    options = options_of(args)
    directory = os.path.join(os.path.dirname(args.socket), "promise-relay")
    os.makedirs(directory, exist_ok=True)
    app = PromiseRelay(options, Ledger(directory))
    with logged_on(app, args.port, args.comp_id) as sid:
        serve(app, args.socket, lambda line: app.new_order(line, sid))


if __name__ == "__main__":
    main()
