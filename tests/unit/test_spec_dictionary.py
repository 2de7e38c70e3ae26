"""The OKCoin dictionary both the gateway and the simulator load: QuickFIX accepts it, it says
what the dialect reference says, and it validates the messages the dialect sends."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
import quickfix as fix

from fixgw.config import bundled_dictionary
from fixgw.fix.message import SOH, encode

DICTIONARY = bundled_dictionary()
NOW = "20261125-10:00:00.000"

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
CUSTOM_TAGS = [8000, 8001, 8101, 8102, 8103, 8104, 8105, 8106, 8500]

Fields = list[tuple[int, str]]


def raw(msg_type: str, body: Fields) -> str:
    """A FIX 4.4 message string with a correct BodyLength (9) and CheckSum (10)."""
    return encode(
        "FIX.4.4", [(35, msg_type), (49, "me"), (56, "OKSERVER"), (34, "2"), (52, NOW)], body
    )


ORDER: Fields = [
    (11, "c1"),
    (38, "1"),
    (40, "2"),
    (44, "10"),
    (54, "1"),
    (55, "BTC/USD"),
    (60, NOW),
]


def order(*drop: int, add: Sequence[tuple[int, str]] = ()) -> str:
    return raw("D", [(t, v) for t, v in ORDER if t not in drop] + list(add))


@pytest.fixture(scope="module")
def dd() -> fix.DataDictionary:
    return fix.DataDictionary(str(DICTIONARY))


def parse(dd: fix.DataDictionary, text: str) -> fix.Message:
    return fix.Message(text, dd, True)


def test_every_dialect_message_and_custom_tag_is_defined(dd: fix.DataDictionary) -> None:
    assert dd.getVersion() == "FIX.4.4"
    assert [t for t in MSG_TYPES if not dd.isMsgType(t)] == []
    assert [n for n in CUSTOM_TAGS if not dd.isField(n)] == []
    assert not dd.isMsgType("G")


@pytest.mark.parametrize(
    ("msg_type", "tag", "required"),
    [
        ("D", 11, True),
        ("D", 38, True),
        ("D", 40, True),
        ("D", 54, True),
        ("D", 55, True),
        ("D", 60, True),
        ("D", 44, False),
        ("D", 1, False),
        ("F", 11, True),
        ("F", 41, True),
        ("F", 37, False),
        ("H", 37, True),
        ("H", 54, True),
        ("H", 11, False),
        ("AF", 584, True),
        ("AF", 585, True),
        ("AF", 55, False),
        ("8", 37, True),
        ("8", 17, True),
        ("8", 150, True),
        ("8", 14, True),
        ("8", 31, False),
        ("8", 584, False),
        ("9", 434, True),
        ("9", 102, False),
        ("V", 262, True),
        ("V", 264, True),
        ("V", 265, False),
        ("W", 55, True),
        ("Y", 262, True),
        ("j", 372, True),
        ("j", 380, True),
        ("j", 45, False),
        ("Z1000", 8000, True),
        ("Z1000", 1, True),
        ("Z1001", 8000, True),
        ("Z1001", 8001, False),
        ("Z1001", 8106, False),
        ("E1000", 58, False),
        ("E1000", 8000, False),
        ("A", 98, True),
        ("A", 108, True),
        ("A", 141, False),
        ("A", 553, False),
        ("A", 554, False),
        ("5", 8500, False),
    ],
)
def test_required_fields_follow_the_reference(
    dd: fix.DataDictionary, msg_type: str, tag: int, required: bool
) -> None:
    assert dd.isMsgField(msg_type, tag)
    assert dd.isRequiredField(msg_type, tag) is required


def test_enums_keep_only_the_dialects_values(dd: fix.DataDictionary) -> None:
    # OKCoin's 1 (partial fill) and 2 (fill) are FIX 4.2 values kept beside FIX 4.4's F.
    assert all(dd.isFieldValue(150, v) for v in ("0", "1", "2", "4", "6", "8", "I", "F"))
    assert not dd.isFieldValue(150, "5")
    assert all(dd.isFieldValue(39, v) for v in ("0", "1", "2", "4", "6", "8", "A"))
    assert not dd.isFieldValue(40, "3")
    assert dd.isFieldValue(103, "99")
    assert [v for v in "0123" if dd.isFieldValue(269, v)] == ["0", "1", "2"]
    assert [v for v in "01234" if dd.isFieldValue(8500, v)] == ["0", "1", "2", "3"]


def test_market_data_groups(dd: fix.DataDictionary) -> None:
    assert dd.isGroup("V", 267) and dd.isGroup("V", 146)
    assert dd.isGroup("W", 268) and dd.isGroup("X", 268)


def test_a_well_formed_order_validates_and_one_without_clordid_does_not(
    dd: fix.DataDictionary,
) -> None:
    dd.validate(parse(dd, order()))
    # Parsing does not check the dictionary's required tags; validate() does.
    missing = parse(dd, order(11))
    with pytest.raises(fix.RequiredTagMissing, match="11") as error:
        dd.validate(missing)
    assert error.value.field == 11


def test_unknown_and_misplaced_tags_and_bad_values_are_rejected(dd: fix.DataDictionary) -> None:
    with pytest.raises(fix.InvalidTagNumber, match="9999"):
        dd.validate(parse(dd, order(add=[(9999, "x")])))
    with pytest.raises(fix.TagNotDefinedForMessage, match="58"):
        dd.validate(parse(dd, order(add=[(58, "x")])))
    with pytest.raises(fix.IncorrectTagValue, match="54"):
        dd.validate(parse(dd, order(54, add=[(54, "3")])))


def test_a_bad_checksum_fails_at_parse(dd: fix.DataDictionary) -> None:
    text = order()
    with pytest.raises(fix.InvalidMessage):
        parse(dd, text[: -len("000" + SOH)] + "000" + SOH)


@pytest.mark.parametrize(
    ("msg_type", "body"),
    [
        ("A", [(98, "0"), (108, "30")]),
        ("A", [(98, "0"), (108, "30"), (141, "Y"), (553, "key"), (554, "secret")]),
        ("5", [(58, "bye"), (8500, "1")]),
        ("Z1000", [(8000, "r1"), (1, "key,secret")]),
        ("Z1001", [(8000, "r1"), (1, "key"), (15, "CNY"), (8001, "1.5/20"), (8103, "20")]),
        ("E1000", [(58, "cannot serve"), (8000, "r1")]),
        ("F", [(11, "c2"), (41, "c1"), (37, "o1"), (54, "1"), (55, "BTC/USD"), (60, NOW)]),
        (
            "8",
            [
                (37, "o1"),
                (11, "c1"),
                (17, "e1"),
                (150, "1"),
                (39, "1"),
                (54, "1"),
                (55, "BTC/USD"),
                (14, "0.5"),
                (151, "0.5"),
                (6, "10"),
                (31, "10"),
                (32, "0.5"),
            ],
        ),
        (
            "V",
            [
                (262, "m1"),
                (263, "1"),
                (264, "0"),
                (265, "1"),
                (267, "2"),
                (269, "0"),
                (269, "1"),
                (146, "1"),
                (55, "BTC/USD"),
            ],
        ),
        (
            "X",
            [
                (262, "m1"),
                (268, "2"),
                (279, "0"),
                (269, "0"),
                (270, "10"),
                (271, "1"),
                (279, "2"),
                (269, "1"),
                (270, "11"),
                (271, "0"),
            ],
        ),
    ],
)
def test_dialect_messages_validate(dd: fix.DataDictionary, msg_type: str, body: Fields) -> None:
    dd.validate(parse(dd, raw(msg_type, body)))


def test_account_info_request_without_account_is_rejected(dd: fix.DataDictionary) -> None:
    with pytest.raises(fix.RequiredTagMissing) as missing:
        dd.validate(parse(dd, raw("Z1000", [(8000, "r1")])))
    assert missing.value.field == 1
