"""`fixgw sim`: a QuickFIX acceptor that speaks OKCoin's dialect over the matching engine.

It checks Logon credentials (553/554) against its configured accounts and answers bad
ones with Logout 8500=1; takes NewOrderSingle, OrderCancelRequest and OrderStatusRequest;
and sends execution reports to the owner of every order a trade touches. QuickFIX's
SocketAcceptor runs every session on one thread, so the engine needs no lock.
"""

from __future__ import annotations

import itertools
import socket
import time
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path

import quickfix as fix
import structlog

from fixgw.config import SimConfig, bundled_dictionary
from fixgw.domain import CancelRejectReason, ExecKind, OrderStatus, OrderType, RejectReason, Side
from fixgw.errors import UnknownCode
from fixgw.files import private_directory
from fixgw.fix.message import FixMessage, format_utc_timestamp, parse, redact
from fixgw.fix.qf import (
    ALWAYS_ON,
    VALIDATION,
    keep_store_across_days,
    keep_thread_state,
    msg_type_of,
    session_id,
    to_quickfix,
)
from fixgw.fix.qflisten import BoundAcceptor
from fixgw.fix.tags import MsgType, Tag
from fixgw.fix.tls import Endpoint, Pipe, server_context
from fixgw.ids import base36
from fixgw.sim.accounts import Ledger
from fixgw.sim.marketdata import MarketDataPublisher
from fixgw.sim.matching import Fill, MatchingEngine, SimOrder
from fixgw.sim.orderlog import REFUSED, TAKEN, LoggedRequest, OrderLog
from fixgw.venues.okcoin.enums import (
    CXL_REJ_REASON,
    EXEC_TYPE,
    ORD_REJ_REASON,
    ORD_STATUS,
    ORD_TYPE,
    SIDE,
)
from fixgw.venues.okcoin.inbound import GROUPS
from fixgw.venues.okcoin.outbound import fix_decimal
from fixgw.venues.okcoin.tags import OkMsgType, OkTag

log = structlog.get_logger("fixgw.sim")


_REQUEST_ID_TAGS = (Tag.CL_ORD_ID, OkTag.ACC_REQ_ID, Tag.MD_REQ_ID, Tag.MASS_STATUS_REQ_ID)
"""The tags that name a request; E1000 carries the first three."""


class _Refused(Exception):
    def __init__(self, reason: RejectReason, text: str) -> None:
        super().__init__(text)
        self.reason = reason
        self.text = text


class SimApplication(fix.Application):  # type: ignore[misc]
    def __init__(self, config: SimConfig) -> None:
        super().__init__()
        self.config = config
        self.order_log = OrderLog(Path(config.store_dir) / "orders.jsonl")
        kept_stem, commands = self.order_log.read()
        stem = base36(time.time_ns() // 1000)
        self.engine = MatchingEngine(list(config.symbols), id_stem=f"{kept_stem or stem}-")
        self._exec_ids = itertools.count(1)
        self._exec_stem = f"E{stem}-"
        """Fresh each start: ids spent on status answers before a crash are not in the log."""
        self._replaying = False
        self._silent = False
        """Handling a message of an `unanswered` type: what it causes is not reported."""
        self._seed_ids = itertools.count(1)
        self._accounts = {a.comp_id: a for a in config.accounts}
        self._session_ids: dict[str, fix.SessionID] = {}
        """Per client, made once: one is needed for every message sent."""
        self._refused_logon: set[str] = set()
        self._cl_ord_ids: dict[str, set[str]] = {}
        self._handlers: dict[str, Callable[[FixMessage, str], None]] = {
            MsgType.NEW_ORDER_SINGLE: self.on_new_order,
            MsgType.ORDER_CANCEL_REQUEST: self.on_cancel,
            MsgType.ORDER_STATUS_REQUEST: self.on_status_request,
            MsgType.MARKET_DATA_REQUEST: self.on_market_data_request,
            OkMsgType.ACCOUNT_INFO_REQUEST: self.on_account_info_request,
            MsgType.ORDER_MASS_STATUS_REQUEST: self.on_mass_status_request,
        }
        self.ledger = Ledger(config.accounts)
        self.market_data = MarketDataPublisher(
            self.engine.books, self._send_message, config.load_feeds
        )
        self.errors = 0
        self._seed()
        self._replay(commands)
        self.order_log.open(kept_stem or stem)

    # ------------------------------------------------------------ QuickFIX callbacks

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
            msg = parse(message.toString(), GROUPS)
            client = sessionID.getTargetCompID().getValue()
            handler = self._handlers.get(msg.msg_type)
            if msg.msg_type in self.config.unavailable:
                self._exception_response(msg, client)
            elif handler is None or msg.msg_type in self.config.unsupported:
                self._business_reject(msg, client)
            else:
                self._silent = msg.msg_type in self.config.unanswered
                try:
                    handler(msg, client)
                finally:
                    self._silent = False
        except Exception:
            self._failed("fromApp", message)

    def _replay(self, commands: list[LoggedRequest]) -> None:
        self._replaying = True
        try:
            for request in commands:
                if request.outcome == REFUSED or request.client not in self._accounts:
                    continue
                msg = parse(request.raw, GROUPS)
                self._handlers[msg.msg_type](msg, request.client)
                if request.order_id is not None:
                    self._check_replayed(request, msg)
        finally:
            self._replaying = False
        if commands:
            log.info("order log replayed", requests=len(commands))

    def _check_replayed(self, request: LoggedRequest, msg: FixMessage) -> None:
        """A taken order must come back under the id it was given (not so if the symbols,
        seeded books or accounts were changed since): say so if it does not."""
        assert request.order_id is not None
        order = self.engine.orders.get(request.order_id)
        if (
            order is None
            or order.owner != request.client
            or order.cl_ord_id != msg.fields.get(Tag.CL_ORD_ID, "")
        ):
            log.warning(
                "order log replay diverged: an order did not come back under its id",
                order_id=request.order_id,
                client=request.client,
            )

    def _record(
        self, msg: FixMessage, client: str, outcome: str, order_id: str | None = None
    ) -> None:
        """Logs an order-changing request once decided, before anything is done or sent."""
        if not self._replaying:
            self.order_log.append(client, msg.raw, outcome, order_id)

    def _failed(self, where: str, message: fix.Message | None = None) -> None:
        self.errors += 1
        log.exception(
            "simulator callback failed",
            callback=where,
            msg=redact(message.toString()) if message is not None else None,
        )

    # ------------------------------------------------------------ orders

    def on_new_order(self, msg: FixMessage, client: str) -> None:
        f = msg.fields
        cl_ord_id = f.get(Tag.CL_ORD_ID, "")
        try:
            order = self._order_from(msg, client)
        except _Refused as refused:
            self._record(msg, client, REFUSED)
            self._send_reject(msg, client, refused)
            return
        self._record(msg, client, TAKEN, order.order_id)
        self._cl_ord_ids.setdefault(client, set()).add(cl_ord_id)
        self.ledger.hold(order)
        self._report(order, ExecKind.NEW)
        fills: list[Fill] = []

        def on_fill(fill: Fill) -> None:
            self._report_fill(fill)
            fills.append(fill)

        self.engine.submit(order, on_fill)
        if order.order_type is OrderType.MARKET and order.leaves_qty > 0:
            self.engine.expire(order)
            self._report(order, ExecKind.CANCELED, text="no more liquidity for the market order")
        self.market_data.book_changed(order.symbol, fills)

    def _order_from(self, msg: FixMessage, client: str) -> SimOrder:
        f = msg.fields
        account = self._accounts[client]
        if not self._replaying and f.get(Tag.ACCOUNT) != f"{account.api_key},{account.secret_key}":
            raise _Refused(RejectReason.OTHER, "Account (1) must be apiKey,secretKey")
        cl_ord_id = f.get(Tag.CL_ORD_ID, "")
        if cl_ord_id in self._cl_ord_ids.get(client, set()):
            raise _Refused(RejectReason.DUPLICATE_ORDER, f"duplicate ClOrdID {cl_ord_id}")
        symbol = f.get(Tag.SYMBOL, "")
        if symbol not in self.engine.books:
            raise _Refused(RejectReason.UNKNOWN_SYMBOL, f"unknown symbol {symbol}")
        qty = _decimal(f.get(Tag.ORDER_QTY))
        if qty is None or qty <= 0:
            raise _Refused(RejectReason.INCORRECT_QUANTITY, "OrderQty must be > 0")
        try:
            side = SIDE.decode(f.get(Tag.SIDE, ""))
            order_type = ORD_TYPE.decode(f.get(Tag.ORD_TYPE, ""))
        except UnknownCode as exc:
            raise _Refused(RejectReason.OTHER, str(exc)) from None
        price = _decimal(f.get(Tag.PRICE))
        if order_type is OrderType.LIMIT and (price is None or price <= 0):
            raise _Refused(RejectReason.OTHER, "a limit order needs a Price > 0")
        if order_type is OrderType.MARKET:
            price = None
        if not self._replaying:  # what was taken once is taken again, as it was
            market_buy = price is None and side is Side.BUY
            cost = self.engine.books[symbol].market_cost(side, qty) if market_buy else Decimal(0)
            short = self.ledger.shortfall(client, symbol, side, qty, price, cost)
            if short is not None:
                raise _Refused(RejectReason.EXCEEDS_LIMIT, short)
        return SimOrder(
            order_id=self.engine.new_order_id(),
            cl_ord_id=cl_ord_id,
            owner=client,
            symbol=symbol,
            side=side,
            order_type=order_type,
            qty=qty,
            price=price,
        )

    def on_cancel(self, msg: FixMessage, client: str) -> None:
        f = msg.fields
        orig = f.get(Tag.ORIG_CL_ORD_ID, "")
        order = self._find(client, f.get(Tag.ORDER_ID)) or self._find(client, orig)
        if order is None:
            self._record(msg, client, REFUSED)
            self._cancel_reject(
                msg, client, None, CancelRejectReason.UNKNOWN_ORDER, "unknown order"
            )
        elif order.status.is_terminal:
            self._record(msg, client, REFUSED)
            self._cancel_reject(
                msg,
                client,
                order,
                CancelRejectReason.TOO_LATE_TO_CANCEL,
                f"order is {order.status}",
            )
        else:
            self._record(msg, client, TAKEN)
            self.ledger.release(order)
            self.engine.cancel(order)
            self._report(
                order,
                ExecKind.CANCELED,
                cl_ord_id=f.get(Tag.CL_ORD_ID),
                orig_cl_ord_id=order.cl_ord_id,
            )
            self.market_data.book_changed(order.symbol, [])

    def on_market_data_request(self, msg: FixMessage, client: str) -> None:
        self.market_data.on_request(msg, client)

    def on_status_request(self, msg: FixMessage, client: str) -> None:
        f = msg.fields
        order = self._find(client, f.get(Tag.ORDER_ID)) or self._find(client, f.get(Tag.CL_ORD_ID))
        if order is not None:
            self._report(order, ExecKind.ORDER_STATUS)
            return
        self._no_order_report(client, msg, ExecKind.ORDER_STATUS, {Tag.TEXT: "unknown order"})

    def _find(self, client: str, key: str | None) -> SimOrder | None:
        """OKCoin's clients put the order id in OrigClOrdID, plain FIX the ClOrdID: take both."""
        if not key:
            return None
        order = self.engine.orders.get(key)
        if order is not None and order.owner == client:
            return order
        return next(
            (o for o in self.engine.orders.values() if o.owner == client and o.cl_ord_id == key),
            None,
        )

    # ------------------------------------------------------------ outbound messages

    def on_account_info_request(self, msg: FixMessage, client: str) -> None:
        f = msg.fields
        acc_req_id = f.get(OkTag.ACC_REQ_ID, "")
        account = self._accounts[client]
        if not self._replaying and f.get(Tag.ACCOUNT) != f"{account.api_key},{account.secret_key}":
            self._send(
                client,
                OkMsgType.EXCEPTION_RESPONSE,
                {OkTag.ACC_REQ_ID: acc_req_id, Tag.TEXT: "Account (1) must be apiKey,secretKey"},
            )
            return
        balances = self.ledger.balances(client)
        fields: dict[int, str] = {
            OkTag.ACC_REQ_ID: acc_req_id,
            Tag.ACCOUNT: account.api_key,
            Tag.CURRENCY: account.currency,
        }
        nothing = (Decimal(0), Decimal(0))
        fields[OkTag.BALANCE] = fix_decimal(balances.get(account.currency, nothing)[0])
        for code, free_tag, frozen_tag in (
            ("BTC", OkTag.FREE_BTC, OkTag.FROZEN_BTC),
            ("LTC", OkTag.FREE_LTC, OkTag.FROZEN_LTC),
            (account.currency, OkTag.FREE_QUOTE, OkTag.FROZEN_QUOTE),
        ):
            free, frozen = balances.get(code, nothing)
            fields[free_tag] = fix_decimal(free)
            fields[frozen_tag] = fix_decimal(frozen)
        self._send(client, OkMsgType.ACCOUNT_INFO_RESPONSE, fields)

    def on_mass_status_request(self, msg: FixMessage, client: str) -> None:
        """One status report per open order, the last with LastRptRequested=Y; with none
        open, a single report that says so (TotNumReports=0)."""
        f = msg.fields
        req_id = f.get(Tag.MASS_STATUS_REQ_ID, "")
        symbol = f.get(Tag.SYMBOL) if f.get(Tag.MASS_STATUS_REQ_TYPE) == "1" else None
        orders = [o for o in self.engine.open_orders(client) if symbol in (None, o.symbol)]
        for i, order in enumerate(orders, 1):
            self._report(
                order,
                ExecKind.ORDER_STATUS,
                extra={
                    Tag.MASS_STATUS_REQ_ID: req_id,
                    Tag.TOT_NUM_REPORTS: str(len(orders)),
                    Tag.LAST_RPT_REQUESTED: "Y" if i == len(orders) else "N",
                },
            )
        if not orders:
            self._no_order_report(
                client,
                msg,
                ExecKind.ORDER_STATUS,
                {
                    Tag.ORDER_ID: "NONE",
                    Tag.CL_ORD_ID: "NONE",
                    Tag.SYMBOL: symbol or "NONE",
                    Tag.MASS_STATUS_REQ_ID: req_id,
                    Tag.TOT_NUM_REPORTS: "0",
                    Tag.LAST_RPT_REQUESTED: "Y",
                    Tag.TEXT: "no open orders",
                },
            )

    def _report_fill(self, fill: Fill) -> None:
        self.ledger.apply(fill)
        for order in (fill.maker, fill.taker):
            kind = ExecKind.FILL if order.status is OrderStatus.FILLED else ExecKind.PARTIAL_FILL
            self._report(order, kind, last=(fill.qty, fill.price))

    def _report(
        self,
        order: SimOrder,
        kind: ExecKind,
        *,
        last: tuple[Decimal, Decimal] | None = None,
        cl_ord_id: str | None = None,
        orig_cl_ord_id: str | None = None,
        text: str | None = None,
        extra: dict[int, str] | None = None,
    ) -> None:
        if order.owner is None:
            return
        fields: dict[int, str] = {
            Tag.ORDER_ID: order.order_id,
            Tag.CL_ORD_ID: cl_ord_id or order.cl_ord_id,
            Tag.EXEC_ID: self._exec_id(),
            Tag.EXEC_TYPE: EXEC_TYPE.encode(kind),
            Tag.ORD_STATUS: ORD_STATUS.encode(order.status),
            Tag.SIDE: SIDE.encode(order.side),
            Tag.SYMBOL: order.symbol,
            Tag.ORDER_QTY: fix_decimal(order.qty),
            Tag.ORD_TYPE: ORD_TYPE.encode(order.order_type),
            Tag.CUM_QTY: fix_decimal(order.cum_qty),
            Tag.LEAVES_QTY: fix_decimal(order.leaves_qty),
            Tag.AVG_PX: fix_decimal(order.avg_px),
            Tag.TRANSACT_TIME: format_utc_timestamp(datetime.now(UTC)),
        }
        if order.price is not None:
            fields[Tag.PRICE] = fix_decimal(order.price)
        if orig_cl_ord_id is not None:
            fields[Tag.ORIG_CL_ORD_ID] = orig_cl_ord_id
        if last is not None:
            fields[Tag.LAST_QTY] = fix_decimal(last[0])
            fields[Tag.LAST_PX] = fix_decimal(last[1])
        if text is not None:
            fields[Tag.TEXT] = text
        fields.update(extra or {})
        self._send(order.owner, MsgType.EXECUTION_REPORT, fields)

    def _send_reject(self, msg: FixMessage, client: str, refused: _Refused) -> None:
        self._no_order_report(
            client,
            msg,
            ExecKind.REJECTED,
            {
                Tag.ORDER_ID: "refused",
                Tag.ORD_REJ_REASON: ORD_REJ_REASON.encode(refused.reason),
                Tag.TEXT: refused.text,
            },
        )

    def _no_order_report(
        self, client: str, msg: FixMessage, kind: ExecKind, fields: dict[int, str]
    ) -> None:
        """An execution report about an order the simulator does not hold (or refused),
        naming it as the request did."""
        f = msg.fields
        self._send(
            client,
            MsgType.EXECUTION_REPORT,
            {
                Tag.ORDER_ID: f.get(Tag.ORDER_ID, "NONE"),
                Tag.CL_ORD_ID: f.get(Tag.CL_ORD_ID, "NONE"),
                Tag.EXEC_ID: self._exec_id(),
                Tag.EXEC_TYPE: EXEC_TYPE.encode(kind),
                Tag.ORD_STATUS: ORD_STATUS.encode(OrderStatus.REJECTED),
                Tag.SIDE: f.get(Tag.SIDE, "1"),
                Tag.SYMBOL: f.get(Tag.SYMBOL, "NONE"),
                Tag.CUM_QTY: "0",
                Tag.LEAVES_QTY: "0",
                Tag.AVG_PX: "0",
                Tag.TRANSACT_TIME: format_utc_timestamp(datetime.now(UTC)),
                **fields,
            },
        )

    def _cancel_reject(
        self,
        msg: FixMessage,
        client: str,
        order: SimOrder | None,
        reason: CancelRejectReason,
        text: str,
    ) -> None:
        f = msg.fields
        self._send(
            client,
            MsgType.ORDER_CANCEL_REJECT,
            {
                Tag.ORDER_ID: order.order_id if order else (f.get(Tag.ORDER_ID) or "NONE"),
                Tag.CL_ORD_ID: f.get(Tag.CL_ORD_ID, ""),
                Tag.ORIG_CL_ORD_ID: f.get(Tag.ORIG_CL_ORD_ID, ""),
                Tag.ORD_STATUS: ORD_STATUS.encode(order.status if order else OrderStatus.REJECTED),
                Tag.CXL_REJ_RESPONSE_TO: "1",
                Tag.CXL_REJ_REASON: CXL_REJ_REASON.encode(reason),
                Tag.TEXT: text,
            },
        )

    def _exception_response(self, msg: FixMessage, client: str) -> None:
        ids: dict[int, str] = {
            t: v for t in _REQUEST_ID_TAGS[:3] if (v := msg.fields.get(t)) is not None
        }
        self._send(
            client,
            OkMsgType.EXCEPTION_RESPONSE,
            {**ids, Tag.TEXT: f"{msg.msg_type} cannot be served at the moment"},
        )

    def _business_reject(self, msg: FixMessage, client: str) -> None:
        fields: dict[int, str] = {
            Tag.REF_SEQ_NUM: msg.fields.get(34, "0"),
            Tag.REF_MSG_TYPE: msg.msg_type,
            Tag.BUSINESS_REJECT_REASON: "3",
            Tag.TEXT: f"message type {msg.msg_type} is not supported",
        }
        ref_id = next((v for t in _REQUEST_ID_TAGS if (v := msg.fields.get(t)) is not None), None)
        if ref_id is not None:
            fields[Tag.BUSINESS_REJECT_REF_ID] = ref_id
        self._send(client, MsgType.BUSINESS_MESSAGE_REJECT, fields)

    def _send(self, client: str, msg_type: str, fields: dict[int, str]) -> None:
        self._send_message(client, FixMessage(msg_type=msg_type, fields=fields))

    def _send_message(self, client: str, message: FixMessage) -> None:
        if self._replaying or self._silent:
            return
        sid = self._session_ids.get(client)
        if sid is None:
            sid = self._session_ids[client] = session_id(self.config.comp_id, client)
        fix.Session.sendToTarget(to_quickfix(message), sid)

    def _exec_id(self) -> str:
        return f"{self._exec_stem}{next(self._exec_ids)}"

    def _seed(self) -> None:
        for symbol, book in self.config.symbols.items():
            for side, levels in ((Side.BUY, book.bids), (Side.SELL, book.asks)):
                for price, qty in levels:
                    self.engine.submit(
                        SimOrder(
                            order_id=self.engine.new_order_id(),
                            cl_ord_id=f"seed-{next(self._seed_ids)}",
                            owner=None,
                            symbol=symbol,
                            side=side,
                            order_type=OrderType.LIMIT,
                            qty=qty,
                            price=price,
                        ),
                        self._report_fill,
                    )


def free_loopback_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _decimal(value: str | None) -> Decimal | None:
    if value is None:
        return None
    try:
        result = Decimal(value)
    except InvalidOperation:
        return None
    return result if result.is_finite() else None


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
