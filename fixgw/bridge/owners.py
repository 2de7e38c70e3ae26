"""Whose an order is, and which OMS cancel of it the gateway waits on.

An OMS's ClOrdIDs reach the exchange as its prefix + its own id, so the gateway's id of an
order names the OMS session that placed it and the OMS's id for it, across restarts too,
with no table kept: prefixes never overlap (`BridgeConfig`) and API clients may not choose
an id that starts with one (`ApiServer`). One table is kept: each order's pending cancel, as
the OMS named it, under which the order's PendingCancel and Canceled reports go out.
"""

from __future__ import annotations

from fixgw.config import BridgeConfig


class OrderOwners:
    def __init__(self, config: BridgeConfig) -> None:
        self.config = config
        self.prefixes = {oms.comp_id: oms.prefix for oms in config.sessions}
        """Each OMS session's (comp id) prefix of its ClOrdIDs at the gateway."""
        self._cancel_of_order: dict[str, str] = {}
        """The gateway's ClOrdID of an order -> the OMS's ClOrdID of its latest cancel."""

    def owner(self, cl_ord_id: str) -> tuple[str, str] | None:
        """The OMS that placed an order (or a cancel), and its own id for it."""
        oms = self.config.oms_of(cl_ord_id)
        if oms is None:
            return None
        return oms.comp_id, cl_ord_id[len(oms.prefix) :]

    def note_cancel(self, cl_ord_id: str, cancel_cl_ord_id: str | None) -> None:
        """The cancel now pending for an order, as the gateway says: an OMS's cancel of its
        own order is mapped, any other (the API's, a halt's) ends the mapping, as the gateway
        no longer waits for the OMS's."""
        owner = self.owner(cl_ord_id)
        cancel = self.owner(cancel_cl_ord_id or "")
        if owner is not None and cancel is not None and cancel[0] == owner[0]:
            self._cancel_of_order[cl_ord_id] = cancel[1]
        else:
            self._cancel_of_order.pop(cl_ord_id, None)

    def cancel_of(self, cl_ord_id: str) -> str | None:
        """The OMS's ClOrdID of the cancel pending for an order, if an OMS's is."""
        return self._cancel_of_order.get(cl_ord_id)

    def cancel_sent(self, cl_ord_id: str, oms_cancel_id: str) -> str | None:
        """An OMS's cancel, mapped before the gateway acts on it; returns the mapping it
        replaces, for `cancel_refused`."""
        before = self._cancel_of_order.get(cl_ord_id)
        self._cancel_of_order[cl_ord_id] = oms_cancel_id
        return before

    def cancel_refused(self, cl_ord_id: str, before: str | None) -> None:
        """The gateway refused the cancel: the order's earlier cancel, if any, stands."""
        if before is None:
            self._cancel_of_order.pop(cl_ord_id, None)
        else:
            self._cancel_of_order[cl_ord_id] = before

    def cancel_ended(self, cl_ord_id: str, oms_cancel_id: str | None = None) -> str | None:
        """No cancel pending for the order any more (only if it was `oms_cancel_id`, when
        given); returns the one that was."""
        if oms_cancel_id is not None and self._cancel_of_order.get(cl_ord_id) != oms_cancel_id:
            return None
        return self._cancel_of_order.pop(cl_ord_id, None)
