"""What the bridge does with every field an OMS may send on the messages it takes.

Bridge rule (design.md): an order attribute the venue cannot honour is refused, never
dropped. So each field of a NewOrderSingle (D), OrderCancelRequest (F), OrderStatusRequest
(H) and MarketDataRequest (V) is one of

- honoured: the bridge reads it, and the exchange does what it says;
- ignored: the outcome is the same whatever it says (a note for the OMS's own records, an
  id, a time), so it goes no further;
- refused: the venue cannot carry its meaning; the whole message is refused (D: an
  ExecutionReport 150=8 with OrdRejReason 11; V: a MarketDataRequestReject with the
  reason below), with Text naming the field and the value.

A field may depend on its value (TimeInForce 1 is the venue's own behaviour, 4 is not), on
another field (IOC is what the venue's market order does, not its limit order), and on the
venue: TimeInForce (59) alone, by the values the venue carries (`Venue.time_in_force`),
decided in one place (`time_in_force_field`, and `carried_time_in_force` for what goes on).
A field not listed takes the message's `other` rule: refused on D and V (an attribute the
bridge knows nothing of cannot be known to be harmless), ignored on F and H (a cancel
cancels the order its OrigClOrdID names, and a status request changes nothing, whatever
else they carry). An OrderCancelReplaceRequest (G) is refused whole: the exchange cannot
replace an order.

The rest of the table was decided for OKCoin's FIX dialect (spot; NewOrderSingle has
Symbol, Side, OrderQty, OrdType 1 or 2, Price, TransactTime and nothing else): a limit order
rests until filled or cancelled; a market order fills what it can at once and the rest is
cancelled. It holds for plain FIX 4.4 too, as the gateway's order carries nothing more than
those and a time in force. `TABLES` are for a venue that carries no TimeInForce (OKCoin);
`tables` gives them for any venue. `docs/bridge-fields.md` is made from them (`markdown`).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Protocol

from fixgw.domain import TimeInForce
from fixgw.fix.codes import TIME_IN_FORCE


class Act(StrEnum):
    HONOURED = "honoured"
    IGNORED = "ignored"
    REFUSED = "refused"


class Condition(Protocol):
    def holds(self, value: str, message: Mapping[int, str]) -> bool: ...

    def describe(self) -> str: ...


@dataclass(frozen=True, slots=True)
class OtherField:
    """Another field of the message (its first occurrence) has one of `values`."""

    tag: int
    name: str
    values: frozenset[str]

    def holds(self, value: str, message: Mapping[int, str]) -> bool:
        return message.get(self.tag) in self.values

    def describe(self) -> str:
        return f"with {self.name} ({self.tag}) {' or '.join(sorted(self.values))}"


@dataclass(frozen=True, slots=True)
class QuoteCurrency:
    """The value is the currency the Symbol (55) is priced in (`BTC/USD`: USD)."""

    def holds(self, value: str, message: Mapping[int, str]) -> bool:
        symbol = message.get(55, "")
        return "/" in symbol and value == symbol.rpartition("/")[2]

    def describe(self) -> str:
        return "when it is the Symbol's quote currency"


@dataclass(frozen=True, slots=True)
class Rule:
    act: Act
    why: str
    reason: str | None = None
    """The refusal's reject reason where it differs from the message's (V: MDReqRejReason)."""
    when: tuple[Condition, Rule] | None = None
    """Another rule, in force while the condition holds."""

    def resolve(self, value: str, message: Mapping[int, str]) -> Rule:
        if self.when is not None and self.when[0].holds(value, message):
            return self.when[1].resolve(value, message)
        return self


def honoured(why: str, when: tuple[Condition, Rule] | None = None) -> Rule:
    return Rule(Act.HONOURED, why, when=when)


def ignored(why: str, when: tuple[Condition, Rule] | None = None) -> Rule:
    return Rule(Act.IGNORED, why, when=when)


def refused(
    why: str, reason: str | None = None, when: tuple[Condition, Rule] | None = None
) -> Rule:
    return Rule(Act.REFUSED, why, reason, when)


@dataclass(frozen=True, slots=True)
class Field:
    tag: int
    name: str
    rule: Rule
    """For any value `values` does not name."""
    values: Mapping[str, tuple[str, Rule]] = field(default_factory=dict)
    """By value: what it means, and its rule."""
    multiple: bool = False
    """A MultipleValueString: each space-separated value is taken on its own."""

    def rule_for(self, value: str, message: Mapping[int, str]) -> Rule:
        _, rule = self.values.get(value, ("", self.rule))
        return rule.resolve(value, message)

    def meaning(self, value: str) -> str:
        return self.values.get(value, ("", self.rule))[0]


@dataclass(frozen=True, slots=True)
class MessageFields:
    msg_type: str
    name: str
    fields: Mapping[int, Field]
    other: Rule
    """For a body field the table does not list."""
    reason: str | None
    """The reject reason of a refusal (D: OrdRejReason), unless the rule names its own."""


@dataclass(frozen=True, slots=True)
class Refusal:
    tag: int
    name: str
    value: str
    meaning: str
    why: str
    reason: str | None

    @property
    def text(self) -> str:
        value = f"{self.value} ({self.meaning})" if self.meaning else self.value
        name = f"{self.name} ({self.tag})" if self.name else f"tag {self.tag}"
        return f"{name} = {value}: {self.why}"


HEADER_AND_TRAILER = frozenset(
    {8, 9, 35, 49, 56, 115, 128, 90, 91, 34, 50, 142, 57, 143, 116, 144, 129, 145, 43, 97}
    | {52, 122, 212, 213, 347, 369, 627, 628, 629, 630, 93, 89, 10}
)
"""FIX 4.4's standard header and trailer: the session's, not the order's."""


def screen(table: MessageFields, pairs: Sequence[tuple[int, str]]) -> list[Refusal]:
    """The message's fields (tag, value pairs in order) that the table refuses, each field
    and value once."""
    first: dict[int, str] = {}
    for tag, value in pairs:
        first.setdefault(tag, value)
    refusals: dict[tuple[int, str], Refusal] = {}
    for tag, value in pairs:
        if tag in HEADER_AND_TRAILER:
            continue
        known = table.fields.get(tag)
        for one in value.split(" ") if known is not None and known.multiple else [value]:
            rule = known.rule_for(one, first) if known else table.other.resolve(one, first)
            if rule.act is Act.REFUSED and (tag, one) not in refusals:
                refusals[(tag, one)] = Refusal(
                    tag,
                    known.name if known else "",
                    one,
                    known.meaning(one) if known else "",
                    rule.why,
                    rule.reason or table.reason,
                )
    return list(refusals.values())


def _table(fields: Iterable[Field]) -> dict[int, Field]:
    table: dict[int, Field] = {}
    for f in fields:
        assert f.tag not in table, f"tag {f.tag} listed twice"
        table[f.tag] = f
    return table


# ------------------------------------------------------------ reasons shared by fields

_RECORDS = (
    "a declaration for the firm's and the regulator's records: the venue keeps no such "
    "record, and nothing about how the order executes depends on it"
)
_OMS_ID = "the OMS's own reference: the bridge answers under the OMS's ClOrdID"
_FREE_TEXT = "free text: the venue takes none, and it instructs nothing"
_INSTRUMENT = (
    "names the instrument otherwise than by Symbol: the bridge trades by Symbol (55) and "
    "cannot check that the two agree"
)
_ONE_ACCOUNT = (
    "the gateway trades one exchange account; the OMS session, not the field, says whose "
    "orders they are"
)
_ONE_VENUE = "the bridge reaches one venue and cannot route"
_NO_SESSIONS = "the venue trades continuously, with no trading sessions an order could be held to"
_PEG = "the venue has no pegged orders: the price would be fixed, not follow the peg"
_DISCRETION = "the venue has no discretion: the order would execute at its Price only"
_ALGO = "the venue runs no algorithms: the order would execute as a plain order"
_EXPIRY = "the venue's orders have no expiry: the order would rest past it"
_SHOW = "the venue shows every order whole: there are no reserve or iceberg orders"
_CLEARING = (
    "a party that clears, settles or gives up the trade: the venue clears every trade to the "
    "gateway's one account"
)
_WHO = "who placed the order, for the OMS's records: the venue executes the same"
_ALLOCATIONS = "splits the fills among accounts: the gateway trades one account"

# ------------------------------------------------------------ NewOrderSingle (D)

UNSUPPORTED_ORDER_CHARACTERISTIC = "11"

_MARKET = OtherField(40, "OrdType", frozenset({"1"}))

_TIME_IN_FORCE_MEANINGS = {
    "0": "Day",
    "1": "GTC",
    "2": "At the opening",
    "3": "IOC",
    "4": "FOK",
    "5": "GTX",
    "6": "GTD",
    "7": "At the close",
}

_OWN_RULE_TIME_IN_FORCE = Field(
    59,
    "TimeInForce",
    refused("a time in force the venue does not have"),
    {
        "0": (
            "Day",
            ignored(
                "FIX's default when TimeInForce is absent, so what every plain order asks for: "
                "the venue trades around the clock with no trading day to end, and its orders "
                "rest until filled or cancelled (a Day order is not cancelled at midnight: "
                "cancel it, or set cancel_on_disconnect)"
            ),
        ),
        "1": (
            "GTC",
            honoured(
                "the venue's limit orders rest until filled or cancelled",
                when=(
                    _MARKET,
                    refused(
                        "the venue's market order never rests: what it cannot fill at once "
                        "is cancelled"
                    ),
                ),
            ),
        ),
        "2": ("At the opening", refused("the venue has no opening auction")),
        "3": (
            "IOC",
            refused(
                "the venue has no immediate-or-cancel limit order: the order would rest on "
                "the book",
                when=(
                    _MARKET,
                    honoured(
                        "the venue's market order fills what it can at once and cancels the "
                        "rest, which is IOC"
                    ),
                ),
            ),
        ),
        "4": (
            "FOK",
            refused("the venue cannot fill all or nothing: the order could fill in part"),
        ),
        "5": ("GTX", refused("the venue has no good-till-crossing orders")),
        "6": ("GTD", refused(_EXPIRY)),
        "7": ("At the close", refused("the venue has no closing auction")),
    },
)
"""TimeInForce with a venue whose orders carry none (OKCoin's): the venue's own rule (a limit
order rests until cancelled, a market order's rest is cancelled) is what an order gets, so a
value is taken where that rule is what it asks for, and refused where it is not."""


def carried_time_in_force(value: str, carried: frozenset[TimeInForce]) -> TimeInForce | None:
    """The time in force an OMS's TimeInForce (59) `value` goes on to the venue as: the one
    it names if the venue carries it (`carried`, the venue's `time_in_force`), else None."""
    member = TIME_IN_FORCE.forward.get(value)
    return member if member in carried else None


def time_in_force_field(carried: frozenset[TimeInForce]) -> Field:
    """TimeInForce (59) for a venue that carries the values `carried`: each one it carries is
    honoured and goes on as the order's time in force (`carried_time_in_force`); the rest are
    refused. A venue that carries none has its own rule (`_OWN_RULE_TIME_IN_FORCE`)."""
    if not carried:
        return _OWN_RULE_TIME_IN_FORCE

    def named(codes: Iterable[str]) -> str:
        return ", ".join(f"{_TIME_IN_FORCE_MEANINGS[code]} ({code})" for code in codes)

    takes = named(c for c, member in TIME_IN_FORCE.forward.items() if member in carried)
    values: dict[str, tuple[str, Rule]] = {}
    for code, meaning in _TIME_IN_FORCE_MEANINGS.items():
        if carried_time_in_force(code, carried) is not None:
            rule = honoured("sent on as the order's TimeInForce")
        elif code in TIME_IN_FORCE.forward:
            rule = refused(f"the venue does not take it: it takes {takes}")
        else:
            rule = refused(
                "the gateway's orders have no such time in force: they carry "
                + named(TIME_IN_FORCE.forward)
            )
        values[code] = (meaning, rule)
    return Field(59, "TimeInForce", refused("not a time in force of FIX 4.4"), values)


_PEG_INSTRUCTIONS = {
    "L": "Last peg",
    "M": "Mid-price peg",
    "O": "Opening peg",
    "P": "Market peg",
    "R": "Primary peg",
    "W": "Peg to VWAP",
    "a": "Trailing stop peg",
    "d": "Peg to limit price",
}

_EXEC_INST = Field(
    18,
    "ExecInst",
    refused("an execution instruction the venue has no way to carry"),
    {
        "1": (
            "Not held",
            ignored(
                "gives the broker discretion it need not use: executing the order at once, "
                "as the venue does, is within it"
            ),
        ),
        "5": ("Held", ignored("the venue executes at once with no discretion, which is held")),
        "6": (
            "Participate don't initiate",
            refused("the venue has no post-only orders: the order could take liquidity"),
        ),
        "G": ("All or none", refused("the venue cannot fill all or nothing")),
        "E": ("Do not increase", refused("the venue has no corporate-action adjustments")),
        "F": ("Do not reduce", refused("the venue has no corporate-action adjustments")),
        "A": ("No cross", refused("the venue does not say whether an order may cross the firm's")),
        "b": ("Strict limit", refused("the venue may fill at a better price than the limit")),
        "H": (
            "Reinstate on system failure",
            refused("what happens to orders on a failure is the venue's, not the order's"),
        ),
        "Q": (
            "Cancel on system failure",
            refused("what happens to orders on a failure is the venue's, not the order's"),
        ),
        "J": ("Reinstate on trading halt", refused("the venue's halts are the venue's")),
        "K": ("Cancel on trading halt", refused("the venue's halts are the venue's")),
        **{v: (n, refused(_PEG)) for v, n in _PEG_INSTRUCTIONS.items()},
    },
    multiple=True,
)

_SIDE = Field(
    54,
    "Side",
    refused("the venue takes buy and sell only"),
    {
        "1": ("Buy", honoured("sent on")),
        "2": ("Sell", honoured("sent on")),
        "5": (
            "Sell short",
            refused("the venue has no short-sale marking: the sell would not be marked short"),
        ),
        "6": (
            "Sell short exempt",
            refused("the venue has no short-sale marking: the sell would not be marked short"),
        ),
        "3": ("Buy minus", refused("the venue has no tick-test orders")),
        "4": ("Sell plus", refused("the venue has no tick-test orders")),
    },
)

_ORD_TYPE = Field(
    40,
    "OrdType",
    refused("an order type the venue does not have"),
    {
        "1": ("Market", honoured("sent on")),
        "2": ("Limit", honoured("sent on")),
        "3": ("Stop", refused("the venue has no stop orders: the order would execute at once")),
        "4": ("Stop limit", refused("the venue has no stop orders")),
        "J": ("Market if touched", refused("the venue has no contingent orders")),
        "K": (
            "Market with leftover as limit",
            refused("the venue's market order cancels what it cannot fill"),
        ),
        "P": ("Pegged", refused(_PEG)),
        "D": ("Previously quoted", refused("the venue has no quotes to take")),
        "E": ("Previously indicated", refused("the venue has no indications of interest")),
    },
)

_PARTY_ROLE = Field(
    452,
    "PartyRole",
    refused("a party the venue cannot act for or on"),
    {
        **{
            v: (n, ignored(_WHO))
            for v, n in {
                "1": "Executing firm",
                "3": "Client ID",
                "5": "Investor ID",
                "7": "Entering firm",
                "9": "Fund manager client ID",
                "11": "Order origination trader",
                "12": "Executing trader",
                "13": "Order origination firm",
                "24": "Customer account",
                "36": "Entering trader",
            }.items()
        },
        **{
            v: (n, refused(_CLEARING))
            for v, n in {
                "4": "Clearing firm",
                "14": "Give-up clearing firm",
                "15": "Correspondent clearing firm",
                "21": "Clearing organization",
                "38": "Position account",
            }.items()
        },
    },
)

NEW_ORDER = MessageFields(
    "D",
    "NewOrderSingle",
    _table(
        [
            Field(11, "ClOrdID", honoured("sent on as the session's prefix + ClOrdID")),
            Field(55, "Symbol", honoured("sent on; one the gateway does not trade is refused")),
            _SIDE,
            Field(38, "OrderQty", honoured("sent on as a decimal")),
            _ORD_TYPE,
            Field(
                44,
                "Price",
                honoured(
                    "sent on as a decimal",
                    when=(_MARKET, refused("the venue's market order takes no price limit")),
                ),
            ),
            _OWN_RULE_TIME_IN_FORCE,
            _EXEC_INST,
            Field(
                15,
                "Currency",
                refused(
                    "prices in another currency than the Symbol's quote currency",
                    when=(QuoteCurrency(), honoured("the currency the venue prices it in")),
                ),
            ),
            Field(
                120,
                "SettlCurrency",
                refused(
                    "the venue settles in the Symbol's quote currency only",
                    when=(QuoteCurrency(), ignored("what the venue settles in")),
                ),
            ),
            Field(60, "TransactTime", ignored("when the OMS made it; the venue times its own")),
            Field(
                21,
                "HandlInst",
                ignored(
                    "every value lets the order execute automatically at once, which the "
                    "bridge does; none needs a person"
                ),
            ),
            Field(1, "Account", ignored(_ONE_ACCOUNT)),
            Field(660, "AcctIDSource", ignored(_ONE_ACCOUNT)),
            Field(581, "AccountType", ignored(_ONE_ACCOUNT)),
            Field(526, "SecondaryClOrdID", ignored(_OMS_ID)),
            Field(583, "ClOrdLinkID", ignored(_OMS_ID)),
            Field(58, "Text", ignored(_FREE_TEXT)),
            Field(354, "EncodedTextLen", ignored(_FREE_TEXT)),
            Field(355, "EncodedText", ignored(_FREE_TEXT)),
            Field(75, "TradeDate", ignored("the OMS's date; the venue dates its own")),
            Field(229, "TradeOriginationDate", ignored("the OMS's date; the venue dates its own")),
            Field(140, "PrevClosePx", ignored("information; it instructs nothing")),
            Field(528, "OrderCapacity", ignored(_RECORDS)),
            Field(529, "OrderRestrictions", ignored(_RECORDS), multiple=True),
            Field(582, "CustOrderCapacity", ignored(_RECORDS)),
            Field(204, "CustomerOrFirm", ignored(_RECORDS)),
            Field(1028, "ManualOrderIndicator", ignored(_RECORDS)),
            Field(376, "ComplianceID", ignored(_RECORDS)),
            Field(377, "SolicitedFlag", ignored(_RECORDS)),
            Field(494, "Designation", ignored(_RECORDS)),
            Field(480, "CancellationRights", ignored(_RECORDS)),
            Field(481, "MoneyLaunderingStatus", ignored(_RECORDS)),
            Field(513, "RegistID", ignored(_RECORDS)),
            Field(
                635,
                "ClearingFeeIndicator",
                ignored("a fee category for exchange billing; the venue bills by its own schedule"),
            ),
            Field(
                114,
                "LocateReqd",
                ignored("about borrowing for a short sale, and short sales are refused"),
            ),
            Field(453, "NoPartyIDs", ignored("each party is taken by its PartyRole (452)")),
            Field(448, "PartyID", ignored("taken by its PartyRole (452)")),
            Field(447, "PartyIDSource", ignored("taken by its PartyRole (452)")),
            _PARTY_ROLE,
            Field(802, "NoPartySubIDs", ignored("more about a party, taken by its PartyRole")),
            Field(523, "PartySubID", ignored("more about a party, taken by its PartyRole")),
            Field(803, "PartySubIDType", ignored("more about a party, taken by its PartyRole")),
            Field(
                63,
                "SettlType",
                refused("the venue settles at once, in the regular way only"),
                {"0": ("Regular", ignored("the venue's only settlement"))},
            ),
            Field(64, "SettlDate", refused("the venue settles at once; no date can be set")),
            Field(
                544,
                "CashMargin",
                refused("the venue trades cash, not on margin"),
                {"1": ("Cash", ignored("the venue trades cash only"))},
            ),
            Field(
                81,
                "ProcessCode",
                refused("soft-dollar, step-in and step-out processing is the broker's"),
                {"0": ("Regular", ignored("the venue's only processing"))},
            ),
            Field(
                423,
                "PriceType",
                refused("the venue's prices are per unit"),
                {"2": ("Per unit", ignored("how the venue prices"))},
            ),
            Field(
                854,
                "QtyType",
                refused("the venue counts units, not contracts"),
                {"0": ("Units", ignored("how the venue counts"))},
            ),
            Field(110, "MinQty", refused("the venue has no minimum fill quantity")),
            Field(111, "MaxFloor", refused(_SHOW)),
            Field(210, "MaxShow", refused(_SHOW)),
            Field(126, "ExpireTime", refused(_EXPIRY)),
            Field(432, "ExpireDate", refused(_EXPIRY)),
            Field(168, "EffectiveTime", refused("the venue takes orders now, not later")),
            Field(99, "StopPx", refused("the venue has no stop orders")),
            Field(
                152,
                "CashOrderQty",
                refused("the venue takes a quantity of the instrument, not an amount of cash"),
            ),
            Field(516, "OrderPercent", refused("the venue takes a quantity, not a percentage")),
            Field(100, "ExDestination", refused(_ONE_VENUE)),
            Field(207, "SecurityExchange", refused(_ONE_VENUE)),
            Field(386, "NoTradingSessions", refused(_NO_SESSIONS)),
            Field(336, "TradingSessionID", refused(_NO_SESSIONS)),
            Field(625, "TradingSessionSubID", refused(_NO_SESSIONS)),
            Field(117, "QuoteID", refused("the venue has no quotes to take")),
            Field(23, "IOIID", refused("the venue has no indications of interest")),
            Field(77, "PositionEffect", refused("the venue is spot: no position to open or close")),
            Field(203, "CoveredOrUncovered", refused("an options attribute; the venue is spot")),
            Field(211, "PegOffsetValue", refused(_PEG)),
            Field(835, "PegMoveType", refused(_PEG)),
            Field(836, "PegOffsetType", refused(_PEG)),
            Field(837, "PegLimitType", refused(_PEG)),
            Field(838, "PegRoundDirection", refused(_PEG)),
            Field(840, "PegScope", refused(_PEG)),
            Field(388, "DiscretionInst", refused(_DISCRETION)),
            Field(389, "DiscretionOffsetValue", refused(_DISCRETION)),
            Field(841, "DiscretionMoveType", refused(_DISCRETION)),
            Field(842, "DiscretionOffsetType", refused(_DISCRETION)),
            Field(843, "DiscretionLimitType", refused(_DISCRETION)),
            Field(844, "DiscretionRoundDirection", refused(_DISCRETION)),
            Field(846, "DiscretionScope", refused(_DISCRETION)),
            Field(847, "TargetStrategy", refused(_ALGO)),
            Field(848, "TargetStrategyParameters", refused(_ALGO)),
            Field(849, "ParticipationRate", refused(_ALGO)),
            Field(78, "NoAllocs", refused(_ALLOCATIONS)),
            Field(79, "AllocAccount", refused(_ALLOCATIONS)),
            Field(80, "AllocQty", refused(_ALLOCATIONS)),
            Field(70, "AllocID", refused(_ALLOCATIONS)),
            Field(591, "PreallocMethod", refused(_ALLOCATIONS)),
            Field(65, "SymbolSfx", refused(_INSTRUMENT)),
            Field(48, "SecurityID", refused(_INSTRUMENT)),
            Field(22, "SecurityIDSource", refused(_INSTRUMENT)),
            Field(454, "NoSecurityAltID", refused(_INSTRUMENT)),
            Field(167, "SecurityType", refused(_INSTRUMENT)),
            Field(461, "CFICode", refused(_INSTRUMENT)),
            Field(460, "Product", refused(_INSTRUMENT)),
        ]
    ),
    refused("a field the bridge has no rule for: refused rather than dropped"),
    UNSUPPORTED_ORDER_CHARACTERISTIC,
)

# ------------------------------------------------------------ OrderCancelRequest (F)

_NAMES_THE_ORDER = "the order is the one OrigClOrdID names; this adds nothing to the cancel"
_MUST_BE_THE_ORDERS = (
    "must be that of the order OrigClOrdID names, as venues require: a cancel that names "
    "two orders is refused (OrderCancelReject, CxlRejReason 99, Text naming the field), and "
    "nothing is cancelled"
)
_CHECKED_AGAINST_THE_ORDER = (
    "checked against the order ClOrdID names: the answer is that order's status, with its "
    "own Symbol and Side, and Text says which the request got wrong"
)

CANCEL = MessageFields(
    "F",
    "OrderCancelRequest",
    _table(
        [
            Field(41, "OrigClOrdID", honoured("the order to cancel (the session's prefix + it)")),
            Field(11, "ClOrdID", honoured("the cancel's own id; its reports come under it")),
            Field(37, "OrderID", ignored(_NAMES_THE_ORDER)),
            Field(55, "Symbol", honoured(_MUST_BE_THE_ORDERS)),
            Field(54, "Side", honoured(_MUST_BE_THE_ORDERS)),
            Field(38, "OrderQty", ignored("a cancel cancels all that is left of the order")),
            Field(152, "CashOrderQty", ignored("a cancel cancels all that is left of the order")),
            Field(60, "TransactTime", ignored("when the OMS made the cancel")),
            Field(1, "Account", ignored(_ONE_ACCOUNT)),
            Field(526, "SecondaryClOrdID", ignored(_OMS_ID)),
            Field(583, "ClOrdLinkID", ignored(_OMS_ID)),
            Field(58, "Text", ignored(_FREE_TEXT)),
            Field(453, "NoPartyIDs", ignored(_WHO)),
        ]
    ),
    ignored("a cancel cancels the order OrigClOrdID names, whatever else it carries"),
    None,
)

# ------------------------------------------------------------ OrderStatusRequest (H)

STATUS = MessageFields(
    "H",
    "OrderStatusRequest",
    _table(
        [
            Field(11, "ClOrdID", honoured("the order asked about (the session's prefix + it)")),
            Field(790, "OrdStatusReqID", honoured("echoed on the ExecutionReport that answers")),
            Field(
                37,
                "OrderID",
                honoured(
                    "for an order the gateway keeps, checked against it as Symbol is; for one "
                    "it no longer keeps (orders.keep_closed), the exchange is asked by it, with "
                    "Symbol and Side, and answers"
                ),
            ),
            Field(55, "Symbol", honoured(_CHECKED_AGAINST_THE_ORDER)),
            Field(54, "Side", honoured(_CHECKED_AGAINST_THE_ORDER)),
            Field(1, "Account", ignored(_ONE_ACCOUNT)),
            Field(453, "NoPartyIDs", ignored(_WHO)),
        ]
    ),
    ignored("a status request changes nothing, whatever else it carries"),
    None,
)

# ------------------------------------------------------------ MarketDataRequest (V)

MARKET_DATA_REQUEST = MessageFields(
    "V",
    "MarketDataRequest",
    _table(
        [
            Field(262, "MDReqID", honoured("every answer carries it; one in use is refused (1)")),
            Field(
                263,
                "SubscriptionRequestType",
                refused("not a subscription type", "4"),
                {
                    "0": ("Snapshot", honoured("one full refresh (W)")),
                    "1": ("Snapshot and updates", honoured("a full refresh, then every change")),
                    "2": ("Unsubscribe", honoured("ends the subscription it names")),
                },
            ),
            Field(264, "MarketDepth", honoured("levels per side, 0 all; negative refused (5)")),
            Field(
                265,
                "MDUpdateType",
                refused("not an update type", "6"),
                {
                    "0": ("Full refresh", honoured("a W per change")),
                    "1": ("Incremental", honoured("an X per change after the first W")),
                },
            ),
            Field(
                266,
                "AggregatedBook",
                refused("the gateway keeps the book by price level, not by order", "7"),
                {"Y": ("Yes", honoured("the gateway's book is by price level"))},
            ),
            Field(
                547,
                "MDImplicitDelete",
                refused(
                    "the bridge deletes each level that leaves the depth explicitly, which an "
                    "OMS that deletes them itself would take as deleting an unknown level",
                    "C",
                ),
                {"N": ("No", honoured("the bridge sends a delete for each level it removes"))},
            ),
            Field(
                546,
                "Scope",
                refused("the gateway has the venue's own market only", "A"),
                {"1": ("Local market", honoured("the venue's own market"))},
                multiple=True,
            ),
            Field(
                286,
                "OpenCloseSettlFlag",
                refused("the venue has no opening, closing or settlement prices", "B"),
                multiple=True,
            ),
            Field(267, "NoMDEntryTypes", honoured("what is sent: only the entry types named")),
            Field(
                269,
                "MDEntryType",
                refused("the gateway offers bids, offers and trades only", "8"),
                {
                    "0": ("Bid", honoured("bid levels")),
                    "1": ("Offer", honoured("offer levels")),
                    "2": (
                        "Trade",
                        honoured(
                            "each trade as it happens",
                            when=(
                                OtherField(263, "SubscriptionRequestType", frozenset({"0"})),
                                refused(
                                    "the gateway keeps no trade history to give as a snapshot: "
                                    "subscribe (263=1) to get trades as they happen",
                                    "4",
                                ),
                            ),
                        ),
                    ),
                },
            ),
            Field(146, "NoRelatedSym", honoured("one symbol per request")),
            Field(55, "Symbol", honoured("a symbol the gateway does not trade is refused (0)")),
            Field(386, "NoTradingSessions", refused(_NO_SESSIONS, "9")),
            Field(336, "TradingSessionID", refused(_NO_SESSIONS, "9")),
            Field(625, "TradingSessionSubID", refused(_NO_SESSIONS, "9")),
            Field(
                815,
                "ApplQueueAction",
                ignored("the bridge queues nothing: every update goes out as it comes"),
            ),
            Field(
                812,
                "ApplQueueMax",
                ignored("the bridge queues nothing: every update goes out as it comes"),
            ),
            Field(65, "SymbolSfx", refused(_INSTRUMENT)),
            Field(48, "SecurityID", refused(_INSTRUMENT)),
            Field(22, "SecurityIDSource", refused(_INSTRUMENT)),
            Field(167, "SecurityType", refused(_INSTRUMENT)),
        ]
    ),
    refused("a field the bridge has no rule for: refused rather than dropped"),
    None,
)


@functools.cache
def tables(carried: frozenset[TimeInForce] = frozenset()) -> Mapping[str, MessageFields]:
    """The tables by MsgType for a venue that carries the TimeInForce values `carried` (its
    `Venue.time_in_force`); only NewOrderSingle's TimeInForce (59) depends on them."""
    fields = {**NEW_ORDER.fields, 59: time_in_force_field(carried)}
    new_order = dataclasses.replace(NEW_ORDER, fields=MappingProxyType(fields))
    by_type = {t.msg_type: t for t in (new_order, CANCEL, STATUS, MARKET_DATA_REQUEST)}
    return MappingProxyType(by_type)


TABLES = tables()
"""For a venue that carries no TimeInForce (OKCoin's)."""


def documented_venues() -> dict[str, frozenset[TimeInForce]]:
    """The venues docs/bridge-fields.md tells apart, by name, with what they carry."""
    from fixgw.venues.fix44 import venue as fix44
    from fixgw.venues.okcoin import venue as okcoin

    return {"OKCoin": okcoin.TIME_IN_FORCE, "plain FIX 4.4": fix44.TIME_IN_FORCE}


def markdown(venues: Mapping[str, frozenset[TimeInForce]] | None = None) -> str:
    """The tables as docs/bridge-fields.md shows them: a field whose rule depends on the
    venue (TimeInForce) once per venue, named in its first column."""
    by_venue = {name: tables(carried) for name, carried in (venues or documented_venues()).items()}
    first = next(iter(by_venue.values()))
    out: list[str] = []
    for msg_type, table in first.items():
        out += [
            f"### {table.name} ({table.msg_type})",
            "",
            "| field | tag | value | the bridge | why |",
            "|---|---|---|---|---|",
        ]
        for tag, f in table.fields.items():
            # each different rule for the field, with the venues that have it
            variants: list[tuple[Field, list[str]]] = []
            for name, venue_tables in by_venue.items():
                variant = venue_tables[msg_type].fields[tag]
                same = next((names for seen, names in variants if seen == variant), None)
                if same is None:
                    variants.append((variant, [name]))
                else:
                    same.append(name)
            for variant, names in variants:
                label = f"{f.name}, with {' or '.join(names)}" if len(variants) > 1 else f.name
                out += _field_rows(variant, label)
        out += _rows("any other", "", "", table.other)
        out.append("")
    return "\n".join(out)


def _field_rows(f: Field, label: str) -> list[str]:
    rows = _rows(label, str(f.tag), "any" if f.values else "", f.rule)
    for value, (meaning, rule) in f.values.items():
        rows += _rows("", "", f"{value} ({meaning})", rule)
    return rows


def _rows(name: str, tag: str, value: str, rule: Rule) -> list[str]:
    why = rule.why + (f" (reason {rule.reason})" if rule.reason else "")
    rows = [f"| {name} | {tag} | {value} | {rule.act} | {why} |"]
    if rule.when is not None:
        condition, other = rule.when
        rows += _rows("", "", f"{value or 'any'} {condition.describe()}".strip(), other)
    return rows
