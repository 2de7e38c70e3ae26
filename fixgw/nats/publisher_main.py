"""The publisher process (`nats.publisher: process`): the journal's events to the JetStream
stream, from a process of the gateway's own, off the gateway's thread.

The gateway starts it (`publisher_process.PublisherProcess`) and writes one line to its
stdin: the `nats` config, its resolved secrets and the journal's path (never on the command
line or in the environment, where other users could read them), then a line of log
settings each time a SIGHUP changes them (`LogSettings`). Every `nats.batch_ms` it
looks at where the journal's written lines end (`mark.WrittenMark`, shared memory, no
system call for the gateway) and publishes what is new, in order, as `publisher.
EventPublisher` does inline. It writes its state to stdout as JSON lines when it changes,
for the gateway's `status` and metrics, and at least every HEARTBEAT_S (so that the gateway
can tell a stuck process from an idle one).

It ends when its stdin does: the gateway stopped (or died), so it publishes for up to
DRAIN_S what is written and leaves (a gateway whose start failed kills it instead). SIGINT
and SIGTERM are the gateway's to act on: a Ctrl-C or a systemd stop reaches the whole group,
and the gateway still has lines to write.
A publisher left over from a gateway killed a moment ago holds the cursor's lock until it
has gone; the next one waits for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import signal
import sys
import threading
import time
from pathlib import Path

import msgspec
import structlog
from prometheus_client import CollectorRegistry

from fixgw.config import NatsConfig
from fixgw.journal import offset_before, scan
from fixgw.nats.connection import BrokerConnection
from fixgw.nats.cursor import cursor_path
from fixgw.nats.mark import WrittenMark, mark_path
from fixgw.nats.metrics import NatsMetrics
from fixgw.nats.publisher import journal_publisher
from fixgw.nats.stream import StreamWriter
from fixgw.nats.subjects import Subjects
from fixgw.ops.capture import capture as capture_python_output
from fixgw.ops.logging import configure as configure_logging
from fixgw.ops.logging import mask_in_logs

log = structlog.get_logger("fixgw.nats")

REPORT_EVERY_S = 0.05
"""State lines to the gateway at most this often."""
HEARTBEAT_S = 1.0
"""A state line at least this often, changed or not: the gateway takes a process that says
nothing for longer than `publisher_process.SILENT_AFTER_S` for stuck."""
NICENESS = 10
"""The publisher yields the cores to the order path when both want them (`nice`): on a
machine without a core to spare, it runs in the gaps."""
DRAIN_S = 2.0
"""Once its stdin ends: how long it goes on publishing what is written."""
LEAVE_BY_S = DRAIN_S + 5.0
"""Once its stdin ends, the process is gone by then whatever happens: a publisher left over
from a dead gateway holds the cursor's lock, and no later one could publish. nats-py's
close, or anything else awaited on the way out, may never return."""
LOCK_WAIT_S = 30.0
"""How long to wait for the cursor's lock (a publisher of a killed gateway, still draining)."""


class Spec(msgspec.Struct, frozen=True, kw_only=True):
    """What the gateway hands the publisher process on its stdin."""

    config: NatsConfig
    secrets: dict[str, str]
    journal_path: str
    fsync: bool
    log_level: str = "info"
    log_format: str = "auto"


class LogSettings(msgspec.Struct, frozen=True, kw_only=True):
    """A line on the process's stdin after its Spec: the gateway's log settings changed
    (SIGHUP)."""

    level: str
    format: str


_log_settings_decoder = msgspec.json.Decoder(LogSettings)


class ApartState(msgspec.Struct, kw_only=True):
    """What the publisher process reports, a line each time it changes (and at least every
    HEARTBEAT_S)."""

    connected: bool = False
    acked_seq: int = 0
    backlog: int = 0
    """The journal's events after the cursor."""
    lag_s: float | None = None
    published: int = 0
    duplicates: int = 0
    failures: int = 0
    last_error: str | None = None


class JournalView:
    """The journal as the publisher process reads it: the file, and how far the gateway has
    written it (the mark)."""

    def __init__(self, path: Path, mark: WrittenMark) -> None:
        self.path = path
        self._mark = mark
        self._index = scan(path).every_1024th

    @property
    def written_bytes(self) -> int:
        return self._mark.load().end

    @property
    def last_seq(self) -> int:
        return self._mark.load().last_seq

    @property
    def reserved_seq(self) -> int:
        return self._mark.load().reserved_seq

    def offset_before(self, since: int) -> int:
        return offset_before(self._index, since)


EXIT_CURSOR_UNUSABLE = 3
"""The process's exit status when it cannot hold its cursor's lock (logged first): the
gateway starts it again at `nats.reconnect`'s backoff."""
EXIT_NOT_STOPPED = 4
"""The process's exit status when it did not stop by LEAVE_BY_S after its stdin ended."""


def lock_cursor(path: Path) -> int:
    """Hold `<cursor>.lock` (the fd; released when this process ends). If it cannot be
    opened or is held past LOCK_WAIT_S: one error line, and the process exits."""
    lock = f"{path}.lock"
    try:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        log.error("nats cursor lock cannot be opened", lock=lock, error=exc.strerror)
        raise SystemExit(EXIT_CURSOR_UNUSABLE) from None
    deadline = time.monotonic() + LOCK_WAIT_S
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            if time.monotonic() > deadline:
                os.close(fd)
                log.error("nats cursor is held by another publisher", lock=lock)
                raise SystemExit(EXIT_CURSOR_UNUSABLE) from None
            time.sleep(0.1)


class PublisherApart:
    def __init__(self, spec: Spec) -> None:
        config = self.config = spec.config
        self.spec = spec
        journal_path = Path(spec.journal_path)
        self._mark = WrittenMark(mark_path(journal_path), writer=False)
        self.view = JournalView(journal_path, self._mark)
        self.subjects = Subjects(config.subject_prefix, config.gateway)
        self.publisher = journal_publisher(
            config, self.view, NatsMetrics(CollectorRegistry()), spec.fsync
        )
        self.writer = StreamWriter(
            config,
            self.subjects,
            self.publisher,
            self.view,
            self._failed,
        )
        self.broker = BrokerConnection(
            config, spec.secrets, self.writer.serve, self._failed, name="publisher"
        )
        self.failures = 0
        self.last_error: str | None = None
        self._reported: ApartState | None = None
        self._reported_at = 0.0
        self._gateway_gone = False

    def _failed(self, what: str, exc: BaseException, logged: bool = True) -> None:
        """Counted and shown in `last_error`; logged unless the caller logs it its way."""
        self.failures += 1
        self.last_error = f"{what}: {exc or type(exc).__name__}"
        if logged:
            log.warning(
                what, error=str(exc) or type(exc).__name__, acked_seq=self.publisher.acked_seq
            )

    def state(self) -> ApartState:
        p = self.publisher
        return ApartState(
            connected=self.broker.connected,
            acked_seq=p.acked_seq,
            backlog=p.backlog,
            lag_s=p.lag_s,
            published=p.published,
            duplicates=p.duplicates,
            failures=self.failures,
            last_error=self.writer.last_error or p.last_error or self.last_error,
        )

    def report(self) -> None:
        """The state to the gateway on stdout, if it changed or HEARTBEAT_S has gone by
        since the last line. A gateway that no longer reads it (SIGKILLed) ends the
        reports, never the publishing: its stdout is sent to /dev/null, so that nothing
        fails on it again, the interpreter's exit included."""
        state = self.state()
        now = time.monotonic()
        due = state != self._reported or now - self._reported_at >= HEARTBEAT_S
        if due and not self._gateway_gone:
            try:
                sys.stdout.buffer.write(msgspec.json.encode(state) + b"\n")
                sys.stdout.buffer.flush()
            except BrokenPipeError:
                self._gateway_gone = True
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
                log.info("nats publisher process: the gateway reads no more of its state")
                return
            self._reported = state
            self._reported_at = now

    async def _watch(self) -> None:
        """Every batch_ms: the journal's new lines to the publisher; the state, if it
        changed or a heartbeat is due, to the gateway."""
        every_s = self.config.batch_ms / 1000
        seen = 0
        reported_at = 0.0
        while True:
            end = self.view.written_bytes
            if end > seen:
                seen = end
                self.publisher.written(end)
            now = time.monotonic()
            if now - reported_at >= REPORT_EVERY_S:
                self.report()
                reported_at = now
            await asyncio.sleep(every_s)

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        tasks = [loop.create_task(self.broker.run()), loop.create_task(self._watch())]
        log.info(
            "nats publisher process started",
            pid=os.getpid(),
            from_seq=self.publisher.acked_seq,
            batch_ms=self.config.batch_ms,
        )
        while line := await loop.run_in_executor(None, sys.stdin.buffer.readline):
            take_log_settings(line)
        # the gateway is gone, or stopping
        leave_by(LEAVE_BY_S)
        if self.broker.connected:
            self.publisher.written(self.view.written_bytes)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.publisher.caught_up(), DRAIN_S)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.broker.close()
        self.report()
        self.publisher.close()
        self._mark.close()
        log.info("nats publisher process stopped", acked_seq=self.publisher.acked_seq)


def leave_by(seconds: float) -> None:
    """End the process in `seconds` if it has not ended by then: a thread of its own, which
    a stuck event loop cannot hold up."""

    def leave() -> None:
        log.error("nats publisher process did not stop in time; leaving", after_s=seconds)
        os._exit(EXIT_NOT_STOPPED)

    timer = threading.Timer(seconds, leave)
    timer.daemon = True
    timer.start()


def take_log_settings(line: bytes) -> None:
    try:
        settings = _log_settings_decoder.decode(line)
        configure_logging(settings.level, settings.format)
    except (msgspec.DecodeError, KeyError) as exc:
        log.warning("nats publisher process: log settings not taken", error=str(exc))
        return
    log.info("nats publisher process: log settings changed", level=settings.level)


def main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        os.nice(NICENESS)
    except OSError as exc:  # a sandbox may refuse it: publish at the gateway's priority
        log.warning("nats publisher process: niceness not raised", error=str(exc))
    spec = msgspec.json.decode(sys.stdin.buffer.readline(), type=Spec)
    configure_logging(spec.log_level, spec.log_format)
    mask_in_logs(spec.secrets.values())
    capture_python_output()
    lock_cursor(cursor_path(spec.config, Path(spec.journal_path)))
    try:
        asyncio.run(PublisherApart(spec).run())
    except Exception:  # the gateway's log is JSON lines: no raw traceback in it
        log.exception("nats publisher process failed")
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
