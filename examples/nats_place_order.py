"""Place one limit order through a gateway over NATS, as a strategy on another host would
(docs/nats.md), and print the reply. Needs only nats-py. The request is the local socket's
JSON; the gateway checks it as it checks the socket's (validation, risk, throttle, kill
switch). Quantities and prices are decimal strings.

    python examples/nats_place_order.py nats://127.0.0.1:4222 gw1 BTC/USD buy 0.01 30000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

import nats


async def place_order(url: str, gateway: str, symbol: str, side: str, qty: str, price: str) -> int:
    nc = await nats.connect(url)  # a real broker: user_credentials="strategy.creds", say
    request = {
        "id": 1,
        "op": "new_order",
        "symbol": symbol,
        "side": side,
        "type": "limit",
        "qty": qty,
        "price": price,
    }
    msg = await nc.request(f"fixgw.{gateway}.cmd", json.dumps(request).encode(), timeout=5)
    await nc.close()
    reply = json.loads(msg.data)
    print(json.dumps(reply))  # {"id":1,"ok":true,"result":{"cl_ord_id":...,"status":"pending_new"}}
    return 0 if reply["ok"] else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    for name in ("url", "gateway", "symbol", "side", "qty", "price"):
        parser.add_argument(name)
    args = parser.parse_args()
    sys.exit(asyncio.run(place_order(**vars(args))))
