"""The data dictionary the gateway's initiator reads a venue with.

A venue's dialect dictionary lists only what the dialect uses, and QuickFIX refuses, at
session level and before the application sees it, a message with a repeating group the
dictionary does not define for that message ("Tag appears more than once"), a value outside
a field's enumeration, or a missing field the dictionary calls required. Venues add
standard fields and groups without notice, so the initiator reads with one dictionary made
of both:

- every message, component, field and group of the standard FIX 4.4 dictionary, with the
  dialect's own fields, components and messages added, and the dialect's members added to
  the standard messages, components and groups (OKCoin's trade entries carry Side in a
  snapshot's MDEntries, say; a broker's FIX44.xml its own fields in MDFullGrp's), and what
  venues add beyond both (`MEMBERS_BEYOND_FIX44`);
- no enumerations but MsgType's: what a code means is the dialect's translation tables'
  call, and an unknown one is reported by the dialect, not refused by the engine;
- nothing required in application messages: the dialect's reader says what it needs.

Left to QuickFIX: framing and checksum, the header, sequence numbers, the session-level
(admin) messages as FIX 4.4 defines them, the types of values, and the structure of every
group either dictionary knows. A message it still refuses is read by fixgw from the raw
text all the same (`session.RawInbound`).
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Iterator, Mapping
from pathlib import Path
from xml.etree import ElementTree

from fixgw.fix.message import GroupSpec, group_trees
from fixgw.fix.tags import Tag

MSG_TYPE_FIELD = "MsgType"


def _children_by_name(node: ElementTree.Element) -> dict[str, ElementTree.Element]:
    return {child.get("name", ""): child for child in node}


class _Dictionary:
    def __init__(self, root: ElementTree.Element) -> None:
        self.root = root
        self.fields = _section(root, "fields")
        self.messages = _section(root, "messages")
        self.components = {c.get("name", ""): c for c in _section(root, "components")}

    def walk(self, node: ElementTree.Element) -> Iterator[ElementTree.Element]:
        """The fields and groups under `node`, components expanded, groups not entered."""
        for child in node:
            if child.tag == "component":
                component = self.components.get(child.get("name", ""))
                if component is not None:
                    yield from self.walk(component)
            else:
                yield child

    def find(self, node: ElementTree.Element, name: str) -> ElementTree.Element | None:
        return next((c for c in self.walk(node) if c.get("name") == name), None)


def _section(root: ElementTree.Element, name: str) -> ElementTree.Element:
    section = root.find(name)
    if section is None:
        section = ElementTree.SubElement(root, name)
    return section


def _merge_members(
    std: _Dictionary,
    dia: _Dictionary,
    into: ElementTree.Element,
    dialect_node: ElementTree.Element,
) -> None:
    """What the dialect lists under a message, component or group and the standard lacks is
    added; a component the dialect places there, by its members (a broker's FIX44.xml keeps
    its groups in components, as FIX 4.4 does)."""
    for child in dialect_node:
        if child.tag == "component":
            component = dia.components.get(child.get("name", ""))
            if component is not None:
                _merge_members(std, dia, into, component)
            continue
        name = child.get("name", "")
        existing = std.find(into, name)
        if existing is None:
            into.append(copy.deepcopy(child))
        elif child.tag == "group" and existing.tag == "group":
            _merge_members(std, dia, existing, child)


def _add_beyond(std: _Dictionary, beyond: Mapping[int, frozenset[int]]) -> None:
    """Each of `beyond`'s members added to every group of its count tag that lacks it."""
    names = {f.get("number"): f.get("name", "") for f in std.fields}
    for count_tag, tags in beyond.items():
        for group in std.root.iter("group"):
            if group.get("name") == names.get(str(count_tag)):
                for tag in sorted(tags):
                    if std.find(group, names[str(tag)]) is None:
                        ElementTree.SubElement(
                            group, "field", {"name": names[str(tag)], "required": "N"}
                        )


MEMBERS_BEYOND_FIX44: dict[int, frozenset[int]] = {Tag.NO_MD_ENTRIES: frozenset({Tag.SIDE})}
"""What venues put in a group entry that FIX 4.4 does not list there, and the gateway reads:
a trade entry's aggressor (OKCoin's dialect lists it). Added to the inbound dictionary
whatever the dialect's lists, so that QuickFIX refuses no message the gateway reads."""


def _name_as_standard(dia: _Dictionary, std: _Dictionary) -> None:
    """Each field the dialect names otherwise than the standard, for the same tag, renamed
    to the standard's name wherever the dialect uses it: members are merged and read by
    name, and a broker's FIX44.xml may spell one as FIX 4.2 did (23 `IOIid`, FIX 4.4's
    `IOIID`), or be a FIX 4.2 dictionary altogether."""
    standard_names = {f.get("number"): f.get("name", "") for f in std.fields}
    renamed = {
        f.get("name", ""): standard_names[f.get("number")]
        for f in dia.fields
        if f.get("number") in standard_names and f.get("name") != standard_names[f.get("number")]
    }
    if not renamed:
        return
    for node in dia.root.iter():
        if node.tag in ("field", "group") and node.get("name") in renamed:
            node.set("name", renamed[node.get("name", "")])


def _custom_named_apart(dia: _Dictionary, std: _Dictionary) -> None:
    """Each of the dialect's own fields (a tag the standard lacks) named as a standard field
    is, renamed `<name>_<tag>` wherever the dialect uses it: a FIX 4.2 broker's `Username`
    at 9000 beside FIX 4.4's at 553 would be one name twice, which QuickFIX refuses. The
    gateway reads a dialect's own fields by tag, so the name is only the dictionary's."""
    standard_numbers = {f.get("number") for f in std.fields}
    standard_names = {f.get("name") for f in std.fields}
    renamed = {
        f.get("name", ""): f"{f.get('name')}_{f.get('number')}"
        for f in dia.fields
        if f.get("number") not in standard_numbers and f.get("name") in standard_names
    }
    for node in dia.root.iter():
        if node.tag in ("field", "group") and node.get("name") in renamed:
            node.set("name", renamed[node.get("name", "")])


def lenient_dictionary(dialect: Path, standard: Path) -> str:
    """The XML of the initiator's inbound dictionary (see the module's docstring)."""
    std = _Dictionary(ElementTree.parse(standard).getroot())  # noqa: S314 (files we ship)
    dia = _Dictionary(ElementTree.parse(dialect).getroot())  # noqa: S314
    _custom_named_apart(dia, std)
    _name_as_standard(dia, std)

    by_number = {f.get("number"): f for f in std.fields}
    for field in dia.fields:
        known = by_number.get(field.get("number"))
        if known is None:
            std.fields.append(copy.deepcopy(field))
        elif field.get("name") == MSG_TYPE_FIELD:
            values = {v.get("enum") for v in known}
            known.extend(copy.deepcopy(v) for v in field if v.get("enum") not in values)

    std_components = _section(std.root, "components")
    for name, component in dia.components.items():
        known = std.components.get(name)
        if known is None:
            std_components.append(copy.deepcopy(component))
            std.components[name] = std_components[-1]
        else:
            _merge_members(std, dia, known, component)

    by_type = {m.get("msgtype"): m for m in std.messages}
    for message in dia.messages:
        known = by_type.get(message.get("msgtype"))
        if known is None:
            std.messages.append(copy.deepcopy(message))
        else:
            _merge_members(std, dia, known, message)
    _add_beyond(std, MEMBERS_BEYOND_FIX44)

    for field in std.fields:
        if field.get("name") != MSG_TYPE_FIELD:
            for value in list(field):
                field.remove(value)
    application = [m for m in std.messages if m.get("msgcat") != "admin"]
    for node in [*application, *std.components.values()]:
        for member in node.iter():
            if member.get("required") == "Y":
                member.set("required", "N")
    return ElementTree.tostring(std.root, encoding="unicode")


@functools.cache
def inbound_group_trees(dialect: Path, standard: Path) -> dict[str, dict[int, GroupSpec]]:
    """The repeating groups of each message as the initiator's dictionary defines them
    (`lenient_dictionary`): every member FIX 4.4 or the dialect allows, nested groups
    included, each counted (`GroupSpec.ends_at`). Read once per pair of files."""
    return group_trees(lenient_dictionary(dialect, standard), counted=True)


def write_lenient_dictionary(dialect: Path, standard: Path, out: Path) -> Path:
    """Writes it to `out` (made again at every start: cheap, and never stale)."""
    out.write_text(lenient_dictionary(dialect, standard))
    return out
