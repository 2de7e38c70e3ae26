"""The commands that run something or look at files, not at a running gateway: `run`, `sim`,
`demo`, `check-config`, `journal check|repair|compact`."""

from __future__ import annotations

import argparse
import contextlib
import os
import shlex
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import uvloop

from fixgw import journal
from fixgw.cli.connect import BadArgument
from fixgw.cli.exits import EXIT_CONFIG, EXIT_JOURNAL_DAMAGED
from fixgw.config import (
    GatewayConfig,
    load_gateway_config,
    load_sim_config,
    read_gateway_config,
    secret_problems,
)
from fixgw.errors import ConfigError, StartupError
from fixgw.files import private_umask
from fixgw.journal import JournalDamaged, side_file
from fixgw.ops import held_signals
from fixgw.ops.capture import capture as capture_python_output
from fixgw.ops.logging import configure as configure_logging

if TYPE_CHECKING:
    from fixgw.compaction import Compacted, Holder

DEFAULTS = Path(__file__).resolve().parent.parent / "defaults"
DEMO_SIM = DEFAULTS / "demo-sim.yaml"
DEMO_GATEWAY = DEFAULTS / "demo-gateway.yaml"
DEMO_ENV = {"FIXGW_API_KEY": "demo-api-key", "FIXGW_SECRET_KEY": "demo-secret"}


def cmd_run(args: argparse.Namespace) -> int:
    held_signals.hold()  # already held when started as `fixgw run`; not from `demo`
    try:
        return _run(args)
    finally:
        for sig in held_signals.take():  # the gateway did not get as far as taking them
            print(f"fixgw: {sig.name} came while starting: not acted on", file=sys.stderr)


def _run(args: argparse.Namespace) -> int:
    from fixgw.daemon import run_gateway

    config, problems = _gateway_config(args.config)
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


def _gateway_config(path: str, running: bool = False) -> tuple[GatewayConfig, list[str]]:
    """The config, and every problem that would stop it from starting: each secret that
    cannot be read, then what preflight finds."""
    from fixgw import preflight

    config = read_gateway_config(path)
    return config, secret_problems(config) + preflight.gateway_problems(config, running)


def _cannot_start(source: str | Path, problems: list[str]) -> int:
    """One line per problem, each naming the config key; the exit status of a config error."""
    for problem in problems:
        print(f"fixgw: config error: {source}: {problem}", file=sys.stderr)
    return EXIT_CONFIG


def cmd_check_config(args: argparse.Namespace) -> int:
    """Everything `run` (or `sim`) would find wrong at start, without starting anything."""
    from fixgw import preflight

    warnings: list[str] = []
    if args.sim:
        problems = preflight.sim_problems(load_sim_config(args.file))
    else:
        config, problems = _gateway_config(args.file, args.running)
        warnings = preflight.gateway_warnings(config)
    for warning in warnings:
        print(f"fixgw: warning: {args.file}: {warning}", file=sys.stderr)
    if problems:
        return _cannot_start(args.file, problems)
    print(f"{args.file}: ok")
    return 0


def _journal_path(args: argparse.Namespace) -> Path:
    """The journal the command is about; if there is none to look at, BadArgument (`--path`)
    or ConfigError (the config's `journal.path`): exit status 2, as for any path named
    that cannot be used. The config's secrets are not read: under systemd they exist only
    while the unit runs, and these commands are for when it does not."""
    if args.path is not None:
        path = Path(args.path)
        if not path.is_file():
            raise BadArgument(f"--path {path}: no journal there")
        return path
    path = Path(read_gateway_config(args.config).journal.path)
    if not path.is_file():
        raise ConfigError(f"{args.config}: journal.path: {path}: no journal there")
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


def cmd_journal_compact(args: argparse.Namespace) -> int:
    """The journal kept to what a restart needs and the history of the last `--keep-days`
    (`fixgw.compaction`). Refused while a gateway runs on the journal."""
    from fixgw import compaction

    config = read_gateway_config(args.config)
    path = Path(config.journal.path)
    if not path.is_file():
        raise ConfigError(f"journal.path: {path}: no journal there")
    size = path.stat().st_size
    if args.if_larger_than is not None and size <= args.if_larger_than:
        print(f"{path}: {_size(size)}, not larger than {_size(args.if_larger_than)}: left as it is")
        return 0
    held = compaction.holders(config, path)
    try:
        done = compaction.compact(
            path,
            config.orders.keep_closed,
            args.keep_days,
            held,
            keep_trades=args.keep_trades,
            dry_run=args.dry_run,
        )
    except StartupError as exc:
        print(f"fixgw: {exc.message}; stop the gateway first", file=sys.stderr)
        return 1
    except JournalDamaged as exc:
        print(
            f"fixgw: {exc.message}; not compacted: run `fixgw journal repair -c {args.config}` "
            "first",
            file=sys.stderr,
        )
        return EXIT_JOURNAL_DAMAGED
    except compaction.CompactionRefused as exc:
        print(f"fixgw: {exc.message}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"fixgw: cannot compact {path}: {exc}; nothing was replaced", file=sys.stderr)
        return 1
    for line in _compaction_report(path, done, args.dry_run):
        print(line)
    for line in _holders_report(path, held, compaction.bridge_stores(config, path)):
        print(line)
    return 0


def _holders_report(path: Path, held: list[Holder], bridge_stores: list[Path]) -> list[str]:
    """What held the horizon back, each with its seq; and each bridge store looked in that
    had no mark (a relative `bridge.store_dir` read from another working directory, say)."""
    lines = [f"{path}: held back to seq {h.seq} by {h.by}" for h in held]
    for store in bridge_stores:
        if not any(f"({store}/" in h.by for h in held):
            lines.append(f"{path}: no FIX bridge mark in {store}")
    return lines


def _compaction_report(path: Path, done: Compacted, dry_run: bool) -> list[str]:
    would = "would keep" if dry_run else "kept"
    kept = done.orders_kept
    lines = [
        f"{path}: horizon seq {done.horizon}, set by {' and '.join(done.set_by)}; every line "
        "after it kept as it was",
        f"{path}: up to the horizon, {would} the lines of the orders held there: "
        f"{kept['open']} open orders, {kept['closed']} closed ones kept (orders.keep_closed), "
        f"{kept['ids']} forgotten ones "
        f"whose ids are still refused, {kept['trades']} for their fills (trades), and "
        f"{done.kill_switch_lines} halt/resume lines",
    ]
    if not done.dropped:
        lines.append(
            f"{path}: nothing to drop ({done.lines_before} lines, {_size(done.bytes_before)}): "
            "left as it is"
        )
        return lines
    lines.append(
        f"{path}: {done.lines_before} lines, {_size(done.bytes_before)} -> {done.lines_after} "
        f"lines, {_size(done.bytes_after)}" + (" (dry run: nothing changed)" if dry_run else "")
    )
    if done.previous is not None:
        lines.append(
            f"{path}: the journal as it was: {done.previous}, {_size(done.bytes_before)}; "
            "delete it once the gateway runs as it should. A `since` replay from before seq "
            f"{done.horizon} is now incomplete, and says so (recorded in {path}.compacted)"
        )
    return lines


def _size(n: int) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit} ({n} bytes)"
    return f"{n} bytes"


def cmd_demo(args: argparse.Namespace) -> int:
    """The simulator in a child process, the gateway in this one, both on the demo configs."""
    for key, value in DEMO_ENV.items():
        os.environ.setdefault(key, value)
    sim_config = load_sim_config(DEMO_SIM)
    if _answers(sim_config.host, sim_config.port):
        print(
            f"fixgw demo: {sim_config.host}:{sim_config.port}, the simulator's port, is in use "
            "(a demo still running?); stop that first",
            file=sys.stderr,
        )
        return EXIT_CONFIG  # a port in use, as for a port a config names
    sim = subprocess.Popen([sys.executable, "-m", "fixgw", "sim", "-c", str(DEMO_SIM)])
    try:
        _wait_for_port(sim_config.host, sim_config.port, sim)
        gateway_config = load_gateway_config(DEMO_GATEWAY)
        fixgw = _this_fixgw()
        print(
            f"""
fixgw demo: simulator on {sim_config.host}:{sim_config.port}, gateway socket at \
{gateway_config.api.socket_path}.
In another terminal, in this directory:
  export FIXGW_SOCKET={gateway_config.api.socket_path}
  {fixgw} events &                                   # stream order events
  {fixgw} order new BTC/USD buy 0.5 --price 30010    # crosses the seeded ask
  {fixgw} order new BTC/USD sell 1 --price 31000     # rests on the book
  {fixgw} orders
Ctrl-C stops both.
""",
            flush=True,
        )
        return cmd_run(argparse.Namespace(config=DEMO_GATEWAY))
    finally:
        sim.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            sim.wait(10)


def _this_fixgw() -> str:
    """The fixgw running, as a user types it in another terminal in this directory:
    `fixgw` if that is the one on PATH, else its path (`.venv/bin/fixgw` in a checkout);
    the interpreter's `-m fixgw` when started that way."""
    script = sys.argv[0]
    if Path(script).name == "fixgw":
        on_path = shutil.which("fixgw")
        if on_path is not None and Path(on_path).resolve() == Path(script).resolve():
            return "fixgw"
        return _as_typed(script)
    return f"{_as_typed(sys.executable)} -m fixgw"


def _as_typed(path: str) -> str:
    """Relative to this directory if inside it, else absolute; quoted for a shell."""
    absolute = os.path.abspath(path)
    relative = os.path.relpath(absolute)
    if relative.startswith(".."):
        return shlex.quote(absolute)
    return shlex.quote(relative if os.sep in relative else f".{os.sep}{relative}")


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
