"""Pre-trade limits and the outbound throttle, as arithmetic."""

from __future__ import annotations

import math
from decimal import Decimal as D
from fractions import Fraction

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fixgw.config import RiskConfig, ThrottleConfig, convert
from fixgw.domain import OrderType, Side, SubmitOrder, utc_now
from fixgw.engine.risk import PreTradeCheck, Throttle
from tests.fuzz import FUZZ_EXAMPLES

RISK = convert(
    {
        "max_open_orders": 3,
        "default": {"max_qty": "100"},
        "symbols": {
            "BTC/USD": {
                "max_qty": "2",
                "max_notional": "100000",
                "price_band_pct": "5",
                "sides": ["buy", "sell"],
            },
            "LTC/USD": {"sides": ["sell"]},
        },
    },
    RiskConfig,
)


def order(
    qty: str, price: str | None = "30000", symbol: str = "BTC/USD", side: str = "buy"
) -> SubmitOrder:
    return SubmitOrder(
        ts=utc_now(),
        cl_ord_id="c1",
        symbol=symbol,
        side=Side(side),
        order_type=OrderType.LIMIT if price else OrderType.MARKET,
        qty=D(qty),
        price=D(price) if price else None,
    )


@pytest.mark.parametrize(
    ("submitted", "reference", "open_orders", "limit"),
    [
        (order("1"), D(30000), 0, None),
        (order("1"), D(30000), 3, "max_open_orders"),
        (order("2.5"), D(30000), 0, "max_qty"),
        (order("1", "31400"), D(30000), 0, None),  # within 5%
        (order("1", "31600"), D(30000), 0, "price_band_pct"),
        (order("1", "28400"), D(30000), 0, "price_band_pct"),
        (order("1"), None, 0, "no_reference_price"),
        (order("2", None), D(60000), 0, "max_notional"),  # a market order at the reference
        (order("1", None), None, 0, "no_reference_price"),
        (order("1", None, symbol="LTC/USD"), None, 0, "sides"),
        (order("1", "70", symbol="LTC/USD", side="sell"), None, 0, None),
        (order("101", "1", symbol="ETH/USD"), None, 0, "max_qty"),  # the default limits
    ],
)
def test_each_limit_refuses_what_breaks_it(
    submitted: SubmitOrder, reference: D | None, open_orders: int, limit: str | None
) -> None:
    breach = PreTradeCheck(RISK).breach(submitted, reference, open_orders)
    assert (breach.limit if breach else None) == limit
    if breach:
        assert breach.message


@pytest.mark.parametrize(
    ("submitted", "reference", "limit", "message"),
    [
        (
            order("1", "31600"),
            D("30000.0"),  # a mid as computed: (29990 + 30010) times 0.5
            "price_band_pct",
            "price 31600 is outside 5% of 30000 (28500 to 31500)",
        ),
        (
            order("1", "40000"),
            D("30000.150"),
            "price_band_pct",
            "price 40000 is outside 5% of 30000.15 (28500.1425 to 31500.1575)",
        ),
        (
            order("2", None),
            D("60000.0"),
            "max_notional",
            "notional 120000 is above the limit 100000 for BTC/USD",
        ),
        (order("1", symbol="LTC/USD"), None, "sides", "buy orders are not allowed on LTC/USD"),
    ],
)
def test_a_breach_names_the_config_key_and_the_numbers_every_digit_and_no_more(
    submitted: SubmitOrder, reference: D | None, limit: str, message: str
) -> None:
    """The limit as the config names it (also `fixgw_risk_rejects_total{limit}`'s label);
    the numbers the gateway computed without padding (`30000.0`, `29700.000`)."""
    breach = PreTradeCheck(RISK).breach(submitted, reference, 0)
    assert breach is not None
    assert (breach.limit, breach.message) == (limit, message)


def test_the_throttle_spaces_messages_out_then_refuses_past_its_queue() -> None:
    throttle = Throttle(
        msgspec.convert(
            {"limits": {"new_order": {"per_s": 10, "burst": 2}}, "queue_max": 2}, ThrottleConfig
        )
    )
    assert [throttle.admit("new_order", 0.0) for _ in range(2)] == [0.0, 0.0]
    assert throttle.admit("new_order", 0.0) == pytest.approx(0.1)
    assert throttle.admit("new_order", 0.0) == pytest.approx(0.2)
    assert throttle.admit("new_order", 0.0) is None  # two already waiting
    assert throttle.queued() == 2
    throttle.sent_queued("new_order")
    throttle.sent_queued("new_order")
    assert throttle.admit("new_order", 1.0) == 0.0  # refilled
    assert throttle.admit("cancel", 0.0) == 0.0  # no limit set for cancels


def test_the_reject_policy_refuses_at_once() -> None:
    throttle = Throttle(
        msgspec.convert({"limits": {"cancel": {"per_s": 1}}, "policy": "reject"}, ThrottleConfig)
    )
    assert throttle.admit("cancel", 0.0) == 0.0
    assert throttle.admit("cancel", 0.5) is None
    assert throttle.admit("cancel", 1.01) == 0.0


def test_a_withdrawn_message_gives_back_its_place_and_its_token() -> None:
    throttle = Throttle(
        msgspec.convert(
            {"limits": {"new_order": {"per_s": 1, "burst": 1}}, "queue_max": 1}, ThrottleConfig
        )
    )
    assert throttle.admit("new_order", 0.0) == 0.0
    assert throttle.admit("new_order", 0.0) == pytest.approx(1.0)
    assert throttle.admit("new_order", 0.0) is None  # the queue is full
    throttle.release("new_order")
    assert throttle.queued() == 0
    assert throttle.admit("new_order", 0.0) == pytest.approx(1.0)  # its turn, not a later one


def test_new_limits_apply_to_a_running_bucket_and_queued_messages_keep_their_place() -> None:
    throttle = Throttle(
        msgspec.convert({"limits": {"new_order": {"per_s": 1, "burst": 1}}}, ThrottleConfig)
    )
    assert throttle.admit("new_order", 0.0) == 0.0
    assert throttle.admit("new_order", 0.0) == pytest.approx(1.0)
    throttle.reconfigure(
        msgspec.convert({"limits": {"new_order": {"per_s": 10, "burst": 5}}}, ThrottleConfig), 0.5
    )
    assert throttle.queued() == 1  # still counted until it is sent
    # half a token came at the old rate; the debt of the queued one is paid at the new rate
    assert throttle.admit("new_order", 0.5) == pytest.approx(0.15)
    throttle.reconfigure(msgspec.convert({}, ThrottleConfig), 1.0)
    assert throttle.admit("new_order", 1.0) == 0.0  # no limit any more
    throttle.sent_queued("new_order")
    throttle.sent_queued("new_order")
    assert throttle.queued() == 0


@pytest.mark.parametrize(
    ("limits", "needs"),
    [
        ({"max_notional": "40000"}, True),  # a market order's notional needs a price
        ({"price_band_pct": "1"}, True),
        ({"max_qty": "2", "sides": ["buy"]}, False),
    ],
)
def test_every_limit_that_needs_a_price_asks_for_one(limits: dict[str, str], needs: bool) -> None:
    check = PreTradeCheck(convert({"symbols": {"BTC/USD": limits}}, RiskConfig))
    assert check.needs_reference("BTC/USD") is needs


@pytest.mark.parametrize(
    ("qty", "price"),
    [
        ("1000000000000.000000000000000001", "1"),  # passed: rounded to 28 digits, 10**12
        ("1", "1000000000000.000000000000000001"),
        ("999999999999999.999999999999999999", "999999999999999.999999999999999999"),
    ],
)
def test_a_notional_above_the_limit_by_any_amount_is_refused(qty: str, price: str) -> None:
    """The largest quantity and price the protocol takes have 33 digits each: their
    product is compared in full."""
    notional = attos(qty) * attos(price)  # in units of 1e-36, by integers
    for limit, breached in ((notional, False), (notional - 1, True)):
        text = format(D(f"{limit}e-36"), "f")
        check = PreTradeCheck(convert({"symbols": {"BTC/USD": {"max_notional": text}}}, RiskConfig))
        breach = check.breach(order(qty, price), None, 0)
        assert (breach is not None and breach.limit == "max_notional") is breached, (text, breach)


def attos(text: str) -> int:
    """A plain decimal of at most 18 places in units of 1e-18."""
    whole, _, fraction = text.partition(".")
    return int(whole + fraction.ljust(18, "0"))


_money = st.from_regex(r"[1-9][0-9]{0,14}(\.[0-9]{1,18})?|0\.[0-9]{0,17}[1-9]", fullmatch=True)


@pytest.mark.fuzz
@settings(max_examples=FUZZ_EXAMPLES, deadline=None, derandomize=True)
@given(qty=_money, price=_money, digits=st.integers(1, 40), offset=st.integers(-3, 3))
def test_the_notional_check_is_exact_for_any_quantity_price_and_limit(
    qty: str, price: str, digits: int, offset: int
) -> None:
    """A limit near the product, of few digits or many: refused exactly when the product,
    by integers, is above it (most products are settled in 28 digits, the rest in full)."""
    notional = attos(qty) * attos(price)
    limit = max(1, (notional // 10 ** max(0, 36 - digits) + offset) * 10 ** max(0, 36 - digits))
    text = format(D(f"{limit}e-36"), "f")
    check = PreTradeCheck(convert({"symbols": {"BTC/USD": {"max_notional": text}}}, RiskConfig))
    breach = check.breach(order(qty, price), None, 0)
    assert (breach is not None) is (notional > limit), (text, breach)


def edges(reference: str, band: str) -> tuple[int, int]:
    """The band's edges around `reference` in units of 1e-18, by fractions: the lowest
    price inside it and the highest (each of 18 places at most, as the protocol takes)."""
    share, scaled = Fraction(band) / 100, Fraction(reference) * 10**18
    return math.ceil(scaled * (1 - share)), math.floor(scaled * (1 + share))


def band_breached(reference: str, band: str, price: int) -> bool:
    check = PreTradeCheck(convert({"symbols": {"BTC/USD": {"price_band_pct": band}}}, RiskConfig))
    breach = check.breach(order("1", format(D(f"{price}e-18"), "f")), D(reference), 0)
    return breach is not None and breach.limit == "price_band_pct"


@pytest.mark.parametrize(
    ("reference", "band"),
    [
        ("123456789012345.123456789012345678", "5"),  # both edges rounded in 28 digits
        ("999999999999999.999999999999999999", "0.000000000000000001"),
    ],
)
def test_the_price_band_is_exact_at_both_edges(reference: str, band: str) -> None:
    """A price on the band's edge is inside it, one 1e-18 beyond is outside, however many
    digits the reference price and the band have (a reference is a venue's price)."""
    lowest, highest = edges(reference, band)
    assert not band_breached(reference, band, lowest)
    assert not band_breached(reference, band, highest)
    assert band_breached(reference, band, lowest - 1)
    assert band_breached(reference, band, highest + 1)


@pytest.mark.fuzz
@settings(max_examples=FUZZ_EXAMPLES, deadline=None, derandomize=True)
@given(
    reference=_money,
    band=st.from_regex(r"[1-9][0-9]?(\.[0-9]{1,18})?|0\.[0-9]{0,17}[1-9]", fullmatch=True),
    offset=st.integers(-2, 2),
)
def test_the_price_band_is_exact_for_any_reference_and_band(
    reference: str, band: str, offset: int
) -> None:
    """Prices around either edge: refused exactly when outside the band by integers."""
    lowest, highest = edges(reference, band)
    for edge in (lowest, highest):
        price = edge + offset
        if 0 < price < 10**33:
            assert band_breached(reference, band, price) is not (lowest <= price <= highest)


def test_a_breach_tells_its_amounts_as_plain_decimals() -> None:
    check = PreTradeCheck(convert({"symbols": {"BTC/USD": {"max_qty": "0.000000001"}}}, RiskConfig))
    breach = check.breach(order("0.00000001"), None, 0)
    assert breach is not None
    assert breach.message == "qty 0.00000001 is above the limit 0.000000001 for BTC/USD"
