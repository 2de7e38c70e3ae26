"""`fixgw`: run the daemon or the simulator, check a config, and talk to a running gateway."""

from __future__ import annotations

import argparse
import contextlib
import getpass
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec
import uvloop

from fixgw import __version__, journal
from fixgw.api.client import ApiError, Client, apply_market_data
from fixgw.config import load_gateway_config, load_sim_config
from fixgw.errors import ConfigError, StartupError
from fixgw.files import private_umask
from fixgw.journal import JournalDamaged, side_file
from fixgw.marketdata.book import OrderBook
from fixgw.ops.capture import capture as capture_python_output
from fixgw.ops.logging import configure as configure_logging

if TYPE_CHECKING:
    from fixgw.nats.client import NatsClient

DEFAULTS = Path(__file__).resolve().parent / "defaults"
DEMO_SIM = DEFAULTS / "demo-sim.yaml"
DEMO_GATEWAY = DEFAULTS / "demo-gateway.yaml"
DEMO_ENV = {"FIXGW_API_KEY": "demo-api-key", "FIXGW_SECRET_KEY": "demo-secret"}
DEFAULT_SOCKET = "/run/fixgw/fixgw.sock"

EXIT_CONFIG = 2
"""A config error: a wrong key, or something it names that cannot be used at start (a file,
a directory, a group, a host, a port in use): one line per problem, naming the key."""
EXIT_REJECTED = 3
"""`order new`: the followed order ended rejected by the exchange."""
EXIT_NOT_CANCELLED = 4
"""`halt`, `cancel-all`: some open orders could not be sent a cancel now."""
EXIT_JOURNAL_DAMAGED = 5
"""`run`: the journal has damaged records (see `fixgw journal check`); `journal check`: it
has."""
EXIT_CODES = f"""exit status:
  0  done
  1  the gateway refused the request, or could not be reached
  {EXIT_CONFIG}  a config error, or something the config names cannot be used (a file, a
     directory, a group, a host, a port in use): one line each, naming the key
  {EXIT_REJECTED}  order new: the exchange rejected the order (seen while following it)
  {EXIT_NOT_CANCELLED}  halt: some open orders could not be sent a cancel now (the session is
     down, or the cancel rate limit): the gateway cancels them as soon as it can;
     cancel-all: some open orders were not cancelled (listed in `not_cancelled`)
  {EXIT_JOURNAL_DAMAGED}  run, journal check: the journal has damaged records; run refuses to
     start until `fixgw journal repair` has set them aside
"""

_json = msgspec.json.Encoder(decimal_format="string")


def _print(obj: Any) -> None:
    sys.stdout.write(_json.encode(obj).decode() + "\n")
    sys.stdout.flush()


# ---------------------------------------------------------------- daemon commands


def cmd_run(args: argparse.Namespace) -> int:
    from fixgw import preflight
    from fixgw.daemon import run_gateway

    config = load_gateway_config(args.config)
    problems = preflight.gateway_problems(config)
    if problems:
        return _cannot_start(args.config, problems)
    configure_logging(config.log.level, config.log.format)
    capture_python_output()
    private_umask()
    try:
        return uvloop.run(run_gateway(config, Path(args.config)))
    except StartupError as exc:
        return _cannot_start(args.config, [exc.message])
    except JournalDamaged as exc:
        print(
            f"fixgw: journal damaged: {args.config}: {exc.message}; the gateway does not start "
            f"on it. List the damaged records: fixgw journal check -c {args.config}; set them "
            f"aside in {side_file(exc.path)} and keep every readable record: "
            f"fixgw journal repair -c {args.config}",
            file=sys.stderr,
        )
        return EXIT_JOURNAL_DAMAGED


def cmd_sim(args: argparse.Namespace) -> int:
    from fixgw import preflight
    from fixgw.daemon import run_simulator

    source = args.config or DEMO_SIM
    config = load_sim_config(source)
    problems = preflight.sim_problems(config)
    if problems:
        return _cannot_start(source, problems)
    configure_logging(args.log_level, "auto")
    capture_python_output()
    private_umask()
    try:
        return run_simulator(config)
    except StartupError as exc:
        return _cannot_start(source, [exc.message])


def _cannot_start(source: str | Path, problems: list[str]) -> int:
    """One line per problem, each naming the config key; the exit status of a config error."""
    for problem in problems:
        print(f"fixgw: config error: {source}: {problem}", file=sys.stderr)
    return EXIT_CONFIG


def cmd_check_config(args: argparse.Namespace) -> int:
    """Everything `run` (or `sim`) would find wrong at start, without starting anything."""
    from fixgw import preflight

    if args.sim:
        problems = preflight.sim_problems(load_sim_config(args.file))
    else:
        problems = preflight.gateway_problems(load_gateway_config(args.file), args.running)
    if problems:
        return _cannot_start(args.file, problems)
    print(f"{args.file}: ok")
    return 0


def _journal_path(args: argparse.Namespace) -> Path:
    """The journal the command is about; ConfigError if there is none to look at."""
    path = Path(args.path) if args.path is not None else None
    if path is None:
        path = Path(load_gateway_config(args.config).journal.path)
    if not path.is_file():
        raise ConfigError(f"{path}: no journal there")
    return path


def _preview(raw: bytes) -> str:
    text = raw.decode("utf-8", "replace").rstrip("\n")
    return repr(text if len(text) <= 160 else f"{text[:160]}...")


def cmd_journal_check(args: argparse.Namespace) -> int:
    """Every record that cannot be trusted, without changing anything."""
    path = _journal_path(args)
    try:
        found = journal.scan(path)
    except OSError as exc:
        print(f"fixgw: cannot read {path}: {exc.strerror}", file=sys.stderr)
        return 1
    for damage in found.damaged:
        print(f"{path}: {damage.describe()}: {_preview(damage.raw)}")
    torn = found.size - found.good_end
    if torn:
        print(
            f"{path}: ends in a torn line of {torn} bytes (a crash mid-write): the gateway cuts it"
        )
    print(
        f"{path}: {found.lines} good records, last seq {found.last_seq}; "
        f"{len(found.damaged)} damaged"
    )
    return EXIT_JOURNAL_DAMAGED if found.damaged else 0


def cmd_journal_repair(args: argparse.Namespace) -> int:
    """Damaged records (and a torn tail) to the side file; every other record kept as it
    was. Refused while a gateway runs on the journal."""
    path = _journal_path(args)
    try:
        repaired = journal.repair(path)
    except StartupError as exc:
        print(f"fixgw: {exc.message}; stop the gateway first", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"fixgw: cannot repair {path}: {exc}; nothing was replaced", file=sys.stderr)
        return 1
    if not repaired.set_aside:
        print(f"{path}: nothing to repair ({repaired.kept} good records)")
        return 0
    for damage in repaired.set_aside:
        print(f"{path}: set aside {damage.describe()}")
    print(
        f"{path}: {repaired.kept} records kept as they were; {len(repaired.set_aside)} set "
        f"aside in {repaired.side_file} (their bytes exactly, base64, with where they were). "
        "The gateway now starts and asks the exchange about every open order it knows; an "
        "order a damaged record alone named is not among them: compare "
        "`fixgw orders --from-exchange` with `fixgw orders` once it is up"
    )
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """The simulator in a child process, the gateway in this one, both on the demo configs."""
    for key, value in DEMO_ENV.items():
        os.environ.setdefault(key, value)
    sim_config = load_sim_config(DEMO_SIM)
    if _answers(sim_config.host, sim_config.port):
        raise SystemExit(
            f"fixgw demo: {sim_config.host}:{sim_config.port}, the simulator's port, is in use "
            "(a demo still running?); stop that first"
        )
    sim = subprocess.Popen([sys.executable, "-m", "fixgw", "sim", "-c", str(DEMO_SIM)])
    try:
        _wait_for_port(sim_config.host, sim_config.port, sim)
        gateway_config = load_gateway_config(DEMO_GATEWAY)
        print(
            f"""
fixgw demo: simulator on {sim_config.host}:{sim_config.port}, gateway socket at \
{gateway_config.api.socket_path}.
In another terminal, in this directory:
  export FIXGW_SOCKET={gateway_config.api.socket_path}
  .venv/bin/fixgw events &                                   # stream order events
  .venv/bin/fixgw order new BTC/USD buy 0.5 --price 30010    # crosses the seeded ask
  .venv/bin/fixgw order new BTC/USD sell 1 --price 31000     # rests on the book
  .venv/bin/fixgw orders
Ctrl-C stops both.
""",
            flush=True,
        )
        return cmd_run(argparse.Namespace(config=DEMO_GATEWAY))
    finally:
        sim.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            sim.wait(10)


def _answers(host: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
        return True
    return False


def _wait_for_port(host: str, port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the simulator exited with status {process.returncode}")
        if _answers(host, port):
            return
        time.sleep(0.1)
    raise SystemExit(f"the simulator did not listen on {host}:{port} within 30 s")


# ---------------------------------------------------------------- client commands


def _client(args: argparse.Namespace) -> Client | NatsClient:
    if args.nats:
        return _nats_client(args)
    if args.tcp:
        host, _, port = args.tcp.rpartition(":")
        token = os.environ.get(args.token_env)
        return Client.connect(host=host or "127.0.0.1", port=int(port), token=token, name=_me())
    return Client.connect(args.socket, name=_me())


def _nats_client(args: argparse.Namespace) -> NatsClient:
    """The gateway over NATS (`--nats URL --gateway NAME`); credentials from the environment:
    FIXGW_NATS_CREDS (a creds file), FIXGW_NATS_USER and FIXGW_NATS_PASSWORD, or
    FIXGW_NATS_TOKEN."""
    from fixgw.nats import client_missing

    if why := client_missing():
        raise ConfigError(f"--nats: {why}")
    if not args.gateway:
        raise ConfigError("--nats needs --gateway NAME (or FIXGW_GATEWAY): whose requests")
    from fixgw.nats.client import NatsClient

    env = os.environ.get
    return NatsClient.connect(
        args.nats,
        gateway=args.gateway,
        user_credentials=env("FIXGW_NATS_CREDS"),
        user=env("FIXGW_NATS_USER"),
        password=env("FIXGW_NATS_PASSWORD"),
        token=env("FIXGW_NATS_TOKEN"),
    )


def _me() -> str:
    """How the CLI names itself to the gateway: who is at the keyboard, for the journal."""
    return f"fixgw-cli:{getpass.getuser()}"


def cmd_order_new(args: argparse.Namespace) -> int:
    order_type = args.type or ("limit" if args.price is not None else "market")
    with _client(args) as gw:
        if args.follow:
            gw.subscribe(["orders"])
        result = gw.new_order(
            symbol=args.symbol,
            side=args.side,
            type=order_type,
            qty=args.qty,
            price=args.price,
            cl_ord_id=args.cl_ord_id,
        )
        _print(result)
        if args.follow:
            for event in _events_of(gw, result["cl_ord_id"], args.follow):
                _print(event)
                if event.get("status") == "rejected":
                    text = event.get("text") or event.get("reason")
                    print(f"fixgw: the exchange rejected the order: {text}", file=sys.stderr)
                    return EXIT_REJECTED
    return 0


def _events_of(gw: Client | NatsClient, cl_ord_id: str, seconds: float) -> Iterator[dict[str, Any]]:
    """The order's events until it closes, or until it rests on the book with no fill for a
    moment, or until time runs out."""
    deadline = time.monotonic() + seconds
    while (remaining := deadline - time.monotonic()) > 0:
        try:
            event = gw.next_event(remaining)
        except TimeoutError:
            return
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


def cmd_order_cancel(args: argparse.Namespace) -> int:
    with _client(args) as gw:
        _print(gw.cancel_order(**_order_ref(args)))
    return 0


def cmd_order_status(args: argparse.Namespace) -> int:
    with _client(args) as gw:
        _print(gw.order_status(**_order_ref(args)))
    return 0


def cmd_orders(args: argparse.Namespace) -> int:
    with _client(args) as gw:
        result = gw.request(
            "orders",
            all=args.all or None,
            from_exchange=args.from_exchange or None,
            symbol=args.symbol,
        )
        for order in result["orders"]:
            _print(order)
    return 0


def cmd_account(args: argparse.Namespace) -> int:
    with _client(args) as gw:
        _print(gw.request("account"))
    return 0


def cmd_trades(args: argparse.Namespace) -> int:
    with _client(args) as gw:
        for trade in gw.request("trades", symbol=args.symbol, limit=args.limit)["trades"]:
            _print(trade)
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    with _client(args) as gw:
        _print(gw.status())
    return 0


def cmd_halt(args: argparse.Namespace) -> int:
    with _client(args) as gw:
        result = gw.request("halt", reason=args.reason)
    _print(result)
    return _not_cancelled(result["waiting"], "cancelled as soon as the gateway can")


def cmd_resume(args: argparse.Namespace) -> int:
    with _client(args) as gw:
        _print(gw.request("resume"))
    return 0


def cmd_cancel_all(args: argparse.Namespace) -> int:
    with _client(args) as gw:
        result = gw.request("cancel_all")
    _print(result)
    return _not_cancelled(result["not_cancelled"], "still open; try again")


def _not_cancelled(orders: list[dict[str, str]], then: str) -> int:
    """Say which orders got no cancel, and why; the exit status."""
    if not orders:
        return 0
    for order in orders:
        print(f"fixgw: {order['cl_ord_id']}: no cancel sent: {order['reason']}", file=sys.stderr)
    print(f"fixgw: {len(orders)} open orders not cancelled now: {then}", file=sys.stderr)
    return EXIT_NOT_CANCELLED


def cmd_session_reset_seq(args: argparse.Namespace) -> int:
    with _client(args) as gw:
        _print(gw.request("session_reset_seq"))
    return 0


def cmd_session_logon(args: argparse.Namespace) -> int:
    with _client(args) as gw:
        _print(gw.request("session_logon"))
    return 0


def cmd_events(args: argparse.Namespace) -> int:
    with _client(args) as gw:
        gw.subscribe(args.topic or ["orders", "session", "errors"], since=args.since)
        with contextlib.suppress(KeyboardInterrupt):
            for event in gw.events():
                _print(event)
    return 0


def cmd_md_watch(args: argparse.Namespace) -> int:
    """A live top of book and the trades, from the gateway's events."""
    book = OrderBook(args.symbol)
    with _client(args) as gw:
        reply = gw.request("md_subscribe", symbol=args.symbol, depth=0)
        apply_market_data(book, {**reply, "type": "md.snapshot"})
        print(_top_line(book, args.depth), flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            for event in gw.events():
                if event["seq"] <= reply["seq"]:
                    continue
                if apply_market_data(book, event):
                    print(_top_line(book, args.depth), flush=True)
                elif event["type"] == "md.trade":
                    aggressor = event.get("aggressor") or ""
                    print(f"trade  {event['size']} @ {event['price']}  {aggressor}", flush=True)
                elif event["type"] in ("md.stale", "md.rejected"):
                    print(f"{event['type']}: {event.get('reason')}", flush=True)
    return 0


def _top_line(book: OrderBook, depth: int) -> str:
    bids, asks = book.levels(depth)
    bid = "  ".join(f"{s}@{p}" for p, s in bids) or "-"
    ask = "  ".join(f"{s}@{p}" for p, s in asks) or "-"
    return f"{book.symbol}  bid {bid}  |  ask {ask}"


# ---------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fixgw",
        description=__doc__,
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"fixgw {__version__}")
    parser.add_argument(
        "--nats",
        metavar="URL",
        default=os.environ.get("FIXGW_NATS"),
        help="talk to the gateway over this NATS broker instead of its socket (env FIXGW_NATS; "
        "credentials: FIXGW_NATS_CREDS, FIXGW_NATS_USER and FIXGW_NATS_PASSWORD, or "
        "FIXGW_NATS_TOKEN); with --gateway",
    )
    parser.add_argument(
        "--gateway",
        metavar="NAME",
        default=os.environ.get("FIXGW_GATEWAY"),
        help="with --nats: the gateway's name (nats.gateway in its config; env FIXGW_GATEWAY)",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    def command(
        name: str, handler: Callable[[argparse.Namespace], int], help_: str, parent: Any = sub
    ) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = parent.add_parser(name, help=help_, description=help_)
        p.set_defaults(handler=handler)
        return p

    def with_exit_codes(p: argparse.ArgumentParser) -> None:
        p.epilog, p.formatter_class = EXIT_CODES, argparse.RawDescriptionHelpFormatter

    p = command("run", cmd_run, "run the gateway daemon")
    with_exit_codes(p)
    p.add_argument("-c", "--config", required=True, help="gateway YAML config")
    p = command("sim", cmd_sim, "run the OKCoin-dialect exchange simulator")
    with_exit_codes(p)
    p.add_argument("-c", "--config", help="simulator YAML config (default: the demo's)")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    p = command(
        "check-config",
        cmd_check_config,
        "validate a config file and what it names (files, directories, groups, hosts, free "
        "ports), changing nothing",
    )
    with_exit_codes(p)
    p.add_argument("file")
    p.add_argument("--sim", action="store_true", help="the file is a simulator config")
    p.add_argument(
        "--running",
        action="store_true",
        help="a gateway runs on this config (checking it before a SIGHUP): its own ports, "
        "socket and journal lock are not reported as taken",
    )
    command("demo", cmd_demo, "run the simulator and the gateway on the bundled demo configs")
    journal_parser = sub.add_parser("journal", help="check or repair the event journal")
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
        p = command(name, handler, help_, journal_sub)
        with_exit_codes(p)
        where = p.add_mutually_exclusive_group(required=True)
        where.add_argument("-c", "--config", help="the gateway config naming journal.path")
        where.add_argument("--path", help="the journal file itself")

    def client_options(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--socket",
            default=os.environ.get("FIXGW_SOCKET", DEFAULT_SOCKET),
            help="the gateway's Unix socket (env FIXGW_SOCKET)",
        )
        p.add_argument("--tcp", help="HOST:PORT of the gateway's TCP listener instead")
        p.add_argument(
            "--token-env",
            default="FIXGW_API_TOKEN",
            help="environment variable holding the TCP token",
        )

    order = sub.add_parser("order", help="place, cancel or query one order")
    order_sub = order.add_subparsers(dest="order_command", required=True)
    p = command("new", cmd_order_new, "place an order", order_sub)
    with_exit_codes(p)
    p.add_argument("symbol")
    p.add_argument("side", choices=["buy", "sell"])
    p.add_argument("qty", help="decimal quantity in the base currency")
    p.add_argument("--price", help="limit price (omit for a market order)")
    p.add_argument("--type", choices=["limit", "market"])
    p.add_argument("--cl-ord-id")
    p.add_argument(
        "--follow",
        type=float,
        default=5.0,
        metavar="SECONDS",
        help="print the order's events until it settles (0: don't)",
    )
    client_options(p)
    for name, handler, help_ in (
        ("cancel", cmd_order_cancel, "cancel an order"),
        ("status", cmd_order_status, "ask the exchange for an order's status"),
    ):
        p = command(name, handler, help_, order_sub)
        p.add_argument("cl_ord_id", nargs="?")
        p.add_argument(
            "--order-id", help="the exchange's id, for an order this gateway does not track"
        )
        p.add_argument("--symbol")
        p.add_argument("--side", choices=["buy", "sell"])
        client_options(p)
    md = sub.add_parser("md", help="market data")
    md_sub = md.add_subparsers(dest="md_command", required=True)
    p = command("watch", cmd_md_watch, "print a live top of book and the trades", md_sub)
    p.add_argument("symbol")
    p.add_argument("--depth", type=int, default=1, help="levels per side to print")
    client_options(p)
    p = command("orders", cmd_orders, "list open orders from the gateway's state")
    p.add_argument("--all", action="store_true", help="closed orders too")
    p.add_argument(
        "--from-exchange",
        action="store_true",
        help="the exchange's open orders (OrderMassStatusRequest)",
    )
    p.add_argument("--symbol", help="with --from-exchange: one symbol's orders")
    client_options(p)
    p = command("account", cmd_account, "balances, from the exchange's account info")
    client_options(p)
    p = command("trades", cmd_trades, "this gateway's fills, newest last")
    p.add_argument("--symbol")
    p.add_argument("--limit", type=int, default=100)
    client_options(p)
    p = command("status", cmd_status, "session state, sequence numbers, uptime")
    client_options(p)
    p = command("halt", cmd_halt, "kill switch: refuse new orders, cancel every open order")
    p.add_argument("--reason")
    with_exit_codes(p)
    client_options(p)
    p = command("resume", cmd_resume, "lift the kill switch")
    client_options(p)
    p = command("cancel-all", cmd_cancel_all, "cancel every open order (no halt)")
    with_exit_codes(p)
    client_options(p)
    session = sub.add_parser("session", help="the FIX session to the exchange")
    session_sub = session.add_subparsers(dest="session_command", required=True)
    p = command(
        "reset-seq",
        cmd_session_reset_seq,
        "set both sequence numbers to 1 (refused while the session is up)",
        session_sub,
    )
    client_options(p)
    p = command(
        "logon",
        cmd_session_logon,
        "log on again after the exchange refused the credentials (they were put right)",
        session_sub,
    )
    client_options(p)
    p = command("events", cmd_events, "stream events as JSON lines")
    p.add_argument("--topic", action="append", help="orders, session, errors (repeatable)")
    p.add_argument("--since", type=int, help="replay events after this seq first")
    client_options(p)
    return parser


DAEMON_COMMANDS = frozenset({"run", "sim", "demo", "check-config", "journal"})
"""Commands that do not talk to a running gateway: an OSError from one is not about
reaching the gateway."""


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args))
    except ConfigError as exc:
        print(f"fixgw: config error: {exc.message}", file=sys.stderr)
        return EXIT_CONFIG
    except ApiError as exc:
        print(f"fixgw: {exc.code}: {exc.message}", file=sys.stderr)
        return 1
    except (ConnectionError, FileNotFoundError, TimeoutError) as exc:
        if args.command in DAEMON_COMMANDS:
            raise
        target = f"{args.tcp} (TCP)" if getattr(args, "tcp", None) else getattr(args, "socket", "")
        if args.nats:
            target = f"{args.nats} (NATS, gateway {args.gateway})"
        print(f"fixgw: cannot reach the gateway at {target}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
