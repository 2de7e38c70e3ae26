"""What the engine's service tests build their services from: a loop on a clock of its own,
fakes of what is outside the engine (the exchange session, the event bus), the captured
messages of tests/fixtures/okcoin, and `Engine`, the real services wired by
`fixgw.engine.wiring` as the gateway wires them, around those fakes. No QuickFIX, no
sockets, no process: a test of minutes of back-off runs in milliseconds."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from fixgw.api.protocol import NewOrder
from fixgw.config import RiskConfig, ThrottleConfig
from fixgw.domain import Event, OrderType, Side
from fixgw.engine.fills import Fills
from fixgw.engine.order_index import Order
from fixgw.engine.session_state import SessionLifecycle
from fixgw.engine.tracker import OrderTracker
from fixgw.engine.wiring import EngineSettings, wire_services
from fixgw.errors import RequestError
from fixgw.fix.initiator import Happening, Inbound
from fixgw.fix.message import SOH, FixMessage, SecretValues, encode, pairs_of, parse
from fixgw.fix.reconnect import Backoff, Reconnector
from fixgw.ids import ClOrdIdGenerator
from fixgw.journal import Journal
from fixgw.ops.prometheus import Metrics
from fixgw.results import OrderAccepted
from fixgw.venues import groups_read, venue_dictionary
from fixgw.venues.base import Credentials, Venue
from fixgw.venues.okcoin.outbound import DEFAULT_ACCOUNT_ON
from fixgw.venues.okcoin.venue import OkcoinVenue

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "okcoin"
RECEIVED = datetime(2026, 11, 25, 6, 5, tzinfo=UTC)
"""When the session saw a fed message (the captures carry their own TransactTime)."""
CAPTURED_STEM = int("hohd4cko07", 36)
"""The start time behind the ClOrdIDs the demo capture's gateway made up: its cancels are
`fxhohd4cko07-1`, `-2`, ... An `Engine` names its own the same way, so that the captured
answers to the cancels fit the first cancels a test sends."""

E = TypeVar("E", bound=Event)

# ---------------------------------------------------------------- captured messages


def captured(name: str, changes: Mapping[int, str] | None = None) -> str:
    """A captured message, raw. `changes`: fields set to what this test's requests carried
    (the ClOrdID of a cancel it sent, the AccReqID of its account request), BodyLength and
    CheckSum made good again."""
    raw = (FIXTURES / f"{name}.fix").read_text().strip().replace("|", SOH)
    if not changes:
        return raw
    left = dict(changes)
    body: list[tuple[int, str]] = []
    for tag, value in pairs_of(raw):
        if tag in (8, 9, 10):
            continue
        body.append((tag, left.pop(tag, value)))
    body += left.items()
    return encode("FIX.4.4", [], body)


def message(name: str, changes: Mapping[int, str] | None = None) -> FixMessage:
    return parse(captured(name, changes), groups_read(venue_dictionary("okcoin")))


def okcoin() -> OkcoinVenue:
    return OkcoinVenue(Credentials("API-KEY", "SECRET-KEY"), DEFAULT_ACCOUNT_ON)


# ---------------------------------------------------------------- the clock


class Clock(asyncio.SelectorEventLoop):
    """An event loop whose `time()` moves only when `advance` says: each timer runs at the
    time it was due, in order, and `loop.time()` reads that time inside it. Whatever is ready
    runs at once (`settle`); nothing waits on the wall clock. It reads the base loop's queues
    (`_ready`, `_scheduled`): asyncio offers no public way to ask what is due."""

    def __init__(self) -> None:
        super().__init__()
        self.now = 1000.0

    def time(self) -> float:
        return self.now

    def settle(self) -> None:
        """Run what is ready, and what that makes ready, without moving the clock."""
        for _ in range(1000):
            self.run_until_complete(asyncio.sleep(0))
            if not self._ready:  # type: ignore[attr-defined]
                return
        raise AssertionError("the loop never settles")

    def _next_timer(self) -> float | None:
        timers = self._scheduled  # type: ignore[attr-defined]
        return min((t.when() for t in timers if not t.cancelled()), default=None)

    def advance(self, seconds: float) -> None:
        target = self.now + seconds
        self.settle()
        while (due := self._next_timer()) is not None and due <= target:
            self.now = max(self.now, due)
            self.settle()
        self.now = target
        self.settle()

    def run_until(self, done: Callable[[], object], limit_s: float) -> float:
        """Timer after timer until `done()` holds; the seconds that took."""
        start = self.now
        self.settle()
        while not done():
            due = self._next_timer()
            assert due is not None and due - start <= limit_s, f"not done within {limit_s} s"
            self.now = max(self.now, due)
            self.settle()
        return self.now - start

    def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """`fn(*args)` from inside the loop (some services ask for the running loop)."""

        async def inside() -> Any:
            return fn(*args)

        return self.run_until_complete(inside())

    def start(self, coro: Any) -> asyncio.Task[Any]:
        """A task, run as far as it goes now."""
        task = self.create_task(coro)
        self.settle()
        return task

    def finish(self) -> None:
        for task in asyncio.all_tasks(self):
            task.cancel()
        self.settle()
        self.close()


# ---------------------------------------------------------------- fakes of the outside


class FakeSession:
    """The exchange session as the engine sees it: `SessionPort` (`logged_on`, `send`), and
    what the lifecycle and the reconnector ask of it. Records each message sent, with the
    MsgSeqNum it went out as; sends nothing while it is not logged on. `ending`: QuickFIX
    still says logged on but sends nothing (a session it is leaving inside a poll)."""

    name = "FIX.4.4:fixgw-demo->OKSERVER"

    def __init__(self) -> None:
        self.logged_on = False
        self.ending = False
        self.store_error: str | None = None
        self.sent: list[FixMessage] = []
        self.raw_sent: dict[int, str] = {}
        self.seq = 1
        self.disconnects = 0
        self.logouts: list[str] = []
        """The Text of each Logout sent before a disconnect (`log_out_now`)."""
        self.logon_fields: dict[int, str] = {}
        self.enabled = False
        self.on_send: Callable[[FixMessage], None] = lambda _: None

    def send(self, message: FixMessage) -> bool:
        if not self.logged_on or self.ending:
            return False
        self.on_send(message)
        self.seq += 1
        header = [(35, message.msg_type), (34, str(self.seq)), (49, "fixgw-demo"), (56, "OKSERVER")]
        self.raw_sent[self.seq] = encode("FIX.4.4", header, message.fields.items())
        self.sent.append(message)
        return True

    def of_type(self, msg_type: str) -> list[FixMessage]:
        return [m for m in self.sent if m.msg_type == msg_type]

    def take(self) -> list[FixMessage]:
        """What was sent since the last `take`."""
        sent, self.sent = self.sent, []
        return sent

    def disconnect(self) -> None:
        self.disconnects += 1

    def log_out_now(self, text: str) -> None:
        self.logouts.append(text)
        self.disconnect()

    def set_logon_fields(self, fields: dict[int, str]) -> None:
        self.logon_fields = dict(fields)

    def enable(self) -> None:
        self.enabled = True

    def disable(self) -> None:
        self.enabled = False


class Recorder:
    """A `Publisher` that keeps what it was given; `forward` also hands it on (to a real
    `EventBus`, say)."""

    def __init__(self, forward: Callable[[Event], object] | None = None) -> None:
        self.events: list[Event] = []
        self._forward = forward

    def publish(self, event: Event) -> int:
        self.events.append(event)
        if self._forward is not None:
            self._forward(event)
        return len(self.events)

    def of(self, kind: type[E]) -> list[E]:
        return [e for e in self.events if isinstance(e, kind)]

    def types(self) -> list[str]:
        return [str(type(e).__struct_config__.tag) for e in self.events]

    def take(self) -> list[Event]:
        events, self.events = self.events, []
        return events


def sample(metrics: Metrics, name: str, **labels: str) -> float:
    value = metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


def refused(action: Callable[[], object]) -> RequestError:
    """The error `action` raises (it must raise one)."""
    try:
        action()
    except RequestError as exc:
        return exc
    raise AssertionError("not refused")


# ---------------------------------------------------------------- the engine


class Engine:
    """The engine's real services, wired by `wire_services` as the gateway wires them, around a
    `FakeSession`, a `Recorder` for the bus and a `Clock`. The tracker, the venue (OKCoin's
    dialect unless another is given), the journal (a file under `journal_dir`) are real."""

    def __init__(
        self,
        clock: Clock,
        journal_dir: Path,
        *,
        venue: Venue | None = None,
        symbols: tuple[str, ...] = ("BTC/USD", "LTC/USD"),
        throttle: ThrottleConfig | None = None,
        risk: RiskConfig | None = None,
        ack_timeout_s: float = 5.0,
        request_timeout_s: float = 10.0,
        reconcile_timeout_s: float = 30.0,
        account_refresh_s: float = 0.0,
        after_fill: bool = False,
        publish: Callable[[Event], object] | None = None,
        journal: Journal | None = None,
    ) -> None:
        self.clock = loop = clock
        self.metrics = metrics = Metrics()
        self.journal = journal or Journal(journal_dir / "events.jsonl", fsync=False)
        self.bus = bus = Recorder(publish)
        self.fills = Fills()
        self.tracker = OrderTracker()
        self.venue = venue = venue or okcoin()
        self.session = session = FakeSession()
        self.secrets = SecretValues()
        self.reconnector = Reconnector(session, Backoff(1.0, 60.0, 2.0, 0.0))
        self.lifecycle = SessionLifecycle(
            session,
            self.reconnector,
            venue,
            Credentials("API-KEY", "SECRET-KEY"),
            bus,
            metrics,
            heartbeat_s=30,
            reset_seq_num_on_logon=False,
        )
        services = wire_services(
            EngineSettings(
                symbols=frozenset(symbols),
                throttle=throttle or ThrottleConfig(),
                risk=risk or RiskConfig(),
                ack_timeout_s=ack_timeout_s,
                request_timeout_s=request_timeout_s,
                reconcile_timeout_s=reconcile_timeout_s,
                account_refresh_s=account_refresh_s,
                account_after_fill=after_fill,
            ),
            venue=venue,
            session=session,
            sent=session.raw_sent.get,
            lifecycle=self.lifecycle,
            tracker=self.tracker,
            fills=self.fills,
            bus=bus,
            journal=self.journal,
            metrics=metrics,
            loop=loop,
            ready=self.ready,
            secrets=self.secrets,
        )
        self.orders = services.orders
        self.market_data = services.market_data
        self.throttle = services.throttle
        self.watchdog = services.watchdog
        self.pending = services.pending
        self.reconciler = services.reconciler
        self.entry = services.entry
        self.entry.new_cl_ord_id = ClOrdIdGenerator(start_us=CAPTURED_STEM)
        self.queries = services.queries
        self.kill_switch = services.kill_switch
        self.account_refresh = services.account_refresh
        self.reports = services.reports
        self.router = services.router

    def ready(self) -> bool:
        """As `Gateway.ready`: logged on and reconciled."""
        return self.lifecycle.up and self.reconciler.ready

    # ------------------------------------------------------------ what the session reports

    def happens(self, what: Happening, raw: str = "") -> None:
        self.clock.call(self.router.on_inbound, Inbound(what, raw, RECEIVED))
        self.clock.settle()

    def logon(self) -> None:
        """QuickFIX logged on; reconciliation asks about every open order."""
        self.session.logged_on = True
        self.happens(Happening.LOGON_SENT)
        self.happens(Happening.LOGON)

    def down(self) -> None:
        self.session.logged_on = False
        self.happens(Happening.DOWN)

    def feed(self, name: str, changes: Mapping[int, str] | None = None) -> None:
        """A captured application message, as the session hands it on."""
        self.happens(Happening.APP, captured(name, changes))

    # ------------------------------------------------------------ orders

    def place(
        self,
        cl_ord_id: str,
        symbol: str = "LTC/USD",
        side: Side = Side.BUY,
        qty: str = "1",
        price: str | None = "60",
        owner: str | None = None,
        cancel_on_disconnect: bool = False,
    ) -> OrderAccepted:
        order = NewOrder(
            symbol=symbol,
            side=side,
            type=OrderType.LIMIT if price is not None else OrderType.MARKET,
            qty=qty,
            price=price,
            cl_ord_id=cl_ord_id,
        )
        accepted: OrderAccepted = self.clock.call(
            self.entry.new_order, order, owner, cancel_on_disconnect
        )
        return accepted

    def resting(self) -> Order:
        """`resting-1` (LTC/USD, buy 1 at 60) placed and acknowledged, as captured."""
        self.place("resting-1")
        self.feed("execution_report_new_resting")
        return self.order("resting-1")

    def maker(self) -> Order:
        """`maker-1` (LTC/USD, sell 2 at 70) placed and acknowledged, as captured."""
        self.place("maker-1", side=Side.SELL, qty="2", price="70")
        self.feed("execution_report_new")
        return self.order("maker-1")

    def order(self, cl_ord_id: str) -> Order:
        order = self.tracker.get(cl_ord_id)
        assert order is not None, cl_ord_id
        return order


def status_of(order: Order, exec_id: str) -> dict[int, str]:
    """The changes that make `execution_report_order_status` (resting-1, new) an answer
    about `order`, still new, under a new ExecID."""
    assert order.order_id is not None and order.price is not None
    return {
        11: order.cl_ord_id,
        17: exec_id,
        37: order.order_id,
        38: str(order.qty),
        44: str(order.price),
        54: "1" if order.side is Side.BUY else "2",
        55: order.symbol,
        151: str(order.qty),
    }
