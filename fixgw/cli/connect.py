"""How the command line reaches a running gateway (its Unix socket, its TCP listener with a
token, or a NATS broker it serves through), and what a command may ask of the connection,
whichever way it goes."""

from __future__ import annotations

import argparse
import getpass
import os
import re
from typing import Literal

from fixgw.api.client import Client, GatewayClient
from fixgw.config import socket_path_too_long, without_userinfo
from fixgw.errors import ConfigError, FixgwError

DEFAULT_SOCKET = "/run/fixgw/fixgw.sock"


def nats_options(parser: argparse.ArgumentParser) -> None:
    """`--nats URL --gateway NAME [--subject-prefix PREFIX]`: global, before the command.
    Each is None unless given: the environment's are read when the way is chosen
    (`way_in`), so that an option can be told from a variable."""
    parser.add_argument(
        "--nats",
        metavar="URL",
        help="talk to the gateway over this NATS broker instead of its socket (env FIXGW_NATS, "
        "which --socket or --tcp overrides; credentials: FIXGW_NATS_CREDS, FIXGW_NATS_USER "
        "and FIXGW_NATS_PASSWORD, or FIXGW_NATS_TOKEN); with --gateway",
    )
    parser.add_argument(
        "--gateway",
        metavar="NAME",
        help="with --nats: the gateway's name (nats.gateway in its config; env FIXGW_GATEWAY)",
    )
    parser.add_argument(
        "--subject-prefix",
        metavar="PREFIX",
        help="with --nats: the first token of the gateway's subjects (nats.subject_prefix in "
        "its config; env FIXGW_SUBJECT_PREFIX; default fixgw)",
    )


class BadArgument(FixgwError):
    """A command-line argument no gateway could be reached at (`--tcp nonsense`, an empty
    `--socket`): a usage error, not an unreachable gateway."""

    code = "bad_argument"


def connection_options(parser: argparse.ArgumentParser, *, top: bool = False) -> None:
    """Where a command finds the gateway: `--socket`, or `--tcp` with a token. They go
    before the command (`top`: on the top-level parser) or after it; after wins. A command's
    own are absent from the namespace unless given, so they never hide the top's."""
    unset = None if top else argparse.SUPPRESS
    parser.add_argument(
        "--socket",
        metavar="PATH",
        default=unset,
        help=f"the gateway's Unix socket (env FIXGW_SOCKET, which --nats or --tcp overrides; "
        f"default {DEFAULT_SOCKET})",
    )
    parser.add_argument(
        "--tcp", metavar="HOST:PORT", default=unset, help="the gateway's TCP listener instead"
    )
    parser.add_argument(
        "--token-env",
        metavar="VAR",
        default=unset,
        help="environment variable holding the TCP token (default FIXGW_API_TOKEN)",
    )


Way = Literal["nats", "socket", "tcp"]
WAYS: tuple[Way, ...] = ("nats", "socket", "tcp")

WAY_VARIABLES: dict[Way, str] = {"nats": "FIXGW_NATS", "socket": "FIXGW_SOCKET"}
"""The environment variable that names each way in, where one does (`--tcp` has none)."""


def way_in(args: argparse.Namespace) -> Way:
    """The way to the gateway: the one option of `--nats`, `--socket` and `--tcp` given, else
    the one of $FIXGW_NATS and $FIXGW_SOCKET set, else the default socket. An option beats a
    variable, so a shell that exports FIXGW_NATS reaches the socket `--socket` names.
    BadArgument where two options, or two variables and no option, name different ways, and
    for `--gateway` or `--subject-prefix` given with a way that is not NATS."""
    given: list[Way] = [w for w in WAYS if getattr(args, w, None) is not None]
    if len(given) > 1:
        first, second = (f"--{w} {_shown(w, getattr(args, w))}" for w in given[:2])
        raise BadArgument(f"{first} and {second} name two ways to the gateway: give one")
    if given:
        way = given[0]
    else:
        exported = [w for w, variable in WAY_VARIABLES.items() if os.environ.get(variable)]
        if len(exported) > 1:
            raise BadArgument(
                "$FIXGW_NATS and $FIXGW_SOCKET name two ways to the gateway: give --nats URL "
                "or --socket PATH (either wins over both), or unset one"
            )
        way = exported[0] if exported else "socket"
    if way != "nats":
        for option in ("gateway", "subject_prefix"):
            if getattr(args, option, None) is not None:
                flag = "--" + option.replace("_", "-")
                other = "socket" if way == "socket" else "TCP listener"
                raise BadArgument(
                    f"{flag} names a gateway over NATS, but this command goes to the gateway's "
                    f"{other}: leave {flag} out, or go over NATS (--nats URL)"
                )
    return way


def _shown(way: Way, value: str) -> str:
    return without_userinfo(value) if way == "nats" else value


def connect(args: argparse.Namespace) -> GatewayClient:
    """A connection to the gateway the arguments name; BadArgument if they name none."""
    way = way_in(args)
    if way == "nats":
        return _nats(args)
    if way == "tcp":
        host, port = tcp_address(args.tcp)
        variable = args.token_env or "FIXGW_API_TOKEN"
        token = os.environ.get(variable)
        if not token:
            raise BadArgument(
                f"--tcp {args.tcp}: the gateway's token (api.tcp.token) goes in ${variable}, "
                "which is not set" + ("" if token is None else " to anything")
            )
        return Client.connect(host=host, port=port, token=token, name=_me())
    return Client.connect(socket_path(args), name=_me())


_HOST_PORT = re.compile(r"(?:\[(?P<v6>[^\]]+)\]|(?P<host>[^:\[\]]*)):(?P<port>[0-9]{1,5})")
"""`HOST:PORT`, `:PORT` (loopback), or `[IPv6]:PORT`."""


def tcp_address(text: str) -> tuple[str, int]:
    """(host, port) from `--tcp`; BadArgument naming what is wrong with it."""
    match = _HOST_PORT.fullmatch(text)
    if match is None or not 1 <= int(match["port"]) <= 65535:
        raise BadArgument(
            f"--tcp {text!r}: expected HOST:PORT, the port a number from 1 to 65535 "
            "(127.0.0.1:9000; an IPv6 address in brackets: [::1]:9000)"
        )
    return match["v6"] or match["host"] or "127.0.0.1", int(match["port"])


def socket_path(args: argparse.Namespace) -> str:
    """The socket `--socket`, or else FIXGW_SOCKET, names; BadArgument if no socket can be
    there (empty, or too long for a Unix socket)."""
    if args.socket is not None:
        path, named = args.socket, "--socket"
    elif "FIXGW_SOCKET" in os.environ:
        path, named = os.environ["FIXGW_SOCKET"], "FIXGW_SOCKET"
    else:
        return DEFAULT_SOCKET
    if not path:
        raise BadArgument(f"{named} is empty: give the path of the gateway's socket")
    why = socket_path_too_long(path)
    if why is not None:
        raise BadArgument(f"{named}: {why}")
    return str(path)


def _nats(args: argparse.Namespace) -> GatewayClient:
    """The gateway over NATS (`--nats URL --gateway NAME [--subject-prefix PREFIX]`);
    credentials from the environment:
    FIXGW_NATS_CREDS (a creds file), FIXGW_NATS_USER and FIXGW_NATS_PASSWORD, or
    FIXGW_NATS_TOKEN."""
    from fixgw.nats import client_missing

    if why := client_missing():
        raise ConfigError(f"--nats: {why}")
    url = nats_url(args)
    if not url:
        raise BadArgument("--nats is empty: give the NATS broker's URL")
    gateway = gateway_name(args)
    if not gateway:
        raise ConfigError("--nats needs --gateway NAME (or FIXGW_GATEWAY): whose requests")
    from fixgw.nats.client import NatsClient

    env = os.environ.get
    return NatsClient.connect(
        url,
        gateway=gateway,
        subject_prefix=args.subject_prefix or env("FIXGW_SUBJECT_PREFIX") or "fixgw",
        name=_me(),
        user_credentials=env("FIXGW_NATS_CREDS"),
        user=env("FIXGW_NATS_USER"),
        password=env("FIXGW_NATS_PASSWORD"),
        token=env("FIXGW_NATS_TOKEN"),
    )


def nats_url(args: argparse.Namespace) -> str:
    """The broker's URL: `--nats`, else $FIXGW_NATS."""
    return str(args.nats if args.nats is not None else os.environ.get("FIXGW_NATS", ""))


def gateway_name(args: argparse.Namespace) -> str | None:
    """The gateway's name over NATS: `--gateway`, else $FIXGW_GATEWAY."""
    return args.gateway if args.gateway is not None else os.environ.get("FIXGW_GATEWAY")


def where(args: argparse.Namespace) -> str:
    """The gateway the command was to reach (its way already chosen, so `way_in` does not
    refuse it), for the error when it could not."""
    way = way_in(args)
    if way == "nats":
        return f"{without_userinfo(nats_url(args))} (NATS, gateway {gateway_name(args)})"
    if way == "tcp":
        return f"{args.tcp} (TCP)"
    return getattr(args, "socket", None) or os.environ.get("FIXGW_SOCKET") or DEFAULT_SOCKET


def _me() -> str:
    """How the CLI names itself to the gateway: who is at the keyboard, for the journal. A uid
    with no name (no passwd entry and no $USER, as in a container run as `--user 1234:0`) is
    named by its number: the name is a label, and the kill switch works from any shell."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # KeyError up to Python 3.12, OSError from 3.13
        user = f"uid:{os.getuid()}"
    return f"fixgw-cli:{user}"
