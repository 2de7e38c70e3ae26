"""How the command line reaches a running gateway (its Unix socket, or its TCP listener with a
token), and what a command may ask of the connection, whichever way it goes."""

from __future__ import annotations

import argparse
import getpass
import os
from collections.abc import Iterator
from types import TracebackType
from typing import Any, Protocol, Self

from fixgw.api.client import Client

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
    if args.tcp:
        host, _, port = args.tcp.rpartition(":")
        token = os.environ.get(args.token_env)
        return Client.connect(host=host or "127.0.0.1", port=int(port), token=token, name=_me())
    return Client.connect(args.socket, name=_me())


def where(args: argparse.Namespace) -> str:
    """The gateway the command was to reach, for the error when it could not."""
    return f"{args.tcp} (TCP)" if getattr(args, "tcp", None) else str(getattr(args, "socket", ""))


def _me() -> str:
    """How the CLI names itself to the gateway: who is at the keyboard, for the journal."""
    return f"fixgw-cli:{getpass.getuser()}"
