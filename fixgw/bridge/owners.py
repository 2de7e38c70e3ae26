"""Whose an order is, and which OMS cancel of it the gateway waits on.

An OMS's ClOrdIDs reach the exchange as its prefix + its own id, so the gateway's id of an
order names the OMS session and the OMS's id for it: prefixes never overlap (`BridgeConfig`)
and API clients may not choose an id that starts with one (`ApiServer`). But a prefix says
only what the config says now: an API client's id chosen before a session with that prefix
was added would read as the OMS's. So an order is an OMS's only if the journal records that
OMS as the one that placed it (`OrderPendingNew.oms`); the prefix alone decides only for an
order journaled before that was recorded (0.1.0), or one the gateway no longer keeps.

One table is kept: each order's pending cancel, as the OMS named it, under which the
order's PendingCancel and Canceled reports go out.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

import msgspec
import structlog

from fixgw.config import BridgeConfig

log = structlog.get_logger("fixgw.bridge")

PlacedBy = Callable[[str], str | msgspec.UnsetType | None]
"""The OMS that placed an order (`Gateway.placed_by`): None for an API client's, UNSET where
not recorded."""


class OrderOwners:
    def __init__(self, config: BridgeConfig, placed_by: PlacedBy) -> None:
        self.config = config
        self._placed_by = placed_by
        self.prefixes = {oms.comp_id: oms.prefix for oms in config.sessions}
        """Each OMS session's (comp id) prefix of its ClOrdIDs at the gateway."""
        self._cancel_of_order: dict[str, str] = {}
        """The gateway's ClOrdID of an order -> the OMS's ClOrdID of its latest cancel."""

    def owner(self, cl_ord_id: str) -> tuple[str, str] | None:
        """The OMS that placed an order, and its own id for it."""
        named = self._by_prefix(cl_ord_id)
        if named is None or not self.may_reach(named[0], cl_ord_id):
            return None
        return named

    def may_reach(self, oms: str, cl_ord_id: str) -> bool:
        """An order `oms` may cancel, ask about and be told of, if its id is under the OMS's
        prefix: any but one the journal says someone else placed (an API client, another
        OMS). Also true of an id the gateway has no order of."""
        placed_by = self._placed_by(cl_ord_id)
        return placed_by is msgspec.UNSET or placed_by == oms

    def cancel_owner(self, cancel_cl_ord_id: str) -> tuple[str, str] | None:
        """The OMS that sent a cancel, and its own id for it: by prefix alone, as the gateway
        keeps no record of who sent a cancel, and an API client's may not have the prefix
        of a session that exists."""
        return self._by_prefix(cancel_cl_ord_id)

    def _by_prefix(self, cl_ord_id: str) -> tuple[str, str] | None:
        oms = self.config.oms_of(cl_ord_id)
        if oms is None:
            return None
        return oms.comp_id, cl_ord_id[len(oms.prefix) :]

    def note_cancel(self, cl_ord_id: str, cancel_cl_ord_id: str | None) -> None:
        """The cancel now pending for an order, as the gateway says: an OMS's cancel of its
        own order is mapped, any other (the API's, a halt's) ends the mapping, as the gateway
        no longer waits for the OMS's."""
        owner = self.owner(cl_ord_id)
        cancel = self.cancel_owner(cancel_cl_ord_id or "")
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


def say_orders_of_sessions_not_configured(
    open_cl_ord_ids: Iterable[str], placed_by: PlacedBy, prefixes: Mapping[str, str]
) -> None:
    """At start, one warning naming the open orders that an OMS session not configured now
    placed: nobody is told of them, cancels them on a disconnect, or may cancel them
    through the bridge until that session is configured again (its reports then come, from
    its own mark: `reported.ReportedMarks`). Another names those of a session configured
    (`prefixes`: each one's ClOrdID prefix) under a prefix it no longer has, which it no
    longer reaches at all."""
    orphaned: dict[str, list[str]] = {}
    other_prefix: dict[str, list[str]] = {}
    for cl_ord_id in open_cl_ord_ids:
        oms = placed_by(cl_ord_id)
        if not isinstance(oms, str):
            continue
        if oms not in prefixes:
            orphaned.setdefault(oms, []).append(cl_ord_id)
        elif not cl_ord_id.startswith(prefixes[oms]):
            other_prefix.setdefault(oms, []).append(cl_ord_id)
    if orphaned:
        log.warning(
            "open orders of OMS sessions not configured: no OMS is told of them or may "
            "cancel them through the bridge until the session is configured again",
            sessions=sorted(orphaned),
            orders={oms: ids[:20] for oms, ids in sorted(orphaned.items())},
            count=sum(len(ids) for ids in orphaned.values()),
        )
    if other_prefix:
        log.warning(
            "open orders of OMS sessions placed under another cl_ord_id_prefix: no OMS is "
            "told of them or may cancel them through the bridge while the prefix differs",
            sessions=sorted(other_prefix),
            prefixes={oms: prefixes[oms] for oms in sorted(other_prefix)},
            orders={oms: ids[:20] for oms, ids in sorted(other_prefix.items())},
            count=sum(len(ids) for ids in other_prefix.values()),
        )
