"""TLS for FIX sessions, as a byte pipe beside QuickFIX.

The QuickFIX wheel on PyPI is built without TLS. Rather than ask every install to compile
it with OpenSSL flags, fixgw carries the session through a pipe: QuickFIX connects to a
loopback port, and the pipe speaks TLS to the exchange with Python's `ssl` (certificate
and host name verified by default, system CA store or a CA file, optional client
certificate). The simulator uses the same pipe the other way round to serve TLS.
Cost: one loopback hop.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import structlog

from fixgw.ops.log_budget import LogBudget

log = structlog.get_logger("fixgw.fix.tls")


class TlsFileError(ValueError):
    """A file a TLS setting names cannot be used; `setting` is that setting's key
    (`ca_file`, `client_cert`, `client_key`; the simulator's `cert_file`, `key_file`)."""

    def __init__(self, setting: str, message: str) -> None:
        super().__init__(message)
        self.setting = setting


class EncryptedKeyError(TlsFileError):
    """A TLS key is encrypted: fixgw has no passphrase to give it."""


def client_context(
    ca_file: str | None, client_cert: str | None, client_key: str | None, verify: bool = True
) -> ssl.SSLContext:
    """TlsFileError naming the setting whose file is not what it should hold; EncryptedKeyError
    for a key with a passphrase: OpenSSL is never let prompt for one (on a terminal `run`
    would wait for input; elsewhere the prompt goes to the log)."""
    try:
        context = ssl.create_default_context(cafile=ca_file)
    except ssl.SSLError as exc:
        if ca_file is None:
            raise
        raise TlsFileError("ca_file", f"{ca_file} {_why_not(ca_file, _CERTIFICATE, exc)}") from exc
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if client_cert is not None:
        _load_cert_chain(context, client_cert, client_key, ("client_cert", "client_key"))
    return context


def server_context(cert_file: str, key_file: str) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    _load_cert_chain(context, cert_file, key_file, ("cert_file", "key_file"))
    return context


def _load_cert_chain(
    context: ssl.SSLContext, cert_file: str, key_file: str | None, settings: tuple[str, str]
) -> None:
    """OpenSSL says "PEM lib" for a certificate or a key it cannot read alike: the
    certificate is read alone to tell which (a key and certificate that do not match keep
    OpenSSL's words: both files are at fault)."""
    cert_setting, key_setting = settings
    key_file = key_file or cert_file
    try:
        context.load_cert_chain(cert_file, key_file, password=_no_passphrase(key_setting, key_file))
    except ssl.SSLError as exc:
        if exc.reason == "KEY_VALUES_MISMATCH":
            raise
        try:
            ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cafile=cert_file)
        except ssl.SSLError as cert_exc:
            why = _why_not(cert_file, _CERTIFICATE, cert_exc)
            raise TlsFileError(cert_setting, f"{cert_file} {why}") from exc
        raise TlsFileError(key_setting, f"{key_file} {_why_not(key_file, _KEY, exc)}") from exc


_CERTIFICATE = "certificate"
_KEY = "private key"
_PEM_END = {_CERTIFICATE: b"CERTIFICATE-----", _KEY: b"PRIVATE KEY-----"}
"""How each kind's PEM block's label ends (`-----BEGIN RSA PRIVATE KEY-----` and all)."""
_CONVERT = {
    _CERTIFICATE: "x509 -inform der -in FILE.der -out FILE.pem",
    _KEY: "pkey -inform der -in FILE.der -out FILE.pem",
}
"""The openssl command that makes a DER file of each kind PEM."""


def _why_not(path: str, wanted: str, exc: ssl.SSLError) -> str:
    """Why OpenSSL found no `wanted` in the file at `path`, in words, from a look at what it
    holds."""
    try:
        data = Path(path).read_bytes()
    except OSError as read_exc:
        return f"cannot be read: {read_exc.strerror}"
    other = _KEY if wanted == _CERTIFICATE else _CERTIFICATE
    if not data.strip():
        return "is empty"
    if data.startswith(b"\x30") and b"-----BEGIN" not in data:
        return f"is DER, not PEM: convert it to a PEM {wanted} (openssl {_CONVERT[wanted]})"
    if _PEM_END[wanted] in data:
        return f"holds a PEM {wanted} OpenSSL cannot read: {exc}"
    if _PEM_END[other] in data:
        return f"holds a {other}, not a {wanted}"
    return f"is not a PEM {wanted}"


def _no_passphrase(setting: str, key_file: str) -> Callable[[], str]:
    """OpenSSL's callback for a key's passphrase: there is none to give."""

    def refuse() -> str:
        raise EncryptedKeyError(
            setting,
            f"{key_file} is encrypted (it has a passphrase), which fixgw does not support: "
            "give it the key without one",
        )

    return refuse


@dataclass
class Endpoint:
    host: str
    port: int
    tls: ssl.SSLContext | None = None
    server_name: str | None = None
    """The name the remote certificate must carry (default: `host`)."""


class Pipe:
    """Accepts on `listen`, connects each connection to `target`, copies bytes both ways.

    Runs its own event loop on a thread, so it serves a thread-based acceptor and an asyncio
    gateway alike. The last failure to reach the target is kept in `last_error`, until the
    target next answers: under TLS 1.3 a server refuses a client certificate after our side
    of the handshake is done, with an alert that comes on the first read.
    """

    def __init__(
        self,
        listen: Endpoint,
        target: Endpoint,
        name: str,
        accept: Callable[[Any, Any], bool] | None = None,
    ) -> None:
        """`accept(peer, local)`: whether to carry a connection accepted on `local` from
        `peer`; None: every one."""
        self.listen = listen
        self.target = target
        self.name = name
        self.accept = accept
        self.last_error: str | None = None
        self.port = listen.port
        self._loop = asyncio.new_event_loop()
        self._started = threading.Event()
        self._server: asyncio.Server | None = None
        self._refused_log = LogBudget(log)
        self._thread = threading.Thread(target=self._run, name=f"pipe-{name}", daemon=True)

    def start(self) -> int:
        """Start serving; returns the port it listens on (useful with port 0)."""
        self._thread.start()
        if not self._started.wait(10):
            raise RuntimeError(f"{self.name}: pipe did not start")
        return self.port

    def use_tls(self, context: ssl.SSLContext) -> None:
        """The target's TLS from the next connection on; the one open keeps its own."""
        self.target = replace(self.target, tls=context)

    def stop(self) -> None:
        if self._loop.is_running():
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(
            asyncio.start_server(
                self._serve, self.listen.host, self.listen.port, ssl=self.listen.tls
            )
        )
        self.port = int(self._server.sockets[0].getsockname()[1])
        self._started.set()
        self._loop.run_forever()
        self._server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer, local = writer.get_extra_info("peername"), writer.get_extra_info("sockname")
        if self.accept is not None and not self.accept(peer, local):
            self._refused_log.line(
                "connection refused: not this process's own",
                pipe=self.name,
                peer=f"{peer[0]}:{peer[1]}" if peer else None,
            )
            writer.close()
            return
        target = self.target
        reached = await self._reach(target, reader)
        if reached is None:
            writer.close()
            return
        up_reader, up_writer, held = reached
        up_writer.write(held)
        answered = False

        def on_answer() -> None:
            nonlocal answered
            answered = True
            self.last_error = None

        to_target = asyncio.ensure_future(_copy(reader, up_writer))
        from_target = asyncio.ensure_future(_copy(up_reader, writer, on_data=on_answer))
        first, _ = await asyncio.wait({to_target, from_target}, return_when=asyncio.FIRST_COMPLETED)
        target_ended_first = from_target in first
        _, ended_by = await asyncio.gather(to_target, from_target)
        if isinstance(ended_by, ssl.SSLError) or (
            not answered and (ended_by is not None or target_ended_first)
        ):
            self.last_error = _describe(ended_by, target, connected=True)
            log.error("the other end ended the connection", pipe=self.name, error=self.last_error)

    async def _reach(
        self, target: Endpoint, reader: asyncio.StreamReader
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, bytes] | None:
        """Connects to `target`, holding what the client sends meanwhile (QuickFIX sends
        its Logon at once) and watching for the client's end. None, with `last_error`
        saying why, if the connection cannot be made or the client ended its own first:
        then nothing it sent goes on, and the connection made, or being made, is dropped."""
        loop = asyncio.get_running_loop()
        held = bytearray()
        started = loop.time()
        connecting = asyncio.ensure_future(
            asyncio.wait_for(
                asyncio.open_connection(
                    target.host,
                    target.port,
                    ssl=target.tls,
                    server_hostname=(target.server_name or target.host) if target.tls else None,
                ),
                CONNECT_TIMEOUT_S,
            )
        )
        watching = asyncio.ensure_future(_held_until_ended(reader, held))
        await asyncio.wait({connecting, watching}, return_when=asyncio.FIRST_COMPLETED)
        watching.cancel()
        await asyncio.wait({watching})
        client_ended = not watching.cancelled() or reader.at_eof()
        if client_ended and not connecting.done():
            connecting.cancel()
            await asyncio.wait({connecting})
        up_writer = None
        if not connecting.cancelled():
            try:
                up_reader, up_writer = connecting.result()
            except Exception as exc:  # a bad name is a UnicodeError: any failure is said, once
                self.last_error = _describe(exc, target)
                log.error("cannot reach the other end", pipe=self.name, error=self.last_error)
                return None
        if up_writer is None or client_ended:
            if up_writer is not None:
                up_writer.close()
            self.last_error = _abandoned(target, loop.time() - started, len(held))
            log.warning("the client left first", pipe=self.name, error=self.last_error)
            return None
        return up_reader, up_writer, bytes(held)


CONNECT_TIMEOUT_S = 8.0
"""For the TCP connection and the TLS handshake: below QuickFIX's LogonTimeout (10 s, from
the Logon it sends at once into the pipe), so that a venue this slow is said to be (in
`last_error`) before QuickFIX gives up and blames the Logon."""

HELD_MAX = 65536
"""What the client may send before the other end is reached (QuickFIX: its Logon)."""


async def _held_until_ended(reader: asyncio.StreamReader, held: bytearray) -> None:
    """Reads what the client sends while the other end is being reached, into `held`, so
    that its end (a close, a reset) is seen: returns then. A half-close counts as its end: a
    FIX peer does not end its side and wait for an answer. It returns at `HELD_MAX` too: a
    client that sends that much before the other end is reached is not QuickFIX sending its
    Logon, and is dropped as one that left."""
    while len(held) < HELD_MAX:
        try:
            chunk = await reader.read(HELD_MAX - len(held))
        except OSError:
            return
        if not chunk:
            return
        held += chunk


def _abandoned(target: Endpoint, after_s: float, held: int) -> str:
    where = f"{target.host}:{target.port}"
    what = f"the TLS handshake with {where}" if target.tls else f"the connection to {where}"
    if held >= HELD_MAX:
        return (
            f"the client sent {HELD_MAX} bytes or more before {what} was done, {after_s:.1f} s "
            "in: more than a Logon, so it was dropped and nothing it sent was passed on"
        )
    return (
        f"{what} was not done when the client (QuickFIX) gave up on it, {after_s:.1f} s in: "
        "nothing it sent was passed on"
    )


async def _copy(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    on_data: Callable[[], None] | None = None,
) -> OSError | None:
    """Copies until either end closes; returns the error reading ended on (a TLS alert, a
    reset), if any. `on_data`: called once, before the first bytes read are passed on."""
    try:
        while True:
            try:
                chunk = await reader.read(65536)
            except OSError as exc:
                return exc
            if not chunk:
                return None
            if on_data is not None:
                on_data()
                on_data = None
            writer.write(chunk)
            await writer.drain()
    except OSError:
        return None  # the other side's end closed: its own copy says how
    finally:
        with contextlib.suppress(Exception):
            writer.close()


OUR_CERTIFICATE_REFUSED = frozenset(
    {
        "TLSV13_ALERT_CERTIFICATE_REQUIRED",
        "TLSV1_ALERT_UNKNOWN_CA",
        "SSLV3_ALERT_BAD_CERTIFICATE",
        "SSLV3_ALERT_UNSUPPORTED_CERTIFICATE",
        "SSLV3_ALERT_CERTIFICATE_REVOKED",
        "SSLV3_ALERT_CERTIFICATE_EXPIRED",
        "SSLV3_ALERT_CERTIFICATE_UNKNOWN",
    }
)
"""The alerts by which a server refuses the client's certificate (or its absence)."""


def _describe(exc: BaseException | None, target: Endpoint, connected: bool = False) -> str:
    """`connected`: `exc` ended a connection made (our side of the TLS handshake done):
    before the other end answered, or by a TLS alert; None: the other end closed it."""
    where = f"{target.host}:{target.port}"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS certificate of {where} refused: {exc.verify_message}"
    if isinstance(exc, ssl.SSLError):
        why = f"TLS with {where} failed: {exc.reason or exc}"
        if exc.reason in OUR_CERTIFICATE_REFUSED:
            return f"{why} (the server refused our client certificate, or the lack of one)"
        return why
    if isinstance(exc, TimeoutError) and not connected:
        made = "the TCP connection and TLS handshake" if target.tls else "the TCP connection"
        return f"no answer from {where}: {made} took over {CONNECT_TIMEOUT_S:g} s"
    if connected or exc is None:
        why = "the server ended the connection before answering"
        if exc is not None:
            why += f" ({(exc.strerror if isinstance(exc, OSError) else None) or exc})"
        if target.tls is None:
            return f"connection to {where} failed: {why}"
        return (
            f"TLS with {where} failed: {why}, just after the handshake (as a server refusing "
            "our client certificate under TLS 1.3 does, if its alert is lost)"
        )
    if target.tls is not None and isinstance(exc, ConnectionResetError) and not str(exc):
        return f"TLS with {where} failed: the server closed the connection during the handshake"
    if not isinstance(exc, OSError):
        return f"cannot connect to {where}: {type(exc).__name__}: {exc}"
    return f"cannot connect to {where}: {exc}"
