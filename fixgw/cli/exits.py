"""The CLI's exit statuses, and the table `--help` prints of them: the top's whole, each
command's own rows (docs/operations.md, Exit statuses, is the same table in prose)."""

from __future__ import annotations

import textwrap
from dataclasses import dataclass

EXIT_CONFIG = 2
"""A config error: a wrong key, or something it names that cannot be used at start (a file,
a directory, a group, a host, a port in use): one line per problem, naming the key."""
EXIT_USAGE = 2
"""A bad command line, as argparse exits for one; also a connection argument no gateway can
be at (`--tcp` not HOST:PORT, an empty or too long socket path, two ways named)."""
EXIT_REJECTED = 3
"""`order new`: the followed order ended rejected by the exchange."""
EXIT_NOT_CANCELLED = 4
"""`halt`, `cancel-all`: some open orders could not be sent a cancel now."""
EXIT_NO_TUI = 2
"""`top`: not on a terminal, or rich (the `tui` extra) not installed: as a usage error."""
EXIT_JOURNAL_DAMAGED = 5
"""`run`: the journal has damaged records (see `fixgw journal check`); `journal check`: it
has; `journal compact`: it has, and is not compacted."""
EXIT_OUTCOME_UNKNOWN = 6
"""`order new`: the order was sent, and the connection to the gateway ended while it was
followed, before the exchange answered: what became of it is unknown."""
EXIT_INTERRUPTED = 130
"""`order new`: Ctrl-C while it waited for the gateway's reply (128 + SIGINT, as a shell
reports it): the order may have been placed."""
EXIT_SIGPIPE = 141
"""As a shell reports a process killed by SIGPIPE (128 + 13)."""

EVERY = "every command"
CLIENT = "a command to a running gateway"
CONFIG = "a command that reads a config"
KINDS = frozenset({EVERY, CLIENT, CONFIG})
"""Kinds of command a row may be of, instead of naming commands."""


@dataclass(frozen=True, slots=True)
class ExitStatus:
    status: int
    of: tuple[str, ...]
    """The commands it is of, by path (`order new`, `journal check`), or one of KINDS."""
    means: str


EXIT_STATUSES: tuple[ExitStatus, ...] = (
    ExitStatus(0, (EVERY,), "done"),
    ExitStatus(0, ("run",), "after SIGTERM or SIGINT"),
    ExitStatus(
        1,
        (CLIENT,),
        "the gateway refused the request (its error's code and message on stderr), or could "
        "not be reached, or what answered is not a fixgw gateway",
    ),
    ExitStatus(1, ("journal check",), "the journal is there and cannot be read"),
    ExitStatus(
        1, ("journal repair", "journal compact"), "refused (a gateway holds the journal), or failed"
    ),
    ExitStatus(EXIT_USAGE, (EVERY,), "a bad command line (argparse's usage error)"),
    ExitStatus(
        EXIT_USAGE,
        (CLIENT,),
        "a connection argument no gateway can be at: --tcp not HOST:PORT, an empty or too "
        "long --socket or $FIXGW_SOCKET, two ways named (two of --nats, --socket and --tcp; "
        "or $FIXGW_NATS and $FIXGW_SOCKET, and neither option), --gateway or --subject-prefix "
        "where the command does not go over NATS",
    ),
    ExitStatus(
        EXIT_CONFIG,
        (CONFIG,),
        "a config error, or something the config names cannot be used (a file, a directory, "
        "a group, a host, a port in use): one line each, naming the key",
    ),
    ExitStatus(
        EXIT_NO_TUI,
        ("top",),
        "not on a terminal, or rich not installed (pip install 'fixgw[tui]')",
    ),
    ExitStatus(
        EXIT_CONFIG,
        ("journal check", "journal repair"),
        "no journal at --path or at the config's journal.path",
    ),
    ExitStatus(EXIT_CONFIG, ("journal compact",), "no journal at the config's journal.path"),
    ExitStatus(
        EXIT_REJECTED, ("order new",), "the order it followed ended rejected by the exchange"
    ),
    ExitStatus(
        EXIT_NOT_CANCELLED,
        ("halt",),
        "some open orders could not be sent a cancel now (the session is down, or the cancel "
        "rate limit; listed on stderr): the gateway cancels them as soon as it can",
    ),
    ExitStatus(
        EXIT_NOT_CANCELLED,
        ("cancel-all",),
        "some open orders were not cancelled (listed in `not_cancelled`)",
    ),
    ExitStatus(
        EXIT_JOURNAL_DAMAGED,
        ("run",),
        "the journal has damaged records, and the gateway does not start until `fixgw journal "
        "repair` has set them aside",
    ),
    ExitStatus(EXIT_JOURNAL_DAMAGED, ("journal check",), "the journal has damaged records"),
    ExitStatus(
        EXIT_JOURNAL_DAMAGED,
        ("journal compact",),
        "the journal has damaged records, and is not compacted (`fixgw journal repair` first)",
    ),
    ExitStatus(
        EXIT_OUTCOME_UNKNOWN,
        ("order new",),
        "the order was sent (its cl_ord_id said), and the connection to the gateway ended "
        "while it was followed, before the exchange answered; or the gateway did not answer "
        "the request (no reply in time, or the connection ended first): its outcome is "
        "unknown; ask (fixgw order status CL_ORD_ID, or fixgw orders) before sending it again",
    ),
    ExitStatus(
        EXIT_INTERRUPTED,
        ("order new",),
        "interrupted (Ctrl-C) before the gateway answered: whether the order was placed is "
        "unknown; ask before sending it again",
    ),
    ExitStatus(
        EXIT_SIGPIPE,
        (EVERY,),
        "killed by SIGPIPE, as Unix tools are: whoever read the output went away before it "
        "ended (fixgw orders | head -1); nothing on stderr",
    ),
)
"""Every exit status and what it means, row by row: what `--help` prints."""


def exit_statuses(command: str | None = None, kinds: frozenset[str] = frozenset()) -> str:
    """The `exit status:` section of `--help`: of the top (`command` None), every row, each
    naming the commands it is of; of one command (its path, `journal compact`, and the
    `kinds` it is of besides EVERY), the rows about it."""
    lines = ["exit status:"]
    shown_status = None
    for row in EXIT_STATUSES:
        if command is None:
            text = row.means if set(row.of) <= KINDS else f"{', '.join(row.of)}: {row.means}"
        elif command in row.of or set(row.of) & (kinds | {EVERY}):
            text = row.means
        else:
            continue
        first = f"  {row.status}  " if row.status != shown_status else " " * 5
        shown_status = row.status
        indent = " " * len(first)
        lines += textwrap.wrap(text, width=88, initial_indent=first, subsequent_indent=indent)
    return "\n".join(lines) + "\n"
