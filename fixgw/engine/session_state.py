"""The exchange session's life as the engine sees it: logon and logout, why it ended,
credentials the exchange refused (no more logons until the operator says so), a silent
exchange dropped, readiness, and the error a request gets while it is not logged on.

The state itself is one `SessionState`, held by the reconnector that drives the attempts
(`fix.reconnect`); what else must happen at logon and at the end of a session is told to
the services that listen (`on_up`, `on_down`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import structlog

from fixgw.api.protocol import ErrorCode
from fixgw.domain import LogoutReason, SessionDown, SessionState, SessionUp, utc_now
from fixgw.engine.ports import Publisher
from fixgw.errors import RequestError
from fixgw.fix.message import FixMessage
from fixgw.fix.reconnect import Reconnector
from fixgw.ops.prometheus import Metrics
from fixgw.results import Connection
from fixgw.venues.base import Credentials, Venue

STOPPED = "the gateway stopped"
"""`session.down`'s reason when the gateway's own stop ended the session."""
DISCONNECTED = "disconnected"
"""Its reason when nothing said why: the connection dropped, or was never made."""
_ATTEMPTING = (SessionState.CONNECTING, SessionState.LOGGING_ON, SessionState.UP)

log = structlog.get_logger("fixgw.session")


class _Session(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def logged_on(self) -> bool: ...
    @property
    def store_error(self) -> str | None: ...
    def disconnect(self) -> None: ...
    def log_out_now(self, text: str) -> None: ...
    def set_logon_fields(self, fields: dict[int, str]) -> None: ...


class SessionLifecycle:
    def __init__(
        self,
        session: _Session,
        reconnector: Reconnector,
        venue: Venue,
        credentials: Credentials,
        bus: Publisher,
        metrics: Metrics,
        *,
        heartbeat_s: int,
        reset_seq_num_on_logon: bool,
    ) -> None:
        self._session = session
        self.reconnector = reconnector
        self._venue = venue
        self.credentials = credentials
        self._bus = bus
        self._metrics = metrics
        self.heartbeat_s = heartbeat_s
        self._reset_seq_num_on_logon = reset_seq_num_on_logon
        self.on_up: list[Callable[[], None]] = []
        self.on_down: list[Callable[[], None]] = []
        self._logout_reason: LogoutReason | None = None
        self._logout_text: str | None = None
        self._down_said = False
        """A `session.down` went out since the last logon: QuickFIX reports the end of a
        session more than once (Logout, then disconnect), and a refused logon after a
        session ended is no news, unless it gives a reason not said yet."""
        self._reasons_said: set[str] = set()
        """The reasons `session.down` gave since the last logon: logons failing by turns
        for two reasons are told each reason once."""
        self.last_down_reason: str | None = None
        """Why the session last ended or a logon last failed, as `session.down` says it."""
        self._stopping = False

    @property
    def state(self) -> SessionState:
        return self.reconnector.state

    @property
    def up(self) -> bool:
        return self.reconnector.state is SessionState.UP

    def connection(self) -> Connection:
        s = self.reconnector.status()
        return Connection(
            phase=s["phase"],
            attempts=s["attempts"],
            failures_in_a_row=s["failures_in_a_row"],
            next_attempt_at=s["next_attempt_at"],
            held=s["held"],
            last_down_reason=self.last_down_reason,
        )

    # ------------------------------------------------------------ what QuickFIX reports

    def logon_sent(self) -> None:
        self.reconnector.logon_sent()

    def logged_on(self) -> None:
        self.reconnector.up()
        self._down_said = False
        self._reasons_said.clear()
        self._metrics.session_up.set(1)
        self._metrics.logons.inc()
        self._logout_reason = None
        self._logout_text = None
        log.info("session up", session=self._session.name)
        self._bus.publish(SessionUp(ts=utc_now(), session_id=self._session.name))
        for listener in self.on_up:
            listener()

    def logout_received(self, msg: FixMessage) -> None:
        """The exchange's Logout: its Text is why the session ends, unless it answers a
        Logout of the gateway's, which said why."""
        self._logout_reason = self._venue.logout_reason(msg)
        if self._logout_text is None:
            self._logout_text = msg.get(58)
        if self._logout_reason is LogoutReason.INVALID_CREDENTIALS:
            self._credentials_refused(self._logout_text)

    def protocol_error(self, why: str) -> None:
        """The session layer logs the exchange out for `why`; the session's end says so."""
        self._logout_text = f"protocol error: {why}"

    def store_failed(self, why: str) -> None:
        """QuickFIX cannot write its store, so it sends nothing, not even a heartbeat or a
        Logout: the connection is dropped now, not left looking up until the exchange gives
        up on it. The next logon waits until the store can be written (`ExchangeSession`)."""
        self._logout_text = f"QuickFIX's store cannot be written: {why}"
        log.error(
            "QuickFIX's store cannot be written; disconnecting, and logging on again once it "
            "can be",
            session=self._session.name,
            why=why,
        )
        self._session.disconnect()

    def logout_sent(self, msg: FixMessage) -> None:
        """QuickFIX logs the exchange out on its own (FIX 4.4's answer to a MsgSeqNum too
        low, a SendingTime far off): `msg` is its Logout, or the Reject before one without
        Text. The session's end says why, unless it is already known."""
        why = msg.get(58) or f"SessionRejectReason {msg.get(373)}"
        self.ends_because(f"logged out by the gateway: {why}")

    def logon_failed(self, why: str) -> None:
        """QuickFIX gave up on a logon, saying why in its event log only (it refused the
        exchange's answer, or none came): the failed logon's end says it."""
        self.ends_because(why)

    def logon_rejected(self, reject: FixMessage) -> None:
        """The exchange answered the Logon with a session-level Reject: no logon follows,
        so the connection is dropped now rather than at QuickFIX's LogonTimeout."""
        why = reject.get(58) or f"SessionRejectReason {reject.get(373)}"
        self.ends_because(f"the exchange rejected the Logon: {why}")
        self._session.disconnect()

    def stopping(self) -> None:
        """The gateway is stopping and its Logout goes out next: the session's end is the
        operator's doing, said as such and logged at info, not as a fault; and nothing more
        is sent (`require`): FIX sends nothing after a Logout, so a halt taken from now on
        leaves its cancels to the next start (the halt holds across restarts)."""
        self._stopping = True
        self.ends_because(STOPPED)

    def ends_because(self, why: str) -> None:
        """What the session's end (or the failed logon's) says, unless it is known already:
        `session.down`, the log and `last_down_reason` (`ended`)."""
        if self._logout_text is None:
            self._logout_text = why

    def ended(self) -> None:
        """The session, or an attempt, ended. After a `session.down`, another for no reason
        (a connection not made) is no news, but `last_down_reason` says it: "disconnected",
        not the reason an earlier attempt ended for (refused credentials since replaced).
        QuickFIX telling of an end already told (the state is no longer an attempt's)
        changes nothing."""
        an_attempt_ended = self.reconnector.state in _ATTEMPTING
        self.reconnector.down()
        reason, logout_reason = self._logout_text, self._logout_reason
        self._logout_reason = None
        self._logout_text = None
        if self._down_said and (reason is None or reason in self._reasons_said):
            if reason is not None:
                self.last_down_reason = reason
                log.warning("logon failed", session=self._session.name, reason=reason)
            elif an_attempt_ended:
                self.last_down_reason = DISCONNECTED
            return
        first = not self._down_said
        self._down_said = True
        reason = reason or DISCONNECTED
        self.last_down_reason = reason
        self._reasons_said.add(reason)
        (log.info if self._stopping else log.warning)(
            "session down" if first else "logon failed",
            session=self._session.name,
            reason=reason,
            logout_reason=logout_reason,
        )
        if first:
            self._metrics.session_up.set(0)
            self._metrics.disconnects.inc()
            for listener in self.on_down:
                listener()
        self._bus.publish(
            SessionDown(
                ts=utc_now(),
                session_id=self._session.name,
                reason=reason,
                logout_reason=logout_reason,
            )
        )

    # ------------------------------------------------------------ a silent exchange

    def drop_if_silent(self, silent_s: float) -> None:
        """QuickFIX gives up on a silent peer after 2.4 heartbeat intervals; two is enough,
        with a TestRequest sent every interval."""
        if self.up and silent_s > 2 * self.heartbeat_s:
            log.error(
                "exchange silent for two heartbeat intervals; disconnecting",
                silent_s=round(silent_s, 3),
            )
            self._logout_text = f"exchange silent for {silent_s:.1f} s"
            self._session.disconnect()

    def drop_if_test_request_unanswered(self, waiting_s: float | None) -> None:
        """FIX 4.4: a TestRequest not answered means the session is lost. An exchange that
        goes on heartbeating but answers nothing (its order entry hung) is not silent, and
        would look up for ever. Two intervals, as for silence: the answer to a TestRequest
        is due at once, and one goes out every interval (`probe`), QuickFIX's own only
        after a silence."""
        if waiting_s is None or waiting_s <= 2 * self.heartbeat_s:
            return
        if not (self.up and self._session.logged_on):
            return
        why = f"TestRequest not answered in {waiting_s:.1f} s"
        log.error(
            "the exchange has not answered a TestRequest for two heartbeat intervals; logging out",
            waiting_s=round(waiting_s, 3),
        )
        self._logout_text = why
        self._session.log_out_now(why)

    # ------------------------------------------------------------ credentials

    def _credentials_refused(self, text: str | None) -> None:
        """No more logons with these credentials: an exchange knocked on once a minute with
        a wrong key may lock it or ban the address. The operator's `logon_again`, a reload
        with other credentials, or a restart tries again."""
        if self.reconnector.held is not None:
            return
        reason = f"the exchange refused the credentials: {text or 'invalid credentials'}"
        self.reconnector.hold(reason)
        self._metrics.credentials_refused.set(1)
        log.error(
            "logon refused: the exchange says the credentials are wrong; no further logon "
            "until `fixgw session logon`, a reload with new credentials, or a restart",
            text=text,
        )

    def logon_again(self, by: str) -> Connection:
        """The operator's `fixgw session logon`, or a reload with new credentials."""
        if not self.reconnector.release():
            raise RequestError(
                "no logon is being held back: the gateway is logged on or trying",
                code=ErrorCode.INVALID_REQUEST,
            )
        self._metrics.credentials_refused.set(0)
        log.warning("logging on again", by=by)
        return self.connection()

    def set_credentials(self, credentials: Credentials) -> bool:
        """New credentials (a reload): the next Logon and orders carry them; a logon held
        back since the old ones were refused is tried again. False if unchanged."""
        if credentials == self.credentials:
            return False
        self._venue.set_credentials(credentials)
        self.credentials = credentials
        self._session.set_logon_fields(self._venue.logon_fields(self._reset_seq_num_on_logon))
        if self.reconnector.held is not None:
            self.logon_again("a reload with new credentials")
        return True

    # ------------------------------------------------------------ requests

    def require(self) -> None:
        """Raises `not_connected` unless QuickFIX is logged on and no Logout of the stop's is
        under way: nothing can be sent."""
        if self._stopping:
            raise RequestError(
                "the gateway is stopping: its Logout is under way, nothing more goes to the "
                "exchange; nothing was sent",
                code=ErrorCode.NOT_CONNECTED,
            )
        if not self._session.logged_on:
            raise self.not_connected()

    def not_connected(self) -> RequestError:
        """Said when QuickFIX is not logged on. The state may still say up: QuickFIX leaves
        a session inside a poll, and the engine hears of it right after."""
        state = self.state
        store_error = self._session.store_error
        if store_error is not None:
            return RequestError(
                f"the exchange session cannot send: QuickFIX's store cannot be written "
                f"({store_error}; see the log); nothing was sent",
                code=ErrorCode.NOT_CONNECTED,
            )
        if state is SessionState.UP:
            shown = "not logged on (it is ending)"
        elif state in (SessionState.CONNECTING, SessionState.LOGGING_ON):
            shown = f"not logged on yet ({state})"
        else:
            shown = f"not logged on ({state})"
        return RequestError(
            f"the exchange session is {shown}; nothing was sent", code=ErrorCode.NOT_CONNECTED
        )
