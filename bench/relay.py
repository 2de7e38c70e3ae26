"""The thinnest out-of-process gateway: the floor's bare initiator (the same QuickFIX
settings, the same NewOrderSingle) behind a Unix socket, relaying each `new_order` line of
`gw_orders.py` to the exchange and each acknowledging ExecutionReport back as a line with
`order.accepted` in it. It checks nothing, keeps no state, journals and logs nothing.

Whatever this relay adds to the floor, every gateway that runs as its own Python process
beside the strategy and QuickFIX adds at least as much on this machine: it is the bound the
gateway's ratios are compared against. Prints `ready` once logged on and listening; stops
when its client disconnects.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from typing import Any

from bench.bare import BareApplication, arguments, logged_on, options_of
from bench.bare_orders import order
from fixgw.venues.okcoin.outbound import DialectOptions

import quickfix as fix  # isort: skip


class Relay(BareApplication):
    """Writes one line per acknowledgement to the connected client, from QuickFIX's thread."""

    def __init__(self, options: DialectOptions) -> None:
        super().__init__(options)
        self.client: socket.socket | None = None

    def fromApp(self, message: Any, sessionID: Any) -> None:
        if self.client is not None:
            cl_ord_id = message.getField(11).encode()
            self.client.sendall(b'{"type":"order.accepted","ts":0,"cl_ord_id":"%s"}\n' % cl_ord_id)


def serve(app: Relay, path: str, on_order: Callable[[bytes], bytes | None]) -> None:
    """Serves one client on `path`: each `new_order` line goes to `on_order`, which sends the
    order and returns what to write back at once (None: nothing); the subscribe gets its
    reply. Returns when the client disconnects."""
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(1)
    print("ready", flush=True)
    client, _ = server.accept()
    app.client = client
    buffer = b""
    while data := client.recv(262144):
        *lines, buffer = (buffer + data).split(b"\n")
        for line in lines:
            if b'"new_order"' not in line:  # the client's subscribe
                client.sendall(b'{"id":0,"result":{}}\n')
            elif (reply := on_order(line)) is not None:
                client.sendall(reply)
    app.client = None
    client.close()
    server.close()
    os.unlink(path)


def relayed(sid: Any, options: DialectOptions) -> Callable[[bytes], None]:
    """Sends the order a line names (its ClOrdID's prefix and number), as the floor would."""
    marker = b'"cl_ord_id":"'

    def on_order(line: bytes) -> None:
        start = line.find(marker) + len(marker)
        prefix, _, number = line[start : line.index(b'"', start)].decode().rpartition("-")
        fix.Session.sendToTarget(order(int(number), options, prefix), sid)

    return on_order


def main() -> None:
    args = arguments("--socket")
    options = options_of(args)
    app = Relay(options)
    with logged_on(app, args.port, args.comp_id) as sid:
        serve(app, args.socket, relayed(sid, options))


if __name__ == "__main__":
    main()
