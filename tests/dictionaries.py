"""Data dictionaries an operator may name in `session.dictionary`, made for tests."""

from __future__ import annotations

from pathlib import Path
from xml.etree import ElementTree

from fixgw.config import standard_fix44_dictionary

VENUE_ENTRY_TAG = 9001
"""A broker's own field, which its dictionary lists in every MDEntries entry."""


def broker_dictionary(out: Path) -> Path:
    """A broker's own FIX44.xml: the standard one with its custom field VenueEntryTag (9001)
    added to the entries of MDFullGrp and MDIncGrp, the components FIX 4.4 keeps the
    snapshot's and the update's groups in."""
    tree = ElementTree.parse(standard_fix44_dictionary())  # noqa: S314 (the installed file)
    root = tree.getroot()
    fields = root.find("fields")
    assert fields is not None
    ElementTree.SubElement(
        fields, "field", {"number": str(VENUE_ENTRY_TAG), "name": "VenueEntryTag", "type": "STRING"}
    )
    for component in root.iterfind("components/component"):
        if component.get("name") in ("MDFullGrp", "MDIncGrp"):
            group = component.find("group")
            assert group is not None
            ElementTree.SubElement(group, "field", {"name": "VenueEntryTag", "required": "N"})
    tree.write(out)
    return out


def respelt_dictionary(out: Path, number: int, name: str) -> Path:
    """The standard FIX44.xml with field `number` named `name` wherever it is used, as a
    broker's may name one (23 `IOIid`, FIX 4.2's spelling, for FIX 4.4's `IOIID`)."""
    tree = ElementTree.parse(standard_fix44_dictionary())  # noqa: S314 (the installed file)
    root = tree.getroot()
    (field,) = [f for f in root.iterfind("fields/field") if f.get("number") == str(number)]
    standard_name = field.get("name")
    for node in root.iter():
        if node.tag in ("field", "group") and node.get("name") == standard_name:
            node.set("name", name)
    tree.write(out)
    return out


def with_own_fields(base: Path, out: Path, fields: dict[int, str], msg_type: str) -> Path:
    """`base` with a broker's own `fields` (tag: name) added, and listed in message
    `msg_type`: a FIX 4.2 broker's own Username and Password at 9000 and 9001 in its Logon,
    say, names FIX 4.4 gives tags 553 and 554."""
    tree = ElementTree.parse(base)  # noqa: S314 (an installed or a test's file)
    root = tree.getroot()
    section = root.find("fields")
    (message,) = [m for m in root.iterfind("messages/message") if m.get("msgtype") == msg_type]
    assert section is not None
    for number, name in fields.items():
        ElementTree.SubElement(
            section, "field", {"number": str(number), "name": name, "type": "STRING"}
        )
        ElementTree.SubElement(message, "field", {"name": name, "required": "N"})
    tree.write(out)
    return out
