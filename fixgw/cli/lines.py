"""One line a person reads at a glance: an event as it comes (`fixgw events`), and the outcome
of an order (`fixgw order new`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from fixgw.cli.output import Clock
from fixgw.cli.render import NONE, SIDE_STYLES, STATUS_STYLES, balance_said, plain, styled
from fixgw.cli.styled import Text

Event = Mapping[str, Any]
Detail = Callable[[Event], Text]


def _px(value: str | None) -> str:
    return plain(value) if value is not None else NONE


def order_said(order: Event) -> Text:
    """`buy 0.5 BTC/USD @ 30010`; a market order has no price."""
    price = f" @ {plain(order['price'])}" if order.get("price") is not None else " at market"
    return Text.assemble(
        styled(order["side"], SIDE_STYLES), f" {plain(order['qty'])} {order['symbol']}{price}"
    )


def _why(event: Event) -> str:
    """The exchange's text where it gave one, else the reason's code."""
    return str(event.get("text") or event.get("reason") or "no reason given")


def _done(event: Event) -> str:
    """`0.7 of 2 filled, avg 30010`; no average before a fill (the wire says 0)."""
    done = f"{plain(event['cum_qty'])} of {plain(event['qty'])} filled"
    return f"{done}, avg {plain(event['avg_px'])}" if Decimal(event["cum_qty"]) else done


def _order_line(extra: Callable[[Event], str] | None = None) -> Detail:
    """The order, what the event adds, its ClOrdID."""

    def detail(event: Event) -> Text:
        said = order_said(event)
        if extra is not None:
            said.append(f"  {extra(event)}")
        said.append(f"  {event['cl_ord_id']}", style="dim")
        return said

    return detail


def _fill(event: Event) -> str:
    return f"fill {plain(event['last_qty'])} @ {plain(event['last_px'])}; {_done(event)}"


def _balances(event: Event) -> Text:
    """`available 1234.5 USD; BTC 1 free 2 frozen`: what the exchange reported, `-` for a
    figure it left out."""
    held = ", ".join(
        f"{currency} {_px(held.get('free'))} free {_px(held.get('frozen'))} frozen"
        for currency, held in sorted(event["balances"].items())
    )
    return Text("; ".join(part for part in (balance_said(event), held) if part) or "no balances")


def _best(event: Event, side: str) -> str:
    levels = event[side]
    return f"{plain(levels[0][1])} @ {plain(levels[0][0])}" if levels else NONE


EVENT_DETAILS: dict[str, Detail] = {
    "order.pending_new": _order_line(),
    "order.accepted": _order_line(lambda e: f"order {e['order_id']}"),
    "order.rejected": _order_line(lambda e: f"rejected: {_why(e)}"),
    "order.partially_filled": _order_line(_fill),
    "order.filled": _order_line(_fill),
    "order.pending_cancel": _order_line(lambda e: f"cancel {e.get('cancel_cl_ord_id')}"),
    "order.canceled": _order_line(lambda e: _done(e) + (f"; {e['text']}" if e["text"] else "")),
    "order.status": _order_line(lambda e: f"{e['status']}; {_done(e)}"),
    "order.restated": _order_line(
        lambda e: (
            f"restated ({e.get('reason') or 'no reason given'}): {e['status']}; {_done(e)}"
            + (f"; {e['text']}" if e.get("text") else "")
        )
    ),
    "order.cancel_rejected": lambda e: Text(
        f"{e['cl_ord_id']}: cancel {e['cancel_cl_ord_id']} rejected: {_why(e)}"
    ),
    "order.anomaly": lambda e: Text(
        f"{e.get('cl_ord_id') or e.get('order_id')}: {e['problem']}: {e['detail']}"
    ),
    "session.up": lambda e: Text(e["session_id"]),
    "session.down": lambda e: Text(
        f"{e['session_id']}: {e['reason']}"
        + (f" (logout reason {e['logout_reason']})" if e.get("logout_reason") else "")
    ),
    "session.halted": lambda e: Text(
        f"by {e['by']}"
        + (f": {e['reason']}" if e.get("reason") else "")
        + f"; cancelling {len(e['cancelling'])}, waiting {len(e.get('waiting', []))}"
        + (f", withdrawn {len(e['withdrawn'])}" if e.get("withdrawn") else "")
    ),
    "session.resumed": lambda e: Text(f"by {e['by']}"),
    "account.balance": _balances,
    "exchange.error": lambda e: Text(
        f"{e['source']}: {_why(e)}"
        + "".join(
            f" {key} {e[key]}" for key in ("cl_ord_id", "acc_req_id", "md_req_id") if e.get(key)
        )
    ),
    "md.snapshot": lambda e: Text(f"{e['symbol']} bid {_best(e, 'bids')}  ask {_best(e, 'asks')}"),
    "md.delta": lambda e: Text(f"{e['symbol']} {len(e['changes'])} levels changed"),
    "md.trade": lambda e: Text(
        f"{e['symbol']} {plain(e['size'])} @ {plain(e['price'])} {e.get('aggressor') or ''}"
    ),
    "md.stale": lambda e: Text(f"{e['symbol']}: {e['reason']}"),
    "md.rejected": lambda e: Text(f"{e['symbol']} {e['what']}: {_why(e)}"),
}
"""What each event type adds to its line; a type not here shows its fields as they came."""

TYPE_STYLES = {
    "order.rejected": "red",
    "order.cancel_rejected": "red",
    "order.anomaly": "yellow",
    "order.restated": "yellow",
    "order.filled": "green",
    "order.partially_filled": "bright_green",
    "order.canceled": "magenta",
    "session.up": "green",
    "session.down": "red",
    "session.halted": "red",
    "session.resumed": "green",
    "exchange.error": "red",
    "md.stale": "yellow",
    "md.rejected": "red",
}
TYPE_WIDTH = len("order.partially_filled")


def _fields(event: Event) -> Text:
    skip = {"seq", "type", "ts", "crc"}
    return Text(" ".join(f"{k}={v}" for k, v in event.items() if k not in skip))


def event_line(event: Event, clock: Clock) -> Text:
    """`18:39:18.010  order.filled  buy 0.5 BTC/USD @ 30010  fill 0.5 @ 30010; ...`"""
    kind = str(event.get("type"))
    return Text.assemble(
        (clock.time(event["ts"]) if event.get("ts") else NONE, "dim"),
        "  ",
        (kind.ljust(TYPE_WIDTH), TYPE_STYLES.get(kind, "")),
        "  ",
        EVENT_DETAILS.get(kind, _fields)(event),
    )


# ---------------------------------------------------------------- order new


def _ids(order: Event) -> str:
    return f"(order {order.get('order_id') or NONE}, clOrdID {order['cl_ord_id']})"


OUTCOMES: dict[str, Callable[[Event], str]] = {
    "filled": lambda o: f"filled {plain(o['cum_qty'])} @ {plain(o['avg_px'])} {_ids(o)}",
    "partially_filled": lambda o: (
        f"partially filled {plain(o['cum_qty'])} @ {plain(o['avg_px'])}, resting "
        f"{plain(o['leaves_qty'])} @ {_px(o['price'])} as {o['cl_ord_id']} "
        f"(order {o['order_id']})"
    ),
    "new": lambda o: (
        f"resting as {o['cl_ord_id']}: {o['side']} {plain(o['qty'])} @ {_px(o['price'])} "
        f"(order {o['order_id']})"
    ),
    "rejected": lambda o: f"rejected: {_why(o)} (clOrdID {o['cl_ord_id']})",
    "canceled": lambda o: (
        f"canceled: {o.get('text') or 'by the exchange'}; "
        f"{plain(o['cum_qty'])} of {plain(o['qty'])} filled {_ids(o)}"
    ),
}
"""The line for each status an order can be left in when `order new` stops following it."""


def unknown_outcome(cl_ord_id: str, status: str, why: str) -> str:
    """An order sent, whose following the connection to the gateway cut short before the
    exchange answered: as the client says of a request it got no answer to, ask before
    sending it again (a second `order new` is a second order)."""
    return (
        f"sent as {cl_ord_id}: {status}, its outcome unknown: the connection to the gateway "
        f"ended ({why}) before the exchange answered; ask (`fixgw order status {cl_ord_id}`) "
        "before sending it again"
    )


def interrupted_before_the_answer(cl_ord_id: str | None) -> str:
    """Ctrl-C while `order new` waited for the gateway's reply: the request was written, so
    the order may have been placed."""
    ask = f"`fixgw order status {cl_ord_id}`" if cl_ord_id else "`fixgw orders`"
    return (
        "interrupted before the gateway answered: whether the order was placed is unknown; "
        f"ask ({ask}) before sending it again"
    )


def outcome_line(
    sent: Event,
    last: Event | None,
    followed_s: float,
    interrupted: bool = False,
    lost: str | None = None,
) -> Text:
    """What became of the order: `filled 0.5 @ 30010 (order ..., clOrdID ...)`; as far as it
    was followed where Ctrl-C (`interrupted`) or the connection's end (`lost`, why) cut the
    following short."""
    order = last if last is not None else sent
    status = str(order["status"])
    if status in OUTCOMES:
        said = OUTCOMES[status](order)
    elif lost is not None:
        said = unknown_outcome(order["cl_ord_id"], status, lost)
    elif interrupted:
        said = f"sent as {order['cl_ord_id']}: {status}, not followed to the end (interrupted)"
    elif not followed_s:
        said = f"sent as {order['cl_ord_id']}: {status} (not followed)"
    else:
        said = (
            f"sent as {order['cl_ord_id']}: {status}, no answer from the exchange within "
            f"{followed_s:g} s"
        )
    word, _, rest = said.partition(" ")
    return Text.assemble((word, STATUS_STYLES.get(status, "")), " ", rest)
