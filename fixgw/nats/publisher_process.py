"""The gateway's side of the publisher process (`nats.publisher: process`,
`publisher_main`): started with the transport, started again when it ends, stopped with
the gateway. The order path's part is one store into shared memory per journal write (the
mark); publishing, its acknowledgements, and the broker's socket are the other process's.

Why a process: publishing costs 500-900 us of Python per order (two events) and wakes the
gateway's thread for every acknowledgement; in the gateway's loop that made the order round
trip one at a time 1.3-1.6 times as long (docs/performance.md).
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Mapping

import msgspec
import structlog

from fixgw.config import LogConfig, NatsConfig
from fixgw.fix.reconnect import Backoff
from fixgw.journal import Journal
from fixgw.nats.cursor import Cursor, cursor_path
from fixgw.nats.mark import WrittenMark, mark_path
from fixgw.nats.metrics import NatsMetrics
from fixgw.nats.publisher_main import DRAIN_S, ApartState, LogSettings, Spec
from fixgw.nats.tail import JournalTail
from fixgw.ops import logging as ops_logging

log = structlog.get_logger("fixgw.nats")

_state_decoder = msgspec.json.Decoder(ApartState)
STOP_GRACE_S = 5.0
"""Beyond the drain: how long the process has to leave before it is killed."""
SILENT_AFTER_S = 5.0
"""A running process that has said nothing for longer (it reports every HEARTBEAT_S) is
taken for stuck (stopped, in uninterruptible I/O, deadlocked): not connected, its backlog
counted here, `last_error` saying so."""


class PublisherProcess:
    def __init__(
        self,
        config: NatsConfig,
        secrets: Mapping[str, str],
        journal: Journal,
        metrics: NatsMetrics,
        *,
        fsync: bool,
        log_config: LogConfig | None,
    ) -> None:
        self._config = config
        self._secrets = dict(secrets)
        self._journal = journal
        self._metrics = metrics
        self._fsync = fsync
        self._log = log_config or LogConfig()
        self._mark = WrittenMark(mark_path(journal.path), writer=True)
        path = cursor_path(config, journal.path)
        self.state = ApartState(acked_seq=Cursor(path, config.stream.name, config.gateway).seq)
        """As the process last said (before it first does: the cursor file's)."""
        r = config.reconnect
        self._backoff = Backoff(r.floor_s, r.ceiling_s, r.factor, r.jitter)
        self._base = self.state
        """The counts when the running process started."""
        self.restarts = 0
        self.last_error: str | None = None
        self._process: asyncio.subprocess.Process | None = None
        self._reporting = False
        """The running process has reported its state: its backlog is the one to show."""
        self._reported_at = 0.0
        self._told_silent = False
        """The log says the running process went silent, and has not said it reports again."""
        self._tail: JournalTail | None = None
        """Counts the backlog while no process reports it."""
        self._task: asyncio.Task[None] | None = None
        self._watch: asyncio.Task[None] | None = None
        self._stopping = False

    def start(self) -> None:
        self._journal.on_written.append(self._written)
        ops_logging.followers.append(self._log_settings_changed)
        self._written()
        loop = asyncio.get_running_loop()
        self._task = loop.create_task(self._supervise())
        self._watch = loop.create_task(self._watch_silence())

    def _written(self) -> None:
        j = self._journal
        self._mark.store(j.written_bytes, j.last_seq, j.reserved_seq)

    def _log_settings_changed(self, level: str, fmt: str) -> None:
        """For the running process at once, and for the next one started."""
        self._log = msgspec.structs.replace(self._log, level=level, format=fmt)
        process = self._process
        if process is None or process.returncode is not None or process.stdin is None:
            return
        line = msgspec.json.encode(LogSettings(level=level, format=fmt)) + b"\n"
        try:
            if not process.stdin.is_closing():
                process.stdin.write(line)
        except (OSError, RuntimeError) as exc:  # it is ending: the next one starts at `_log`
            log.warning("nats publisher process: log settings not sent", error=str(exc))

    def _spec(self) -> bytes:
        spec = Spec(
            config=self._config,
            secrets=self._secrets,
            journal_path=str(self._journal.path),
            fsync=self._fsync,
            log_level=self._log.level,
            log_format=self._log.format,
        )
        return msgspec.json.encode(spec) + b"\n"

    async def _supervise(self) -> None:
        ended_in_a_row = 0
        while not self._stopping:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "fixgw.nats.publisher_main",
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
            )
            self._process = process
            self._base = self.state
            self._reporting = False
            assert process.stdin is not None and process.stdout is not None
            process.stdin.write(self._spec())
            await process.stdin.drain()
            async for line in process.stdout:
                self._take(line)
                ended_in_a_row = 0
            code = await process.wait()
            self._reporting = False
            self.state = msgspec.structs.replace(self.state, connected=False)
            if self._stopping:
                return
            self.restarts += 1
            self._metrics.failures.inc()
            self.last_error = f"the publisher process ended (exit status {code})"
            log.warning("nats publisher process ended; starting it again", status=code)
            await asyncio.sleep(self._backoff.delay(ended_in_a_row))
            ended_in_a_row += 1

    def _take(self, line: bytes) -> None:
        """A state line of the process; its counts are since it started, the state's since
        the gateway did."""
        try:
            said = _state_decoder.decode(line)
        except msgspec.DecodeError:
            log.warning("nats publisher process: an unreadable line", line=line[:200])
            return
        base, before, m = self._base, self.state, self._metrics
        state = msgspec.structs.replace(
            said,
            published=base.published + said.published,
            duplicates=base.duplicates + said.duplicates,
            failures=base.failures + said.failures,
        )
        if state.published > before.published:
            m.stored.inc(state.published - before.published)
        if state.duplicates > before.duplicates:
            m.duplicate.inc(state.duplicates - before.duplicates)
        if state.failures > before.failures:
            m.failures.inc(state.failures - before.failures)
        if state.lag_s is not None:
            m.publish_lag.set(state.lag_s)
        self.state = state
        self._reporting = True
        self._reported_at = time.monotonic()
        if self._told_silent:
            self._told_silent = False
            log.info("nats publisher process reporting again", backlog=state.backlog)

    async def _watch_silence(self) -> None:
        """Status and the metrics show a silent process when read; the log says it once, as
        it happens, for an operator who reads logs rather than polls."""
        while True:
            await asyncio.sleep(1.0)
            silent = self._silent_for()
            if silent is not None and not self._told_silent:
                self._told_silent = True
                log.warning(
                    "nats publisher process silent; counting its backlog here",
                    silent_s=round(silent, 1),
                    backlog=self.backlog,
                )

    def _silent_for(self) -> float | None:
        """How long the running process has said nothing, once that is past SILENT_AFTER_S."""
        if not self._reporting:
            return None
        silent = time.monotonic() - self._reported_at
        return silent if silent > SILENT_AFTER_S else None

    @property
    def connected(self) -> bool:
        """As the process last said, unless it has gone silent."""
        return self.state.connected and self._silent_for() is None

    @property
    def silence(self) -> str | None:
        """What `last_error` says of a process gone silent."""
        silent = self._silent_for()
        if silent is None:
            return None
        return f"the publisher process has not reported for {silent:.0f} s"

    @property
    def backlog(self) -> int:
        """The journal's events after the cursor: as the running process reports them; while
        none does (it is starting, waiting for the cursor's lock, gone, or silent past
        SILENT_AFTER_S), counted here from the journal and the last cursor it reported, so
        that a stalled publisher's backlog grows as the journal does."""
        if self._reporting and self._silent_for() is None:
            return self.state.backlog
        if self._tail is None:
            self._tail = JournalTail(self._journal)
        self._tail.seek(self.state.acked_seq)
        return self._tail.unread()

    async def stop(self, drain_s: float) -> None:
        """Close its stdin: it publishes what is written for up to DRAIN_S and leaves;
        killed if it has not within STOP_GRACE_S more, or at once if `drain_s` is 0 (a
        start that failed: nothing to wait for)."""
        self._stopping = True
        process = self._process
        if process is not None and process.returncode is None:
            assert process.stdin is not None
            process.stdin.close()
            if drain_s <= 0:
                process.kill()
            try:
                await asyncio.wait_for(process.wait(), DRAIN_S + STOP_GRACE_S)
            except TimeoutError:
                log.warning("nats publisher process did not stop; killed", pid=process.pid)
                process.kill()
                await process.wait()
        for task in (self._task, self._watch):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        if self._written in self._journal.on_written:
            self._journal.on_written.remove(self._written)
        if self._log_settings_changed in ops_logging.followers:
            ops_logging.followers.remove(self._log_settings_changed)
        self._mark.close()
        if self._tail is not None:
            self._tail.close()
            self._tail = None
