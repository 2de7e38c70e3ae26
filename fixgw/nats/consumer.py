"""For consumers of the stream: where a gateway seq is in it.

A consumer that knows the last gateway `seq` it handled (every event carries it) starts a
consumer at the stream seq of the next event: `stream_seq_after` finds it by binary search
over the stream (a gateway publishes its events in seq order), in about log2(messages)
requests. A durable consumer needs none of this: the broker remembers where it was.
"""

from __future__ import annotations

import re

from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

_SEQ = re.compile(rb'^\{"seq":(\d+)')


def gateway_seq(data: bytes) -> int:
    """The gateway seq of an event as published (the line starts with it)."""
    found = _SEQ.match(data)
    if found is None:
        raise ValueError(f"not a fixgw event: {data[:80]!r}")
    return int(found.group(1))


async def stream_seq_after(
    js: JetStreamContext, stream: str, subjects: str, seq: int
) -> int | None:
    """The stream seq of the first event on `subjects` (one gateway's, say
    `fixgw.gw1.ev.>`) whose gateway seq is above `seq`; None if there is none yet."""
    info = await js.stream_info(stream)
    low, high = info.state.first_seq, info.state.last_seq
    found = None
    while low <= high:
        middle = (low + high) // 2
        try:
            msg = await js.get_msg(stream, seq=middle, subject=subjects, next=True)
        except NotFoundError:
            high = middle - 1  # none of these subjects at or after `middle`
            continue
        assert msg.seq is not None and msg.data is not None
        if gateway_seq(msg.data) > seq:
            found = msg.seq
            high = middle - 1
        else:
            low = msg.seq + 1
    return found
