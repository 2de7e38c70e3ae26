"""Publishing the journal to the JetStream stream over one connection: the stream made sure
of, the publisher started from its cursor, and started again after a failure (at a backoff
that grows while the same failure repeats), until the connection ends. The same in the
gateway's loop (`publisher: inline`) and in the publisher process (`publisher_main`)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from typing import Protocol

import msgspec
import nats
import nats.errors
import nats.js.errors
import structlog
from nats.aio.client import Client as NatsConnection
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import StorageType, StreamConfig

from fixgw.config import NatsConfig
from fixgw.fix.reconnect import Backoff
from fixgw.nats.publisher import Ack, EventPublisher, PublishFailed
from fixgw.nats.subjects import Subjects, covers, overlaps

log = structlog.get_logger("fixgw.nats")
JETSTREAM_NOT_ENABLED = frozenset({10039, 10076})
"""nats-server's error codes for JetStream not enabled, for the account or at all."""

RETRY_CEILING_S = 30.0
"""Publishing that keeps failing the same way (an event the stream refuses until its limits
change, say) is started again at most this far apart, or at `nats.reconnect.ceiling_s` if
that is longer."""

_SEQ = re.compile(rb'^\{"seq":(\d+)')


def jetstream_unavailable(exc: nats.js.errors.ServiceUnavailableError) -> PublishFailed:
    """What `last_error` says of the broker's 503 to a JetStream request: not enabled for the
    account (a config to change) told apart from a JetStream that cannot serve now."""
    if exc.err_code in JETSTREAM_NOT_ENABLED:
        return PublishFailed(
            f"JetStream is not enabled for this user's account ({exc.description}): enable "
            "it (`jetstream: enabled` in the account, the server run with -js)"
        )
    said = exc.description if exc.description not in (None, "None") else "no answer"
    return PublishFailed(
        f"JetStream is unavailable ({said}): not enabled on the broker, or its cluster has no "
        "leader for the stream now"
    )


class _PubAckError(msgspec.Struct):
    code: int = 0
    err_code: int = 0
    description: str = ""


class _PubAck(msgspec.Struct):
    stream: str | None = None
    seq: int | None = None
    duplicate: bool = False
    error: _PubAckError | None = None


_ack_decoder = msgspec.json.Decoder(_PubAck)


class JournalEnd(Protocol):
    """How far the journal has gone: the stream must not be ahead of it."""

    @property
    def last_seq(self) -> int:
        """The seq of the journal's last event. Not the seqs it has reserved
        (`Journal.reserved_seq`, a block of 100,000 ahead): no event of this journal in the
        stream is above its last one, since a line is published only once it is written to
        the file, and a crash (SIGKILL) takes no written line out of it."""
        ...


class _Link:
    def __init__(self, nc: NatsConnection, stream: str) -> None:
        self._nc = nc
        self._stream = stream

    async def publish(self, subject: str, data: bytes, msg_id: str, reply_to: str) -> None:
        await self._nc.publish(
            subject,
            data,
            reply=reply_to,
            headers={"Nats-Msg-Id": msg_id, "Nats-Expected-Stream": self._stream},
        )


class StreamWriter:
    def __init__(
        self,
        config: NatsConfig,
        subjects: Subjects,
        publisher: EventPublisher,
        journal: JournalEnd,
        failed: Callable[[str, BaseException, bool], None],
    ) -> None:
        """`failed(what, exc, logged)`: publishing stopped (counted, shown in `last_error`);
        it starts again after a backoff. The writer logs it itself (`logged` false), once
        per step of the backoff while the same failure repeats."""
        self.config = config
        self.subjects = subjects
        self.publisher = publisher
        self._journal = journal
        self._failed = failed
        r = config.reconnect
        self.backoff = Backoff(r.floor_s, max(r.ceiling_s, RETRY_CEILING_S), r.factor, r.jitter)
        self._cursor_trusted = publisher.cursor.found
        """Read from its file, or set from the stream once: publishing never starts past it."""
        self.last_error: str | None = None
        """A problem with the stream itself, beside the failures."""

    async def serve(self, nc: NatsConnection, gone: asyncio.Task[None]) -> None:
        """Publish until `gone` ends (the connection's end)."""
        js = nc.jetstream(timeout=self.config.ack_timeout_s)
        self.publisher.reply_prefix = nc.new_inbox()
        await nc.subscribe(f"{self.publisher.reply_prefix}.>", cb=self.on_ack)
        loop = asyncio.get_running_loop()
        failures_in_a_row = 0
        logged: tuple[str, float] | None = None
        while not gone.done():
            acked_before = self.publisher.acked_seq
            publishing = loop.create_task(self._publish(js, nc))
            await asyncio.wait({publishing, gone}, return_when=asyncio.FIRST_COMPLETED)
            if not publishing.done():
                publishing.cancel()
                await asyncio.gather(publishing, return_exceptions=True)
                return
            if self.publisher.acked_seq > acked_before:
                failures_in_a_row = 0
            try:
                publishing.result()
            except nats.errors.ConnectionClosedError:
                return
            except (PublishFailed, nats.errors.Error) as exc:
                what = "publishing to the stream stopped; starting again"
                self._failed(what, exc, False)
                why = str(exc) or type(exc).__name__
                step = (why, self.backoff.delay(failures_in_a_row, draw=lambda: 0.0))
                if step != logged:
                    log.warning(
                        what,
                        error=why,
                        acked_seq=self.publisher.acked_seq,
                        retry_in_s=round(step[1], 3),
                    )
                    logged = step
            await asyncio.wait({gone}, timeout=self.backoff.delay(failures_in_a_row))
            failures_in_a_row += 1

    async def _publish(self, js: JetStreamContext, nc: NatsConnection) -> None:
        await self._ensure_stream(js)
        await self._start_from_stream(js)
        await self.publisher.run(_Link(nc, self.config.stream.name))

    async def _start_from_stream(self, js: JetStreamContext) -> None:
        """Publishing starts after the cursor, never past an event the stream has not
        acknowledged: a later event in the stream says nothing of those before it (one a
        stream limit refused, say). Only with no cursor to go by (none saved yet, or one
        lost) does it start after this gateway's last event in the stream.

        A stream that holds a seq of this gateway beyond the journal's last event, or a
        cursor beyond it, is another journal's (one replaced, or another process under this
        name): an error, in `last_error`, and publishing starts after the stream's seq."""
        last, legacy_ids = await self._last_in_stream(js)
        self.publisher.stream_holds_through(last, legacy_ids)
        journal_end = self._journal.last_seq
        cursor = self.publisher.acked_seq
        if last > journal_end:
            self._not_this_journals(
                f"the stream holds seq {last} of gateway {self.config.gateway}, beyond this "
                f"journal's last event ({journal_end})",
                "nats stream is ahead of the journal; events up to its seq are not published",
                stream_seq=last,
                journal_seq=journal_end,
            )
            self.publisher.skip_to(last)
        elif cursor > journal_end:
            self._not_this_journals(
                f"the cursor is at seq {cursor}, beyond this journal's last event ({journal_end})",
                "nats cursor is ahead of the journal; events up to it are not published",
                cursor_seq=cursor,
                journal_seq=journal_end,
            )
        elif not self._cursor_trusted and last > cursor:
            log.warning(
                "nats cursor not found; publishing after this gateway's last event in the stream",
                stream=self.config.stream.name,
                after_seq=last,
            )
            self.publisher.skip_to(last)
        self._cursor_trusted = True

    def _not_this_journals(self, what: str, event: str, **fields: int) -> None:
        """Logged as an error when it starts or changes (not at every start of publishing
        while it lasts), and in `last_error` from then on."""
        error = (
            f"{what}: is another journal publishing under this name, or was this journal "
            f"replaced? This journal's events up to that seq are not published"
        )
        if error != self.last_error:
            log.error(event, stream=self.config.stream.name, **fields)
        self.last_error = error

    async def _ensure_stream(self, js: JetStreamContext) -> None:
        s = self.config.stream
        want = self.subjects.events
        try:
            info = await js.stream_info(s.name)
        except nats.js.errors.ServiceUnavailableError as exc:
            raise jetstream_unavailable(exc) from None
        except nats.js.errors.NotFoundError:
            if not s.create:
                raise PublishFailed(
                    f"stream {s.name} does not exist, and nats.stream.create is false"
                ) from None
            await js.add_stream(
                StreamConfig(
                    name=s.name,
                    subjects=[self.subjects.stream_subjects],
                    storage=StorageType.FILE,
                    num_replicas=s.replicas,
                    duplicate_window=s.duplicate_window_s,
                    max_age=s.max_age_s or None,
                    max_bytes=s.max_bytes,
                )
            )
            log.info("nats stream created", stream=s.name, subjects=self.subjects.stream_subjects)
            return
        if info.config.no_ack:
            raise PublishFailed(
                f"stream {s.name} does not acknowledge what it stores (no_ack): the gateway "
                "cannot know which events reached it; turn no_ack off"
            )
        subjects = list(info.config.subjects or [])
        if not any(covers(pattern, want) for pattern in subjects):
            if not s.create:
                raise PublishFailed(
                    f"stream {s.name} does not take {want} (its subjects: {subjects}), and "
                    "nats.stream.create is false"
                )
            await js.update_stream(info.config.evolve(subjects=self._with_ours(subjects)))
            log.info(
                "nats stream takes this gateway's subjects too",
                stream=s.name,
                added=want,
                replaced=[p for p in subjects if covers(want, p)],
            )
        window = info.config.duplicate_window or 0
        if window < s.duplicate_window_s:
            log.warning(
                "the stream's duplicate window is shorter than nats.stream.duplicate_window_s",
                stream=s.name,
                duplicate_window_s=window,
            )

    def _with_ours(self, subjects: list[str]) -> list[str]:
        """A stream's subjects with this gateway's events added: those of its subjects that
        ours cover are replaced by ours (the broker refuses overlapping subjects in a stream;
        nothing they took is lost). One that overlaps ours without being covered (another
        gateway's events are in it too) is for the firm to change."""
        want = self.subjects.events
        partly = [p for p in subjects if overlaps(p, want) and not covers(want, p)]
        if partly:
            raise PublishFailed(
                f"stream {self.config.stream.name} takes {', '.join(partly)}, which overlaps "
                f"{want} without taking all of it: change the stream's subjects by hand to "
                f"take {want} (as {self.subjects.stream_subjects} does)"
            )
        return [*(p for p in subjects if not covers(want, p)), want]

    async def _last_in_stream(self, js: JetStreamContext) -> tuple[int, bool]:
        """The seq of this gateway's last event in the stream (0: none), and whether it
        was stored under the message id of before the prefix was in it (an upgrade)."""
        try:
            msg = await js.get_last_msg(self.config.stream.name, self.subjects.events)
        except nats.js.errors.NotFoundError:
            return 0, False
        found = _SEQ.match(msg.data or b"")
        if found is None:
            return 0, False
        seq = int(found.group(1))
        msg_id = (msg.headers or {}).get("Nats-Msg-Id")
        return seq, msg_id == self.subjects.legacy_message_id(seq)

    async def on_ack(self, msg: Msg) -> None:
        _, run, seq = msg.subject.rsplit(".", 2)
        try:
            run_number, seq_number = int(run), int(seq)
        except ValueError:
            return
        headers = msg.headers or {}
        if headers.get("Status") == "503":
            ack = Ack(error="no stream takes this subject (no responders)")
        else:
            try:
                answer = _ack_decoder.decode(msg.data)
            except msgspec.DecodeError:
                ack = Ack(error=f"unreadable acknowledgement: {msg.data[:200]!r}")
            else:
                if answer.error is not None:
                    ack = Ack(error=f"{answer.error.description} ({answer.error.err_code})")
                else:
                    ack = Ack(duplicate=answer.duplicate)
        self.publisher.acknowledged(run_number, seq_number, ack)
