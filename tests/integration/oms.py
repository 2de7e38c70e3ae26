"""A stand-in OMS for bridge tests: a real QuickFIX initiator speaking standard FIX 4.4."""

from __future__ import annotations

import queue
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import quickfix as fix

from fixgw.config import standard_fix44_dictionary
from fixgw.fix.message import FixMessage, parse
from fixgw.fix.qf import ALWAYS_ON, make_settings, to_quickfix

Received = dict[int, str]


class _App(fix.Application):  # type: ignore[misc]
    def __init__(self, password: str | None, inbox: queue.Queue[FixMessage]) -> None:
        super().__init__()
        self.password = password
        self.inbox = inbox
        self.logons = 0
        self.logouts: list[str] = []

    def onCreate(self, sessionID: fix.SessionID) -> None:
        pass

    def onLogon(self, sessionID: fix.SessionID) -> None:
        self.logons += 1

    def onLogout(self, sessionID: fix.SessionID) -> None:
        self.logouts.append("logout")

    def toAdmin(self, message: fix.Message, sessionID: fix.SessionID) -> None:
        if message.getHeader().getField(35) == "A" and self.password is not None:
            message.setField(554, self.password)

    def fromAdmin(self, message: fix.Message, sessionID: fix.SessionID) -> None:
        if message.getHeader().getField(35) == "5":
            self.logouts.append(message.getField(58) if message.isSetField(58) else "")

    def toApp(self, message: fix.Message, sessionID: fix.SessionID) -> None:
        pass

    def fromApp(self, message: fix.Message, sessionID: fix.SessionID) -> None:
        msg = parse(message.toString(), {"W": ()})
        self.inbox.put(msg)


class Oms:
    def __init__(self, root: Path, port: int, comp_id: str, password: str | None = None) -> None:
        self.inbox: queue.Queue[FixMessage] = queue.Queue()
        self.seen: list[FixMessage] = []
        self.app = _App(password, self.inbox)
        self.session_id = fix.SessionID("FIX.4.4", comp_id, "FIXGW")
        (root / "oms-store").mkdir(parents=True, exist_ok=True)
        self.settings = make_settings(
            {
                "ConnectionType": "initiator",
                "FileStorePath": str(root / "oms-store"),
                "DataDictionary": str(standard_fix44_dictionary()),
                "UseDataDictionary": "Y",
                **ALWAYS_ON,
            },
            {
                self.session_id: {
                    "SocketConnectHost": "127.0.0.1",
                    "SocketConnectPort": port,
                    "HeartBtInt": 5,
                    "ReconnectInterval": 1,
                }
            },
        )
        self.store = fix.FileStoreFactory(self.settings)
        self.initiator: Any = None

    def start(self) -> None:
        self.initiator = fix.SocketInitiator(self.app, self.store, self.settings)
        self.initiator.start()

    def stop(self) -> None:
        if self.initiator is not None:
            self.initiator.stop()
            self.initiator = None

    @property
    def logged_on(self) -> bool:
        session = fix.Session.lookupSession(self.session_id)
        return bool(session is not None and session.isLoggedOn())

    def wait_logged_on(self, timeout: float = 15) -> None:
        deadline = time.monotonic() + timeout
        while not self.logged_on:
            assert time.monotonic() < deadline, f"OMS not logged on: {self.app.logouts}"
            time.sleep(0.05)

    def send(self, msg_type: str, fields: dict[int, str], groups: Any = None) -> None:
        message = to_quickfix(FixMessage(msg_type=msg_type, fields=fields, groups=groups or {}))
        assert fix.Session.sendToTarget(message, self.session_id)

    def wait_for(self, match: Callable[[FixMessage], bool], timeout: float = 10) -> FixMessage:
        for msg in self.seen:
            if match(msg):
                return msg
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"no matching message among {[m.fields for m in self.seen]}"
            try:
                msg = self.inbox.get(timeout=remaining)
            except queue.Empty:
                continue
            self.seen.append(msg)
            if match(msg):
                return msg

    def report(self, cl_ord_id: str, exec_type: str, timeout: float = 10) -> Received:
        msg = self.wait_for(
            lambda m: (
                m.msg_type == "8"
                and m.fields.get(11) == cl_ord_id
                and m.fields.get(150) == exec_type
            ),
            timeout,
        )
        return dict(msg.fields)
