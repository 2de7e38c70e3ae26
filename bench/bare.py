"""A bare QuickFIX-Python initiator for the floors: the gateway's engine settings (FileStore,
the OKCoin dictionary, validation on, no logging) and nothing else."""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import quickfix as fix

from fixgw.config import bundled_dictionary
from fixgw.fix.qf import ALWAYS_ON, VALIDATION, make_settings, session_id
from fixgw.venues.okcoin.outbound import DialectOptions, logon_fields


class BareApplication(fix.Application):  # type: ignore[misc]
    """Adds the credentials to the Logon; subclasses override `fromApp`."""

    def __init__(self, options: DialectOptions) -> None:
        super().__init__()
        self.logon = logon_fields(options, reset_seq_num=False)

    def onCreate(self, sessionID: Any) -> None:
        pass

    def onLogon(self, sessionID: Any) -> None:
        pass

    def onLogout(self, sessionID: Any) -> None:
        pass

    def toAdmin(self, message: Any, sessionID: Any) -> None:
        if message.getHeader().getField(35) == "A":
            for tag, value in self.logon.items():
                message.setField(tag, value)

    def fromAdmin(self, message: Any, sessionID: Any) -> None:
        pass

    def toApp(self, message: Any, sessionID: Any) -> None:
        pass

    def fromApp(self, message: Any, sessionID: Any) -> None:
        pass


def arguments(*extra: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    for name in ("--comp-id", "--api-key", "--secret-key", *extra):
        parser.add_argument(name, required=True)
    parser.add_argument("--port", type=int, required=True)
    return parser.parse_args()


def options_of(args: argparse.Namespace) -> DialectOptions:
    return DialectOptions(api_key=args.api_key, secret_key=args.secret_key)


@contextmanager
def logged_on(app: BareApplication, port: int, comp_id: str) -> Iterator[Any]:
    """A started initiator, logged on; yields its SessionID and stops it afterwards."""
    sid = session_id(comp_id, "OKSERVER")
    store = tempfile.mkdtemp(prefix="bench-bare-")
    settings = make_settings(
        {
            "ConnectionType": "initiator",
            "FileStorePath": store,
            "DataDictionary": str(bundled_dictionary()),
            **VALIDATION,
            **ALWAYS_ON,
        },
        {
            sid: {
                "SocketConnectHost": "127.0.0.1",
                "SocketConnectPort": port,
                "HeartBtInt": 30,
                "ReconnectInterval": 1,
                "ResetOnLogon": "Y",  # each run is a fresh initiator against the same simulator
            }
        },
    )
    initiator = fix.SocketInitiator(app, fix.FileStoreFactory(settings), settings)
    initiator.start()
    try:
        deadline = time.monotonic() + 20
        while not (fix.Session.lookupSession(sid) and fix.Session.lookupSession(sid).isLoggedOn()):
            if time.monotonic() > deadline:
                raise SystemExit("bare initiator: no logon")
            time.sleep(0.05)
        yield sid
    finally:
        initiator.stop()
        shutil.rmtree(store, ignore_errors=True)
