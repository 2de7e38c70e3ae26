"""The initiator's inbound dictionary: standard FIX 4.4 around the venue's dialect."""

from __future__ import annotations

from pathlib import Path
from xml.etree import ElementTree

import pytest
import quickfix as fix

from fixgw.config import bundled_dictionary, standard_fix44_dictionary
from fixgw.fix.dictionary import write_lenient_dictionary
from fixgw.fix.message import encode
from fixgw.venues import groups_read
from tests.dictionaries import (
    VENUE_ENTRY_TAG,
    broker_dictionary,
    respelt_dictionary,
    with_own_fields,
)

HEADER = [(49, "OKSERVER"), (56, "US"), (34, "2"), (52, "20261205-10:00:00.000")]
FILL = [
    *((37, "V1"), (11, "c1"), (17, "F1"), (150, "F"), (39, "2"), (55, "BTC/USD"), (54, "1")),
    *((38, "0.5"), (40, "2"), (44, "30000"), (14, "0.5"), (151, "0"), (6, "30000")),
    *((32, "0.5"), (31, "30000")),
]


@pytest.fixture(scope="module")
def path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dictionary") / "inbound.xml"
    return write_lenient_dictionary(bundled_dictionary(), standard_fix44_dictionary(), out)


@pytest.fixture(scope="module")
def dictionary(path: Path) -> fix.DataDictionary:
    return quickfix_reading(path)


def quickfix_reading(path: Path) -> fix.DataDictionary:
    """The dictionary as the initiator's QuickFIX validates with it (`qf.VALIDATION`)."""
    dd = fix.DataDictionary(str(path))
    dd.checkUserDefinedFields(False)
    dd.allowUnknownMsgFields(True)
    dd.checkFieldsOutOfOrder(False)
    return dd


def validate(dd: fix.DataDictionary, msg_type: str, body: list[tuple[int, str]]) -> str:
    """The message as QuickFIX parsed it, once validated (raises what QuickFIX raises)."""
    message = fix.Message(encode("FIX.4.4", [(35, msg_type), *HEADER], body), dd, True)
    dd.validate(message)
    return str(message.toString())


@pytest.mark.parametrize(
    ("case", "msg_type", "body"),
    [
        (
            "a fill with a Parties group",
            "8",
            [*FILL, (453, "2"), (448, "A"), (447, "D"), (452, "1"), (448, "B"), (447, "D")],
        ),
        ("an ExecType the dialect lacks (restated)", "8", [*FILL[:3], (150, "D"), *FILL[4:]]),
        ("a report without the fields FIX calls required", "8", [(11, "c1"), (150, "F")]),
        (
            "OKCoin's trade entries, with Side",
            "W",
            [
                *((262, "m"), (55, "BTC/USD"), (268, "2")),
                *((269, "2"), (270, "1"), (271, "2"), (54, "1")),
                *((269, "0"), (270, "3"), (271, "4")),
            ],
        ),
        ("the dialect's own message", "Z1001", [(8000, "a1"), (15, "USD"), (8001, "1/2")]),
        ("a Logout with a LogoutReason OKCoin never listed", "5", [(58, "bye"), (8500, "7")]),
    ],
)
def test_what_venues_add_passes(
    dictionary: fix.DataDictionary, case: str, msg_type: str, body: list[tuple[int, str]]
) -> None:
    parsed = validate(dictionary, msg_type, body)
    assert f"\x0135={msg_type}\x01" in parsed, case


def test_groups_keep_their_entries(dictionary: fix.DataDictionary) -> None:
    body = [(262, "m"), (268, "2"), (279, "0"), (269, "0"), (55, "BTC/USD"), (270, "1")]
    body += [(271, "2"), (279, "2"), (269, "1"), (55, "BTC/USD"), (270, "3")]
    parsed = validate(dictionary, "X", body)
    assert "268=2\x01279=0\x01269=0\x0155=BTC/USD\x01270=1\x01271=2\x01279=2\x01" in parsed


@pytest.mark.parametrize(
    ("case", "body", "error"),
    [
        ("a group nobody defines", [*FILL, (9000, "2"), (9001, "a"), (9001, "b")], "RepeatedTag"),
        (
            "a quantity that is no number",
            [*FILL[:9], (14, "1e"), *FILL[10:]],
            "IncorrectDataFormat",
        ),
    ],
)
def test_what_quickfix_still_refuses(
    dictionary: fix.DataDictionary, case: str, body: list[tuple[int, str]], error: str
) -> None:
    """fixgw reads these from the raw text all the same (`session.RawInbound`)."""
    with pytest.raises(Exception) as refused:
        validate(dictionary, "8", body)
    assert type(refused.value).__name__ == error, case


def test_session_messages_keep_what_fix_requires(path: Path) -> None:
    root = ElementTree.parse(path).getroot()  # noqa: S314 (ours)
    (logon,) = [m for m in root.iter("message") if m.get("msgtype") == "A"]
    required = {f.get("name") for f in logon if f.get("required") == "Y"}
    assert {"EncryptMethod", "HeartBtInt"} <= required
    applications = [m for m in root.iter("message") if m.get("msgcat") == "app"]
    assert not [m for m in applications for f in m.iter() if f.get("required") == "Y"]
    with_values = {f.get("name") for f in root.iter("field") if f.find("value") is not None}
    assert with_values == {"MsgType"}
    msg_types = {v.get("enum") for f in root.iter("field") if f.get("name") == "MsgType" for v in f}
    assert {"Z1000", "Z1001", "E1000", "8", "W"} <= msg_types


TRADES_WITH_SIDE = [
    *((262, "m"), (268, "2")),
    *((279, "0"), (269, "2"), (55, "BTC/USD"), (270, "30000"), (271, "0.1"), (54, "1")),
    *((279, "0"), (269, "2"), (55, "BTC/USD"), (270, "30001"), (271, "0.2"), (54, "2")),
]


def test_a_plain_fix44_venues_trades_with_side_pass_as_the_gateway_reads_them(
    tmp_path: Path,
) -> None:
    """FIX 4.4's MDIncGrp lists no Side; the gateway reads it there (the aggressor), so
    QuickFIX must not refuse an update whose trades carry it (`MEMBERS_BEYOND_FIX44`)."""
    standard = standard_fix44_dictionary()
    path = write_lenient_dictionary(standard, standard, tmp_path / "inbound.xml")
    parsed = validate(quickfix_reading(path), "X", TRADES_WITH_SIDE)
    assert "54=1\x01279=0\x01269=2\x0155=BTC/USD\x01270=30001\x01271=0.2\x0154=2\x01" in parsed


def test_a_broker_dictionarys_own_fields_in_its_components_groups_pass_and_are_read(
    tmp_path: Path,
) -> None:
    """A broker's FIX44.xml (`session.dictionary`) lists its own field in MDFullGrp's
    entries, a component, as FIX 4.4 keeps its groups: QuickFIX takes a snapshot whose
    entries carry it, and the gateway reads it as a member of the entry."""
    broker = broker_dictionary(tmp_path / "broker-FIX44.xml")
    path = write_lenient_dictionary(broker, standard_fix44_dictionary(), tmp_path / "in.xml")
    body = [
        *((262, "m"), (55, "BTC/USD"), (268, "2")),
        *((269, "0"), (270, "29990"), (271, "1.5"), (VENUE_ENTRY_TAG, "v1")),
        *((269, "1"), (270, "30010"), (271, "1.2"), (VENUE_ENTRY_TAG, "v2")),
    ]
    validate(quickfix_reading(path), "W", body)
    for msg_type in ("W", "X"):
        (entries,) = [g for g in groups_read(broker)[msg_type] if g.count_tag == 268]
        assert VENUE_ENTRY_TAG in entries.members, msg_type


@pytest.mark.parametrize("dialect", ["FIX 4.4 with IOIid", "FIX 4.2"])
def test_a_dictionary_naming_a_field_otherwise_than_fix44_is_read_by_its_tags(
    tmp_path: Path, dialect: str
) -> None:
    """Members are merged and read by name: a broker's FIX44.xml spelling tag 23 `IOIid`
    (FIX 4.2's name; FIX 4.4's is `IOIID`), or FIX42.xml named by mistake, passed
    check-config and stopped `run` with `KeyError: 'IOIid'`."""
    standard = standard_fix44_dictionary()
    named = (
        respelt_dictionary(tmp_path / "broker-FIX44.xml", 23, "IOIid")
        if dialect == "FIX 4.4 with IOIid"
        else standard.with_name("FIX42.xml")
    )
    (entries,) = [g for g in groups_read(named)["W"] if g.count_tag == 268]
    assert entries.delimiter == 269
    path = write_lenient_dictionary(named, standard, tmp_path / "inbound.xml")
    validate(quickfix_reading(path), "8", [*FILL, (23, "ioi-1")])


@pytest.mark.parametrize(
    ("dialect", "fields", "msg_type"),
    [
        ("FIX 4.2", {9000: "Username", 9001: "Password"}, "A"),
        ("OKCoin", {9999: "Commission"}, "8"),
    ],
)
def test_a_broker_s_own_field_named_as_a_fix44_field_is_kept_apart_and_read_by_tag(
    tmp_path: Path, dialect: str, fields: dict[int, str], msg_type: str
) -> None:
    """A FIX 4.2 broker's own `Username` and `Password` (9000, 9001; FIX 4.4's are 553 and
    554), or a `Commission` at 9999: the name was in the inbound dictionary twice, and `run`
    stopped with "Field named Username defined multiple times" after check-config passed."""
    standard = standard_fix44_dictionary()
    base = standard.with_name("FIX42.xml") if dialect == "FIX 4.2" else bundled_dictionary()
    broker = with_own_fields(base, tmp_path / "broker.xml", fields, msg_type)
    path = write_lenient_dictionary(broker, standard, tmp_path / "inbound.xml")
    dd = quickfix_reading(path)
    for number, name in fields.items():
        assert dd.getFieldName(number, "")[0] == f"{name}_{number}"
        assert dd.getFieldTag(name, 0)[0] == {"Username": 553, "Password": 554}.get(name, 12)
    own = [(number, "own") for number in fields]
    validate(dd, "8", [*FILL, (12, "0.1"), *own])
