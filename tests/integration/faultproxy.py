"""A loopback TCP proxy that injects faults between the gateway and the simulator.

`drop()` closes every connection; `stall()` stops forwarding what the exchange sends, with
the connections left open (a silent peer; the exchange still hears the gateway); `choke()`
stops reading what the gateway sends, so its socket fills up (an exchange that is not
reading; `receive_buffer` keeps the proxy's own buffer small enough to fill); `delay_s`
holds each chunk back; `rewrite` edits each whole FIX message from the exchange (reframed
with a correct BodyLength and CheckSum) to garble it, `rewrite_outbound` each one from the
gateway (to lose one on the way).
"""

from __future__ import annotations

import contextlib
import re
import socket
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fixgw.testing import LocalStack

SOH = b"\x01"
_HEAD = re.compile(rb"8=FIX\.4\.4\x019=(\d+)\x01")

Rewrite = Callable[[list[tuple[int, bytes]]], list[tuple[int, bytes]] | None]
"""Fields of one message (without 8, 9 and 10) in, fields out; None drops the message."""


def frame(fields: list[tuple[int, bytes]]) -> bytes:
    body = b"".join(b"%d=%s\x01" % (tag, value) for tag, value in fields)
    head = b"8=FIX.4.4\x019=%d\x01" % len(body)
    return head + body + b"10=%03d\x01" % (sum(head + body) % 256)


def split_fields(message: bytes) -> list[tuple[int, bytes]]:
    fields = [part.split(b"=", 1) for part in message.rstrip(SOH).split(SOH)]
    return [(int(tag), value) for tag, value in fields if int(tag) not in (8, 9, 10)]


class _Reframer:
    def __init__(self, rewrite: Rewrite) -> None:
        self.rewrite = rewrite
        self.buffer = b""

    def feed(self, data: bytes) -> bytes:
        self.buffer += data
        out = b""
        while (head := _HEAD.match(self.buffer)) is not None:
            end = head.end() + int(head.group(1)) + 7  # 10=nnn<SOH>
            if len(self.buffer) < end:
                break
            message, self.buffer = self.buffer[:end], self.buffer[end:]
            fields = self.rewrite(split_fields(message))
            out += frame(fields) if fields is not None else b""
        return out


class FaultProxy:
    def __init__(self, target_port: int, receive_buffer: int | None = None) -> None:
        self.target_port = target_port
        self.delay_s = 0.0
        self.rewrite: Rewrite | None = None
        self.rewrite_outbound: Rewrite | None = None
        self.connections = 0
        self.refusing = False
        """Close every new connection at once, as an exchange that is down does."""
        self._flowing = threading.Event()
        self._flowing.set()
        self._reading = threading.Event()
        self._reading.set()
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        if receive_buffer is not None:
            self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        self.port = int(self._listener.getsockname()[1])
        self._closed = False
        threading.Thread(target=self._accept, name="faultproxy", daemon=True).start()

    def drop(self) -> None:
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for s in sockets:
            _close(s)

    def stall(self) -> None:
        self._flowing.clear()

    def resume(self) -> None:
        self._flowing.set()

    def choke(self) -> None:
        self._reading.clear()

    def release(self) -> None:
        self._reading.set()

    def close(self) -> None:
        self._closed = True
        self._flowing.set()
        self._reading.set()
        _close(self._listener)
        self.drop()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self.refusing:
                _close(client)
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
            except OSError:
                _close(client)
                continue
            self.connections += 1
            with self._lock:
                self._sockets += [client, upstream]
            inbound = _Reframer(self.rewrite) if self.rewrite is not None else None
            outbound = (
                _Reframer(self.rewrite_outbound) if self.rewrite_outbound is not None else None
            )
            for src, dst, edit, before, after in (
                (client, upstream, outbound, self._reading, None),
                (upstream, client, inbound, None, self._flowing),
            ):
                threading.Thread(
                    target=self._pump, args=(src, dst, edit, before, after), daemon=True
                ).start()

    def _pump(
        self,
        src: socket.socket,
        dst: socket.socket,
        edit: _Reframer | None,
        before: threading.Event | None,
        after: threading.Event | None,
    ) -> None:
        """`before` holds the reading back, `after` the forwarding of what was read."""
        try:
            while (before is None or before.wait()) and (data := src.recv(65536)):
                if after is not None:
                    after.wait()
                if self.delay_s:
                    time.sleep(self.delay_s)
                if edit is not None:
                    data = edit.feed(data)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            _close(src)
            _close(dst)


def _close(s: socket.socket) -> None:
    with contextlib.suppress(OSError):
        s.shutdown(socket.SHUT_RDWR)
    s.close()


_HEADER_TAGS = frozenset({34, 43, 49, 50, 52, 56, 57, 97, 115, 122, 128})


def is_snapshot(fields: list[tuple[int, bytes]], symbol: bytes, book: bool) -> bool:
    """A MarketDataSnapshot (W) for `symbol`: of a book (bids or offers) or of trades only
    (no entries: the simulator sends none for trades)."""
    found = dict(fields)
    return found.get(35) == b"W" and found.get(55) == symbol and (found.get(268) != b"0") is book


def md_refusal(fields: list[tuple[int, bytes]]) -> list[tuple[int, bytes]]:
    """A MarketDataRequestReject (Y) in place of the snapshot in `fields`, with its header
    (and so its MsgSeqNum): the exchange refusing that request."""
    md_req_id = dict(fields)[262]
    header = [(tag, value) for tag, value in fields if tag in _HEADER_TAGS]
    return [(35, b"Y"), *header, (262, md_req_id), (281, b"0"), (58, b"refused by the proxy")]


def between(stack: LocalStack, receive_buffer: int | None = None) -> FaultProxy:
    """A proxy between `stack`'s gateway and its simulator: call before the gateway starts."""
    proxy = FaultProxy(stack.sim_port, receive_buffer)
    stack.gateway_overrides.setdefault("session", {})["port"] = proxy.port
    return proxy
