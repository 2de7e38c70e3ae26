"""How the command line reaches a running gateway (its Unix socket, its TCP listener with a
token, or a NATS broker it serves through), and what a command may ask of the connection,
whichever way it goes."""

from __future__ import annotations

import argparse
import getpass
import os
from collections.abc import Iterator
from types import TracebackType
from typing import Any, Protocol, Self

from fixgw.api.client import Client
from fixgw.errors import ConfigError

DEFAULT_SOCKET = "/run/fixgw/fixgw.sock"


class GatewayConnection(Protocol):
    """What the commands use of a connection to the gateway (fixgw.api.client.Client)."""

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    def request(self, op: str, timeout: float = 10.0, **fields: Any) -> Any: ...

    def subscribe(self, topics: list[str], since: int | None = None) -> Any: ...

    def new_order(self, **fields: Any) -> Any: ...

    def status(self) -> dict[str, Any]: ...

    def next_event(self, timeout: float = 10.0) -> dict[str, Any]: ...

    def take_events(self) -> list[dict[str, Any]]: ...

    def events(self, timeout: float | None = None) -> Iterator[dict[str, Any]]: ...


def nats_options(parser: argparse.ArgumentParser) -> None:
    """`--nats URL --gateway NAME`: global, before the command."""
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


def connection_options(parser: argparse.ArgumentParser) -> None:
    """Where a command finds the gateway: `--socket`, or `--tcp` with a token."""
    parser.add_argument(
        "--socket",
        default=os.environ.get("FIXGW_SOCKET", DEFAULT_SOCKET),
        help="the gateway's Unix socket (env FIXGW_SOCKET)",
    )
    parser.add_argument("--tcp", help="HOST:PORT of the gateway's TCP listener instead")
    parser.add_argument(
        "--token-env",
        default="FIXGW_API_TOKEN",
        help="environment variable holding the TCP token",
    )


def connect(args: argparse.Namespace) -> GatewayConnection:
    if args.nats:
        return _nats(args)
    if args.tcp:
        host, _, port = args.tcp.rpartition(":")
        token = os.environ.get(args.token_env)
        return Client.connect(host=host or "127.0.0.1", port=int(port), token=token, name=_me())
    return Client.connect(args.socket, name=_me())


def _nats(args: argparse.Namespace) -> GatewayConnection:
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


def where(args: argparse.Namespace) -> str:
    """The gateway the command was to reach, for the error when it could not."""
    if getattr(args, "nats", None):
        return f"{args.nats} (NATS, gateway {args.gateway})"
    return f"{args.tcp} (TCP)" if getattr(args, "tcp", None) else str(getattr(args, "socket", ""))


def _me() -> str:
    """How the CLI names itself to the gateway: who is at the keyboard, for the journal."""
    return f"fixgw-cli:{getpass.getuser()}"
