"""A scripted FIX 4.4 venue that is neither QuickFIX nor `fixgw sim`.

It frames and parses with `simplefix`, keeps its own sequence numbers and store of what it
sent, and plays what real venues do, one scenario at a time: the test says how it answers
each application message (`on`), and can send anything at any moment (`send`), freeze,
crash and come back from its store. Nothing here comes from fixgw's own code, so the
gateway's assumptions are not repeated in its counterpart.

Session layer, as FIX 4.4 asks and no more: Logon (answered; a Logon beyond the expected
sequence number is answered, then a ResendRequest; a reset Logon of its own, whose answer
it takes), Heartbeat and TestRequest,
ResendRequest (application messages resent with PossDupFlag and OrigSendingTime, the rest
gap-filled), SequenceReset (gap fill and reset), Logout, and a ResendRequest of its own
for any gap it sees.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import simplefix

Pairs = list[tuple[int, str | bytes]]
"""Fields the venue sends: a value as text (written as UTF-8), or as bytes that go on the wire
as they are (a venue writing another character set)."""
ADMIN = frozenset("0123456A")


def utc_timestamp(when: datetime | None = None) -> str:
    when = when or datetime.now(UTC)
    return when.strftime("%Y%m%d-%H:%M:%S.") + f"{when.microsecond // 1000:03d}"


@dataclass(frozen=True)
class Received:
    """One message as it came in: its fields in order, repeats and all."""

    msg_type: str
    seq: int
    pairs: tuple[tuple[int, str], ...]

    def get(self, tag: int) -> str | None:
        return next((v for t, v in self.pairs if t == tag), None)

    def all(self, tag: int) -> list[str]:
        return [v for t, v in self.pairs if t == tag]

    @property
    def poss_dup(self) -> bool:
        return self.get(43) == "Y"


Handler = Callable[["ScriptedVenue", Received], None]


@dataclass
class _Sent:
    msg_type: str
    body: Pairs
    sending_time: str


@dataclass
class ScriptedVenue:
    port: int
    comp_id: str = "OKSERVER"
    credentials: tuple[str, str] | None = None
    """(Username, Password) the Logon must carry; anything else is logged out with 8500=1."""
    handlers: dict[str, Handler] = field(default_factory=dict)
    next_out: int = 1
    next_in: int = 1
    store: dict[int, _Sent] = field(default_factory=dict)
    app: list[Received] = field(default_factory=list)
    """Every application message taken (in sequence), PossDup resends included."""
    admin: list[Received] = field(default_factory=list)
    logons: int = 0
    answers_its_reset_answer: bool = False
    """Play a venue that answers the Logon answering its own reset Logon, as it answers
    any Logon; FIX 4.4 says the initiator of a reset does not."""
    clock_offset_s: float = 0.0
    """How far off the venue's clock is: the SendingTime it writes (unless `sent_at`)."""
    answers_test_requests: bool = True
    """False: a venue whose heartbeats go on, but that answers nothing (its order entry
    hung, say)."""
    test_request_delay_s: float = 0.0
    """How late the venue answers a TestRequest."""
    answers_resend_requests: bool = True
    """False: a venue slow to answer ResendRequests, that leaves them unanswered for now."""
    _resetting: bool = False
    _listener: socket.socket | None = None
    _conn: socket.socket | None = None
    _peer_comp_id: str = ""
    _lock: threading.RLock = field(default_factory=threading.RLock)
    _changed: threading.Condition = field(init=False)
    _frozen: threading.Event = field(default_factory=threading.Event)
    _paused: threading.Event = field(default_factory=threading.Event)
    _stopped: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _heartbeat_s: float = 30.0
    _last_sent: float = 0.0
    _asked_resend_from: int | None = None
    _logging_out: bool = False

    def __post_init__(self) -> None:
        self._changed = threading.Condition(self._lock)

    # ------------------------------------------------------------ life

    def start(self) -> None:
        self._stopped.clear()
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(4)
        listener.settimeout(0.2)
        self._listener = listener
        for target in (self._accept_loop, self._heartbeat_loop):
            thread = threading.Thread(target=target, daemon=True, name=f"venue-{target.__name__}")
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stopped.set()
        self._frozen.clear()
        with self._lock:
            self._close_connection()
            if self._listener is not None:
                self._listener.close()
                self._listener = None
        for thread in self._threads:
            thread.join(5)
        self._threads.clear()

    def freeze(self) -> None:
        """Stop reading (as a hung process would): what the gateway sends from now on waits
        in the socket. Returns once reading has stopped."""
        self._paused.clear()
        self._frozen.set()
        if not self._paused.wait(5):
            raise TimeoutError("venue: reading did not stop")

    def crash(self) -> None:
        """Die without a Logout: the connection and the listener go, and what was not read
        is lost. The sequence numbers and the store are what a restart comes back with."""
        self.stop()

    def restart(self) -> None:
        self.start()

    # ------------------------------------------------------------ scripting

    def on(self, msg_type: str, handler: Handler) -> None:
        self.handlers[msg_type] = handler

    def send(
        self,
        msg_type: str,
        body: Iterable[tuple[int, str | bytes]],
        *,
        seq: int | None = None,
        header: Iterable[tuple[int, str]] = (),
        store: bool = True,
        lose: bool = False,
        sent_at: datetime | None = None,
    ) -> int:
        """Sends now under the next sequence number (or `seq`, to play a venue that gets
        numbering wrong); returns the number used. `lose`: numbered and stored, but lost on
        the way (the gateway sees a gap and asks for it again). `sent_at`: the SendingTime
        written, for a venue whose clock is off (default: now)."""
        with self._lock:
            number = self.next_out if seq is None else seq
            sending_time = utc_timestamp(
                sent_at or datetime.now(UTC) + timedelta(seconds=self.clock_offset_s)
            )
            if not lose:
                self._write(msg_type, number, list(body), sending_time, list(header))
            if seq is None:
                self.next_out += 1
            if store:
                self.store[number] = _Sent(msg_type, list(body), sending_time)
            return number

    def send_together(self, messages: Iterable[tuple[str, Pairs]]) -> None:
        """Several messages under consecutive numbers in one write, so that the gateway reads
        them in one go (as it does a burst from a busy venue)."""
        with self._lock:
            data = b""
            for msg_type, body in messages:
                sending_time = utc_timestamp()
                data += self._encode(msg_type, self.next_out, body, sending_time, [])
                self.store[self.next_out] = _Sent(msg_type, body, sending_time)
                self.next_out += 1
            if self._conn is not None:
                with contextlib.suppress(OSError):
                    self._conn.sendall(data)
                    self._last_sent = time.monotonic()

    def logout(self, text: str | bytes, reason: str | None = None) -> None:
        """A Logout of the venue's own (with LogoutReason 8500 if given); the session ends
        when the gateway answers it."""
        with self._lock:
            self._logging_out = True
            self.send(
                "5", [(58, text), *([(8500, reason)] if reason is not None else [])], store=False
            )

    def reset_sequence_numbers(self) -> None:
        """A Logon with ResetSeqNumFlag=Y in the session: both sides number from 1 again.
        The gateway's Logon 141=Y answering it is taken, not answered (unless
        `answers_its_reset_answer`)."""
        with self._lock:
            self._resetting = True
            self.next_out = 1
            self.store.clear()
            heartbeat = str(round(self._heartbeat_s))
            self.send("A", [(98, "0"), (108, heartbeat), (141, "Y")], store=False)

    def answer_resend_request(self, request: Received) -> None:
        """Answers now a ResendRequest left unanswered (`answers_resend_requests` False)."""
        with self._lock:
            self._resend(int(request.get(7) or 1), int(request.get(16) or 0))

    def send_raw(self, data: bytes) -> None:
        """Bytes as they are, for garbled input."""
        with self._lock:
            if self._conn is not None:
                self._conn.sendall(data)

    def wait_for(
        self, match: Callable[[Received], bool], timeout: float = 10, what: str = "a message"
    ) -> Received:
        """The first message received, application or admin, that matches."""
        return self._wait(
            lambda: next((m for m in (*self.app, *self.admin) if match(m)), None), timeout, what
        )

    def wait_app(self, msg_type: str, nth: int = 1, timeout: float = 10) -> Received:
        """The `nth` application message of `msg_type` taken."""

        def found() -> Received | None:
            of_type = [m for m in self.app if m.msg_type == msg_type]
            return of_type[nth - 1] if len(of_type) >= nth else None

        return self._wait(found, timeout, f"application message 35={msg_type} #{nth}")

    def _wait(self, found: Callable[[], Received | None], timeout: float, what: str) -> Received:
        deadline = time.monotonic() + timeout
        with self._changed:
            while (result := found()) is None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"venue: no {what}; took {[m.pairs for m in self.app]}")
                self._changed.wait(remaining)
            return result

    @property
    def logged_on(self) -> bool:
        return self._conn is not None and self.logons > 0

    # ------------------------------------------------------------ wire

    def _write(
        self, msg_type: str, seq: int, body: Pairs, sending_time: str, header: Pairs
    ) -> None:
        data = self._encode(msg_type, seq, body, sending_time, header)
        if self._conn is not None:
            with contextlib.suppress(OSError):
                self._conn.sendall(data)
                self._last_sent = time.monotonic()

    def _encode(
        self, msg_type: str, seq: int, body: Pairs, sending_time: str, header: Pairs
    ) -> bytes:
        msg = simplefix.FixMessage()
        msg.append_pair(8, "FIX.4.4", header=True)
        msg.append_pair(35, msg_type, header=True)
        msg.append_pair(49, self.comp_id, header=True)
        msg.append_pair(56, self._peer_comp_id, header=True)
        msg.append_pair(34, seq, header=True)
        msg.append_pair(52, sending_time, header=True)
        for tag, value in header:
            msg.append_pair(tag, value, header=True)
        for tag, value in body:
            msg.append_pair(tag, value)
        encoded: bytes = msg.encode()
        return encoded

    def _accept_loop(self) -> None:
        while not self._stopped.is_set():
            listener = self._listener
            if listener is None:
                return
            try:
                conn, _ = listener.accept()
            except (TimeoutError, OSError):
                continue
            with self._lock:
                self._close_connection()
                self._conn = conn
            self._read(conn)

    def _read(self, conn: socket.socket) -> None:
        parser = simplefix.FixParser()
        conn.settimeout(0.2)
        while not self._stopped.is_set():
            if self._frozen.is_set():
                self._paused.set()
                time.sleep(0.05)
                continue
            try:
                data = conn.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                break
            if not data:
                break
            parser.append_buffer(data)
            while (msg := parser.get_message()) is not None:
                self._take(msg)
        with self._lock:
            if self._conn is conn:
                self._close_connection()

    def _close_connection(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(OSError):
                self._conn.close()
            self._conn = None
            self.logons = 0
            self._asked_resend_from = None

    def _heartbeat_loop(self) -> None:
        while not self._stopped.wait(0.5):
            with self._lock:
                due = time.monotonic() - self._last_sent >= self._heartbeat_s
                if self.logged_on and due and not self._frozen.is_set():
                    self.send("0", [], store=False)

    # ------------------------------------------------------------ session layer

    def _take(self, raw: simplefix.FixMessage) -> None:
        pairs = tuple((int(t), v.decode()) for t, v in raw.pairs)
        received = Received(
            msg_type=next(v for t, v in pairs if t == 35),
            seq=int(next(v for t, v in pairs if t == 34)),
            pairs=pairs,
        )
        with self._changed:
            try:
                self._session(received)
            finally:
                self._changed.notify_all()

    def _session(self, m: Received) -> None:
        if m.msg_type == "A":
            self._peer_comp_id = m.get(49) or ""
            self._logon(m)
            return
        if m.msg_type == "4":
            new_seq = int(m.get(36) or m.seq)
            self.admin.append(m)
            if m.get(123) != "Y" or m.seq >= self.next_in:
                self.next_in = max(self.next_in, new_seq) if m.get(123) == "Y" else new_seq
                self._asked_resend_from = None
            return
        if m.seq > self.next_in:
            self._ask_resend()
            return
        if m.seq < self.next_in:
            if m.poss_dup:
                return  # already taken
            self._logout("MsgSeqNum too low")
            return
        self.next_in += 1
        if m.msg_type in ADMIN:
            self.admin.append(m)
            self._admin(m)
        else:
            self.app.append(m)
            handler = self.handlers.get(m.msg_type)
            if handler is not None:
                handler(self, m)

    def _logon(self, m: Received) -> None:
        self.admin.append(m)
        resetting, self._resetting = self._resetting, False
        if resetting and m.get(141) == "Y" and not self.answers_its_reset_answer:
            self.next_in = m.seq + 1
            return
        if m.get(141) == "Y":
            self.next_in = 1
            self.next_out = 1
            self.store.clear()
        if self.credentials is not None and (m.get(553), m.get(554)) != self.credentials:
            self.send("5", [(58, "invalid credentials"), (8500, "1")], store=False)
            self._close_connection()
            return
        self._heartbeat_s = float(m.get(108) or 30)
        reply: Pairs = [(98, "0"), (108, m.get(108) or "30")]
        if m.get(141) == "Y":
            reply.append((141, "Y"))
        self.send("A", reply, store=False)
        self.logons += 1
        if m.seq > self.next_in:
            self._ask_resend()
        else:
            self.next_in = m.seq + 1

    def _ask_resend(self) -> None:
        if self._asked_resend_from != self.next_in:
            self._asked_resend_from = self.next_in
            self.send("2", [(7, str(self.next_in)), (16, "0")], store=False)

    def _admin(self, m: Received) -> None:
        if m.msg_type == "1" and self.answers_test_requests:
            answer: Pairs = [(112, m.get(112) or "")]
            if self.test_request_delay_s:
                later = threading.Timer(
                    self.test_request_delay_s, self.send, ("0", answer), {"store": False}
                )
                later.daemon = True
                later.start()
            else:
                self.send("0", answer, store=False)
        elif m.msg_type == "2" and self.answers_resend_requests:
            self._resend(int(m.get(7) or 1), int(m.get(16) or 0))
        elif m.msg_type == "5":
            if not self._logging_out:
                self.send("5", [], store=False)
            self._logging_out = False
            self._close_connection()

    def _resend(self, begin: int, end: int) -> None:
        last = self.next_out - 1 if end == 0 else min(end, self.next_out - 1)
        gap_from: int | None = None
        for number in range(begin, last + 1):
            sent = self.store.get(number)
            if sent is None or sent.msg_type in ADMIN:
                gap_from = number if gap_from is None else gap_from
                continue
            if gap_from is not None:
                self._gap_fill(gap_from, number)
                gap_from = None
            header = [(43, "Y"), (122, sent.sending_time)]
            self.send(sent.msg_type, sent.body, seq=number, header=header, store=False)
        if gap_from is not None:
            self._gap_fill(gap_from, last + 1)

    def _gap_fill(self, at: int, new_seq: int) -> None:
        self.send("4", [(123, "Y"), (36, str(new_seq))], seq=at, header=[(43, "Y")], store=False)

    def _logout(self, text: str) -> None:
        self.send("5", [(58, text)], store=False)
        self._close_connection()


def execution_report(
    order: Received,
    *,
    exec_id: str,
    exec_type: str,
    ord_status: str,
    order_id: str,
    cum_qty: str = "0",
    leaves_qty: str | None = None,
    avg_px: str = "0",
    last: tuple[str, str] | None = None,
    transact_time: str | None = None,
    extra: Iterable[tuple[int, str | bytes]] = (),
) -> Pairs:
    """An ExecutionReport body for `order` (a NewOrderSingle as received), in a venue's
    own field order; `last`: (LastQty, LastPx) of a fill; `transact_time`: TransactTime as
    the venue writes it (default: now, with milliseconds); `extra`: fields and groups a
    venue adds, placed where a venue puts them (here, after the core fields)."""
    qty = order.get(38) or "0"
    pairs: Pairs = [
        (37, order_id),
        (11, order.get(11) or ""),
        (17, exec_id),
        (150, exec_type),
        (39, ord_status),
        (55, order.get(55) or ""),
        (54, order.get(54) or ""),
        (38, qty),
        (40, order.get(40) or "2"),
    ]
    if order.get(44):
        pairs.append((44, order.get(44) or ""))
    pairs += [(14, cum_qty), (151, leaves_qty if leaves_qty is not None else qty), (6, avg_px)]
    if last is not None:
        pairs += [(32, last[0]), (31, last[1])]
    pairs.append((60, transact_time if transact_time is not None else utc_timestamp()))
    pairs += list(extra)
    return pairs


def acknowledge(venue: ScriptedVenue, order: Received) -> None:
    """The venue's usual answer to a NewOrderSingle: New, under an OrderID of its own."""
    cl_ord_id = order.get(11)
    venue.send(
        "8",
        execution_report(
            order,
            exec_id=f"A-{cl_ord_id}",
            exec_type="0",
            ord_status="0",
            order_id=f"V-{cl_ord_id}",
        ),
    )


def whole_fill(
    order: Received, exec_id: str, extra: Iterable[tuple[int, str | bytes]] = ()
) -> Pairs:
    """The report of the whole order filled at its price; `extra` as in `execution_report`."""
    qty, price = order.get(38) or "0", order.get(44) or "0"
    return execution_report(
        order,
        exec_id=exec_id,
        exec_type="F",
        ord_status="2",
        order_id=f"V-{order.get(11)}",
        cum_qty=qty,
        leaves_qty="0",
        avg_px=price,
        last=(qty, price),
        extra=extra,
    )


def fill(
    venue: ScriptedVenue,
    order: Received,
    exec_id: str,
    extra: Iterable[tuple[int, str | bytes]] = (),
) -> None:
    """The whole order filled at its price, in one report (`whole_fill`), sent."""
    venue.send("8", whole_fill(order, exec_id, extra))


def refuse_cancel(
    venue: ScriptedVenue, request: Received, ord_status: str, reason: str, text: str | bytes
) -> None:
    """An OrderCancelReject (9) of `request`, an OrderCancelRequest as received: the order
    left in `ord_status`, CxlRejReason `reason`."""
    venue.send(
        "9",
        [
            *(
                (37, request.get(37) or ""),
                (11, request.get(11) or ""),
                (41, request.get(41) or ""),
            ),
            *((39, ord_status), (434, "1"), (102, reason), (58, text)),
        ],
    )


def answer_status(venue: ScriptedVenue, request: Received) -> None:
    """An OrderStatusRequest answered as a venue that keeps no state beyond the orders it
    took: open (New) if it took the order, else rejected as unknown."""
    cl_ord_id = request.get(11)
    taken = [m for m in venue.app if m.msg_type == "D" and m.get(11) == cl_ord_id]
    if not taken:
        answer_unknown(venue, request)
        return
    report = execution_report(
        taken[0],
        exec_id=f"S-{request.seq}",
        exec_type="I",
        ord_status="0",
        order_id=f"V-{cl_ord_id}",
    )
    venue.send("8", report)


def answer_unknown(venue: ScriptedVenue, request: Received) -> None:
    """An OrderStatusRequest answered "unknown order" (OrdStatus 8, OrderID NONE): a venue
    that never got the order, or has not got to it yet (its order entry lagging its
    session)."""
    report = [
        (37, request.get(37) or "NONE"),
        (11, request.get(11) or ""),
        (17, f"S-{request.seq}"),
        (150, "I"),
        (39, "8"),
        (55, request.get(55) or ""),
        (54, request.get(54) or ""),
        (14, "0"),
        (151, "0"),
        (6, "0"),
        (58, "unknown order"),
    ]
    venue.send("8", report)
