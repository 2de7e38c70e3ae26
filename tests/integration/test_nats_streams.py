"""A firm's own JetStream stream, with limits and subjects of its choosing, against a real
nats-server: an event the stream refuses is published once its limits allow, never skipped
because a later event got in (across a gateway restart too); a refusal that repeats is tried
again at a growing backoff and logged once per step of it; a stream that takes only part of
a gateway's events is given all of them, or the gateway says what to change by hand."""

from __future__ import annotations

import asyncio
import json
import re
import signal
from collections.abc import Awaitable, Callable
from typing import Any

import nats
import pytest
from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, StorageType, StreamConfig

from fixgw.testing import LocalStack, NatsServer, wait_until
from tests.integration.conftest import StackFactory
from tests.integration.test_crashes import BOOKS
from tests.integration.test_nats import GATEWAY, nats_section, wait_published

pytestmark = [pytest.mark.integration, pytest.mark.nats]

RESTING_SELL = {"symbol": "BTC/USD", "side": "sell", "type": "limit", "price": "30500"}
"""Between the book's bid and ask: it rests, an order.accepted after its order.pending_new."""
RETRYING = "publishing to the stream stopped; starting again"


def on_stream(url: str, change: Callable[[JetStreamContext], Awaitable[Any]]) -> Any:
    """`change(js)` on a connection of the test's own, as a firm's operator would."""

    async def go() -> Any:
        nc = await nats.connect(url)
        try:
            return await change(nc.jetstream())
        finally:
            await nc.close()

    return asyncio.run(go())


def stream_seqs(url: str) -> list[int]:
    """The gateway seq of each of this gateway's events in the stream, in the stream's order."""

    async def read(js: JetStreamContext) -> list[int]:
        info = await js.stream_info("FIXGW")
        seqs = []
        for stream_seq in range(info.state.first_seq, info.state.last_seq + 1):
            try:
                msg = await js.get_msg("FIXGW", stream_seq)
            except nats.js.errors.NotFoundError:
                continue
            if msg.subject.startswith(f"fixgw.{GATEWAY}.ev."):
                seqs.append(json.loads(msg.data or b"{}")["seq"])
        return seqs

    return list(on_stream(url, read))


def wait_until_journaled(stack: LocalStack, event_type: str) -> int:
    """The seq of the journal's first event of that type, once it is there."""
    found: list[int] = []

    def journaled() -> bool:
        lines = (stack.root / "journal.jsonl").read_bytes().splitlines()
        found[:] = [e["seq"] for e in map(json.loads, lines) if e["type"] == event_type]
        return bool(found)

    wait_until(journaled, 20, f"a {event_type} in the journal")
    return found[0]


def logged(stack: LocalStack, event: str) -> list[dict[str, Any]]:
    assert stack.gateway is not None
    lines = [json.loads(x) for x in stack.gateway.log().splitlines() if x.startswith("{")]
    return [x for x in lines if x.get("event") == event]


def three_resting(
    make_stack: StackFactory, broker: NatsServer, publisher: str, prefix: str
) -> LocalStack:
    """A gateway publishing to `broker` (no account requests of its own), three sells
    resting, `<prefix>-0..2`."""
    quiet = {"refresh_s": 0, "after_fill": False}
    stack = make_stack(
        books=BOOKS,
        symbols=["BTC/USD"],
        nats=nats_section(broker, publisher=publisher),
        account=quiet,
    )
    with stack.client() as gw:
        for i in range(3):
            gw.new_order(cl_ord_id=f"{prefix}-{i}", qty="0.01", **RESTING_SELL)
    return stack


@pytest.mark.parametrize("publisher", ["process", "inline"])
def test_an_event_the_stream_refused_is_published_once_allowed_though_a_later_one_got_in(
    make_stack: StackFactory, broker: NatsServer, publisher: str
) -> None:
    """The firm's stream takes one message per subject: an order's order.accepted is refused
    (its pending_new holds the subject), the halt after it stored (on ev.session). The
    stream's last event is then the halt; publishing must still start from the refused one,
    in the running gateway and after a restart, once the operator lifts the limit."""

    async def create(js: JetStreamContext) -> None:
        await js.add_stream(
            StreamConfig(
                name="FIXGW",
                subjects=["fixgw.*.ev.>"],
                storage=StorageType.FILE,
                duplicate_window=600,
            )
        )

    on_stream(broker.url, create)
    stack = make_stack(
        books=BOOKS,
        symbols=["BTC/USD"],
        nats=nats_section(
            broker,
            publisher=publisher,
            stream={"create": False},
            reconnect={"floor_s": 0.1, "ceiling_s": 0.2, "jitter": 0},
        ),
    )
    before = wait_published(stack)[-1]

    async def one_per_subject(js: JetStreamContext) -> None:
        await js.purge_stream("FIXGW")
        info = await js.stream_info("FIXGW")
        await js.update_stream(
            info.config.evolve(
                max_msgs_per_subject=1, discard=DiscardPolicy.NEW, discard_new_per_subject=True
            )
        )

    on_stream(broker.url, one_per_subject)
    with stack.client() as gw:
        gw.new_order(cl_ord_id="refused-accept", qty="0.01", **RESTING_SELL)
        gw.request("halt", reason="a later event the stream stores")
    halted = wait_until_journaled(stack, "session.halted")
    wait_until(lambda: halted in stream_seqs(broker.url), 20, "the halt in the stream")
    wait_until(lambda: "refused" in str(stack.status()["nats"]["last_error"]), 20, "the refusal")
    wait_until(lambda: stack.status()["nats"]["failures"] >= 3, 20, "publishing tried again")
    refused = stack.status()["nats"]["acked_seq"] + 1
    assert refused < halted
    assert refused not in stream_seqs(broker.url)

    assert stack.gateway is not None
    stack.gateway.stop(signal.SIGTERM)

    async def no_limit(js: JetStreamContext) -> None:
        info = await js.stream_info("FIXGW")
        await js.update_stream(
            info.config.evolve(
                max_msgs_per_subject=-1, discard=DiscardPolicy.OLD, discard_new_per_subject=False
            )
        )

    on_stream(broker.url, no_limit)
    stack.start_gateway()
    journaled = [s for s in wait_published(stack) if s > before]
    in_stream = stream_seqs(broker.url)
    assert sorted(in_stream) == journaled, "not every journaled event once in the stream"
    assert stack.status()["nats"]["backlog"] == 0


@pytest.mark.parametrize(
    ("factor", "retry_in_s"),
    [(2.0, [0.05, 0.1, 0.2, 0.4, 0.8]), (1.0, [0.05])],
    ids=["growing", "at-its-ceiling"],
)
def test_a_refusal_that_repeats_is_tried_again_at_a_growing_backoff_logged_once_a_step(
    make_stack: StackFactory, broker: NatsServer, factor: float, retry_in_s: list[float]
) -> None:
    """A full stream (`discard: new`) refuses the same event until its limit changes: each
    try is counted and shown in `last_error`, but it waits longer each time (up to 30 s) and
    is logged once per step of the backoff (with a factor of 1 the first step is the last)."""

    async def create(js: JetStreamContext) -> None:
        await js.add_stream(
            StreamConfig(
                name="FIXGW", subjects=["fixgw.*.ev.>"], max_msgs=1, discard=DiscardPolicy.NEW
            )
        )

    on_stream(broker.url, create)
    stack = make_stack(
        books=BOOKS,
        symbols=["BTC/USD"],
        nats=nats_section(
            broker,
            stream={"create": False},
            reconnect={"floor_s": 0.05, "ceiling_s": 0.05, "factor": factor, "jitter": 0},
        ),
    )
    with stack.client() as gw:
        gw.new_order(cl_ord_id="one-too-many", qty="0.01", **RESTING_SELL)
    tries = len(retry_in_s) + 3
    wait_until(lambda: stack.status()["nats"]["failures"] >= tries, 30, f"{tries} tries")
    status = stack.status()["nats"]
    assert "maximum messages exceeded" in status["last_error"]
    steps = [line["retry_in_s"] for line in logged(stack, RETRYING)]
    assert steps[: len(retry_in_s)] == retry_in_s
    assert len(set(steps)) == len(steps), "a step of the backoff logged more than once"


def test_a_stream_taking_part_of_the_gateways_events_has_them_replaced_by_all_of_them(
    make_stack: StackFactory, broker: NatsServer
) -> None:
    """`stream.create: true` and a firm's stream on `fixgw.acct-1.ev.orders.>`: the broker
    refuses a stream whose subjects overlap, so the ones the gateway's cover are replaced by
    `fixgw.acct-1.ev.>` (nothing they took is lost); the firm's others are kept."""

    async def create(js: JetStreamContext) -> None:
        await js.add_stream(
            StreamConfig(name="FIXGW", subjects=["fixgw.acct-1.ev.orders.>", "audit.>"])
        )

    on_stream(broker.url, create)
    stack = make_stack(books=BOOKS, symbols=["BTC/USD"], nats=nats_section(broker))
    with stack.client() as gw:
        gw.new_order(cl_ord_id="all-of-them", qty="0.01", **RESTING_SELL)
    journaled = wait_published(stack, 30)
    assert stream_seqs(broker.url) == journaled
    assert stack.status()["nats"]["last_error"] is None

    async def subjects(js: JetStreamContext) -> list[str]:
        return list((await js.stream_info("FIXGW")).config.subjects or [])

    assert on_stream(broker.url, subjects) == ["audit.>", f"fixgw.{GATEWAY}.ev.>"]


def test_a_stream_overlapping_the_gateways_events_otherwise_is_named_for_a_change_by_hand(
    make_stack: StackFactory, broker: NatsServer
) -> None:
    """`fixgw.*.ev.orders.>` takes other gateways' orders too: not the gateway's to replace.
    It says what to change, and tries again at its backoff (the firm may change it)."""

    async def create(js: JetStreamContext) -> None:
        await js.add_stream(StreamConfig(name="FIXGW", subjects=["fixgw.*.ev.orders.>"]))

    on_stream(broker.url, create)
    stack = make_stack(
        books=BOOKS,
        symbols=["BTC/USD"],
        nats=nats_section(broker, reconnect={"floor_s": 0.05, "ceiling_s": 0.05, "jitter": 0}),
    )
    wait_until(lambda: stack.status()["nats"]["failures"] >= 3, 30, "three tries")
    status = stack.status()["nats"]
    assert status["acked_seq"] == 0
    assert status["last_error"] == (
        f"{RETRYING}: stream FIXGW takes fixgw.*.ev.orders.>, which overlaps "
        f"fixgw.{GATEWAY}.ev.> without taking all of it: change the stream's subjects by hand "
        f"to take fixgw.{GATEWAY}.ev.> (as fixgw.*.ev.> does)"
    )


def test_a_gateway_of_the_same_name_under_another_prefix_has_its_events_in_the_stream(
    make_stack: StackFactory, broker: NatsServer
) -> None:
    """desk1's acct-1 and then desk2's acct-1 on the default stream: message ids carry the
    prefix, so none of desk2's events is dropped as a duplicate of desk1's."""
    quiet = {"refresh_s": 0, "after_fill": False}
    desk1 = make_stack(
        books=BOOKS,
        symbols=["BTC/USD"],
        nats=nats_section(broker, subject_prefix="desk1"),
        account=quiet,
    )
    with desk1.client() as gw:
        gw.new_order(cl_ord_id="desk1-order", qty="0.01", **RESTING_SELL)
    wait_until_journaled(desk1, "order.accepted")
    wait_published(desk1, 30)
    desk1.stop()
    desk2 = make_stack(
        books=BOOKS,
        symbols=["BTC/USD"],
        nats=nats_section(broker, subject_prefix="desk2"),
        account=quiet,
    )
    with desk2.client() as gw:
        gw.new_order(cl_ord_id="desk2-order", qty="0.01", **RESTING_SELL)
    wait_until_journaled(desk2, "order.accepted")
    journaled = wait_published(desk2, 30)
    status = desk2.status()["nats"]
    assert (status["published"], status["duplicates"]) == (len(journaled), 0)

    async def desk2_ids(js: JetStreamContext) -> list[str]:
        info = await js.stream_info("FIXGW")
        found = []
        for stream_seq in range(info.state.first_seq, info.state.last_seq + 1):
            msg = await js.get_msg("FIXGW", stream_seq)
            if (msg.subject or "").startswith("desk2."):
                found.append((msg.headers or {})["Nats-Msg-Id"])
        return found

    assert on_stream(broker.url, desk2_ids) == [f"desk2.{GATEWAY}:{seq}" for seq in journaled]


def as_before_the_upgrade(url: str) -> None:
    """The stream as a fixgw of before the prefix was in the message id leaves it: this
    gateway's events under `<gateway>:<seq>`."""

    async def rebuild(js: JetStreamContext) -> None:
        info = await js.stream_info("FIXGW")
        held = []
        for stream_seq in range(info.state.first_seq, info.state.last_seq + 1):
            msg = await js.get_msg("FIXGW", stream_seq)
            held.append((msg.subject, msg.data or b""))
        await js.delete_stream("FIXGW")
        await js.add_stream(info.config)
        for subject, data in held:
            seq = json.loads(data)["seq"]
            ack = await js.publish(subject, data, headers={"Nats-Msg-Id": f"{GATEWAY}:{seq}"})
            assert not ack.duplicate

    on_stream(url, rebuild)


@pytest.mark.parametrize("publisher", ["process", "inline"])
def test_events_held_under_old_ids_are_stored_once_though_the_upgraded_run_left_its_cursor_behind(
    make_stack: StackFactory, broker: NatsServer, publisher: str
) -> None:
    """The old version published every event under `<gateway>:<seq>` and was killed with
    its cursor at 2. The upgraded gateway's cursor cannot be written during its first run
    (a full disk: harmless, docs/nats.md says): it publishes 3.. again under the old ids
    (dropped) and a new order's events under new ones. Started again once the disk is fine,
    the stream's last event has a new id; 3.. still go under their old ids, and every event
    is in the stream once."""
    stack = three_resting(make_stack, broker, publisher, "before")
    wait_published(stack, 30)
    assert stack.gateway is not None
    stack.gateway.stop()
    as_before_the_upgrade(broker.url)
    cursor = stack.root / "journal.jsonl.nats"
    cursor.write_text(json.dumps({**json.loads(cursor.read_text()), "seq": 2}) + "\n")
    full_disk = stack.root / "journal.jsonl.nats.new"
    full_disk.mkdir()  # the cursor's new file cannot be made: it is not written

    stack.start_gateway()
    with stack.client() as gw:
        gw.new_order(cl_ord_id="after-upgrade", qty="0.01", **RESTING_SELL)
    wait_published(stack, 30)
    assert stack.gateway is not None
    stack.gateway.stop()
    full_disk.rmdir()
    assert json.loads(cursor.read_text())["seq"] == 2

    stack.start_gateway()
    journaled = wait_published(stack, 30)
    assert stream_seqs(broker.url) == journaled
    assert stack.status()["nats"]["last_error"] is None


@pytest.mark.parametrize("publisher", ["process", "inline"])
def test_a_journal_replaced_under_the_same_name_is_an_error_in_last_error_not_a_lost_cursor(
    make_stack: StackFactory, broker: NatsServer, publisher: str
) -> None:
    """acct-1's events are in the stream up to seq N; its journal, cursor and seq reservation
    are removed and it is started again under the same name. The new journal's events up to
    N cannot be published (their ids are the old journal's): that is logged as an error and
    named in `last_error`, where it was only the warning of a lost cursor and a status that
    looked healthy (the stream was compared with the reserved seqs, 100,000 ahead)."""
    stack = three_resting(make_stack, broker, publisher, "old-journal")
    wait_until_journaled(stack, "order.accepted")
    wait_published(stack, 30)
    assert stack.gateway is not None
    stack.gateway.stop()
    held = stream_seqs(broker.url)[-1]  # a stop publishes its own events first
    for path in stack.root.glob("journal.jsonl*"):
        path.unlink()

    stack.start_gateway()
    with stack.client() as gw:
        gw.new_order(cl_ord_id="new-journal", qty="0.01", **RESTING_SELL)
    wait_until_journaled(stack, "order.accepted")
    wait_until(lambda: stack.status()["nats"]["last_error"] is not None, 20, "the error")
    status = stack.status()["nats"]
    assert status["journal_seq"] < held
    assert re.fullmatch(
        rf"the stream holds seq {held} of gateway {GATEWAY}, beyond this journal's last event "
        r"\(\d+\): is another journal publishing under this name, or was this journal "
        r"replaced\? This journal's events up to that seq are not published",
        status["last_error"],
    ), status["last_error"]
    assert status["acked_seq"] == held
    ahead = logged(
        stack, "nats stream is ahead of the journal; events up to its seq are not published"
    )
    assert [(e["level"], e["stream_seq"]) for e in ahead] == [("error", held)]
    assert not logged(
        stack, "nats cursor not found; publishing after this gateway's last event in the stream"
    )
