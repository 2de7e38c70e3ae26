"""For consumers of the stream: where a gateway seq is in it.

A consumer that knows the last gateway `seq` it handled (every event carries it) starts a
consumer at the stream seq of the next event: `stream_seq_after` finds it by binary search
over the stream (a gateway publishes its events in seq order), in about log2(messages)
requests, or, if that event is not in the stream yet, the stream seq it will have. A
durable consumer needs none of this: the broker remembers where it was.
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


async def stream_seq_after(js: JetStreamContext, stream: str, subjects: str, seq: int) -> int:
    """The stream seq a consumer of the events on `subjects` (one gateway's, say
    `fixgw.gw1.ev.>`) after gateway seq `seq` starts at (`DeliverPolicy.BY_START_SEQUENCE`):
    the first such event's, or, if none is in the stream yet, the seq the next message stored
    will have. That one is the stream's last seq read before the search, plus one, so an
    event stored while the consumer is being made is not missed (as `DeliverPolicy.NEW`
    would miss it)."""
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
    if found is not None:
        return found
    # `low` is past the last seq when the search met an event stored during it, not after `seq`
    return max(low, info.state.last_seq + 1)
