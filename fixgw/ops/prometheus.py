"""Prometheus metrics, and the HTTP endpoint that serves them with /healthz and /readyz.

Each `Metrics` has a registry of its own (not the process-global one), so several can live
in one process. Values that are state rather than events (sequence numbers, open orders,
seconds since the last inbound message, clients, journal size) are read at scrape time.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from fixgw.ops.logging import lines_dropped
from fixgw.ops.pulse import STUCK_AFTER_S
from fixgw.ops.tally import Buckets, Tally


class TallyCollector(Collector):
    """A `Tally` as a Prometheus counter (`name` without `_total`)."""

    def __init__(self, name: str, documentation: str, tally: Tally, labels: list[str]) -> None:
        self._name, self._documentation, self._tally, self._labels = (
            name,
            documentation,
            tally,
            labels,
        )

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(self._name, self._documentation, labels=self._labels)
        for values, count in self._tally.snapshot().items():
            family.add_metric(list(values), count)
        yield family

    def describe(self) -> Iterator[Metric]:
        yield CounterMetricFamily(self._name, self._documentation, labels=self._labels)


class CountCollector(Collector):
    """A count kept elsewhere (`read` returns it) as a Prometheus counter (`name` without
    `_total`)."""

    def __init__(self, name: str, documentation: str, read: Callable[[], int]) -> None:
        self._name, self._documentation, self._read = name, documentation, read

    def collect(self) -> Iterator[Metric]:
        yield CounterMetricFamily(self._name, self._documentation, value=self._read())

    def describe(self) -> Iterator[Metric]:
        yield CounterMetricFamily(self._name, self._documentation)


class BucketsCollector(Collector):
    """`Buckets` as a Prometheus histogram."""

    def __init__(self, name: str, documentation: str, buckets: Buckets) -> None:
        self._name, self._documentation, self._buckets = name, documentation, buckets

    def collect(self) -> Iterator[Metric]:
        cumulative, total = self._buckets.snapshot()
        bounds = [repr(float(b)) for b in self._buckets.bounds] + ["+Inf"]
        yield HistogramMetricFamily(
            self._name,
            self._documentation,
            buckets=list(zip(bounds, cumulative, strict=True)),
            sum_value=total,
        )

    def describe(self) -> Iterator[Metric]:
        yield HistogramMetricFamily(self._name, self._documentation)


DIRECTIONS = ("in", "out")
RISK_LIMITS = (
    "max_open_orders",
    "sides",
    "max_qty",
    "max_notional",
    "price_band_pct",
    "no_reference_price",
)
API_REFUSALS = (
    "bad_token",
    "no_hello",
    "hello_timeout",
    "long_line_before_hello",
    "too_many_clients",
    "not_reading",
    "internal_error",
)
BRIDGE_CLOSINGS = (
    "timeout",
    "not_fix",
    "too_many_waiting",
    "closed",
    "handover_failed",
    "not_a_logon",
    "wrong_password",
    "sending_time",
    "not_logged_on",
)
"""The labels of counters whose values are a known, documented few (docs/operations.md),
each exported at 0 from the start: a series that first appears at 1 is a first event that
`increase()` and `rate()` never see, so an alert on it could not fire."""


class Metrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.session_up = Gauge("fixgw_session_up", "1 while logged on to the exchange", registry=r)
        self.logons = Counter("fixgw_logons_total", "Logons to the exchange", registry=r)
        self.disconnects = Counter("fixgw_disconnects_total", "Sessions ended", registry=r)
        self.logon_attempts = Counter(
            "fixgw_logon_attempts_total", "Logons sent: first connection and reconnects", registry=r
        )
        self.heartbeat_round_trip = Histogram(
            "fixgw_heartbeat_round_trip_seconds",
            "TestRequest sent to the Heartbeat answering it",
            buckets=(1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 0.1, 0.5, 1.0, 5.0),
            registry=r,
        )
        self.messages = Tally()
        r.register(
            TallyCollector(
                "fixgw_fix_messages",
                "FIX messages by direction and type",
                self.messages,
                ["direction", "msg_type"],
            )
        )
        self.resend_requests = Counter(
            "fixgw_resend_requests_total", "ResendRequests, by direction", ["direction"], registry=r
        )
        self.gap_fills = Counter(
            "fixgw_gap_fills_total", "SequenceResets, by direction", ["direction"], registry=r
        )
        self.rejects = Counter(
            "fixgw_rejects_total", "Rejects from the exchange, by reason", ["reason"], registry=r
        )
        self.bridge_rejects_received = Counter(
            "fixgw_bridge_rejects_received_total",
            "Session (3) and business (j) rejects from OMS sessions on the bridge, never answered",
            ["oms", "msg_type"],
            registry=r,
        )
        self.risk_rejects = Counter(
            "fixgw_risk_rejects_total",
            "Orders refused by a risk limit, by limit",
            ["limit"],
            registry=r,
        )
        self.throttled = Counter(
            "fixgw_throttled_total",
            "Messages over a rate limit, by kind and outcome (queued, rejected)",
            ["kind", "outcome"],
            registry=r,
        )
        self.throttle_queue = Gauge(
            "fixgw_throttle_queued", "Messages waiting for the throttle", registry=r
        )
        self.halted = Gauge("fixgw_halted", "1 while the kill switch is on", registry=r)
        self.credentials_refused = Gauge(
            "fixgw_credentials_refused",
            "1 while no logon is tried because the exchange refused the credentials",
            registry=r,
        )
        self.inbound_refused = Counter(
            "fixgw_inbound_refused_total",
            "Application messages from the exchange QuickFIX refused at session level (read by "
            "fixgw all the same), by type",
            ["msg_type"],
            registry=r,
        )
        self.callback_errors = Counter(
            "fixgw_callback_errors_total", "Exceptions caught in QuickFIX callbacks", registry=r
        )
        self.order_round_trip = Buckets(
            (5e-5, 1e-4, 2e-4, 3e-4, 5e-4, 7.5e-4, 1e-3, 2e-3, 5e-3, 1e-2, 5e-2, 0.1, 0.5, 1.0)
        )
        r.register(
            BucketsCollector(
                "fixgw_order_round_trip_seconds",
                "new_order received to the first execution report for it",
                self.order_round_trip,
            )
        )
        self.md_messages = Tally()
        r.register(
            TallyCollector(
                "fixgw_md_messages", "Market data updates, by symbol", self.md_messages, ["symbol"]
            )
        )
        self.md_passed_over = Tally()
        r.register(
            TallyCollector(
                "fixgw_md_entries_passed_over",
                "Market-data entries from the exchange the gateway has no use for, by kind",
                self.md_passed_over,
                ["entry"],
            )
        )
        self.book_stale = Gauge(
            "fixgw_book_stale", "1 while a symbol's book is stale", ["symbol"], registry=r
        )
        self.next_sender_seq = Gauge(
            "fixgw_next_sender_seq_num", "Next MsgSeqNum we send", registry=r
        )
        self.next_target_seq = Gauge(
            "fixgw_next_target_seq_num", "Next MsgSeqNum we expect", registry=r
        )
        self.last_inbound = Gauge(
            "fixgw_seconds_since_last_inbound",
            "Seconds since the exchange last sent anything",
            registry=r,
        )
        self.orders = Gauge(
            "fixgw_orders", "Orders in the gateway's state, by status", ["status"], registry=r
        )
        self.api_clients = Gauge("fixgw_api_clients", "Connected API clients", registry=r)
        self.api_unsent_bytes = Gauge(
            "fixgw_api_unsent_bytes", "Bytes waiting to be sent, summed over clients", registry=r
        )
        self.api_auth_failures = Counter(
            "fixgw_api_auth_failures_total",
            "TCP hellos with a wrong or missing token (each closes its connection)",
            registry=r,
        )
        self.api_refused = Counter(
            "fixgw_api_refused_total",
            "API connections refused or closed by the gateway, by reason",
            ["reason"],
            registry=r,
        )
        self.bridge_oms_logged_on = Gauge(
            "fixgw_bridge_oms_logged_on", "OMS sessions logged on to the FIX bridge", registry=r
        )
        self.bridge_connections_closed = Counter(
            "fixgw_bridge_connections_closed_total",
            "Bridge connections closed before their Logon reached QuickFIX, by reason",
            ["reason"],
            registry=r,
        )
        self.journal_bytes = Gauge("fixgw_journal_bytes", "Size of the event journal", registry=r)
        r.register(
            CountCollector(
                "fixgw_log_lines_dropped",
                "Log lines that could not be written (or rendered), dropped",
                lines_dropped,
            )
        )
        self._last_inbound = time.monotonic()
        self.last_inbound.set_function(self.seconds_since_inbound)
        for counter, values in (
            (self.resend_requests, DIRECTIONS),
            (self.gap_fills, DIRECTIONS),
            (self.risk_rejects, RISK_LIMITS),
            (self.api_refused, API_REFUSALS),
            (self.bridge_connections_closed, BRIDGE_CLOSINGS),
        ):
            for value in values:
                counter.labels(value)

    def seconds_since_inbound(self) -> float:
        return time.monotonic() - self._last_inbound

    def inbound(self, msg_type: str) -> None:
        self._last_inbound = time.monotonic()
        self.count_message("in", msg_type)

    def count_message(self, direction: str, msg_type: str) -> None:
        self.messages.add((direction, msg_type))

    def md_message(self, symbol: str) -> None:
        self.md_messages.add((symbol,))

    def md_entry_passed_over(self, entry: str) -> None:
        """`entry` names a kind from a fixed list (`BookSnapshotReport.passed_over`)."""
        self.md_passed_over.add((entry,))

    def exposition(self) -> bytes:
        return bytes(generate_latest(self.registry))


def _http_server_for(host: str) -> type[ThreadingHTTPServer]:
    """ThreadingHTTPServer in the family `host` resolves to: IPv4 if it names an IPv4
    address (as before for a name that has both), else IPv6 (`::1`, `::`), which
    ThreadingHTTPServer, IPv4 only, could not bind."""
    infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    families = {family for family, *_ in infos}

    class Server(ThreadingHTTPServer):
        address_family = socket.AF_INET if socket.AF_INET in families else socket.AF_INET6

    return Server


class MetricsServer:
    """GET /metrics, /healthz (the process answers and its event loop runs: `loop_silent_s`
    under `stuck_after_s`), /readyz (logged on and reconciled; when not, 503 and why:
    `not_ready_because` returns None when ready)."""

    def __init__(
        self,
        metrics: Metrics,
        host: str,
        port: int,
        not_ready_because: Callable[[], str | None],
        loop_silent_s: Callable[[], float] = lambda: 0.0,
        stuck_after_s: float = STUCK_AFTER_S,
    ) -> None:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path == "/metrics":
                    outer._answer(self, HTTPStatus.OK, metrics.exposition(), CONTENT_TYPE_LATEST)
                elif self.path == "/healthz":
                    silent_s = loop_silent_s()
                    if silent_s > stuck_after_s:
                        stuck = f"event loop stuck for {silent_s:.0f} s\n".encode()
                        outer._answer(self, HTTPStatus.SERVICE_UNAVAILABLE, stuck)
                    else:
                        outer._answer(self, HTTPStatus.OK, b"ok\n")
                elif self.path == "/readyz":
                    why = not_ready_because()
                    outer._answer(
                        self,
                        HTTPStatus.OK if why is None else HTTPStatus.SERVICE_UNAVAILABLE,
                        b"ready\n" if why is None else f"not ready: {why}\n".encode(),
                    )
                else:
                    outer._answer(self, HTTPStatus.NOT_FOUND, b"not found\n")

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = _http_server_for(host)((host, port), Handler)
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="metrics", daemon=True
        )

    @staticmethod
    def _answer(
        handler: BaseHTTPRequestHandler,
        status: HTTPStatus,
        body: bytes,
        content_type: str = "text/plain; charset=utf-8",
    ) -> None:
        handler.send_response(status)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
