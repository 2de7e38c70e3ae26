"""The streams the gateway holds for itself, and when to ask again for one refused.

A hold keeps a stream whatever happens to it: the price checks need the reference price of
every symbol they check. A held stream the exchange refuses is asked for again after a
back-off (`fixgw.marketdata.backoff`), and at once at every logon; a grant ends the back-off.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass

from fixgw.marketdata.backoff import next_backoff

StreamKey = tuple[str, str]
"""(symbol, kind): `book` or `trades`."""


@dataclass(slots=True)
class _Retry:
    """A held stream the exchange refused: when to ask again, and the wait after that."""

    due: float | None
    backoff_s: float


class Holds:
    def __init__(self) -> None:
        self._holders: dict[StreamKey, set[Hashable]] = {}
        self._retries: dict[StreamKey, _Retry] = {}

    def add(self, holder: Hashable, key: StreamKey) -> None:
        self._holders.setdefault(key, set()).add(holder)

    def remove(self, holder: Hashable, key: StreamKey) -> None:
        """`holder` lets go of `key`; the last to go ends its back-off."""
        holders = self._holders.get(key)
        if holders is None:
            return
        holders.discard(holder)
        if not holders:
            del self._holders[key]
            self._retries.pop(key, None)

    def holders(self, key: StreamKey) -> frozenset[Hashable]:
        return frozenset(self._holders.get(key, ()))

    def __contains__(self, key: StreamKey) -> bool:
        return key in self._holders

    def refused(self, key: StreamKey, now: float) -> float:
        """The exchange refused held `key`: it is due again after the next back-off, which
        this returns."""
        retry = self._retries.setdefault(key, _Retry(None, 0.0))
        retry.backoff_s = next_backoff(retry.backoff_s)
        retry.due = now + retry.backoff_s
        return retry.backoff_s

    def granted(self, key: StreamKey) -> None:
        self._retries.pop(key, None)

    def waiting(self) -> dict[StreamKey, float]:
        """The refused streams waiting out their back-off, and when each is due."""
        return {key: r.due for key, r in self._retries.items() if r.due is not None}

    def due(self, now: float | None = None) -> list[StreamKey]:
        """The refused streams to ask for again now (every one waiting, if `now` is None: a
        logon); each is taken off the wait, its back-off kept until it is granted."""
        keys = [
            key
            for key, retry in self._retries.items()
            if retry.due is not None and (now is None or retry.due <= now)
        ]
        for key in keys:
            self._retries[key].due = None
        return keys
