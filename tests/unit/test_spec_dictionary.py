"""The OKCoin dictionary both the gateway and the simulator load: QuickFIX accepts it, and it
says what the dialect reference says."""

from __future__ import annotations

import pytest
import quickfix as fix

from fixgw.config import bundled_dictionary
from fixgw.fixmsg import encode

MSG_TYPES = [
    "0",
    "1",
    "2",
    "3",
    "4",
    "5",
    "A",
    "D",
    "F",
    "H",
    "AF",
    "8",
    "9",
    "V",
    "W",
    "X",
    "Y",
    "j",
    "Z1000",
    "Z1001",
    "E1000",
]


@pytest.fixture(scope="module")
def dd() -> fix.DataDictionary:
    return fix.DataDictionary(str(bundled_dictionary()))


def test_every_dialect_message_and_custom_tag_is_defined(dd: fix.DataDictionary) -> None:
    assert [t for t in MSG_TYPES if not dd.isMsgType(t)] == []
    assert [
        n for n in (8000, 8001, 8101, 8102, 8103, 8104, 8105, 8106, 8500) if not dd.isField(n)
    ] == []


@pytest.mark.parametrize(
    ("msg_type", "tag", "required"),
    [
        ("D", 11, True),
        ("D", 38, True),
        ("D", 60, True),
        ("D", 44, False),
        ("D", 1, False),
        ("F", 41, True),
        ("H", 37, True),
        ("AF", 584, True),
        ("8", 17, True),
        ("8", 31, False),
        ("9", 434, True),
        ("V", 262, True),
        ("Z1000", 8000, True),
        ("Z1000", 1, True),
        ("Z1001", 8001, False),
        ("A", 108, True),
        ("A", 554, False),
        ("5", 8500, False),
    ],
)
def test_required_fields_follow_the_reference(
    dd: fix.DataDictionary, msg_type: str, tag: int, required: bool
) -> None:
    assert dd.isMsgField(msg_type, tag)
    assert dd.isRequiredField(msg_type, tag) is required


def test_okcoins_fill_exec_types_and_market_data_groups(dd: fix.DataDictionary) -> None:
    assert all(dd.isFieldValue(150, v) for v in ("0", "1", "2", "4", "6", "8", "I", "F"))
    assert not dd.isFieldValue(150, "5")
    assert dd.isGroup("W", 268) and dd.isGroup("X", 268) and dd.isGroup("V", 267)


def order(*drop: int) -> str:
    body = [
        (11, "c1"),
        (38, "1"),
        (40, "2"),
        (44, "10"),
        (54, "1"),
        (55, "BTC/USD"),
        (60, "20261125-10:00:00.000"),
    ]
    return encode(
        "FIX.4.4",
        [(35, "D"), (49, "me"), (56, "OKSERVER"), (34, "2"), (52, "20261125-10:00:00.000")],
        [(t, v) for t, v in body if t not in drop],
    )


def test_a_well_formed_order_validates_and_one_without_clordid_does_not(
    dd: fix.DataDictionary,
) -> None:
    dd.validate(fix.Message(order(), dd, True))
    with pytest.raises(fix.RequiredTagMissing, match="11"):
        dd.validate(fix.Message(order(11), dd, True))
