"""The bridge's field table (`fixgw.bridge.fields`), walked field by field and value by value,
and checked against the stock FIX44.xml it stands for; and `translate` applying it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from xml.etree import ElementTree

import pytest

from fixgw.bridge import translate
from fixgw.bridge.fields import (
    HEADER_AND_TRAILER,
    TABLES,
    Act,
    Field,
    MessageFields,
    OtherField,
    QuoteCurrency,
    Rule,
    carried_time_in_force,
    documented_venues,
    markdown,
    screen,
    tables,
)
from fixgw.config import standard_fix44_dictionary
from fixgw.domain import TimeInForce
from fixgw.fix.codes import TIME_IN_FORCE
from fixgw.fix.message import encode, parse
from fixgw.venues.fix44 import venue as fix44_venue
from fixgw.venues.okcoin import venue as okcoin_venue

ROOT = Path(__file__).resolve().parents[2]
NOW = "20261125-10:00:00.000"

BASE: dict[str, list[tuple[int, str]]] = {
    "D": [(11, "c"), (55, "BTC/USD"), (54, "1"), (38, "1"), (40, "2"), (44, "1"), (60, NOW)],
    "F": [(41, "o"), (11, "c"), (55, "BTC/USD"), (54, "1"), (60, NOW)],
    "H": [(11, "c"), (55, "BTC/USD"), (54, "1")],
    "V": [(262, "m"), (263, "1"), (264, "0"), (267, "1"), (269, "0"), (146, "1"), (55, "BTC/USD")],
}
FIX44 = ElementTree.parse(standard_fix44_dictionary()).getroot()  # noqa: S314 (the stock one)
ANY = "Z9"
"""A value no table names."""
NONE: frozenset[TimeInForce] = okcoin_venue.TIME_IN_FORCE
"""What OKCoin's orders carry: no TimeInForce."""
PLAIN_FIX44: frozenset[TimeInForce] = fix44_venue.TIME_IN_FORCE


def _with(pairs: list[tuple[int, str]], tag: int, value: str) -> list[tuple[int, str]]:
    """`pairs` with `tag` set to `value` where it stands, or added."""
    if any(t == tag for t, _ in pairs):
        return [(t, value if t == tag else v) for t, v in pairs]
    return [*pairs, (tag, value)]


Case = tuple[MessageFields, Field, str, list[tuple[int, str]], Act]


def _cases() -> Iterator[Case]:
    """Every field of every table with every value it names and one it does not; a rule
    that depends on a condition, with the condition false (the base messages) and true."""
    for table in TABLES.values():
        for f in table.fields.values():
            valued = [(v, rule) for v, (_, rule) in f.values.items()]
            for value, rule in [*valued, (ANY, f.rule)]:
                base = BASE[table.msg_type]
                if isinstance(rule.when and rule.when[0], QuoteCurrency):
                    value = "EUR"
                yield table, f, value, _with(base, f.tag, value), rule.act
                if rule.when is not None:
                    condition, then = rule.when
                    message = _with(base, f.tag, value)
                    if isinstance(condition, OtherField):
                        message = _with(message, condition.tag, min(condition.values))
                    else:
                        assert isinstance(condition, QuoteCurrency)
                        value = "USD"
                        message = _with(message, f.tag, value)
                    yield table, f, value, message, then.act


CASES = list(_cases())


@pytest.mark.parametrize(
    ("table", "field", "value", "pairs", "act"),
    CASES,
    ids=[f"{c[0].msg_type}-{c[1].name}-{c[2]}-{'+'.join(map(str, c[3]))}" for c in CASES],
)
def test_every_listed_field_and_value_is_treated_as_the_table_says(
    table: MessageFields, field: Field, value: str, pairs: list[tuple[int, str]], act: Act
) -> None:
    refused = {(r.tag, r.value): r for r in screen(table, pairs)}
    assert ((field.tag, value) in refused) == (act is Act.REFUSED)
    if act is Act.REFUSED:
        refusal = refused[(field.tag, value)]
        assert f"{field.name} ({field.tag}) = {value}" in refusal.text
        assert refusal.reason == (field.rule_for(value, dict(pairs)).reason or table.reason)


def test_the_walk_covers_every_field_and_both_sides_of_every_condition() -> None:
    listed = {(t.msg_type, f.tag) for t in TABLES.values() for f in t.fields.values()}
    assert {(c[0].msg_type, c[1].tag) for c in CASES} == listed
    conditional = [c for c in CASES if c[1].rule_for(c[2], dict(c[3])) is not c[1].rule]
    assert conditional, "no case exercised a condition"
    assert {c[4] for c in CASES} == set(Act)


@pytest.mark.parametrize(
    ("msg_type", "act"),
    [("D", Act.REFUSED), ("V", Act.REFUSED), ("F", Act.IGNORED), ("H", Act.IGNORED)],
)
def test_a_field_no_table_lists_takes_the_messages_other_rule(msg_type: str, act: Act) -> None:
    table = TABLES[msg_type]
    assert table.other.act is act
    refusals = screen(table, [*BASE[msg_type], (9999, "x"), (167, "FOR")])
    assert bool(refusals) == (act is Act.REFUSED)
    if refusals and msg_type == "D":
        assert [(r.tag, r.reason) for r in refusals] == [(9999, "11"), (167, "11")]
        assert refusals[0].text.startswith("tag 9999 = x: ")


def test_header_and_trailer_fields_are_never_screened() -> None:
    root = FIX44
    numbers = {f.get("name"): int(f.get("number", "0")) for f in root.iterfind("fields/field")}
    standard = {numbers[f.get("name")] for f in root.iterfind("header//field")}
    standard |= {numbers[g.get("name")] for g in root.iterfind("header//group")}
    standard |= {numbers[f.get("name")] for f in root.iterfind("trailer//field")}
    assert standard == HEADER_AND_TRAILER
    assert screen(TABLES["D"], [(tag, "x") for tag in sorted(HEADER_AND_TRAILER)]) == []


def test_names_and_values_are_fix44s() -> None:
    """A tag number or a code mistyped in the table would be a rule for something else."""
    root = FIX44
    fields = {int(f.get("number", "0")): f for f in root.iterfind("fields/field")}
    for table in TABLES.values():
        for f in table.fields.values():
            if f.tag not in fields:  # later FIX versions' (1028) and earlier ones' (204)
                assert f.tag in (204, 1028), f
                continue
            assert fields[f.tag].get("name") == f.name, f
            codes = {v.get("enum") for v in fields[f.tag]}
            assert set(f.values) <= codes, (f.name, set(f.values) - codes)
            assert (fields[f.tag].get("type") == "MULTIPLEVALUESTRING") == f.multiple, f.name


def test_each_value_of_a_multiple_value_field_is_taken_on_its_own() -> None:
    refusals = screen(TABLES["D"], [*BASE["D"], (18, "1 6 G")])
    assert [(r.tag, r.value) for r in refusals] == [(18, "6"), (18, "G")]


def test_the_docs_show_the_tables_as_they_are() -> None:
    doc = (ROOT / "docs" / "bridge-fields.md").read_text()
    assert markdown() in doc, (
        "docs/bridge-fields.md is out of date: paste in the output of "
        "`python -c 'from fixgw.bridge.fields import markdown; print(markdown())'`"
    )


def _message(msg_type: str, pairs: list[tuple[int, str]]) -> translate.FixMessage:
    header = [(35, msg_type), (49, "OMS"), (56, "FIXGW"), (34, "2"), (52, NOW)]
    return parse(encode("FIX.4.4", header, pairs))


def test_translate_refuses_an_order_the_venue_cannot_carry_and_takes_one_it_can() -> None:
    order = BASE["D"]
    with pytest.raises(translate.Refused) as refused:
        translate.new_order(_message("D", [*order, (59, "3"), (110, "1")]), "OMS-", NONE)
    assert refused.value.reason == "11"
    assert refused.value.text == (
        "TimeInForce (59) = 3 (IOC): the venue has no immediate-or-cancel limit order: the "
        "order would rest on the book; MinQty (110) = 1: the venue has no minimum fill quantity"
    )
    gtc = _message("D", [*order, (59, "1"), (1, "ACC"), (21, "3")])
    taken = translate.new_order(gtc, "OMS-", NONE)
    assert (taken.cl_ord_id, taken.symbol, taken.qty, taken.price) == ("OMS-c", "BTC/USD", "1", "1")
    assert taken.time_in_force is None  # GTC is the venue's own rule: nothing to carry
    market_ioc = _with(_with(order, 40, "1"), 59, "3")
    ioc = _message("D", [(t, v) for t, v in market_ioc if t != 44])
    taken = translate.new_order(ioc, "OMS-", NONE)
    assert (taken.price, taken.time_in_force) == (None, None)


@pytest.mark.parametrize(
    ("value", "carried"),
    [
        ("0", TimeInForce.DAY),
        ("1", TimeInForce.GTC),
        ("3", TimeInForce.IOC),
        ("4", TimeInForce.FOK),
    ],
)
def test_translate_passes_on_a_time_in_force_the_venue_carries(
    value: str, carried: TimeInForce
) -> None:
    taken = translate.new_order(_message("D", [*BASE["D"], (59, value)]), "OMS-", PLAIN_FIX44)
    assert taken.time_in_force is carried
    assert translate.new_order(_message("D", BASE["D"]), "OMS-", PLAIN_FIX44).time_in_force is None


def test_translate_refuses_a_time_in_force_the_venue_does_not_carry() -> None:
    with pytest.raises(translate.Refused) as refused:
        translate.new_order(_message("D", [*BASE["D"], (59, "6")]), "OMS-", PLAIN_FIX44)
    assert refused.value.reason == "11"
    assert refused.value.text.startswith("TimeInForce (59) = 6 (GTD): the gateway's orders ")
    gtc_only = frozenset({TimeInForce.GTC})
    with pytest.raises(translate.Refused) as refused:
        translate.new_order(_message("D", [*BASE["D"], (59, "3")]), "OMS-", gtc_only)
    assert refused.value.text == (
        "TimeInForce (59) = 3 (IOC): the venue does not take it: it takes GTC (1)"
    )


def test_a_status_request_id_is_echoed_on_the_answer() -> None:
    request = _message("H", [*BASE["H"], (790, "ask-7")])
    assert translate.status_echo(request) == {790: "ask-7"}
    answer = translate.refused_order(request, "x-1", "unknown order", "I", "5")
    assert answer.fields[790] == "ask-7"
    assert translate.status_echo(_message("D", BASE["D"])) == {}


def _and_nested(rule: Rule) -> Iterator[Rule]:
    yield rule
    if rule.when is not None:
        yield from _and_nested(rule.when[1])


def test_rules_are_plain_data() -> None:
    """Every rule says why, and a refusal's reason is a code, not prose."""
    rules = [
        nested
        for table in TABLES.values()
        for f in table.fields.values()
        for rule in (f.rule, *(r for _, r in f.values.values()), table.other)
        for nested in _and_nested(rule)
    ]
    assert all(r.why for r in rules)
    assert all(r.reason is None or len(r.reason) <= 2 for r in rules)


LIMIT = BASE["D"]
MARKET = [(t, v) for t, v in _with(LIMIT, 40, "1") if t != 44]
HONOURED, IGNORED, REFUSED = Act.HONOURED, Act.IGNORED, Act.REFUSED
DECISIONS: list[tuple[str, list[tuple[int, str]], int, str, Act]] = [
    # (message, context, tag, value, what the bridge does): what issue 19 asked to decide
    ("D", LIMIT, 59, "0", IGNORED),  # Day: FIX's default, and the venue has no day to end
    ("D", LIMIT, 59, "1", HONOURED),  # GTC: what the venue's limit order does
    ("D", MARKET, 59, "1", REFUSED),  # the venue's market order never rests
    ("D", LIMIT, 59, "3", REFUSED),  # IOC limit: would rest on the book
    ("D", MARKET, 59, "3", HONOURED),  # IOC market: what the venue's market order does
    ("D", LIMIT, 59, "4", REFUSED),
    ("D", MARKET, 59, "4", REFUSED),
    ("D", LIMIT, 59, "6", REFUSED),
    ("D", LIMIT, 18, "6", REFUSED),
    ("D", LIMIT, 18, "G", REFUSED),
    ("D", LIMIT, 18, "1", IGNORED),
    ("D", LIMIT, 110, "1", REFUSED),
    ("D", LIMIT, 111, "1", REFUSED),
    ("D", LIMIT, 210, "1", REFUSED),
    ("D", LIMIT, 126, NOW, REFUSED),
    ("D", LIMIT, 432, "20261126", REFUSED),
    ("D", LIMIT, 99, "29000", REFUSED),
    ("D", LIMIT, 152, "1000", REFUSED),
    ("D", LIMIT, 1, "ACC-7", IGNORED),
    ("D", LIMIT, 21, "1", IGNORED),
    ("D", LIMIT, 21, "3", IGNORED),
    ("D", LIMIT, 60, NOW, IGNORED),
    ("D", LIMIT, 15, "USD", HONOURED),
    ("D", LIMIT, 15, "EUR", REFUSED),
    ("D", LIMIT, 100, "XNAS", REFUSED),
    ("D", LIMIT, 386, "1", REFUSED),
    ("D", LIMIT, 114, "Y", IGNORED),
    ("D", LIMIT, 117, "q-1", REFUSED),
    ("D", LIMIT, 528, "A", IGNORED),
    ("D", LIMIT, 529, "1", IGNORED),
    ("D", LIMIT, 1028, "Y", IGNORED),
    ("D", LIMIT, 204, "0", IGNORED),
    ("D", LIMIT, 40, "3", REFUSED),
    ("D", LIMIT, 40, "4", REFUSED),
    ("D", LIMIT, 40, "P", REFUSED),
    ("D", MARKET, 44, "30000", REFUSED),
    ("D", LIMIT, 54, "5", REFUSED),
    ("D", LIMIT, 54, "6", REFUSED),
    ("D", LIMIT, 63, "0", IGNORED),
    ("D", LIMIT, 63, "2", REFUSED),
    ("D", LIMIT, 64, "20261127", REFUSED),
    ("D", LIMIT, 77, "C", REFUSED),
    ("D", LIMIT, 203, "1", REFUSED),
    ("D", LIMIT, 211, "0.5", REFUSED),
    ("D", LIMIT, 388, "0", REFUSED),
    ("D", LIMIT, 847, "1", REFUSED),
    ("D", LIMIT, 453, "1", IGNORED),
    ("D", LIMIT, 452, "3", IGNORED),  # client ID
    ("D", LIMIT, 452, "14", REFUSED),  # give-up clearing firm
    ("F", BASE["F"], 38, "1", IGNORED),
    ("F", BASE["F"], 37, "o-1", IGNORED),
    ("H", BASE["H"], 790, "r-1", HONOURED),
    ("V", BASE["V"], 263, "0", HONOURED),
    ("V", BASE["V"], 264, "5", HONOURED),
    ("V", BASE["V"], 265, "1", HONOURED),
    ("V", BASE["V"], 266, "N", REFUSED),
    ("V", BASE["V"], 269, "2", HONOURED),
    ("V", _with(BASE["V"], 263, "0"), 269, "2", REFUSED),  # no trade history to snapshot
    ("V", BASE["V"], 269, "4", REFUSED),
    ("V", BASE["V"], 146, "1", HONOURED),
    ("V", BASE["V"], 286, "0", REFUSED),
    ("V", BASE["V"], 336, "1", REFUSED),
    ("V", BASE["V"], 547, "Y", REFUSED),
    ("V", BASE["V"], 48, "US0000000000", REFUSED),
]


@pytest.mark.parametrize(
    ("msg_type", "context", "tag", "value", "act"),
    DECISIONS,
    ids=[f"{d[0]}-{d[2]}={d[3]}{'-market' if d[1] is MARKET else ''}" for d in DECISIONS],
)
def test_the_decisions_issue_19_asked_for(
    msg_type: str, context: list[tuple[int, str]], tag: int, value: str, act: Act
) -> None:
    """Written out apart from the table, so that a change to a decision is a change here too."""
    refused = {(r.tag, r.value) for r in screen(TABLES[msg_type], _with(context, tag, value))}
    assert ((tag, value) in refused) == (act is Act.REFUSED)
    table_field = TABLES[msg_type].fields.get(tag)
    assert table_field is not None, "listed, with a reason"
    assert table_field.rule_for(value, dict(_with(context, tag, value))).act is act


PLAIN_FIX44_TIME_IN_FORCE: list[tuple[list[tuple[int, str]], str, Act]] = [
    # (context, TimeInForce, what the bridge does) with a venue that carries TimeInForce
    (LIMIT, "0", HONOURED),
    (LIMIT, "1", HONOURED),
    (MARKET, "1", HONOURED),  # the venue's to take or refuse: it is carried
    (LIMIT, "3", HONOURED),
    (MARKET, "3", HONOURED),
    (LIMIT, "4", HONOURED),
    (MARKET, "4", HONOURED),
    (LIMIT, "2", REFUSED),  # no such time in force on the gateway's orders
    (LIMIT, "5", REFUSED),
    (LIMIT, "6", REFUSED),
    (LIMIT, "7", REFUSED),
]


@pytest.mark.parametrize(
    ("context", "value", "act"),
    PLAIN_FIX44_TIME_IN_FORCE,
    ids=[f"59={d[1]}{'-market' if d[0] is MARKET else ''}" for d in PLAIN_FIX44_TIME_IN_FORCE],
)
def test_the_time_in_force_decisions_with_plain_fix44(
    context: list[tuple[int, str]], value: str, act: Act
) -> None:
    """Written out apart from the table, as the OKCoin ones are above."""
    message = _with(context, 59, value)
    refused = {(r.tag, r.value) for r in screen(tables(PLAIN_FIX44)["D"], message)}
    assert ((59, value) in refused) == (act is Act.REFUSED)
    assert (carried_time_in_force(value, PLAIN_FIX44) is not None) == (act is Act.HONOURED)


@pytest.mark.parametrize(
    "carried",
    [frozenset(), frozenset({TimeInForce.GTC}), frozenset({TimeInForce.IOC, TimeInForce.FOK})],
    ids=["none", "gtc", "ioc-fok"],
)
def test_what_is_carried_is_honoured_and_nothing_else_goes_on(
    carried: frozenset[TimeInForce],
) -> None:
    """The table and what goes on to the venue agree, for any venue: a value carried is
    honoured, one the venue does not carry never goes on (it is refused, or with a venue
    that carries none, taken as the venue's own rule); only TimeInForce differs."""
    table = tables(carried)
    for value in [*TIME_IN_FORCE.forward, "2", "5", "6", "7"]:
        goes_on = carried_time_in_force(value, carried)
        assert goes_on is None or goes_on in carried
        for context in (LIMIT, MARKET):
            act = table["D"].fields[59].rule_for(value, dict(_with(context, 59, value)))
            if goes_on is not None:
                assert act.act is Act.HONOURED
            elif carried:
                assert act.act is Act.REFUSED
    differ = {
        (t, tag)
        for t, one in table.items()
        for tag, f in one.fields.items()
        if f != TABLES[t].fields[tag]
    }
    assert differ == ({("D", 59)} if carried else set())


def test_the_docs_tell_the_venues_apart_where_they_differ() -> None:
    venues = documented_venues()
    assert venues == {"OKCoin": NONE, "plain FIX 4.4": PLAIN_FIX44}
    doc = markdown()
    assert "| TimeInForce, with OKCoin | 59 |" in doc
    assert "| TimeInForce, with plain FIX 4.4 | 59 |" in doc
    assert "| ExecInst | 18 |" in doc and "ExecInst, with" not in doc


def test_every_test_the_conformance_page_names_exists() -> None:
    """docs/conformance.md names its proofs as `path::test` under tests/, the scripted
    venue's section and the bridge's alike: none may be stale."""
    page = (ROOT / "docs" / "conformance.md").read_text()
    venue, bridge = page.split("\n## The FIX bridge\n", 1)
    proof = r"`((?:unit|integration|counterparties)/[\w/]+\.py)::(\w+)`"
    assert len(re.findall(proof, venue)) > 20
    assert len(re.findall(proof, bridge)) > 40
    named = re.findall(proof, page)
    for path, test in named:
        source = (ROOT / "tests" / path).read_text()
        assert re.search(rf"^def {test}\(", source, re.MULTILINE), f"{path}::{test}"
