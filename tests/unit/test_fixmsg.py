"""UTCTimestamps, both ways; secrets masked; repeating groups counted; data fields read by
their length."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fixgw.config import standard_fix44_dictionary
from fixgw.fix.dictionary import inbound_group_trees, lenient_dictionary
from fixgw.fix.message import (
    _UTC_TIMESTAMP,
    DATA_LENGTH_TAGS,
    FixMessage,
    FixParseError,
    GroupSpec,
    SecretValues,
    _parse_pairs,
    first_not_utf8,
    format_utc_timestamp,
    group_trees,
    mask_secrets,
    miscounted_group,
    pairs_of,
    parse,
    parse_utc_timestamp,
    redact,
)
from fixgw.fix.qf import latin1_where_not_utf8
from fixgw.fix.reader import _FIX_FLOAT, is_fix_float
from fixgw.venues import groups_read, venue_dictionary
from tests.fuzz import FUZZ_EXAMPLES, odd_decimals


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("20261125-06:04:15", datetime(2026, 11, 25, 6, 4, 15, tzinfo=UTC)),
        ("20261125-06:04:15.386", datetime(2026, 11, 25, 6, 4, 15, 386000, tzinfo=UTC)),
        ("20261125-06:04:15.386123", datetime(2026, 11, 25, 6, 4, 15, 386123, tzinfo=UTC)),
        ("20261125-06:04:15.386123999", datetime(2026, 11, 25, 6, 4, 15, 386123, tzinfo=UTC)),
        ("20261125-06:04:15.5", datetime(2026, 11, 25, 6, 4, 15, 500000, tzinfo=UTC)),
        ("20261231-23:59:60", datetime(2026, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)),
        ("20261231-23:59:60.250", datetime(2026, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)),
    ],
    ids=["whole", "ms", "us", "ns", "tenth", "leap-second", "leap-second-ms"],
)
def test_utc_timestamps_are_read(text: str, expected: datetime) -> None:
    assert parse_utc_timestamp(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "2026-11-25T06:04:15Z",
        "20261125-06:04",
        "20261125-06:04:15.",
        "20261125-06:04:15.1234567890",
        "20261325-06:04:15",
        "20261125-24:00:00",
        "20261231-23:59:61",
        "20261125-06:04:15 ",
        "\uff120261125-06:04:15",  # a full-width digit
    ],
)
def test_what_is_not_a_utc_timestamp_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match=r"UTCTimestamp|out of range|must be in"):
        parse_utc_timestamp(text)


def test_written_in_utc_with_milliseconds_and_read_back() -> None:
    ts = datetime(2026, 11, 25, 8, 4, 15, 386999, tzinfo=timezone(timedelta(hours=2)))
    assert format_utc_timestamp(ts) == "20261125-06:04:15.386"
    assert parse_utc_timestamp(format_utc_timestamp(ts)) == ts.replace(microsecond=386000)


def test_secret_tags_are_masked_wherever_they_stand_and_no_other_tag_is() -> None:
    raw = "1=key,secret\x0111=c1\x01554=pw\x01101=x\x015540=y\x0115=USD\x01554=again"
    assert mask_secrets(raw) == "1=***\x0111=c1\x01554=***\x01101=x\x015540=y\x0115=USD\x01554=***"
    assert redact(raw) == "1=***|11=c1|554=***|101=x|5540=y|15=USD|554=***"


def test_secret_values_are_masked_in_free_text_to_read_and_in_any_field_to_show() -> None:
    secrets = SecretValues()
    for value in ("s3cret-key", "", "s3cret-key=x", "s3cret-key"):
        secrets.add(value)
    raw = (
        "35=3\x0158=Invalid Account: key,s3cret-key=x (was key,s3cret-key)\x01"
        "355=s3cret-key\x01372=D\x01"
    )
    read, shown = secrets.mask(raw)
    text = "58=Invalid Account: key,*** (was key,***)"
    assert read == f"35=3\x01{text}\x01355=s3cret-key\x01372=D\x01"
    assert shown == f"35=3\x01{text}\x01355=***\x01372=D\x01"
    assert secrets.mask("35=0\x01112=t\x01") == ("35=0\x01112=t\x01", "35=0\x01112=t\x01")


def test_a_secret_quoted_inside_a_data_field_leaves_it_whole_to_read_and_is_masked_to_show() -> (
    None
):
    """A `58=` inside EncodedText is data: what is read keeps the data as many bytes as
    354 says, so the fields after it are read as sent; what is shown masks the secret
    anywhere in the data value, after an SOH in it too."""
    secrets = SecretValues()
    secrets.add("s3cret-key")
    data = "x\x0158=key,s3cret-key\x0132=0.1\x01Invalid: key,s3cret-key"
    raw = f"35=8\x0158=key,s3cret-key\x01354={len(data)}\x01355={data}\x0132=0.5\x01"
    read, shown = secrets.mask(raw)
    assert read == raw.replace("58=key,s3cret-key\x01354", "58=key,***\x01354")
    assert parse(read).get(32) == "0.5"
    assert parse(read).get(355) == data
    assert "s3cret-key" not in shown
    assert shown.endswith("355=x\x0158=key,***\x0132=0.1\x01Invalid: key,***\x0132=0.5\x01")


def test_secret_values_are_masked_in_the_reject_reasons_passed_on_as_text() -> None:
    secrets = SecretValues()
    secrets.add("s3cret-key")
    raw = "35=j\x01380=Invalid: key,s3cret-key\x01373=key,s3cret-key\x01371=s3cret-key\x01"
    read, _ = secrets.mask(raw)
    assert read == "35=j\x01380=Invalid: key,***\x01373=key,***\x01371=***\x01"


def test_a_message_that_cannot_be_read_is_read_as_sent_and_shown_masked() -> None:
    secrets = SecretValues()
    secrets.add("s3cret-key")
    raw = "35=8\x0158=a\x01not a field: key,s3cret-key\x01"
    assert secrets.mask(raw) == (raw, raw.replace("s3cret-key", "***"))
    assert secrets.masked("not a FIX decimal: 'key,s3cret-key'") == "not a FIX decimal: 'key,***'"


def test_a_secret_shorter_than_eight_characters_is_masked_by_its_tag_only() -> None:
    """A secret key that is also a price: the fill at that price is read as sent, and its
    log line shows the price; the Password and Account fields are masked by tag."""
    secrets = SecretValues()
    secrets.add("30010")
    fill = "35=8\x0144=30010\x016=30010\x0158=filled at 30010\x01"
    assert secrets.mask(fill) == (fill, fill)
    assert redact("35=A\x01554=30010\x01") == "35=A|554=***|"
    assert redact("35=D\x011=key,30010\x0144=30010\x01") == "35=D|1=***|44=30010|"


FIX44_GROUPS = group_trees(standard_fix44_dictionary())
GROUPS = groups_read(venue_dictionary("fix44"))
PARTY = [(448, "desk-7"), (447, "D"), (452, "11")]


@pytest.mark.parametrize(
    ("msg_type", "body", "wrong"),
    [
        ("V", [(262, "m"), (267, "2"), (269, "0"), (269, "1"), (146, "1"), (55, "X")], None),
        ("V", [(262, "m"), (267, "3"), (269, "0"), (146, "1"), (55, "X")], 267),
        ("V", [(262, "m"), (267, "1"), (269, "0"), (269, "1"), (146, "1"), (55, "X")], 267),
        ("V", [(262, "m"), (267, "1"), (269, "0"), (146, "2"), (55, "X")], 146),
        ("V", [(262, "m"), (267, "x"), (269, "0"), (146, "1"), (55, "X")], 267),
        ("D", [(11, "c"), (453, "2"), *PARTY, *PARTY, (55, "X")], None),
        ("D", [(11, "c"), (453, "1"), *PARTY, (802, "2"), (523, "a"), (803, "1"), (55, "X")], 802),
        ("D", [(11, "c"), (453, "1"), *PARTY, (802, "1"), (523, "a"), (803, "1"), (55, "X")], None),
        ("D", [(11, "c"), (453, "0"), (55, "X")], None),
        ("H", [(11, "c"), (55, "X")], None),
    ],
)
def test_a_group_count_that_is_not_its_number_of_entries_is_found(
    msg_type: str, body: list[tuple[int, str]], wrong: int | None
) -> None:
    assert miscounted_group(body, FIX44_GROUPS[msg_type]) == wrong


def test_a_value_that_was_not_utf8_on_the_wire_is_found_unless_its_tag_is_skipped() -> None:
    """As QuickFIX's binding hands bytes over: UTF-8, each other byte a lone surrogate."""
    wire = [(11, b"ORD-1"), (58, b"caf\xe9"), (55, "Ü/USD".encode()), (5001, b"x\xe9")]
    pairs = [(tag, value.decode("utf-8", "surrogateescape")) for tag, value in wire]
    assert first_not_utf8(pairs, frozenset()) == 58
    assert first_not_utf8(pairs, frozenset({58})) == 5001
    assert first_not_utf8(pairs[:1] + pairs[2:3], frozenset()) is None


def test_every_data_field_of_fix44_is_read_by_its_own_length_field() -> None:
    root = ElementTree.parse(standard_fix44_dictionary()).getroot()  # noqa: S314
    fields = {
        int(f.get("number", "")): (f.get("name", ""), f.get("type", ""))
        for f in root.iterfind("fields/field")
    }
    assert set(DATA_LENGTH_TAGS) == {tag for tag, (_, kind) in fields.items() if kind == "DATA"}
    for data_tag, length_tag in DATA_LENGTH_TAGS.items():
        name, length = fields[data_tag][0], fields[length_tag]
        assert length in ((f"{name}Len", "LENGTH"), (f"{name}Length", "LENGTH"))


def binding(wire: bytes) -> str:
    """As QuickFIX's binding hands bytes over: UTF-8, each other byte a lone surrogate."""
    return wire.decode("utf-8", "surrogateescape")


def venue_text(wire: bytes) -> str:
    """As the gateway keeps a venue's message: bytes that are not UTF-8 read as Latin-1."""
    return latin1_where_not_utf8(binding(wire))


@pytest.mark.parametrize(
    "data",
    [
        "Łódź".encode("utf-16-be"),  # 01 41 00 F3 00 64 01 7A: SOH, and bytes not UTF-8
        "é\x01=x".encode(),
        b"\x0158=not a field\x01",
        b"\x01",
        b"",
    ],
)
@pytest.mark.parametrize("read", [binding, venue_text])
def test_a_data_value_is_as_many_bytes_as_its_length_says_soh_and_all(
    data: bytes, read: Callable[[bytes], str]
) -> None:
    wire = b"8=FIX.4.4\x019=9\x0135=8\x0111=A\x01354=%d\x01355=%b\x0158=x\x0110=000\x01"
    raw = read(wire % (len(data), data))
    assert pairs_of(raw)[4:7] == [(354, str(len(data))), (355, read(data)), (58, "x")]
    fields = parse(raw).fields
    assert (fields[355], fields[58]) == (read(data), "x")


@pytest.mark.parametrize("length", [None, "1", "99", "x"])
def test_a_data_value_with_no_length_that_fits_ends_at_the_soh_as_any_other_does(
    length: str | None,
) -> None:
    length_field = "" if length is None else f"354={length}\x01"
    raw = f"8=FIX.4.4\x0135=8\x0111=A\x01{length_field}355=abc\x0158=x\x01"
    assert pairs_of(raw)[-2:] == [(355, "abc"), (58, "x")]


def body_fields(dialect: Path, standard: Path) -> dict[str, set[int]]:
    """The fields of each message's body outside its groups, components expanded, in the
    dictionary the session reads a venue with."""
    root = ElementTree.fromstring(lenient_dictionary(dialect, standard))  # noqa: S314 (ours)
    numbers = {f.get("name"): int(f.get("number", "0")) for f in root.iterfind("fields/field")}
    components = {c.get("name"): c for c in root.iterfind("components/component")}

    def fields_of(node: ElementTree.Element) -> set[int]:
        found: set[int] = set()
        for child in node:
            if child.tag == "component":
                found |= fields_of(components[child.get("name")])
            elif child.tag == "field":
                found.add(numbers[child.get("name")])
        return found

    return {m.get("msgtype", ""): fields_of(m) for m in root.iterfind("messages/message")}


@pytest.mark.parametrize("venue", ["okcoin", "fix44"])
def test_no_group_of_a_message_holds_a_field_of_its_body(venue: str) -> None:
    """Every group of a venue's message is cut out of its body, its last entry ended by a
    field of the body (`GroupSpec.ends_at`): a body field the group listed too would be
    read into the entry."""
    trees = inbound_group_trees(venue_dictionary(venue), standard_fix44_dictionary())
    body = body_fields(venue_dictionary(venue), standard_fix44_dictionary())

    def every_member(group: GroupSpec) -> set[int]:
        return set(group.members).union(*map(every_member, group.nested.values()))

    shared = {
        (msg_type, count_tag): sorted(every_member(group) & body[msg_type])
        for msg_type, groups in trees.items()
        for count_tag, group in groups.items()
        if every_member(group) & body[msg_type]
    }
    assert shared == {}


def test_group_trees_follow_components_and_nest() -> None:
    parties = FIX44_GROUPS["D"][453]
    assert (parties.delimiter, parties.members) == (448, frozenset({448, 447, 452, 802}))
    assert parties.nested[802].delimiter == 523
    assert set(FIX44_GROUPS["V"]) == {267, 146, 386}


_timestamp_like = st.one_of(
    st.from_regex(r"[0-9]{8}-[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{0,11})?", fullmatch=True),
    st.text(st.sampled_from(list("0123456789-:. \uff12\u0661")), max_size=30),
)


@pytest.mark.fuzz
@settings(max_examples=FUZZ_EXAMPLES, deadline=None, derandomize=True)
@given(text=_timestamp_like)
def test_a_timestamp_read_by_position_is_what_the_pattern_reads(text: str) -> None:
    """`parse_utc_timestamp` reads the usual shapes by position; the pattern is the rule."""

    def by_pattern() -> datetime | None:
        match = _UTC_TIMESTAMP.fullmatch(text)
        if match is None:
            return None
        year, month, day, hour, minute, second, fraction = match.groups()
        micro = int(fraction[:6].ljust(6, "0")) if fraction else 0
        if second == "60":  # a leap second: the last instant of second 59
            second, micro = "59", 999999
        ints = (int(year), int(month), int(day), int(hour), int(minute), int(second), micro)
        try:
            return datetime(*ints, tzinfo=UTC)
        except ValueError:
            return None

    try:
        read: datetime | None = parse_utc_timestamp(text)
    except ValueError:
        read = None
    assert read == by_pattern()


@pytest.mark.fuzz
@settings(max_examples=FUZZ_EXAMPLES, deadline=None, derandomize=True)
@given(text=st.one_of(odd_decimals, odd_decimals.map(lambda t: f"-{t}")))
def test_a_fix_float_checked_by_string_tests_is_what_the_pattern_takes(text: str) -> None:
    assert is_fix_float(text) == bool(_FIX_FLOAT.fullmatch(text))


@pytest.mark.fuzz
@settings(max_examples=FUZZ_EXAMPLES, deadline=None, derandomize=True)
@given(
    pairs=st.lists(
        st.tuples(
            st.sampled_from(
                # 267, 268 and 146: the groups of V, W and X; 269, 279, 270 and 55: members
                [
                    *("8", "9", "35", "035", "11", "55", "146", "10", "", "\u0661", "1a"),
                    *("267", "268", "269", "279", "270"),
                ]
            ),
            st.one_of(
                st.sampled_from(["V", "W", "X", "8"]),
                st.text(st.sampled_from(list("ab=9VW8 \u00e9")), max_size=4),
            ),
        ),
        max_size=10,
    ),
    start=st.sampled_from(
        ["", "\x01"] + [f"8=FIX.4.4\x019=9\x0135={t}\x01" for t in ("X", "W", "V", "8")]  # a header
    ),
    end=st.sampled_from(["\x01", "", "\x01\x01"]),
    groups=st.sampled_from([None, GROUPS]),
)
def test_a_message_read_in_one_pass_is_what_the_general_reading_gives(
    pairs: list[tuple[str, str]], start: str, end: str, groups: Any
) -> None:
    """`parse` reads a message with no groups to cut in one pass; whatever the text, it
    answers as the general reading (`_parse_pairs`) does."""
    raw = start + "\x01".join(f"{tag}={value}" for tag, value in pairs) + end

    def outcome(read: Callable[[str, Any], FixMessage]) -> object:
        try:
            msg = read(raw, groups)
        except (FixParseError, ValueError) as exc:
            return type(exc)
        return msg.msg_type, dict(msg.fields), {k: list(v) for k, v in msg.groups.items()}

    assert outcome(parse) == outcome(_parse_pairs)
