"""The command line's parts that need no gateway: the help's groups, decimals aligned on the
point, a line for every event type, an outcome for every status `order new` can stop at, and
the completion scripts run by bash (and by zsh, where it is installed)."""

from __future__ import annotations

import argparse
import io
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import typing
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from fixgw import domain
from fixgw.cli import build_parser, main
from fixgw.cli.board import Board
from fixgw.cli.completion import bash_script, walk, zsh_script
from fixgw.cli.connect import _me, socket_path, tcp_address
from fixgw.cli.exits import CLIENT, EVERY, EXIT_NO_TUI, EXIT_STATUSES, KINDS
from fixgw.cli.lines import EVENT_DETAILS, OUTCOMES, event_line, outcome_line
from fixgw.cli.main import COMMAND_GROUPS, kinds_of
from fixgw.cli.output import Clock
from fixgw.cli.render import (
    STATUS_LINES,
    align_on_point,
    duration,
    plain,
    render_account,
    render_halt,
    render_order_status,
    render_orders,
    render_status,
    render_trades,
    session_text,
)
from fixgw.cli.styled import Shown, Text, label_grid, lines_of, printable, shows_colour
from fixgw.cli.styled import table as styled_table
from fixgw.marketdata.book import OrderBook

UTC = Clock(utc=True, today=date(2026, 12, 5))
"""Events of that day are shown by their time of day."""


def shown(lines: Shown) -> str:
    """What a pipe gets of it (`-o text`): the text without colours."""
    return "".join(f"{line.plain}\n" for line in lines_of(lines))


def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    (action,) = (a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


# ---------------------------------------------------------------- help


def test_every_command_is_in_one_group_of_the_help() -> None:
    assert set(subcommands(build_parser())) == set(COMMAND_GROUPS)


def test_the_help_lists_the_commands_under_their_groups_in_order() -> None:
    text = build_parser().format_help()
    groups = list(dict.fromkeys(COMMAND_GROUPS.values()))
    assert groups[:5] == ["daemon", "orders", "market data", "controls", "diagnostics"]
    at = [text.index(f"\n{group}:\n") for group in groups]
    assert at == sorted(at)
    for name, group in COMMAND_GROUPS.items():
        section = text[text.index(f"\n{group}:\n") :].split("\n\n")[0]
        assert f"\n  {name} " in section, (name, group)


def commands() -> dict[str, argparse.ArgumentParser]:
    """Every command that does something, by its path (`order new`)."""
    found = {}
    for command in walk(build_parser()):
        if not command.subcommands:
            parser = build_parser()
            for word in command.path.split()[1:]:
                parser = subcommands(parser)[word]
            found[command.path.removeprefix("fixgw ")] = parser
    return found


@pytest.mark.parametrize(
    ("args", "command"),
    [
        (["order", "new", "BTC/USD", "buy", "1", "--follow", "-1"], "order new"),
        (["md", "watch", "BTC/USD", "--depth", "-1"], "md watch"),
        (["session", "reset-seq", "-o", "yaml"], "session reset-seq"),
        (["journal", "check"], "journal check"),
        (["run"], "run"),
        (["completion", "fish"], "completion"),
        (["order"], "order"),
    ],
)
def test_a_commands_usage_error_names_the_command(
    args: list[str], command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """`fixgw order new: error: ...`, as argparse tools say it: the program name was the
    top's whole usage line, `fixgw [-h] [--version] [--nats URL ...] COMMAND ... order new`."""
    with pytest.raises(SystemExit) as usage:
        main(args)
    assert usage.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(f"usage: fixgw {command} "), err
    assert err.splitlines()[-1].startswith(f"fixgw {command}: error: "), err


def exit_statuses_in(help_text: str) -> dict[int, str]:
    """The `exit status:` section of a help: each status with what it says of it."""
    section = help_text.split("\nexit status:\n", 1)[1]
    said: dict[int, str] = {}
    for status, text in re.findall(r"^  ([0-9]+)  (.*?)(?=^  [0-9]|\Z)", section, re.M | re.S):
        said[int(status)] = " ".join(text.split())
    return said


@pytest.mark.parametrize("command", sorted(commands()))
def test_every_commands_help_lists_its_own_exit_statuses(command: str) -> None:
    """operations.md says each command's `--help` lists them; `order status`, `orders`,
    `status`, `events` and others listed none, and `journal compact`'s listed one table for
    all, whose 5 was only `run`'s and `journal check`'s."""
    said = exit_statuses_in(commands()[command].format_help())
    kinds = kinds_of(command)
    expected = {
        row.status for row in EXIT_STATUSES if command in row.of or set(row.of) & (kinds | {EVERY})
    }
    assert set(said) == expected
    assert "bad command line" in said[2]
    assert ("could not be reached" in said.get(1, "")) == (CLIENT in kinds)


def test_a_commands_own_exit_statuses_are_in_its_help() -> None:
    helps = {c: exit_statuses_in(p.format_help()) for c, p in commands().items()}
    assert "damaged records, and is not compacted" in helps["journal compact"][5]
    assert "rejected by the exchange" in helps["order new"][3]
    assert "could not be sent a cancel now" in helps["halt"][4]
    assert "not on a terminal" in helps["top"][2]
    assert 5 not in helps["journal repair"] and 3 not in helps["status"]


def test_the_exit_statuses_are_those_operations_md_gives() -> None:
    """The help's table and the page's say the same: each status, and each command a row is
    about, named in that status's row on the page."""
    page = (Path(__file__).resolve().parents[2] / "docs" / "operations.md").read_text()
    table = page.split("## Exit statuses", 1)[1].split("\n## ", 1)[0]
    documented = dict(re.findall(r"^\| ([0-9]+) \| (.*) \|$", table, re.M))
    assert {int(status) for status in documented} == {row.status for row in EXIT_STATUSES}
    for row in EXIT_STATUSES:
        for command in set(row.of) - KINDS:
            assert f"`{command}`" in documented[str(row.status)], (row.status, command)


# ---------------------------------------------------------------- decimals


@pytest.mark.parametrize(
    ("values", "aligned"),
    [
        (["30010", "29000.5", "28999.75"], ["30010   ", "29000.5 ", "28999.75"]),
        (["0.5", "12", None], [" 0.5", "12  ", " -  "]),
        (["-0.25", "1E+3", "0.000"], ["  -0.25 ", "1000    ", "   0.000"]),
        ([Decimal("1.10")], ["1.10"]),
    ],
)
def test_decimals_line_up_on_the_point_with_their_digits_kept(
    values: list[str | Decimal | None], aligned: list[str]
) -> None:
    assert align_on_point(values) == aligned


def test_a_column_of_decimals_is_as_wide_as_its_header() -> None:
    assert align_on_point(["1", "0.5"], min_width=6) == ["   1  ", "   0.5"]


def test_plain_never_goes_through_a_float() -> None:
    assert plain("0.1000000000000000055511151231257827") == "0.1000000000000000055511151231257827"
    assert plain("1e-7") == "0.0000001"


def test_an_uptime_reads_as_a_person_says_it() -> None:
    assert duration(12.063) == "12 s"
    assert duration(3725) == "1 h 2 min 5 s"
    assert duration(90061) == "1 d 1 h 1 min 1 s"


def test_times_are_utc_or_local() -> None:
    ts = "2026-12-05T18:39:18.010000Z"
    assert UTC.stamp(ts) == "2026-12-05 18:39:18.010"
    assert UTC.time(ts) == "18:39:18.010"
    assert UTC.zone == "UTC"
    local = Clock(utc=False)
    assert local.moment(ts) == UTC.moment(ts)  # the same moment, told in another zone


@pytest.fixture
def in_paris(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The machine's local time is Paris's: CET in winter, CEST in summer."""
    monkeypatch.setenv("TZ", "Europe/Paris")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def a_fill(ts: str, exec_id: str) -> dict[str, str]:
    return {
        "ts": ts,
        "symbol": "BTC/USD",
        "side": "buy",
        "qty": "0.5",
        "price": "30010",
        "cl_ord_id": f"c-{exec_id}",
        "order_id": f"o-{exec_id}",
        "exec_id": exec_id,
    }


def test_a_time_is_shown_with_the_zone_it_is_in_across_a_change_of_summer_time(
    in_paris: None,
) -> None:
    """The header named today's zone while each time is shown in its own date's: a July fill
    at 12:00 UTC read 14:00 under `TIME (CET)`, an hour off. Times in two zones now name
    their own; times all in one, the header names it, whatever the zone today."""
    local = Clock(utc=False)
    july = a_fill("2025-07-01T12:00:00.000000Z", "a")
    january = a_fill("2026-01-05T12:00:00.000000Z", "b")
    header, summer, winter = shown(render_trades([july, january], local)).splitlines()
    assert header.split()[:2] == ["TIME", "SYMBOL"]
    assert summer.startswith("2025-07-01 14:00:00.000 CEST  BTC/USD")
    assert winter.startswith("2026-01-05 13:00:00.000 CET   BTC/USD")
    header, summer = shown(render_trades([july], local)).splitlines()
    assert header.startswith("TIME (CEST)  ")
    assert summer.startswith("2025-07-01 14:00:00.000  BTC/USD")
    header, summer, winter = shown(render_trades([july, january], UTC)).splitlines()
    assert header.startswith("TIME (UTC)  ")
    assert winter.startswith("2026-01-05 12:00:00.000  BTC/USD")


def test_an_accounts_total_keeps_every_digit() -> None:
    """TOTAL was free + frozen with Python's `+`, which rounds to 28 significant digits:
    12345678901.12345678901234568 for 12345678901.123456789012345679."""
    account = {
        "currency": "USD",
        "balances": {
            "ETH": {"free": "12345678901.123456789012345678", "frozen": "0.000000000000000001"}
        },
    }
    _, eth = shown(render_account(account, UTC)).splitlines()
    assert eth.split() == [
        "ETH",
        "12345678901.123456789012345678",
        "0.000000000000000001",
        "12345678901.123456789012345679",
    ]


def test_the_account_shows_the_available_funds_the_exchange_reported() -> None:
    """An AccountInfoResponse with Balance (8001) and Currency (15) and no per-currency tags
    printed `no balances`."""
    account = {"currency": "USD", "balance": ["1234.5"], "balances": {}}
    assert shown(render_account(account, UTC)).splitlines() == ["available 1234.5 USD"]
    account = {
        "currency": "CNY",
        "balance": ["1.5", "20"],
        "balances": {"CNY": {"free": "20", "frozen": None}},
    }
    available, header, cny = shown(render_account(account, UTC)).splitlines()
    assert available == "available 1.5 / 20 CNY"
    assert header.split() == ["CURRENCY", "FREE", "FROZEN", "TOTAL"]
    assert cny.split() == ["CNY", "20", "-", "-"]
    nothing = {"currency": None, "balance": [], "balances": {}}
    assert shown(render_account(nothing, UTC)).strip() == "no balances"


# ---------------------------------------------------------------- lines


def event_types() -> set[str]:
    """Every event type the gateway publishes, read from the domain's union of events."""
    return {member.__struct_config__.tag for member in typing.get_args(domain.AnyEvent)}


def test_every_event_type_has_its_own_line() -> None:
    assert event_types() == set(EVENT_DETAILS)


ORDER = {
    "cl_ord_id": "c-1",
    "order_id": "x-9",
    "symbol": "BTC/USD",
    "side": "buy",
    "order_type": "limit",
    "qty": "0.5",
    "price": "30010",
    "status": "filled",
    "cum_qty": "0.5",
    "leaves_qty": "0",
    "avg_px": "30010",
}


def test_an_event_line_says_what_happened_to_which_order() -> None:
    event = {
        **ORDER,
        "seq": 4,
        "type": "order.filled",
        "ts": "2026-12-05T18:39:18.010000Z",
        "exec_id": "E-2",
        "last_qty": "0.5",
        "last_px": "30010",
        "crc": 1,
    }
    line = shown(event_line(event, UTC)).strip()
    assert line.startswith("18:39:18.010  order.filled ")
    assert line.endswith(
        "buy 0.5 BTC/USD @ 30010  fill 0.5 @ 30010; 0.5 of 0.5 filled, avg 30010  c-1"
    )
    a_day_later = Clock(utc=True, today=date(2026, 12, 6))  # `events --since` reaching back
    assert (
        shown(event_line(event, a_day_later))
        .strip()
        .startswith("2026-12-05 18:39:18.010  order.filled ")
    )


def test_a_restatement_line_says_why_and_what_the_order_is_now() -> None:
    event = {
        **ORDER,
        "qty": "0.3",
        "status": "new",
        "cum_qty": "0",
        "leaves_qty": "0.3",
        "avg_px": "0",
        "type": "order.restated",
        "ts": "2026-12-05T18:39:18.010000Z",
        "reason": "repricing",
        "text": None,
    }
    line = shown(event_line(event, UTC)).strip()
    assert line.endswith("buy 0.3 BTC/USD @ 30010  restated (repricing): new; 0 of 0.3 filled  c-1")


def test_a_balance_line_shows_what_the_exchange_reported_and_no_none() -> None:
    """The line read `balances` alone: empty for Balance (8001) without per-currency tags,
    Python's `None` for a figure the exchange left out."""
    event = {
        "seq": 7,
        "type": "account.balance",
        "ts": "2026-12-05T18:39:18.010000Z",
        "currency": "USD",
        "balance": ["1234.5"],
        "balances": {},
    }
    line = shown(event_line(event, UTC)).strip()
    assert line.split()[1:] == ["account.balance", "available", "1234.5", "USD"]
    event |= {"balance": [], "balances": {"BTC": {"free": "1", "frozen": None}}}
    assert shown(event_line(event, UTC)).strip().endswith("  BTC 1 free - frozen")


def test_an_event_of_a_type_not_known_yet_shows_its_fields() -> None:
    event = {"seq": 1, "type": "session.new_kind", "ts": "2026-12-05T18:39:18Z", "x": 1}
    assert shown(event_line(event, UTC)).rstrip().endswith("x=1")


@pytest.mark.parametrize(
    ("order", "said"),
    [
        (ORDER, "filled 0.5 @ 30010 (order x-9, clOrdID c-1)"),
        (
            {**ORDER, "status": "partially_filled", "cum_qty": "0.2", "leaves_qty": "0.3"},
            "partially filled 0.2 @ 30010, resting 0.3 @ 30010 as c-1 (order x-9)",
        ),
        (
            {**ORDER, "status": "new", "cum_qty": "0", "avg_px": "0"},
            "resting as c-1: buy 0.5 @ 30010 (order x-9)",
        ),
        (
            {**ORDER, "status": "rejected", "reason": "unknown_symbol", "text": None},
            "rejected: unknown_symbol (clOrdID c-1)",
        ),
        (
            {**ORDER, "status": "canceled", "cum_qty": "0.2", "text": "IOC"},
            "canceled: IOC; 0.2 of 0.5 filled (order x-9, clOrdID c-1)",
        ),
    ],
)
def test_order_new_says_the_outcome_in_one_line(order: dict[str, str], said: str) -> None:
    assert (
        shown(outcome_line({"cl_ord_id": "c-1", "status": "pending_new"}, order, 5)).strip() == said
    )


def test_an_order_not_settled_in_time_says_so() -> None:
    sent = {"cl_ord_id": "c-1", "status": "pending_new"}
    assert "no answer from the exchange within 5 s" in shown(outcome_line(sent, None, 5))
    assert "(not followed)" in shown(outcome_line(sent, None, 0))
    interrupted = shown(outcome_line(sent, None, 5, interrupted=True)).strip()
    assert interrupted == "sent as c-1: pending_new, not followed to the end (interrupted)"
    lost = shown(outcome_line(sent, None, 5, lost="it closed")).strip()
    assert lost.startswith("sent as c-1: pending_new, its outcome unknown: the connection")
    assert lost.endswith("ask (`fixgw order status c-1`) before sending it again")


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (
            ["order", "new", "BTC/USD", "buy", "0.1", "--price", "30010", "--follow", "-1"],
            "argument --follow: must be 0 or more seconds, got '-1'",
        ),
        (["md", "watch", "BTC/USD", "--depth", "-2"], "argument --depth: must be 0 or more levels"),
        (["trades", "--limit", "-1"], "argument --limit: must be 1 or more, got '-1'"),
        (["top", "--fills", "0"], "argument --fills: must be 1 or more, got '0'"),
    ],
)
def test_a_negative_time_or_depth_is_a_bad_command_line(
    args: list[str], said: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--follow -1` sent the order and said "no answer from the exchange within -1 s";
    `--depth -1` showed the whole book. Now exit 2 before any gateway is asked."""
    with pytest.raises(SystemExit) as usage:
        main([*args, "--socket", str(tmp_path / "no-gateway.sock")])
    assert usage.value.code == 2
    assert said in capsys.readouterr().err


def test_every_status_an_order_can_settle_in_has_an_outcome() -> None:
    settled = {s.value for s in domain.OrderStatus} - {"pending_new", "pending_cancel"}
    assert settled <= set(OUTCOMES)


# ---------------------------------------------------------------- completion


def test_completion_knows_every_command_path_of_the_parser() -> None:
    paths = {command.path for command in walk(build_parser())}
    assert {"fixgw", "fixgw order new", "fixgw session reset-seq", "fixgw top"} <= paths
    assert all(path in bash_script(build_parser()) for path in paths)


def bash_completes(script: Path, *words: str) -> list[str]:
    """What bash offers for the last word, as `complete -F` would call the function."""
    array = " ".join(f"'{w}'" for w in words)
    run = subprocess.run(
        [
            "bash",
            "-c",
            f"source {script}; COMP_WORDS=({array}); COMP_CWORD={len(words) - 1}; "
            'COMPREPLY=(); _fixgw; printf "%s\\n" "${COMPREPLY[@]}"',
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return [line for line in run.stdout.splitlines() if line]


def test_bash_completes_commands_subcommands_flags_and_their_values(tmp_path: Path) -> None:
    script = tmp_path / "fixgw.bash"
    made = subprocess.run(
        [sys.executable, "-m", "fixgw", "completion", "bash"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    script.write_text(made.stdout)
    assert bash_completes(script, "fixgw", "or") == ["order", "orders"]
    assert bash_completes(script, "fixgw", "order", "") == ["new", "cancel", "status"]
    assert "--price" in bash_completes(script, "fixgw", "order", "new", "BTC/USD", "--")
    assert bash_completes(script, "fixgw", "orders", "--j") == ["--json"]
    assert bash_completes(script, "fixgw", "order", "new", "--type", "") == ["limit", "market"]
    assert bash_completes(script, "fixgw", "trades", "-o", "j") == ["json"]
    assert bash_completes(script, "fixgw", "completion", "") == ["bash", "zsh"]
    assert bash_completes(script, "fixgw", "top", "--u") == ["--utc"]


ZSH_STUBS = """
compdef() { : }
compadd() { [[ $1 == -- ]] && shift; print -rl -- "$@" }
_describe() { print -rl -- "${(@P)4}" }
_files() { print -- "<files>" }
"""
"""Outside an interactive shell zsh has no completion system: these print what the function
hands it."""


def test_the_zsh_script_holds_every_command() -> None:
    parser = build_parser()
    script = zsh_script(parser)
    assert script.startswith("#compdef fixgw\n")
    for command in walk(parser):
        assert f"'{command.path}'" in script or f"{command.path} " in script
        for name in command.subcommands:
            assert f"{name}:" in script


def test_zsh_reads_the_script_and_completes_with_it(tmp_path: Path) -> None:
    zsh = shutil.which("zsh")
    assert zsh is not None, "zsh is needed here: apt-get install zsh (.ci/run installs it)"
    path = tmp_path / "_fixgw"
    path.write_text(zsh_script(build_parser()))
    assert subprocess.run([zsh, "-n", str(path)], timeout=30, check=False).returncode == 0
    probe = tmp_path / "probe.zsh"
    probe.write_text(
        f"{ZSH_STUBS}\nsource {path}\n"
        "words=(fixgw or); CURRENT=2; _fixgw\n"
        "print -- ---\n"
        "words=(fixgw order new --type ''); CURRENT=5; _fixgw\n"
    )
    run = subprocess.run(
        [zsh, "-f", str(probe)], capture_output=True, text=True, timeout=30, check=True
    )
    commands, values = run.stdout.split("---\n")
    assert "order:place, cancel or query one order" in commands.splitlines()
    assert any(line.startswith("orders:") for line in commands.splitlines())
    assert values.split() == ["limit", "market"]


# ---------------------------------------------------------------- styled text


def test_a_table_pads_each_column_to_its_widest_cell_and_aligns_decimals_right() -> None:
    lines = styled_table(
        [Text("NAME"), Text("QTY")],
        [[Text("a"), Text(" 0.5")], [Text("longer", "green"), Text("12  ")]],
        [False, True],
    )
    assert [line.plain for line in lines] == ["NAME     QTY", "a        0.5", "longer  12  "]
    assert lines[0].ansi().startswith("\x1b[1mNAME\x1b[0m")  # headers bold
    assert "\x1b[32mlonger\x1b[0m" in lines[2].ansi()


def test_labels_line_up_in_a_column() -> None:
    grid = label_grid([("session", Text("up", "green")), ("seq nums", Text("next out 2"))])
    assert [line.plain for line in grid] == ["session   up", "seq nums  next out 2"]


def test_status_says_log_lines_dropped_in_red_and_nothing_of_them_when_none_were() -> None:
    errors = dict(STATUS_LINES)["errors"]
    counts = {"inbound_refused": 1, "callback_errors": 0, "dialect_errors": 2}
    quiet = errors({**counts, "log_lines_dropped": 0}, UTC)
    assert quiet.plain == "1 refused inbound, 0 in callbacks, 2 in the dialect"
    loud = errors({**counts, "log_lines_dropped": 7}, UTC)
    assert loud.plain.endswith("in the dialect; 7 log lines dropped")
    assert "\x1b[31m7 log lines dropped" in loud.ansi()


def test_a_style_the_terminal_codes_do_not_know_fails_where_it_is_written() -> None:
    with pytest.raises(ValueError, match="no such style"):
        Text("x", "blink")


STATUS = {
    "session": "up",
    "session_id": "FIX.4.4:ME->OKCOIN",
    "ready": True,
    "reconciling": 0,
    "connection": {
        "phase": "up",
        "attempts": 1,
        "failures_in_a_row": 0,
        "next_attempt_at": None,
        "held": None,
        "last_down_reason": None,
    },
    "seq_nums": {"next_sender": 2, "next_target": 2},
    "heartbeat_rtt_ms": 1.5,
    "halted": None,
    "open_orders": 0,
    "throttle_queued": 0,
    "account": {"available": True},
    "market_data": {},
    "venue": {"name": "okcoin", "offers": ["market_data"]},
    "tls": {"enabled": False},
    "inbound_refused": 0,
    "callback_errors": 0,
    "dialect_errors": 0,
    "uptime_s": 5,
    "version": "0.0.0",
    "last_event_seq": 9,
}
"""A `status` answer, as the gateway gives it."""
FORGED = "oops\nresumed: the kill switch is off\x1b[2J"
"""A halt reason an API client could send: a line for the status screen, a code clearing it."""
FORGED_SHOWN = r"oops\nresumed: the kill switch is off\x1b[2J"
SGR_CODE = re.compile(r"\x1b\[[0-9;]*m")


def acts_on_nothing(lines: Shown) -> bool:
    """Every line printable, in colour but for its own colour codes."""
    return all(
        line.plain.isprintable() and SGR_CODE.sub("", line.ansi()).isprintable()
        for line in lines_of(lines)
    )


def test_free_text_from_others_is_shown_escaped_and_never_acted_on() -> None:
    """A halt reason from any API client, the exchange's Text(58) and its ids: a line break
    would forge a line, an escape code drive the operator's terminal."""
    halted = {"by": "api client 6 (oms)", "since": "2026-12-05T18:39:18Z", "reason": FORGED}
    status = {**STATUS, "halted": halted}
    status["connection"] = {**STATUS["connection"], "phase": "down", "last_down_reason": FORGED}
    lines = render_status(status, UTC)
    assert [line.plain.split("  ")[0] for line in lines_of(lines)] == [
        label for label, _ in STATUS_LINES
    ]  # one line a label, none forged
    assert acts_on_nothing(lines)
    assert shown(lines).count(FORGED_SHOWN) == 2
    rejected = {**ORDER, "status": "rejected", "reason": "other", "text": "no\r\x9b2J\u202eusd"}
    event = {**rejected, "seq": 5, "type": "order.rejected", "ts": "2026-12-05T18:39:18Z"}
    halt = {"seq": 6, "type": "session.halted", "ts": "2026-12-05T18:39:19Z", "by": "api client 6",
            "reason": FORGED, "cancelling": []}  # fmt: skip
    order_status = {**ORDER, "order_id": "x-\x1b]0;pwned\x07", "text": FORGED, "source": "exchange"}
    for text in (
        event_line(event, UTC),
        outcome_line({"cl_ord_id": "c-1", "status": "pending_new"}, rejected, 5),
        event_line(halt, UTC),
        render_order_status(order_status, UTC),
    ):
        assert acts_on_nothing(text), shown(text)
    assert r"rejected: no\r\x9b2J\u202eusd" in shown(event_line(event, UTC))
    assert f"by api client 6: {FORGED_SHOWN}; cancelling 0" in shown(event_line(halt, UTC))
    assert len(lines_of(render_order_status(order_status, UTC))) == 4
    assert r"x-\x1b]0;pwned\x07" in shown(render_order_status(order_status, UTC))


def test_spaces_in_others_text_are_shown_as_they_are() -> None:
    """A no-break space before a colon (French), an ideographic space (Japanese): they move
    no cursor and forge no line, and were shown as `\\xa0` and `\\u3000`. A line separator
    and a bidi mark are still escaped."""
    for text in ("refusé\u00a0: solde insuffisant", "注文\u3000拒否", "1\u202f000 USD"):
        assert printable(text) == text
        assert Text(text).plain == text
    assert printable("a\u2028b\u200fc\u2029") == r"a\u2028b\u200fc\u2029"


def test_a_backslash_is_shown_doubled_so_no_text_can_spell_out_an_escape() -> None:
    """A halt reason holding the characters `\\n` printed as a line break escaped does: the
    escaped form could be forged. A backslash is `\\\\` now, escaped once wherever the text
    is shown: in a table's header and cells, a label's value, an event's line."""
    spelled, real = "oops\\nresumed", "oops\nresumed"
    assert (printable(spelled), printable(real)) == (r"oops\\nresumed", r"oops\nresumed")
    lines = styled_table([Text("A\\B\n")], [[Text("C:\\x")], [Text("y")]], [False])
    assert [line.plain for line in lines] == [r"A\\B\n", r"C:\\x", "y"]
    assert label_grid([("reason", Text(spelled))])[0].plain == r"reason  oops\\nresumed"
    halt = {"seq": 6, "type": "session.halted", "ts": "2026-12-05T18:39:19Z", "by": "ops",
            "reason": spelled + real, "cancelling": []}  # fmt: skip
    assert r"by ops: oops\\nresumedoops\nresumed; " in shown(event_line(halt, UTC))
    order_status = {**ORDER, "cl_ord_id": "a\\b", "text": spelled, "source": "exchange"}
    said = shown(render_order_status(order_status, UTC))
    assert said.count("\\\\") == 2 and r"text: oops\\nresumed" in said


def test_wide_characters_keep_a_tables_columns_lined_up() -> None:
    """A CJK character takes two columns of a terminal, a combining accent none: counted as
    one character each, the columns after them went out of line."""
    orders = [
        {**ORDER, "cl_ord_id": "注文-1", "symbol": "比特币/USD"},  # 6 columns, 10 columns
        {**ORDER, "cl_ord_id": "e\u0301-2"},  # 3 columns
        {**ORDER, "cl_ord_id": "plain-3"},
    ]
    header, *rows = shown(render_orders(orders, UTC)).splitlines()
    assert header.startswith("CL_ORD_ID  SYMBOL      SIDE ")
    assert [row[: row.index("buy") + 3] for row in rows] == [
        "注文-1     比特币/USD  buy",
        "e\u0301-2        BTC/USD     buy",
        "plain-3    BTC/USD     buy",
    ]


def test_a_halt_the_journal_did_not_record_says_so_on_a_line_of_its_own() -> None:
    answer = {"cancelling": [], "waiting": [], "warning": "not journaled: disk full"}
    assert shown(render_halt(answer, UTC)).splitlines() == [
        "halted: new orders refused; cancelling 0 open orders",
        "warning: not journaled: disk full",
    ]


@pytest.mark.parametrize(
    ("tty", "env", "colour"),
    [
        (True, {"TERM": "xterm"}, True),
        (True, {"TERM": "xterm", "NO_COLOR": "1"}, False),
        (True, {"TERM": "xterm", "NO_COLOR": ""}, True),  # no-color.org: set and not empty
        (True, {"TERM": "dumb"}, False),
        (False, {"TERM": "xterm"}, False),
    ],
)
def test_colour_only_on_a_terminal_that_shows_it_and_not_against_no_color(
    monkeypatch: pytest.MonkeyPatch, tty: bool, env: dict[str, str], colour: bool
) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    stream = io.StringIO()
    stream.isatty = lambda: tty  # type: ignore[method-assign]
    assert shows_colour(stream) is colour


def without_rich(code: str) -> subprocess.CompletedProcess[str]:
    """Python with rich not importable, as where the `tui` extra is not installed."""
    return subprocess.run(
        [sys.executable, "-c", f"import sys; sys.modules['rich'] = None\n{code}"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_plain_commands_need_no_rich() -> None:
    done = without_rich(
        "from fixgw.cli import main\n"
        "from fixgw.cli.output import Clock\n"
        "from fixgw.cli.render import render_orders\n"
        "from fixgw.cli.styled import write\n"
        f"write(sys.stdout, render_orders([{ORDER!r}], Clock(utc=True)), colour=True)\n"
        "sys.exit(main(['completion', 'bash']))"
    )
    assert done.returncode == 0, done.stderr
    assert "\x1b[32mfilled\x1b[0m" in done.stdout and "complete -o default" in done.stdout


def test_top_without_rich_says_how_to_install_it() -> None:
    done = without_rich(
        "import os, pty\n"
        "_, far_end = pty.openpty()\n"
        "os.dup2(far_end, 0); os.dup2(far_end, 1)\n"
        "from fixgw.cli import main\n"
        "sys.exit(main(['top', '--socket', '/nonexistent']))"
    )
    assert done.returncode == EXIT_NO_TUI
    assert "pip install 'fixgw[tui]'" in done.stderr


# ---------------------------------------------------------------- top's board


def order_event(kind: str, status: str, **fields: str) -> dict[str, object]:
    return {**ORDER, "seq": 1, "type": kind, "status": status, **fields}


def test_the_board_keeps_open_orders_and_the_last_fills_once_each() -> None:
    board = Board(status={}, fills_shown=2)
    board.apply(order_event("order.accepted", "new", cum_qty="0"))
    assert list(board.open_orders) == ["c-1"] and board.status_due
    fill = {"exec_id": "E-1", "last_qty": "0.5", "last_px": "30010"}
    board.apply(order_event("order.filled", "filled", **fill))
    board.take_fill({**ORDER, "exec_id": "E-1"})  # the trades answer had it too
    assert board.open_orders == {}
    assert [(f["exec_id"], f["qty"], f["price"]) for f in board.fills] == [("E-1", "0.5", "30010")]
    for n in (2, 3):
        board.take_fill({**ORDER, "exec_id": f"E-{n}"})
    assert [f["exec_id"] for f in board.fills] == ["E-2", "E-3"]  # the last two


def test_the_board_takes_market_data_after_its_snapshot_only() -> None:
    board = Board(status={}, fills_shown=2)
    board.books["BTC/USD"] = OrderBook("BTC/USD")
    board.book_seq["BTC/USD"] = 10
    trade = {"type": "md.trade", "symbol": "BTC/USD", "size": "0.1", "price": "30010"}
    board.apply({**trade, "seq": 9})
    assert board.last_trades == {}
    board.apply({**trade, "seq": 11})
    assert board.last_trades == {"BTC/USD": "0.1 @ 30010"}
    assert not board.status_due  # market data changes nothing in the status


# ---------------------------------------------------------------- reaching the gateway


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--tcp", "nonsense"], "fixgw: --tcp 'nonsense': expected HOST:PORT"),
        (["--tcp", "127.0.0.1:http"], "fixgw: --tcp '127.0.0.1:http': expected HOST:PORT"),
        (["--tcp", "127.0.0.1:"], "fixgw: --tcp '127.0.0.1:': expected HOST:PORT"),
        (["--tcp", "127.0.0.1:65536"], "fixgw: --tcp '127.0.0.1:65536': expected HOST:PORT"),
        (["--tcp", "::1:9000"], "an IPv6 address in brackets: [::1]:9000"),
        (["--socket", ""], "fixgw: --socket is empty: give the path of the gateway's socket"),
        (["--socket", "/" + "s" * 107], "is 108 bytes long, and a Unix socket's path may have"),
    ],
)
def test_a_connection_argument_no_gateway_can_be_at_is_one_line_and_exit_2(
    args: list[str], said: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """It was a ValueError or an OSError traceback, exit 1."""
    assert main(["status", *args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("fixgw: ") and said in err, err


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (
            ["--nats", "nats://127.0.0.1:4222", "--gateway", "g", "run", "-c", "gw.yaml"],
            "fixgw: --nats and --gateway name a way to a running gateway, and `run` talks to "
            "none: its NATS, socket and TCP listener are its config's\n",
        ),
        (
            ["--socket", "/run/x.sock", "check-config", "gw.yaml"],
            "fixgw: --socket names a way to a running gateway, and `check-config` talks to none\n",
        ),
    ],
)
def test_a_way_to_a_gateway_given_to_a_command_that_talks_to_none_is_a_usage_error(
    args: list[str], said: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """`run` started on its config's NATS, the `--nats` given ignored without a word."""
    assert main(args) == 2
    assert capsys.readouterr().err == said


@pytest.mark.parametrize("error", [KeyError, OSError], ids=["python 3.11", "python 3.13"])
def test_a_uid_with_no_name_is_named_by_its_number(
    error: type[Exception], monkeypatch: pytest.MonkeyPatch
) -> None:
    """getpass.getuser() for a uid with no passwd entry and no $USER: KeyError up to Python
    3.12 (a traceback), OSError from 3.13 (told as "cannot reach the gateway")."""

    def no_name() -> str:
        raise error("getpwuid(): uid not found: 54321")

    monkeypatch.setattr("getpass.getuser", no_name)
    assert _me() == f"fixgw-cli:uid:{os.getuid()}"


def test_an_empty_fixgw_socket_is_named(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Not taken for unset: the default socket may be another gateway's."""
    monkeypatch.setenv("FIXGW_SOCKET", "")
    assert main(["halt"]) == 2
    assert capsys.readouterr().err == (
        "fixgw: FIXGW_SOCKET is empty: give the path of the gateway's socket\n"
    )


@pytest.mark.parametrize(
    ("text", "address"),
    [
        ("127.0.0.1:9000", ("127.0.0.1", 9000)),
        ("localhost:1", ("localhost", 1)),
        (":9000", ("127.0.0.1", 9000)),
        ("[::1]:9000", ("::1", 9000)),
    ],
)
def test_tcp_takes_host_port_and_an_ipv6_address_in_brackets(
    text: str, address: tuple[str, int]
) -> None:
    assert tcp_address(text) == address


def test_a_gateway_not_there_is_one_line_and_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """By socket, and by TCP on [::1] (was socket.gaierror: `[::1]` taken for a name)."""
    monkeypatch.setenv("FIXGW_API_TOKEN", "a-token")
    with socket.socket(socket.AF_INET6) as nobody:
        try:
            nobody.bind(("::1", 0))
            port = nobody.getsockname()[1]
        except OSError:  # no IPv6 here: connecting fails all the same
            port = 9
        assert main(["status", "--tcp", f"[::1]:{port}"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"fixgw: cannot reach the gateway at [::1]:{port} (TCP): [Errno ")
    assert err.count("\n") == 1
    missing = tmp_path / "gw.sock"
    assert main(["orders", "--socket", str(missing)]) == 1
    assert capsys.readouterr().err == (
        f"fixgw: cannot reach the gateway at {missing}: [Errno 2] No such file or directory\n"
    )


def answer_once(listener: socket.socket, reply: bytes) -> None:
    """Another program at the address: it reads what it is sent and answers in its tongue."""
    conn, _ = listener.accept()
    with conn:
        conn.recv(65536)
        conn.sendall(reply)


@pytest.mark.parametrize(
    ("family", "reply"),
    [
        (socket.AF_INET, b"HTTP/1.0 400 Bad Request\r\nContent-Length: 0\r\n\r\n"),
        (socket.AF_UNIX, b"\x00\x01binary\n"),
        (socket.AF_UNIX, b"[1, 2]\n"),
    ],
)
def test_an_address_where_something_else_answers_is_one_line_and_exit_1(
    family: socket.AddressFamily,
    reply: bytes,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`--tcp` at an HTTP port, `--socket` at another program's socket: was a traceback of
    msgspec's DecodeError."""
    monkeypatch.setenv("FIXGW_API_TOKEN", "a-token")
    with socket.socket(family) as listener:
        if family == socket.AF_UNIX:
            where = str(tmp_path / "other.sock")
            listener.bind(where)
            args = ["--socket", where]
        else:
            listener.bind(("127.0.0.1", 0))
            where = f"127.0.0.1:{listener.getsockname()[1]} (TCP)"
            args = ["--tcp", where.split()[0]]
        listener.listen(1)
        other = threading.Thread(target=answer_once, args=(listener, reply), daemon=True)
        other.start()
        assert main(["status", *args]) == 1
        other.join(10)
    err = capsys.readouterr().err
    assert err.startswith(f"fixgw: {where} is not a fixgw gateway: it answered with ")
    assert err.count("\n") == 1, err


@pytest.mark.parametrize(("variable", "value"), [("FIXGW_API_TOKEN", None), ("MY_TOKEN", "")])
def test_tcp_without_its_token_says_which_variable_to_set_and_connects_to_nothing(
    variable: str,
    value: str | None,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """It connected, sent a `hello` without a token, and said "bad or missing token"; the
    gateway counted a wrong token."""
    monkeypatch.delenv("FIXGW_API_TOKEN", raising=False)
    if value is not None:
        monkeypatch.setenv(variable, value)
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        env = [] if variable == "FIXGW_API_TOKEN" else ["--token-env", variable]
        assert main(["status", "--tcp", f"127.0.0.1:{port}", *env]) == 2
        listener.settimeout(0.2)
        with pytest.raises(TimeoutError):
            listener.accept()
    err = capsys.readouterr().err
    assert err.startswith(f"fixgw: --tcp 127.0.0.1:{port}: the gateway's token (api.tcp.token)")
    assert f"${variable}, which is not set" in err and err.count("\n") == 1


def test_socket_and_tcp_together_are_a_bad_command_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Given both, TCP silently won."""
    assert main(["--socket", "/a.sock", "status", "--tcp", "127.0.0.1:9"]) == 2
    assert capsys.readouterr().err == (
        "fixgw: --socket /a.sock and --tcp 127.0.0.1:9 name two ways to the gateway: give one\n"
    )


@pytest.fixture
def no_way_exported(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """A shell with none of the variables that name a way to the gateway."""
    for variable in ("FIXGW_NATS", "FIXGW_GATEWAY", "FIXGW_SUBJECT_PREFIX", "FIXGW_SOCKET"):
        monkeypatch.delenv(variable, raising=False)
    return monkeypatch


@pytest.mark.parametrize("where", ["--socket before", "--socket after", "--tcp"])
def test_a_way_named_on_the_command_line_beats_fixgw_nats_in_the_environment(
    where: str,
    tmp_path: Path,
    no_way_exported: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """In a shell that exports FIXGW_NATS and FIXGW_GATEWAY (as docs/nats.md has a strategy
    host do), `fixgw --socket /run/fixgw/fixgw.sock halt` went over NATS to that gateway.
    Here what answers at the socket or port named is some other program: the command's
    error names that address, so that is where it went."""
    no_way_exported.setenv("FIXGW_NATS", "nats://127.0.0.1:9")
    no_way_exported.setenv("FIXGW_GATEWAY", "acct-1")
    no_way_exported.setenv("FIXGW_API_TOKEN", "a-token")
    family = socket.AF_INET if where == "--tcp" else socket.AF_UNIX
    with socket.socket(family) as listener:
        if where == "--tcp":
            listener.bind(("127.0.0.1", 0))
            address = f"127.0.0.1:{listener.getsockname()[1]}"
            args, named = ["--tcp", address, "status"], f"{address} (TCP)"
        else:
            named = str(tmp_path / "gw.sock")
            listener.bind(named)
            before = where == "--socket before"
            args = ["--socket", named, "status"] if before else ["status", "--socket", named]
        listener.listen(1)
        other = threading.Thread(target=answer_once, args=(listener, b"[1, 2]\n"), daemon=True)
        other.start()
        assert main(args) == 1
        other.join(10)
    err = capsys.readouterr().err
    assert err.startswith(f"fixgw: {named} is not a fixgw gateway: "), err


def test_nats_named_on_the_command_line_beats_fixgw_socket_in_the_environment(
    no_way_exported: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("nats")
    no_way_exported.setenv("FIXGW_SOCKET", "/run/fixgw/fixgw.sock")
    with socket.socket() as nobody:
        nobody.bind(("127.0.0.1", 0))
        url = f"nats://127.0.0.1:{nobody.getsockname()[1]}"
        assert main(["--nats", url, "--gateway", "g", "status"]) == 1
    assert capsys.readouterr().err.startswith(f"fixgw: cannot reach the gateway at {url} (NATS")


@pytest.mark.parametrize(
    ("args", "exported", "said"),
    [
        (
            [
                "--nats",
                "nats://fixgw:Nats-Pa55w0rd@nats-1:4222",
                "--gateway",
                "g",
                "--socket",
                "/a",
            ],
            {},
            "fixgw: --nats nats://***@nats-1:4222 and --socket /a name two ways to the gateway: "
            "give one",
        ),
        (
            ["--nats", "nats://nats-1:4222", "--gateway", "g", "status", "--tcp", ":9"],
            {},
            "fixgw: --nats nats://nats-1:4222 and --tcp :9 name two ways to the gateway: give one",
        ),
        (
            [],
            {"FIXGW_NATS": "nats://nats-1:4222", "FIXGW_SOCKET": "/a", "FIXGW_GATEWAY": "g"},
            "fixgw: $FIXGW_NATS and $FIXGW_SOCKET name two ways to the gateway: give --nats URL "
            "or --socket PATH (either wins over both), or unset one",
        ),
        (
            ["--gateway", "acct-2"],
            {},
            "fixgw: --gateway names a gateway over NATS, but this command goes to the gateway's "
            "socket: leave --gateway out, or go over NATS (--nats URL)",
        ),
        (
            ["--subject-prefix", "desk1", "--tcp", ":9"],
            {"FIXGW_NATS": "nats://nats-1:4222"},
            "fixgw: --subject-prefix names a gateway over NATS, but this command goes to the "
            "gateway's TCP listener: leave --subject-prefix out, or go over NATS (--nats URL)",
        ),
    ],
)
def test_two_ways_to_the_gateway_or_a_nats_option_without_nats_are_a_bad_command_line(
    args: list[str],
    exported: dict[str, str],
    said: str,
    no_way_exported: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """They were taken silently: NATS won over --socket or --tcp, and --gateway without
    NATS was dropped."""
    for variable, value in exported.items():
        no_way_exported.setenv(variable, value)
    if "status" not in args:
        args = [*args, "status"]
    assert main(args) == 2
    assert capsys.readouterr().err == said + "\n"


def test_a_nats_url_is_named_without_its_password_when_the_broker_cannot_be_reached(
    capsys: pytest.CaptureFixture[str],
) -> None:
    pytest.importorskip("nats")
    with socket.socket() as nobody:
        nobody.bind(("127.0.0.1", 0))
        port = nobody.getsockname()[1]
        url = f"nats://fixgw:Nats-Pa55w0rd@127.0.0.1:{port}"
        assert main(["--nats", url, "--gateway", "g", "status"]) == 1
    err = capsys.readouterr().err
    assert "Nats-Pa55w0rd" not in err
    assert err.startswith(f"fixgw: cannot reach the gateway at nats://***@127.0.0.1:{port} ")


@pytest.mark.parametrize("command", ["check", "repair"])
def test_a_journal_path_with_no_journal_is_a_bad_command_line(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """It said `config error` for a `--path` given on the command line."""
    missing = tmp_path / "events.jsonl"
    assert main(["journal", command, "--path", str(missing)]) == 2
    assert capsys.readouterr().err == f"fixgw: --path {missing}: no journal there\n"


def test_the_connection_options_go_before_the_command_or_after_it() -> None:
    """`fixgw --socket PATH status` was "invalid choice: 'PATH'"; after the command wins."""
    parser = build_parser()
    args = parser.parse_args(["--socket", "/a.sock", "status"])
    assert socket_path(args) == "/a.sock"
    args = parser.parse_args(["--socket", "/a.sock", "status", "--socket", "/b.sock"])
    assert socket_path(args) == "/b.sock"
    args = parser.parse_args(["--tcp", "[::1]:9000", "--token-env", "T", "orders"])
    assert (tcp_address(args.tcp), args.token_env) == (("::1", 9000), "T")


@pytest.mark.parametrize(
    ("session", "ready", "reconciling", "shown"),
    [
        ("up", True, 0, "up  s1  (ready)"),
        ("up", False, 3, "up  s1  (reconciling 3 orders)"),
        ("down", False, 0, "down  s1  (not ready)"),
    ],
)
def test_the_session_line_says_reconciling_only_while_the_session_is_up(
    session: str, ready: bool, reconciling: int, shown: str
) -> None:
    status = {"session": session, "session_id": "s1", "ready": ready, "reconciling": reconciling}
    assert session_text(status).plain == shown
