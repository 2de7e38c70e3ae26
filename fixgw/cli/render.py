"""Answers as a person reads them: aligned tables and short summaries (text form).

Money stays Decimal from the wire's strings to the screen: columns of prices and quantities
line up on the decimal point by padding the strings, never through floats."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from enum import Enum
from typing import Any

from fixgw.cli.output import Clock, View
from fixgw.cli.styled import Shown, Text, label_grid
from fixgw.cli.styled import table as styled_table
from fixgw.decimals import EXACT

SIDE_STYLES = {"buy": "green", "sell": "red"}
STATUS_STYLES = {
    "pending_new": "yellow",
    "new": "cyan",
    "partially_filled": "bright_green",
    "filled": "green",
    "pending_cancel": "yellow",
    "canceled": "magenta",
    "rejected": "red",
}
NONE = "-"
"""What stands where the gateway has no value (null): a market order's price, say."""

Row = Mapping[str, Any]


def plain(value: str | Decimal) -> str:
    """A decimal as digits and a point, never in exponent form, with its digits kept."""
    return format(Decimal(value), "f")


def align_on_point(values: Sequence[str | Decimal | None], min_width: int = 0) -> list[str]:
    """Decimals as strings of one width whose points line up (integers line up where their
    point would be); None as `-` in the integer part."""
    parts = [plain(v).partition(".") if v is not None else (NONE, "", "") for v in values]
    whole = max((len(w) for w, _, _ in parts), default=0)
    fraction = max((len(p + f) for _, p, f in parts), default=0)
    width = max(whole + fraction, min_width)
    return [(w.rjust(whole) + (p + f).ljust(fraction)).rjust(width) for w, p, f in parts]


def styled(value: str | None, styles: Mapping[str, str]) -> Text:
    text = value if value is not None else NONE
    return Text(text, style=styles.get(text, ""))


class Kind(Enum):
    TEXT = "text"
    DECIMAL = "decimal"
    SIDE = "side"
    STATUS = "status"
    TIME = "time"


@dataclass(frozen=True)
class Col:
    """One column of a table: its header, the answer's field it shows, and how."""

    header: str
    field: str
    kind: Kind = Kind.TEXT

    def title(self, rows: Sequence[Row], clock: Clock) -> Text:
        """A column of times names their zone, where they are all in one (not a winter
        time and a summer time: then each time names its own)."""
        if self.kind is Kind.TIME:
            zones = self._zones(rows, clock)
            if len(zones) <= 1:
                return Text(f"{self.header} ({zones.pop()[0] if zones else clock.zone})")
        return Text(self.header)

    def cells(self, rows: Sequence[Row], clock: Clock) -> list[Text]:
        values = [row.get(self.field) for row in rows]
        if self.kind is Kind.DECIMAL:
            return [Text(cell) for cell in align_on_point(values, len(self.header))]
        if self.kind is Kind.SIDE:
            return [styled(value, SIDE_STYLES) for value in values]
        if self.kind is Kind.STATUS:
            return [styled(value, STATUS_STYLES) for value in values]
        if self.kind is Kind.TIME:
            own_zone = len(self._zones(rows, clock)) > 1
            return [Text(clock.stamp(value, own_zone) if value else NONE) for value in values]
        return [Text(str(value) if value is not None else NONE) for value in values]

    def _zones(self, rows: Sequence[Row], clock: Clock) -> set[tuple[str, timedelta | None]]:
        """The zones the column's times are shown in: name and offset (a name may have
        meant another offset in another year)."""
        moments = (clock.moment(row[self.field]) for row in rows if row.get(self.field))
        return {(at.strftime("%Z"), at.utcoffset()) for at in moments}


def table(columns: Sequence[Col], rows: Sequence[Row], clock: Clock) -> list[Text]:
    """Headers over aligned columns, no rules: as kubectl and docker print; decimals to the
    right, lined up on the point."""
    return styled_table(
        [column.title(rows, clock) for column in columns],
        list(zip(*(column.cells(rows, clock) for column in columns), strict=True)),
        [column.kind is Kind.DECIMAL for column in columns],
    )


def table_or(nothing: str, columns: Sequence[Col], rows: Sequence[Row], clock: Clock) -> Shown:
    return table(columns, rows, clock) if rows else Text(nothing, style="dim")


# ---------------------------------------------------------------- orders, fills, balances

ORDER_COLUMNS = (
    Col("CL_ORD_ID", "cl_ord_id"),
    Col("SYMBOL", "symbol"),
    Col("SIDE", "side", Kind.SIDE),
    Col("TYPE", "order_type"),
    Col("QTY", "qty", Kind.DECIMAL),
    Col("PRICE", "price", Kind.DECIMAL),
    Col("FILLED", "cum_qty", Kind.DECIMAL),
    Col("AVG_PX", "avg_px", Kind.DECIMAL),
    Col("STATUS", "status", Kind.STATUS),
    Col("ORDER_ID", "order_id"),
)
FILL_COLUMNS = (
    Col("TIME", "ts", Kind.TIME),
    Col("SYMBOL", "symbol"),
    Col("SIDE", "side", Kind.SIDE),
    Col("QTY", "qty", Kind.DECIMAL),
    Col("PRICE", "price", Kind.DECIMAL),
    Col("CL_ORD_ID", "cl_ord_id"),
    Col("ORDER_ID", "order_id"),
    Col("EXEC_ID", "exec_id"),
)
BALANCE_COLUMNS = (
    Col("CURRENCY", "currency"),
    Col("FREE", "free", Kind.DECIMAL),
    Col("FROZEN", "frozen", Kind.DECIMAL),
    Col("TOTAL", "total", Kind.DECIMAL),
)


def order_rows(orders: Sequence[Row]) -> list[Row]:
    """No average price before the first fill (the wire says 0)."""
    return [{**o, "avg_px": o["avg_px"] if Decimal(o["cum_qty"]) else None} for o in orders]


def render_orders(orders: Sequence[Row], clock: Clock) -> Shown:
    return table_or("no orders", ORDER_COLUMNS, order_rows(orders), clock)


def render_trades(trades: Sequence[Row], clock: Clock) -> Shown:
    return table_or("no fills", FILL_COLUMNS, trades, clock)


def balance_said(account: Row) -> str | None:
    """`available 1234.5 USD`: Balance (8001), the available funds as the exchange reports
    them (several amounts where it joined them with `/`), in the account's currency."""
    if not account.get("balance"):
        return None
    amounts = " / ".join(plain(amount) for amount in account["balance"])
    return f"available {amounts}" + (f" {account['currency']}" if account.get("currency") else "")


def render_account(account: Row, clock: Clock) -> Shown:
    """The available funds, then the per-currency table; `no balances` where the exchange
    reported neither."""
    rows = [
        {
            "currency": currency,
            **held,
            "total": (
                EXACT.add(Decimal(held["free"]), Decimal(held["frozen"]))
                if held.get("free") is not None and held.get("frozen") is not None
                else None
            ),
        }
        for currency, held in sorted(account["balances"].items())
    ]
    available = balance_said(account)
    if available is None:
        return table_or("no balances", BALANCE_COLUMNS, rows, clock)
    return [Text(available), *(table(BALANCE_COLUMNS, rows, clock) if rows else [])]


SOURCES = {
    "exchange": "the exchange's answer",
    "local": "the gateway's state: the exchange has not acknowledged the order yet",
}


def render_order_status(answer: Row, clock: Clock) -> Shown:
    source = str(answer.get("source"))
    lines = table(ORDER_COLUMNS, order_rows([answer]), clock)
    if answer.get("text"):
        lines.append(Text(f"text: {answer['text']}"))
    lines.append(Text(SOURCES.get(source, source), style="dim"))
    return lines


# ---------------------------------------------------------------- the session

SESSION_STYLES = {"up": "green", "down": "red", "disabled": "red"}


def duration(seconds: float) -> str:
    """`3 h 2 min 5 s`: an uptime as a person says it."""
    whole = int(seconds)
    parts = [(whole // 86400, "d"), (whole // 3600 % 24, "h"), (whole // 60 % 60, "min")]
    said = [f"{n} {unit}" for n, unit in parts if n]
    return " ".join([*said, f"{whole % 60} s"])


def halted_text(halted: Row | None, clock: Clock) -> Text:
    if not halted:
        return Text("no")
    why = f": {halted['reason']}" if halted.get("reason") else ""
    return Text(f"yes, by {halted['by']} since {clock.stamp(halted['since'])}{why}", style="red")


def session_text(status: Row) -> Text:
    state = status["session"]
    if status["ready"]:
        ready = "ready"
    elif state == "up":
        ready = f"reconciling {status['reconciling']} orders"
    else:
        ready = "not ready"
    return Text.assemble(
        (state, SESSION_STYLES.get(state, "yellow")), f"  {status['session_id']}  ({ready})"
    )


def seq_text(status: Row) -> Text:
    seq = status["seq_nums"]
    return Text(f"next out {seq.get('next_sender', NONE)}, next in {seq.get('next_target', NONE)}")


def heartbeat_text(status: Row) -> Text:
    """The last TestRequest's round trip to its Heartbeat (one every heartbeat interval)."""
    rtt = status.get("heartbeat_rtt_ms")
    if rtt is None:
        return Text("none answered yet this session", style="dim")
    return Text(f"{rtt:.1f} ms")


def _connection(status: Row, clock: Clock) -> Text:
    c = status["connection"]
    said = f"{c['phase']}; attempts {c['attempts']}, failures in a row {c['failures_in_a_row']}"
    if c.get("next_attempt_at"):
        said += f", next at {clock.stamp(c['next_attempt_at'])}"
    if c["phase"] != "up" and c.get("last_down_reason"):
        said += f"; last down: {c['last_down_reason']}"
    if c.get("held"):
        return Text(f"{said}; held: {c['held']}", style="red")
    return Text(said)


def _account(status: Row, clock: Clock) -> Text:
    a = status["account"]
    if a["available"]:
        return Text("balances available")
    since = f" since {clock.stamp(a['unavailable_since'])}" if a.get("unavailable_since") else ""
    return Text(f"balances unavailable{since}: {a.get('reason')}", style="yellow")


def _market_data(status: Row, clock: Clock) -> Text:
    streams = status["market_data"]
    if not streams:
        return Text("no streams")
    return Text(", ".join(_stream(name, s, clock) for name, s in sorted(streams.items())))


def _stream(name: str, stream: Row, clock: Clock) -> str:
    state = str(stream["state"]).replace("_", " ")
    if stream.get("next_request_at"):
        state += f", next request at {clock.stamp(stream['next_request_at'])}"
    return f"{name} {state} ({stream['clients']} clients)"


def _tls(status: Row, clock: Clock) -> Text:
    tls = status["tls"]
    if not tls["enabled"]:
        return Text("off")
    return Text(f"on; last error: {tls['last_error']}" if tls.get("last_error") else "on")


def _errors(status: Row, clock: Clock) -> Text:
    counts = Text(
        f"{status['inbound_refused']} refused inbound, {status['callback_errors']} in callbacks, "
        f"{status['dialect_errors']} in the dialect"
    )
    dropped = status.get("log_lines_dropped", 0)
    if not dropped:
        return counts
    return Text.assemble(counts, "; ", (f"{dropped} log lines dropped", "red"))


StatusLine = Callable[[Row, Clock], Text]
STATUS_LINES: tuple[tuple[str, StatusLine], ...] = (
    ("session", lambda s, _: session_text(s)),
    ("connection", _connection),
    ("seq nums", lambda s, _: seq_text(s)),
    ("heartbeat rtt", lambda s, _: heartbeat_text(s)),
    ("halted", lambda s, clock: halted_text(s["halted"], clock)),
    ("orders", lambda s, _: Text(f"{s['open_orders']} open, {s['throttle_queued']} queued")),
    ("account", _account),
    ("market data", _market_data),
    (
        "venue",
        lambda s, _: Text(
            f"{s['venue']['name']}; offers {', '.join(s['venue']['offers']) or 'orders only'}"
        ),
    ),
    ("tls", _tls),
    ("errors", _errors),
    ("uptime", lambda s, _: Text(f"{duration(s['uptime_s'])}, fixgw {s['version']}")),
    ("last event", lambda s, _: Text(f"seq {s['last_event_seq']}")),
)


def render_status(status: Row, clock: Clock) -> Shown:
    return label_grid([(label, line(status, clock)) for label, line in STATUS_LINES])


# ---------------------------------------------------------------- controls


def _left_open(rows: Sequence[Row]) -> str:
    return f", {len(rows)} not cancelled now" if rows else ""


def _withdrawn(result: Row) -> str:
    """Orders the throttle still held: canceled at once, no cancel sent (absent from a
    gateway older than the key)."""
    withdrawn = result.get("withdrawn") or []
    return f", {len(withdrawn)} canceled before they were sent" if withdrawn else ""


def _not_recorded(result: Row) -> list[Text]:
    """The answer's warning, on a line of its own, where it has one."""
    warning = result.get("warning")
    return [Text(f"warning: {warning}", "bold red")] if warning else []


def render_halt(result: Row, clock: Clock) -> Shown:
    said = Text.assemble(
        ("halted", "red"),
        f": new orders refused; cancelling {len(result['cancelling'])} open orders"
        f"{_withdrawn(result)}{_left_open(result['waiting'])}",
    )
    return [said, *_not_recorded(result)]


def render_cancel_all(result: Row, clock: Clock) -> Shown:
    return Text(
        f"cancelling {len(result['cancelling'])} open orders{_withdrawn(result)}"
        f"{_left_open(result['not_cancelled'])}"
    )


def render_resume(result: Row, clock: Clock) -> Shown:
    said = Text.assemble(("resumed", "green"), ": the kill switch is off")
    return [said, *_not_recorded(result)]


def render_cancel(result: Row, clock: Clock) -> Shown:
    order = result["cl_ord_id"] or f"order {result['order_id']}"
    return Text.assemble(
        f"cancel of {order} sent as {result['cancel_cl_ord_id']}: ",
        styled(result["status"], STATUS_STYLES),
    )


def render_seq_reset(result: Row, clock: Clock) -> Shown:
    return Text.assemble("sequence numbers reset: ", seq_text(result))


def render_logon(result: Row, clock: Clock) -> Shown:
    return Text.assemble("logging on again: ", _connection(result, clock))


VIEWS: dict[str, View] = {
    "orders": View(render_orders, items="orders"),
    "trades": View(render_trades, items="trades"),
    "account": View(render_account),
    "status": View(render_status),
    "order status": View(render_order_status),
    "order cancel": View(render_cancel),
    "halt": View(render_halt),
    "resume": View(render_resume),
    "cancel-all": View(render_cancel_all),
    "session reset-seq": View(render_seq_reset),
    "session logon": View(render_logon),
}
"""Each client command's answer, by command: a table, a summary or a line (`events` and
`order new` print as things happen: see lines.py)."""
