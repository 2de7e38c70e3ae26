"""The simulator's answer to AccountInfoRequest (Z1000): AccountInfoResponse (Z1001) from
its ledger, free and frozen per currency, or ExceptionResponse (E1000) to a wrong Account."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

from fixgw.config import SimAccount
from fixgw.fix.message import FixMessage
from fixgw.fix.tags import Tag
from fixgw.sim.accounts import Ledger, account_field
from fixgw.sim.outbox import Outbox
from fixgw.venues.okcoin.outbound import fix_decimal
from fixgw.venues.okcoin.tags import OkMsgType, OkTag


class AccountInfoDesk:
    def __init__(
        self, *, accounts: Mapping[str, SimAccount], ledger: Ledger, outbox: Outbox
    ) -> None:
        self._accounts = accounts
        self._ledger = ledger
        self._outbox = outbox

    def on_request(self, msg: FixMessage, client: str) -> None:
        f = msg.fields
        acc_req_id = f.get(OkTag.ACC_REQ_ID, "")
        account = self._accounts[client]
        if f.get(Tag.ACCOUNT) != account_field(account):
            self._outbox.send(
                client,
                OkMsgType.EXCEPTION_RESPONSE,
                {OkTag.ACC_REQ_ID: acc_req_id, Tag.TEXT: "Account (1) must be apiKey,secretKey"},
            )
            return
        balances = self._ledger.balances(client)
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
        self._outbox.send(client, OkMsgType.ACCOUNT_INFO_RESPONSE, fields)
