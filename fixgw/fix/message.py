"""A plain representation of one FIX message, independent of QuickFIX.

The dialect translates to and from `FixMessage`; only `fix.initiator` and the simulator's
acceptor convert it to and from `quickfix.Message`. Inbound messages come from
`quickfix.Message.toString()`, which is one call into the binding instead of one per
field, and keeps the translators testable from captured raw strings.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Final
from xml.etree import ElementTree

from fixgw.masking import MASKED_BY_VALUE_FROM

SOH = "\x01"

MSG_TYPE = 35
_HEADER_TRAILER_SKIP = frozenset({8, 9, 10})
DATA_LENGTH_TAGS: Final[dict[int, int]] = {
    89: 93,  # Signature, SignatureLength: the one not right after its length's number
    91: 90,  # SecureData
    96: 95,  # RawData
    213: 212,  # XmlData
    349: 348,  # EncodedIssuer
    351: 350,  # EncodedSecurityDesc
    353: 352,  # EncodedListExecInst
    355: 354,  # EncodedText
    357: 356,  # EncodedSubject
    359: 358,  # EncodedHeadline
    361: 360,  # EncodedAllocText
    363: 362,  # EncodedUnderlyingIssuer
    365: 364,  # EncodedUnderlyingSecurityDesc
    446: 445,  # EncodedListStatusText
    619: 618,  # EncodedLegIssuer
    622: 621,  # EncodedLegSecurityDesc
}
"""FIX 4.4's data fields (type `data`), each with the tag of its length field: a data value
is as many bytes as that says, and may hold any byte, SOH included."""
_LENGTH_TAGS = frozenset(DATA_LENGTH_TAGS.values())
SECRET_TAGS = frozenset({554, 925, 96, 1})
"""Password (554), NewPassword (925), RawData (96, a Logon's signature or key where a venue
wants one) and Account (1, which OKCoin wants as `apiKey,secretKey`): masked by tag in
whatever is logged, whatever their length."""
MASK = "***"
"""What a secret is written as."""


class FixParseError(ValueError):
    """Raw text that is not a FIX message."""


class GroupMiscounted(FixParseError):
    """A counted group (`GroupSpec.ends_at`) whose entries are not as many as its
    NumInGroup says: its entries cannot be told apart, so the message is not read. The
    message as far as it was read (`message`) still names what it is about."""

    def __init__(self, count_tag: int, message: FixMessage) -> None:
        super().__init__(f"NumInGroup ({count_tag}) is not the number of entries in the group")
        self.count_tag = count_tag
        self.message = message


_UTC_TIMESTAMP = re.compile(
    r"([0-9]{4})([0-9]{2})([0-9]{2})-([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]{1,9}))?"
)


def format_utc_timestamp(ts: datetime) -> str:
    """UTCTimestamp with milliseconds, as FIX 4.4 writes it. `%` formatting: compiled, an
    f-string with format specs is a `str.format` call, twice the time."""
    if ts.tzinfo is not UTC:
        ts = ts.astimezone(UTC)
    return "%04d%02d%02d-%02d:%02d:%02d.%03d" % (  # noqa: UP031
        ts.year,
        ts.month,
        ts.day,
        ts.hour,
        ts.minute,
        ts.second,
        ts.microsecond // 1000,
    )


def parse_utc_timestamp(value: str) -> datetime:
    """Whole seconds, or a fraction of 1 to 9 digits (beyond microseconds, cut). Raises
    ValueError for anything else. By hand: `strptime` cost a fifth of an execution report;
    the usual shapes are read by position, anything else by the pattern. Second 60, which
    FIX 4.4 allows in a UTC leap second and `datetime` has not, reads as the last instant
    of second 59 (`_in_leap_second`)."""
    n = len(value)
    if (
        (n == 17 or 19 <= n <= 27)
        and value.isascii()
        and value[8] == "-"
        and value[11] == ":"
        and value[14] == ":"
        and (value[:8] + value[9:11] + value[12:14] + value[15:17]).isdigit()
        and (n == 17 or (value[17] == "." and value[18:].isdigit()))
    ):
        second = int(value[15:17])
        if second == 60:
            return _in_leap_second(value[:14])
        return datetime(
            int(value[:4]),
            int(value[4:6]),
            int(value[6:8]),
            int(value[9:11]),
            int(value[12:14]),
            second,
            int(value[18:24].ljust(6, "0")) if n > 17 else 0,
            tzinfo=UTC,
        )
    match = _UTC_TIMESTAMP.fullmatch(value)
    if match is None:
        raise ValueError(f"not a UTCTimestamp: {value!r}")
    year, month, day, hour, minute, second_text, fraction = match.groups()
    if second_text == "60":
        return _in_leap_second(value[:14])
    return datetime(
        int(year),
        int(month),
        int(day),
        int(hour),
        int(minute),
        int(second_text),
        int(fraction[:6].ljust(6, "0")) if fraction else 0,
        tzinfo=UTC,
    )


def _in_leap_second(minute: str) -> datetime:
    """A time in second 60 of `minute` (`YYYYMMDD-HH:MM`) as 59.999999 of it: the same day,
    after every time of second 59 and before the next minute, so the order of reports
    is kept. Every report of the leap second reads as that one instant."""
    return datetime(
        int(minute[:4]),
        int(minute[4:6]),
        int(minute[6:8]),
        int(minute[9:11]),
        int(minute[12:14]),
        59,
        999_999,
        tzinfo=UTC,
    )


_NO_NESTED: Final[Mapping[int, GroupSpec]] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class GroupSpec:
    """A repeating group: an entry starts at `delimiter` and holds any of `members`; the
    group ends at the first tag that is none of them, unless it is counted (`ends_at`)."""

    count_tag: int
    delimiter: int
    members: frozenset[int]
    """The tags an entry may hold at its own level (a nested group's count tag, not its
    members)."""
    nested: Mapping[int, GroupSpec] = field(default_factory=lambda: _NO_NESTED, hash=False)
    """The groups an entry may hold, by count tag: read past, so that the entry goes on
    after them."""
    ends_at: frozenset[int] | None = field(default=None, hash=False)
    """A group read from a dictionary is counted: while it has fewer entries than its
    NumInGroup says, only one of these tags ends it (the message's body, header and trailer
    fields; for a nested group, the enclosing entry's members too), and any other tag that
    is not a member stays in the entry, an unknown field passed over. A message in which
    such a group has not as many entries as its NumInGroup is not read (`GroupMiscounted`).
    None: not counted (a group of our own messages, or known only in part)."""


GroupTree = GroupSpec
"""A group as a data dictionary defines it, nested groups included (`group_trees`)."""

_NO_GROUPS: Final[Mapping[int, tuple[Mapping[int, str], ...]]] = MappingProxyType({})


class FixMessage:
    """Body fields by tag (first occurrence; header included), groups by count tag.

    A class of its own rather than a dataclass: compiled (setup.py), its `__init__` is too,
    and two are made per order (the NewOrderSingle, the ExecutionReport)."""

    __slots__ = ("fields", "groups", "msg_type", "raw")

    def __init__(
        self,
        msg_type: str,
        fields: Mapping[int, str],
        groups: Mapping[int, tuple[Mapping[int, str], ...]] | None = None,
        raw: str = "",
    ) -> None:
        self.msg_type: Final = msg_type
        self.fields: Final = fields
        self.groups: Final = _NO_GROUPS if groups is None else groups
        self.raw: Final = raw

    def __repr__(self) -> str:
        return (
            f"FixMessage(msg_type={self.msg_type!r}, fields={dict(self.fields)!r}, "
            f"groups={dict(self.groups)!r})"
        )

    def get(self, tag: int) -> str | None:
        return self.fields.get(tag)

    def group(self, count_tag: int) -> tuple[Mapping[int, str], ...]:
        return self.groups.get(count_tag, ())


_TAG_NUMBERS: dict[str, int] = {}
"""Tag texts already read, and their numbers: a dict lookup costs less than `isdigit` and
`int` for each field of each message. Bounded: a venue's odd tags cannot grow it far."""


def _tag_number(part: str, at: int) -> int:
    """The tag of field `part` whose '=' is at `at` (-1: none); FixParseError if none."""
    tag_text = part[:at] if at > 0 else ""
    tag = _TAG_NUMBERS.get(tag_text)
    if tag is None:
        if not tag_text.isdigit():
            raise FixParseError(f"not a tag=value pair: {part[:40]!r}")
        tag = int(tag_text)
        if len(_TAG_NUMBERS) < 4096:
            _TAG_NUMBERS[tag_text] = tag
    return tag


def pairs_of(raw: str) -> list[tuple[int, str]]:
    """`tag=value<SOH>...` as (tag, value) pairs, in order, repeated tags and all. A data
    field's value is as long as its length field says, SOH and all (`DATA_LENGTH_TAGS`)."""
    pairs: list[tuple[int, str]] = []
    for part in raw.split(SOH):
        if part:
            at = part.find("=")
            tag = _tag_number(part, at)
            if tag in DATA_LENGTH_TAGS:
                return _pairs_by_length(raw)
            pairs.append((tag, part[at + 1 :]))
    return pairs


def _pairs_by_length(raw: str) -> list[tuple[int, str]]:
    """`pairs_of` for a message holding a data field, read field by field."""
    return [(tag, raw[start:end]) for tag, start, end in field_spans(raw)]


def field_spans(raw: str) -> list[tuple[int, int, int]]:
    """Each field's tag and where its value starts and ends in `raw`, found as `pairs_of`
    reads them: a data field's value by its length, SOH and all. FixParseError as there."""
    spans: list[tuple[int, int, int]] = []
    lengths: dict[int, str] = {}
    start = 0
    end = len(raw)
    while start < end:
        soh = raw.find(SOH, start)
        if soh < 0:
            soh = end
        if soh == start:
            start += 1
            continue
        at = raw.find("=", start, soh)
        tag = _tag_number(raw[start:soh], at - start if at >= 0 else -1)
        length_tag = DATA_LENGTH_TAGS.get(tag)
        if length_tag is not None:
            soh = _data_end(raw, at + 1, lengths.get(length_tag), soh)
        if tag in _LENGTH_TAGS:
            lengths[tag] = raw[at + 1 : soh]  # the last one: the length of the data after it
        spans.append((tag, at + 1, soh))
        start = soh + 1
    return spans


def _data_end(raw: str, start: int, length: str | None, first_soh: int) -> int:
    """Where the data value at `raw[start]`, of `length` bytes, ends: at the SOH after that
    many bytes. A counterparty's bytes that were not UTF-8 may have been read as Latin-1
    (`latin1_where_not_utf8`), so U+0080 to U+00FF count as one byte or two. With no length,
    or none that fits, the value ends at the first SOH (`first_soh`), as any other does."""
    if length is None or not length.isdigit():
        return first_soh
    wanted = int(length)
    fewest = most = 0
    i = start
    while i < len(raw) and fewest <= wanted:
        if raw[i] == SOH and fewest <= wanted <= most:
            return i
        code = ord(raw[i])
        if code < 0x80 or 0xDC80 <= code <= 0xDCFF:  # ASCII, or a byte kept as a surrogate
            fewest += 1
            most += 1
        elif code <= 0xFF:
            fewest += 1
            most += 2
        else:
            width = 2 if code < 0x800 else 3 if code < 0x10000 else 4
            fewest += width
            most += width
        i += 1
    return i if i == len(raw) and fewest <= wanted <= most else first_soh


def _fields_of(raw: str) -> dict[int, str] | None:
    """`pairs_of` and the first value of each tag, header and trailer tags left out, in one
    pass: for a message with no repeating groups to cut out. None for one holding a data
    field, which is read by its length (`pairs_of`)."""
    fields: dict[int, str] = {}
    for part in raw.split(SOH):
        if part:
            at = part.find("=")
            tag = _tag_number(part, at)
            if tag not in fields and tag not in _HEADER_TRAILER_SKIP:
                if tag in DATA_LENGTH_TAGS:
                    return None
                fields[tag] = part[at + 1 :]
    return fields


def _msg_type_at_front(raw: str) -> str | None:
    """MsgType where a message has it, found in the text (None elsewhere)."""
    start = raw.find(SOH + "35=")
    if start < 0:
        return None
    start += 4
    end = raw.find(SOH, start)
    return raw[start:end] if end >= 0 else raw[start:]


def parse(raw: str, group_specs: Mapping[str, Iterable[GroupSpec]] | None = None) -> FixMessage:
    """Split `tag=value<SOH>...` into a FixMessage; groups are cut out by `group_specs`.

    A message that holds none of its type's groups (most ExecutionReports) is read in one
    pass. GroupMiscounted for a counted group (`GroupSpec.ends_at`) read short or long."""
    msg_type = _msg_type_at_front(raw)
    if msg_type is not None:
        fields = _fields_of(raw)
        if fields is not None and fields.get(MSG_TYPE) == msg_type:
            specs = group_specs.get(msg_type) if group_specs else None
            if not specs or not any(s.count_tag in fields for s in specs):
                return FixMessage(msg_type, fields, None, raw)
    return _parse_pairs(raw, group_specs)


def _parse_pairs(
    raw: str, group_specs: Mapping[str, Iterable[GroupSpec]] | None = None
) -> FixMessage:
    pairs = pairs_of(raw)
    fields: dict[int, str] = {}
    msg_type = next((v for t, v in pairs if t == MSG_TYPE), None)
    if msg_type is None:
        raise FixParseError("no MsgType (35)")
    specs = {s.count_tag: s for s in (group_specs or {}).get(msg_type, ())}
    groups: dict[int, tuple[Mapping[int, str], ...]] = {}
    miscounted: int | None = None
    i = 0
    while i < len(pairs):
        tag, value = pairs[i]
        i += 1
        spec = specs.get(tag)
        if spec is None:
            if tag not in _HEADER_TRAILER_SKIP:
                fields.setdefault(tag, value)
            continue
        i, entries, wrong = _read_entries(pairs, i, spec, value)
        groups[tag] = tuple(entries)
        if miscounted is None and spec.ends_at is not None:
            miscounted = wrong
    msg = FixMessage(msg_type=msg_type, fields=fields, groups=groups, raw=raw)
    if miscounted is not None:
        raise GroupMiscounted(miscounted, msg)
    return msg


def _read_entries(
    pairs: list[tuple[int, str]], i: int, spec: GroupSpec, count: str
) -> tuple[int, list[dict[int, str]], int | None]:
    """Reads the entries of `spec`'s group from `pairs[i]`, `count` its NumInGroup; returns
    where they end, the entries (a nested group's own read past), and the count tag of the
    first group, this one or one nested in it, whose entries (each begun by the delimiter)
    are not as many as its NumInGroup says (None if all are)."""
    wanted = int(count) if count.isdigit() else -1
    members, nested, ends_at = spec.members, spec.nested, spec.ends_at
    entries: list[dict[int, str]] = []
    delimited = 0
    wrong: int | None = None
    while i < len(pairs):
        tag, value = pairs[i]
        if tag in members:
            if tag == spec.delimiter:
                delimited += 1
                entries.append({})
            elif not entries:
                entries.append({})
        elif ends_at is None or not entries or delimited >= wanted or tag in ends_at:
            break
        entries[-1][tag] = value
        i += 1
        inner = nested.get(tag)
        if inner is not None:
            i, _, inner_wrong = _read_entries(pairs, i, inner, value)
            if wrong is None:
                wrong = inner_wrong
    if wrong is None and delimited != wanted:
        wrong = spec.count_tag
    return i, entries, wrong


_SECRET_TAG_NUMBERS = "|".join(str(tag) for tag in sorted(SECRET_TAGS))
_SECRET_FIELD = re.compile(f"(?<![^\x01])(0*(?:{_SECRET_TAG_NUMBERS}))=[^\x01]*")


def mask_secrets(raw: str) -> str:
    """The raw message with the values of secret tags replaced by `***`."""
    return _SECRET_FIELD.sub(rf"\1={MASK}", raw)


FREE_TEXT_TAGS = frozenset({58, 371, 373, 380})
"""Text (58), and the reject reasons the gateway passes on as they came (RefTagID 371,
SessionRejectReason 373, BusinessRejectReason 380): the exchange's words, which the gateway
reads no value from."""


class SecretValues:
    """Secret values masked wherever a venue's message quotes them: the Logon's Password
    (554), which OKCoin's Account (1) carries too (`Invalid Account: key,***`). Only those
    of `MASKED_BY_VALUE_FROM` characters or more. A value once added stays masked: a
    rotated secret is still a secret."""

    def __init__(self) -> None:
        self._values: tuple[str, ...] = ()

    def add(self, value: str) -> None:
        if len(value) >= MASKED_BY_VALUE_FROM and value not in self._values:
            self._values = tuple(sorted((*self._values, value), key=len, reverse=True))

    def masked(self, text: str) -> str:
        """`text` with each value replaced by `***`: what an error quoting the exchange's
        message may say of it."""
        for secret in self._values:
            if secret in text:
                text = text.replace(secret, MASK)
        return text

    def mask(self, raw: str) -> tuple[str, str]:
        """`raw` to read: each value replaced by `***` in its free text (`FREE_TEXT_TAGS`),
        every other field as the exchange sent it; and `raw` to show (log, journal): each
        value replaced in every field's value, a data field's whole value included. Fields
        are found as the parser finds them (`field_spans`), so a `58=` inside a data value
        is data, and no data value changes its length. Tags and delimiters stay as they
        were; in a message that cannot be read, every occurrence is masked in what is shown
        and nothing in what is read. Most messages hold none: one search each, and `raw`
        itself twice."""
        if not any(v in raw for v in self._values):
            return raw, raw
        try:
            spans = field_spans(raw)
        except FixParseError:
            return raw, self.masked(raw)
        read: list[str] = []
        shown: list[str] = []
        done = 0
        for tag, start, end in spans:
            value = raw[start:end]
            hidden = self.masked(value)
            if hidden == value:
                continue
            kept = raw[done:start]
            read += (kept, hidden if tag in FREE_TEXT_TAGS else value)
            shown += (kept, hidden)
            done = end
        if not shown:
            return raw, self.masked(raw)
        read.append(raw[done:])
        shown.append(raw[done:])
        return "".join(read), "".join(shown)


def redact(raw: str) -> str:
    """The raw message with secret tags masked, fit for a log line."""
    return mask_secrets(raw).replace(SOH, "|")


def field_names(dictionary: Path) -> dict[int, str]:
    """Tag numbers to names, from a QuickFIX data dictionary."""
    fields = ElementTree.parse(dictionary).getroot().find("fields")  # noqa: S314 (our own file)
    return {
        int(f.get("number", "0")): f.get("name", "") for f in ([] if fields is None else fields)
    }


def group_trees(dictionary: Path | str, counted: bool = False) -> dict[str, dict[int, GroupTree]]:
    """The repeating groups of each message type's body, by count tag, from a QuickFIX data
    dictionary (its file, or its XML) with components expanded. `counted`: each group
    counted, ended early only by what the dictionary places outside it (`GroupSpec.ends_at`)."""
    root = (
        ElementTree.fromstring(dictionary)  # noqa: S314 (a dictionary we made)
        if isinstance(dictionary, str)
        else ElementTree.parse(dictionary).getroot()  # noqa: S314 (a configured dictionary)
    )
    reader = _GroupReader(
        {f.get("name", ""): int(f.get("number", "0")) for f in root.iterfind("fields/field")},
        {c.get("name", ""): c for c in root.iterfind("components/component")},
    )
    around: frozenset[int] | None = None
    if counted:
        edges = [e for e in (root.find("header"), root.find("trailer")) if e is not None]
        around = frozenset(tag for edge in edges for tag in reader.tags_in(edge))
    return {
        m.get("msgtype", ""): reader.groups_in(
            m, None if around is None else around | reader.tags_in(m)
        )
        for m in root.iterfind("messages/message")
    }


class _GroupReader:
    def __init__(self, numbers: dict[str, int], components: dict[str, ElementTree.Element]) -> None:
        self.numbers = numbers
        self.components = components

    def children(self, node: ElementTree.Element) -> list[ElementTree.Element]:
        """Fields and groups, a component's in its place."""
        out: list[ElementTree.Element] = []
        for child in node:
            if child.tag == "component":
                out += self.children(self.components[child.get("name", "")])
            else:
                out.append(child)
        return out

    def tags_in(self, node: ElementTree.Element) -> frozenset[int]:
        """The tags of its fields and groups' counts, groups not entered."""
        return frozenset(self.numbers[c.get("name", "")] for c in self.children(node))

    def groups_in(
        self, node: ElementTree.Element, ends_at: frozenset[int] | None = None
    ) -> dict[int, GroupTree]:
        groups = [c for c in self.children(node) if c.tag == "group"]
        return {self.numbers[g.get("name", "")]: self.tree_of(g, ends_at) for g in groups}

    def tree_of(self, group: ElementTree.Element, ends_at: frozenset[int] | None) -> GroupTree:
        tags = [self.numbers[c.get("name", "")] for c in self.children(group)]
        count_tag = self.numbers[group.get("name", "")]
        members = frozenset(tags)
        inner_ends_at = None if ends_at is None else members | ends_at
        nested = self.groups_in(group, inner_ends_at)
        return GroupTree(count_tag, tags[0], members, nested, ends_at)


def miscounted_group(pairs: list[tuple[int, str]], groups: Mapping[int, GroupTree]) -> int | None:
    """The count tag of the first repeating group whose NumInGroup is not the number of
    entries that follow it (an entry starts at the group's delimiter), or None."""
    i = 0
    while i < len(pairs):
        tag, value = pairs[i]
        i += 1
        tree = groups.get(tag)
        if tree is not None:
            i, _, wrong = _read_entries(pairs, i, tree, value)
            if wrong is not None:
                return wrong
    return None


def first_not_utf8(pairs: list[tuple[int, str]], skip: frozenset[int]) -> int | None:
    """The first tag not in `skip` whose value holds a byte that is not UTF-8, or None.
    QuickFIX's binding decodes what it received as UTF-8 with `surrogateescape`: each such
    byte is a lone surrogate, which no UTF-8 encoder takes (QuickFIX's own, sending, neither)."""
    for tag, value in pairs:
        if tag not in skip and not utf8(value):
            return tag
    return None


def utf8(value: str) -> bool:
    """False for a value holding a byte that was not UTF-8 (`first_not_utf8`)."""
    if value.isascii():
        return True
    try:
        value.encode()
    except UnicodeEncodeError:
        return False
    return True


def describe(raw: str, names: Mapping[int, str]) -> str:
    """The message with tag names, secrets masked: `MsgType(35)=D|ClOrdID(11)=...`."""
    out = []
    for part in redact(raw).split("|"):
        tag, sep, value = part.partition("=")
        if sep and tag.isdigit():
            out.append(f"{names.get(int(tag), '?')}({tag})={value}")
    return "|".join(out)


def encode(
    begin_string: str, header: Iterable[tuple[int, str]], body: Iterable[tuple[int, str]]
) -> str:
    """A complete raw message with BodyLength and CheckSum, as a counterparty would send it."""
    inner = "".join(f"{t}={v}{SOH}" for t, v in (*header, *body))
    head = f"8={begin_string}{SOH}9={len(inner.encode())}{SOH}"
    checksum = sum((head + inner).encode()) % 256
    return f"{head}{inner}10={checksum:03d}{SOH}"


def body_pairs(msg: FixMessage) -> list[tuple[int, str]]:
    """The message's body as (tag, value) pairs: its fields, then each group's count and
    entries (the order `qf.to_quickfix` hands them to QuickFIX in)."""
    pairs = list(msg.fields.items())
    for count_tag, entries in msg.groups.items():
        pairs.append((count_tag, str(len(entries))))
        for entry in entries:
            pairs.extend(entry.items())
    return pairs
