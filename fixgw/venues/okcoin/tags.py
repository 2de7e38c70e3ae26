"""OKCoin's own tags and messages; standard FIX 4.4 ones are in `fixgw.fix.tags`."""

from __future__ import annotations

from enum import IntEnum, StrEnum


class OkTag(IntEnum):
    ACC_REQ_ID = 8000
    BALANCE = 8001
    FREE_BTC = 8101
    FREE_LTC = 8102
    FREE_QUOTE = 8103
    """FreeUSD, or FreeCNY on the China site: the account's quote currency (15)."""
    FROZEN_BTC = 8104
    FROZEN_LTC = 8105
    FROZEN_QUOTE = 8106
    LOGOUT_REASON = 8500


class OkMsgType(StrEnum):
    ACCOUNT_INFO_REQUEST = "Z1000"
    ACCOUNT_INFO_RESPONSE = "Z1001"
    EXCEPTION_RESPONSE = "E1000"
