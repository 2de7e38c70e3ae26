"""The exchange session: one QuickFIX initiator with a FileStore and the dialect's dictionary.

Knows QuickFIX, not what messages mean. The asyncio loop runs the initiator (`qfpoll`), so
its `Application` callbacks run on the loop's thread, inside a poll: each catches
everything (an escaping exception would unwind through QuickFIX). `fromApp` hands an
order's report to the gateway there and then; market data and changes of session state
reach it right after the poll (`InlineInbox`).

Everything handed over has the secrets the Logon carries masked (`SecretValues`) where the
exchange quotes them: in its free text in the message the gateway reads (never in a field
it reads a value from), in every field in the message as it is shown (logged, journaled):
the one door venue text comes in by.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import re
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, NamedTuple

import quickfix as fix
import structlog

from fixgw.files import private_directory
from fixgw.fix.message import (
    SECRET_TAGS,
    FixMessage,
    SecretValues,
    body_pairs,
    describe,
    encode,
    field_names,
)
from fixgw.fix.qf import (
    ALWAYS_ON,
    BEGIN_STRING,
    VALIDATION,
    InlineInbox,
    expected_sender_num,
    expected_target_num,
    header_field,
    header_of,
    keep_store_across_days,
    latin1_where_not_utf8,
    make_settings,
    msg_seq_num,
    msg_type_of,
    raw_field,
    send_message,
)
from fixgw.fix.qfpoll import LoopDrivenInitiator
from fixgw.fix.store import is_store_failure, reopen, write_error
from fixgw.fix.tags import Tag
from fixgw.ops.logging import enabled_for
from fixgw.ops.prometheus import Metrics

log = structlog.get_logger("fixgw.fix.initiator")


class Happening(StrEnum):
    LOGON_SENT = "logon_sent"
    LOGON = "logon"
    NUMBERING_RESET = "numbering_reset"
    """The exchange's Logon set its numbering back to its MsgSeqNum (ResetSeqNumFlag=Y, at
    a logon or in mid-session): `raw` is that Logon. Handed over inside `fromAdmin`, before
    QuickFIX reads the next message, so that the checkpoint follows the numbering first;
    right behind the messages of the old numbering QuickFIX held back for a gap, if any
    (`HeldForGap`), handed over after the poll."""
    LOGOUT_RECEIVED = "logout_received"
    APP_REFUSED = "app_refused"
    """QuickFIX refused an application message from the exchange at session level (it never
    reaches `fromApp`): `raw` is that message as it arrived, for the gateway to read itself,
    or empty if it could not be recovered."""
    REJECT_RECEIVED = "reject_received"
    NOT_RESENT = "not_resent"
    """The exchange asked again for an application message we sent, which was gap filled
    instead: it never reached the exchange. `raw` is the message."""
    MESSAGES_SKIPPED = "messages_skipped"
    """In the session logged on, the exchange's SequenceReset (`raw`) moved its numbering past
    messages it will never deliver (`skipped_by`): a GapFill answering a ResendRequest, as
    many venues answer for market data, or a Reset. Any of them may have been market data or
    an execution report."""
    PROTOCOL_ERROR = "protocol_error"
    """The gateway logs the session out: the exchange broke the session protocol (`raw`
    says how)."""
    LOGOUT_SENT = "logout_sent"
    """QuickFIX logs the exchange out on its own (a MsgSeqNum too low, a SendingTime far
    off): `raw` is the Logout, or, for one without Text, the Reject sent just before it,
    whose Text says why."""
    LOGON_FAILED = "logon_failed"
    """QuickFIX gave up on a logon and says why only in its event log (`logon_failure`):
    it refused the exchange's Logon answer (a SendingTime far off, other CompIDs), which it
    cannot answer with a Reject before logon, or no answer came. `raw` says why."""
    STORE_FAILED = "store_failed"
    """QuickFIX could not write its store (`fix.store`): nothing it sends goes out. `raw`
    says why: QuickFIX's words, the store's directory and the OS error."""
    DOWN = "down"
    APP = "app"


class Inbound(NamedTuple):
    """What the session saw, in order: a raw message or a change of state. A tuple: one is
    built for every message."""

    what: Happening
    raw: str
    """What the gateway reads: the message as the exchange sent it, but for the secrets
    masked in its free text."""
    received: datetime
    masked: str | None = None
    """`raw` with the secrets masked in every field, where that differs."""

    @property
    def shown(self) -> str:
        """What may be logged or journaled of `raw` (with `redact`, which masks the secret
        tags)."""
        return self.raw if self.masked is None else self.masked


@dataclass(frozen=True, slots=True)
class InitiatorSettings:
    host: str
    port: int
    sender_comp_id: str
    target_comp_id: str
    heartbeat_s: int
    store_dir: Path
    dictionary: Path
    logout_timeout_s: float
    logon_fields: Mapping[int, str]
    """Added to every Logon we send (credentials)."""
    send_buffer_bytes: int | None = None
    handled_after_poll: frozenset[str] = frozenset({"W", "X"})
    """Message types that come in bursts (market data): handled together after QuickFIX's
    poll, not one by one inside it, which cost a fifth more CPU per message. The rest
    (execution reports) is handled inside `fromApp`, ahead of QuickFIX's own work after it."""


TEST_REQ_ID = 112
MSG_SEQ_NUM = 34
REF_SEQ_NUM = 45
TEXT = 58
REF_TAG_ID = 371
REF_MSG_TYPE = 372
SESSION_REJECT_REASON = 373
COMP_ID_PROBLEM = "9"
ADMIN_MSG_TYPES = frozenset("0123456A")
REJECT = "3"
POSS_DUP = "\x0143=Y\x01"
RESET_SEQ_NUM_FLAG = 141
LOGON_ANSWERED = "a second Logon in a row in a session already logged on"
"""Why the session is logged out when the exchange sends that. One is its reset (141=Y),
answered with a Logon 141=Y; the exchange must not answer that answer (FIX 4.4, Vol 2), and
if it did, QuickFIX would answer each one, both sides resetting, endlessly."""


ANSWER_REFUSED = re.compile(r"Message \d+ Rejected: (?P<why>.+)", re.S)
HELD_FOR_GAP = re.compile(r"MsgSeqNum too high, expecting +\d+ but received (?P<seq>\d+)")
"""QuickFIX's event for a message it queues until the gap before it is closed."""
LOGON_TIMED_OUT = "Timed out waiting for logon response"
COMP_ID_PROBLEM_TEXT = "CompID problem"


def logon_failure(event: str, answer: str) -> str | None:
    """Why a logon failed, from a line of QuickFIX's event log while not logged on, or None
    if the line says nothing of it. `answer`: the last message received, raw (for a CompID
    problem, the CompIDs it carried)."""
    refused = ANSWER_REFUSED.fullmatch(event)
    if refused is not None:
        why = refused["why"]
        if why == COMP_ID_PROBLEM_TEXT:
            why += (
                f" (the answer's SenderCompID {raw_field(answer, 49)}, "
                f"TargetCompID {raw_field(answer, 56)})"
            )
        return f"the gateway refused the exchange's Logon answer: {why}"
    if event == LOGON_TIMED_OUT:
        return f"no answer to the Logon: {event}"
    return None


def skipped_by(sequence_reset: str, expected: int | None) -> range:
    """The exchange's MsgSeqNums a SequenceReset (raw) says it will never deliver: a GapFill's
    from its own MsgSeqNum, a Reset's from the one QuickFIX expects next (FIX 4.4 ignores a
    Reset's MsgSeqNum; in `fromAdmin` QuickFIX has not applied it yet), up to NewSeqNo."""
    new_seq_no = raw_field(sequence_reset, Tag.NEW_SEQ_NO)
    if new_seq_no is None or not new_seq_no.isdigit():
        return range(0)
    gap_fill = raw_field(sequence_reset, Tag.GAP_FILL_FLAG) == "Y"
    first = header_of(sequence_reset)[1] if gap_fill else expected
    return range(0) if first is None else range(first, int(new_seq_no))


class SentLog:
    """The last application messages sent, raw, by MsgSeqNum, so that a session-level Reject
    (which names only RefSeqNum) can be tied to its request (the venue reads the ids). Read
    only when a Reject asks: recording is on every send's path."""

    def __init__(self, size: int = 10_000) -> None:
        self._size = size
        self._entries: OrderedDict[int, tuple[str, str | FixMessage]] = OrderedDict()

    def record(self, seq: int, msg_type: str, sent: str | FixMessage) -> None:
        """`sent`: the message raw, or as the gateway handed it over (written out if asked)."""
        self._entries[seq] = (msg_type, sent)
        if len(self._entries) > self._size:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        self._entries.clear()

    def get(self, seq: int) -> str | None:
        """The message sent as `seq`, raw."""
        entry = self._entries.get(seq)
        if entry is None:
            return None
        msg_type, sent = entry
        if isinstance(sent, str):
            return sent
        header = [(35, msg_type), (MSG_SEQ_NUM, str(seq))]
        return encode(BEGIN_STRING, header, body_pairs(sent))


class Held(NamedTuple):
    raw: str
    refused: bool
    """QuickFIX refused it (`_Application._refused`): read as a refused message is."""


class HeldForGap:
    """Application messages from the exchange that QuickFIX holds back for a gap before them,
    raw, by MsgSeqNum. QuickFIX hands each to `fromApp` once the gap is closed, but throws
    away those a SequenceReset or a Logon with ResetSeqNumFlag=Y moves its numbering past (it
    reads its queue at the number it expects only); and it empties its queue when the
    connection drops, while the logon's ResendRequest may be gap filled over them. They were
    received all the same: the gateway reads those from here (`skipped_past`, `take_all`).
    So is one QuickFIX refused while a gap was open before it (it validates a message before
    its MsgSeqNum, and never queues one it refuses): `refused`.

    Bounded: past `size` held, the newest is not held (logged); left to reconciliation."""

    def __init__(self, size: int = 10_000) -> None:
        self._size = size
        self._messages: dict[int, Held] = {}
        self._full_logged = False

    def __len__(self) -> int:
        return len(self._messages)

    def hold(self, seq: int, raw: str, refused: bool = False) -> None:
        if seq not in self._messages and len(self._messages) >= self._size:
            if not self._full_logged:
                self._full_logged = True
                log.error(
                    "too many messages held back for a gap; a later one skipped past is not "
                    "read, and left to reconciliation",
                    held=len(self._messages),
                    msg_seq_num=seq,
                )
            return
        self._messages[seq] = Held(raw, refused)

    def delivered(self, seq: int) -> str | None:
        """QuickFIX handed the message `seq` over itself, or refused it in sequence: held no
        more. Returns it raw, if it was held."""
        if not self._messages:
            return None
        held = self._messages.pop(seq, None)
        self._full_logged = bool(self._messages) and self._full_logged
        return None if held is None else held.raw

    def skipped_past(self, below: int) -> list[Held]:
        """Those held below MsgSeqNum `below`, in order, held no more."""
        taken = sorted(seq for seq in self._messages if seq < below)
        messages = [self._messages.pop(seq) for seq in taken]
        self._full_logged = bool(self._messages) and self._full_logged
        return messages

    def take_all(self) -> list[Held]:
        return self.skipped_past(below=max(self._messages, default=0) + 1)


class RawInbound(fix.Log):  # type: ignore[misc]
    """QuickFIX's log of the session, kept for one thing: the last message received, as it
    arrived, before QuickFIX parses and validates it. The gateway reads that rather than
    QuickFIX's rewrite of it; and when QuickFIX refuses it (a Reject or
    BusinessMessageReject of ours names it), it never reaches `fromApp`, and the gateway
    reads it from here all the same: nothing a venue sends is lost to validation.

    QuickFIX validates a message in the same call that received it (one that fails is never
    queued), so the last message received is the one a refusal names. Bytes in it that are
    not UTF-8 are read as Latin-1 (`latin1_where_not_utf8`).

    An application message QuickFIX queues for a gap before it (it says so in its event log
    right after receiving it) is kept in `held`."""

    def __init__(
        self,
        on_store_failure: Callable[[str], None] = lambda _: None,
        on_event: Callable[[str], None] = lambda _: None,
    ) -> None:
        super().__init__()
        self.last = ""
        self.held = HeldForGap()
        self._on_store_failure = on_store_failure
        self._on_event = on_event
        """Every other event, for why a logon failed (`_Application.quickfix_event`)."""

    def onIncoming(self, message: str) -> None:
        self.last = latin1_where_not_utf8(message)

    def onOutgoing(self, message: str) -> None:
        pass

    def onEvent(self, text: str) -> None:
        """QuickFIX's store failing is said here, and nowhere else; so is why it refused a
        Logon answer."""
        try:
            held = HELD_FOR_GAP.fullmatch(text)
            if held is not None:
                self._hold(held["seq"])
            elif is_store_failure(text):
                self._on_store_failure(text)
            else:
                self._on_event(text)
        except Exception:
            log.exception("reading QuickFIX's session log failed", text=text)

    def _hold(self, seq: str) -> None:
        raw = self.last
        if raw_field(raw, MSG_SEQ_NUM) == seq and raw_field(raw, 35) not in ADMIN_MSG_TYPES:
            self.held.hold(int(seq), raw)

    def clear(self) -> None:
        pass

    def backup(self) -> None:
        pass


class _RawInboundFactory(fix.LogFactory):  # type: ignore[misc]
    """Hands QuickFIX the one `RawInbound`, kept alive here (QuickFIX holds a bare pointer).

    The log is disowned (`__disown__`) before QuickFIX gets it: otherwise SWIG records the
    hand-over under a lock that its generated code frees after first use, and the process
    aborts at exit ("The futex facility returned an unexpected error code")."""

    def __init__(self, log: RawInbound) -> None:
        super().__init__()
        log.__disown__()
        self.log = log

    def create(self, *_: Any) -> RawInbound:
        return self.log

    def destroy(self, log: Any) -> None:
        pass


class _Application(fix.Application):  # type: ignore[misc]
    def __init__(
        self,
        settings: InitiatorSettings,
        metrics: Metrics,
        inbox: InlineInbox[Inbound],
        on_error: Callable[[str, BaseException], None],
        sent: SentLog,
        raw_inbound: RawInbound,
        expected_target: Callable[[], int | None],
        expected_sender: Callable[[], int | None] = lambda: None,
        secrets: SecretValues | None = None,
        set_expected_target: Callable[[int], None] = lambda _: None,
    ) -> None:
        super().__init__()
        self.settings = settings
        self._secrets = secrets if secrets is not None else SecretValues()
        """Masked in everything handed over (`ExchangeSession.set_logon_fields`)."""
        self._raw_inbound = raw_inbound
        self._expected_target = expected_target
        """MsgSeqNum QuickFIX expects next; inside `fromApp`, the message's own (QuickFIX
        counts it received once the callback returns)."""
        self._expected_sender = expected_sender
        """MsgSeqNum QuickFIX sends next; inside `toApp` of a new message, its own (counted
        sent once it is)."""
        self._first_missing: int | None = None
        """The MsgSeqNum QuickFIX expected when the exchange's Logout came under another
        (`_logout_received`), until the session ends."""
        self._inbox = inbox
        self._on_error = on_error
        self._names: dict[int, str] | None = None
        """Tag names for the debug log, read from the dictionary when first needed."""
        self._sent = sent
        self._metrics = metrics
        self._test_requests: dict[str, float] = {}
        """TestRequests sent and not answered, by TestReqID, oldest first."""
        self.sending: FixMessage | None = None
        """The message `ExchangeSession.send` is handing QuickFIX, until `toApp` sees it."""
        self.heartbeat_round_trip_s: float | None = None
        """The last TestRequest's round trip to the Heartbeat answering it; None before the
        first of a session. Written on QuickFIX's thread, read whole on the loop's."""
        self._logged_on = False
        self._logons_in_a_row = 0
        """Logons the exchange sent in the session logged on, with nothing else between."""
        self._reject_sent = ""
        """The session-level Reject QuickFIX sent last, raw, if nothing went out after it:
        what a Logout without Text right after it ends the session for."""
        self._set_expected_target = set_expected_target
        """Sets the MsgSeqNum QuickFIX expects next (in its store)."""
        self._old_numbering: dict[int, str] = {}
        """SendingTime by MsgSeqNum of the messages QuickFIX held back for a gap when the
        exchange reset its numbering with a Logon (read then, `HeldForGap`). QuickFIX keeps
        its queue until the connection drops, and would hand each over again once the new
        numbering reaches its number, counting it in place of the new message
        (`_old_numbering_again`)."""

    def _tag_names(self) -> dict[int, str]:
        if self._names is None:
            self._names = field_names(self.settings.dictionary)
        return self._names

    def _count(self, direction: str, message: fix.Message) -> str:
        return self._count_type(direction, msg_type_of(message))

    def _count_type(self, direction: str, msg_type: str) -> str:
        if direction == "in":
            self._metrics.inbound(msg_type)
        else:
            self._metrics.count_message(direction, msg_type)
        if msg_type == "2":
            self._metrics.resend_requests.labels(direction).inc()
        elif msg_type == "4":
            self._metrics.gap_fills.labels(direction).inc()
        return msg_type

    def _debug_log(self, event: str, raw: str) -> None:
        """The message with tag names, for the debug log. A line that cannot be written is
        counted and reported, never in the way of the message: a report is handed over
        after it."""
        try:
            log.debug(event, msg=describe(raw, self._tag_names()))
        except Exception as exc:
            self._on_error(f"{event} (debug log)", exc)

    def _inbound(self, what: Happening, raw: str) -> Inbound:
        read, shown = self._secrets.mask(raw)
        return Inbound(what, read, datetime.now(UTC), None if shown is read else shown)

    def _put(self, what: Happening, raw: str = "") -> None:
        """A change of session state: the gateway learns of it once QuickFIX's call returns."""
        self._inbox.put_later(self._inbound(what, raw))

    def onCreate(self, sessionID: fix.SessionID) -> None:
        pass

    def onLogon(self, sessionID: fix.SessionID) -> None:
        try:
            self._logged_on = True
            self._put(Happening.LOGON)
        except Exception as exc:
            self._on_error("onLogon", exc)

    def onLogout(self, sessionID: fix.SessionID) -> None:
        try:
            first_missing, self._first_missing = self._first_missing, None
            if first_missing is not None:
                self._set_expected_target(first_missing)
            self._logged_on = False
            self._logons_in_a_row = 0
            self._test_requests.clear()
            self._old_numbering.clear()  # QuickFIX empties its queue
            self._put(Happening.DOWN)
        except Exception as exc:
            self._on_error("onLogout", exc)

    def toAdmin(self, message: fix.Message, sessionID: fix.SessionID) -> None:
        try:
            msg_type = self._count("out", message)
            reject_sent, self._reject_sent = self._reject_sent, ""
            if msg_type == "A":
                self._first_missing = None
                if header_field(message, MSG_SEQ_NUM) == "1":
                    self._sent.clear()  # numbering starts again: old entries name other messages
                self._metrics.logon_attempts.inc()
                self._put(Happening.LOGON_SENT)
                self._test_requests.clear()
                self.heartbeat_round_trip_s = None
                for tag, value in self.settings.logon_fields.items():
                    message.setField(tag, value)
            elif msg_type == "3":
                self._reject_sent = latin1_where_not_utf8(message.toString())
                self._refused(message)
            elif msg_type == "5":
                self._logging_out(message, reject_sent)
            elif msg_type == "1" and message.isSetField(TEST_REQ_ID):
                if len(self._test_requests) >= 64:
                    self._test_requests.pop(next(iter(self._test_requests)))
                test_req_id = message.getField(TEST_REQ_ID)
                self._test_requests.pop(test_req_id, None)  # QuickFIX's own reuses "TEST"
                self._test_requests[test_req_id] = time.monotonic()
        except Exception as exc:
            self._on_error("toAdmin", exc)

    def _logging_out(self, message: fix.Message, reject_sent: str) -> None:
        """A Logout saying why (its Text, or the Reject just before it) is QuickFIX ending
        the session on its own: the gateway's stop and its answer to the exchange's Logout
        say nothing."""
        if message.isSetField(TEXT):
            self._put(Happening.LOGOUT_SENT, latin1_where_not_utf8(message.toString()))
        elif reject_sent:
            self._put(Happening.LOGOUT_SENT, reject_sent)

    def fromAdmin(self, message: fix.Message, sessionID: fix.SessionID) -> None:
        """A second Logon in a row, once logged on, ends the session (`LOGON_ANSWERED`):
        QuickFIX logs out with the exception's text and disconnects."""
        logon_answered = False
        try:
            msg_type = self._count("in", message)
            in_session = msg_type == "A" and self._logged_on
            self._logons_in_a_row = self._logons_in_a_row + 1 if in_session else 0
            logon_answered = self._logons_in_a_row > 1
            if logon_answered:
                log.error("exchange broke the session protocol; logging out", why=LOGON_ANSWERED)
                self._put(Happening.PROTOCOL_ERROR, LOGON_ANSWERED)
            elif msg_type == "5":
                self._logout_received(message)
            elif (
                msg_type == "A"
                and message.isSetField(RESET_SEQ_NUM_FLAG)
                and message.getField(RESET_SEQ_NUM_FLAG) == "Y"
            ):
                raw = latin1_where_not_utf8(message.toString())
                held = self._raw_inbound.held.take_all()
                self._old_numbering = {
                    header_of(m.raw)[1]: raw_field(m.raw, 52) or "" for m in held if not m.refused
                }
                self._read_held("Logon with ResetSeqNumFlag=Y", held)
                self._inbox.put(self._inbound(Happening.NUMBERING_RESET, raw))
            elif msg_type == "3":
                self._put(Happening.REJECT_RECEIVED, latin1_where_not_utf8(message.toString()))
            elif msg_type == "4" and self._logged_on:
                raw = latin1_where_not_utf8(message.toString())
                skipped = skipped_by(raw, self._expected_target())
                if skipped:
                    self._put(Happening.MESSAGES_SKIPPED, raw)
                    self._read_held(
                        "SequenceReset", self._raw_inbound.held.skipped_past(skipped.stop)
                    )
            elif msg_type == "0" and message.isSetField(TEST_REQ_ID):
                self._test_request_answered(message.getField(TEST_REQ_ID))
        except Exception as exc:
            self._on_error("fromAdmin", exc)
        if logon_answered:
            raise fix.RejectLogon(LOGON_ANSWERED)

    def _logout_received(self, message: fix.Message) -> None:
        """QuickFIX counts the exchange's Logout as received whatever its MsgSeqNum: one above
        the number expected (a gap still open, its ResendRequest not answered yet; or lost
        messages not seen yet) would move the number past the first message missing, which
        the next logon would then never ask for. The number expected is put back once the
        session is over (`onLogout`): the next logon asks again from it."""
        self._put(Happening.LOGOUT_RECEIVED, latin1_where_not_utf8(message.toString()))
        expected = self._expected_target()
        logout_seq = header_field(message, MSG_SEQ_NUM)
        if expected is not None and logout_seq != str(expected):
            log.warning(
                "the exchange's Logout came out of sequence; the next logon asks again "
                "from the first message missing",
                expected=expected,
                logout_msg_seq_num=logout_seq,
            )
            self._first_missing = expected

    def _read_held(self, why: str, held: list[Held]) -> None:
        """Messages QuickFIX held back for a gap and throws away now (`HeldForGap`): received,
        so read as every other one (one QuickFIX refused, as a refused one), in order, after
        the poll (a Logon with ResetSeqNumFlag=Y has reset the numbering we send under
        already)."""
        if not held:
            return
        log.warning(
            "the exchange skipped past messages QuickFIX held back for a gap; fixgw reads them",
            skipped_by=why,
            msg_seq_nums=[header_of(m.raw)[1] for m in held],
        )
        for raw, refused in held:
            item = self._inbound(Happening.APP_REFUSED if refused else Happening.APP, raw)
            if enabled_for(logging.DEBUG):
                self._debug_log("fix in", item.shown)
            self._inbox.put_later(item)

    def _old_numbering_again(self, message: fix.Message, expected: int) -> bool:
        """Whether QuickFIX hands over from its queue a message of the old numbering, read
        when the exchange reset it (`_old_numbering`), under the number the new numbering
        has reached. It is not counted: the new message of that number is still to come."""
        sent_at = self._old_numbering.get(expected)
        if sent_at is None or raw_field(self._raw_inbound.last, MSG_SEQ_NUM) == str(expected):
            return False  # the message just received, not one from the queue
        if header_field(message, 52) != sent_at:
            return False
        del self._old_numbering[expected]
        self._set_expected_target(expected - 1)  # QuickFIX adds one once `fromApp` returns
        log.info("a message of the old numbering QuickFIX kept is dropped", msg_seq_num=expected)
        return True

    def _test_request_answered(self, test_req_id: str) -> None:
        """The exchange answers in order: those sent before this one are answered too (or
        will never be), and wait no longer."""
        sent = self._test_requests.get(test_req_id)
        if sent is None:
            return
        for earlier in list(self._test_requests):
            del self._test_requests[earlier]
            if earlier == test_req_id:
                break
        self.heartbeat_round_trip_s = time.monotonic() - sent
        self._metrics.heartbeat_round_trip.observe(self.heartbeat_round_trip_s)

    def test_request_waiting_s(self) -> float | None:
        """How long the oldest TestRequest not answered has waited; None if none waits."""
        oldest = next(iter(self._test_requests.values()), None)
        return None if oldest is None else time.monotonic() - oldest

    def quickfix_event(self, text: str) -> None:
        """A line of QuickFIX's event log. Before logon, QuickFIX says only there why a
        logon failed (`Happening.LOGON_FAILED`); once logged on, its Reject or Logout says
        it (`toAdmin`)."""
        if self._logged_on:
            return
        try:
            why = logon_failure(text, self._raw_inbound.last)
            if why is not None:
                self._put(Happening.LOGON_FAILED, why)
        except Exception as exc:
            self._on_error("onEvent", exc)

    def toApp(self, message: fix.Message, sessionID: fix.SessionID) -> None:
        """A message the gateway is sending now (`sending`) is recorded as it handed it over;
        one QuickFIX resends from its store is read from QuickFIX."""
        sending, self.sending = self.sending, None
        self._reject_sent = ""
        try:
            seq = None if sending is None else self._expected_sender()
            if sending is not None and seq is not None:
                self._sent.record(seq, sending.msg_type, sending)
                self._count_type("out", sending.msg_type)
                if enabled_for(logging.DEBUG):
                    self._debug_log("fix out", message.toString())
                return
            raw = message.toString()
            msg_type, seq_num = header_of(raw)
            if POSS_DUP in raw:
                log.warning("stale message not resent; gap filled instead", msg_type=msg_type)
                self._put(Happening.NOT_RESENT, raw)
                raise fix.DoNotSend()
            if msg_type == "j":
                self._refused(message)
            self._sent.record(seq_num, msg_type, raw)
            self._count_type("out", msg_type)
            if enabled_for(logging.DEBUG):
                self._debug_log("fix out", raw)
        except fix.DoNotSend:
            raise
        except Exception as exc:
            self._on_error("toApp", exc)

    def _refused(self, message: fix.Message) -> None:
        """QuickFIX is sending a Reject (3) or BusinessMessageReject (j) of a message from the
        exchange. If that is an application message QuickFIX counted as received, it never
        reaches `fromApp`: it goes to the gateway from `RawInbound`; so does a Reject of the
        exchange's (one whose SessionRejectReason is not a number), which never reaches
        `fromAdmin`. One QuickFIX takes from its queue for a gap and refuses then (its
        SendingTime too far off by now) is read from `HeldForGap`. One it refuses with a gap
        open before it (numbered too high: QuickFIX validates before it checks MsgSeqNum) is
        not counted: it is held for the gap (`HeldForGap`, read if the exchange skips past
        it), and read when it comes again in sequence. A duplicate is left alone."""
        if not message.isSetField(REF_MSG_TYPE) or not message.isSetField(REF_SEQ_NUM):
            return
        ref_msg_type = message.getField(REF_MSG_TYPE)
        if ref_msg_type in ADMIN_MSG_TYPES and ref_msg_type != REJECT:
            return
        if (
            message.isSetField(SESSION_REJECT_REASON)
            and message.getField(SESSION_REJECT_REASON) == COMP_ID_PROBLEM
        ):
            return  # not from the venue at all
        ref_seq_num = int(message.getField(REF_SEQ_NUM))
        expected = self._expected_target()
        raw = self._raw_inbound.last
        if raw_field(raw, MSG_SEQ_NUM) != str(ref_seq_num):
            raw = ""
        if expected is not None and ref_seq_num > expected:
            if raw and ref_msg_type != REJECT:
                self._raw_inbound.held.hold(ref_seq_num, raw, refused=True)
            return
        if expected != ref_seq_num + 1:
            return
        held = self._raw_inbound.held.delivered(ref_seq_num)
        raw = raw or held or ""
        if ref_msg_type == REJECT and not raw:
            return
        log.warning(
            "QuickFIX refused a message from the exchange; fixgw reads it itself",
            msg_type=ref_msg_type,
            msg_seq_num=ref_seq_num,
            why=message.getField(TEXT) if message.isSetField(TEXT) else None,
            tag=message.getField(REF_TAG_ID) if message.isSetField(REF_TAG_ID) else None,
            recovered=bool(raw),
        )
        self._put(
            Happening.REJECT_RECEIVED if ref_msg_type == REJECT else Happening.APP_REFUSED, raw
        )

    def fromApp(self, message: fix.Message, sessionID: fix.SessionID) -> None:
        """Only hands the raw message over: the gateway counts and reads it. The message as
        the venue sent it, where it is the last one received (`RawInbound`): QuickFIX's
        `toString` writes it again from what its dictionary made of it, and a field a venue
        puts in a group entry the dictionary does not list there would come out of the
        entry. A message QuickFIX held back for a gap (and handles now) is written again."""
        try:
            self._logons_in_a_row = 0
            raw = self._raw_inbound.last
            expected = self._expected_target()
            seq = str(expected) if expected is not None else msg_seq_num(message)
            if expected is not None:
                if self._old_numbering and self._old_numbering_again(message, expected):
                    return
                self._raw_inbound.held.delivered(expected)
            if raw_field(raw, MSG_SEQ_NUM) != seq:
                raw = latin1_where_not_utf8(message.toString())
            item = self._inbound(Happening.APP, raw)
            if enabled_for(logging.DEBUG):
                self._debug_log("fix in", item.shown)
            if raw_field(item.raw, 35) in self.settings.handled_after_poll:
                self._inbox.put_later(item)
            else:
                self._inbox.put(item)
        except Exception as exc:
            self._on_error("fromApp", exc)


class ExchangeSession:
    def __init__(
        self,
        settings: InitiatorSettings,
        metrics: Metrics,
        loop: asyncio.AbstractEventLoop,
        handler: Callable[[Inbound], Any],
        on_error: Callable[[str, BaseException], None],
    ) -> None:
        self.settings = settings
        self.session_id = fix.SessionID("FIX.4.4", settings.sender_comp_id, settings.target_comp_id)
        self._loop = loop
        self._handler = handler
        self.inbox: InlineInbox[Inbound] = InlineInbox(loop, self._on_inbound)
        self.sent = SentLog()
        self._raw_inbound = RawInbound(self._store_failed, self._quickfix_event)
        self.store_error: str | None = None
        """QuickFIX's words for its store's failure, until the store is reopened: nothing
        can be sent meanwhile."""
        self._log_factory = _RawInboundFactory(self._raw_inbound)
        self.secrets = SecretValues()
        self._mask_secrets_of(settings.logon_fields)
        self._app = _Application(
            settings,
            metrics,
            self.inbox,
            on_error,
            self.sent,
            self._raw_inbound,
            self._expected_target,
            self._expected_sender,
            self.secrets,
            self._set_expected_target,
        )
        # QuickFIX keeps what it sends: the Logon's password, every order's Account (key,secret).
        private_directory(settings.store_dir)
        self._qf_settings = make_settings(
            {
                "ConnectionType": "initiator",
                "FileStorePath": str(settings.store_dir),
                "DataDictionary": str(settings.dictionary),
                **VALIDATION,
                **ALWAYS_ON,
                # QuickFIX reads socket options from the defaults only.
                **(
                    {"SocketSendBufferSize": settings.send_buffer_bytes}
                    if settings.send_buffer_bytes
                    else {}
                ),
            },
            {
                self.session_id: {
                    "SocketConnectHost": settings.host,
                    "SocketConnectPort": settings.port,
                    "HeartBtInt": settings.heartbeat_s,
                    "ReconnectInterval": 1,  # the pace is fixgw.fix.reconnect's
                    "LogoutTimeout": max(1, round(settings.logout_timeout_s)),
                }
            },
        )
        self._store = fix.FileStoreFactory(self._qf_settings)
        self.driver: LoopDrivenInitiator | None = None
        """Runs the initiator while the session is started."""
        self._down = asyncio.Event()
        self._qf_session: Any = None
        """QuickFIX's Session, looked up once per initiator: `logged_on` is asked per order."""
        self._probes = 0

    @property
    def name(self) -> str:
        return str(self.session_id.toString())

    def start(self, handled_up_to: int | None = None) -> None:
        """`handled_up_to`: the exchange's last MsgSeqNum whose effects are journaled. If
        QuickFIX's store is past it (a crash in between), expect the next one again, so the
        logon asks the exchange to resend everything after it."""
        keep_store_across_days(self.settings.store_dir)
        self.driver = LoopDrivenInitiator(
            self._loop,
            lambda: fix.SocketInitiator(
                self._app, self._store, self._qf_settings, self._log_factory
            ),
            self.settings.host,
            self.settings.port,
        )
        self._qf_session = session = fix.Session.lookupSession(self.session_id)
        if handled_up_to is not None and session is not None:
            expected = int(session.getExpectedTargetNum())
            if expected > handled_up_to + 1:
                log.warning(
                    "messages received but not journaled before the last stop; asking again",
                    from_seq=handled_up_to + 1,
                    to_seq=expected - 1,
                )
                session.setNextTargetMsgSeqNum(handled_up_to + 1)
        self.driver.start()

    def _store_failed(self, text: str) -> None:
        """Inside QuickFIX's call: the gateway hears of it once the call is over."""
        if self.store_error is None:
            self.store_error = text
            self.inbox.put_later(Inbound(Happening.STORE_FAILED, text, datetime.now(UTC)))

    def _quickfix_event(self, text: str) -> None:
        self._app.quickfix_event(text)

    def _on_inbound(self, item: Inbound) -> None:
        if item.what is Happening.STORE_FAILED:
            error = write_error(self.settings.store_dir) or "a test write there succeeds now"
            item = item._replace(raw=f"{item.raw} (session.store_dir: {error})")
        try:
            if item.what is Happening.LOGON_SENT:
                self._down.clear()
                if self.driver is not None:
                    self.driver.watch_connection()
            elif item.what is Happening.DOWN:
                self._down.set()
                if self.driver is not None:
                    self.driver.unwatch_connection()
        except Exception:
            log.exception("watching QuickFIX's connection failed; it is polled on the tick")
        self._handler(item)

    async def stop(self) -> int | None:
        """Logout, wait for the session to end up to LogoutTimeout (the loop keeps polling
        QuickFIX meanwhile), close. Returns the exchange's last MsgSeqNum QuickFIX took if
        the gateway has handled every message it was handed (the checkpoint may follow it:
        nothing is left to ask again), else None."""
        driver, session = self.driver, self._qf_session
        if driver is None:
            return None
        if session is not None and (session.isLoggedOn() or session.sentLogon()):
            session.logout()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._down.wait(), self.settings.logout_timeout_s + 1)
        handled = None
        if session is not None and self.inbox.idle:
            handled = expected_target_num(session) - 1
        self._qf_session = None
        self.driver = None
        driver.stop()
        return handled

    def _session(self) -> Any:
        return self._qf_session

    def _expected_target(self) -> int | None:
        session = self._session()
        return None if session is None else expected_target_num(session)

    def _set_expected_target(self, seq: int) -> None:
        session = self._session()
        if session is not None:
            session.setNextTargetMsgSeqNum(seq)

    def _expected_sender(self) -> int | None:
        session = self._session()
        return None if session is None else expected_sender_num(session)

    @property
    def logged_on(self) -> bool:
        session = self._session()
        return bool(session is not None and session.isLoggedOn())

    def set_logon_fields(self, fields: Mapping[int, str]) -> None:
        """What the next Logon carries (credentials put right by a reload)."""
        self._mask_secrets_of(fields)
        self.settings = dataclasses.replace(self.settings, logon_fields=dict(fields))
        self._app.settings = self.settings

    def _mask_secrets_of(self, logon_fields: Mapping[int, str]) -> None:
        """The Logon's secret (Password, 554) is masked in all the exchange sends from now
        on, also once replaced (OKCoin's Account carries the same secret key)."""
        for tag in SECRET_TAGS & logon_fields.keys():
            self.secrets.add(logon_fields[tag])

    def disconnect(self) -> None:
        """Drop the connection without a Logout (the peer is not answering)."""
        session = self._session()
        if session is not None:
            session.disconnect()

    def log_out_now(self, text: str) -> None:
        """A Logout saying why (`text`), then the connection dropped without waiting for the
        exchange's answer: it is not answering."""
        session = self._session()
        if session is None:
            return
        if session.isLoggedOn():
            message = fix.Message()
            message.getHeader().setField(fix.MsgType("5"))
            message.setField(TEXT, text)
            fix.Session.sendToTarget(message, self.session_id)
        session.disconnect()

    def enable(self) -> None:
        """Let QuickFIX connect on its next tick; after its store failed, only once the store
        can be written and is reopened (`fix.store`): no Logon could go out before."""
        session = self._session()
        if session is None:
            return
        store_failed = self.store_error is not None and not session.isLoggedOn()
        if store_failed and not self._store_reopened(session):
            return
        session.logon()

    def _store_reopened(self, session: Any) -> bool:
        store_dir = str(self.settings.store_dir)
        error = write_error(self.settings.store_dir)
        if error is not None:
            log.warning(
                "QuickFIX's store still cannot be written; no logon",
                store_dir=store_dir,
                error=error,
            )
            return False
        try:
            reopen(session)
        except Exception as exc:
            log.error(
                "QuickFIX's store cannot be reopened; no logon", store_dir=store_dir, error=str(exc)
            )
            return False
        self.store_error = None
        log.warning(
            "QuickFIX's store can be written again: reopened; logging on", store_dir=store_dir
        )
        return True

    def disable(self) -> None:
        """Keep QuickFIX from connecting; never while logged on (it would log out)."""
        session = self._session()
        if session is not None and not session.isLoggedOn():
            session.logout()

    def reset_sequence_numbers(self) -> dict[str, int]:
        """Both sequence numbers back to 1, in the store: the operator's call, never ours."""
        session = self._session()
        if session is None or session.isLoggedOn() or session.sentLogon():
            raise RuntimeError("the session is up or logging on")
        session.setNextSenderMsgSeqNum(1)
        session.setNextTargetMsgSeqNum(1)
        forgotten = self._raw_inbound.held.take_all()
        if forgotten:
            log.warning(
                "messages held back for a gap in the old numbering are forgotten; the logon's "
                "reconciliation finds what they did",
                msg_seq_nums=[header_of(m.raw)[1] for m in forgotten],
            )
        return self.sequence_numbers()

    def sequence_numbers(self) -> dict[str, int]:
        session = self._session()
        if session is None:
            return {}
        return {
            "next_sender": int(session.getExpectedSenderNum()),
            "next_target": int(session.getExpectedTargetNum()),
        }

    def heartbeat_round_trip_ms(self) -> float | None:
        """The last TestRequest's round trip this session, in milliseconds, or how long one
        not answered has waited if that is longer (the last round trip is then not what
        the exchange takes now); None before one was answered, and while the session is
        down (a dead session's last round trip would read as a healthy link)."""
        seconds = self._app.heartbeat_round_trip_s
        if seconds is None or not self.logged_on:
            return None
        waiting = self._app.test_request_waiting_s()
        if waiting is not None and waiting > seconds:
            seconds = waiting
        return round(seconds * 1000, 3)

    def test_request_waiting_s(self) -> float | None:
        """How long the oldest TestRequest the exchange has not answered has waited; None
        if it answered every one (an answer counts for those sent before it)."""
        return self._app.test_request_waiting_s() if self.logged_on else None

    def probe(self) -> bool:
        """Send a TestRequest; the Heartbeat answering it times the round trip."""
        if not self.logged_on:
            return False
        self._probes += 1
        message = fix.Message()
        message.getHeader().setField(fix.MsgType("1"))
        message.setField(TEST_REQ_ID, f"fixgw-{self._probes}")
        return bool(fix.Session.sendToTarget(message, self.session_id))

    def send(self, message: FixMessage) -> bool:
        """False when the session is not logged on: the message was not sent."""
        session = self._qf_session
        if session is None:
            return False
        self._app.sending = message
        try:
            return send_message(session, message)
        finally:
            self._app.sending = None
