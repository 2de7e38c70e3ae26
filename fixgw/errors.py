"""One error tree. Clients see `code`, a stable string; `message` is for people."""

from __future__ import annotations

from fixgw.domain import MdRejectReason


class FixgwError(Exception):
    code = "internal_error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class ConfigError(FixgwError):
    code = "config_error"


class StartupError(ConfigError):
    """Something the config names cannot be used at start (a file, a port, a group); the
    message reads `key: cause`."""


class DialectError(FixgwError):
    """A venue message the dialect cannot read; carries what is needed to find it again."""

    code = "dialect_error"

    def __init__(self, message: str, *, msg_type: str, tag: int | None, raw: str) -> None:
        super().__init__(f"{message} (MsgType {msg_type}, tag {tag})")
        self.msg_type = msg_type
        self.tag = tag
        self.raw = raw


class UnknownCode(FixgwError):
    """A FIX code with no entry in a translation table."""

    code = "unknown_code"


class RequestError(FixgwError):
    """A client request refused by the gateway; `code` is one of `api.protocol.ErrorCode`."""


class MarketDataRefused(RequestError):
    """The exchange refused a market-data stream a client waited for, for `reason`."""

    code = "md_rejected"

    def __init__(self, message: str, *, reason: MdRejectReason) -> None:
        super().__init__(message)
        self.reason = reason
