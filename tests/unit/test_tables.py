"""Every FIX code <-> enum mapping, walked both ways; unknown codes raise."""

from __future__ import annotations

from typing import Any
from xml.etree import ElementTree

import pytest

from fixgw.api.protocol import ErrorCode
from fixgw.bridge import tables as standard
from fixgw.codetable import CodeTable
from fixgw.config import standard_fix44_dictionary
from fixgw.domain import (
    GATEWAY_REJECT_REASONS,
    LEVEL_ACTIONS_NOT_SENT,
    AnyEvent,
    ExecKind,
    OrderEvent,
    RestatementReason,
)
from fixgw.errors import UnknownCode
from fixgw.fix import codes
from fixgw.fix.codes import ALL_TABLES as FIX44_TABLES
from fixgw.venues.okcoin.enums import ALL_TABLES as OKCOIN_TABLES
from fixgw.venues.okcoin.enums import EXEC_KINDS_NOT_SENT, EXEC_TYPE

ALL_TABLES = (*OKCOIN_TABLES, *FIX44_TABLES)


@pytest.mark.parametrize("table", ALL_TABLES, ids=lambda t: t.name)
def test_every_code_decodes_and_encodes_back(table: CodeTable[Any]) -> None:
    for code, member in table.forward.items():
        assert table.decode(code) is member
        assert table.decode(table.encode(member)) is member


@pytest.mark.parametrize("table", ALL_TABLES, ids=lambda t: t.name)
def test_every_enum_member_has_a_code(table: CodeTable[Any]) -> None:
    members = set(table.forward.values())
    enum_type = type(next(iter(members)))
    expected = set(enum_type) - GATEWAY_REJECT_REASONS - LEVEL_ACTIONS_NOT_SENT
    if table is EXEC_TYPE:
        expected -= EXEC_KINDS_NOT_SENT
    if table is codes.MD_REQ_REJ_REASON:
        expected -= codes.MD_REJECT_REASONS_NOT_SENT
    assert members == expected, f"{table.name} leaves {expected - members} unmapped"


@pytest.mark.parametrize("table", ALL_TABLES, ids=lambda t: t.name)
def test_unknown_code_raises(table: CodeTable[Any]) -> None:
    with pytest.raises(UnknownCode, match=table.name):
        table.decode("no-such-code")


def test_exec_type_trade_reads_as_trade_and_fills_are_sent_as_okcoin_does() -> None:
    assert EXEC_TYPE.decode("F") is ExecKind.TRADE
    assert EXEC_TYPE.encode(ExecKind.FILL) == "2"
    assert EXEC_TYPE.encode(ExecKind.PARTIAL_FILL) == "1"


def test_every_order_event_has_a_standard_exec_type() -> None:
    order_events = {t for t in AnyEvent.__args__ if issubclass(t, OrderEvent)}
    assert order_events == set(standard.EXEC_TYPE_OF_EVENT)


def _standard_values(tag: int) -> set[str]:
    """The values FIX44.xml, as QuickFIX installs it, allows for `tag`."""
    root = ElementTree.parse(standard_fix44_dictionary()).getroot()  # noqa: S314 (QuickFIX's file)
    (field,) = [f for f in root.iter("field") if f.get("number") == str(tag)]
    return {value.get("enum", "") for value in field.iter("value")}


def test_the_bridges_reject_reasons_are_standard_fix44_values() -> None:
    assert set(standard.ORD_REJ_REASON_OF_ERROR.values()) | {
        standard.OTHER,
        standard.UNSUPPORTED_ORDER,
    } <= _standard_values(103)
    assert {standard.BUSINESS_REJECT_OTHER, standard.BUSINESS_REJECT_UNSUPPORTED} <= (
        _standard_values(380)
    )
    assert set(standard.EXEC_TYPE_OF_EVENT.values()) <= _standard_values(150)
    assert set(standard.ORD_REJ_REASON_OF_ERROR) <= set(ErrorCode)


def test_every_standard_md_entry_type_is_taken_or_passed_over_never_both() -> None:
    taken = set(codes.MD_ENTRY_TYPE.forward)
    passed_over = set(codes.MD_ENTRY_TYPES_PASSED_OVER)
    assert not taken & passed_over
    assert _standard_values(269) <= taken | passed_over


def test_restatement_reasons_are_fix44s_every_one() -> None:
    assert set(codes.EXEC_RESTATEMENT_REASON.forward) == _standard_values(378)
    assert codes.EXEC_RESTATEMENT_REASON.decode("3") is RestatementReason.REPRICING
    assert codes.EXEC_RESTATEMENT_REASON.encode(RestatementReason.CANCEL_ON_TRADING_HALT) == "6"


def test_a_restatement_is_read_from_plain_fix44_and_not_from_okcoin() -> None:
    assert codes.EXEC_TYPE.decode("D") is ExecKind.RESTATED
    assert codes.EXEC_TYPE.encode(ExecKind.RESTATED) == "D"
    with pytest.raises(UnknownCode):
        EXEC_TYPE.decode("D")
