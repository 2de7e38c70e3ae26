"""`fixgw`: run the daemon or the simulator, check a config, and talk to a running gateway."""

from __future__ import annotations

import argparse
import sys
import textwrap
from collections.abc import Callable
from typing import Any

from fixgw import __version__
from fixgw.api.client import ApiError, NoAnswer, NotAGateway, NotPermitted
from fixgw.cli.completion import SCRIPTS
from fixgw.cli.connect import BadArgument, connection_options, nats_options, where
from fixgw.cli.daemon_commands import (
    cmd_check_config,
    cmd_demo,
    cmd_journal_check,
    cmd_journal_compact,
    cmd_journal_repair,
    cmd_run,
    cmd_sim,
)
from fixgw.cli.exits import (
    CLIENT,
    CONFIG,
    EXIT_CONFIG,
    EXIT_NO_TUI,
    EXIT_USAGE,
    exit_statuses,
)
from fixgw.cli.gateway_commands import (
    cmd_account,
    cmd_cancel_all,
    cmd_events,
    cmd_halt,
    cmd_md_watch,
    cmd_order_cancel,
    cmd_order_new,
    cmd_order_status,
    cmd_orders,
    cmd_resume,
    cmd_session_logon,
    cmd_session_reset_seq,
    cmd_status,
    cmd_trades,
)
from fixgw.cli.output import end_as_a_closed_pipe_ends_a_unix_tool, output_options, stdout_closed
from fixgw.cli.styled import printable
from fixgw.engine.fills import TRADES_KEPT
from fixgw.errors import ConfigError
from fixgw.ops import held_signals

Handler = Callable[[argparse.Namespace], int]

COMMAND_GROUPS: dict[str, str] = {
    "run": "daemon",
    "sim": "daemon",
    "demo": "daemon",
    "check-config": "daemon",
    "journal": "daemon",
    "order": "orders",
    "orders": "orders",
    "trades": "orders",
    "account": "orders",
    "md": "market data",
    "halt": "controls",
    "resume": "controls",
    "cancel-all": "controls",
    "session": "controls",
    "status": "diagnostics",
    "events": "diagnostics",
    "top": "diagnostics",
    "completion": "shell",
}
"""Every command's group in `fixgw --help`, in the order shown."""

LOCAL_GROUPS = frozenset({"daemon", "shell"})
"""Groups whose commands do not talk to a running gateway: an OSError from one is not about
reaching the gateway."""
CONFIG_GROUPS = frozenset({"daemon"})
"""Groups whose commands read a config (the demo's, or the one named)."""


def kinds_of(command: str) -> frozenset[str]:
    """The kinds of command (`fixgw.cli.exits`) `command`, a path (`order new`), is of."""
    group = COMMAND_GROUPS[command.split()[0]]
    return frozenset(
        kind
        for kind, of_it in ((CLIENT, group not in LOCAL_GROUPS), (CONFIG, group in CONFIG_GROUPS))
        if of_it
    )


def seconds(text: str) -> float:
    """An option's time to wait: 0 or more seconds (argparse names a non-number itself)."""
    value = float(text)
    if not value >= 0:  # nan too
        raise argparse.ArgumentTypeError(f"must be 0 or more seconds, got {text!r}")
    return value


def how_many(text: str) -> int:
    """An option's count of things to show: 1 or more."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {text!r}")
    return value


def levels(text: str) -> int:
    """An option's number of book levels a side: 0 or more."""
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more levels, got {text!r}")
    return value


SIZE_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def size(text: str) -> int:
    """A size in bytes: `500MB`, `500M`, `2GiB`, `1048576`; K, M, G and T are powers of 1024,
    as `du -h` counts."""
    number = text.strip().upper().removesuffix("B").removesuffix("I")
    digits = number.rstrip("KMGT")
    unit = number[len(digits) :]
    if unit not in SIZE_UNITS or not digits.isdigit():
        raise argparse.ArgumentTypeError(f"not a size (500MB, 2G, 1048576): {text!r}")
    return int(digits) * SIZE_UNITS[unit]


def days(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more days, got {text!r}")
    return value


def trades_kept(text: str) -> int:
    value = int(text)
    if not 0 <= value <= TRADES_KEPT:
        raise argparse.ArgumentTypeError(f"must be 0 to {TRADES_KEPT}, got {text!r}")
    return value


def cmd_top(args: argparse.Namespace) -> int:
    """`fixgw top` where it can run: on a terminal, with rich (an optional extra) installed;
    the plain commands never import rich."""
    if not sys.stdout.isatty() or not sys.stdin.isatty():
        print("fixgw top: needs a terminal; scripts read `fixgw events`", file=sys.stderr)
        return EXIT_NO_TUI
    try:
        from fixgw.cli import top
    except ModuleNotFoundError as exc:
        if exc.name != "rich" and not (exc.name or "").startswith("rich."):
            raise
        print(
            "fixgw top: needs rich, the `tui` extra: pip install 'fixgw[tui]' "
            "(in a checkout: pip install -e '.[tui]')",
            file=sys.stderr,
        )
        return EXIT_NO_TUI
    return top.cmd_top(args)


def cmd_completion(args: argparse.Namespace) -> int:
    sys.stdout.write(SCRIPTS[args.shell](build_parser()))
    return 0


def grouped_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> str:
    """The top level's commands under their group's title, one line each with its help."""
    helps = {action.dest: action.help or "" for action in sub._choices_actions}
    ungrouped = sorted(set(sub.choices) ^ set(COMMAND_GROUPS))
    if ungrouped:
        raise AssertionError(f"commands and COMMAND_GROUPS differ: {ungrouped}")
    width = max(map(len, COMMAND_GROUPS)) + 2
    sections = []
    for group in dict.fromkeys(COMMAND_GROUPS.values()):
        lines = [f"{group}:"]
        for name in (n for n, g in COMMAND_GROUPS.items() if g == group):
            lines += textwrap.wrap(
                helps[name],
                width=88,
                initial_indent=f"  {name.ljust(width)}",
                subsequent_indent=" " * (width + 2),
            )
        sections.append("\n".join(lines))
    return "\n\n".join(sections)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fixgw",
        usage="fixgw [-h] [--version] [--nats URL --gateway NAME [--subject-prefix PREFIX] | "
        "--socket PATH | --tcp HOST:PORT [--token-env VAR]] COMMAND ...",
        epilog=exit_statuses(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"fixgw {__version__}")
    nats_options(parser)
    connection_options(parser, top=True)
    # prog: its usage line is the top's whole usage otherwise, and so each command's
    # `usage:` and `error:` lines would start with it
    sub = parser.add_subparsers(
        dest="command", required=True, help=argparse.SUPPRESS, prog=parser.prog
    )

    def command(
        path: str, handler: Handler | None, help_: str, parent: Any = sub
    ) -> argparse.ArgumentParser:
        """A command by its path (`order new`), its help ending in its exit statuses; one
        without a handler holds subcommands."""
        p: argparse.ArgumentParser = parent.add_parser(
            path.split()[-1], help=help_, description=textwrap.fill(help_, width=88)
        )
        if handler is not None:
            p.set_defaults(handler=handler)
            p.epilog = exit_statuses(path, kinds_of(path))
            p.formatter_class = argparse.RawDescriptionHelpFormatter
        return p

    p = command("run", cmd_run, "run the gateway daemon")
    p.add_argument("-c", "--config", required=True, help="gateway YAML config")
    p = command("sim", cmd_sim, "run the OKCoin-dialect exchange simulator")
    p.add_argument("-c", "--config", help="simulator YAML config (default: the demo's)")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    p = command(
        "check-config",
        cmd_check_config,
        "validate a config file and what it names (files, directories, groups, hosts, free "
        "ports), changing nothing",
    )
    p.add_argument("file")
    p.add_argument("--sim", action="store_true", help="the file is a simulator config")
    p.add_argument(
        "--running",
        action="store_true",
        help="a gateway runs on this config (checking it before a SIGHUP): the ports, socket "
        "and journal lock it holds itself are not reported as taken; another process's are",
    )
    command("demo", cmd_demo, "run the simulator and the gateway on the bundled demo configs")
    journal_parser = command("journal", None, "check, repair or compact the event journal")
    journal_sub = journal_parser.add_subparsers(dest="journal_command", required=True)
    for name, handler, help_ in (
        (
            "check",
            cmd_journal_check,
            "list the journal's damaged records (each line carries a checksum), changing nothing",
        ),
        (
            "repair",
            cmd_journal_repair,
            "move damaged records to <journal>.damaged and keep every other record as it was "
            "(the gateway must be stopped)",
        ),
    ):
        p = command(f"journal {name}", handler, help_, journal_sub)
        where = p.add_mutually_exclusive_group(required=True)
        where.add_argument("-c", "--config", help="the gateway config naming journal.path")
        where.add_argument("--path", help="the journal file itself")
    p = command(
        "journal compact",
        cmd_journal_compact,
        "keep of the journal what a restart needs and the last days' events whole; the "
        "journal as it was stays in <journal>.precompact (the gateway must be stopped)",
        journal_sub,
    )
    p.add_argument(
        "-c", "--config", required=True, help="the gateway config (journal, orders, nats, bridge)"
    )
    p.add_argument(
        "--keep-days",
        type=days,
        default=7.0,
        metavar="D",
        help="events newer than D days are kept whole (7)",
    )
    p.add_argument(
        "--keep-trades",
        type=trades_kept,
        default=TRADES_KEPT,
        metavar="N",
        help=f"the orders of the last N fills before that are kept, overall and of each "
        f"symbol, for `trades` ({TRADES_KEPT}, the most it lists)",
    )
    p.add_argument(
        "--if-larger-than",
        type=size,
        metavar="SIZE",
        help="do nothing (exit 0) unless the journal is larger than SIZE (500MB, 2G)",
    )
    p.add_argument(
        "--dry-run", action="store_true", help="say what would be kept and dropped; change nothing"
    )

    order = command("order", None, "place, cancel or query one order")
    order_sub = order.add_subparsers(dest="order_command", required=True)
    p = command("order new", cmd_order_new, "place an order", order_sub)
    p.add_argument("symbol")
    p.add_argument("side", choices=["buy", "sell"])
    p.add_argument("qty", help="decimal quantity in the base currency")
    p.add_argument("--price", help="limit price (omit for a market order)")
    p.add_argument("--type", choices=["limit", "market"])
    p.add_argument("--cl-ord-id")
    p.add_argument(
        "--follow",
        type=seconds,
        default=5.0,
        metavar="SECONDS",
        help="wait at most this long for the order to settle, printing its events (json) or "
        "its outcome (text); 0: don't wait; inf: until it settles",
    )
    output_options(p)
    connection_options(p)
    for name, handler, help_ in (
        ("cancel", cmd_order_cancel, "cancel an order"),
        ("status", cmd_order_status, "ask the exchange for an order's status"),
    ):
        p = command(f"order {name}", handler, help_, order_sub)
        p.add_argument("cl_ord_id", nargs="?")
        p.add_argument(
            "--order-id", help="the exchange's id, for an order this gateway does not track"
        )
        p.add_argument("--symbol")
        p.add_argument("--side", choices=["buy", "sell"])
        output_options(p)
        connection_options(p)
    md = command("md", None, "market data: a live top of book and the trades")
    md_sub = md.add_subparsers(dest="md_command", required=True)
    p = command("md watch", cmd_md_watch, "print a live top of book and the trades", md_sub)
    p.add_argument("symbol")
    p.add_argument(
        "--depth", type=levels, default=1, help="levels per side to print (0: the whole book)"
    )
    connection_options(p)
    p = command("orders", cmd_orders, "list open orders from the gateway's state")
    output_options(p)
    p.add_argument("--all", action="store_true", help="closed orders too")
    p.add_argument(
        "--from-exchange",
        action="store_true",
        help="the exchange's open orders (OrderMassStatusRequest)",
    )
    p.add_argument("--symbol", help="one symbol's orders only")
    connection_options(p)
    p = command("account", cmd_account, "balances, from the exchange's account info")
    output_options(p)
    connection_options(p)
    p = command("trades", cmd_trades, "this gateway's fills, newest last")
    p.add_argument("--symbol")
    p.add_argument("--limit", type=how_many, default=100, help="the last N fills (100)")
    output_options(p, times=True)
    connection_options(p)
    p = command("status", cmd_status, "session state, sequence numbers, uptime")
    output_options(p, times=True)
    connection_options(p)
    p = command("halt", cmd_halt, "kill switch: refuse new orders, cancel every open order")
    p.add_argument("--reason")
    output_options(p)
    connection_options(p)
    p = command("resume", cmd_resume, "lift the kill switch")
    output_options(p)
    connection_options(p)
    p = command("cancel-all", cmd_cancel_all, "cancel every open order (no halt)")
    output_options(p)
    connection_options(p)
    session = command("session", None, "the FIX session to the exchange")
    session_sub = session.add_subparsers(dest="session_command", required=True)
    p = command(
        "session reset-seq",
        cmd_session_reset_seq,
        "set both sequence numbers to 1 (refused while the session is up)",
        session_sub,
    )
    output_options(p)
    connection_options(p)
    p = command(
        "session logon",
        cmd_session_logon,
        "log on again after the exchange refused the credentials (they were put right)",
        session_sub,
    )
    output_options(p)
    connection_options(p)
    p = command("events", cmd_events, "stream events: a line each, as they happen")
    p.add_argument(
        "--topic", action="append", help="orders, session, errors, account, md:SYMBOL (repeatable)"
    )
    p.add_argument("--since", type=int, help="replay events after this seq first")
    output_options(p, times=True)
    connection_options(p)
    p = command(
        "top",
        cmd_top,
        "a live full-screen view: the session, open orders, the last fills, the top of book "
        "(q quits)",
    )
    p.add_argument(
        "--symbol",
        action="append",
        help="a book to show (repeatable; default: the symbols of the orders and fills shown)",
    )
    p.add_argument("--fills", type=how_many, default=10, metavar="N", help="the last N fills (10)")
    p.add_argument("--utc", action="store_true", help="show times in UTC (default: local time)")
    connection_options(p)
    p = command("completion", cmd_completion, "print a shell completion script (see docs/cli.md)")
    p.add_argument("shell", choices=sorted(SCRIPTS))
    parser.description = f"{__doc__}\n\n{grouped_commands(sub)}"
    return parser


_WAY_OPTIONS = ("nats", "gateway", "subject_prefix", "socket", "tcp", "token_env")


def _ways_given_to_a_local_command(args: argparse.Namespace) -> None:
    """`fixgw --nats URL run -c F` ran on the config's own NATS, saying nothing of the URL."""
    if COMMAND_GROUPS[args.command] not in LOCAL_GROUPS:
        return
    given = [f"--{n.replace('_', '-')}" for n in _WAY_OPTIONS if getattr(args, n, None) is not None]
    if given:
        raise BadArgument(
            f"{' and '.join(given)} {'names' if len(given) == 1 else 'name'} a way to a running "
            f"gateway, and `{args.command}` talks "
            "to none"
            + (
                ": its NATS, socket and TCP listener are its config's"
                if args.command == "run"
                else ""
            )
        )


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.handler is not cmd_run:
        held_signals.let_through()  # held for the daemon only (`fixgw.__main__`)
    try:
        _ways_given_to_a_local_command(args)
        status = int(args.handler(args))
        sys.stdout.flush()  # a closed stdout fails here, while it can be told apart
        return status
    except BadArgument as exc:
        print(f"fixgw: {exc.message}", file=sys.stderr)
        return EXIT_USAGE
    except ConfigError as exc:
        print(f"fixgw: config error: {exc.message}", file=sys.stderr)
        return EXIT_CONFIG
    except ApiError as exc:
        print(f"fixgw: {printable(f'{exc.code}: {exc.message}')}", file=sys.stderr)
        return 1
    except NotAGateway as exc:
        print(f"fixgw: {where(args)} is not a fixgw gateway: {exc}", file=sys.stderr)
        return 1
    except (NoAnswer, NotPermitted) as exc:  # reached: not "cannot reach"
        print(f"fixgw: {where(args)}: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:  # refused, gone, timed out, no such name, no permission
        if isinstance(exc, BrokenPipeError) and stdout_closed():
            return end_as_a_closed_pipe_ends_a_unix_tool()
        if COMMAND_GROUPS[args.command] in LOCAL_GROUPS:
            raise
        print(f"fixgw: cannot reach the gateway at {where(args)}: {exc}", file=sys.stderr)
        return 1
