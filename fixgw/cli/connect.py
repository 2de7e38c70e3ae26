"""How the command line reaches a running gateway (its Unix socket, its TCP listener with a
token, or a NATS broker it serves through), and what a command may ask of the connection,
whichever way it goes."""

from __future__ import annotations

import argparse
import getpass
import os
import re

from fixgw.api.client import Client, GatewayClient
from fixgw.config import socket_path_too_long, without_userinfo
from fixgw.errors import ConfigError, FixgwError

DEFAULT_SOCKET = "/run/fixgw/fixgw.sock"


def nats_options(parser: argparse.ArgumentParser) -> None:
    """`--nats URL --gateway NAME [--subject-prefix PREFIX]`: global, before the command."""
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
    parser.add_argument(
        "--subject-prefix",
        metavar="PREFIX",
        default=os.environ.get("FIXGW_SUBJECT_PREFIX") or "fixgw",
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
        help=f"the gateway's Unix socket (env FIXGW_SOCKET; default {DEFAULT_SOCKET})",
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


def connect(args: argparse.Namespace) -> GatewayClient:
    """A connection to the gateway the arguments name; BadArgument if they name none."""
    if args.nats:
        return _nats(args)
    if args.tcp:
        if args.socket is not None:
            raise BadArgument(
                f"--socket {args.socket} and --tcp {args.tcp} name two ways to the gateway: "
                "give one"
            )
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
    if not args.gateway:
        raise ConfigError("--nats needs --gateway NAME (or FIXGW_GATEWAY): whose requests")
    from fixgw.nats.client import NatsClient

    env = os.environ.get
    return NatsClient.connect(
        args.nats,
        gateway=args.gateway,
        subject_prefix=args.subject_prefix,
        user_credentials=env("FIXGW_NATS_CREDS"),
        user=env("FIXGW_NATS_USER"),
        password=env("FIXGW_NATS_PASSWORD"),
        token=env("FIXGW_NATS_TOKEN"),
    )


def where(args: argparse.Namespace) -> str:
    """The gateway the command was to reach, for the error when it could not."""
    if getattr(args, "nats", None):
        return f"{without_userinfo(args.nats)} (NATS, gateway {args.gateway})"
    if getattr(args, "tcp", None):
        return f"{args.tcp} (TCP)"
    return getattr(args, "socket", None) or os.environ.get("FIXGW_SOCKET") or DEFAULT_SOCKET


def _me() -> str:
    """How the CLI names itself to the gateway: who is at the keyboard, for the journal."""
    return f"fixgw-cli:{getpass.getuser()}"
