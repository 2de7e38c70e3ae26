"""The documentation: every relative link leads to a file (and a heading, where it names one),
every test a page cites as its proof exists, and the README stays a front door."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest

from fixgw.config import GatewayConfig, SimConfig
from fixgw.results import AccountState, Status

ROOT = Path(__file__).resolve().parents[2]
PAGES = sorted(
    [
        ROOT / "README.md",
        ROOT / "CHANGELOG.md",
        ROOT / "bench" / "HISTORY.md",
        *ROOT.glob("docs/*.md"),
    ]
)
GUIDES = [ROOT / "README.md", *sorted(ROOT.glob("docs/*.md"))]
"""The pages that describe fixgw as it is."""
README_MAX_LINES = 160

PENDING: set[Path] = set()
"""Pages linked before they are written (the lead's): a link to one is not checked while it
does not exist. Take a page out of this set once it is in."""

_LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")
_FENCE = re.compile(r"^(```|~~~).*?^\1", re.MULTILINE | re.DOTALL)
_CODE = re.compile(r"`[^`\n]*`")
_SOURCE = re.compile(r"(?<![\w/.-])fixgw/[\w/]+\.py\b")
_PROOF = re.compile(r"`((?:unit|integration|counterparties)/[\w/]+\.py)(?:::(\w+))?`")


def _prose(text: str) -> str:
    """The text outside code blocks and code spans, where links live."""
    return _CODE.sub("", _FENCE.sub("", text))


def _slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"`|\*\*|__", "", heading.strip()).lower()
    kept = "".join(c for c in text if c in " -_" or unicodedata.category(c)[0] in ("L", "N"))
    return kept.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """Every heading's anchor; a repeated heading's gets -1, -2, ..., as on GitHub."""
    seen: dict[str, int] = {}
    found = set()
    for line in _FENCE.sub("", page.read_text()).splitlines():
        match = re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not match:
            continue
        slug = _slug(match.group(1))
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        found.add(slug if count == 0 else f"{slug}-{count}")
    return found


def relative_links(page: Path) -> list[tuple[Path, str]]:
    """(target file, anchor or "") of every link that is not a URL or an anchor alone."""
    links = []
    for target in _LINK.findall(_prose(page.read_text())):
        if re.match(r"[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
            continue
        path, _, anchor = target.partition("#")
        links.append(((page.parent / path).resolve(), anchor))
    return links


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_leads_to_a_file_and_its_heading(page: Path) -> None:
    broken = []
    for target, anchor in relative_links(page):
        if target in PENDING and not target.exists():
            continue
        if not target.exists():
            broken.append(f"{target.relative_to(ROOT)}: no such file")
        elif anchor and target.suffix == ".md" and anchor not in anchors(target):
            broken.append(f"{target.relative_to(ROOT)}#{anchor}: no such heading")
    assert not broken, f"{page.relative_to(ROOT)}: {broken}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_test_a_page_cites_exists(page: Path) -> None:
    """Proofs are cited as `unit/...py`, `integration/...py` or `counterparties/...py`
    (under tests/), with `::test_name` where one test proves it."""
    missing = []
    for path, test in _PROOF.findall(page.read_text()):
        source = ROOT / "tests" / path
        if not source.is_file():
            missing.append(path)
        elif test and not re.search(rf"^def {test}\(", source.read_text(), re.MULTILINE):
            missing.append(f"{path}::{test}")
    assert not missing, f"{page.relative_to(ROOT)}: {missing}"


@pytest.mark.parametrize("page", GUIDES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_source_file_a_page_names_exists(page: Path) -> None:
    """A reader sent to `fixgw/qflisten.py` found nothing: it is `fixgw/fix/qflisten.py`.
    (The changelog is history: it may name a file as it was then.)"""
    missing = [path for path in _SOURCE.findall(page.read_text()) if not (ROOT / path).is_file()]
    assert not missing, f"{page.relative_to(ROOT)}: {missing}"


def test_the_readme_is_a_front_door() -> None:
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines"


def test_the_checks_find_what_they_look_for() -> None:
    """The link and heading readers on a page of known content."""
    page = ROOT / "docs" / "configuration.md"
    assert "reload-sighup" in anchors(page)
    assert "session-the-fix-session-to-the-exchange" in anchors(page)
    targets = relative_links(ROOT / "README.md")
    assert (ROOT / "docs" / "protocol.md", "") in targets
    assert len(targets) >= 15
    assert "fixgw/fix/qflisten.py" in _SOURCE.findall((ROOT / "docs" / "bridge.md").read_text())


def test_status_account_names_each_field_the_gateway_returns() -> None:
    """`status.account` is an object: docs/protocol.md names its fields (as `name`:), each
    one the gateway returns, and no other."""
    text = (ROOT / "docs" / "protocol.md").read_text()
    [status_row] = [line for line in text.splitlines() if line.startswith("| `status` |")]
    described = re.search(r"`account` \(an object([^()]*)\)", status_row)
    assert described is not None, "the `status` row describes no `account` object"
    assert re.findall(r"`(\w+)`:", described.group(1)) == list(AccountState.__struct_fields__)


def test_the_status_row_names_each_field_the_gateway_returns() -> None:
    """A client reads `status` by docs/protocol.md: every field of the reply is named there."""
    text = (ROOT / "docs" / "protocol.md").read_text()
    [status_row] = [line for line in text.splitlines() if line.startswith("| `status` |")]
    named = set(re.findall(r"`(\w+)`", status_row))
    assert [f for f in Status.__struct_fields__ if f not in named] == []


def config_keys(kind: type[msgspec.Struct]) -> list[tuple[str, str]]:
    """(top-level key, key path) of every key a config takes, nested structs walked
    (`bridge.sessions[].comp_id`, `risk.symbols.<key>.max_qty`); a struct met again (a
    secret's `{env: ...}` or `{file: ...}`) is walked once, where it is met first."""
    keys: list[tuple[str, str]] = []
    walked: set[type] = set()

    def walk(struct: msgspec.inspect.StructType, prefix: str, top: str | None) -> None:
        for field in struct.fields:
            path = prefix + field.encode_name
            keys.append((top or path, path))
            for inner, suffix in _structs_in(field.type):
                if inner.cls not in walked:
                    walked.add(inner.cls)
                    walk(inner, f"{path}{suffix}.", top or path)

    root = msgspec.inspect.type_info(kind)
    assert isinstance(root, msgspec.inspect.StructType)
    walk(root, "", None)
    return keys


def _structs_in(kind: msgspec.inspect.Type) -> Iterator[tuple[msgspec.inspect.StructType, str]]:
    if isinstance(kind, msgspec.inspect.StructType):
        yield kind, ""
    elif isinstance(kind, msgspec.inspect.Metadata):
        yield from _structs_in(kind.type)
    elif isinstance(kind, msgspec.inspect.UnionType):
        for member in kind.types:
            yield from _structs_in(member)
    elif isinstance(kind, msgspec.inspect.ListType):
        yield from ((s, f"[]{suffix}") for s, suffix in _structs_in(kind.item_type))
    elif isinstance(kind, msgspec.inspect.DictType):
        yield from ((s, f".<key>{suffix}") for s, suffix in _structs_in(kind.value_type))


def example_sections(example: Path) -> dict[str, str]:
    """An example config's text by top-level key, set or commented out (`# bridge:`)."""
    text = example.read_text()
    starts = [(m.group(1), m.start()) for m in re.finditer(r"^(?:# )?([a-z_]+):", text, re.M)]
    ends = [start for _, start in starts[1:]] + [len(text)]
    return {name: text[start:end] for (name, start), end in zip(starts, ends, strict=True)}


def not_in_example(kind: type[msgspec.Struct], example: Path) -> list[str]:
    """The key paths of `kind` not written (set or commented out) under their top-level key
    in `example`. `nats` is there as a pointer: its keys are on docs/nats.md, in "Turning it
    on", as docs/configuration.md says."""
    sections = example_sections(example)
    nats_keys = (ROOT / "docs" / "nats.md").read_text().split("## Turning it on")[1]
    nats_keys = nats_keys.split("\n## ")[0]
    missing = []
    for top, path in config_keys(kind):
        leaf = path.rsplit(".", 1)[-1]
        if top == "nats" and path != top:
            found = re.search(rf"\b{leaf}\b", nats_keys) is not None
        else:
            found = top in sections and re.search(rf"\b{leaf}:", sections[top]) is not None
        if not found:
            missing.append(path)
    return missing


def test_the_example_configs_list_every_key() -> None:
    """docs/configuration.md: config/fixgw.example.yaml lists every key, and
    config/sim.example.yaml the simulator's; a key added to a config struct and not to its
    example (`bridge.logon_timeout_s`, the simulator's `load_feeds`) fails here."""
    assert not_in_example(GatewayConfig, ROOT / "config" / "fixgw.example.yaml") == []
    assert not_in_example(SimConfig, ROOT / "config" / "sim.example.yaml") == []


def test_the_example_key_check_finds_what_it_looks_for() -> None:
    keys = {path for _, path in config_keys(GatewayConfig)}
    assert {"bridge.sessions[].comp_id", "throttle.limits.<key>.per_s", "nats.auth.user"} <= keys
    assert "credentials.api_key.env" in keys and "api.tcp.token.env" not in keys
    sections = example_sections(ROOT / "config" / "fixgw.example.yaml")
    assert "logout_timeout_s:" in sections["session"] and "bridge" in sections
