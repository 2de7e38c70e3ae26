"""`fixgw sim`: a QuickFIX acceptor that speaks OKCoin's dialect over the matching engine.

`SimApplication` is the QuickFIX side only: session callbacks, the Logon credentials check
(553/554, bad ones answered with Logout 8500=1), and each application message handed by
MsgType to what serves it: orders (`orders.OrderDesk`), AccountInfoRequest
(`account_info.AccountInfoDesk`), market data (`marketdata.MarketDataPublisher`), through
the configured faults (`faults.Faults`). QuickFIX's SocketAcceptor runs every session on one
thread, so none of them needs a lock.
"""

from __future__ import annotations

import socket
import time
from pathlib import Path

import quickfix as fix
import structlog

from fixgw.config import SimConfig, bundled_dictionary
from fixgw.files import private_directory
from fixgw.fix.message import parse, redact
from fixgw.fix.qf import (
    ALWAYS_ON,
    VALIDATION,
    keep_store_across_days,
    keep_thread_state,
    msg_type_of,
    session_id,
)
from fixgw.fix.qflisten import BoundAcceptor
from fixgw.fix.tags import MsgType, Tag
from fixgw.fix.tls import Endpoint, Pipe, server_context
from fixgw.ids import base36
from fixgw.sim.account_info import AccountInfoDesk
from fixgw.sim.accounts import Ledger
from fixgw.sim.faults import Faults, Handler
from fixgw.sim.marketdata import MarketDataPublisher
from fixgw.sim.matching import MatchingEngine
from fixgw.sim.orderlog import OrderLog
from fixgw.sim.orders import OrderDesk
from fixgw.sim.outbox import Outbox
from fixgw.sim.reports import OrderReports
from fixgw.venues.fix44.inbound import REQUEST_GROUPS
from fixgw.venues.okcoin.tags import OkMsgType, OkTag

log = structlog.get_logger("fixgw.sim")


class SimApplication(fix.Application):  # type: ignore[misc]
    def __init__(self, config: SimConfig) -> None:
        super().__init__()
        self.config = config
        self.errors = 0
        self._accounts = {a.comp_id: a for a in config.accounts}
        self._refused_logon: set[str] = set()
        order_log = OrderLog(Path(config.store_dir) / "orders.jsonl")
        kept_stem, requests = order_log.read()
        stem = base36(time.time_ns() // 1000)
        self.engine = MatchingEngine(list(config.symbols), id_stem=f"{kept_stem or stem}-")
        self.ledger = Ledger(config.accounts)
        outbox = Outbox(config.comp_id)
        self.market_data = MarketDataPublisher(
            self.engine.books, outbox.send_message, config.load_feeds
        )
        self.orders = OrderDesk(
            accounts=self._accounts,
            engine=self.engine,
            ledger=self.ledger,
            order_log=order_log,
            # ExecIDs fresh each start: those spent on status answers before a crash are
            # not in the log
            reports=OrderReports(outbox, exec_stem=f"E{stem}-"),
            market_data=self.market_data,
            outbox=outbox,
        )
        account_info = AccountInfoDesk(accounts=self._accounts, ledger=self.ledger, outbox=outbox)
        self.faults = Faults(config, outbox)
        self._handlers: dict[str, Handler] = {
            MsgType.NEW_ORDER_SINGLE: self.orders.on_new_order,
            MsgType.ORDER_CANCEL_REQUEST: self.orders.on_cancel,
            MsgType.ORDER_STATUS_REQUEST: self.orders.on_status_request,
            MsgType.MARKET_DATA_REQUEST: self.market_data.on_request,
            OkMsgType.ACCOUNT_INFO_REQUEST: account_info.on_request,
            MsgType.ORDER_MASS_STATUS_REQUEST: self.orders.on_mass_status_request,
        }
        self.orders.seed(config.symbols)
        self.orders.replay(requests)
        order_log.open(kept_stem or stem)

    def onCreate(self, sessionID: fix.SessionID) -> None:
        pass

    def onLogon(self, sessionID: fix.SessionID) -> None:
        log.info("client logged on", client=sessionID.getTargetCompID().getValue())

    def onLogout(self, sessionID: fix.SessionID) -> None:
        try:
            client = sessionID.getTargetCompID().getValue()
            log.info("client logged out", client=client)
            self.market_data.client_gone(client)
        except Exception:
            self._failed("onLogout")

    def toAdmin(self, message: fix.Message, sessionID: fix.SessionID) -> None:
        try:
            client = sessionID.getTargetCompID().getValue()
            if msg_type_of(message) == MsgType.LOGOUT and client in self._refused_logon:
                self._refused_logon.discard(client)
                message.setField(OkTag.LOGOUT_REASON, "1")
        except Exception:
            self._failed("toAdmin")

    def fromAdmin(self, message: fix.Message, sessionID: fix.SessionID) -> None:
        keep_thread_state()
        try:
            if msg_type_of(message) != MsgType.LOGON:
                return
            client = sessionID.getTargetCompID().getValue()
            account = self._accounts.get(client)
            fields = parse(message.toString()).fields
            if (
                account is None
                or fields.get(Tag.USERNAME) != account.api_key
                or fields.get(Tag.PASSWORD) != account.secret_key
            ):
                log.warning("logon refused: invalid credentials", client=client)
                self._refused_logon.add(client)
                refused = True
            else:
                refused = False
        except Exception:
            self._failed("fromAdmin")
            return
        if refused:
            raise fix.RejectLogon("invalid credentials")

    def toApp(self, message: fix.Message, sessionID: fix.SessionID) -> None:
        pass

    def fromApp(self, message: fix.Message, sessionID: fix.SessionID) -> None:
        keep_thread_state()
        try:
            msg = parse(message.toString(), REQUEST_GROUPS)
            client = sessionID.getTargetCompID().getValue()
            self.faults.run(msg, client, self._handlers.get(msg.msg_type))
        except Exception:
            self._failed("fromApp", message)

    def _failed(self, where: str, message: fix.Message | None = None) -> None:
        self.errors += 1
        log.exception(
            "simulator callback failed",
            callback=where,
            msg=redact(message.toString()) if message is not None else None,
        )


def free_loopback_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Simulator:
    """The acceptor and its application, started and stopped as one."""

    def __init__(self, config: SimConfig) -> None:
        self.config = config
        private_directory(Path(config.store_dir))
        self.app = SimApplication(config)
        dictionary = config.dictionary or str(bundled_dictionary())
        self._session_ids = [session_id(config.comp_id, a.comp_id) for a in config.accounts]
        self.tls_pipe: Pipe | None = None
        accept_host, accept_port = config.host, config.port
        if config.tls is not None:
            accept_host, accept_port = "127.0.0.1", free_loopback_port()
            self.tls_pipe = Pipe(
                Endpoint(
                    config.host,
                    config.port,
                    server_context(config.tls.cert_file, config.tls.key_file),
                ),
                Endpoint(accept_host, accept_port),
                name="simulator",
            )
        self._acceptor = BoundAcceptor(
            self.app,
            {
                "ConnectionType": "acceptor",
                "SocketReuseAddress": "Y",
                "FileStorePath": config.store_dir,
                "DataDictionary": dictionary,
                **VALIDATION,
                **ALWAYS_ON,
            },
            {sid: {} for sid in self._session_ids},
            accept_host,
            accept_port,
            "host",
        )

    def start(self) -> None:
        """QuickFIX listens on `host` only (`BoundAcceptor`), or behind TLS on loopback only;
        ConfigError if it cannot."""
        keep_store_across_days(Path(self.config.store_dir))
        self._acceptor.start()
        if self.tls_pipe is not None:
            self.tls_pipe.start()
        log.info(
            "simulator listening",
            host=self.config.host,
            port=self.config.port,
            symbols=sorted(self.config.symbols),
        )

    def stop(self, timeout: float = 5.0) -> None:
        """Log every client out and wait for the answers; the caller then exits the process.

        `SocketAcceptor.stop()` is not called: in QuickFIX 1.16 it crashes the process
        (SIGSEGV in `SocketServer::close`, which walks its socket map) once any client has
        disconnected before. Closing the sockets is left to the process exit.
        """
        sessions = [fix.Session.lookupSession(sid) for sid in self._session_ids]
        for session in sessions:
            if session is not None and session.isLoggedOn():
                session.logout("simulator shutting down")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and any(
            s is not None and s.isLoggedOn() for s in sessions
        ):
            time.sleep(0.05)
