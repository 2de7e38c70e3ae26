"""What the simulator tells a client about orders: execution reports, each under an ExecID
of its own, and cancel rejects. Built from the matching engine's orders, or, for an order
it does not hold or refused, from the request as it came."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from decimal import Decimal

from fixgw.domain import CancelRejectReason, ExecKind, OrderStatus, RejectReason
from fixgw.fix.message import FixMessage, format_utc_timestamp
from fixgw.fix.tags import MsgType, Tag
from fixgw.sim.matching import SimOrder
from fixgw.sim.outbox import Outbox
from fixgw.venues.okcoin.enums import (
    CXL_REJ_REASON,
    EXEC_TYPE,
    ORD_REJ_REASON,
    ORD_STATUS,
    ORD_TYPE,
    SIDE,
)
from fixgw.venues.okcoin.outbound import fix_decimal


class OrderReports:
    def __init__(self, outbox: Outbox, exec_stem: str) -> None:
        self._outbox = outbox
        self._exec_stem = exec_stem
        self._exec_ids = itertools.count(1)

    def order(
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
        """An execution report of `order` as it is now, to its owner (none for seeded
        liquidity); `last` is a fill's (qty, price)."""
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
        self._outbox.send(order.owner, MsgType.EXECUTION_REPORT, fields)

    def rejected(self, msg: FixMessage, client: str, reason: RejectReason, text: str) -> None:
        """A NewOrderSingle refused: OKCoin's OrdRejReason and why."""
        self.no_order(
            client,
            msg,
            ExecKind.REJECTED,
            {
                Tag.ORDER_ID: "refused",
                Tag.ORD_REJ_REASON: ORD_REJ_REASON.encode(reason),
                Tag.TEXT: text,
            },
        )

    def no_order(
        self, client: str, msg: FixMessage, kind: ExecKind, fields: dict[int, str]
    ) -> None:
        """An execution report about an order the simulator does not hold (or refused),
        naming it as the request did."""
        f = msg.fields
        self._outbox.send(
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

    def cancel_rejected(
        self,
        msg: FixMessage,
        client: str,
        order: SimOrder | None,
        reason: CancelRejectReason,
        text: str,
    ) -> None:
        f = msg.fields
        self._outbox.send(
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

    def _exec_id(self) -> str:
        return f"{self._exec_stem}{next(self._exec_ids)}"
