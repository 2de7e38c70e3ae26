"""The journal's disk fills up under a running gateway (a 256 KB tmpfs the test mounts:
these tests run as root, as CI does). The operator's way out is to free space, with or
without a restart. Whatever happens meanwhile, no client is told an event that a restart
would not know and number again, a halt holds, and a stop is clean."""

from __future__ import annotations

import os
import signal
import subprocess
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from fixgw.api.client import ApiError, Client
from fixgw.journal import sealed
from fixgw.testing import LocalStack, free_port, wait_until
from tests.integration.conftest import StackFactory, readyz

pytestmark = pytest.mark.integration

BOOKS = {"BTC/USD": {"bids": [["29990", "100"]], "asks": [["30010", "100"]]}}
ORDERS = 6
SLOW_ORDERS = {"limits": {"new_order": {"per_s": 2, "burst": 1}}}
"""Six orders journaled at once, sent (and filled) half a second apart: after the disk fills."""
PACED_ORDERS = {"limits": {"new_order": {"per_s": 5, "burst": 1}}}
"""Orders placed back to back: all but the first wait their turn in the throttle's queue."""


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    disk = tmp_path / "journal-disk"
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(disk)], check=True)
    yield disk
    subprocess.run(["umount", "-l", str(disk)], check=False)


def fill_up(disk: Path) -> None:
    """Every page, then every byte of the last one."""
    for name, block in (("filler", 4096), ("filler-bytes", 1)):
        with (disk / name).open("ab", buffering=0) as f:
            try:
                while True:
                    f.write(b"\0" * block)
            except OSError:
                pass


def free_up(disk: Path) -> None:
    for name in ("filler", "filler-bytes"):
        (disk / name).unlink(missing_ok=True)


def on_small_disk(make_stack: StackFactory, disk: Path, **overrides: Any) -> LocalStack:
    return make_stack(
        books=BOOKS,
        symbols=["BTC/USD"],
        journal={"path": str(disk / "journal.jsonl")},
        **overrides,
    )


def market_buys(client: Client) -> None:
    for _ in range(ORDERS):
        client.new_order(symbol="BTC/USD", side="buy", type="market", qty="0.01")


def all_filled(stack: LocalStack) -> bool:
    with stack.client("probe") as c:
        return sum(o["status"] == "filled" for o in c.orders(all=True)) == ORDERS


def received(client: Client) -> list[dict[str, Any]]:
    """The events the gateway has sent the client: a reply comes after every event sent
    before it."""
    client.status()
    return client.take_events()


def fills(events: list[dict[str, Any]]) -> list[str]:
    return [e["exec_id"] for e in events if e["type"] == "order.filled"]


def test_fills_told_while_the_journal_could_not_write_them_are_not_told_again_after_a_restart(
    make_stack: StackFactory, small_disk: Path
) -> None:
    """protocol.md, Replay with `since`: each event exactly once. The fills that came while
    the disk was full are not sent before they are on disk; the operator stops the gateway
    (those lines are lost), frees space and starts it: the exchange sends them again, and a
    client resuming from the last seq it saw gets each fill once, counted once."""
    stack = on_small_disk(make_stack, small_disk, throttle=SLOW_ORDERS)
    with stack.client() as client:
        client.subscribe(["orders"])
        market_buys(client)
        fill_up(small_disk)
        wait_until(lambda: all_filled(stack), 20, "the exchange to fill every order")
        before = received(client)
    assert stack.gateway is not None
    assert stack.gateway.stop() == 0
    assert "journal closed with lines not written" in stack.gateway.log()
    free_up(small_disk)
    stack.start_gateway()
    last_seen = max(e["seq"] for e in before)
    with stack.client() as client:
        client.subscribe(["orders"], since=last_seen)
        after: list[dict[str, Any]] = []
        while len(set(fills(before + after))) < ORDERS:
            after.append(client.next_event(10))
        after += received(client)
    told = Counter(fills(before + after))
    assert len(told) == ORDERS
    assert [exec_id for exec_id, times in told.items() if times > 1] == []


def test_events_the_journal_could_not_write_reach_clients_in_order_once_it_can(
    make_stack: StackFactory, small_disk: Path
) -> None:
    """operations.md, The journal: while its writes fail, events wait with their lines; once
    space is back they go out, in seq order, to the clients that had subscribed and to one
    that replayed from `since` meanwhile (after its reply), each once."""
    stack = on_small_disk(make_stack, small_disk, throttle=SLOW_ORDERS)
    with stack.client("live") as live, stack.client("replaying") as replaying:
        live.subscribe(["orders"])
        market_buys(live)
        fill_up(small_disk)
        wait_until(lambda: all_filled(stack), 20, "the exchange to fill every order")
        held_back = received(live)
        assert len(fills(held_back)) < ORDERS
        replay = replaying.subscribe(["orders"], since=0)
        replayed = replaying.take_events()
        assert len(replayed) == replay["replayed"]
        assert fills(replayed) == fills(held_back)
        free_up(small_disk)
        for client, seen in ((live, held_back), (replaying, replayed)):
            while len(fills(seen)) < ORDERS:
                seen.append(client.next_event(10))
            seen += received(client)
            seqs = [e["seq"] for e in seen]
            assert seqs == sorted(set(seqs))
            assert len(set(fills(seen))) == ORDERS
        assert [e["seq"] for e in replayed] == [e["seq"] for e in held_back]


def test_orders_over_the_rate_the_journal_could_not_write_take_no_place_in_the_queue(
    make_stack: StackFactory, small_disk: Path
) -> None:
    """risk.md, Throttle: a refused request takes no place in the queue. Orders refused
    because the journal could not write them ("the order was not sent") kept theirs: once
    the disk was freed and the queue had sent what it held, `throttle_queued` stayed above
    0 with nothing waiting, and the queue held that many fewer, until a restart."""
    stack = on_small_disk(make_stack, small_disk, throttle=PACED_ORDERS)
    fill_up(small_disk)
    with stack.client("desk") as client:
        with pytest.raises(ApiError, match="the order was not sent"):
            for _ in range(50):  # queued, until the journal's last page is full
                client.new_order(symbol="BTC/USD", side="buy", type="limit", qty="1", price="100")
        with pytest.raises(ApiError, match="the order was not sent"):
            client.new_order(symbol="BTC/USD", side="buy", type="limit", qty="1", price="100")
        free_up(small_disk)
        wait_until(lambda: stack.status()["throttle_queued"] == 0, 20, "an empty queue")


def test_readiness_says_the_journal_cannot_be_written_while_new_orders_are_refused(
    make_stack: StackFactory, small_disk: Path
) -> None:
    """While every new order is refused ("the order was not sent"), /readyz, `status.ready`
    and the reason say so, so that a load balancer or an operator's alert takes the gateway
    out; once space is back, the journal's next write makes it ready again by itself."""
    port = free_port()
    stack = on_small_disk(make_stack, small_disk, ops={"metrics_port": port})
    assert readyz(port)[0] == 200
    fill_up(small_disk)
    with stack.client("desk") as client:
        with pytest.raises(ApiError, match="the order was not sent"):
            for _ in range(50):  # until the journal's last page is full
                client.new_order(symbol="BTC/USD", side="buy", type="limit", qty="1", price="100")
        assert client.status()["ready"] is False
        code, why = readyz(port)
        assert code == 503
        assert "the journal cannot be written" in why
        free_up(small_disk)
        wait_until(lambda: client.status()["ready"], 10, "the journal written again")
        assert readyz(port)[0] == 200
        client.new_order(symbol="BTC/USD", side="buy", type="limit", qty="1", price="100")


def test_a_halt_taken_while_the_journal_cannot_write_holds_across_a_restart(
    make_stack: StackFactory, small_disk: Path
) -> None:
    """risk.md: a halt holds across restarts. Its journal line cannot be written; the kill
    switch file beside the journal (its bytes taken at start) can."""
    stack = on_small_disk(make_stack, small_disk)
    fill_up(small_disk)
    with stack.client("desk") as client:
        with pytest.raises(Exception, match="the order was not sent"):
            for _ in range(50):  # until the journal's last page is full
                client.new_order(symbol="BTC/USD", side="buy", type="market", qty="0.01")
        answer = client.request("halt", reason="disk trouble")
    assert answer["halted"] is True
    assert "warning" not in answer
    assert stack.gateway is not None
    assert stack.gateway.stop() == 0
    free_up(small_disk)
    stack.start_gateway()
    halted = stack.status()["halted"]
    assert halted is not None
    assert halted["by"].endswith("(desk)")
    assert halted["reason"] == "disk trouble"
    with stack.client() as client:
        with pytest.raises(Exception, match="trading is halted"):
            client.new_order(symbol="BTC/USD", side="buy", type="market", qty="0.01")
        client.request("resume")
    stack.gateway.stop()
    stack.start_gateway()
    assert stack.status()["halted"] is None


def test_a_halt_whose_reason_is_longer_than_its_file_holds_across_a_kill_on_a_full_disk(
    make_stack: StackFactory, small_disk: Path
) -> None:
    """A reason of 4-byte characters and control characters made a record longer than the
    file's 4096 bytes: the full disk took the file's bytes and no more, unchecked, the halt
    was answered without a warning, and the restart read the file as damage: trading open.
    Kept by bytes, the reason is cut and says so; the journal would have had it whole."""
    stack = on_small_disk(make_stack, small_disk)
    fill_up(small_disk)
    with stack.client("desk") as client:
        with pytest.raises(Exception, match="the order was not sent"):
            for _ in range(50):  # until the journal's last page is full
                client.new_order(symbol="BTC/USD", side="buy", type="market", qty="0.01")
        answer = client.request("halt", reason="\U0001f6a8" * 990 + "\x01" * 10)
    assert answer["halted"] is True
    assert "warning" not in answer
    assert stack.gateway is not None
    stack.gateway.stop(signal.SIGKILL)
    Path(stack.socket_path).unlink(missing_ok=True)
    free_up(small_disk)
    stack.start_gateway()
    halted = stack.status()["halted"]
    assert halted is not None
    assert halted["reason"].startswith("\U0001f6a8" * 100)
    assert halted["reason"].endswith(" [cut]")


def test_a_torn_journal_that_cannot_be_cut_on_a_full_disk_names_the_journal_and_the_file(
    make_stack: StackFactory, small_disk: Path
) -> None:
    """operations.md: a start-up failure is one line naming its key. A kill mid-write on a
    full disk, started again with the disk still full: the torn line's bytes cannot be set
    aside in `<journal>.damaged`, and the line said `session: ... (session.store_dir,
    dictionary, tls): No space left on device`, another key and another disk."""
    journal = small_disk / "journal.jsonl"
    whole = sealed(1, b'{"type":"session.up","ts":"2026-11-01T10:00:00.000000Z","session_id":"s"}')
    journal.write_bytes(whole + b'{"seq":2,"type":"order.fil')
    fill_up(small_disk)
    stack = on_small_disk(make_stack, small_disk, start=False)
    config = stack.root / "gateway.yaml"
    config.write_text(yaml.safe_dump(stack.gateway_config()))
    done = subprocess.run(
        [stack.python, "-m", "fixgw", "run", "-c", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=stack.root,
        env=stack._env(),
        check=False,
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    [said] = [line for line in done.stderr.splitlines() if line.startswith("fixgw: ")]
    assert f"{config}: journal.path: {journal} ends in a torn line" in said
    assert f"could not be written to {journal}.damaged: No space left on device" in said
    assert journal.read_bytes().startswith(whole)


def test_a_checkpoint_the_full_disk_refuses_is_logged_once_and_a_stop_is_clean(
    make_stack: StackFactory, small_disk: Path
) -> None:
    """operations.md, Signals: SIGTERM ... exits 0. The disk is full before the gateway
    starts: the journal's lines still fit in its last page, its new checkpoint file gets no
    byte. Orders go out; the checkpoint's failure is logged once, with the file, and the
    stop says what was not written, in the JSON log: no traceback, exit 0."""
    journal = small_disk / "journal.jsonl"
    journal.write_bytes(
        sealed(1, b'{"type":"session.up","ts":"2026-11-01T10:00:00.000000Z","session_id":"s"}')
    )
    fill_up(small_disk)
    stack = on_small_disk(make_stack, small_disk)
    with stack.client() as client:
        placed = client.new_order(symbol="BTC/USD", side="buy", type="market", qty="0.01")
        assert placed["status"] == "pending_new"
    assert stack.gateway is not None
    assert stack.gateway.stop() == 0
    log = stack.gateway.log()
    assert "Traceback" not in log
    failed = [line for line in log.splitlines() if "checkpoint write failed" in line]
    assert len(failed) == 1
    assert str(journal) + ".fixseq" in failed[0]
    assert "journal closed with its checkpoint not written" in log
    assert os.path.getsize(str(journal) + ".fixseq") == 0
