"""The faults a simulator config can ask for, by message type: `unavailable` types are
answered with ExceptionResponse (E1000), as OKCoin does when it cannot serve; `unsupported`
ones with BusinessMessageReject (j), as is a type the simulator has no handler for;
`unanswered` ones are acted on with every answer they cause dropped."""

from __future__ import annotations

from collections.abc import Callable

from fixgw.config import SimConfig
from fixgw.fix.message import FixMessage
from fixgw.fix.tags import MsgType, Tag
from fixgw.sim.outbox import Outbox
from fixgw.venues.okcoin.tags import OkMsgType, OkTag

Handler = Callable[[FixMessage, str], None]
"""What handles a message of one type: (message, client)."""

_REQUEST_ID_TAGS = (Tag.CL_ORD_ID, OkTag.ACC_REQ_ID, Tag.MD_REQ_ID, Tag.MASS_STATUS_REQ_ID)
"""The tags that name a request; E1000 carries the first three."""


class Faults:
    def __init__(self, config: SimConfig, outbox: Outbox) -> None:
        self._unsupported = frozenset(config.unsupported)
        self._unavailable = frozenset(config.unavailable)
        self._unanswered = frozenset(config.unanswered)
        self._outbox = outbox

    def run(self, msg: FixMessage, client: str, handler: Handler | None) -> None:
        """`handler` (None: the simulator has none for the type) on `msg`, or what a fault
        puts in its place."""
        if msg.msg_type in self._unavailable:
            self._exception_response(msg, client)
        elif handler is None or msg.msg_type in self._unsupported:
            self._business_reject(msg, client)
        elif msg.msg_type in self._unanswered:
            with self._outbox.muted():
                handler(msg, client)
        else:
            handler(msg, client)

    def _exception_response(self, msg: FixMessage, client: str) -> None:
        ids: dict[int, str] = {
            t: v for t in _REQUEST_ID_TAGS[:3] if (v := msg.fields.get(t)) is not None
        }
        self._outbox.send(
            client,
            OkMsgType.EXCEPTION_RESPONSE,
            {**ids, Tag.TEXT: f"{msg.msg_type} cannot be served at the moment"},
        )

    def _business_reject(self, msg: FixMessage, client: str) -> None:
        fields: dict[int, str] = {
            Tag.REF_SEQ_NUM: msg.fields.get(Tag.MSG_SEQ_NUM, "0"),
            Tag.REF_MSG_TYPE: msg.msg_type,
            Tag.BUSINESS_REJECT_REASON: "3",
            Tag.TEXT: f"message type {msg.msg_type} is not supported",
        }
        ref_id = next((v for t in _REQUEST_ID_TAGS if (v := msg.fields.get(t)) is not None), None)
        if ref_id is not None:
            fields[Tag.BUSINESS_REJECT_REF_ID] = ref_id
        self._outbox.send(client, MsgType.BUSINESS_MESSAGE_REJECT, fields)
