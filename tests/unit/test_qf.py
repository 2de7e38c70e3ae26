"""Header fields read off the raw string agree with QuickFIX's own parse."""

from __future__ import annotations

from pathlib import Path

import pytest
import quickfix as fix

from fixgw.fixmsg import SOH
from fixgw.qf import header_of

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "okcoin"


@pytest.mark.parametrize("path", sorted(FIXTURES.glob("*.fix")), ids=lambda p: p.stem)
def test_header_of_matches_quickfix(path: Path) -> None:
    raw = path.read_text().strip().replace("|", SOH)
    message = fix.Message(raw, False)
    header = message.getHeader()
    assert header_of(message.toString()) == (header.getField(35), int(header.getField(34)))
