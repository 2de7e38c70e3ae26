"""Venues: each speaks its FIX dialect behind the `Venue` interface (`venues.base`)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fixgw.config import GatewayConfig
    from fixgw.venues.base import Credentials, Venue


def venue_dictionary(name: str) -> Path:
    """The QuickFIX data dictionary a venue speaks by default."""
    from fixgw.config import bundled_dictionary, standard_fix44_dictionary

    return standard_fix44_dictionary() if name == "fix44" else bundled_dictionary()


def venue_for(config: GatewayConfig, credentials: Credentials) -> Venue:
    """The venue `session.venue` names, with its credentials."""
    if config.session.venue == "fix44":
        from fixgw.venues.fix44.venue import Fix44Venue

        return Fix44Venue(credentials)
    from fixgw.venues.okcoin.venue import OkcoinVenue

    return OkcoinVenue(credentials, frozenset(config.okcoin.account_on))
