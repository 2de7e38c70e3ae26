"""The commands that talk to a running gateway (connect.py reaches it). Each asks, then shows the
answer in the form its reader wants (output.py): today's JSON lines for scripts, a table or a
line for a person."""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from collections.abc import Iterator
from typing import Any

from fixgw.api.client import ApiError, GatewayClient, NoAnswer, apply_market_data
from fixgw.cli.connect import BadArgument, connect, way_in, where
from fixgw.cli.exits import (
    EXIT_INTERRUPTED,
    EXIT_NOT_CANCELLED,
    EXIT_OUTCOME_UNKNOWN,
    EXIT_REJECTED,
)
from fixgw.cli.lines import (
    OUTCOMES,
    event_line,
    interrupted_before_the_answer,
    outcome_line,
    unknown_outcome,
)
from fixgw.cli.output import Out, print_json
from fixgw.cli.render import VIEWS
from fixgw.cli.styled import printable
from fixgw.marketdata.book import OrderBook


def _answer(args: argparse.Namespace, op: str, **fields: Any) -> Any:
    with connect(args) as gw:
        return gw.request(op, **fields)


def cmd_order_new(args: argparse.Namespace) -> int:
    out = Out.for_args(args)
    order_type = args.type or ("limit" if args.price is not None else "market")
    last: dict[str, Any] | None = None
    lost: str | None = None
    interrupted = False
    with connect(args) as gw:
        if args.follow:
            try:
                gw.subscribe(["orders"])
            except ApiError as exc:
                raise ApiError(
                    f"{exc.message}; no order was placed (`--follow 0` places one without "
                    "following it)",
                    code=exc.code,
                ) from None
        try:
            sent = gw.new_order(
                symbol=args.symbol,
                side=args.side,
                type=order_type,
                qty=args.qty,
                price=args.price,
                cl_ord_id=args.cl_ord_id,
            )
        except NoAnswer as exc:
            print(f"fixgw: {where(args)}: {printable(str(exc))}", file=sys.stderr)
            return EXIT_OUTCOME_UNKNOWN
        except KeyboardInterrupt:
            print(f"fixgw: {interrupted_before_the_answer(args.cl_ord_id)}", file=sys.stderr)
            return EXIT_INTERRUPTED
        if out.json:
            print_json(sent)
        try:
            for event in _events_of(gw, sent["cl_ord_id"], args.follow) if args.follow else ():
                last = event
                if out.json:
                    print_json(event)
                if event.get("status") == "rejected":
                    break
        except FollowingLost as exc:
            lost = exc.why
        except KeyboardInterrupt:  # Ctrl-C ends the following, as --follow running out does
            interrupted = True
    status = str((last or sent).get("status"))
    if status in OUTCOMES:
        lost = None  # the exchange had answered: what following it to the end shows
    if not out.json:
        out.print(outcome_line(sent, last, args.follow, interrupted, lost))
    elif lost is not None:
        said = unknown_outcome(sent["cl_ord_id"], status, lost)
        print(f"fixgw: order {printable(said)}", file=sys.stderr)
    if last is not None and last.get("status") == "rejected":
        if out.json:
            text = str(last.get("text") or last.get("reason"))
            print(f"fixgw: the exchange rejected the order: {printable(text)}", file=sys.stderr)
        return EXIT_REJECTED
    return EXIT_OUTCOME_UNKNOWN if lost is not None else 0


ONE_WAIT_AT_MOST_S = 3600.0
"""How long `order new` waits for the next event at a time: a socket or a queue cannot wait
past a platform limit (some 292 years), and `--follow inf` means until the order settles."""


class FollowingLost(Exception):
    """The connection to the gateway ended while `order new` followed an order it had sent:
    the order is not unsent for it, so this is not "cannot reach the gateway"."""

    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why


def _events_of(gw: GatewayClient, cl_ord_id: str, seconds: float) -> Iterator[dict[str, Any]]:
    """The order's events until it closes, or until it rests on the book with no fill for a
    moment, or until time runs out. FollowingLost if the connection ends first."""
    deadline = time.monotonic() + seconds
    while (remaining := deadline - time.monotonic()) > 0:
        try:
            event = gw.next_event(min(remaining, ONE_WAIT_AT_MOST_S))
        except TimeoutError:
            continue
        except OSError as exc:
            raise FollowingLost(str(exc)) from exc
        if event.get("cl_ord_id") != cl_ord_id:
            continue
        yield event
        if event.get("status") in ("filled", "canceled", "rejected"):
            return
        if event.get("status") in ("new", "partially_filled"):
            deadline = min(deadline, time.monotonic() + 0.5)


def _order_ref(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "cl_ord_id": args.cl_ord_id,
        "order_id": args.order_id,
        "symbol": args.symbol,
        "side": args.side,
    }


def _shown(args: argparse.Namespace, view: str, op: str, **fields: Any) -> Any:
    """Ask, show the answer as the command's view says (its list under `items` where the
    view prints one JSON line an item), and hand the answer back."""
    answer = _answer(args, op, **fields)
    shown = VIEWS[view]
    Out.for_args(args).show(answer[shown.items] if shown.items else answer, shown)
    return answer


def cmd_order_cancel(args: argparse.Namespace) -> int:
    _shown(args, "order cancel", "cancel_order", **_order_ref(args))
    return 0


def cmd_order_status(args: argparse.Namespace) -> int:
    _shown(args, "order status", "order_status", **_order_ref(args))
    return 0


def cmd_orders(args: argparse.Namespace) -> int:
    _shown(
        args,
        "orders",
        "orders",
        all=args.all or None,
        from_exchange=args.from_exchange or None,
        symbol=args.symbol,
    )
    return 0


def cmd_account(args: argparse.Namespace) -> int:
    _shown(args, "account", "account")
    return 0


def cmd_trades(args: argparse.Namespace) -> int:
    _shown(args, "trades", "trades", symbol=args.symbol, limit=args.limit)
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    _shown(args, "status", "status")
    return 0


def cmd_halt(args: argparse.Namespace) -> int:
    result = _shown(args, "halt", "halt", reason=args.reason)
    return _not_cancelled(result["waiting"], "cancelled as soon as the gateway can")


def cmd_resume(args: argparse.Namespace) -> int:
    _shown(args, "resume", "resume")
    return 0


def cmd_cancel_all(args: argparse.Namespace) -> int:
    result = _shown(args, "cancel-all", "cancel_all")
    return _not_cancelled(result["not_cancelled"], "still open; try again")


def _not_cancelled(orders: list[dict[str, str]], then: str) -> int:
    """Say which orders got no cancel, and why; the exit status."""
    if not orders:
        return 0
    for order in orders:
        said = f"{order['cl_ord_id']}: no cancel sent: {order['reason']}"
        print(f"fixgw: {printable(said)}", file=sys.stderr)
    print(f"fixgw: {len(orders)} open orders not cancelled now: {then}", file=sys.stderr)
    return EXIT_NOT_CANCELLED


def cmd_session_reset_seq(args: argparse.Namespace) -> int:
    _shown(args, "session reset-seq", "session_reset_seq")
    return 0


def cmd_session_logon(args: argparse.Namespace) -> int:
    _shown(args, "session logon", "session_logon")
    return 0


def cmd_events(args: argparse.Namespace) -> int:
    out = Out.for_args(args)
    with connect(args) as gw:
        reply = gw.subscribe(args.topic or ["orders", "session", "errors"], since=args.since)
        if isinstance(reply, dict) and reply.get("compacted_through"):
            print(
                f"fixgw: the journal was compacted through seq {reply['compacted_through']}: "
                "the events replayed up to it are only those a restart needs; `fixgw orders` "
                "has the state",
                file=sys.stderr,
            )
        if _journal_ends_before(reply, args.since):
            print(
                f"fixgw: the gateway's journal ends at seq {reply['seq']}, below --since "
                f"{args.since}: it is not the journal {args.since} was counted in (restored "
                "from a backup, or started afresh?); the events that follow may reuse seqs "
                "seen before",
                file=sys.stderr,
            )
        with contextlib.suppress(KeyboardInterrupt):
            out.records(gw.events(), event_line)
    return 0


def _journal_ends_before(reply: Any, since: int | None) -> bool:
    """The subscribe reply's `seq` (the latest) below `since`: the sign (docs/protocol.md,
    Replay with since) that the client counts on another journal. Over NATS the reply has
    no `seq`."""
    if since is None or not isinstance(reply, dict) or not isinstance(reply.get("seq"), int):
        return False
    return bool(reply["seq"] < since)


def cmd_md_watch(args: argparse.Namespace) -> int:
    """A live top of book and the trades, from the gateway's events. On the socket only:
    refused over NATS, before connecting, saying where the book is there."""
    if way_in(args) == "nats":
        raise BadArgument(
            "md watch needs the gateway's socket (--socket or --tcp): over NATS the book and "
            f"trades of the symbols of nats.market_data are on <prefix>.<gateway>.md."
            f"{args.symbol}.book and .trades, for any NATS client (docs/nats.md, Market data)"
        )
    book = OrderBook(args.symbol)
    with connect(args) as gw:
        reply = gw.request("md_subscribe", symbol=args.symbol, depth=0)
        apply_market_data(book, reply)
        print(printable(_top_line(book, args.depth)), flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            for event in gw.events():
                if event["seq"] <= reply["seq"]:
                    continue
                if apply_market_data(book, event):
                    print(printable(_top_line(book, args.depth)), flush=True)
                elif event["type"] == "md.trade":
                    aggressor = event.get("aggressor") or ""
                    trade = f"trade  {event['size']} @ {event['price']}  {aggressor}"
                    print(printable(trade), flush=True)
                elif event["type"] in ("md.stale", "md.rejected"):
                    print(printable(f"{event['type']}: {event.get('reason')}"), flush=True)
    return 0


def _top_line(book: OrderBook, depth: int) -> str:
    bids, asks = book.levels(depth)
    bid = "  ".join(f"{s}@{p}" for p, s in bids) or "-"
    ask = "  ".join(f"{s}@{p}" for p, s in asks) or "-"
    return f"{book.symbol}  bid {bid}  |  ask {ask}"
