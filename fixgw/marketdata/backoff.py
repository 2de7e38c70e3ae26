"""How long the gateway waits before asking the exchange again for a stream that failed
(refused, or its answers unusable) while it keeps failing: 1 s, doubling to 60 s. The same
wait paces the questions about an order whose answers stay unreadable
(`engine.reconcile`)."""

from __future__ import annotations

RETRY_FLOOR_S = 1.0
RETRY_CEILING_S = 60.0


def next_backoff(current_s: float) -> float:
    """The wait after `current_s`; 0: the first."""
    return RETRY_FLOOR_S if current_s <= 0 else min(RETRY_CEILING_S, current_s * 2)
