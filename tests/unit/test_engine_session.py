"""The session's lifecycle, built alone: a fake session, the real reconnector (whose state it
reads), OKCoin's dialect for the Logout's reason, a recording bus. What QuickFIX reports
becomes one `SessionState`, the listeners hear of logon and of the end of a session once
each, refused credentials hold the logons, and a request refused meanwhile says the state."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from fixgw.api.protocol import ErrorCode
from fixgw.domain import LogoutReason, SessionDown, SessionState, SessionUp
from fixgw.engine.session_state import SessionLifecycle
from fixgw.fix.message import FixMessage
from fixgw.fix.reconnect import Backoff, Reconnector
from fixgw.ops.prometheus import Metrics
from fixgw.venues.base import Credentials
from tests.unit.engine_kit import FakeSession, Recorder, message, okcoin, refused, sample

HEARTBEAT_S = 30


class Alone:
    def __init__(self) -> None:
        self.session = FakeSession()
        self.reconnector = Reconnector(self.session, Backoff(1.0, 60.0, 2.0, 0.0))
        self.bus = Recorder()
        self.metrics = Metrics()
        self.heard: list[str] = []
        self.lifecycle = SessionLifecycle(
            self.session,
            self.reconnector,
            okcoin(),
            Credentials("API-KEY", "SECRET-KEY"),
            self.bus,
            self.metrics,
            heartbeat_s=HEARTBEAT_S,
            reset_seq_num_on_logon=False,
        )
        self.lifecycle.on_up.append(lambda: self.heard.append("up"))
        self.lifecycle.on_down.append(lambda: self.heard.append("down"))

    def logon(self) -> None:
        self.session.logged_on = True
        self.lifecycle.logon_sent()
        self.lifecycle.logged_on()

    def end(self) -> None:
        self.session.logged_on = False
        self.lifecycle.ended()


@pytest.fixture
def alone() -> Alone:
    return Alone()


def test_logon_and_the_end_of_a_session_are_told_to_the_listeners_and_published(
    alone: Alone,
) -> None:
    lifecycle = alone.lifecycle
    assert (lifecycle.state, lifecycle.up) == (SessionState.CONNECTING, False)
    alone.logon()
    assert (lifecycle.state, lifecycle.up, alone.heard) == (SessionState.UP, True, ["up"])
    assert sample(alone.metrics, "fixgw_session_up") == 1
    alone.end()
    assert (lifecycle.state, alone.heard) == (SessionState.DOWN, ["up", "down"])
    assert alone.bus.types() == ["session.up", "session.down"]
    assert alone.bus.of(SessionUp)[0].session_id == alone.session.name
    assert alone.bus.of(SessionDown)[0].reason == "disconnected"
    assert sample(alone.metrics, "fixgw_session_up") == 0


def test_one_session_down_per_session_however_often_quickfix_reports_the_end(
    alone: Alone,
) -> None:
    alone.logon()
    alone.lifecycle.logout_received(message("logout_invalid_credentials", {8500: "0"}))
    alone.end()  # the Logout ended it
    alone.end()  # and then the disconnect
    alone.end()  # and a logon refused after it
    assert alone.heard == ["up", "down"]
    [down] = alone.bus.of(SessionDown)
    assert down.logout_reason is LogoutReason.CLIENT_LOGOUT
    alone.logon()
    alone.end()
    assert alone.bus.types() == ["session.up", "session.down", "session.up", "session.down"]
    assert alone.bus.of(SessionDown)[1].logout_reason is None  # the last one's is forgotten


def test_an_attempt_that_fails_for_no_reason_after_a_down_is_the_latest_reason_not_news(
    alone: Alone,
) -> None:
    """operations.md: `last_down_reason` always has the latest. The exchange logged out and
    went away: QuickFIX telling of that end again keeps its reason, but a later attempt
    whose connection is never made says "disconnected", without another `session.down`."""
    alone.logon()
    alone.lifecycle.logout_received(FixMessage("5", {58: "simulator shutting down"}))
    alone.end()
    alone.end()  # the same end, told again
    assert alone.lifecycle.connection().last_down_reason == "simulator shutting down"
    alone.reconnector.phase = SessionState.CONNECTING  # the next attempt, as its round begins it
    alone.end()
    assert alone.lifecycle.connection().last_down_reason == "disconnected"
    assert [d.reason for d in alone.bus.of(SessionDown)] == ["simulator shutting down"]


def test_a_logout_of_the_session_layer_says_why_and_a_logon_it_refuses_later_says_it_again(
    alone: Alone,
) -> None:
    """QuickFIX's own Logout (a MsgSeqNum too low) names the cause, which the exchange's
    answer to it does not replace; a logon refused after the session ended is news only for
    a reason not said yet, and `status` keeps the last."""
    too_low = "MsgSeqNum too low, expecting 4 but received 1"
    alone.logon()
    alone.lifecycle.logout_sent(FixMessage("5", {58: too_low}))
    alone.lifecycle.logout_received(FixMessage("5", {}))  # the exchange answers it
    alone.end()
    alone.end()  # a logon refused for no reason given
    alone.lifecycle.logout_sent(FixMessage("5", {58: too_low}))
    alone.end()  # refused for the same reason
    alone.lifecycle.logout_sent(FixMessage("3", {58: "SendingTime accuracy problem"}))
    alone.end()  # refused for another
    assert [d.reason for d in alone.bus.of(SessionDown)] == [
        f"logged out by the gateway: {too_low}",
        "logged out by the gateway: SendingTime accuracy problem",
    ]
    assert alone.heard == ["up", "down"]
    assert alone.lifecycle.connection().last_down_reason == (
        "logged out by the gateway: SendingTime accuracy problem"
    )


def test_refused_credentials_hold_the_logons_until_the_operator_says_so(alone: Alone) -> None:
    refusal = message("logout_invalid_credentials")
    alone.lifecycle.logon_sent()
    alone.lifecycle.logout_received(refusal)
    alone.lifecycle.logout_received(refusal)  # said once
    alone.end()

    held = "the exchange refused the credentials: Rejected Logon Attempt: invalid credentials"
    assert alone.reconnector.held == held
    assert alone.lifecycle.connection().held == held
    assert sample(alone.metrics, "fixgw_credentials_refused") == 1
    [down] = alone.bus.of(SessionDown)
    assert (down.reason, down.logout_reason) == (
        "Rejected Logon Attempt: invalid credentials",
        LogoutReason.INVALID_CREDENTIALS,
    )

    connection = alone.lifecycle.logon_again("operator")

    assert connection.held is None
    assert alone.reconnector.held is None
    assert sample(alone.metrics, "fixgw_credentials_refused") == 0


def test_logon_again_with_nothing_held_is_refused(alone: Alone) -> None:
    error = refused(lambda: alone.lifecycle.logon_again("operator"))
    assert error.code == ErrorCode.INVALID_REQUEST


def test_new_credentials_go_in_the_next_logon_and_release_a_held_one(alone: Alone) -> None:
    alone.lifecycle.logout_received(message("logout_invalid_credentials"))
    assert not alone.lifecycle.set_credentials(Credentials("API-KEY", "SECRET-KEY"))
    assert alone.reconnector.held is not None  # the same credentials: nothing changes

    assert alone.lifecycle.set_credentials(Credentials("NEW-KEY", "NEW-SECRET"))

    assert (alone.session.logon_fields[553], alone.session.logon_fields[554]) == (
        "NEW-KEY",
        "NEW-SECRET",
    )
    assert alone.reconnector.held is None


def connecting(alone: Alone) -> None:
    pass


def logging_on(alone: Alone) -> None:
    alone.lifecycle.logon_sent()


def ending(alone: Alone) -> None:
    alone.logon()
    alone.session.logged_on = False  # QuickFIX left the session; the engine hears right after


def down(alone: Alone) -> None:
    alone.logon()
    alone.end()


def held(alone: Alone) -> None:
    alone.lifecycle.logon_sent()
    alone.lifecycle.logout_received(message("logout_invalid_credentials"))
    alone.end()
    alone.reconnector.phase = SessionState.HELD  # where the reconnector's round then waits


def stopped(alone: Alone) -> None:
    alone.reconnector.phase = SessionState.STOPPED


def documented_not_connected() -> str:
    """docs/protocol.md's `not_connected` row, which lists what the message says."""
    text = (Path(__file__).resolve().parents[2] / "docs" / "protocol.md").read_text()
    [row] = [line for line in text.splitlines() if line.startswith("| `not_connected` |")]
    return row


@pytest.mark.parametrize(
    ("state", "shown"),
    [
        (connecting, "not logged on yet (connecting)"),
        (logging_on, "not logged on yet (logging_on)"),
        (ending, "not logged on (it is ending)"),
        (down, "not logged on (down)"),
        (held, "not logged on (held)"),
        (stopped, "not logged on (stopped)"),
    ],
    ids=["connecting", "logging on", "up but ending", "down", "held", "stopped"],
)
def test_a_request_while_not_logged_on_is_told_what_is_true_as_the_doc_lists(
    alone: Alone, state: Callable[[Alone], None], shown: str
) -> None:
    state(alone)
    error = refused(alone.lifecycle.require)
    assert (error.code, error.message) == (
        ErrorCode.NOT_CONNECTED,
        f"the exchange session is {shown}; nothing was sent",
    )
    assert shown in documented_not_connected()


def test_nothing_is_refused_while_logged_on(alone: Alone) -> None:
    alone.logon()
    alone.lifecycle.require()


def test_a_silent_exchange_is_dropped_after_two_heartbeat_intervals(alone: Alone) -> None:
    alone.lifecycle.drop_if_silent(10 * HEARTBEAT_S)  # not up: nothing to drop
    alone.logon()
    alone.lifecycle.drop_if_silent(2 * HEARTBEAT_S)
    assert alone.session.disconnects == 0
    alone.lifecycle.drop_if_silent(2 * HEARTBEAT_S + 0.5)
    assert alone.session.disconnects == 1
    alone.end()
    assert alone.bus.of(SessionDown)[0].reason == "exchange silent for 60.5 s"


def test_a_test_request_unanswered_for_two_heartbeat_intervals_logs_the_exchange_out(
    alone: Alone,
) -> None:
    """An exchange that heartbeats but answers no TestRequest is not silent: FIX 4.4 takes
    the session as lost all the same. The Logout says why, as does its end."""
    alone.lifecycle.drop_if_test_request_unanswered(10 * HEARTBEAT_S)  # not up
    alone.logon()
    alone.lifecycle.drop_if_test_request_unanswered(None)
    alone.lifecycle.drop_if_test_request_unanswered(2 * HEARTBEAT_S)  # late, not lost
    assert alone.session.logouts == []
    alone.lifecycle.drop_if_test_request_unanswered(2 * HEARTBEAT_S + 0.5)
    assert alone.session.logouts == ["TestRequest not answered in 60.5 s"]
    alone.end()
    assert alone.bus.of(SessionDown)[0].reason == "TestRequest not answered in 60.5 s"
    assert alone.lifecycle.connection().last_down_reason == "TestRequest not answered in 60.5 s"


def test_a_logon_that_fails_says_why_though_nothing_was_sent_or_received_saying_it(
    alone: Alone,
) -> None:
    """QuickFIX refuses the exchange's Logon answer, saying why only in its event log; the
    exchange rejects our Logon (a Reject, not a Logout): the connection is dropped at once,
    not at QuickFIX's LogonTimeout. Each says why, after a session that ended for another
    reason."""
    alone.logon()
    alone.lifecycle.logout_received(FixMessage("5", {58: "daily restart"}))
    alone.end()
    alone.lifecycle.logon_sent()
    alone.lifecycle.logon_failed(
        "the gateway refused the exchange's Logon answer: SendingTime accuracy problem"
    )
    alone.end()
    alone.lifecycle.logon_sent()
    alone.lifecycle.logon_rejected(FixMessage("3", {372: "A", 58: "HeartBtInt must be 30"}))
    assert alone.session.disconnects == 1
    alone.end()
    assert [d.reason for d in alone.bus.of(SessionDown)] == [
        "daily restart",
        "the gateway refused the exchange's Logon answer: SendingTime accuracy problem",
        "the exchange rejected the Logon: HeartBtInt must be 30",
    ]
    assert alone.lifecycle.connection().last_down_reason == (
        "the exchange rejected the Logon: HeartBtInt must be 30"
    )


def test_logons_failing_by_turns_for_two_reasons_tell_each_reason_once_until_a_logon(
    alone: Alone,
) -> None:
    """protocol.md: a failed logon says so again only for a reason not said yet. Two reasons
    by turns (a clock far off, then a Reject) told a `session.down` at every attempt."""
    refused = "the gateway refused the exchange's Logon answer: SendingTime accuracy problem"
    rejected = FixMessage("3", {372: "A", 58: "not now"})
    for _ in range(3):
        alone.lifecycle.logon_sent()
        alone.lifecycle.logon_failed(refused)
        alone.end()
        alone.lifecycle.logon_sent()
        alone.lifecycle.logon_rejected(rejected)
        alone.end()
    assert [d.reason for d in alone.bus.of(SessionDown)] == [
        refused,
        "the exchange rejected the Logon: not now",
    ]
    assert alone.lifecycle.connection().last_down_reason == (
        "the exchange rejected the Logon: not now"
    )
    alone.logon()
    alone.lifecycle.logout_received(FixMessage("5", {58: "daily restart"}))
    alone.end()
    alone.lifecycle.logon_sent()
    alone.lifecycle.logon_failed(refused)
    alone.end()
    assert [d.reason for d in alone.bus.of(SessionDown)][2:] == ["daily restart", refused]
