"""ClOrdIDs that stay unique across restarts without a store.

`<prefix><start time in base 36>-<counter in base 36>`: the start time is the process's
start in microseconds, so two runs never share a stem unless the clock goes back; the
order tracker refuses any id it already holds in any case.
"""

from __future__ import annotations

import itertools
import string
import time
from typing import Final

_DIGITS = string.digits + string.ascii_lowercase

GENERATED_PREFIX: Final = "fx"
"""What every ClOrdID the gateway makes up starts with: no client may choose one that does,
or the gateway's next id could be taken."""


def base36(n: int) -> str:
    out = []
    while True:
        n, r = divmod(n, 36)
        out.append(_DIGITS[r])
        if n == 0:
            return "".join(reversed(out))


class ClOrdIdGenerator:
    def __init__(self, prefix: str = GENERATED_PREFIX, start_us: int | None = None) -> None:
        start = start_us if start_us is not None else time.time_ns() // 1000
        self._stem = f"{prefix}{base36(start)}-"
        self._counter = itertools.count(1)

    def __call__(self) -> str:
        return self._stem + base36(next(self._counter))
