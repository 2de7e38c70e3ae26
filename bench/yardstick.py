"""The interpreter's yardstick: how fast this Python reads one ExecutionReport."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from fixgw.fix.message import parse
from fixgw.venues.okcoin.inbound import execution_report

_REPORT = (
    "8=FIX.4.4\x019=250\x0135=8\x0134=12\x0149=OKSERVER\x0152=20261125-22:00:00.123\x01"
    "56=fixgw\x0137=O123-45\x0111=c-123\x0117=E99-1\x01150=0\x0139=0\x0154=1\x0155=LTC/USD\x01"
    "38=1\x0140=2\x0144=60.5\x0114=0\x01151=1\x016=0\x0160=20261125-22:00:00.120\x0110=123\x01"
)


def interpreter_yardstick_us() -> float:
    """One ExecutionReport split and read into the domain's report, in a warm loop (best of
    twenty runs of 5,000: on a shared VM a single run can be half as fast again).

    Builds of the same Python differ by a quarter or more on one machine (pyenv's default
    build against Debian's, here: 27-29 us against 20), and the gateway's figures move with
    them: two results compare only with this beside them."""
    received = datetime.now(UTC)
    best = float("inf")
    for _ in range(20):
        start = time.perf_counter()
        for _ in range(5_000):
            execution_report(parse(_REPORT), received)
        best = min(best, time.perf_counter() - start)
    return round(best / 5_000 * 1e6, 1)


if __name__ == "__main__":
    print(interpreter_yardstick_us())
