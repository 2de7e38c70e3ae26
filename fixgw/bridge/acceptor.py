"""The QuickFIX acceptor the OMS sessions log on to: a thin Application that checks
passwords and hands every message to the loop, and the acceptor's lifecycle."""

from __future__ import annotations

import hmac
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import quickfix as fix
import structlog

from fixgw.bridge import translate
from fixgw.bridge.logon_screen import COMP_ID_LOGGED, PASSWORD, LogonScreen
from fixgw.bridge.outbox import Outbox
from fixgw.bridge.tables import (
    BUSINESS_REJECT_NOT_AVAILABLE,
    INCORRECT_DATA_FORMAT,
    INCORRECT_NUM_IN_GROUP,
)
from fixgw.config import BridgeConfig
from fixgw.files import private_directory
from fixgw.fix.message import (
    DATA_LENGTH_TAGS,
    FixMessage,
    GroupTree,
    first_not_utf8,
    group_trees,
    miscounted_group,
    pairs_of,
    redact,
)
from fixgw.fix.qf import (
    ALWAYS_ON,
    VALIDATION,
    Inbox,
    keep_store_across_days,
    keep_thread_state,
    msg_type_of,
    raw_field,
    to_quickfix,
)
from fixgw.fix.qflisten import GatedAcceptor
from fixgw.fix.tags import Tag
from fixgw.ops.log_budget import LogBudget

MARKET_DATA = frozenset({"W", "X", "Y"})
"""The bridge's market data messages: snapshots, incremental refreshes, request rejects."""

log = structlog.get_logger("fixgw.bridge")

REJECT = "j"
"""BusinessMessageReject: never answered with one (a Reject, 3, reaches `fromAdmin`)."""
ANY_BYTES = frozenset({Tag.TEXT, *DATA_LENGTH_TAGS})
"""Taken in any encoding (a European OMS's Latin-1 Text), and FIX's data fields (EncodedText,
SecureData, ...) holding any byte: the bridge neither reads nor echoes them. A value
elsewhere that is not UTF-8 gets the message a Reject (3)."""
HANDOVER_TIMEOUT_S = 2.0
"""How long QuickFIX's thread waits for the loop to take an OMS message (it serves every
OMS session's heartbeats meanwhile). A loop that slow is stalled or stopping."""
ACCEPTED = "Accepted connection from "
NO_SESSION = "Session not found for incoming message: "
"""What QuickFIX's acceptor log says of a connection it drops for its first message."""
BEGIN_STRING = "FIX.4.4"
"""The bridge's sessions' BeginString: QuickFIX knows a session by it too."""


class OmsHappening(StrEnum):
    LOGON = "logon"
    LOGOUT = "logout"
    APP = "app"
    SESSION_REJECT = "session_reject"
    """A Reject (3) from the OMS: an admin message, so QuickFIX hands it to `fromAdmin`."""


@dataclass(frozen=True, slots=True)
class OmsInbound:
    what: OmsHappening
    oms: str
    """The OMS's comp id."""
    raw: str = ""
    ended_by: str = ""
    """LOGOUT: `logout` (the OMS's own Logout), `stop` (the gateway stopping), or empty:
    the connection ended, or QuickFIX ended the session, with no Logout from the OMS."""


class _Peers:
    """Where each connection the logon gate handed over came from, known by its Logon's
    CompIDs, MsgSeqNum and SendingTime: QuickFIX names no peer when it refuses a logon, and
    several may be refused at once."""

    KEPT = 256

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_logon: OrderedDict[tuple[str, ...], str] = OrderedDict()

    def handed_over(self, peer: str, first: bytes) -> None:
        raw = first.decode(errors="surrogateescape")
        with self._lock:
            for key in (_logon_key(raw), _logon_key(raw, exact=True)):
                self._by_logon[key] = peer
                self._by_logon.move_to_end(key)
            while len(self._by_logon) > 2 * self.KEPT:
                self._by_logon.popitem(last=False)

    def of(self, logon: str) -> str:
        """The peer of `logon`: by its CheckSum too (two Logons alike but in their bodies),
        else without it (QuickFIX wrote the message out again, changing a byte)."""
        with self._lock:
            exact = self._by_logon.get(_logon_key(logon, exact=True))
            return exact or self._by_logon.get(_logon_key(logon), "unknown")


def _logon_key(raw: str, exact: bool = False) -> tuple[str, ...]:
    tags = (49, 56, 34, 52, 10) if exact else (49, 56, 34, 52)
    return (*(raw_field(raw, tag) or "" for tag in tags), "exact" if exact else "")


class _OmsApplication(fix.Application):  # type: ignore[misc]
    def __init__(
        self,
        passwords: Mapping[str, str],
        inbox: Inbox[OmsInbound],
        groups: Mapping[str, Mapping[int, GroupTree]],
        peers: _Peers,
    ) -> None:
        super().__init__()
        self._passwords = passwords
        self._peers = peers
        self._inbox = inbox
        self._groups = groups
        """Each message type's repeating groups, by the session's dictionary: QuickFIX does
        not check their counts while it lets fields through that the message does not
        define (`AllowUnknownMsgFields`), so the bridge does."""
        self._refused_logon_log = LogBudget(log)
        self._logouts_received: set[str] = set()
        """OMS sessions whose Logout came: their session's end is theirs."""
        self.stopping = False
        """Set once at shutdown: OMS messages are then refused here, not handed to a loop
        that is stopping (or gone)."""

    def onCreate(self, sessionID: fix.SessionID) -> None:
        pass

    def onLogon(self, sessionID: fix.SessionID) -> None:
        self._put(OmsHappening.LOGON, sessionID)

    def onLogout(self, sessionID: fix.SessionID) -> None:
        oms = sessionID.getTargetCompID().getValue()
        if oms in self._logouts_received:
            self._logouts_received.discard(oms)
            ended_by = "logout"
        else:
            ended_by = "stop" if self.stopping else ""
        self._put(OmsHappening.LOGOUT, sessionID, ended_by=ended_by)

    def toAdmin(self, message: fix.Message, sessionID: fix.SessionID) -> None:
        pass

    def fromAdmin(self, message: fix.Message, sessionID: fix.SessionID) -> None:
        keep_thread_state()
        logon = refused = False
        try:
            msg_type = msg_type_of(message)
            if msg_type == "3":
                self._put(OmsHappening.SESSION_REJECT, sessionID, message.toString())
            elif msg_type == "5":
                self._logouts_received.add(sessionID.getTargetCompID().getValue())
            elif msg_type == "A":
                logon = True
                oms = sessionID.getTargetCompID().getValue()
                expected = self._passwords.get(oms)
                given = message.getField(PASSWORD) if message.isSetField(PASSWORD) else None
                if expected is not None and (
                    given is None
                    # the bytes as sent: QuickFIX's binding keeps a byte that is not UTF-8
                    # as a lone surrogate (`surrogateescape`)
                    or not hmac.compare_digest(
                        given.encode(errors="surrogateescape"), expected.encode()
                    )
                ):
                    self._refused_logon_log.line(
                        "OMS logon refused: wrong or missing password",
                        oms=oms,
                        peer=self._peers.of(message.toString()),
                    )
                    refused = True
        except Exception:
            log.exception("bridge fromAdmin failed")
            refused = logon  # a logon whose password could not be checked is refused
        if refused:
            raise fix.RejectLogon("wrong or missing password")

    def toApp(self, message: fix.Message, sessionID: fix.SessionID) -> None:
        """A market data message QuickFIX would resend (PossDupFlag) is gap-filled instead:
        its quotes are of a moment gone, under a subscription that may have ended with the
        connection. Resends are for order reports."""
        header = message.getHeader()
        if header.isSetField(Tag.POSS_DUP_FLAG) and header.getField(Tag.MSG_TYPE) in MARKET_DATA:
            raise fix.DoNotSend()

    def fromApp(self, message: fix.Message, sessionID: fix.SessionID) -> None:
        """Returns once the gateway has acted on the message (the order is journaled and
        sent on): only then does QuickFIX store it as received, so a crash in between
        leaves the OMS to resend it on the next logon rather than lose it."""
        keep_thread_state()
        raw = ""
        try:
            oms = sessionID.getTargetCompID().getValue()
            raw = message.toString()
            msg_type = msg_type_of(message)
            malformed = self._malformed(raw, msg_type)
            if malformed is not None:
                tag, reason, text = malformed
                log.warning("OMS message rejected", oms=oms, msg_type=msg_type, why=text)
                reject = translate.session_reject(translate.parse_oms(raw), tag, reason, text)
                fix.Session.sendToTarget(to_quickfix(reject), sessionID)
                return
            if self.stopping and msg_type == REJECT:
                log.warning("OMS reject while shutting down", oms=oms, msg=redact(raw))
                return  # never a reject of a reject
            if self.stopping:
                log.warning("OMS message refused: the gateway is shutting down", oms=oms)
                reject = translate.business_reject(
                    translate.parse_oms(raw),
                    BUSINESS_REJECT_NOT_AVAILABLE,
                    "gateway shutting down",
                )
                fix.Session.sendToTarget(to_quickfix(reject), sessionID)
                return
            item = OmsInbound(OmsHappening.APP, oms, raw)
            if not self._inbox.put_and_wait(item, HANDOVER_TIMEOUT_S):
                log.warning(
                    "the gateway has not taken an OMS message yet; it counts as received",
                    oms=oms,
                    waited_s=HANDOVER_TIMEOUT_S,
                )
        except Exception:
            log.exception("bridge fromApp failed", msg=redact(raw))
            self._answer_failure(raw, sessionID)

    @staticmethod
    def _answer_failure(raw: str, sessionID: fix.SessionID) -> None:
        """A message the bridge failed on is answered as the loop answers one (`Outbox.failed`),
        so that the OMS asks for the order's status rather than wait: QuickFIX counts it
        received all the same, and it is never resent."""
        try:
            msg = translate.unread(raw)
            if msg.msg_type != REJECT:  # never a reject of a reject
                fix.Session.sendToTarget(to_quickfix(Outbox.failed(msg)), sessionID)
        except Exception:
            log.exception("answering an OMS message the bridge failed on failed")

    def _malformed(self, raw: str, msg_type: str) -> tuple[int, str, str] | None:
        """What QuickFIX lets through and the bridge answers with a Reject (3): the tag, the
        SessionRejectReason and Text. A value that is not UTF-8 could be neither answered nor
        echoed nor sent on (a reject from the OMS is only logged, never rejected); QuickFIX
        does not count groups while it lets unknown fields through."""
        pairs = pairs_of(raw)
        if msg_type != REJECT and not raw.isascii():
            tag = first_not_utf8(pairs, ANY_BYTES)
            if tag is not None:
                return tag, INCORRECT_DATA_FORMAT, f"the value of tag {tag} is not UTF-8"
        wrong = miscounted_group(pairs, self._groups.get(msg_type, {}))
        if wrong is not None:
            text = f"NumInGroup ({wrong}) is not the number of entries in the group"
            return wrong, INCORRECT_NUM_IN_GROUP, text
        return None

    def _put(
        self, what: OmsHappening, sessionID: fix.SessionID, raw: str = "", ended_by: str = ""
    ) -> None:
        try:
            oms = sessionID.getTargetCompID().getValue()
            self._inbox.put(OmsInbound(what, oms, raw, ended_by))
        except Exception:
            log.exception("bridge callback failed", what=what)


_DROPPED_BEGIN_STRING = f"OMS logon refused: its BeginString is not {BEGIN_STRING}"
_DROPPED_SECOND_CONNECTION = "OMS connection dropped: its session is held by another connection"
_DROPPED_NO_SESSION = (
    "OMS logon refused: no session for its CompIDs "
    "(SenderCompID not in bridge.sessions, or TargetCompID not bridge.comp_id)"
)
_DROPPED = (_DROPPED_BEGIN_STRING, _DROPPED_SECOND_CONNECTION, _DROPPED_NO_SESSION)
"""What a connection QuickFIX drops at its first message is logged as: each a `LogBudget`'s."""


class _ConnectionLog(fix.Log):  # type: ignore[misc]
    """QuickFIX's acceptor log (not a session's), read for one thing: a connection QuickFIX
    drops, with no Logout and nothing in a session's log, because its first message names no
    session it has (a SenderCompID not in `bridge.sessions`, a TargetCompID not
    `bridge.comp_id`) or one held by another connection. QuickFIX says so with the
    whole message, which may hold the OMS's password: only its CompIDs are logged, with the
    peer the logon gate took that message from (`_Peers`).

    It also says when QuickFIX accepts a connection (`on_accepted`): one that did not come
    through the gate is then shut down."""

    def __init__(self, comp_id: str, oms_comp_ids: Collection[str], peers: _Peers) -> None:
        super().__init__()
        self._comp_id = comp_id
        self._oms_comp_ids = frozenset(oms_comp_ids)
        self._peers = peers
        self.on_accepted: Callable[[], None] = lambda: None
        self._dropped_logs = {why: LogBudget(log) for why in _DROPPED}

    def onIncoming(self, message: str) -> None:
        pass

    def onOutgoing(self, message: str) -> None:
        pass

    def onEvent(self, text: str) -> None:
        try:
            if text.startswith(ACCEPTED):
                self.on_accepted()
            elif text.startswith(NO_SESSION):
                self._dropped(text[len(NO_SESSION) :])
        except Exception:
            log.exception("reading QuickFIX's acceptor log failed")

    def _dropped(self, raw: str) -> None:
        begin = raw.partition("\x01")[0].removeprefix("8=")[:COMP_ID_LOGGED]
        sender = (raw_field(raw, 49) or "")[:COMP_ID_LOGGED]
        target = (raw_field(raw, 56) or "")[:COMP_ID_LOGGED]
        if begin != BEGIN_STRING:
            why = _DROPPED_BEGIN_STRING
        elif target == self._comp_id and sender in self._oms_comp_ids:
            why = _DROPPED_SECOND_CONNECTION
        else:
            why = _DROPPED_NO_SESSION
        self._dropped_logs[why].line(
            why,
            begin_string=begin,
            sender_comp_id=sender,
            target_comp_id=target,
            bridge_comp_id=self._comp_id,
            peer=self._peers.of(raw),
        )

    def clear(self) -> None:
        pass

    def backup(self) -> None:
        pass


class _ConnectionLogFactory(fix.LogFactory):  # type: ignore[misc]
    """Hands QuickFIX the one `_ConnectionLog` as the acceptor's log, and no log to each
    session (QuickFIX's own null log then): nothing per message crosses into Python. The
    log is disowned before QuickFIX gets it, as the initiator's is (`_RawInboundFactory`)."""

    def __init__(self, log: _ConnectionLog) -> None:
        super().__init__()
        log.__disown__()
        self.log = log

    def create(self, *session: Any) -> _ConnectionLog | None:
        return None if session else self.log

    def destroy(self, log: Any) -> None:
        pass


class BridgeAcceptor:
    def __init__(
        self,
        config: BridgeConfig,
        passwords: Mapping[str, str],
        inbox: Inbox[OmsInbound],
        dictionary: Path,
        on_refused: Callable[[str], None] = lambda reason: None,
    ) -> None:
        """`on_refused(reason)`: a connection closed before it reached QuickFIX (`LogonGate`)."""
        self.config = config
        self._passwords = passwords
        peers = _Peers()
        self._app = _OmsApplication(passwords, inbox, group_trees(dictionary), peers)
        self._ids = {
            oms.comp_id: fix.SessionID(BEGIN_STRING, config.comp_id, oms.comp_id)
            for oms in config.sessions
        }
        private_directory(Path(config.store_dir))  # what OMS sessions sent, as sent
        connections = _ConnectionLog(config.comp_id, self._ids, peers)
        self._acceptor = GatedAcceptor(
            self._app,
            {
                "ConnectionType": "acceptor",
                "SocketReuseAddress": "Y",
                "FileStorePath": config.store_dir,
                "DataDictionary": str(dictionary),
                **VALIDATION,
                **ALWAYS_ON,
            },
            {sid: {} for sid in self._ids.values()},
            config.host,
            config.port,
            "bridge.host",
            _ConnectionLogFactory(connections),
            handover_dir=Path(config.store_dir),
            logon_timeout_s=config.logon_timeout_s,
            on_handover=peers.handed_over,
            on_refused=on_refused,
            logged_on=self._session_logged_on,
            screen=LogonScreen(passwords).refusal,
        )
        connections.on_accepted = self._acceptor.look_for_strangers

    def start(self) -> None:
        """Listening on `bridge.host` only (`BoundAcceptor`); ConfigError if it cannot."""
        keep_store_across_days(Path(self.config.store_dir))
        self._acceptor.start()
        log.info("FIX bridge listening", host=self.config.host, port=self.config.port)

    def send(self, oms: str, message: FixMessage) -> None:
        """Sent now, or kept in the store and resent when the OMS logs on again."""
        fix.Session.sendToTarget(to_quickfix(message), self._ids[oms])

    def _session_logged_on(self, first: bytes) -> bool:
        """Whether the session a connection's first message names is logged on, or has a
        password its Logon carried (the gate checked it: its own OMS, never shut down): the
        logon gate asks, of a connection QuickFIX still holds."""
        oms = raw_field(first.decode(errors="surrogateescape"), 49)
        return oms in self._ids and (oms in self._passwords or self.logged_on(oms))

    def logged_on(self, oms: str) -> bool:
        session = fix.Session.lookupSession(self._ids[oms])
        return bool(session is not None and session.isLoggedOn())

    def stop(self, timeout: float = 5.0) -> None:
        """Refuse OMS messages from now on, log every OMS out and wait for the answers.
        `logout()` also disables a session, so it is called on every one, logged on or not:
        none may log on while the gateway stops. `SocketAcceptor.stop()` is not called:
        QuickFIX 1.16 crashes in it once a client has disconnected (see the simulator)."""
        self._app.stopping = True
        self._acceptor.stop_taking()
        sessions = [fix.Session.lookupSession(sid) for sid in self._ids.values()]
        for session in sessions:
            if session is not None:
                session.logout("gateway shutting down")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and any(
            s is not None and s.isLoggedOn() for s in sessions
        ):
            time.sleep(0.05)
