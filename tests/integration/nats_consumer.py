"""A consumer of the stream in a process of its own, as risk or P&L on another host would be:
a durable pull consumer on one gateway's events, each written as one JSON line to stdout
(`stream_seq`, `seq`, `type`) and acknowledged. Runs until killed.

    python tests/integration/nats_consumer.py URL STREAM SUBJECTS DURABLE
"""

from __future__ import annotations

import asyncio
import json
import sys

import nats
import nats.errors
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy


async def consume(url: str, stream: str, subjects: str, durable: str) -> None:
    async def quietly(_: Exception) -> None:
        """The broker may be away for a while: no traceback per attempt."""

    nc = await nats.connect(
        url, max_reconnect_attempts=-1, reconnect_time_wait=0.2, error_cb=quietly
    )
    js = nc.jetstream()
    print(json.dumps({"connected": True}), flush=True)
    while True:  # the gateway may not have created the stream yet
        try:
            await js.stream_info(stream)
            break
        except nats.errors.Error:
            await asyncio.sleep(0.1)
    pull = await js.pull_subscribe(
        subjects,
        durable=durable,
        stream=stream,
        config=ConsumerConfig(ack_policy=AckPolicy.EXPLICIT, deliver_policy=DeliverPolicy.ALL),
    )
    print(json.dumps({"ready": True}), flush=True)
    while True:
        try:
            msgs = await pull.fetch(256, timeout=0.5)
        except (nats.errors.TimeoutError, TimeoutError):
            continue
        for msg in msgs:
            event = json.loads(msg.data)
            line = {
                "stream_seq": msg.metadata.sequence.stream,
                "seq": event["seq"],
                "type": event["type"],
            }
            print(json.dumps(line), flush=True)
            await msg.ack()


if __name__ == "__main__":
    asyncio.run(consume(*sys.argv[1:5]))
