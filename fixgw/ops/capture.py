"""Everything the process would print outside the structured log goes through it instead.

asyncio reports a task's exception nobody retrieved, a failed callback or a socket error
through the loop's exception handler, which logs with the stdlib's `logging`; a thread's
uncaught exception goes to `threading.excepthook`, one Python cannot raise (in `__del__`,
say) to `sys.unraisablehook`, a warning to `warnings`. Left alone, each writes plain text
to stderr, in between the JSON lines a log pipeline parses. `capture()` sends them all
through structlog, as one line each with the traceback in its `exception` field.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
from typing import Any

import structlog

log = structlog.get_logger("fixgw.python")


class _ToStructlog(logging.Handler):
    """The stdlib's records (asyncio's, QuickFIX-free libraries', warnings) as structlog's."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            fields: dict[str, Any] = {"logger": record.name}
            if record.exc_info and record.exc_info[1] is not None:
                fields["exc_info"] = record.exc_info
            log.log(record.levelno, record.getMessage(), **fields)
        except Exception:  # a log line must never take the process down
            self.handleError(record)


_handler = _ToStructlog()


def capture() -> None:
    """Route the stdlib's logging, warnings, and uncaught thread and unraisable exceptions
    into structlog (configure structlog first: `fixgw.ops.logging.configure`)."""
    root = logging.getLogger()
    if _handler not in root.handlers:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        root.addHandler(_handler)
    root.setLevel(logging.INFO)
    logging.captureWarnings(True)
    threading.excepthook = _thread_exception
    sys.unraisablehook = _unraisable


def _thread_exception(args: threading.ExceptHookArgs) -> None:
    if args.exc_type is SystemExit:
        return
    log.error(
        "uncaught exception in a thread",
        thread=args.thread.name if args.thread is not None else None,
        exc_info=(args.exc_type, args.exc_value, args.exc_traceback),
    )


def _unraisable(unraisable: Any) -> None:
    log.error(
        "exception Python could not raise",
        where=repr(unraisable.object) if unraisable.object is not None else None,
        message=unraisable.err_msg,
        exc_info=(unraisable.exc_type, unraisable.exc_value, unraisable.exc_traceback),
    )


def loop_exception_handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """asyncio's reports (a task's exception never retrieved, a callback that raised) as one
    structured error line each; the gateway lives on, as it does with asyncio's default."""
    exc = context.get("exception")
    fields: dict[str, Any] = {"message": context.get("message", "")}
    for key in ("task", "future", "handle"):
        if key in context:
            fields[key] = repr(context[key])[:300]
    if isinstance(exc, BaseException):
        fields["exc_info"] = exc
    log.error("asyncio reported an error", **fields)
