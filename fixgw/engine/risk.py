"""What stands between a client and the exchange: pre-trade limits and outbound throttles.

Pure bookkeeping, no I/O: the gateway asks `PreTradeCheck.breach` before an order is
tracked, and `Throttle.admit` before each message goes out. The kill switch is the
gateway's (it cancels orders); its state lives in the journal.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_FLOOR, Context, Decimal

from fixgw.config import RiskConfig, SymbolLimits, ThrottleConfig, ThrottleKind
from fixgw.decimals import EXACT, plain_decimal_text, trimmed_decimal_text
from fixgw.domain import OrderType, SubmitOrder

HUNDRED = Decimal(100)
FLOOR = Context(rounding=ROUND_FLOOR)
"""The default context's 28 digits, rounding down."""


@dataclass(frozen=True)
class Breach:
    limit: str
    """Which limit, by its config key: `max_qty`, `max_notional`, `price_band_pct`, `sides`,
    `max_open_orders`; or `no_reference_price` (a check needs a price the gateway does not
    have yet). Also the `fixgw_risk_rejects_total{limit}` label."""
    message: str


class PreTradeCheck:
    def __init__(self, config: RiskConfig) -> None:
        self.config = config
        every = [config.default, *config.symbols.values()]
        self._notional_floors = {
            limits.max_notional: FLOOR.plus(limits.max_notional)
            for limits in every
            if limits.max_notional is not None
        }
        """Each `max_notional` rounded down to 28 digits (see `breach`)."""
        self._band_factors = {
            limits.price_band_pct: _band_factors(limits.price_band_pct)
            for limits in every
            if limits.price_band_pct is not None
        }
        """Each `price_band_pct` as the two factors of the reference price that bound it."""

    def limits(self, symbol: str) -> SymbolLimits:
        return self.config.symbols.get(symbol, self.config.default)

    def needs_reference(self, symbol: str) -> bool:
        """Whether a limit on `symbol` needs a market price: a price band, or a notional cap
        (a market order's notional is its qty at the reference price)."""
        limits = self.limits(symbol)
        return limits.price_band_pct is not None or limits.max_notional is not None

    def breach(
        self, order: SubmitOrder, reference: Decimal | None, open_orders: int
    ) -> Breach | None:
        """The first limit the order breaks, or None. `reference`: last trade, else mid."""
        limits = self.limits(order.symbol)
        cap = self.config.max_open_orders
        if cap is not None and open_orders >= cap:
            return Breach("max_open_orders", f"{open_orders} orders open; the limit is {cap}")
        if order.side not in limits.sides:
            return Breach("sides", f"{order.side} orders are not allowed on {order.symbol}")
        if limits.max_qty is not None and order.qty > limits.max_qty:
            return Breach(
                "max_qty",
                f"qty {plain_decimal_text(order.qty)} is above the limit "
                f"{plain_decimal_text(limits.max_qty)} for {order.symbol}",
            )
        price = order.price if order.order_type is OrderType.LIMIT else reference
        if limits.max_notional is not None:
            if price is None:
                return Breach(
                    "no_reference_price",
                    f"no price for {order.symbol} yet to check a market order's notional",
                )
            # Exact, whatever the digits, at the operator's cost for most orders: rounding
            # to the default context's 28 digits (which let an order a hair above the limit
            # through) never crosses a number it can represent, so a product rounded to
            # below the limit's 28-digit floor was below the limit. Only one that reaches
            # the floor is computed in full (a context's method costs several operators).
            limit = limits.max_notional
            if order.qty * price >= self._notional_floors[limit]:
                notional = EXACT.multiply(order.qty, price)
                if notional > limit:
                    return Breach(
                        "max_notional",
                        f"notional {trimmed_decimal_text(notional)} is above the limit "
                        f"{plain_decimal_text(limit)} for {order.symbol}",
                    )
        band = limits.price_band_pct
        if band is not None and order.order_type is OrderType.LIMIT:
            if reference is None:
                return Breach(
                    "no_reference_price",
                    f"no last trade or mid for {order.symbol} yet to check the price band",
                )
            below, above = self._band_factors[band]
            low, high = EXACT.multiply(reference, below), EXACT.multiply(reference, above)
            assert order.price is not None
            if not low <= order.price <= high:
                return Breach(
                    "price_band_pct",
                    f"price {plain_decimal_text(order.price)} is outside "
                    f"{plain_decimal_text(band)}% of {trimmed_decimal_text(reference)} "
                    f"({trimmed_decimal_text(low)} to {trimmed_decimal_text(high)})",
                )
        return None


def _band_factors(band: Decimal) -> tuple[Decimal, Decimal]:
    """`1 - band/100` and `1 + band/100`, exactly: the band's edges are the reference price
    times these, every digit kept (in 28 digits, a price just outside could pass)."""
    return (
        EXACT.scaleb(EXACT.subtract(HUNDRED, band), Decimal(-2)),
        EXACT.scaleb(EXACT.add(HUNDRED, band), Decimal(-2)),
    )


@dataclass
class _Bucket:
    rate: float
    burst: float
    tokens: float
    at: float
    queued: int = 0

    def refill(self, now: float) -> None:
        """The tokens earned since `at`, up to the burst."""
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now


@dataclass
class Throttle:
    """A token bucket per message kind (`new_order`, `cancel`, `status`). Over the rate,
    `policy: queue` spaces messages out (up to `queue_max` waiting), `reject` refuses."""

    config: ThrottleConfig
    _buckets: dict[ThrottleKind, _Bucket] = field(default_factory=dict)

    def admit(self, kind: ThrottleKind, now: float, must: bool = False) -> float | None:
        """Seconds to wait before sending (0: now), or None: refused. `must`: the gateway's
        own message, which the protocol needs: spaced out like the rest, never refused."""
        limit = self.config.limits.get(kind)
        if limit is None:
            return 0.0
        bucket = self._buckets.get(kind)
        if bucket is None:
            bucket = self._buckets[kind] = _Bucket(
                limit.per_s, limit.burst, float(limit.burst), now
            )
        bucket.refill(now)
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return 0.0
        if not must and (self.config.policy == "reject" or bucket.queued >= self.config.queue_max):
            return None
        bucket.tokens -= 1
        bucket.queued += 1
        return -bucket.tokens / bucket.rate

    def sent_queued(self, kind: ThrottleKind) -> None:
        self._buckets[kind].queued -= 1

    def release(self, kind: ThrottleKind) -> None:
        """A queued message that will not be sent after all: its place in the queue and the
        token it took are given back."""
        bucket = self._buckets[kind]
        bucket.queued -= 1
        bucket.tokens = min(bucket.burst, bucket.tokens + 1)

    def give_back(self, kind: ThrottleKind) -> None:
        """A message let through at once that was not sent after all: its token back."""
        bucket = self._buckets.get(kind)
        if bucket is not None and kind in self.config.limits:
            bucket.tokens = min(bucket.burst, bucket.tokens + 1)

    def reconfigure(self, config: ThrottleConfig, now: float) -> None:
        """New limits for the buckets there are, from `now` on. Messages already queued keep
        their place (counted against `queue_max` as before) and their debt, paid at the new
        rate (`turns`); a bucket whose limit is gone lets everything through and is kept
        only to count them down."""
        self.config = config
        for kind, bucket in self._buckets.items():
            limit = config.limits.get(kind)
            if limit is not None:
                bucket.refill(now)
                bucket.rate, bucket.burst = float(limit.per_s), float(limit.burst)
                bucket.tokens = min(bucket.tokens, bucket.burst)

    def turns(self, kind: ThrottleKind, now: float) -> list[float]:
        """Seconds from `now` until each queued message of `kind` may go at the bucket's
        rate, earliest first: the last one queued waits until the whole debt is paid, each
        one ahead of it a token sooner."""
        bucket = self._buckets[kind]
        bucket.refill(now)
        return [
            max(0.0, (-bucket.tokens - behind) / bucket.rate)
            for behind in reversed(range(bucket.queued))
        ]

    def queued(self) -> int:
        return sum(b.queued for b in self._buckets.values())
