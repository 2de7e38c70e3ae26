"""Venues: each speaks its FIX dialect behind the `Venue` interface (`venues.base`)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fixgw.config import GatewayConfig
    from fixgw.fix.message import GroupSpec
    from fixgw.venues.base import Credentials, Venue


def venue_dictionary(name: str) -> Path:
    """The QuickFIX data dictionary a venue speaks by default."""
    from fixgw.config import bundled_dictionary, standard_fix44_dictionary

    return standard_fix44_dictionary() if name == "fix44" else bundled_dictionary()


def groups_read(dictionary: Path) -> Mapping[str, tuple[GroupSpec, ...]]:
    """The groups cut out of a venue's messages (`fix44.inbound.groups`), as the session
    reads them: with `dictionary` and standard FIX 4.4 around it."""
    from fixgw.config import standard_fix44_dictionary
    from fixgw.fix.dictionary import inbound_group_trees
    from fixgw.venues.fix44.inbound import groups

    return groups(inbound_group_trees(dictionary, standard_fix44_dictionary()))


def venue_for(config: GatewayConfig, credentials: Credentials) -> Venue:
    """The venue `session.venue` names, with its credentials, reading with the dictionary
    `session.dictionary` names (default: its own)."""
    s = config.session
    dictionary = Path(s.dictionary) if s.dictionary else None
    if s.venue == "fix44":
        from fixgw.venues.fix44.venue import Fix44Venue

        return Fix44Venue(credentials, dictionary)
    from fixgw.venues.okcoin.venue import OkcoinVenue

    return OkcoinVenue(credentials, frozenset(config.okcoin.account_on), dictionary)
