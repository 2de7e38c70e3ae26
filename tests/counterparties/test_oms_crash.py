"""An OMS's fills across crashes of the gateway: each execution reaches the OMS once as new;
a report the OMS may have had comes again only marked PossResend (97=Y), with the
exchange's ExecID, as FIX 4.4 has a message that "may have been sent under another
sequence number"."""

from __future__ import annotations

import json
import signal
import threading
import time
from decimal import Decimal
from pathlib import Path

from fixgw.bridge.reported import FILE_NAME, session_file_name
from fixgw.testing import LocalStack, wait_until
from tests.counterparties.conftest import VenueStackFactory, raw_oms_through
from tests.counterparties.raw_oms import RawOms
from tests.counterparties.raw_oms import Received as OmsReceived
from tests.counterparties.test_oms_order_answers import cancel, canceled_by, order, report, venue
from tests.counterparties.venue import Received, ScriptedVenue, acknowledge, execution_report


class FillingVenue:
    """A venue that acknowledges each order, fills it when told, and answers a status
    request with what it has filled (the gateway's reconciliation asks after a restart)."""

    def __init__(self, venue: ScriptedVenue) -> None:
        self.venue = venue
        self.filled: dict[str, Decimal] = {}
        self._book = threading.Lock()
        """A fill is counted and sent in one step, as a venue's matching engine and its
        session keep one order: a status answer never shows a fill its session has yet to
        send (the gateway would take the fill, coming after, for a stale one)."""
        venue.on("D", lambda v, m: acknowledge(v, m))
        venue.on("H", self._answer_status)

    def order(self, oms_cl_ord_id: str) -> Received:
        """The OMS's order as the venue took it (under the bridge's prefix)."""
        return next(
            m
            for m in self.venue.app
            if m.msg_type == "D" and (m.get(11) or "").endswith(oms_cl_ord_id)
        )

    def fill(self, order: Received, qty: str, exec_id: str) -> None:
        cl_ord_id = order.get(11) or ""
        last = (qty, order.get(44) or "0")
        with self._book:
            cum = self.filled[cl_ord_id] = self.filled.get(cl_ord_id, Decimal(0)) + Decimal(qty)
            self.venue.send("8", self._report(order, exec_id, "F", cum, last))

    def fill_in_fifths(self, oms_cl_ord_ids: list[str]) -> None:
        """Each order (of 0.5) filled in five reports, the orders in turn."""
        orders = [self.order(name) for name in oms_cl_ord_ids]
        for part in range(1, 6):
            for name, taken in zip(oms_cl_ord_ids, orders, strict=True):
                self.fill(taken, "0.1", f"F-{name}-{part}")

    def _answer_status(self, venue: ScriptedVenue, request: Received) -> None:
        order = next(m for m in venue.app if m.msg_type == "D" and m.get(11) == request.get(11))
        with self._book:
            cum = self.filled.get(order.get(11) or "", Decimal(0))
            venue.send("8", self._report(order, f"S-{request.seq}", "I", cum, None))

    @staticmethod
    def _report(
        order: Received, exec_id: str, exec_type: str, cum: Decimal, last: tuple[str, str] | None
    ) -> list[tuple[int, str | bytes]]:
        left = Decimal(order.get(38) or "0") - cum
        return execution_report(
            order,
            exec_id=exec_id,
            exec_type=exec_type,
            ord_status="2" if left == 0 else "1" if cum else "0",
            order_id=f"V-{order.get(11)}",
            cum_qty=str(cum),
            leaves_qty=str(left),
            avg_px=order.get(44) if cum else "0",
            last=last,
        )


def killed_and_back(stack: LocalStack, oms: RawOms) -> None:
    """SIGKILL of the gateway, a new one on the same files, the OMS logged on to it again."""
    assert stack.gateway is not None
    stack.gateway.stop(signal.SIGKILL)
    Path(stack.socket_path).unlink(missing_ok=True)
    stack.start_gateway()
    oms.reconnect()


def marks_put_back(stack: LocalStack, oms: RawOms, seq: int) -> None:
    """The bridge's mark and the OMS session's, as a crash before they moved past `seq`
    leaves them."""
    store = stack.root / "bridge-store"
    for name in (FILE_NAME, session_file_name(oms.sender)):
        (store / name).write_text(f"{seq:020d}\n")


def fills(oms: RawOms) -> list[OmsReceived]:
    """The fills the OMS was told of, over all its connections."""
    return [m for m in oms.received if m.msg_type == "8" and m.get(150) == "F"]


def test_a_fill_reaches_the_oms_once_while_the_gateway_is_killed_in_bursts_of_fills(
    make_venue_stack: VenueStackFactory,
) -> None:
    """The exchange resends what the killed gateway had not journaled; the OMS must not have
    been told of it before as new. Every fill reaches the OMS. Several rounds: the window is
    a few ms per fill."""
    venues: list[FillingVenue] = []
    with raw_oms_through(make_venue_stack, lambda v: venues.append(FillingVenue(v))) as (
        _,
        stack,
        oms,
    ):
        venue = venues[0]
        for round_ in range(5):
            names = [f"K{round_}-{i}" for i in range(8)]
            for name in names:
                oms.send("D", order(name))
            for name in names:
                report(oms, name, "0")
            filling = threading.Thread(target=venue.fill_in_fifths, args=(names,))
            filling.start()
            time.sleep(0.02 + 0.01 * round_)
            killed_and_back(stack, oms)
            filling.join()
            wait_until(
                lambda names=names: (
                    {m.get(11) for m in fills(oms) if m.get(39) == "2"} >= set(names)
                ),
                30,
                "every order filled, as the OMS heard",
            )
        time.sleep(1)
        told = fills(oms)
        as_new = [m[17] for m in told if m.get(97) != "Y"]
        assert len(as_new) == len(set(as_new)), "a fill reached the OMS twice as new"
        made = {f"F-K{r}-{i}-{part}" for r in range(5) for i in range(8) for part in range(1, 6)}
        # a fill journaled but not yet reported at the kill comes only marked PossResend:
        # the gateway cannot know whether it went out; FIX 4.4 has the OMS check its ExecID
        assert {m[17] for m in told} == made, "a fill never reached the OMS"


def test_reports_the_oms_may_not_have_had_come_again_after_a_crash_marked_poss_resend(
    make_venue_stack: VenueStackFactory,
) -> None:
    """A crash after a fill was journaled and before its report went out (or before the
    bridge noted that it had): played by putting the bridge's marks back before the fill."""
    venues: list[FillingVenue] = []
    with raw_oms_through(make_venue_stack, lambda v: venues.append(FillingVenue(v))) as (
        _,
        stack,
        oms,
    ):
        venue = venues[0]
        oms.send("D", order("ORD-1"))
        report(oms, "ORD-1", "0")
        taken = venue.order("ORD-1")
        venue.fill(taken, "0.2", "FILL-1")
        first = report(oms, "ORD-1", "F")
        assert first.get(97) is None
        journal = Path(stack.root / "journal.jsonl")
        fill_seq = next(
            line["seq"]
            for line in map(json.loads, journal.read_text().splitlines())
            if line.get("type") == "order.partially_filled"
        )
        assert stack.gateway is not None
        stack.gateway.stop(signal.SIGKILL)
        marks_put_back(stack, oms, fill_seq - 1)
        Path(stack.socket_path).unlink(missing_ok=True)
        stack.start_gateway()
        oms.reconnect()

        again = oms.wait_for(lambda m: m.get(17) == "FILL-1" and m.get(97) == "Y")
        assert (again.get(32), again.get(14), again.get(151)) == ("0.2", "0.2", "0.3")
        assert again.get(11) == "ORD-1"

        venue.fill(taken, "0.3", "FILL-2")
        last = oms.wait_for(lambda m: m.msg_type == "8" and m.get(17) == "FILL-2")
        assert (last.get(17), last.get(97), last.get(14), last.get(39)) == (
            "FILL-2",
            None,
            "0.5",
            "2",
        )
        assert [(m.get(17), m.get(97)) for m in fills(oms)] == [
            ("FILL-1", None),
            ("FILL-1", "Y"),
            ("FILL-2", None),
        ]


def test_a_cancel_report_sent_again_after_a_crash_is_the_same_report_under_the_cancels_id(
    make_venue_stack: VenueStackFactory,
) -> None:
    """A crash after the OMS's cancel was journaled as done and before its report went out
    (the marks put back before `order.canceled`). The order is closed at the restart, and
    only open orders had their pending cancels mapped again: the ExecType 4 came under the
    order's ClOrdID with no OrigClOrdID, the same ExecID on another report, and the OMS's
    cancel was never answered."""

    def cancel_it(v: ScriptedVenue, request: Received) -> None:
        taken = next(m for m in v.app if m.msg_type == "D" and m.get(11) == request.get(41))
        canceled_by(v, taken, request)

    configure = venue(D=acknowledge, F=cancel_it)
    with raw_oms_through(make_venue_stack, configure) as (_, stack, oms):
        oms.send("D", order("ORD-1"))
        report(oms, "ORD-1", "0")
        oms.send("F", cancel("CXL-1", "ORD-1"))
        first = report(oms, "CXL-1", "4")
        journal = Path(stack.root / "journal.jsonl")
        canceled_seq = next(
            line["seq"]
            for line in map(json.loads, journal.read_text().splitlines())
            if line.get("type") == "order.canceled"
        )
        assert stack.gateway is not None
        stack.gateway.stop(signal.SIGKILL)
        marks_put_back(stack, oms, canceled_seq - 1)
        Path(stack.socket_path).unlink(missing_ok=True)
        stack.start_gateway()
        oms.reconnect()
        again = oms.wait_for(lambda m: m.msg_type == "8" and m.get(97) == "Y")
    assert (first.get(11), first.get(41), first.get(97)) == ("CXL-1", "ORD-1", None)
    assert (again[150], again[11], again.get(41), again[17]) == ("4", "CXL-1", "ORD-1", first[17])
