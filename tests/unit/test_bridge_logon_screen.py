"""`fixgw.bridge.logon_screen` on its own: which first messages the logon gate hands to
QuickFIX. With QuickFIX and real connections: tests/integration/test_bridge_logon_gate.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fixgw.bridge.logon_screen import LogonScreen
from fixgw.fix.message import format_utc_timestamp


def framed(fields: str) -> bytes:
    body = fields.replace("|", "\x01").encode()
    head = b"8=FIX.4.4\x019=%d\x01" % len(body)
    return head + body + b"10=%03d\x01" % (sum(head + body) % 256)


def now(off: timedelta = timedelta()) -> str:
    return format_utc_timestamp(datetime.now(UTC) + off)


SCREEN = LogonScreen({"OMS": "pass-word"})


def test_a_logon_with_its_password_goes_on_even_with_soh_inside_a_data_field() -> None:
    raw_data = "auth\x01blob"
    logon = framed(
        f"35=A|49=OMS|56=FIXGW|34=1|52={now()}|98=0|108=30|95={len(raw_data)}|96={raw_data}|"
        "554=pass-word|"
    )
    assert SCREEN.refusal(logon, "127.0.0.1") is None


def test_a_session_with_no_password_is_left_to_quickfix() -> None:
    assert SCREEN.refusal(framed(f"35=A|49=OPEN|56=FIXGW|34=1|52={now()}|98=0|"), "p") is None


def test_what_the_gate_refuses_and_why() -> None:
    cases = {
        f"35=A|49=OMS|56=FIXGW|34=1|52={now()}|98=0|108=30|": "wrong_password",
        f"35=A|49=OMS|56=FIXGW|34=1|52={now()}|98=0|108=30|554=guess|": "wrong_password",
        f"35=0|49=OMS|56=FIXGW|34=1|52={now()}|": "not_a_logon",
        f"35=A|0049=OMS|56=FIXGW|34=1|52={now()}|98=0|": "not_a_logon",
        f"35=A|49=OMS|56=FIXGW|34=1|34=2|52={now()}|98=0|": "not_a_logon",
        f"35=A|49=OMS|56=FIXGW|34=1|52={now(timedelta(minutes=3))}|554=pass-word|": (
            "sending_time"
        ),
    }
    for fields, reason in cases.items():
        assert SCREEN.refusal(framed(fields), "127.0.0.1") == reason, fields
