"""QuickFIX glue: header fields read off the raw string agree with QuickFIX's own parse;
messages go in as QuickFIX would build them and come out as text."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import quickfix as fix

from fixgw.config import bundled_dictionary
from fixgw.fix import initiator
from fixgw.fix.initiator import (
    HeldForGap,
    Inbound,
    InitiatorSettings,
    RawInbound,
    SentLog,
    _Application,
    logon_failure,
    skipped_by,
)
from fixgw.fix.message import SOH, FixMessage
from fixgw.fix.qf import InlineInbox, header_of, latin1_where_not_utf8, msg_seq_num, to_quickfix
from fixgw.fix.tags import Tag
from fixgw.ops.prometheus import Metrics

QuickFixMessage = fix.Message

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "okcoin"


@pytest.mark.parametrize("path", sorted(FIXTURES.glob("*.fix")), ids=lambda p: p.stem)
def test_header_of_matches_quickfix(path: Path) -> None:
    raw = path.read_text().strip().replace("|", SOH)
    message = fix.Message(raw, False)
    header = message.getHeader()
    assert header_of(message.toString()) == (header.getField(35), int(header.getField(34)))


def test_msg_seq_num_is_the_header_s_or_none() -> None:
    raw = next(iter(sorted(FIXTURES.glob("*.fix")))).read_text().strip().replace("|", SOH)
    message = fix.Message(raw, False)
    assert msg_seq_num(message) == message.getHeader().getField(34)
    assert msg_seq_num(fix.Message()) is None


@pytest.mark.parametrize(
    "fields",
    [
        {11: "gw-1", 55: "LTC/USD", 54: "1", 38: "0.5", 40: "2", 44: "101.25", 1: "k,s"},
        {Tag.CL_ORD_ID: "gw-2", Tag.SYMBOL: "LTC/USD", Tag.TEXT: "a=b"},
    ],
)
def test_a_message_handed_over_as_a_string_is_the_message_built_field_by_field(
    fields: dict[int, str],
) -> None:
    msg = FixMessage(msg_type="D", fields=fields)
    by_field = fix.Message()
    by_field.getHeader().setField(fix.BeginString("FIX.4.4"))
    by_field.getHeader().setField(fix.MsgType("D"))
    for tag, value in msg.fields.items():
        by_field.setField(tag, value)
    assert to_quickfix(msg).toString() == by_field.toString()


def test_a_field_with_an_empty_value_is_set_field_by_field_and_kept() -> None:
    raw = to_quickfix(FixMessage("D", {11: "gw-3", 58: "", 55: "LTC/USD"})).toString()
    assert f"{SOH}11=gw-3{SOH}" in raw and f"{SOH}58={SOH}" in raw


def test_a_message_with_groups_keeps_them() -> None:
    msg = FixMessage(
        msg_type="V",
        fields={262: "md-1", 263: "1", 264: "0"},
        groups={267: ({269: "0"}, {269: "1"}), 146: ({55: "LTC/USD"},)},
    )
    raw = to_quickfix(msg).toString()
    assert f"{SOH}267=2{SOH}269=0{SOH}269=1{SOH}" in raw
    assert f"{SOH}146=1{SOH}55=LTC/USD{SOH}" in raw


@pytest.mark.parametrize("text", ["no hub for CLIENTX", ""], ids=["as-a-string", "by-field"])
def test_deliver_to_goes_in_the_header_however_the_message_is_built(text: str) -> None:
    """A reject routed back to a third party (FIX 4.4 third-party routing)."""
    fields = {Tag.DELIVER_TO_COMP_ID: "CLIENTX", Tag.REF_MSG_TYPE: "D", Tag.TEXT: text}
    message = to_quickfix(FixMessage("j", fields))
    assert message.getHeader().getField(Tag.DELIVER_TO_COMP_ID) == "CLIENTX"
    assert not message.isSetField(Tag.DELIVER_TO_COMP_ID)  # not in the body


def test_a_value_holding_soh_is_refused_not_sent_as_two_fields() -> None:
    msg = FixMessage(msg_type="D", fields={11: f"x{SOH}54=2", 55: "LTC/USD"})
    with pytest.raises(ValueError, match="SOH"):
        to_quickfix(msg)


def as_the_binding_hands_it_over(sent: bytes) -> str:
    """QuickFIX's SWIG binding makes a Python str of a message as UTF-8 with
    `surrogateescape`: a byte that is not UTF-8 comes out as a lone surrogate."""
    return sent.decode("utf-8", "surrogateescape")


@pytest.mark.parametrize(
    ("sent", "read"),
    [
        ("58=marché fermé".encode("latin-1"), "58=marché fermé"),
        ("58=café, ".encode() + "refusé".encode("latin-1"), "58=café, refusé"),
        (bytes(range(0x80, 0x100)), bytes(range(0x80, 0x100)).decode("latin-1")),
    ],
    ids=["latin1", "utf8-and-latin1", "every-byte-not-utf8"],
)
def test_bytes_that_are_not_utf8_read_as_their_latin1_characters(sent: bytes, read: str) -> None:
    text = latin1_where_not_utf8(as_the_binding_hands_it_over(sent))
    assert text == read
    assert text.encode()  # no surrogate left for a JSON encoder or a log line to refuse


@pytest.mark.parametrize("sent", ["58=market closed", "58=marché fermé", "58=市場休場"])
def test_ascii_and_utf8_are_left_as_they_are(sent: str) -> None:
    raw = as_the_binding_hands_it_over(sent.encode())
    assert latin1_where_not_utf8(raw) is raw


def test_a_reject_finds_the_request_it_names_by_sequence_number_until_it_is_evicted() -> None:
    sent = SentLog(size=2)
    for seq, cl_ord_id in ((7, "gw-7"), (8, "gw-8"), (9, "gw-9")):
        raw = to_quickfix(FixMessage("D", {11: cl_ord_id, 55: "LTC/USD"})).toString()
        sent.record(seq, "D", raw)
    assert "\x0111=gw-9\x01" in (sent.get(9) or "")
    assert "\x0111=gw-8\x01" in (sent.get(8) or "")
    assert sent.get(7) is None


def test_a_message_recorded_as_the_gateway_handed_it_over_reads_back_as_sent() -> None:
    """Sent by the gateway (not resent by QuickFIX), a message is kept as its FixMessage and
    written out only when a Reject asks: the same fields and group entries."""
    sent = SentLog()
    order = FixMessage("D", {11: "gw-9", 55: "LTC/USD", 54: "1"})
    request = FixMessage("V", {262: "md-1", 263: "1"}, {146: ({55: "LTC/USD"}, {55: "BTC/USD"})})
    sent.record(9, "D", order)
    sent.record(10, "V", request)
    read = QuickFixMessage(sent.get(9) or "", False)
    assert msg_seq_num(read) == "9" and read.getHeader().getField(35) == "D"
    assert [read.getField(tag) for tag in (11, 55, 54)] == ["gw-9", "LTC/USD", "1"]
    assert SOH + "146=2" + SOH + "55=LTC/USD" + SOH + "55=BTC/USD" + SOH in (sent.get(10) or "")
    written, again = sent.get(9) or "", read.toString()  # QuickFIX orders the body by tag
    assert written[-7:] == again[-7:] and written[:15] == again[:15]  # CheckSum, BodyLength


def _logon(seq: int) -> fix.Message:
    logon = fix.Message()
    logon.getHeader().setField(fix.MsgType("A"))
    logon.getHeader().setField(fix.MsgSeqNum(seq))
    return logon


def _settings(store_dir: Path) -> InitiatorSettings:
    return InitiatorSettings(
        host="127.0.0.1",
        port=1,
        sender_comp_id="US",
        target_comp_id="THEM",
        heartbeat_s=30,
        store_dir=store_dir,
        dictionary=bundled_dictionary(),
        logout_timeout_s=1,
        logon_fields={},
    )


SESSION = fix.SessionID("FIX.4.4", "US", "THEM")


@pytest.mark.parametrize(("logon_seq", "kept"), [(1, False), (42, True)])
def test_a_logon_that_starts_the_numbering_again_empties_the_sent_log(
    tmp_path: Path, logon_seq: int, kept: bool
) -> None:
    """After a reset, RefSeqNum 9 of a Reject names a new message, not the order sent as 9."""
    sent = SentLog()
    sent.record(9, "D", to_quickfix(FixMessage("D", {11: "gw-9", 55: "LTC/USD"})).toString())
    loop = asyncio.new_event_loop()
    try:
        app = _Application(
            _settings(tmp_path),
            Metrics(),
            InlineInbox(loop, print),
            print,
            sent,
            RawInbound(),
            lambda: 1,
        )
        app.toAdmin(_logon(logon_seq), SESSION)
    finally:
        loop.close()
    assert (sent.get(9) is not None) is kept


@pytest.mark.parametrize(("logout_seq", "expected_again"), [(3, []), (5, [3])])
def test_a_logout_out_of_sequence_leaves_the_first_missing_message_expected_next(
    tmp_path: Path, logout_seq: int, expected_again: list[int]
) -> None:
    """QuickFIX, expecting 3, counts a Logout as received whatever its number: one numbered
    5 (3 and 4 missing) puts 3 back as expected once the session is over."""
    asked: list[int] = []
    loop = asyncio.new_event_loop()
    try:
        app = _Application(
            _settings(tmp_path),
            Metrics(),
            InlineInbox(loop, lambda _: None),
            print,
            SentLog(),
            RawInbound(),
            lambda: 3,
            set_expected_target=asked.append,
        )
        logout = fix.Message()
        logout.getHeader().setField(fix.MsgType("5"))
        logout.getHeader().setField(fix.MsgSeqNum(logout_seq))
        app.fromAdmin(logout, SESSION)
        assert asked == []
        app.onLogout(SESSION)
        app.onLogout(SESSION)
    finally:
        loop.close()
    assert asked == expected_again


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


def _report(text: bytes) -> bytes:
    return (
        b"8=FIX.4.4\x019=0\x0135=8\x0149=THEM\x0156=US\x0134=5\x0152=20261206-10:00:00\x01"
        b"37=V-1\x0111=gw-1\x0117=R-1\x01150=8\x0139=8\x0158=" + text + b"\x0110=000\x01"
    )


def _received(
    tmp_path: Path, loop: asyncio.AbstractEventLoop, sent: bytes
) -> tuple[list[Inbound], list[str]]:
    """What `fromApp` hands the gateway of `sent`, the last message QuickFIX read (MsgSeqNum
    5, the one it expects), and the callbacks that failed."""
    handed: list[Inbound] = []
    failed: list[str] = []
    raw_inbound = RawInbound()
    app = _Application(
        _settings(tmp_path),
        Metrics(),
        InlineInbox(loop, handed.append),
        lambda where, _: failed.append(where),
        SentLog(),
        raw_inbound,
        lambda: 5,
    )
    raw_inbound.onIncoming(as_the_binding_hands_it_over(sent))
    app.fromApp(fix.Message(), SESSION)
    return handed, failed


def test_a_report_whose_text_is_latin1_is_handed_over_with_that_text(
    tmp_path: Path, loop: asyncio.AbstractEventLoop
) -> None:
    handed, failed = _received(tmp_path, loop, _report("refusé: marché fermé".encode("latin-1")))
    assert [item.raw for item in handed] == [_report("refusé: marché fermé".encode()).decode()]
    assert failed == []


class _UnwritableLog:
    """A logger whose output has gone (the stream it writes to closed under it)."""

    def debug(self, *_: Any, **__: Any) -> None:
        raise BrokenPipeError("the log's stream is closed")


def test_a_debug_log_line_that_cannot_be_written_does_not_hold_up_the_report(
    tmp_path: Path, loop: asyncio.AbstractEventLoop, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(initiator, "enabled_for", lambda level: True)
    monkeypatch.setattr(initiator, "log", _UnwritableLog())
    handed, failed = _received(tmp_path, loop, _report(b"market closed"))
    assert [item.raw for item in handed] == [_report(b"market closed").decode()]
    assert failed == ["fix in (debug log)"]


def test_an_item_put_while_one_is_handled_waits_for_it_and_order_is_kept(
    loop: asyncio.AbstractEventLoop,
) -> None:
    """QuickFIX may call back while the gateway handles a message (it sent one in turn)."""
    seen: list[str] = []
    inbox: InlineInbox[str] = InlineInbox(loop, lambda item: handle(item))

    def handle(item: str) -> None:
        seen.append(f"start {item}")
        if item == "report":
            inbox.put("second report")
            inbox.put("third report")
        seen.append(f"end {item}")

    inbox.put("report")
    assert seen == [
        "start report",
        "end report",
        "start second report",
        "end second report",
        "start third report",
        "end third report",
    ]


def test_a_change_of_state_waits_for_the_loop_and_reports_after_it_wait_behind_it() -> None:
    """A Reject QuickFIX sends is reported from inside its send: the gateway must not send
    from there (the two messages would share a MsgSeqNum), so it learns of it afterwards."""

    async def scenario() -> tuple[list[str], list[str]]:
        seen: list[str] = []
        inbox: InlineInbox[str] = InlineInbox(asyncio.get_running_loop(), seen.append)
        inbox.put_later("reject sent")
        inbox.put("report")
        during = list(seen)
        await asyncio.sleep(0)
        inbox.put("next report")
        return during, seen

    during, after = asyncio.run(scenario())
    assert during == []
    assert after == ["reject sent", "report", "next report"]


def test_an_item_whose_handler_fails_does_not_hold_up_the_ones_behind_it() -> None:
    async def scenario() -> tuple[list[str], list[str]]:
        seen: list[str] = []

        def handle(item: str) -> None:
            if item == "bad":
                inbox.put("behind it")  # QuickFIX called back before the handler failed
                raise ValueError(item)
            seen.append(item)

        inbox: InlineInbox[str] = InlineInbox(asyncio.get_running_loop(), handle)
        with pytest.raises(ValueError):
            inbox.put("bad")
        inbox.put("next")  # waits behind the one left over
        during = list(seen)
        await asyncio.sleep(0)
        return during, seen

    during, after = asyncio.run(scenario())
    assert during == []
    assert after == ["behind it", "next"]


@pytest.mark.parametrize(
    ("fields", "expected", "skipped"),
    [
        ("34=3\x0143=Y\x01123=Y\x0136=5", 3, range(3, 5)),  # a GapFill over 3 and 4
        ("34=3\x0143=Y\x01123=Y\x0136=5", None, range(3, 5)),
        ("34=3\x01123=Y\x0136=3", 3, range(0)),  # skips nothing
        ("34=1\x01123=N\x0136=9", 7, range(7, 9)),  # a Reset: from the one expected
        ("34=1\x0136=9", 7, range(7, 9)),
        ("34=1\x0136=5", 7, range(0)),  # backwards: QuickFIX refuses it
        ("34=1\x0136=9", None, range(0)),
    ],
)
def test_a_sequence_reset_names_the_messages_it_skips(
    fields: str, expected: int | None, skipped: range
) -> None:
    raw = f"8=FIX.4.4\x019=40\x0135=4\x01{fields}\x0110=000\x01"
    assert skipped_by(raw, expected) == skipped


def test_what_quickfix_queues_for_a_gap_is_kept_raw_and_given_back_in_order_once() -> None:
    """QuickFIX says it queues a message (a sequence number too high) right after receiving
    it; an admin message it queues is not the gateway's to read."""
    raw_inbound = RawInbound()
    for seq, msg_type in ((6, "8"), (4, "8"), (5, "0"), (7, "W"), (8, "8")):
        raw_inbound.onIncoming(f"8=FIX.4.4\x019=9\x0135={msg_type}\x0134={seq}\x0110=000\x01")
        raw_inbound.onEvent(f"MsgSeqNum too high, expecting 3 but received {seq}")
    raw_inbound.onEvent("MsgSeqNum too high, expecting 3 but received 9")  # not the last one
    held = raw_inbound.held
    held.delivered(8)  # QuickFIX handed it over itself
    assert [header_of(m.raw)[1] for m in held.skipped_past(7)] == [4, 6]
    assert [header_of(m.raw)[1] for m in held.take_all()] == [7]
    assert len(held) == 0


def test_messages_held_for_a_gap_are_bounded() -> None:
    held = HeldForGap(size=2)
    for seq in (3, 4, 5):
        held.hold(seq, f"m{seq}")
    held.hold(4, "m4 again")
    assert [m.raw for m in held.take_all()] == ["m3", "m4 again"]


LOGON_ANSWER = (
    "8=FIX.4.4\x019=0\x0135=A\x0134=1\x0149=OKCOIN\x0156=US\x0198=0\x01108=30\x0110=000\x01"
)


@pytest.mark.parametrize(
    ("event", "why"),
    [
        (
            "Message 1 Rejected: SendingTime accuracy problem",
            "the gateway refused the exchange's Logon answer: SendingTime accuracy problem",
        ),
        (
            "Message 1 Rejected: CompID problem",
            "the gateway refused the exchange's Logon answer: CompID problem "
            "(the answer's SenderCompID OKCOIN, TargetCompID US)",
        ),
        (
            "Timed out waiting for logon response",
            "no answer to the Logon: Timed out waiting for logon response",
        ),
        ("Tried to send a reject while not logged on", None),
        ("Disconnecting", None),
    ],
)
def test_quickfix_s_event_log_says_why_a_logon_failed(event: str, why: str | None) -> None:
    assert logon_failure(event, LOGON_ANSWER) == why
