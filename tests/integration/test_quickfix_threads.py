"""QuickFIX's own threads keep one Python thread state across callbacks once they call
`keep_thread_state`: what a callback leaves in a `threading.local` is still there at the
next one. Without it the binding makes and frees a thread state per callback (the control
case below), which costs an mmap and a munmap for every message received."""

from __future__ import annotations

import json
import os
import threading
from typing import Any

import pytest
import quickfix as fix

from fixgw.config import standard_fix44_dictionary
from fixgw.fix.qf import ALWAYS_ON, keep_thread_state, make_settings
from fixgw.testing import free_port, wait_until
from tests.integration.conftest import in_own_process
from tests.integration.qfapp import QuietApplication


class _Receiver(QuietApplication):
    """The acceptor side: notes, per message, what its thread's local held on arrival."""

    def __init__(self, keep: bool) -> None:
        super().__init__()
        self.keep = keep
        self.local = threading.local()
        self.seen: list[int | None] = []
        self.threads: set[int] = set()

    def fromApp(self, message: fix.Message, sessionID: fix.SessionID) -> None:
        if self.keep:
            keep_thread_state()
        self.threads.add(threading.get_ident())
        self.seen.append(getattr(self.local, "count", None))
        self.local.count = len(self.seen)


class _Sender(_Receiver):
    def __init__(self) -> None:
        super().__init__(keep=False)
        self.logged_on = threading.Event()

    def onLogon(self, sessionID: fix.SessionID) -> None:
        self.logged_on.set()


def _engines(receiver: _Receiver) -> tuple[Any, Any, _Sender, fix.SessionID]:
    port = free_port()
    common = {"DataDictionary": str(standard_fix44_dictionary()), **ALWAYS_ON}
    accept_id = fix.SessionID("FIX.4.4", "EXCH", "CLIENT")
    send_id = fix.SessionID("FIX.4.4", "CLIENT", "EXCH")
    accept_settings = make_settings(
        {"ConnectionType": "acceptor", **common},
        {accept_id: {"SocketAcceptPort": port}},
    )
    send_settings = make_settings(
        {"ConnectionType": "initiator", **common},
        {
            send_id: {
                "SocketConnectHost": "127.0.0.1",
                "SocketConnectPort": port,
                "HeartBtInt": 30,
                "ReconnectInterval": 1,
            }
        },
    )
    sender = _Sender()
    acceptor = fix.SocketAcceptor(receiver, fix.MemoryStoreFactory(), accept_settings)
    initiator = fix.SocketInitiator(sender, fix.MemoryStoreFactory(), send_settings)
    return acceptor, initiator, sender, send_id


def _receive_five(keep: bool) -> None:
    """Run in a process of its own, which prints what the acceptor saw and exits without
    stopping the acceptor: QuickFIX 1.16's SocketAcceptor.stop() can crash the process once a
    client has disconnected (the simulator exits the same way)."""
    receiver = _Receiver(keep)
    acceptor, initiator, sender, send_id = _engines(receiver)
    acceptor.start()
    initiator.start()
    assert sender.logged_on.wait(10), "the two engines did not log on"
    for n in range(5):
        news = fix.Message()
        news.getHeader().setField(fix.MsgType("B"))
        news.setField(fix.Headline(f"news {n}"))
        line = fix.Group(33, 58)
        line.setField(fix.Text("the text"))
        news.addGroup(line)
        assert fix.Session.sendToTarget(news, send_id)
    wait_until(lambda: len(receiver.seen) == 5, 10, "five messages at the acceptor")
    initiator.stop()
    seen = {
        "seen": receiver.seen,
        "threads": len(receiver.threads),
        "main_thread_among_them": threading.get_ident() in receiver.threads,
    }
    print(json.dumps(seen), flush=True)
    os._exit(0)


@pytest.mark.parametrize(
    ("keep", "expected"),
    [(True, [None, 1, 2, 3, 4]), (False, [None, None, None, None, None])],
    ids=["kept", "control: made anew per callback"],
)
def test_quickfix_thread_keeps_its_python_state_across_callbacks(
    keep: bool, expected: list[int | None]
) -> None:
    got = in_own_process(__name__, "_receive_five", keep)
    assert got["threads"] == 1 and not got["main_thread_among_them"]
    assert got["seen"] == expected
