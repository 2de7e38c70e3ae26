"""structlog set-up: JSON lines for a log pipeline, readable lines in a terminal."""

from __future__ import annotations

import asyncio
import atexit
import errno
import io
import logging
import sys
import threading
from collections.abc import Callable, Iterable, Mapping, MutableMapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, BinaryIO, cast

import msgspec
import structlog

from fixgw.decimals import plain_decimal_text
from fixgw.masking import MASKED_BY_VALUE_FROM
from fixgw.wire import may_hold_exponent_form

SECRET_KEYS = frozenset({"password", "secret", "secret_key", "token", "api_token", "account"})


def _redact_secrets(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key in SECRET_KEYS.intersection(event):
        event[key] = "***"
    return event


_json = msgspec.json.Encoder(enc_hook=repr)
_json_plain = msgspec.json.Encoder(enc_hook=repr, decimal_format=plain_decimal_text)
"""Amounts as the local wire writes them (fixgw.wire): `0.00000001`, never `1E-8`. Only a
line that may hold a decimal in exponent form is encoded again, this way."""


def _escaped(text: str) -> str:
    """`text` with each lone surrogate written as `\\udcXX`. QuickFIX's binding makes one of
    each byte that is not UTF-8 (an OMS's Latin-1 `é`), and no UTF-8 encoder takes it."""
    return text.encode("utf-8", "backslashreplace").decode()


def _surrogates_escaped(value: Any) -> Any:
    if isinstance(value, str):
        return _escaped(value)
    if isinstance(value, Mapping):
        return {_surrogates_escaped(k): _surrogates_escaped(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_surrogates_escaped(v) for v in value]
    return value


_json_escaping = msgspec.json.Encoder(
    enc_hook=lambda obj: _escaped(repr(obj)), decimal_format=plain_decimal_text
)


def _encode(event: Any) -> bytes:
    """A log line never raises for what it holds: a string with a lone surrogate is written
    escaped. Only such a line pays for it; a `try` costs an ordinary one nothing."""
    try:
        out = _json.encode(event)
    except UnicodeEncodeError:
        return _json_escaping.encode(_surrogates_escaped(event))
    return _json_plain.encode(event) if may_hold_exponent_form(out) else out


def _encode_lines(events: Sequence[Any]) -> bytes:
    try:
        out = _json.encode_lines(events)
    except UnicodeEncodeError:
        return _json_escaping.encode_lines([_surrogates_escaped(e) for e in events])
    return _json_plain.encode_lines(events) if may_hold_exponent_form(out) else out


def _plain_decimals(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """For the console renderer, which writes a value's repr (`Decimal('1E-8')`): each
    decimal as the JSON lines have it, in lists and mappings too."""
    for key, value in event.items():
        event[key] = _plain(value)
    return event


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return plain_decimal_text(value)
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _json_bytes(event: Any, **_: Any) -> bytes:
    """msgspec instead of the json module: a third less time per line, which counts at info,
    where every order event is logged. Decimals come out as plain digits, anything unknown
    as its repr."""
    return _encode(event)


def _json_text(event: Any, **_: Any) -> str:
    return _encode(event).decode()


_batching = False
"""Whether `info_lines` encodes and writes JSON lines itself; if not, through structlog."""


class _Losses:
    """Log lines that could not be written (a full disk, a log reader gone: EPIPE) or
    rendered. The log is a side channel: such a line is dropped and counted, never raised
    into the order, request or session that logged it. Once lines can be written again, the
    first write says first how many were dropped."""

    def __init__(self) -> None:
        self.total = 0
        self.unsaid = 0
        """Dropped since the log last said so."""
        self.error = ""
        """Why the last one was dropped."""
        self.torn = False
        """A write stopped inside a line: the next one starts on a new line."""


_losses = _Losses()
_write_lock = threading.RLock()
"""Lines are written by any thread that logs, and the counts with them. Reentrant: a
Python signal handler runs on the thread it interrupts."""


def lines_dropped() -> int:
    """Log lines dropped since the process started (`fixgw_log_lines_dropped_total`)."""
    return _losses.total


def _write_all(data: bytes) -> tuple[int, BaseException | None]:
    """How many bytes of `data` were written (all, or those before the error), and the
    error. Through a buffer, nothing counts as written until it is flushed."""
    out = _config.out
    written = 0
    try:
        if out is None:
            sys.stderr.write(data.decode(_config.encoding, "replace"))
            sys.stderr.flush()
            return len(data), None
        view = memoryview(data)
        while written < len(data):
            n = out.write(view[written:])
            if n is None:  # a non-blocking stream that is full
                raise BlockingIOError(errno.EAGAIN, "the log stream takes nothing now")
            written += n
        out.flush()
    except (OSError, ValueError) as exc:  # ValueError: the stream was closed
        return (written if out is not None and out is _config.raw else 0), exc
    return written, None


_secret_forms: tuple[bytes, ...] = ()
"""Each secret value `mask_in_logs` was given, as a line would carry it (`_quoted_forms`,
each as UTF-8 and JSON-escaped), the longest first."""


def mask_in_logs(values: Iterable[str]) -> None:
    """Write `***` wherever a log line would quote one of these values: the last guard for
    secrets, whatever quoted them (an exception's text, a traceback, an excerpt of a
    message). A value once given stays masked: a rotated secret is still a secret. Values
    shorter than `MASKED_BY_VALUE_FROM` are left out."""
    global _secret_forms
    forms = set(_secret_forms)
    for value in values:
        if len(value) >= MASKED_BY_VALUE_FROM:
            for quoted in _quoted_forms(value):
                forms.add(quoted.encode("utf-8", "backslashreplace"))
                forms.add(_json.encode(quoted)[1:-1])
    _secret_forms = tuple(sorted(forms, key=len, reverse=True))


def _quoted_forms(value: str) -> set[str]:
    """`value` as it stands, and as a repr quotes it (an exception's text quoting a field,
    a value in a console line), whichever quote the repr chose."""
    escaped = value.replace("\\", "\\\\")
    return {
        value,
        repr(value)[1:-1],
        escaped,
        escaped.replace("'", "\\'"),
        escaped.replace('"', '\\"'),
    }


def _masked(data: bytes) -> bytes:
    for form in _secret_forms:
        if form in data:
            data = data.replace(form, b"***")
    return data


def _write(data: bytes) -> None:
    """Write `data`, whole log lines, secrets masked (`mask_in_logs`); never raises. Lines
    that cannot be written are dropped and counted (`_Losses`)."""
    if _secret_forms:
        data = _masked(data)
    with _write_lock:
        unsaid = _losses.unsaid
        head = _gap_notice(unsaid) if unsaid or _losses.torn else b""
        written, error = _write_all(head + data)
        if written:
            _losses.torn = (head + data)[written - 1] != ord("\n")
        if written >= len(head):
            _losses.unsaid -= unsaid
        if error is not None:
            lost = data[max(written - len(head), 0) :].count(b"\n")
            _losses.total += lost
            _losses.unsaid += lost
            _losses.error = str(error) or repr(error)


def _gap_notice(unsaid: int) -> bytes:
    """What goes before the first lines written after some were dropped: a newline after a
    line cut short, and one warning line saying how many were dropped and why."""
    head = b"\n" if _losses.torn else b""
    if unsaid and _processors and _config.level <= logging.WARNING:
        notice: Any = {
            "event": "log lines dropped",
            "logger": "fixgw.log",
            "dropped": unsaid,
            "error": _losses.error,
        }
        for processor in _processors:
            notice = processor(None, "warning", notice)
        head += _as_bytes(notice) + b"\n"
    return head


def _unrendered(exc: BaseException) -> None:
    """A line that could not be rendered (a value whose repr raises, say): dropped too."""
    with _write_lock:
        _losses.total += 1
        _losses.unsaid += 1
        _losses.error = f"a line could not be rendered: {exc!r}"


def _as_bytes(line: str | bytes) -> bytes:
    return line if isinstance(line, bytes) else line.encode(_config.encoding, "backslashreplace")


def info_lines(logger: Any, lines: Sequence[tuple[str, Mapping[str, Any]]]) -> None:
    """Many info lines at once, each as `logger.info(event, **fields)` would write it.

    With JSON lines on a byte stream (as under systemd), they share one timestamp and are
    encoded and written in one go: structlog's processors cost about 10 us a line, and at
    info every order event is logged, two lines an order."""
    if not _batching:
        for event, fields in lines:
            logger.info(event, **fields)
        return
    try:
        encoded = _encode_lines(_records(lines, datetime.now(UTC)))
    except Exception as exc:
        _unrendered(exc)
        return
    write_held()
    _write(encoded)


def _records(
    lines: Sequence[tuple[str, Mapping[str, Any]]], now: datetime
) -> list[MutableMapping[str, Any]]:
    return [
        _redact_secrets(None, "", {**fields, "event": event, "level": "info", "timestamp": now})
        for event, fields in lines
    ]


HOLD_S = 0.02
"""How long `HeldInfoLines` keeps lines before writing them."""

_held: list[bytes] = []
"""Info lines waiting to be written (`HeldInfoLines`), encoded: nothing the collector
tracks is kept."""
_held_lock = threading.Lock()
"""Lines are held on the loop's thread, and written by any thread that logs (the bridge's
QuickFIX thread, the metrics server's): none may be appended to a batch already taken."""


def write_held() -> None:
    """Write the held info lines now. Every other line, a new configuration and the
    interpreter's exit write them first, so the log stays in order."""
    global _held
    with _held_lock:
        if not _held:
            return
        lines, _held = _held, []
    _write(b"".join(lines))


atexit.register(write_held)


class HeldInfoLines:
    """Info lines held for up to `HOLD_S`, encoded, and written together: for the lines of
    every order event, which one at a time or at a fixed rate had a write of their own each
    turn of the loop. Each batch keeps the time it was added. A process killed outright
    loses what is held (the journal has the events themselves). On a terminal, or above
    info, lines go out at once, as `info_lines` writes them."""

    def __init__(self, logger: Any, loop: asyncio.AbstractEventLoop) -> None:
        self._logger = logger
        self._loop = loop

    def add(self, lines: Sequence[tuple[str, Mapping[str, Any]]]) -> None:
        if not _batching:
            info_lines(self._logger, lines)
            return
        try:
            encoded = _encode_lines(_records(lines, datetime.now(UTC)))
        except Exception as exc:
            _unrendered(exc)
            return
        with _held_lock:
            first = not _held
            _held.append(encoded)
        if first:
            self._loop.call_later(HOLD_S, write_held)


class _Config:
    """What every logger reads on each line: the level, and where rendered lines go.

    structlog caches each logger on first use, with the wrapper, processors and output it
    had then (`cache_logger_on_first_use`, which the per-line cost needs). So the loggers
    share this one object, the one processor list and one `_Out`, which `configure` changes
    in place: a level or format reloaded by SIGHUP applies to loggers already in use."""

    def __init__(self) -> None:
        self.level = logging.INFO
        self.binary = False
        """JSON lines rendered as bytes; if not, as text."""
        self.raw: io.RawIOBase | None = None
        """stderr's own file, unbuffered: a line it cannot take is not kept in a buffer to
        come out later, or to fail the interpreter's exit."""
        self.out: io.RawIOBase | BinaryIO | None = None
        """Where lines go as bytes: `raw`, else stderr's buffer; None: stderr as text."""
        self.encoding = "utf-8"
        """stderr's, for lines rendered as text."""


_config = _Config()


def enabled_for(level: int) -> bool:
    """Whether a line at `level` would be written. For the per-message paths: asking a
    module's logger (`log.is_enabled_for`) goes through structlog's lazy proxy each time."""
    return level >= _config.level


_processors: list[Any] = []


class _Out:
    """structlog's logger: writes each rendered line where `_config` says now."""

    def msg(self, message: str | bytes) -> None:
        write_held()
        _write(_as_bytes(message) + b"\n")

    def debug(self, message: str | bytes) -> None:
        self.msg(message)

    def info(self, message: str | bytes) -> None:
        self.msg(message)

    def warning(self, message: str | bytes) -> None:
        self.msg(message)

    def error(self, message: str | bytes) -> None:
        self.msg(message)

    def critical(self, message: str | bytes) -> None:
        self.msg(message)


_out = _Out()
_PASS_ALL: Any = structlog.make_filtering_bound_logger(logging.NOTSET)


class _Filtered:
    """structlog's wrapper class: drops lines below `_config.level`, as read at each call
    (one comparison), and hands the rest to structlog's own bound logger. A log call never
    raises: a line that cannot be rendered is dropped and counted (`_unrendered`)."""

    def __init__(self, logger: Any, processors: Any = None, context: Any = None) -> None:
        self._inner: Any = _PASS_ALL(logger, processors=processors, context=context)

    def is_enabled_for(self, level: int) -> bool:
        return level >= _config.level

    def get_effective_level(self) -> int:
        return _config.level

    def debug(self, event: str, *args: Any, **kw: Any) -> Any:
        if _config.level > logging.DEBUG:
            return None
        try:
            return self._inner.debug(event, *args, **kw)
        except Exception as exc:
            return _unrendered(exc)

    def info(self, event: str, *args: Any, **kw: Any) -> Any:
        if _config.level > logging.INFO:
            return None
        try:
            return self._inner.info(event, *args, **kw)
        except Exception as exc:
            return _unrendered(exc)

    def warning(self, event: str, *args: Any, **kw: Any) -> Any:
        if _config.level > logging.WARNING:
            return None
        try:
            return self._inner.warning(event, *args, **kw)
        except Exception as exc:
            return _unrendered(exc)

    def error(self, event: str, *args: Any, **kw: Any) -> Any:
        if _config.level > logging.ERROR:
            return None
        try:
            return self._inner.error(event, *args, **kw)
        except Exception as exc:
            return _unrendered(exc)

    def exception(self, event: str, *args: Any, **kw: Any) -> Any:
        if _config.level > logging.ERROR:
            return None
        try:
            return self._inner.exception(event, *args, **kw)
        except Exception as exc:
            return _unrendered(exc)

    def critical(self, event: str, *args: Any, **kw: Any) -> Any:
        if _config.level > logging.CRITICAL:
            return None
        try:
            return self._inner.critical(event, *args, **kw)
        except Exception as exc:
            return _unrendered(exc)

    def log(self, level: int, event: str, *args: Any, **kw: Any) -> Any:
        if _config.level > level:
            return None
        try:
            return self._inner.log(level, event, *args, **kw)
        except Exception as exc:
            return _unrendered(exc)

    def bind(self, **new_values: Any) -> _Filtered:
        return self._rewrap(self._inner.bind(**new_values))

    def new(self, **new_values: Any) -> _Filtered:
        return self._rewrap(self._inner.new(**new_values))

    def unbind(self, *keys: str) -> _Filtered:
        return self._rewrap(self._inner.unbind(*keys))

    @staticmethod
    def _rewrap(inner: Any) -> _Filtered:
        wrapped = _Filtered(None)
        wrapped._inner = inner
        return wrapped


followers: list[Callable[[str, str], None]] = []
"""Told each new (level, format) once `configure` has applied it: the processes the gateway
started, which log on their own (the NATS publisher process)."""


def configure(level: str = "info", fmt: str = "auto") -> None:
    """Set up logging, or change its level and format (SIGHUP) for every logger."""
    global _batching
    write_held()
    json_lines = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    buffer = getattr(sys.stderr, "buffer", None)
    raw = getattr(buffer, "raw", None)
    binary = json_lines and buffer is not None
    number = logging.getLevelNamesMapping()[level.upper()]
    rendering: list[Any]
    if binary:
        rendering = [structlog.processors.JSONRenderer(serializer=_json_bytes)]
    elif json_lines:
        rendering = [structlog.processors.JSONRenderer(serializer=_json_text)]
    else:
        rendering = [_plain_decimals, structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())]
    _config.level = number
    _config.binary = binary
    _config.raw = raw if isinstance(raw, io.FileIO) else None
    _config.out = _config.raw or buffer
    _config.encoding = getattr(sys.stderr, "encoding", None) or "utf-8"
    _batching = binary and number <= logging.INFO
    _processors[:] = [
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _redact_secrets,
        structlog.processors.StackInfoRenderer(),
        structlog.processors.format_exc_info,
        *rendering,
    ]
    structlog.configure(
        processors=_processors,
        wrapper_class=cast(Any, _Filtered),  # not structlog's BindableLogger: no _context
        logger_factory=_logger_factory,
        cache_logger_on_first_use=True,
    )
    for follower in list(followers):
        follower(level, fmt)


def _logger_factory(*_: Any) -> _Out:
    return _out
