"""What only OKCoin's dialect takes from the config: the `okcoin:` section, read when
`session.venue` is `okcoin`."""

from __future__ import annotations

from typing import Literal

import msgspec


class OkcoinConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What only OKCoin's dialect needs (`session.venue: okcoin`)."""

    account_on: list[Literal["D", "F", "H", "AF", "Z1000"]] = msgspec.field(
        default_factory=lambda: ["D", "Z1000"]
    )
    """Messages that carry Account (1) = `apiKey,secretKey`."""
