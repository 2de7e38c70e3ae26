"""Print one gateway's order events from the JetStream stream, as risk, P&L or a dashboard
on another host would (docs/nats.md). Needs only nats-py.

A durable consumer (the default, `--durable orders-printer`): the broker remembers what was
acknowledged, so a restart goes on from there. `--after-seq N`: from the first event after
gateway seq N (every event carries its `seq`), found by fixgw's helper (`fixgw[nats]`).

    python examples/nats_print_orders.py nats://127.0.0.1:4222 gw1
"""

from __future__ import annotations

import argparse
import asyncio
import json

import nats
import nats.errors
from nats.js.api import ConsumerConfig, DeliverPolicy


async def print_orders(url: str, gateway: str, durable: str, after_seq: int | None) -> None:
    nc = await nats.connect(url)  # a real broker: user_credentials="printer.creds", say
    js = nc.jetstream()
    subjects = f"fixgw.{gateway}.ev.orders.>"
    if after_seq is None:
        sub = await js.pull_subscribe(subjects, durable=durable, stream="FIXGW")
    else:
        from fixgw.nats.consumer import stream_seq_after

        start = await stream_seq_after(js, "FIXGW", subjects, after_seq)
        config = ConsumerConfig(deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=start)
        sub = await js.pull_subscribe(subjects, stream="FIXGW", config=config)
    while True:
        try:
            msgs = await sub.fetch(100, timeout=5)
        except nats.errors.TimeoutError:
            continue
        for msg in msgs:
            event = json.loads(msg.data)
            print(event["seq"], event["type"], event["cl_ord_id"], event.get("status"), flush=True)
            await msg.ack()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("gateway")
    parser.add_argument("--durable", default="orders-printer")
    parser.add_argument("--after-seq", type=int)
    args = parser.parse_args()
    asyncio.run(print_orders(args.url, args.gateway, args.durable, args.after_seq))
