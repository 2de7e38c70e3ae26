"""An OMS we did not write with QuickFIX: a raw FIX 4.4 initiator for the bridge's tests.

Framing and parsing are the `simplefix` library's; sequence numbers, Logon, Heartbeat,
TestRequest, ResendRequest (application messages resent with PossDupFlag, session messages
gap-filled), SequenceReset and Logout are handled here, enough to hold a session. It sends
whatever it is told, malformed messages too (`send_raw`, `garble_checksum`, a wrong
`seq`).

Every message the bridge sends it is checked against the stock FIX44.xml with QuickFIX's
DataDictionary at its strictest (`Fix44Validator`); what fails is kept in `invalid`, and
`wait_for` and `check_valid` fail the test on it.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import quickfix as fix
import simplefix

from fixgw.config import standard_fix44_dictionary

BEGIN_STRING = "FIX.4.4"
ADMIN = frozenset("012345A")
Value = str | int | bytes
"""bytes go on the wire as they are: a value in Latin-1, say."""


@dataclass(frozen=True)
class _Sent:
    msg_type: str
    body: tuple[tuple[int, Value], ...]
    sending_time: str


@dataclass(frozen=True)
class Received:
    """One message as it came off the wire, with its tag=value pairs in order."""

    raw: bytes
    pairs: tuple[tuple[int, str], ...]

    @property
    def msg_type(self) -> str:
        return self.get(35) or ""

    @property
    def seq(self) -> int:
        return int(self.get(34) or 0)

    def get(self, tag: int) -> str | None:
        return next((v for t, v in self.pairs if t == tag), None)

    def __getitem__(self, tag: int) -> str:
        value = self.get(tag)
        if value is None:
            raise KeyError(f"no tag {tag} in {self}")
        return value

    def all(self, tag: int) -> list[str]:
        return [v for t, v in self.pairs if t == tag]

    def __str__(self) -> str:
        return "|".join(f"{t}={v}" for t, v in self.pairs)


class Fix44Validator:
    """QuickFIX's DataDictionary for the stock FIX44.xml, every check on: fields in the
    wrong place, fields without values, tags the dictionary or the message does not
    define (user-defined ones included), wrong values and formats, missing required
    fields, group counts, BodyLength and CheckSum."""

    def __init__(self) -> None:
        self.dictionary = fix.DataDictionary(str(standard_fix44_dictionary()))
        self.dictionary.checkFieldsOutOfOrder(True)
        self.dictionary.checkFieldsHaveValues(True)
        self.dictionary.checkUserDefinedFields(True)
        self.dictionary.allowUnknownMsgFields(False)

    def problem(self, raw: bytes) -> str | None:
        """What is wrong with `raw` by FIX44.xml, or None."""
        try:
            message = fix.Message(raw.decode(), self.dictionary, True)
            self.dictionary.validate(message)
        except Exception as exc:  # QuickFIX's exceptions have no common base in Python
            return f"{type(exc).__name__}: {exc}"
        return None


@dataclass
class _Inbound:
    expected: int = 1
    """The MsgSeqNum expected next from the bridge."""
    seen_ahead: set[int] = field(default_factory=set)
    """Seqs that came before a gap was filled."""


class RawOms:
    def __init__(
        self,
        port: int,
        sender: str,
        target: str = "FIXGW",
        *,
        host: str = "127.0.0.1",
        password: str | None = None,
        heartbeat_s: int = 30,
    ) -> None:
        self.host, self.port = host, port
        self.sender, self.target = sender, target
        self.password = password
        self.heartbeat_s = heartbeat_s
        self.validator = Fix44Validator()
        self.received: list[Received] = []
        """Everything the bridge sent, admin messages too, in order of arrival."""
        self.invalid: list[tuple[str, str]] = []
        """(message, what FIX44.xml finds wrong with it)."""
        self.sent: list[bytes] = []
        self._app_sent: dict[int, _Sent] = {}
        """Application messages by MsgSeqNum, to resend when asked."""
        self.next_out = 1
        self.inbound = _Inbound()
        self.logged_on = False
        self._logging_out = False
        self.closed = threading.Event()
        self.heartbeats_paused = False
        """While set, no Heartbeat goes out on a quiet line (the bridge then asks, with a
        TestRequest, which is still answered)."""
        self._sock: socket.socket | None = None
        self._changed = threading.Condition()
        self._send_lock = threading.Lock()
        self._last_sent = time.monotonic()
        self._threads: list[threading.Thread] = []

    # ------------------------------------------------------------ session

    def connect(self) -> None:
        self._sock = socket.create_connection((self.host, self.port), timeout=5)
        self._sock.settimeout(None)
        for target in (self._read, self._beat):
            thread = threading.Thread(target=target, daemon=True, name=f"raw-oms-{target}")
            thread.start()
            self._threads.append(thread)

    def logon(self, timeout: float = 10) -> Received:
        body: list[tuple[int, Value]] = [(98, 0), (108, self.heartbeat_s)]
        if self.password is not None:
            body.append((554, self.password))
        already = len(self.received)
        self.send("A", body)
        logon = self.wait_for(lambda m: m.msg_type == "A", timeout, after=already)
        self.logged_on = True
        return logon

    def start(self) -> Received:
        self.connect()
        return self.logon()

    def reconnect(self) -> Received:
        """The same OMS logs on again on a new connection (the bridge's end went away, say),
        its sequence numbers carried on: what it missed comes by resend."""
        self.close()
        for thread in self._threads:
            thread.join(5)
        self._threads.clear()
        self.closed.clear()
        self.logged_on = self._logging_out = False
        return self.start()

    def logout(self, timeout: float = 5) -> None:
        if self._sock is None or self.closed.is_set():
            return
        self._logging_out = True
        self.send("5", [(58, "done")])
        self.closed.wait(timeout)
        self.close()

    def close(self) -> None:
        self.closed.set()
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.shutdown(socket.SHUT_RDWR)
            self._sock.close()

    # ------------------------------------------------------------ sending

    def send(
        self,
        msg_type: str,
        body: Iterable[tuple[int, Value]],
        *,
        seq: int | None = None,
        header: Iterable[tuple[int, Value]] = (),
        garble_checksum: bool = False,
    ) -> int:
        """Sends `body` in the order given (groups are just their pairs, in order), under the
        next MsgSeqNum unless `seq` says otherwise (which does not move the counter).
        Returns the MsgSeqNum used."""
        body = tuple(body)
        with self._send_lock:
            used = self.next_out if seq is None else seq
            now = _utc_now()
            raw = self._encode(msg_type, used, now, header, body)
            if garble_checksum:
                good = raw[-4:-1]
                raw = raw[:-4] + f"{(int(good) + 1) % 256:03d}".encode() + b"\x01"
            if seq is None:
                self.next_out += 1
                if msg_type not in ADMIN:
                    self._app_sent[used] = _Sent(msg_type, body, now)
            self._write(raw)
            return used

    def _encode(
        self,
        msg_type: str,
        seq: int,
        sending_time: str,
        header: Iterable[tuple[int, Value]],
        body: Iterable[tuple[int, Value]],
    ) -> bytes:
        message = simplefix.FixMessage()
        message.append_pair(8, BEGIN_STRING, header=True)
        message.append_pair(35, msg_type, header=True)
        message.append_pair(49, self.sender, header=True)
        message.append_pair(56, self.target, header=True)
        message.append_pair(34, seq, header=True)
        message.append_pair(52, sending_time, header=True)
        for tag, value in header:
            message.append_pair(tag, value, header=True)
        for tag, value in body:
            message.append_pair(tag, value)
        raw: bytes = message.encode()
        return raw

    def _resend(self, begin: int, end: int) -> None:
        """Application messages again as they were, PossDupFlag Y; runs of session messages
        (and of seqs never sent) as one gap fill each."""
        with self._send_lock:
            last = self.next_out - 1 if end == 0 else min(end, self.next_out - 1)
            seq = begin
            while seq <= last:
                sent = self._app_sent.get(seq)
                if sent is not None:
                    again = [(43, "Y"), (122, sent.sending_time)]
                    self._write(self._encode(sent.msg_type, seq, _utc_now(), again, sent.body))
                    seq += 1
                    continue
                gap_end = seq
                while gap_end <= last and gap_end not in self._app_sent:
                    gap_end += 1
                fill = [(123, "Y"), (36, gap_end)]
                again = [(43, "Y"), (122, _utc_now())]
                self._write(self._encode("4", seq, _utc_now(), again, fill))
                seq = gap_end

    def encode(self, msg_type: str, body: Iterable[tuple[int, Value]]) -> bytes:
        """What `send` would send, under the next MsgSeqNum, to be sent with `send_raw` (in
        pieces, say)."""
        body = tuple(body)
        with self._send_lock:
            used, now = self.next_out, _utc_now()
            self.next_out += 1
            if msg_type not in ADMIN:
                self._app_sent[used] = _Sent(msg_type, body, now)
            return self._encode(msg_type, used, now, (), body)

    def send_raw(self, raw: bytes) -> None:
        """Bytes as they are: no header, sequence number or checksum added."""
        with self._send_lock:
            self._write(raw)

    def _write(self, raw: bytes) -> None:
        assert self._sock is not None, "not connected"
        self._sock.sendall(raw)
        self.sent.append(raw)
        self._last_sent = time.monotonic()

    # ------------------------------------------------------------ receiving

    def wait_for(
        self, match: Callable[[Received], bool], timeout: float = 10, *, after: int = 0
    ) -> Received:
        """The first message received so far (the `after` first passed over), or within
        `timeout`, that `match`es."""
        deadline = time.monotonic() + timeout
        checked = after
        with self._changed:
            while True:
                self.check_valid()
                for msg in self.received[checked:]:
                    if match(msg):
                        return msg
                checked = len(self.received)
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self.closed.is_set():
                    raise AssertionError(
                        f"no matching message; received: {[str(m) for m in self.received]}"
                    )
                self._changed.wait(min(remaining, 0.5))

    def messages(self, msg_type: str) -> list[Received]:
        with self._changed:
            return [m for m in self.received if m.msg_type == msg_type]

    def check_valid(self) -> None:
        assert not self.invalid, f"the bridge sent messages FIX44.xml refuses: {self.invalid}"

    def _read(self) -> None:
        parser = simplefix.FixParser()
        assert self._sock is not None
        try:
            while not self.closed.is_set():
                data = self._sock.recv(65536)
                if not data:
                    break
                parser.append_buffer(data)
                while (message := parser.get_message()) is not None:
                    self._on_message(message)
        except OSError:
            pass
        finally:
            self.closed.set()
            with self._changed:
                self._changed.notify_all()

    def _on_message(self, message: simplefix.FixMessage) -> None:
        raw: bytes = message.encode(raw=True)
        received = Received(raw, tuple((int(t), v.decode()) for t, v in message.pairs))
        problem = self.validator.problem(raw)
        with self._changed:
            if problem is not None:
                self.invalid.append((str(received), problem))
            self.received.append(received)
            gap_from = self._sequence(received)
            self._changed.notify_all()
        if gap_from is not None:
            self.send("2", [(7, gap_from), (16, 0)])
        self._answer_admin(received)

    def _sequence(self, msg: Received) -> int | None:
        """Keeps the inbound MsgSeqNum; returns where a gap starts that should be asked for."""
        inbound = self.inbound
        if msg.msg_type == "4" and msg.get(123) != "Y":  # SequenceReset-Reset
            inbound.expected = int(msg[36])
            return None
        if msg.seq < inbound.expected:
            return None  # a resend (PossDupFlag) of what came already
        if msg.seq > inbound.expected:
            first = not inbound.seen_ahead
            inbound.seen_ahead.add(msg.seq)
            return inbound.expected if first else None
        inbound.expected = int(msg[36]) if msg.msg_type == "4" else msg.seq + 1
        while inbound.expected in inbound.seen_ahead:
            inbound.seen_ahead.discard(inbound.expected)
            inbound.expected += 1
        inbound.seen_ahead = {s for s in inbound.seen_ahead if s > inbound.expected}
        return None

    def _answer_admin(self, msg: Received) -> None:
        if msg.msg_type == "1":  # TestRequest
            self.send("0", [(112, msg[112])])
        elif msg.msg_type == "2":
            self._resend(int(msg[7]), int(msg[16]))
        elif msg.msg_type == "5":
            if self.logged_on and not self._logging_out and not self.closed.is_set():
                self.send("5", [])
            self.logged_on = False
            self.close()

    def _beat(self) -> None:
        while not self.closed.wait(0.2):
            quiet = time.monotonic() - self._last_sent
            if self.logged_on and not self.heartbeats_paused and quiet >= self.heartbeat_s:
                self.send("0", [])


def _utc_now() -> str:
    return datetime.now(UTC).strftime("%Y%m%d-%H:%M:%S.%f")[:-3]
